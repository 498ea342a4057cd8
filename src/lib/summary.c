/* Recent-window quantiles for /metrics (see summary.h). */
#include "summary.h"

#include <stdlib.h>
#include <string.h>

void summary_add(struct summary *s, double v)
{
    s->window[s->count % SUMMARY_WINDOW] = v;
    s->count++;
    s->sum += v;
    if (v > s->max)
        s->max = v;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double summary_quantile(const struct summary *s, double q)
{
    size_t n = s->count < SUMMARY_WINDOW ? (size_t)s->count : SUMMARY_WINDOW;
    double sorted[SUMMARY_WINDOW];

    if (!n)
        return 0;
    memcpy(sorted, s->window, n * sizeof(double));
    qsort(sorted, n, sizeof(double), cmp_double);
    /* nearest rank: the smallest value with at least q of the window at or below it */
    size_t rank = (size_t)(q * (double)n + 0.999999);
    if (rank < 1)
        rank = 1;
    if (rank > n)
        rank = n;
    return sorted[rank - 1];
}

void summary_write(struct buf *out, const char *name, const char *help, const struct summary *s)
{
    static const double qs[] = {0.5, 0.9, 0.99};

    buf_printf(out, "# HELP %s %s (quantiles of the last %d)\n# TYPE %s summary\n", name, help,
               SUMMARY_WINDOW, name);
    for (size_t i = 0; i < sizeof(qs) / sizeof(qs[0]); i++)
        buf_printf(out, "%s{quantile=\"%g\"} %.9g\n", name, qs[i], summary_quantile(s, qs[i]));
    buf_printf(out, "%s_sum %.9g\n%s_count %llu\n", name, s->sum, name, (unsigned long long)s->count);
    buf_printf(out, "# HELP %s_max The largest ever.\n# TYPE %s_max gauge\n%s_max %.9g\n", name, name,
               name, s->max);
}
