#!/usr/bin/env bash
# Benchmark: one round of 50 alert rules over 10,000 series (20 metrics x
# 500 GPU series, 10 min of 5 s samples), gpufleet (bench_alerts_eval on its
# own store) against Prometheus evaluating the same 50 rules as PromQL
# (x > T, avg_over_time/max_over_time/min_over_time(x[1m]) > T,
# rate(x[1m]) > T; for: 1m) over the same series, scraped every 5 s.
# Prometheus's figure is prometheus_rule_group_last_duration_seconds.
# Target (issue 6): under 50 ms per round.
# usage: bench/alerts_vs_prometheus.sh [seconds of Prometheus] (default 90)
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-90}
[ -x build/bench_alerts_eval ] || scripts/build.sh Release > /dev/null
command -v prometheus > /dev/null || { echo "prometheus missing: scripts/deps.sh test" >&2; exit 1; }
work=$(mktemp -d /tmp/gf-bench-alerts.XXXXXX)
pids=()
trap 'kill "${pids[@]}" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"' EXIT
port() { echo $((20000 + RANDOM % 10000)); }
median() { sort -g | awk '{a[NR] = $1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }

# gpufleet
mkdir -p "$work/gf"
build/bench_alerts_eval "$work/gf" 50 10000 40 2> /dev/null | tee "$work/gf.txt"
gf_ms=$(sed -n 's/.*round median \([0-9.]*\) ms.*/\1/p' "$work/gf.txt")

# Prometheus: the same series as a static exposition, the same rules
mkdir -p "$work/www"
awk 'BEGIN { for (m = 0; m < 20; m++) { printf "# TYPE gpu_metric_%02d gauge\n", m;
    for (i = 0; i < 500; i++) printf "gpu_metric_%02d{gpu=\"%d\",node=\"node-%04d\"} %d\n", m, i % 8, int(i / 8), 40 + (i * 7 + m) % 50 } }' \
    > "$work/www/metrics"
wp=$(port)
python3 -m http.server "$wp" --bind 127.0.0.1 --directory "$work/www" > "$work/www.log" 2>&1 &
pids+=($!)
awk 'BEGIN { split("last avg max min rate", aggs, " "); print "groups:\n- name: bench\n  interval: 5s\n  rules:";
    for (r = 0; r < 50; r++) { m = sprintf("gpu_metric_%02d", r % 20); a = aggs[r % 5 + 1]; t = 70 + r % 20;
        if (a == "last") e = m; else if (a == "rate") e = "rate(" m "[1m])"; else e = a "_over_time(" m "[1m])";
        printf "  - alert: R%03d\n    expr: %s > %d\n    for: 1m\n", r, e, t } }' > "$work/rules.yml"
pp=$(port)
cat > "$work/prom.yml" <<YML
global: {scrape_interval: 5s, evaluation_interval: 5s}
rule_files: [$work/rules.yml]
scrape_configs:
- job_name: gpus
  static_configs: [{targets: ['127.0.0.1:$wp']}]
YML
prometheus --config.file="$work/prom.yml" --storage.tsdb.path="$work/prom" \
    --web.listen-address=127.0.0.1:$pp > "$work/prom.log" 2>&1 &
pids+=($!)
sleep 20 # a few scrapes in before measuring
: > "$work/prom.txt"
end=$(( $(date +%s) + secs - 20 ))
while [ "$(date +%s)" -lt "$end" ]; do
    curl -fsS "http://127.0.0.1:$pp/metrics" | awk '/^prometheus_rule_group_last_duration_seconds/ {print $2 * 1000}' >> "$work/prom.txt"
    sleep 5
done
prom_ms=$(median < "$work/prom.txt")
firing=$(curl -fsS "http://127.0.0.1:$pp/api/v1/alerts" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["data"]["alerts"]))')
echo "prometheus: round median ${prom_ms} ms over $(wc -l < "$work/prom.txt") samples; active alerts ${firing}"
awk -v g=$gf_ms -v p=$prom_ms 'BEGIN { printf "alert round, 50 rules over 10,000 series: gpufleet %.1f ms, Prometheus %.1f ms (ratio %.2fx); target < 50 ms\n", g, p, g / p }'
