/* Streams from an agent (a container's logs, a terminal): the server asks
 * for GET path with Upgrade: gpufleet-stream, the agent answers 101 and a
 * first JSON line saying whether the stream started, then the stream's
 * bytes on the same connection. Blocking, from the caller's thread. */
#ifndef GF_AGENTSTREAM_H
#define GF_AGENTSTREAM_H

#include <jansson.h>

#include "../lib/buf.h"
#include "../lib/errinfo.h"
#include "registry.h"

/* Opens the stream on the agent of t. Returns the connected socket (the
 * caller closes it), with the agent's first line in *hello (a new
 * reference: {"ok":true,...}) and the stream bytes that came with it
 * appended to rest; or -1 with e (the agent's refusal passed on, 502 when
 * it cannot be reached or does not speak the protocol). */
int agentstream_open(const struct reg_target *t, const char *path, json_t **hello,
                     struct buf *rest, struct errinfo *e);

#endif
