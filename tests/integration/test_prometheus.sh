#!/usr/bin/env bash
# A real Prometheus scrapes the agent on loopback; its query API then shows
# the target up and one DCGM_FI_DEV_GPU_UTIL series per fake GPU carrying the
# fake's value.
source "$(dirname "$0")/lib.sh"
command -v prometheus > /dev/null || fail "prometheus missing (scripts/deps.sh test)"

start_agent prom "gpu h100 util=73
gpu l40s util=12
gpu h100 util=0" --interval 500
PROM_PORT=$(free_port)
cat > "$WORK/prometheus.yml" <<YAML
global:
  scrape_interval: 1s
  scrape_timeout: 900ms
scrape_configs:
  - job_name: gpufleet
    static_configs:
      - targets: ['127.0.0.1:$AGENT_PORT']
YAML
prometheus --config.file="$WORK/prometheus.yml" --storage.tsdb.path="$WORK/tsdb" \
    --web.listen-address="127.0.0.1:$PROM_PORT" > "$WORK/prometheus.log" 2>&1 &
PIDS+=($!)
wait_http "http://127.0.0.1:$PROM_PORT/-/ready" 30

q() { curl -fsS "http://127.0.0.1:$PROM_PORT/api/v1/query" --data-urlencode "query=$1"; }
for _ in $(seq 1 100); do
    n=$(q 'count(DCGM_FI_DEV_GPU_UTIL)' | jq -r '.data.result[0].value[1] // 0')
    [ "$n" = 3 ] && break
    sleep 0.2
done
[ "$n" = 3 ] || fail "Prometheus sees $n DCGM_FI_DEV_GPU_UTIL series, expected 3"
q 'up{job="gpufleet"}' | jq -e '.data.result[0].value[1] == "1"' > /dev/null || fail "up != 1"
for pair in 0:73 1:12 2:0; do
    gpu=${pair%%:*} want=${pair##*:}
    got=$(q "DCGM_FI_DEV_GPU_UTIL{gpu=\"$gpu\"}" | jq -r '.data.result[0].value[1]')
    [ "$got" = "$want" ] || fail "gpu $gpu utilization: Prometheus has $got, the fake set $want"
done
model=$(q 'DCGM_FI_DEV_GPU_UTIL{gpu="1"}' | jq -r '.data.result[0].metric.modelName')
[ "$model" = "NVIDIA L40S" ] || fail "modelName label: $model"
# no sample was rejected by Prometheus's parser
q 'scrape_samples_post_metric_relabeling{job="gpufleet"} - scrape_samples_scraped{job="gpufleet"}' \
    | jq -e '.data.result[0].value[1] == "0"' > /dev/null || fail "samples dropped"
ok "Prometheus scraped up==1 and 3 GPUs with the fake's utilization"
