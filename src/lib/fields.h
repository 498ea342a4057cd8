/* The one vocabulary of GPU and host figures: each GPU metric's
 * dcgm-exporter name, its field name in JSON (the agent's snapshot, the
 * live fleet, the web UI: the unit is in the name, so "kilobytes" is never
 * misread as kilobits), its unit and label for people, its type and help
 * for /metrics. The agent, the server's fleet state and the UI all read
 * this table; the UI through web/src/gen/fields.ts, which tools/gen_fields.c
 * writes from it at build time. */
#ifndef GF_FIELDS_H
#define GF_FIELDS_H

#include <stddef.h>

#include "expo.h"

enum gpu_metric {
    GM_GPU_UTIL, GM_MEM_UTIL, GM_ENC_UTIL, GM_DEC_UTIL,
    GM_FB_FREE, GM_FB_USED, GM_FB_TOTAL, GM_FB_RESERVED,
    GM_GPU_TEMP, GM_MEM_TEMP, GM_POWER, GM_POWER_LIMIT, GM_ENERGY,
    GM_SM_CLOCK, GM_MEM_CLOCK, GM_FAN, GM_PCIE_TX, GM_PCIE_RX, GM_CLOCK_REASONS,
    GM_ECC_SBE_VOL, GM_ECC_DBE_VOL, GM_ECC_SBE_AGG, GM_ECC_DBE_AGG,
    GM_REMAP_CORR, GM_REMAP_UNC, GM_REMAP_PENDING, GM_REMAP_FAILURE,
    GM_PSTATE, GM_MIG_MODE, GM_XID_LAST, GM_COUNT
};

struct gpu_field {
    const char *metric; /* dcgm-exporter's name */
    const char *field;  /* JSON field, unit in the name */
    const char *unit;   /* for people: "%", "MiB", "°C", "W", "KB/s" */
    const char *label;  /* for people: "Utilization" */
    enum expo_type type;
    const char *help;   /* the /metrics HELP text */
    int live;           /* carried by the live fleet state to browsers */
};

extern const struct gpu_field gpu_fields[GM_COUNT];

/* The metric named name[0..len), or -1. */
int gpu_field_by_metric(const char *name, size_t len);

/* A host's figures as the live fleet derives them from node_exporter-named
 * series (rates from counters, used from total and available). */
enum host_figure {
    HF_CPU, HF_MEM_USED, HF_MEM_TOTAL, HF_DISK_USED, HF_DISK_TOTAL, HF_NET_RX, HF_NET_TX,
    HF_LOAD1, HF_COUNT
};

struct host_field {
    const char *field;
    const char *unit;
    const char *label;
};

extern const struct host_field host_fields[HF_COUNT];

#endif
