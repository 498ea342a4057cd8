/* Flat YAML settings files ("key: value" per line) mapped onto a struct
 * through a table of keys. */
#ifndef GF_CONFIG_H
#define GF_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

enum config_type { CONFIG_STRING, CONFIG_INT, CONFIG_BOOL };

/* What a setting is besides its value. */
enum config_flag {
    CONFIG_LIVE = 1,   /* a running server takes a change (the settings API) */
    CONFIG_SECRET = 2, /* never shown by the settings API */
};

/* One setting: the single place its name, type, default, bounds, flag and
 * description are written (each binary has one table of them; the docs'
 * tables are printed from it and a test compares them). */
struct config_key {
    const char *name;
    enum config_type type;
    size_t offset;      /* offsetof() the field in the target struct */
    int64_t min, max;   /* CONFIG_INT bounds, inclusive */
    size_t max_len;     /* CONFIG_STRING bound, bytes */
    const char *choices; /* CONFIG_STRING: the values allowed, '|'-separated; NULL: any */
    const char *def;    /* the default as a file would write it; NULL: unset */
    const char *flag;   /* the command-line flag without "--", or NULL */
    int flags;          /* enum config_flag */
    const char *help;   /* one line for people */
};

/* Largest settings file read, so a wrong path cannot pull in a huge file. */
#define CONFIG_MAX_BYTES (1u << 20)

/* Parses YAML text holding one mapping of scalars and stores each known key
 * into target: CONFIG_STRING fields are char * and are replaced by a new
 * malloc'd copy (the old value is freed, so fields must start NULL or
 * malloc'd); CONFIG_INT fields are int64_t; CONFIG_BOOL fields are int.
 * Returns 0, or -1 with a message naming the key (and line) in err; on
 * failure target may hold the keys stored before the bad one. */
int config_parse(const char *text, size_t len, const struct config_key *keys, size_t nkeys,
                 void *target, char *err, size_t errlen);

/* Walks a choices string ("a|b"): from *p (start at k->choices), the next
 * choice at *at, *len bytes long; 1, or 0 past the last. */
int config_choice_next(const char **p, const char **at, size_t *len);

/* 1 when value (vlen bytes) is one of k's choices, or k has none. */
int config_choice_ok(const struct config_key *k, const char *value, size_t vlen);

/* Reads path (at most CONFIG_MAX_BYTES) and parses it as config_parse does. */
int config_load_file(const char *path, const struct config_key *keys, size_t nkeys, void *target,
                     char *err, size_t errlen);

/* Stores one value given as text (as from a command-line flag) into the
 * field of key name, with the same checks. Returns 0 or -1 with err set. */
int config_set(const struct config_key *keys, size_t nkeys, void *target, const char *name,
               const char *value, char *err, size_t errlen);

/* Sets every key to its default (strings NULL when it has none); the
 * target's string fields must be NULL or malloc'd. 0, or -1 with err (a
 * default out of its own bounds: a table error). */
int config_defaults(const struct config_key *keys, size_t nkeys, void *target, char *err,
                    size_t errlen);

/* Prints the table: a line each (name, type, default, bounds, flag, help),
 * or a Markdown table for docs/ when markdown is set. */
void config_print(FILE *f, const struct config_key *keys, size_t nkeys, int markdown);

/* Parses a decimal integer that must fill the whole string and lie in
 * [min, max]. Returns 0 or -1. */
int config_parse_int(const char *s, int64_t min, int64_t max, int64_t *out);

#endif
