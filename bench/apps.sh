#!/usr/bin/env bash
# Apps, side by side with doing it by hand, in one run:
#  1. clone-to-RUNNING: from the moment the agent's clone of a tiny web app
#     (git daemon on loopback) is done to the app's light turning RUNNING
#     (its container made through the ledgers, its port answering, the
#     probe seeing it), against the same container started with the
#     engine's own API and curl polling its port every 20 ms; medians of
#     ROUNDS, the ratio (target: RUNNING within 2 s of the clone).
#  2. N_APPS apps on one page: what a browser is sent over a minute in which
#     a few apps change (the live socket's apps events) against what a page
#     polling GET /api/v1/apps every 2 s would read; the delay from a stop
#     to its event on the socket (median of 5); the server's CPU per probe
#     pass of all of them (one call per host).
# usage: [ROUNDS=7] [N_APPS=200] [BUILD=build] bench/apps.sh   (root; scripts/build.sh
# first; N_APPS containers on a vfs dockerd take a few minutes)
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-7}
N_APPS=${N_APPS:-200}
B=${BUILD:-$PWD/build}
export AGENT=$B/gpufleet-agent SERVER=$B/gpufleet SRC_DIR=$PWD
export FAKE_NVML=$B/tests/fakes/libnvidia-ml.so.1
source tests/integration/lib.sh
source tests/integration/engines.sh
source bench/lib.sh

PY=/usr/bin/python3
now_ms() { echo $(($(date +%s%N) / 1000000)); }

start_dockerd
import_image "$DOCKER_SOCK"
head -c 24 /dev/urandom | base64 | tr -d '/+=' > "$WORK/agent.token"
PATH="$FAKE_HOOK_DIR:$PATH" start_agent h1 "gpu h100 count=8" --token-file "$WORK/agent.token" --engine-socket "$DOCKER_SOCK" \
    --workspace-root "$WORK/ws" --apps-root "$WORK/apps" --interval 1000
cat > "$WORK/server.yaml" << EOF
container_host_ip: 127.0.0.1
container_default_memory_mib: 32
container_default_cpus: 1
container_port_range: 20000-29999
quota_containers: 100000
quota_memory_mib: 100000000
quota_cpus: 1000000
EOF
start_server s --config "$WORK/server.yaml"
api POST /api/v1/servers "{\"name\":\"h1\",\"address\":\"127.0.0.1\",\"agent_port\":$AGENT_PORT,\"agent_token\":\"$(cat "$WORK/agent.token")\"}" > /dev/null
for _ in $(seq 1 100); do [ "$(api GET /api/v1/gpus | jq '.gpus | length')" = 8 ] && break; sleep 0.2; done

git -C "$WORK" init -q -b main web.src
mkdir -p "$WORK/web.src/www" && echo '<h1>bench</h1>' > "$WORK/web.src/www/index.html"
git -C "$WORK/web.src" add . && git -C "$WORK/web.src" -c user.name=t -c user.email=t@t commit -qm one
git clone -q --bare "$WORK/web.src" "$WORK/git/web.git"
GPORT=$(free_port)
git daemon --base-path="$WORK/git" --export-all --listen=127.0.0.1 --port="$GPORT" --reuseaddr "$WORK/git" >> "$WORK/git.log" 2>&1 &
PIDS+=($!)
sleep 0.5
REPO="git://127.0.0.1:$GPORT/web.git"
CMD="trap 'exit 0' TERM; httpd -f -p 8080 -h /app/www & wait"

# 1. clone done -> RUNNING, against docker run + polling the port
: > "$WORK/ours.ms"
: > "$WORK/anchor.ms"
for r in $(seq 1 "$ROUNDS"); do
    t=$(now_ms)
    id=$(engine "$DOCKER_SOCK" POST "/v1.41/containers/create?name=by-hand-$r" \
        '{"Image":"gf-busybox:1","Entrypoint":["sh","-c","'"$CMD"'"],"Env":["NVIDIA_VISIBLE_DEVICES=void"],"WorkingDir":"/app","HostConfig":{"Init":true,"NanoCpus":1000000000,"Memory":33554432,"RestartPolicy":{"Name":"unless-stopped"},"Binds":["'"$WORK"'/web.src:/app"],"PortBindings":{"8080/tcp":[{"HostIp":"127.0.0.1","HostPort":"'$((30000 + r))'"}]}},"ExposedPorts":{"8080/tcp":{}}}' | jq -r .Id)
    engine "$DOCKER_SOCK" POST "/v1.41/containers/$id/start" > /dev/null
    until curl -fsS -o /dev/null "http://127.0.0.1:$((30000 + r))/index.html" 2> /dev/null; do sleep 0.02; done
    echo $(($(now_ms) - t)) >> "$WORK/anchor.ms"
    engine "$DOCKER_SOCK" DELETE "/v1.41/containers/$id?force=true" > /dev/null

    api POST /api/v1/apps "{\"name\":\"round-$r\",\"repository\":\"$REPO\",\"start_command\":\"$CMD\",\"port\":8080,\"health_path\":\"/index.html\",\"image\":\"gf-busybox:1\"}" > /dev/null
    [ "$HTTP_CODE" = 202 ] || fail "install round-$r: $HTTP_CODE $(cat "$WORK/api.out")"
    cloned=0
    while :; do
        j=$(api GET "/api/v1/apps/round-$r")
        step=$(jq -r '.progress.step // ""' <<< "$j")
        if [ "$cloned" = 0 ] && { [ "$step" = container ] || [ "$(jq -r .phase <<< "$j")" = ready ]; }; then cloned=$(now_ms); fi
        [ "$(jq -r '.health + " " + (.busy | tostring)' <<< "$j")" = "RUNNING false" ] && break
        [ "$(jq -r .health <<< "$j")" = FAILED ] && fail "round-$r failed: $j"
        sleep 0.02
    done
    echo $(($(now_ms) - cloned)) >> "$WORK/ours.ms"
    api DELETE "/api/v1/apps/round-$r" > /dev/null
done
o=$(median < "$WORK/ours.ms")
a=$(median < "$WORK/anchor.ms")
echo "clone done -> RUNNING (median of $ROUNDS): gpufleet ${o} ms (container through the ledgers, the compose file, the probe); by hand (engine API create+start, curl every 20 ms until it answers) ${a} ms; ratio $(awk -v x="$o" -v y="$a" 'BEGIN{printf "%.2f", x / y}') (target: under 2000 ms)"

# 2. N_APPS apps: installed 8 at a time
t=$(now_ms)
for i in $(seq 1 "$N_APPS"); do
    api POST /api/v1/apps "{\"name\":\"app-$i\",\"repository\":\"$REPO\",\"start_command\":\"$CMD\",\"port\":8080,\"image\":\"gf-busybox:1\"}" > /dev/null
    [ "$HTTP_CODE" = 202 ] || fail "install app-$i: $HTTP_CODE $(cat "$WORK/api.out")"
    if [ $((i % 8)) = 0 ]; then
        for _ in $(seq 1 600); do [ "$(api GET /api/v1/apps | jq '[.apps[] | select(.busy)] | length')" = 0 ] && break; sleep 0.1; done
    fi
done
for _ in $(seq 1 1200); do
    [ "$(api GET /api/v1/apps | jq '[.apps[] | select(.health == "RUNNING")] | length')" = "$N_APPS" ] && break
    sleep 0.25
done
echo "installed $N_APPS apps to RUNNING in $(($(now_ms) - t)) ms"

# a minute of the page: 5 apps stopped and started again, each stop timed
"$PY" "$(dirname "$0")/../tests/integration/ctrstream.py" events "ws://127.0.0.1:$SERVER_PORT/api/v1/live" 60 "$WORK/ev.json" apps \
    "Authorization: Bearer $GF_TOKEN" 2> /dev/null &
EVPID=$!
sleep 1
cpu0=$(cpu_of "$SERVER_PID")
probes0=$(scurl -fsS "$SERVER_URL/metrics" | awk '$1 == "gpufleet_apps_probes_total" {print $2}')
: > "$WORK/stop.ms"
for i in 1 2 3 4 5; do
    t=$(date +%s.%N)
    api POST "/api/v1/apps/app-$i/stop" > /dev/null
    sleep 1.5
    jq -r --arg n "app-$i" --argjson t "$t" '[.[] | select(.apps[]? | .name == $n and .health == "STOPPED") | .at][0] - $t' "$WORK/ev.json" |
        awk '{printf "%.1f\n", $1 * 1000}' >> "$WORK/stop.ms"
    api POST "/api/v1/apps/app-$i/start" > /dev/null
    sleep 8
done
wait "$EVPID" || true
cpu1=$(cpu_of "$SERVER_PID")
probes1=$(scurl -fsS "$SERVER_URL/metrics" | awk '$1 == "gpufleet_apps_probes_total" {print $2}')
pushed=$(jq -c '.[] | del(.at)' "$WORK/ev.json" | wc -c)
list=$(api GET /api/v1/apps | wc -c)
polled=$((list * 30))
passes=$(awk -v p="$((probes1 - probes0))" -v n="$N_APPS" 'BEGIN{printf "%.0f", p / n}')
echo "a minute of the apps page with $N_APPS apps, 5 stopped and started: pushed $(jq length "$WORK/ev.json") events, ${pushed} bytes; polling GET /api/v1/apps every 2 s would read ${polled} bytes (30 x ${list}); ratio $(awk -v a="$pushed" -v b="$polled" 'BEGIN{printf "%.4f", a / b}')"
echo "a stop to its STOPPED event on the socket (median of 5): $(median < "$WORK/stop.ms") ms"
echo "probing: $passes passes of $N_APPS apps in the minute, server CPU $(awk -v c="$((cpu1 - cpu0))" -v p="$passes" 'BEGIN{printf "%.1f", c * 10 / (p ? p : 1)}') ms per pass (all its work that minute, divided)"
