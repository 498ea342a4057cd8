#!/usr/bin/env bash
# Disk cleanup on a real Docker 20.10 and a real Podman 4.3: the plan lists
# exactly the stopped containers gpufleet did not make, dangling (or all
# unused) images and unused volumes, with the engine's sizes; a run removes
# exactly the plan's items that are still unused (a container made after
# the plan stays, an image that came into use since is skipped), never a
# user's container gpufleet made, never what a container uses; the fleet's
# plan; roles; audit with the bytes; bad input named.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/engines.sh"

start_two_hosts
printf 'container_host_ip: 127.0.0.1\ncontainer_default_memory_mib: 64\n' > "$WORK/server.yaml"
mkdir -p "$WORK/s-data"
make_admin "$WORK/s-data"
add_users "$WORK/s-data" alice:user otto:operator
start_server s --config "$WORK/server.yaml"
register_two_hosts

# raw_import SOCK [REPO TAG]: another image from the busybox tarball (a new
# id each time); untagged without REPO (dangling). Prints its id.
raw_import() {
    local url="http://d/v1.41/images/create?fromSrc=-"
    [ -n "${2:-}" ] && url="$url&repo=$2&tag=$3"
    # Podman's compat import drops the tag; its libpod import keeps it
    [ -n "${2:-}" ] && [ "$1" = "${PODMAN_SOCK:-}" ] && url="http://d/v4.0.0/libpod/images/import?reference=$2:$3"
    curl -fsS --unix-socket "$1" -X POST -H 'Content-Type: application/x-tar' --data-binary "@$BUSYBOX_TAR" "$url" |
        grep -o '[0-9a-f]\{64\}' | tail -1 | sed 's/^/sha256:/'
}
# ctr SOCK NAME IMAGE CMD VOLUME: an unmanaged container (started), its id
ctr() {
    local body
    body=$(jq -nc --arg i "$3" --arg c "$4" --arg v "$5" '{Image:$i,Cmd:["sh","-c",$c],HostConfig:(if $v == "" then {} else {Binds:[$v + ":/data"]} end)}')
    local id
    id=$(engine "$1" POST "/v1.41/containers/create?name=$2" "$body" | jq -r .Id)
    engine "$1" POST "/v1.41/containers/$id/start" > /dev/null
    echo "$id"
}
# Podman's images are localhost/NAME
names() { jq -r '[.items[] | .kind + ":" + (.name | sub("^localhost/"; ""))] | sort | join(" ")' "$1"; }

check_engine() {
    local host=$1 sock=$2 id
    # what the host holds: a user's stopped container (gpufleet's), junk
    # (stopped, not ours), a running one with a volume, a dangling and a
    # spare image, a free volume
    as alice POST /api/v1/containers "{\"name\":\"mine-$host\",\"image\":\"gf-busybox:1\",\"host\":\"$host\",\"gpus\":0,\"command\":[\"sh\",\"-c\",\"trap 'exit 0' TERM; sleep 600 & wait\"]}" > "$WORK/mine.json"
    [ "$HTTP_CODE" = 201 ] || fail "$host: create: $(cat "$WORK/mine.json")"
    as alice POST "/api/v1/containers/$(jq -r .id "$WORK/mine.json")/stop" > /dev/null
    engine "$sock" POST /v1.41/volumes/create '{"Name":"volfree"}' > /dev/null
    engine "$sock" POST /v1.41/volumes/create '{"Name":"volused"}' > /dev/null
    ctr "$sock" "junk-$host" gf-busybox:1 "echo bye; head -c 300000 /dev/zero > /big" "" > /dev/null
    ctr "$sock" "alive-$host" gf-busybox:1 "sleep 600" volused > /dev/null
    dangling=$(raw_import "$sock")
    spare=$(raw_import "$sock" gf-spare 1)
    [ -n "$dangling" ] && [ -n "$spare" ] || fail "$host: imports"
    sleep 1 # the junk container exits

    as otto GET "/api/v1/servers/$host/cleanup" > "$WORK/p1.json"
    [ "$HTTP_CODE" = 200 ] || fail "$host: plan: $HTTP_CODE $(cat "$WORK/p1.json")"
    [ "$(names "$WORK/p1.json")" = "container:junk-$host image:<none>" ] || fail "$host: default plan: $(cat "$WORK/p1.json")"
    jq -e --arg d "$dangling" '.items[] | select(.kind == "image") | .id == $d' "$WORK/p1.json" > /dev/null || fail "$host: the dangling image: $(cat "$WORK/p1.json")"
    jq -e '.bytes > 0 and .bytes == ([.items[].bytes] | add)' "$WORK/p1.json" > /dev/null || fail "$host: plan bytes: $(cat "$WORK/p1.json")"
    ok "$host: the default plan: stopped containers not ours and dangling images, $(jq .bytes "$WORK/p1.json") bytes; a user's stopped container, a running one, tagged images, volumes left"

    # (cache too: these engines keep none — no buildx here — so it adds nothing)
    as otto GET "/api/v1/servers/$host/cleanup?kinds=containers,images,volumes,cache" > "$WORK/p2.json"
    [ "$(names "$WORK/p2.json")" = "container:junk-$host image:<none> image:gf-spare:1 volume:volfree" ] \
        || fail "$host: the full plan: $(names "$WORK/p2.json")"
    ok "$host: the full plan adds unused tagged images and unused volumes, never an image or volume a container uses"

    # after the plan: a new stopped container, and the spare image taken into use
    ctr "$sock" "late-$host" gf-busybox:1 "true" "" > /dev/null
    ctr "$sock" "user-of-spare-$host" gf-spare:1 "sleep 600" "" > /dev/null
    sleep 0.5
    # and a build cache record that is not there: skipped, never a prune of all
    jq '{items: ([.items[] | {kind, id}] + [{kind: "cache", id: "nosuchrecord0000"}])}' "$WORK/p2.json" > "$WORK/run.json"
    as otto POST "/api/v1/servers/$host/cleanup" "$(cat "$WORK/run.json")" > "$WORK/r.json"
    [ "$HTTP_CODE" = 200 ] || fail "$host: run: $HTTP_CODE $(cat "$WORK/r.json")"
    [ "$(jq -r '[.removed[] | .kind + ":" + (.name | sub("^localhost/"; ""))] | sort | join(" ")' "$WORK/r.json")" = "container:junk-$host image:<none> volume:volfree" ] \
        || fail "$host: removed: $(cat "$WORK/r.json")"
    jq -e --arg s "$spare" '.skipped == [{"kind":"image","id":$s,"reason":"gone, or in use since the plan"},
        {"kind":"cache","id":"nosuchrecord0000","reason":"gone, or in use since the plan"}]' "$WORK/r.json" > /dev/null \
        || fail "$host: skipped: $(cat "$WORK/r.json")"
    all=$(engine "$sock" GET '/v1.41/containers/json?all=1' | jq -r '[.[].Names[0]] | sort | join(" ")')
    [ "$all" = "/alive-$host /late-$host /mine-$host /user-of-spare-$host" ] || fail "$host: containers after: $all"
    engine "$sock" GET "/v1.41/images/$dangling/json" | grep -q "No such image\|no such image\|image not known" || fail "$host: the dangling image is still there"
    engine "$sock" GET /v1.41/images/gf-spare:1/json | jq -e .Id > /dev/null || fail "$host: the image in use since was removed"
    vols=$(engine "$sock" GET /v1.41/volumes | jq -r '[.Volumes[].Name] | sort | join(" ")')
    [ "$vols" = volused ] || fail "$host: volumes after: $vols"
    ok "$host: the run removed exactly the plan's items still unused ($(jq .bytes "$WORK/r.json") bytes); a container made since stays, an image taken into use since is skipped"
}

check_engine dk "$DOCKER_SOCK"
check_engine pd "$PODMAN_SOCK"

# --- the fleet: every host's plan; a run by host
ctr "$DOCKER_SOCK" "junk2" gf-busybox:1 "true" "" > /dev/null
ctr "$PODMAN_SOCK" "junk3" gf-busybox:1 "true" "" > /dev/null
sleep 1
as otto GET /api/v1/cleanup > "$WORK/f.json"
[ "$HTTP_CODE" = 200 ] || fail "fleet plan: $HTTP_CODE"
[ "$(jq -r '[.servers[] | .server + "=" + ([.items[].name] | sort | join(","))] | sort | join(" ")' "$WORK/f.json")" = "dk=junk2,late-dk pd=junk3,late-pd" ] \
    || fail "fleet plan: $(cat "$WORK/f.json")"
jq '{servers: (.servers | map({key: .server, value: {items: [.items[] | {kind, id}]}}) | from_entries)}' "$WORK/f.json" > "$WORK/frun.json"
as otto POST /api/v1/cleanup "$(cat "$WORK/frun.json")" > "$WORK/fr.json"
[ "$HTTP_CODE" = 200 ] && [ "$(jq '[.servers[].removed | length] | add' "$WORK/fr.json")" = 4 ] || fail "fleet run: $HTTP_CODE $(cat "$WORK/fr.json")"
ok "the fleet: one plan with every host's items, one run removing them host by host"

# --- roles, audit, bad input
as alice GET /api/v1/servers/dk/cleanup > /dev/null
[ "$HTTP_CODE" = 403 ] || fail "a user's cleanup plan: $HTTP_CODE"
as alice POST /api/v1/servers/dk/cleanup '{"items":[]}' > /dev/null
[ "$HTTP_CODE" = 403 ] || fail "a user's cleanup run: $HTTP_CODE"
n=$(sqlite3 "$WORK/s-data/audit.db" "SELECT count(*) FROM audit WHERE username = 'otto' AND action = 'host.cleanup' AND details LIKE '%\"bytes\":%'")
[ "$n" = 2 ] || fail "host.cleanup audited: $n"
n=$(sqlite3 "$WORK/s-data/audit.db" "SELECT count(*) FROM audit WHERE action = 'fleet.cleanup' AND details LIKE '%\"removed\":4%'")
[ "$n" = 1 ] || fail "fleet.cleanup audited: $n"
as otto GET "/api/v1/servers/dk/cleanup?kinds=everything" > "$WORK/bad.json"
[ "$HTTP_CODE" = 400 ] && [ "$(jq -r .error.field "$WORK/bad.json")" = kinds ] || fail "bad kinds: $HTTP_CODE $(cat "$WORK/bad.json")"
as otto POST /api/v1/servers/dk/cleanup '{"items":{}}' > "$WORK/bad.json"
[ "$HTTP_CODE" = 400 ] && [ "$(jq -r .error.field "$WORK/bad.json")" = items ] || fail "bad items: $HTTP_CODE $(cat "$WORK/bad.json")"
as otto POST /api/v1/servers/dk/cleanup '{"items":[{"kind":"disk","id":"x"}]}' > "$WORK/bad.json"
[ "$HTTP_CODE" = 400 ] && [ "$(jq -r .error.field "$WORK/bad.json")" = items ] || fail "bad item kind: $HTTP_CODE $(cat "$WORK/bad.json")"
as otto POST /api/v1/servers/dk/cleanup '{"items":[{"kind":"container","id":"../../etc"}]}' > "$WORK/r.json"
[ "$HTTP_CODE" = 200 ] && [ "$(jq '.skipped | length' "$WORK/r.json")" = 1 ] || fail "an id in no plan: $HTTP_CODE $(cat "$WORK/r.json")"
ok "users get 403; every run audited with its bytes; bad kinds and items are 400 naming the field; an id no plan holds is skipped, never sent to the engine"

# --- the Images page's cleanup, in a real browser
: "${BUILD_DIR:?}"
[ -x /usr/bin/chromium ] || fail "chromium missing (scripts/deps.sh test)"
ctr "$DOCKER_SOCK" "junk-ui" gf-busybox:1 "true" "" > /dev/null
sleep 1
CHECK=cleanup JUNK=junk-ui GF_URL="$SERVER_URL" ADMIN_PASSWORD="$ADMIN_PASSWORD" SERVER_NAME=dk \
    ARTIFACTS="$BUILD_DIR/ui-artifacts" node "$SRC_DIR/web/tests/engine.test.mjs" || fail "cleanup in the UI"
engine "$DOCKER_SOCK" GET '/v1.41/containers/json?all=1' | grep -q junk-ui && fail "junk-ui is still there after the UI's cleanup"
ok "UI: the cleanup panel shows the plan and removes it"
