#!/usr/bin/env bash
# Faults the agent must ride out: NVML missing or failing to start (host
# metrics still served), a GPU falling off the bus mid-run, and slow PCIe
# calls on an 8-GPU host while sampling every 100 ms.
source "$(dirname "$0")/lib.sh"

# NVML library absent
port=$(free_port)
"$AGENT" --listen "127.0.0.1:$port" --nvml-lib /nonexistent/libnvidia-ml.so.1 \
    > "$WORK/nolib.log" 2>&1 &
PIDS+=($!)
wait_http "http://127.0.0.1:$port/healthz"
curl -fsS "http://127.0.0.1:$port/metrics" -o "$WORK/nolib.txt"
grep -q '^gpufleet_nvml_up 0$' "$WORK/nolib.txt" || fail "nvml_up should be 0"
grep -q '^node_memory_MemTotal_bytes ' "$WORK/nolib.txt" || fail "host metrics missing"
grep -q 'cannot load /nonexistent/libnvidia-ml.so.1' "$WORK/nolib.log" || fail "reason not logged"
ok "no NVML library: host metrics served, nvml_up 0, reason logged"

# NVML init fails (driver not loaded)
start_agent initfail "init_error 9
gpu h100"
curl -fsS "$AGENT_URL/metrics" -o "$WORK/initfail.txt"
grep -q '^gpufleet_nvml_up 0$' "$WORK/initfail.txt" || fail "nvml_up should be 0"
grep -q '^node_load1 ' "$WORK/initfail.txt" || fail "host metrics missing"
grep -q 'nvmlInit: Driver Not Loaded' "$WORK/initfail.log" || fail "init reason not logged"
ok "NVML init failure: host metrics served, reason logged"

# a GPU is lost mid-run; the others go on
start_agent lost "gpu h100 count=4
lost gpu=2 after_ms=800" --interval 200
sleep 1.5
curl -fsS "$AGENT_URL/metrics" -o "$WORK/lost.txt"
grep -q '^gpufleet_gpu_lost{gpu="2",.*} 1$' "$WORK/lost.txt" || fail "gpu 2 not marked lost"
[ "$(grep -c '^DCGM_FI_DEV_GPU_UTIL{' "$WORK/lost.txt")" = 3 ] || fail "other GPUs stopped"
grep -q 'gpu 2 .*fell off the bus' "$WORK/lost.log" || fail "loss not logged"
ok "lost GPU marked, the other three go on"

# the GPU comes back (a reset): sampled again within a few seconds, counted (issue 18, 16)
printf 'gpu h100 count=4\n' > "$WORK/lost.scenario"
poll_metrics "$AGENT_URL/metrics" "$WORK/back.txt" 80 '^gpufleet_gpu_lost{gpu="2",.*} 0$' \
    || fail "gpu 2 still lost after it came back"
sleep 0.5
curl -fsS "$AGENT_URL/metrics" -o "$WORK/back.txt"
[ "$(grep -c '^DCGM_FI_DEV_GPU_UTIL{' "$WORK/back.txt")" = 4 ] || fail "gpu 2 not sampled again"
grep -q '^gpufleet_gpu_recoveries_total{gpu="2",.*} 1$' "$WORK/back.txt" || fail "recovery not counted"
grep -q 'gpu 2 .*back on the bus' "$WORK/lost.log" || fail "recovery not logged"
ok "a lost GPU that comes back is sampled again without a restart, the recovery counted and logged"

# 8 GPUs whose PCIe calls take 20 ms each, sampled every 100 ms
start_agent slow "gpu h100 count=8
latency pcie_ms=20" --interval 100 --slow-interval 1000
sleep 3
curl -fsS "$AGENT_URL/metrics" -o "$WORK/slow.txt"
samples=$(metric_value "$WORK/slow.txt" 'gpufleet_agent_samples_total ')
late=$(metric_value "$WORK/slow.txt" 'gpufleet_agent_samples_late_total ')
dur=$(metric_value "$WORK/slow.txt" 'gpufleet_agent_sample_duration_seconds ')
echo "samples=$samples late=$late last_duration=${dur}s"
awk -v s="$samples" 'BEGIN { exit !(s >= 25) }' || fail "only $samples samples in 3 s at 100 ms"
awk -v l="$late" -v s="$samples" 'BEGIN { exit !(l <= s * 0.05) }' || fail "$late late samples"
[ "$(grep -c '^DCGM_FI_DEV_PCIE_TX_THROUGHPUT{' "$WORK/slow.txt")" = 8 ] || fail "PCIe missing"
ok "100 ms sampling on 8 GPUs stays on time while PCIe calls take 320 ms a round"
