#!/usr/bin/env bash
# GET /api/v1/health/fleet: every part of the server with a status and, when
# not ok, the reason in words; each agent with its version and the age of
# its last sample. A healthy fleet is "ok"; then each fault made for real is
# reported by the part it hits: an agent that is not there, a PromQL rule
# that cannot be evaluated, a webhook receiver nobody listens on, a
# remote_write receiver that does not answer.
source "$(dirname "$0")/lib.sh"

RX_PORT=$(free_port)  # nothing listens: the webhook receiver
RW_PORT=$(free_port)  # nothing listens: the remote_write receiver
cat > "$WORK/srv.yaml" <<Y
alert_default_rules: 0
alert_eval_interval_ms: 300
agent_interval_ms: 500
alert_group_wait_ms: 0
Y
start_agent a "gpu h100 util=73
gpu l40s util=12" --interval 250 --hostname gpu-a
start_server srv --config "$WORK/srv.yaml"
api POST /api/v1/servers "{\"name\":\"a\",\"address\":\"127.0.0.1\",\"agent_port\":$AGENT_PORT}" > /dev/null
[ "$HTTP_CODE" = 201 ] || fail "add a: $HTTP_CODE"

health() { api GET /api/v1/health/fleet > "$WORK/h.json"; [ "$HTTP_CODE" = 200 ] || fail "health: $HTTP_CODE"; }
# wait_health JQ_FILTER WHAT: until the answer satisfies the filter
wait_health() {
    for _ in $(seq 1 100); do
        health
        jq -e "$1" "$WORK/h.json" > /dev/null && return 0
        sleep 0.1
    done
    fail "$2: $(jq -c . "$WORK/h.json")"
}
wait_health '.status == "ok" and (.agents[0] | .server == "a" and .status == "ok" and .version == "0.1.0"
    and .last_sample_age_s < 3)' "a healthy fleet"
jq -e '[.components[].name] == ["store", "scraper", "alert_evaluator", "notifications", "remote_write"]
    and (.components[] | select(.name == "remote_write") | .status == "off")
    and (.components[] | select(.name == "scraper") | .detail == "1 of 1 targets up")' "$WORK/h.json" > /dev/null \
    || fail "components: $(jq -c .components "$WORK/h.json")"
ok "a healthy fleet: every component ok, the agent's version and a fresh last sample"

# a viewer may look; nobody else
printf 'viewer-pass-12345\n' | "$SERVER" user add watcher --role viewer --password-stdin --data "$WORK/srv-data" > /dev/null
VT=$("$SERVER" token add watcher health --data "$WORK/srv-data")
code=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $VT" "$SERVER_URL/api/v1/health/fleet")
[ "$code" = 200 ] || fail "viewer: $code"
code=$(curl -s -o /dev/null -w '%{http_code}' "$SERVER_URL/api/v1/health/fleet")
[ "$code" = 401 ] || fail "anonymous: $code"

# ---- an agent that is not there ----
GONE=$(free_port)
api POST /api/v1/servers "{\"name\":\"gone\",\"address\":\"127.0.0.1\",\"agent_port\":$GONE}" > /dev/null
wait_health '.status == "degraded" and (.agents[] | select(.server == "gone") | .status == "down"
    and (.detail | test("refused|connect"; "i")))' "a missing agent"
jq -e '(.components[] | select(.name == "scraper") | .status == "degraded" and .detail == "1 of 2 targets up")
    and (.agents[] | select(.server == "a") | .status == "ok")' "$WORK/h.json" > /dev/null \
    || fail "one agent down: $(jq -c . "$WORK/h.json")"
ok "an agent nobody answers for: down, with the reason ($(jq -r '.agents[] | select(.server == "gone") | .detail' "$WORK/h.json"))"
api DELETE "/api/v1/servers/$(api GET /api/v1/servers | jq '.servers[] | select(.name == "gone") | .id')" > /dev/null

# ---- a rule that cannot be evaluated; a receiver nobody listens on ----
api POST /api/v1/alerts/rules '{"name":"Clash","expr":"DCGM_FI_DEV_GPU_UTIL + on() DCGM_FI_DEV_GPU_TEMP"}' > /dev/null
[ "$HTTP_CODE" = 201 ] || fail "rule: $HTTP_CODE $(cat "$WORK/api.out")"
wait_health '.components[] | select(.name == "alert_evaluator") | .status == "degraded"
    and .failing[0].rule == "Clash" and (.detail | test("Clash"))' "a rule that cannot be evaluated"
ok "a rule that cannot be evaluated: $(jq -r '.components[] | select(.name == "alert_evaluator") | .detail' "$WORK/h.json")"
api DELETE "/api/v1/alerts/rules/$(api GET /api/v1/alerts/rules | jq '.rules[] | select(.name == "Clash") | .id')" > /dev/null
wait_health '.components[] | select(.name == "alert_evaluator") | .status == "ok"' "the evaluator after the rule went"

api POST /api/v1/receivers "{\"name\":\"hook\",\"url\":\"http://127.0.0.1:$RX_PORT/hook\"}" > /dev/null
api POST /api/v1/alerts/rules '{"name":"Busy","metric":"DCGM_FI_DEV_GPU_UTIL","op":">","threshold":50}' > /dev/null
[ "$HTTP_CODE" = 201 ] || fail "rule Busy: $HTTP_CODE"
wait_health '.status == "degraded" and (.components[] | select(.name == "notifications") | .status == "degraded"
    and .failing[0].receiver == "hook" and (.detail | test("hook")))' "a receiver nobody listens on"
ok "a receiver nobody listens on: $(jq -r '.components[] | select(.name == "notifications") | .detail' "$WORK/h.json")"

# ---- remote_write to nowhere ----
kill "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true
printf 'remote_write_url: http://127.0.0.1:%s/api/v1/write\n' "$RW_PORT" >> "$WORK/srv.yaml"
start_server srv --config "$WORK/srv.yaml"
wait_health '.components[] | select(.name == "remote_write") | .status == "degraded"
    and (.detail | test("does not answer")) and .pending > 0' "remote_write to nowhere"
ok "remote_write to nowhere: $(jq -r '.components[] | select(.name == "remote_write") | .detail' "$WORK/h.json")"
