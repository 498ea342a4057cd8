#!/usr/bin/env bash
# Benchmark: PromQL range queries, gpufleet against Prometheus 2.42 on the
# same samples (promtool backfill / the import endpoint) in one run:
# a dashboard's worth of queries (~30, one host's 8 GPUs and node metrics,
# 24 h, step 60 s; budget: total <= 0.5x Prometheus's) and
# avg by (Hostname) (DCGM_FI_DEV_GPU_UTIL) over HOSTS x 8 GPUs (budget 50 ms).
# usage: bench/promql.sh [hosts] [runs]   (default 100 5; BENCH_HOLD=SECONDS
# keeps both up first, to profile by hand)
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
hosts=${1:-100}
runs=${2:-5}
srv=${SERVER:-build/gpufleet}
[ -x "$srv" ] || scripts/build.sh Release > /dev/null
work=$(mktemp -d /tmp/gf-bench-promql.XXXXXX)
pids=()
trap 'kill "${pids[@]}" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"' EXIT
port() { while :; do p=$((10000 + RANDOM % 22000)); (exec 3<>/dev/tcp/127.0.0.1/$p) 2>/dev/null || { echo $p; return; }; done; }
end_ms=$(( ($(date +%s) - 300) / 60 * 60 * 1000 ))
python3 bench/promql_bench.py gen "$work" "$end_ms" "$hosts"
echo "data: $(wc -l < "$work/data.txt") samples"
t0=$(date +%s.%N)
promtool tsdb create-blocks-from openmetrics "$work/data.om" "$work/prom" > "$work/promtool.log"
pp=$(port)
printf 'global: {}\n' > "$work/prometheus.yml"
prometheus --config.file="$work/prometheus.yml" --storage.tsdb.path="$work/prom" --storage.tsdb.retention.time=10y \
    --web.listen-address="127.0.0.1:$pp" > "$work/prometheus.log" 2>&1 &
pids+=($!)
echo "$(printf 'bench-pass-12345')" | "$srv" user add admin --role admin --password-stdin --data "$work/d" > /dev/null
tok=$("$srv" token add admin bench --data "$work/d")
printf 'rate_limit_per_s: 0\n' > "$work/server.yaml"
sp=$(port)
"$srv" serve --listen "127.0.0.1:$sp" --data "$work/d" --config "$work/server.yaml" > "$work/server.log" 2>&1 &
pids+=($!)
wait_http "http://127.0.0.1:$sp/healthz"
for _ in $(seq 1 600); do curl -fsS -o /dev/null "http://127.0.0.1:$pp/-/ready" 2>/dev/null && break; sleep 0.1; done
curl -fsS -H "Authorization: Bearer $tok" --data-binary @"$work/data.txt" "http://127.0.0.1:$sp/api/v1/import/prometheus" > /dev/null
# the import is queued to the writer: checkpoint so every sample is in
curl -fsS -X POST -H "Authorization: Bearer $tok" "http://127.0.0.1:$sp/api/v1/admin/checkpoint" > /dev/null
if [ -n "${BENCH_HOLD:-}" ]; then # profile by hand
    echo "gpufleet http://127.0.0.1:$sp (token $tok, pid ${pids[1]}), prometheus http://127.0.0.1:$pp, end_ms $end_ms"
    sleep "$BENCH_HOLD"
fi
python3 bench/promql_bench.py run "http://127.0.0.1:$pp" "http://127.0.0.1:$sp" "$tok" "$end_ms" "$runs"
