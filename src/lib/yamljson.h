/* YAML documents as JSON values (libyaml's document API into jansson), so
 * one validator serves a YAML file and a JSON request body alike. */
#ifndef GF_YAMLJSON_H
#define GF_YAMLJSON_H

#include <jansson.h>
#include <stddef.h>

/* Parses the first document of text. Plain scalars that read as numbers,
 * true/false or null become those; everything else a string. Returns a new
 * reference, or NULL with "line N: reason" in err. Depth and size bounded. */
json_t *yaml_to_json(const char *text, size_t len, char *err, size_t errlen);

/* Like yaml_to_json, and *lines (a new object) maps the path of every value
 * ("servers[2].ssh.port"; "" for the root) to its line, 1-based, so that a
 * validator of the JSON can name the line of a bad value. */
json_t *yaml_to_json_lines(const char *text, size_t len, json_t **lines, char *err, size_t errlen);

#endif
