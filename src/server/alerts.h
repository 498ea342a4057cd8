/* Alerting: rules over stored series evaluated on a timer, per-series
 * states (inactive -> pending -> firing -> resolved, as Prometheus has
 * them) kept in DATA/alerts.db so they survive a restart, acknowledgement,
 * silences, and webhook notifications (Alertmanager's webhook payload,
 * version 4) retried with backoff, each attempt logged.
 * One evaluator thread and one notifier thread; API calls from any thread. */
#ifndef GF_ALERTS_H
#define GF_ALERTS_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "../lib/errinfo.h"

struct tsdb;
struct alerts;

struct alerts_config {
    int64_t eval_interval_ms;   /* 5000 */
    const char *rules_file;     /* optional YAML file of rules (read at start) */
    int default_rules;          /* load the built-in rule pack */
    const char *external_url;   /* this server's URL, for generatorURL */
    /* notifications: alerts with the same values of group_by labels
     * ("alertname,server") go out together, group_wait after the first,
     * group_interval after the previous; firing ones again every
     * repeat_interval */
    const char *group_by;
    int64_t group_wait_ms, group_interval_ms, repeat_interval_ms;
    int64_t history_days;       /* resolved alerts and notification logs kept (90) */
    /* every state change and ack as a JSON event, for live push */
    void (*on_event)(void *arg, const char *json, size_t len);
    void *event_arg;
};

/* ---- rules (validation shared by the file, the API and the fuzzer) ---- */

/* Checks a rules document ({"rules":[...]} as YAML text). 0, or -1 with err
 * naming the rule and the field ("rules[2] (GpuHot).threshold: ..."). */
int alert_rules_check_yaml(const char *text, size_t len, struct errinfo *err);

/* Renders a template: {{ $labels.NAME }}, {{ $value }}, {{ $host }}. The
 * result is malloc'd. */
char *alert_template(const char *tmpl, const json_t *labels, double value);

/* ---- the engine ---- */

/* Opens DATA/alerts.db at path, loads rules (built-in pack, file, stored)
 * and states, and starts the threads. NULL with err (a bad rules file is
 * an error naming the rule and field). */
struct alerts *alerts_start(const char *path, const struct alerts_config *cfg, struct tsdb *db,
                            char *err, size_t errlen);
void alerts_stop(struct alerts *al);

/* Runs one evaluation round now (tests, benchmarks). Returns the number of
 * series evaluated. */
size_t alerts_eval_now(struct alerts *al, int64_t now_ms);

/* The engine's health as {"evaluator":{status, detail, rules, last_round_ms,
 * round_ms, failing:[{rule, error}]}, "notifications":{status, detail,
 * queued, failing:[{receiver, error, http_status, ts_ms}]}}: status "ok",
 * "degraded" (rules that cannot be evaluated, receivers whose last attempt
 * failed) or "down" (no round for three intervals). New reference. */
json_t *alerts_health(struct alerts *al, int64_t now_ms);

/* Rules: list, create (from JSON), update, delete. */
json_t *alerts_rules_list(struct alerts *al);
json_t *alerts_rule_get(struct alerts *al, int64_t id, struct errinfo *err);
json_t *alerts_rule_create(struct alerts *al, const json_t *body, struct errinfo *err);
/* What a rule (a create's body) would see at now, changing nothing:
 * {"series": N, "firing": F, "matches": [{labels, value, fires}, ...]}
 * (those past the threshold first, at most 50), or NULL with err. */
json_t *alerts_rule_preview(struct alerts *al, const json_t *body, int64_t now, struct errinfo *err);
/* Takes an acknowledgement back: the alert is notified again as if never
 * acknowledged. 404 unless it is firing and acknowledged. */
json_t *alerts_unack(struct alerts *al, int64_t id, struct errinfo *err);
json_t *alerts_rule_update(struct alerts *al, int64_t id, const json_t *body, struct errinfo *err);
int alerts_rule_delete(struct alerts *al, int64_t id, struct errinfo *err);

/* Alerts: state=pending|firing|resolved|active (pending+firing), newest
 * first. */
json_t *alerts_list(struct alerts *al, const char *state, int limit);
json_t *alerts_ack(struct alerts *al, int64_t id, const char *by, const char *comment,
                   struct errinfo *err);

/* Silences: {"matchers":{"label":"value",...}, "starts_at"?, "ends_at" |
 * "duration", "comment"} by creator. */
json_t *alerts_silence_create(struct alerts *al, const json_t *body, const char *by,
                              struct errinfo *err);
json_t *alerts_silences_list(struct alerts *al);
int alerts_silence_delete(struct alerts *al, int64_t id, struct errinfo *err);

/* Receivers: {"name", "type": "webhook" (Alertmanager payload) | "slack"
 * ({"text"}) | "email", "url"}; email adds "from", "to", "username",
 * "password" (write-only), "tls" (starttls | none), "ca_file"; its url is
 * smtp://HOST:PORT or smtps://HOST:PORT. */
/* Notification routes (alert_routes.c): {"routes": [{"matchers",
 * "receivers", "continue"}], "default_receivers": [...]}; set replaces the
 * list (each checked: matchers parse, receivers exist). */
json_t *alerts_routes_get(struct alerts *al);
json_t *alerts_routes_set(struct alerts *al, const json_t *body, struct errinfo *err);
/* A routes body's checks against these receiver names (no database). */
int alert_routes_check(const json_t *body, const json_t *receiver_names, struct errinfo *e);

json_t *alerts_receivers_list(struct alerts *al);
json_t *alerts_receiver_create(struct alerts *al, const json_t *body, struct errinfo *err);
/* Replaces a receiver's fields (checked as a create's; an email password
 * left out is kept). 404 when absent; 409 for a new name a route still
 * sends to under the old one, or a name another receiver has. */
json_t *alerts_receiver_update(struct alerts *al, int64_t id, const json_t *body, struct errinfo *err);
int alerts_receiver_delete(struct alerts *al, int64_t id, struct errinfo *err);
/* Sends a test notification now; 0 when the receiver answered 2xx. */
int alerts_receiver_test(struct alerts *al, int64_t id, struct errinfo *err);

/* The notification log (every attempt), newest first. */
json_t *alerts_notifications(struct alerts *al, int limit);

#endif
