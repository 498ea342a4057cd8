#!/usr/bin/env bash
# Alert notifications beyond the plain webhook: grouping (two GPUs heating
# together arrive as one notification after group_wait, and come again
# every repeat_interval), a Slack-compatible webhook, and email through a
# local SMTP sink (written below) with STARTTLS and AUTH.
source "$(dirname "$0")/lib.sh"
command -v openssl > /dev/null || fail "openssl missing"

openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 \
    -keyout "$WORK/key.pem" -out "$WORK/cert.pem" 2> /dev/null || fail "openssl"

RX_PORT=$(free_port)
cat > "$WORK/rx.py" <<'PY'
import http.server, json, sys, threading
out = open(sys.argv[2], "a")
lock = threading.Lock()
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        with lock:
            out.write(json.dumps({"path": self.path, "body": json.loads(body)}) + "\n")
            out.flush()
        self.send_response(200)
        self.end_headers()
    def log_message(self, *a):
        pass
http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
PY
python3 "$WORK/rx.py" "$RX_PORT" "$WORK/hooks.jsonl" > "$WORK/rx.log" 2>&1 &
PIDS+=($!)

# a small SMTP server: EHLO, STARTTLS, AUTH PLAIN, MAIL, RCPT, DATA
SMTP_PORT=$(free_port)
cat > "$WORK/smtp.py" <<'PY'
import base64, socketserver, ssl, sys
port, cert, key, outdir = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(cert, key)
count = [0]
class H(socketserver.StreamRequestHandler):
    def say(self, s):
        self.wfile.write((s + "\r\n").encode()); self.wfile.flush()
    def handle(self):
        tls, authed, rcpt, sender = False, None, [], None
        self.say("220 sink ESMTP")
        while True:
            line = self.rfile.readline()
            if not line:
                return
            cmd = line.decode().strip()
            up = cmd.upper()
            if up.startswith("EHLO") or up.startswith("HELO"):
                self.wfile.write(b"250-sink\r\n")
                self.say("250-STARTTLS" if not tls else "250-AUTH PLAIN")
                self.say("250 8BITMIME")
            elif up == "STARTTLS":
                self.say("220 go ahead")
                self.connection = ctx.wrap_socket(self.connection, server_side=True)
                self.rfile = self.connection.makefile("rb")
                self.wfile = self.connection.makefile("wb")
                tls = True
            elif up.startswith("AUTH PLAIN"):
                parts = cmd.split(" ")
                if len(parts) < 3:
                    self.say("334 ")
                    parts.append(self.rfile.readline().decode().strip())
                authed = base64.b64decode(parts[2]).split(b"\0")[1:]
                self.say("235 ok")
            elif up.startswith("MAIL FROM"):
                if not tls:
                    self.say("530 STARTTLS first"); continue
                sender = cmd[10:]; self.say("250 ok")
            elif up.startswith("RCPT TO"):
                rcpt.append(cmd[8:]); self.say("250 ok")
            elif up == "DATA":
                self.say("354 end with .")
                data = b""
                while True:
                    l = self.rfile.readline()
                    if l in (b".\r\n", b".\n", b""):
                        break
                    data += l
                count[0] += 1
                with open("%s/mail-%d.txt" % (outdir, count[0]), "wb") as f:
                    f.write(b"X-Sink-Auth: " + b":".join(authed or [b"none"]) + b"\r\n")
                    f.write(b"X-Sink-TLS: " + (b"yes" if tls else b"no") + b"\r\n")
                    f.write(b"X-Sink-Rcpt: " + ",".join(rcpt).encode() + b"\r\n")
                    f.write(data)
                self.say("250 queued")
            elif up == "QUIT":
                self.say("221 bye"); return
            else:
                self.say("250 ok")
class S(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
S(("127.0.0.1", port), H).serve_forever()
PY
mkdir -p "$WORK/mail"
python3 "$WORK/smtp.py" "$SMTP_PORT" "$WORK/cert.pem" "$WORK/key.pem" "$WORK/mail" > "$WORK/smtp.log" 2>&1 &
PIDS+=($!)

cat > "$WORK/rules.yaml" <<'Y'
rules:
  - name: GpuHot
    metric: DCGM_FI_DEV_GPU_TEMP
    op: '>'
    threshold: 80
    severity: critical
    annotations: {summary: 'GPU {{ $labels.gpu }} on {{ $host }} at {{ $value }} C'}
Y
cat > "$WORK/srv.yaml" <<Y
alert_rules_file: $WORK/rules.yaml
alert_default_rules: 0
alert_eval_interval_ms: 500
agent_interval_ms: 500
alert_group_by: alertname, server
alert_group_wait_ms: 1500
alert_group_interval_ms: 1000
alert_repeat_interval_ms: 4000
Y
start_agent ag "gpu h100 count=2 temp=50" --interval 250 --hostname gpu-host-1
start_server srv --config "$WORK/srv.yaml"
api POST /api/v1/servers "{\"name\":\"ag\",\"address\":\"127.0.0.1\",\"agent_port\":$AGENT_PORT}" > /dev/null
api POST /api/v1/receivers "{\"name\":\"hook\",\"url\":\"http://127.0.0.1:$RX_PORT/hook\"}" > /dev/null
api POST /api/v1/receivers "{\"name\":\"chat\",\"type\":\"slack\",\"url\":\"http://127.0.0.1:$RX_PORT/slack\"}" > /dev/null
[ "$HTTP_CODE" = 201 ] || fail "slack receiver: $HTTP_CODE"
api POST /api/v1/receivers "{\"name\":\"oncall\",\"type\":\"email\",\"url\":\"smtp://127.0.0.1:$SMTP_PORT\",
    \"from\":\"gpufleet@lab.example\",\"to\":\"ops@lab.example, gpu-team@lab.example\",
    \"username\":\"fleet\",\"password\":\"mail-secret-9\",\"ca_file\":\"$WORK/cert.pem\"}" > "$WORK/r.json"
[ "$HTTP_CODE" = 201 ] || fail "email receiver: $HTTP_CODE $(cat "$WORK/r.json")"
api GET /api/v1/receivers > "$WORK/rl.json"
grep -q 'mail-secret-9' "$WORK/rl.json" && fail "the SMTP password is listed"
jq -e '.receivers[] | select(.name == "oncall") | .password_set == true and .to == "ops@lab.example, gpu-team@lab.example"' \
    "$WORK/rl.json" > /dev/null || fail "email receiver listing: $(cat "$WORK/rl.json")"
for bad in '{"name":"m1","type":"email","url":"smtp://127.0.0.1:25","from":"x","to":"a@b"}' \
    '{"name":"m2","type":"email","url":"smtp://127.0.0.1:25","from":"a@b","to":"a@b\r\nBcc: evil@x"}' \
    '{"name":"m3","type":"email","url":"http://127.0.0.1:25","from":"a@b","to":"a@b"}' \
    '{"name":"m4","type":"pager","url":"http://x"}'; do
    api POST /api/v1/receivers "$bad" > "$WORK/bad.json"
    [ "$HTTP_CODE" = 400 ] || fail "bad receiver accepted: $bad"
done
ok "receivers: webhook, slack, email (password write-only); bad ones refused by field"

# both GPUs heat up together: one notification holding both, after group_wait
sleep 1
printf 'gpu h100 count=2 temp=95\n' > "$WORK/ag.scenario"
for _ in $(seq 1 60); do grep -q '"/hook"' "$WORK/hooks.jsonl" 2>/dev/null && break; sleep 0.1; done
sleep 0.5
[ "$(grep -c '"/hook"' "$WORK/hooks.jsonl")" = 1 ] || fail "grouping: $(grep -c '"/hook"' "$WORK/hooks.jsonl") webhook calls for two alerts"
grep '"/hook"' "$WORK/hooks.jsonl" | head -1 > "$WORK/g.json"
jq -e '.body.alerts | length == 2 and (map(.labels.gpu) | sort) == ["0","1"]' "$WORK/g.json" > /dev/null \
    || fail "group payload: $(cat "$WORK/g.json")"
jq -e '.body.groupLabels == {"alertname":"GpuHot","server":"ag"} and .body.groupKey == "{}:{alertname=\"GpuHot\",server=\"ag\"}"
       and .body.commonLabels.Hostname == "gpu-host-1" and (.body.commonLabels | has("gpu") | not)' "$WORK/g.json" > /dev/null \
    || fail "group labels: $(jq -c '.body | {groupLabels, groupKey, commonLabels}' "$WORK/g.json")"
ok "two alerts of a group in one notification after group_wait (Alertmanager groupKey and commonLabels)"

grep '"/slack"' "$WORK/hooks.jsonl" | head -1 > "$WORK/s.json"
jq -e '.body.text | test("\\[FIRING:2\\] GpuHot") and test("GPU 1 on gpu-host-1 at 95 C")' "$WORK/s.json" > /dev/null \
    || fail "slack text: $(cat "$WORK/s.json")"
ok "Slack-compatible webhook: {\"text\": \"[FIRING:2] GpuHot ...\"}"

for _ in $(seq 1 50); do ls "$WORK/mail"/mail-1.txt > /dev/null 2>&1 && break; sleep 0.1; done
m="$WORK/mail/mail-1.txt"
[ -f "$m" ] || fail "no mail arrived: $(tail -5 "$WORK/srv.log")"
grep -q '^X-Sink-TLS: yes' "$m" || fail "mail not over STARTTLS"
grep -q '^X-Sink-Auth: fleet:mail-secret-9' "$m" || fail "mail not authenticated: $(head -3 "$m")"
grep -q '^X-Sink-Rcpt: <ops@lab.example>,<gpu-team@lab.example>' "$m" || fail "recipients: $(sed -n 3p "$m")"
grep -q '^Subject: \[FIRING:2\] GpuHot' "$m" || fail "subject: $(grep Subject "$m")"
grep -q 'GPU 0 on gpu-host-1 at 95 C' "$m" || fail "mail body"
grep -q 'mail-secret-9' "$WORK/srv.log" && fail "the SMTP password is in the log"
ok "email through SMTP with STARTTLS and AUTH, to both recipients"

# still firing: sent again after repeat_interval
for _ in $(seq 1 70); do [ "$(grep -c '"/hook"' "$WORK/hooks.jsonl")" -ge 2 ] && break; sleep 0.1; done
[ "$(grep -c '"/hook"' "$WORK/hooks.jsonl")" -ge 2 ] || fail "no repeat after repeat_interval"
ok "a firing group is notified again after repeat_interval"

# both acknowledged: no more repeats
api GET '/api/v1/alerts?state=firing' > "$WORK/f.json"
for id in $(jq '.alerts[].id' "$WORK/f.json"); do
    api POST "/api/v1/alerts/$id/ack" '{"comment":"swapping fans"}' > /dev/null
    [ "$HTTP_CODE" = 200 ] || fail "ack $id: $HTTP_CODE"
done
n_acked=$(grep -c '"/hook"' "$WORK/hooks.jsonl")
sleep 5
[ "$(grep -c '"/hook"' "$WORK/hooks.jsonl")" = "$n_acked" ] || fail "acknowledged alerts were repeated"
ok "acknowledged alerts are not repeated"

# cooling down: one resolved notification for the group
printf 'gpu h100 count=2 temp=50\n' > "$WORK/ag.scenario"
for _ in $(seq 1 60); do grep -q '"/hook".*"resolved"' "$WORK/hooks.jsonl" && break; sleep 0.1; done
grep '"/hook".*"status": "resolved"' "$WORK/hooks.jsonl" | tail -1 > "$WORK/r.json"
jq -e '.body.status == "resolved" and (.body.alerts | length == 2) and all(.body.alerts[]; .status == "resolved")' \
    "$WORK/r.json" > /dev/null || fail "group resolved: $(cat "$WORK/r.json")"
ok "resolved together"
