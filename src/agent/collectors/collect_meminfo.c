/* Memory collector (node_exporter's meminfo collector). */
#include "collect_meminfo.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../lib/xalloc.h"
#include "../collector.h"
#include "../procfs.h"

#define MEMINFO_MAX 128

size_t meminfo_parse(char *text, size_t len, struct meminfo_field *out, size_t max)
{
    size_t pos = 0, n = 0;
    char *line;

    while (n < max && (line = procfs_next_line(text, len, &pos))) {
        char *colon = strchr(line, ':');
        char *end;
        size_t k = 0;

        if (!colon || colon == line)
            continue;
        *colon = '\0';
        /* "Active(anon)" -> "Active_anon", as node_exporter does */
        for (char *p = line; *p && k < sizeof(out[n].name) - 1; p++) {
            if (*p == '(')
                out[n].name[k++] = '_';
            else if (*p == ')')
                continue;
            else if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                     (*p >= '0' && *p <= '9') || *p == '_')
                out[n].name[k++] = *p;
            else
                out[n].name[k++] = '_';
        }
        out[n].name[k] = '\0';
        double v = strtod(colon + 1, &end);
        if (end == colon + 1)
            continue;
        while (*end == ' ')
            end++;
        out[n].has_unit = !strcmp(end, "kB");
        out[n].value = out[n].has_unit ? v * 1024.0 : v;
        n++;
    }
    return n;
}

double meminfo_get(const struct meminfo_field *f, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(f[i].name, name))
            return f[i].value;
    return -1;
}

struct mem_ctx {
    struct buf raw;
    struct meminfo_field fields[MEMINFO_MAX];
};

static int mem_init(void **ctx, const struct agent_options *opts)
{
    struct mem_ctx *c = xcalloc(1, sizeof(*c));
    (void)opts;
    buf_init(&c->raw, 0);
    *ctx = c;
    return 0;
}

static int mem_sample(void *ctx, struct sample_ctx *sc)
{
    struct mem_ctx *c = ctx;
    size_t n;
    char name[128], help[160];
    static const struct {
        const char *json, *field;
    } view[] = {
        {"total_bytes", "MemTotal"},       {"free_bytes", "MemFree"},
        {"available_bytes", "MemAvailable"}, {"buffers_bytes", "Buffers"},
        {"cached_bytes", "Cached"},        {"swap_total_bytes", "SwapTotal"},
        {"swap_free_bytes", "SwapFree"},
    };

    if (procfs_read(sc->opts->proc_root, "proc/meminfo", &c->raw) < 0)
        return -1;
    n = meminfo_parse(c->raw.data, c->raw.len, c->fields, MEMINFO_MAX);
    if (n == 0)
        return -1;
    for (size_t i = 0; i < n; i++) {
        snprintf(name, sizeof(name), "node_memory_%s%s", c->fields[i].name,
                 c->fields[i].has_unit ? "_bytes" : "");
        snprintf(help, sizeof(help), "Memory information field %s%s.", c->fields[i].name,
                 c->fields[i].has_unit ? "_bytes" : "");
        expo_family(sc->w, name, EXPO_GAUGE, help);
        expo_sample(sc->w, NULL, 0, c->fields[i].value);
    }
    json_t *mem = json_object();
    for (size_t i = 0; i < sizeof(view) / sizeof(view[0]); i++) {
        double v = meminfo_get(c->fields, n, view[i].field);
        if (v >= 0)
            json_object_set_new(mem, view[i].json, json_integer((json_int_t)v));
    }
    json_object_set_new(sc->host, "memory", mem);
    return 0;
}

static void mem_shutdown(void *ctx)
{
    struct mem_ctx *c = ctx;
    buf_free(&c->raw);
    free(c);
}

const struct collector collect_meminfo = {"meminfo", mem_init, mem_sample, mem_shutdown};
