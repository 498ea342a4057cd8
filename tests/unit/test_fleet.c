/* Tests for src/server/fleet.c: an agent's scrape becomes the live figures
 * of its host and GPUs (rates from counters over two scrapes, the root file
 * system, loopback left out), deltas carry only what changed and leave in
 * sequence, status changes come from the registry, other jobs are ignored. */
#include <jansson.h>

#include "testutil.h"

#include "../../src/server/fleet.h"

static json_t *pushed; /* every delta pushed, in order */

static void on_push(void *arg, const char *json, size_t len)
{
    (void)arg;
    json_error_t e;
    json_t *m = json_loadb(json, len, 0, &e);
    assert_non_null(m);
    assert_string_equal(json_string_value(json_object_get(m, "type")), "fleet");
    json_array_extend(pushed, json_object_get(m, "deltas"));
    json_decref(m);
}

static void add(struct ingest_batch *b, const char *name, const char *labels, double v)
{
    char key[512];
    snprintf(key, sizeof(key), "%s{%s%sinstance=\"h:9445\",job=\"gpufleet-agent\",server=\"gpu-07\"}",
             name, labels, *labels ? "," : "");
    if (b->n == b->cap) {
        b->cap = b->cap ? b->cap * 2 : 64;
        b->items = realloc(b->items, b->cap * sizeof(*b->items));
    }
    b->items[b->n++] = (struct ingest_item){b->keys.len, strlen(key), 0, v};
    buf_puts(&b->keys, key);
}

/* One scrape of an agent with one GPU at ts (seconds of CPU and bytes
 * grow with ts). */
static struct ingest_batch *scrape(int64_t ts, double util, int up)
{
    struct ingest_batch *b = ingest_batch_new();
    double s = (double)ts / 1000;
    add(b, "up", "", up);
    if (up) {
        const char *gpu = "UUID=\"GPU-1\",gpu=\"0\",modelName=\"NVIDIA H100\"";
        add(b, "DCGM_FI_DEV_GPU_UTIL", gpu, util);
        add(b, "DCGM_FI_DEV_FB_USED", gpu, 1024);
        add(b, "DCGM_FI_DEV_ECC_DBE_VOL_TOTAL", gpu, 0); /* not a live figure */
        add(b, "node_cpu_seconds_total", "cpu=\"0\",mode=\"idle\"", s * 0.75);
        add(b, "node_cpu_seconds_total", "cpu=\"0\",mode=\"user\"", s * 0.25);
        add(b, "node_network_receive_bytes_total", "device=\"eth0\"", s * 1000);
        add(b, "node_network_receive_bytes_total", "device=\"lo\"", s * 99999);
        add(b, "node_network_transmit_bytes_total", "device=\"eth0\"", s * 500);
        add(b, "node_filesystem_size_bytes", "mountpoint=\"/boot\"", 1e9);
        add(b, "node_filesystem_avail_bytes", "mountpoint=\"/boot\"", 5e8);
        add(b, "node_filesystem_size_bytes", "mountpoint=\"/\"", 1e11);
        add(b, "node_filesystem_avail_bytes", "mountpoint=\"/\"", 4e10);
        add(b, "node_memory_MemTotal_bytes", "", 64e9);
        add(b, "node_memory_MemAvailable_bytes", "", 48e9);
        add(b, "node_load1", "", 1.5);
    }
    b->is_scrape = 1;
    snprintf(b->job, sizeof(b->job), "gpufleet-agent");
    snprintf(b->instance, sizeof(b->instance), "h:9445");
    b->scrape_ts_ms = ts;
    return b;
}

static double num(json_t *o, const char *k)
{
    json_t *v = json_object_get(o, k);
    if (!json_is_number(v))
        fail_msg("%s missing", k);
    return json_number_value(v);
}

static void figures_and_deltas(void **state)
{
    (void)state;
    pushed = json_array();
    struct fleet *f = fleet_new(on_push, NULL);
    struct ingest_batch *b = scrape(10000, 37, 1);
    fleet_ingest(f, b);
    ingest_batch_free(b);
    b = scrape(12000, 37, 1);
    fleet_ingest(f, b);
    ingest_batch_free(b);

    json_t *s = fleet_server_json(f, "gpu-07");
    assert_non_null(s);
    json_t *h = json_object_get(s, "host"), *g = json_array_get(json_object_get(s, "gpus"), 0);
    assert_true(num(h, "cpu_percent") == 25.0);           /* idle 75 % of the CPU time between */
    assert_true(num(h, "net_rx_bytes_per_second") == 1000); /* lo left out */
    assert_true(num(h, "net_tx_bytes_per_second") == 500);
    assert_true(num(h, "disk_total_bytes") == 1e11);        /* the root file system */
    assert_true(num(h, "disk_used_bytes") == 6e10);
    assert_true(num(h, "mem_used_bytes") == 16e9);
    assert_true(num(h, "load1") == 1.5);
    assert_true(num(g, "util_percent") == 37);
    assert_true(num(g, "fb_used_mib") == 1024);
    assert_string_equal(json_string_value(json_object_get(g, "model")), "NVIDIA H100");
    assert_null(json_object_get(g, "ecc_dbe_volatile_total"));
    json_decref(s);
    assert_null(fleet_server_json(f, "nobody"));

    /* a third scrape with only the utilization changed: that field alone */
    b = scrape(14000, 91, 1);
    fleet_ingest(f, b);
    ingest_batch_free(b);
    fleet_status(f, "gpu-07", "offline", "Connection refused", 15000);
    uint64_t seq = fleet_seq(f);
    fleet_free(f); /* flushes what is batched */

    size_t n = json_array_size(pushed);
    assert_true(n >= 3);
    for (size_t i = 0; i < n; i++) /* in sequence, none missing */
        assert_int_equal(json_integer_value(json_object_get(json_array_get(pushed, i), "seq")), i + 1);
    assert_int_equal(seq, n);
    json_t *third = json_array_get(pushed, n - 2);
    json_t *gd = json_array_get(json_object_get(third, "gpus"), 0);
    assert_true(num(gd, "util_percent") == 91);
    assert_null(json_object_get(gd, "fb_used_mib"));
    assert_null(json_object_get(gd, "model")); /* announced once, in the first */
    json_t *last = json_array_get(pushed, n - 1);
    assert_string_equal(json_string_value(json_object_get(last, "status")), "offline");
    assert_string_equal(json_string_value(json_object_get(last, "last_error")), "Connection refused");
    assert_int_equal(json_integer_value(json_object_get(last, "status_since_ms")), 15000);
    json_decref(pushed);
}

/* MIG devices, under their GPU, as the last scrape reported them: a layout
 * changed on the host shows at its next scrape. */
static void mig_devices_of_the_last_scrape(void **state)
{
    (void)state;
    pushed = json_array();
    struct fleet *f = fleet_new(on_push, NULL);
    const char *mig = "compute_instance=\"0\",gpu=\"0\",gpu_instance=\"%d\",mig_uuid=\"MIG-%d\",profile=\"3g.40gb\",uuid=\"%s\"";
    char labels[256];
    for (int round = 0; round < 2; round++) {
        struct ingest_batch *b = scrape(10000 + round * 2000, 37, 1);
        for (int k = 1; k <= (round ? 1 : 2); k++) {
            snprintf(labels, sizeof(labels), mig, k, k, "GPU-1");
            add(b, "gpufleet_gpu_mig_device_memory_bytes", labels, 40000.0 * 1048576);
        }
        snprintf(labels, sizeof(labels), mig, 9, 9, "GPU-nope"); /* no such GPU: skipped */
        add(b, "gpufleet_gpu_mig_device_memory_bytes", labels, 1);
        fleet_ingest(f, b);
        ingest_batch_free(b);
        json_t *s = fleet_server_json(f, "gpu-07");
        json_t *m = json_object_get(json_array_get(json_object_get(s, "gpus"), 0), "mig_devices");
        assert_int_equal(json_array_size(m), round ? 1 : 2);
        assert_string_equal(json_string_value(json_object_get(json_array_get(m, 0), "uuid")), "MIG-1");
        assert_string_equal(json_string_value(json_object_get(json_array_get(m, 0), "profile")), "3g.40gb");
        assert_true(num(json_array_get(m, 0), "fb_total_mib") == 40000);
        assert_int_equal(json_array_size(json_object_get(s, "gpus")), 1);
        json_decref(s);
    }
    fleet_free(f);
    json_decref(pushed);
}

static void ignores_others_and_forgets(void **state)
{
    (void)state;
    pushed = json_array();
    struct fleet *f = fleet_new(on_push, NULL);
    struct ingest_batch *b = scrape(10000, 5, 1);
    snprintf(b->job, sizeof(b->job), "node"); /* an exporter's scrape: not the live fleet's */
    fleet_ingest(f, b);
    ingest_batch_free(b);
    assert_null(fleet_server_json(f, "gpu-07"));
    b = scrape(10000, 5, 0); /* a failed scrape: no figures to take */
    fleet_ingest(f, b);
    ingest_batch_free(b);
    json_t *s = fleet_server_json(f, "gpu-07");
    assert_int_equal(json_array_size(json_object_get(s, "gpus")), 0);
    json_decref(s);
    fleet_forget(f, "gpu-07");
    assert_null(fleet_server_json(f, "gpu-07"));
    fleet_free(f);
    json_decref(pushed);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(figures_and_deltas),
        cmocka_unit_test(mig_devices_of_the_last_scrape),
        cmocka_unit_test(ignores_others_and_forgets),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
