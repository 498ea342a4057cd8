/* An app's docker-compose.yml and the compose labels of its container:
 * the container gpufleet makes for an app is the one `docker compose up`
 * in the app's folder would make, and `docker compose ps` there shows it. */
#ifndef GF_COMPOSE_H
#define GF_COMPOSE_H

#include <jansson.h>

#include "../lib/buf.h"
#include "../lib/ctrspec.h"
#include "../lib/errinfo.h"

#define COMPOSE_FILE "docker-compose.yml"
#define COMPOSE_SERVICE "app"

/* The text of s's compose file (s->app set; dir its folder on the host)
 * appended to out. Every value is written as a JSON string, which YAML
 * reads as the same string, so nothing in s can add a key. */
void compose_text(const struct ctrspec *s, const char *dir, struct buf *out);

/* Writes dir/docker-compose.yml (through a temporary file and a rename).
 * 0, or -1 with e. */
int compose_write(const struct ctrspec *s, const char *dir, struct errinfo *e);

/* Adds the labels compose gives a service's container to labels. */
void compose_labels(json_t *labels, const struct ctrspec *s, const char *dir);

#endif
