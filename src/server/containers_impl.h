/* What the files of the containers module share (containers.c: open,
 * rows, metrics; containers_ledger.c: quotas, placement, the GPU and port
 * ledgers; containers_act.c: create and actions; containers_reconcile.c:
 * the reconcile loop and the fleet's GPUs). Not for other modules:
 * containers.h is the interface. */
#ifndef GF_CONTAINERS_IMPL_H
#define GF_CONTAINERS_IMPL_H

#include <jansson.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdint.h>

#include "../lib/ctrspec.h"
#include "../lib/summary.h"
#include "containers.h"
#include "registry.h"

#define CTR_MAX_STMTS 16

struct ctr {
    struct server_app *app;
    struct ctr_config cfg;
    pthread_mutex_t lock; /* db and the fields below; never held across a call */
    sqlite3 *db;
    sqlite3 *ckpt;        /* the reconcile loop's, for WAL checkpoints only */
    json_t *conflicts;    /* what the last reconcile pass found wrong */
    /* statements of the decision, prepared once (lock held): see ctr_stmt */
    struct {
        const char *sql;
        sqlite3_stmt *st;
    } stmts[CTR_MAX_STMTS];
    size_t nstmts;
    /* everyone's list as rendered, and the database's count of changed
     * rows it was rendered at (ctr_list_text) */
    char *list_text;
    size_t list_len;
    sqlite3_int64 list_version;
    struct summary decisions; /* seconds each, lock held */
    /* the same decisions' CPU time: on a busy machine the two differ by the
     * time the thread was preempted or blocked on the disk */
    struct summary decisions_cpu;
    /* the reconcile loop */
    pthread_t thread;
    int running, stop;
    pthread_mutex_t wake_lock;
    pthread_cond_t wake;
};

/* A host that can take containers: its agent and its live figures. */
struct cand {
    struct reg_target agent;
    json_t *live; /* fleet_server_json: {"host":{...},"gpus":[...]}, may be NULL */
};

/* Bits of the host ports gpufleet or another program holds on a host. */
struct portset {
    uint8_t bits[2][65536 / 8]; /* [tcp, udp] */
};

/* What an action needs of a row: its host, engine id and spec. */
struct row {
    int64_t id, server_id;
    char server[65], engine_id[130], state[32];
    int holding;
    json_t *spec;
};

/* ---- containers.c ---- */
/* The statement of sql (a string literal: its address is the key),
 * prepared on first use and kept; reset and unbound, ready to bind. Lock
 * held; never finalize it. NULL when it does not prepare. */
sqlite3_stmt *ctr_stmt(struct ctr *c, const char *sql);
/* Tells browsers (live "containers" event) that containers changed. */
void ctr_announce(struct ctr *c);
/* A text column, "" for NULL. */
const char *ctr_col_text(sqlite3_stmt *st, int i);
/* One row as the API shows it; lock held. NULL with e (404) when not
 * visible to owner_id (0: all). */
json_t *ctr_get_locked(struct ctr *c, int64_t id, int64_t owner_id, struct errinfo *e);

/* ---- containers_quota.c ---- */
/* 409 quota_exceeded naming the limit and the use (admins have none);
 * the user's own limits where an admin set them. Lock held. */
int ctr_check_quota(struct ctr *c, const struct auth_identity *who, int ngpus, int64_t nano_cpus,
                    int64_t memory_bytes, struct errinfo *e);

/* ---- containers_ledger.c (lock held unless said) ---- */
/* Every agent with what its last scrape said (lock NOT held: the registry
 * and the fleet have locks of their own). Free with ctr_cands_free. */
struct cand *ctr_cands_read(struct ctr *c, size_t *n);
void ctr_cands_free(struct cand *v, size_t n);
/* The host for s and its GPUs (filling s->gpus): its index in v, or -1. */
int ctr_place(struct ctr *c, struct cand *v, size_t n, struct ctrspec *s, struct errinfo *e);
/* The row and its GPUs in one transaction: its id, or -1 with e. */
int64_t ctr_reserve(struct ctr *c, const struct auth_identity *who, const struct cand *h,
                    const struct ctrspec *s, const char *request, struct errinfo *e);
/* The host's listening ports, from its agent (lock NOT held). */
int ctr_host_ports(const struct reg_target *agent, struct portset *p, struct errinfo *e);
/* Host ports for s's ports, into the ledger and s. 0 or -1 with e. */
int ctr_assign_ports(struct ctr *c, int64_t server_id, int64_t id, struct ctrspec *s,
                     struct portset *p, struct errinfo *e);
void ctr_set_spec(struct ctr *c, int64_t id, const struct ctrspec *s);
/* engine_id NULL keeps the row's. */
void ctr_set_state(struct ctr *c, int64_t id, const char *engine_id, const char *state,
                   const char *detail);
void ctr_delete_row(struct ctr *c, int64_t id);
/* Gives back a container's GPUs and ports (stopped, or gone). */
void ctr_release(struct ctr *c, int64_t id);
/* What an action needs of a row (r->spec owned: json_decref). 0, or -1
 * with e (404). */
int ctr_row_read(struct ctr *c, int64_t id, int64_t owner_id, struct row *r, struct errinfo *e);
/* A stopped container takes back the same GPUs and ports (409 naming what
 * was given away). */
int ctr_retake(struct ctr *c, const struct row *r, struct errinfo *e);
/* New GPUs and ports on the same host, for a recreate. */
int ctr_renew(struct ctr *c, const struct row *r, struct ctrspec *s, struct cand *v, size_t n,
              struct errinfo *e);

#endif
