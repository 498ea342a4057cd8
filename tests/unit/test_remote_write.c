/* Tests for src/server/remote_write.c's encoding: what it sends decodes
 * (snappy, then protobuf) to one TimeSeries per series, labels sorted by
 * name with __name__ among them, samples in time order; a key that is not
 * canonical fails the batch. */
#include <snappy-c.h>

#include "testutil.h"

#include "../../src/server/remote_write.h"
#include "remote.pb-c.h"

static void add(struct ingest_batch *b, const char *key, int64_t ts, double v)
{
    if (b->n == b->cap) {
        b->cap = b->cap ? b->cap * 2 : 16;
        b->items = realloc(b->items, b->cap * sizeof(*b->items));
    }
    b->items[b->n++] = (struct ingest_item){b->keys.len, strlen(key), ts, v};
    buf_puts(&b->keys, key);
}

static Prometheus__WriteRequest *decode(const struct buf *body)
{
    size_t len;
    assert_int_equal(snappy_uncompressed_length(body->data, body->len, &len), SNAPPY_OK);
    char *raw = malloc(len ? len : 1);
    assert_int_equal(snappy_uncompress(body->data, body->len, raw, &len), SNAPPY_OK);
    Prometheus__WriteRequest *req = prometheus__write_request__unpack(NULL, len, (uint8_t *)raw);
    free(raw);
    assert_non_null(req);
    return req;
}

static void encodes_what_the_format_says(void **state)
{
    (void)state;
    struct ingest_batch *b = ingest_batch_new();
    const char *a = "DCGM_FI_DEV_GPU_UTIL{UUID=\"GPU-1\",gpu=\"0\",job=\"gpufleet-agent\",note=\"a \\\"q\\\"\"}";
    add(b, a, 2000, 40);
    add(b, "up{job=\"node\"}", 1000, 1);
    add(b, a, 1000, 37); /* older, after: sent in time order */
    struct buf out;
    buf_init(&out, 0);
    assert_int_equal(remote_write_encode(b, &out), 0);
    Prometheus__WriteRequest *req = decode(&out);
    assert_int_equal(req->n_timeseries, 2);
    Prometheus__TimeSeries *ts = req->timeseries[0];
    assert_int_equal(ts->n_labels, 5);
    for (size_t i = 1; i < ts->n_labels; i++) /* sorted by name: UUID < __name__ < gpu ... */
        assert_true(strcmp(ts->labels[i - 1]->name, ts->labels[i]->name) < 0);
    assert_string_equal(ts->labels[1]->name, "__name__");
    assert_string_equal(ts->labels[1]->value, "DCGM_FI_DEV_GPU_UTIL");
    assert_string_equal(ts->labels[4]->value, "a \"q\""); /* unescaped */
    assert_int_equal(ts->n_samples, 2);
    assert_int_equal(ts->samples[0]->timestamp, 1000);
    assert_true(ts->samples[0]->value == 37);
    assert_true(ts->samples[1]->value == 40);
    assert_string_equal(req->timeseries[1]->labels[0]->value, "up");
    prometheus__write_request__free_unpacked(req, NULL);

    add(b, "bad{key", 3000, 1);
    assert_int_equal(remote_write_encode(b, &out), -1);
    buf_free(&out);
    ingest_batch_free(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(encodes_what_the_format_says),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
