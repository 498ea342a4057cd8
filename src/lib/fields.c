/* The table of GPU and host figures (see fields.h). */
#include "fields.h"

#include <string.h>

const struct gpu_field gpu_fields[GM_COUNT] = {
    [GM_GPU_UTIL] = {"DCGM_FI_DEV_GPU_UTIL", "util_percent", "%", "Utilization", EXPO_GAUGE, "GPU utilization (in %).", 1},
    [GM_MEM_UTIL] = {"DCGM_FI_DEV_MEM_COPY_UTIL", "mem_copy_util_percent", "%", "Memory copy utilization", EXPO_GAUGE, "Memory utilization (in %).", 1},
    [GM_ENC_UTIL] = {"DCGM_FI_DEV_ENC_UTIL", "enc_util_percent", "%", "Encoder utilization", EXPO_GAUGE, "Encoder utilization (in %).", 0},
    [GM_DEC_UTIL] = {"DCGM_FI_DEV_DEC_UTIL", "dec_util_percent", "%", "Decoder utilization", EXPO_GAUGE, "Decoder utilization (in %).", 0},
    [GM_FB_FREE] = {"DCGM_FI_DEV_FB_FREE", "fb_free_mib", "MiB", "Memory free", EXPO_GAUGE, "Framebuffer memory free (in MiB).", 0},
    [GM_FB_USED] = {"DCGM_FI_DEV_FB_USED", "fb_used_mib", "MiB", "Memory used", EXPO_GAUGE, "Framebuffer memory used (in MiB).", 1},
    [GM_FB_TOTAL] = {"DCGM_FI_DEV_FB_TOTAL", "fb_total_mib", "MiB", "Memory total", EXPO_GAUGE, "Total framebuffer memory (in MiB).", 1},
    [GM_FB_RESERVED] = {"DCGM_FI_DEV_FB_RESERVED", "fb_reserved_mib", "MiB", "Memory reserved", EXPO_GAUGE, "Framebuffer memory reserved by the driver (in MiB).", 0},
    [GM_GPU_TEMP] = {"DCGM_FI_DEV_GPU_TEMP", "temp_celsius", "°C", "Temperature", EXPO_GAUGE, "GPU temperature (in C).", 1},
    [GM_MEM_TEMP] = {"DCGM_FI_DEV_MEMORY_TEMP", "mem_temp_celsius", "°C", "Memory temperature", EXPO_GAUGE, "Memory temperature (in C).", 1},
    [GM_POWER] = {"DCGM_FI_DEV_POWER_USAGE", "power_watts", "W", "Power draw", EXPO_GAUGE, "Power draw (in W).", 1},
    [GM_POWER_LIMIT] = {"DCGM_FI_DEV_ENFORCED_POWER_LIMIT", "power_limit_watts", "W", "Power limit", EXPO_GAUGE, "Enforced power limit (in W).", 1},
    [GM_ENERGY] = {"DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION", "energy_millijoules_total", "mJ", "Energy", EXPO_COUNTER, "Total energy consumption since boot (in mJ).", 0},
    [GM_SM_CLOCK] = {"DCGM_FI_DEV_SM_CLOCK", "sm_clock_mhz", "MHz", "SM clock", EXPO_GAUGE, "SM clock frequency (in MHz).", 1},
    [GM_MEM_CLOCK] = {"DCGM_FI_DEV_MEM_CLOCK", "mem_clock_mhz", "MHz", "Memory clock", EXPO_GAUGE, "Memory clock frequency (in MHz).", 1},
    [GM_FAN] = {"DCGM_FI_DEV_FAN_SPEED", "fan_percent", "%", "Fan", EXPO_GAUGE, "Fan speed (in %).", 0},
    [GM_PCIE_TX] = {"DCGM_FI_DEV_PCIE_TX_THROUGHPUT", "pcie_tx_kilobytes_per_second", "KB/s", "PCIe transmit", EXPO_GAUGE, "PCIe transmit throughput (in KB/s).", 1},
    [GM_PCIE_RX] = {"DCGM_FI_DEV_PCIE_RX_THROUGHPUT", "pcie_rx_kilobytes_per_second", "KB/s", "PCIe receive", EXPO_GAUGE, "PCIe receive throughput (in KB/s).", 1},
    [GM_CLOCK_REASONS] = {"DCGM_FI_DEV_CLOCK_THROTTLE_REASONS", "clock_event_reasons_mask", "", "Clock event reasons", EXPO_GAUGE, "Current clock event (throttle) reasons, a bitmask.", 0},
    [GM_ECC_SBE_VOL] = {"DCGM_FI_DEV_ECC_SBE_VOL_TOTAL", "ecc_sbe_volatile_total", "errors", "ECC single-bit (volatile)", EXPO_COUNTER, "Total number of single-bit volatile ECC errors.", 0},
    [GM_ECC_DBE_VOL] = {"DCGM_FI_DEV_ECC_DBE_VOL_TOTAL", "ecc_dbe_volatile_total", "errors", "ECC double-bit (volatile)", EXPO_COUNTER, "Total number of double-bit volatile ECC errors.", 0},
    [GM_ECC_SBE_AGG] = {"DCGM_FI_DEV_ECC_SBE_AGG_TOTAL", "ecc_sbe_aggregate_total", "errors", "ECC single-bit (lifetime)", EXPO_COUNTER, "Total number of single-bit persistent ECC errors.", 0},
    [GM_ECC_DBE_AGG] = {"DCGM_FI_DEV_ECC_DBE_AGG_TOTAL", "ecc_dbe_aggregate_total", "errors", "ECC double-bit (lifetime)", EXPO_COUNTER, "Total number of double-bit persistent ECC errors.", 0},
    [GM_REMAP_CORR] = {"DCGM_FI_DEV_CORRECTABLE_REMAPPED_ROWS", "remapped_rows_correctable", "rows", "Remapped rows (correctable)", EXPO_COUNTER, "Number of remapped rows for correctable errors.", 0},
    [GM_REMAP_UNC] = {"DCGM_FI_DEV_UNCORRECTABLE_REMAPPED_ROWS", "remapped_rows_uncorrectable", "rows", "Remapped rows (uncorrectable)", EXPO_COUNTER, "Number of remapped rows for uncorrectable errors.", 0},
    [GM_REMAP_PENDING] = {"DCGM_FI_DEV_ROW_REMAP_PENDING", "remapped_rows_pending", "", "Row remap pending", EXPO_GAUGE, "Whether a row remapping is pending (a reset is needed).", 0},
    [GM_REMAP_FAILURE] = {"DCGM_FI_DEV_ROW_REMAP_FAILURE", "remapped_rows_failure", "", "Row remap failed", EXPO_GAUGE, "Whether remapping of rows has failed.", 0},
    [GM_PSTATE] = {"DCGM_FI_DEV_PSTATE", "pstate", "", "Performance state", EXPO_GAUGE, "Performance state (0 = P0, the highest).", 0},
    [GM_MIG_MODE] = {"DCGM_FI_DEV_MIG_MODE", "mig_mode", "", "MIG mode", EXPO_GAUGE, "Whether MIG mode is enabled.", 0},
    [GM_XID_LAST] = {"DCGM_FI_DEV_XID_ERRORS", "xid_last", "", "Last XID", EXPO_GAUGE, "Value of the last XID error encountered.", 0},
};

const struct host_field host_fields[HF_COUNT] = {
    [HF_CPU] = {"cpu_percent", "%", "CPU"},
    [HF_MEM_USED] = {"mem_used_bytes", "B", "Memory used"},
    [HF_MEM_TOTAL] = {"mem_total_bytes", "B", "Memory total"},
    [HF_DISK_USED] = {"disk_used_bytes", "B", "Disk used"},
    [HF_DISK_TOTAL] = {"disk_total_bytes", "B", "Disk total"},
    [HF_NET_RX] = {"net_rx_bytes_per_second", "B/s", "Network receive"},
    [HF_NET_TX] = {"net_tx_bytes_per_second", "B/s", "Network transmit"},
    [HF_LOAD1] = {"load1", "", "Load (1 min)"},
};

int gpu_field_by_metric(const char *name, size_t len)
{
    for (int i = 0; i < GM_COUNT; i++)
        if (strlen(gpu_fields[i].metric) == len && !memcmp(gpu_fields[i].metric, name, len))
            return i;
    return -1;
}
