/* Host identity: node_exporter's uname info plus gpufleet's host info
 * (hostname, kernel, CPU model, cores) and the clock. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "../../lib/now.h"
#include "../../lib/xalloc.h"
#include "../collector.h"
#include "../procfs.h"

struct uname_ctx {
    struct utsname u;
    char cpu_model[256];
    long cores;
};

static void read_cpu_model(const char *root, char *dst, size_t cap)
{
    struct buf raw;
    size_t pos = 0;
    char *line;

    snprintf(dst, cap, "unknown");
    buf_init(&raw, 0);
    if (procfs_read(root, "proc/cpuinfo", &raw) == 0) {
        while ((line = procfs_next_line(raw.data, raw.len, &pos))) {
            char *colon = strchr(line, ':');
            if (!colon)
                continue;
            if (!strncmp(line, "model name", 10) || !strncmp(line, "Model", 5)) {
                char *v = colon + 1;
                while (*v == ' ')
                    v++;
                snprintf(dst, cap, "%s", v);
                break;
            }
        }
    }
    buf_free(&raw);
}

static int uname_init(void **ctx, const struct agent_options *opts)
{
    struct uname_ctx *c = xcalloc(1, sizeof(*c));

    if (uname(&c->u) < 0)
        memset(&c->u, 0, sizeof(c->u));
    read_cpu_model(opts->proc_root, c->cpu_model, sizeof(c->cpu_model));
    c->cores = sysconf(_SC_NPROCESSORS_ONLN);
    *ctx = c;
    return 0;
}

static int uname_sample(void *ctx, struct sample_ctx *sc)
{
    struct uname_ctx *c = ctx;
    char cores[16];
    struct expo_label ul[6] = {
        {"domainname", c->u.domainname}, {"machine", c->u.machine}, {"nodename", c->u.nodename},
        {"release", c->u.release},       {"sysname", c->u.sysname}, {"version", c->u.version},
    };

    snprintf(cores, sizeof(cores), "%ld", c->cores);
    struct expo_label hl[4] = {
        {"hostname", sc->hostname}, {"kernel", c->u.release},
        {"cpu_model", c->cpu_model}, {"cores", cores},
    };
    expo_family(sc->w, "node_uname_info", EXPO_GAUGE,
                "Labeled system information as provided by the uname system call.");
    expo_sample(sc->w, ul, 6, 1);
    expo_family(sc->w, "node_time_seconds", EXPO_GAUGE,
                "System time in seconds since epoch (1970).");
    expo_sample(sc->w, NULL, 0, (double)sc->ts_ms / 1000.0);
    expo_family(sc->w, "gpufleet_host_info", EXPO_GAUGE,
                "The host's name, kernel, CPU model and online CPU count.");
    expo_sample(sc->w, hl, 4, 1);
    json_object_set_new(sc->host, "hostname", json_string(sc->hostname));
    json_object_set_new(sc->host, "kernel", json_string(c->u.release));
    json_object_set_new(sc->host, "machine", json_string(c->u.machine));
    json_object_set_new(sc->host, "cpu_model", json_string(c->cpu_model));
    json_object_set_new(sc->host, "cores", json_integer(c->cores));
    return 0;
}

static void uname_shutdown(void *ctx)
{
    free(ctx);
}

const struct collector collect_uname = {"uname", uname_init, uname_sample, uname_shutdown};
