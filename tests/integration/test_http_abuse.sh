#!/usr/bin/env bash
# Slowloris against the server and the agent (issue 18, defect 2): 300
# connections from one address that trickle a header line at a time never
# lock anyone else out (a per-address limit), and are cut when their
# headers are not in after http_header_timeout_ms, however steadily they
# trickle (MHD's own timeout restarts with every byte).
source "$(dirname "$0")/lib.sh"
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3

cat > "$WORK/loris.py" <<'PY'
import socket, sys, time
port, n, secs, out = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
socks = []
for i in range(n):
    s = socket.socket()
    s.bind(("127.0.0.9", 0))
    try:
        s.connect(("127.0.0.1", port))
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        s.setblocking(False)
        socks.append(s)
    except OSError:
        s.close()
end = time.time() + secs
closed_at = {}
while time.time() < end and len(closed_at) < len(socks):
    for i, s in enumerate(socks):
        if i in closed_at:
            continue
        try:
            s.sendall(b"X-Slow: 1\r\n")  # a header line, never the end of the headers
            if s.recv(4096) == b"":
                closed_at[i] = time.time()
        except BlockingIOError:
            pass
        except OSError:
            closed_at[i] = time.time()
    time.sleep(0.5)
with open(out, "w") as f:
    f.write("%d %d\n" % (len(socks), len(closed_at)))
PY

# the server: a 2 s header deadline, 32 connections per address
cat > "$WORK/srv.yaml" <<Y
http_header_timeout_ms: 2000
http_max_connections_per_address: 32
Y
start_server srv --config "$WORK/srv.yaml"
"$PY" "$WORK/loris.py" "$SERVER_PORT" 300 6 "$WORK/srv-loris.txt" &
lpid=$!
sleep 1
# others (another address) are served at once while the attack goes on
for i in 1 2 3 4 5; do
    t0=$(date +%s%3N)
    curl -fsS --interface 127.0.0.1 -o /dev/null --max-time 2 "$SERVER_URL/healthz" || fail "healthz during slowloris ($i)"
    [ $(( $(date +%s%3N) - t0 )) -lt 1000 ] || fail "healthz took $(( $(date +%s%3N) - t0 )) ms during slowloris"
    sleep 0.3
done
wait "$lpid"
read -r opened closed < "$WORK/srv-loris.txt"
echo "server: $opened slow connections opened, $closed closed by the server within 6 s"
[ "$closed" = "$opened" ] || fail "$((opened - closed)) trickling connections outlived the header deadline"
ok "server: a slowloris from one address locks nobody out; trickled headers are cut at the deadline"

# the agent: the same HTTP layer, its defaults (15 s, 128 per address)
start_agent ag "gpu h100 count=1"
"$PY" "$WORK/loris.py" "$AGENT_PORT" 300 3 "$WORK/ag-loris.txt" &
lpid=$!
sleep 1
for i in 1 2 3; do
    curl -fsS --interface 127.0.0.1 -o /dev/null --max-time 2 "$AGENT_URL/healthz" || fail "agent healthz during slowloris ($i)"
done
wait "$lpid"
ok "agent: a slowloris from one address locks nobody out"

# ---- request rate limits per caller (issue 18, defect 9) ----
kill "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true
cat > "$WORK/rl.yaml" <<Y
rate_limit_per_s: 5
rate_limit_burst: 10
Y
SERVER_PORT_WANT=$SERVER_PORT start_server srv --config "$WORK/rl.yaml"
other=$("$SERVER" token add admin second --data "$WORK/srv-data")
codes=""
for i in $(seq 1 20); do
    codes+="$(curl -s -o /dev/null -D "$WORK/rl.$i.hdr" -w '%{http_code} ' -H "Authorization: Bearer $GF_TOKEN" "$SERVER_URL/api/v1/servers")"
done
n429=$(echo "$codes" | tr ' ' '\n' | grep -c 429 || true)
[ "$n429" -ge 8 ] || fail "20 quick requests of one token: $codes"
# every 429 carries Retry-After (which request is the last refused one
# depends on how fast the machine sends them: the bucket refills 5/s)
for h in "$WORK"/rl.*.hdr; do
    head -1 "$h" | grep -q ' 429' || continue
    grep -qi '^Retry-After: 1' "$h" || fail "no Retry-After on a 429: $(cat "$h")"
done
code=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $other" "$SERVER_URL/api/v1/servers")
[ "$code" = 200 ] || fail "another token was limited too: $code"
for i in $(seq 1 30); do curl -fsS -o /dev/null "$SERVER_URL/healthz" || fail "healthz limited"; done
sleep 1
code=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $GF_TOKEN" "$SERVER_URL/api/v1/servers")
[ "$code" = 200 ] || fail "the token after a second: $code"
ok "a token past its rate gets 429 with Retry-After; other tokens and /healthz go on"
