/* /proc/meminfo: every field, named as node_exporter names them. */
#ifndef GF_COLLECT_MEMINFO_H
#define GF_COLLECT_MEMINFO_H

#include <stddef.h>

struct meminfo_field {
    char name[64];  /* node_exporter style: "Active_anon" for "Active(anon)" */
    double value;   /* bytes when has_unit, else a count */
    int has_unit;   /* the line ended in "kB" */
};

/* Parses meminfo text (modified in place) into up to max fields. Returns the
 * number parsed. */
size_t meminfo_parse(char *text, size_t len, struct meminfo_field *out, size_t max);

/* Value of field name in fields, or -1 when absent. */
double meminfo_get(const struct meminfo_field *f, size_t n, const char *name);

#endif
