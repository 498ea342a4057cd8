#!/usr/bin/env bash
# /api/v1/live: alert changes and acks pushed over a WebSocket as they
# happen (a real client: python3-websockets), signed in by token or by
# session cookie; a cross-site handshake, no credentials and a plain GET
# are refused.
source "$(dirname "$0")/lib.sh"
# Debian's python3-websockets belongs to Debian's python3
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3
"$PY" -c 'import websockets' 2> /dev/null || fail "python3-websockets missing (scripts/deps.sh test)"

cat > "$WORK/ws.py" <<'PY'
import asyncio, json, sys, time
import websockets
url, secs, out = sys.argv[1], float(sys.argv[2]), sys.argv[3]
headers = [tuple(h.split(": ", 1)) for h in sys.argv[4:]]
async def main():
    try:
        async with websockets.connect(url, extra_headers=headers, open_timeout=5) as ws:
            end = time.time() + secs
            with open(out, "a") as f:
                while time.time() < end:
                    try:
                        m = await asyncio.wait_for(ws.recv(), timeout=max(0.1, end - time.time()))
                    except asyncio.TimeoutError:
                        break
                    f.write(json.dumps({"t": int(time.time() * 1000), "msg": json.loads(m)}) + "\n")
                    f.flush()
    except websockets.exceptions.InvalidStatusCode as e:
        print("status", e.status_code)
        sys.exit(3)
asyncio.run(main())
PY

cat > "$WORK/rules.yaml" <<'Y'
rules:
  - {name: GpuHot, metric: DCGM_FI_DEV_GPU_TEMP, op: '>', threshold: 80, for: 1s}
Y
cat > "$WORK/srv.yaml" <<Y
live_max_per_user: 2
alert_rules_file: $WORK/rules.yaml
alert_default_rules: 0
alert_eval_interval_ms: 300
agent_interval_ms: 300
Y
start_agent ag "gpu h100 count=2 temp=50" --interval 200
start_server srv --config "$WORK/srv.yaml"
api POST /api/v1/servers "{\"name\":\"ag\",\"address\":\"127.0.0.1\",\"agent_port\":$AGENT_PORT}" > /dev/null
WS="ws://127.0.0.1:$SERVER_PORT/api/v1/live"

# refusals
"$PY" "$WORK/ws.py" "$WS" 1 "$WORK/x.jsonl" > "$WORK/anon.txt" && fail "anonymous WebSocket accepted"
grep -q 'status 401' "$WORK/anon.txt" || fail "anonymous: $(cat "$WORK/anon.txt")"
code=$(curl -s -o "$WORK/plain.json" -w '%{http_code}' -H "Authorization: Bearer $GF_TOKEN" "$SERVER_URL/api/v1/live")
[ "$code" = 426 ] || fail "plain GET: $code"
login_cookie=$(curl -s -D - -o /dev/null --data "{\"username\":\"admin\",\"password\":\"$ADMIN_PASSWORD\"}" \
    "$SERVER_URL/api/v1/auth/login" | grep -io 'gf_session=[^;]*')
"$PY" "$WORK/ws.py" "$WS" 1 "$WORK/x.jsonl" "Cookie: $login_cookie" "Origin: http://evil.example" > "$WORK/evil.txt" \
    && fail "cross-site WebSocket accepted"
grep -q 'status 403' "$WORK/evil.txt" || fail "cross-site: $(cat "$WORK/evil.txt")"
ok "WebSocket refused: anonymous (401), cross-site cookie (403), not an upgrade (426)"

# two clients: a script with a token, a browser-like one with a cookie
"$PY" "$WORK/ws.py" "$WS" 8 "$WORK/tok.jsonl" "Authorization: Bearer $GF_TOKEN" &
c1=$!
"$PY" "$WORK/ws.py" "$WS" 8 "$WORK/cookie.jsonl" "Cookie: $login_cookie" "Origin: $SERVER_URL" &
c2=$!
sleep 1
jq -e '.msg.type == "hello" and .msg.user == "admin"' <(head -1 "$WORK/tok.jsonl") > /dev/null || fail "hello: $(head -1 "$WORK/tok.jsonl")"
t_hot=$(date +%s%3N)
printf 'gpu h100 count=2 temp=50\nset gpu=1 temp=97\n' > "$WORK/ag.scenario"
for _ in $(seq 1 50); do grep -q '"state": "firing"' "$WORK/cookie.jsonl" 2>/dev/null && break; sleep 0.1; done
for f in tok cookie; do
    grep -q '"state": "pending"' "$WORK/$f.jsonl" || fail "$f: no pending event"
    grep '"state": "firing"' "$WORK/$f.jsonl" | head -1 > "$WORK/$f.fire"
    jq -e '.msg.type == "alert" and .msg.rule == "GpuHot" and .msg.labels.gpu == "1" and .msg.value == 97' "$WORK/$f.fire" > /dev/null \
        || fail "$f: firing event: $(cat "$WORK/$f.fire")"
done
lag=$(( $(jq .t "$WORK/cookie.fire") - t_hot ))
ok "pending and firing pushed to both clients, firing ${lag} ms after the heat (scrape 0.3 s + eval 0.3 s + for 1 s)"
id=$(jq .msg.id "$WORK/tok.fire")
api POST "/api/v1/alerts/$id/ack" '{"comment":"looking"}' > /dev/null
for _ in $(seq 1 20); do grep -q alert_ack "$WORK/cookie.jsonl" && break; sleep 0.1; done
grep alert_ack "$WORK/cookie.jsonl" | jq -e --argjson id "$id" '.msg.id == $id and .msg.by == "admin" and .msg.comment == "looking"' > /dev/null \
    || fail "ack event: $(grep alert_ack "$WORK/cookie.jsonl")"
printf 'gpu h100 count=2 temp=50\n' > "$WORK/ag.scenario"
for _ in $(seq 1 40); do grep -q '"state": "resolved"' "$WORK/tok.jsonl" && break; sleep 0.1; done
grep -q '"state": "resolved"' "$WORK/tok.jsonl" || fail "no resolved event"
ok "acks and resolutions pushed live"
wait "$c1" "$c2"
scurl -fsS "$SERVER_URL/metrics" > /dev/null

# ---- a stream ends with its credential (issue 18, defect 4) ----
ends_within() { # FILE MS: the client ended (its file has "closed") within MS of now
    for _ in $(seq 1 $(( $2 / 100 ))); do grep -q '"closed"' "$1" && return 0; sleep 0.1; done
    return 1
}
cat > "$WORK/ws_until.py" <<'PY'
import asyncio, json, sys, time
import websockets
url, out = sys.argv[1], sys.argv[2]
headers = [tuple(h.split(": ", 1)) for h in sys.argv[3:]]
async def main():
    async with websockets.connect(url, extra_headers=headers, open_timeout=5) as ws:
        with open(out, "a") as f:
            f.write(json.dumps({"open": int(time.time() * 1000)}) + "\n"); f.flush()
            try:
                while True:
                    await asyncio.wait_for(ws.recv(), timeout=30)
            except websockets.exceptions.ConnectionClosed as e:
                f.write(json.dumps({"closed": int(time.time() * 1000), "code": e.code}) + "\n")
asyncio.run(main())
PY
api POST /api/v1/users '{"username":"watcher","password":"live-stream-pass-9","role":"viewer"}' > /dev/null
wcookie=$(curl -s -D - -o /dev/null --data '{"username":"watcher","password":"live-stream-pass-9"}' \
    "$SERVER_URL/api/v1/auth/login" | grep -io 'gf_session=[^;]*')
wtoken=$(curl -fsS -b "$wcookie" -H "Origin: $SERVER_URL" -X POST --data '{"name":"live"}' "$SERVER_URL/api/v1/tokens" | jq -r .token)
wtid=$(curl -fsS -b "$wcookie" "$SERVER_URL/api/v1/tokens" | jq '.tokens[0].id')
"$PY" "$WORK/ws_until.py" "$WS" "$WORK/rev-tok.jsonl" "Authorization: Bearer $wtoken" &
r1=$!
"$PY" "$WORK/ws_until.py" "$WS" "$WORK/rev-cookie.jsonl" "Cookie: $wcookie" "Origin: $SERVER_URL" &
r2=$!
for _ in $(seq 1 50); do [ -s "$WORK/rev-tok.jsonl" ] && [ -s "$WORK/rev-cookie.jsonl" ] && break; sleep 0.1; done
sleep 1.2
grep -q '"closed"' "$WORK/rev-tok.jsonl" "$WORK/rev-cookie.jsonl" && fail "a live stream closed before its credential ended"
curl -fsS -o /dev/null -b "$wcookie" -H "Origin: $SERVER_URL" -X DELETE "$SERVER_URL/api/v1/tokens/$wtid"
ends_within "$WORK/rev-tok.jsonl" 2000 || fail "a revoked token's stream goes on"
grep -q '"code": 1008' "$WORK/rev-tok.jsonl" || fail "revoked token: $(cat "$WORK/rev-tok.jsonl")"
curl -fsS -o /dev/null -b "$wcookie" -H "Origin: $SERVER_URL" -X POST "$SERVER_URL/api/v1/auth/logout"
ends_within "$WORK/rev-cookie.jsonl" 2000 || fail "a logged-out session's stream goes on"
wait "$r1" "$r2" 2>/dev/null || true
ok "a live stream ends within a second or two of its token's revocation or its session's logout"

# ---- live connections per user are bounded (the rest of the room stays) ----
for i in 1 2 3; do
    "$PY" "$WORK/ws_until.py" "$WS" "$WORK/many$i.jsonl" "Authorization: Bearer $GF_TOKEN" > "$WORK/many$i.out" 2>&1 &
    eval "m$i=\$!"
done
sleep 2
opened=$(cat "$WORK"/many?.jsonl 2>/dev/null | grep -c '"open"' || true)
refused=$(cat "$WORK"/many?.out | grep -c '429' || true)
[ "$opened" = 2 ] && [ "$refused" = 1 ] || fail "three streams of one user: $opened opened, $refused refused"
kill "$m1" "$m2" "$m3" 2>/dev/null || true
ok "a user's live streams are bounded (live_max_per_user: 429)"

# ---- a handshake abandoned before the 101 leaks nothing (issue 18, 19; ASan's leak check) ----
for i in $(seq 1 20); do
    "$PY" - "$SERVER_PORT" "$GF_TOKEN" <<'PY'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(("GET /api/v1/live HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
           "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
           "Authorization: Bearer %s\r\n\r\n" % sys.argv[2]).encode())
s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
s.close()  # a reset, before reading the answer
PY
done
curl -fsS -o /dev/null "$SERVER_URL/healthz" || fail "server after abandoned handshakes"
ok "abandoned handshakes: the server goes on (the ASan build checks nothing leaked)"
# the server stops cleanly with clients connected
"$PY" "$WORK/ws.py" "$WS" 30 "$WORK/late.jsonl" "Authorization: Bearer $GF_TOKEN" &
c3=$!
sleep 0.5
kill "$SERVER_PID"
t0=$(date +%s%3N)
wait "$SERVER_PID" 2>/dev/null || true
wait "$c3" 2>/dev/null || true
[ $(( $(date +%s%3N) - t0 )) -lt 5000 ] || fail "stopping with a WebSocket client took too long"
ok "a stop closes live clients and ends promptly"
