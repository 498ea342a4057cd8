#!/bin/bash
# Compare gpufleet-agent's GPU figures with nvidia-smi on real hardware.
# usage: OUT=DIR scripts/nvidia_smi_compare.sh AGENT_BINARY [LIBDIR]
# Runs the agent beside nvidia-smi, idle and under a torch matmul load, and
# writes both side by side under $OUT (smi.csv, metrics.txt, snapshot.json).
set -u
AGENT=$(realpath "$1"); [ -n "${2:-}" ] && export LD_LIBRARY_PATH=$(realpath "$2")
cd "$(mktemp -d)"

nvidia-smi > $OUT/nvidia-smi.txt 2>&1
nvidia-smi -q > $OUT/nvidia-smi-q.txt 2>&1
"$AGENT" --listen 127.0.0.1:9445 --interval 1000 --slow-interval 1000 --log-level debug > $OUT/agent.log 2>&1 &
AG=$!
sleep 3
Q1=index,uuid,name,driver_version,utilization.gpu,utilization.memory,memory.total,memory.used,memory.free,memory.reserved,temperature.gpu,temperature.memory,power.draw,power.draw.instant,power.draw.average,enforced.power.limit,clocks.sm,clocks.mem,pstate,fan.speed
Q2=index,ecc.errors.corrected.volatile.total,ecc.errors.uncorrected.volatile.total,ecc.errors.corrected.aggregate.total,ecc.errors.uncorrected.aggregate.total,remapped_rows.correctable,remapped_rows.uncorrectable,remapped_rows.pending,remapped_rows.failure,clocks_event_reasons.active,utilization.encoder,utilization.decoder,mig.mode.current,pcie.link.gen.current,pcie.link.width.current
round() {
  echo "### round $1 $(date +%s.%N)" | tee -a $OUT/smi.csv >> $OUT/metrics.txt
  curl -s 127.0.0.1:9445/metrics | grep -E '^(DCGM|gpufleet_(gpu|driver|nvml))' >> $OUT/metrics.txt
  nvidia-smi --query-gpu=$Q1 --format=csv,nounits >> $OUT/smi.csv 2>&1
  nvidia-smi --query-gpu=$Q2 --format=csv,nounits >> $OUT/smi.csv 2>&1
  nvidia-smi --query-compute-apps=pid,process_name,used_memory --format=csv,nounits >> $OUT/smi.csv 2>&1
}
for i in 1 2; do round idle$i; sleep 2; done
PY=/opt/torch/.venv/bin/python3; [ -x $PY ] || PY=python3
$PY - > $OUT/load.log 2>&1 <<'PYEOF' &
import torch, time
a = torch.randn(8192, 8192, device='cuda', dtype=torch.bfloat16)
b = torch.randn(8192, 8192, device='cuda', dtype=torch.bfloat16)
keep = torch.empty(int(20e9) // 2, dtype=torch.bfloat16, device='cuda')
t = time.time()
while time.time() - t < 40:
    c = a @ b
torch.cuda.synchronize()
print("done")
PYEOF
LD=$!
sleep 12
for i in 1 2 3 4; do round load$i; sleep 3; done
wait $LD
sleep 3
round after
curl -s 127.0.0.1:9445/api/v1/snapshot > $OUT/snapshot.json
kill $AG; wait $AG
echo done
