/* What the files of the apps module share (apps.c: the database, rows,
 * installs and actions; apps_run.c: the jobs and the health loop;
 * apps_tpl.c: the templates). Not for other modules: apps.h is the
 * interface. */
#ifndef GF_APPS_IMPL_H
#define GF_APPS_IMPL_H

#include <jansson.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>

#include "apps.h"
#include "auth.h"

#define APPS_MAX_JOBS 16 /* installs, reinstalls and updates at once */

enum { JOB_INSTALL, JOB_REINSTALL, JOB_UPDATE, JOB_IMPORT };

/* An import's files: an export's tar (the job's once it starts). */
struct app_files {
    FILE *f;
    long long size;
    char commit[41];
};

/* What only memory holds of an app: its job and its probes. */
struct app_live {
    char name[64];
    int busy;          /* a job runs for it */
    json_t *progress;  /* the job's, or NULL */
    int fails;         /* probes in a row that found it RUNNING and not answering */
    int64_t said_ms;   /* when its progress was last pushed */
};

struct apps {
    struct server_app *app;
    pthread_mutex_t lock; /* db, live, cfg; never held across a call to an agent */
    sqlite3 *db;
    struct {
        char image[256];
        long uid;
        int allow_root;
        int64_t health_timeout_s, probe_ms;
    } cfg;
    struct app_live *live;
    size_t nlive;
    /* the health loop and the jobs */
    pthread_t thread;
    int running, stop, jobs, poke; /* poke: probe now (an app started) */
    pthread_cond_t wake, jobs_done;
    uint64_t probes, installs_done, installs_failed;
};

/* An app's row: what the jobs and the loop need. */
struct app_row {
    int64_t id, owner_id, container_id, health_since_ms;
    int owner_role, host_port;
    char name[64], owner[65], server[65], commit[41], phase[16], desired[16], health[16], detail[600];
    json_t *spec; /* the app (appspec_parse's *app) */
    json_t *ctr;  /* the body its container is made from */
    json_t *secret; /* a private repository's {"username","password"}, or NULL */
};

/* ---- apps.c (lock held unless said) ---- */
struct app_live *apps_live(struct apps *a, const char *name);
/* The row of name (visible to owner_id, 0: all). 0, or -1 with e (404).
 * Free with apps_row_free. */
int apps_row_read(struct apps *a, const char *name, int64_t owner_id, struct app_row *r, struct errinfo *e);
void apps_row_free(struct app_row *r);
/* Sets the health (and since, when it changes or anew is set), detail and
 * log tail (NULL: kept). */
void apps_set_health(struct apps *a, const char *name, const char *health, const char *detail, const char *log_tail,
                     int anew);
/* Pushes the app's row (as apps_get shows it) to the browsers of its owner
 * and those who see all. Lock NOT held. */
void apps_announce(struct apps *a, const char *name);

/* ---- apps_run.c ---- */
/* Starts a job for the app (its live entry marked busy by the caller);
 * ref NULL keeps the app's; auth NULL keeps its credentials, else (the
 * job's, JSON null for none) they replace them once the job succeeds;
 * files (JOB_IMPORT) becomes the job's on success. 0, or -1 with e (503
 * when too many run). Lock NOT held. */
int apps_job_start(struct apps *a, const char *name, int kind, const char *ref, json_t *auth,
                   struct app_files *files, struct errinfo *e);
void *apps_health_main(void *arg);

/* ---- apps_tpl.c ---- */
/* The built-in templates, put in once when the database is made. */
void apps_seed_templates(struct apps *a);

#endif
