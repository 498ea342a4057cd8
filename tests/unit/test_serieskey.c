/* Tests for src/server/store/serieskey.c: keys written by tsdb_key read
 * back to the same labels (escapes, UTF-8, no labels), one label found
 * without parsing the rest, JSON, the packed form the store keeps (and
 * the key written back from it), and every malformed shape refused. */
#include <jansson.h>

#include "testutil.h"

#include "../../src/server/store/serieskey.h"
#include "../../src/server/store/tsdb.h"

#define L(n, v) {n, sizeof(n) - 1, v, sizeof(v) - 1}

static void round_trip(void **state)
{
    (void)state;
    struct prom_label labels[] = {L("zone", "eu \"west\""), L("UUID", "GPU-1\\2"),
                                  L("path", "a\nb"), L("gpu", "0"), L("note", "Grüße")};
    struct buf key;
    buf_init(&key, 0);
    assert_int_equal(tsdb_key("DCGM_FI_DEV_GPU_UTIL", 20, labels, 5, NULL, 0, &key), 0);

    struct serieskey k;
    assert_int_equal(serieskey_parse(key.data, key.len, &k), 0);
    assert_string_equal(k.name, "DCGM_FI_DEV_GPU_UTIL");
    assert_int_equal(k.nlabels, 5);
    /* sorted by name, as tsdb_key wrote them */
    assert_string_equal(k.labels[0].name, "UUID");
    assert_string_equal(k.labels[0].value, "GPU-1\\2");
    assert_string_equal(serieskey_get(&k, "zone"), "eu \"west\"");
    assert_string_equal(serieskey_get(&k, "path"), "a\nb");
    assert_string_equal(serieskey_get(&k, "note"), "Grüße");
    assert_string_equal(serieskey_get(&k, "__name__"), "DCGM_FI_DEV_GPU_UTIL");
    assert_null(serieskey_get(&k, "missing"));
    assert_string_equal(k.labels[3].name, "path");
    assert_int_equal(k.labels[3].value_len, strlen("a\nb"));

    /* the one-label reader agrees with the full one */
    char out[64];
    for (size_t i = 0; i < k.nlabels; i++) {
        int n = serieskey_label(key.data, key.len, k.labels[i].name, out, sizeof(out));
        assert_int_equal(n, (int)k.labels[i].value_len);
        assert_string_equal(out, k.labels[i].value);
    }
    assert_int_equal(serieskey_label(key.data, key.len, "nope", out, sizeof(out)), -1);
    /* cut to the room given, full length returned */
    assert_int_equal(serieskey_label(key.data, key.len, "zone", out, 4), 9);
    assert_string_equal(out, "eu ");

    /* JSON a client can read */
    struct buf j;
    buf_init(&j, 0);
    serieskey_json(&k, &j);
    json_error_t jerr;
    json_t *v = json_loads(j.data, 0, &jerr);
    assert_non_null(v);
    assert_string_equal(json_string_value(json_object_get(v, "zone")), "eu \"west\"");
    assert_string_equal(json_string_value(json_object_get(v, "__name__")), "DCGM_FI_DEV_GPU_UTIL");
    json_decref(v);
    buf_free(&j);
    serieskey_free(&k);
    buf_free(&key);
}

/* An exporter's own __name__ label is no second name (issue 18, 11). */
/* The store keeps a series' labels packed and writes its key from them:
 * the same bytes tsdb_key wrote, a comparison that finds it exactly, and
 * the labels and JSON as the unpacked key gives them. */
static void packed(void **state)
{
    (void)state;
    struct prom_label labels[] = {L("zone", "eu \"west\""), L("UUID", "GPU-1\\2"),
                                  L("path", "a\nb"), L("note", "Grüße")};
    struct buf key, back, j1, j2;
    buf_init(&key, 0);
    buf_init(&back, 0);
    buf_init(&j1, 0);
    buf_init(&j2, 0);
    assert_int_equal(tsdb_key("up", 2, labels, 4, NULL, 0, &key), 0);
    struct serieskey k;
    assert_int_equal(serieskey_parse(key.data, key.len, &k), 0);
    char *p = serieskey_pack(&k);
    assert_string_equal(serieskey_packed_name(p), "up");
    assert_string_equal(serieskey_packed_get(p, "__name__"), "up");
    assert_string_equal(serieskey_packed_get(p, "zone"), "eu \"west\"");
    assert_string_equal(serieskey_packed_get(p, "path"), "a\nb");
    assert_null(serieskey_packed_get(p, "gpu"));
    const char *at = NULL, *name, *value;
    size_t n = 0;
    while (serieskey_packed_next(p, &at, &name, &value)) {
        assert_string_equal(name, k.labels[n].name);
        assert_string_equal(value, k.labels[n].value);
        n++;
    }
    assert_int_equal(n, 4);
    assert_int_equal(serieskey_packed_bytes(p), serieskey_packed_len(&k));
    serieskey_json(&k, &j1);
    serieskey_packed_json(p, &j2);
    assert_string_equal(j1.data, j2.data);
    serieskey_packed_write(p, &back);
    assert_int_equal(back.len, key.len);
    assert_memory_equal(back.data, key.data, key.len);
    assert_true(serieskey_packed_is(p, key.data, key.len));
    /* a byte less, a byte more, one changed, an escape written otherwise */
    assert_false(serieskey_packed_is(p, key.data, key.len - 1));
    buf_putc(&key, '}');
    assert_false(serieskey_packed_is(p, key.data, key.len));
    key.len--;
    char *q = strstr(key.data, "GPU-1");
    q[4] = '2';
    assert_false(serieskey_packed_is(p, key.data, key.len));
    q[4] = '1';
    assert_true(serieskey_packed_is(p, key.data, key.len));
    q = strstr(key.data, "a\\nb");
    q[2] = 'x';
    assert_false(serieskey_packed_is(p, key.data, key.len));
    free(p);
    serieskey_free(&k);

    /* no labels: the name alone; "up{}" reads as the same labels but is
     * not the key they write */
    assert_int_equal(serieskey_parse("up{}", 4, &k), 0);
    p = serieskey_pack(&k);
    assert_int_equal(serieskey_packed_bytes(p), 4); /* "up", its end, the end */
    assert_int_equal(serieskey_packed_len(&k), 4);
    assert_true(serieskey_packed_is(p, "up", 2));
    assert_false(serieskey_packed_is(p, "up{}", 4));
    assert_false(serieskey_packed_is(p, "upx", 3));
    at = NULL;
    assert_false(serieskey_packed_next(p, &at, &name, &value));
    buf_reset(&back);
    serieskey_packed_write(p, &back);
    assert_string_equal(back.data, "up");
    free(p);
    serieskey_free(&k);
    buf_free(&key);
    buf_free(&back);
    buf_free(&j1);
    buf_free(&j2);
}

static void name_label_dropped(void **state)
{
    (void)state;
    struct prom_label labels[] = {L("__name__", "other"), L("gpu", "0")};
    struct buf key;
    buf_init(&key, 0);
    assert_int_equal(tsdb_key("up", 2, labels, 2, NULL, 0, &key), 0);
    assert_string_equal(key.data, "up{gpu=\"0\"}");
    buf_free(&key);
}

static void without_labels(void **state)
{
    (void)state;
    struct serieskey k;
    assert_int_equal(serieskey_parse("up", 2, &k), 0);
    assert_string_equal(k.name, "up");
    assert_int_equal(k.nlabels, 0);
    serieskey_free(&k);
    assert_int_equal(serieskey_parse("up{}", 4, &k), 0);
    assert_int_equal(k.nlabels, 0);
    serieskey_free(&k);
    assert_int_equal(serieskey_parse("ns:metric_total", 15, &k), 0);
    serieskey_free(&k);
}

static void malformed(void **state)
{
    (void)state;
    static const char *bad[] = {
        "", "{a=\"b\"}", "9up", "up{", "up{a}", "up{a=b}", "up{a=\"b}", "up{a=\"b\"",
        "up{a=\"b\"}x", "up{a=\"b\" }", "up{a=\"\\t\"}", "up{a=\"b\\\"}", "up{1a=\"b\"}",
        "up{a:b=\"c\"}", "up a", "up{a=\"\xff\"}", "up{,}", "up{a=\"b\",,c=\"d\"}", "up{a=\"b\",c=\"d\",a=\"e\"}", "up{__name__=\"x\"}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct serieskey k;
        if (serieskey_parse(bad[i], strlen(bad[i]), &k) == 0)
            fail_msg("accepted %s", bad[i]);
        assert_null(k.store);
    }
    /* a NUL inside the given length */
    struct serieskey k;
    assert_int_equal(serieskey_parse("up{a=\"b\0\"}", 10, &k), -1);
    /* too long */
    char *big = malloc(SERIESKEY_MAX + 10);
    memset(big, 'a', SERIESKEY_MAX + 9);
    big[SERIESKEY_MAX + 9] = '\0';
    assert_int_equal(serieskey_parse(big, strlen(big), &k), -1);
    free(big);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(round_trip),
        cmocka_unit_test(packed),
        cmocka_unit_test(without_labels),
        cmocka_unit_test(name_label_dropped),
        cmocka_unit_test(malformed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
