#!/usr/bin/env bash
# Inside containers, on a real Docker 20.10 and a real Podman 4.3: logs
# downloaded (stdout and stderr told apart, tail, cut at the bound) and
# followed live over a WebSocket until the container stops; a web terminal
# (a TTY shell: first byte and echo timed, UTF-8, resize, exit) with its
# opening and closing audited; roles (a viewer reads logs but gets no
# terminal, another user's container does not exist), a revoked token's
# terminal closed, bad parameters named. A real client: python3-websockets.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/engines.sh"
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3
"$PY" -c 'import websockets' 2> /dev/null || fail "python3-websockets missing (scripts/deps.sh test)"
WSC="$(dirname "$0")/ctrstream.py"

start_two_hosts

cat > "$WORK/server.yaml" << EOF
container_host_ip: 127.0.0.1
container_default_memory_mib: 64
container_reconcile_ms: 500
stream_max_per_user: 3
EOF
mkdir -p "$WORK/s-data"
make_admin "$WORK/s-data"
add_users "$WORK/s-data" alice:user bob:user vera:viewer
TOK_alice2=$("$SERVER" token add alice second --data "$WORK/s-data")
start_server s --config "$WORK/server.yaml"
WS="ws://127.0.0.1:$SERVER_PORT/api/v1/containers"
register_two_hosts

# a container that logs 12 MB, made first: the engine takes its time to
# store that, meanwhile the other checks run (downloaded near the end)
body='{"name":"loud","image":"gf-busybox:1","host":"dk","gpus":0,"command":["sh","-c","trap \"exit 0\" TERM; s=$(head -c 10000 /dev/zero | tr \\\\0 a); yes \"$s\" | head -n 1200; echo end-of-loud; sleep 600 & wait"]}'
as alice POST /api/v1/containers "$body" > "$WORK/loud.json"
[ "$HTTP_CODE" = 201 ] || fail "loud: $HTTP_CODE $(cat "$WORK/loud.json")"
lid=$(jq -r .id "$WORK/loud.json")
tw=$(date +%s%N)

# the agent's side wants its token and its own upgrade
code=$(curl -s -o /dev/null -w '%{http_code}' "$DK_URL/api/v1/engine/containers/x/logs")
[ "$code" = 401 ] || fail "agent logs stream without a token: $code"
code=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $AGENT_TOKEN" "$DK_URL/api/v1/engine/containers/x/logs")
[ "$code" = 426 ] || fail "agent logs stream without its upgrade: $code"
ok "agent: streams need its token and Upgrade: gpufleet-stream"

# check_engine HOST: every check on the containers of one host
check_engine() {
    local host=$1 body id out
    body="{\"name\":\"talk-$host\",\"image\":\"gf-busybox:1\",\"host\":\"$host\",\"gpus\":0,
           \"command\":[\"sh\",\"-c\",\"trap 'exit 0' TERM; echo out-1; echo err-1 >&2; printf '\\\\303\\\\251t\\\\303\\\\251\\\\n'; i=0; while true; do i=\$((i+1)); echo tick-\$i; sleep 0.1; done\"]}"
    as alice POST /api/v1/containers "$body" > "$WORK/c-$host.json"
    [ "$HTTP_CODE" = 201 ] || fail "$host: create: $HTTP_CODE $(cat "$WORK/c-$host.json")"
    id=$(jq -r .id "$WORK/c-$host.json")
    sleep 1

    # --- download: both streams, one of them, the tail; a name for the file
    curl -sS -D "$WORK/h-$host" -o "$WORK/all-$host.txt" -H "Authorization: Bearer $TOK_alice" "$SERVER_URL/api/v1/containers/$id/logs"
    grep -q "^HTTP/1.1 200" "$WORK/h-$host" || fail "$host: logs download: $(head -1 "$WORK/h-$host") $(cat "$WORK/all-$host.txt")"
    grep -qi "content-disposition: attachment; filename=\"talk-$host-logs.txt\"" "$WORK/h-$host" || fail "$host: no file name: $(cat "$WORK/h-$host")"
    grep -qx out-1 "$WORK/all-$host.txt" && grep -qx err-1 "$WORK/all-$host.txt" && grep -qx tick-3 "$WORK/all-$host.txt" \
        && grep -qx 'été' "$WORK/all-$host.txt" || fail "$host: logs: $(head -c 300 "$WORK/all-$host.txt")"
    as alice GET "/api/v1/containers/$id/logs?stream=stderr" > "$WORK/err-$host.txt"
    [ "$(cat "$WORK/err-$host.txt")" = err-1 ] || fail "$host: stderr alone: $(head -c 300 "$WORK/err-$host.txt")"
    as alice GET "/api/v1/containers/$id/logs?stream=stdout" > "$WORK/out-$host.txt"
    grep -qx err-1 "$WORK/out-$host.txt" && fail "$host: stderr in stdout alone"
    grep -qx out-1 "$WORK/out-$host.txt" || fail "$host: stdout alone: $(head -c 300 "$WORK/out-$host.txt")"
    as alice GET "/api/v1/containers/$id/logs?tail=2&stream=stdout" > "$WORK/tail-$host.txt"
    [ "$(wc -l < "$WORK/tail-$host.txt")" = 2 ] && grep -q '^tick-' "$WORK/tail-$host.txt" || fail "$host: tail=2: $(cat "$WORK/tail-$host.txt")"
    ok "$host: logs download: stdout and stderr apart or together, UTF-8 kept, tail, a file name"

    # --- roles: a viewer reads logs but gets no terminal; bob does not see it
    as vera GET "/api/v1/containers/$id/logs?tail=1" > /dev/null
    [ "$HTTP_CODE" = 200 ] || fail "$host: viewer's logs: $HTTP_CODE"
    as bob GET "/api/v1/containers/$id/logs" > /dev/null
    [ "$HTTP_CODE" = 404 ] || fail "$host: another user's logs: $HTTP_CODE"
    out=$("$PY" "$WSC" term "$WS/$id/terminal" "$WORK/x.json" "Authorization: Bearer $TOK_vera" || true)
    [ "$out" = "status 403" ] || fail "$host: viewer's terminal: $out"
    out=$("$PY" "$WSC" term "$WS/$id/terminal" "$WORK/x.json" "Authorization: Bearer $TOK_bob" || true)
    [ "$out" = "status 404" ] || fail "$host: another user's terminal: $out"
    out=$("$PY" "$WSC" logs "$WS/$id/logs/live" 1 "$WORK/x.json" "Authorization: Bearer $TOK_bob" || true)
    [ "$out" = "status 404" ] || fail "$host: another user's log follow: $out"
    ok "$host: a viewer reads the logs but gets no terminal (403); another user's container is 404 to both"

    # --- the terminal
    "$PY" "$WSC" term "$WS/$id/terminal?rows=24&cols=80" "$WORK/term-$host.json" "Authorization: Bearer $TOK_alice" \
        || fail "$host: terminal: $(cat "$WORK/term-$host.json" 2>/dev/null)"
    t=$(cat "$WORK/term-$host.json")
    jq -e '.text | contains("gf-42-ok")' <<< "$t" > /dev/null || fail "$host: no command output: $t"
    jq -e '.text | contains("33 101")' <<< "$t" > /dev/null || fail "$host: resize not seen by stty: $t"
    jq -e '.text | contains("été-done")' <<< "$t" > /dev/null || fail "$host: UTF-8 through the terminal: $t"
    jq -e '.text | test("Mem:.*used")' <<< "$t" > /dev/null || fail "$host: top in the terminal: $t"
    jq -e '.text | contains("VI-WROTE-IT")' <<< "$t" > /dev/null || fail "$host: vi in the terminal: $t"
    [ "$(jq .close <<< "$t")" = 1000 ] || fail "$host: terminal close after exit: $t"
    first=$(jq '.first_byte_ms | floor' <<< "$t")
    echo_ms=$(jq '.echo_ms | sort | .[length/2|floor] * 10 | floor / 10' <<< "$t")
    [ "$first" -lt 1000 ] || fail "$host: first terminal byte after ${first} ms"
    ok "$host: terminal: a shell (first byte ${first} ms, key echo median ${echo_ms} ms), UTF-8, resize seen by stty, top draws its screen, vi edits and writes a file, exit closes it (1000)"

    # --- the live follow: both streams, in order, until the container stops
    "$PY" "$WSC" logs "$WS/$id/logs/live?tail=all" 30 "$WORK/live-$host.json" "Authorization: Bearer $TOK_alice" &
    local fpid=$!
    "$PY" "$WSC" hold "$WS/$id/terminal" 30 "$WORK/held-$host.json" "Authorization: Bearer $TOK_alice" &
    local tpid=$!
    sleep 1.5
    as alice POST "/api/v1/containers/$id/stop" > /dev/null
    [ "$HTTP_CODE" = 200 ] || fail "$host: stop: $HTTP_CODE"
    wait "$fpid" || fail "$host: log follow"
    wait "$tpid" || fail "$host: a terminal open while the container stops"
    jq -e '.close == 1000 and .after_s < 20' "$WORK/held-$host.json" > /dev/null || fail "$host: the terminal did not end with the container: $(cat "$WORK/held-$host.json")"
    l=$(cat "$WORK/live-$host.json")
    jq -e '[.chunks[] | select(.[0] == "e")] | map(.[1]) | join("") == "err-1\n"' <<< "$l" > /dev/null \
        || fail "$host: stderr in the follow: $(head -c 400 <<< "$l")"
    jq -e '[.chunks[] | select(.[0] == "o")] | map(.[1]) | join("") | startswith("out-1\nété\ntick-1\ntick-2\n")' <<< "$l" > /dev/null \
        || fail "$host: stdout in the follow: $(head -c 400 <<< "$l")"
    n=$(jq '[.chunks[] | select(.[0] == "o")] | map(.[1]) | join("") | split("\n") | map(select(startswith("tick-"))) | length' <<< "$l")
    [ "$n" -ge 15 ] || fail "$host: only $n ticks followed: $(head -c 400 <<< "$l")"
    jq -e '.ends == ["the container stopped"] and .close == 1000' <<< "$l" > /dev/null || fail "$host: end of the follow: $(jq -c '{ends,close,reason}' <<< "$l")"
    ok "$host: log follow: $n lines in $(jq .messages <<< "$l") messages, stdout and stderr apart, ended when the container stopped; an open terminal ended with it (1000)"

    # --- a stopped container: no terminal, its logs still there
    out=$("$PY" "$WSC" term "$WS/$id/terminal" "$WORK/x.json" "Authorization: Bearer $TOK_alice" || true)
    [ "$out" = "status 409" ] || fail "$host: terminal into a stopped container: $out"
    as alice GET "/api/v1/containers/$id/logs?stream=stderr" > "$WORK/x.txt"
    [ "$HTTP_CODE" = 200 ] && [ "$(cat "$WORK/x.txt")" = err-1 ] || fail "$host: a stopped container's logs: $HTTP_CODE"
    ok "$host: a stopped container has no terminal (409) and keeps its logs"
    CID[$host]=$id

    # --- a TTY container: its logs are the raw stream (no stderr apart), shown as stdout
    body="{\"name\":\"tty-$host\",\"image\":\"gf-busybox:1\",\"host\":\"$host\",\"gpus\":0,\"tty\":true,
           \"command\":[\"sh\",\"-c\",\"echo tty-out; echo tty-err >&2; sleep 600\"]}"
    as alice POST /api/v1/containers "$body" > "$WORK/t-$host.json"
    [ "$HTTP_CODE" = 201 ] || fail "$host: create a TTY container: $HTTP_CODE $(cat "$WORK/t-$host.json")"
    id=$(jq -r .id "$WORK/t-$host.json")
    for _ in $(seq 1 50); do as alice GET "/api/v1/containers/$id/logs" | grep -q tty-err && break; sleep 0.1; done
    as alice GET "/api/v1/containers/$id/logs" > "$WORK/tty-$host.txt"
    grep -q "^tty-out" "$WORK/tty-$host.txt" && grep -q "^tty-err" "$WORK/tty-$host.txt" || fail "$host: a TTY container's logs: $(head -c 200 "$WORK/tty-$host.txt")"
    as alice GET "/api/v1/containers/$id/logs?stream=stderr" > "$WORK/tty-err-$host.txt"
    [ ! -s "$WORK/tty-err-$host.txt" ] || fail "$host: a TTY has no stderr apart: $(cat "$WORK/tty-err-$host.txt")"
    "$PY" "$WSC" logs "$WS/$id/logs/live" 1.5 "$WORK/tty-live-$host.json" "Authorization: Bearer $TOK_alice"
    jq -e '[.chunks[] | select(.[0] == "o")] | map(.[1]) | join("") | test("tty-out\r?\ntty-err")' "$WORK/tty-live-$host.json" > /dev/null \
        || fail "$host: a TTY container's follow: $(cat "$WORK/tty-live-$host.json")"
    as alice DELETE "/api/v1/containers/$id" > /dev/null
    ok "$host: a TTY container's logs (the raw stream) come whole, as stdout, downloaded and followed"
}

declare -A CID
check_engine dk
check_engine pd

# --- opening and closing terminals are audited, keystrokes are not
n=$(sqlite3 "$WORK/s-data/audit.db" "SELECT count(*) FROM audit WHERE username = 'alice' AND action = 'container.terminal' AND result = 'ok'")
[ "$n" -ge 2 ] || fail "terminal openings audited: $n"
ends=$(sqlite3 "$WORK/s-data/audit.db" "SELECT details FROM audit WHERE username = 'alice' AND action = 'container.terminal_end'")
[ "$(grep -c duration_ms <<< "$ends")" -ge 2 ] || fail "terminal ends audited: $ends"
sqlite3 "$WORK/s-data/audit.db" "SELECT details FROM audit" | grep -q 'gf-\$((6' && fail "keystrokes in the audit log"
n=$(sqlite3 "$WORK/s-data/audit.db" "SELECT count(*) FROM audit WHERE username = 'vera' AND action = 'container.terminal' AND result = 'denied'")
[ "$n" -ge 1 ] || fail "a refused terminal is not audited"
ok "terminals: opening (also refused ones) and closing audited with the duration; what was typed is not"

# --- a revoked token's terminal ends within a second or two
as alice POST "/api/v1/containers/${CID[dk]}/start" > /dev/null
[ "$HTTP_CODE" = 200 ] || fail "start again: $HTTP_CODE"
"$PY" "$WSC" hold "$WS/${CID[dk]}/terminal" 30 "$WORK/hold.json" "Authorization: Bearer $TOK_alice2" &
hpid=$!
sleep 1.5
tid=$(api GET /api/v1/tokens | jq '.tokens[] | select(.name == "second") | .id')
api DELETE "/api/v1/tokens/$tid" > /dev/null
[ "$HTTP_CODE" = 200 ] || fail "revoke: $HTTP_CODE"
t0=$(date +%s%N)
wait "$hpid"
h=$(cat "$WORK/hold.json")
[ "$(jq .close <<< "$h")" = 1008 ] || fail "a revoked token's terminal: $h"
ms=$((($(date +%s%N) - t0) / 1000000))
[ "$ms" -lt 3000 ] || fail "the revoked terminal lived ${ms} ms on"
ok "a revoked token's terminal closes (1008) ${ms} ms after the revocation"

# --- the container page in a real browser: logs followed, a terminal typed into
: "${BUILD_DIR:?}"
[ -x /usr/bin/chromium ] || fail "chromium missing (scripts/deps.sh test)"
[ -d "$SRC_DIR/web/node_modules/playwright-core" ] || fail "web/node_modules missing (scripts/build-web.sh)"
CHECK=inside CONTAINER_ID="${CID[dk]}" GF_URL="$SERVER_URL" ADMIN_PASSWORD="$ADMIN_PASSWORD" SERVER_NAME=dk \
    ARTIFACTS="$BUILD_DIR/ui-artifacts" node "$SRC_DIR/web/tests/engine.test.mjs" \
    || fail "logs and terminal in the UI (screenshots in $BUILD_DIR/ui-artifacts)"

# --- per-user bound: the fourth stream of one user is refused, others still get theirs
holders=()
for i in 1 2 3; do
    "$PY" "$WSC" hold "$WS/${CID[dk]}/logs/live" 20 "$WORK/many$i.json" "Authorization: Bearer $TOK_alice" &
    PIDS+=($!)
    holders+=($!)
done
sleep 1.5
out=$("$PY" "$WSC" hold "$WS/${CID[dk]}/logs/live" 1 "$WORK/x.json" "Authorization: Bearer $TOK_alice" || true)
[ "$out" = "status 429" ] || fail "a fourth stream of one user: $out"
as alice GET "/api/v1/containers/${CID[dk]}/logs?tail=1" > /dev/null
[ "$HTTP_CODE" = 429 ] || fail "a log download (a stream too) past the user's bound: $HTTP_CODE"
api GET "/api/v1/containers/${CID[dk]}/logs?tail=1" > /dev/null
[ "$HTTP_CODE" = 200 ] || fail "others' requests while one user holds streams: $HTTP_CODE"
kill "${holders[@]}" 2> /dev/null || true
wait "${holders[@]}" 2> /dev/null || true
ok "stream_max_per_user: a user's fourth stream (a follow or a download) is refused (429); everyone else is served"

# --- bad input names its field; a plain GET on a WebSocket route says so
for q in "tail=abc:tail" "since=-1:since" "stream=both2:stream" "timestamps=2:timestamps"; do
    as alice GET "/api/v1/containers/${CID[dk]}/logs?${q%%:*}" > "$WORK/bad.json"
    [ "$HTTP_CODE" = 400 ] && [ "$(jq -r .error.field "$WORK/bad.json")" = "${q#*:}" ] || fail "bad ${q%%:*}: $HTTP_CODE $(cat "$WORK/bad.json")"
done
out=$("$PY" "$WSC" term "$WS/${CID[dk]}/terminal?rows=x1" "$WORK/x.json" "Authorization: Bearer $TOK_alice" || true)
[ "$out" = "status 400" ] || fail "bad rows: $out"
as alice GET "/api/v1/containers/${CID[dk]}/terminal" > /dev/null
[ "$HTTP_CODE" = 426 ] || fail "a plain GET on the terminal: $HTTP_CODE"
as alice GET "/api/v1/containers/99999/logs" > /dev/null
[ "$HTTP_CODE" = 404 ] || fail "no such container: $HTTP_CODE"
ok "bad tail, since, stream, timestamps and rows are 400 naming the field; a plain GET is 426; no such container 404"

# --- the 12 MB log downloads whole, streamed: the server's memory stays flat
for _ in $(seq 1 300); do
    as alice GET "/api/v1/containers/$lid/logs?tail=1" | grep -q end-of-loud && break
    sleep 0.2
done
tw=$((($(date +%s%N) - tw) / 1000000))
hwm() { awk '/^VmHWM/ {print $2}' "/proc/$1/status"; }
s0=$(hwm "$SERVER_PID")
t0=$(date +%s%N)
curl -sS -D "$WORK/h-loud" -o "$WORK/loud.txt" -H "Authorization: Bearer $TOK_alice" "$SERVER_URL/api/v1/containers/$lid/logs"
t1=$(date +%s%N)
s1=$(hwm "$SERVER_PID")
lines=$(wc -l < "$WORK/loud.txt")
[ "$lines" = 1201 ] && [ "$(tail -1 "$WORK/loud.txt")" = end-of-loud ] && [ "$(sort -u "$WORK/loud.txt" | wc -l)" = 2 ] \
    || fail "the 12 MB log: $lines lines, $(stat -c %s "$WORK/loud.txt") bytes, ends $(tail -c 100 "$WORK/loud.txt")"
grep -qi '^content-disposition: attachment; filename="loud-logs.txt"' "$WORK/h-loud" || fail "the download's headers: $(cat "$WORK/h-loud")"
[ $((s1 - s0)) -lt 6144 ] || fail "the server's peak memory grew ${s0}->${s1} kB for a 12 MB log (a buffered answer would hold all of it)"
[ "$(curl -sS -H "Authorization: Bearer $TOK_alice" "$SERVER_URL/api/v1/containers/$lid/logs?stream=stderr" | wc -c)" = 0 ] \
    || fail "stderr of a container that wrote none"
rm -f "$WORK/loud.txt"
ok "a 12 MB log ($lines lines) (all there ${tw} ms after it was made) downloaded whole in $(((t1 - t0) / 1000000)) ms; the server's peak memory grew by $(((s1 - s0) / 1024)) MB"
