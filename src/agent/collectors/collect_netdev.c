/* Network collector (node_exporter's netdev collector). */
#include "collect_netdev.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../lib/xalloc.h"
#include "../collector.h"
#include "../procfs.h"

#define NETDEV_MAX 256

const char *const netdev_field_names[NETDEV_FIELDS] = {
    "receive_bytes",  "receive_packets",  "receive_errs",     "receive_drop",
    "receive_fifo",   "receive_frame",    "receive_compressed", "receive_multicast",
    "transmit_bytes", "transmit_packets", "transmit_errs",    "transmit_drop",
    "transmit_fifo",  "transmit_colls",   "transmit_carrier", "transmit_compressed",
};

size_t netdev_parse(char *text, size_t len, struct netdev *out, size_t max)
{
    size_t pos = 0, n = 0;
    char *line;

    while (n < max && (line = procfs_next_line(text, len, &pos))) {
        char *colon = strchr(line, ':');
        char *name = line, *p;
        size_t k;

        if (!colon || strchr(line, '|'))
            continue;
        *colon = '\0';
        while (*name == ' ')
            name++;
        if (!*name || strlen(name) >= sizeof(out[n].name))
            continue;
        strcpy(out[n].name, name);
        p = colon + 1;
        for (k = 0; k < NETDEV_FIELDS; k++) {
            char *end;
            unsigned long long v = strtoull(p, &end, 10);
            if (end == p)
                break;
            out[n].v[k] = (double)v;
            p = end;
        }
        if (k == NETDEV_FIELDS)
            n++;
    }
    return n;
}

struct netdev_ctx {
    struct buf raw;
    struct netdev devs[NETDEV_MAX];
};

static int netdev_init(void **ctx, const struct agent_options *opts)
{
    struct netdev_ctx *c = xcalloc(1, sizeof(*c));
    (void)opts;
    buf_init(&c->raw, 0);
    *ctx = c;
    return 0;
}

static int netdev_sample(void *ctx, struct sample_ctx *sc)
{
    struct netdev_ctx *c = ctx;
    char name[96], help[96];
    size_t n;

    if (procfs_read(sc->opts->proc_root, "proc/net/dev", &c->raw) < 0)
        return -1;
    n = netdev_parse(c->raw.data, c->raw.len, c->devs, NETDEV_MAX);
    for (size_t f = 0; f < NETDEV_FIELDS; f++) {
        snprintf(name, sizeof(name), "node_network_%s_total", netdev_field_names[f]);
        snprintf(help, sizeof(help), "Network device statistic %s.", netdev_field_names[f]);
        expo_family(sc->w, name, EXPO_COUNTER, help);
        for (size_t i = 0; i < n; i++) {
            struct expo_label l = {"device", c->devs[i].name};
            expo_sample(sc->w, &l, 1, c->devs[i].v[f]);
        }
    }
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(
            arr, json_pack("{s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "device",
                           c->devs[i].name, "receive_bytes", (json_int_t)c->devs[i].v[0],
                           "receive_packets", (json_int_t)c->devs[i].v[1], "receive_errs",
                           (json_int_t)c->devs[i].v[2], "receive_drop",
                           (json_int_t)c->devs[i].v[3], "transmit_bytes",
                           (json_int_t)c->devs[i].v[8], "transmit_packets",
                           (json_int_t)c->devs[i].v[9], "transmit_errs",
                           (json_int_t)c->devs[i].v[10], "transmit_drop",
                           (json_int_t)c->devs[i].v[11]));
    json_object_set_new(sc->host, "network", arr);
    return 0;
}

static void netdev_shutdown(void *ctx)
{
    struct netdev_ctx *c = ctx;
    buf_free(&c->raw);
    free(c);
}

const struct collector collect_netdev = {"netdev", netdev_init, netdev_sample, netdev_shutdown};
