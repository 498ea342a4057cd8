/* Series selectors in PromQL syntax: name{label="v", l2!="x", l3=~"re", l4!~"re"}. */
#ifndef GF_SELECTOR_H
#define GF_SELECTOR_H

#include <regex.h>
#include <stddef.h>

enum sel_op { SEL_EQ, SEL_NE, SEL_RE, SEL_NRE };

struct sel_matcher {
    char *name;   /* "__name__" for the metric name */
    char *value;
    enum sel_op op;
    regex_t re;   /* anchored ^(?:value)$ for SEL_RE and SEL_NRE */
    int has_re;
    /* a regex that is only literals joined by '|' ("A|B|C", as dashboards
     * ask for several metrics): the alternatives, matched by strcmp, as
     * regexec over every series of a big store costs tens of ms */
    char **alts;
    size_t nalts;
};

#define SEL_MAX_MATCHERS 16
#define SEL_MAX_LEN 4096

struct selector {
    struct sel_matcher m[SEL_MAX_MATCHERS];
    size_t n;
    const char *metric; /* the __name__ equality matcher's value, if any */
};

/* Parses s. Returns 0, or -1 with a reason in err (the caller names the
 * parameter). Free with sel_free, also after a failure. */
int sel_parse(const char *s, struct selector *sel, char *err, size_t errlen);
void sel_free(struct selector *sel);

/* Adds a matcher (a regex is checked and compiled as sel_parse does).
 * 0, or -1 with a reason in err. For parsers that read selectors
 * themselves (PromQL); sel_check then applies sel_parse's final checks. */
int sel_add(struct selector *sel, const char *name, enum sel_op op, const char *value, char *err,
            size_t errlen);

/* 1 when a pattern is refused as too costly for glibc's matcher (over 512
 * bytes, many or nested quantifiers, back-references), else 0. */
int sel_regex_risky(const char *re);

/* 0 when sel has a matcher and one that needs a value, else -1 and why. */
int sel_check(const struct selector *sel, char *err, size_t errlen);

/* Adds name="value" to sel (as {..., name="value"} would). 0, or -1 when
 * sel has SEL_MAX_MATCHERS already. */
int sel_add_eq(struct selector *sel, const char *name, const char *value);

/* Whether a label set matches. get(arg, name) returns a label's value or
 * NULL; a missing label matches as the empty string, as in Prometheus. */
int sel_matches(const struct selector *sel, const char *(*get)(void *arg, const char *name),
                void *arg);

#endif
