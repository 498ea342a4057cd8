#!/usr/bin/env bash
# Containers on a real Docker 20.10 daemon: GPUs through the (faked) NVIDIA
# toolkit hook, host ports, the ledgers under 20 concurrent creates from 3
# users with quotas, stop/remove releasing, the engine's own CLI behind
# gpufleet's back, dockerd restarted, roles, unmanaged containers, bad input.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/engines.sh"

start_dockerd
import_image "$DOCKER_SOCK"

# an 8-GPU host whose agent drives this dockerd
head -c 24 /dev/urandom | base64 | tr -d '/+=' > "$WORK/agent.token"
AGENT_TOKEN=$(cat "$WORK/agent.token")
PATH="$FAKE_HOOK_DIR:$PATH" start_agent a1 "gpu h100 count=8" --token-file "$WORK/agent.token" \
    --engine-socket "$DOCKER_SOCK" --workspace-root "$WORK/ws" --interval 500
mapfile -t UUIDS < <(gpu_uuids "$AGENT_URL" "$AGENT_TOKEN")
[ ${#UUIDS[@]} -eq 8 ] || fail "fake GPUs: ${#UUIDS[@]}"

info=$(curl -fsS -H "Authorization: Bearer $AGENT_TOKEN" "$AGENT_URL/api/v1/engine")
[ "$(jq -r .engine <<< "$info")" = docker ] || fail "engine: $info"
[ "$(jq -r .api_version <<< "$info")" = 1.41 ] || fail "api version: $info"
[ "$(jq -r .gpu_requests <<< "$info")" = nvidia ] || fail "gpu requests: $info"
code=$(curl -s -o /dev/null -w '%{http_code}' "$AGENT_URL/api/v1/engine/containers")
[ "$code" = 401 ] || fail "the agent's engine API without its token: $code"
ok "agent: Docker $(jq -r .version <<< "$info"), API 1.41, GPU requests through the NVIDIA hook; token required"

PORT_LO=$((20000 + (RANDOM % 90) * 100))
PORT_HI=$((PORT_LO + 99))
cat > "$WORK/server.yaml" << EOF
container_port_range: $PORT_LO-$PORT_HI
container_host_ip: 127.0.0.1
container_default_memory_mib: 64
container_default_cpus: 1
container_reconcile_ms: 300
quota_gpus: 3
quota_containers: 6
EOF
mkdir -p "$WORK/s-data"
make_admin "$WORK/s-data"
add_users "$WORK/s-data" alice:user bob:user carol:user vera:viewer otto:operator
start_server s --config "$WORK/server.yaml"
api POST /api/v1/servers "{\"name\":\"gpu-01\",\"address\":\"127.0.0.1\",\"agent_port\":$AGENT_PORT,\"agent_token\":\"$AGENT_TOKEN\"}" > /dev/null
[ "$HTTP_CODE" = 201 ] || fail "register: $HTTP_CODE"
for _ in $(seq 1 100); do
    [ "$(api GET /api/v1/gpus | jq '.gpus | length')" = 8 ] && break
    sleep 0.1
done
[ "$(api GET /api/v1/gpus | jq '.gpus | length')" = 8 ] || fail "the ledger does not see 8 GPUs: $(cat "$WORK/api.out")"


# --- create: running, GPUs inside, the port answers, the workspace is mounted
body='{"name":"web1","image":"gf-busybox:1","gpus":2,"ports":[80],"cpus":0.5,"memory":"64m",
       "command":["sh","-c","env > /workspace/web1.env; exec httpd -f -p 80 -h /www"]}'
as alice POST /api/v1/containers "$body" > "$WORK/c1.json"
c1=$(cat "$WORK/c1.json")
[ "$HTTP_CODE" = 201 ] || fail "create: $HTTP_CODE $c1"
[ "$(jq -r .state <<< "$c1")" = running ] || fail "state: $c1"
id1=$(jq -r .id <<< "$c1")
port1=$(jq -r '.ports[0].host' <<< "$c1")
[ "$port1" -ge $PORT_LO ] && [ "$port1" -le $PORT_HI ] || fail "host port $port1 not in $PORT_LO-$PORT_HI"
for _ in $(seq 1 50); do curl -fsS "http://127.0.0.1:$port1/" -o "$WORK/page" 2>/dev/null && break; sleep 0.1; done
grep -q "hello from a gpufleet container" "$WORK/page" || fail "the published port $port1 does not answer"
for _ in $(seq 1 50); do [ -s "$WORK/ws/alice/web1.env" ] && break; sleep 0.1; done
want=$(jq -r '.gpus | join(",")' <<< "$c1")
got=$(sed -n 's/^NVIDIA_VISIBLE_DEVICES=//p' "$WORK/ws/alice/web1.env")
[ -n "$want" ] && [ "$got" = "$want" ] || fail "NVIDIA_VISIBLE_DEVICES inside is '$got', the ledger says '$want'"
insp=$(engine "$DOCKER_SOCK" GET "/v1.41/containers/$(jq -r .engine_id <<< "$c1")/json")
[ "$(jq .HostConfig.NanoCpus <<< "$insp")" = 500000000 ] || fail "NanoCpus: $(jq .HostConfig.NanoCpus <<< "$insp")"
[ "$(jq .HostConfig.Memory <<< "$insp")" = 67108864 ] || fail "Memory: $(jq .HostConfig.Memory <<< "$insp")"
ok "created on gpu-01: state running, port $port1 answers, NVIDIA_VISIBLE_DEVICES=$got inside, 0.5 CPU and 64 MiB set"

# --- its usage in the agent's /metrics, by container name, id and owner
cid1=$(jq -r .engine_id <<< "$c1")
poll_metrics "$AGENT_URL/metrics" "$WORK/agent.prom" 120 -E "^gpufleet_container_memory_bytes\{container=\"web1\",container_id=\"$cid1\",owner=\"alice\"\} [1-9]" ||
    fail "no usage of web1 in the agent's /metrics: $(grep gpufleet_container "$WORK/agent.prom" | head -5)"
grep -q "^gpufleet_container_gpus{container=\"web1\",.*} 2$" "$WORK/agent.prom" || fail "web1 holds 2 GPUs in /metrics"
grep -q "^gpufleet_container_memory_limit_bytes{container=\"web1\",.*} 67108864$" "$WORK/agent.prom" || fail "web1's memory limit in /metrics"
grep -qE "^gpufleet_container_cpu_seconds_total\{container=\"web1\",.*\} [0-9.e-]+$" "$WORK/agent.prom" || fail "web1's CPU in /metrics"
if command -v promtool > /dev/null; then
    # (the dcgm-exporter names keep their camelCase on purpose: only ours here)
    grep -E '^(# (HELP|TYPE) )?gpufleet_container_' "$WORK/agent.prom" | promtool check metrics > "$WORK/promtool.out" 2>&1 ||
        fail "promtool: $(cat "$WORK/promtool.out")"
fi
# a process of web1 on GPU 0 (the fake NVML's process list, as NVML would
# report it): its GPU memory is the container's
pid1=$(engine "$DOCKER_SOCK" GET "/v1.41/containers/$cid1/json" | jq -r .State.Pid)
echo "process gpu=0 pid=$pid1 used_mib=1234 sm_util=37" >> "$WORK/a1.scenario"
echo "process gpu=1 pid=$pid1 used_mib=0 sm_util=21" >> "$WORK/a1.scenario"
poll_metrics "$AGENT_URL/metrics" "$WORK/agent.prom" 100 -E "^gpufleet_container_gpu_memory_bytes\{container=\"web1\",.*\} $((1234 * 1048576))$" ||
    fail "web1's GPU memory: $(grep -E 'gpufleet_container_gpu_memory|process_memory' "$WORK/agent.prom" | head -5)"
poll_metrics "$AGENT_URL/metrics" "$WORK/agent.prom" 100 -E "^gpufleet_container_gpu_utilization_percent\{container=\"web1\",.*\} 58$" ||
    fail "web1's GPU utilization (37 + 21): $(grep -E 'gpufleet_container_gpu_util' "$WORK/agent.prom" | head -5)"
ok "the agent's /metrics has web1's CPU, memory (limit 64 MiB), GPU memory (1234 MiB) and SM utilization (37 % + 21 % on two GPUs) of its processes and GPUs held, by name, id and owner; promtool is content"

# --- a second container on the same container port gets another host port;
# a host port another program holds is skipped
python3 -c "
import socket, time, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
p = int(sys.argv[1])
for q in range(p, p + 100):
    try:
        s.bind(('127.0.0.1', q)); break
    except OSError: pass
s.listen(1); print(q, flush=True); time.sleep(600)" $((port1 + 1)) > "$WORK/squat.port" &
PIDS+=($!)
for _ in $(seq 1 50); do [ -s "$WORK/squat.port" ] && break; sleep 0.1; done
squat=$(cat "$WORK/squat.port")
as alice POST /api/v1/containers '{"name":"web2","image":"gf-busybox:1","ports":[80],"command":["httpd","-f","-p","80","-h","/www"]}' > "$WORK/c2.json"
c2=$(cat "$WORK/c2.json")
[ "$HTTP_CODE" = 201 ] || fail "create web2: $HTTP_CODE $c2"
port2=$(jq -r '.ports[0].host' <<< "$c2")
[ "$port2" != "$port1" ] || fail "two containers got host port $port1"
[ "$port2" != "$squat" ] || fail "host port $squat, held by another program, was handed out"
for _ in $(seq 1 50); do curl -fsS "http://127.0.0.1:$port2/" -o /dev/null 2>/dev/null && break; sleep 0.1; done
curl -fsS "http://127.0.0.1:$port2/" -o /dev/null || fail "web2's port $port2 does not answer"
ok "same container port, different host ports ($port1, $port2); port $squat held by another program skipped"

# --- roles: bob cannot see or touch alice's container; a viewer sees but
# cannot act; an operator acts on anyone's
[ "$(as bob GET /api/v1/containers | jq '.containers | length')" = 0 ] || fail "bob sees alice's containers"
for req in "GET /api/v1/containers/$id1" "GET /api/v1/containers/$id1/stats" "POST /api/v1/containers/$id1/stop" \
           "POST /api/v1/containers/$id1/restart" "POST /api/v1/containers/$id1/recreate" "DELETE /api/v1/containers/$id1"; do
    as bob $req > /dev/null
    [ "$HTTP_CODE" = 404 ] || fail "bob: $req gave $HTTP_CODE, not 404"
done
[ "$(as vera GET /api/v1/containers | jq '.containers | length')" = 2 ] || fail "a viewer does not see all"
as vera POST "/api/v1/containers/$id1/stop" > /dev/null
[ "$HTTP_CODE" = 403 ] || fail "a viewer stopped a container: $HTTP_CODE"
as vera POST /api/v1/containers '{"image":"gf-busybox:1"}' > /dev/null
[ "$HTTP_CODE" = 403 ] || fail "a viewer created a container: $HTTP_CODE"
as otto POST "/api/v1/containers/$(jq -r .id <<< "$c2")/restart" > /dev/null
[ "$HTTP_CODE" = 200 ] || fail "an operator could not restart alice's container: $HTTP_CODE"
as alice GET "/api/v1/containers/$id1/stats" > "$WORK/stats.json"
[ "$HTTP_CODE" = 200 ] && [ "$(jq '.memory_limit_bytes' "$WORK/stats.json")" = 67108864 ] || fail "stats: $(cat "$WORK/stats.json")"
ok "roles: another user gets 404 on every route, a viewer sees all and acts on none, an operator acts on anyone's"

# --- stop releases GPUs and ports; start takes the same ones back
as alice POST "/api/v1/containers/$id1/stop" > /dev/null
[ "$HTTP_CODE" = 200 ] || fail "stop: $HTTP_CODE $(cat "$WORK/api.out")"
held=$(api GET /api/v1/gpus | jq '[.gpus[] | select(.holder != null)] | length')
[ "$held" = 0 ] || fail "stopped, yet $held GPUs are held"
as alice POST "/api/v1/containers/$id1/start" > /dev/null
[ "$HTTP_CODE" = 200 ] || fail "start: $HTTP_CODE $(cat "$WORK/api.out")"
[ "$(api GET /api/v1/gpus | jq -r '[.gpus[] | select(.holder.container_id == '"$id1"') | .uuid] | join(",")')" = "$want" ] ||
    fail "start did not take back the same GPUs"
for _ in $(seq 1 50); do curl -fsS "http://127.0.0.1:$port1/" -o /dev/null 2>/dev/null && break; sleep 0.1; done
curl -fsS "http://127.0.0.1:$port1/" -o /dev/null || fail "port $port1 after start"
ok "stop released 2 GPUs and the port; start took the same ones back and the port answers"

# --- remove everything of alice's, then 20 creates at once from 3 users
for id in $(as alice GET /api/v1/containers | jq -r '.containers[].id'); do
    as alice DELETE "/api/v1/containers/$id" > /dev/null
    [ "$HTTP_CODE" = 200 ] || fail "remove $id: $HTTP_CODE"
done
[ "$(api GET /api/v1/gpus | jq '[.gpus[] | select(.holder != null)] | length')" = 0 ] || fail "remove kept GPUs"
[ "$(engine "$DOCKER_SOCK" GET '/v1.41/containers/json?all=1' | jq length)" = 0 ] || fail "remove left engine containers"
users=(alice bob carol)
par=()
for i in $(seq 0 19); do
    u=${users[$((i % 3))]}
    tok="TOK_$u"
    curl -s -m 120 -o "$WORK/par.$i" -w '%{http_code}' -H "Authorization: Bearer ${!tok}" -H 'Content-Type: application/json' \
        --data "{\"name\":\"p$i\",\"image\":\"gf-busybox:1\",\"gpus\":1,\"command\":[\"sleep\",\"600\"]}" \
        "$SERVER_URL/api/v1/containers" > "$WORK/par.$i.code" &
    par+=($!)
done
t0=$(date +%s%N)
# the creates wait on the host off the server's threads: others are served
sleep 0.2
busy_ms=$(curl -s -o /dev/null -w '%{time_total}' -H "Authorization: Bearer $GF_TOKEN" "$SERVER_URL/api/v1/containers" |
    awk '{ printf "%d", $1 * 1000 }')
for p in "${par[@]}"; do wait "$p" || true; done
par_ms=$((($(date +%s%N) - t0) / 1000000))
created=0 refused=0
for i in $(seq 0 19); do
    code=$(cat "$WORK/par.$i.code")
    case "$code" in
    201) created=$((created + 1)) ;;
    409) refused=$((refused + 1))
         jq -e '.error.code == "quota_exceeded" or .error.code == "no_room"' "$WORK/par.$i" > /dev/null ||
             fail "refusal $i: $(cat "$WORK/par.$i")"
         grep -q 'quota_exceeded' "$WORK/par.$i" && { jq -r .error.message "$WORK/par.$i" | grep -q 'GPUs 3 in use' ||
             fail "a quota refusal does not name the limit and the use: $(cat "$WORK/par.$i")"; } ;;
    *) fail "create $i: $code $(cat "$WORK/par.$i")" ;;
    esac
done
ledger=$(api GET /api/v1/gpus)
dups=$(jq '[.gpus[] | select(.holder != null) | .holder.container_id] | group_by(.) | map(select(length > 1)) | length' <<< "$ledger")
[ "$dups" = 0 ] || fail "a container holds more than one of its asked GPU"
engine_gpus=$(engine "$DOCKER_SOCK" GET '/v1.41/containers/json?all=1' | jq -r '.[].Labels["gpufleet.gpus"]' | sort)
[ "$(sort -u <<< "$engine_gpus" | wc -l)" = "$(wc -l <<< "$engine_gpus")" ] || fail "one GPU in two engine containers: $engine_gpus"
[ $created = 8 ] || fail "$created created (8 GPUs, quotas 3+3+3): want 8"
[ "$busy_ms" -lt 1000 ] || fail "a list waited $busy_ms ms behind 20 creates"
for u in alice bob carol; do
    n=$(api GET /api/v1/containers | jq --arg u $u '[.containers[] | select(.owner == $u)] | length')
    [ "$n" -le 3 ] || fail "$u holds $n GPUs over a quota of 3"
done
ok "20 concurrent creates by 3 users for 8 GPUs: $created created, $refused refused (quota / no room, named), no GPU twice, in $par_ms ms; a list meanwhile took $busy_ms ms"

# --- the UI says who holds each GPU: the fleet overview's card and a GPU's page
: "${BUILD_DIR:?}"
[ -x /usr/bin/chromium ] || fail "chromium missing (scripts/deps.sh test)"
[ -d "$SRC_DIR/web/node_modules/playwright-core" ] || fail "web/node_modules missing (scripts/build-web.sh)"
CHECK=held GF_URL="$SERVER_URL" ADMIN_PASSWORD="$ADMIN_PASSWORD" SERVER_NAME=gpu-01 ARTIFACTS="$BUILD_DIR/ui-artifacts" \
    node "$SRC_DIR/web/tests/engine.test.mjs" || fail "held GPUs in the UI (screenshots in $BUILD_DIR/ui-artifacts)"

# --- removed with the engine's own CLI behind gpufleet's back: the ledger frees it
victim=$(api GET /api/v1/containers | jq -r '.containers[0] | "\(.id) \(.engine_id)"')
engine "$DOCKER_SOCK" DELETE "/v1.41/containers/${victim#* }?force=true" > /dev/null
for _ in $(seq 1 50); do
    [ "$(api GET "/api/v1/containers/${victim%% *}" | jq -r .state)" = gone ] && break
    sleep 0.1
done
[ "$(api GET "/api/v1/containers/${victim%% *}" | jq -r .state)" = gone ] || fail "not marked gone: $(cat "$WORK/api.out")"
[ "$(api GET /api/v1/gpus | jq '[.gpus[] | select(.holder.container_id == '"${victim%% *}"')] | length')" = 0 ] ||
    fail "the removed container still holds a GPU"
ok "a container removed by the engine's CLI is marked gone and its GPU freed by the reconcile loop"

# --- an unmanaged container: listed, never touched
engine "$DOCKER_SOCK" POST /v1.41/containers/create?name=handmade '{"Image":"gf-busybox:1","Cmd":["sleep","600"]}' > /dev/null
engine "$DOCKER_SOCK" POST /v1.41/containers/handmade/start > /dev/null
api GET /api/v1/containers/unmanaged | jq -e '.containers[] | select(.name == "handmade")' > /dev/null ||
    fail "unmanaged container not listed"
code=$(curl -s -o "$WORK/um" -w '%{http_code}' -X POST -H "Authorization: Bearer $AGENT_TOKEN" "$AGENT_URL/api/v1/engine/containers/handmade/stop")
[ "$code" = 403 ] && grep -q unmanaged "$WORK/um" || fail "the agent acted on an unmanaged container: $code"
sleep 1
[ "$(engine "$DOCKER_SOCK" GET /v1.41/containers/handmade/json | jq -r .State.Status)" = running ] ||
    fail "the unmanaged container was touched"
as otto POST /api/v1/containers/unmanaged/gpu-01/handmade/stop > /dev/null
[ "$HTTP_CODE" = 403 ] || fail "an operator acted on an unmanaged container: $HTTP_CODE"
api POST /api/v1/containers/unmanaged/gpu-01/handmade/stop > /dev/null
[ "$HTTP_CODE" = 200 ] || fail "an admin could not stop an unmanaged container: $HTTP_CODE $(cat "$WORK/api.out")"
[ "$(engine "$DOCKER_SOCK" GET /v1.41/containers/handmade/json | jq -r .State.Status)" = exited ] ||
    fail "the admin's stop did not stop it"
api POST '/api/v1/containers/unmanaged/gpu-01/handmade%3Funmanaged=1/stop' > /dev/null
[ "$HTTP_CODE" = 400 ] || fail "an engine id with a '?' reached the agent: $HTTP_CODE"
api POST /api/v1/containers/unmanaged/gpu-01/handmade/remove > /dev/null
[ "$HTTP_CODE" = 200 ] || fail "an admin could not remove an unmanaged container: $HTTP_CODE"
ok "an unmanaged container is listed, refused without an admin's say and left running; an admin stopped and removed it (an operator may not)"

# --- dockerd restarted under the agent: the containers come back and the
# reconcile loop agrees
before=$(api GET /api/v1/containers | jq '[.containers[] | select(.state == "running")] | length')
stop_dockerd
sleep 1
start_dockerd
for _ in $(seq 1 100); do
    after=$(api GET /api/v1/containers | jq '[.containers[] | select(.state == "running")] | length')
    [ "$after" = "$before" ] && break
    sleep 0.2
done
[ "$after" = "$before" ] || fail "after dockerd restarted: $after running, $before before"
[ "$(api GET /api/v1/gpus | jq '[.gpus[] | select(.holder != null)] | length')" = "$before" ] || fail "ledger after restart"
ok "dockerd restarted: $after containers running again, the ledger unchanged"

# --- the CLI
cli() { GPUFLEET_URL=$SERVER_URL GPUFLEET_TOKEN=$TOK_bob "$SERVER" "$@"; }
cli containers create gf-busybox:1 --name cli1 --port 8080 --memory 32m --env MODE=cli -- sleep 600 > "$WORK/cli.out" ||
    fail "CLI create: $(cat "$WORK/cli.out")"
grep -qE '^[0-9]+ +cli1 +bob +gpu-01 +running' "$WORK/cli.out" || fail "CLI create output: $(cat "$WORK/cli.out")"
cli containers list | grep -q ' cli1 ' || fail "CLI list has no cli1"
cli containers list | grep -q ' p0 ' && fail "bob's CLI list shows alice's container"
cli gpus > "$WORK/gpus.out"
[ "$(grep -c 'NVIDIA H100' "$WORK/gpus.out")" = 8 ] || fail "CLI gpus: $(cat "$WORK/gpus.out")"
cid=$(cli containers --json list | jq -r '.containers[] | select(.name == "cli1") | .id')
cli containers rm "$cid" > /dev/null || fail "CLI rm"
cli containers create 'Bad/Image' 2> "$WORK/cli.err" && fail "CLI created a bad image"
grep -q '^gpufleet: image: ' "$WORK/cli.err" || fail "CLI error: $(cat "$WORK/cli.err")"
ok "CLI: containers create/list/rm and gpus as tables, errors name the field"

# --- bad input names the field
bad() {
    local body=$1 field=$2
    as alice POST /api/v1/containers "$body" > "$WORK/bad.out"
    out=$(cat "$WORK/bad.out")
    [ "$HTTP_CODE" = 400 ] || fail "$body: $HTTP_CODE $out"
    [ "$(jq -r .error.field <<< "$out")" = "$field" ] || fail "$body: field $(jq -r .error.field <<< "$out"), want $field"
}
bad '{"name":"bad name!","image":"gf-busybox:1"}' name
bad '{"image":"UPPER/Case"}' image
bad '{"image":"a b"}' image
bad '{"image":"gf-busybox:1","env":{"1X":"y"}}' env
bad '{"image":"gf-busybox:1","env":{"NVIDIA_VISIBLE_DEVICES":"all"}}' env
bad '{"image":"gf-busybox:1","ports":[0]}' ports
bad '{"image":"gf-busybox:1","ports":[70000]}' ports
bad '{"image":"gf-busybox:1","ports":["80/sctp"]}' ports
bad '{"image":"gf-busybox:1","memory":"12zb"}' memory
bad '{"image":"gf-busybox:1","memory":"1m"}' memory
bad '{"image":"gf-busybox:1","cpus":-1}' cpus
bad '{"image":"gf-busybox:1","gpus":["not-a-uuid"]}' gpus
bad '{"image":"gf-busybox:1","colour":"red"}' colour
ok "bad names, image refs, env, ports, memory strings, cpus and GPUs: 400 naming the field"

# --- MIG: a host whose GPU 0 is split in two MIG devices; the ledger hands
# out the MIG devices (not the whole GPU), and the container sees its own
A1_PORT=$AGENT_PORT
PATH="$FAKE_HOOK_DIR:$PATH" start_agent a2 "gpu h100 count=2
mig gpu=0 profiles=3g.40gb,3g.40gb
seed 9" --token-file "$WORK/agent.token" --engine-socket "$DOCKER_SOCK" --workspace-root "$WORK/ws" --interval 500
api POST /api/v1/servers "{\"name\":\"mig-01\",\"address\":\"127.0.0.1\",\"agent_port\":$AGENT_PORT,\"agent_token\":\"$AGENT_TOKEN\"}" > /dev/null
[ "$HTTP_CODE" = 201 ] || fail "register mig-01: $HTTP_CODE"
for _ in $(seq 1 100); do
    [ "$(api GET /api/v1/gpus | jq '[.gpus[] | select(.server == "mig-01")] | length')" = 3 ] && break
    sleep 0.1
done
mig=$(api GET /api/v1/gpus | jq '[.gpus[] | select(.server == "mig-01")]')
[ "$(jq length <<< "$mig")" = 3 ] || fail "mig-01's ledger entries: $mig"
[ "$(jq '[.[] | select(.uuid | startswith("MIG-"))] | length' <<< "$mig")" = 2 ] || fail "MIG devices: $mig"
parent=$(jq -r '[.[] | select(.uuid | startswith("MIG-"))][0].parent_uuid' <<< "$mig")
jq -e --arg p "$parent" 'all(.[]; .uuid != $p)' <<< "$mig" > /dev/null || fail "the MIG'd GPU is handed out whole: $mig"
jq -e '[.[] | select(.uuid | startswith("MIG-"))] | all(.model == "NVIDIA H100 80GB HBM3 MIG 3g.40gb" and .fb_total_mib == 40000)' <<< "$mig" > /dev/null ||
    fail "MIG devices' model and memory: $mig"
api POST /api/v1/containers '{"name":"mig1","image":"gf-busybox:1","host":"mig-01","gpus":{"count":1,"model":"3g.40gb"},
    "command":["sh","-c","env > /workspace/mig1.env; exec sleep 600"]}' > "$WORK/mig1.json"
[ "$HTTP_CODE" = 201 ] || fail "create on a MIG device: $HTTP_CODE $(cat "$WORK/mig1.json")"
got_mig=$(jq -r '.gpus | join(",")' "$WORK/mig1.json")
[[ "$got_mig" == MIG-* ]] || fail "given $got_mig, not a MIG device"
for _ in $(seq 1 50); do [ -s "$WORK/ws/admin/mig1.env" ] && break; sleep 0.1; done
[ "$(sed -n 's/^NVIDIA_VISIBLE_DEVICES=//p' "$WORK/ws/admin/mig1.env")" = "$got_mig" ] ||
    fail "NVIDIA_VISIBLE_DEVICES inside: $(grep NVIDIA "$WORK/ws/admin/mig1.env")"
api POST /api/v1/containers "{\"name\":\"whole\",\"image\":\"gf-busybox:1\",\"gpus\":[\"$parent\"],\"command\":[\"sleep\",\"60\"]}" > "$WORK/whole.json"
[ "$HTTP_CODE" = 409 ] && [ "$(jq -r .error.field "$WORK/whole.json")" = gpus ] ||
    fail "the whole of a MIG'd GPU was given: $HTTP_CODE $(cat "$WORK/whole.json")"
[ "$(api GET /api/v1/gpus | jq --arg u "$got_mig" '[.gpus[] | select(.uuid == $u and .holder.name == "mig1")] | length')" = 1 ] ||
    fail "the ledger does not say mig1 holds $got_mig"
ok "MIG: mig-01's GPU 0 is two ledger entries (3g.40gb, 40,000 MiB each), never given whole; mig1 got $got_mig, which it sees inside"

# --- GPU 0 falls off the bus under mig1 (the fake re-reads its scenario):
# the reconcile flags mig1's entry (a MIG device of that GPU) as vanished,
# keeps it, and never places on it; back on the bus, the flag goes
printf 'gpu h100 count=2\nmig gpu=0 profiles=3g.40gb,3g.40gb\nseed 9\nlost gpu=0\n' > "$WORK/a2.scenario"
for _ in $(seq 1 100); do
    api GET /api/v1/gpus | jq -e --arg u "$got_mig" '[.conflicts[] | select(.kind == "vanished" and (.message | contains($u)) and (.message | contains("mig1")))] | length == 1' > /dev/null && break
    sleep 0.1
done
g=$(api GET /api/v1/gpus)
jq -e --arg u "$got_mig" '[.conflicts[] | select(.kind == "vanished" and (.message | contains($u)))] | length == 1' <<< "$g" > /dev/null \
    || fail "the holder of a lost GPU's MIG device is not flagged: $(jq -c .conflicts <<< "$g")"
jq -e --arg u "$got_mig" --arg p "$parent" '[.gpus[] | select(.uuid == $u or .uuid == $p or .parent_uuid == $p)] | length == 0' <<< "$g" > /dev/null \
    || fail "a lost GPU or its MIG devices are still offered: $g"
[ "$(api GET "/api/v1/containers/$(jq .id "$WORK/mig1.json")" | jq -r '.gpus | join(",")')" = "$got_mig" ] || fail "mig1's ledger entry was dropped"
printf 'gpu h100 count=2\nmig gpu=0 profiles=3g.40gb,3g.40gb\nseed 9\n' > "$WORK/a2.scenario"
for _ in $(seq 1 100); do
    api GET /api/v1/gpus | jq -e '[.conflicts[] | select(.kind == "vanished")] | length == 0' > /dev/null && break
    sleep 0.1
done
api GET /api/v1/gpus | jq -e '[.conflicts[] | select(.kind == "vanished")] | length == 0' > /dev/null || fail "the vanished flag stays after the GPU came back"
ok "GPU 0 lost under mig1: its MIG device's entry flagged (kind vanished, naming it and mig1), kept in the ledger, the GPU not offered; back on the bus, the flag goes"

# --- a user's own limits: set by an admin, checked at create, reset
as alice GET /api/v1/quota > "$WORK/q.json"
[ "$(jq .limits.gpus "$WORK/q.json")" = 3 ] && [ "$(jq .own_limits "$WORK/q.json")" = false ] || fail "alice's quota: $(cat "$WORK/q.json")"
used=$(jq .use.gpus "$WORK/q.json")
[ "$used" = "$(api GET /api/v1/gpus | jq '[.gpus[] | select(.holder.owner == "alice")] | length')" ] || fail "alice's use: $(cat "$WORK/q.json")"
api PUT /api/v1/quotas/alice "{\"gpus\":$used,\"containers\":50}" > /dev/null
[ "$HTTP_CODE" = 200 ] || fail "set alice's quota: $HTTP_CODE $(cat "$WORK/api.out")"
as alice POST /api/v1/containers '{"name":"q1","image":"gf-busybox:1","host":"mig-01","gpus":1,"command":["sleep","600"]}' > "$WORK/q1.json"
[ "$HTTP_CODE" = 409 ] && jq -r .error.message "$WORK/q1.json" | grep -q "over the limit of $used\$" ||
    fail "alice over her own GPU limit of $used: $HTTP_CODE $(cat "$WORK/q1.json")"
api PUT /api/v1/quotas/alice "{\"gpus\":$((used + 1)),\"containers\":50,\"cpus\":null,\"memory\":\"64g\"}" > /dev/null
as alice POST /api/v1/containers '{"name":"q1","image":"gf-busybox:1","host":"mig-01","gpus":1,"command":["sleep","600"]}' > "$WORK/q1.json"
[ "$HTTP_CODE" = 201 ] || fail "alice within her own limit of $((used + 1)) GPUs: $HTTP_CODE $(cat "$WORK/q1.json")"
as alice GET /api/v1/quota > "$WORK/q.json"
[ "$(jq '.own_limits and .limits.gpus == '$((used + 1))' and .limits.memory_bytes == 68719476736 and .use.gpus == '$((used + 1))'' "$WORK/q.json")" = true ] ||
    fail "alice's quota after: $(cat "$WORK/q.json")"
for b in '{"gpus":-1}:gpus' '{"gpus":1.5}:gpus' '{"colour":1}:colour' '{"memory":"12zb"}:memory' '{"cpus":"x"}:cpus'; do
    api PUT /api/v1/quotas/alice "${b%:*}" > /dev/null
    [ "$HTTP_CODE" = 400 ] && [ "$(jq -r .error.field "$WORK/api.out")" = "${b##*:}" ] || fail "quota ${b%:*}: $HTTP_CODE $(cat "$WORK/api.out")"
done
api PUT /api/v1/quotas/nobody '{"gpus":1}' > /dev/null
[ "$HTTP_CODE" = 404 ] || fail "quota of an unknown user: $HTTP_CODE"
as otto PUT /api/v1/quotas/alice '{"gpus":99}' > /dev/null
[ "$HTTP_CODE" = 403 ] || fail "an operator set a quota: $HTTP_CODE"
as vera GET /api/v1/quotas > /dev/null
[ "$HTTP_CODE" = 403 ] || fail "a viewer listed the quotas: $HTTP_CODE"
[ "$(api GET /api/v1/quotas | jq -r '.users[] | select(.user == "alice") | .cpus')" = null ] || fail "quotas: $(cat "$WORK/api.out")"
GPUFLEET_URL=$SERVER_URL "$SERVER" containers quota-set bob --gpus 4 --memory 8g > /dev/null || fail "CLI quota-set"
GPUFLEET_URL=$SERVER_URL GPUFLEET_TOKEN=$TOK_bob "$SERVER" containers quota > "$WORK/cliq.out" || fail "CLI quota"
grep -q '^limits  containers 6, GPUs 4, CPUs [0-9.]*, memory 8.0 GiB$' "$WORK/cliq.out" || fail "CLI quota: $(cat "$WORK/cliq.out")"
api DELETE /api/v1/quotas/alice > /dev/null
[ "$HTTP_CODE" = 200 ] || fail "reset alice's quota: $HTTP_CODE"
api DELETE /api/v1/quotas/alice > /dev/null
[ "$HTTP_CODE" = 404 ] || fail "reset twice: $HTTP_CODE"
[ "$(as alice GET /api/v1/quota | jq '.own_limits == false and .limits.gpus == 3')" = true ] || fail "after reset: $(cat "$WORK/api.out")"
ok "per-user limits: alice refused over her own limit of $used GPUs, allowed at $((used + 1)); bad limits 400 naming the field; admin only; CLI quota-set/quota; reset to the settings"

# --- the default quotas are live settings: changed, they hold at once
used=$(as alice GET /api/v1/quota | jq .use.gpus)
api PATCH /api/v1/settings "{\"quota_gpus\":$used}" > /dev/null
[ "$HTTP_CODE" = 200 ] || fail "set quota_gpus: $HTTP_CODE $(cat "$WORK/api.out")"
[ "$(as alice GET /api/v1/quota | jq .limits.gpus)" = "$used" ] || fail "alice's limit after the setting: $(cat "$WORK/api.out")"
as alice POST /api/v1/containers '{"name":"q2","image":"gf-busybox:1","host":"mig-01","gpus":1,"command":["sleep","600"]}' > "$WORK/q2.json"
[ "$HTTP_CODE" = 409 ] && jq -r .error.message "$WORK/q2.json" | grep -q "over the limit of $used\$" ||
    fail "alice over the new default of $used GPUs: $HTTP_CODE $(cat "$WORK/q2.json")"
api PATCH /api/v1/settings '{"container_default_memory_mib":96}' > /dev/null
[ "$HTTP_CODE" = 200 ] || fail "set container_default_memory_mib: $HTTP_CODE"
as alice POST /api/v1/containers '{"name":"q2","image":"gf-busybox:1","host":"mig-01","gpus":0,"command":["sleep","600"]}' > "$WORK/q2.json"
[ "$HTTP_CODE" = 201 ] && [ "$(jq .memory_bytes "$WORK/q2.json")" = $((96 << 20)) ] || fail "a container after the memory default changed: $HTTP_CODE $(cat "$WORK/q2.json")"
api PATCH /api/v1/settings '{"quota_gpus":3,"container_default_memory_mib":64}' > /dev/null
[ "$HTTP_CODE" = 200 ] || fail "set the settings back: $HTTP_CODE"
ok "quota_gpus and container_default_memory_mib changed in the settings hold for the next create, without a restart"

# --- automatic placement, a live setting: binpack fills the fullest host
# that fits, spread the emptiest (free GPUs first)
api DELETE "/api/v1/containers/$(jq .id "$WORK/q1.json")" > /dev/null # a GPU of mig-01 back
[ "$HTTP_CODE" = 200 ] || fail "remove q1: $HTTP_CODE"
free_of() { api GET /api/v1/gpus | jq --arg s "$1" '[.gpus[] | select(.server == $s and .holder == null)] | length'; }
fa=$(free_of gpu-01) fm=$(free_of mig-01)
[ "$fa" -gt 0 ] && [ "$fm" -gt 0 ] && [ "$fa" != "$fm" ] || fail "placement needs two hosts with free GPUs, unequal: gpu-01 $fa, mig-01 $fm"
if [ "$fa" -lt "$fm" ]; then fuller=gpu-01 emptier=mig-01; else fuller=mig-01 emptier=gpu-01; fi
for want in binpack:$fuller spread:$emptier; do
    api PATCH /api/v1/settings "{\"container_placement\":\"${want%%:*}\"}" > /dev/null
    [ "$HTTP_CODE" = 200 ] || fail "set container_placement ${want%%:*}: $HTTP_CODE $(cat "$WORK/api.out")"
    api POST /api/v1/containers "{\"name\":\"p-${want%%:*}\",\"image\":\"gf-busybox:1\",\"gpus\":1,\"command\":[\"sleep\",\"600\"]}" > "$WORK/p.json"
    [ "$HTTP_CODE" = 201 ] && [ "$(jq -r .server "$WORK/p.json")" = "${want#*:}" ] ||
        fail "${want%%:*} placed on $(jq -r .server "$WORK/p.json") ($HTTP_CODE), want ${want#*:} (free GPUs: gpu-01 $fa, mig-01 $fm)"
    api DELETE "/api/v1/containers/$(jq .id "$WORK/p.json")" > /dev/null
    [ "$HTTP_CODE" = 200 ] || fail "remove p-${want%%:*}: $HTTP_CODE"
done
api PATCH /api/v1/settings '{"container_placement":"random"}' > /dev/null
[ "$HTTP_CODE" = 400 ] && [ "$(jq -r .error.field "$WORK/api.out")" = container_placement ] &&
    jq -r .error.message "$WORK/api.out" | grep -q "binpack, spread" || fail "a bad placement: $HTTP_CODE $(cat "$WORK/api.out")"
api PATCH /api/v1/settings '{"container_placement":"binpack"}' > /dev/null
grep -q '^container_placement: "binpack"$' "$WORK/s-data/settings.conf" || fail "settings.conf: $(cat "$WORK/s-data/settings.conf")"
ok "placement without a restart: binpack put a 1-GPU container on $fuller ($fa/$fm free), spread on $emptier; 'random' refused naming container_placement"

# --- every mutation is in the audit log, with its actor
for a in alice:container.create alice:container.action alice:container.remove otto:container.action admin:quota.update admin:quota.delete; do
    n=$(sqlite3 "$WORK/s-data/audit.db" "SELECT count(*) FROM audit WHERE username = '${a%%:*}' AND action = '${a#*:}'")
    [ "$n" -gt 0 ] || fail "no ${a#*:} by ${a%%:*} in the audit log"
done
ok "container.create, container.action and container.remove are audited with their actor"
