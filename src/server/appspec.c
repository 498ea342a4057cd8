/* Apps and templates as data (see appspec.h). */
#include "appspec.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../lib/ctrspec.h"

#define MAX_COMMAND 4096
#define MAX_TITLE 100
#define MAX_SUMMARY 1000
#define MAX_LOGO 2048
#define MAX_CATEGORIES 10
#define MAX_VARS 64
#define MAX_VALUE 32768

static int bad(struct errinfo *e, const char *field, const char *msg)
{
    errinfo_set(e, 400, "invalid_field", field, "%s", msg);
    return -1;
}

/* A string field of at most max bytes without NUL or control characters
 * (newline and tab allowed where lines is set); absent is "" unless
 * required. The value, or NULL with e. */
static const char *text(const json_t *o, const char *key, size_t max, int required, int lines, struct errinfo *e)
{
    json_t *v = json_object_get(o, key);
    const char *s;

    if (!v || json_is_null(v)) {
        if (required) {
            errinfo_set(e, 400, "invalid_field", key, "%s is required", key);
            return NULL;
        }
        return "";
    }
    if (!json_is_string(v) || json_string_length(v) > max || strlen(json_string_value(v)) != json_string_length(v)) {
        errinfo_set(e, 400, "invalid_field", key, "%s must be a string of at most %zu bytes", key, max);
        return NULL;
    }
    s = json_string_value(v);
    for (const char *c = s; *c; c++)
        if ((unsigned char)*c < 0x20 && !(lines && (*c == '\n' || *c == '\t'))) {
            errinfo_set(e, 400, "invalid_field", key, "%s has a control character", key);
            return NULL;
        }
    if (required && !*s) {
        errinfo_set(e, 400, "invalid_field", key, "%s is required", key);
        return NULL;
    }
    return s;
}

int appspec_parse_auth(const json_t *cred, const char *repo, json_t **auth, struct errinfo *e)
{
    struct errinfo ce = {0};
    int ssh = ctrspec_git_is_ssh(repo);

    *auth = NULL;
    if (!cred || json_is_null(cred)) {
        if (ssh)
            return bad(e, "repository_auth", "an ssh repository needs repository_auth {\"ssh_key\"} (a deploy key)");
        return 0;
    }
    if (!json_is_object(cred) || !*repo || !strncmp(repo, "git://", 6))
        return bad(e, "repository_auth", "repository_auth is {\"username\",\"password\"} (a token) for an https://"
                                         " repository, {\"ssh_key\"} for an ssh one");
    const char *u = text(cred, "username", 255, !ssh, 0, &ce);
    if (ssh) {
        const char *key = u ? text(cred, "ssh_key", 16000, 1, 1, &ce) : NULL;
        const char *pp = key ? text(cred, "passphrase", 255, 0, 0, &ce) : NULL;
        const char *hk = pp ? text(cred, "host_key", 63, 0, 0, &ce) : NULL;
        if (!hk || !strstr(key, "PRIVATE KEY-----"))
            return bad(e, "repository_auth", "repository_auth of an ssh repository is {\"ssh_key\": a private key"
                                             " (-----BEGIN ... PRIVATE KEY-----), \"username\", \"passphrase\", \"host_key\""
                                             " (SHA256:...)}, all but the key optional");
        if (*hk && (strncmp(hk, "SHA256:", 7) || strlen(hk) != 50))
            return bad(e, "repository_auth", "repository_auth.host_key is a SHA256:... fingerprint as ssh-keygen -l prints it");
        *auth = json_pack("{s:s, s:s, s:s, s:s}", "username", u, "ssh_key", key, "passphrase", pp, "host_key", hk);
        return 0;
    }
    const char *pw = u ? text(cred, "password", 1023, 1, 0, &ce) : NULL;
    if (!pw)
        return bad(e, "repository_auth", "repository_auth is {\"username\",\"password\"} (a token) for an https://"
                                         " repository, {\"ssh_key\"} for an ssh one");
    *auth = json_pack("{s:s, s:s}", "username", u, "password", pw);
    return 0;
}

int appspec_check_repository(const char *url, const char *field, struct errinfo *e)
{
    char u[1100], ref[300], folder[1100];

    if (!ctrspec_valid_git_url(url)) {
        errinfo_set(e, 400, "invalid_field", field,
                    "%s must be an https://, http://, git://, ssh:// or user@host:path URL of a git repository (at most 1024 bytes)",
                    field);
        return -1;
    }
    if (strchr(url, '#')) {
        errinfo_set(e, 400, "invalid_field", field, "%s has no \"#\": the branch, tag or commit is \"ref\"", field);
        return -1;
    }
    if (ctrspec_git_split(url, field, u, sizeof(u), ref, sizeof(ref), folder, sizeof(folder), e) < 0)
        return -1;
    /* the user, the host and every path part: none may read as an option of git */
    const char *p = strstr(url, "://");
    for (const char *seg = p ? p + 3 : url; *seg;) {
        if (*seg == '-') {
            errinfo_set(e, 400, "invalid_field", field, "%s has a part starting with '-' (it would read as an option)",
                        field);
            return -1;
        }
        const char *next = strpbrk(seg, "/?&=@:");
        if (!next)
            break;
        seg = next + 1;
    }
    return 0;
}

static int check_ref(const char *ref, struct errinfo *e)
{
    if (*ref && !ctrspec_valid_git_ref(ref))
        return bad(e, "ref", "ref is a branch, a tag or a commit: letters, digits, '.', '_', '/', '-' (not first), no \"..\"");
    return 0;
}

static int check_port(const json_t *v, const char *field, int required, int *port, struct errinfo *e)
{
    *port = 0;
    if (!v || json_is_null(v)) {
        if (required)
            return bad(e, field, "port is required: the HTTP port the app listens on in its container");
        return 0;
    }
    if (!json_is_integer(v) || json_integer_value(v) < 1 || json_integer_value(v) > 65535)
        return bad(e, field, "port must be 1 to 65535");
    *port = (int)json_integer_value(v);
    return 0;
}

static int check_health_path(const char *p, struct errinfo *e)
{
    size_t n = strlen(p);
    if (!n)
        return 0;
    if (p[0] != '/' || n > 512)
        return bad(e, "health_path", "health_path starts with '/' (at most 512 bytes)");
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)p[i] <= ' ' || (unsigned char)p[i] >= 127 || strchr("\"\\#<>", p[i]))
            return bad(e, "health_path", "health_path is printable ASCII without spaces, quotes or '#'");
    return 0;
}

/* ---- templates ---- */

/* One variable of a template's env. New reference, or NULL with e. */
static json_t *template_var(const json_t *in, struct errinfo *e)
{
    const char *name, *def, *desc;
    json_t *opts = json_object_get(in, "options"), *req = json_object_get(in, "required");
    char field[160];

    if (!json_is_object(in)) {
        bad(e, "env", "each variable of env is an object {\"name\",\"default\",\"description\",\"required\",\"options\"}");
        return NULL;
    }
    if (!(name = text(in, "name", 128, 1, 0, e)) || !ctrspec_valid_env_name(name)) {
        if (name)
            bad(e, "env", "a variable's name is letters, digits and '_' (not first a digit)");
        return NULL;
    }
    snprintf(field, sizeof(field), "env.%s", name);
    if (!(def = text(in, "default", MAX_VALUE, 0, 1, e)) || !(desc = text(in, "description", MAX_SUMMARY, 0, 1, e))) {
        snprintf(e->field, sizeof(e->field), "%.63s", field);
        return NULL;
    }
    if (req && !json_is_boolean(req)) {
        bad(e, field, "required is true or false");
        return NULL;
    }
    json_t *out = json_pack("{s:s, s:s, s:s, s:b}", "name", name, "default", def, "description", desc, "required",
                            json_is_true(req));
    if (opts && !json_is_null(opts)) {
        size_t i;
        json_t *o;
        int has_default = !*def;
        if (!json_is_array(opts) || !json_array_size(opts) || json_array_size(opts) > 100)
            goto bad_opts;
        json_array_foreach(opts, i, o) {
            if (!json_is_string(o) || json_string_length(o) > 1024 || strlen(json_string_value(o)) != json_string_length(o))
                goto bad_opts;
            has_default |= !strcmp(json_string_value(o), def);
        }
        if (!has_default) {
            bad(e, field, "the default is not one of the options");
            json_decref(out);
            return NULL;
        }
        json_object_set(out, "options", opts);
    }
    return out;
bad_opts:
    bad(e, field, "options is a list of 1 to 100 strings");
    json_decref(out);
    return NULL;
}

json_t *appspec_template(const json_t *in, struct errinfo *e)
{
    static const char *const known[] = {"slug", "title", "summary", "repository", "ref", "port", "health_path",
                                        "start_command", "image", "gpus", "env", "logo", "categories",
                                        "promoted_from", "builtin", "updated_ms"};
    const char *slug, *title, *summary, *repo, *ref, *hp, *cmd, *image, *logo, *from;
    json_t *out = NULL, *env = NULL, *cats = NULL, *gpus, *v;
    const char *k;
    int port, count = 0;
    int64_t minmem = 0;
    size_t i;

    if (!json_is_object(in)) {
        bad(e, "body", "a template is a JSON object");
        return NULL;
    }
    json_object_foreach((json_t *)in, k, v) {
        int ok = 0;
        for (i = 0; i < sizeof(known) / sizeof(known[0]); i++)
            ok |= !strcmp(k, known[i]);
        if (!ok) {
            errinfo_set(e, 400, "invalid_field", k, "unknown field '%.60s'", k);
            return NULL;
        }
    }
    if (!(slug = text(in, "slug", 63, 1, 0, e)) || !(title = text(in, "title", MAX_TITLE, 1, 0, e)) ||
        !(summary = text(in, "summary", MAX_SUMMARY, 0, 1, e)) || !(repo = text(in, "repository", 1024, 0, 0, e)) ||
        !(ref = text(in, "ref", 255, 0, 0, e)) || !(hp = text(in, "health_path", 512, 0, 0, e)) ||
        !(cmd = text(in, "start_command", MAX_COMMAND, 0, 1, e)) || !(image = text(in, "image", 255, 0, 0, e)) ||
        !(logo = text(in, "logo", MAX_LOGO, 0, 0, e)) || !(from = text(in, "promoted_from", 63, 0, 0, e)))
        return NULL;
    if (!ctrspec_valid_app_name(slug)) {
        bad(e, "slug", "slug is 1-63 lowercase letters, digits or '-', not at either end");
        return NULL;
    }
    if ((*repo && appspec_check_repository(repo, "repository", e) < 0) || check_ref(ref, e) < 0 ||
        check_port(json_object_get(in, "port"), "port", 1, &port, e) < 0 || check_health_path(hp, e) < 0)
        return NULL;
    if (*image && !ctrspec_valid_image(image)) {
        bad(e, "image", "image must be a reference like registry:5000/team/app:1.2 (lowercase repository)");
        return NULL;
    }
    if (*logo && strncmp(logo, "https://", 8) && strncmp(logo, "/", 1) && strncmp(logo, "data:image/", 11)) {
        bad(e, "logo", "logo is an https:// URL, a path on this server, or a data:image/ URL");
        return NULL;
    }
    gpus = json_object_get(in, "gpus");
    if (gpus && !json_is_null(gpus)) {
        json_t *c = json_object_get(gpus, "count"), *m = json_object_get(gpus, "min_memory_mib");
        if (!json_is_object(gpus) || (c && (!json_is_integer(c) || json_integer_value(c) < 0 || json_integer_value(c) > 16)) ||
            (m && (!json_is_integer(m) || json_integer_value(m) < 0 || json_integer_value(m) > (1 << 30)))) {
            bad(e, "gpus", "gpus is {\"count\": 0..16, \"min_memory_mib\": MiB}");
            return NULL;
        }
        count = (int)json_integer_value(c);
        minmem = json_integer_value(m);
    }
    env = json_array();
    v = json_object_get(in, "env");
    if (v && !json_is_null(v)) {
        json_t *x;
        if (!json_is_array(v) || json_array_size(v) > MAX_VARS) {
            bad(e, "env", "env is a list of at most 64 variables");
            goto fail;
        }
        json_array_foreach(v, i, x) {
            json_t *var = template_var(x, e);
            if (!var)
                goto fail;
            for (size_t j = 0; j < json_array_size(env); j++)
                if (!strcmp(json_string_value(json_object_get(json_array_get(env, j), "name")),
                            json_string_value(json_object_get(var, "name")))) {
                    json_decref(var);
                    bad(e, "env", "a variable is listed twice");
                    goto fail;
                }
            json_array_append_new(env, var);
        }
    }
    cats = json_array();
    v = json_object_get(in, "categories");
    if (v && !json_is_null(v)) {
        json_t *x;
        if (!json_is_array(v) || json_array_size(v) > MAX_CATEGORIES) {
            bad(e, "categories", "categories is a list of at most 10 words");
            goto fail;
        }
        json_array_foreach(v, i, x) {
            if (!json_is_string(x) || !json_string_length(x) || json_string_length(x) > 40 ||
                strlen(json_string_value(x)) != json_string_length(x)) {
                bad(e, "categories", "a category is 1 to 40 bytes of text");
                goto fail;
            }
            json_array_append(cats, x);
        }
    }
    out = json_pack("{s:s, s:s, s:s, s:s, s:s, s:i, s:s, s:s, s:s, s:{s:i, s:I}, s:O, s:s, s:O, s:s}", "slug", slug,
                    "title", title, "summary", summary, "repository", repo, "ref", ref, "port", port, "health_path",
                    hp, "start_command", cmd, "image", image, "gpus", "count", count, "min_memory_mib",
                    (json_int_t)minmem, "env", env, "logo", logo, "categories", cats, "promoted_from", from);
fail:
    json_decref(env);
    json_decref(cats);
    return out;
}

json_t *appspec_template_of(const json_t *app, const char *slug, const char *title)
{
    json_t *env = json_array(), *v, *g = json_object_get(app, "gpus");
    const char *k;
    int count = json_is_integer(g) ? (int)json_integer_value(g) : (int)json_integer_value(json_object_get(g, "count"));

    /* a value that looks like a secret is not passed on to everyone */
    json_object_foreach(json_object_get(app, "env"), k, v) {
        int secret = strstr(k, "TOKEN") || strstr(k, "PASSWORD") || strstr(k, "SECRET") || strstr(k, "KEY");
        json_array_append_new(env, json_pack("{s:s, s:s, s:s, s:b}", "name", k, "default",
                                             secret ? "" : json_string_value(v), "description",
                                             secret ? "kept by the app it was promoted from" : "", "required", 0));
    }
    return json_pack("{s:s, s:s, s:s, s:O, s:O, s:O, s:O, s:O, s:O, s:{s:i, s:O*}, s:o, s:s, s:[], s:O}", "slug",
                     slug, "title", title, "summary", "", "repository", json_object_get(app, "repository"), "ref",
                     json_object_get(app, "ref"), "port", json_object_get(app, "port"), "health_path",
                     json_object_get(app, "health_path"), "start_command", json_object_get(app, "start_command"),
                     "image", json_object_get(app, "image"), "gpus", "count", count < 0 ? 0 : count,
                     "min_memory_mib", json_object_get(g, "min_memory_mib"), "env", env, "logo", "", "categories",
                     "promoted_from", json_object_get(app, "name"));
}

/* ---- apps ---- */

/* The app's env: the template's variables (defaults, required, options)
 * under the body's values. New reference, or NULL with e. */
static json_t *merge_env(const json_t *body_env, const json_t *tpl, struct errinfo *e)
{
    json_t *out = json_object(), *var, *v;
    const char *k;
    size_t i;
    char field[160];

    if (body_env && !json_is_null(body_env) && !json_is_object(body_env)) {
        bad(e, "env", "env must be an object of NAME: \"value\" pairs");
        goto fail;
    }
    json_array_foreach(json_object_get(tpl, "env"), i, var) {
        const char *name = json_string_value(json_object_get(var, "name"));
        json_t *given = json_object_get(body_env, name), *opts = json_object_get(var, "options");
        const char *value = json_is_string(given) ? json_string_value(given)
                                                  : json_string_value(json_object_get(var, "default"));
        snprintf(field, sizeof(field), "env.%s", name);
        if (given && !json_is_string(given)) {
            bad(e, field, "a variable's value is a string");
            goto fail;
        }
        if (!*value && json_is_true(json_object_get(var, "required"))) {
            errinfo_set(e, 400, "invalid_field", field, "%s is required by the template", name);
            goto fail;
        }
        if (opts && *value) {
            int found = 0;
            json_t *o;
            size_t j;
            json_array_foreach(opts, j, o)
                found |= !strcmp(json_string_value(o), value);
            if (!found) {
                errinfo_set(e, 400, "invalid_field", field, "%s must be one of the template's options", name);
                goto fail;
            }
        }
        if (*value || given)
            json_object_set_new(out, name, json_string(value));
    }
    json_object_foreach((json_t *)body_env, k, v)
        if (!json_object_get(out, k))
            json_object_set(out, k, v); /* checked with the container's */
    return out;
fail:
    json_decref(out);
    return NULL;
}

/* A field of the body, else the template's. */
static const json_t *pick(const json_t *body, const json_t *tpl, const char *key)
{
    json_t *v = json_object_get(body, key);
    return v && !json_is_null(v) ? v : json_object_get(tpl, key);
}

int appspec_parse(const json_t *body, const json_t *tpl, const struct appspec_defaults *d, json_t **app,
                  json_t **ctr, struct errinfo *e)
{
    static const char *const known[] = {"name", "repository", "ref", "start_command", "port", "health_path", "image",
                                        "gpus", "cpus", "memory", "env", "host", "template", "run_as_root",
                                        "health_timeout_s", "repository_auth"};
    const char *name, *repo, *ref, *cmd, *hp, *image, *host;
    json_t *merged = NULL, *env = NULL, *v, *gpus, *root, *hts, *auth = NULL;
    const char *k;
    int port;
    int64_t timeout = d->health_timeout_s;
    char cname[80];

    *app = *ctr = NULL;
    if (!json_is_object(body))
        return bad(e, "body", "the body must be a JSON object");
    json_object_foreach((json_t *)body, k, v) {
        int ok = 0;
        for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
            ok |= !strcmp(k, known[i]);
        if (!ok) {
            errinfo_set(e, 400, "invalid_field", k, "unknown field '%.60s'", k);
            return -1;
        }
    }
    /* the template's values under the body's: one object, checked once */
    merged = json_deep_copy(body);
    static const char *const from_tpl[] = {"repository", "ref", "start_command", "port", "health_path", "image"};
    for (size_t i = 0; tpl && i < sizeof(from_tpl) / sizeof(from_tpl[0]); i++)
        if (pick(body, NULL, from_tpl[i]) == NULL && json_object_get(tpl, from_tpl[i]))
            json_object_set(merged, from_tpl[i], json_object_get(tpl, from_tpl[i]));
    if (!(name = text(merged, "name", 63, 1, 0, e)))
        goto fail;
    if (!ctrspec_valid_app_name(name)) {
        bad(e, "name", "an app's name is 1-63 lowercase letters, digits or '-', not at either end (a DNS label)");
        goto fail;
    }
    if (!(repo = text(merged, "repository", 1024, 0, 0, e)) || !(ref = text(merged, "ref", 255, 0, 0, e)) ||
        !(cmd = text(merged, "start_command", MAX_COMMAND, 0, 1, e)) ||
        !(hp = text(merged, "health_path", 512, 0, 0, e)) || !(image = text(merged, "image", 255, 0, 0, e)) ||
        !(host = text(merged, "host", 64, 0, 0, e)))
        goto fail;
    if ((*repo && appspec_check_repository(repo, "repository", e) < 0) || check_ref(ref, e) < 0 ||
        check_port(json_object_get(merged, "port"), "port", 1, &port, e) < 0 || check_health_path(hp, e) < 0)
        goto fail;
    if (*ref && !*repo) {
        bad(e, "ref", "a ref needs a repository");
        goto fail;
    }
    if (appspec_parse_auth(json_object_get(body, "repository_auth"), repo, &auth, e) < 0)
        goto fail;
    if (!*image)
        image = d->image;
    root = json_object_get(body, "run_as_root");
    if (root && !json_is_boolean(root)) {
        bad(e, "run_as_root", "run_as_root is true or false");
        goto fail;
    }
    hts = json_object_get(body, "health_timeout_s");
    if (hts && (!json_is_integer(hts) || json_integer_value(hts) < 1 || json_integer_value(hts) > 86400)) {
        bad(e, "health_timeout_s", "health_timeout_s is 1 to 86400 seconds");
        goto fail;
    }
    if (hts)
        timeout = json_integer_value(hts);
    if (!(env = merge_env(json_object_get(body, "env"), tpl, e)))
        goto fail;
    /* the app's folder is the home of the user it runs as, who has none */
    if (!json_is_true(root) && !json_object_get(env, "HOME"))
        json_object_set_new(env, "HOME", json_string("/app"));
    gpus = json_object_get(body, "gpus");
    if (!gpus && tpl && json_integer_value(json_object_get(json_object_get(tpl, "gpus"), "count")) > 0) {
        json_t *tg = json_object_get(tpl, "gpus");
        gpus = json_pack("{s:O}", "count", json_object_get(tg, "count"));
        if (json_integer_value(json_object_get(tg, "min_memory_mib")) > 0)
            json_object_set(gpus, "min_memory_mib", json_object_get(tg, "min_memory_mib"));
    } else {
        json_incref(gpus);
    }
    snprintf(cname, sizeof(cname), APPSPEC_CONTAINER_PREFIX "%s", name);
    *ctr = json_pack("{s:s, s:s, s:O, s:[{s:i}], s:b, s:s}", "name", cname, "image", image, "env", env, "ports",
                     "container", port, "workspace", 0, "host", host);
    if (*cmd)
        json_object_set_new(*ctr, "command", json_pack("[s, s, s]", "sh", "-c", cmd));
    if (gpus)
        json_object_set(*ctr, "gpus", gpus);
    static const char *const passed[] = {"cpus", "memory"};
    for (size_t i = 0; i < 2; i++)
        if (json_object_get(body, passed[i]))
            json_object_set(*ctr, passed[i], json_object_get(body, passed[i]));
    /* the container's fields (image, env, gpus, cpus, memory) checked as a
     * container's are, with the same field names */
    struct ctrspec s;
    int rc = ctrspec_parse(*ctr, CTRSPEC_USER, &s, e);
    ctrspec_free(&s);
    if (rc < 0) {
        json_decref(gpus);
        goto fail;
    }
    *app = json_pack("{s:s, s:s, s:s, s:s, s:i, s:s, s:s, s:O?, s:O?, s:O?, s:O, s:s, s:s, s:b, s:I, s:o*}", "name", name,
                     "repository", repo, "ref", ref, "start_command", cmd, "port", port, "health_path", hp, "image",
                     image, "gpus", gpus, "cpus", json_object_get(body, "cpus"), "memory",
                     json_object_get(body, "memory"), "env", env, "host", host, "template",
                     tpl ? json_string_value(json_object_get(tpl, "slug")) : "", "run_as_root", json_is_true(root),
                     "health_timeout_s", (json_int_t)timeout, "repository_auth", auth);
    json_decref(gpus);
    json_decref(env);
    json_decref(merged);
    return 0;
fail:
    json_decref(auth);
    json_decref(env);
    json_decref(merged);
    json_decref(*ctr);
    *ctr = NULL;
    return -1;
}

/* ---- importing ---- */

/* A slug from a title: lowercase letters and digits, '-' between words. */
static void slug_of(const char *title, char *out, size_t outlen)
{
    size_t n = 0;
    int dash = 0;
    for (const char *c = title; *c && n + 1 < outlen && n < 63; c++) {
        if (isalnum((unsigned char)*c)) {
            if (dash && n)
                out[n++] = '-';
            dash = 0;
            if (n + 1 < outlen)
                out[n++] = (char)tolower((unsigned char)*c);
        } else {
            dash = 1;
        }
    }
    while (n && out[n - 1] == '-')
        n--;
    out[n] = 0;
    if (!n)
        snprintf(out, outlen, "template");
}

/* The container port of a Portainer port ("8888/tcp", "8080:80/tcp",
 * "80"): 0 when none. */
static int portainer_port(const char *p)
{
    const char *colon = strrchr(p, ':');
    long v = strtol(colon ? colon + 1 : p, NULL, 10);
    return v > 0 && v < 65536 ? (int)v : 0;
}

/* One Portainer v2 template as ours (not yet checked), or NULL with why. */
static json_t *from_portainer(const json_t *t, const char **why)
{
    json_t *out, *env = json_array(), *v;
    const char *title = json_string_value(json_object_get(t, "title"));
    json_int_t type = json_integer_value(json_object_get(t, "type"));
    size_t i;
    char slug[64];

    if (type != 1) {
        *why = "a stack template: an app is one container";
        json_decref(env);
        return NULL;
    }
    if (!title || !json_is_string(json_object_get(t, "image"))) {
        *why = "no title or image";
        json_decref(env);
        return NULL;
    }
    int port = 0;
    json_array_foreach(json_object_get(t, "ports"), i, v)
        if (!port && json_is_string(v))
            port = portainer_port(json_string_value(v));
    if (!port) {
        *why = "no port: an app is reached over HTTP";
        json_decref(env);
        return NULL;
    }
    json_array_foreach(json_object_get(t, "env"), i, v) {
        json_t *var = json_pack("{s:O?, s:s, s:s}", "name", json_object_get(v, "name"), "default", "", "description",
                                "");
        const char *label = json_string_value(json_object_get(v, "label"));
        const char *desc = json_string_value(json_object_get(v, "description"));
        if (json_is_string(json_object_get(v, "default")))
            json_object_set(var, "default", json_object_get(v, "default"));
        if (desc || label)
            json_object_set_new(var, "description", json_string(desc ? desc : label));
        json_t *sel = json_object_get(v, "select"), *o, *opts = json_array();
        size_t j;
        json_array_foreach(sel, j, o) {
            if (json_is_string(json_object_get(o, "value")))
                json_array_append(opts, json_object_get(o, "value"));
            if (json_is_true(json_object_get(o, "default")) && json_is_string(json_object_get(o, "value")))
                json_object_set(var, "default", json_object_get(o, "value"));
        }
        if (json_array_size(opts))
            json_object_set(var, "options", opts);
        json_decref(opts);
        json_array_append_new(env, var);
    }
    slug_of(title, slug, sizeof(slug));
    out = json_pack("{s:s, s:s, s:O, s:i, s:o}", "slug", slug, "title", title, "image", json_object_get(t, "image"),
                    "port", port, "env", env);
    if (json_is_string(json_object_get(t, "description")))
        json_object_set(out, "summary", json_object_get(t, "description"));
    if (json_is_string(json_object_get(t, "logo")))
        json_object_set(out, "logo", json_object_get(t, "logo"));
    if (json_is_array(json_object_get(t, "categories")))
        json_object_set(out, "categories", json_object_get(t, "categories"));
    if (json_is_string(json_object_get(t, "command")))
        json_object_set(out, "start_command", json_object_get(t, "command"));
    return out;
}

json_t *appspec_templates_import(const json_t *in, json_t **skipped, struct errinfo *e)
{
    json_t *list = json_object_get(in, "templates"), *out = json_array(), *t;
    int ours = json_integer_value(json_object_get(in, "gpufleet_templates")) == 1;
    int portainer = json_is_string(json_object_get(in, "version")) && !strcmp(json_string_value(json_object_get(in, "version")), "2");
    size_t i;

    *skipped = json_array();
    if (!json_is_object(in) || !json_is_array(list) || (!ours && !portainer)) {
        bad(e, "body", "a templates file is gpufleet's {\"gpufleet_templates\":1,\"templates\":[...]} or "
                       "Portainer's {\"version\":\"2\",\"templates\":[...]}");
        goto fail;
    }
    if (json_array_size(list) > APPSPEC_MAX_TEMPLATES) {
        errinfo_set(e, 400, "invalid_field", "templates", "at most %d templates in a file", APPSPEC_MAX_TEMPLATES);
        goto fail;
    }
    json_array_foreach(list, i, t) {
        const char *why = NULL;
        json_t *raw = ours ? json_incref(t) : from_portainer(t, &why), *ok;
        const char *title = json_string_value(json_object_get(t, "title"));
        if (raw && ours) {
            json_object_del(raw, "builtin");
            json_object_del(raw, "updated_ms");
        }
        struct errinfo te = {0};
        ok = raw ? appspec_template(raw, &te) : NULL;
        json_decref(raw);
        if (!ok && ours) {
            errinfo_set(e, 400, "invalid_field", te.field[0] ? te.field : "templates", "template %zu (%.100s): %s",
                        i + 1, title ? title : "?", te.message);
            goto fail;
        }
        if (!ok) {
            json_array_append_new(*skipped, json_pack("{s:s, s:s}", "title", title ? title : "?", "why",
                                                      why ? why : te.message));
            continue;
        }
        /* two titles that make one slug: the second gets -2, -3 ... */
        char base[64], slug[64];
        snprintf(base, sizeof(base), "%s", json_string_value(json_object_get(ok, "slug")));
        snprintf(slug, sizeof(slug), "%s", base);
        for (int n = 2;; n++) {
            int taken = 0;
            json_t *x;
            size_t j;
            json_array_foreach(out, j, x)
                taken |= !strcmp(json_string_value(json_object_get(x, "slug")), slug);
            if (!taken)
                break;
            snprintf(slug, sizeof(slug), "%.50s-%d", base, n % 100000);
        }
        json_object_set_new(ok, "slug", json_string(slug));
        json_array_append_new(out, ok);
    }
    return out;
fail:
    json_decref(out);
    json_decref(*skipped);
    *skipped = NULL;
    return NULL;
}
