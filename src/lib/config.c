/* libyaml event loop over a single flat mapping. Nested values are refused
 * with the key named rather than silently ignored. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <yaml.h>

#include "xalloc.h"

int config_parse_int(const char *s, int64_t min, int64_t max, int64_t *out)
{
    char *end;
    long long v;

    if (!s || !*s || strlen(s) > 20)
        return -1;
    if (!(s[0] >= '0' && s[0] <= '9') && !(s[0] == '-' && s[1] >= '0' && s[1] <= '9'))
        return -1;
    errno = 0;
    v = strtoll(s, &end, 10);
    if (errno || *end || end == s)
        return -1;
    if (v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

static int parse_bool(const char *s, int *out)
{
    static const char *yes[] = {"true", "yes", "on", "1"};
    static const char *no[] = {"false", "no", "off", "0"};

    for (size_t i = 0; i < 4; i++) {
        if (!strcasecmp(s, yes[i])) {
            *out = 1;
            return 0;
        }
        if (!strcasecmp(s, no[i])) {
            *out = 0;
            return 0;
        }
    }
    return -1;
}

static const struct config_key *find_key(const struct config_key *keys, size_t nkeys,
                                         const char *name)
{
    for (size_t i = 0; i < nkeys; i++)
        if (!strcmp(keys[i].name, name))
            return &keys[i];
    return NULL;
}

int config_choice_next(const char **p, const char **at, size_t *len)
{
    if (!*p || !**p)
        return 0;
    *at = *p;
    *len = strcspn(*p, "|");
    *p += *len + ((*p)[*len] == '|');
    return 1;
}

/* "binpack, spread": the choices as people read them (no '|', which a
 * Markdown table would take for a cell's end). */
static void choices_text(const struct config_key *k, char *out, size_t len)
{
    const char *p = k->choices, *at;
    size_t n, used = 0;
    out[0] = '\0';
    while (config_choice_next(&p, &at, &n) && used < len)
        used += (size_t)snprintf(out + used, len - used, "%s%.*s", used ? ", " : "", (int)n, at);
}

int config_choice_ok(const struct config_key *k, const char *value, size_t vlen)
{
    const char *p = k->choices, *at;
    size_t n;
    if (!k->choices)
        return 1;
    while (config_choice_next(&p, &at, &n))
        if (n == vlen && !memcmp(at, value, n))
            return 1;
    return 0;
}

static int store(const struct config_key *k, void *target, const char *value, size_t vlen,
                 char *err, size_t errlen)
{
    char *field = (char *)target + k->offset;

    if (memchr(value, '\0', vlen)) {
        snprintf(err, errlen, "%s: value contains a NUL byte", k->name);
        return -1;
    }
    switch (k->type) {
    case CONFIG_STRING: {
        if (k->max_len && vlen > k->max_len) {
            snprintf(err, errlen, "%s: value longer than %zu bytes", k->name, k->max_len);
            return -1;
        }
        if (k->choices && !config_choice_ok(k, value, vlen)) {
            char list[200];
            choices_text(k, list, sizeof(list));
            snprintf(err, errlen, "%s: expected one of %s", k->name, list);
            return -1;
        }
        char **dst = (char **)(void *)field;
        free(*dst);
        *dst = xstrndup(value, vlen);
        return 0;
    }
    case CONFIG_INT: {
        int64_t v;
        if (config_parse_int(value, k->min, k->max, &v) < 0) {
            snprintf(err, errlen, "%s: expected an integer from %lld to %lld", k->name,
                     (long long)k->min, (long long)k->max);
            return -1;
        }
        memcpy(field, &v, sizeof(v));
        return 0;
    }
    case CONFIG_BOOL: {
        int v;
        if (parse_bool(value, &v) < 0) {
            snprintf(err, errlen, "%s: expected true or false", k->name);
            return -1;
        }
        memcpy(field, &v, sizeof(v));
        return 0;
    }
    }
    snprintf(err, errlen, "%s: unsupported type", k->name);
    return -1;
}

int config_set(const struct config_key *keys, size_t nkeys, void *target, const char *name,
               const char *value, char *err, size_t errlen)
{
    const struct config_key *k = find_key(keys, nkeys, name);

    if (!k) {
        snprintf(err, errlen, "unknown setting '%s'", name);
        return -1;
    }
    return store(k, target, value, strlen(value), err, errlen);
}

/* The parser's states between events. */
enum pstate { EXPECT_MAP, EXPECT_KEY, EXPECT_VALUE, DONE };

/* Long on purpose: one loop over libyaml's events as a small state machine
 * (map, key, value), read top to bottom. */
int config_parse(const char *text, size_t len, const struct config_key *keys, size_t nkeys,
                 void *target, char *err, size_t errlen)
{
    yaml_parser_t parser;
    yaml_event_t ev;
    enum pstate st = EXPECT_MAP;
    const struct config_key *cur = NULL;
    char keyname[64] = "";
    int rc = -1;

    if (!yaml_parser_initialize(&parser)) {
        snprintf(err, errlen, "cannot start the YAML parser");
        return -1;
    }
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
    for (;;) {
        if (!yaml_parser_parse(&parser, &ev)) {
            snprintf(err, errlen, "line %zu: %s", parser.problem_mark.line + 1,
                     parser.problem ? parser.problem : "invalid YAML");
            goto fail;
        }
        size_t line = ev.start_mark.line + 1;
        yaml_event_type_t t = ev.type;
        if (t == YAML_STREAM_END_EVENT) {
            yaml_event_delete(&ev);
            break;
        }
        if (t == YAML_STREAM_START_EVENT || t == YAML_DOCUMENT_START_EVENT ||
            t == YAML_DOCUMENT_END_EVENT) {
            yaml_event_delete(&ev);
            continue;
        }
        if (st == EXPECT_MAP) {
            if (t == YAML_SCALAR_EVENT && ev.data.scalar.length == 0) {
                /* an empty document: no settings */
                yaml_event_delete(&ev);
                st = DONE;
                continue;
            }
            if (t != YAML_MAPPING_START_EVENT) {
                snprintf(err, errlen, "line %zu: expected a mapping of settings", line);
                yaml_event_delete(&ev);
                goto fail;
            }
            st = EXPECT_KEY;
        } else if (st == EXPECT_KEY) {
            if (t == YAML_MAPPING_END_EVENT) {
                st = DONE;
            } else if (t != YAML_SCALAR_EVENT) {
                snprintf(err, errlen, "line %zu: expected a setting name", line);
                yaml_event_delete(&ev);
                goto fail;
            } else {
                snprintf(keyname, sizeof(keyname), "%.*s",
                         (int)(ev.data.scalar.length < 60 ? ev.data.scalar.length : 60),
                         (const char *)ev.data.scalar.value);
                cur = ev.data.scalar.length < 60 ? find_key(keys, nkeys, keyname) : NULL;
                if (!cur) {
                    snprintf(err, errlen, "line %zu: unknown setting '%s'", line, keyname);
                    yaml_event_delete(&ev);
                    goto fail;
                }
                st = EXPECT_VALUE;
            }
        } else if (st == EXPECT_VALUE) {
            if (t != YAML_SCALAR_EVENT) {
                snprintf(err, errlen, "line %zu: %s: expected a single value", line, keyname);
                yaml_event_delete(&ev);
                goto fail;
            }
            char msg[200];
            if (store(cur, target, (const char *)ev.data.scalar.value, ev.data.scalar.length,
                      msg, sizeof(msg)) < 0) {
                snprintf(err, errlen, "line %zu: %s", line, msg);
                yaml_event_delete(&ev);
                goto fail;
            }
            st = EXPECT_KEY;
        } else {
            snprintf(err, errlen, "line %zu: only one mapping of settings is allowed", line);
            yaml_event_delete(&ev);
            goto fail;
        }
        yaml_event_delete(&ev);
    }
    rc = 0;
fail:
    yaml_parser_delete(&parser);
    return rc;
}

int config_load_file(const char *path, const struct config_key *keys, size_t nkeys, void *target,
                     char *err, size_t errlen)
{
    char *text = NULL;
    size_t len = 0;
    int fd = -1, rc = -1;

    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        goto fail;
    }
    text = xmalloc(CONFIG_MAX_BYTES + 1);
    for (;;) {
        ssize_t n = read(fd, text + len, CONFIG_MAX_BYTES + 1 - len);
        if (n < 0) {
            snprintf(err, errlen, "%s: %s", path, strerror(errno));
            goto fail;
        }
        if (n == 0)
            break;
        len += (size_t)n;
        if (len > CONFIG_MAX_BYTES) {
            snprintf(err, errlen, "%s: larger than %u bytes", path, CONFIG_MAX_BYTES);
            goto fail;
        }
    }
    char msg[256];
    if (config_parse(text, len, keys, nkeys, target, msg, sizeof(msg)) < 0) {
        snprintf(err, errlen, "%s: %s", path, msg);
        goto fail;
    }
    rc = 0;
fail:
    if (fd >= 0)
        close(fd);
    free(text);
    return rc;
}

int config_defaults(const struct config_key *keys, size_t nkeys, void *target, char *err,
                    size_t errlen)
{
    for (size_t i = 0; i < nkeys; i++) {
        const struct config_key *k = &keys[i];
        if (k->def) {
            if (store(k, target, k->def, strlen(k->def), err, errlen) < 0)
                return -1;
        } else if (k->type == CONFIG_STRING) {
            char **dst = (char **)(void *)((char *)target + k->offset);
            free(*dst);
            *dst = NULL;
        }
    }
    return 0;
}

static const char *type_name(const struct config_key *k)
{
    return k->type == CONFIG_INT ? "integer" : k->type == CONFIG_BOOL ? "boolean" : "string";
}

/* The bounds as people read them: "100..3600000", "up to 2048 bytes". */
static void bounds(const struct config_key *k, char *out, size_t n)
{
    if (k->type == CONFIG_INT)
        snprintf(out, n, "%lld..%lld", (long long)k->min, (long long)k->max);
    else if (k->type == CONFIG_STRING && k->choices)
        choices_text(k, out, n);
    else if (k->type == CONFIG_STRING && k->max_len)
        snprintf(out, n, "up to %zu bytes", k->max_len);
    else
        snprintf(out, n, "true/false");
}

void config_print(FILE *f, const struct config_key *keys, size_t nkeys, int markdown)
{
    char b[64];

    if (markdown)
        fprintf(f, "| key | flag | type | default | bounds | |\n| --- | --- | --- | --- | --- | --- |\n");
    for (size_t i = 0; i < nkeys; i++) {
        const struct config_key *k = &keys[i];
        bounds(k, b, sizeof(b));
        const char *live = k->flags & CONFIG_LIVE ? " (changes at run time)" : "";
        if (markdown)
            fprintf(f, "| `%s` | %s%s%s | %s | %s%s%s | %s | %s%s |\n", k->name, k->flag ? "`--" : "",
                    k->flag ? k->flag : "", k->flag ? "`" : "", type_name(k), k->def ? "`" : "",
                    k->def ? k->def : "none", k->def ? "`" : "", b, k->help, live);
        else
            fprintf(f, "  %-28s %-8s default %-20s %s\n      %s%s%s%s%s\n", k->name, type_name(k),
                    k->def ? k->def : "none", b, k->flag ? "--" : "", k->flag ? k->flag : "",
                    k->flag ? ": " : "", k->help, live);
    }
}
