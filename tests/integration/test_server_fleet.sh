#!/usr/bin/env bash
# The server watches a small fleet on loopback: two agents on the fake NVML
# and a real prometheus-node-exporter as an extra target. The registry API
# validates input, the query API returns what the fakes set, a dead agent is
# marked offline within two intervals, a malformed exporter fails alone.
source "$(dirname "$0")/lib.sh"
NE=$(command -v prometheus-node-exporter || true)
[ -n "$NE" ] || fail "prometheus-node-exporter missing (scripts/deps.sh test)"

start_agent a1 "seed 1
gpu h100 count=2 util=71" --interval 500 --hostname gpu-a1
A1=$AGENT_PORT
head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$WORK/a2.token"
start_agent a2 "seed 2
gpu l40s util=33" --interval 500 --hostname gpu-a2 --token-file "$WORK/a2.token"
A2=$AGENT_PORT
A2_PID=${PIDS[-1]}
NE_PORT=$(free_port)
"$NE" --web.listen-address="127.0.0.1:$NE_PORT" > "$WORK/ne.log" 2>&1 &
PIDS+=($!)
wait_http "http://127.0.0.1:$NE_PORT/metrics"
# an "exporter" that serves garbage
BAD_PORT=$(free_port)
mkdir -p "$WORK/bad"
printf 'ok_metric 1\nbroken{label="x" 2\n' > "$WORK/bad/metrics"
# and one with more series than the server allows per target
awk 'BEGIN { for (i = 0; i < 5000; i++) printf "many_series{i=\"%d\"} 1\n", i }' > "$WORK/bad/many"
(cd "$WORK/bad" && exec python3 -m http.server "$BAD_PORT" --bind 127.0.0.1) > "$WORK/bad.log" 2>&1 &
PIDS+=($!)

printf 'max_series_per_target: 3000\n' > "$WORK/server.yaml"
start_server srv --agent-interval 500 --exporter-interval 1000 --config "$WORK/server.yaml"

# registry: create through the API and the CLI
api POST /api/v1/servers "{\"name\":\"a1\",\"address\":\"127.0.0.1\",\"agent_port\":$A1,\"labels\":{\"rack\":\"r1\"},\"targets\":[{\"name\":\"node\",\"url\":\"http://127.0.0.1:$NE_PORT/metrics\"},{\"name\":\"bad\",\"url\":\"http://127.0.0.1:$BAD_PORT/metrics\"},{\"name\":\"many\",\"url\":\"http://127.0.0.1:$BAD_PORT/many\"}]}" > "$WORK/a1.json"
[ "$HTTP_CODE" = 201 ] || fail "create a1: $HTTP_CODE $(cat "$WORK/a1.json")"
"$SERVER" servers --server "$SERVER_URL" add a2 127.0.0.1 --agent-port "$A2" \
    --agent-token-file "$WORK/a2.token" --label rack=r2 > "$WORK/a2.json" || fail "CLI add"
jq -e '.agent_token_set == true and (has("agent_token") | not)' "$WORK/a2.json" > /dev/null \
    || fail "the token must be stored and never returned"
ok "servers created through the API and the CLI"

# validation names the field; duplicates are 409
api POST /api/v1/servers '{"name":"a1","address":"127.0.0.1"}' > /dev/null
[ "$HTTP_CODE" = 409 ] || fail "duplicate gave $HTTP_CODE"
for case in '{"name":"x y","address":"h"}|name' '{"name":"x","address":"bad host/"}|address' \
            '{"name":"x","address":"h","agent_port":70000}|agent_port' \
            '{"name":"x","address":"h","targets":[{"name":"n","url":"ftp://h/"}]}|targets[0].url' \
            '{"name":"x","address":"h","labels":{"__x":"1"}}|labels' \
            '{"name":"x","address":"h","bogus":1}|bogus' '{"name":"x"|body'; do
    body=${case%|*} field=${case##*|}
    api POST /api/v1/servers "$body" > "$WORK/bad.json"
    out=$(cat "$WORK/bad.json")
    [ "$HTTP_CODE" = 400 ] || fail "bad body $body gave $HTTP_CODE"
    echo "$out" | jq -e --arg f "$field" '.error.field == $f' > /dev/null \
        || fail "bad body $body: error does not name $field: $out"
done
api GET /api/v1/servers/999 > /dev/null
[ "$HTTP_CODE" = 404 ] || fail "missing server gave $HTTP_CODE"
api GET /api/v1/servers/abc > /dev/null
[ "$HTTP_CODE" = 400 ] || fail "bad id gave $HTTP_CODE"
[ "$(api GET /api/v1/servers | jq '.servers | length')" = 2 ] || fail "bad input changed the registry"
ok "validation names the field, 409 on duplicates, nothing stored"

# check: reachable, GPU count, version (a2 needs its token)
A1_ID=$(jq .id "$WORK/a1.json")
A2_ID=$(jq .id "$WORK/a2.json")
api POST "/api/v1/servers/$A2_ID/check" > /dev/null
jq -e '.reachable and .ok and .gpu_count == 1 and .agent_version == "0.1.0"' \
    "$WORK/api.out" > /dev/null || fail "check a2: $(cat "$WORK/api.out")"
ok "check reports reachability, latency, version, GPU count"

# scraped values arrive with the fakes' numbers
for _ in $(seq 1 50); do
    n=$(query /api/v1/latest 'DCGM_FI_DEV_GPU_UTIL' | jq '.data.result | length')
    [ "$n" = 3 ] && break
    sleep 0.2
done
[ "$n" = 3 ] || fail "latest has $n GPU utilization series, expected 3"
query /api/v1/latest 'DCGM_FI_DEV_GPU_UTIL{server="a1"}' | jq -e '[.data.result[].value[1]] == ["71","71"]' \
    > /dev/null || fail "a1 utilization"
query /api/v1/latest 'DCGM_FI_DEV_GPU_UTIL{server="a2"}' | jq -e '.data.result[0].value[1] == "33" and .data.result[0].metric.modelName == "NVIDIA L40S"' \
    > /dev/null || fail "a2 utilization"
query /api/v1/latest 'DCGM_FI_DEV_FB_TOTAL' | jq -e '[.data.result[].value[1]] | sort == ["46068","81559","81559"]' \
    > /dev/null || fail "framebuffer totals"
# match and server together: that server's matching series only
query /api/v1/latest 'DCGM_FI_DEV_FB_TOTAL' --data-urlencode server=a2 | jq -e '[.data.result[].value[1]] == ["46068"]' \
    > /dev/null || fail "match and server together: $(query /api/v1/latest 'DCGM_FI_DEV_FB_TOTAL' --data-urlencode server=a2)"
ok "the query API returns the values the fakes set"

# the node_exporter target and Prometheus-style per-target series
for _ in $(seq 1 30); do
    query /api/v1/latest 'node_memory_MemTotal_bytes{job="node"}' | jq -e '.data.result | length == 1' \
        > /dev/null && break
    sleep 0.2
done
query /api/v1/latest 'up{job="node"}' | jq -e '.data.result[0].value[1] == "1"' > /dev/null || fail "node up"
query /api/v1/latest 'up{job="gpufleet-agent"}' | jq -e '[.data.result[].value[1]] == ["1","1"]' \
    > /dev/null || fail "agents up"
query /api/v1/latest 'scrape_samples_scraped{job="node"}' | jq -e '(.data.result[0].value[1] | tonumber) > 200' \
    > /dev/null || fail "scrape_samples_scraped"
query /api/v1/latest 'scrape_duration_seconds' | jq -e '.data.result | length >= 3' > /dev/null \
    || fail "scrape_duration_seconds"
ok "node_exporter scraped; up, scrape_duration_seconds, scrape_samples_scraped recorded"

# the malformed target fails alone, with the line named
for _ in $(seq 1 30); do
    err=$(api GET /api/v1/targets | jq -r '.targets[] | select(.job == "bad") | .last_error')
    [ -n "$err" ] && [ "$err" != null ] && break
    sleep 0.2
done
echo "$err" | grep -q 'line 2' || fail "bad target error: $err"
query /api/v1/latest 'up{job="bad"}' | jq -e '.data.result[0].value[1] == "0"' > /dev/null || fail "bad up"
query /api/v1/latest 'ok_metric' | jq -e '.data.result | length == 0' > /dev/null \
    || fail "samples of a malformed scrape must not be kept"
ok "malformed exporter: target failed ($err), the rest goes on"
err=$(api GET /api/v1/targets | jq -r '.targets[] | select(.job == "many") | .last_error')
echo "$err" | grep -q 'more than 3000 samples' || fail "series limit: $err"
query /api/v1/latest 'many_series' | jq -e '.data.result | length == 0' > /dev/null || fail "many stored"
ok "an exporter with too many series: target failed ($err), nothing stored"

# series, labels, a range query
query /api/v1/series 'DCGM_FI_DEV_GPU_TEMP' | jq -e '.data | length == 3' > /dev/null || fail "series"
scurl -fsS "$SERVER_URL/api/v1/label/server/values" | jq -e '.data == ["a1","a2"]' > /dev/null || fail "label values"
sleep 1
query /api/v1/query_range 'DCGM_FI_DEV_FB_USED{server="a2"}' --data-urlencode step=1s \
    --data-urlencode "start=$(( $(date +%s) - 20 ))" | jq -e '.data.tier == "raw" and (.data.result[0].values | length) >= 2 and (.data.result[0].values | all(.[1] == "1235"))' \
    > /dev/null || fail "range query"
code=$(scurl -s -o /dev/null -w '%{http_code}' -G "$SERVER_URL/api/v1/query_range" \
    --data-urlencode 'match=up' --data-urlencode 'step=0')
[ "$code" = 400 ] || fail "step=0 gave $code"
ok "series, label values, range queries"

# a dead agent is offline within two intervals, with an event
kill "$A2_PID"
t0=$(date +%s%3N)
for _ in $(seq 1 40); do
    st=$(api GET "/api/v1/servers/$A2_ID" | jq -r .status)
    [ "$st" = offline ] && break
    sleep 0.05
done
t1=$(date +%s%3N)
[ "$st" = offline ] || fail "a2 not offline after $((t1 - t0)) ms"
[ $((t1 - t0)) -le 1000 ] || fail "offline after $((t1 - t0)) ms, more than two 500 ms intervals"
api GET "/api/v1/servers/$A2_ID/events" | jq -e '.events[0].kind == "offline" and .events[1].kind == "online"' \
    > /dev/null || fail "events"
[ "$(api GET "/api/v1/servers/$A1_ID" | jq -r .status)" = online ] || fail "a1 affected"
why=$(api GET "/api/v1/servers/$A2_ID" | jq -r .last_error)
echo "$why" | grep -q "^nothing answers on 127.0.0.1:[0-9]* (connection refused): is the agent running" \
    || fail "the offline reason is not in plain words: $why"
ok "a dead agent is offline after $((t1 - t0)) ms (interval 500 ms), with events, because \"$why\""

# delete
api DELETE "/api/v1/servers/$A2_ID" > /dev/null
[ "$HTTP_CODE" = 204 ] || fail "delete gave $HTTP_CODE"
[ "$(api GET /api/v1/servers | jq '.servers | length')" = 1 ] || fail "delete"
ok "delete"
