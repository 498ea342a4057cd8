#!/usr/bin/env bash
# Benchmark: the server scraping 500 simulated agents (8 GPUs each) every
# 2 s. One nginx serves a real agent's /metrics body (8 fake H100s) on 500
# loopback ports, so each "agent" costs the machine nothing but its bytes;
# the server's CPU is measured over MEASURE seconds (default 30).
# VictoriaMetrics (-promscrape.config, the same targets and interval) runs
# beside it when installed (VM=0: not), and both RSS are compared per
# active series (medians of readings over the last minute): measure past
# the 5 minutes after which heads seal to see the steady state (MEASURE=330).
# usage: [MEASURE=s] [VM=0] bench/scrape_500_agents.sh [agents]   (needs scripts/deps.sh bench)
set -euo pipefail
cd "$(dirname "$0")/.."

n=${1:-500}
secs=${MEASURE:-30}
srv=build/gpufleet agent=build/gpufleet-agent fake=build/tests/fakes/libnvidia-ml.so.1
[ -x "$srv" ] && [ -x "$agent" ] || { echo "build first: scripts/build.sh Release" >&2; exit 1; }
work=$(mktemp -d /tmp/gf-bench-500.XXXXXX)
chmod 755 "$work"
pids=()
trap 'for p in "${pids[@]}"; do kill $p 2>/dev/null || true; done; wait 2>/dev/null; rm -rf "$work"' EXIT
source bench/lib.sh
hz=$(getconf CLK_TCK)

# one real agent body
ap=$((10000 + RANDOM % 5000))
printf 'gpu h100 count=8\nvary 1\n' > "$work/h100x8.scenario"
FAKE_NVML_SCENARIO=$work/h100x8.scenario "$agent" --listen 127.0.0.1:$ap --nvml-lib "$PWD/$fake" \
    --log-level warn > "$work/agent.log" 2>&1 &
apid=$!
wait_http http://127.0.0.1:$ap/healthz
sleep 1.2
curl -fsS http://127.0.0.1:$ap/metrics -o "$work/metrics"
kill $apid; wait $apid 2>/dev/null || true
gzip -1 -k "$work/metrics"
series=$(grep -vc '^#' "$work/metrics")

base=$((21000 + RANDOM % 10000)) # below the ephemeral range (32768+)
nginx_targets_conf "$work" $base $n "gzip_static on;" > "$work/nginx.conf"
nginx -p "$work" -c "$work/nginx.conf" &
pids+=($!)
wait_http http://127.0.0.1:$base/metrics

sp=$((15000 + RANDOM % 5000))
echo 'bench-root-pass-1' | "$srv" user add admin --role admin --password-stdin --data "$work/data" > /dev/null
tok=$("$srv" token add admin bench --data "$work/data")
H=(-H "Authorization: Bearer $tok")
"$srv" serve --listen 127.0.0.1:$sp --data "$work/data" --agent-interval 2000 --log-level warn \
    > "$work/server.log" 2>&1 &
spid=$!
pids+=($spid)
wait_http http://127.0.0.1:$sp/healthz
for i in $(seq 0 $((n - 1))); do
    printf '{"name":"sim-%03d","address":"127.0.0.1","agent_port":%d}\n' $i $((base + i))
done | while read -r body; do
    curl -fsS "${H[@]}" -o /dev/null -H 'Content-Type: application/json' --data "$body" \
        http://127.0.0.1:$sp/api/v1/servers
done
vm_pid=
if [ "${VM:-1}" = 1 ] && command -v victoria-metrics > /dev/null; then
    vp=$((16000 + RANDOM % 4000))
    {
        echo "scrape_configs:"
        echo "  - job_name: sim"
        echo "    scrape_interval: 2s"
        echo "    static_configs:"
        echo "      - targets:"
        for i in $(seq 0 $((n - 1))); do echo "        - 127.0.0.1:$((base + i))"; done
    } > "$work/vm-scrape.yml"
    victoria-metrics -httpListenAddr=127.0.0.1:$vp -storageDataPath="$work/vm" \
        -promscrape.config="$work/vm-scrape.yml" -retentionPeriod=1d > "$work/vm.log" 2>&1 &
    vm_pid=$!
    pids+=($vm_pid)
    wait_http http://127.0.0.1:$vp/health
fi
sleep 12 # first scrapes spread over the interval, backfill attempts done
appended() { curl -fsS "${H[@]}" http://127.0.0.1:$sp/metrics | awk '$1 == "gpufleet_server_samples_appended_total" { print $2 }'; }
c0=$(cpu_of $spid); s0=$(appended); t0=$(date +%s.%N)
[ -n "$vm_pid" ] && v0=$(cpu_of $vm_pid)
# RSS: the median of readings every 5 s over the measurement's last minute
# (one reading moves ~100 bytes a series with where it falls between the
# heads' seals and the store's minute page trim)
win=$(( secs < 60 ? secs : 60 ))
sleep $(( secs - win ))
: > "$work/rss.txt"
for _ in $(seq 1 $(( win / 5 > 0 ? win / 5 : 1 ))); do
    sleep 5
    printf '%s %s\n' "$(awk '/^VmRSS/ {print $2}' /proc/$spid/status)" \
        "$([ -n "$vm_pid" ] && awk '/^VmRSS/ {print $2}' /proc/$vm_pid/status || echo 0)" >> "$work/rss.txt"
done
c1=$(cpu_of $spid); s1=$(appended); t1=$(date +%s.%N)
[ -n "$vm_pid" ] && v1=$(cpu_of $vm_pid) && vrss=$(awk '{print $2}' "$work/rss.txt" | median)
up=$(curl -fsS "${H[@]}" http://127.0.0.1:$sp/api/v1/targets | jq '[.targets[] | select(.up)] | length')
rss=$(awk '{print $1}' "$work/rss.txt" | median)
curl -fsS "${H[@]}" http://127.0.0.1:$sp/metrics | grep -E '^gpufleet_server_(ingest|write|head|sample_log|series)' || true
curl -fsS "${H[@]}" http://127.0.0.1:$sp/api/v1/targets | jq -c '[.targets[] | select(.up | not) | {instance, last_error}] | .[:3]'
curl -fsS "${H[@]}" http://127.0.0.1:$sp/api/v1/targets | jq -c '[.targets[].last_duration_s] | (add / length) as $avg | {avg_scrape_s: $avg, max: max}'
curl -fsSG "${H[@]}" http://127.0.0.1:$sp/api/v1/export --data-urlencode 'match=up{server="sim-007"}' --data-urlencode "start=$(( $(date +%s) - 20 ))" | awk '{print $NF}' | tr '\n' ' '; echo
echo
echo "$n simulated agents x $series series (8 GPUs) every 2 s; server measured over ${secs}s"
awk -v c=$((c1 - c0)) -v hz=$hz -v a=$t0 -v b=$t1 -v s0=$s0 -v s1=$s1 -v up=$up -v n=$n -v rss=$rss 'BEGIN {
    cores = (c / hz) / (b - a)
    printf "server CPU: %.2f cores (target < 1); samples stored: %.0f/s (expected %.0f/s); targets up: %d/%d; RSS %d MB\n",
        cores, (s1 - s0) / (b - a), n * '"$series"' / 2, up, n, rss / 1024 }'
if [ -n "$vm_pid" ]; then
    vseries=$(curl -fsS http://127.0.0.1:$vp/api/v1/status/tsdb 2>/dev/null | jq -r '.data.totalSeries // empty' || true)
    [ -n "$vseries" ] || vseries=$((n * series))
    awk -v c=$((v1 - v0)) -v hz=$hz -v a=$t0 -v b=$t1 -v rss=$vrss -v grss=$rss -v gs=$((n * series)) -v vs=$vseries 'BEGIN {
        printf "VictoriaMetrics beside it: CPU %.2f cores, RSS %d MB, %d series\n", (c / hz) / (b - a), rss / 1024, vs
        printf "RSS per active series: gpufleet %.0f bytes, VictoriaMetrics %.0f bytes (ratio %.2f; target <= 1)\n",
            grss * 1024 / gs, rss * 1024 / vs, (grss / gs) / (rss / vs) }'
fi
