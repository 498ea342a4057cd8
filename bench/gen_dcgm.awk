# Reference data for the store benchmarks: GPUS GPUs x 20 dcgm-exporter
# metrics every second for HOURS hours, with +-3 ms of scrape jitter, as
# Prometheus text with millisecond timestamps (the import format).
# Values behave like a real host: jobs start and stop, utilization follows
# the load, temperatures are integers lagging behind it, power has three
# decimals, the energy counter grows with the power drawn.
# Shapes (issue 18, defect 14): OWN_CLOCK=1 stamps each GPU's samples with
# its own time (its own offset and jitter, as when exporters are scraped or
# pushed separately); LABELS=none drops job and instance, LABELS=per_gpu
# gives each GPU its own instance.
# usage: awk -v GPUS=8 -v HOURS=6 -v T0=ms [-v OWN_CLOCK=1 -v LABELS=none] -f gen_dcgm.awk
BEGIN {
    srand(42)
    n = split("DCGM_FI_DEV_GPU_UTIL DCGM_FI_DEV_MEM_COPY_UTIL DCGM_FI_DEV_ENC_UTIL DCGM_FI_DEV_DEC_UTIL " \
              "DCGM_FI_DEV_FB_FREE DCGM_FI_DEV_FB_USED DCGM_FI_DEV_FB_RESERVED DCGM_FI_DEV_GPU_TEMP " \
              "DCGM_FI_DEV_MEMORY_TEMP DCGM_FI_DEV_POWER_USAGE DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION " \
              "DCGM_FI_DEV_SM_CLOCK DCGM_FI_DEV_MEM_CLOCK DCGM_FI_DEV_PCIE_TX_THROUGHPUT " \
              "DCGM_FI_DEV_PCIE_RX_THROUGHPUT DCGM_FI_DEV_XID_ERRORS DCGM_FI_DEV_PSTATE " \
              "DCGM_FI_DEV_ECC_SBE_VOL_TOTAL DCGM_FI_DEV_ECC_DBE_VOL_TOTAL DCGM_FI_DEV_PCIE_REPLAY_COUNTER", m, " ")
    for (g = 0; g < GPUS; g++) {
        lbl[g] = sprintf("gpu=\"%d\",UUID=\"GPU-5e0c3a5c-%04x-4a1d-9a52-0000000000%02d\",pci_bus_id=\"00000000:%02X:00.0\",device=\"nvidia%d\",modelName=\"NVIDIA H100 80GB HBM3\",Hostname=\"gpu-node-07\"", g, g * 4099, g, 27 + 16 * g, g)
        if (LABELS == "per_gpu")
            lbl[g] = lbl[g] sprintf(",job=\"dcgm\",instance=\"gpu-node-07-%d:9400\"", g)
        else if (LABELS != "none")
            lbl[g] = lbl[g] ",job=\"dcgm\",instance=\"gpu-node-07:9400\""
        busy[g] = rand() < 0.5; until[g] = int(rand() * 1800); util[g] = 0; temp[g] = 34
        energy[g] = int(8e9 + rand() * 1e9); used[g] = 0; sbe[g] = 0; replay[g] = 0
    }
    secs = HOURS * 3600
    for (s = 0; s < secs; s++) {
        ts = T0 + s * 1000 + int(rand() * 7) - 3
        for (g = 0; g < GPUS; g++) {
            gj = int(rand() * 7) - 3 # drawn in every shape: the values stay the same
            if (OWN_CLOCK)
                ts = T0 + s * 1000 + g * 37 + gj
            if (s >= until[g]) {           # a job starts or ends
                busy[g] = !busy[g]
                until[g] = s + 300 + int(rand() * (busy[g] ? 3600 : 900))
                used[g] = busy[g] ? 20000 + int(rand() * 50000) : 0
            }
            target = busy[g] ? 92 + rand() * 8 : 0
            util[g] += (target - util[g]) * 0.3
            u = int(util[g] + (busy[g] ? rand() * 4 - 2 : 0)); if (u < 0) u = 0; if (u > 100) u = 100
            tgt = 34 + util[g] * 0.3
            if (rand() < 0.05) temp[g] += (tgt > temp[g]) - (tgt < temp[g])
            power = sprintf("%.3f", 68 + util[g] * 6.2 + rand() * 4)
            energy[g] += int(power * 1000)
            if (rand() < 0.0001) sbe[g]++
            if (rand() < 0.0003) replay[g]++
            v[1] = u; v[2] = int(u * 0.35); v[3] = 0; v[4] = 0
            v[5] = 81080 - used[g]; v[6] = used[g]; v[7] = 479; v[8] = temp[g]; v[9] = temp[g] + 6
            v[10] = power; v[11] = energy[g]; v[12] = busy[g] ? 1980 - int(rand() * 3) * 15 : 345
            v[13] = 2619; v[14] = busy[g] ? int(200000 + rand() * 60000) : int(rand() * 500)
            v[15] = busy[g] ? int(1800000 + rand() * 400000) : int(rand() * 400)
            v[16] = 0; v[17] = busy[g] ? 0 : 8; v[18] = sbe[g]; v[19] = 0; v[20] = replay[g]
            for (k = 1; k <= n; k++)
                printf "%s{%s} %s %.0f\n", m[k], lbl[g], v[k], ts
        }
    }
}
