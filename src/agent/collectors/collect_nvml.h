/* NVIDIA GPUs through NVML: dcgm-exporter's metric names and labels where it
 * has them, gpufleet_gpu_* where it has none. */
#ifndef GF_COLLECT_NVML_H
#define GF_COLLECT_NVML_H

/* Meaning of a well-known XID code, or NULL. */
const char *nvml_xid_description(unsigned long long xid);

#endif
