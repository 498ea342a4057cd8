/* The PromQL parser: a lexer and a recursive-descent parser (operator
 * precedence as Prometheus has it) into the tree promql_impl.h describes,
 * type-checked, so evaluation never meets a query it cannot answer. */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../../lib/xalloc.h"
#include "promql_impl.h"

#define MAX_TEXT (64u * 1024)
#define MAX_DEPTH 200

enum tok {
    T_EOF, T_NUM, T_STR, T_IDENT, T_DUR,
    T_LPAREN, T_RPAREN, T_LBRACE, T_RBRACE, T_LBRACK, T_RBRACK, T_COMMA, T_COLON, T_AT,
    T_ASSIGN, T_NEQ, T_EQ_RE, T_NEQ_RE,
    T_ADD, T_SUB, T_MUL, T_DIV, T_MOD, T_POW, T_EQL, T_GTR, T_LSS, T_GTE, T_LTE,
};

struct parser {
    const char *text, *p;
    enum tok tok;
    const char *tok_start;
    size_t tok_len;
    double num;
    char *str; /* T_STR's decoded value */
    int64_t dur;
    int depth;
    int brackets; /* inside [...]: ':' separates a subquery's step */
    char *err;
    size_t errlen;
    int failed;
};

static int fail(struct parser *ps, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(struct parser *ps, const char *fmt, ...)
{
    if (ps->failed)
        return -1;
    ps->failed = 1;
    char msg[300];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    size_t at = (size_t)(ps->tok_start ? ps->tok_start - ps->text : 0);
    snprintf(ps->err, ps->errlen, "%s (at character %zu)", msg, at + 1);
    return -1;
}

/* ---- durations ---- */

int promql_parse_duration(const char *s, size_t len, int64_t *ms)
{
    static const struct {
        const char *unit;
        int64_t ms;
    } units[] = {{"y", 365LL * 86400000}, {"w", 7LL * 86400000}, {"d", 86400000}, {"h", 3600000},
                 {"m", 60000},            {"s", 1000},           {"ms", 1}};
    const char *p = s, *e = s + len;
    int64_t total = 0;
    size_t next = 0;

    if (len == 0)
        return -1;
    if (isdigit((unsigned char)*p) || *p == '.') { /* plain seconds? */
        char tmp[64];
        if (len < sizeof(tmp)) {
            memcpy(tmp, s, len);
            tmp[len] = 0;
            char *end;
            errno = 0;
            double secs = strtod(tmp, &end);
            if (*end == 0 && errno == 0 && isfinite(secs) && secs >= 0 && secs < 9e12) {
                *ms = (int64_t)llround(secs * 1000);
                return 0;
            }
        }
    }
    while (p < e) {
        if (!isdigit((unsigned char)*p))
            return -1;
        int64_t n = 0;
        while (p < e && isdigit((unsigned char)*p)) {
            if (n > 1000000000000LL)
                return -1;
            n = n * 10 + (*p++ - '0');
        }
        size_t ul = 0;
        while (p + ul < e && isalpha((unsigned char)p[ul]))
            ul++;
        size_t k = next;
        while (k < sizeof(units) / sizeof(units[0]) &&
               (strlen(units[k].unit) != ul || strncmp(units[k].unit, p, ul)))
            k++;
        if (k == sizeof(units) / sizeof(units[0]))
            return -1; /* unknown unit, or out of order / repeated */
        if (n > INT64_MAX / units[k].ms || total > INT64_MAX - n * units[k].ms)
            return -1;
        total += n * units[k].ms;
        next = k + 1;
        p += ul;
    }
    *ms = total;
    return 0;
}

/* ---- lexer ---- */

static int ident_start(int c)
{
    return isalpha(c) || c == '_' || c == ':';
}

static int ident_char(int c)
{
    return isalnum(c) || c == '_' || c == ':';
}

static void put_utf8(struct buf *b, unsigned cp)
{
    if (cp < 0x80) {
        buf_putc(b, (char)cp);
    } else if (cp < 0x800) {
        buf_putc(b, (char)(0xC0 | (cp >> 6)));
        buf_putc(b, (char)(0x80 | (cp & 0x3F)));
    } else if (cp < 0x10000) {
        buf_putc(b, (char)(0xE0 | (cp >> 12)));
        buf_putc(b, (char)(0x80 | ((cp >> 6) & 0x3F)));
        buf_putc(b, (char)(0x80 | (cp & 0x3F)));
    } else {
        buf_putc(b, (char)(0xF0 | (cp >> 18)));
        buf_putc(b, (char)(0x80 | ((cp >> 12) & 0x3F)));
        buf_putc(b, (char)(0x80 | ((cp >> 6) & 0x3F)));
        buf_putc(b, (char)(0x80 | (cp & 0x3F)));
    }
}

static int hexval(int c)
{
    return isdigit(c) ? c - '0' : (c >= 'a' && c <= 'f') ? c - 'a' + 10 : (c >= 'A' && c <= 'F') ? c - 'A' + 10 : -1;
}

/* A string in '...', "..." (Go escapes) or `...` (raw). */
static int lex_string(struct parser *ps)
{
    char q = *ps->p++;
    struct buf b = {0};

    while (*ps->p && *ps->p != q) {
        char c = *ps->p++;
        if (q == '`' || c != '\\') {
            if (c == '\n' && q != '`') {
                buf_free(&b);
                return fail(ps, "unterminated quoted string");
            }
            buf_putc(&b, c);
            continue;
        }
        c = *ps->p++;
        int digits = 0;
        switch (c) {
        case 'a': buf_putc(&b, '\a'); break;
        case 'b': buf_putc(&b, '\b'); break;
        case 'f': buf_putc(&b, '\f'); break;
        case 'n': buf_putc(&b, '\n'); break;
        case 'r': buf_putc(&b, '\r'); break;
        case 't': buf_putc(&b, '\t'); break;
        case 'v': buf_putc(&b, '\v'); break;
        case '\\': buf_putc(&b, '\\'); break;
        case '\'': case '"':
            if (c != q) {
                buf_free(&b);
                return fail(ps, "unknown escape sequence \\%c", c);
            }
            buf_putc(&b, c);
            break;
        case 'x': digits = 2; break;
        case 'u': digits = 4; break;
        case 'U': digits = 8; break;
        case '0': case '1': case '2': case '3': case '4': case '5': case '6': case '7': {
            int v = c - '0';
            for (int i = 0; i < 2; i++) {
                if (*ps->p < '0' || *ps->p > '7') {
                    buf_free(&b);
                    return fail(ps, "invalid octal escape");
                }
                v = v * 8 + (*ps->p++ - '0');
            }
            if (v > 255) {
                buf_free(&b);
                return fail(ps, "octal escape above 255");
            }
            buf_putc(&b, (char)v);
            break;
        }
        default:
            buf_free(&b);
            return c ? fail(ps, "unknown escape sequence \\%c", c) : fail(ps, "unterminated quoted string");
        }
        if (digits) {
            unsigned v = 0;
            for (int i = 0; i < digits; i++) {
                int h = hexval((unsigned char)*ps->p);
                if (h < 0) {
                    buf_free(&b);
                    return fail(ps, "invalid \\%c escape: %d hex digits needed", c, digits);
                }
                v = v * 16 + (unsigned)h;
                ps->p++;
            }
            if (c == 'x')
                buf_putc(&b, (char)v);
            else if (v > 0x10FFFF || (v >= 0xD800 && v < 0xE000)) {
                buf_free(&b);
                return fail(ps, "escape \\%c is not a valid Unicode code point", c);
            } else
                put_utf8(&b, v);
        }
    }
    if (*ps->p != q) {
        buf_free(&b);
        return fail(ps, "unterminated quoted string");
    }
    ps->p++;
    free(ps->str);
    ps->str = buf_detach(&b, NULL);
    if (!ps->str)
        ps->str = xstrdup("");
    ps->tok = T_STR;
    return 0;
}

static int lex_number(struct parser *ps)
{
    const char *s = ps->p;
    /* a duration: digits then a unit letter (5m, 1h30m, 1m0s) */
    const char *q = s;
    while (isdigit((unsigned char)*q))
        q++;
    if (q > s && (*q == 'y' || *q == 'w' || *q == 'd' || *q == 'h' || *q == 'm' || *q == 's')) {
        const char *e = q;
        while (isalnum((unsigned char)*e))
            e++;
        if (promql_parse_duration(s, (size_t)(e - s), &ps->dur) < 0)
            return fail(ps, "bad duration '%.*s'", (int)(e - s), s);
        ps->p = e;
        ps->tok = T_DUR;
        return 0;
    }
    char *end;
    errno = 0;
    if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X'))
        ps->num = (double)strtoull(s, &end, 16);
    else
        ps->num = strtod(s, &end);
    if (end == s || ident_char((unsigned char)*end))
        return fail(ps, "bad number or duration '%.*s'", (int)(strcspn(s, " ()[]{},")), s);
    ps->p = end;
    ps->tok = T_NUM;
    return 0;
}

static int next(struct parser *ps)
{
    while (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\n' || *ps->p == '\r' || *ps->p == '#') {
        if (*ps->p == '#') /* a comment runs to the end of the line */
            while (*ps->p && *ps->p != '\n')
                ps->p++;
        else
            ps->p++;
    }
    ps->tok_start = ps->p;
    const char *p = ps->p;
    int c = (unsigned char)*p;
    if (!c) {
        ps->tok = T_EOF;
        ps->tok_len = 0;
        return 0;
    }
    if (isdigit(c) || (c == '.' && isdigit((unsigned char)p[1]))) {
        int rc = lex_number(ps);
        ps->tok_len = (size_t)(ps->p - ps->tok_start);
        return rc;
    }
    if (c == ':' && ps->brackets) {
        ps->p++;
        ps->tok = T_COLON;
        ps->tok_len = 1;
        return 0;
    }
    if (ident_start(c)) {
        while (ident_char((unsigned char)*ps->p))
            ps->p++;
        ps->tok_len = (size_t)(ps->p - p);
        ps->tok = T_IDENT;
        if ((ps->tok_len == 3 && !strncasecmp(p, "inf", 3)) ||
            (ps->tok_len == 3 && !strncasecmp(p, "nan", 3))) {
            ps->tok = T_NUM;
            ps->num = tolower(c) == 'i' ? INFINITY : NAN;
        }
        return 0;
    }
    if (c == '"' || c == '\'' || c == '`') {
        int rc = lex_string(ps);
        ps->tok_len = (size_t)(ps->p - ps->tok_start);
        return rc;
    }
    static const struct {
        const char *s;
        enum tok t;
    } ops[] = {{"==", T_EQL}, {"!=", T_NEQ}, {"=~", T_EQ_RE}, {"!~", T_NEQ_RE}, {">=", T_GTE},
               {"<=", T_LTE}, {"(", T_LPAREN}, {")", T_RPAREN}, {"{", T_LBRACE}, {"}", T_RBRACE},
               {"[", T_LBRACK}, {"]", T_RBRACK}, {",", T_COMMA}, {":", T_COLON}, {"@", T_AT},
               {"=", T_ASSIGN}, {"+", T_ADD}, {"-", T_SUB}, {"*", T_MUL}, {"/", T_DIV},
               {"%", T_MOD}, {"^", T_POW}, {">", T_GTR}, {"<", T_LSS}};
    for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
        size_t l = strlen(ops[i].s);
        if (!strncmp(p, ops[i].s, l)) {
            ps->p += l;
            ps->tok = ops[i].t;
            ps->tok_len = l;
            ps->brackets += ops[i].t == T_LBRACK ? 1 : ops[i].t == T_RBRACK ? -1 : 0;
            return 0;
        }
    }
    return fail(ps, "unexpected character '%c'", isprint(c) ? c : '?');
}

static int is_word(const struct parser *ps, const char *w)
{
    return ps->tok == T_IDENT && ps->tok_len == strlen(w) && !strncmp(ps->tok_start, w, ps->tok_len);
}

static int expect(struct parser *ps, enum tok t, const char *what)
{
    if (ps->tok != t)
        return fail(ps, "expected %s, found '%.*s'", what, ps->tok == T_EOF ? 3 : (int)ps->tok_len,
                    ps->tok == T_EOF ? "end" : ps->tok_start);
    return next(ps);
}

/* ---- tree ---- */

static struct promql_expr *node(enum pq_kind kind, enum promql_type type)
{
    struct promql_expr *e = xcalloc(1, sizeof(*e));
    e->kind = kind;
    e->type = type;
    return e;
}

static void names_free(struct pq_names *n)
{
    for (size_t i = 0; i < n->n; i++)
        free(n->v[i]);
    free(n->v);
}

void promql_free(struct promql_expr *e)
{
    if (!e)
        return;
    for (size_t i = 0; i < e->nsub; i++)
        promql_free(e->sub[i]);
    free(e->sub);
    free(e->str);
    sel_free(&e->sel);
    pq_selcache_free(e->cache);
    names_free(&e->grouping);
    names_free(&e->matching);
    names_free(&e->include);
    free(e);
}

enum promql_type promql_type(const struct promql_expr *e)
{
    return e->type;
}

static void add_sub(struct promql_expr *e, struct promql_expr *s)
{
    e->sub = xrealloc(e->sub, (e->nsub + 1) * sizeof(*e->sub));
    e->sub[e->nsub++] = s;
}

static const char *type_name(enum promql_type t)
{
    static const char *n[] = {"scalar", "instant vector", "range vector", "string"};
    return n[t];
}

/* ---- grammar ---- */

static struct promql_expr *parse_expr(struct parser *ps, int min_prec);

/* A label list: ( name, name, ... ) */
static int parse_names(struct parser *ps, struct pq_names *out, const char *what)
{
    if (expect(ps, T_LPAREN, "'(' after the modifier") < 0)
        return -1;
    while (ps->tok != T_RPAREN) {
        if (ps->tok != T_IDENT)
            return fail(ps, "expected a label name in %s", what);
        out->v = xrealloc(out->v, (out->n + 1) * sizeof(*out->v));
        out->v[out->n++] = xstrndup(ps->tok_start, ps->tok_len);
        if (next(ps) < 0)
            return -1;
        if (ps->tok == T_COMMA) {
            if (next(ps) < 0)
                return -1;
        } else if (ps->tok != T_RPAREN) {
            return fail(ps, "expected ',' or ')' in %s", what);
        }
    }
    return next(ps);
}

/* {name op "value", ...} into e->sel (the metric name, when given, already in). */
static int parse_matchers(struct parser *ps, struct promql_expr *e)
{
    char err[300];
    if (next(ps) < 0) /* past '{' */
        return -1;
    while (ps->tok != T_RBRACE) {
        if (ps->tok != T_IDENT)
            return fail(ps, "expected a label name in the selector");
        char *name = xstrndup(ps->tok_start, ps->tok_len);
        if (next(ps) < 0)
            goto fail_name;
        enum sel_op op;
        switch (ps->tok) {
        case T_ASSIGN: op = SEL_EQ; break;
        case T_NEQ: op = SEL_NE; break;
        case T_EQ_RE: op = SEL_RE; break;
        case T_NEQ_RE: op = SEL_NRE; break;
        default:
            fail(ps, "expected =, !=, =~ or !~ after label '%s'", name);
            goto fail_name;
        }
        if (next(ps) < 0)
            goto fail_name;
        if (ps->tok != T_STR) {
            fail(ps, "expected a quoted value for label '%s'", name);
            goto fail_name;
        }
        if (!strcmp(name, "__name__") && op == SEL_EQ && e->sel.metric) {
            fail(ps, "metric name given twice");
            goto fail_name;
        }
        if (sel_add(&e->sel, name, op, ps->str, err, sizeof(err)) < 0) {
            fail(ps, "%s", err);
            goto fail_name;
        }
        free(name);
        if (next(ps) < 0)
            return -1;
        if (ps->tok == T_COMMA) {
            if (next(ps) < 0)
                return -1;
        } else if (ps->tok != T_RBRACE) {
            return fail(ps, "expected ',' or '}' in the selector");
        }
        continue;
    fail_name:
        free(name);
        return -1;
    }
    return next(ps);
}

static struct promql_expr *parse_selector(struct parser *ps)
{
    struct promql_expr *e = node(PQ_VSEL, PROMQL_VECTOR);
    char err[300];

    if (ps->tok == T_IDENT) {
        char *name = xstrndup(ps->tok_start, ps->tok_len);
        sel_add(&e->sel, "__name__", SEL_EQ, name, err, sizeof(err));
        free(name);
        if (next(ps) < 0)
            goto fail;
    }
    if (ps->tok == T_LBRACE && parse_matchers(ps, e) < 0)
        goto fail;
    if (sel_check(&e->sel, err, sizeof(err)) < 0) {
        fail(ps, "vector selector: %s", err);
        goto fail;
    }
    return e;
fail:
    promql_free(e);
    return NULL;
}

static const struct {
    const char *name;
    enum pq_agg op;
    int param;
} aggs[] = {{"sum", AGG_SUM, 0},       {"avg", AGG_AVG, 0},       {"min", AGG_MIN, 0},
            {"max", AGG_MAX, 0},       {"count", AGG_COUNT, 0},   {"group", AGG_GROUP, 0},
            {"stddev", AGG_STDDEV, 0}, {"stdvar", AGG_STDVAR, 0}, {"topk", AGG_TOPK, 1},
            {"bottomk", AGG_BOTTOMK, 1}, {"quantile", AGG_QUANTILE, 1}};

static int agg_index(const struct parser *ps)
{
    for (size_t i = 0; i < sizeof(aggs) / sizeof(aggs[0]); i++)
        if (is_word(ps, aggs[i].name))
            return (int)i;
    return -1;
}

static int grouping(struct parser *ps, struct promql_expr *e)
{
    if (e->has_grouping)
        return fail(ps, "by/without given twice");
    e->has_grouping = 1;
    e->without = is_word(ps, "without");
    if (next(ps) < 0)
        return -1;
    return parse_names(ps, &e->grouping, "the grouping");
}

static struct promql_expr *parse_aggregation(struct parser *ps, int ai)
{
    struct promql_expr *e = node(PQ_AGG, PROMQL_VECTOR), *a;
    e->op = aggs[ai].op;
    if (next(ps) < 0)
        goto fail;
    if ((is_word(ps, "by") || is_word(ps, "without")) && grouping(ps, e) < 0)
        goto fail;
    if (expect(ps, T_LPAREN, "'(' after the aggregation") < 0)
        goto fail;
    if (aggs[ai].param) {
        if (!(a = parse_expr(ps, 0)))
            goto fail;
        add_sub(e, a);
        if (a->type != PROMQL_SCALAR) {
            fail(ps, "expected type scalar in aggregation parameter of %s, got %s", aggs[ai].name,
                 type_name(a->type));
            goto fail;
        }
        if (expect(ps, T_COMMA, "',' after the aggregation's parameter") < 0)
            goto fail;
    }
    if (!(a = parse_expr(ps, 0)))
        goto fail;
    add_sub(e, a);
    if (a->type != PROMQL_VECTOR) {
        fail(ps, "expected type instant vector in aggregation expression of %s, got %s",
             aggs[ai].name, type_name(a->type));
        goto fail;
    }
    if (expect(ps, T_RPAREN, "')' closing the aggregation") < 0)
        goto fail;
    if ((is_word(ps, "by") || is_word(ps, "without")) && grouping(ps, e) < 0)
        goto fail;
    return e;
fail:
    promql_free(e);
    return NULL;
}

static struct promql_expr *parse_call(struct parser *ps)
{
    const struct pq_func *f = pq_func_find(ps->tok_start, ps->tok_len);
    if (!f) {
        fail(ps, "function \"%.*s\" is not supported (unknown, or not implemented here)",
             (int)ps->tok_len, ps->tok_start);
        return NULL;
    }
    struct promql_expr *e = node(PQ_CALL, f->ret);
    e->fn = f;
    if (next(ps) < 0 || expect(ps, T_LPAREN, "'('") < 0)
        goto fail;
    while (ps->tok != T_RPAREN) {
        struct promql_expr *a = parse_expr(ps, 0);
        if (!a)
            goto fail;
        add_sub(e, a);
        if (ps->tok == T_COMMA) {
            if (next(ps) < 0)
                goto fail;
        } else if (ps->tok != T_RPAREN) {
            fail(ps, "expected ',' or ')' in the call to %s", f->name);
            goto fail;
        }
    }
    if (next(ps) < 0)
        goto fail;
    if ((int)e->nsub < f->nargs_min || (f->nargs_max >= 0 && (int)e->nsub > f->nargs_max)) {
        fail(ps, "wrong number of arguments for function %s: %zu given, %d%s expected", f->name,
             e->nsub, f->nargs_min, f->nargs_max != f->nargs_min ? " or more" : "");
        goto fail;
    }
    for (size_t i = 0; i < e->nsub; i++) {
        enum promql_type want = f->args[i < 5 ? i : 4];
        if (e->sub[i]->type != want) {
            fail(ps, "expected type %s in call to function %s, got %s", type_name(want), f->name,
                 type_name(e->sub[i]->type));
            goto fail;
        }
    }
    return e;
fail:
    promql_free(e);
    return NULL;
}

static struct promql_expr *parse_primary(struct parser *ps)
{
    struct promql_expr *e;
    switch (ps->tok) {
    case T_NUM:
        e = node(PQ_NUM, PROMQL_SCALAR);
        e->num = ps->num;
        if (next(ps) < 0) {
            promql_free(e);
            return NULL;
        }
        return e;
    case T_STR:
        e = node(PQ_STR, PROMQL_STRING);
        e->str = xstrdup(ps->str);
        if (next(ps) < 0) {
            promql_free(e);
            return NULL;
        }
        return e;
    case T_LPAREN:
        if (next(ps) < 0 || !(e = parse_expr(ps, 0)))
            return NULL;
        if (expect(ps, T_RPAREN, "')'") < 0) {
            promql_free(e);
            return NULL;
        }
        return e;
    case T_LBRACE:
        return parse_selector(ps);
    case T_IDENT: {
        int ai = agg_index(ps);
        const char *after = ps->p;
        while (*after == ' ' || *after == '\t' || *after == '\n' || *after == '\r')
            after++;
        if (ai >= 0)
            return parse_aggregation(ps, ai);
        if (*after == '(')
            return parse_call(ps);
        static const char *keywords[] = {"by", "without", "on", "ignoring", "group_left",
                                         "group_right", "bool", "offset", "and", "or", "unless",
                                         "atan2"};
        for (size_t i = 0; i < sizeof(keywords) / sizeof(keywords[0]); i++)
            if (is_word(ps, keywords[i])) {
                fail(ps, "unexpected keyword '%s'", keywords[i]);
                return NULL;
            }
        return parse_selector(ps);
    }
    case T_EOF:
        fail(ps, "unexpected end of the query");
        return NULL;
    default:
        fail(ps, "unexpected '%.*s'", (int)ps->tok_len, ps->tok_start);
        return NULL;
    }
}

/* [range], [range:step], offset d after a primary. */
static struct promql_expr *parse_postfix(struct parser *ps)
{
    struct promql_expr *e = parse_primary(ps);
    int has_offset = 0;

    while (e) {
        if (ps->tok == T_AT) {
            fail(ps, "the @ modifier is not supported");
            goto fail;
        }
        if (is_word(ps, "offset")) {
            if (e->kind != PQ_VSEL && e->kind != PQ_MSEL && e->kind != PQ_SUBQ) {
                fail(ps, "offset modifier must be preceded by an instant vector selector or range "
                         "vector selector or a subquery");
                goto fail;
            }
            if (has_offset) {
                fail(ps, "offset may not be set multiple times");
                goto fail;
            }
            if (next(ps) < 0)
                goto fail;
            int neg = ps->tok == T_SUB;
            if (neg && next(ps) < 0)
                goto fail;
            if (ps->tok != T_DUR) {
                fail(ps, "expected a duration after offset");
                goto fail;
            }
            e->offset_ms = neg ? -ps->dur : ps->dur;
            /* the selector itself reads the offset */
            if (e->kind == PQ_MSEL)
                e->sub[0]->offset_ms = e->offset_ms;
            has_offset = 1;
            if (next(ps) < 0)
                goto fail;
            continue;
        }
        if (ps->tok != T_LBRACK)
            break;
        if (next(ps) < 0)
            goto fail;
        if (ps->tok != T_DUR) {
            fail(ps, "expected a duration in [...]");
            goto fail;
        }
        int64_t range = ps->dur;
        if (range <= 0) {
            fail(ps, "the range must be above zero");
            goto fail;
        }
        if (next(ps) < 0)
            goto fail;
        struct promql_expr *w;
        if (ps->tok == T_COLON) {
            if (e->type != PROMQL_VECTOR) {
                fail(ps, "subquery is only allowed on instant vector, got %s", type_name(e->type));
                goto fail;
            }
            if (has_offset && e->kind == PQ_SUBQ) {
                fail(ps, "a subquery after an offset needs parentheses");
                goto fail;
            }
            w = node(PQ_SUBQ, PROMQL_MATRIX);
            w->range_ms = range;
            add_sub(w, e);
            e = w;
            if (next(ps) < 0)
                goto fail;
            if (ps->tok == T_DUR) {
                if (ps->dur <= 0) {
                    fail(ps, "the subquery step must be above zero");
                    goto fail;
                }
                e->step_ms = ps->dur;
                if (next(ps) < 0)
                    goto fail;
            }
        } else {
            if (e->kind != PQ_VSEL || has_offset) {
                fail(ps, "ranges only allowed for vector selectors");
                goto fail;
            }
            w = node(PQ_MSEL, PROMQL_MATRIX);
            w->range_ms = range;
            add_sub(w, e);
            e = w;
        }
        has_offset = 0;
        if (expect(ps, T_RBRACK, "']'") < 0)
            goto fail;
    }
    return e;
fail:
    promql_free(e);
    return NULL;
}

static struct promql_expr *parse_unary(struct parser *ps)
{
    if (ps->tok != T_SUB && ps->tok != T_ADD)
        return parse_postfix(ps);
    int neg = ps->tok == T_SUB;
    if (next(ps) < 0)
        return NULL;
    /* unary minus binds looser than ^: -2^2 is -4 */
    struct promql_expr *a = parse_expr(ps, 6);
    if (!a || !neg)
        return a;
    if (a->type != PROMQL_SCALAR && a->type != PROMQL_VECTOR) {
        fail(ps, "unary expression only allowed on expressions of type scalar or instant vector, "
                 "got %s", type_name(a->type));
        promql_free(a);
        return NULL;
    }
    if (a->kind == PQ_NUM) {
        a->num = -a->num;
        return a;
    }
    struct promql_expr *e = node(PQ_NEG, a->type);
    add_sub(e, a);
    return e;
}

static const struct {
    enum tok tok;
    const char *word;
    enum pq_op op;
    int prec;
} binops[] = {
    {T_IDENT, "or", OP_OR, 1},   {T_IDENT, "and", OP_AND, 2}, {T_IDENT, "unless", OP_UNLESS, 2},
    {T_EQL, NULL, OP_EQ, 3},     {T_NEQ, NULL, OP_NE, 3},     {T_GTR, NULL, OP_GT, 3},
    {T_LSS, NULL, OP_LT, 3},     {T_GTE, NULL, OP_GE, 3},     {T_LTE, NULL, OP_LE, 3},
    {T_ADD, NULL, OP_ADD, 4},    {T_SUB, NULL, OP_SUB, 4},    {T_MUL, NULL, OP_MUL, 5},
    {T_DIV, NULL, OP_DIV, 5},    {T_MOD, NULL, OP_MOD, 5},    {T_IDENT, "atan2", OP_ATAN2, 5},
    {T_POW, NULL, OP_POW, 6},
};

static int binop_index(const struct parser *ps)
{
    for (size_t i = 0; i < sizeof(binops) / sizeof(binops[0]); i++)
        if (ps->tok == binops[i].tok && (!binops[i].word || is_word(ps, binops[i].word)))
            return (int)i;
    return -1;
}

static int is_comparison(int op)
{
    return op >= OP_EQ && op <= OP_LE;
}

static int is_set(int op)
{
    return op >= OP_AND;
}

/* bool, on/ignoring(...), group_left/right(...) after an operator. */
static int parse_modifiers(struct parser *ps, struct promql_expr *e)
{
    if (is_word(ps, "bool")) {
        if (!is_comparison(e->op))
            return fail(ps, "bool modifier can only be used on comparison operators");
        e->ret_bool = 1;
        if (next(ps) < 0)
            return -1;
    }
    if (is_word(ps, "on") || is_word(ps, "ignoring")) {
        e->has_matching = 1;
        e->on = is_word(ps, "on");
        if (next(ps) < 0 || parse_names(ps, &e->matching, "on/ignoring") < 0)
            return -1;
        if (is_word(ps, "group_left") || is_word(ps, "group_right")) {
            if (is_set(e->op))
                return fail(ps, "no grouping allowed for \"and\", \"or\", \"unless\" operations");
            e->card = is_word(ps, "group_left") ? CARD_MANY_ONE : CARD_ONE_MANY;
            if (next(ps) < 0)
                return -1;
            if (ps->tok == T_LPAREN && parse_names(ps, &e->include, "group_left/group_right") < 0)
                return -1;
        }
    }
    return 0;
}

static struct promql_expr *make_binary(struct parser *ps, struct promql_expr *e)
{
    struct promql_expr *l = e->sub[0], *r = e->sub[1];
    for (int i = 0; i < 2; i++) {
        enum promql_type t = e->sub[i]->type;
        if (t != PROMQL_SCALAR && t != PROMQL_VECTOR) {
            fail(ps, "binary expression must contain only scalar and instant vector types");
            goto fail;
        }
    }
    if (is_set(e->op)) {
        if (l->type != PROMQL_VECTOR || r->type != PROMQL_VECTOR) {
            fail(ps, "set operator %s not allowed in binary scalar expression",
                 e->op == OP_AND ? "and" : e->op == OP_OR ? "or" : "unless");
            goto fail;
        }
        e->card = CARD_MANY_MANY;
    }
    if (l->type == PROMQL_SCALAR && r->type == PROMQL_SCALAR) {
        if (is_comparison(e->op) && !e->ret_bool) {
            fail(ps, "comparisons between scalars must use BOOL modifier");
            goto fail;
        }
        e->type = PROMQL_SCALAR;
    } else {
        e->type = PROMQL_VECTOR;
    }
    if ((e->has_matching || e->card != CARD_ONE_ONE) && !is_set(e->op) &&
        (l->type != PROMQL_VECTOR || r->type != PROMQL_VECTOR)) {
        fail(ps, "vector matching only allowed between instant vectors");
        goto fail;
    }
    if (e->has_matching && e->card != CARD_ONE_ONE && e->card != CARD_MANY_MANY) {
        for (size_t i = 0; i < e->include.n; i++)
            for (size_t j = 0; j < e->matching.n && e->on; j++)
                if (!strcmp(e->include.v[i], e->matching.v[j])) {
                    fail(ps, "label \"%s\" must not occur in ON and GROUP clause at once",
                         e->include.v[i]);
                    goto fail;
                }
    }
    return e;
fail:
    promql_free(e);
    return NULL;
}

static struct promql_expr *parse_expr(struct parser *ps, int min_prec)
{
    if (++ps->depth > MAX_DEPTH) {
        fail(ps, "the query nests deeper than %d levels", MAX_DEPTH);
        return NULL;
    }
    struct promql_expr *lhs = parse_unary(ps);
    while (lhs) {
        int bi = binop_index(ps);
        if (bi < 0 || binops[bi].prec < min_prec)
            break;
        struct promql_expr *e = node(PQ_BIN, PROMQL_VECTOR);
        e->op = binops[bi].op;
        add_sub(e, lhs);
        lhs = NULL;
        if (next(ps) < 0 || parse_modifiers(ps, e) < 0) {
            promql_free(e);
            break;
        }
        /* ^ is right-associative, the rest left */
        struct promql_expr *rhs =
            parse_expr(ps, binops[bi].op == OP_POW ? binops[bi].prec : binops[bi].prec + 1);
        if (!rhs) {
            promql_free(e);
            break;
        }
        add_sub(e, rhs);
        lhs = make_binary(ps, e);
    }
    ps->depth--;
    return lhs;
}

int promql_parse(const char *text, struct promql_expr **out, char *err, size_t errlen)
{
    struct parser ps = {.text = text, .p = text, .err = err, .errlen = errlen};
    struct promql_expr *e = NULL;

    *out = NULL;
    if (strlen(text) > MAX_TEXT) {
        snprintf(err, errlen, "the query is longer than %u bytes", MAX_TEXT);
        return PROMQL_BAD_DATA;
    }
    if (next(&ps) < 0)
        goto fail;
    if (ps.tok == T_EOF) {
        fail(&ps, "the query is empty");
        goto fail;
    }
    if (!(e = parse_expr(&ps, 0)))
        goto fail;
    if (ps.tok != T_EOF) {
        fail(&ps, "unexpected '%.*s' after the end of the expression", (int)ps.tok_len,
             ps.tok_start);
        goto fail;
    }
    free(ps.str);
    *out = e;
    return 0;
fail:
    if (!ps.failed)
        fail(&ps, "invalid query");
    promql_free(e);
    free(ps.str);
    return PROMQL_BAD_DATA;
}
