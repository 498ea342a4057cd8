/* What the files of the alert engine share (alerts.c: start, stop, alerts
 * and silences; alert_rules.c: rules; alert_eval.c: evaluation and states;
 * alert_notify.c: grouping, receivers and delivery). Not for other modules:
 * alerts.h is the engine's interface. */
#ifndef GF_ALERTS_IMPL_H
#define GF_ALERTS_IMPL_H

#include <jansson.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdint.h>

#include "alerts.h"
#include "promql/promql.h"
#include "store/agg.h"
#include "store/selector.h"
#include "store/tsdb.h"

#define MAX_RULES 1000
#define MAX_SERIES_PER_RULE 20000
#define STALE_MS (5 * 60000)
#define MAX_ATTEMPTS 6

/* A rule's comparison of its value with the threshold. */
enum op { OP_GT, OP_GE, OP_LT, OP_LE, OP_EQ, OP_NE };

struct rule {
    int64_t id;
    char name[65];
    char source[8];
    json_t *body;
    struct promql_expr *expr; /* a PromQL rule (expr:): each element it gives is an alert */
    struct selector sel;
    enum agg_fn agg;
    int op;
    double threshold;
    int64_t window_ms, for_ms;
    char severity[17];
    char error[300]; /* why the last evaluation failed; "" when it did not */
    /* the series the selector matched, kept until the store's series
     * change (or a minute passes) */
    struct tsdb_series_info *ser;
    size_t nser;
    uint64_t ser_count;
    int64_t ser_ms;
};

struct active {
    int64_t id; /* row in alerts */
    char *rule;
    char *series;
    json_t *labels, *annotations;
    int firing;
    double value;
    int64_t active_ms, fired_ms;
    int seen;
};

/* One delivery to one receiver (retried until it is taken). */
struct note {
    struct note *next;
    int64_t alert_id, due_ms;
    int attempt;
    char receiver[65], type[16], url[2049];
    json_t *config; /* email: from, to, username, password, ca_file */
    char *payload;  /* JSON (webhook, slack) or a whole message (email) */
    char *subject;
    char status[12];
};

/* An alert as a group holds it until its next notification. */
struct group_alert {
    int64_t id;
    int firing;
    int acked; /* someone is on it: no repeats for it */
    json_t *labels, *annotations;
    int64_t starts_ms, ends_ms;
};

/* Alerts notified together: same values of the group_by labels. */
struct notify_group {
    struct notify_group *next;
    char *key;
    json_t *group_labels;
    struct group_alert *a;
    size_t n;
    int dirty;
    int64_t flush_ms, last_flush_ms;
};

struct alerts {
    struct alerts_config cfg;
    char *external_url;
    struct tsdb *db;
    sqlite3 *meta;
    pthread_mutex_t lock; /* rules, actives, meta */
    struct rule *rules;
    size_t nrules;
    struct active *act;
    size_t nact, capact;
    pthread_t eval_thread, note_thread;
    pthread_mutex_t qlock;
    pthread_cond_t qcond;
    struct note *queue;
    struct notify_group *groups; /* under qlock */
    json_t *group_by;            /* label names from cfg.group_by */
    int64_t pruned_ms;
    int64_t started_ms, last_round_ms, round_ms; /* the last round: when, how long */
    int stop;
};

/* ---- alerts.c ---- */

/* Compact JSON with sorted keys (malloc'd; "{}" when it cannot be written):
 * how alerts.db stores label sets and how groups are keyed. */
char *alert_dumps(const json_t *j);

/* Deletes the row of sql ("... WHERE id = ?"); 404 naming what when none. */
int alert_delete_row(struct alerts *al, const char *sql, int64_t id, const char *what,
                     struct errinfo *err);

/* ---- alert_rules.c ---- */

extern const char alert_default_rules[];
int alert_rules_setup(struct alerts *al, char *err, size_t errlen);
/* Replaces the rules of a source (file, default) with those of a document. */
int alert_rules_install(struct alerts *al, const char *source, const char *text, size_t len,
                        char *err, size_t errlen);
/* Reads every stored rule into memory (lock held). */
void alert_rules_load(struct alerts *al);
void alert_rules_free(struct alerts *al);

/* ---- alert_eval.c ---- */

/* A rule's matches at now without storing or notifying (alerts_rule_preview). */
json_t *alert_eval_preview(struct alerts *al, struct rule *r, int64_t now, struct errinfo *err);
/* Acknowledged alerts are notified again from now (alerts_unack). */
void alert_notify_unacked(struct alerts *al, int64_t id);

/* ---- alert_routes.c ---- */

struct route_set;
/* The routes as stored, parsed (main lock held); NULL is "no routes". */
struct route_set *alert_routes_load(struct alerts *al);
void alert_routes_free(struct route_set *rs);
/* Whether an alert with these labels goes to receiver. */
int alert_routed(const struct route_set *rs, const json_t *labels, const char *receiver);
/* The position of the first route naming receiver (its matchers in route),
 * or -1. Main lock held. */
int alert_routes_naming(struct alerts *al, const char *receiver, char *route, size_t n);

/* The evaluator thread: a round every eval_interval_ms. */
void *alert_eval_main(void *arg);
/* Pending and firing alerts of alerts.db back into memory (at start). */
void alert_states_load(struct alerts *al);
void alert_active_drop(struct alerts *al, struct active *a);

/* ---- alert_notify.c ---- */

/* An alert changed (firing, resolved): into its group, to be notified at
 * the group's next flush. Called with the main lock held. */
void alert_notify(struct alerts *al, int64_t id, int firing, const json_t *labels,
                  const json_t *annotations, int64_t starts_ms, int64_t ends_ms, int64_t now);
/* The changes alert_notify kept in alerts.db that no notification told
 * yet (a crash in group_wait), back into their groups. At start. */
void alert_waiting_load(struct alerts *al);
/* An acknowledged alert is not repeated. */
void alert_notify_acked(struct alerts *al, int64_t id);
/* The notifier thread. */
void *alert_note_main(void *arg);
void alert_note_free(struct note *n);
void alert_group_alert_free(struct group_alert *g);
int alert_printable(const char *s, size_t max);

#endif
