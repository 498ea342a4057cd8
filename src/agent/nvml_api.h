/* Every NVML call the agent makes, declared from NVIDIA's public nvml.h (no
 * header is packaged here), and the table they are loaded into with dlsym.
 * The fake libnvidia-ml in tests/fakes implements the same list. */
#ifndef GF_NVML_API_H
#define GF_NVML_API_H

typedef int nvmlReturn_t;
typedef struct nvmlDevice_st *nvmlDevice_t;
typedef struct nvmlEventSet_st *nvmlEventSet_t;

#define NVML_SUCCESS 0
#define NVML_ERROR_UNINITIALIZED 1
#define NVML_ERROR_INVALID_ARGUMENT 2
#define NVML_ERROR_NOT_SUPPORTED 3
#define NVML_ERROR_NO_PERMISSION 4
#define NVML_ERROR_NOT_FOUND 6
#define NVML_DEVICE_MIG_ENABLE 1 /* nvmlDeviceGetMigMode's "enabled" */
#define NVML_ERROR_INSUFFICIENT_SIZE 7
#define NVML_ERROR_DRIVER_NOT_LOADED 9
#define NVML_ERROR_TIMEOUT 10
#define NVML_ERROR_LIBRARY_NOT_FOUND 12
#define NVML_ERROR_FUNCTION_NOT_FOUND 13
#define NVML_ERROR_GPU_IS_LOST 15
#define NVML_ERROR_UNKNOWN 999

#define NVML_DEVICE_UUID_V2_BUFFER_SIZE 96
#define NVML_DEVICE_NAME_V2_BUFFER_SIZE 96
#define NVML_DEVICE_PCI_BUS_ID_BUFFER_SIZE 32
#define NVML_SYSTEM_DRIVER_VERSION_BUFFER_SIZE 80
#define NVML_SYSTEM_NVML_VERSION_BUFFER_SIZE 80

#define NVML_TEMPERATURE_GPU 0
#define NVML_CLOCK_SM 1
#define NVML_CLOCK_MEM 2
#define NVML_PCIE_UTIL_TX_BYTES 0
#define NVML_PCIE_UTIL_RX_BYTES 1
#define NVML_MEMORY_ERROR_TYPE_CORRECTED 0
#define NVML_MEMORY_ERROR_TYPE_UNCORRECTED 1
#define NVML_VOLATILE_ECC 0
#define NVML_AGGREGATE_ECC 1
#define NVML_FI_DEV_MEMORY_TEMP 82
#define NVML_VALUE_TYPE_DOUBLE 0
#define NVML_VALUE_TYPE_UNSIGNED_INT 1
#define NVML_VALUE_TYPE_UNSIGNED_LONG 2
#define NVML_VALUE_TYPE_UNSIGNED_LONG_LONG 3
#define NVML_VALUE_TYPE_SIGNED_LONG_LONG 4
#define NVML_VALUE_TYPE_SIGNED_INT 5
#define nvmlEventTypeXidCriticalError 0x0000000000000008ULL
#define NVML_PSTATE_UNKNOWN 32

typedef struct {
    unsigned int gpu;
    unsigned int memory;
} nvmlUtilization_t;

typedef struct {
    unsigned long long total;
    unsigned long long free;
    unsigned long long used;
} nvmlMemory_t;

typedef struct {
    unsigned int version; /* sizeof(nvmlMemory_v2_t) | 2 << 24 */
    unsigned long long total;
    unsigned long long reserved;
    unsigned long long free;
    unsigned long long used;
} nvmlMemory_v2_t;
#define NVML_MEMORY_V2_VERSION ((unsigned int)(sizeof(nvmlMemory_v2_t) | (2u << 24)))

typedef struct {
    char busIdLegacy[16];
    unsigned int domain;
    unsigned int bus;
    unsigned int device;
    unsigned int pciDeviceId;
    unsigned int pciSubSystemId;
    char busId[NVML_DEVICE_PCI_BUS_ID_BUFFER_SIZE];
} nvmlPciInfo_t;

/* The layout the _v3 process queries fill. */
typedef struct {
    unsigned int pid;
    unsigned long long usedGpuMemory;
    unsigned int gpuInstanceId;
    unsigned int computeInstanceId;
} nvmlProcessInfo_t;

/* One process's utilization over a sampling window (nvmlDeviceGetProcessUtilization). */
typedef struct {
    unsigned int pid;
    unsigned long long timeStamp; /* microseconds */
    unsigned int smUtil, memUtil, encUtil, decUtil;
} nvmlProcessUtilizationSample_t;

typedef struct {
    nvmlDevice_t device;
    unsigned long long eventType;
    unsigned long long eventData;
    unsigned int gpuInstanceId;
    unsigned int computeInstanceId;
} nvmlEventData_t;

typedef union {
    double dVal;
    unsigned int uiVal;
    unsigned long ulVal;
    unsigned long long ullVal;
    signed long long sllVal;
    int siVal;
} nvmlValue_t;

typedef struct {
    unsigned int fieldId;
    unsigned int scopeId;
    long long timestamp;
    long long latencyUsec;
    int valueType;
    nvmlReturn_t nvmlReturn;
    nvmlValue_t value;
} nvmlFieldValue_t;

/* X(name, required, return type, parameter list). Optional entries (0) may be
 * absent from older drivers; the agent then treats them as unsupported. */
#define NVML_FUNCTIONS(X)                                                                          \
    X(nvmlInit_v2, 1, nvmlReturn_t, (void))                                                        \
    X(nvmlShutdown, 1, nvmlReturn_t, (void))                                                       \
    X(nvmlErrorString, 1, const char *, (nvmlReturn_t result))                                     \
    X(nvmlSystemGetDriverVersion, 1, nvmlReturn_t, (char *version, unsigned int length))           \
    X(nvmlSystemGetNVMLVersion, 1, nvmlReturn_t, (char *version, unsigned int length))             \
    X(nvmlSystemGetCudaDriverVersion_v2, 0, nvmlReturn_t, (int *cudaDriverVersion))                \
    X(nvmlDeviceGetCount_v2, 1, nvmlReturn_t, (unsigned int *deviceCount))                         \
    X(nvmlDeviceGetHandleByIndex_v2, 1, nvmlReturn_t, (unsigned int index, nvmlDevice_t *device))  \
    X(nvmlDeviceGetUUID, 1, nvmlReturn_t, (nvmlDevice_t device, char *uuid, unsigned int length))  \
    X(nvmlDeviceGetName, 1, nvmlReturn_t, (nvmlDevice_t device, char *name, unsigned int length))  \
    X(nvmlDeviceGetPciInfo_v3, 1, nvmlReturn_t, (nvmlDevice_t device, nvmlPciInfo_t * pci))        \
    X(nvmlDeviceGetMinorNumber, 0, nvmlReturn_t, (nvmlDevice_t device, unsigned int *minorNumber)) \
    X(nvmlDeviceGetUtilizationRates, 0, nvmlReturn_t,                                              \
      (nvmlDevice_t device, nvmlUtilization_t * utilization))                                      \
    X(nvmlDeviceGetEncoderUtilization, 0, nvmlReturn_t,                                            \
      (nvmlDevice_t device, unsigned int *utilization, unsigned int *samplingPeriodUs))            \
    X(nvmlDeviceGetDecoderUtilization, 0, nvmlReturn_t,                                            \
      (nvmlDevice_t device, unsigned int *utilization, unsigned int *samplingPeriodUs))            \
    X(nvmlDeviceGetMemoryInfo, 0, nvmlReturn_t, (nvmlDevice_t device, nvmlMemory_t * memory))      \
    X(nvmlDeviceGetMemoryInfo_v2, 0, nvmlReturn_t,                                                 \
      (nvmlDevice_t device, nvmlMemory_v2_t * memory))                                             \
    X(nvmlDeviceGetTemperature, 0, nvmlReturn_t,                                                   \
      (nvmlDevice_t device, int sensorType, unsigned int *temp))                                   \
    X(nvmlDeviceGetFieldValues, 0, nvmlReturn_t,                                                   \
      (nvmlDevice_t device, int valuesCount, nvmlFieldValue_t *values))                            \
    X(nvmlDeviceGetPowerUsage, 0, nvmlReturn_t, (nvmlDevice_t device, unsigned int *power))        \
    X(nvmlDeviceGetEnforcedPowerLimit, 0, nvmlReturn_t,                                            \
      (nvmlDevice_t device, unsigned int *limit))                                                  \
    X(nvmlDeviceGetTotalEnergyConsumption, 0, nvmlReturn_t,                                        \
      (nvmlDevice_t device, unsigned long long *energy))                                           \
    X(nvmlDeviceGetClockInfo, 0, nvmlReturn_t,                                                     \
      (nvmlDevice_t device, int type, unsigned int *clock))                                        \
    X(nvmlDeviceGetFanSpeed, 0, nvmlReturn_t, (nvmlDevice_t device, unsigned int *speed))          \
    X(nvmlDeviceGetPcieThroughput, 0, nvmlReturn_t,                                                \
      (nvmlDevice_t device, int counter, unsigned int *value))                                     \
    X(nvmlDeviceGetCurrentClocksEventReasons, 0, nvmlReturn_t,                                     \
      (nvmlDevice_t device, unsigned long long *reasons))                                          \
    X(nvmlDeviceGetCurrentClocksThrottleReasons, 0, nvmlReturn_t,                                  \
      (nvmlDevice_t device, unsigned long long *reasons))                                          \
    X(nvmlDeviceGetTotalEccErrors, 0, nvmlReturn_t,                                                \
      (nvmlDevice_t device, int errorType, int counterType, unsigned long long *eccCounts))        \
    X(nvmlDeviceGetRemappedRows, 0, nvmlReturn_t,                                                  \
      (nvmlDevice_t device, unsigned int *corrRows, unsigned int *uncRows,                         \
       unsigned int *isPending, unsigned int *failureOccurred))                                    \
    X(nvmlDeviceGetPerformanceState, 0, nvmlReturn_t, (nvmlDevice_t device, int *pState))          \
    X(nvmlDeviceGetMigMode, 0, nvmlReturn_t,                                                       \
      (nvmlDevice_t device, unsigned int *currentMode, unsigned int *pendingMode))                 \
    X(nvmlDeviceGetMaxMigDeviceCount, 0, nvmlReturn_t, (nvmlDevice_t device, unsigned int *count)) \
    X(nvmlDeviceGetMigDeviceHandleByIndex, 0, nvmlReturn_t,                                        \
      (nvmlDevice_t device, unsigned int index, nvmlDevice_t *migDevice))                          \
    X(nvmlDeviceGetGpuInstanceId, 0, nvmlReturn_t, (nvmlDevice_t device, unsigned int *id))        \
    X(nvmlDeviceGetComputeInstanceId, 0, nvmlReturn_t, (nvmlDevice_t device, unsigned int *id))    \
    X(nvmlDeviceGetProcessUtilization, 0, nvmlReturn_t,                                            \
      (nvmlDevice_t device, nvmlProcessUtilizationSample_t *utilization,                           \
       unsigned int *processSamplesCount, unsigned long long lastSeenTimeStamp))                   \
    X(nvmlDeviceGetComputeRunningProcesses_v3, 0, nvmlReturn_t,                                    \
      (nvmlDevice_t device, unsigned int *infoCount, nvmlProcessInfo_t *infos))                    \
    X(nvmlDeviceGetGraphicsRunningProcesses_v3, 0, nvmlReturn_t,                                   \
      (nvmlDevice_t device, unsigned int *infoCount, nvmlProcessInfo_t *infos))                    \
    X(nvmlEventSetCreate, 0, nvmlReturn_t, (nvmlEventSet_t * set))                                 \
    X(nvmlDeviceRegisterEvents, 0, nvmlReturn_t,                                                   \
      (nvmlDevice_t device, unsigned long long eventTypes, nvmlEventSet_t set))                    \
    X(nvmlEventSetWait_v2, 0, nvmlReturn_t,                                                        \
      (nvmlEventSet_t set, nvmlEventData_t * data, unsigned int timeoutms))                        \
    X(nvmlEventSetFree, 0, nvmlReturn_t, (nvmlEventSet_t set))

#define NVML_API_FIELD(name, req, ret, params) ret(*name) params;
struct nvml_api {
    void *dl;
    NVML_FUNCTIONS(NVML_API_FIELD)
};
#undef NVML_API_FIELD

/* dlopens path (NULL: "libnvidia-ml.so.1") and resolves every function above.
 * Returns 0, or -1 with the reason in err (library absent, required symbol
 * missing); api is then unusable. */
int nvml_api_load(struct nvml_api *api, const char *path, char *err, size_t errlen);

/* dlcloses the library. */
void nvml_api_unload(struct nvml_api *api);

#endif
