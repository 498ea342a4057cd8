/* Containers across the fleet: the GPU ledger (host, GPU UUID ->
 * container), the port ledger per host, quotas, placement, and the
 * reconcile loop that compares the database with each host's engine. The
 * ledgers are decided under one short lock that is never held across a
 * call to an agent, so a slow host never stalls anyone else's create. */
#ifndef GF_CONTAINERS_H
#define GF_CONTAINERS_H

#include <jansson.h>
#include <stdint.h>

#include "../lib/errinfo.h"
#include "auth.h"
#include "server.h"
#include "registry.h"

struct ctr_config {
    unsigned port_lo, port_hi;  /* host ports handed out */
    char host_ip[64];           /* address host ports are bound to */
    int64_t default_nano_cpus, default_memory_bytes;
    /* per user (admins have none): containers, GPUs held, CPUs held (in
     * 1e-9 CPUs), memory held */
    int64_t quota_containers, quota_gpus, quota_nano_cpus, quota_memory_bytes;
    int spread;                 /* placement: 0 binpack, 1 spread */
    int64_t reconcile_ms;
};

struct ctr;

/* Fills cfg from the server's settings. 0, or -1 with err naming one. */
int ctr_config_from(const struct server_options *o, struct ctr_config *cfg, char *err,
                    size_t errlen);

/* Takes the live settings of o (the defaults of a container's CPUs and
 * memory, the default quotas, the placement) for the next decisions:
 * settings_update calls it, so they need no restart. */
void ctr_set_limits(struct ctr *c, const struct server_options *o);

/* Opens (creating, migrating) the database at path. NULL with err. */
struct ctr *ctr_open(const char *path, struct server_app *app, const struct ctr_config *cfg,
                     char *err, size_t errlen);
/* Stops the reconcile loop and closes. */
void ctr_close(struct ctr *c);

/* Starts the reconcile loop (a pass at once, then every reconcile_ms). */
int ctr_start(struct ctr *c);

/* One reconcile pass over every host (tests and the loop). */
void ctr_reconcile(struct ctr *c);

/* Creates and starts a container for who from a user's request (see
 * ctrspec): quotas, placement, GPUs and host ports decided, then the host's
 * engine asked. The container as ctr_get shows it, or NULL with e (400
 * naming the field, 404 host, 409 quota or no room naming the limit and
 * its use, 502 the host). */
json_t *ctr_create(struct ctr *c, const struct auth_identity *who, const json_t *body,
                   struct errinfo *e);

/* An app's container (the apps module): as ctr_create, with the app's
 * folder mounted at /app, its compose file and labels (ctrspec's app) and
 * the user it runs as ("UID[:GID]", "" : the image's). */
json_t *ctr_create_app(struct ctr *c, const struct auth_identity *who, const json_t *body, const char *app,
                       const char *user, struct errinfo *e);

/* Where ctr_create would put body now (quotas and placement decided as it
 * does, nothing reserved): the host's name into host. 0, or -1 with e as
 * ctr_create's. */
int ctr_pick_host(struct ctr *c, const struct auth_identity *who, const json_t *body, char *host, size_t hostlen,
                  struct errinfo *e);

/* Quotas (containers_quota.c). The caller's limits and use:
 * {"user","use","limits" (null for admins),"own_limits","unlimited"}. */
json_t *ctr_quota_of(struct ctr *c, const struct auth_identity *who);
/* {"defaults":{...},"users":[{"user","user_id","containers","gpus","cpus",
 * "memory_bytes" (null: the setting),"updated_ms"}]}. */
json_t *ctr_quotas(struct ctr *c);
/* Gives a user limits of their own: body {"containers","gpus","cpus",
 * "memory"}, each a number (memory also "64g") or null/absent for the
 * setting. 0, or -1 with e (400 naming the field). */
int ctr_quota_set(struct ctr *c, int64_t user_id, const char *username, const json_t *body,
                  struct errinfo *e);
/* Back to the settings' limits. 0, or -1 with e (404: none of their own). */
int ctr_quota_delete(struct ctr *c, int64_t user_id, struct errinfo *e);

/* Containers visible to owner_id (0: all), newest first. New reference. */
json_t *ctr_list(struct ctr *c, int64_t owner_id);
/* The list as the API's answer {"containers":[...]}, rendered once per
 * change for owner_id 0. A new string (free it), or NULL. */
char *ctr_list_text(struct ctr *c, int64_t owner_id, size_t *len);

/* One container (404 when it is not owner_id's, unless owner_id is 0). */
json_t *ctr_get(struct ctr *c, int64_t id, int64_t owner_id, struct errinfo *e);

/* start, stop, restart or recreate. Stop releases the container's GPUs and
 * ports; start takes the same ones back (409 naming the holder when one was
 * given away since: recreate takes free ones). 0 or -1 with e. */
int ctr_act(struct ctr *c, int64_t id, int64_t owner_id, const char *action, struct errinfo *e);

/* Removes the container from its host and releases what it held. */
int ctr_remove(struct ctr *c, int64_t id, int64_t owner_id, struct errinfo *e);

/* Its usage now, from the host's engine. */
/* Where container id runs, for streams from it (logs, terminal): its
 * host's agent, its engine id and its name. owner_id as for ctr_get.
 * 0, or -1 with e (404 not yours or no such, 409 no engine container). */
int ctr_locate(struct ctr *c, int64_t id, int64_t owner_id, struct reg_target *agent,
               char *engine_id, size_t idlen, char *name, size_t namelen, struct errinfo *e);

json_t *ctr_stats(struct ctr *c, int64_t id, int64_t owner_id, struct errinfo *e);

/* Every GPU of the fleet with its holder: {"gpus":[{"server","uuid",
 * "index","model","fb_total_mib","util_percent","holder":{...}|null}],
 * "conflicts":[...]}. New reference. */
json_t *ctr_gpus(struct ctr *c);

/* Containers the hosts' engines have that gpufleet did not make:
 * [{"server", ...engine fields}]. New reference. */
json_t *ctr_unmanaged(struct ctr *c, struct errinfo *e);

/* An admin's start, stop, restart or remove of a container gpufleet did
 * not make, on the server named server (by its engine id or name). 0 or -1
 * with e. The ledgers do not change: it holds nothing in them. */
int ctr_unmanaged_act(struct ctr *c, const char *server, const char *engine_id, const char *action,
                      struct errinfo *e);

/* For /metrics: containers by state, GPUs held, the ledger decisions' times
 * (recent quantiles, count, sum, the slowest). */
void ctr_metrics(struct ctr *c, struct buf *out);

/* PRAGMA integrity_check of the containers database. */
void ctr_integrity(struct ctr *c, char *out, size_t outlen);

#endif
