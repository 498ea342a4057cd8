/* CPU collector (node_exporter's cpu and stat collectors). Guest time is
 * reported apart, as node_exporter does, although the kernel also counts it
 * in user. */
#include "collect_proc_stat.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../lib/xalloc.h"
#include "../collector.h"
#include "../procfs.h"

const char *const cpu_mode_names[CPU_MODES] = {"user", "nice",   "system", "idle",  "iowait",
                                               "irq",  "softirq", "steal", "guest", "guest_nice"};

static int parse_cpu_line(char *line, double user_hz, struct cpu_times *ct)
{
    char *save = NULL, *tok = strtok_r(line, " ", &save);
    size_t m = 0;

    if (!tok || strncmp(tok, "cpu", 3))
        return -1;
    if (tok[3] == '\0') {
        ct->cpu = -1;
    } else {
        char *end;
        long n = strtol(tok + 3, &end, 10);
        if (*end || n < 0 || n > 65535)
            return -1;
        ct->cpu = (int)n;
    }
    memset(ct->seconds, 0, sizeof(ct->seconds));
    while ((tok = strtok_r(NULL, " ", &save)) && m < CPU_MODES) {
        char *end;
        unsigned long long v = strtoull(tok, &end, 10);
        if (*end)
            return -1;
        ct->seconds[m++] = (double)v / user_hz;
    }
    return m >= 4 ? 0 : -1;
}

static double field_value(const char *rest)
{
    return strtod(rest, NULL);
}

int proc_stat_parse(char *text, size_t len, double user_hz, struct proc_stat *out)
{
    size_t pos = 0, cap = 0;
    char *line;
    int have_total = 0;

    memset(out, 0, sizeof(*out));
    while ((line = procfs_next_line(text, len, &pos))) {
        if (!strncmp(line, "cpu", 3)) {
            struct cpu_times ct;
            if (parse_cpu_line(line, user_hz, &ct) < 0)
                continue;
            if (ct.cpu < 0) {
                out->total = ct;
                have_total = 1;
                continue;
            }
            if (out->ncpus == cap) {
                cap = cap ? cap * 2 : 8;
                out->cpus = xrealloc(out->cpus, cap * sizeof(*out->cpus));
            }
            out->cpus[out->ncpus++] = ct;
        } else if (!strncmp(line, "btime ", 6)) {
            out->boot_time_s = field_value(line + 6);
            out->have_boot_time = 1;
        } else if (!strncmp(line, "ctxt ", 5)) {
            out->context_switches = field_value(line + 5);
        } else if (!strncmp(line, "intr ", 5)) {
            out->interrupts = field_value(line + 5);
        } else if (!strncmp(line, "processes ", 10)) {
            out->forks = field_value(line + 10);
        } else if (!strncmp(line, "procs_running ", 14)) {
            out->procs_running = field_value(line + 14);
        } else if (!strncmp(line, "procs_blocked ", 14)) {
            out->procs_blocked = field_value(line + 14);
        }
    }
    return have_total || out->ncpus ? 0 : -1;
}

void proc_stat_free(struct proc_stat *ps)
{
    free(ps->cpus);
    ps->cpus = NULL;
    ps->ncpus = 0;
}

struct stat_ctx {
    struct buf raw;
    double user_hz;
    double prev_busy, prev_total;
    int have_prev;
};

static int stat_init(void **ctx, const struct agent_options *opts)
{
    struct stat_ctx *c = xcalloc(1, sizeof(*c));
    long hz = sysconf(_SC_CLK_TCK);

    (void)opts;
    buf_init(&c->raw, 0);
    c->user_hz = hz > 0 ? (double)hz : 100.0;
    *ctx = c;
    return 0;
}

static void stat_json(struct stat_ctx *c, const struct proc_stat *ps, json_t *host)
{
    const double *s = ps->total.seconds;
    double total = 0, idle = s[CPU_IDLE] + s[CPU_IOWAIT];
    json_t *cpu = json_object(), *secs = json_object();

    /* guest time is already inside user and nice */
    for (int m = 0; m < CPU_GUEST; m++)
        total += s[m];
    for (int m = 0; m < CPU_MODES; m++)
        json_object_set_new(secs, cpu_mode_names[m], json_real(s[m]));
    json_object_set_new(cpu, "count", json_integer((json_int_t)ps->ncpus));
    json_object_set_new(cpu, "seconds_total", secs);
    if (c->have_prev && total > c->prev_total) {
        double busy = total - idle;
        json_object_set_new(cpu, "utilization_percent",
                            json_real(100.0 * (busy - c->prev_busy) / (total - c->prev_total)));
    }
    c->prev_busy = total - idle;
    c->prev_total = total;
    c->have_prev = 1;
    json_object_set_new(cpu, "procs_running", json_real(ps->procs_running));
    json_object_set_new(host, "cpu", cpu);
    if (ps->have_boot_time)
        json_object_set_new(host, "boot_time_s", json_real(ps->boot_time_s));
}

static int stat_sample(void *ctx, struct sample_ctx *sc)
{
    struct stat_ctx *c = ctx;
    struct proc_stat ps;
    struct expo_writer *w = sc->w;
    char cpu[16];
    struct expo_label l[2] = {{"cpu", cpu}, {"mode", NULL}};

    if (procfs_read(sc->opts->proc_root, "proc/stat", &c->raw) < 0)
        return -1;
    if (proc_stat_parse(c->raw.data, c->raw.len, c->user_hz, &ps) < 0)
        return -1;
    expo_family(w, "node_cpu_seconds_total", EXPO_COUNTER,
                "Seconds the CPUs spent in each mode.");
    for (size_t i = 0; i < ps.ncpus; i++) {
        snprintf(cpu, sizeof(cpu), "%d", ps.cpus[i].cpu);
        for (int m = 0; m < CPU_GUEST; m++) {
            l[1].value = cpu_mode_names[m];
            expo_sample(w, l, 2, ps.cpus[i].seconds[m]);
        }
    }
    expo_family(w, "node_cpu_guest_seconds_total", EXPO_COUNTER,
                "Seconds the CPUs spent in guests (VMs) for each mode.");
    for (size_t i = 0; i < ps.ncpus; i++) {
        snprintf(cpu, sizeof(cpu), "%d", ps.cpus[i].cpu);
        l[1].value = "user";
        expo_sample(w, l, 2, ps.cpus[i].seconds[CPU_GUEST]);
        l[1].value = "nice";
        expo_sample(w, l, 2, ps.cpus[i].seconds[CPU_GUEST_NICE]);
    }
    if (ps.have_boot_time) {
        expo_family(w, "node_boot_time_seconds", EXPO_GAUGE, "Node boot time, in unixtime.");
        expo_sample(w, NULL, 0, ps.boot_time_s);
    }
    expo_family(w, "node_context_switches_total", EXPO_COUNTER,
                "Total number of context switches.");
    expo_sample(w, NULL, 0, ps.context_switches);
    expo_family(w, "node_intr_total", EXPO_COUNTER, "Total number of interrupts serviced.");
    expo_sample(w, NULL, 0, ps.interrupts);
    expo_family(w, "node_forks_total", EXPO_COUNTER, "Total number of forks.");
    expo_sample(w, NULL, 0, ps.forks);
    expo_family(w, "node_procs_running", EXPO_GAUGE,
                "Number of processes in runnable state.");
    expo_sample(w, NULL, 0, ps.procs_running);
    expo_family(w, "node_procs_blocked", EXPO_GAUGE,
                "Number of processes blocked waiting for I/O to complete.");
    expo_sample(w, NULL, 0, ps.procs_blocked);
    stat_json(c, &ps, sc->host);
    proc_stat_free(&ps);
    return 0;
}

static void stat_shutdown(void *ctx)
{
    struct stat_ctx *c = ctx;
    buf_free(&c->raw);
    free(c);
}

const struct collector collect_proc_stat = {"cpu", stat_init, stat_sample, stat_shutdown};
