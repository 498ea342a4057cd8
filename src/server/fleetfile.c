/* The fleet file: YAML into one normalized JSON value, each refusal naming
 * the key's path and line; and the plan against the registry. */
#include "fleetfile.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "../lib/yamljson.h"
#include "registry.h"

#define DEFAULT_AGENT_PORT 9445

/* The input while it is checked: the map of lines and where errors go. */
struct ff {
    json_t *lines;
    struct errinfo *err;
    const char *file; /* "" or "secrets file: " */
};

/* The line of path, or of its nearest parent that has one. */
static long line_of(struct ff *f, const char *path)
{
    char p[1024];
    snprintf(p, sizeof(p), "%s", path);
    for (;;) {
        json_t *l = json_object_get(f->lines, p);
        if (l)
            return (long)json_integer_value(l);
        /* the parent: up to the last '.' or '[', whichever is later */
        size_t cut = 0;
        for (size_t i = 0; p[i]; i++)
            cut = p[i] == '.' || p[i] == '[' ? i : cut;
        if (!cut)
            return 1;
        p[cut] = '\0';
    }
}

static int refuse(struct ff *f, const char *path, const char *why)
{
    errinfo_set(f->err, 400, "invalid_field", path, "%sline %ld: %s: %s", f->file, line_of(f, path),
                path, why);
    return -1;
}

static int only_keys(struct ff *f, const json_t *obj, const char *path, const char *const *known)
{
    const char *k;
    json_t *v;
    char p[1024];
    json_object_foreach((json_t *)obj, k, v)
    {
        int ok = 0;
        for (size_t i = 0; known[i]; i++)
            ok |= !strcmp(k, known[i]);
        if (!ok) {
            snprintf(p, sizeof(p), "%s%s%.200s", path, *path ? "." : "", k);
            return refuse(f, p, "unknown key");
        }
    }
    return 0;
}

static int is_object(struct ff *f, const json_t *v, const char *path)
{
    return json_is_object(v) ? 0 : refuse(f, path, "must be a mapping (key: value lines)");
}

/* A string of 1..max printable bytes, or absent (*out left as it was). */
static int opt_string(struct ff *f, const json_t *obj, const char *key, const char *path, size_t max,
                      const char **out)
{
    char p[1024];
    json_t *v = json_object_get(obj, key);
    if (!v)
        return 0;
    snprintf(p, sizeof(p), "%s%s%s", path, *path ? "." : "", key);
    const char *s = json_string_value(v);
    size_t n = s ? strlen(s) : 0;
    if (!s || n == 0 || n > max)
        return refuse(f, p, max > 200 ? "must be text" : "must be a short text");
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            return refuse(f, p, "holds a control character");
    *out = s;
    return 0;
}

static int opt_port(struct ff *f, const json_t *obj, const char *key, const char *path, json_int_t *out)
{
    char p[1024];
    json_t *v = json_object_get(obj, key);
    if (!v)
        return 0;
    snprintf(p, sizeof(p), "%s%s%s", path, *path ? "." : "", key);
    if (!json_is_integer(v) || json_integer_value(v) < 1 || json_integer_value(v) > 65535)
        return refuse(f, p, "must be a port, 1-65535");
    *out = json_integer_value(v);
    return 0;
}

/* A Unix user name as useradd takes it. */
static int valid_user(const char *s)
{
    if (!s || !*s || strlen(s) > 32 || !(islower((unsigned char)*s) || *s == '_'))
        return 0;
    for (; *s; s++)
        if (!islower((unsigned char)*s) && !isdigit((unsigned char)*s) && !strchr("_-.", *s))
            return 0;
    return 1;
}

struct ssh_access {
    const char *user, *key;
    json_int_t port;
};

static int read_ssh(struct ff *f, const json_t *obj, const char *path, struct ssh_access *a)
{
    static const char *const known[] = {"user", "port", "key", NULL};
    char p[1024];
    if (!obj)
        return 0;
    if (is_object(f, obj, path) < 0 || only_keys(f, obj, path, known) < 0 ||
        opt_string(f, obj, "user", path, 32, &a->user) < 0 || opt_port(f, obj, "port", path, &a->port) < 0 ||
        opt_string(f, obj, "key", path, 4096, &a->key) < 0)
        return -1;
    snprintf(p, sizeof(p), "%s.user", path);
    if (json_object_get(obj, "user") && !valid_user(a->user))
        return refuse(f, p, "must be a user name (lower case letters, digits, '_', '-')");
    return 0;
}

struct bmc_access {
    const char *address, *user, *password;
};

static int read_bmc(struct ff *f, const json_t *obj, const char *path, int with_address, struct bmc_access *b)
{
    static const char *const known_server[] = {"address", "user", "password", NULL};
    static const char *const known_site[] = {"user", "password", NULL};
    if (!obj)
        return 0;
    return is_object(f, obj, path) < 0 ||
                   only_keys(f, obj, path, with_address ? known_server : known_site) < 0 ||
                   opt_string(f, obj, "address", path, 255, &b->address) < 0 ||
                   opt_string(f, obj, "user", path, 64, &b->user) < 0 ||
                   opt_string(f, obj, "password", path, 256, &b->password) < 0
               ? -1
               : 0;
}

/* The site-wide part: defaults every server starts from. */
struct site {
    const char *name, *admin_user;
    struct ssh_access ssh;
    struct bmc_access bmc;
    json_int_t agent_port, interval_ms;
};

static int read_site(struct ff *f, const json_t *root, struct site *s)
{
    static const char *const known[] = {"site", "admin_user", "ssh", "bmc", "agent", "servers", NULL};
    /* no binary: a path in the file would make the server read any of its
     * files and send it to a host; the agent_binary setting says it */
    static const char *const known_agent[] = {"port", "interval_ms", NULL};
    const json_t *agent = json_object_get(root, "agent");

    *s = (struct site){.admin_user = "admin", .ssh = {.user = "root", .port = 22},
                       .agent_port = DEFAULT_AGENT_PORT, .interval_ms = 1000};
    if (is_object(f, root, "") < 0 || only_keys(f, root, "", known) < 0)
        return -1;
    if (!json_object_get(root, "site"))
        return refuse(f, "site", "is required: the site's name");
    if (opt_string(f, root, "site", "", 64, &s->name) < 0 || opt_string(f, root, "admin_user", "", 64, &s->admin_user) < 0 ||
        read_ssh(f, json_object_get(root, "ssh"), "ssh", &s->ssh) < 0 ||
        read_bmc(f, json_object_get(root, "bmc"), "bmc", 0, &s->bmc) < 0)
        return -1;
    if (agent) {
        json_t *iv = json_object_get(agent, "interval_ms");
        if (is_object(f, agent, "agent") < 0 || only_keys(f, agent, "agent", known_agent) < 0 ||
            opt_port(f, agent, "port", "agent", &s->agent_port) < 0)
            return -1;
        if (iv && (!json_is_integer(iv) || json_integer_value(iv) < 100 || json_integer_value(iv) > 60000))
            return refuse(f, "agent.interval_ms", "must be 100-60000");
        s->interval_ms = iv ? json_integer_value(iv) : s->interval_ms;
    }
    return 0;
}

/* One entry of servers: checked as the registry would take it, then the
 * site's defaults filled in. */
static json_t *read_server(struct ff *f, const struct site *site, const json_t *in, size_t i)
{
    static const char *const known[] = {"name", "address", "agent_port", "labels", "gpu", "ssh", "bmc", NULL};
    char path[64], p[1024];
    struct ssh_access ssh = site->ssh;
    struct bmc_access bmc = {.user = site->bmc.user, .password = site->bmc.password};
    json_int_t port = site->agent_port;
    struct errinfo e;

    snprintf(path, sizeof(path), "servers[%zu]", i);
    if (is_object(f, in, path) < 0 || only_keys(f, in, path, known) < 0 ||
        opt_port(f, in, "agent_port", path, &port) < 0 ||
        read_ssh(f, json_object_get(in, "ssh"), (snprintf(p, sizeof(p), "%s.ssh", path), p), &ssh) < 0 ||
        read_bmc(f, json_object_get(in, "bmc"), (snprintf(p, sizeof(p), "%s.bmc", path), p), 1, &bmc) < 0)
        return NULL;
    json_t *gpu = json_object_get(in, "gpu");
    if (gpu && !json_is_boolean(gpu))
        return refuse(f, (snprintf(p, sizeof(p), "%s.gpu", path), p), "must be true or false"), NULL;
    json_t *body = json_pack("{s:O*, s:O*, s:I, s:O*}", "name", json_object_get(in, "name"), "address",
                             json_object_get(in, "address"), "agent_port", port, "labels",
                             json_object_get(in, "labels"));
    if (!json_object_get(in, "labels"))
        json_object_set_new(body, "labels", json_object());
    if (reg_validate(body, &e) < 0) {
        snprintf(p, sizeof(p), "%s.%s", path, e.field[0] ? e.field : "name");
        refuse(f, p, e.message);
        json_decref(body);
        return NULL;
    }
    json_object_set_new(body, "gpu", json_boolean(!gpu || json_is_true(gpu)));
    json_object_set_new(body, "ssh", json_pack("{s:s, s:I, s:s*}", "user", ssh.user, "port", ssh.port, "key", ssh.key));
    if (bmc.address)
        json_object_set_new(body, "bmc", json_pack("{s:s, s:s*, s:s*}", "address", bmc.address, "user", bmc.user,
                                                   "password", bmc.password));
    return body;
}

static int read_servers(struct ff *f, const struct site *site, const json_t *list, json_t *out)
{
    size_t i;
    json_t *s;
    if (!json_is_array(list) || json_array_size(list) > FLEETFILE_MAX_SERVERS)
        return refuse(f, "servers", "must be a list of at most 2000 servers");
    json_array_foreach(list, i, s)
    {
        json_t *srv = read_server(f, site, s, i);
        if (!srv)
            return -1;
        for (size_t k = 0; k < json_array_size(out); k++) {
            json_t *o = json_array_get(out, k);
            char p[64];
            snprintf(p, sizeof(p), "servers[%zu].name", i);
            if (json_equal(json_object_get(o, "name"), json_object_get(srv, "name"))) {
                json_decref(srv);
                return refuse(f, p, "a second server of that name");
            }
            if (json_equal(json_object_get(o, "address"), json_object_get(srv, "address")) &&
                json_equal(json_object_get(o, "agent_port"), json_object_get(srv, "agent_port"))) {
                snprintf(p, sizeof(p), "servers[%zu].address", i);
                json_decref(srv);
                return refuse(f, p, "another server has this address and agent_port");
            }
        }
        json_array_append_new(out, srv);
    }
    return 0;
}

/* Sets obj.key = pw unless obj has one (a server's own wins over the
 * site's). */
static void fill(json_t *obj, const char *pw, int own)
{
    if (obj && pw && (own || !json_object_get(obj, "password")))
        json_object_set_new(obj, "password", json_string(pw));
}

/* The secrets file: passwords kept apart from the fleet file. An SSH
 * password is for first contact: apply uses it when the fleet key is
 * refused, to add the key; it is never stored. */
static int apply_secrets(struct ff *f, const char *text, size_t len, json_t *servers, json_t **admin_pw)
{
    static const char *const known[] = {"admin_password", "bmc_password", "ssh_password", "servers", NULL};
    static const char *const known_server[] = {"bmc_password", "ssh_password", NULL};
    char err[300], p[1024];
    const char *deflt = NULL, *ssh_deflt = NULL, *admin = NULL, *k;
    json_t *v;
    struct errinfo *e = f->err;

    json_decref(f->lines);
    f->lines = NULL;
    f->file = "secrets file: ";
    json_t *root = yaml_to_json_lines(text, len, &f->lines, err, sizeof(err));
    if (!root) {
        errinfo_set(e, 400, "invalid_field", "secrets", "secrets file: %s", err);
        return -1;
    }
    json_t *per = json_object_get(root, "servers");
    int rc = -1;
    if (is_object(f, root, "") < 0 || only_keys(f, root, "", known) < 0 ||
        opt_string(f, root, "bmc_password", "", 256, &deflt) < 0 ||
        opt_string(f, root, "ssh_password", "", 256, &ssh_deflt) < 0 ||
        opt_string(f, root, "admin_password", "", 256, &admin) < 0 || (per && is_object(f, per, "servers") < 0))
        goto done;
    if (admin && *admin)
        *admin_pw = json_string(admin);
    json_object_foreach(per, k, v)
    {
        const char *pw = NULL, *ssh_pw = NULL;
        json_t *srv = NULL;
        snprintf(p, sizeof(p), "servers.%.200s", k);
        for (size_t i = 0; !srv && i < json_array_size(servers); i++)
            if (!strcmp(json_string_value(json_object_get(json_array_get(servers, i), "name")), k))
                srv = json_array_get(servers, i);
        if (!srv) {
            refuse(f, p, "no server of that name in the fleet file");
            goto done;
        }
        if (is_object(f, v, p) < 0 || only_keys(f, v, p, known_server) < 0 ||
            opt_string(f, v, "bmc_password", p, 256, &pw) < 0 || opt_string(f, v, "ssh_password", p, 256, &ssh_pw) < 0)
            goto done;
        fill(json_object_get(srv, "bmc"), pw, 1);
        fill(json_object_get(srv, "ssh"), ssh_pw, 1);
    }
    for (size_t i = 0; i < json_array_size(servers); i++) {
        fill(json_object_get(json_array_get(servers, i), "bmc"), deflt, 0);
        fill(json_object_get(json_array_get(servers, i), "ssh"), ssh_deflt, 0);
    }
    rc = 0;
done:
    json_decref(root);
    return rc;
}

json_t *fleetfile_parse(const char *text, size_t len, const char *secrets, size_t secrets_len,
                        struct errinfo *err)
{
    char yerr[300];
    struct ff f = {.err = err, .file = ""};
    struct site site;
    json_t *servers = json_array(), *out = NULL, *admin_pw = NULL;

    if (len > FLEETFILE_MAX_BYTES || secrets_len > FLEETFILE_MAX_BYTES) {
        errinfo_set(err, 400, "invalid_field", len > FLEETFILE_MAX_BYTES ? "fleet" : "secrets",
                    "larger than %u bytes", FLEETFILE_MAX_BYTES);
        goto done;
    }
    json_t *root = yaml_to_json_lines(text, len, &f.lines, yerr, sizeof(yerr));
    if (!root) {
        errinfo_set(err, 400, "invalid_field", "fleet", "%s", yerr);
        goto done;
    }
    if (read_site(&f, root, &site) == 0 && read_servers(&f, &site, json_object_get(root, "servers"), servers) == 0 &&
        (!secrets || apply_secrets(&f, secrets, secrets_len, servers, &admin_pw) == 0))
        out = json_pack("{s:s, s:s, s:{s:I, s:I}, s:{s:s, s:I, s:s*}, s:O, s:o*}", "site", site.name, "admin_user",
                        site.admin_user, "agent", "port", site.agent_port, "interval_ms", site.interval_ms, "ssh", "user", site.ssh.user, "port", site.ssh.port, "key",
                        site.ssh.key, "servers", servers, "admin_password", admin_pw);
    else
        json_decref(admin_pw);
    json_decref(root);
done:
    json_decref(f.lines);
    json_decref(servers);
    return out;
}

/* ---- the plan ---- */

static const json_t *find_named(const json_t *list, const char *name)
{
    size_t i;
    json_t *s;
    json_array_foreach(list, i, s)
    {
        if (!strcmp(json_string_value(json_object_get(s, "name")), name))
            return s;
    }
    return NULL;
}

/* The registry's fields the file sets, each that differs as [registered, file]. */
static json_t *differences(const json_t *reg, const json_t *want)
{
    static const char *const fields[] = {"address", "agent_port", "labels"};
    json_t *d = json_object();
    for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
        json_t *a = json_object_get(reg, fields[i]), *b = json_object_get(want, fields[i]);
        if (!json_equal(a, b))
            json_object_set_new(d, fields[i], json_pack("[O?, O?]", a, b));
    }
    return d;
}

json_t *fleetfile_plan(const json_t *fleet, const json_t *registered)
{
    json_t *changes = json_array(), *s;
    size_t i, counts[4] = {0};
    static const char *const actions[] = {"install", "update", "unchanged", "remove"};

    json_array_foreach(json_object_get(fleet, "servers"), i, s)
    {
        const char *name = json_string_value(json_object_get(s, "name"));
        const json_t *reg = find_named(registered, name);
        json_t *d = reg ? differences(reg, s) : json_object();
        int a = !reg ? 0 : json_object_size(d) ? 1 : 2;
        counts[a]++;
        json_array_append_new(changes, json_pack("{s:s, s:s, s:o}", "server", name, "action", actions[a], "fields", d));
    }
    json_array_foreach(registered, i, s)
    {
        const char *name = json_string_value(json_object_get(s, "name"));
        if (find_named(json_object_get(fleet, "servers"), name))
            continue;
        counts[3]++;
        json_array_append_new(changes, json_pack("{s:s, s:s, s:{}}", "server", name, "action", "remove", "fields"));
    }
    return json_pack("{s:O, s:o, s:{s:I, s:I, s:I, s:I}}", "site", json_object_get(fleet, "site"), "changes",
                     changes, "summary", "install", (json_int_t)counts[0], "update", (json_int_t)counts[1],
                     "unchanged", (json_int_t)counts[2], "remove", (json_int_t)counts[3]);
}
