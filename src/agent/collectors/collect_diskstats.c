/* Disk collector (node_exporter's diskstats collector, same names, units and
 * default device filter). */
#include "collect_diskstats.h"

#include <ctype.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../lib/xalloc.h"
#include "../collector.h"
#include "../procfs.h"

#define DISK_MAX 256
#define SECTOR_BYTES 512.0

int diskstats_ignored(const char *name)
{
    static regex_t re;
    static int compiled = 0;

    if (!compiled) {
        /* node_exporter 1.5 --collector.diskstats.device-exclude default */
        if (regcomp(&re, "^(ram|loop|fd|(h|s|v|xv)d[a-z]|nvme[0-9]+n[0-9]+p)[0-9]+$",
                    REG_EXTENDED | REG_NOSUB) != 0)
            return 0;
        compiled = 1;
    }
    return regexec(&re, name, 0, NULL, 0) == 0;
}

size_t diskstats_parse(char *text, size_t len, struct diskstat *out, size_t max)
{
    size_t pos = 0, n = 0;
    char *line;

    while (n < max && (line = procfs_next_line(text, len, &pos))) {
        char *save = NULL;
        char *maj = strtok_r(line, " \t", &save);
        char *min = maj ? strtok_r(NULL, " \t", &save) : NULL;
        char *name = min ? strtok_r(NULL, " \t", &save) : NULL;
        char *tok;
        int k = 0;

        if (!name || strlen(name) >= sizeof(out[n].name) || diskstats_ignored(name))
            continue;
        while (k < DISK_FIELDS && (tok = strtok_r(NULL, " \t", &save))) {
            char *end;
            out[n].v[k] = (double)strtoull(tok, &end, 10);
            if (*end)
                break;
            k++;
        }
        if (k < 11)
            continue;
        strcpy(out[n].name, name);
        out[n].nfields = k;
        n++;
    }
    return n;
}

/* column index, metric, type, scale, help */
static const struct {
    int col;
    const char *name;
    enum expo_type type;
    double scale;
    const char *help;
} disk_metrics[] = {
    {0, "node_disk_reads_completed_total", EXPO_COUNTER, 1, "The total number of reads completed successfully."},
    {1, "node_disk_reads_merged_total", EXPO_COUNTER, 1, "The total number of reads merged."},
    {2, "node_disk_read_bytes_total", EXPO_COUNTER, SECTOR_BYTES, "The total number of bytes read successfully."},
    {3, "node_disk_read_time_seconds_total", EXPO_COUNTER, 0.001, "The total number of seconds spent by all reads."},
    {4, "node_disk_writes_completed_total", EXPO_COUNTER, 1, "The total number of writes completed successfully."},
    {5, "node_disk_writes_merged_total", EXPO_COUNTER, 1, "The number of writes merged."},
    {6, "node_disk_written_bytes_total", EXPO_COUNTER, SECTOR_BYTES, "The total number of bytes written successfully."},
    {7, "node_disk_write_time_seconds_total", EXPO_COUNTER, 0.001, "This is the total number of seconds spent by all writes."},
    {8, "node_disk_io_now", EXPO_GAUGE, 1, "The number of I/Os currently in progress."},
    {9, "node_disk_io_time_seconds_total", EXPO_COUNTER, 0.001, "Total seconds spent doing I/Os."},
    {10, "node_disk_io_time_weighted_seconds_total", EXPO_COUNTER, 0.001, "The weighted # of seconds spent doing I/Os."},
    {11, "node_disk_discards_completed_total", EXPO_COUNTER, 1, "The total number of discards completed successfully."},
    {12, "node_disk_discards_merged_total", EXPO_COUNTER, 1, "The total number of discards merged."},
    {13, "node_disk_discarded_sectors_total", EXPO_COUNTER, 1, "The total number of sectors discarded successfully."},
    {14, "node_disk_discard_time_seconds_total", EXPO_COUNTER, 0.001, "This is the total number of seconds spent by all discards."},
    {15, "node_disk_flush_requests_total", EXPO_COUNTER, 1, "The total number of flush requests completed successfully"},
    {16, "node_disk_flush_requests_time_seconds_total", EXPO_COUNTER, 0.001, "This is the total number of seconds spent by all flush requests."},
};

struct disk_ctx {
    struct buf raw;
    struct diskstat disks[DISK_MAX];
};

static int disk_init(void **ctx, const struct agent_options *opts)
{
    struct disk_ctx *c = xcalloc(1, sizeof(*c));
    (void)opts;
    buf_init(&c->raw, 0);
    *ctx = c;
    return 0;
}

static int disk_sample(void *ctx, struct sample_ctx *sc)
{
    struct disk_ctx *c = ctx;
    size_t n;

    if (procfs_read(sc->opts->proc_root, "proc/diskstats", &c->raw) < 0)
        return -1;
    n = diskstats_parse(c->raw.data, c->raw.len, c->disks, DISK_MAX);
    for (size_t m = 0; m < sizeof(disk_metrics) / sizeof(disk_metrics[0]); m++) {
        expo_family(sc->w, disk_metrics[m].name, disk_metrics[m].type, disk_metrics[m].help);
        for (size_t i = 0; i < n; i++) {
            if (disk_metrics[m].col >= c->disks[i].nfields)
                continue;
            struct expo_label l = {"device", c->disks[i].name};
            expo_sample(sc->w, &l, 1, c->disks[i].v[disk_metrics[m].col] * disk_metrics[m].scale);
        }
    }
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++) {
        const double *v = c->disks[i].v;
        json_array_append_new(
            arr, json_pack("{s:s, s:I, s:I, s:I, s:I, s:f}", "device", c->disks[i].name,
                           "reads_completed", (json_int_t)v[0], "read_bytes",
                           (json_int_t)(v[2] * SECTOR_BYTES), "writes_completed",
                           (json_int_t)v[4], "written_bytes", (json_int_t)(v[6] * SECTOR_BYTES),
                           "io_time_s", v[9] / 1000.0));
    }
    json_object_set_new(sc->host, "disks", arr);
    return 0;
}

static void disk_shutdown(void *ctx)
{
    struct disk_ctx *c = ctx;
    buf_free(&c->raw);
    free(c);
}

const struct collector collect_diskstats = {"diskstats", disk_init, disk_sample, disk_shutdown};
