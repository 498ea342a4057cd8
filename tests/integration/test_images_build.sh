#!/usr/bin/env bash
# Images built and shipped, on a real Docker 20.10 and a real Podman 4.3,
# with a real registry (distribution 2.8) that wants a password: a build
# from an uploaded context (its log read back while it runs), a build from
# a git URL (git daemon on loopback; cloned by the agent, at a branch, a
# tag, a folder), a push refused without credentials,
# then, with the credentials an admin set (never shown again), pushed,
# removed locally, pulled back and run; roles, bad input, audit.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/engines.sh"
command -v docker-registry > /dev/null && command -v git > /dev/null || fail "docker-registry/git missing (scripts/deps.sh test)"

# a registry with htpasswd (bcrypt from libxcrypt through Python's crypt)
RPORT=$(free_port)
REGISTRY="127.0.0.1:$RPORT"
HASH=$(/usr/bin/python3 -W ignore -c "import crypt; print(crypt.crypt('reg-pass-42', crypt.mksalt(crypt.METHOD_BLOWFISH)))")
printf 'builder:%s\n' "$HASH" > "$WORK/htpasswd"
mkdir -p "$WORK/registry"
cat > "$WORK/registry.yml" << EOF
version: 0.1
log: {level: warn}
storage: {filesystem: {rootdirectory: $WORK/registry}}
http: {addr: $REGISTRY}
auth: {htpasswd: {realm: gf-test, path: $WORK/htpasswd}}
EOF
docker-registry serve "$WORK/registry.yml" >> "$WORK/registry.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 1 100); do [ "$(curl -s -o /dev/null -w '%{http_code}' "http://$REGISTRY/v2/")" = 401 ] && break; sleep 0.1; done

# a clone that hears nothing for 2 s is stopped (the default is 120)
start_two_hosts --git-clone-stall-s 2
printf 'container_host_ip: 127.0.0.1\ncontainer_default_memory_mib: 64\n' > "$WORK/server.yaml"
mkdir -p "$WORK/s-data"
make_admin "$WORK/s-data"
add_users "$WORK/s-data" otto:operator alice:user
start_server s --config "$WORK/server.yaml"
register_two_hosts

# a build context and a git repository with the same Dockerfile
mkdir -p "$WORK/ctx"
printf 'FROM gf-busybox:1\nCOPY hello.txt /hello.txt\nCMD ["cat", "/hello.txt"]\n' > "$WORK/ctx/Dockerfile"
printf 'built by gpufleet\n' > "$WORK/ctx/hello.txt"
tar -C "$WORK/ctx" -cf "$WORK/ctx.tar" .
# a build that prints as it goes, for the live log
mkdir -p "$WORK/slow"
printf 'FROM gf-busybox:1\nRUN for i in 1 2 3 4 5; do echo step-$((i*11)); sleep 0.4; done\n' > "$WORK/slow/Dockerfile"
tar -C "$WORK/slow" -cf "$WORK/slow.tar" .
PY=/usr/bin/python3
WSC="$(dirname "$0")/ctrstream.py"
git -C "$WORK" init -q -b main repo.src && cp "$WORK/ctx/Dockerfile" "$WORK/ctx/hello.txt" "$WORK/repo.src/"
gitc() { git -C "$WORK/repo.src" -c user.name=t -c user.email=t@t "$@"; }
gitc add . && gitc commit -qm ctx && gitc tag v1
V1_SHA=$(gitc rev-parse HEAD)
# then a folder with a Dockerfile of its own: its RUN prints into the log
mkdir -p "$WORK/repo.src/sub"
printf 'FROM gf-busybox:1\nCOPY note.txt /note.txt\nRUN cat /note.txt\n' > "$WORK/repo.src/sub/Dockerfile"
printf 'from a folder at main\n' > "$WORK/repo.src/sub/note.txt"
gitc add . && gitc commit -qm sub
MAIN_SHA=$(gitc rev-parse HEAD)
git clone -q --bare "$WORK/repo.src" "$WORK/git/app.git"
GPORT=$(free_port)
git daemon --base-path="$WORK/git" --export-all --listen=127.0.0.1 --port="$GPORT" --reuseaddr "$WORK/git" >> "$WORK/git.log" 2>&1 &
PIDS+=($!)
# a "remote" that takes connections and never answers
SILENT=$(free_port)
python3 -c 'import socket,sys,time
s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(16)
held=[]
while True: held.append(s.accept()[0])' "$SILENT" &
PIDS+=($!)
sleep 0.5

# job HOST ID: waits for the job; prints its last state
job() {
    local j
    for _ in $(seq 1 600); do
        j=$(as otto GET "/api/v1/servers/$1/images/pulls/$2")
        [ "$(jq -r .state <<< "$j")" != running ] && break
        sleep 0.1
    done
    echo "$j"
}

check_engine() {
    local host=$1 sock=$2 ref="$REGISTRY/team/hello-$1:1" j id
    api DELETE "/api/v1/registries/$REGISTRY" > /dev/null # none yet
    # --- a build from an uploaded context, its log
    curl -sS -o "$WORK/b.json" -w '%{http_code}' -X POST -H "Authorization: Bearer $TOK_otto" --data-binary "@$WORK/ctx.tar" \
        "$SERVER_URL/api/v1/servers/$host/images/build?tag=$(jq -rn --arg t "$ref" '$t|@uri')" > "$WORK/b.code"
    [ "$(cat "$WORK/b.code")" = 202 ] || fail "$host: build: $(cat "$WORK/b.code") $(cat "$WORK/b.json")"
    j=$(job "$host" "$(jq .id "$WORK/b.json")")
    [ "$(jq -r '.state + " " + .kind' <<< "$j")" = "done build" ] || fail "$host: build: $j"
    jq -r .log <<< "$j" | grep -q 'COPY hello.txt' || fail "$host: the build's log: $j"
    as otto GET "/api/v1/servers/$host/images" | jq -e --arg r "$ref" '[.[].tags[]] | map(sub("^localhost/"; "")) | index($r) != null' > /dev/null \
        || fail "$host: the built image is not listed"
    ok "$host: built from an uploaded context (the log says $(jq -r .log <<< "$j" | grep -c . ) lines, COPY among them), tagged $ref"

    # --- a build's log pushed live over a WebSocket, in pieces as it prints
    curl -sS -o "$WORK/s.json" -w '%{http_code}' -X POST -H "Authorization: Bearer $TOK_otto" --data-binary "@$WORK/slow.tar" \
        "$SERVER_URL/api/v1/servers/$host/images/build?tag=team/slow-$host:1" > "$WORK/s.code"
    [ "$(cat "$WORK/s.code")" = 202 ] || fail "$host: slow build: $(cat "$WORK/s.code") $(cat "$WORK/s.json")"
    "$PY" "$WSC" logs "ws://127.0.0.1:$SERVER_PORT/api/v1/servers/$host/images/pulls/$(jq .id "$WORK/s.json")/log/live" 60 \
        "$WORK/live.json" "Authorization: Bearer $TOK_otto" || fail "$host: the build's live log: $(cat "$WORK/live.json" 2>/dev/null)"
    l=$(cat "$WORK/live.json")
    jq -r '[.chunks[] | select(.[0] == "o") | .[1]] | join("")' <<< "$l" | grep -o 'step-[0-9][0-9]*' | tr '\n' ' ' | grep -q '^step-11 step-22 step-33 step-44 step-55 ' \
        || fail "$host: the live log's steps: $(jq -c . <<< "$l" | head -c 600)"
    jq -e '.ends == ["the build ended"] and .close == 1000 and .messages >= 4' <<< "$l" > /dev/null \
        || fail "$host: the live log's end or pieces: $(jq -c '{ends, close, messages}' <<< "$l")"
    ok "$host: a build's log pushed live over a WebSocket: its RUN's five steps in order in $(jq .messages <<< "$l") messages as it printed them, then \"the build ended\" (1000)"

    # --- builds from git, cloned by the agent (libgit2) on both engines:
    # a branch, a tag, a folder; a missing ref and an unreachable remote fail the job
    gbuild() { # REF TAG: the job's last state
        as otto POST "/api/v1/servers/$host/images/build?tag=$2&git=$(jq -rn --arg g "git://127.0.0.1:$GPORT/app.git#$1" '$g|@uri')" > "$WORK/g.json"
        [ "$HTTP_CODE" = 202 ] || fail "$host: git build #$1: $HTTP_CODE $(cat "$WORK/g.json")"
        job "$host" "$(jq .id "$WORK/g.json")"
    }
    j=$(gbuild main team/from-git:1)
    [ "$(jq -r '.state + " " + .commit' <<< "$j")" = "done $MAIN_SHA" ] || fail "$host: the git build at main: $j"
    jq -r .log <<< "$j" | grep -q "git: at commit $MAIN_SHA" && jq -r .log <<< "$j" | grep -q 'git: receiving objects 100%' \
        || fail "$host: the clone's progress is not in the log: $j"
    j=$(gbuild v1 team/from-git:v1)
    [ "$(jq -r '.state + " " + .commit' <<< "$j")" = "done $V1_SHA" ] || fail "$host: the git build at tag v1: $j"
    j=$(gbuild main:sub team/from-git:sub)
    [ "$(jq -r .state <<< "$j")" = done ] && jq -r .log <<< "$j" | grep -q 'from a folder at main' || fail "$host: the git build of a folder: $j"
    j=$(gbuild no-such-branch team/from-git:x)
    [ "$(jq -r .state <<< "$j")" = failed ] && jq -r .error <<< "$j" | grep -q 'no branch, tag or commit "no-such-branch"' \
        || fail "$host: a missing ref: $j"
    as otto POST "/api/v1/servers/$host/images/build?tag=a:1&git=git://127.0.0.1:1/x.git" > "$WORK/g.json"
    j=$(job "$host" "$(jq .id "$WORK/g.json")")
    [ "$(jq -r .state <<< "$j")" = failed ] && jq -r .error <<< "$j" | grep -q 'cloning git://127.0.0.1:1/x.git' \
        || fail "$host: an unreachable remote: $j"
    # a remote that takes the connection and says nothing: the clone is killed
    as otto POST "/api/v1/servers/$host/images/build?tag=a:1&git=git://127.0.0.1:$SILENT/x.git" > "$WORK/g.json"
    t0=$(date +%s%N)
    j=$(job "$host" "$(jq .id "$WORK/g.json")")
    ms=$((($(date +%s%N) - t0) / 1000000))
    [ "$(jq -r .state <<< "$j")" = failed ] && jq -r .error <<< "$j" | grep -q 'nothing came for 2 s' && [ "$ms" -lt 8000 ] \
        || fail "$host: a silent remote ($ms ms): $j"
    ok "$host: built from git at a branch (commit $(cut -c1-8 <<< "$MAIN_SHA"), progress in the log), a tag, a folder (its RUN in the log); a missing ref, an unreachable remote and a silent one (stopped after 2 s, in $ms ms) fail the job, saying why"

    # --- push: refused without credentials, done with them
    as otto POST "/api/v1/servers/$host/images/push" "{\"image\":\"$ref\"}" > "$WORK/p.json"
    [ "$HTTP_CODE" = 202 ] || fail "$host: push: $HTTP_CODE $(cat "$WORK/p.json")"
    j=$(job "$host" "$(jq .id "$WORK/p.json")")
    [ "$(jq -r .state <<< "$j")" = failed ] && jq -r .error <<< "$j" | grep -qi 'auth\|401\|unauthorized' || fail "$host: a push without credentials: $j"
    api PUT "/api/v1/registries/$REGISTRY" '{"user":"builder","password":"reg-pass-42"}' > /dev/null
    [ "$HTTP_CODE" = 200 ] || fail "set the registry's credentials: $HTTP_CODE"
    as otto POST "/api/v1/servers/$host/images/push" "{\"image\":\"$ref\"}" > "$WORK/p.json"
    j=$(job "$host" "$(jq .id "$WORK/p.json")")
    [ "$(jq -r '.state + " " + .kind' <<< "$j")" = "done push" ] || fail "$host: push with credentials: $j"
    curl -fsS -u builder:reg-pass-42 "http://$REGISTRY/v2/team/hello-$host/tags/list" | jq -e '.tags == ["1"]' > /dev/null || fail "$host: not in the registry"
    ok "$host: a push without credentials fails (the registry's 401 said); with the admin's it lands in the registry"

    # --- removed locally, pulled back (the credentials go along), run
    as otto DELETE "/api/v1/servers/$host/images?image=$(jq -rn --arg t "$ref" '$t|@uri')&force=1" > /dev/null
    [ "$HTTP_CODE" = 200 ] || fail "$host: remove: $HTTP_CODE"
    as otto POST "/api/v1/servers/$host/images/pull" "{\"image\":\"$ref\"}" > "$WORK/l.json"
    j=$(job "$host" "$(jq .id "$WORK/l.json")")
    [ "$(jq -r .state <<< "$j")" = done ] || fail "$host: pull back: $j"
    as alice POST /api/v1/containers "{\"name\":\"hello-$host\",\"image\":\"$ref\",\"host\":\"$host\",\"gpus\":0,\"workspace\":false}" > "$WORK/c.json"
    [ "$HTTP_CODE" = 201 ] || fail "$host: run it: $HTTP_CODE $(cat "$WORK/c.json")"
    id=$(jq -r .id "$WORK/c.json")
    for _ in $(seq 1 50); do as alice GET "/api/v1/containers/$id/logs" | grep -q 'built by gpufleet' && break; sleep 0.1; done
    as alice GET "/api/v1/containers/$id/logs" | grep -q 'built by gpufleet' || fail "$host: the pulled image did not run as built"
    ok "$host: removed locally, pulled back from the private registry, and run: it prints what the build put in"
}
check_engine dk "$DOCKER_SOCK"
check_engine pd "$PODMAN_SOCK"

# --- the Images page: a build from git, its log; the registries
: "${BUILD_DIR:?}"
[ -x /usr/bin/chromium ] || fail "chromium missing (scripts/deps.sh test)"
CHECK=build TAG=team/ui-built:1 GIT="git://127.0.0.1:$GPORT/app.git#main" COMMIT="$MAIN_SHA" REGISTRY="$REGISTRY" GF_URL="$SERVER_URL" \
    ADMIN_PASSWORD="$ADMIN_PASSWORD" SERVER_NAME=dk ARTIFACTS="$BUILD_DIR/ui-artifacts" \
    node "$SRC_DIR/web/tests/engine.test.mjs" || fail "the build in the UI (screenshots in $BUILD_DIR/ui-artifacts)"

# --- the credentials are never shown; roles; bad input; audit
api GET /api/v1/registries > "$WORK/r.json"
jq -e --arg r "$REGISTRY" '.registries == [{"registry":$r,"user":"builder","has_password":true}]' "$WORK/r.json" > /dev/null || fail "registries: $(cat "$WORK/r.json")"
grep -q reg-pass-42 "$WORK/r.json" && fail "the password was shown"
[ "$(stat -c %a "$WORK/s-data/registry_auth.json")" = 600 ] || fail "the credentials file is not owner-only"
grep -rq reg-pass-42 "$WORK/s.log" && fail "the password is in the server's log"
sqlite3 "$WORK/s-data/audit.db" "SELECT details FROM audit" | grep -q reg-pass-42 && fail "the password is in the audit log"
as otto PUT "/api/v1/registries/$REGISTRY" '{"user":"x","password":"y"}' > /dev/null
[ "$HTTP_CODE" = 403 ] || fail "an operator set credentials: $HTTP_CODE"
as alice POST "/api/v1/servers/dk/images/build?tag=a:1&git=git://127.0.0.1:1/x.git" > /dev/null
[ "$HTTP_CODE" = 403 ] || fail "a user's build: $HTTP_CODE"
out=$("$PY" "$WSC" logs "ws://127.0.0.1:$SERVER_PORT/api/v1/servers/dk/images/pulls/9999/log/live" 5 "$WORK/x.json" "Authorization: Bearer $TOK_otto" || true)
[ "$out" = "status 404" ] || fail "the live log of no such build: $out"
for q in "tag=BAD TAG:tag" "tag=a:1&git=file:///etc:git" "tag=a:1&git=https://x/y%20z:git" "tag=a:1:context" \
    "tag=a:1&git=git://h/r.git%23main:../..:git" "tag=a:1&git=git://h/r.git%23-x:git"; do
    as otto POST "/api/v1/servers/dk/images/build?$(sed 's/ /%20/g' <<< "${q%:*}")" > "$WORK/bad.json"
    [ "$HTTP_CODE" = 400 ] && [ "$(jq -r .error.field "$WORK/bad.json")" = "${q##*:}" ] || fail "bad build ${q%:*}: $HTTP_CODE $(cat "$WORK/bad.json")"
done
api PUT "/api/v1/registries/bad%20host" '{"user":"x","password":"y"}' > "$WORK/bad.json"
[ "$HTTP_CODE" = 400 ] && [ "$(jq -r .error.field "$WORK/bad.json")" = registry ] || fail "a bad registry name: $HTTP_CODE"
for a in image.build image.push registry.set; do
    [ "$(sqlite3 "$WORK/s-data/audit.db" "SELECT count(*) FROM audit WHERE action = '$a' AND result = 'ok'")" -ge 2 ] || fail "$a not audited"
done
ok "credentials: listed without the password (owner-only file, not in logs or audit); operators cannot set them, users cannot build; bad tag, git URL, context and registry are 400 naming the field; builds, pushes and credentials audited"
