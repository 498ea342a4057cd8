/* Credentials of container registries, for pulls from private registries,
 * pushes and builds: DATA/registry_auth.json, owner-only, one entry per
 * registry (host[:port]). Passwords are written, used and never shown. */
#ifndef GF_REGAUTH_H
#define GF_REGAUTH_H

#include <jansson.h>

#include "../lib/errinfo.h"

/* [{"registry","user","has_password"}]: never a password. */
json_t *regauth_list(const char *data_dir);

/* Sets (replaces) the credentials of registry. 0, or -1 with e (400
 * naming "registry", "user" or "password"; 500 when the file cannot be
 * written). */
int regauth_set(const char *data_dir, const char *registry, const char *user, const char *password,
                struct errinfo *e);

/* 0, or -1 with e (404). */
int regauth_delete(const char *data_dir, const char *registry, struct errinfo *e);

/* The registry an image reference names: its first component when that
 * has a '.' or a ':' or is "localhost", else "docker.io". */
void regauth_registry_of(const char *image, char *out, size_t outlen);

/* {"username","password","serveraddress"} for image's registry (a new
 * reference), or NULL when none is set. */
json_t *regauth_for_image(const char *data_dir, const char *image);

#endif
