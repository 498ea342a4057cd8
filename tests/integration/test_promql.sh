#!/usr/bin/env bash
# PromQL: the same samples (GPU and host series shaped like the agents'
# output: counters with resets, gaps, a series that ends, NaN and Inf) are
# loaded into a real Prometheus (promtool's backfill) and into gpufleet
# (the import endpoint); some hundreds of expressions are asked of both as
# instant and range queries, and every answer must be the same
# (promql_compare.py). Then what Grafana sends: its "Save & test" query,
# POST form bodies, match[] lists, basic auth with a token.
source "$(dirname "$0")/lib.sh"
command -v prometheus > /dev/null && command -v promtool > /dev/null || fail "prometheus/promtool missing (scripts/deps.sh test)"
HERE=$(dirname "$0")

end_ms=$(( ($(date +%s) - 600) / 60 * 60 * 1000 ))
python3 "$HERE/promql_compare.py" gen "$WORK" "$end_ms"

promtool tsdb create-blocks-from openmetrics "$WORK/data.om" "$WORK/prom" > "$WORK/promtool.log" 2>&1 \
    || fail "promtool backfill: $(tail -3 "$WORK/promtool.log")"
PROM_PORT=$(free_port)
printf 'global:\n  evaluation_interval: 1m\n' > "$WORK/prometheus.yml"
prometheus --config.file="$WORK/prometheus.yml" --storage.tsdb.path="$WORK/prom" \
    --storage.tsdb.retention.time=10y --web.listen-address="127.0.0.1:$PROM_PORT" > "$WORK/prometheus.log" 2>&1 &
PIDS+=($!)
wait_http "http://127.0.0.1:$PROM_PORT/-/ready" 60

printf 'rate_limit_per_s: 0\nalert_eval_interval_ms: 500\n' > "$WORK/srv.yaml" # the comparison asks thousands of queries
start_server srv --config "$WORK/srv.yaml"
code=$(scurl -s -o "$WORK/imp.json" -w '%{http_code}' --data-binary @"$WORK/data.txt" "$SERVER_URL/api/v1/import/prometheus")
[ "$code" = 200 ] || fail "import gave $code: $(cat "$WORK/imp.json")"
ok "the same $(jq .imported "$WORK/imp.json") samples in Prometheus 2.42 and gpufleet"

python3 "$HERE/promql_compare.py" run "http://127.0.0.1:$PROM_PORT" "$SERVER_URL" "$GF_TOKEN" "$end_ms" "$WORK/diffs.txt" \
    || fail "gpufleet and Prometheus answered differently (above; all in diffs.txt)"
ok "every expression gave Prometheus's answer, instant and range"

# the chunk cache in /metrics: a dashboard's second read is hits, not decoding
cache() { scurl -fsS "$SERVER_URL/metrics" | awk -v m="gpufleet_server_query_cache_$1" '$1 == m { print $2 }'; }
rq() { scurl -fsS -o /dev/null -G "$SERVER_URL/prometheus/api/v1/query_range" --data-urlencode 'query=max_over_time(DCGM_FI_DEV_GPU_UTIL[5m])' \
    --data-urlencode "start=$(( end_ms / 1000 - 3 * 3600 ))" --data-urlencode "end=$(( end_ms / 1000 ))" --data-urlencode step=60; }
rq
h1=$(cache hits_total) m1=$(cache misses_total)
rq
h2=$(cache hits_total) m2=$(cache misses_total) b=$(cache bytes)
[ -n "$h1" ] && [ "${m1%.*}" -gt 0 ] && [ "${h2%.*}" -gt "${h1%.*}" ] && [ "$m2" = "$m1" ] && [ "${b%.*}" -gt 0 ] ||
    fail "the query cache's counters: hits $h1 -> $h2, misses $m1 -> $m2, bytes $b"
ok "the chunk cache in /metrics: the same range read again was $(( ${h2%.*} - ${h1%.*} )) hits and no miss ($b bytes held)"

# ---- what Grafana sends ----
P="$SERVER_URL/prometheus/api/v1"
# "Save & test": 1+1 as an instant query, form-encoded POST
scurl -fsS -X POST -H 'Content-Type: application/x-www-form-urlencoded' --data 'query=1%2B1&time=1700000000' "$P/query" \
    | jq -e '.status == "success" and .data.resultType == "scalar" and .data.result == [1700000000, "2"]' > /dev/null \
    || fail "1+1: $(scurl -sS -X POST --data 'query=1%2B1' "$P/query")"
# basic auth with the token as the password (Grafana's "Basic auth" option)
curl -fsS -u "grafana:$GF_TOKEN" -G "$P/query" --data-urlencode 'query=vector(3)' \
    | jq -e '.data.result[0].value[1] == "3"' > /dev/null || fail "basic auth with a token"
code=$(curl -s -o /dev/null -w '%{http_code}' -u "grafana:wrong-token" -G "$P/query" --data-urlencode 'query=1')
[ "$code" = 401 ] || fail "a wrong token as basic password gave $code"
ok "Grafana's Save & test (1+1, POST form) and basic auth with a token work; a wrong one is 401"
# buildinfo without "features" (Grafana would take us for Mimir)
scurl -fsS "$P/status/buildinfo" | jq -e '.data.version and (.data | has("features") | not)' > /dev/null || fail "buildinfo"
# label and series discovery with several match[] (GET and POST)
scurl -fsS -G "$P/label/Hostname/values" --data-urlencode 'match[]=DCGM_FI_DEV_GPU_UTIL' \
    | jq -e '.data == ["gpu-0","gpu-1","gpu-2"]' > /dev/null || fail "label values: $(scurl -sS -G "$P/label/Hostname/values")"
scurl -fsS -X POST --data-urlencode 'match[]=node_load1' --data-urlencode 'match[]=gap_gauge' "$P/series" \
    | jq -e '(.data | length) == 4' > /dev/null || fail "series with two match[]: $(scurl -sS -X POST --data-urlencode 'match[]=node_load1' --data-urlencode 'match[]=gap_gauge' "$P/series")"
scurl -fsS -G "$P/labels" --data-urlencode 'match[]=node_load1' --data-urlencode 'match[]=DCGM_FI_DEV_GPU_UTIL{gpu="0"}' \
    | jq -e '.data == ["Hostname","UUID","__name__","gpu","instance","job","modelName"]' > /dev/null || fail "labels with two match[]"
scurl -fsS "$P/query_exemplars" | jq -e '.data == []' > /dev/null || fail "exemplars"
# a limit that cut the answer says so in warnings (as Prometheus 2.49 on); one that did not, nothing
scurl -fsS -G "$P/label/Hostname/values" --data-urlencode limit=2 \
    | jq -e '.data == ["gpu-0","gpu-1"] and .warnings == ["results truncated due to limit"]' > /dev/null || fail "label values limit"
scurl -fsS -G "$P/label/Hostname/values" --data-urlencode limit=3 | jq -e '(.data | length) == 3 and (has("warnings") | not)' > /dev/null \
    || fail "label values within the limit warned"
scurl -fsS -G "$P/series" --data-urlencode 'match[]=DCGM_FI_DEV_GPU_UTIL' --data-urlencode limit=5 \
    | jq -e '(.data | length) == 5 and .warnings == ["results truncated due to limit"]' > /dev/null || fail "series limit"
scurl -fsS -G "$P/labels" --data-urlencode 'match[]=node_load1' --data-urlencode limit=1 \
    | jq -e '.data == ["__name__"] and .warnings == ["results truncated due to limit"]' > /dev/null || fail "label names limit"
# sort_desc orders an instant query's elements (NaN, if any, last)
scurl -fsS -G "$P/query" --data-urlencode 'query=sort_desc(DCGM_FI_DEV_POWER_USAGE)' --data-urlencode "time=$(( end_ms / 1000 - 60 ))" \
    | jq -e '[.data.result[].value[1] | tonumber] | length == 12 and . == (sort | reverse)' > /dev/null || fail "sort_desc order"
scurl -fsS -G "$P/query" --data-urlencode 'query=sort(DCGM_FI_DEV_POWER_USAGE)' --data-urlencode "time=$(( end_ms / 1000 - 60 ))" \
    | jq -e '[.data.result[].value[1] | tonumber] | . == sort' > /dev/null || fail "sort order"
# start/end: only series with samples in the window (ended_gauge stopped 30 min before the end)
e_s=$(( end_ms / 1000 ))
scurl -fsS -G "$P/series" --data-urlencode 'match[]=ended_gauge' --data-urlencode "start=$((e_s - 600))" --data-urlencode "end=$e_s" \
    | jq -e '.data == []' > /dev/null || fail "series in a window after the series ended"
scurl -fsS -G "$P/series" --data-urlencode 'match[]=ended_gauge' --data-urlencode "start=$((e_s - 7200))" --data-urlencode "end=$e_s" \
    | jq -e '(.data | length) == 1' > /dev/null || fail "series in a window it has samples in"
scurl -fsS -G "$P/label/__name__/values" --data-urlencode 'match[]={job="edge"}' --data-urlencode "start=$((e_s - 600))" --data-urlencode "end=$e_s" \
    | jq -e '.data == ["gap_gauge","sparse_counter_total","weird_gauge"]' > /dev/null \
    || fail "label values in a window: $(scurl -sS -G "$P/label/__name__/values" --data-urlencode 'match[]={job="edge"}' --data-urlencode "start=$((e_s - 600))" --data-urlencode "end=$e_s")"
scurl -fsS -G "$P/labels" --data-urlencode 'match[]=ended_gauge' --data-urlencode "start=$((e_s - 7200))" --data-urlencode "end=$e_s" \
    | jq -e '.data == ["__name__","instance","job"]' > /dev/null || fail "label names in a window"
# without match[]: a window bounds the groups asked (a target that stopped 2 h ago is not in the last 10 min)
printf 'retired_gauge{job="retired",instance="r",rack="r9"} 1 %s\nretired_gauge{job="retired",instance="r",rack="r9"} 2 %s\n' \
    "$(( (e_s - 7300) * 1000 ))" "$(( (e_s - 7200) * 1000 ))" | scurl -fsS --data-binary @- "$SERVER_URL/api/v1/import/prometheus" > /dev/null
scurl -fsS -G "$P/labels" --data-urlencode "start=$((e_s - 600))" --data-urlencode "end=$e_s" \
    | jq -e '(.data | index("rack") | not) and (.data | index("Hostname"))' > /dev/null \
    || fail "label names of the last 10 min, no match[]: $(scurl -sS -G "$P/labels" --data-urlencode "start=$((e_s - 600))" --data-urlencode "end=$e_s")"
scurl -fsS -G "$P/label/__name__/values" --data-urlencode "start=$((e_s - 600))" --data-urlencode "end=$e_s" \
    | jq -e '(.data | index("retired_gauge") | not) and (.data | index("node_load1"))' > /dev/null || fail "metric names of the last 10 min, no match[]"
scurl -fsS -G "$P/label/rack/values" --data-urlencode "start=$((e_s - 7500))" --data-urlencode "end=$((e_s - 7000))" \
    | jq -e '.data == ["r9"]' > /dev/null || fail "label values of a window 2 h ago, no match[]"
scurl -fsS -G "$P/label/rack/values" | jq -e '.data == ["r9"]' > /dev/null || fail "label values without a window"
code=$(scurl -s -o /dev/null -w '%{http_code}' -G "$P/labels" --data-urlencode limit=x)
[ "$code" = 400 ] || fail "a bad limit gave $code"
# metadata: what the exposition's HELP/TYPE/UNIT lines said (scrapes and imports)
printf '# HELP promql_moved_bytes_total Bytes moved by the fabric.\n# TYPE promql_moved_bytes_total counter\npromql_moved_bytes_total{instance="h",job="t"} 1 %s\n' \
    "$(date +%s)000" | scurl -fsS --data-binary @- "$SERVER_URL/api/v1/import/prometheus" > /dev/null
scurl -fsS -G "$P/metadata" --data-urlencode metric=promql_moved_bytes_total \
    | jq -e '.data == {"promql_moved_bytes_total": [{"type": "counter", "help": "Bytes moved by the fabric.", "unit": ""}]}' > /dev/null \
    || fail "metadata: $(scurl -sS "$P/metadata")"
ok "buildinfo, labels, label values and series (several match[], GET and POST, start/end windows with and without match[], limit with its warning), exemplars, metadata (HELP/TYPE)"
# errors in Prometheus's shape, the construct named
scurl -sS -G "$P/query" --data-urlencode 'query=holt_winters(x[5m], 0.5, 0.5)' -o "$WORK/e.json" -w '%{http_code}' > "$WORK/code"
[ "$(cat "$WORK/code")" = 400 ] && jq -e '.errorType == "bad_data" and (.error | test("holt_winters"))' "$WORK/e.json" > /dev/null \
    || fail "unsupported function: $(cat "$WORK/code") $(cat "$WORK/e.json")"
scurl -sS -G "$P/query_range" --data-urlencode 'query=1' --data-urlencode start=0 --data-urlencode end=100000 \
    --data-urlencode step=1 -o "$WORK/e.json" -w '%{http_code}' > "$WORK/code"
[ "$(cat "$WORK/code")" = 400 ] && jq -e '.error | test("11,000 points")' "$WORK/e.json" > /dev/null || fail "resolution bound"
ok "bad queries: 400 bad_data naming the unsupported function; the 11,000-point bound"

# rules and alerts in Prometheus's shapes (Grafana's alert list reads them)
printf 'promql_hot{instance="h",job="t"} 99 %s\n' "$(date +%s)000" | scurl -fsS --data-binary @- "$SERVER_URL/api/v1/import/prometheus" > /dev/null
api POST /api/v1/alerts/rules '{"name":"PromqlHot","metric":"promql_hot","agg":"avg","window":"1m","op":">","threshold":50,"labels":{"team":"ml"}}' > /dev/null
[ "$HTTP_CODE" = 201 ] || fail "rule create: $HTTP_CODE"
for _ in $(seq 1 50); do
    scurl -fsS "$P/alerts" | jq -e '.data.alerts[] | select(.labels.alertname == "PromqlHot" and .state == "firing")' > /dev/null && break
    sleep 0.2
done
scurl -fsS "$P/alerts" | jq -e '.data.alerts[] | select(.labels.alertname == "PromqlHot" and .state == "firing" and .value == "99" and (.activeAt | test("Z$")))' > /dev/null \
    || fail "alerts: $(scurl -sS "$P/alerts")"
scurl -fsS "$P/rules" > "$WORK/rules.json"
jq -e '[.data.groups[].rules[]] | length >= 13 and all(.type == "alerting" and .health == "ok")' "$WORK/rules.json" > /dev/null || fail "rules: $(head -c 600 "$WORK/rules.json")"
jq -e '.data.groups[].rules[] | select(.name == "PromqlHot") | .query == "avg_over_time(promql_hot[1m]) > 50" and .state == "firing" and .labels.team == "ml" and (.alerts | length) == 1' \
    "$WORK/rules.json" > /dev/null || fail "PromqlHot in rules: $(jq -c '.data.groups[].rules[] | select(.name == "PromqlHot")' "$WORK/rules.json")"
# every rule's query is PromQL this server answers
jq -r '.data.groups[].rules[].query' "$WORK/rules.json" | while IFS= read -r q; do
    scurl -fsS -G "$P/query" --data-urlencode "query=$q" | jq -e '.status == "success"' > /dev/null || fail "rule query '$q' does not run"
done
ok "rules (with their PromQL, state and alerts) and firing alerts in Prometheus's shapes"

# ---- alert rules in PromQL ----
now_ms=$(date +%s)000
printf 'promql_fb_used{gpu="0",instance="h",job="t"} 79000 %s\npromql_fb_used{gpu="1",instance="h",job="t"} 100 %s\npromql_fb_free{gpu="0",instance="h",job="t"} 1000 %s\npromql_fb_free{gpu="1",instance="h",job="t"} 80000 %s\n' \
    "$now_ms" "$now_ms" "$now_ms" "$now_ms" | scurl -fsS --data-binary @- "$SERVER_URL/api/v1/import/prometheus" > /dev/null
api POST /api/v1/alerts/rules '{"name":"FbNearlyFull","expr":"promql_fb_used / (promql_fb_used + promql_fb_free) > 0.9","labels":{"team":"ml"},"annotations":{"summary":"GPU {{ $labels.gpu }} at {{ $value }}"}}' > /dev/null
[ "$HTTP_CODE" = 201 ] || fail "PromQL rule create: $HTTP_CODE $(cat "$WORK/api.out")"
api POST /api/v1/alerts/rules '{"name":"ExporterMissing","expr":"absent(promql_nothing{job=\"dcgm\"})","for":"0s"}' > /dev/null
[ "$HTTP_CODE" = 201 ] || fail "absent rule create: $HTTP_CODE"
for _ in $(seq 1 50); do
    n=$(api GET '/api/v1/alerts?state=firing' | jq '[.alerts[] | select(.rule == "FbNearlyFull" or .rule == "ExporterMissing")] | length')
    [ "$n" = 2 ] && break
    sleep 0.2
done
api GET '/api/v1/alerts?state=firing' > "$WORK/firing.json"
jq -e '[.alerts[] | select(.rule == "FbNearlyFull")] | length == 1 and .[0].labels.gpu == "0" and .[0].labels.team == "ml" and .[0].labels.alertname == "FbNearlyFull" and (.[0].labels | has("__name__") | not) and (.[0].value > 0.98 and .[0].value < 0.988) and (.[0].annotations.summary | startswith("GPU 0 at 0.98"))' \
    "$WORK/firing.json" > /dev/null || fail "FbNearlyFull: $(jq -c '[.alerts[] | select(.rule == "FbNearlyFull")]' "$WORK/firing.json")"
jq -e '[.alerts[] | select(.rule == "ExporterMissing")] | length == 1 and .[0].labels.job == "dcgm"' "$WORK/firing.json" > /dev/null \
    || fail "absent() rule: $(jq -c '[.alerts[] | select(.rule == "ExporterMissing")]' "$WORK/firing.json")"
ok "PromQL alert rules: a ratio fires for the one GPU past 90% (labels without __name__, templates), absent() fires with the selector's labels"
api POST /api/v1/alerts/rules/preview '{"name":"P","expr":"promql_fb_used > 50"}' | jq -e '.firing == 2 and (.matches | length) == 2' > /dev/null \
    || fail "preview of a PromQL rule: $(cat "$WORK/api.out")"
for body in '{"name":"Bad","expr":"rate(promql_fb_used)"}' '{"name":"Bad","expr":"1 + 1"}' \
            '{"name":"Bad","expr":"up > 0","metric":"up"}' '{"name":"Bad","expr":"holt_winters(x[5m], 0.5, 0.5)"}'; do
    api POST /api/v1/alerts/rules "$body" > /dev/null
    [ "$HTTP_CODE" = 400 ] && jq -e '.error.message | test("expr|metric")' "$WORK/api.out" > /dev/null \
        || fail "bad PromQL rule $body: $HTTP_CODE $(cat "$WORK/api.out")"
done
api POST /api/v1/alerts/rules/preview '{"name":"P","expr":"promql_fb_used + on (job) promql_fb_free"}' > /dev/null
[ "$HTTP_CODE" = 422 ] && jq -e '.error.field == "expr" and (.error.message | test("many-to-many"))' "$WORK/api.out" > /dev/null \
    || fail "a preview that cannot be answered: $HTTP_CODE $(cat "$WORK/api.out")"
ok "PromQL rules preview (a many-to-many match is 422 with the reason); bad ones (a range function without a range, a scalar, expr with metric, an unsupported function) are 400 naming expr"

# a Prometheus rule file loads unchanged
cat > "$WORK/prom-rules.yaml" <<'Y'
groups:
  - name: gpu
    interval: 30s
    rules:
      - alert: GpuFramebufferFull
        expr: promql_fb_used / (promql_fb_used + promql_fb_free) > 0.9
        for: 1m
        labels:
          severity: critical
        annotations:
          summary: "GPU {{ $labels.gpu }} memory nearly full"
      - alert: EnergyCounterStuck
        expr: rate(DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION[5m]) == 0
  - name: hosts
    rules:
      - alert: HostMemoryLow
        expr: node_memory_MemAvailable_bytes / node_memory_MemTotal_bytes < 0.05
        for: 5m
Y
printf 'alert_rules_file: %s\nalert_default_rules: 0\n' "$WORK/prom-rules.yaml" > "$WORK/srv2.yaml"
SERVER_PORT_WANT= start_server srv2 --config "$WORK/srv2.yaml"
api GET /api/v1/alerts/rules | jq -e '[.rules[] | select(.source == "file")] | length == 3 and any(.name == "GpuFramebufferFull" and .severity == "critical" and .for == "1m")' > /dev/null \
    || fail "Prometheus rule file: $(cat "$WORK/api.out")"
printf 'groups:\n  - name: r\n    rules:\n      - record: job:up:sum\n        expr: sum(up)\n' > "$WORK/rec.yaml"
printf 'alert_rules_file: %s\n' "$WORK/rec.yaml" > "$WORK/srv3.yaml"
"$SERVER" serve --listen "127.0.0.1:$(free_port)" --data "$WORK/srv3-data" --config "$WORK/srv3.yaml" > "$WORK/srv3.log" 2>&1 \
    && fail "a file with a recording rule was accepted"
grep -q "recording rules are not supported" "$WORK/srv3.log" || fail "recording rule refusal: $(tail -2 "$WORK/srv3.log")"
ok "a Prometheus rule file (groups, alert, expr, for, labels.severity, annotations) loads unchanged; a recording rule is refused by name"

# a query past query_max_samples is refused (422 execution), and the
# server answers the next one
printf 'query_max_samples: 5000\nrate_limit_per_s: 0\n' > "$WORK/srv4.yaml"
start_server srv4 --config "$WORK/srv4.yaml"
scurl -fsS --data-binary @"$WORK/data.txt" "$SERVER_URL/api/v1/import/prometheus" > /dev/null
P4="$SERVER_URL/prometheus/api/v1"
code=$(scurl -s -o "$WORK/big.json" -w '%{http_code}' -G "$P4/query_range" --data-urlencode 'query=DCGM_FI_DEV_GPU_UTIL' \
    --data-urlencode "start=$(( end_ms / 1000 - 7200 ))" --data-urlencode "end=$(( end_ms / 1000 ))" --data-urlencode step=15)
[ "$code" = 422 ] && jq -e '.errorType == "execution" and (.error | test("too many samples"))' "$WORK/big.json" > /dev/null \
    || fail "an over-large query: $code $(cat "$WORK/big.json")"
scurl -fsS -G "$P4/query" --data-urlencode 'query=count(DCGM_FI_DEV_GPU_UTIL)' --data-urlencode "time=$(( end_ms / 1000 ))" \
    | jq -e '.data.result[0].value[1] == "12"' > /dev/null || fail "the next query after a refused one"
code=$(scurl -s -o "$WORK/big.json" -w '%{http_code}' -G "$P4/query" --data-urlencode 'query=max_over_time(DCGM_FI_DEV_GPU_UTIL[100y:1ms])')
[ "$code" = 422 ] && jq -e '.errorType == "execution" and (.error | test("subquery"))' "$WORK/big.json" > /dev/null \
    || fail "a subquery of trillions of steps: $code $(cat "$WORK/big.json")"
ok "a query past query_max_samples gets 422 execution (too many samples), a subquery of trillions of steps too; the next one is answered"
