/* What scraped exporters say of their metric families (TYPE, HELP, UNIT),
 * kept in memory for Prometheus's /api/v1/metadata (Grafana's query editor
 * shows it). Bounded: families past the bound are not kept. */
#ifndef GF_METADATA_H
#define GF_METADATA_H

#include <stddef.h>

#include "../lib/buf.h"

struct metadata;

/* A table of at most max_families (0: 20,000). */
struct metadata *metadata_new(size_t max_families);
void metadata_free(struct metadata *md);

/* Records a family's type (enum prom_type), help and unit (either may be
 * NULL). Any thread; cheap when nothing changed. */
void metadata_note(struct metadata *md, const char *family, int type, const char *help,
                   const char *unit);

/* Appends {"family":[{"type":..,"help":..,"unit":..}], ...} for metric
 * (NULL: all), at most limit families (0: all), in name order. */
void metadata_json(struct metadata *md, const char *metric, size_t limit, struct buf *out);

#endif
