/* YAML to JSON through libyaml's document tree. */
#include "yamljson.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#define MAX_DEPTH 32
#define MAX_NODES 100000

static json_t *scalar(const yaml_node_t *n)
{
    const char *v = (const char *)n->data.scalar.value;
    size_t len = n->data.scalar.length;
    char *end;

    if (n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
        return json_stringn(v, len);
    if (!strcmp(v, "true") || !strcmp(v, "True"))
        return json_true();
    if (!strcmp(v, "false") || !strcmp(v, "False"))
        return json_false();
    if (!strcmp(v, "null") || !strcmp(v, "~") || len == 0)
        return json_null();
    errno = 0;
    long long i = strtoll(v, &end, 10);
    if (*v && !*end && !errno)
        return json_integer(i);
    double d = strtod(v, &end);
    if (*v && !*end && isfinite(d) && strspn(v, "0123456789+-.eE") == len)
        return json_real(d);
    return json_stringn(v, len);
}

/* Where a walk is: the path so far and the map of lines it fills (NULL
 * when nobody asked for lines). */
struct walk {
    json_t *lines;
    char path[1024];
    size_t budget;
};

/* Appends a path step; the old length, for putting it back. */
static size_t push(struct walk *w, const char *fmt, const char *key, size_t index)
{
    size_t old = strlen(w->path);
    if (w->lines)
        snprintf(w->path + old, sizeof(w->path) - old, fmt, key ? key : "", index);
    return old;
}

static json_t *convert(yaml_document_t *doc, yaml_node_t *n, int depth, struct walk *w, char *err,
                       size_t errlen)
{
    if (!n || depth > MAX_DEPTH || w->budget-- == 0) {
        snprintf(err, errlen, "line %zu: nested too deep or too large",
                 n ? n->start_mark.line + 1 : 0);
        return NULL;
    }
    if (w->lines)
        json_object_set_new(w->lines, w->path, json_integer((json_int_t)n->start_mark.line + 1));
    if (n->type == YAML_SCALAR_NODE) {
        json_t *v = scalar(n);
        if (!v)
            snprintf(err, errlen, "line %zu: not valid UTF-8", n->start_mark.line + 1);
        return v;
    }
    if (n->type == YAML_SEQUENCE_NODE) {
        json_t *arr = json_array();
        for (yaml_node_item_t *it = n->data.sequence.items.start; it < n->data.sequence.items.top; it++) {
            size_t old = push(w, "%s[%zu]", NULL, (size_t)(it - n->data.sequence.items.start));
            json_t *v = convert(doc, yaml_document_get_node(doc, *it), depth + 1, w, err, errlen);
            w->path[old] = '\0';
            if (!v) {
                json_decref(arr);
                return NULL;
            }
            json_array_append_new(arr, v);
        }
        return arr;
    }
    json_t *obj = json_object();
    for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
        yaml_node_t *k = yaml_document_get_node(doc, p->key);
        if (!k || k->type != YAML_SCALAR_NODE) {
            snprintf(err, errlen, "line %zu: keys must be plain text", n->start_mark.line + 1);
            json_decref(obj);
            return NULL;
        }
        const char *key = (const char *)k->data.scalar.value;
        if (json_object_get(obj, key)) {
            snprintf(err, errlen, "line %zu: duplicate key '%.64s'", k->start_mark.line + 1, key);
            json_decref(obj);
            return NULL;
        }
        size_t old = push(w, w->path[0] ? ".%s" : "%s", key, 0);
        json_t *v = convert(doc, yaml_document_get_node(doc, p->value), depth + 1, w, err, errlen);
        w->path[old] = '\0';
        if (!v || json_object_set_new(obj, key, v) < 0) {
            if (v) {
                snprintf(err, errlen, "line %zu: key not valid UTF-8", k->start_mark.line + 1);
                json_decref(v);
            }
            json_decref(obj);
            return NULL;
        }
    }
    return obj;
}

json_t *yaml_to_json(const char *text, size_t len, char *err, size_t errlen)
{
    return yaml_to_json_lines(text, len, NULL, err, errlen);
}

json_t *yaml_to_json_lines(const char *text, size_t len, json_t **lines, char *err, size_t errlen)
{
    yaml_parser_t parser;
    yaml_document_t doc;
    json_t *out = NULL;
    struct walk w = {.budget = MAX_NODES};

    if (lines)
        *lines = NULL;
    if (!yaml_parser_initialize(&parser)) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
    if (!yaml_parser_load(&parser, &doc)) {
        snprintf(err, errlen, "line %zu: %s", parser.problem_mark.line + 1,
                 parser.problem ? parser.problem : "invalid YAML");
        yaml_parser_delete(&parser);
        return NULL;
    }
    yaml_node_t *root = yaml_document_get_root_node(&doc);
    w.lines = lines ? json_object() : NULL;
    if (!root)
        snprintf(err, errlen, "line 1: the document is empty");
    else
        out = convert(&doc, root, 0, &w, err, errlen);
    yaml_document_delete(&doc);
    yaml_parser_delete(&parser);
    if (lines && out)
        *lines = w.lines;
    else
        json_decref(w.lines);
    return out;
}
