/* Tests for src/server/scrape.c's parsing: an exporter's body keyed with
 * the target's labels (which win over the exporter's own), refused with the
 * line named when malformed or over a bound; an agent's history JSON read
 * back into samples at their own times. */
#include <curl/curl.h>
#include <math.h>

#include "testutil.h"

#include "../../src/server/metadata.h"
#include "../../src/server/scrape.h"

static struct scrape_config cfg(void)
{
    return (struct scrape_config){2000, 15000, 10000, 1u << 20, 100, 4096, NULL};
}

static const struct prom_label extra[] = {
    {"job", 3, "node", 4}, {"instance", 8, "h:9100", 6}, {"server", 6, "gpu-07", 6}};

static const char *key_of(const struct ingest_batch *b, size_t i, char *out, size_t n)
{
    snprintf(out, n, "%.*s", (int)b->items[i].key_len, b->keys.data + b->items[i].key_off);
    return out;
}

/* What exporters say of their families reaches the metadata table: type,
 * HELP (unescaped), UNIT; a family without them is kept as unknown. */
static void families_noted(void **state)
{
    (void)state;
    struct scrape_config c = cfg();
    c.meta = metadata_new(0);
    const char *body = "# HELP DCGM_FI_DEV_GPU_UTIL GPU utilization (in %).\n# TYPE DCGM_FI_DEV_GPU_UTIL gauge\n"
                       "DCGM_FI_DEV_GPU_UTIL{gpu=\"0\"} 12\nDCGM_FI_DEV_GPU_UTIL{gpu=\"1\"} 13\n"
                       "# HELP x_total A \\\\ and a\\nline\n# TYPE x_total counter\n# UNIT x_total bytes\nx_total 5\n"
                       "bare 1\n";
    struct ingest_batch *b = ingest_batch_new();
    char err[256];
    assert_int_equal(scrape_parse(body, strlen(body), 0, &c, extra, 3, 1795000001000, NULL, b, err, sizeof(err)), 4);
    struct buf out;
    buf_init(&out, 0);
    metadata_json(c.meta, NULL, 0, &out);
    assert_string_equal(out.data,
                        "{\"DCGM_FI_DEV_GPU_UTIL\":[{\"type\":\"gauge\",\"help\":\"GPU utilization (in %).\",\"unit\":\"\"}],"
                        "\"x_total\":[{\"type\":\"counter\",\"help\":\"A \\\\ and a\\u000aline\",\"unit\":\"bytes\"}]}");
    buf_reset(&out);
    metadata_json(c.meta, "x_total", 0, &out);
    assert_non_null(strstr(out.data, "counter"));
    assert_null(strstr(out.data, "DCGM"));
    buf_free(&out);
    ingest_batch_free(b);
    metadata_free(c.meta);
}

static void exposition(void **state)
{
    (void)state;
    struct scrape_config c = cfg();
    const char *body = "# TYPE node_load1 gauge\nnode_load1 1.5\n"
                       "node_cpu_seconds_total{mode=\"idle\",cpu=\"0\",instance=\"spoofed\"} 10 1795000000000\n";
    struct ingest_batch *b = ingest_batch_new();
    char err[256], k[256];
    long n = scrape_parse(body, strlen(body), 0, &c, extra, 3, 1795000001000, NULL, b, err, sizeof(err));
    assert_int_equal(n, 2);
    assert_string_equal(key_of(b, 0, k, sizeof(k)), "node_load1{instance=\"h:9100\",job=\"node\",server=\"gpu-07\"}");
    /* the target's instance wins; labels sorted */
    assert_string_equal(key_of(b, 1, k, sizeof(k)),
                        "node_cpu_seconds_total{cpu=\"0\",instance=\"h:9100\",job=\"node\",mode=\"idle\",server=\"gpu-07\"}");
    assert_int_equal(b->items[0].ts_ms, 1795000001000); /* the scrape's time */
    assert_int_equal(b->items[1].ts_ms, 1795000000000); /* the line's own */
    ingest_batch_free(b);

    b = ingest_batch_new();
    const char *bad = "ok 1\nnot a line{\n";
    assert_int_equal(scrape_parse(bad, strlen(bad), 0, &c, extra, 3, 0, NULL, b, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "line 2"));
    ingest_batch_free(b);

    /* more series than max_series fails the scrape */
    struct buf many;
    buf_init(&many, 0);
    for (int i = 0; i < 101; i++)
        buf_printf(&many, "m{i=\"%d\"} 1\n", i);
    b = ingest_batch_new();
    assert_int_equal(scrape_parse(many.data, many.len, 0, &c, extra, 3, 0, NULL, b, err, sizeof(err)), -1);
    ingest_batch_free(b);
    buf_free(&many);
}

static void history(void **state)
{
    (void)state;
    const char *json = "{\"segments\":[{\"series\":[\"DCGM_FI_DEV_GPU_UTIL{UUID=\\\"GPU-1\\\",gpu=\\\"0\\\"}\","
                       "\"bad{key\",\"up\"],\"samples\":[[1000,37,1,1],[2000,\"NaN\",2,1],[3000,40]]}]}";
    struct ingest_batch *b = ingest_batch_new();
    char err[256], k[256];
    long n = scrape_parse_history(json, strlen(json), extra, 3, b, err, sizeof(err));
    /* two good series x two whole rows (the short row is skipped) */
    assert_int_equal(n, 4);
    assert_string_equal(key_of(b, 0, k, sizeof(k)),
                        "DCGM_FI_DEV_GPU_UTIL{UUID=\"GPU-1\",gpu=\"0\",instance=\"h:9100\",job=\"node\",server=\"gpu-07\"}");
    assert_int_equal(b->items[0].ts_ms, 1000);
    assert_true(b->items[0].value == 37);
    assert_true(isnan(b->items[2].value));
    assert_int_equal(b->items[3].ts_ms, 2000);
    ingest_batch_free(b);
    b = ingest_batch_new();
    assert_int_equal(scrape_parse_history("[1,2]", 5, extra, 3, b, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "history"));
    ingest_batch_free(b);
}

/* what an operator reads on an offline server: the cause and what to
 * look at, never libcurl's words alone */
static void reasons(void **state)
{
    (void)state;
    char out[256];
    static const struct {
        int cc;
        long status;
        const char *want;
    } cases[] = {
        {CURLE_COULDNT_CONNECT, 0, "nothing answers on h:9445 (connection refused): is the agent running, on this port?"},
        {CURLE_OPERATION_TIMEDOUT, 0, "no answer from h:9445 within 2.5 s: the host is down, a firewall drops the traffic, or the agent is stuck"},
        {CURLE_COULDNT_RESOLVE_HOST, 0, "the name in h:9445 does not resolve (DNS)"},
        {CURLE_GOT_NOTHING, 0, "h:9445 closed the connection before a full answer (the agent restarting or crashing?)"},
        {CURLE_OK, 401, "h:9445 refused the server's token (HTTP 401): give it the token it was registered with"},
        {CURLE_OK, 404, "h:9445 has no metrics there (HTTP 404): is it a gpufleet agent or an exporter?"},
        {CURLE_OK, 503, "h:9445 failed to answer (HTTP 503)"},
        {CURLE_OK, 302, "h:9445 answered HTTP 302 instead of metrics"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        scrape_reason(out, sizeof(out), cases[i].cc, cases[i].status, "h:9445", 2500);
        assert_string_equal(out, cases[i].want);
    }
    /* a code without words of ours still names where */
    scrape_reason(out, sizeof(out), CURLE_TOO_MANY_REDIRECTS, 0, "h:9445", 2500);
    assert_true(!strncmp(out, "h:9445: ", 8) && strlen(out) > 9);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(exposition),
        cmocka_unit_test(families_noted),
        cmocka_unit_test(history),
        cmocka_unit_test(reasons),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
