/* The audit log: one row per change made through the server (who, role,
 * from where, what, to what, with what result), in DATA/audit.db. Rows are
 * only ever added, and removed by retention; nothing offers to edit them.
 * Any thread; one lock inside. */
#ifndef GF_AUDIT_H
#define GF_AUDIT_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "registry.h"

struct audit;

/* Opens (creating, migrating) path; rows older than retention_days are
 * pruned at open and hourly after. NULL with err. */
struct audit *audit_open(const char *path, int64_t retention_days, char *err, size_t errlen);
void audit_close(struct audit *au);

struct audit_entry {
    int64_t ts_ms;
    int64_t user_id;      /* 0: nobody identified */
    const char *username; /* "" when anonymous */
    const char *role;
    const char *source;   /* client address */
    const char *action;   /* "server.create", "auth.login", ... */
    const char *target;   /* "server:3", "user:alice", "" */
    const char *result;   /* "ok", "failed", "denied" */
    int status;           /* HTTP status */
    json_t *details;      /* borrowed; may be NULL; never holds secrets */
};

/* Appends one row. 0, or -1 (logged). A row by nobody identified
 * (user_id 0) counts against its source's and the total budget of such
 * rows per minute; past it, and for every throttled attempt (status 429),
 * it is counted into one "audit.suppressed" row per source and minute. */
int audit_write(struct audit *au, const struct audit_entry *e);

struct audit_filter {
    const char *username, *action, *target; /* exact; action "x.*" matches a prefix */
    int64_t since_ms, until_ms;             /* 0: open */
    int64_t before_id;                      /* paging: rows with id < this; 0: newest */
    int limit;
};

/* Newest first: {"entries":[...], "next_before_id": N or null}. */
json_t *audit_query(struct audit *au, const struct audit_filter *f);

/* Deletes rows older than the retention. Returns how many. */
int64_t audit_prune(struct audit *au, int64_t now_ms);

#endif
