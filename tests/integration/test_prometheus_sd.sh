#!/usr/bin/env bash
# For those who keep Prometheus and Grafana: a real Prometheus 2.42 runs on
# the configuration `gpufleet prometheus-config` writes (http_sd_configs on
# /api/v1/prometheus/sd, a job with its bearer token for an agent that
# requires one) and scrapes every agent and extra target of the fleet
# (up == 1), with the server's labels; a server removed from gpufleet leaves
# Prometheus's targets. Then every expression of the shipped Grafana
# dashboards (deploy/grafana/dashboards) returns data, variables resolved as
# Grafana does, from that Prometheus and from gpufleet's own PromQL API,
# with the same series on both.
source "$(dirname "$0")/lib.sh"
command -v prometheus > /dev/null && command -v promtool > /dev/null || fail "prometheus/promtool missing (scripts/deps.sh test)"
NE=$(command -v prometheus-node-exporter || true)
[ -n "$NE" ] || fail "prometheus-node-exporter missing (scripts/deps.sh test)"
HERE=$(dirname "$0")

start_agent a "gpu h100 util=73
gpu l40s util=12" --interval 500 --hostname gpu-a
A_PORT=$AGENT_PORT
head -c 24 /dev/urandom | base64 | tr -d '/+=' > "$WORK/b.token"
start_agent b "gpu rtx2080s util=40" --interval 500 --hostname gpu-b --token-file "$WORK/b.token" --metrics-need-token
B_PORT=$AGENT_PORT
code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$B_PORT/metrics")
[ "$code" = 401 ] || fail "agent b's /metrics should need its token: $code"
NE_PORT=$(free_port)
"$NE" --web.listen-address="127.0.0.1:$NE_PORT" --collector.disable-defaults --collector.loadavg \
    --collector.meminfo > "$WORK/node_exporter.log" 2>&1 &
PIDS+=($!)
wait_http "http://127.0.0.1:$NE_PORT/metrics"

start_server srv --agent-interval 1000 --exporter-interval 1000
D="$WORK/srv-data"
api POST /api/v1/servers "{\"name\":\"a\",\"address\":\"127.0.0.1\",\"agent_port\":$A_PORT,
  \"labels\":{\"rack\":\"r7\",\"job\":\"mine\"},
  \"targets\":[{\"name\":\"node\",\"url\":\"http://127.0.0.1:$NE_PORT/metrics?source=gpufleet\"}]}" > "$WORK/a.json"
[ "$HTTP_CODE" = 201 ] || fail "add a: $HTTP_CODE $(cat "$WORK/a.json")"
A_ID=$(jq .id "$WORK/a.json")
A_TOKEN=$(jq -r .agent_token "$WORK/a.json")
api POST /api/v1/servers "{\"name\":\"b\",\"address\":\"127.0.0.1\",\"agent_port\":$B_PORT,
  \"agent_token\":\"$(cat "$WORK/b.token")\"}" > /dev/null
[ "$HTTP_CODE" = 201 ] || fail "add b: $HTTP_CODE"

# ---- the SD endpoint ----
printf 'viewer-pass-12345\n' | "$SERVER" user add watcher --role viewer --password-stdin --data "$D" > /dev/null
"$SERVER" token add watcher prometheus --data "$D" > "$WORK/sd.token"
SD="$SERVER_URL/api/v1/prometheus/sd"
code=$(curl -s -o /dev/null -w '%{http_code}' "$SD")
[ "$code" = 401 ] || fail "SD without a token: $code"
curl -fsS -H "Authorization: Bearer $(cat "$WORK/sd.token")" "$SD" > "$WORK/sd.json" || fail "SD as a viewer"
jq -e --arg a "127.0.0.1:$A_PORT" --arg n "127.0.0.1:$NE_PORT" '
  length == 3 and
  (map(select(.targets == [$a]))[0].labels | .job == "gpufleet-agent" and .server == "a" and .rack == "r7"
     and .__metrics_path__ == "/metrics" and .__scheme__ == "http" and .__meta_gpufleet_kind == "agent"
     and .__meta_gpufleet_token == "true" and .__meta_gpufleet_label_job == "mine" and .__meta_gpufleet_label_rack == "r7") and
  (map(select(.targets == [$n]))[0].labels | .job == "node" and .server == "a" and .__meta_gpufleet_kind == "exporter"
     and .__param_source == "gpufleet" and .__meta_gpufleet_token == "false")' \
    "$WORK/sd.json" > /dev/null || fail "SD groups: $(cat "$WORK/sd.json")"
grep -qF "$(cat "$WORK/b.token")" "$WORK/sd.json" && fail "SD shows agent b's token"
grep -qF "$A_TOKEN" "$WORK/sd.json" && fail "SD shows agent a's token"
curl -fsS -D "$WORK/sd.h" -o /dev/null -H "Authorization: Bearer $(cat "$WORK/sd.token")" "$SD?format=file"
grep -qi '^content-disposition: attachment; filename="gpufleet-sd.json"' "$WORK/sd.h" || fail "file_sd download: $(cat "$WORK/sd.h")"
code=$(curl -s -o "$WORK/bad.json" -w '%{http_code}' -H "Authorization: Bearer $GF_TOKEN" "$SD?format=yaml")
[ "$code" = 400 ] && jq -e '.error.field == "format"' "$WORK/bad.json" > /dev/null || fail "bad format: $code"
ok "the SD endpoint lists every agent and extra target with the server's labels, never a token"

# ---- gpufleet prometheus-config, run by a real Prometheus ----
"$SERVER" prometheus-config --data "$D" --url "$SERVER_URL/" --sd-token-file "$WORK/sd.token" \
    --interval 1s > "$WORK/prometheus.yml" 2> "$WORK/config.err" || fail "prometheus-config: $(cat "$WORK/config.err")"
grep -q 'holds the bearer tokens of 1 agent' "$WORK/config.err" || fail "no warning about the tokens: $(cat "$WORK/config.err")"
grep -qF "$(cat "$WORK/b.token")" "$WORK/prometheus.yml" || fail "b's token missing: b refuses /metrics without it"
grep -qF "$A_TOKEN" "$WORK/prometheus.yml" && fail "a's token written though a's /metrics is open"
"$SERVER" prometheus-config --data "$D" --tokens none | grep -qF "$(cat "$WORK/b.token")" && fail "--tokens none wrote a token"
[ "$("$SERVER" prometheus-config --data "$D" --tokens all 2> /dev/null | grep -c credentials:)" = 2 ] \
    || fail "--tokens all: a job with its token for each agent"
grep -qF "\"$SERVER_URL/api/v1/prometheus/sd\"" "$WORK/prometheus.yml" || fail "SD url: $(cat "$WORK/prometheus.yml")"
"$SERVER" prometheus-config --data "$D" --interval soon > /dev/null 2>&1 && fail "a bad --interval was taken"
"$SERVER" prometheus-config --data "$WORK/nowhere" > /dev/null 2>&1 && fail "a missing database was taken"
# the test wants the SD refreshed within a second, not the default 30 s
sed -i 's/refresh_interval: "30s"/refresh_interval: "1s"/' "$WORK/prometheus.yml"
promtool check config "$WORK/prometheus.yml" > "$WORK/promtool.log" 2>&1 || fail "promtool: $(cat "$WORK/promtool.log")"
PROM_PORT=$(free_port)
PROM="http://127.0.0.1:$PROM_PORT"
prometheus --config.file="$WORK/prometheus.yml" --storage.tsdb.path="$WORK/tsdb" \
    --web.listen-address="127.0.0.1:$PROM_PORT" > "$WORK/prometheus.log" 2>&1 &
PIDS+=($!)
wait_http "$PROM/-/ready" 30
q() { curl -fsS "$PROM/api/v1/query" --data-urlencode "query=$1"; }
for _ in $(seq 1 150); do
    n=$(q 'count(up == 1)' | jq -r '.data.result[0].value[1] // 0')
    [ "$n" = 3 ] && break
    sleep 0.2
done
[ "$n" = 3 ] || fail "Prometheus has $n targets up, expected 3: $(curl -s "$PROM/api/v1/targets" | jq -c '.data.activeTargets[] | [.labels, .health, .lastError]')"
q 'up{job="gpufleet-agent", server="a", rack="r7"}' | jq -e '.data.result[0].value[1] == "1"' > /dev/null || fail "agent a"
q 'up{job="gpufleet-agent", server="b"}' | jq -e '.data.result[0].value[1] == "1"' > /dev/null || fail "agent b (its token job)"
q 'up{job="node", server="a"}' | jq -e '.data.result[0].value[1] == "1"' > /dev/null || fail "node_exporter"
q 'count(DCGM_FI_DEV_GPU_UTIL)' | jq -e '.data.result[0].value[1] == "3"' > /dev/null || fail "3 GPUs in Prometheus"
ok "Prometheus on the generated config scrapes both agents (one with its token) and the exporter: up == 1"

# ---- the shipped dashboards: data from Prometheus and from gpufleet ----
sleep 12 # rates need a few scrapes on both sides
python3 "$HERE/grafana_dashboards.py" --ignore-label rack "$SRC_DIR/deploy/grafana/dashboards" \
    "prometheus=$PROM" "gpufleet=$SERVER_URL/prometheus,$(cat "$WORK/sd.token")" > "$WORK/dash.txt" 2>&1 \
    || fail "dashboards: $(tail -20 "$WORK/dash.txt")"
ok "$(tail -1 "$WORK/dash.txt"): every panel has data on Prometheus and gpufleet, the same series"
for f in "$SRC_DIR"/deploy/grafana/provisioning/*/*.yaml; do
    python3 -c 'import sys, yaml; yaml.safe_load(open(sys.argv[1]))' "$f" || fail "$f is not YAML"
done

# ---- the fleet changes: Prometheus follows ----
api DELETE "/api/v1/servers/$A_ID" > /dev/null
[ "$HTTP_CODE" = 204 ] || fail "delete a: $HTTP_CODE"
for _ in $(seq 1 100); do
    left=$(curl -fsS "$PROM/api/v1/targets?state=active" | jq '[.data.activeTargets[] | select(.labels.server == "a")] | length')
    [ "$left" = 0 ] && break
    sleep 0.1
done
[ "$left" = 0 ] || fail "Prometheus still scrapes server a's $left targets after it was removed"
ok "a server removed from gpufleet leaves Prometheus's targets"
