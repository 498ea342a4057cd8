/* Tests for src/agent/collectors/collect_nvml.c, run through the sampler on
 * the fake libnvidia-ml (tests/fakes) with one scenario per test. */
#include <time.h>
#include <unistd.h>

#include "testutil.h"

#include "../../src/agent/history.h"
#include "../../src/agent/options.h"
#include "../../src/agent/sampler.h"
#include "../../src/agent/snapshot.h"
#include "../../src/lib/now.h"

struct rig {
    struct agent_options opts;
    struct snapshot_store store;
    struct history *hist;
    struct sampler *s;
    char scenario[64];
};

static void rig_start(struct rig *r, const char *scenario, const char *lib)
{
    char err[256];

    snprintf(r->scenario, sizeof(r->scenario), "/tmp/gf-scenario-XXXXXX");
    int fd = mkstemp(r->scenario);
    assert_true(fd >= 0);
    assert_true(write(fd, scenario, strlen(scenario)) == (ssize_t)strlen(scenario));
    close(fd);
    setenv("FAKE_NVML_SCENARIO", r->scenario, 1);
    agent_options_init(&r->opts);
    agent_options_set(&r->opts, "nvml_lib", lib ? lib : FAKE_NVML, err, sizeof(err));
    agent_options_set(&r->opts, "slow_interval_ms", "100", err, sizeof(err));
    agent_options_set(&r->opts, "hostname", "gpu-host-1", err, sizeof(err));
    snapshot_store_init(&r->store);
    r->hist = history_new(60000, 1000);
    r->s = sampler_start(&r->opts, &r->store, r->hist, 0);
    assert_non_null(r->s);
}

/* Takes a sample and returns a copy of its text (free it). */
static char *rig_sample(struct rig *r)
{
    sampler_sample_once(r->s);
    struct snapshot *snap = snapshot_get(&r->store);
    char *text = strdup(snap->text);
    snapshot_put(snap);
    return text;
}

static void rig_stop(struct rig *r)
{
    sampler_stop(r->s);
    history_free(r->hist);
    snapshot_store_free(&r->store);
    agent_options_free(&r->opts);
    unlink(r->scenario);
    unsetenv("FAKE_NVML_SCENARIO");
}

static void msleep(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static int count(const char *text, const char *prefix)
{
    int n = 0;
    size_t pl = strlen(prefix);
    for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
        if (!strncmp(p, prefix, pl))
            n++;
    return n;
}

/* The value of the first line starting with prefix, or -1e99. */
static double value_of(const char *text, const char *prefix)
{
    size_t pl = strlen(prefix);
    for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
        if (!strncmp(p, prefix, pl)) {
            const char *eol = strchr(p, '\n');
            const char *sp = strchr(p, '}');
            if (!sp || (eol && sp > eol))
                sp = strchr(p, ' ');
            else
                sp++;
            return strtod(sp, NULL);
        }
    return -1e99;
}

static void eight_h100s(void **state)
{
    struct rig r;

    (void)state;
    rig_start(&r, "gpu h100 count=8\n", NULL);
    char *t = rig_sample(&r);
    assert_int_equal(count(t, "DCGM_FI_DEV_GPU_UTIL{"), 8);
    assert_true(value_of(t, "gpufleet_gpus") == 8);
    assert_true(value_of(t, "DCGM_FI_DEV_FB_TOTAL{gpu=\"7\"") == 81559);
    assert_true(value_of(t, "DCGM_FI_DEV_POWER_USAGE{gpu=\"3\"") == 631.95);
    assert_true(value_of(t, "DCGM_FI_DEV_ENFORCED_POWER_LIMIT{gpu=\"0\"") == 700);
    assert_true(value_of(t, "DCGM_FI_DEV_MEMORY_TEMP{gpu=\"0\"") == 54);
    assert_non_null(strstr(t, "DCGM_FI_DEV_GPU_UTIL{gpu=\"0\",UUID=\"GPU-"));
    assert_non_null(strstr(t, ",pci_bus_id=\"00000000:1B:00.0\",device=\"nvidia0\","
                              "modelName=\"NVIDIA H100 80GB HBM3\",Hostname=\"gpu-host-1\"}"));
    assert_non_null(strstr(t, "gpufleet_driver_info{driver_version=\"590.48.01\""));
    assert_non_null(strstr(t, "cuda_driver_version=\"13.1\""));
    assert_non_null(strstr(t, "# TYPE DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION counter"));
    /* H100s have no fan: no series rather than a zero */
    assert_int_equal(count(t, "DCGM_FI_DEV_FAN_SPEED"), 0);
    assert_true(value_of(t, "gpufleet_nvml_up") == 1);
    free(t);
    rig_stop(&r);
}

/* Real memory use is not MiB-aligned; nvidia-smi rounds up. These are the
 * bytes an H100 reported (526.812 MiB used) and what nvidia-smi printed. */
static void memory_rounded_as_nvidia_smi_does(void **state)
{
    struct rig r;

    (void)state;
    rig_start(&r, "gpu h100 fb_reserved_mib=480 fb_used_mib=526.8125\n", NULL);
    char *t = rig_sample(&r);
    assert_true(value_of(t, "DCGM_FI_DEV_FB_TOTAL{gpu=\"0\"") == 81559);
    assert_true(value_of(t, "DCGM_FI_DEV_FB_RESERVED{gpu=\"0\"") == 480);
    assert_true(value_of(t, "DCGM_FI_DEV_FB_USED{gpu=\"0\"") == 527);
    assert_true(value_of(t, "DCGM_FI_DEV_FB_FREE{gpu=\"0\"") == 80553);
    free(t);
    rig_stop(&r);
}

/* A GPU in MIG mode: each MIG device its own series with the UUID a
 * container is given, its profile and memory; the other GPU has none. */
static void mig_devices_listed(void **state)
{
    struct rig r;

    (void)state;
    rig_start(&r, "gpu h100 count=2\nmig gpu=0 profiles=3g.40gb,1g.10gb,1g.10gb\n", NULL);
    char *t = rig_sample(&r);
    assert_int_equal(count(t, "gpufleet_gpu_mig_device_memory_bytes{"), 3);
    assert_int_equal(count(t, "gpufleet_gpu_mig_device_memory_bytes{gpu=\"0\""), 3);
    assert_true(value_of(t, "DCGM_FI_DEV_MIG_MODE{gpu=\"0\"") == 1);
    assert_true(value_of(t, "DCGM_FI_DEV_MIG_MODE{gpu=\"1\"") == 0);
    const char *m = strstr(t, "gpufleet_gpu_mig_device_memory_bytes{gpu=\"0\"");
    assert_non_null(m);
    assert_non_null(strstr(m, ",mig_uuid=\"MIG-"));
    assert_non_null(strstr(m, ",profile=\"3g.40gb\",gpu_instance=\"1\",compute_instance=\"0\"} 41943040000"));
    assert_non_null(strstr(t, ",profile=\"1g.10gb\",gpu_instance=\"3\",compute_instance=\"0\"} 10485760000"));
    free(t);
    rig_stop(&r);
}

static void no_gpus(void **state)
{
    struct rig r;

    (void)state;
    rig_start(&r, "driver 590.48.01\n", NULL);
    char *t = rig_sample(&r);
    assert_true(value_of(t, "gpufleet_nvml_up") == 1);
    assert_true(value_of(t, "gpufleet_gpus") == 0);
    assert_int_equal(count(t, "DCGM_"), 0);
    free(t);
    rig_stop(&r);
}

static void l40s_lacks_memory_temp_and_mig(void **state)
{
    struct rig r;

    (void)state;
    rig_start(&r, "driver 595.80\ngpu l40s\n", NULL);
    char *t = rig_sample(&r);
    assert_int_equal(count(t, "DCGM_FI_DEV_MEMORY_TEMP{"), 0);
    assert_int_equal(count(t, "DCGM_FI_DEV_MIG_MODE{"), 0);
    assert_true(value_of(t, "DCGM_FI_DEV_ENC_UTIL{") == 60);
    assert_true(value_of(t, "DCGM_FI_DEV_FB_TOTAL{") == 46068);
    assert_non_null(strstr(t, "modelName=\"NVIDIA L40S\""));
    free(t);
    rig_stop(&r);
}

static void geforce_unsupported_fields_have_no_series(void **state)
{
    struct rig r;

    (void)state;
    rig_start(&r, "driver 610.57.04\ncuda 13030\ngpu rtx2080s\n", NULL);
    char *t = rig_sample(&r);
    const char *absent[] = {"DCGM_FI_DEV_MEMORY_TEMP{", "DCGM_FI_DEV_ECC_SBE_VOL_TOTAL{",
                            "DCGM_FI_DEV_ECC_DBE_AGG_TOTAL{", "DCGM_FI_DEV_CORRECTABLE_REMAPPED_ROWS{",
                            "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION{", "DCGM_FI_DEV_MIG_MODE{"};
    for (size_t i = 0; i < sizeof(absent) / sizeof(absent[0]); i++)
        assert_int_equal(count(t, absent[i]), 0);
    assert_true(value_of(t, "DCGM_FI_DEV_FAN_SPEED{") == 38);
    assert_true(value_of(t, "DCGM_FI_DEV_PSTATE{") == 2);
    assert_true(value_of(t, "DCGM_FI_DEV_SM_CLOCK{") == 2070);
    assert_non_null(strstr(t, "cuda_driver_version=\"13.3\""));
    free(t);
    rig_stop(&r);
}

static void init_failure_keeps_host_metrics(void **state)
{
    struct rig r;

    (void)state;
    rig_start(&r, "init_error 9\ngpu h100\n", NULL);
    char *t = rig_sample(&r);
    assert_true(value_of(t, "gpufleet_nvml_up") == 0);
    assert_int_equal(count(t, "DCGM_"), 0);
    assert_true(count(t, "node_cpu_seconds_total{") > 0);
    assert_true(count(t, "node_memory_MemTotal_bytes") == 1);
    free(t);
    rig_stop(&r);
}

static void missing_library(void **state)
{
    struct rig r;

    (void)state;
    rig_start(&r, "", "/nonexistent/libnvidia-ml.so.1");
    char *t = rig_sample(&r);
    assert_true(value_of(t, "gpufleet_nvml_up") == 0);
    assert_true(value_of(t, "gpufleet_collector_up{collector=\"nvml\"}") == 1);
    assert_true(count(t, "node_load1 ") == 1);
    free(t);
    rig_stop(&r);
}

static void xid_event_counted(void **state)
{
    struct rig r;

    (void)state;
    rig_start(&r, "gpu h100 count=2\nxid gpu=1 code=79 after_ms=0\nxid gpu=1 code=13 after_ms=0\n"
                  "xid gpu=1 code=13 after_ms=0\n", NULL);
    msleep(300);
    char *t = rig_sample(&r);
    assert_true(value_of(t, "DCGM_FI_DEV_XID_ERRORS{gpu=\"1\"") == 13);
    assert_int_equal(count(t, "DCGM_FI_DEV_XID_ERRORS{gpu=\"0\""), 0);
    assert_true(value_of(t, "gpufleet_gpu_xid_errors_total{gpu=\"1\"") == 1);
    assert_non_null(strstr(t, "xid=\"79\",description=\"GPU has fallen off the bus\"} 1\n"));
    assert_non_null(strstr(t, "xid=\"13\",description=\"Graphics engine exception\"} 2\n"));
    free(t);
    rig_stop(&r);
}

static void lost_gpu_marked_and_others_go_on(void **state)
{
    struct rig r;

    (void)state;
    rig_start(&r, "gpu h100 count=3\nlost gpu=1 after_ms=300\n", NULL);
    char *t = rig_sample(&r);
    assert_int_equal(count(t, "DCGM_FI_DEV_GPU_UTIL{"), 3);
    assert_true(value_of(t, "gpufleet_gpu_lost{gpu=\"1\"") == 0);
    free(t);
    msleep(400);
    t = rig_sample(&r);
    assert_int_equal(count(t, "DCGM_FI_DEV_GPU_UTIL{"), 2);
    assert_int_equal(count(t, "DCGM_FI_DEV_GPU_UTIL{gpu=\"1\""), 0);
    assert_true(value_of(t, "gpufleet_gpu_lost{gpu=\"1\"") == 1);
    assert_true(value_of(t, "gpufleet_gpu_lost{gpu=\"2\"") == 0);
    assert_true(value_of(t, "DCGM_FI_DEV_GPU_UTIL{gpu=\"2\"") == 100);
    free(t);
    rig_stop(&r);
}

static void values_change_between_samples(void **state)
{
    struct rig r;

    (void)state;
    rig_start(&r, "gpu h100\n", NULL);
    char *t = rig_sample(&r);
    double e1 = value_of(t, "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION{");
    assert_true(value_of(t, "DCGM_FI_DEV_GPU_TEMP{") == 59);
    free(t);
    msleep(100);
    /* the "hardware" changes: the fake re-reads its scenario */
    FILE *f = fopen(r.scenario, "w");
    fputs("gpu h100 temp=91 util=37\n", f);
    fclose(f);
    msleep(100);
    t = rig_sample(&r);
    assert_true(value_of(t, "DCGM_FI_DEV_GPU_TEMP{") == 91);
    assert_true(value_of(t, "DCGM_FI_DEV_GPU_UTIL{") == 37);
    /* the energy counter grows with the power drawn */
    assert_true(value_of(t, "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION{") > e1);
    free(t);
    rig_stop(&r);
}

static void processes_with_names(void **state)
{
    struct rig r;
    char scen[128];

    (void)state;
    snprintf(scen, sizeof(scen), "gpu h100\nprocess gpu=0 pid=%d used_mib=512\n", (int)getpid());
    rig_start(&r, scen, NULL);
    char *t = rig_sample(&r);
    char want[160];
    snprintf(want, sizeof(want), "pid=\"%d\",process_name=\"test_collect_nv\"", (int)getpid());
    assert_non_null(strstr(t, want));
    assert_non_null(strstr(t, "container_id=\"\",type=\"compute\"} 536870912\n"));
    free(t);
    struct snapshot *s = snapshot_get(&r.store);
    const char *json;
    size_t len;
    assert_int_equal(snapshot_json(s, &json, &len), 0);
    assert_non_null(strstr(json, "\"used_memory_bytes\":536870912"));
    snapshot_put(s);
    rig_stop(&r);
}

static void slow_pcie_does_not_delay_sampling(void **state)
{
    struct rig r;

    (void)state;
    /* 8 GPUs x 2 directions x 20 ms = 320 ms per round of PCIe calls */
    rig_start(&r, "gpu h100 count=8\nlatency pcie_ms=20\n", NULL);
    msleep(150); /* the slow thread is mid-round now */
    int64_t t0 = now_mono_ns();
    char *t = rig_sample(&r);
    double took_ms = (double)(now_mono_ns() - t0) / 1e6;
    assert_true(took_ms < 100.0);
    free(t);
    msleep(600);
    t = rig_sample(&r);
    assert_int_equal(count(t, "DCGM_FI_DEV_PCIE_TX_THROUGHPUT{"), 8);
    assert_true(value_of(t, "DCGM_FI_DEV_PCIE_RX_THROUGHPUT{gpu=\"7\"") == 2012109);
    free(t);
    rig_stop(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(eight_h100s),
        cmocka_unit_test(memory_rounded_as_nvidia_smi_does),
        cmocka_unit_test(no_gpus),
        cmocka_unit_test(mig_devices_listed),
        cmocka_unit_test(l40s_lacks_memory_temp_and_mig),
        cmocka_unit_test(geforce_unsupported_fields_have_no_series),
        cmocka_unit_test(init_failure_keeps_host_metrics),
        cmocka_unit_test(missing_library),
        cmocka_unit_test(xid_event_counted),
        cmocka_unit_test(lost_gpu_marked_and_others_go_on),
        cmocka_unit_test(values_change_between_samples),
        cmocka_unit_test(processes_with_names),
        cmocka_unit_test(slow_pcie_does_not_delay_sampling),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
