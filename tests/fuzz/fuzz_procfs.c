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

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct meminfo_field mem[64];
    static struct netdev net[16];
    static struct diskstat disk[16];
    static struct mount_entry mounts[16];
    struct proc_stat ps;
    char id[65];
    char *s;
    struct buf b;

    s = dup_input(data, size);
    if (proc_stat_parse(s, size, 100.0, &ps) == 0)
        proc_stat_free(&ps);
    else
        proc_stat_free(&ps);
    free(s);
    s = dup_input(data, size);
    meminfo_parse(s, size, mem, 64);
    free(s);
    s = dup_input(data, size);
    netdev_parse(s, size, net, 16);
    free(s);
    s = dup_input(data, size);
    diskstats_parse(s, size, disk, 16);
    free(s);
    s = dup_input(data, size);
    mounts_parse(s, size, mounts, 16);
    free(s);
    s = dup_input(data, size);
    procinfo_container_id(s, id);
    buf_init(&b, 0);
    expo_escape_label_value(&b, s);
    buf_free(&b);
    free(s);
    return 0;
}
