#!/usr/bin/env bash
# Benchmark: gpufleet-agent (fake NVML, 8 H100s) against node_exporter, with
# nginx serving the agent's own last /metrics body as a static file as the
# floor (bytes already rendered). All three run on loopback in one run; wrk
# scrapes each with one connection. Each figure is the median of ROUNDS runs.
#
# usage: bench/agent_vs_node_exporter.sh [seconds per wrk run]   (default 5)
# needs: scripts/deps.sh bench; scripts/build.sh Release
set -euo pipefail
cd "$(dirname "$0")/.."

secs=${1:-5}
rounds=${ROUNDS:-3}
agent=build/gpufleet-agent
fake=build/tests/fakes/libnvidia-ml.so.1
[ -x "$agent" ] && [ -f "$fake" ] || { echo "build first: scripts/build.sh Release" >&2; exit 1; }
for t in wrk nginx prometheus-node-exporter; do
    command -v $t > /dev/null || { echo "missing $t: scripts/deps.sh bench" >&2; exit 1; }
done

work=$(mktemp -d /tmp/gf-bench.XXXXXX)
chmod 755 "$work" # nginx workers run as www-data
pids=()
trap 'for p in "${pids[@]}"; do kill $p 2>/dev/null || true; done; wait 2>/dev/null; rm -rf "$work"' EXIT

port() { echo $((20000 + RANDOM % 20000)); }
wait_http() { for _ in $(seq 1 100); do curl -fsS -o /dev/null "$1" && return 0; sleep 0.1; done; return 1; }
hz=$(getconf CLK_TCK)
# CPU seconds used so far by a process and its children threads/processes
cpu_of() {
    local total=0 p
    for p in "$@"; do
        # fields 14 and 15 of /proc/PID/stat: utime, stime (in ticks)
        total=$((total + $(awk '{print $14 + $15}' /proc/$p/stat)))
    done
    echo "$total"
}
rss_kb() { awk '/^VmRSS/ {print $2}' /proc/$1/status; }
median() { sort -g | awk '{a[NR] = $1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }

AP=$(port)
FAKE_NVML_SCENARIO=$PWD/tests/fakes/scenarios/h100x8.scenario "$agent" \
    --listen 127.0.0.1:$AP --nvml-lib "$PWD/$fake" --log-level warn > "$work/agent.log" 2>&1 &
apid=$!
pids+=($apid)
NP=$(port)
prometheus-node-exporter --web.listen-address=127.0.0.1:$NP > "$work/ne.log" 2>&1 &
npid=$!
pids+=($npid)
wait_http http://127.0.0.1:$AP/healthz
wait_http http://127.0.0.1:$NP/metrics
sleep 2 # PCIe values from the slow thread are in

# nginx serves the agent's last body, plain and pre-gzipped
curl -fsS http://127.0.0.1:$AP/metrics -o "$work/metrics"
gzip -1 -k "$work/metrics"
GP=$(port)
mkdir -p "$work/nginx"
cat > "$work/nginx/nginx.conf" <<CONF
daemon off;
worker_processes 1;
pid $work/nginx/nginx.pid;
error_log $work/nginx/error.log;
events { worker_connections 64; }
http {
    access_log off;
    client_body_temp_path $work/nginx;
    proxy_temp_path $work/nginx;
    fastcgi_temp_path $work/nginx;
    uwsgi_temp_path $work/nginx;
    scgi_temp_path $work/nginx;
    server {
        listen 127.0.0.1:$GP;
        location = /metrics { alias $work/metrics; default_type text/plain; gzip_static on; }
    }
}
CONF
nginx -p "$work/nginx" -c "$work/nginx/nginx.conf" &
gpid=$!
pids+=($gpid)
wait_http http://127.0.0.1:$GP/metrics
gpids=($gpid $(pgrep -P $gpid))

series() { curl -fsS "$1" | grep -vc '^#'; }
a_series=$(series http://127.0.0.1:$AP/metrics)
n_series=$(series http://127.0.0.1:$NP/metrics)
bytes=$(stat -c %s "$work/metrics")
gzbytes=$(stat -c %s "$work/metrics.gz")

# run NAME URL ENCODING PIDS...: one wrk run; prints "rps p50_ms p99_ms cpu_us_per_scrape"
run() {
    local url=$1 enc=$2
    shift 2
    local c0 c1 out
    c0=$(cpu_of "$@")
    if [ "$enc" = gzip ]; then
        out=$(wrk -t1 -c1 -d"${secs}s" --latency -H 'Accept-Encoding: gzip' "$url")
    else
        out=$(wrk -t1 -c1 -d"${secs}s" --latency "$url")
    fi
    c1=$(cpu_of "$@")
    local reqs p50 p99
    reqs=$(echo "$out" | awk '/requests in/ {print $1}')
    p50=$(echo "$out" | awk '$1 == "50%" {print $2}')
    p99=$(echo "$out" | awk '$1 == "99%" {print $2}')
    to_ms() { awk -v v="$1" 'BEGIN { u = v; sub(/[0-9.]+/, "", u); n = v + 0;
        if (u == "us") n /= 1000; else if (u == "s") n *= 1000; printf "%.3f", n }'; }
    awk -v r="$reqs" -v s="$secs" -v a="$(to_ms "$p50")" -v b="$(to_ms "$p99")" \
        -v c=$((c1 - c0)) -v hz="$hz" \
        'BEGIN { printf "%.0f %s %s %.2f\n", r / s, a, b, (c / hz) * 1e6 / r }'
}

declare -A R
for enc in plain gzip; do
    for name in agent node_exporter nginx; do
        case $name in
        agent) url=http://127.0.0.1:$AP/metrics; p=($apid) ;;
        node_exporter) url=http://127.0.0.1:$NP/metrics; p=($npid) ;;
        nginx) url=http://127.0.0.1:$GP/metrics; p=("${gpids[@]}") ;;
        esac
        : > "$work/r"
        for _ in $(seq 1 "$rounds"); do run "$url" "$enc" "${p[@]}" >> "$work/r"; done
        for col in 1 2 3 4; do
            R[$name,$enc,$col]=$(awk -v c=$col '{print $c}' "$work/r" | median)
        done
    done
done

a_rss=$(rss_kb $apid)
n_rss=$(rss_kb $npid)
# the agent's own cost with nobody scraping
c0=$(cpu_of $apid)
sleep 20
c1=$(cpu_of $apid)
idle_pct=$(awk -v c=$((c1 - c0)) -v hz="$hz" 'BEGIN { printf "%.3f", (c / hz) / 20 * 100 }')

echo
echo "gpufleet-agent vs node_exporter vs nginx (static copy of the agent's body)"
echo "one wrk connection, ${secs}s x $rounds rounds, medians; agent: 8 fake H100s"
echo "series: agent $a_series, node_exporter $n_series; agent body $bytes bytes, gzip $gzbytes"
printf '\n%-8s %-14s %10s %9s %9s %14s %14s\n' enc server scrapes/s p50_ms p99_ms cpu_s/1000scr cpu_us/series
for enc in plain gzip; do
    for name in agent node_exporter nginx; do
        s=$a_series; [ $name = node_exporter ] && s=$n_series
        printf '%-8s %-14s %10s %9s %9s %14.3f %14.4f\n' $enc $name "${R[$name,$enc,1]}" \
            "${R[$name,$enc,2]}" "${R[$name,$enc,3]}" \
            "$(awk -v u="${R[$name,$enc,4]}" 'BEGIN{print u / 1000}')" \
            "$(awk -v u="${R[$name,$enc,4]}" -v s=$s 'BEGIN{print u / s}')"
    done
done
echo
echo "RSS: agent $((a_rss / 1024)) MB ($a_rss kB), node_exporter $((n_rss / 1024)) MB"
echo "agent sampling at 1000 ms, 8 GPUs, no scrapes: ${idle_pct}% of one core"
echo
for enc in plain gzip; do
    awk -v a="${R[agent,$enc,4]}" -v n="${R[node_exporter,$enc,4]}" -v g="${R[nginx,$enc,4]}" \
        -v as=$a_series -v ns=$n_series -v enc=$enc 'BEGIN {
        printf "%s: agent CPU per series = 1/%.1f of node_exporter'"'"'s (target <= 1/20)\n", enc, (n / ns) / (a / as)
        printf "%s: agent CPU per scrape = %.2fx nginx'"'"'s for the same bytes (target <= 2x)\n", enc, a / g
    }'
done
awk -v r=$a_rss -v i="$idle_pct" 'BEGIN {
    printf "RSS %s 8 MB target; sampling %s 0.5%% target\n", (r <= 8192 ? "within" : "OVER"), (i < 0.5 ? "within" : "OVER") }'
