#!/usr/bin/env bash
# A notification waiting in its group (group_wait) when the server is
# killed is sent after the restart (issue 18, defect 18): alert states
# survived a crash before, the changes waiting to be told did not.
source "$(dirname "$0")/lib.sh"

RX_PORT=$(free_port)
cat > "$WORK/rx.py" <<'PY'
import http.server, json, sys
out = open(sys.argv[2], "a")
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        out.write(json.dumps(json.loads(body)) + "\n"); out.flush()
        self.send_response(200); self.end_headers()
    def log_message(self, *a):
        pass
http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
PY
python3 "$WORK/rx.py" "$RX_PORT" "$WORK/hooks.jsonl" > "$WORK/rx.log" 2>&1 &
PIDS+=($!)

cat > "$WORK/rules.yaml" <<'Y'
rules:
  - {name: GpuHot, metric: DCGM_FI_DEV_GPU_TEMP, op: '>', threshold: 80}
Y
cat > "$WORK/srv.yaml" <<Y
alert_rules_file: $WORK/rules.yaml
alert_default_rules: 0
alert_eval_interval_ms: 300
alert_group_wait_ms: 4000
agent_interval_ms: 300
Y
start_agent ag "gpu h100 count=1 temp=90" --interval 200
start_server srv --config "$WORK/srv.yaml"
api POST /api/v1/receivers "{\"name\":\"hook\",\"type\":\"webhook\",\"url\":\"http://127.0.0.1:$RX_PORT/\"}" > /dev/null
[ "$HTTP_CODE" = 201 ] || [ "$HTTP_CODE" = 200 ] || fail "receiver: $HTTP_CODE"
api POST /api/v1/servers "{\"name\":\"ag\",\"address\":\"127.0.0.1\",\"agent_port\":$AGENT_PORT}" > /dev/null
for _ in $(seq 1 50); do
    [ "$(api GET '/api/v1/alerts?state=firing' | jq '.alerts | length')" = 1 ] && break
    sleep 0.1
done
[ "$(api GET '/api/v1/alerts?state=firing' | jq '.alerts | length')" = 1 ] || fail "the alert did not fire"
t_fire=$(date +%s%3N)
kill -9 "$SERVER_PID"
wait "$SERVER_PID" 2>/dev/null || true
[ ! -s "$WORK/hooks.jsonl" ] || fail "notified before group_wait"
ok "the alert fired; the server was killed inside its group_wait"

SERVER_PORT_WANT=$SERVER_PORT start_server srv --config "$WORK/srv.yaml"
for _ in $(seq 1 100); do [ -s "$WORK/hooks.jsonl" ] && break; sleep 0.1; done
[ -s "$WORK/hooks.jsonl" ] || fail "the waiting notification was lost in the crash"
jq -e '.status == "firing" and .alerts[0].labels.alertname == "GpuHot"' "$WORK/hooks.jsonl" > /dev/null \
    || fail "notification: $(cat "$WORK/hooks.jsonl")"
echo "notified $(( $(date +%s%3N) - t_fire )) ms after the alert fired (group_wait 4 s, a restart between)"
sleep 1
[ "$(wc -l < "$WORK/hooks.jsonl")" = 1 ] || fail "notified more than once: $(cat "$WORK/hooks.jsonl")"
ok "a notification waiting in group_wait survives kill -9 and is sent once after the restart"
