/* The host's bound sockets (/proc/net/{tcp,tcp6,udp,udp6}), so the server
 * never hands a container a host port another program holds. */
#ifndef GF_AGENT_PORTS_H
#define GF_AGENT_PORTS_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

/* Local ports of the sockets in one /proc/net/tcp-style table: listening
 * ones for TCP (state 0A), bound ones for UDP (state 07). Writes at most
 * max ports into out; returns how many were found (all, even past max). */
size_t ports_parse(char *text, size_t len, int udp, uint16_t *out, size_t max);

/* {"tcp":[ports...],"udp":[ports...]} of the host under proc_root, sorted
 * and without repeats. New reference. */
json_t *ports_listening(const char *proc_root);

#endif
