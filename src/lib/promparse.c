/* Exposition parser. Works line by line on the caller's buffer without
 * copying it; only escaped label values are unescaped, into a per-parse
 * scratch buffer. */
#include "promparse.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xalloc.h"

struct parser {
    const struct prom_limits *lim;
    size_t max_line, max_labels, max_name, max_value;
    int openmetrics;
    struct prom_error *err;
    size_t line_no;
    char *scratch; /* unescaped label values of the current line */
    size_t scratch_cap;
    /* family types seen in TYPE lines: a small open-addressed table */
    char cur_family[256];
    int cur_type;
    char help[1024], unit[64];
    int has_help, has_unit;
};

static int fail(struct parser *p, const char *fmt, ...)
{
    va_list ap;

    p->err->line = p->line_no;
    va_start(ap, fmt);
    vsnprintf(p->err->msg, sizeof(p->err->msg), fmt, ap);
    va_end(ap);
    return -1;
}

static int is_name_start(char c, int metric)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (metric && c == ':');
}

static int is_name_char(char c, int metric)
{
    return is_name_start(c, metric) || (c >= '0' && c <= '9');
}

/* Length of a name at s (up to end), 0 when none. */
static size_t name_len(const char *s, const char *end, int metric)
{
    size_t n = 0;

    if (s >= end || !is_name_start(*s, metric))
        return 0;
    while (s + n < end && is_name_char(s[n], metric))
        n++;
    return n;
}

int prom_parse_float(const char *s, size_t len, double *out)
{
    char tmp[64];
    char *end;

    if (len == 0 || len >= sizeof(tmp))
        return -1;
    /* most values and every timestamp are plain integers: exact and quick */
    if (len <= 15) {
        size_t i = s[0] == '-' ? 1 : 0;
        int64_t v = 0;
        if (i < len) {
            for (; i < len && s[i] >= '0' && s[i] <= '9'; i++)
                v = v * 10 + (s[i] - '0');
            if (i == len) {
                *out = s[0] == '-' ? -(double)v : (double)v;
                return 0;
            }
        }
    }
    memcpy(tmp, s, len);
    tmp[len] = '\0';
    if (!strcmp(tmp, "NaN")) {
        *out = NAN;
        return 0;
    }
    if (!strcmp(tmp, "+Inf") || !strcmp(tmp, "Inf") || !strcmp(tmp, "+inf") || !strcmp(tmp, "inf")) {
        *out = INFINITY;
        return 0;
    }
    if (!strcmp(tmp, "-Inf") || !strcmp(tmp, "-inf")) {
        *out = -INFINITY;
        return 0;
    }
    /* strtod would also take hex, "nan(...)", "infinity" and leading spaces */
    for (size_t i = 0; i < len; i++) {
        char c = tmp[i];
        if (!((c >= '0' && c <= '9') || c == '+' || c == '-' || c == '.' || c == 'e' || c == 'E'))
            return -1;
    }
    *out = strtod(tmp, &end);
    return *end == '\0' ? 0 : -1;
}

static const char *skip_spaces(const char *s, const char *end)
{
    while (s < end && (*s == ' ' || *s == '\t'))
        s++;
    return s;
}

static int type_of(const char *s, size_t n)
{
    static const struct {
        const char *name;
        int type;
    } t[] = {{"counter", PROM_COUNTER}, {"gauge", PROM_GAUGE},     {"histogram", PROM_HISTOGRAM},
             {"summary", PROM_SUMMARY}, {"untyped", PROM_UNTYPED}, {"unknown", PROM_UNTYPED},
             {"gaugehistogram", PROM_OTHER}, {"stateset", PROM_OTHER}, {"info", PROM_OTHER}};
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
        if (strlen(t[i].name) == n && !memcmp(t[i].name, s, n))
            return t[i].type;
    return -1;
}

static int parse_comment(struct parser *p, const char *s, const char *end, int *eof)
{
    const char *q = skip_spaces(s + 1, end);
    size_t kw = 0;

    while (q + kw < end && q[kw] != ' ' && q[kw] != '\t')
        kw++;
    if (kw == 3 && !memcmp(q, "EOF", 3)) {
        *eof = 1;
        return 0;
    }
    int is_type = kw == 4 && !memcmp(q, "TYPE", 4), is_help = kw == 4 && !memcmp(q, "HELP", 4);
    int is_meta = is_type || (kw == 4 && !memcmp(q, "HELP", 4)) || (kw == 4 && !memcmp(q, "UNIT", 4));
    if (!is_meta)
        return 0; /* a plain comment */
    q = skip_spaces(q + kw, end);
    size_t n = name_len(q, end, 1);
    if (n == 0)
        return fail(p, "HELP/TYPE/UNIT line without a metric name");
    if (n > p->max_name)
        return fail(p, "metric name longer than %zu bytes", p->max_name);
    if (n < sizeof(p->cur_family) && (strlen(p->cur_family) != n || memcmp(p->cur_family, q, n))) {
        /* a new family: what was said of the last one no longer applies */
        memcpy(p->cur_family, q, n);
        p->cur_family[n] = '\0';
        p->cur_type = PROM_UNTYPED;
        p->has_help = p->has_unit = 0;
    }
    if (!is_type) {
        const char *t = skip_spaces(q + n, end);
        size_t k = 0;
        char *dst = is_help ? p->help : p->unit;
        size_t cap = is_help ? sizeof(p->help) : sizeof(p->unit);
        for (; t < end && k + 1 < cap; t++) {
            if (*t == '\\' && t + 1 < end && (t[1] == 'n' || t[1] == '\\')) {
                dst[k++] = t[1] == 'n' ? '\n' : '\\';
                t++;
            } else {
                dst[k++] = *t;
            }
        }
        while (k && (dst[k - 1] == ' ' || dst[k - 1] == '\t' || dst[k - 1] == '\r'))
            k--;
        dst[k] = '\0';
        if (is_help)
            p->has_help = 1;
        else
            p->has_unit = 1;
        return 0;
    }
    const char *t = skip_spaces(q + n, end);
    size_t tl = (size_t)(end - t);
    while (tl && (t[tl - 1] == ' ' || t[tl - 1] == '\t'))
        tl--;
    int type = type_of(t, tl);
    if (type < 0)
        return fail(p, "unknown metric type '%.*s'", (int)(tl > 32 ? 32 : tl), t);
    if (n < sizeof(p->cur_family)) {
        memcpy(p->cur_family, q, n);
        p->cur_family[n] = '\0';
        p->cur_type = type;
    }
    return 0;
}

/* Unescapes a quoted label value starting after the opening quote. Sets *out
 * into scratch and returns the position after the closing quote, or NULL. */
static const char *parse_value(struct parser *p, const char *s, const char *end, size_t *scratch_pos,
                               const char **out, size_t *out_len)
{
    size_t start = *scratch_pos;

    while (s < end && *s != '"') {
        char c = *s;
        if (c == '\\') {
            if (s + 1 >= end)
                return NULL;
            char e = s[1];
            c = e == 'n' ? '\n' : e == '\\' ? '\\' : e == '"' ? '"' : 0;
            if (!c) {
                fail(p, "invalid escape '\\%c' in a label value", e);
                return NULL;
            }
            s++;
        } else if (c == '\n') {
            return NULL;
        }
        if (*scratch_pos - start >= p->max_value) {
            fail(p, "label value longer than %zu bytes", p->max_value);
            return NULL;
        }
        p->scratch[(*scratch_pos)++] = c;
        s++;
    }
    if (s >= end) {
        fail(p, "unterminated label value");
        return NULL;
    }
    *out = p->scratch + start;
    *out_len = *scratch_pos - start;
    return s + 1;
}

/* Long on purpose: one left-to-right pass over a line (name, labels, value,
 * timestamp, exemplar) that bails out at the first bad byte; the hot path
 * of every scrape, kept in one frame. */
static int parse_sample(struct parser *p, const char *s, const char *end, struct prom_sample *smp)
{
    size_t n = name_len(s, end, 1), scratch_pos = 0;
    const char *q;

    if (n == 0)
        return fail(p, "expected a metric name");
    if (n > p->max_name)
        return fail(p, "metric name longer than %zu bytes", p->max_name);
    smp->name = s;
    smp->name_len = n;
    smp->nlabels = 0;
    q = s + n;
    if (q < end && *q == '{') {
        q++;
        for (;;) {
            q = skip_spaces(q, end);
            if (q < end && *q == '}') {
                q++;
                break;
            }
            size_t ln = name_len(q, end, 0);
            if (ln == 0)
                return fail(p, "expected a label name");
            if (ln > p->max_name)
                return fail(p, "label name longer than %zu bytes", p->max_name);
            if (smp->nlabels >= p->max_labels)
                return fail(p, "more than %zu labels", p->max_labels);
            struct prom_label *l = &smp->labels[smp->nlabels];
            l->name = q;
            l->name_len = ln;
            for (size_t i = 0; i < smp->nlabels; i++)
                if (smp->labels[i].name_len == ln && !memcmp(smp->labels[i].name, q, ln))
                    return fail(p, "label '%.*s' repeated", (int)ln, q);
            q = skip_spaces(q + ln, end);
            if (q >= end || *q != '=')
                return fail(p, "expected '=' after label name");
            q = skip_spaces(q + 1, end);
            if (q >= end || *q != '"')
                return fail(p, "expected '\"' to open a label value");
            q = parse_value(p, q + 1, end, &scratch_pos, &l->value, &l->value_len);
            if (!q)
                return p->err->msg[0] ? -1 : fail(p, "malformed label value");
            smp->nlabels++;
            q = skip_spaces(q, end);
            if (q < end && *q == ',') {
                q++;
                continue;
            }
            if (q < end && *q == '}') {
                q++;
                break;
            }
            return fail(p, "expected ',' or '}' after a label");
        }
    }
    smp->series_text = s;
    smp->series_text_len = (size_t)(q - s);
    if (q >= end || (*q != ' ' && *q != '\t'))
        return fail(p, "expected a space before the value");
    q = skip_spaces(q, end);
    const char *v = q;
    while (q < end && *q != ' ' && *q != '\t')
        q++;
    if (prom_parse_float(v, (size_t)(q - v), &smp->value) < 0)
        return fail(p, "invalid value '%.*s'", (int)((q - v) > 32 ? 32 : (q - v)), v);
    q = skip_spaces(q, end);
    smp->has_ts = 0;
    if (q < end && *q != '#') {
        const char *t = q;
        while (q < end && *q != ' ' && *q != '\t')
            q++;
        double ts;
        if (prom_parse_float(t, (size_t)(q - t), &ts) < 0 || !isfinite(ts))
            return fail(p, "invalid timestamp '%.*s'", (int)((q - t) > 32 ? 32 : (q - t)), t);
        if (p->openmetrics)
            ts *= 1000.0;
        if (ts < -9.2e18 || ts > 9.2e18)
            return fail(p, "timestamp out of range");
        smp->has_ts = 1;
        smp->ts_ms = (int64_t)llround(ts);
        q = skip_spaces(q, end);
    }
    /* OpenMetrics exemplar: " # {labels} value [ts]" is skipped */
    if (q < end && *q != '#')
        return fail(p, "unexpected text after the value");
    smp->type = PROM_UNTYPED;
    smp->family = smp->help = smp->unit = NULL;
    size_t fl = strlen(p->cur_family);
    if (fl && n >= fl && !memcmp(s, p->cur_family, fl)) {
        smp->type = p->cur_type;
        smp->family = p->cur_family;
        smp->help = p->has_help ? p->help : NULL;
        smp->unit = p->has_unit ? p->unit : NULL;
    }
    return 0;
}

int prom_parse(const char *text, size_t len, int openmetrics, const struct prom_limits *lim,
               prom_sample_fn fn, void *arg, struct prom_error *err)
{
    static const struct prom_limits defaults;
    struct parser p;
    struct prom_sample *smp = NULL;
    const char *s = text, *end = text + len;
    size_t nsamples = 0;
    int eof = 0, rc = 0;

    if (!lim)
        lim = &defaults;
    memset(&p, 0, sizeof(p));
    p.lim = lim;
    p.max_line = lim->max_line_len ? lim->max_line_len : 65536;
    p.max_labels = lim->max_labels ? lim->max_labels : 64;
    if (p.max_labels > PROM_MAX_LABELS_HARD)
        p.max_labels = PROM_MAX_LABELS_HARD;
    p.max_name = lim->max_name_len ? lim->max_name_len : 256;
    p.max_value = lim->max_value_len ? lim->max_value_len : 4096;
    p.openmetrics = openmetrics;
    p.err = err;
    err->line = 0;
    err->msg[0] = '\0';
    p.scratch_cap = p.max_line;
    p.scratch = xmalloc(p.scratch_cap + 1);
    smp = xmalloc(sizeof(*smp));
    while (s < end) {
        const char *nl = memchr(s, '\n', (size_t)(end - s));
        const char *le = nl ? nl : end;
        p.line_no++;
        if ((size_t)(le - s) > p.max_line) {
            rc = fail(&p, "line longer than %zu bytes", p.max_line);
            break;
        }
        if (le > s && le[-1] == '\r')
            le--;
        if (eof) {
            rc = fail(&p, "text after # EOF");
            break;
        }
        const char *t = skip_spaces(s, le);
        if (t == le) {
            /* blank line */
        } else if (*t == '#') {
            if ((rc = parse_comment(&p, t, le, &eof)) != 0)
                break;
        } else {
            if (memchr(t, '\0', (size_t)(le - t))) {
                rc = fail(&p, "NUL byte in a sample line");
                break;
            }
            if ((rc = parse_sample(&p, t, le, smp)) != 0)
                break;
            if (lim->max_samples && ++nsamples > lim->max_samples) {
                rc = fail(&p, "more than %zu samples", lim->max_samples);
                break;
            }
            if ((rc = fn(arg, smp)) != 0)
                break;
        }
        s = nl ? nl + 1 : end;
    }
    if (rc == 0 && openmetrics && !eof)
        rc = fail(&p, "OpenMetrics text must end with # EOF");
    free(p.scratch);
    free(smp);
    return rc;
}
