/* Fuzzes PromQL: the parser on any bytes, and whatever parses evaluated
 * (a range of steps over a small store of a few series) and written out
 * as Prometheus's JSON; the same bytes as a form body and a duration. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../../src/lib/formdata.h"
#include "../../src/lib/now.h"
#include "../../src/server/promql/promql.h"
#include "../../src/server/store/tsdb.h"

static struct tsdb *store(void)
{
    static struct tsdb *db;
    if (db)
        return db;
    char dir[] = "/tmp/fuzz-promql-XXXXXX", path[64], err[200];
    if (!mkdtemp(dir))
        abort();
    snprintf(path, sizeof(path), "%s/tsdb.db", dir);
    struct tsdb_config cfg;
    tsdb_config_defaults(&cfg);
    db = tsdb_open(path, &cfg, err, sizeof(err));
    if (!db)
        abort();
    static const char *keys[] = {"up{instance=\"a\",job=\"j\"}", "up{instance=\"b\",job=\"j\"}",
                                 "c_total{gpu=\"0\",instance=\"a\",job=\"j\"}"};
    for (int i = 0; i < 40; i++)
        for (int k = 0; k < 3; k++) {
            struct tsdb_sample s = {keys[k], strlen(keys[k]), 1000000 + i * 15000,
                                    k == 2 ? i * 7.5 - (i > 20 ? 100 : 0) : (i + k) % 3};
            tsdb_append(db, &s, 1);
        }
    return db;
}

static void pair(void *arg, const char *name, const char *value, size_t len)
{
    size_t *n = arg;
    *n += strlen(name) + len + (value[len] == '\0'); /* touches every byte handed out */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t seen = 0;
    /* the same bytes as a form body (Grafana posts queries so), and as a
     * duration (step, timeout) */
    form_parse((const char *)data, size, pair, &seen);
    int64_t ms;
    promql_parse_duration((const char *)data, size, &ms);
    char *text = malloc(size + 1), err[400];
    memcpy(text, data, size);
    text[size] = '\0';
    struct promql_expr *e;
    if (promql_parse(text, &e, err, sizeof(err)) == 0) {
        struct promql_limits lim = {.max_samples = 200000, .deadline_ns = now_mono_ns() + 200000000};
        struct promql_result res;
        if (promql_eval(store(), e, 1000000, 1600000, 30000, &lim, &res, err, sizeof(err)) == 0) {
            struct buf out;
            buf_init(&out, 0);
            promql_result_json(&res, 0, &out);
            buf_free(&out);
            promql_result_free(&res);
        }
        promql_free(e);
    }
    free(text);
    return 0;
}
