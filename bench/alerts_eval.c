/* Benchmark program: one alert evaluation round of NRULES rules over
 * NSERIES series held by a real store (10 min of 5 s samples each), timed
 * over several rounds. Prints the median and p90 in ms.
 * usage: bench_alerts_eval DIR [NRULES NSERIES ROUNDS]  (default 50 10000 20;
 * PROMQL=1 writes the same rules as PromQL expressions) */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../src/lib/now.h"
#include "../src/server/alerts.h"
#include "../src/server/store/tsdb.h"

#define METRICS 20

/* One scrape of every series at t, as the writer thread stores it. */
static void scrape(struct tsdb *db, int64_t t, int per_metric)
{
    char key[256];
    for (int m = 0; m < METRICS; m++)
        for (int i = 0; i < per_metric; i++) {
            int n = snprintf(key, sizeof(key),
                             "gpu_metric_%02d{gpu=\"%d\",instance=\"node-%04d:9445\",job=\"gpufleet-agent\"}",
                             m, i % 8, i / 8);
            /* the same values bench/alerts_vs_prometheus.sh gives Prometheus */
            struct tsdb_sample s = {key, (size_t)n, t, 40 + (i * 7 + m) % 50};
            tsdb_append(db, &s, 1);
        }
    tsdb_commit(db, t);
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    char path[512], rules[512], err[256];
    struct tsdb_config cfg;
    if (argc < 2) {
        fprintf(stderr, "usage: %s DIR [NRULES NSERIES ROUNDS]\n", argv[0]);
        return 2;
    }
    int nrules = argc > 2 ? atoi(argv[2]) : 50, nseries = argc > 3 ? atoi(argv[3]) : 10000;
    int rounds = argc > 4 ? atoi(argv[4]) : 20;
    tsdb_config_defaults(&cfg);
    snprintf(path, sizeof(path), "%s/tsdb.db", argv[1]);
    struct tsdb *db = tsdb_open(path, &cfg, err, sizeof(err));
    if (!db) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    /* METRICS metric names over hosts of 8 GPUs, as agents write them */
    int64_t now = now_wall_ms() - (int64_t)rounds * 5000, t0 = now - 600000;
    int per_metric = nseries / METRICS;
    for (int64_t t = t0; t <= now; t += 5000)
        scrape(db, t, per_metric);
    /* rules: mixes of last/avg/max/rate with thresholds some series cross */
    snprintf(rules, sizeof(rules), "%s/rules.yaml", argv[1]);
    FILE *f = fopen(rules, "w");
    static const char *aggs[] = {"last", "avg", "max", "min", "rate"};
    fprintf(f, "rules:\n");
    /* PROMQL=1: the same rules written as PromQL (expr:) */
    int promql = getenv("PROMQL") && !strcmp(getenv("PROMQL"), "1");
    for (int r = 0; r < nrules; r++) {
        const char *a = aggs[r % 5];
        if (!promql)
            fprintf(f, "  - {name: R%03d, metric: gpu_metric_%02d, agg: %s, window: 1m, op: '>', threshold: %d, for: 1m}\n",
                    r, r % METRICS, a, 70 + r % 20);
        else if (!strcmp(a, "last"))
            fprintf(f, "  - {name: R%03d, expr: 'gpu_metric_%02d > %d', for: 1m}\n", r, r % METRICS, 70 + r % 20);
        else
            fprintf(f, "  - {name: R%03d, expr: '%s%s(gpu_metric_%02d[1m]) > %d', for: 1m}\n", r, a,
                    strcmp(a, "rate") ? "_over_time" : "", r % METRICS, 70 + r % 20);
    }
    fclose(f);
    struct alerts_config ac = {.eval_interval_ms = 3600000, .rules_file = rules, .external_url = ""};
    snprintf(path, sizeof(path), "%s/alerts.db", argv[1]);
    struct alerts *al = alerts_start(path, &ac, db, err, sizeof(err));
    if (!al) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    double *ms = calloc((size_t)rounds, sizeof(double));
    size_t evaluated = 0;
    /* every 5 s of fleet time: a scrape of everything, then a round */
    for (int i = 0; i < rounds; i++) {
        scrape(db, now + (i + 1) * 5000, per_metric);
        int64_t a = now_mono_ns();
        evaluated = alerts_eval_now(al, now + (i + 1) * 5000);
        ms[i] = (double)(now_mono_ns() - a) / 1e6;
    }
    json_t *firing = alerts_list(al, "active", 1000000);
    qsort(ms, (size_t)rounds, sizeof(double), cmp);
    printf("rules %d, series %d (%zu rule x series per round), active alerts %zu: round median %.1f ms, p90 %.1f ms, first %.1f\n",
           nrules, nseries, evaluated, json_array_size(firing), ms[rounds / 2], ms[rounds * 9 / 10], ms[0]);
    json_decref(firing);
    free(ms);
    alerts_stop(al);
    tsdb_close(db);
    return 0;
}
