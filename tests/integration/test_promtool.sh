#!/usr/bin/env bash
# promtool parses the agent's exposition, and finds nothing to remark in the
# gpufleet_* families. DCGM_* and node_* keep the exporters' camelCase names
# for dashboard compatibility, which promtool's style lint flags; those
# remarks are expected and ignored here.
source "$(dirname "$0")/lib.sh"
command -v promtool > /dev/null || fail "promtool missing (scripts/deps.sh test)"

start_agent lint "gpu h100 count=2
gpu l40s
gpu rtx2080s
xid gpu=0 code=79 after_ms=0
process gpu=0 pid=$$ used_mib=100" --interval 200
sleep 1
curl -fsS "$AGENT_URL/metrics" -o "$WORK/m.txt"
promtool check metrics < "$WORK/m.txt" > "$WORK/promtool.out" 2>&1 || true
if grep -q "error while linting" "$WORK/promtool.out"; then
    grep "error while linting" "$WORK/promtool.out"
    fail "promtool could not parse the exposition"
fi
if grep -E '^gpufleet_' "$WORK/promtool.out"; then
    fail "promtool remarks on gpufleet_* families"
fi
grep -q '^gpufleet_gpu_xid_errors_total{' "$WORK/m.txt" || fail "xid family missing"
grep -q '^gpufleet_gpu_process_memory_bytes{' "$WORK/m.txt" || fail "process family missing"
ok "promtool: $(grep -vc '^#' "$WORK/m.txt") series parse; no remarks on gpufleet_*"
