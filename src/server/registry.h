/* The fleet registry: servers (hosts running an agent) with their extra
 * scrape targets, their online/offline state and its history, kept in the
 * metadata database. Any thread; one lock inside. */
#ifndef GF_REGISTRY_H
#define GF_REGISTRY_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "../lib/errinfo.h"

struct registry;

/* Opens (creating, migrating) DIR/gpufleet.db. NULL with err on failure. */
struct registry *reg_open(const char *path, char *err, size_t errlen);
void reg_close(struct registry *r);

/* Servers as JSON (the token is never returned, only agent_token_set).
 * Caller owns the returned reference. NULL + err when not found. */
json_t *reg_list(struct registry *r);
json_t *reg_get(struct registry *r, int64_t id, struct errinfo *err);

/* Creates a server from a JSON body; returns it as JSON, or NULL with err
 * naming the bad field (400) or the duplicate name (409). */
json_t *reg_create(struct registry *r, const json_t *body, struct errinfo *err);

/* Checks a body as reg_create would, without the database (no duplicate
 * check): 0, or -1 with err naming the field. */
int reg_validate(const json_t *body, struct errinfo *err);

/* Replaces the fields present in body (agent_token kept when absent). */
json_t *reg_update(struct registry *r, int64_t id, const json_t *body, struct errinfo *err);

int reg_delete(struct registry *r, int64_t id, struct errinfo *err);

/* A scrape target, as the scraper needs it. */
struct reg_target {
    int64_t server_id;
    char server[65];
    char job[65];
    char url[2049];
    char instance[300]; /* host:port of the URL */
    char token[513];    /* bearer token ("" for none) */
    int64_t interval_ms;
    int is_agent;
};

/* Every target of every server. *out is malloc'd. Returns the count. The
 * version changes whenever servers change, so a caller can skip re-reading. */
size_t reg_targets(struct registry *r, int64_t agent_interval_ms, int64_t exporter_interval_ms,
                   struct reg_target **out);
uint64_t reg_version(struct registry *r);

/* The registry is the one place a server's online/offline state lives (the
 * UI's snapshot reads it; changes are pushed through this hook). */
typedef void (*reg_status_fn)(void *arg, const char *server, const char *status,
                              const char *detail, int64_t since_ms);

/* Calls fn after every change of a server's state (from the changing
 * thread, no lock held). Set once, before the scraper starts. */
void reg_on_status(struct registry *r, reg_status_fn fn, void *arg);

/* Records the server's state, or the reason for it, when it changed (an
 * event row is written, and the hook told, with the time the state began). */
void reg_set_status(struct registry *r, int64_t server_id, int online, const char *detail,
                    int64_t now_ms);

/* Adds an event of another kind (a BMC's SEL entry: "sel") to the named
 * server's history. 0, or -1 when there is no such server. */
int reg_add_event(struct registry *r, const char *server, int64_t ts_ms, const char *kind, const char *detail);

/* The server's status changes, newest first. */
json_t *reg_events(struct registry *r, int64_t server_id, int limit, struct errinfo *err);

/* PRAGMA integrity_check of the metadata database. */
void reg_integrity(struct registry *r, char *out, size_t outlen);

#endif
