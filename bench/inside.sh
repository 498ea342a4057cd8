#!/usr/bin/env bash
# Inside containers, side by side with the engine itself, in one run:
#  1. the web terminal (WebSocket -> server -> agent -> the engine's exec)
#     against the same exec straight on dockerd's socket (what `docker exec
#     -it` does): first byte after opening, and one key's echo, medians of
#     ROUNDS shells x 20 keys each, and the ratios. Targets: first byte
#     under 300 ms, echo under 20 ms.
#  2. a FILE_MB MB file downloaded from the container through gpufleet
#     (browser -> server -> agent -> the engine's archive API, streamed)
#     against the engine's own archive API, and the server's and agent's
#     peak memory before and after (target: constant memory).
#  3. a log follow of a container printing LINES_PER_S lines a second, in
#     a real browser on the container page for FOLLOW_S seconds: the lines
#     the page counted against the lines the container printed (ratio), and
#     the longest main-thread task (target: the page stays responsive,
#     under 100 ms).
# usage: [ROUNDS=10] [LINES_PER_S=10000] [FOLLOW_S=10] [BUILD=build] bench/inside.sh
#        (root; scripts/build.sh and scripts/build-web.sh first)
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-10}
FILE_MB=${FILE_MB:-1024}
LINES_PER_S=${LINES_PER_S:-10000}
FOLLOW_S=${FOLLOW_S:-10}
B=${BUILD:-$PWD/build}
export AGENT=$B/gpufleet-agent SERVER=$B/gpufleet SRC_DIR=$PWD
export FAKE_NVML=$B/tests/fakes/libnvidia-ml.so.1
source tests/integration/lib.sh
source tests/integration/engines.sh
source bench/lib.sh
PY=/usr/bin/python3

start_dockerd
import_image "$DOCKER_SOCK"
head -c 24 /dev/urandom | base64 | tr -d '/+=' > "$WORK/agent.token"
TOK=$(cat "$WORK/agent.token")
start_agent a1 "gpu h100 count=1" --token-file "$WORK/agent.token" --engine-socket "$DOCKER_SOCK" --workspace-root "$WORK/ws"
printf 'container_host_ip: 127.0.0.1\ncontainer_default_memory_mib: 64\n' > "$WORK/server.yaml"
start_server s --config "$WORK/server.yaml"
api POST /api/v1/servers "{\"name\":\"gpu-1\",\"address\":\"127.0.0.1\",\"agent_port\":$AGENT_PORT,\"agent_token\":\"$TOK\"}" > /dev/null
api POST /api/v1/containers '{"name":"shell","image":"gf-busybox:1","gpus":0,"command":["sleep","100000"]}' > "$WORK/c.json"
[ "$HTTP_CODE" = 201 ] || { echo "create: $(cat "$WORK/c.json")"; exit 1; }
id=$(jq -r .id "$WORK/c.json")
eid=$(jq -r .engine_id "$WORK/c.json")

# --- 1. terminal: alternate the two paths, ROUNDS shells each
: > "$WORK/gf.jsonl"
: > "$WORK/en.jsonl"
for _ in $(seq 1 "$ROUNDS"); do
    "$PY" bench/inside.py gpufleet "ws://127.0.0.1:$SERVER_PORT/api/v1/containers/$id/terminal" "$GF_TOKEN" 1 >> "$WORK/gf.jsonl"
    "$PY" bench/inside.py engine "$DOCKER_SOCK" "$eid" 1 >> "$WORK/en.jsonl"
done
med() { jq -r ".$2[]" "$1" | median; }
gf_first=$(med "$WORK/gf.jsonl" first_ms); en_first=$(med "$WORK/en.jsonl" first_ms)
gf_echo=$(med "$WORK/gf.jsonl" echo_ms); en_echo=$(med "$WORK/en.jsonl" echo_ms)
printf 'terminal first byte: gpufleet %.1f ms, engine %.1f ms, ratio %.2f (target under 300 ms)\n' \
    "$gf_first" "$en_first" "$(echo "$gf_first / $en_first" | bc -l)"
printf 'terminal key echo:   gpufleet %.2f ms, engine %.2f ms, ratio %.2f (target under 20 ms)\n' \
    "$gf_echo" "$en_echo" "$(echo "$gf_echo / $en_echo" | bc -l)"

# --- 2. a big file out of the container, both ways
SPID=$SERVER_PID APID=$(pgrep -f "gpufleet-agent --listen 127.0.0.1:$AGENT_PORT" | head -1)
hwm() { awk '/^VmHWM/ {print $2}' "/proc/$1/status"; }
# the file, written inside the container by a shell (the image's head)
engine "$DOCKER_SOCK" POST "/v1.41/containers/$eid/exec" "{\"Cmd\":[\"sh\",\"-c\",\"head -c $((FILE_MB * 1048576)) /dev/zero > /tmp/big\"]}" > "$WORK/x.json"
xid=$(jq -r .Id "$WORK/x.json")
engine "$DOCKER_SOCK" POST "/v1.41/exec/$xid/start" '{"Detach":true}' > /dev/null
for _ in $(seq 1 600); do [ "$(engine "$DOCKER_SOCK" GET "/v1.41/exec/$xid/json" | jq .Running)" = false ] && break; sleep 0.2; done
s0=$(hwm "$SPID"); a0=$(hwm "$APID")
t0=$(date +%s%N)
got=$(curl -sS -o /dev/null -w '%{http_code} %{size_download}' -H "Authorization: Bearer $GF_TOKEN" "$SERVER_URL/api/v1/containers/$id/files/download?path=/tmp/big")
t1=$(date +%s%N)
want=$(curl -sS -o /dev/null -w '%{http_code} %{size_download}' --unix-socket "$DOCKER_SOCK" "http://d/v1.41/containers/$eid/archive?path=/tmp/big")
t2=$(date +%s%N)
echo "gpufleet: $got; engine (a tar): $want"
[ "${got#* }" = $((FILE_MB * 1048576)) ] || { echo "the download is not the file's size"; exit 1; }
s1=$(hwm "$SPID"); a1=$(hwm "$APID")
printf 'download of %d MB: gpufleet %.2f s, engine %.2f s, ratio %.2f; peak memory grew by %d kB in the server, %d kB in the agent (target: constant)\n' \
    "$FILE_MB" "$(echo "($t1 - $t0) / 1000000000" | bc -l)" "$(echo "($t2 - $t1) / 1000000000" | bc -l)" \
    "$(echo "($t1 - $t0) / ($t2 - $t1)" | bc -l)" $((s1 - s0)) $((a1 - a0))

# --- 3. a loud container followed in the browser
body=$(jq -nc --arg n "$LINES_PER_S" '{name:"loud",image:"gf-busybox:1",gpus:0,
  command:["sh","-c","while true; do seq -s \" of a loud container, padded to about eighty bytes ..........\n\" 1 \($n); echo; sleep 1; done"]}')
api POST /api/v1/containers "$body" > "$WORK/loud.json"
lid=$(jq -r .id "$WORK/loud.json")
sleep 1
CONTAINER_ID=$lid GF_URL=$SERVER_URL ADMIN_PASSWORD=$ADMIN_PASSWORD FOLLOW_S=$FOLLOW_S \
    node web/tests/inside.bench.mjs > "$WORK/ui.json"
lines=$(jq .lines "$WORK/ui.json")
printf 'log follow in the browser: %d lines in %s s (the container printed about %d a second: ratio %.2f), longest main-thread task %s ms (target under 100 ms), %s lines kept in view\n' \
    "$lines" "$FOLLOW_S" "$LINES_PER_S" "$(echo "$lines / ($LINES_PER_S * $FOLLOW_S)" | bc -l)" \
    "$(jq .longest_task_ms "$WORK/ui.json")" "$(jq .in_view "$WORK/ui.json")"
