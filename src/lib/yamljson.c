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

static json_t *convert(yaml_document_t *doc, yaml_node_t *n, int depth, size_t *budget, char *err,
                       size_t errlen)
{
    if (!n || depth > MAX_DEPTH || (*budget)-- == 0) {
        snprintf(err, errlen, "line %zu: nested too deep or too large",
                 n ? n->start_mark.line + 1 : 0);
        return NULL;
    }
    if (n->type == YAML_SCALAR_NODE) {
        json_t *v = scalar(n);
        if (!v)
            snprintf(err, errlen, "line %zu: not valid UTF-8", n->start_mark.line + 1);
        return v;
    }
    if (n->type == YAML_SEQUENCE_NODE) {
        json_t *arr = json_array();
        for (yaml_node_item_t *it = n->data.sequence.items.start; it < n->data.sequence.items.top; it++) {
            json_t *v = convert(doc, yaml_document_get_node(doc, *it), depth + 1, budget, err, errlen);
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
        json_t *v = convert(doc, yaml_document_get_node(doc, p->value), depth + 1, budget, err, errlen);
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
    yaml_parser_t parser;
    yaml_document_t doc;
    json_t *out = NULL;
    size_t budget = MAX_NODES;

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
    if (!root)
        snprintf(err, errlen, "line 1: the document is empty");
    else
        out = convert(&doc, root, 0, &budget, err, errlen);
    yaml_document_delete(&doc);
    yaml_parser_delete(&parser);
    return out;
}
