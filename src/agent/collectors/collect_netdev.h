/* /proc/net/dev: per-interface counters. */
#ifndef GF_COLLECT_NETDEV_H
#define GF_COLLECT_NETDEV_H

#include <stddef.h>

#define NETDEV_FIELDS 16

struct netdev {
    char name[64];
    double v[NETDEV_FIELDS]; /* in /proc/net/dev column order */
};

/* node_exporter's statistic names for the 16 columns ("receive_bytes", ...). */
extern const char *const netdev_field_names[NETDEV_FIELDS];

/* Parses /proc/net/dev text (modified in place). Returns the number of
 * interfaces stored (at most max). */
size_t netdev_parse(char *text, size_t len, struct netdev *out, size_t max);

#endif
