/* What an app and a template are: the fields a user sends to install an
 * app (over a template's values), the container that runs it, and the
 * templates of the marketplace — ours and Portainer's v2 app templates.
 * Pure functions of their input (no database), so the fuzz target reaches
 * every check. */
#ifndef GF_APPSPEC_H
#define GF_APPSPEC_H

#include <jansson.h>
#include <stdint.h>

#include "../lib/errinfo.h"

#define APPSPEC_MAX_TEMPLATES 500
#define APPSPEC_CONTAINER_PREFIX "app-"

struct appspec_defaults {
    const char *image;        /* when neither the body nor the template names one */
    int64_t health_timeout_s; /* STARTING this long without answering: FAILED */
};

/* Whether url is a repository an app may come from: https://, http://,
 * git://, ssh:// or user@host:path (ctrspec_valid_git_url), no "#" (the ref
 * is its own field), and no part of it that a git program could take for
 * an option ("-u", "--upload-pack=..."). 0, or -1 with e naming field. */
int appspec_check_repository(const char *url, const char *field, struct errinfo *e);

/* A private repository's credentials (repository_auth) for repo:
 * {"username","password"} (a token) for http(s), {"ssh_key"[,"username",
 * "passphrase","host_key"]} for ssh, which needs them. *auth gets a new
 * object with every field, or NULL for none. 0, or -1 with e naming
 * repository_auth. */
int appspec_parse_auth(const json_t *cred, const char *repo, json_t **auth, struct errinfo *e);

/* A request to install an app, over tpl's values where tpl (a template as
 * appspec_template returns) is not NULL; body wins. Fields: name,
 * repository, ref, start_command, port, health_path, image, gpus, cpus,
 * memory, env, host, template, run_as_root, health_timeout_s,
 * repository_auth ({"username","password"} for an http(s) repository: kept
 * in *app, which the caller must take out before it shows it). On success
 * *app is the app as stored (every field filled) and *ctr the body of a
 * POST /api/v1/containers that runs it; new references. 0, or -1 with e
 * (400 naming the field: "env.NAME" for a template's variable). */
int appspec_parse(const json_t *body, const json_t *tpl, const struct appspec_defaults *d, json_t **app,
                  json_t **ctr, struct errinfo *e);

/* A template, checked and with every field filled: slug, title, summary,
 * repository, ref, port, health_path, start_command, image, gpus
 * {"count","min_memory_mib"}, env [{"name","default","description",
 * "required","options"}], logo, categories, promoted_from. New reference,
 * or NULL with e (400 naming the field). */
json_t *appspec_template(const json_t *in, struct errinfo *e);

/* The template an installed app makes (its fields as defaults, its env
 * as variables, values of names with TOKEN, PASSWORD, SECRET or KEY left
 * out). New reference, to be checked with appspec_template. */
json_t *appspec_template_of(const json_t *app, const char *slug, const char *title);

/* A file of templates: ours ({"gpufleet_templates":1,"templates":[...]})
 * or Portainer's v2 ({"version":"2","templates":[...]}: container
 * templates with a port become templates; each one that cannot, with why,
 * goes to *skipped). The templates checked, a new array; NULL with e when
 * the file is neither or a template of ours is bad. */
json_t *appspec_templates_import(const json_t *in, json_t **skipped, struct errinfo *e);

#endif
