#!/usr/bin/env bash
# Alerts end to end on loopback: the fake NVML raises a GPU's temperature,
# the alert goes pending, then firing after `for`; a webhook receiver
# (below) gets Alertmanager's payload with the GPU's labels and value; a
# restart in the middle keeps the state; the temperature drops and the
# resolved notification arrives. Ack, silences, receiver tests, retries,
# and rule files refused with the rule and field named.
source "$(dirname "$0")/lib.sh"

RX_PORT=$(free_port)
cat > "$WORK/rx.py" <<'PY'
import http.server, json, sys, threading
out = open(sys.argv[2], "a")
state = {"flaky": 0}
lock = threading.Lock()
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        code = 200
        with lock:
            if self.path == "/flaky":
                state["flaky"] += 1
                code = 500 if state["flaky"] == 1 else 200
            out.write(json.dumps({"path": self.path, "code": code, "body": json.loads(body)}) + "\n")
            out.flush()
        self.send_response(code)
        self.end_headers()
    def log_message(self, *a):
        pass
http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
PY
python3 "$WORK/rx.py" "$RX_PORT" "$WORK/hooks.jsonl" > "$WORK/rx.log" 2>&1 &
PIDS+=($!)
: > "$WORK/hooks.jsonl"

# a bad rules file is refused at start, naming the rule and the field
cat > "$WORK/bad-rules.yaml" <<'Y'
rules:
  - {name: Fine, metric: up, op: '==', threshold: 0}
  - {name: Broken, metric: DCGM_FI_DEV_GPU_TEMP, op: '>', threshold: hot}
Y
printf 'alert_rules_file: %s\n' "$WORK/bad-rules.yaml" > "$WORK/bad.yaml"
mkdir -p "$WORK/bad-data"
if "$SERVER" serve --config "$WORK/bad.yaml" --listen 127.0.0.1:0 --data "$WORK/bad-data" > "$WORK/bad.log" 2>&1; then
    fail "a bad rules file was accepted"
fi
grep -q 'rules\[1\] (Broken).threshold' "$WORK/bad.log" || fail "bad rule not named: $(cat "$WORK/bad.log")"
printf 'rules:\n  - {name: X, metric: "up{", op: ">", threshold: 1}\n' > "$WORK/bad-rules.yaml"
if "$SERVER" serve --config "$WORK/bad.yaml" --listen 127.0.0.1:0 --data "$WORK/bad-data" > "$WORK/bad.log" 2>&1; then
    fail "a bad selector was accepted"
fi
grep -q 'rules\[0\] (X).metric' "$WORK/bad.log" || fail "bad selector not named: $(cat "$WORK/bad.log")"
printf 'rules: [\n' > "$WORK/bad-rules.yaml"
if "$SERVER" serve --config "$WORK/bad.yaml" --listen 127.0.0.1:0 --data "$WORK/bad-data" > "$WORK/bad.log" 2>&1; then
    fail "broken YAML was accepted"
fi
grep -q 'alert_rules_file.*line' "$WORK/bad.log" || fail "broken YAML: $(cat "$WORK/bad.log")"
ok "bad rule files refused: rule and field named"

cat > "$WORK/rules.yaml" <<'Y'
rules:
  - name: GpuHot
    metric: DCGM_FI_DEV_GPU_TEMP
    op: '>'
    threshold: 80
    for: 2s
    severity: critical
    labels: {team: infra}
    annotations:
      summary: 'GPU {{ $labels.gpu }} on {{ $host }} at {{ $value }} C'
Y
cat > "$WORK/srv.yaml" <<EOF
alert_rules_file: $WORK/rules.yaml
alert_eval_interval_ms: 500
agent_interval_ms: 500
alert_group_wait_ms: 0
alert_group_interval_ms: 0
EOF
start_agent ag "gpu h100 count=2 temp=50" --interval 250 --hostname gpu-host-1
start_server srv --config "$WORK/srv.yaml"
api POST /api/v1/servers "{\"name\":\"ag\",\"address\":\"127.0.0.1\",\"agent_port\":$AGENT_PORT}" > /dev/null
[ "$HTTP_CODE" = 201 ] || fail "register: $HTTP_CODE"
api POST /api/v1/receivers "{\"name\":\"hook\",\"url\":\"http://127.0.0.1:$RX_PORT/hook\"}" > /dev/null
[ "$HTTP_CODE" = 201 ] || fail "receiver: $HTTP_CODE"
api POST /api/v1/receivers "{\"name\":\"flaky\",\"url\":\"http://127.0.0.1:$RX_PORT/flaky\"}" > /dev/null
api GET /api/v1/alerts/rules > "$WORK/rules.json"
jq -e '[.rules[].name] | index("GpuHot") != null and index("GpuTemperatureHigh") != null' "$WORK/rules.json" > /dev/null \
    || fail "rules: file + built-in pack expected: $(jq -c '[.rules[].name]' "$WORK/rules.json")"
sleep 2
api GET '/api/v1/alerts?state=active' > "$WORK/a.json"
jq -e '.alerts == []' "$WORK/a.json" > /dev/null || fail "alerts before any heat: $(cat "$WORK/a.json")"

# heat: GPU 1 goes to 95 C
t_hot=$(date +%s%3N)
printf 'gpu h100 count=2 temp=50\nset gpu=1 temp=95\n' > "$WORK/ag.scenario"
seen_pending=0
for _ in $(seq 1 100); do
    api GET '/api/v1/alerts?state=active' > "$WORK/a.json"
    st=$(jq -r '.alerts[0].state // empty' "$WORK/a.json")
    [ "$st" = pending ] && seen_pending=1
    [ "$st" = firing ] && break
    sleep 0.1
done
[ "$seen_pending" = 1 ] || fail "never pending before firing"
[ "$st" = firing ] || fail "not firing: $(cat "$WORK/a.json")"
jq -e '.alerts | length == 1 and .[0].labels.gpu == "1" and .[0].labels.alertname == "GpuHot"
       and .[0].labels.team == "infra" and .[0].labels.severity == "critical" and .[0].value == 95' "$WORK/a.json" > /dev/null \
    || fail "firing alert: $(cat "$WORK/a.json")"
for _ in $(seq 1 50); do grep -q '"/hook".*"firing"' "$WORK/hooks.jsonl" && break; sleep 0.1; done
t_hook=$(date +%s%3N)
grep '"/hook"' "$WORK/hooks.jsonl" | head -1 > "$WORK/fire.json"
jq -e '.body.version == "4" and .body.status == "firing" and .body.receiver == "hook"
       and .body.alerts[0].labels.gpu == "1" and .body.alerts[0].labels.alertname == "GpuHot"
       and .body.alerts[0].labels.Hostname == "gpu-host-1"
       and (.body.alerts[0].annotations.summary | test("GPU 1 on gpu-host-1 at 95 C"))
       and .body.alerts[0].endsAt == "0001-01-01T00:00:00Z" and (.body.groupKey | length > 0)' "$WORK/fire.json" > /dev/null \
    || fail "webhook payload: $(cat "$WORK/fire.json")"
lat=$((t_hook - t_hot))
# a scrape (0.5 s) + an evaluation (0.5 s) + for (2 s), polled at 0.1 s
[ $lat -le 4000 ] || fail "threshold to webhook took ${lat} ms"
ok "pending -> firing after for; webhook with Alertmanager v4 payload ${lat} ms after the heat (bound 3 s + 1 s slack)"

# the flaky receiver answered 500 once: retried, and every attempt logged
for _ in $(seq 1 50); do [ "$(grep -c '"/flaky"' "$WORK/hooks.jsonl")" -ge 2 ] && break; sleep 0.1; done
[ "$(grep -c '"/flaky"' "$WORK/hooks.jsonl")" = 2 ] || fail "flaky receiver not retried once"
api GET /api/v1/notifications > "$WORK/n.json"
jq -e '[.notifications[] | select(.receiver == "flaky")] | (map(.result) | sort) == ["error","ok"]' "$WORK/n.json" > /dev/null \
    || fail "attempt log: $(cat "$WORK/n.json")"
ok "a failed delivery is retried; each attempt is in /api/v1/notifications"

aid=$(jq '.alerts[0].id' "$WORK/a.json")
api POST "/api/v1/alerts/$aid/ack" '{"comment":"on it"}' > /dev/null
[ "$HTTP_CODE" = 200 ] || fail "ack: $HTTP_CODE"
api GET '/api/v1/alerts?state=firing' > "$WORK/a.json"
jq -e '.alerts[0].ack_by == "admin" and .alerts[0].ack_comment == "on it" and .alerts[0].ack_ms > 0' "$WORK/a.json" > /dev/null \
    || fail "ack not recorded: $(cat "$WORK/a.json")"
[ "$(sqlite3 "$WORK/srv-data/audit.db" "SELECT count(*) FROM audit WHERE action = 'alert.ack' AND username = 'admin'")" = 1 ] \
    || fail "ack not audited"
ok "acknowledged: who, when, comment; audited"

# restart in the middle: the firing alert is still the same alert
kill "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true
SERVER_PORT_WANT=$SERVER_PORT start_server srv --config "$WORK/srv.yaml"
sleep 1.5
api GET '/api/v1/alerts?state=active' > "$WORK/a2.json"
jq -e --argjson id "$aid" '.alerts | length == 1 and .[0].id == $id and .[0].state == "firing" and .[0].ack_by == "admin"' \
    "$WORK/a2.json" > /dev/null || fail "state lost over a restart: $(cat "$WORK/a2.json")"
[ "$(grep -c '"/hook".*"firing"' "$WORK/hooks.jsonl")" = 1 ] || fail "a restart notified the firing alert again"
ok "a restart keeps the alert's state, ack and id, and does not notify again"

# an acknowledgement taken back: the alert is as before it, audited; twice is 404
api DELETE "/api/v1/alerts/$aid/ack" > /dev/null
[ "$HTTP_CODE" = 200 ] || fail "unack: $HTTP_CODE $(cat "$WORK/api.out")"
api GET '/api/v1/alerts?state=firing' > "$WORK/a.json"
jq -e --argjson id "$aid" '.alerts[] | select(.id == $id) | .ack_by == "" and .ack_ms == 0 and .ack_comment == ""' "$WORK/a.json" > /dev/null \
    || fail "unack not recorded: $(cat "$WORK/a.json")"
api DELETE "/api/v1/alerts/$aid/ack" > /dev/null
[ "$HTTP_CODE" = 404 ] || fail "a second unack: $HTTP_CODE"
[ "$(sqlite3 "$WORK/srv-data/audit.db" "SELECT count(*) FROM audit WHERE action = 'alert.unack' AND username = 'admin'")" -ge 1 ] \
    || fail "unack not audited"
ok "an acknowledgement is taken back (audited), and only once"

# cool down: resolved
printf 'gpu h100 count=2 temp=50\n' > "$WORK/ag.scenario"
for _ in $(seq 1 60); do grep -q '"/hook".*"resolved"' "$WORK/hooks.jsonl" && break; sleep 0.1; done
grep '"/hook".*"resolved"' "$WORK/hooks.jsonl" | head -1 > "$WORK/res.json"
jq -e '.body.status == "resolved" and .body.alerts[0].labels.gpu == "1" and .body.alerts[0].endsAt != "0001-01-01T00:00:00Z"' \
    "$WORK/res.json" > /dev/null || fail "resolved notification: $(cat "$WORK/res.json")"
api GET '/api/v1/alerts?state=resolved' > "$WORK/a.json"
jq -e --argjson id "$aid" '.alerts[0].id == $id and .alerts[0].resolved_ms > 0' "$WORK/a.json" > /dev/null \
    || fail "resolved alert: $(cat "$WORK/a.json")"
ok "the temperature drops: resolved, notified, kept in the history"

# a silence: GPU 0 heats up, the alert fires, nobody is told
api POST /api/v1/silences '{"matchers":"{alertname=\"GpuHot\",gpu=\"0\"}","duration":"1h","comment":"maintenance"}' > /dev/null
[ "$HTTP_CODE" = 201 ] || fail "silence: $HTTP_CODE $(cat "$WORK/api.out")"
api POST /api/v1/silences '{"matchers":"{gpu=","duration":"1h"}' > "$WORK/bad.json"
[ "$HTTP_CODE" = 400 ] && jq -e '.error.field == "matchers"' "$WORK/bad.json" > /dev/null || fail "bad silence: $HTTP_CODE"
before=$(wc -l < "$WORK/hooks.jsonl")
printf 'gpu h100 count=2 temp=50\nset gpu=0 temp=96\n' > "$WORK/ag.scenario"
for _ in $(seq 1 60); do
    api GET '/api/v1/alerts?state=firing' > "$WORK/a.json"
    jq -e '.alerts[0].labels.gpu == "0"' "$WORK/a.json" > /dev/null && break
    sleep 0.1
done
jq -e '.alerts[0].labels.gpu == "0"' "$WORK/a.json" > /dev/null || fail "silenced alert did not fire"
sleep 1
[ "$(wc -l < "$WORK/hooks.jsonl")" = "$before" ] || fail "a silenced alert was notified: $(tail -1 "$WORK/hooks.jsonl")"
ok "a silence keeps a firing alert quiet"

# receivers: a test send, and one that cannot be reached
api GET /api/v1/receivers > "$WORK/r.json"
rid=$(jq '.receivers[] | select(.name == "hook") | .id' "$WORK/r.json")
api POST "/api/v1/receivers/$rid/test" > /dev/null
[ "$HTTP_CODE" = 200 ] || fail "test send: $HTTP_CODE"
tail -1 "$WORK/hooks.jsonl" | jq -e '.body.alerts[0].labels.alertname == "GpufleetTestNotification"' > /dev/null || fail "test payload"
api POST /api/v1/receivers "{\"name\":\"dead\",\"url\":\"http://127.0.0.1:$(free_port)/x\"}" > "$WORK/d.json"
did=$(jq .id "$WORK/d.json")
api POST "/api/v1/receivers/$did/test" > /dev/null
[ "$HTTP_CODE" = 502 ] || fail "dead receiver test: $HTTP_CODE"
api POST /api/v1/receivers '{"name":"x","url":"file:///etc/passwd"}' > "$WORK/bad.json"
[ "$HTTP_CODE" = 400 ] && jq -e '.error.field == "url"' "$WORK/bad.json" > /dev/null || fail "file URL receiver: $HTTP_CODE"
ok "receiver test button: 200 when it takes it, 502 when it cannot be reached; only http(s) URLs"

# a receiver changed in place: checked as a create, 404 for none, audited
api PUT "/api/v1/receivers/$did" "{\"name\":\"dead2\",\"url\":\"http://127.0.0.1:$RX_PORT/dead2\"}" > "$WORK/u.json"
[ "$HTTP_CODE" = 200 ] && jq -e '.name == "dead2" and (.url | endswith("/dead2"))' "$WORK/u.json" > /dev/null \
    || fail "receiver update: $HTTP_CODE $(cat "$WORK/u.json")"
api POST "/api/v1/receivers/$did/test" > /dev/null
[ "$HTTP_CODE" = 200 ] || fail "the updated receiver's test: $HTTP_CODE"
tail -1 "$WORK/hooks.jsonl" | jq -e '.path == "/dead2"' > /dev/null || fail "the test did not reach the new URL"
api PUT "/api/v1/receivers/$did" '{"name":"dead2","url":"ftp://x/"}' > "$WORK/bad.json"
[ "$HTTP_CODE" = 400 ] && jq -e '.error.field == "url"' "$WORK/bad.json" > /dev/null || fail "bad update: $HTTP_CODE"
api PUT /api/v1/receivers/99999 '{"name":"x","url":"http://127.0.0.1:1/"}' > /dev/null
[ "$HTTP_CODE" = 404 ] || fail "update of no receiver: $HTTP_CODE"
api PUT "/api/v1/receivers/$did" '{"name":"hook","url":"http://127.0.0.1:1/"}' > /dev/null
[ "$HTTP_CODE" = 409 ] || fail "a taken name: $HTTP_CODE"
[ "$(sqlite3 "$WORK/srv-data/audit.db" "SELECT count(*) FROM audit WHERE action = 'receiver.update'")" -ge 4 ] || fail "updates not audited"
ok "a receiver is changed in place (its next send goes to the new URL); bad fields, no receiver and a taken name refused"

# rules through the API: validated, file rules read-only
api POST /api/v1/alerts/rules '{"name":"LowPower","metric":"DCGM_FI_DEV_POWER_USAGE","op":"<","threshold":"x"}' > "$WORK/bad.json"
[ "$HTTP_CODE" = 400 ] && jq -e '.error.field == "threshold"' "$WORK/bad.json" > /dev/null || fail "API rule check: $HTTP_CODE"
api POST /api/v1/alerts/rules '{"name":"LowPower","metric":"DCGM_FI_DEV_POWER_USAGE","agg":"avg","window":"10s","op":"<","threshold":1}' > "$WORK/r.json"
[ "$HTTP_CODE" = 201 ] || fail "API rule: $HTTP_CODE $(cat "$WORK/r.json")"
rid=$(jq .id "$WORK/r.json")
api PUT "/api/v1/alerts/rules/$rid" '{"name":"LowPower","metric":"DCGM_FI_DEV_POWER_USAGE","agg":"min","window":"20s","op":"<","threshold":2}' > /dev/null
[ "$HTTP_CODE" = 200 ] || fail "rule update: $HTTP_CODE"
api GET "/api/v1/alerts/rules/$rid" > "$WORK/r.json"
jq -e '.agg == "min" and .threshold == 2 and .source == "api"' "$WORK/r.json" > /dev/null || fail "rule read back: $(cat "$WORK/r.json")"
api DELETE "/api/v1/alerts/rules/$rid" > /dev/null
[ "$HTTP_CODE" = 200 ] || fail "rule delete: $HTTP_CODE"
api GET "/api/v1/alerts/rules/$rid" > /dev/null
[ "$HTTP_CODE" = 404 ] || fail "deleted rule still there: $HTTP_CODE"
fid=$(jq '.rules[] | select(.name == "GpuHot") | .id' "$WORK/rules.json")
api DELETE "/api/v1/alerts/rules/$fid" > /dev/null
[ "$HTTP_CODE" = 409 ] || fail "deleting a file rule: $HTTP_CODE"
ok "rules through the API are checked; file and built-in rules are read-only there"

# a preview: what a rule would see now, storing and notifying nothing
nrules=$(api GET /api/v1/alerts/rules | jq '.rules | length')
api POST /api/v1/alerts/rules/preview '{"name":"Preview","metric":"DCGM_FI_DEV_GPU_TEMP","op":">","threshold":90}' > "$WORK/p.json"
[ "$HTTP_CODE" = 200 ] || fail "preview: $HTTP_CODE $(cat "$WORK/p.json")"
jq -e '.series == 2 and .with_value == 2 and .firing == 1 and .matches[0].fires == true and .matches[0].labels.gpu == "0"
       and .matches[0].value == 96 and .matches[1].fires == false' "$WORK/p.json" > /dev/null || fail "preview: $(cat "$WORK/p.json")"
api POST /api/v1/alerts/rules/preview '{"name":"Preview","metric":"DCGM_FI_DEV_GPU_TEMP{","op":">","threshold":90}' > "$WORK/p.json"
[ "$HTTP_CODE" = 400 ] && jq -e '.error.field == "metric"' "$WORK/p.json" > /dev/null || fail "bad preview: $HTTP_CODE $(cat "$WORK/p.json")"
[ "$(api GET /api/v1/alerts/rules | jq '.rules | length')" = "$nrules" ] || fail "a preview stored a rule"
sleep 1
api GET '/api/v1/alerts?state=active' | jq -e '[.alerts[] | select(.rule == "Preview")] == []' > /dev/null || fail "a preview made an alert"
ok "a rule's preview names the series past its threshold now (1 of 2), and stores nothing"

# routes: Warm's alerts go to the "warm" receiver only; the rest to the
# receivers no route names (hook, flaky, dead2)
api POST /api/v1/receivers "{\"name\":\"warm\",\"url\":\"http://127.0.0.1:$RX_PORT/warm\"}" > /dev/null
[ "$HTTP_CODE" = 201 ] || fail "warm receiver: $HTTP_CODE"
wrid=$(jq .id "$WORK/api.out")
for case in '{"routes":[{"matchers":"{alertname=","receivers":["warm"]}]}|routes[0].matchers' \
            '{"routes":[{"matchers":"{alertname=\"Warm\"}","receivers":["nobody"]}]}|routes[0].receivers' \
            '{"routes":[{"matchers":"{alertname=\"Warm\"}","receivers":[]}]}|routes[0].receivers' \
            '{"routes":[{"matchers":"{a=\"b\"}","receivers":["warm"],"continue":"yes"}]}|routes[0].continue' '{"x":1}|routes'; do
    api PUT /api/v1/alerts/routes "${case%|*}" > "$WORK/bad.json"
    [ "$HTTP_CODE" = 400 ] && jq -e --arg f "${case##*|}" '.error.field == $f' "$WORK/bad.json" > /dev/null \
        || fail "bad routes ${case%|*}: $HTTP_CODE $(cat "$WORK/bad.json")"
done
api PUT /api/v1/alerts/routes '{"routes":[{"matchers":"{alertname=\"Warm\"}","receivers":["warm"]}]}' > "$WORK/r.json"
[ "$HTTP_CODE" = 200 ] || fail "routes: $HTTP_CODE $(cat "$WORK/r.json")"
jq -e '.routes[0].receivers == ["warm"] and (.default_receivers | index("hook") != null) and (.default_receivers | index("warm") == null)' \
    "$WORK/r.json" > /dev/null || fail "routes answer: $(cat "$WORK/r.json")"
api DELETE "/api/v1/receivers/$wrid" > "$WORK/bad.json"
[ "$HTTP_CODE" = 409 ] || fail "a receiver a route names was removed: $HTTP_CODE"
[ "$(sqlite3 "$WORK/srv-data/audit.db" "SELECT count(*) FROM audit WHERE action = 'alert_routes.update'")" -ge 1 ] || fail "routes not audited"
ok "routes are checked (matchers, receivers, continue, each named), stored, audited; a routed receiver cannot be removed"

# a removed rule ends its alerts at the next evaluation (resolved, notified)
api POST /api/v1/alerts/rules '{"name":"Warm","metric":"DCGM_FI_DEV_GPU_TEMP","op":">","threshold":10,"severity":"warning"}' > "$WORK/r.json"
[ "$HTTP_CODE" = 201 ] || fail "Warm rule: $HTTP_CODE $(cat "$WORK/r.json")"
wid=$(jq .id "$WORK/r.json")
for _ in $(seq 1 50); do
    api GET '/api/v1/alerts?state=firing' > "$WORK/a.json"
    [ "$(jq '[.alerts[] | select(.labels.alertname == "Warm")] | length' "$WORK/a.json")" = 2 ] && break
    sleep 0.1
done
[ "$(jq '[.alerts[] | select(.labels.alertname == "Warm")] | length' "$WORK/a.json")" = 2 ] || fail "Warm not firing: $(cat "$WORK/a.json")"
api DELETE "/api/v1/alerts/rules/$wid" > /dev/null
t0=$(date +%s%3N)
for _ in $(seq 1 30); do
    api GET '/api/v1/alerts?state=active' > "$WORK/a.json"
    [ "$(jq '[.alerts[] | select(.labels.alertname == "Warm")] | length' "$WORK/a.json")" = 0 ] && break
    sleep 0.05
done
t_rule=$(($(date +%s%3N) - t0))
[ "$(jq '[.alerts[] | select(.labels.alertname == "Warm")] | length' "$WORK/a.json")" = 0 ] || fail "a deleted rule's alerts still active: $(cat "$WORK/a.json")"
for _ in $(seq 1 30); do [ "$(grep -c '"/warm".*"resolved".*"Warm"' "$WORK/hooks.jsonl")" -ge 1 ] && break; sleep 0.1; done
grep -q '"/warm".*"resolved".*"Warm"' "$WORK/hooks.jsonl" || fail "a deleted rule's alerts were not notified resolved"
grep -q '"/warm".*"firing".*"Warm"' "$WORK/hooks.jsonl" || fail "Warm's firing alerts did not reach its route's receiver"
! grep -q '"/hook".*"Warm"' "$WORK/hooks.jsonl" || fail "Warm reached a receiver no route sends it to"
ok "a deleted rule's firing alerts are resolved ${t_rule} ms later (evaluation every 500 ms) and notified, through its route only"

# a removed server ends its alerts too: its series end with a stale
# marker, as Prometheus ends a vanished target's; no 5 minutes of TargetDown
gone_port=$(free_port)
api POST /api/v1/servers "{\"name\":\"gone\",\"address\":\"127.0.0.1\",\"agent_port\":$gone_port}" > "$WORK/g.json"
[ "$HTTP_CODE" = 201 ] || fail "register gone: $HTTP_CODE"
for _ in $(seq 1 60); do
    api GET '/api/v1/alerts?state=active' > "$WORK/a.json"
    jq -e '.alerts[] | select(.labels.alertname == "TargetDown" and .labels.server == "gone")' "$WORK/a.json" > /dev/null && break
    sleep 0.1
done
jq -e '.alerts[] | select(.labels.alertname == "TargetDown" and .labels.server == "gone" and .state == "pending")' "$WORK/a.json" > /dev/null \
    || fail "no TargetDown for an unreachable server: $(cat "$WORK/a.json")"
jq -e '.alerts[] | select(.labels.alertname == "GpuHot" and .labels.server == "ag" and .state == "firing")' "$WORK/a.json" > /dev/null \
    || fail "GpuHot of ag should still fire: $(cat "$WORK/a.json")"
api GET /api/v1/servers > "$WORK/s.json"
for name in ag gone; do
    sid=$(jq --arg n "$name" '.servers[] | select(.name == $n) | .id' "$WORK/s.json")
    api DELETE "/api/v1/servers/$sid" > /dev/null
    [ "$HTTP_CODE" = 200 ] || [ "$HTTP_CODE" = 204 ] || fail "delete $name: $HTTP_CODE"
done
t0=$(date +%s%3N)
for _ in $(seq 1 40); do
    api GET '/api/v1/alerts?state=active' > "$WORK/a.json"
    jq -e '.alerts == []' "$WORK/a.json" > /dev/null && break
    sleep 0.05
done
t_srv=$(($(date +%s%3N) - t0))
jq -e '.alerts == []' "$WORK/a.json" > /dev/null || fail "removed servers' alerts still active ${t_srv} ms on: $(cat "$WORK/a.json")"
api GET '/api/v1/alerts?state=resolved' > "$WORK/a.json"
jq -e '[.alerts[] | select(.labels.alertname == "GpuHot" and .labels.gpu == "0")] | length == 1' "$WORK/a.json" > /dev/null \
    || fail "GpuHot of the removed server not resolved: $(cat "$WORK/a.json")"
[ "$t_srv" -le 1500 ] || fail "removed servers' alerts took ${t_srv} ms to end"
ok "removing a server ends its alerts ${t_srv} ms later: firing ones resolved, pending ones (TargetDown) gone"
