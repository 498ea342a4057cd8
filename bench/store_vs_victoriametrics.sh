#!/usr/bin/env bash
# Benchmark of the server's store against VictoriaMetrics, side by side in
# one run, on the reference data of bench/gen_dcgm.awk (8 GPUs x 20
# dcgm-exporter metrics x 6 h at 1 s, +-3 ms jitter):
#   - bytes per sample on disk, and import speed of the same text, for both
#     (ROUNDS rounds, medians, the order of the two alternating);
#   - bytes per sample of other shapes of the same samples (SHAPE_HOURS,
#     default 2): each GPU on its own clock, with no job/instance or with
#     an instance per GPU, and one clock with no job/instance (issue 18,
#     defect 14: no shape may cost more than VictoriaMetrics on it);
#   - query latency: 24 h of one series at step 60 s (the 1-minute tier),
#     and /api/v1/latest for 100 hosts x 8 GPUs.
# usage: bench/store_vs_victoriametrics.sh   (needs scripts/deps.sh test)
set -euo pipefail
cd "$(dirname "$0")/.."

rounds=${ROUNDS:-3}
srv=build/gpufleet
[ -x "$srv" ] || { echo "build first: scripts/build.sh Release" >&2; exit 1; }
command -v victoria-metrics > /dev/null || { echo "victoria-metrics missing" >&2; exit 1; }
work=$(mktemp -d /tmp/gf-bench-store.XXXXXX)
pids=()
trap 'for p in "${pids[@]}"; do kill $p 2>/dev/null || true; done; wait 2>/dev/null; rm -rf "$work"' EXIT
port() { echo $((20000 + RANDOM % 20000)); }
source bench/lib.sh
now_s() { date +%s.%N; }

t0=$(( ($(date +%s) - 7 * 3600) * 1000 ))
awk -v GPUS=8 -v HOURS=6 -v T0=$t0 -f bench/gen_dcgm.awk > "$work/6h.prom"
samples=$(wc -l < "$work/6h.prom")
echo "reference data: $samples samples, $(( $(stat -c %s "$work/6h.prom") / 1048576 )) MiB of text"

# an admin and an API token made at the shell before the server starts
gf_token() {
    echo 'bench-root-pass-1' | "$srv" user add admin --role admin --password-stdin --data "$1" > /dev/null
    "$srv" token add admin bench --data "$1"
}

import_gf() {
    local dir=$1 file=${2:-$work/6h.prom} n=${3:-$samples} p tok
    p=$(port)
    tok=$(gf_token "$dir")
    "$srv" serve --listen 127.0.0.1:$p --data "$dir" --log-level warn > "$dir.log" 2>&1 &
    local pid=$!
    wait_http http://127.0.0.1:$p/healthz
    local a b
    a=$(now_s)
    curl -fsS -H "Authorization: Bearer $tok" -X POST -T "$file" http://127.0.0.1:$p/api/v1/import/prometheus > /dev/null
    b=$(now_s)
    kill $pid; wait $pid 2>/dev/null || true  # a clean stop seals the heads
    # users and the audit log are not sample storage
    echo "$(awk -v a=$a -v b=$b -v n=$n 'BEGIN { printf "%.0f", n / (b - a) }') $(du -sb --exclude='auth.db*' --exclude='audit.db*' "$dir" | cut -f1)"
}
import_vm() {
    local dir=$1 file=${2:-$work/6h.prom} n=${3:-$samples} p
    p=$(port)
    victoria-metrics -httpListenAddr=127.0.0.1:$p -storageDataPath="$dir" -retentionPeriod=100y \
        > "$dir.log" 2>&1 &
    local pid=$!
    wait_http http://127.0.0.1:$p/health
    local a b
    a=$(now_s)
    curl -fsS -X POST -T "$file" http://127.0.0.1:$p/api/v1/import/prometheus > /dev/null
    curl -fsS http://127.0.0.1:$p/internal/force_flush > /dev/null
    b=$(now_s)
    # a clean stop writes everything it holds, as ours does; then measure
    kill $pid; wait $pid 2>/dev/null || true
    local size
    size=$(du -sb "$dir" | cut -f1)
    echo "$(awk -v a=$a -v b=$b -v n=$n 'BEGIN { printf "%.0f", n / (b - a) }') $size"
}

: > "$work/gf.txt"; : > "$work/vm.txt"
for r in $(seq 1 "$rounds"); do
    if [ $((r % 2)) = 1 ]; then
        import_gf "$work/gf$r" >> "$work/gf.txt"; import_vm "$work/vm$r" >> "$work/vm.txt"
    else
        import_vm "$work/vm$r" >> "$work/vm.txt"; import_gf "$work/gf$r" >> "$work/gf.txt"
    fi
    echo "round $r: gpufleet $(tail -1 "$work/gf.txt"), VictoriaMetrics $(tail -1 "$work/vm.txt") (samples/s bytes)"
done
gf_rate=$(awk '{print $1}' "$work/gf.txt" | median); vm_rate=$(awk '{print $1}' "$work/vm.txt" | median)
gf_bytes=$(awk '{print $2}' "$work/gf.txt" | median); vm_bytes=$(awk '{print $2}' "$work/vm.txt" | median)
rm -rf "$work"/gf[0-9]* "$work"/vm[0-9]*

# the same samples in other shapes
: > "$work/shapes.txt"
for shape in "own_clock=1 labels=none" "own_clock=1 labels=per_gpu" "own_clock=0 labels=none"; do
    oc=${shape%% *}; oc=${oc#own_clock=}; lb=${shape##*labels=}
    awk -v GPUS=8 -v HOURS="${SHAPE_HOURS:-2}" -v T0=$t0 -v OWN_CLOCK=$oc -v LABELS=$lb \
        -f bench/gen_dcgm.awk > "$work/shape.prom"
    n=$(wc -l < "$work/shape.prom")
    g=$(import_gf "$work/gfs" "$work/shape.prom" $n | awk '{print $2}')
    v=$(import_vm "$work/vms" "$work/shape.prom" $n | awk '{print $2}')
    rm -rf "$work/gfs" "$work/vms" "$work/shape.prom"
    awk -v g=$g -v v=$v -v n=$n -v s="$shape" 'BEGIN {
        printf "shape %-28s bytes/sample: gpufleet %.3f, VictoriaMetrics %.3f (ratio %.2f; target <= 1)\n",
            s, g / n, v / n, g / v }' >> "$work/shapes.txt"
    tail -1 "$work/shapes.txt"
done

# query latency: 24 h of the same data shape
awk -v GPUS=8 -v HOURS=24 -v T0=$(( ($(date +%s) - 25 * 3600) * 1000 )) -f bench/gen_dcgm.awk > "$work/24h.prom"
p=$(port)
tok=$(gf_token "$work/q")
H=(-H "Authorization: Bearer $tok")
"$srv" serve --listen 127.0.0.1:$p --data "$work/q" --log-level warn > "$work/q.log" 2>&1 &
pids+=($!)
wait_http http://127.0.0.1:$p/healthz
curl -fsS "${H[@]}" -X POST -T "$work/24h.prom" http://127.0.0.1:$p/api/v1/import/prometheus > /dev/null
rm -f "$work/24h.prom"
end=$(date +%s); start=$((end - 86400))
q24() { curl -fsS "${H[@]}" -o /dev/null -w '%{time_total}\n' -G http://127.0.0.1:$p/api/v1/query_range \
    --data-urlencode 'match=DCGM_FI_DEV_POWER_USAGE{gpu="3"}' --data-urlencode start=$start \
    --data-urlencode end=$end --data-urlencode step=60; }
points=$(curl -fsS "${H[@]}" -G http://127.0.0.1:$p/api/v1/query_range --data-urlencode 'match=DCGM_FI_DEV_POWER_USAGE{gpu="3"}' \
    --data-urlencode start=$start --data-urlencode end=$end --data-urlencode step=60 | jq '.data.result[0].values | length')
first=$(q24)
for _ in $(seq 1 15); do q24; done > "$work/q24.txt"
q24_ms=$(median < "$work/q24.txt" | awk '{printf "%.2f", $1 * 1000}')
first_ms=$(awk -v t=$first 'BEGIN {printf "%.2f", t * 1000}')

# the fleet's latest values: 100 hosts x 8 GPUs x 20 metrics, one minute each
now=$(date +%s)000
awk -v now=$now 'BEGIN { for (h = 0; h < 100; h++) for (g = 0; g < 8; g++) for (k = 0; k < 20; k++)
    for (s = 0; s < 4; s++) printf "DCGM_FI_DEV_M%02d{gpu=\"%d\",Hostname=\"node-%03d\",job=\"gpufleet-agent\",instance=\"node-%03d:9445\"} %d %.0f\n", k, g, h, h, (h + g + k + s) % 100, now - (4 - s) * 15000 }' \
    > "$work/fleet.prom"
curl -fsS "${H[@]}" -X POST -T "$work/fleet.prom" http://127.0.0.1:$p/api/v1/import/prometheus > /dev/null
latest() { curl -fsS "${H[@]}" -o /dev/null -w '%{time_total}\n' -G http://127.0.0.1:$p/api/v1/latest "$@"; }
for _ in $(seq 1 15); do latest --data-urlencode 'match={job="gpufleet-agent"}'; done > "$work/lat.txt"
lat_ms=$(median < "$work/lat.txt" | awk '{printf "%.2f", $1 * 1000}')
nlat=$(curl -fsS "${H[@]}" -G http://127.0.0.1:$p/api/v1/latest --data-urlencode 'match={job="gpufleet-agent"}' | jq '.data.result | length')
for _ in $(seq 1 15); do latest --data-urlencode 'match=DCGM_FI_DEV_M00{job="gpufleet-agent"}'; done > "$work/lat1.txt"
lat1_ms=$(median < "$work/lat1.txt" | awk '{printf "%.2f", $1 * 1000}')

echo
echo "store: $samples samples (8 GPUs x 20 metrics x 6 h at 1 s), medians of $rounds rounds"
awk -v g=$gf_bytes -v v=$vm_bytes -v n=$samples 'BEGIN {
    printf "bytes/sample on disk: gpufleet %.3f, VictoriaMetrics %.3f (ratio %.2f; target <= 1.0 byte)\n", g / n, v / n, (g / n) / (v / n) }'
awk -v g=$gf_rate -v v=$vm_rate 'BEGIN {
    printf "import: gpufleet %.0f samples/s, VictoriaMetrics %.0f samples/s (ratio %.2f; target >= 1)\n", g, v, g / v }'
cat "$work/shapes.txt"
echo "query 24 h of one series at step 60 s ($points points, 1-minute tier): median ${q24_ms} ms, first (cold) ${first_ms} ms (target < 10 ms)"
echo "latest of the fleet, 100 hosts x 8 GPUs x 20 metrics ($nlat series): median ${lat_ms} ms; one metric ($((nlat / 20)) series): ${lat1_ms} ms (target < 5 ms)"
