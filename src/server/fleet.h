/* The live state of the fleet for the web UI: what each agent's latest
 * scrape said about its host and GPUs, kept as the store writer hands
 * batches over, and the changes pushed to browsers as small deltas. */
#ifndef GF_FLEET_H
#define GF_FLEET_H

#include <jansson.h>
#include <stdint.h>

#include "ingest.h"

struct fleet;

/* Called with each message of deltas (JSON text, valid only during the
 * call), from the fleet's own thread, at most every 250 ms. */
typedef void (*fleet_push_fn)(void *arg, const char *json, size_t len);

/* A fleet state that hands its deltas to push (may be NULL). */
struct fleet *fleet_new(fleet_push_fn push, void *push_arg);
void fleet_free(struct fleet *f);

/* Takes in one stored batch; only scrapes of job "gpufleet-agent" count.
 * A batch that changed something makes one delta, {"seq":N,"server":NAME,
 * "ts_ms":T, ["host":{changed}], ["gpus":[{"uuid":U,
 * changed...}]]}; deltas leave in messages {"type":"fleet","deltas":[...]}.
 * Writer thread only. */
void fleet_ingest(struct fleet *f, const struct ingest_batch *b);

/* A server's online/offline state changed in the registry (the one place
 * it lives): a delta {"seq","server","status","last_error",
 * "status_since_ms"} goes out with the others. Any thread. */
void fleet_status(struct fleet *f, const char *server, const char *status, const char *detail,
                  int64_t since_ms);

/* The live figures of one server as {"ts_ms","host","gpus"}, or NULL
 * when no scrape of it was seen. New reference; any thread. */
json_t *fleet_server_json(struct fleet *f, const char *server);

/* What the server's agent said of itself in its last good scrape: its
 * version (gpufleet_agent_info) into version ("" when it did not say) and
 * the scrape's time. 0, or -1 when no good scrape of it was seen. */
int fleet_agent(struct fleet *f, const char *server, char *version, size_t cap, int64_t *ts_ms);

/* The sequence number of the last delta (a snapshot at seq S is followed by
 * the deltas numbered above S). Any thread. */
uint64_t fleet_seq(struct fleet *f);

/* Forgets a server (it was removed from the registry). Any thread. */
void fleet_forget(struct fleet *f, const char *server);


#endif
