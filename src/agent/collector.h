/* The collector table (collectd's four callbacks, netdata's module list):
 * adding a metric source is one file and one row in collectors.c. */
#ifndef GF_AGENT_COLLECTOR_H
#define GF_AGENT_COLLECTOR_H

#include <jansson.h>
#include <stdint.h>

#include "../lib/expo.h"
#include "options.h"

/* What a collector writes one sample into. Called on the sampler thread only. */
struct sample_ctx {
    struct expo_writer *w; /* Prometheus families; each family written contiguously */
    json_t *host;          /* snapshot JSON object "host" */
    json_t *root;          /* snapshot JSON root, for top-level parts ("gpus") */
    int64_t ts_ms;
    const char *hostname;
    const struct agent_options *opts;
};

struct collector {
    const char *name;
    /* Sets *ctx; returns 0, or -1 when the source can never work here (the
     * collector is then left out, with the reason logged by it). */
    int (*init)(void **ctx, const struct agent_options *opts);
    /* Writes one sample. Returns 0, or -1 when this read failed: the sampler
     * counts the error and backs off from a collector that keeps failing. */
    int (*sample)(void *ctx, struct sample_ctx *sc);
    void (*shutdown)(void *ctx);
};

/* The compile-time table, in exposition order. */
extern const struct collector *const collector_table[];
extern const size_t collector_count;

#endif
