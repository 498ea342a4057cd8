/* A fake libnvidia-ml.so.1 for machines without NVIDIA GPUs. It implements
 * the NVML calls listed in src/agent/nvml_api.h with values taken from real
 * nvidia-smi captures, driven by a scenario file (see README.md here). The
 * agent loads it through the same dlopen path as the real library. */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../../src/agent/nvml_api.h"

#define EXPORT __attribute__((visibility("default")))
#define MAXG 64
#define MAXEV 64
#define MAXP 64
#define NA (-1e300) /* marks a field the GPU does not support */

enum field {
    F_UTIL, F_MEM_UTIL, F_ENC, F_DEC, F_FB_TOTAL, F_FB_USED, F_FB_RESERVED, F_TEMP, F_MEM_TEMP,
    F_POWER, F_LIMIT, F_ENERGY, F_SM_CLOCK, F_MEM_CLOCK, F_FAN, F_PSTATE, F_REASONS, F_ECC,
    F_REMAP, F_MIG, F_PCIE_TX, F_PCIE_RX, NFIELDS
};

static const char *field_names[NFIELDS] = {
    "util", "mem_util", "enc", "dec", "fb_total_mib", "fb_used_mib", "fb_reserved_mib", "temp",
    "mem_temp", "power_w", "limit_w", "energy_j", "sm_clock", "mem_clock", "fan", "pstate",
    "reasons", "ecc", "remap", "mig", "pcie_tx", "pcie_rx",
};

struct preset {
    const char *key, *name;
    double f[NFIELDS];
};

/* Values from ../../shared/captures (nvidia-smi under load). */
static const struct preset presets[] = {
    {"h100", "NVIDIA H100 80GB HBM3",
     {100, 11, 0, 0, 81559, 19818, 479, 59, 54, 631.95, 700, 8123456, 1980, 2619, NA, 0, 0, 0, 0,
      0, 259423, 2012109}},
    {"l40s", "NVIDIA L40S",
     {9, 2, 60, 0, 46068, 1235, 609, 54, NA, 110.23, 350, 2345678, 2520, 9001, NA, 0, 0, 0, 0, NA,
      3092, 6346}},
    {"rtx2080s", "NVIDIA GeForce RTX 2080 SUPER",
     {8, 3, 100, 0, 8192, 815, 400, 38, NA, 98.14, 250, NA, 2070, 7500, 38, 2, 0, NA, NA, NA, 439,
      292}},
};

struct fake_gpu {
    int used;
    char name[96], uuid[96], bus[32];
    double f[NFIELDS];
    long lost_after_ms; /* -1: never */
    int registered;
};

/* A MIG device (a GPU instance with its compute instance) of a GPU in MIG
 * mode: its own handle, UUID, name and memory, as the driver reports. */
#define MAXMIG 7 /* an A100/H100 splits into at most 7 */
struct fake_mig {
    int gpu; /* the parent's index; -1: the slot is empty */
    char uuid[96], profile[32];
    unsigned gi, ci;
    double mem_mib;
};

struct fake_event {
    int gpu;
    unsigned long long code;
    long after_ms;
    int delivered;
};

struct fake_proc {
    int gpu;
    unsigned pid;
    unsigned long long used_bytes;
    int graphics;
    int sm_util; /* -1: NVML has no sample of it */
};

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static struct fake_gpu gpus[MAXG];
static int ngpus = -1; /* fixed by the first load: hardware does not come and go */
static struct fake_event events[MAXEV];
static int nevents;
static struct fake_proc procs[MAXP];
static struct fake_mig migs[MAXG][MAXMIG];
static int nprocs;
static char driver[80] = "590.48.01", nvml_ver[80] = "13.590.48.01";
static int cuda = 13010, init_error, vary;
static long pcie_ms, call_us;
static unsigned seed;
static struct timespec started;
static time_t scen_mtime;
static long scen_mtime_ns;
static struct timespec last_check;

static long elapsed_ms(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (now.tv_sec - started.tv_sec) * 1000 + (now.tv_nsec - started.tv_nsec) / 1000000;
}

static void sleep_us(long us)
{
    struct timespec ts = {us / 1000000, (us % 1000000) * 1000};
    while (us > 0 && nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

static const struct preset *find_preset(const char *key)
{
    for (size_t i = 0; i < sizeof(presets) / sizeof(presets[0]); i++)
        if (!strcmp(presets[i].key, key))
            return &presets[i];
    return NULL;
}

static const char *kv(char **toks, int n, const char *key)
{
    size_t kl = strlen(key);
    for (int i = 0; i < n; i++)
        if (!strncmp(toks[i], key, kl) && toks[i][kl] == '=')
            return toks[i] + kl + 1;
    return NULL;
}

static void apply_overrides(struct fake_gpu *g, char **toks, int n)
{
    for (int f = 0; f < NFIELDS; f++) {
        const char *v = kv(toks, n, field_names[f]);
        if (v)
            g->f[f] = !strcmp(v, "na") ? NA : strtod(v, NULL);
    }
    const char *v;
    if ((v = kv(toks, n, "name")))
        snprintf(g->name, sizeof(g->name), "%s", v);
    if ((v = kv(toks, n, "lost_after_ms")))
        g->lost_after_ms = atol(v);
}

/* "3g.40gb,1g.10gb": the GPU goes into MIG mode with those instances; each
 * has the memory its profile names (in GB of 1,000 MiB, as the driver's
 * profiles round). */
static void make_migs(struct fake_gpu *g, int gpu, const char *profiles)
{
    char copy[256], *save = NULL;
    int k = 0;

    snprintf(copy, sizeof(copy), "%s", profiles);
    g->f[F_MIG] = 1;
    for (char *p = strtok_r(copy, ",", &save); p && k < MAXMIG; p = strtok_r(NULL, ",", &save), k++) {
        struct fake_mig *m = &migs[gpu][k];
        const char *dot = strchr(p, '.');
        m->gpu = gpu;
        snprintf(m->profile, sizeof(m->profile), "%s", p);
        m->gi = (unsigned)k + 1;
        m->ci = 0;
        m->mem_mib = dot ? atof(dot + 1) * 1000.0 : 0;
    }
}

/* Parses the scenario. On the first load it also creates the GPUs; later
 * loads (the file changed while running) only update values. */
static void load(const char *path)
{
    FILE *f = path ? fopen(path, "r") : NULL;
    char line[1024];
    int first = ngpus < 0, gi = 0;
    struct fake_gpu fresh[MAXG];

    memset(fresh, 0, sizeof(fresh));
    nevents = nprocs = 0;
    if (!f) {
        if (first) {
            for (int i = 0; i < 2; i++) {
                fresh[i].used = 1;
                memcpy(fresh[i].f, presets[0].f, sizeof(fresh[i].f));
                snprintf(fresh[i].name, sizeof(fresh[i].name), "%s", presets[0].name);
                fresh[i].lost_after_ms = -1;
            }
            gi = 2;
        }
        goto done;
    }
    init_error = 0;
    vary = 0;
    while (fgets(line, sizeof(line), f)) {
        char *toks[32], *save = NULL, *t;
        int n = 0;
        line[strcspn(line, "#\n")] = '\0';
        for (t = strtok_r(line, " \t", &save); t && n < 32; t = strtok_r(NULL, " \t", &save))
            toks[n++] = t;
        if (n == 0)
            continue;
        const char *v;
        if (!strcmp(toks[0], "driver") && n > 1)
            snprintf(driver, sizeof(driver), "%s", toks[1]);
        else if (!strcmp(toks[0], "nvml") && n > 1)
            snprintf(nvml_ver, sizeof(nvml_ver), "%s", toks[1]);
        else if (!strcmp(toks[0], "cuda") && n > 1)
            cuda = atoi(toks[1]);
        else if (!strcmp(toks[0], "init_error") && n > 1)
            init_error = atoi(toks[1]);
        else if (!strcmp(toks[0], "vary"))
            vary = n > 1 ? atoi(toks[1]) : 1;
        else if (!strcmp(toks[0], "seed") && n > 1)
            seed = (unsigned)strtoul(toks[1], NULL, 0);
        else if (!strcmp(toks[0], "latency")) {
            if ((v = kv(toks, n, "pcie_ms")))
                pcie_ms = atol(v);
            if ((v = kv(toks, n, "call_us")))
                call_us = atol(v);
        } else if (!strcmp(toks[0], "gpu") && n > 1) {
            const struct preset *p = find_preset(toks[1]);
            int count = (v = kv(toks, n, "count")) ? atoi(v) : 1;
            if (!p)
                continue;
            for (int k = 0; k < count && gi < MAXG; k++, gi++) {
                fresh[gi].used = 1;
                memcpy(fresh[gi].f, p->f, sizeof(fresh[gi].f));
                snprintf(fresh[gi].name, sizeof(fresh[gi].name), "%s", p->name);
                fresh[gi].lost_after_ms = -1;
                apply_overrides(&fresh[gi], toks + 2, n - 2);
            }
        } else if (!strcmp(toks[0], "mig") && first && (v = kv(toks, n, "gpu"))) {
            /* fixed at the first load, like the GPUs themselves */
            int i = atoi(v);
            const char *p = kv(toks, n, "profiles");
            if (i >= 0 && i < gi && p)
                make_migs(&fresh[i], i, p);
        } else if (!strcmp(toks[0], "set") && (v = kv(toks, n, "gpu"))) {
            int i = atoi(v);
            if (i >= 0 && i < gi)
                apply_overrides(&fresh[i], toks + 1, n - 1);
        } else if (!strcmp(toks[0], "xid") && nevents < MAXEV) {
            events[nevents].gpu = (v = kv(toks, n, "gpu")) ? atoi(v) : 0;
            events[nevents].code = (v = kv(toks, n, "code")) ? strtoull(v, NULL, 10) : 79;
            events[nevents].after_ms = (v = kv(toks, n, "after_ms")) ? atol(v) : 0;
            events[nevents].delivered = 0;
            nevents++;
        } else if (!strcmp(toks[0], "lost") && (v = kv(toks, n, "gpu"))) {
            int i = atoi(v);
            const char *a = kv(toks, n, "after_ms");
            if (i >= 0 && i < gi)
                fresh[i].lost_after_ms = a ? atol(a) : 0;
        } else if (!strcmp(toks[0], "process") && nprocs < MAXP) {
            procs[nprocs].gpu = (v = kv(toks, n, "gpu")) ? atoi(v) : 0;
            procs[nprocs].pid = (v = kv(toks, n, "pid")) ? (unsigned)atol(v) : 1;
            procs[nprocs].used_bytes =
                ((v = kv(toks, n, "used_mib")) ? strtoull(v, NULL, 10) : 0) * 1048576ULL;
            procs[nprocs].graphics = (v = kv(toks, n, "type")) && !strcmp(v, "graphics");
            procs[nprocs].sm_util = (v = kv(toks, n, "sm_util")) ? atoi(v) : -1;
            nprocs++;
        }
    }
    fclose(f);
done:
    if (first) {
        ngpus = gi;
        for (int i = 0; i < gi; i++) {
            gpus[i] = fresh[i];
            snprintf(gpus[i].uuid, sizeof(gpus[i].uuid), "GPU-%08x-5e1f-4c1d-9a52-%012x",
                     0xfa4e0000u + seed, (unsigned)i + 1);
            snprintf(gpus[i].bus, sizeof(gpus[i].bus), "00000000:%02X:00.0", 0x1b + 0x10 * i);
            for (int k = 0; k < MAXMIG; k++)
                if (migs[i][k].profile[0])
                    snprintf(migs[i][k].uuid, sizeof(migs[i][k].uuid),
                             "MIG-%08x-5e1f-4c1d-9a52-%012x", 0xfa4e0000u + seed,
                             (unsigned)(i + 1) * 256 + (unsigned)k + 1);
                else
                    migs[i][k].gpu = -1;
        }
    } else {
        for (int i = 0; i < ngpus && i < gi; i++) {
            memcpy(gpus[i].f, fresh[i].f, sizeof(gpus[i].f));
            if (migs[i][0].profile[0]) /* MIG was set at the first load */
                gpus[i].f[F_MIG] = 1;
            gpus[i].lost_after_ms = fresh[i].lost_after_ms;
        }
    }
}

/* Re-reads the scenario when its file changed (checked every 50 ms at most),
 * so a test can change what the "hardware" reports while the agent runs. */
static void refresh(void)
{
    const char *path = getenv("FAKE_NVML_SCENARIO");
    struct stat st;
    struct timespec now;

    clock_gettime(CLOCK_MONOTONIC, &now);
    if (ngpus >= 0 && (now.tv_sec - last_check.tv_sec) * 1000 +
                              (now.tv_nsec - last_check.tv_nsec) / 1000000 < 50)
        return;
    last_check = now;
    if (ngpus < 0) {
        if (path && stat(path, &st) == 0) {
            scen_mtime = st.st_mtim.tv_sec;
            scen_mtime_ns = st.st_mtim.tv_nsec;
        }
        load(path);
        return;
    }
    if (!path || stat(path, &st) < 0)
        return;
    if (st.st_mtim.tv_sec == scen_mtime && st.st_mtim.tv_nsec == scen_mtime_ns)
        return;
    scen_mtime = st.st_mtim.tv_sec;
    scen_mtime_ns = st.st_mtim.tv_nsec;
    load(path);
}

/* Looks up a device under the lock; returns its index or a negative NVML error. */
static int dev_index(nvmlDevice_t d)
{
    struct fake_gpu *g = (struct fake_gpu *)d;
    if (g < gpus || g >= gpus + (ngpus > 0 ? ngpus : 0))
        return -NVML_ERROR_INVALID_ARGUMENT;
    if (g->lost_after_ms >= 0 && elapsed_ms() >= g->lost_after_ms)
        return -NVML_ERROR_GPU_IS_LOST;
    return (int)(g - gpus);
}

/* Current value of a field, with drift when the scenario asks for it. */
static double value(int i, enum field f)
{
    double v = gpus[i].f[f];
    double t = elapsed_ms() / 1000.0;
    if (v == NA || !vary)
        return v;
    switch (f) {
    case F_UTIL:
        v = v * (0.6 + 0.4 * sin(t / 3.0 + i));
        return v < 0 ? 0 : v > 100 ? 100 : floor(v);
    case F_TEMP:
        return floor(v + 3 * sin(t / 7.0 + i));
    case F_POWER:
        return v * (0.85 + 0.15 * sin(t / 3.0 + i));
    default:
        return v;
    }
}

#define ENTER(d, idx)                                                                              \
    int idx;                                                                                       \
    if (call_us)                                                                                   \
        sleep_us(call_us);                                                                         \
    pthread_mutex_lock(&mu);                                                                       \
    refresh();                                                                                     \
    idx = dev_index(d);                                                                            \
    if (idx < 0) {                                                                                 \
        pthread_mutex_unlock(&mu);                                                                 \
        return -idx;                                                                               \
    }
#define LEAVE(rc)                                                                                  \
    do {                                                                                           \
        pthread_mutex_unlock(&mu);                                                                 \
        return (rc);                                                                               \
    } while (0)
#define FIELD(idx, f, dst)                                                                         \
    do {                                                                                           \
        double v_ = value(idx, f);                                                                 \
        if (v_ == NA)                                                                              \
            LEAVE(NVML_ERROR_NOT_SUPPORTED);                                                       \
        *(dst) = v_;                                                                               \
    } while (0)

EXPORT nvmlReturn_t nvmlInit_v2(void)
{
    pthread_mutex_lock(&mu);
    if (ngpus < 0)
        clock_gettime(CLOCK_MONOTONIC, &started);
    refresh();
    pthread_mutex_unlock(&mu);
    return init_error;
}

EXPORT nvmlReturn_t nvmlShutdown(void)
{
    return NVML_SUCCESS;
}

EXPORT const char *nvmlErrorString(nvmlReturn_t r)
{
    switch (r) {
    case NVML_SUCCESS: return "Success";
    case NVML_ERROR_NOT_SUPPORTED: return "Not Supported";
    case NVML_ERROR_DRIVER_NOT_LOADED: return "Driver Not Loaded";
    case NVML_ERROR_GPU_IS_LOST: return "GPU is lost";
    case NVML_ERROR_TIMEOUT: return "Timeout";
    case NVML_ERROR_INVALID_ARGUMENT: return "Invalid Argument";
    case NVML_ERROR_INSUFFICIENT_SIZE: return "Insufficient Size";
    default: return "Unknown Error";
    }
}

EXPORT nvmlReturn_t nvmlSystemGetDriverVersion(char *v, unsigned int len)
{
    snprintf(v, len, "%s", driver);
    return NVML_SUCCESS;
}

EXPORT nvmlReturn_t nvmlSystemGetNVMLVersion(char *v, unsigned int len)
{
    snprintf(v, len, "%s", nvml_ver);
    return NVML_SUCCESS;
}

EXPORT nvmlReturn_t nvmlSystemGetCudaDriverVersion_v2(int *v)
{
    *v = cuda;
    return NVML_SUCCESS;
}

EXPORT nvmlReturn_t nvmlDeviceGetCount_v2(unsigned int *count)
{
    pthread_mutex_lock(&mu);
    refresh();
    *count = (unsigned)ngpus;
    pthread_mutex_unlock(&mu);
    return NVML_SUCCESS;
}

EXPORT nvmlReturn_t nvmlDeviceGetHandleByIndex_v2(unsigned int index, nvmlDevice_t *d)
{
    pthread_mutex_lock(&mu);
    if ((int)index >= ngpus) {
        pthread_mutex_unlock(&mu);
        return NVML_ERROR_INVALID_ARGUMENT;
    }
    *d = (nvmlDevice_t)&gpus[index];
    pthread_mutex_unlock(&mu);
    return NVML_SUCCESS;
}

/* The MIG device d is, or NULL (d is a GPU, or nothing). */
static struct fake_mig *mig_of(nvmlDevice_t d)
{
    struct fake_mig *m = (struct fake_mig *)d;
    if (m < &migs[0][0] || m >= &migs[MAXG - 1][MAXMIG - 1] + 1 || !m->profile[0])
        return NULL;
    return m;
}

EXPORT nvmlReturn_t nvmlDeviceGetMaxMigDeviceCount(nvmlDevice_t d, unsigned int *count)
{
    ENTER(d, i);
    if (value(i, F_MIG) == NA)
        LEAVE(NVML_ERROR_NOT_SUPPORTED);
    *count = value(i, F_MIG) > 0 ? MAXMIG : 0;
    LEAVE(NVML_SUCCESS);
}

EXPORT nvmlReturn_t nvmlDeviceGetMigDeviceHandleByIndex(nvmlDevice_t d, unsigned int index,
                                                         nvmlDevice_t *mig)
{
    ENTER(d, i);
    if (value(i, F_MIG) <= 0)
        LEAVE(NVML_ERROR_INVALID_ARGUMENT); /* not in MIG mode */
    if (index >= MAXMIG || !migs[i][index].profile[0])
        LEAVE(NVML_ERROR_NOT_FOUND);
    *mig = (nvmlDevice_t)&migs[i][index];
    LEAVE(NVML_SUCCESS);
}

/* A MIG device's own calls: under the lock, as the GPUs' */
#define MIG_ENTER(d, m)                                                                            \
    pthread_mutex_lock(&mu);                                                                       \
    struct fake_mig *m = mig_of(d)

EXPORT nvmlReturn_t nvmlDeviceGetGpuInstanceId(nvmlDevice_t d, unsigned int *id)
{
    MIG_ENTER(d, m);
    if (!m)
        LEAVE(NVML_ERROR_NOT_SUPPORTED);
    *id = m->gi;
    LEAVE(NVML_SUCCESS);
}

EXPORT nvmlReturn_t nvmlDeviceGetComputeInstanceId(nvmlDevice_t d, unsigned int *id)
{
    MIG_ENTER(d, m);
    if (!m)
        LEAVE(NVML_ERROR_NOT_SUPPORTED);
    *id = m->ci;
    LEAVE(NVML_SUCCESS);
}

EXPORT nvmlReturn_t nvmlDeviceGetUUID(nvmlDevice_t d, char *uuid, unsigned int len)
{
    {
        MIG_ENTER(d, m);
        if (m) {
            snprintf(uuid, len, "%s", m->uuid);
            LEAVE(NVML_SUCCESS);
        }
        pthread_mutex_unlock(&mu);
    }
    ENTER(d, i);
    snprintf(uuid, len, "%s", gpus[i].uuid);
    LEAVE(NVML_SUCCESS);
}

EXPORT nvmlReturn_t nvmlDeviceGetName(nvmlDevice_t d, char *name, unsigned int len)
{
    {
        MIG_ENTER(d, m);
        if (m) {
            /* the driver's own form: "NVIDIA A100-SXM4-80GB MIG 1g.10gb" */
            snprintf(name, len, "%s MIG %s", gpus[m->gpu].name, m->profile);
            LEAVE(NVML_SUCCESS);
        }
        pthread_mutex_unlock(&mu);
    }
    ENTER(d, i);
    snprintf(name, len, "%s", gpus[i].name);
    LEAVE(NVML_SUCCESS);
}

EXPORT nvmlReturn_t nvmlDeviceGetPciInfo_v3(nvmlDevice_t d, nvmlPciInfo_t *pci)
{
    ENTER(d, i);
    memset(pci, 0, sizeof(*pci));
    snprintf(pci->busId, sizeof(pci->busId), "%s", gpus[i].bus);
    snprintf(pci->busIdLegacy, sizeof(pci->busIdLegacy), "%s", gpus[i].bus + 4);
    pci->bus = (unsigned)(0x1b + 0x10 * i);
    LEAVE(NVML_SUCCESS);
}

EXPORT nvmlReturn_t nvmlDeviceGetMinorNumber(nvmlDevice_t d, unsigned int *minor)
{
    ENTER(d, i);
    *minor = (unsigned)i;
    LEAVE(NVML_SUCCESS);
}

EXPORT nvmlReturn_t nvmlDeviceGetUtilizationRates(nvmlDevice_t d, nvmlUtilization_t *u)
{
    double a, b;
    ENTER(d, i);
    FIELD(i, F_UTIL, &a);
    FIELD(i, F_MEM_UTIL, &b);
    u->gpu = (unsigned)a;
    u->memory = (unsigned)b;
    LEAVE(NVML_SUCCESS);
}

EXPORT nvmlReturn_t nvmlDeviceGetEncoderUtilization(nvmlDevice_t d, unsigned *u, unsigned *p)
{
    double a;
    ENTER(d, i);
    FIELD(i, F_ENC, &a);
    *u = (unsigned)a;
    *p = 167000;
    LEAVE(NVML_SUCCESS);
}

EXPORT nvmlReturn_t nvmlDeviceGetDecoderUtilization(nvmlDevice_t d, unsigned *u, unsigned *p)
{
    double a;
    ENTER(d, i);
    FIELD(i, F_DEC, &a);
    *u = (unsigned)a;
    *p = 167000;
    LEAVE(NVML_SUCCESS);
}

static void memory_of(int i, unsigned long long *total, unsigned long long *reserved,
                      unsigned long long *used)
{
    /* fractions of a MiB allowed, as real memory use is not MiB-aligned */
    *total = (unsigned long long)(value(i, F_FB_TOTAL) * 1048576.0);
    *reserved = (unsigned long long)(value(i, F_FB_RESERVED) * 1048576.0);
    *used = (unsigned long long)(value(i, F_FB_USED) * 1048576.0);
}

EXPORT nvmlReturn_t nvmlDeviceGetMemoryInfo(nvmlDevice_t d, nvmlMemory_t *m)
{
    unsigned long long total, reserved, used;
    {
        MIG_ENTER(d, g);
        if (g) {
            m->total = (unsigned long long)(g->mem_mib * 1048576.0);
            m->used = 0;
            m->free = m->total;
            LEAVE(NVML_SUCCESS);
        }
        pthread_mutex_unlock(&mu);
    }
    ENTER(d, i);
    memory_of(i, &total, &reserved, &used);
    /* v1 counts the driver's reservation as used, as the real library does */
    m->total = total;
    m->used = used + reserved;
    m->free = total - m->used;
    LEAVE(NVML_SUCCESS);
}

EXPORT nvmlReturn_t nvmlDeviceGetMemoryInfo_v2(nvmlDevice_t d, nvmlMemory_v2_t *m)
{
    unsigned long long total, reserved, used;
    ENTER(d, i);
    if (m->version != NVML_MEMORY_V2_VERSION)
        LEAVE(25); /* NVML_ERROR_ARGUMENT_VERSION_MISMATCH */
    memory_of(i, &total, &reserved, &used);
    m->total = total;
    m->reserved = reserved;
    m->used = used;
    m->free = total - reserved - used;
    LEAVE(NVML_SUCCESS);
}

EXPORT nvmlReturn_t nvmlDeviceGetTemperature(nvmlDevice_t d, int sensor, unsigned *t)
{
    double a;
    ENTER(d, i);
    if (sensor != NVML_TEMPERATURE_GPU)
        LEAVE(NVML_ERROR_INVALID_ARGUMENT);
    FIELD(i, F_TEMP, &a);
    *t = (unsigned)a;
    LEAVE(NVML_SUCCESS);
}

EXPORT nvmlReturn_t nvmlDeviceGetFieldValues(nvmlDevice_t d, int count, nvmlFieldValue_t *vals)
{
    ENTER(d, i);
    for (int k = 0; k < count; k++) {
        double t = value(i, F_MEM_TEMP);
        if (vals[k].fieldId != NVML_FI_DEV_MEMORY_TEMP || t == NA) {
            vals[k].nvmlReturn = NVML_ERROR_NOT_SUPPORTED;
            continue;
        }
        vals[k].nvmlReturn = NVML_SUCCESS;
        vals[k].valueType = NVML_VALUE_TYPE_UNSIGNED_INT;
        vals[k].value.uiVal = (unsigned)t;
    }
    LEAVE(NVML_SUCCESS);
}

EXPORT nvmlReturn_t nvmlDeviceGetPowerUsage(nvmlDevice_t d, unsigned *mw)
{
    double a;
    ENTER(d, i);
    FIELD(i, F_POWER, &a);
    *mw = (unsigned)llround(a * 1000.0);
    LEAVE(NVML_SUCCESS);
}

EXPORT nvmlReturn_t nvmlDeviceGetEnforcedPowerLimit(nvmlDevice_t d, unsigned *mw)
{
    double a;
    ENTER(d, i);
    FIELD(i, F_LIMIT, &a);
    *mw = (unsigned)llround(a * 1000.0);
    LEAVE(NVML_SUCCESS);
}

EXPORT nvmlReturn_t nvmlDeviceGetTotalEnergyConsumption(nvmlDevice_t d, unsigned long long *mj)
{
    double base, w;
    ENTER(d, i);
    FIELD(i, F_ENERGY, &base);
    w = gpus[i].f[F_POWER] == NA ? 0 : gpus[i].f[F_POWER];
    /* base is in joules; the counter grows with the power drawn since init */
    *mj = (unsigned long long)(base * 1000.0 + w * (double)elapsed_ms());
    LEAVE(NVML_SUCCESS);
}

EXPORT nvmlReturn_t nvmlDeviceGetClockInfo(nvmlDevice_t d, int type, unsigned *mhz)
{
    double a;
    ENTER(d, i);
    if (type == NVML_CLOCK_SM)
        FIELD(i, F_SM_CLOCK, &a);
    else if (type == NVML_CLOCK_MEM)
        FIELD(i, F_MEM_CLOCK, &a);
    else
        LEAVE(NVML_ERROR_NOT_SUPPORTED);
    *mhz = (unsigned)a;
    LEAVE(NVML_SUCCESS);
}

EXPORT nvmlReturn_t nvmlDeviceGetFanSpeed(nvmlDevice_t d, unsigned *pct)
{
    double a;
    ENTER(d, i);
    FIELD(i, F_FAN, &a);
    *pct = (unsigned)a;
    LEAVE(NVML_SUCCESS);
}

EXPORT nvmlReturn_t nvmlDeviceGetPcieThroughput(nvmlDevice_t d, int counter, unsigned *kbs)
{
    double a;
    /* the real call samples a 20 ms window; the scenario says how long */
    if (pcie_ms)
        sleep_us(pcie_ms * 1000);
    ENTER(d, i);
    FIELD(i, counter == NVML_PCIE_UTIL_TX_BYTES ? F_PCIE_TX : F_PCIE_RX, &a);
    *kbs = (unsigned)a;
    LEAVE(NVML_SUCCESS);
}

EXPORT nvmlReturn_t nvmlDeviceGetCurrentClocksEventReasons(nvmlDevice_t d,
                                                           unsigned long long *reasons)
{
    double a;
    ENTER(d, i);
    FIELD(i, F_REASONS, &a);
    *reasons = (unsigned long long)a;
    LEAVE(NVML_SUCCESS);
}

EXPORT nvmlReturn_t nvmlDeviceGetCurrentClocksThrottleReasons(nvmlDevice_t d,
                                                              unsigned long long *reasons)
{
    return nvmlDeviceGetCurrentClocksEventReasons(d, reasons);
}

EXPORT nvmlReturn_t nvmlDeviceGetTotalEccErrors(nvmlDevice_t d, int type, int counter,
                                                unsigned long long *count)
{
    double a;
    ENTER(d, i);
    FIELD(i, F_ECC, &a);
    /* the ecc value counts single-bit errors; double-bit stay 0 unless set */
    *count = type == NVML_MEMORY_ERROR_TYPE_CORRECTED ? (unsigned long long)a : 0;
    (void)counter;
    LEAVE(NVML_SUCCESS);
}

EXPORT nvmlReturn_t nvmlDeviceGetRemappedRows(nvmlDevice_t d, unsigned *corr, unsigned *unc,
                                              unsigned *pending, unsigned *failure)
{
    double a;
    ENTER(d, i);
    FIELD(i, F_REMAP, &a);
    *corr = (unsigned)a;
    *unc = 0;
    *pending = 0;
    *failure = 0;
    LEAVE(NVML_SUCCESS);
}

EXPORT nvmlReturn_t nvmlDeviceGetPerformanceState(nvmlDevice_t d, int *p)
{
    double a;
    ENTER(d, i);
    FIELD(i, F_PSTATE, &a);
    *p = (int)a;
    LEAVE(NVML_SUCCESS);
}

EXPORT nvmlReturn_t nvmlDeviceGetMigMode(nvmlDevice_t d, unsigned *cur, unsigned *pending)
{
    double a;
    ENTER(d, i);
    FIELD(i, F_MIG, &a);
    *cur = *pending = (unsigned)a;
    LEAVE(NVML_SUCCESS);
}

static nvmlReturn_t running(nvmlDevice_t d, unsigned *count, nvmlProcessInfo_t *infos,
                            int graphics)
{
    unsigned n = 0, cap = *count;
    ENTER(d, i);
    for (int k = 0; k < nprocs; k++) {
        if (procs[k].gpu != i || procs[k].graphics != graphics)
            continue;
        if (n < cap && infos)
            infos[n] = (nvmlProcessInfo_t){procs[k].pid, procs[k].used_bytes, 0xffffffffu,
                                           0xffffffffu};
        n++;
    }
    *count = n;
    LEAVE(n > cap ? NVML_ERROR_INSUFFICIENT_SIZE : NVML_SUCCESS);
}

EXPORT nvmlReturn_t nvmlDeviceGetComputeRunningProcesses_v3(nvmlDevice_t d, unsigned *count,
                                                            nvmlProcessInfo_t *infos)
{
    return running(d, count, infos, 0);
}

EXPORT nvmlReturn_t nvmlDeviceGetGraphicsRunningProcesses_v3(nvmlDevice_t d, unsigned *count,
                                                             nvmlProcessInfo_t *infos)
{
    return running(d, count, infos, 1);
}

static int the_set;

/* As the driver: the samples newer than lastSeen, one per process that has
 * one (NOT_FOUND when none), timestamped now. */
EXPORT nvmlReturn_t nvmlDeviceGetProcessUtilization(nvmlDevice_t d, nvmlProcessUtilizationSample_t *u,
                                                     unsigned int *count, unsigned long long last_seen)
{
    struct timespec now;
    unsigned n = 0, cap = *count;
    ENTER(d, i);
    clock_gettime(CLOCK_REALTIME, &now);
    unsigned long long ts = (unsigned long long)now.tv_sec * 1000000ULL + (unsigned long long)now.tv_nsec / 1000;
    for (int k = 0; k < nprocs; k++) {
        if (procs[k].gpu != i || procs[k].sm_util < 0 || ts <= last_seen)
            continue;
        if (u && n < cap)
            u[n] = (nvmlProcessUtilizationSample_t){procs[k].pid, ts, (unsigned)procs[k].sm_util, 0, 0, 0};
        n++;
    }
    *count = n;
    if (!n)
        LEAVE(NVML_ERROR_NOT_FOUND);
    LEAVE(!u || n > cap ? NVML_ERROR_INSUFFICIENT_SIZE : NVML_SUCCESS);
}

EXPORT nvmlReturn_t nvmlEventSetCreate(nvmlEventSet_t *set)
{
    *set = (nvmlEventSet_t)&the_set;
    return NVML_SUCCESS;
}

EXPORT nvmlReturn_t nvmlDeviceRegisterEvents(nvmlDevice_t d, unsigned long long types,
                                             nvmlEventSet_t set)
{
    ENTER(d, i);
    (void)set;
    if (types & nvmlEventTypeXidCriticalError)
        gpus[i].registered = 1;
    LEAVE(NVML_SUCCESS);
}

EXPORT nvmlReturn_t nvmlEventSetWait_v2(nvmlEventSet_t set, nvmlEventData_t *data,
                                        unsigned int timeoutms)
{
    long waited = 0;
    (void)set;
    for (;;) {
        pthread_mutex_lock(&mu);
        refresh();
        long now = elapsed_ms();
        for (int k = 0; k < nevents; k++) {
            struct fake_event *e = &events[k];
            if (e->delivered || now < e->after_ms || e->gpu < 0 || e->gpu >= ngpus ||
                !gpus[e->gpu].registered)
                continue;
            e->delivered = 1;
            memset(data, 0, sizeof(*data));
            data->device = (nvmlDevice_t)&gpus[e->gpu];
            data->eventType = nvmlEventTypeXidCriticalError;
            data->eventData = e->code;
            data->gpuInstanceId = data->computeInstanceId = 0xffffffffu;
            pthread_mutex_unlock(&mu);
            return NVML_SUCCESS;
        }
        /* sleep until the next event is due or the timeout ends, as the
         * real call blocks in the kernel without spinning */
        long next = -1;
        for (int k = 0; k < nevents; k++)
            if (!events[k].delivered && (next < 0 || events[k].after_ms < next))
                next = events[k].after_ms;
        pthread_mutex_unlock(&mu);
        if (waited >= (long)timeoutms)
            return NVML_ERROR_TIMEOUT;
        long step = (long)timeoutms - waited;
        if (next >= 0 && next - now < step)
            step = next - now < 1 ? 1 : next - now;
        if (step > 100) /* notice scenario changes (new events) within 100 ms */
            step = 100;
        sleep_us(step * 1000);
        waited += step;
    }
}

EXPORT nvmlReturn_t nvmlEventSetFree(nvmlEventSet_t set)
{
    (void)set;
    return NVML_SUCCESS;
}
