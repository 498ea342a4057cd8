/* /proc/diskstats: per-disk I/O counters, partitions left out. */
#ifndef GF_COLLECT_DISKSTATS_H
#define GF_COLLECT_DISKSTATS_H

#include <stddef.h>

#define DISK_FIELDS 17 /* columns after major, minor and name (kernel 5.5+) */

struct diskstat {
    char name[64];
    double v[DISK_FIELDS];
    int nfields;
};

/* Whether node_exporter's default filter leaves device name out
 * (partitions, ram, loop, fd). */
int diskstats_ignored(const char *name);

/* Parses /proc/diskstats text (modified in place), skipping ignored devices.
 * Returns the number stored (at most max). */
size_t diskstats_parse(char *text, size_t len, struct diskstat *out, size_t max);

#endif
