/* The fleet for a Prometheus that already runs: every agent and extra
 * target as target groups of Prometheus's HTTP service discovery (the same
 * JSON is a file_sd file), and a ready scrape configuration. */
#ifndef GF_PROMSD_H
#define GF_PROMSD_H

#include <jansson.h>
#include <stdio.h>

#include "registry.h"

/* The target groups of every target, one group per target: "targets"
 * [host:port] and "labels" (job, server, __scheme__, __metrics_path__,
 * __param_* from the URL's query where the name makes a label name, the
 * server's labels except where they would replace one of these, and __meta_gpufleet_* for relabelling:
 * server, server_id, kind agent|exporter, token "true" when the server holds
 * a bearer token for it, label_<name> for every server label). Never a
 * token. Caller owns the array. */
json_t *promsd_groups(struct registry *r);

/* What the scrape configuration says. */
struct promsd_config {
    const char *sd_url;          /* the SD endpoint as Prometheus reaches it */
    const char *sd_token_file;   /* a viewer token for it, on Prometheus's side */
    const char *scrape_interval; /* "15s" */
    /* Whether Prometheus must send t's bearer token (an agent run with
     * metrics_need_token); NULL: never. */
    int (*needs_token)(void *arg, const struct reg_target *t);
    void *arg;
};

/* Writes a Prometheus scrape_configs document for the fleet to f: one
 * http_sd job over the SD endpoint, and one static job with its token for
 * each target that has one and needs it (which the SD job then drops). Every
 * string is a double-quoted YAML scalar. Returns 0, or -1 on a write error. */
int promsd_write_config(FILE *f, struct registry *r, const struct promsd_config *c);

#endif
