#!/usr/bin/env bash
# Benchmark: the web UI in Debian's chromium against a real fleet of
# HOSTS agents (8 fake H100s each, values drifting every sample) scraped
# every second by one server, so every host sends a delta every second.
# Measures (web/tests/bench.mjs, medians): the JavaScript's gzipped size,
# first load to a drawn overview, main-thread time per fleet update (CDP's
# ThreadTime over whole seconds: the CPU of everything the page's main
# thread did), and a 30-day chart of one GPU metric (imported first) from
# the click on "30d" to drawn. Budgets (issue 5): 150 KB, 1 s, 16 ms,
# 100 ms; each printed as measured / budget and ratio.
# usage: bench/ui.sh [hosts] [runs]   (default 100 5; BENCH_HOLD=SECONDS keeps
# the fleet up instead, to profile by hand; past 200 hosts, or with SIM=1,
# one nginx serves real agent bodies on every host's port, the next body
# put in place every second)
set -euo pipefail
cd "$(dirname "$0")/.."
hosts=${1:-100}
runs=${2:-5}
# past 200 hosts the agents are simulated (SIM=0/1 forces it): 1,000 real
# agents do not fit a small machine
sim=${SIM:-$([ "$hosts" -gt 200 ] && echo 1 || echo 0)}
srv=build/gpufleet agent=build/gpufleet-agent fake=build/tests/fakes/libnvidia-ml.so.1
[ -x "$srv" ] && [ -f web/dist-test/index.html ] || scripts/build.sh Release > /dev/null
[ -x /usr/bin/chromium ] || { echo "chromium missing: scripts/deps.sh test" >&2; exit 1; }
work=$(mktemp -d /tmp/gf-bench-ui.XXXXXX)
pids=()
trap 'kill "${pids[@]}" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"' EXIT
free_port() {
    local p
    while :; do
        p=$((10000 + RANDOM % 22000))
        (exec 3<>/dev/tcp/127.0.0.1/$p) 2>/dev/null || { echo $p; return; }
    done
}
pass='bench-root-pass-1'
echo "$pass" | "$srv" user add admin --role admin --password-stdin --data "$work/d" > /dev/null
tok=$("$srv" token add admin bench --data "$work/d")
sp=$(free_port)
# registering 1,000 servers in a row is past the API's default rate limit
printf 'rate_limit_per_s: 0\n' > "$work/server.yaml"
"$srv" serve --listen 127.0.0.1:$sp --data "$work/d" --config "$work/server.yaml" --agent-interval 1000 --log-level warn \
    --ui-dir web/dist-test > "$work/server.log" 2>&1 &
pids+=($!)
url=http://127.0.0.1:$sp
for _ in $(seq 1 100); do curl -fsS -o /dev/null $url/healthz 2>/dev/null && break; sleep 0.05; done

ports=()
if [ "$sim" = 1 ]; then
    # simulated agents: one real agent's bodies (8 fake H100s, drifting),
    # eight of them a second apart, served by one nginx on $hosts ports; a
    # loop puts the next body in place every second, so every host's values
    # change every second as a real agent's would, at the cost of bytes
    echo "simulating $hosts agents (8 GPUs each) with nginx..."
    source bench/lib.sh
    printf 'gpu h100 count=8\nvary 1\n' > "$work/sim.scenario"
    sp0=$(free_port)
    FAKE_NVML_SCENARIO="$work/sim.scenario" "$agent" --listen 127.0.0.1:$sp0 --nvml-lib "$fake" \
        --interval 250 --log-level warn > "$work/simagent.log" 2>&1 &
    simagent=$!
    wait_http http://127.0.0.1:$sp0/healthz
    for k in 0 1 2 3 4 5 6 7; do sleep 1; curl -fsS -o "$work/body$k" http://127.0.0.1:$sp0/metrics; done
    kill $simagent; wait $simagent 2>/dev/null || true
    cp "$work/body0" "$work/metrics"
    chmod 755 "$work"
    base=$((21000 + RANDOM % 9000)) # below the ephemeral range (32768+)
    nginx_targets_conf "$work" $base $hosts > "$work/nginx.conf"
    nginx -p "$work" -c "$work/nginx.conf" &
    pids+=($!)
    ( k=0; while :; do sleep 1; k=$(((k + 1) % 8)); cp "$work/body$k" "$work/metrics.new"; mv "$work/metrics.new" "$work/metrics"; done ) &
    pids+=($!)
    for i in $(seq 0 $((hosts - 1))); do ports+=($((base + i))); done
    wait_http http://127.0.0.1:$base/metrics
else
    echo "starting $hosts agents (8 GPUs each)..."
    for i in $(seq 0 $((hosts - 1))); do
        printf 'seed %d\ngpu h100 count=8\nvary 1\n' $((i + 1)) > "$work/a$i.scenario"
        p=$(free_port)
        FAKE_NVML_SCENARIO="$work/a$i.scenario" "$agent" --listen 127.0.0.1:$p --nvml-lib "$fake" \
            --interval 1000 --log-level warn > "$work/agent$i.log" 2>&1 &
        pids+=($!)
        ports+=($p)
    done
fi
[ "$sim" = 1 ] || for p in "${ports[@]}"; do
    for _ in $(seq 1 100); do curl -fsS -o /dev/null http://127.0.0.1:$p/healthz 2>/dev/null && break; sleep 0.05; done
done

# 30 days of host-000 GPU 0's utilization, one sample a minute, imported
# before it is registered (in order: the 1-hour roll-ups hold it)
curl -fsS -o "$work/a0.metrics" http://127.0.0.1:${ports[0]}/metrics
key=$(grep -m1 '^DCGM_FI_DEV_GPU_UTIL{gpu="0"' "$work/a0.metrics" | sed -E 's/ [^ ]+$//')
uuid=$(echo "$key" | sed -E 's/.*UUID="([^"]+)".*/\1/')
now=$(date +%s)
awk -v k="${key%\}}" -v inst="127.0.0.1:${ports[0]}" -v now="$now" 'BEGIN {
    for (t = now - 30 * 86400; t < now - 60; t += 60)
        printf "%s,job=\"gpufleet-agent\",instance=\"%s\",server=\"host-000\"} %d %.0f\n", k, inst, 50 + 45 * sin(t / 7200), t * 1000
}' > "$work/import.txt"
curl -fsS -H "Authorization: Bearer $tok" --data-binary @"$work/import.txt" $url/api/v1/import/prometheus > /dev/null
echo "imported $(wc -l < "$work/import.txt") samples (30 days) for host-000 GPU 0"

for i in $(seq 0 $((hosts - 1))); do
    printf -v name 'host-%03d' "$i"
    curl -fsS -o /dev/null -H "Authorization: Bearer $tok" -H 'Content-Type: application/json' \
        -d "{\"name\":\"$name\",\"address\":\"127.0.0.1\",\"agent_port\":${ports[$i]},\"labels\":{\"rack\":\"r$((i / 20))\"}}" \
        $url/api/v1/servers
done
# every target scraped (and up) before the page is measured
for _ in $(seq 1 60); do
    sleep 1
    up=$(curl -fsS -H "Authorization: Bearer $tok" $url/api/v1/targets | jq '[.targets[] | select(.up)] | length')
    [ "$up" -ge "$hosts" ] && break
done
# and every host's 8 GPUs in the fleet's state
for _ in $(seq 1 60); do
    full=$(curl -fsS -H "Authorization: Bearer $tok" $url/api/v1/fleet | jq '[.servers[] | select((.live.gpus // []) | length == 8)] | length')
    [ "$full" -ge "$hosts" ] && break
    sleep 1
done
echo "$up of $hosts targets up; server CPU while scraping: $(ps -o %cpu= -p "${pids[0]}")%"

if [ -n "${BENCH_HOLD:-}" ]; then # keep the fleet up to profile by hand
    echo "holding for ${BENCH_HOLD}s: $url admin/$pass chart host-000/$uuid"
    sleep "$BENCH_HOLD"
    exit 0
fi
GF_URL=$url ADMIN_PASSWORD=$pass HOSTS=$hosts GPUS_PER_HOST=8 CHART_SERVER=host-000 CHART_UUID="$uuid" \
    DIST=web/dist RUNS=$runs node web/tests/bench.mjs
