/* GPU collector. Three threads touch NVML: the sampler (fast calls, every
 * interval), a slow thread (PCIe throughput, which samples a 20 ms window per
 * direction) and an event thread waiting for XIDs. What the two helpers find
 * is handed to the sampler under ctx->lock. */
#include "collect_nvml.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../../lib/fields.h"
#include "../../lib/log.h"
#include "../../lib/now.h"
#include "../../lib/xalloc.h"
#include "../collector.h"
#include "../nvml_api.h"
#include "../procinfo.h"

#define MAX_GPUS 64
#define MAX_PROCS 64
#define MAX_XID_CODES 32
#define MAX_MIG 7 /* MIG devices of a GPU: an A100/H100 has at most 7 */
#define INIT_RETRY_NS (60LL * 1000000000LL)

static const struct {
    unsigned long long bit;
    const char *name;
} clock_reasons[] = {
    {0x1, "gpu_idle"},           {0x2, "applications_clocks_setting"},
    {0x4, "sw_power_cap"},       {0x8, "hw_slowdown"},
    {0x10, "sync_boost"},        {0x20, "sw_thermal_slowdown"},
    {0x40, "hw_thermal_slowdown"}, {0x80, "hw_power_brake_slowdown"},
    {0x100, "display_clock_setting"},
};
#define NREASONS (sizeof(clock_reasons) / sizeof(clock_reasons[0]))

const char *nvml_xid_description(unsigned long long xid)
{
    static const struct {
        unsigned code;
        const char *text;
    } known[] = {
        {8, "GPU stopped processing"}, {13, "Graphics engine exception"},
        {31, "GPU memory page fault"}, {32, "Invalid or corrupted push buffer stream"},
        {38, "Driver firmware error"}, {43, "GPU stopped processing"},
        {45, "Preemptive cleanup, due to previous errors"}, {48, "Double-bit ECC error"},
        {56, "Display engine error"}, {57, "Error programming video memory interface"},
        {61, "Internal micro-controller breakpoint/warning"}, {62, "Internal micro-controller halt"},
        {63, "ECC page retirement or row remapping recording event"},
        {64, "ECC page retirement or row remapper recording failure"},
        {68, "NVDEC0 exception"}, {69, "Graphics engine class error"},
        {74, "NVLink error"}, {79, "GPU has fallen off the bus"},
        {92, "High single-bit ECC error rate"}, {94, "Contained ECC error"},
        {95, "Uncontained ECC error"}, {109, "Context switch timeout"},
        {119, "GSP RPC timeout"}, {120, "GSP error"}, {121, "C2C link error"},
        {140, "Unrecovered ECC error"}, {154, "GPU recovery action changed"},
    };
    for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
        if (known[i].code == xid)
            return known[i].text;
    return NULL;
}

/* A MIG device: what a container is given instead of the whole GPU. */
struct mig {
    char uuid[NVML_DEVICE_UUID_V2_BUFFER_SIZE];
    char profile[32]; /* "1g.10gb": the driver's name of it after " MIG " */
    char gi[12], ci[12];
    double mem_bytes;
};

struct xid_count {
    unsigned long long code;
    uint64_t count;
};

struct gpu {
    nvmlDevice_t dev;
    unsigned index;
    char uuid[NVML_DEVICE_UUID_V2_BUFFER_SIZE];
    char name[NVML_DEVICE_NAME_V2_BUFFER_SIZE];
    char bus_id[NVML_DEVICE_PCI_BUS_ID_BUFFER_SIZE];
    char device[24];
    char index_str[12];
    int lost; /* atomic: set by whichever thread first sees GPU_IS_LOST */
    uint64_t unsupported; /* metrics found unsupported (logged once each) */
    uint64_t nvml_errors;
    uint64_t recoveries;    /* times it came back after being lost */
    int64_t next_probe_ns;  /* when a lost GPU is next asked whether it is back */
    /* written by the helper threads, read by the sampler, under ctx->lock */
    int pcie_have_tx, pcie_have_rx;
    double pcie_tx_kbs, pcie_rx_kbs;
    struct xid_count xids[MAX_XID_CODES];
    size_t nxids;
    int has_xid;
    unsigned long long last_xid;
    /* this sample, sampler thread only */
    double v[GM_COUNT];
    uint64_t have;
    unsigned long long reasons;
    nvmlProcessInfo_t procs[MAX_PROCS];
    const char *proc_type[MAX_PROCS];
    double proc_sm[MAX_PROCS]; /* SM utilization %, -1: NVML said none */
    unsigned long long util_seen_us; /* the newest process sample read */
    unsigned nprocs;
    struct mig migs[MAX_MIG];
    unsigned nmigs;
};

struct nvml_ctx {
    const struct agent_options *opts;
    struct nvml_api api;
    int loaded, up;
    char reason[256];
    int64_t next_init_ns;
    char driver[NVML_SYSTEM_DRIVER_VERSION_BUFFER_SIZE];
    char nvml_version[NVML_SYSTEM_NVML_VERSION_BUFFER_SIZE];
    char cuda_version[16];
    struct gpu gpus[MAX_GPUS];
    unsigned ngpus;
    /* per-process utilization samples, sampler thread only: kept between
     * samples and grown to the most any GPU asked for */
    nvmlProcessUtilizationSample_t *util_buf;
    unsigned util_cap;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    int stop;
    pthread_t slow_thread, xid_thread;
    int slow_running, xid_running;
    nvmlEventSet_t events;
};

static int gpu_lost(struct gpu *g)
{
    return __atomic_load_n(&g->lost, __ATOMIC_ACQUIRE);
}

static const char *nvml_err(struct nvml_ctx *c, nvmlReturn_t rc)
{
    const char *s = c->api.nvmlErrorString ? c->api.nvmlErrorString(rc) : NULL;
    return s ? s : "unknown NVML error";
}

static void mark_lost(struct nvml_ctx *c, struct gpu *g)
{
    if (__atomic_exchange_n(&g->lost, 1, __ATOMIC_ACQ_REL) == 0)
        log_error("gpu %u (%s, %s): fell off the bus (NVML_ERROR_GPU_IS_LOST); marked lost, "
                  "the other GPUs go on",
                  g->index, g->uuid, g->bus_id);
    (void)c;
}

/* Records the outcome of one NVML call for metric m. Returns 1 on success. */
static int check(struct nvml_ctx *c, struct gpu *g, enum gpu_metric m, nvmlReturn_t rc)
{
    if (rc == NVML_SUCCESS) {
        g->have |= 1ULL << m;
        return 1;
    }
    if (rc == NVML_ERROR_GPU_IS_LOST) {
        mark_lost(c, g);
        return 0;
    }
    if (rc == NVML_ERROR_NOT_SUPPORTED || rc == NVML_ERROR_FUNCTION_NOT_FOUND) {
        if (!(g->unsupported & (1ULL << m)))
            log_info("gpu %u (%s): %s not supported; no series for it", g->index, g->name,
                     gpu_fields[m].metric);
        g->unsupported |= 1ULL << m;
        return 0;
    }
    if (!(g->unsupported & (1ULL << m)))
        log_warn("gpu %u (%s): reading %s failed: %s", g->index, g->name, gpu_fields[m].metric,
                 nvml_err(c, rc));
    g->unsupported |= 1ULL << m;
    g->nvml_errors++;
    return 0;
}

#define MISSING NVML_ERROR_FUNCTION_NOT_FOUND
#define CALL(fn, ...) (c->api.fn ? c->api.fn(__VA_ARGS__) : MISSING)

static void set(struct gpu *g, enum gpu_metric m, double v)
{
    g->v[m] = v;
}

/* nvidia-smi rounds bytes up to whole MiB (checked on an H100 with 580.159:
 * 526.812 MiB used shows as 527, 80552.188 free as 80553); so do we, so the
 * two agree to the MiB. */
static double to_mib(unsigned long long bytes)
{
    return (double)((bytes + 1048575ULL) / 1048576ULL);
}

static void read_memory(struct nvml_ctx *c, struct gpu *g)
{
    nvmlMemory_v2_t m2 = {.version = NVML_MEMORY_V2_VERSION};
    nvmlMemory_t m1;
    nvmlReturn_t rc = CALL(nvmlDeviceGetMemoryInfo_v2, g->dev, &m2);

    if (rc == NVML_SUCCESS) {
        /* v2 reports the driver's reservation apart, as nvidia-smi does */
        check(c, g, GM_FB_TOTAL, rc);
        check(c, g, GM_FB_USED, rc);
        check(c, g, GM_FB_FREE, rc);
        check(c, g, GM_FB_RESERVED, rc);
        set(g, GM_FB_TOTAL, to_mib(m2.total));
        set(g, GM_FB_USED, to_mib(m2.used));
        set(g, GM_FB_FREE, to_mib(m2.free));
        set(g, GM_FB_RESERVED, to_mib(m2.reserved));
        return;
    }
    if (rc == NVML_ERROR_GPU_IS_LOST) {
        mark_lost(c, g);
        return;
    }
    rc = CALL(nvmlDeviceGetMemoryInfo, g->dev, &m1);
    if (check(c, g, GM_FB_TOTAL, rc)) {
        check(c, g, GM_FB_USED, rc);
        check(c, g, GM_FB_FREE, rc);
        set(g, GM_FB_TOTAL, to_mib(m1.total));
        set(g, GM_FB_USED, to_mib(m1.used));
        set(g, GM_FB_FREE, to_mib(m1.free));
    }
}

/* Each process's SM utilization since the last sample read. NVML keeps
 * several samples per process (every ~1/6 s over a window), so the buffer
 * is sized by asking first, and each pid's newest sample counts. */
#define MAX_UTIL_SAMPLES 4096
static void read_process_util(struct nvml_ctx *c, struct gpu *g)
{
    unsigned n = 0;

    for (unsigned k = 0; k < g->nprocs; k++)
        g->proc_sm[k] = -1;
    if (!g->nprocs ||
        CALL(nvmlDeviceGetProcessUtilization, g->dev, NULL, &n, g->util_seen_us) != NVML_ERROR_INSUFFICIENT_SIZE ||
        n == 0)
        return;
    n = n > MAX_UTIL_SAMPLES ? MAX_UTIL_SAMPLES : n;
    if (n > c->util_cap) {
        free(c->util_buf);
        c->util_buf = xcalloc(n, sizeof(*c->util_buf));
        c->util_cap = n;
    }
    nvmlProcessUtilizationSample_t *s = c->util_buf;
    if (CALL(nvmlDeviceGetProcessUtilization, g->dev, s, &n, g->util_seen_us) != NVML_SUCCESS)
        return;
    unsigned long long newest[MAX_PROCS] = {0};
    for (unsigned i = 0; i < n; i++) {
        if (s[i].timeStamp > g->util_seen_us)
            g->util_seen_us = s[i].timeStamp;
        for (unsigned k = 0; k < g->nprocs; k++)
            if (g->procs[k].pid == s[i].pid && s[i].timeStamp >= newest[k]) {
                newest[k] = s[i].timeStamp;
                g->proc_sm[k] = s[i].smUtil;
            }
    }
}

static void read_processes(struct nvml_ctx *c, struct gpu *g)
{
    unsigned n;
    nvmlReturn_t rc;

    g->nprocs = 0;
    n = MAX_PROCS;
    rc = CALL(nvmlDeviceGetComputeRunningProcesses_v3, g->dev, &n, g->procs);
    if (rc == NVML_SUCCESS || rc == NVML_ERROR_INSUFFICIENT_SIZE) {
        g->nprocs = n > MAX_PROCS ? MAX_PROCS : n;
        for (unsigned i = 0; i < g->nprocs; i++)
            g->proc_type[i] = "compute";
    } else if (rc == NVML_ERROR_GPU_IS_LOST) {
        mark_lost(c, g);
        return;
    }
    n = MAX_PROCS - g->nprocs;
    rc = n == 0 ? NVML_ERROR_INSUFFICIENT_SIZE : CALL(nvmlDeviceGetGraphicsRunningProcesses_v3, g->dev, &n, g->procs + g->nprocs);
    if (rc == NVML_SUCCESS || rc == NVML_ERROR_INSUFFICIENT_SIZE) {
        unsigned add = n > MAX_PROCS - g->nprocs ? MAX_PROCS - g->nprocs : n;
        for (unsigned i = 0; i < add; i++)
            g->proc_type[g->nprocs + i] = "graphics";
        g->nprocs += add;
    }
    read_process_util(c, g);
}

/* A lost GPU is asked every few seconds whether it is back (after a reset,
 * or a driver that recovered it): its handle taken again by index, its
 * UUID the same, and a call that answers. Then it is sampled again. */
#define PROBE_LOST_NS (5LL * 1000000000LL)

/* The MIG devices of a GPU in MIG mode: their UUIDs are what containers
 * are given (Docker's DeviceIDs and the CDI names take them), so the
 * server's ledger hands them out instead of the whole GPU. Empty slots
 * answer NOT_FOUND. */
static void read_migs(struct nvml_ctx *c, struct gpu *g)
{
    unsigned max = 0, id;
    nvmlDevice_t m;
    nvmlMemory_t mem;
    char name[NVML_DEVICE_NAME_V2_BUFFER_SIZE];

    if (CALL(nvmlDeviceGetMaxMigDeviceCount, g->dev, &max) != NVML_SUCCESS)
        return;
    for (unsigned i = 0; i < max && g->nmigs < MAX_MIG; i++) {
        struct mig *x = &g->migs[g->nmigs];
        if (CALL(nvmlDeviceGetMigDeviceHandleByIndex, g->dev, i, &m) != NVML_SUCCESS ||
            CALL(nvmlDeviceGetUUID, m, x->uuid, sizeof(x->uuid)) != NVML_SUCCESS)
            continue;
        const char *p = CALL(nvmlDeviceGetName, m, name, sizeof(name)) == NVML_SUCCESS ? strstr(name, " MIG ") : NULL;
        snprintf(x->profile, sizeof(x->profile), "%s", p ? p + 5 : "");
        x->mem_bytes = CALL(nvmlDeviceGetMemoryInfo, m, &mem) == NVML_SUCCESS ? (double)mem.total : 0;
        snprintf(x->gi, sizeof(x->gi), "%u", CALL(nvmlDeviceGetGpuInstanceId, m, &id) == NVML_SUCCESS ? id : 0);
        snprintf(x->ci, sizeof(x->ci), "%u", CALL(nvmlDeviceGetComputeInstanceId, m, &id) == NVML_SUCCESS ? id : 0);
        g->nmigs++;
    }
}

static void probe_lost(struct nvml_ctx *c, struct gpu *g)
{
    int64_t now = now_mono_ns();
    nvmlDevice_t dev;
    nvmlUtilization_t util;
    char uuid[NVML_DEVICE_UUID_V2_BUFFER_SIZE];

    if (now < g->next_probe_ns)
        return;
    g->next_probe_ns = now + PROBE_LOST_NS;
    if (CALL(nvmlDeviceGetHandleByIndex_v2, g->index, &dev) != NVML_SUCCESS ||
        CALL(nvmlDeviceGetUUID, dev, uuid, sizeof(uuid)) != NVML_SUCCESS || strcmp(uuid, g->uuid) ||
        CALL(nvmlDeviceGetUtilizationRates, dev, &util) != NVML_SUCCESS)
        return;
    g->dev = dev;
    g->recoveries++;
    __atomic_store_n(&g->lost, 0, __ATOMIC_RELEASE);
    log_warn("gpu %u (%s, %s): back on the bus (recovery %llu); sampled again", g->index, g->uuid,
             g->bus_id, (unsigned long long)g->recoveries);
}

/* The fast calls of one GPU, on the sampler thread.
 * Long on purpose: one NVML read per metric, in the order of gpu_fields[],
 * each with its own unsupported/lost handling; split up, the order and the
 * per-call error policy would be spread over several places. */
static void read_gpu(struct nvml_ctx *c, struct gpu *g)
{
    g->nmigs = 0;
    nvmlUtilization_t util;
    unsigned u, period, a, b, pending, failure;
    unsigned long long ull;
    int pstate;
    nvmlFieldValue_t fv;

    g->have = 0;
    g->nprocs = 0;
    if (gpu_lost(g))
        probe_lost(c, g);
    if (gpu_lost(g))
        return;
    if (check(c, g, GM_GPU_UTIL, CALL(nvmlDeviceGetUtilizationRates, g->dev, &util))) {
        check(c, g, GM_MEM_UTIL, NVML_SUCCESS);
        set(g, GM_GPU_UTIL, util.gpu);
        set(g, GM_MEM_UTIL, util.memory);
    }
    if (gpu_lost(g))
        return; /* a lost GPU answers nothing else */
    if (check(c, g, GM_ENC_UTIL, CALL(nvmlDeviceGetEncoderUtilization, g->dev, &u, &period)))
        set(g, GM_ENC_UTIL, u);
    if (check(c, g, GM_DEC_UTIL, CALL(nvmlDeviceGetDecoderUtilization, g->dev, &u, &period)))
        set(g, GM_DEC_UTIL, u);
    read_memory(c, g);
    if (check(c, g, GM_GPU_TEMP,
              CALL(nvmlDeviceGetTemperature, g->dev, NVML_TEMPERATURE_GPU, &u)))
        set(g, GM_GPU_TEMP, u);
    memset(&fv, 0, sizeof(fv));
    fv.fieldId = NVML_FI_DEV_MEMORY_TEMP;
    nvmlReturn_t rc = CALL(nvmlDeviceGetFieldValues, g->dev, 1, &fv);
    if (rc == NVML_SUCCESS)
        rc = fv.nvmlReturn;
    if (check(c, g, GM_MEM_TEMP, rc)) {
        double t = fv.valueType == NVML_VALUE_TYPE_DOUBLE ? fv.value.dVal
                   : fv.valueType == NVML_VALUE_TYPE_UNSIGNED_LONG_LONG ? (double)fv.value.ullVal
                   : fv.valueType == NVML_VALUE_TYPE_SIGNED_LONG_LONG ? (double)fv.value.sllVal
                   : fv.valueType == NVML_VALUE_TYPE_SIGNED_INT ? (double)fv.value.siVal
                   : fv.valueType == NVML_VALUE_TYPE_UNSIGNED_LONG ? (double)fv.value.ulVal
                                                                   : (double)fv.value.uiVal;
        set(g, GM_MEM_TEMP, t);
    }
    if (check(c, g, GM_POWER, CALL(nvmlDeviceGetPowerUsage, g->dev, &u)))
        set(g, GM_POWER, u / 1000.0);
    if (check(c, g, GM_POWER_LIMIT, CALL(nvmlDeviceGetEnforcedPowerLimit, g->dev, &u)))
        set(g, GM_POWER_LIMIT, u / 1000.0);
    if (check(c, g, GM_ENERGY, CALL(nvmlDeviceGetTotalEnergyConsumption, g->dev, &ull)))
        set(g, GM_ENERGY, (double)ull);
    if (check(c, g, GM_SM_CLOCK, CALL(nvmlDeviceGetClockInfo, g->dev, NVML_CLOCK_SM, &u)))
        set(g, GM_SM_CLOCK, u);
    if (check(c, g, GM_MEM_CLOCK, CALL(nvmlDeviceGetClockInfo, g->dev, NVML_CLOCK_MEM, &u)))
        set(g, GM_MEM_CLOCK, u);
    if (check(c, g, GM_FAN, CALL(nvmlDeviceGetFanSpeed, g->dev, &u)))
        set(g, GM_FAN, u);
    rc = CALL(nvmlDeviceGetCurrentClocksEventReasons, g->dev, &ull);
    if (rc == MISSING)
        rc = CALL(nvmlDeviceGetCurrentClocksThrottleReasons, g->dev, &ull);
    if (check(c, g, GM_CLOCK_REASONS, rc)) {
        g->reasons = ull;
        set(g, GM_CLOCK_REASONS, (double)ull);
    }
    static const struct {
        enum gpu_metric m;
        int type, counter;
    } ecc[] = {
        {GM_ECC_SBE_VOL, NVML_MEMORY_ERROR_TYPE_CORRECTED, NVML_VOLATILE_ECC},
        {GM_ECC_DBE_VOL, NVML_MEMORY_ERROR_TYPE_UNCORRECTED, NVML_VOLATILE_ECC},
        {GM_ECC_SBE_AGG, NVML_MEMORY_ERROR_TYPE_CORRECTED, NVML_AGGREGATE_ECC},
        {GM_ECC_DBE_AGG, NVML_MEMORY_ERROR_TYPE_UNCORRECTED, NVML_AGGREGATE_ECC},
    };
    for (size_t i = 0; i < 4 && !gpu_lost(g); i++)
        if (check(c, g, ecc[i].m,
                  CALL(nvmlDeviceGetTotalEccErrors, g->dev, ecc[i].type, ecc[i].counter, &ull)))
            set(g, ecc[i].m, (double)ull);
    if (check(c, g, GM_REMAP_CORR,
              CALL(nvmlDeviceGetRemappedRows, g->dev, &a, &b, &pending, &failure))) {
        check(c, g, GM_REMAP_UNC, NVML_SUCCESS);
        check(c, g, GM_REMAP_PENDING, NVML_SUCCESS);
        check(c, g, GM_REMAP_FAILURE, NVML_SUCCESS);
        set(g, GM_REMAP_CORR, a);
        set(g, GM_REMAP_UNC, b);
        set(g, GM_REMAP_PENDING, pending ? 1 : 0);
        set(g, GM_REMAP_FAILURE, failure ? 1 : 0);
    }
    if (check(c, g, GM_PSTATE, CALL(nvmlDeviceGetPerformanceState, g->dev, &pstate)) &&
        pstate != NVML_PSTATE_UNKNOWN)
        set(g, GM_PSTATE, pstate);
    else
        g->have &= ~(1ULL << GM_PSTATE);
    if (check(c, g, GM_MIG_MODE, CALL(nvmlDeviceGetMigMode, g->dev, &a, &b))) {
        set(g, GM_MIG_MODE, a);
        if (a == NVML_DEVICE_MIG_ENABLE)
            read_migs(c, g);
    }
    read_processes(c, g);

    pthread_mutex_lock(&c->lock);
    if (g->pcie_have_tx) {
        g->have |= 1ULL << GM_PCIE_TX;
        set(g, GM_PCIE_TX, g->pcie_tx_kbs);
    }
    if (g->pcie_have_rx) {
        g->have |= 1ULL << GM_PCIE_RX;
        set(g, GM_PCIE_RX, g->pcie_rx_kbs);
    }
    if (g->has_xid) {
        g->have |= 1ULL << GM_XID_LAST;
        set(g, GM_XID_LAST, (double)g->last_xid);
    }
    pthread_mutex_unlock(&c->lock);
    if (gpu_lost(g))
        g->have = 0;
}

/* Slow thread: PCIe throughput per GPU on its own cadence, so the sampler
 * never waits the ~40 ms per GPU these calls take. */
static void *slow_main(void *arg)
{
    struct nvml_ctx *c = arg;
    int64_t period = c->opts->slow_interval_ms * 1000000LL;
    int64_t next = now_mono_ns();

    pthread_mutex_lock(&c->lock);
    while (!c->stop) {
        pthread_mutex_unlock(&c->lock);
        for (unsigned i = 0; i < c->ngpus; i++) {
            struct gpu *g = &c->gpus[i];
            unsigned tx = 0, rx = 0;
            nvmlReturn_t rtx, rrx;
            if (gpu_lost(g))
                continue;
            rtx = CALL(nvmlDeviceGetPcieThroughput, g->dev, NVML_PCIE_UTIL_TX_BYTES, &tx);
            rrx = CALL(nvmlDeviceGetPcieThroughput, g->dev, NVML_PCIE_UTIL_RX_BYTES, &rx);
            if (rtx == NVML_ERROR_GPU_IS_LOST || rrx == NVML_ERROR_GPU_IS_LOST) {
                mark_lost(c, g);
                continue;
            }
            pthread_mutex_lock(&c->lock);
            g->pcie_have_tx = rtx == NVML_SUCCESS;
            g->pcie_have_rx = rrx == NVML_SUCCESS;
            g->pcie_tx_kbs = tx;
            g->pcie_rx_kbs = rx;
            pthread_mutex_unlock(&c->lock);
        }
        next += period;
        int64_t now = now_mono_ns();
        if (next <= now)
            next = now + period;
        pthread_mutex_lock(&c->lock);
        while (!c->stop && now_cond_wait_until(&c->wake, &c->lock, next) == 0)
            ;
    }
    pthread_mutex_unlock(&c->lock);
    return NULL;
}

static void record_xid(struct nvml_ctx *c, nvmlDevice_t dev, unsigned long long xid)
{
    const char *what = nvml_xid_description(xid);

    for (unsigned i = 0; i < c->ngpus; i++) {
        struct gpu *g = &c->gpus[i];
        if (g->dev != dev)
            continue;
        log_warn("gpu %u (%s): XID %llu%s%s", g->index, g->uuid, xid, what ? ": " : "",
                 what ? what : "");
        pthread_mutex_lock(&c->lock);
        g->has_xid = 1;
        g->last_xid = xid;
        size_t k = 0;
        while (k < g->nxids && g->xids[k].code != xid)
            k++;
        if (k == g->nxids && g->nxids < MAX_XID_CODES)
            g->xids[g->nxids++] = (struct xid_count){xid, 0};
        if (k < g->nxids)
            g->xids[k].count++;
        pthread_mutex_unlock(&c->lock);
        return;
    }
}

/* Event thread: waits on the NVML event set for XIDs. The wait has a short
 * timeout so shutdown is prompt. */
static void *xid_main(void *arg)
{
    struct nvml_ctx *c = arg;

    for (;;) {
        nvmlEventData_t ev;
        pthread_mutex_lock(&c->lock);
        int stop = c->stop;
        pthread_mutex_unlock(&c->lock);
        if (stop)
            break;
        memset(&ev, 0, sizeof(ev));
        nvmlReturn_t rc = c->api.nvmlEventSetWait_v2(c->events, &ev, 500);
        if (rc == NVML_ERROR_TIMEOUT)
            continue;
        if (rc != NVML_SUCCESS) {
            if (rc == NVML_ERROR_GPU_IS_LOST && ev.device) {
                for (unsigned i = 0; i < c->ngpus; i++)
                    if (c->gpus[i].dev == ev.device)
                        mark_lost(c, &c->gpus[i]);
            }
            struct timespec pause = {0, 200 * 1000000L};
            nanosleep(&pause, NULL);
            continue;
        }
        if (ev.eventType & nvmlEventTypeXidCriticalError)
            record_xid(c, ev.device, ev.eventData);
    }
    return NULL;
}

static void start_events(struct nvml_ctx *c)
{
    unsigned registered = 0;

    if (!c->api.nvmlEventSetCreate || !c->api.nvmlDeviceRegisterEvents ||
        !c->api.nvmlEventSetWait_v2 || CALL(nvmlEventSetCreate, &c->events) != NVML_SUCCESS) {
        log_info("nvml: event sets unavailable; XID errors will not be counted");
        return;
    }
    for (unsigned i = 0; i < c->ngpus; i++) {
        nvmlReturn_t rc = c->api.nvmlDeviceRegisterEvents(
            c->gpus[i].dev, nvmlEventTypeXidCriticalError, c->events);
        if (rc == NVML_SUCCESS)
            registered++;
        else
            log_info("gpu %u: XID events not available: %s", c->gpus[i].index, nvml_err(c, rc));
    }
    if (!registered || pthread_create(&c->xid_thread, NULL, xid_main, c) != 0) {
        CALL(nvmlEventSetFree, c->events);
        c->events = NULL;
        return;
    }
    c->xid_running = 1;
}

static int enumerate(struct nvml_ctx *c)
{
    unsigned count = 0;
    nvmlReturn_t rc = c->api.nvmlDeviceGetCount_v2(&count);

    if (rc != NVML_SUCCESS) {
        snprintf(c->reason, sizeof(c->reason), "nvmlDeviceGetCount: %s", nvml_err(c, rc));
        return -1;
    }
    if (count > MAX_GPUS) {
        log_warn("nvml: %u GPUs, only the first %d are watched", count, MAX_GPUS);
        count = MAX_GPUS;
    }
    c->ngpus = 0;
    for (unsigned i = 0; i < count; i++) {
        struct gpu *g = &c->gpus[c->ngpus];
        nvmlPciInfo_t pci;
        unsigned minor;

        memset(g, 0, sizeof(*g));
        g->index = i;
        rc = c->api.nvmlDeviceGetHandleByIndex_v2(i, &g->dev);
        if (rc == NVML_SUCCESS)
            rc = c->api.nvmlDeviceGetUUID(g->dev, g->uuid, sizeof(g->uuid));
        if (rc != NVML_SUCCESS) {
            log_error("gpu %u: cannot identify it (%s); left out", i, nvml_err(c, rc));
            continue;
        }
        if (c->api.nvmlDeviceGetName(g->dev, g->name, sizeof(g->name)) != NVML_SUCCESS)
            snprintf(g->name, sizeof(g->name), "unknown");
        memset(&pci, 0, sizeof(pci));
        if (c->api.nvmlDeviceGetPciInfo_v3(g->dev, &pci) == NVML_SUCCESS)
            snprintf(g->bus_id, sizeof(g->bus_id), "%.*s", (int)sizeof(pci.busId) - 1,
                     pci.busId);
        if (CALL(nvmlDeviceGetMinorNumber, g->dev, &minor) == NVML_SUCCESS)
            snprintf(g->device, sizeof(g->device), "nvidia%u", minor);
        else
            snprintf(g->device, sizeof(g->device), "nvidia%u", i);
        snprintf(g->index_str, sizeof(g->index_str), "%u", i);
        c->ngpus++;
    }
    return 0;
}

static void try_init(struct nvml_ctx *c)
{
    nvmlReturn_t rc;
    int cuda = 0;

    c->next_init_ns = now_mono_ns() + INIT_RETRY_NS;
    if (!c->loaded) {
        if (nvml_api_load(&c->api, c->opts->nvml_lib, c->reason, sizeof(c->reason)) < 0) {
            log_warn("nvml: %s; GPU metrics off, host metrics go on (retry in 60 s)", c->reason);
            return;
        }
        c->loaded = 1;
    }
    rc = c->api.nvmlInit_v2();
    if (rc != NVML_SUCCESS) {
        snprintf(c->reason, sizeof(c->reason), "nvmlInit: %s", nvml_err(c, rc));
        log_warn("nvml: %s; GPU metrics off, host metrics go on (retry in 60 s)", c->reason);
        return;
    }
    if (enumerate(c) < 0) {
        log_warn("nvml: %s", c->reason);
        c->api.nvmlShutdown();
        return;
    }
    c->driver[0] = c->nvml_version[0] = c->cuda_version[0] = '\0';
    c->api.nvmlSystemGetDriverVersion(c->driver, sizeof(c->driver));
    c->api.nvmlSystemGetNVMLVersion(c->nvml_version, sizeof(c->nvml_version));
    if (CALL(nvmlSystemGetCudaDriverVersion_v2, &cuda) == NVML_SUCCESS)
        snprintf(c->cuda_version, sizeof(c->cuda_version), "%d.%d", cuda / 1000,
                 (cuda % 1000) / 10);
    c->up = 1;
    c->reason[0] = '\0';
    log_info("nvml: driver %s, NVML %s, CUDA %s, %u GPU(s)", c->driver, c->nvml_version,
             c->cuda_version[0] ? c->cuda_version : "unknown", c->ngpus);
    if (c->ngpus && pthread_create(&c->slow_thread, NULL, slow_main, c) == 0)
        c->slow_running = 1;
    if (c->ngpus)
        start_events(c);
}

static int nvml_init(void **ctx, const struct agent_options *opts)
{
    struct nvml_ctx *c = xcalloc(1, sizeof(*c));

    c->opts = opts;
    pthread_mutex_init(&c->lock, NULL);
    now_cond_init(&c->wake);
    try_init(c);
    *ctx = c;
    return 0;
}

/* DCGM_* families keep dcgm-exporter's label names (UUID, modelName,
 * Hostname) so its dashboards work; gpufleet_* families use the same labels
 * in Prometheus's snake_case. */
static void gpu_labels(const struct gpu *g, const char *hostname, struct expo_label *l)
{
    l[0] = (struct expo_label){"gpu", g->index_str};
    l[1] = (struct expo_label){"UUID", g->uuid};
    l[2] = (struct expo_label){"pci_bus_id", g->bus_id};
    l[3] = (struct expo_label){"device", g->device};
    l[4] = (struct expo_label){"modelName", g->name};
    l[5] = (struct expo_label){"Hostname", hostname};
}

static void own_labels(const struct gpu *g, const char *hostname, struct expo_label *l)
{
    l[0] = (struct expo_label){"gpu", g->index_str};
    l[1] = (struct expo_label){"uuid", g->uuid};
    l[2] = (struct expo_label){"pci_bus_id", g->bus_id};
    l[3] = (struct expo_label){"device", g->device};
    l[4] = (struct expo_label){"model_name", g->name};
    l[5] = (struct expo_label){"hostname", hostname};
}
#define NGPU_LABELS 6

static void render_gpu_families(struct nvml_ctx *c, struct sample_ctx *sc)
{
    struct expo_label l[NGPU_LABELS + 6];
    char buf1[32], buf2[32];

    for (int m = 0; m < GM_COUNT; m++) {
        expo_family(sc->w, gpu_fields[m].metric, gpu_fields[m].type, gpu_fields[m].help);
        for (unsigned i = 0; i < c->ngpus; i++) {
            struct gpu *g = &c->gpus[i];
            if (!(g->have & (1ULL << m)))
                continue;
            gpu_labels(g, sc->hostname, l);
            expo_sample(sc->w, l, NGPU_LABELS, g->v[m]);
        }
    }
    expo_family(sc->w, "gpufleet_gpu_lost", EXPO_GAUGE,
                "Whether the GPU has fallen off the bus (NVML_ERROR_GPU_IS_LOST).");
    for (unsigned i = 0; i < c->ngpus; i++) {
        own_labels(&c->gpus[i], sc->hostname, l);
        expo_sample(sc->w, l, NGPU_LABELS, gpu_lost(&c->gpus[i]));
    }
    expo_family(sc->w, "gpufleet_gpu_recoveries_total", EXPO_COUNTER,
                "Times the GPU came back after it had fallen off the bus.");
    for (unsigned i = 0; i < c->ngpus; i++) {
        own_labels(&c->gpus[i], sc->hostname, l);
        expo_sample(sc->w, l, NGPU_LABELS, (double)c->gpus[i].recoveries);
    }
    expo_family(sc->w, "gpufleet_gpu_clock_event_reason_active", EXPO_GAUGE,
                "Whether a clock event (throttle) reason is holding the clocks down.");
    for (unsigned i = 0; i < c->ngpus; i++) {
        struct gpu *g = &c->gpus[i];
        if (!(g->have & (1ULL << GM_CLOCK_REASONS)))
            continue;
        own_labels(g, sc->hostname, l);
        for (size_t r = 0; r < NREASONS; r++) {
            l[NGPU_LABELS] = (struct expo_label){"reason", clock_reasons[r].name};
            expo_sample(sc->w, l, NGPU_LABELS + 1, (g->reasons & clock_reasons[r].bit) ? 1 : 0);
        }
    }
    expo_family(sc->w, "gpufleet_gpu_xid_errors_total", EXPO_COUNTER,
                "XID errors reported by the driver, by code, since the agent started.");
    pthread_mutex_lock(&c->lock);
    for (unsigned i = 0; i < c->ngpus; i++) {
        struct gpu *g = &c->gpus[i];
        own_labels(g, sc->hostname, l);
        for (size_t k = 0; k < g->nxids; k++) {
            const char *what = nvml_xid_description(g->xids[k].code);
            snprintf(buf1, sizeof(buf1), "%llu", g->xids[k].code);
            l[NGPU_LABELS] = (struct expo_label){"xid", buf1};
            l[NGPU_LABELS + 1] = (struct expo_label){"description", what ? what : "unknown"};
            expo_sample(sc->w, l, NGPU_LABELS + 2, (double)g->xids[k].count);
        }
    }
    pthread_mutex_unlock(&c->lock);
    expo_family(sc->w, "gpufleet_gpu_nvml_errors_total", EXPO_COUNTER,
                "NVML calls that failed for a reason other than lack of support.");
    for (unsigned i = 0; i < c->ngpus; i++) {
        own_labels(&c->gpus[i], sc->hostname, l);
        expo_sample(sc->w, l, NGPU_LABELS, (double)c->gpus[i].nvml_errors);
    }
    expo_family(sc->w, "gpufleet_gpu_mig_device_memory_bytes", EXPO_GAUGE,
                "Memory of a MIG device of the GPU (one series per MIG device; mig_uuid is what a container is given).");
    for (unsigned i = 0; i < c->ngpus; i++) {
        struct gpu *g = &c->gpus[i];
        own_labels(g, sc->hostname, l);
        for (unsigned k = 0; k < g->nmigs; k++) {
            l[NGPU_LABELS] = (struct expo_label){"mig_uuid", g->migs[k].uuid};
            l[NGPU_LABELS + 1] = (struct expo_label){"profile", g->migs[k].profile};
            l[NGPU_LABELS + 2] = (struct expo_label){"gpu_instance", g->migs[k].gi};
            l[NGPU_LABELS + 3] = (struct expo_label){"compute_instance", g->migs[k].ci};
            expo_sample(sc->w, l, NGPU_LABELS + 4, g->migs[k].mem_bytes);
        }
    }
    expo_family(sc->w, "gpufleet_gpu_process_memory_bytes", EXPO_GAUGE,
                "GPU memory used by a process on the GPU.");
    json_t *procs = json_array();
    for (unsigned i = 0; i < c->ngpus; i++) {
        struct gpu *g = &c->gpus[i];
        own_labels(g, sc->hostname, l);
        for (unsigned k = 0; k < g->nprocs; k++) {
            struct procinfo pi;
            procinfo_read(sc->opts->proc_root, (pid_t)g->procs[k].pid, &pi);
            snprintf(buf2, sizeof(buf2), "%u", g->procs[k].pid);
            l[NGPU_LABELS] = (struct expo_label){"pid", buf2};
            l[NGPU_LABELS + 1] = (struct expo_label){"process_name", pi.name};
            l[NGPU_LABELS + 2] = (struct expo_label){"user", pi.user};
            l[NGPU_LABELS + 3] = (struct expo_label){"container_id", pi.container_id};
            l[NGPU_LABELS + 4] = (struct expo_label){"type", g->proc_type[k]};
            /* NVML reports ~0ULL when it cannot tell (e.g. under WDDM) */
            double mem = g->procs[k].usedGpuMemory == ~0ULL ? 0 : (double)g->procs[k].usedGpuMemory;
            expo_sample(sc->w, l, NGPU_LABELS + 5, mem);
            json_t *po = json_pack("{s:i, s:s, s:I, s:s, s:s, s:s, s:s, s:I}", "gpu", g->index,
                                   "gpu_uuid", g->uuid, "pid", (json_int_t)g->procs[k].pid, "name",
                                   pi.name, "user", pi.user, "container_id", pi.container_id,
                                   "type", g->proc_type[k], "used_memory_bytes", (json_int_t)mem);
            if (g->proc_sm[k] >= 0)
                json_object_set_new(po, "sm_util_percent", json_real(g->proc_sm[k]));
            json_array_append_new(procs, po);
        }
    }
    json_object_set_new(sc->root, "processes", procs);
}

static void render_json(struct nvml_ctx *c, struct sample_ctx *sc)
{
    json_t *gpus = json_array();

    for (unsigned i = 0; i < c->ngpus; i++) {
        struct gpu *g = &c->gpus[i];
        json_t *o = json_pack("{s:i, s:s, s:s, s:s, s:s, s:b}", "index", g->index, "uuid",
                              g->uuid, "name", g->name, "pci_bus_id", g->bus_id, "device",
                              g->device, "lost", gpu_lost(g));
        for (int m = 0; m < GM_COUNT; m++)
            if (g->have & (1ULL << m))
                json_object_set_new(o, gpu_fields[m].field, json_real(g->v[m]));
        if (g->have & (1ULL << GM_CLOCK_REASONS)) {
            json_t *r = json_array();
            for (size_t k = 0; k < NREASONS; k++)
                if (g->reasons & clock_reasons[k].bit)
                    json_array_append_new(r, json_string(clock_reasons[k].name));
            json_object_set_new(o, "clock_event_reasons", r);
        }
        if (g->nmigs) {
            json_t *m = json_array();
            for (unsigned k = 0; k < g->nmigs; k++)
                json_array_append_new(m, json_pack("{s:s, s:s, s:s, s:s, s:f}", "uuid", g->migs[k].uuid,
                                                   "profile", g->migs[k].profile, "gpu_instance",
                                                   g->migs[k].gi, "compute_instance", g->migs[k].ci,
                                                   "memory_bytes", g->migs[k].mem_bytes));
            json_object_set_new(o, "mig_devices", m);
        }
        pthread_mutex_lock(&c->lock);
        if (g->nxids) {
            json_t *x = json_object();
            char code[24];
            for (size_t k = 0; k < g->nxids; k++) {
                snprintf(code, sizeof(code), "%llu", g->xids[k].code);
                json_object_set_new(x, code, json_integer((json_int_t)g->xids[k].count));
            }
            json_object_set_new(o, "xid_counts", x);
        }
        pthread_mutex_unlock(&c->lock);
        json_array_append_new(gpus, o);
    }
    json_object_set_new(sc->root, "gpus", gpus);
}

static int nvml_sample(void *ctx, struct sample_ctx *sc)
{
    struct nvml_ctx *c = ctx;
    struct expo_label l[3];

    if (!c->up && now_mono_ns() >= c->next_init_ns)
        try_init(c);
    json_object_set_new(sc->root, "nvml",
                        json_pack("{s:b, s:s, s:s, s:s, s:s}", "up", c->up, "reason", c->reason,
                                  "driver_version", c->driver, "nvml_version", c->nvml_version,
                                  "cuda_driver_version", c->cuda_version));
    expo_family(sc->w, "gpufleet_nvml_up", EXPO_GAUGE,
                "Whether NVML is loaded and initialised (0: no GPU metrics, see the agent log).");
    expo_sample(sc->w, NULL, 0, c->up);
    if (!c->up) {
        json_object_set_new(sc->root, "gpus", json_array());
        json_object_set_new(sc->root, "processes", json_array());
        return 0;
    }
    l[0] = (struct expo_label){"driver_version", c->driver};
    l[1] = (struct expo_label){"nvml_version", c->nvml_version};
    l[2] = (struct expo_label){"cuda_driver_version", c->cuda_version};
    expo_family(sc->w, "gpufleet_driver_info", EXPO_GAUGE,
                "NVIDIA driver, NVML and CUDA driver versions.");
    expo_sample(sc->w, l, 3, 1);
    expo_family(sc->w, "gpufleet_gpus", EXPO_GAUGE, "GPUs NVML reports on this host.");
    expo_sample(sc->w, NULL, 0, c->ngpus);
    for (unsigned i = 0; i < c->ngpus; i++)
        read_gpu(c, &c->gpus[i]);
    render_gpu_families(c, sc);
    render_json(c, sc);
    return 0;
}

static void nvml_shutdown(void *ctx)
{
    struct nvml_ctx *c = ctx;

    pthread_mutex_lock(&c->lock);
    c->stop = 1;
    pthread_cond_broadcast(&c->wake);
    pthread_mutex_unlock(&c->lock);
    if (c->slow_running)
        pthread_join(c->slow_thread, NULL);
    if (c->xid_running)
        pthread_join(c->xid_thread, NULL);
    if (c->events)
        CALL(nvmlEventSetFree, c->events);
    if (c->up)
        c->api.nvmlShutdown();
    if (c->loaded)
        nvml_api_unload(&c->api);
    pthread_cond_destroy(&c->wake);
    pthread_mutex_destroy(&c->lock);
    free(c->util_buf);
    free(c);
}

const struct collector collect_nvml = {"nvml", nvml_init, nvml_sample, nvml_shutdown};
