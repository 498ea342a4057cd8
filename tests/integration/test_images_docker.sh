#!/usr/bin/env bash
# Images on a real Docker 20.10 daemon through gpufleet: pull from a real
# registry on loopback with the engine's progress read back per layer,
# list with the containers that use each image, remove (refused while a
# container uses it), failures in plain words, roles, the CLI, the audit.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/engines.sh"

start_dockerd
import_image "$DOCKER_SOCK"
start_registry
dk() { docker -H "unix://$DOCKER_SOCK" "$@"; }
# the registry gets the test image; the engine then forgets it, so a pull
# has to fetch every layer
IMG="$REGISTRY/gf/bb:1"
dk tag gf-busybox:1 "$IMG"
dk push "$IMG" > "$WORK/push.out" 2>&1 || fail "docker push to the test registry: $(cat "$WORK/push.out")"
dk rmi "$IMG" gf-busybox:1 > /dev/null || fail "docker rmi"
ok "a registry on $REGISTRY holds $IMG; the engine has no image"

head -c 24 /dev/urandom | base64 | tr -d '/+=' > "$WORK/agent.token"
AGENT_TOKEN=$(cat "$WORK/agent.token")
PATH="$FAKE_HOOK_DIR:$PATH" start_agent a1 "gpu h100 count=2" --token-file "$WORK/agent.token" \
    --engine-socket "$DOCKER_SOCK" --workspace-root "$WORK/ws" --interval 500
code=$(curl -s -o /dev/null -w '%{http_code}' "$AGENT_URL/api/v1/engine/images")
[ "$code" = 401 ] || fail "the agent's image API without its token: $code"

PORT_LO=$((20000 + (RANDOM % 90) * 100))
printf 'container_port_range: %s-%s\ncontainer_host_ip: 127.0.0.1\ncontainer_default_memory_mib: 64\ncontainer_reconcile_ms: 300\n' \
    $PORT_LO $((PORT_LO + 99)) > "$WORK/server.yaml"
mkdir -p "$WORK/s-data"
make_admin "$WORK/s-data"
add_users "$WORK/s-data" alice:user vera:viewer otto:operator
start_server s --config "$WORK/server.yaml"
api POST /api/v1/servers "{\"name\":\"gpu-01\",\"address\":\"127.0.0.1\",\"agent_port\":$AGENT_PORT,\"agent_token\":\"$AGENT_TOKEN\"}" > /dev/null
[ "$HTTP_CODE" = 201 ] || fail "register: $HTTP_CODE"
SID=$(jq -r .id "$WORK/api.out")

# --- roles and bad input
as vera GET /api/v1/servers/gpu-01/images > /dev/null
[ "$HTTP_CODE" = 200 ] || fail "a viewer cannot list images: $HTTP_CODE"
for who in vera alice; do
    as $who POST /api/v1/servers/gpu-01/images/pull "{\"image\":\"$IMG\"}" > /dev/null
    [ "$HTTP_CODE" = 403 ] || fail "$who pulled an image: $HTTP_CODE"
    as $who DELETE "/api/v1/servers/gpu-01/images?image=$IMG" > /dev/null
    [ "$HTTP_CODE" = 403 ] || fail "$who removed an image: $HTTP_CODE"
done
for bad in '"UPPER/x:1"' '"a b"' '"x:1&force=1"' '12' 'null'; do
    as otto POST /api/v1/servers/gpu-01/images/pull "{\"image\":$bad}" > /dev/null
    out=$(cat "$WORK/api.out")
    [ "$HTTP_CODE" = 400 ] && [ "$(jq -r .error.field <<< "$out")" = image ] || fail "pull of $bad: $HTTP_CODE $out"
done
as otto DELETE '/api/v1/servers/gpu-01/images?image=x:1%26force=1' > /dev/null
out=$(cat "$WORK/api.out")
[ "$HTTP_CODE" = 400 ] && [ "$(jq -r .error.field <<< "$out")" = image ] || fail "remove of 'x:1&force=1': $HTTP_CODE $out"
as otto GET /api/v1/servers/no-such/images > /dev/null
[ "$HTTP_CODE" = 404 ] || fail "images of an unknown server: $HTTP_CODE"
ok "a viewer and a user list but neither pull nor remove; bad references are 400 naming image; an unknown server 404"

# --- pull: the engine's progress per layer, read back while and after it runs
pull() { # pull IMAGE: waits for the end; the last state in $WORK/pull.json
    local out id
    as otto POST "/api/v1/servers/$SID/images/pull" "{\"image\":\"$1\"}" > /dev/null
    out=$(cat "$WORK/api.out")
    [ "$HTTP_CODE" = 202 ] || fail "pull $1: $HTTP_CODE $out"
    id=$(jq -r .id <<< "$out")
    for _ in $(seq 1 600); do
        as vera GET "/api/v1/servers/gpu-01/images/pulls/$id" > "$WORK/pull.json"
        [ "$(jq -r .state "$WORK/pull.json")" != running ] && return 0
        sleep 0.1
    done
    fail "pull of $1 still running after 60 s: $(cat "$WORK/pull.json")"
}
pull "$IMG"
p=$(cat "$WORK/pull.json")
[ "$(jq -r .state <<< "$p")" = done ] || fail "pull: $p"
[ "$(jq -r .bytes_total <<< "$p")" -gt 0 ] && [ "$(jq .bytes_done <<< "$p")" = "$(jq .bytes_total <<< "$p")" ] ||
    fail "bytes: $p"
[ "$(jq .layers_done <<< "$p")" -ge 1 ] && [ "$(jq '.layers | length' <<< "$p")" = "$(jq .layers_done <<< "$p")" ] ||
    fail "layers: $p"
jq -r .status <<< "$p" | grep -q "Downloaded newer image for $IMG" || fail "status: $p"
imgs=$(as vera GET /api/v1/servers/gpu-01/images)
jq -e --arg t "$IMG" '.[] | select(.tags | index($t)) | select(.size > 0)' <<< "$imgs" > /dev/null || fail "not listed: $imgs"
ok "pulled $IMG: $(jq .bytes_total <<< "$p") bytes in $(jq .layers_done <<< "$p") layer(s), every byte counted; listed with its size"

# failures say why, in the engine's words
pull "$REGISTRY/gf/bb:nope"
[ "$(jq -r .state "$WORK/pull.json")" = failed ] && jq -r .error "$WORK/pull.json" | grep -qi 'not found\|unknown' ||
    fail "a missing tag: $(cat "$WORK/pull.json")"
dead=127.0.0.1:$(free_port)
pull "$dead/gf/bb:1"
[ "$(jq -r .state "$WORK/pull.json")" = failed ] && jq -r .error "$WORK/pull.json" | grep -q 'connection refused' ||
    fail "a registry that is not there: $(cat "$WORK/pull.json")"
[ "$(as vera GET /api/v1/servers/gpu-01/images/pulls | jq length)" = 3 ] || fail "pulls: $(cat "$WORK/api.out")"
ok "a missing tag and an unreachable registry fail with the engine's reason; all 3 pulls listed"

# --- used by a container: listed as such, and not removed while it runs
as alice POST /api/v1/containers "{\"name\":\"user1\",\"image\":\"$IMG\",\"command\":[\"sleep\",\"600\"]}" > "$WORK/c.json"
[ "$HTTP_CODE" = 201 ] || fail "create from the pulled image: $HTTP_CODE $(cat "$WORK/c.json")"
cid=$(jq -r .id "$WORK/c.json")
as vera GET /api/v1/servers/gpu-01/images | jq -e --arg t "$IMG" '.[] | select(.tags | index($t)) | .containers == ["user1"]' > /dev/null ||
    fail "the image's users: $(cat "$WORK/api.out")"
as otto DELETE "/api/v1/servers/gpu-01/images?image=$IMG" > /dev/null
out=$(cat "$WORK/api.out")
[ "$HTTP_CODE" = 409 ] || fail "removed an image a running container uses: $HTTP_CODE $out"
jq -r .error.message <<< "$out" | grep -qi 'container' || fail "the refusal does not say a container uses it: $out"
as alice DELETE "/api/v1/containers/$cid" > /dev/null
as otto DELETE "/api/v1/servers/gpu-01/images?image=$IMG" > /dev/null
out=$(cat "$WORK/api.out")
[ "$HTTP_CODE" = 200 ] || fail "remove: $HTTP_CODE $out"
as vera GET /api/v1/servers/gpu-01/images | jq -e --arg t "$IMG" '[.[] | select(.tags | index($t))] | length == 0' > /dev/null ||
    fail "still listed after remove: $(cat "$WORK/api.out")"
as otto DELETE "/api/v1/servers/gpu-01/images?image=$IMG" > /dev/null
out=$(cat "$WORK/api.out")
[ "$HTTP_CODE" = 404 ] || fail "remove of an absent image: $HTTP_CODE $out"
ok "the image lists its container; remove refused (409) while it runs, done after, 404 once gone"

# --- the CLI: a pull shows its progress and ends with the state
cli() { GPUFLEET_URL=$SERVER_URL GPUFLEET_TOKEN=$TOK_otto "$SERVER" "$@"; }
cli images pull gpu-01 "$IMG" > "$WORK/cli.out" 2>&1 || fail "CLI pull: $(cat "$WORK/cli.out")"
grep -qE '^done: [0-9.]+/[0-9.]+ MiB, [1-9][0-9]*/[1-9][0-9]* layers' "$WORK/cli.out" || fail "CLI pull output: $(cat "$WORK/cli.out")"
cli images list gpu-01 | grep -q "$IMG" || fail "CLI list"
cli images pull gpu-01 "$REGISTRY/gf/bb:nope" > /dev/null 2> "$WORK/cli.err" && fail "CLI pull of a missing tag succeeded"
grep -q 'the pull failed' "$WORK/cli.err" || fail "CLI failed pull: $(cat "$WORK/cli.err")"
cli images rm gpu-01 "$IMG" > /dev/null || fail "CLI rm"
ok "CLI: images pull (progress, then done), list, rm; a failed pull exits non-zero with the reason"

# --- the Images page in chromium: pull with its progress, list, remove
: "${BUILD_DIR:?}"
[ -x /usr/bin/chromium ] || fail "chromium missing (scripts/deps.sh test)"
[ -d "$SRC_DIR/web/node_modules/playwright-core" ] || fail "web/node_modules missing (scripts/build-web.sh)"
CHECK=images GF_URL="$SERVER_URL" ADMIN_PASSWORD="$ADMIN_PASSWORD" IMAGE="$IMG" SERVER_NAME=gpu-01 ARTIFACTS="$BUILD_DIR/ui-artifacts" \
    node "$SRC_DIR/web/tests/engine.test.mjs" || fail "the Images page (screenshots in $BUILD_DIR/ui-artifacts)"

for a in image.pull image.remove; do
    n=$(sqlite3 "$WORK/s-data/audit.db" "SELECT count(*) FROM audit WHERE username = 'otto' AND action = '$a'")
    [ "$n" -gt 0 ] || fail "no $a by otto in the audit log"
done
ok "image.pull and image.remove are audited with their actor"
