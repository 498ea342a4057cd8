/* Notifications: alerts grouped by labels, payloads for webhooks, Slack
 * and email, receivers, and delivery with retries, each attempt logged. */
#include "alerts_impl.h"

#include <curl/curl.h>
#include <math.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../lib/buf.h"
#include "../lib/log.h"
#include "../lib/now.h"
#include "../lib/xalloc.h"
#include "../lib/hash.h"
#include "../lib/timefmt.h"
#include "store/db.h"

static json_t *common(const struct group_alert *a, size_t n, int annotations)
{
    json_t *c = json_deep_copy(annotations ? a[0].annotations : a[0].labels);
    const char *k;
    json_t *v, *tmp;
    json_object_foreach_safe(c, tmp, k, v)
    {
        for (size_t i = 1; i < n; i++)
            if (!json_equal(v, json_object_get(annotations ? a[i].annotations : a[i].labels, k))) {
                json_object_del(c, k);
                break;
            }
    }
    return c;
}

static void fingerprint(const json_t *labels, char out[17])
{
    char *lt = alert_dumps(labels);
    snprintf(out, 17, "%016llx", (unsigned long long)hash_bytes(lt, strlen(lt)));
    free(lt);
}

/* Alertmanager's webhook payload, version 4, for a group's alerts. */
static char *am_payload(struct alerts *al, const char *receiver, const json_t *group_labels,
                        const struct group_alert *a, size_t n)
{
    char s[40], e[40], fp[17], gk[512];
    json_t *alerts = json_array();
    int firing = 0;
    size_t off = 0;

    for (size_t i = 0; i < n; i++) {
        firing |= a[i].firing;
        timefmt_rfc3339(a[i].starts_ms, s, sizeof(s));
        timefmt_rfc3339(a[i].firing ? 0 : a[i].ends_ms, e, sizeof(e));
        fingerprint(a[i].labels, fp);
        json_array_append_new(alerts, json_pack("{s:s, s:O, s:O, s:s, s:s, s:s, s:s}", "status",
                                                a[i].firing ? "firing" : "resolved", "labels", a[i].labels,
                                                "annotations", a[i].annotations, "startsAt", s, "endsAt", e,
                                                "generatorURL", al->external_url, "fingerprint", fp));
    }
    /* Alertmanager's form: {route matchers}:{group labels} */
    const char *k;
    json_t *v;
    off += (size_t)snprintf(gk, sizeof(gk), "{}:{");
    json_object_foreach((json_t *)group_labels, k, v)
        if (off < sizeof(gk))
            off += (size_t)snprintf(gk + off, sizeof(gk) - off, "%s%s=\"%.100s\"", off > 4 ? "," : "", k,
                                    json_string_value(v) ? json_string_value(v) : "");
    if (off < sizeof(gk))
        snprintf(gk + off, sizeof(gk) - off, "}");
    json_t *p = json_pack("{s:s, s:s, s:i, s:s, s:s, s:O, s:o, s:o, s:s, s:o}", "version", "4",
                          "groupKey", gk, "truncatedAlerts", 0, "status", firing ? "firing" : "resolved",
                          "receiver", receiver, "groupLabels", group_labels, "commonLabels",
                          common(a, n, 0), "commonAnnotations", common(a, n, 1), "externalURL",
                          al->external_url, "alerts", alerts);
    char *text = alert_dumps(p);
    json_decref(p);
    return text;
}

/* "[FIRING:2] GpuHot" and one line per alert, for chat and mail. */
static char *human_text(const json_t *group_labels, const struct group_alert *a, size_t n, char **subject)
{
    struct buf b;
    size_t nf = 0;
    for (size_t i = 0; i < n; i++)
        nf += (size_t)a[i].firing;
    const char *name = json_string_value(json_object_get(group_labels, "alertname"));
    char subj[300];
    if (nf)
        snprintf(subj, sizeof(subj), "[FIRING:%zu] %s", nf, name ? name : "alerts");
    else
        snprintf(subj, sizeof(subj), "[RESOLVED] %s", name ? name : "alerts");
    *subject = xstrdup(subj);
    buf_init(&b, 1 << 20);
    buf_printf(&b, "%s\n", subj);
    for (size_t i = 0; i < n; i++) {
        const char *sum = json_string_value(json_object_get(a[i].annotations, "summary"));
        buf_printf(&b, "- %s: %s (", a[i].firing ? "firing" : "resolved", sum ? sum : "");
        const char *k;
        json_t *v;
        int first = 1;
        json_object_foreach(a[i].labels, k, v)
        {
            if (!strcmp(k, "alertname"))
                continue;
            buf_printf(&b, "%s%s=%s", first ? "" : ", ", k, json_string_value(v) ? json_string_value(v) : "");
            first = 0;
        }
        buf_puts(&b, ")\n");
    }
    size_t len;
    char *t = buf_detach(&b, &len);
    return t ? t : xstrdup("");
}

/* The SMTP message (headers and body) for one email receiver. */
static char *mail_message(const json_t *cfg, const char *subject, const char *text)
{
    char date[64];
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S +0000", &tm);
    struct buf b;
    buf_init(&b, 1 << 20);
    buf_printf(&b, "Date: %s\r\nFrom: %s\r\nTo: %s\r\nSubject: %s\r\nMIME-Version: 1.0\r\n"
                   "Content-Type: text/plain; charset=utf-8\r\n\r\n",
               date, json_string_value(json_object_get(cfg, "from")),
               json_string_value(json_object_get(cfg, "to")), subject);
    /* a line that is just "." would end the message early */
    for (const char *p = text; *p;) {
        size_t n = strcspn(p, "\n");
        if (*p == '.')
            buf_putc(&b, '.');
        /* label values come from exporters: no bare CR or other controls
         * into the SMTP stream */
        for (size_t i = 0; i < n; i++)
            buf_putc(&b, (unsigned char)p[i] < 0x20 && p[i] != '\t' ? ' ' : p[i]);
        buf_puts(&b, "\r\n");
        p += n + (p[n] == '\n');
    }
    size_t len;
    char *m = buf_detach(&b, &len);
    return m ? m : xstrdup("");
}

static void push_note(struct alerts *al, struct note *n)
{
    n->next = al->queue;
    al->queue = n;
}

/* Builds one delivery per receiver for a group's alerts. Called with
 * qlock held; reads the receivers under the main lock's database. */
void alert_deliver(struct alerts *al, const json_t *group_labels, const struct group_alert *all, size_t nall,
                    const char *status, json_t *receivers, const struct route_set *routes)
{
    size_t i;
    json_t *r;
    struct group_alert *a = xcalloc(nall + 1, sizeof(*a));
    json_array_foreach(receivers, i, r)
    {
        /* the group's alerts routed to this receiver (shallow copies) */
        const char *rname = json_string_value(json_object_get(r, "name"));
        size_t n = 0;
        for (size_t k = 0; k < nall; k++)
            if (alert_routed(routes, all[k].labels, rname))
                a[n++] = all[k];
        if (!n)
            continue;
        struct note *nt = xcalloc(1, sizeof(*nt));
        const char *type = json_string_value(json_object_get(r, "type"));
        snprintf(nt->receiver, sizeof(nt->receiver), "%s", json_string_value(json_object_get(r, "name")));
        snprintf(nt->type, sizeof(nt->type), "%s", type);
        snprintf(nt->url, sizeof(nt->url), "%s", json_string_value(json_object_get(r, "url")));
        snprintf(nt->status, sizeof(nt->status), "%s", status);
        nt->alert_id = a[0].id;
        nt->config = json_incref(json_object_get(r, "config"));
        if (!strcmp(type, "webhook")) {
            nt->payload = am_payload(al, nt->receiver, group_labels, a, n);
        } else {
            char *subject, *text = human_text(group_labels, a, n, &subject);
            if (!strcmp(type, "slack")) {
                json_t *j = json_pack("{s:s}", "text", text);
                nt->payload = alert_dumps(j);
                json_decref(j);
            } else {
                nt->payload = mail_message(nt->config, subject, text);
            }
            nt->subject = subject;
            free(text);
        }
        push_note(al, nt);
    }
    free(a);
}

static json_t *receivers_snapshot(struct alerts *al)
{
    json_t *arr = json_array();
    json_error_t jerr;
    sqlite3_stmt *st = db_prepare(al->meta, "SELECT name, type, url, config FROM receivers ORDER BY id");
    while (st && sqlite3_step(st) == SQLITE_ROW) {
        json_t *cfg = json_loads((const char *)sqlite3_column_text(st, 3), 0, &jerr);
        json_array_append_new(arr, json_pack("{s:s, s:s, s:s, s:o}", "name", (const char *)sqlite3_column_text(st, 0),
                                             "type", (const char *)sqlite3_column_text(st, 1), "url",
                                             (const char *)sqlite3_column_text(st, 2), "config",
                                             cfg ? cfg : json_object()));
    }
    sqlite3_finalize(st);
    return arr;
}

void alert_group_alert_free(struct group_alert *g)
{
    json_decref(g->labels);
    json_decref(g->annotations);
}

/* Puts an alert's change into its group (lock order: main, then qlock). */
static void group_add(struct alerts *al, int64_t id, int firing, const json_t *labels,
                      const json_t *annotations, int64_t starts_ms, int64_t ends_ms, int64_t now)
{
    json_t *gl = json_object();
    size_t i;
    json_t *name;
    json_array_foreach(al->group_by, i, name)
    {
        json_t *v = json_object_get(labels, json_string_value(name));
        json_object_set_new(gl, json_string_value(name), v ? json_incref(v) : json_string(""));
    }
    char *key = alert_dumps(gl);
    pthread_mutex_lock(&al->qlock);
    struct notify_group *g;
    for (g = al->groups; g && strcmp(g->key, key); g = g->next)
        ;
    if (!g) {
        g = xcalloc(1, sizeof(*g));
        g->key = key;
        key = NULL;
        g->group_labels = json_incref(gl);
        g->next = al->groups;
        al->groups = g;
        g->flush_ms = now + al->cfg.group_wait_ms; /* wait for others of the group */
    } else if (!g->dirty) {
        int64_t t = g->last_flush_ms + al->cfg.group_interval_ms;
        g->flush_ms = t > now ? t : now;
    }
    g->dirty = 1;
    for (i = 0; i < g->n && g->a[i].id != id; i++)
        ;
    if (i == g->n) {
        g->a = xrealloc(g->a, (g->n + 1) * sizeof(*g->a));
        memset(&g->a[g->n], 0, sizeof(g->a[0]));
        g->n++;
    } else {
        alert_group_alert_free(&g->a[i]);
    }
    g->a[i] = (struct group_alert){id, firing, 0, json_deep_copy(labels), json_deep_copy(annotations),
                                   starts_ms, ends_ms};
    pthread_cond_signal(&al->qcond);
    pthread_mutex_unlock(&al->qlock);
    free(key);
    json_decref(gl);
}

/* An alert changed (firing, resolved): kept in alerts.db until a
 * notification tells it (a crash in group_wait loses nothing), and into
 * its group, to be notified at the group's next flush. Called with the
 * main lock held. */
void alert_notify(struct alerts *al, int64_t id, int firing, const json_t *labels, const json_t *annotations,
                   int64_t starts_ms, int64_t ends_ms, int64_t now)
{
    char *lt = alert_dumps(labels), *at = alert_dumps(annotations);
    sqlite3_stmt *st = db_prepare(al->meta, "INSERT OR REPLACE INTO waiting (alert_id, firing, labels,"
                                            " annotations, starts_ms, ends_ms, since_ms)"
                                            " VALUES (?, ?, ?, ?, ?, ?, ?)");
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_int(st, 2, firing);
    sqlite3_bind_text(st, 3, lt, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 4, at, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 5, starts_ms);
    sqlite3_bind_int64(st, 6, ends_ms);
    sqlite3_bind_int64(st, 7, now);
    if (sqlite3_step(st) != SQLITE_DONE)
        log_warn("alerts: cannot keep alert %lld's change for its notification", (long long)id);
    sqlite3_finalize(st);
    free(lt);
    free(at);
    group_add(al, id, firing, labels, annotations, starts_ms, ends_ms, now);
}

void alert_waiting_load(struct alerts *al)
{
    json_error_t jerr;
    size_t n = 0;
    int64_t now = now_wall_ms();
    sqlite3_stmt *st = db_prepare(al->meta, "SELECT alert_id, firing, labels, annotations, starts_ms,"
                                            " ends_ms FROM waiting ORDER BY since_ms");
    while (st && sqlite3_step(st) == SQLITE_ROW) {
        json_t *l = json_loads((const char *)sqlite3_column_text(st, 2), 0, &jerr);
        json_t *a = json_loads((const char *)sqlite3_column_text(st, 3), 0, &jerr);
        group_add(al, sqlite3_column_int64(st, 0), sqlite3_column_int(st, 1), l ? l : json_object(),
                  a ? a : json_object(), sqlite3_column_int64(st, 4), sqlite3_column_int64(st, 5), now);
        json_decref(l);
        json_decref(a);
        n++;
    }
    sqlite3_finalize(st);
    if (n)
        log_info("alerts: %zu alert changes waiting for their notification carried over", n);
}

/* Drops the kept changes a flush told (the same version only: a newer
 * change of the alert since waits for the next). Main lock held. */
static void forget_told(struct alerts *al, json_t *told)
{
    size_t i;
    json_t *t;
    sqlite3_stmt *st = db_prepare(al->meta, "DELETE FROM waiting WHERE alert_id = ? AND firing = ?"
                                            " AND ends_ms = ?");
    json_array_foreach(told, i, t)
    {
        sqlite3_reset(st);
        sqlite3_bind_int64(st, 1, json_integer_value(json_array_get(t, 0)));
        sqlite3_bind_int(st, 2, (int)json_integer_value(json_array_get(t, 1)));
        sqlite3_bind_int64(st, 3, json_integer_value(json_array_get(t, 2)));
        sqlite3_step(st);
    }
    sqlite3_finalize(st);
}

/* Sends the groups that are due: changed ones after their wait, and
 * firing ones again every repeat interval. Called with qlock held. */
static int64_t flush_groups(struct alerts *al, json_t *receivers, const struct route_set *routes, json_t *told,
                            int64_t now)
{
    int64_t next = now + 1000;
    for (struct notify_group **pp = &al->groups; *pp;) {
        struct notify_group *g = *pp;
        int repeat = !g->dirty && g->n && now - g->last_flush_ms >= al->cfg.repeat_interval_ms;
        if (repeat) {
            size_t acked = 0;
            for (size_t i = 0; i < g->n; i++)
                acked += (size_t)g->a[i].acked;
            if (acked == g->n) { /* all acknowledged: quiet until something changes */
                g->last_flush_ms = now;
                repeat = 0;
            }
        }
        if ((g->dirty && now >= g->flush_ms) || repeat) {
            size_t nf = 0;
            for (size_t i = 0; i < g->n; i++)
                nf += (size_t)g->a[i].firing;
            alert_deliver(al, g->group_labels, g->a, g->n, nf ? "firing" : "resolved", receivers, routes);
            for (size_t i = 0; i < g->n; i++)
                json_array_append_new(told, json_pack("[I, i, I]", (json_int_t)g->a[i].id,
                                                      g->a[i].firing, (json_int_t)g->a[i].ends_ms));
            /* resolved alerts were told once; firing ones stay for repeats */
            size_t w = 0;
            for (size_t i = 0; i < g->n; i++) {
                if (g->a[i].firing)
                    g->a[w++] = g->a[i];
                else
                    alert_group_alert_free(&g->a[i]);
            }
            g->n = w;
            g->dirty = 0;
            g->last_flush_ms = now;
        }
        if (!g->n && !g->dirty) {
            *pp = g->next;
            json_decref(g->group_labels);
            free(g->key);
            free(g->a);
            free(g);
            continue;
        }
        if (g->dirty && g->flush_ms < next)
            next = g->flush_ms;
        pp = &g->next;
    }
    return next;
}

static size_t discard(char *d, size_t s, size_t n, void *arg)
{
    (void)d;
    (void)arg;
    return s * n;
}

/* POSTs a payload; returns the HTTP status, or -1 with err. */
static long post_json(const char *url, const char *body, char *err, size_t errlen)
{
    CURL *e = curl_easy_init();
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
    long status = -1;

    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, 10000L);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    CURLcode cc = curl_easy_perform(e);
    if (cc == CURLE_OK)
        curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
    else
        snprintf(err, errlen, "%s", curl_easy_strerror(cc));
    curl_slist_free_all(h);
    curl_easy_cleanup(e);
    return status;
}

static void log_attempt(struct alerts *al, const struct note *n, long status, const char *err)
{
    pthread_mutex_lock(&al->lock);
    sqlite3_stmt *st = db_prepare(al->meta, "INSERT INTO notifications (ts_ms, receiver, alert_id, status,"
                                            " attempt, result, http_status, error) VALUES (?, ?, ?, ?, ?, ?, ?, ?)");
    sqlite3_bind_int64(st, 1, now_wall_ms());
    sqlite3_bind_text(st, 2, n->receiver, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 3, n->alert_id);
    sqlite3_bind_text(st, 4, n->status, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int(st, 5, n->attempt);
    sqlite3_bind_text(st, 6, status >= 200 && status < 300 ? "ok" : "error", -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 7, (int)status);
    sqlite3_bind_text(st, 8, err, -1, SQLITE_TRANSIENT);
    sqlite3_step(st);
    sqlite3_finalize(st);
    pthread_mutex_unlock(&al->lock);
}

struct mail_src {
    const char *p;
    size_t left;
};

static size_t mail_read(char *out, size_t size, size_t n, void *arg)
{
    struct mail_src *m = arg;
    size_t k = size * n < m->left ? size * n : m->left;
    memcpy(out, m->p, k);
    m->p += k;
    m->left -= k;
    return k;
}

/* Sends a message over SMTP (libcurl): STARTTLS required unless the
 * receiver says tls: none; smtps:// is TLS from the start. Returns 250 when
 * the server took it, else -1 with err. */
static long send_mail(const char *url, const json_t *cfg, const char *message, char *err, size_t errlen)
{
    CURL *e = curl_easy_init();
    struct curl_slist *rcpt = NULL;
    struct mail_src src = {message, strlen(message)};
    const char *to = json_string_value(json_object_get(cfg, "to"));
    const char *tls = json_string_value(json_object_get(cfg, "tls"));
    const char *user = json_string_value(json_object_get(cfg, "username"));
    const char *pass = json_string_value(json_object_get(cfg, "password"));
    const char *ca = json_string_value(json_object_get(cfg, "ca_file"));
    char from[300];
    long status = -1;

    snprintf(from, sizeof(from), "<%s>", json_string_value(json_object_get(cfg, "from")));
    for (const char *p = to; p && *p;) {
        size_t n = strcspn(p, ",");
        char one[300];
        snprintf(one, sizeof(one), "<%.*s>", (int)(n < 290 ? n : 290), p + strspn(p, " "));
        rcpt = curl_slist_append(rcpt, one);
        p += n + (p[n] == ',');
    }
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "smtp,smtps");
    curl_easy_setopt(e, CURLOPT_MAIL_FROM, from);
    curl_easy_setopt(e, CURLOPT_MAIL_RCPT, rcpt);
    curl_easy_setopt(e, CURLOPT_READFUNCTION, mail_read);
    curl_easy_setopt(e, CURLOPT_READDATA, &src);
    curl_easy_setopt(e, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, 20000L);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    if (!tls || strcmp(tls, "none"))
        curl_easy_setopt(e, CURLOPT_USE_SSL, (long)CURLUSESSL_ALL);
    if (ca)
        curl_easy_setopt(e, CURLOPT_CAINFO, ca);
    if (user)
        curl_easy_setopt(e, CURLOPT_USERNAME, user);
    if (pass)
        curl_easy_setopt(e, CURLOPT_PASSWORD, pass);
    CURLcode cc = curl_easy_perform(e);
    if (cc == CURLE_OK)
        status = 250;
    else
        snprintf(err, errlen, "%s", curl_easy_strerror(cc));
    curl_slist_free_all(rcpt);
    curl_easy_cleanup(e);
    return status;
}

static int taken(const struct note *n, long status)
{
    return !strcmp(n->type, "email") ? status == 250 : status >= 200 && status < 300;
}

/* One attempt at a delivery; logged. Returns whether it was taken. */
int alert_send_note(struct alerts *al, struct note *n, char *err, size_t errlen)
{
    long status;
    n->attempt++;
    if (!strcmp(n->type, "email"))
        status = send_mail(n->url, n->config, n->payload, err, errlen);
    else
        status = post_json(n->url, n->payload, err, errlen);
    if (status >= 0 && !taken(n, status))
        snprintf(err, errlen, "HTTP %ld", status);
    log_attempt(al, n, taken(n, status) ? 200 : status, err);
    return taken(n, status);
}

void alert_note_free(struct note *n)
{
    json_decref(n->config);
    free(n->payload);
    free(n->subject);
    free(n);
}

static int groups_due(struct alerts *al, int64_t now)
{
    for (struct notify_group *g = al->groups; g; g = g->next)
        if ((g->dirty && now >= g->flush_ms) ||
            (!g->dirty && g->n && now - g->last_flush_ms >= al->cfg.repeat_interval_ms))
            return 1;
    return 0;
}

void *alert_note_main(void *arg)
{
    struct alerts *al = arg;
    pthread_mutex_lock(&al->qlock);
    while (!al->stop) {
        int64_t wall = now_wall_ms();
        if (groups_due(al, wall)) {
            /* lock order: the main lock before qlock, as alert_notify() takes them */
            pthread_mutex_unlock(&al->qlock);
            pthread_mutex_lock(&al->lock);
            json_t *recv = receivers_snapshot(al);
            struct route_set *routes = alert_routes_load(al);
            pthread_mutex_unlock(&al->lock);
            pthread_mutex_lock(&al->qlock);
            json_t *told = json_array();
            flush_groups(al, recv, routes, told, now_wall_ms());
            json_decref(recv);
            alert_routes_free(routes);
            if (json_array_size(told)) {
                pthread_mutex_unlock(&al->qlock);
                pthread_mutex_lock(&al->lock);
                forget_told(al, told);
                pthread_mutex_unlock(&al->lock);
                pthread_mutex_lock(&al->qlock);
            }
            json_decref(told);
        }
        int64_t now = now_mono_ns() / 1000000, next = now + 200;
        struct note **pp = &al->queue, *due = NULL;
        for (; *pp; pp = &(*pp)->next)
            if ((*pp)->due_ms <= now) {
                due = *pp;
                *pp = due->next;
                break;
            } else if ((*pp)->due_ms < next) {
                next = (*pp)->due_ms;
            }
        if (!due) {
            now_cond_wait_until(&al->qcond, &al->qlock, next * 1000000);
            continue;
        }
        pthread_mutex_unlock(&al->qlock);
        char err[256] = "";
        int ok = alert_send_note(al, due, err, sizeof(err));
        int retry = !ok && due->attempt < MAX_ATTEMPTS;
        if (!retry) {
            if (!ok)
                log_warn("alerts: %s to %s failed after %d attempts: %s", due->status, due->receiver,
                         due->attempt, err);
            alert_note_free(due);
        }
        pthread_mutex_lock(&al->qlock);
        if (retry) {
            due->due_ms = now_mono_ns() / 1000000 + (500LL << (due->attempt - 1));
            push_note(al, due);
        }
    }
    pthread_mutex_unlock(&al->qlock);
    return NULL;
}

json_t *alerts_receivers_list(struct alerts *al)
{
    json_t *arr = json_array();
    json_error_t jerr;
    pthread_mutex_lock(&al->lock);
    sqlite3_stmt *st = db_prepare(al->meta, "SELECT id, name, type, url, config FROM receivers ORDER BY id");
    while (st && sqlite3_step(st) == SQLITE_ROW) {
        json_t *cfg = json_loads((const char *)sqlite3_column_text(st, 4), 0, &jerr);
        if (!cfg)
            cfg = json_object();
        /* secrets are write-only */
        if (json_object_get(cfg, "password")) {
            json_object_del(cfg, "password");
            json_object_set_new(cfg, "password_set", json_true());
        }
        json_t *r = json_pack("{s:I, s:s, s:s, s:s}", "id", (json_int_t)sqlite3_column_int64(st, 0), "name",
                              (const char *)sqlite3_column_text(st, 1), "type",
                              (const char *)sqlite3_column_text(st, 2), "url",
                              (const char *)sqlite3_column_text(st, 3));
        json_object_update(r, cfg);
        json_decref(cfg);
        json_array_append_new(arr, r);
    }
    sqlite3_finalize(st);
    pthread_mutex_unlock(&al->lock);
    return arr;
}

int alert_printable(const char *s, size_t max)
{
    if (!s || !*s || strlen(s) > max)
        return 0;
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || (unsigned char)*s == 0x7f)
            return 0;
    return 1;
}

/* An address list "a@b, c@d": no spaces inside, no angle brackets. */
static int valid_addresses(const char *s, int max)
{
    int n = 0;
    if (!alert_printable(s, 2048))
        return 0;
    for (const char *p = s; *p;) {
        p += strspn(p, " ");
        size_t len = strcspn(p, ",");
        size_t end = len;
        while (end && p[end - 1] == ' ')
            end--;
        const char *at = memchr(p, '@', end);
        if (!end || !at || at == p || at == p + end - 1)
            return 0;
        for (size_t i = 0; i < end; i++)
            if (strchr(" <>\"\\;:", p[i]))
                return 0;
        if (++n > max)
            return 0;
        p += len + (p[len] == ',');
    }
    return n > 0;
}

/* A receiver body's fields, checked (each refusal names its field); the
 * settings of an email receiver into cfg. 0, or -1. */
static int receiver_check(const json_t *body, const char **namep, const char **typep, const char **urlp, json_t *cfg,
                          struct errinfo *err)
{
    const char *name = json_string_value(json_object_get(body, "name"));
    const char *type = json_string_value(json_object_get(body, "type"));
    const char *url = json_string_value(json_object_get(body, "url"));

    if (!name || !*name || strlen(name) > 64 ||
        strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.") != strlen(name)) {
        errinfo_set(err, 400, "invalid_field", "name", "name: 1-64 of letters, digits, '_', '-', '.'");
        return -1;
    }
    if (!type)
        type = "webhook";
    if (strcmp(type, "webhook") && strcmp(type, "slack") && strcmp(type, "email")) {
        errinfo_set(err, 400, "invalid_field", "type", "type: webhook (Alertmanager payload), slack or email");
        return -1;
    }
    int mail = !strcmp(type, "email");
    if (!url || !alert_printable(url, 2048) || strchr(url, ' ') ||
        (mail ? strncmp(url, "smtp://", 7) && strncmp(url, "smtps://", 8)
              : strncmp(url, "http://", 7) && strncmp(url, "https://", 8))) {
        errinfo_set(err, 400, "invalid_field", "url", mail ? "url: smtp://HOST:PORT or smtps://HOST:PORT"
                                                       : "url: an http:// or https:// URL");
        return -1;
    }
    if (mail) {
        static const char *strs[] = {"from", "to", "username", "password", "ca_file", "tls"};
        for (size_t i = 0; i < sizeof(strs) / sizeof(strs[0]); i++) {
            json_t *v = json_object_get(body, strs[i]);
            if (!v)
                continue;
            if (!alert_printable(json_string_value(v), 512)) {
                errinfo_set(err, 400, "invalid_field", strs[i], "%s: printable text of at most 512 bytes", strs[i]);
                return -1;
            }
            json_object_set(cfg, strs[i], v);
        }
        if (!valid_addresses(json_string_value(json_object_get(cfg, "from")), 1)) {
            errinfo_set(err, 400, "invalid_field", "from", "from: one address such as gpufleet@example.com");
            return -1;
        }
        if (!valid_addresses(json_string_value(json_object_get(cfg, "to")), 20)) {
            errinfo_set(err, 400, "invalid_field", "to", "to: 1-20 addresses, comma-separated");
            return -1;
        }
        const char *tls = json_string_value(json_object_get(cfg, "tls"));
        if (tls && strcmp(tls, "starttls") && strcmp(tls, "none")) {
            errinfo_set(err, 400, "invalid_field", "tls", "tls: starttls (the default) or none");
            return -1;
        }
    }
    *namep = name;
    *typep = type;
    *urlp = url;
    return 0;
}

json_t *alerts_receiver_create(struct alerts *al, const json_t *body, struct errinfo *err)
{
    const char *name, *type, *url;
    json_t *cfg = json_object(), *out = NULL;

    if (receiver_check(body, &name, &type, &url, cfg, err) < 0)
        goto out;
    char *ct = alert_dumps(cfg);
    pthread_mutex_lock(&al->lock);
    sqlite3_stmt *st = db_prepare(al->meta, "INSERT INTO receivers (name, type, url, config, created_ms)"
                                            " VALUES (?, ?, ?, ?, ?)");
    sqlite3_bind_text(st, 1, name, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 2, type, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 3, url, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 4, ct, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 5, now_wall_ms());
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    int64_t id = sqlite3_last_insert_rowid(al->meta);
    pthread_mutex_unlock(&al->lock);
    free(ct);
    if (rc != SQLITE_DONE) {
        errinfo_set(err, 409, "conflict", "name", "a receiver named %s exists", name);
        goto out;
    }
    out = json_pack("{s:I, s:s, s:s, s:s}", "id", (json_int_t)id, "name", name, "type", type, "url", url);
out:
    json_decref(cfg);
    return out;
}

json_t *alerts_receiver_update(struct alerts *al, int64_t id, const json_t *body, struct errinfo *err)
{
    const char *name, *type, *url;
    json_t *cfg = json_object(), *out = NULL, *old = NULL;
    char was[65] = "", route[1100];
    json_error_t jerr;

    if (receiver_check(body, &name, &type, &url, cfg, err) < 0)
        goto out;
    pthread_mutex_lock(&al->lock);
    sqlite3_stmt *st = db_prepare(al->meta, "SELECT name, config FROM receivers WHERE id = ?");
    sqlite3_bind_int64(st, 1, id);
    if (sqlite3_step(st) == SQLITE_ROW) {
        snprintf(was, sizeof(was), "%s", (const char *)sqlite3_column_text(st, 0));
        old = json_loads((const char *)sqlite3_column_text(st, 1), 0, &jerr);
    }
    sqlite3_finalize(st);
    int rc = SQLITE_DONE;
    if (!was[0]) {
        errinfo_set(err, 404, "not_found", "id", "no receiver with id %lld", (long long)id);
    } else if (strcmp(was, name) && alert_routes_naming(al, was, route, sizeof(route)) >= 0) {
        /* a route sends to it by name: the name stays */
        errinfo_set(err, 409, "conflict", "name", "a route (%s) sends to %s: change the routes before the name", route, was);
    } else {
        /* the password is write-only: an update without one keeps it */
        if (!json_object_get(body, "password") && json_object_get(old, "password"))
            json_object_set(cfg, "password", json_object_get(old, "password"));
        char *ct = alert_dumps(cfg);
        st = db_prepare(al->meta, "UPDATE receivers SET name = ?, type = ?, url = ?, config = ? WHERE id = ?");
        sqlite3_bind_text(st, 1, name, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(st, 2, type, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(st, 3, url, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(st, 4, ct, -1, SQLITE_TRANSIENT);
        sqlite3_bind_int64(st, 5, id);
        rc = sqlite3_step(st);
        sqlite3_finalize(st);
        free(ct);
        if (rc == SQLITE_DONE)
            out = json_pack("{s:I, s:s, s:s, s:s}", "id", (json_int_t)id, "name", name, "type", type, "url", url);
        else
            errinfo_set(err, 409, "conflict", "name", "a receiver named %s exists", name);
    }
    pthread_mutex_unlock(&al->lock);
out:
    json_decref(old);
    json_decref(cfg);
    return out;
}

int alerts_receiver_delete(struct alerts *al, int64_t id, struct errinfo *err)
{
    char name[65] = "", route[1100];
    int at = -1;

    /* a receiver a route sends to stays until the route no longer names it */
    pthread_mutex_lock(&al->lock);
    sqlite3_stmt *st = db_prepare(al->meta, "SELECT name FROM receivers WHERE id = ?");
    sqlite3_bind_int64(st, 1, id);
    if (sqlite3_step(st) == SQLITE_ROW)
        snprintf(name, sizeof(name), "%s", (const char *)sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    if (name[0])
        at = alert_routes_naming(al, name, route, sizeof(route));
    pthread_mutex_unlock(&al->lock);
    if (at >= 0) {
        errinfo_set(err, 409, "conflict", "id", "route %d (%s) sends to %s: change the routes first", at + 1, route, name);
        return -1;
    }
    return alert_delete_row(al, "DELETE FROM receivers WHERE id = ?", id, "receiver", err);
}

int alerts_receiver_test(struct alerts *al, int64_t id, struct errinfo *err)
{
    char e[256] = "";
    json_error_t jerr;
    json_t *recv = json_array();

    pthread_mutex_lock(&al->lock);
    sqlite3_stmt *st = db_prepare(al->meta, "SELECT name, type, url, config FROM receivers WHERE id = ?");
    sqlite3_bind_int64(st, 1, id);
    if (sqlite3_step(st) == SQLITE_ROW) {
        json_t *cfg = json_loads((const char *)sqlite3_column_text(st, 3), 0, &jerr);
        json_array_append_new(recv, json_pack("{s:s, s:s, s:s, s:o}", "name", (const char *)sqlite3_column_text(st, 0),
                                              "type", (const char *)sqlite3_column_text(st, 1), "url",
                                              (const char *)sqlite3_column_text(st, 2), "config",
                                              cfg ? cfg : json_object()));
    }
    sqlite3_finalize(st);
    pthread_mutex_unlock(&al->lock);
    if (!json_array_size(recv)) {
        json_decref(recv);
        errinfo_set(err, 404, "not_found", "id", "no receiver with id %lld", (long long)id);
        return -1;
    }
    struct group_alert ga = {0, 1, 0, json_pack("{s:s, s:s}", "alertname", "GpufleetTestNotification", "severity", "info"),
                             json_pack("{s:s}", "summary", "a test from gpufleet: this receiver works"),
                             now_wall_ms(), 0};
    json_t *gl = json_pack("{s:s}", "alertname", "GpufleetTestNotification");
    struct note *saved, *n;
    /* build the delivery as the notifier would, but send it here and now */
    pthread_mutex_lock(&al->qlock);
    saved = al->queue;
    al->queue = NULL;
    alert_deliver(al, gl, &ga, 1, "test", recv, NULL); /* a test reaches the receiver whatever the routes */
    n = al->queue;
    al->queue = saved;
    pthread_mutex_unlock(&al->qlock);
    int ok = alert_send_note(al, n, e, sizeof(e));
    alert_note_free(n);
    alert_group_alert_free(&ga);
    json_decref(gl);
    json_decref(recv);
    if (!ok) {
        errinfo_set(err, 502, "receiver_failed", "url", "the receiver did not take it: %s", e);
        return -1;
    }
    return 0;
}

json_t *alerts_notifications(struct alerts *al, int limit)
{
    json_t *arr = json_array();
    pthread_mutex_lock(&al->lock);
    sqlite3_stmt *st = db_prepare(al->meta, "SELECT id, ts_ms, receiver, alert_id, status, attempt, result,"
                                            " http_status, error FROM notifications ORDER BY id DESC LIMIT ?");
    sqlite3_bind_int(st, 1, limit > 0 ? limit : 100);
    while (st && sqlite3_step(st) == SQLITE_ROW)
        json_array_append_new(
            arr, json_pack("{s:I, s:I, s:s, s:I, s:s, s:i, s:s, s:i, s:s}", "id",
                           (json_int_t)sqlite3_column_int64(st, 0), "ts_ms",
                           (json_int_t)sqlite3_column_int64(st, 1), "receiver",
                           (const char *)sqlite3_column_text(st, 2), "alert_id",
                           (json_int_t)sqlite3_column_int64(st, 3), "status",
                           (const char *)sqlite3_column_text(st, 4), "attempt", sqlite3_column_int(st, 5),
                           "result", (const char *)sqlite3_column_text(st, 6), "http_status",
                           sqlite3_column_int(st, 7), "error", (const char *)sqlite3_column_text(st, 8)));
    sqlite3_finalize(st);
    pthread_mutex_unlock(&al->lock);
    return arr;
}

static void set_acked(struct alerts *al, int64_t id, int acked)
{
    pthread_mutex_lock(&al->qlock);
    for (struct notify_group *g = al->groups; g; g = g->next)
        for (size_t i = 0; i < g->n; i++)
            if (g->a[i].id == id)
                g->a[i].acked = acked;
    pthread_mutex_unlock(&al->qlock);
}

void alert_notify_acked(struct alerts *al, int64_t id)
{
    set_acked(al, id, 1);
}

void alert_notify_unacked(struct alerts *al, int64_t id)
{
    set_acked(al, id, 0);
}
