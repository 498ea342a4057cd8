/* Selector parsing. Regular expressions are POSIX extended (RE2's syntax is
 * close enough for the label patterns dashboards use). */
#include "selector.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../lib/xalloc.h"

static int name_start(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static int name_char(char c)
{
    return name_start(c) || (c >= '0' && c <= '9');
}

static const char *spaces(const char *s)
{
    while (*s == ' ' || *s == '\t' || *s == '\n')
        s++;
    return s;
}

/* glibc compiles repetitions by copying what they repeat, so "(a{99}){99}"
 * or "a+++...+" costs gigabytes. Patterns are kept to what label matching
 * needs: at most 512 bytes and 16 quantifiers, each right after a single
 * character, "." or a bracket expression (not after a group or another
 * quantifier), counts at most 32. */
int sel_regex_risky(const char *re)
{
    enum { START, ATOM, OTHER } prev = START;
    int quantifiers = 0;

    if (strlen(re) > 512)
        return 1;
    for (const char *p = re; *p; p++) {
        char c = *p;
        if (c == '\\') {
            /* a back-reference makes matching exponential (glibc backtracks
             * for it); Prometheus's RE2 has none either */
            if (!p[1] || (p[1] >= '1' && p[1] <= '9'))
                return 1;
            p++;
            prev = ATOM;
            continue;
        }
        if (c == '[') {
            /* a bracket expression is one atom: skip to its end */
            const char *q = p + 1;
            if (*q == '^')
                q++;
            if (*q == ']')
                q++;
            while (*q && *q != ']')
                q++;
            if (!*q)
                return 1;
            p = q;
            prev = ATOM;
            continue;
        }
        int counted = c == '{' && ((p[1] >= '0' && p[1] <= '9') || p[1] == ',');
        if (c == '*' || c == '+' || c == '?' || counted) {
            if (prev != ATOM || ++quantifiers > 16)
                return 1;
            if (counted) {
                const char *q = p + 1;
                for (; *q && *q != '}'; q++) {
                    if (*q >= '0' && *q <= '9' && atoi(q) > 32)
                        return 1;
                    while (*q >= '0' && *q <= '9' && q[1] >= '0' && q[1] <= '9')
                        q++;
                }
                if (!*q)
                    return 1;
                p = q;
            }
            prev = OTHER;
            continue;
        }
        prev = (c == '(' || c == '|' || c == ')') ? OTHER : ATOM;
    }
    return 0;
}

static void literal_alternatives(struct sel_matcher *m)
{
    const char *v = m->value;
    if (!*v || strspn(v, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_:-|") != strlen(v))
        return;
    size_t n = 1;
    for (const char *p = v; *p; p++)
        n += *p == '|';
    m->alts = xcalloc(n, sizeof(*m->alts));
    for (const char *p = v;; p++) {
        size_t len = strcspn(p, "|");
        m->alts[m->nalts++] = xstrndup(p, len);
        p += len;
        if (!*p)
            break;
    }
}

static int in_alts(const struct sel_matcher *m, const char *v)
{
    for (size_t i = 0; i < m->nalts; i++)
        if (!strcmp(m->alts[i], v))
            return 1;
    return 0;
}

static int add(struct selector *sel, const char *name, size_t nl, const char *value, enum sel_op op,
               char *err, size_t errlen)
{
    struct sel_matcher *m;

    if (sel->n >= SEL_MAX_MATCHERS) {
        snprintf(err, errlen, "more than %d matchers", SEL_MAX_MATCHERS);
        return -1;
    }
    m = &sel->m[sel->n];
    memset(m, 0, sizeof(*m));
    m->name = xstrndup(name, nl);
    m->value = xstrdup(value);
    m->op = op;
    sel->n++;
    if (op == SEL_RE || op == SEL_NRE) {
        if (sel_regex_risky(value)) {
            snprintf(err, errlen,
                     "regular expression for label '%s' is too costly: at most 512 bytes and 16 "
                     "quantifiers, each after a character, '.' or [...], counts up to 32, no "
                     "back-references (\\1)",
                     m->name);
            return -1;
        }
        size_t len = strlen(value) + 8;
        char *pat = xmalloc(len);
        snprintf(pat, len, "^(%s)$", value);
        int rc = regcomp(&m->re, pat, REG_EXTENDED | REG_NOSUB);
        free(pat);
        if (rc != 0) {
            snprintf(err, errlen, "invalid regular expression for label '%s'", m->name);
            return -1;
        }
        m->has_re = 1;
        literal_alternatives(m);
    }
    if (op == SEL_EQ && !strcmp(m->name, "__name__"))
        sel->metric = m->value;
    return 0;
}

/* Parses a double-quoted string with \\, \", \n escapes into a new string. */
static const char *quoted(const char *s, char **out, char *err, size_t errlen)
{
    size_t cap = strlen(s) + 1, k = 0;
    char *v;
    char q = *s;

    if (q != '"' && q != '\'') {
        snprintf(err, errlen, "expected a quoted label value");
        return NULL;
    }
    v = xmalloc(cap);
    for (s++; *s && *s != q; s++) {
        char c = *s;
        if (c == '\\') {
            s++;
            c = *s == 'n' ? '\n' : *s == '\\' ? '\\' : *s == '"' ? '"' : *s == '\'' ? '\'' : 0;
            if (!c) {
                free(v);
                snprintf(err, errlen, "invalid escape in a label value");
                return NULL;
            }
        }
        v[k++] = c;
    }
    if (*s != q) {
        free(v);
        snprintf(err, errlen, "unterminated label value");
        return NULL;
    }
    v[k] = '\0';
    *out = v;
    return s + 1;
}

/* Long on purpose: one left-to-right pass over a selector (name, matchers,
 * quoted values with escapes) failing at the first bad byte. */
int sel_parse(const char *s, struct selector *sel, char *err, size_t errlen)
{
    memset(sel, 0, sizeof(*sel));
    if (!s || !*s) {
        snprintf(err, errlen, "empty selector");
        return -1;
    }
    if (strlen(s) > SEL_MAX_LEN) {
        snprintf(err, errlen, "selector longer than %d bytes", SEL_MAX_LEN);
        return -1;
    }
    s = spaces(s);
    if (name_start(*s) || *s == ':') {
        const char *n = s;
        while (name_char(*s) || *s == ':')
            s++;
        char *name = xstrndup(n, (size_t)(s - n));
        int rc = add(sel, "__name__", 8, name, SEL_EQ, err, errlen);
        free(name);
        if (rc < 0)
            return -1;
        s = spaces(s);
    }
    if (*s == '{') {
        s = spaces(s + 1);
        while (*s != '}') {
            const char *n = s;
            if (!name_start(*s)) {
                snprintf(err, errlen, "expected a label name");
                return -1;
            }
            while (name_char(*s))
                s++;
            size_t nl = (size_t)(s - n);
            s = spaces(s);
            enum sel_op op;
            if (s[0] == '=' && s[1] == '~')
                op = SEL_RE, s += 2;
            else if (s[0] == '!' && s[1] == '~')
                op = SEL_NRE, s += 2;
            else if (s[0] == '!' && s[1] == '=')
                op = SEL_NE, s += 2;
            else if (s[0] == '=')
                op = SEL_EQ, s += 1;
            else {
                snprintf(err, errlen, "expected =, !=, =~ or !~ after '%.*s'", (int)nl, n);
                return -1;
            }
            char *value;
            s = quoted(spaces(s), &value, err, errlen);
            if (!s)
                return -1;
            int rc = add(sel, n, nl, value, op, err, errlen);
            free(value);
            if (rc < 0)
                return -1;
            s = spaces(s);
            if (*s == ',')
                s = spaces(s + 1);
            else if (*s != '}') {
                snprintf(err, errlen, "expected ',' or '}'");
                return -1;
            }
        }
        s = spaces(s + 1);
    }
    if (*s) {
        snprintf(err, errlen, "unexpected text at '%.20s'", s);
        return -1;
    }
    return sel_check(sel, err, errlen);
}

int sel_check(const struct selector *sel, char *err, size_t errlen)
{
    if (sel->n == 0) {
        snprintf(err, errlen, "a selector needs a metric name or a matcher");
        return -1;
    }
    /* like Prometheus: at least one matcher must not match the empty string */
    int nonempty = 0;
    for (size_t i = 0; i < sel->n; i++) {
        const struct sel_matcher *m = &sel->m[i];
        int empty_ok = m->op == SEL_EQ   ? m->value[0] == '\0'
                       : m->op == SEL_NE ? m->value[0] != '\0'
                       : m->op == SEL_RE ? regexec(&m->re, "", 0, NULL, 0) == 0
                                         : regexec(&m->re, "", 0, NULL, 0) != 0;
        nonempty |= !empty_ok;
    }
    if (!nonempty) {
        snprintf(err, errlen, "the selector matches every series; add a matcher that needs a value");
        return -1;
    }
    return 0;
}

int sel_add(struct selector *sel, const char *name, enum sel_op op, const char *value, char *err,
            size_t errlen)
{
    return add(sel, name, strlen(name), value, op, err, errlen);
}

int sel_add_eq(struct selector *sel, const char *name, const char *value)
{
    if (sel->n >= SEL_MAX_MATCHERS)
        return -1;
    struct sel_matcher *m = &sel->m[sel->n++];
    memset(m, 0, sizeof(*m));
    m->name = xstrdup(name);
    m->value = xstrdup(value);
    m->op = SEL_EQ;
    return 0;
}

void sel_free(struct selector *sel)
{
    for (size_t i = 0; i < sel->n; i++) {
        free(sel->m[i].name);
        free(sel->m[i].value);
        if (sel->m[i].has_re)
            regfree(&sel->m[i].re);
        for (size_t k = 0; k < sel->m[i].nalts; k++)
            free(sel->m[i].alts[k]);
        free(sel->m[i].alts);
    }
    memset(sel, 0, sizeof(*sel));
}

int sel_matches(const struct selector *sel, const char *(*get)(void *arg, const char *name),
                void *arg)
{
    for (size_t i = 0; i < sel->n; i++) {
        const struct sel_matcher *m = &sel->m[i];
        const char *v = get(arg, m->name);
        if (!v)
            v = "";
        int ok;
        switch (m->op) {
        case SEL_EQ: ok = !strcmp(v, m->value); break;
        case SEL_NE: ok = strcmp(v, m->value) != 0; break;
        case SEL_RE: ok = m->alts ? in_alts(m, v) : regexec(&m->re, v, 0, NULL, 0) == 0; break;
        default: ok = m->alts ? !in_alts(m, v) : regexec(&m->re, v, 0, NULL, 0) != 0; break;
        }
        if (!ok)
            return 0;
    }
    return 1;
}
