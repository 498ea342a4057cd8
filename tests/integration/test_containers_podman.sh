#!/usr/bin/env bash
# Containers on a real Podman 4.3 (runc): GPUs as CDI devices through the
# libpod API (its compat API drops DeviceRequests without a word), a CDI
# spec for the fake GPUs written by this test, host ports, stop/remove, a
# host without a CDI spec refused with the command that makes one.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/engines.sh"

start_registry
start_podman
import_image "$PODMAN_SOCK"

head -c 24 /dev/urandom | base64 | tr -d '/+=' > "$WORK/agent.token"
AGENT_TOKEN=$(cat "$WORK/agent.token")
CDI_DIR="$WORK/cdi"
mkdir -p "$CDI_DIR"
start_agent a1 "gpu l40s count=4
seed 7" --token-file "$WORK/agent.token" --engine-socket "$PODMAN_SOCK" --workspace-root "$WORK/var/lib/ws" \
    --cdi-dirs "$CDI_DIR" --interval 500
mapfile -t UUIDS < <(gpu_uuids "$AGENT_URL" "$AGENT_TOKEN")
[ ${#UUIDS[@]} -eq 4 ] || fail "fake GPUs: ${#UUIDS[@]}"

info=$(curl -fsS -H "Authorization: Bearer $AGENT_TOKEN" "$AGENT_URL/api/v1/engine")
[ "$(jq -r .engine <<< "$info")" = podman ] || fail "engine: $info"
[ "$(jq -r .gpu_requests <<< "$info")" = none ] || fail "GPU requests without a CDI spec: $info"
jq -r .gpu_detail <<< "$info" | grep -q 'nvidia-ctk cdi generate' || fail "no hint to make a CDI spec: $info"
ok "agent: Podman $(jq -r .version <<< "$info") seen through its compat API; no CDI spec yet, and it says how to make one"

PORT_LO=$((20000 + (RANDOM % 90) * 100))
cat > "$WORK/server.yaml" << EOF
container_port_range: $PORT_LO-$((PORT_LO + 99))
container_host_ip: 127.0.0.1
container_default_memory_mib: 64
container_reconcile_ms: 300
EOF
start_server s --config "$WORK/server.yaml"
api POST /api/v1/servers "{\"name\":\"pod-01\",\"address\":\"127.0.0.1\",\"agent_port\":$AGENT_PORT,\"agent_token\":\"$AGENT_TOKEN\"}" > /dev/null
[ "$HTTP_CODE" = 201 ] || fail "register: $HTTP_CODE"
for _ in $(seq 1 100); do
    [ "$(api GET /api/v1/gpus | jq '.gpus | length')" = 4 ] && break
    sleep 0.1
done

# without a CDI spec: refused, naming the command
out=$(api POST /api/v1/containers '{"name":"nocdi","image":"gf-busybox:1","gpus":1,"command":["sleep","60"]}'; echo " $HTTP_CODE")
[ "${out##* }" = 409 ] || fail "a GPU container without a CDI spec: $out"
grep -q 'nvidia-ctk cdi generate' <<< "$out" || fail "the refusal does not say how to make a CDI spec: $out"
[ "$(api GET /api/v1/gpus | jq '[.gpus[] | select(.holder != null)] | length')" = 0 ] || fail "a refused create kept its GPU"
[ "$(api GET /api/v1/containers | jq '.containers | length')" = 0 ] || fail "a refused create left a row"
ok "no CDI spec: 409 naming nvidia-ctk cdi generate, nothing held"

# the CDI spec of the fake GPUs: each device adds an env var of its own
{
    printf '{"cdiVersion":"0.5.0","kind":"nvidia.com/gpu","devices":['
    sep=
    for u in "${UUIDS[@]}"; do
        printf '%s{"name":"%s","containerEdits":{"env":["GF_CDI_%s=1"]}}' "$sep" "$u" "$(tr -- '-' '_' <<< "$u")"
        sep=,
    done
    printf '],"containerEdits":{}}\n'
} > "$CDI_DIR/gf-fake.json"
# Podman itself reads specs from /var/run/cdi (and /etc/cdi) only
mkdir -p /var/run/cdi
cp "$CDI_DIR/gf-fake.json" "/var/run/cdi/gf-test-$$.json"
AFTER_STOP+=("rm -f /var/run/cdi/gf-test-$$.json")
info=$(curl -fsS -H "Authorization: Bearer $AGENT_TOKEN" "$AGENT_URL/api/v1/engine")
[ "$(jq -r .gpu_requests <<< "$info")" = cdi ] || fail "GPU requests with a CDI spec: $info"
[ "$(jq '.cdi_devices | length' <<< "$info")" = 4 ] || fail "CDI devices: $info"

body='{"name":"pweb","image":"gf-busybox:1","gpus":2,"ports":[80],"memory":"32m","cpus":0.25,
       "command":["sh","-c","env > /workspace/pweb.env; exec httpd -f -p 80 -h /www"]}'
api POST /api/v1/containers "$body" > "$WORK/c1.json"
[ "$HTTP_CODE" = 201 ] || fail "create: $HTTP_CODE $(cat "$WORK/c1.json")"
id1=$(jq -r .id "$WORK/c1.json")
port1=$(jq -r '.ports[0].host' "$WORK/c1.json")
for _ in $(seq 1 50); do curl -fsS "http://127.0.0.1:$port1/" -o "$WORK/page" 2>/dev/null && break; sleep 0.1; done
grep -q "hello from a gpufleet container" "$WORK/page" || fail "port $port1 does not answer"
for _ in $(seq 1 50); do [ -s "$WORK/var/lib/ws/admin/pweb.env" ] && break; sleep 0.1; done
got=$(grep '^GF_CDI_' "$WORK/var/lib/ws/admin/pweb.env" | sed 's/=1$//; s/^GF_CDI_//' | tr '_' '-' | sort | paste -sd,)
want=$(jq -r '.gpus | sort | join(",")' "$WORK/c1.json")
[ -n "$want" ] && [ "$got" = "$want" ] || fail "CDI devices inside: '$got', the ledger: '$want'"
eid=$(jq -r .engine_id "$WORK/c1.json")
insp=$(engine "$PODMAN_SOCK" GET "/v4.0.0/libpod/containers/$eid/json")
[ "$(jq .HostConfig.Memory <<< "$insp")" = 33554432 ] || fail "memory limit: $(jq .HostConfig.Memory <<< "$insp")"
ok "created on Podman (its workspace folder made with its parents): exactly its 2 GPUs' CDI entries inside ($got), port $port1 answers, 32 MiB set"

# a second one gets the other two GPUs; a third asking for one is refused
api POST /api/v1/containers '{"name":"pjob","image":"gf-busybox:1","gpus":2,"command":["sleep","600"]}' > "$WORK/c2.json"
[ "$HTTP_CODE" = 201 ] || fail "second create: $HTTP_CODE $(cat "$WORK/c2.json")"
api POST /api/v1/containers '{"name":"pmore","image":"gf-busybox:1","gpus":1,"command":["sleep","600"]}' > "$WORK/c3.json"
[ "$HTTP_CODE" = 409 ] && [ "$(jq -r .error.field "$WORK/c3.json")" = gpus ] || fail "a fifth GPU: $HTTP_CODE $(cat "$WORK/c3.json")"
[ "$(jq -r '.gpus + (input | .gpus) | unique | length' "$WORK/c1.json" "$WORK/c2.json")" = 4 ] || fail "GPUs given twice"
ok "4 GPUs, two containers of 2: disjoint; a fifth GPU refused (409, field gpus)"

# stop and remove release; removed behind gpufleet's back is noticed
api POST "/api/v1/containers/$id1/stop" > /dev/null
[ "$HTTP_CODE" = 200 ] || fail "stop: $HTTP_CODE $(cat "$WORK/api.out")"
[ "$(api GET /api/v1/gpus | jq '[.gpus[] | select(.holder != null)] | length')" = 2 ] || fail "stop kept GPUs"
api DELETE "/api/v1/containers/$id1" > /dev/null
[ "$HTTP_CODE" = 200 ] || fail "remove: $HTTP_CODE"
curl -s --unix-socket "$PODMAN_SOCK" -o /dev/null -w '%{http_code}' "http://d/v4.0.0/libpod/containers/$eid/exists" > "$WORK/exists" || true
[ "$(cat "$WORK/exists")" = 404 ] || fail "the engine container is still there: $(cat "$WORK/exists")"
eid2=$(jq -r .engine_id "$WORK/c2.json")
engine "$PODMAN_SOCK" DELETE "/v4.0.0/libpod/containers/$eid2?force=true" > /dev/null
for _ in $(seq 1 50); do
    [ "$(api GET "/api/v1/containers/$(jq -r .id "$WORK/c2.json")" | jq -r .state)" = gone ] && break
    sleep 0.1
done
[ "$(jq -r .state "$WORK/api.out")" = gone ] || fail "removed by podman: $(cat "$WORK/api.out")"
[ "$(api GET /api/v1/gpus | jq '[.gpus[] | select(.holder != null)] | length')" = 0 ] || fail "GPUs still held"
ok "stop released 2 GPUs, remove removed it from Podman, podman rm behind gpufleet's back freed the rest"

# images on Podman through its compat API: pushed to the test's registry,
# pulled back through gpufleet (Podman's stream has layers but no
# bytes), listed, a missing tag failing with Podman's reason, removed
curl -fsS --unix-socket "$PODMAN_SOCK" -X POST \
    "http://d/v4.0.0/libpod/images/gf-busybox:1/push?destination=$REGISTRY/gf/bb:1&tlsVerify=false" > /dev/null ||
    fail "podman push to the test registry"
pull_wait() {
    api POST /api/v1/servers/pod-01/images/pull "{\"image\":\"$1\"}" > /dev/null
    [ "$HTTP_CODE" = 202 ] || fail "pull $1: $HTTP_CODE $(cat "$WORK/api.out")"
    local id
    id=$(jq -r .id "$WORK/api.out")
    for _ in $(seq 1 300); do
        api GET "/api/v1/servers/pod-01/images/pulls/$id" > "$WORK/pull.json"
        [ "$(jq -r .state "$WORK/pull.json")" != running ] && return 0
        sleep 0.1
    done
    fail "pull of $1 still running: $(cat "$WORK/pull.json")"
}
pull_wait "$REGISTRY/gf/bb:1"
[ "$(jq -r .state "$WORK/pull.json")" = done ] && [ "$(jq .layers_done "$WORK/pull.json")" -ge 1 ] ||
    fail "pull on Podman: $(cat "$WORK/pull.json")"
layers=$(jq .layers_done "$WORK/pull.json")
api GET /api/v1/servers/pod-01/images | jq -e --arg t "$REGISTRY/gf/bb:1" '.[] | select(.tags | index($t))' > /dev/null ||
    fail "not listed: $(cat "$WORK/api.out")"
pull_wait "$REGISTRY/gf/bb:nope"
[ "$(jq -r .state "$WORK/pull.json")" = failed ] && jq -r .error "$WORK/pull.json" | grep -q 'manifest unknown' ||
    fail "a missing tag on Podman: $(cat "$WORK/pull.json")"
api DELETE "/api/v1/servers/pod-01/images?image=$REGISTRY/gf/bb:1" > /dev/null
[ "$HTTP_CODE" = 200 ] || fail "remove on Podman: $HTTP_CODE $(cat "$WORK/api.out")"
api GET /api/v1/servers/pod-01/images | jq -e --arg t "$REGISTRY/gf/bb:1" '[.[] | select(.tags | index($t))] | length == 0' > /dev/null ||
    fail "still listed after remove: $(cat "$WORK/api.out")"
ok "images on Podman: pulled from the registry ($layers layers done), listed, a missing tag failed with its reason, removed"
