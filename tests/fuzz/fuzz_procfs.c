/* Fuzzes every /proc and cgroup parser, and the exposition escaper that
 * their strings (interface names, mount points) flow into. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../src/agent/collectors/collect_diskstats.h"
#include "../../src/agent/collectors/collect_filesystem.h"
#include "../../src/agent/collectors/collect_meminfo.h"
#include "../../src/agent/collectors/collect_netdev.h"
#include "../../src/agent/collectors/collect_proc_stat.h"
#include "../../src/agent/procinfo.h"
#include "../../src/lib/expo.h"

static char *dup_input(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    memcpy(s, data, size);
    s[size] = '\0';
    return s;
}

static struct meminfo_field mem[64];
static struct netdev net[16];
static struct diskstat disk[16];
static struct mount_entry mounts[16];

static void run_stat(char *s, size_t n)
{
    struct proc_stat ps;
    proc_stat_parse(s, n, 100.0, &ps);
    proc_stat_free(&ps);
}
static void run_meminfo(char *s, size_t n) { meminfo_parse(s, n, mem, 64); }
static void run_netdev(char *s, size_t n) { netdev_parse(s, n, net, 16); }
static void run_diskstats(char *s, size_t n) { diskstats_parse(s, n, disk, 16); }
static void run_mounts(char *s, size_t n) { mounts_parse(s, n, mounts, 16); }
static void run_cgroup(char *s, size_t n)
{
    char id[65];
    struct buf b;
    (void)n;
    procinfo_container_id(s, id);
    buf_init(&b, 0);
    expo_escape_label_value(&b, s);
    buf_free(&b);
}

/* The parsers modify their input, so each gets a fresh copy. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static void (*const parsers[])(char *, size_t) = {run_stat,      run_meminfo, run_netdev,
                                                       run_diskstats, run_mounts,  run_cgroup};

    for (size_t i = 0; i < sizeof(parsers) / sizeof(parsers[0]); i++) {
        char *s = dup_input(data, size);
        parsers[i](s, size);
        free(s);
    }
    return 0;
}
