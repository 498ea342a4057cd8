/* Container create requests: validation shared by the server and the
 * agent. Every refusal names the field, as the rest of the API does. */
#include "ctrspec.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MAX_ARG_BYTES 4096
#define MAX_ENV_VALUE 32768

static int bad(struct errinfo *e, const char *field, const char *msg)
{
    errinfo_set(e, 400, "invalid_field", field, "%s", msg);
    return -1;
}

int ctrspec_valid_name(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 63 || !isalnum((unsigned char)s[0]))
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && !strchr("_.-", s[i]))
            return 0;
    return 1;
}

int ctrspec_valid_env_name(const char *k)
{
    size_t n = strlen(k);
    if (!n || n > 128 || !(isalpha((unsigned char)k[0]) || k[0] == '_'))
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)k[i]) && k[i] != '_')
            return 0;
    return 1;
}

int ctrspec_valid_app_name(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 63 || s[0] == '-' || s[n - 1] == '-')
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!islower((unsigned char)s[i]) && !isdigit((unsigned char)s[i]) && s[i] != '-')
            return 0;
    return 1;
}

int ctrspec_valid_user(const char *s)
{
    size_t n = strlen(s), digits = 0, colons = 0;
    if (n == 0 || n > 21)
        return 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == ':') {
            if (!digits || colons++)
                return 0;
            digits = 0;
        } else if (isdigit((unsigned char)s[i]) && ++digits <= 10) {
            continue;
        } else {
            return 0;
        }
    }
    return digits > 0;
}

/* One path component of a repository: [a-z0-9]+ joined by '.', '_', '__'
 * or runs of '-' (the distribution reference grammar). */
static int valid_component(const char *s, size_t n)
{
    if (!n || !isalnum((unsigned char)s[0]) || !isalnum((unsigned char)s[n - 1]))
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if ((c >= 'a' && c <= 'z') || isdigit(c))
            continue;
        if (c == '.' || c == '_' || c == '-') {
            if (c == '.' && !isalnum((unsigned char)s[i + 1]))
                return 0;
            if (c == '_' && s[i + 1] == '_' && s[i + 2] == '_')
                return 0;
            continue;
        }
        return 0;
    }
    return 1;
}

/* A registry host: letters, digits, '.', '-', and an optional :port. */
static int valid_registry(const char *s, size_t n)
{
    size_t i = 0;
    for (; i < n && s[i] != ':'; i++)
        if (!isalnum((unsigned char)s[i]) && s[i] != '.' && s[i] != '-')
            return 0;
    if (!i)
        return 0;
    if (i == n)
        return 1;
    if (i + 1 == n || n - i - 1 > 5)
        return 0;
    for (i++; i < n; i++)
        if (!isdigit((unsigned char)s[i]))
            return 0;
    return 1;
}

int ctrspec_valid_image_id(const char *s)
{
    if (!strncmp(s, "sha256:", 7))
        s += 7;
    size_t n = strlen(s);
    return n >= 12 && n <= 64 && strspn(s, "0123456789abcdef") == n;
}

int ctrspec_valid_image(const char *s)
{
    size_t n = strlen(s);
    const char *at, *end, *p, *tag = NULL;

    if (!n || n > 255)
        return 0;
    at = strchr(s, '@');
    end = at ? at : s + n;
    if (at) {
        if (strncmp(at + 1, "sha256:", 7) || strlen(at + 8) != 64)
            return 0;
        for (p = at + 8; *p; p++)
            if (!isxdigit((unsigned char)*p) || isupper((unsigned char)*p))
                return 0;
    }
    /* a tag is after the last ':' that comes after the last '/' */
    const char *slash = memrchr(s, '/', (size_t)(end - s));
    const char *colon = memrchr(slash ? slash : s, ':', (size_t)(end - (slash ? slash : s)));
    if (colon) {
        tag = colon + 1;
        size_t tl = (size_t)(end - tag);
        if (!tl || tl > 128 || !(isalnum((unsigned char)tag[0]) || tag[0] == '_'))
            return 0;
        for (size_t i = 0; i < tl; i++)
            if (!isalnum((unsigned char)tag[i]) && !strchr("_.-", tag[i]))
                return 0;
        end = colon;
    }
    /* components; the first may be a registry host when more follow and
     * it has a '.' or ':' or is localhost */
    p = s;
    int first = 1;
    while (p < end) {
        const char *q = memchr(p, '/', (size_t)(end - p));
        size_t len = (size_t)((q ? q : end) - p);
        int registry = first && q &&
                       (memchr(p, '.', len) || memchr(p, ':', len) ||
                        (len == 9 && !strncmp(p, "localhost", 9)));
        if (registry ? !valid_registry(p, len) : !valid_component(p, len))
            return 0;
        if (!q)
            break;
        if (q + 1 >= end)
            return 0;
        p = q + 1;
        first = 0;
    }
    return 1;
}

int ctrspec_valid_uuid(const char *s)
{
    size_t n = strlen(s);
    if (n < 8 || n >= CTRSPEC_UUID_LEN || (strncmp(s, "GPU-", 4) && strncmp(s, "MIG-", 4)))
        return 0;
    for (size_t i = 4; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && s[i] != '-' && s[i] != '/')
            return 0;
    return 1;
}

int ctrspec_parse_memory(const char *text, int64_t *bytes)
{
    char *end;
    double v;
    double mult = 1;

    if (!text || !*text || strlen(text) > 32 || !(isdigit((unsigned char)text[0])))
        return -1;
    v = strtod(text, &end);
    if (end == text || !isfinite(v) || v < 0)
        return -1;
    switch (tolower((unsigned char)*end)) {
    case '\0': break;
    case 'b': end++; break;
    case 'k': mult = 1024.0; end++; break;
    case 'm': mult = 1024.0 * 1024; end++; break;
    case 'g': mult = 1024.0 * 1024 * 1024; end++; break;
    case 't': mult = 1024.0 * 1024 * 1024 * 1024; end++; break;
    default: return -1;
    }
    if (mult > 1) {
        /* k, kb, kib, ki */
        if (tolower((unsigned char)*end) == 'i')
            end++;
        if (tolower((unsigned char)*end) == 'b')
            end++;
    }
    if (*end)
        return -1;
    v *= mult;
    if (v > 1e15) /* beyond any host's memory: a typo, not a request */
        return -1;
    *bytes = (int64_t)v;
    return 0;
}

/* Refuses fields the form does not have. */
static int check_known(const json_t *body, enum ctrspec_form form, struct errinfo *e)
{
    static const char *user[] = {"name", "image", "command", "env", "gpus", "cpus", "memory",
                                 "ports", "host", "workspace", "tty"};
    static const char *agent[] = {"name", "image", "command", "env", "gpus", "nano_cpus",
                                  "memory_bytes", "ports", "workspace", "tty", "owner", "gf_id",
                                  "host_ip", "app", "user"};
    const char **known = form == CTRSPEC_USER ? user : agent;
    size_t nknown = form == CTRSPEC_USER ? sizeof(user) / sizeof(user[0])
                                         : sizeof(agent) / sizeof(agent[0]);
    const char *k;
    json_t *v;

    json_object_foreach((json_t *)body, k, v) {
        int ok = 0;
        for (size_t i = 0; i < nknown; i++)
            ok |= !strcmp(k, known[i]);
        if (!ok) {
            errinfo_set(e, 400, "invalid_field", k, "unknown field '%.60s'", k);
            return -1;
        }
    }
    return 0;
}

/* A JSON string without NUL bytes, at most max bytes. */
static const char *text_of(const json_t *v, size_t max)
{
    if (!json_is_string(v))
        return NULL;
    const char *s = json_string_value(v);
    size_t n = json_string_length(v);
    if (n != strlen(s) || n > max)
        return NULL;
    return s;
}

static int parse_command(const json_t *v, struct ctrspec *s, struct errinfo *e)
{
    size_t i;
    json_t *a;

    if (!v || json_is_null(v))
        return 0;
    if (!json_is_array(v) || json_array_size(v) == 0 || json_array_size(v) > CTRSPEC_MAX_ARGS)
        return bad(e, "command", "command must be an array of 1 to 128 strings");
    json_array_foreach(v, i, a)
        if (!text_of(a, MAX_ARG_BYTES))
            return bad(e, "command", "each command argument must be a string of at most 4096 bytes without NUL");
    s->command = json_deep_copy(v);
    return 0;
}

/* Variables that would hand out GPUs behind the ledger's back: the NVIDIA
 * runtime reads them from the environment. */
static int reserved_env(const char *k)
{
    return !strcmp(k, "NVIDIA_VISIBLE_DEVICES") || !strcmp(k, "NVIDIA_MIG_CONFIG_DEVICES") ||
           !strcmp(k, "NVIDIA_MIG_MONITOR_DEVICES");
}

static int parse_env(const json_t *v, struct ctrspec *s, struct errinfo *e)
{
    const char *k;
    json_t *x;

    s->env = json_object();
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_object(v) || json_object_size(v) > CTRSPEC_MAX_ENV)
        return bad(e, "env", "env must be an object of at most 128 NAME: \"value\" pairs");
    json_object_foreach((json_t *)v, k, x) {
        if (!ctrspec_valid_env_name(k))
            return bad(e, "env", "env names are letters, digits and '_' (not first a digit), at most 128");
        if (reserved_env(k)) {
            errinfo_set(e, 400, "invalid_field", "env",
                        "%s is set by gpufleet from the GPUs the container holds", k);
            return -1;
        }
        if (!text_of(x, MAX_ENV_VALUE)) {
            errinfo_set(e, 400, "invalid_field", "env",
                        "env %.60s must be a string of at most 32768 bytes without NUL", k);
            return -1;
        }
    }
    json_object_update(s->env, (json_t *)v);
    return 0;
}

static int add_uuid(struct ctrspec *s, const json_t *v, struct errinfo *e)
{
    const char *u = text_of(v, CTRSPEC_UUID_LEN - 1);
    if (!u || !ctrspec_valid_uuid(u))
        return bad(e, "gpus", "GPU UUIDs look like GPU-xxxxxxxx-... or MIG-...");
    for (size_t i = 0; i < s->ngpus; i++)
        if (!strcmp(s->gpus[i], u))
            return bad(e, "gpus", "a GPU is listed twice");
    snprintf(s->gpus[s->ngpus++], CTRSPEC_UUID_LEN, "%s", u);
    return 0;
}

/* gpus: N, [UUID...], or {"count":N,"model":M,"min_memory_mib":X}. */
static int parse_gpus(const json_t *v, enum ctrspec_form form, struct ctrspec *s, struct errinfo *e)
{
    size_t i;
    json_t *a;

    if (!v || json_is_null(v))
        return 0;
    if (json_is_array(v)) {
        if (json_array_size(v) > CTRSPEC_MAX_GPUS)
            return bad(e, "gpus", "at most 16 GPUs per container");
        json_array_foreach(v, i, a)
            if (add_uuid(s, a, e) < 0)
                return -1;
        return 0;
    }
    if (form == CTRSPEC_AGENT)
        return bad(e, "gpus", "gpus must be an array of UUIDs");
    if (json_is_integer(v)) {
        json_int_t n = json_integer_value(v);
        if (n < 0 || n > CTRSPEC_MAX_GPUS)
            return bad(e, "gpus", "gpus must be 0 to 16");
        s->gpu_count = (int)n;
        return 0;
    }
    if (!json_is_object(v))
        return bad(e, "gpus", "gpus is a count, an array of UUIDs or {\"count\",\"model\",\"min_memory_mib\"}");
    const char *k;
    json_object_foreach((json_t *)v, k, a) {
        if (!strcmp(k, "count")) {
            if (!json_is_integer(a) || json_integer_value(a) < 1 ||
                json_integer_value(a) > CTRSPEC_MAX_GPUS)
                return bad(e, "gpus.count", "gpus.count must be 1 to 16");
            s->gpu_count = (int)json_integer_value(a);
        } else if (!strcmp(k, "model")) {
            const char *m = text_of(a, sizeof(s->gpu_model) - 1);
            if (!m || !*m)
                return bad(e, "gpus.model", "gpus.model must be a non-empty string of at most 63 bytes");
            snprintf(s->gpu_model, sizeof(s->gpu_model), "%s", m);
        } else if (!strcmp(k, "min_memory_mib")) {
            if (!json_is_integer(a) || json_integer_value(a) < 0 ||
                json_integer_value(a) > (1 << 30))
                return bad(e, "gpus.min_memory_mib", "gpus.min_memory_mib must be a number of MiB");
            s->gpu_min_memory_mib = json_integer_value(a);
        } else {
            errinfo_set(e, 400, "invalid_field", "gpus", "unknown field gpus.%.40s", k);
            return -1;
        }
    }
    if (!s->gpu_count)
        return bad(e, "gpus.count", "gpus.count is required");
    return 0;
}

static int parse_proto(const char *p, struct ctrspec_port *port)
{
    if (!strcmp(p, "tcp") || !strcmp(p, "udp")) {
        snprintf(port->proto, sizeof(port->proto), "%s", p);
        return 0;
    }
    return -1;
}

static int port_number(const json_t *v, unsigned *out)
{
    if (!json_is_integer(v) || json_integer_value(v) < 1 || json_integer_value(v) > 65535)
        return -1;
    *out = (unsigned)json_integer_value(v);
    return 0;
}

/* 80, "80", "80/udp", or {"container":80,"proto":"udp","host":20001}. */
static int parse_port(const json_t *v, enum ctrspec_form form, struct ctrspec_port *p,
                      struct errinfo *e)
{
    snprintf(p->proto, sizeof(p->proto), "tcp");
    if (json_is_integer(v)) {
        if (port_number(v, &p->container) < 0)
            return bad(e, "ports", "container ports are 1 to 65535");
    } else if (json_is_string(v)) {
        const char *t = text_of(v, 16);
        char *end;
        long n = t ? strtol(t, &end, 10) : 0;
        if (!t || !isdigit((unsigned char)t[0]) || n < 1 || n > 65535 ||
            (*end && (*end != '/' || parse_proto(end + 1, p) < 0)))
            return bad(e, "ports", "ports are written 80, \"80/tcp\" or \"53/udp\" (1 to 65535)");
        p->container = (unsigned)n;
    } else if (json_is_object(v)) {
        const char *k;
        json_t *x;
        json_object_foreach((json_t *)v, k, x) {
            if (!strcmp(k, "container")) {
                if (port_number(x, &p->container) < 0)
                    return bad(e, "ports.container", "container ports are 1 to 65535");
            } else if (!strcmp(k, "host")) {
                if (port_number(x, &p->host) < 0)
                    return bad(e, "ports.host", "host ports are 1 to 65535");
            } else if (!strcmp(k, "proto")) {
                if (!json_is_string(x) || parse_proto(json_string_value(x), p) < 0)
                    return bad(e, "ports.proto", "proto is tcp or udp");
            } else {
                errinfo_set(e, 400, "invalid_field", "ports", "unknown field ports.%.40s", k);
                return -1;
            }
        }
        if (!p->container)
            return bad(e, "ports.container", "ports.container is required");
    } else {
        return bad(e, "ports", "ports are written 80, \"80/tcp\" or {\"container\":80}");
    }
    if (form == CTRSPEC_AGENT && !p->host)
        return bad(e, "ports.host", "the agent needs a host port for every port");
    return 0;
}

static int parse_ports(const json_t *v, enum ctrspec_form form, struct ctrspec *s, struct errinfo *e)
{
    size_t i;
    json_t *a;

    if (!v || json_is_null(v))
        return 0;
    if (!json_is_array(v) || json_array_size(v) > CTRSPEC_MAX_PORTS)
        return bad(e, "ports", "ports must be an array of at most 32 ports");
    json_array_foreach(v, i, a) {
        struct ctrspec_port *p = &s->ports[s->nports];
        if (parse_port(a, form, p, e) < 0)
            return -1;
        for (size_t j = 0; j < s->nports; j++) {
            if (s->ports[j].container == p->container && !strcmp(s->ports[j].proto, p->proto))
                return bad(e, "ports", "a container port is listed twice");
            if (p->host && s->ports[j].host == p->host && !strcmp(s->ports[j].proto, p->proto))
                return bad(e, "ports.host", "a host port is listed twice");
        }
        s->nports++;
    }
    return 0;
}

static int parse_resources(const json_t *body, enum ctrspec_form form, struct ctrspec *s,
                           struct errinfo *e)
{
    json_t *v;

    if (form == CTRSPEC_AGENT) {
        v = json_object_get(body, "nano_cpus");
        if (v && (!json_is_integer(v) || json_integer_value(v) < 0))
            return bad(e, "nano_cpus", "nano_cpus must be a count of 1e-9 CPUs");
        s->nano_cpus = v ? json_integer_value(v) : 0;
        v = json_object_get(body, "memory_bytes");
        if (v && (!json_is_integer(v) || (json_integer_value(v) &&
                                          json_integer_value(v) < CTRSPEC_MIN_MEMORY)))
            return bad(e, "memory_bytes", "memory_bytes must be 0 or at least 6 MiB");
        s->memory_bytes = v ? json_integer_value(v) : 0;
        return 0;
    }
    v = json_object_get(body, "cpus");
    if (v && !json_is_null(v)) {
        double c = json_number_value(v);
        if (!json_is_number(v) || !(c >= 0.01 && c <= 4096))
            return bad(e, "cpus", "cpus must be a number of cores from 0.01 to 4096");
        s->nano_cpus = (int64_t)llround(c * 1e9);
    }
    v = json_object_get(body, "memory");
    if (v && !json_is_null(v)) {
        int64_t b = 0;
        if (json_is_integer(v))
            b = json_integer_value(v);
        else if (!json_is_string(v) || ctrspec_parse_memory(json_string_value(v), &b) < 0)
            return bad(e, "memory", "memory is bytes or a size like \"512m\" or \"4g\"");
        if (b < CTRSPEC_MIN_MEMORY)
            return bad(e, "memory", "memory must be at least 6 MiB");
        s->memory_bytes = b;
    }
    return 0;
}

static int parse_text(const json_t *body, const char *key, char *out, size_t outlen, int required,
                      struct errinfo *e)
{
    json_t *v = json_object_get(body, key);
    const char *t;

    if (!v || json_is_null(v)) {
        if (required) {
            errinfo_set(e, 400, "invalid_field", key, "%s is required", key);
            return -1;
        }
        return 0;
    }
    if (!(t = text_of(v, outlen - 1))) {
        errinfo_set(e, 400, "invalid_field", key, "%s must be a string of at most %zu bytes", key,
                    outlen - 1);
        return -1;
    }
    snprintf(out, outlen, "%s", t);
    return 0;
}

/* A user name as auth allows it; it names the owner's workspace folder, so
 * never '/', and never a leading '.'. */
static int valid_owner(const char *s)
{
    size_t n = strlen(s);
    if (!n || n > 64 || !isalnum((unsigned char)s[0]))
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && !strchr("._@-", s[i]))
            return 0;
    return 1;
}

int ctrspec_parse(const json_t *body, enum ctrspec_form form, struct ctrspec *s,
                  struct errinfo *e)
{
    json_t *v;

    memset(s, 0, sizeof(*s));
    s->workspace = 1;
    if (!json_is_object(body))
        return bad(e, "body", "the body must be a JSON object");
    if (check_known(body, form, e) < 0)
        return -1;
    if (parse_text(body, "name", s->name, sizeof(s->name), form == CTRSPEC_AGENT, e) < 0)
        return -1;
    if (s->name[0] && !ctrspec_valid_name(s->name))
        return bad(e, "name", "names are 1-63 letters, digits, '_', '.' or '-', starting with a letter or digit");
    if (parse_text(body, "image", s->image, sizeof(s->image), 1, e) < 0)
        return -1;
    if (!ctrspec_valid_image(s->image))
        return bad(e, "image", "image must be a reference like registry:5000/team/app:1.2 (lowercase repository)");
    if (parse_command(json_object_get(body, "command"), s, e) < 0 ||
        parse_env(json_object_get(body, "env"), s, e) < 0 ||
        parse_gpus(json_object_get(body, "gpus"), form, s, e) < 0 ||
        parse_resources(body, form, s, e) < 0 ||
        parse_ports(json_object_get(body, "ports"), form, s, e) < 0)
        return -1;
    v = json_object_get(body, "workspace");
    if (v && !json_is_boolean(v))
        return bad(e, "workspace", "workspace is true or false");
    s->workspace = v ? json_is_true(v) : 1;
    v = json_object_get(body, "tty");
    if (v && !json_is_boolean(v))
        return bad(e, "tty", "tty is true or false");
    s->tty = json_is_true(v);
    if (form == CTRSPEC_USER) {
        if (parse_text(body, "host", s->host, sizeof(s->host), 0, e) < 0)
            return -1;
        if (!strcmp(s->host, "auto"))
            s->host[0] = '\0';
        if (s->gpu_count && s->ngpus)
            return bad(e, "gpus", "ask for GPUs by count or by UUID, not both");
        return 0;
    }
    if (parse_text(body, "owner", s->owner, sizeof(s->owner), 1, e) < 0)
        return -1;
    if (!valid_owner(s->owner))
        return bad(e, "owner", "owner must be a user name");
    v = json_object_get(body, "gf_id");
    if (!json_is_integer(v) || json_integer_value(v) < 1)
        return bad(e, "gf_id", "gf_id must be the server's id of the container");
    s->gf_id = json_integer_value(v);
    if (parse_text(body, "host_ip", s->host_ip, sizeof(s->host_ip), 0, e) < 0)
        return -1;
    for (const char *p = s->host_ip; *p; p++)
        if (!isxdigit((unsigned char)*p) && *p != '.' && *p != ':')
            return bad(e, "host_ip", "host_ip must be an IP address");
    if (parse_text(body, "app", s->app, sizeof(s->app), 0, e) < 0)
        return -1;
    if (s->app[0] && !ctrspec_valid_app_name(s->app))
        return bad(e, "app", "app names are 1-63 lowercase letters, digits or '-', not at either end");
    if (parse_text(body, "user", s->user, sizeof(s->user), 0, e) < 0)
        return -1;
    if (s->user[0] && !ctrspec_valid_user(s->user))
        return bad(e, "user", "user is UID or UID:GID");
    return 0;
}

void ctrspec_free(struct ctrspec *s)
{
    json_decref(s->command);
    json_decref(s->env);
    s->command = s->env = NULL;
}

json_t *ctrspec_agent_json(const struct ctrspec *s)
{
    json_t *o = json_object(), *gpus = json_array(), *ports = json_array();

    json_object_set_new(o, "name", json_string(s->name));
    json_object_set_new(o, "image", json_string(s->image));
    if (s->command)
        json_object_set(o, "command", s->command);
    json_object_set_new(o, "env", s->env ? json_incref(s->env) : json_object());
    for (size_t i = 0; i < s->ngpus; i++)
        json_array_append_new(gpus, json_string(s->gpus[i]));
    json_object_set_new(o, "gpus", gpus);
    json_object_set_new(o, "nano_cpus", json_integer(s->nano_cpus));
    json_object_set_new(o, "memory_bytes", json_integer(s->memory_bytes));
    for (size_t i = 0; i < s->nports; i++)
        json_array_append_new(ports, json_pack("{s:i, s:i, s:s}", "container", s->ports[i].container,
                                               "host", s->ports[i].host, "proto", s->ports[i].proto));
    json_object_set_new(o, "ports", ports);
    json_object_set_new(o, "workspace", json_boolean(s->workspace));
    if (s->tty)
        json_object_set_new(o, "tty", json_true());
    json_object_set_new(o, "owner", json_string(s->owner));
    json_object_set_new(o, "gf_id", json_integer(s->gf_id));
    if (s->host_ip[0])
        json_object_set_new(o, "host_ip", json_string(s->host_ip));
    if (s->app[0])
        json_object_set_new(o, "app", json_string(s->app));
    if (s->user[0])
        json_object_set_new(o, "user", json_string(s->user));
    return o;
}

int ctrspec_valid_path(const char *p, int allow_root)
{
    size_t n = p ? strlen(p) : 0;
    if (!n || n > 4096 || p[0] != '/')
        return 0;
    if (n == 1)
        return allow_root;
    for (const char *seg = p + 1; *seg;) {
        size_t len = strcspn(seg, "/");
        if (len == 0 && seg[0] == '/')
            return 0; /* "//" */
        if ((len == 1 && seg[0] == '.') || (len == 2 && seg[0] == '.' && seg[1] == '.'))
            return 0;
        for (size_t i = 0; i < len; i++)
            if ((unsigned char)seg[i] < 0x20)
                return 0; /* control characters: no names made to fool a reader */
        seg += len;
        if (*seg == '/')
            seg++;
    }
    return 1;
}

void ctrspec_url_path(const char *path, char *out, size_t outlen)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0;
    for (const unsigned char *p = (const unsigned char *)path; *p && o + 4 < outlen; p++) {
        if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
            *p == '/' || *p == '.' || *p == '_' || *p == '-') {
            out[o++] = (char)*p;
        } else {
            out[o++] = '%';
            out[o++] = hex[*p >> 4];
            out[o++] = hex[*p & 15];
        }
    }
    out[o] = '\0';
}

/* "user@host:path", as scp and git take it (GitHub's "git@github.com:org/repo.git"):
 * the length of "user@host:" (the path follows), or 0 */
static size_t scp_prefix(const char *u)
{
    size_t user = strspn(u, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-");
    if (!user || u[user] != '@' || u[0] == '-')
        return 0;
    const char *h = u + user + 1;
    size_t host = strspn(h, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-");
    if (!host || h[host] != ':' || h[0] == '-' || !h[host + 1] || h[host + 1] == '-')
        return 0;
    return user + 1 + host + 1;
}

int ctrspec_git_is_ssh(const char *u)
{
    return u && (!strncmp(u, "ssh://", 6) || scp_prefix(u) > 0);
}

int ctrspec_valid_git_url(const char *u)
{
    static const char *const schemes[] = {"https://", "http://", "git://", "ssh://"};
    size_t n = u ? strlen(u) : 0, skip = 0;

    for (size_t i = 0; u && !skip && i < sizeof(schemes) / sizeof(schemes[0]); i++)
        if (!strncmp(u, schemes[i], strlen(schemes[i])))
            skip = strlen(schemes[i]);
    if (u && !skip)
        skip = scp_prefix(u);
    if (!skip || n <= skip || n > 1024 || u[skip] == '-')
        return 0;
    for (const char *p = u + skip; *p; p++)
        if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f || strchr("\"'\\`<>{}|^", *p))
            return 0;
    return 1;
}

int ctrspec_valid_git_ref(const char *r)
{
    if (*r == '-' || *r == '/' || strstr(r, "..") || strstr(r, "//") || strlen(r) > 255)
        return 0;
    for (const char *p = r; *p; p++)
        if (!isalnum((unsigned char)*p) && !strchr("._/-", *p))
            return 0;
    return 1;
}

/* relative, no empty, "." or ".." segment (a trailing '/' is fine) */
static int valid_git_folder(const char *f)
{
    if (*f == '/' || strlen(f) > 1024)
        return 0;
    for (const char *seg = f; *seg;) {
        const char *end = strchr(seg, '/');
        size_t n = end ? (size_t)(end - seg) : strlen(seg);
        if (!n || (n == 1 && seg[0] == '.') || (n == 2 && !strncmp(seg, "..", 2)))
            return 0;
        if (!end)
            break;
        seg = end + 1;
    }
    return 1;
}

int ctrspec_git_split(const char *u, const char *field, char *url, size_t urllen, char *ref, size_t reflen,
                      char *folder, size_t folderlen, struct errinfo *e)
{
    const char *hash = u ? strchr(u, '#') : NULL;
    size_t n = hash ? (size_t)(hash - u) : u ? strlen(u) : 0;

    url[0] = ref[0] = folder[0] = 0;
    if (!ctrspec_valid_git_url(u) || n >= urllen) {
        errinfo_set(e, 400, "invalid_field", field,
                    "a git URL: https://, http://, git://, ssh:// or user@host:path, no spaces or quotes");
        return -1;
    }
    memcpy(url, u, n);
    url[n] = 0;
    if (!hash)
        return 0;
    const char *colon = strchr(hash + 1, ':');
    size_t rn = colon ? (size_t)(colon - hash - 1) : strlen(hash + 1);
    if (rn >= reflen || strlen(colon ? colon + 1 : "") >= folderlen) {
        errinfo_set(e, 400, "invalid_field", field, "the ref or folder after '#' is too long");
        return -1;
    }
    memcpy(ref, hash + 1, rn);
    ref[rn] = 0;
    snprintf(folder, folderlen, "%s", colon ? colon + 1 : "");
    if ((*ref && !ctrspec_valid_git_ref(ref)) || (*folder && !valid_git_folder(folder)) || strchr(url, '#')) {
        errinfo_set(e, 400, "invalid_field", field,
                    "after '#': a branch, tag or commit ([A-Za-z0-9._/-], no '..'), then ':' and a folder inside the repository (no '..')");
        return -1;
    }
    return 0;
}
