/* Prometheus service discovery of the fleet and the scrape configuration
 * that uses it. The labels are those gpufleet's own scrapes give a series
 * (job, instance, server), so a dashboard reads the same either way. */
#include "promsd.h"

#include <stdlib.h>
#include <string.h>

#include "../lib/formdata.h"
#include "../lib/xalloc.h"

static int valid_label_name(const char *s)
{
    if (!s || !(*s == '_' || (*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z')))
        return 0;
    for (s++; *s; s++)
        if (!(*s == '_' || (*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
              (*s >= '0' && *s <= '9')))
            return 0;
    return 1;
}

static void add_param(void *arg, const char *name, const char *value, size_t len)
{
    char key[300];
    if (strlen(name) > 200 || memchr(value, '\0', len))
        return;
    snprintf(key, sizeof(key), "__param_%s", name);
    if (valid_label_name(key) && !json_object_get(arg, key)) /* the first value, as Prometheus */
        json_object_set_new(arg, key, json_stringn(value, len));
}

/* __scheme__, __metrics_path__ and __param_* from the target's URL. */
static void url_labels(json_t *labels, const struct reg_target *t)
{
    const char *p = strstr(t->url, "://");
    json_object_set_new(labels, "__scheme__", json_stringn(t->url, p ? (size_t)(p - t->url) : 4));
    p = p ? p + 3 : t->url;
    p += strcspn(p, "/?#");
    size_t plen = strcspn(p, "?#");
    json_object_set_new(labels, "__metrics_path__", plen ? json_stringn(p, plen) : json_string("/"));
    if (p[plen] == '?')
        form_parse(p + plen + 1, strcspn(p + plen + 1, "#"), add_param, labels);
}

static json_t *server_labels(json_t *servers, int64_t id)
{
    size_t i;
    json_t *s;
    json_array_foreach(servers, i, s)
    {
        if (json_integer_value(json_object_get(s, "id")) == id)
            return json_object_get(s, "labels");
    }
    return NULL;
}

static json_t *group(const struct reg_target *t, json_t *slabels)
{
    json_t *labels = json_object();
    char id[32], key[300];
    const char *k;
    json_t *v;

    json_object_set_new(labels, "job", json_string(t->job));
    json_object_set_new(labels, "server", json_string(t->server));
    url_labels(labels, t);
    snprintf(id, sizeof(id), "%lld", (long long)t->server_id);
    json_object_set_new(labels, "__meta_gpufleet_server", json_string(t->server));
    json_object_set_new(labels, "__meta_gpufleet_server_id", json_string(id));
    json_object_set_new(labels, "__meta_gpufleet_kind", json_string(t->is_agent ? "agent" : "exporter"));
    json_object_set_new(labels, "__meta_gpufleet_token", json_string(t->token[0] ? "true" : "false"));
    json_object_foreach(slabels, k, v)
    {
        if (!json_is_string(v))
            continue;
        /* the registry takes label names only (never __*); ours win */
        snprintf(key, sizeof(key), "__meta_gpufleet_label_%s", k);
        if (valid_label_name(key))
            json_object_set(labels, key, v);
        if (valid_label_name(k) && strncmp(k, "__", 2) && !json_object_get(labels, k) &&
            strcmp(k, "instance"))
            json_object_set(labels, k, v);
    }
    return json_pack("{s:[s], s:o}", "targets", t->instance, "labels", labels);
}

json_t *promsd_groups(struct registry *r)
{
    struct reg_target *t = NULL;
    size_t n = reg_targets(r, 0, 0, &t);
    json_t *servers = reg_list(r), *out = json_array();

    for (size_t i = 0; i < n; i++)
        json_array_append_new(out, group(&t[i], server_labels(servers, t[i].server_id)));
    for (size_t i = 0; i < n; i++)
        explicit_bzero(t[i].token, sizeof(t[i].token));
    free(t);
    json_decref(servers);
    return out;
}

/* A YAML double-quoted scalar: JSON's string syntax is one. */
static void put_string(FILE *f, const char *s)
{
    json_t *j = json_string(s ? s : ""); /* NULL for invalid UTF-8: written as "" */
    char *txt = j ? json_dumps(j, JSON_ENCODE_ANY) : NULL;
    fputs(txt ? txt : "\"\"", f);
    free(txt);
    json_decref(j);
}

static void put_labels(FILE *f, json_t *labels, const char *indent)
{
    const char *k;
    json_t *v;
    json_object_foreach(labels, k, v)
    {
        if (!strncmp(k, "__meta_", 7))
            continue;
        fprintf(f, "%s", indent);
        put_string(f, k);
        fputs(": ", f);
        put_string(f, json_string_value(v));
        fputc('\n', f);
    }
}

/* One job for a target that needs its token. */
static void token_job(FILE *f, const struct reg_target *t, json_t *g, const char *interval)
{
    char name[200];
    snprintf(name, sizeof(name), "%s-%s", t->job, t->server);
    fputs("  - job_name: ", f);
    put_string(f, name);
    fputs("\n    scrape_interval: ", f);
    put_string(f, interval);
    fputs("\n    authorization:\n      type: Bearer\n      credentials: ", f);
    put_string(f, t->token);
    fputs("\n    static_configs:\n      - targets: [", f);
    put_string(f, t->instance);
    fputs("]\n        labels:\n", f);
    put_labels(f, json_object_get(g, "labels"), "          ");
}

/* The SD job leaves an agent that has a job of its own to that job. */
static void drop_rule(FILE *f, const struct reg_target *t, int first)
{
    char re[64];
    if (first)
        fputs("    relabel_configs:\n      # these agents need their bearer token: jobs of their own below\n", f);
    snprintf(re, sizeof(re), "agent;%lld", (long long)t->server_id);
    fputs("      - source_labels: [\"__meta_gpufleet_kind\", \"__meta_gpufleet_server_id\"]\n        regex: ", f);
    put_string(f, re);
    fputs("\n        action: drop\n", f);
}

int promsd_write_config(FILE *f, struct registry *r, const struct promsd_config *c)
{
    struct reg_target *t = NULL;
    size_t n = reg_targets(r, 0, 0, &t);
    json_t *servers = reg_list(r);
    char *need = xcalloc(n ? n : 1, 1);
    int dropped = 0;

    for (size_t i = 0; i < n; i++)
        need[i] = t[i].is_agent && t[i].token[0] && c->needs_token && c->needs_token(c->arg, &t[i]);
    fputs("# The gpufleet fleet for Prometheus (made by `gpufleet prometheus-config`).\n"
          "# The SD job follows the fleet as servers come and go; its token is a\n"
          "# viewer's API token (gpufleet token add USER NAME).\n"
          "scrape_configs:\n  - job_name: \"gpufleet-sd\"\n    scrape_interval: ",
          f);
    put_string(f, c->scrape_interval);
    fputs("\n    http_sd_configs:\n      - url: ", f);
    put_string(f, c->sd_url);
    fputs("\n        refresh_interval: \"30s\"\n        authorization:\n          type: Bearer\n"
          "          credentials_file: ",
          f);
    put_string(f, c->sd_token_file);
    fputc('\n', f);
    for (size_t i = 0; i < n; i++)
        if (need[i])
            drop_rule(f, &t[i], !dropped++);
    for (size_t i = 0; i < n; i++) {
        if (!need[i])
            continue;
        json_t *g = group(&t[i], server_labels(servers, t[i].server_id));
        token_job(f, &t[i], g, c->scrape_interval);
        json_decref(g);
    }
    for (size_t i = 0; i < n; i++)
        explicit_bzero(t[i].token, sizeof(t[i].token));
    free(t);
    free(need);
    json_decref(servers);
    return fflush(f) == 0 && !ferror(f) ? 0 : -1;
}
