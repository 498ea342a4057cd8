/* Calls to an agent's token-protected API (container control): blocking
 * libcurl calls from the caller's thread, never under a lock others need. */
#ifndef GF_AGENTCALL_H
#define GF_AGENTCALL_H

#include <jansson.h>
#include <stdio.h>

#include "../lib/errinfo.h"
#include "registry.h"

/* method path on the agent of t (body may be NULL). The answer's JSON (a
 * new reference), or NULL with e: the agent's own error passed on (its
 * status, code, field and message), or 502 when it cannot be reached. */
json_t *agentcall(const struct reg_target *t, const char *method, const char *path,
                  const json_t *body, long timeout_s, struct errinfo *e);

/* method path on the agent with the size bytes of f as the body (an
 * upload's tar, a build's context). As agentcall otherwise. */
json_t *agentcall_send_file(const struct reg_target *t, const char *method, const char *path, FILE *f,
                            long long size, long timeout_s, struct errinfo *e);

/* The agent's refusal (status >= 300, its {"error":{"code","field",
 * "message"}} answer in body) into e, as agentcall reports it. */
void agentcall_refusal(long status, const char *body, size_t len, struct errinfo *e);

/* The agent of the server named name (or with id server_id when name is
 * NULL). 0, or -1 with e (404 naming field). */
int agentcall_find(struct registry *r, const char *name, int64_t server_id, const char *field,
                   struct reg_target *out, struct errinfo *e);

#endif
