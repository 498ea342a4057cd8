/* Load averages from /proc/loadavg (node_exporter's loadavg collector). */
#include <stdio.h>
#include <stdlib.h>

#include "../../lib/xalloc.h"
#include "../collector.h"
#include "../procfs.h"

static int load_init(void **ctx, const struct agent_options *opts)
{
    struct buf *b = xmalloc(sizeof(*b));
    (void)opts;
    buf_init(b, 0);
    *ctx = b;
    return 0;
}

static int load_sample(void *ctx, struct sample_ctx *sc)
{
    struct buf *raw = ctx;
    double l[3];
    static const char *names[] = {"node_load1", "node_load5", "node_load15"};
    static const char *helps[] = {"1m load average.", "5m load average.", "15m load average."};

    if (procfs_read(sc->opts->proc_root, "proc/loadavg", raw) < 0)
        return -1;
    if (sscanf(raw->data, "%lf %lf %lf", &l[0], &l[1], &l[2]) != 3)
        return -1;
    for (int i = 0; i < 3; i++) {
        expo_family(sc->w, names[i], EXPO_GAUGE, helps[i]);
        expo_sample(sc->w, NULL, 0, l[i]);
    }
    json_object_set_new(sc->host, "load",
                        json_pack("{s:f, s:f, s:f}", "load1", l[0], "load5", l[1], "load15", l[2]));
    return 0;
}

static void load_shutdown(void *ctx)
{
    buf_free(ctx);
    free(ctx);
}

const struct collector collect_loadavg = {"loadavg", load_init, load_sample, load_shutdown};
