#!/usr/bin/env bash
# Apps from git, on a real Docker 20.10 and a real Podman 4.3, from a real
# git server (git daemon on loopback) serving a tiny web app (busybox
# httpd) with three commits: install (progress pushed live) -> STARTING ->
# RUNNING, the page through its published port, the folder with a real
# docker-compose.yml that docker-compose itself reads, the container as a
# non-root user; stop, start, restart; reinstall at another ref; update
# keeping untracked files; an app that never answers and one that exits
# turn FAILED with their logs; deinstall keeping or removing the folder and
# releasing GPUs and ports; bad repositories and refs refused naming the
# field with nothing made; roles; templates promoted from a working app,
# installed from, exported and imported (Portainer's format too); audit.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/engines.sh"
command -v git > /dev/null && command -v docker-compose > /dev/null || fail "git/docker-compose missing (scripts/deps.sh test)"
PY=/usr/bin/python3
WSC="$(dirname "$0")/ctrstream.py"

start_two_hosts
cat > "$WORK/server.yaml" << EOF
container_host_ip: 127.0.0.1
container_default_memory_mib: 64
apps_probe_ms: 300
EOF
mkdir -p "$WORK/s-data"
make_admin "$WORK/s-data"
add_users "$WORK/s-data" otto:operator alice:user bob:user vic:viewer
start_server s --config "$WORK/server.yaml"
register_two_hosts

# the app: a page per commit (v1 tagged, main two commits on)
git -C "$WORK" init -q -b main web.src
gitc() { git -C "$WORK/web.src" -c user.name=t -c user.email=t@t "$@"; }
mkdir -p "$WORK/web.src/www"
page() { printf '<h1>%s</h1>\n' "$1" > "$WORK/web.src/www/index.html"; gitc add . && gitc commit -qm "$1"; }
page "version one" && gitc tag v1
SHA1=$(gitc rev-parse HEAD)
page "version two" && gitc tag v2
SHA2=$(gitc rev-parse HEAD)
git clone -q --bare "$WORK/web.src" "$WORK/git/web.git"
GPORT=$(free_port)
git daemon --base-path="$WORK/git" --export-all --listen=127.0.0.1 --port="$GPORT" --reuseaddr "$WORK/git" >> "$WORK/git.log" 2>&1 &
PIDS+=($!)
REPO="git://127.0.0.1:$GPORT/web.git"
for _ in $(seq 1 50); do git ls-remote "$REPO" > /dev/null 2>&1 && break; sleep 0.1; done
# (a TERM ends it at once: Podman's containers have no init to pass it on)
HTTPD="trap 'exit 0' TERM; httpd -f -p 8080 -h /app/www & wait"

# alice's and bob's browsers, on the live socket for the whole test
for u in alice bob; do
    tok="TOK_$u"
    "$PY" "$WSC" events "ws://127.0.0.1:$SERVER_PORT/api/v1/live" 280 "$WORK/ev-$u.json" apps "Authorization: Bearer ${!tok}" &
    PIDS+=($!)
done
sleep 0.5

# app NAME: its JSON as alice sees it
app() { as alice GET "/api/v1/apps/$1"; }
# wait_health NAME LIGHT [SECONDS]: the app's JSON once its light is LIGHT
wait_health() {
    local j
    for _ in $(seq 1 $((${3:-30} * 10))); do
        j=$(app "$1")
        [ "$(jq -r .health <<< "$j")" = "$2" ] && [ "$(jq -r .busy <<< "$j")" = false ] && { echo "$j"; return 0; }
        sleep 0.1
    done
    fail "$1 is not $2: $j"
}
folders() { ls "$WORK/apps-dk" "$WORK/apps-pd" 2> /dev/null | grep -v '^/' | grep -c . || true; }

# --- bad input: refused naming the field, nothing made
bad() { # WANT_CODE FIELD BODY
    as alice POST /api/v1/apps "$3" > "$WORK/bad.json"
    [ "$HTTP_CODE" = "$1" ] && [ "$(jq -r .error.field "$WORK/bad.json")" = "$2" ] \
        || fail "expected $1 naming $2 for $3: $HTTP_CODE $(cat "$WORK/bad.json")"
}
B='"start_command":"true","port":8080,"image":"gf-busybox:1","host":"dk"'
bad 400 repository "{\"name\":\"nope\",\"repository\":\"git://127.0.0.1:$GPORT/missing.git\",$B}"
bad 400 repository "{\"name\":\"nope\",\"repository\":\"ftp://127.0.0.1/x.git\",$B}"
bad 400 repository "{\"name\":\"nope\",\"repository\":\"--upload-pack=touch $WORK/pwned\",$B}"
bad 400 repository "{\"name\":\"nope\",\"repository\":\"git://127.0.0.1:$GPORT/--upload-pack=touch\",$B}"
bad 400 repository "{\"name\":\"nope\",\"repository\":\"$REPO#main\",$B}"
bad 400 ref "{\"name\":\"nope\",\"repository\":\"$REPO\",\"ref\":\"no-such-branch\",$B}"
bad 400 ref "{\"name\":\"nope\",\"repository\":\"$REPO\",\"ref\":\"-u\",$B}"
bad 400 name "{\"name\":\"Not_A_Label\",\"repository\":\"$REPO\",$B}"
bad 400 port "{\"name\":\"nope\",\"repository\":\"$REPO\",\"start_command\":\"true\",\"port\":0}"
bad 400 gpus "{\"name\":\"nope\",\"repository\":\"$REPO\",$B,\"gpus\":99}"
bad 403 run_as_root "{\"name\":\"nope\",\"repository\":\"$REPO\",$B,\"run_as_root\":true}"
bad 404 host "{\"name\":\"nope\",\"repository\":\"$REPO\",\"start_command\":\"true\",\"port\":8080,\"image\":\"gf-busybox:1\",\"host\":\"no-such-host\"}"
[ "$(as alice GET /api/v1/apps | jq '.apps | length')" = 0 ] && [ "$(folders)" = 0 ] && [ ! -e "$WORK/pwned" ] \
    || fail "a refused install left something: $(as alice GET /api/v1/apps) $(ls "$WORK/apps-dk" "$WORK/apps-pd" 2>&1)"
ok "bad input refused naming the field, nothing made: a missing repository, ftp://, --upload-pack (as the URL and in its path), a #fragment, a missing ref, a ref like an option, a bad name, port 0, 99 GPUs, root (403), an unknown host (404)"

check_engine() {
    local host=$1 sock=$2 name="web-$1" j t0 port
    # --- install: cloned on the host (progress pushed), then its container
    t0=$(date +%s%N)
    as alice POST /api/v1/apps "{\"name\":\"$name\",\"repository\":\"$REPO\",\"ref\":\"v1\",\"start_command\":\"$HTTPD\",\"port\":8080,\"health_path\":\"/index.html\",\"image\":\"gf-busybox:1\",\"host\":\"$host\",\"health_timeout_s\":30}" > "$WORK/i.json"
    [ "$HTTP_CODE" = 202 ] || fail "$host: install: $HTTP_CODE $(cat "$WORK/i.json")"
    jq -e '.phase == "installing" and .busy == true and .server == "'"$host"'"' "$WORK/i.json" > /dev/null || fail "$host: the install's answer: $(cat "$WORK/i.json")"
    j=$(wait_health "$name" RUNNING)
    echo "   $host: RUNNING $(( ($(date +%s%N) - t0) / 1000000 )) ms after the install was asked"
    [ "$(jq -r .commit <<< "$j")" = "$SHA1" ] && [ "$(jq -r .phase <<< "$j")" = ready ] || fail "$host: the app: $j"
    port=$(jq .host_port <<< "$j")
    curl -fsS "http://127.0.0.1:$port/" | grep -q 'version one' || fail "$host: the page on port $port"
    [ "$(jq -r .url <<< "$j")" = "http://127.0.0.1:$port/" ] || fail "$host: the link: $(jq -r .url <<< "$j")"
    local dir="$WORK/apps-$host/$name"
    [ -f "$dir/www/index.html" ] && [ -d "$dir/.git" ] && [ "$(stat -c %u "$dir/www/index.html")" = 1000 ] || fail "$host: the folder: $(ls -la "$dir")"
    grep -q "image: \"gf-busybox:1\"" "$dir/docker-compose.yml" && grep -q "\"$dir:/app\"" "$dir/docker-compose.yml" \
        && grep -q "\"127.0.0.1:$port:8080/tcp\"" "$dir/docker-compose.yml" || fail "$host: the compose file: $(cat "$dir/docker-compose.yml")"
    (cd "$dir" && DOCKER_HOST="unix://$sock" docker-compose ps 2>&1) > "$WORK/ps.txt"
    grep -q "app-$name .*Up" "$WORK/ps.txt" || fail "$host: docker-compose ps in $dir: $(cat "$WORK/ps.txt")"
    (cd "$dir" && DOCKER_HOST="unix://$sock" docker-compose config -q 2>&1) || fail "$host: docker-compose reads the file: $(cd "$dir" && DOCKER_HOST="unix://$sock" docker-compose config 2>&1 | tail -3)"
    engine "$sock" GET "/containers/app-$name/json" | jq -e '.Config.User == "1000:1000" and .Config.WorkingDir == "/app" and .Config.Entrypoint[0:2] == ["sh", "-c"]' > /dev/null \
        || fail "$host: the container's user: $(engine "$sock" GET "/containers/app-$name/json" | jq -c '.Config | {User, WorkingDir}')"
    ok "$host: installed from git (commit v1 = ${SHA1:0:12}) to RUNNING; the page answers on port $port; the folder is uid 1000's, its docker-compose.yml read by docker-compose, whose ps shows the container, run as 1000:1000"

    # --- stop, start, restart
    as alice POST "/api/v1/apps/$name/stop" > /dev/null
    [ "$HTTP_CODE" = 200 ] || fail "$host: stop: $HTTP_CODE"
    j=$(wait_health "$name" STOPPED 10)
    curl -s -o /dev/null "http://127.0.0.1:$port/" && fail "$host: the stopped app still answers"
    as alice POST "/api/v1/apps/$name/start" > /dev/null
    j=$(wait_health "$name" RUNNING 20)
    local since0
    since0=$(jq .health_since_ms <<< "$j")
    as alice POST "/api/v1/apps/$name/restart" > "$WORK/r.json"
    [ "$HTTP_CODE" = 200 ] && [ "$(jq -r .health "$WORK/r.json")" = STARTING ] || fail "$host: restart: $HTTP_CODE $(cat "$WORK/r.json")"
    j=$(wait_health "$name" RUNNING 20)
    [ "$(jq .health_since_ms <<< "$j")" -gt "$since0" ] || fail "$host: the restart did not walk the light again"
    port=$(jq .host_port <<< "$j")
    curl -fsS "http://127.0.0.1:$port/" | grep -q 'version one' || fail "$host: the page after a restart"
    ok "$host: stop -> STOPPED (the port closed), start -> RUNNING, restart -> STARTING -> RUNNING"

    # --- reinstall at v2: a fresh clone, the container recreated
    as alice POST "/api/v1/apps/$name/reinstall" '{"ref":"v2"}' > "$WORK/r.json"
    [ "$HTTP_CODE" = 200 ] || fail "$host: reinstall: $HTTP_CODE $(cat "$WORK/r.json")"
    j=$(wait_health "$name" RUNNING 30)
    [ "$(jq -r '.commit + " " + .ref' <<< "$j")" = "$SHA2 v2" ] || fail "$host: after the reinstall: $j"
    port=$(jq .host_port <<< "$j")
    curl -fsS "http://127.0.0.1:$port/" | grep -q 'version two' || fail "$host: the page after the reinstall"
    ok "$host: reinstalled at v2: commit ${SHA2:0:12}, the page says version two"

    # --- update: a fetch into the clone; what git does not track stays
    echo "weights" > "$dir/model.bin"
    page "version three $host"
    git -C "$WORK/web.src" push -q "$WORK/git/web.git" main
    as alice POST "/api/v1/apps/$name/update" '{"ref":"main"}' > "$WORK/r.json"
    [ "$HTTP_CODE" = 200 ] || fail "$host: update: $HTTP_CODE $(cat "$WORK/r.json")"
    j=$(wait_health "$name" RUNNING 30)
    [ "$(jq -r .commit <<< "$j")" = "$(gitc rev-parse HEAD)" ] || fail "$host: after the update: $j"
    port=$(jq .host_port <<< "$j")
    curl -fsS "http://127.0.0.1:$port/" | grep -q "version three $host" || fail "$host: the page after the update"
    [ "$(cat "$dir/model.bin")" = weights ] || fail "$host: the update lost an untracked file"
    ok "$host: updated (fetched) to $(gitc rev-parse --short=12 HEAD): the page is new, an untracked file in the folder stayed"

    # --- export: the record and the folder as one tar, streamed from the host
    curl -sS -o "$WORK/exp.tar" -w '%{http_code}' -H "Authorization: Bearer $TOK_alice" "$SERVER_URL/api/v1/apps/$name/export" > "$WORK/exp.code"
    [ "$(cat "$WORK/exp.code")" = 200 ] || fail "$host: export: $(cat "$WORK/exp.code") $(head -c 300 "$WORK/exp.tar")"
    tar -tf "$WORK/exp.tar" > "$WORK/exp.list" || fail "$host: the export is not a tar"
    for f in gpufleet-app.json app/www/index.html app/.git/HEAD app/model.bin app/docker-compose.yml; do
        grep -qx "$f" "$WORK/exp.list" || fail "$host: the export has no $f: $(head -20 "$WORK/exp.list")"
    done
    tar -xOf "$WORK/exp.tar" gpufleet-app.json | jq -e --arg n "$name" --arg c "$(gitc rev-parse HEAD)" '.name == $n and .commit == $c and .gpufleet_app == 1 and .health == null' > /dev/null \
        || fail "$host: the exported record: $(tar -xOf "$WORK/exp.tar" gpufleet-app.json | head -c 400)"
    as bob GET "/api/v1/apps/$name/export" > /dev/null
    [ "$HTTP_CODE" = 404 ] || fail "$host: bob exports alice's app: $HTTP_CODE"
    cp "$WORK/exp.tar" "$WORK/exp-$host.tar"
    ok "$host: exported as one tar: the record (gpufleet-app.json) and the folder with its .git, its compose file and what the app wrote ($(wc -l < "$WORK/exp.list") entries); another user gets 404"

    # --- roles: bob sees none of it, the viewer cannot act
    as bob GET "/api/v1/apps/$name" > /dev/null
    [ "$HTTP_CODE" = 404 ] || fail "$host: bob sees alice's app: $HTTP_CODE"
    as bob POST "/api/v1/apps/$name/stop" > /dev/null
    [ "$HTTP_CODE" = 404 ] || fail "$host: bob stops alice's app: $HTTP_CODE"
    as vic GET "/api/v1/apps/$name" > /dev/null
    [ "$HTTP_CODE" = 200 ] || fail "$host: the viewer does not see the app: $HTTP_CODE"
    as vic POST "/api/v1/apps/$name/stop" > /dev/null
    [ "$HTTP_CODE" = 403 ] || fail "$host: the viewer stops an app: $HTTP_CODE"
    ok "$host: another user gets 404 for the app (reading and stopping), a viewer reads it and may not stop it (403)"

    # --- FAILED: a port that never opens; a program that exits
    as alice POST /api/v1/apps "{\"name\":\"mute-$host\",\"repository\":\"$REPO\",\"start_command\":\"echo never-listens-\$((6*7)); sleep 600\",\"port\":8080,\"image\":\"gf-busybox:1\",\"host\":\"$host\",\"health_timeout_s\":2}" > /dev/null
    [ "$HTTP_CODE" = 202 ] || fail "$host: install mute: $HTTP_CODE"
    as alice POST /api/v1/apps "{\"name\":\"quit-$host\",\"start_command\":\"echo bye-now-\$((2+3)); exit 3\",\"port\":8080,\"image\":\"gf-busybox:1\",\"host\":\"$host\"}" > /dev/null
    [ "$HTTP_CODE" = 202 ] || fail "$host: install quit: $HTTP_CODE"
    j=$(wait_health "mute-$host" FAILED 30)
    jq -e '(.detail | test("not healthy within 2 s")) and (.log_tail | test("never-listens-42"))' <<< "$j" > /dev/null || fail "$host: the mute app: $j"
    j=$(wait_health "quit-$host" FAILED 30)
    jq -e '(.detail | test("exit code 3")) and (.log_tail | test("bye-now-5")) and .repository == ""' <<< "$j" > /dev/null || fail "$host: the app that quits: $j"
    ok "$host: an app whose port never opens is FAILED after its 2 s ($(jq -r .detail <<< "$(app "mute-$host")" | cut -c1-60)...), one that exits is FAILED ($(jq -r .detail <<< "$j")); both with their log tails"

    # --- deinstall: keep one folder, remove the others; ports released
    as alice DELETE "/api/v1/apps/$name?keep_folder=1" > /dev/null
    [ "$HTTP_CODE" = 200 ] || fail "$host: deinstall: $HTTP_CODE"
    for a in "mute-$host" "quit-$host"; do
        as alice DELETE "/api/v1/apps/$a" > /dev/null
        [ "$HTTP_CODE" = 200 ] || fail "$host: deinstall $a: $HTTP_CODE"
    done
    [ -f "$dir/www/index.html" ] && [ ! -e "$WORK/apps-$host/mute-$host" ] && [ ! -e "$WORK/apps-$host/quit-$host" ] \
        || fail "$host: the folders after the deinstalls: $(ls "$WORK/apps-$host")"
    engine "$sock" GET "/containers/json?all=1" | jq -e '[.[] | select(.Labels["gpufleet.app"] != null)] | length == 0' > /dev/null \
        || fail "$host: app containers left on the engine"
    as alice GET /api/v1/containers | jq -e '.containers | length == 0' > /dev/null || fail "$host: containers left in the ledger"
    as alice GET /api/v1/apps/"$name" > /dev/null
    [ "$HTTP_CODE" = 404 ] || fail "$host: the deinstalled app is still there"
    [ "$host" = pd ] && rm -rf "$dir" # dk's stays for the cleanup below
    ok "$host: deinstalled three apps: the folder kept where asked, removed otherwise; no container left on the engine or in the ledgers"
}

check_engine dk "$DOCKER_SOCK"
check_engine pd "$PODMAN_SOCK"

# --- a move: dk's export imported on pd, under a new name
DK_COMMIT=$(tar -xOf "$WORK/exp-dk.tar" gpufleet-app.json | jq -r .commit)
curl -sS -o "$WORK/imp.json" -w '%{http_code}' -H "Authorization: Bearer $TOK_alice" --data-binary "@$WORK/exp-dk.tar" \
    "$SERVER_URL/api/v1/apps/import?host=pd&name=moved" > "$WORK/imp.code"
[ "$(cat "$WORK/imp.code")" = 202 ] || fail "import: $(cat "$WORK/imp.code") $(cat "$WORK/imp.json")"
j=$(wait_health moved RUNNING 60)
[ "$(jq -r '.server + " " + .commit' <<< "$j")" = "pd $DK_COMMIT" ] || fail "the imported app: $j"
curl -fsS "$(jq -r .url <<< "$j")" | grep -q "version three dk" || fail "the imported app's page"
[ "$(cat "$WORK/apps-pd/moved/model.bin")" = weights ] && [ "$(stat -c %u "$WORK/apps-pd/moved/model.bin")" = 1000 ] && [ -d "$WORK/apps-pd/moved/.git" ] \
    || fail "the imported folder: $(ls -la "$WORK/apps-pd/moved")"
curl -sS -o "$WORK/bad.json" -w '%{http_code}' -H "Authorization: Bearer $TOK_alice" --data-binary "@$WORK/web.src/www/index.html" \
    "$SERVER_URL/api/v1/apps/import?host=pd" > "$WORK/bad.code"
[ "$(cat "$WORK/bad.code")" = 400 ] && [ "$(jq -r .error.field "$WORK/bad.json")" = body ] || fail "a body that is no export: $(cat "$WORK/bad.code") $(cat "$WORK/bad.json")"
as alice DELETE /api/v1/apps/moved > /dev/null
[ "$HTTP_CODE" = 200 ] && [ ! -e "$WORK/apps-pd/moved" ] || fail "deinstall of the imported app"
# a hostile export: a member climbing out, a link out and a file through it
mkdir -p "$WORK/outside"
/usr/bin/python3 - "$WORK/evil.tar" "$WORK/outside" << 'PYEOF'
import io, json, sys, tarfile
t = tarfile.open(sys.argv[1], "w", format=tarfile.GNU_FORMAT)
def add(name, data=b"", kind=tarfile.REGTYPE, link=""):
    ti = tarfile.TarInfo(name); ti.type = kind; ti.linkname = link; ti.size = len(data)
    t.addfile(ti, io.BytesIO(data))
rec = json.dumps({"gpufleet_app": 1, "name": "evil", "start_command": "sleep 600", "port": 8080, "image": "gf-busybox:1"}).encode()
add("gpufleet-app.json", rec)
add("app/../../../../../../" + sys.argv[2].lstrip("/") + "/climbed", b"x")
add("app/out", kind=tarfile.SYMTYPE, link=sys.argv[2])
add("app/out/through-link", b"y")
t.close()
PYEOF
curl -sS -o "$WORK/imp.json" -w '%{http_code}' -H "Authorization: Bearer $TOK_alice" --data-binary "@$WORK/evil.tar" \
    "$SERVER_URL/api/v1/apps/import?host=pd" > "$WORK/imp.code"
[ "$(cat "$WORK/imp.code")" = 202 ] || fail "the hostile import: $(cat "$WORK/imp.code") $(cat "$WORK/imp.json")"
j=$(wait_health evil FAILED 30)
[ -z "$(ls -A "$WORK/outside")" ] || fail "the hostile export wrote outside its folder: $(ls -la "$WORK/outside")"
jq -e '.detail | test("could not be unpacked")' <<< "$j" > /dev/null || fail "the hostile import's failure: $j"
as alice DELETE /api/v1/apps/evil > /dev/null
ok "moved: web-dk's export imported on pd as moved: RUNNING at dk's commit, its page, its untracked file (the app's user's) and .git came along; a body that is not an export is 400 naming it; a hostile export (a member with .., a link out and a file through it) fails its import without writing outside the folder"

# --- a private repository over HTTP with basic auth: the credentials are
# taken, used by the host's clone, and never shown again
HPORT=$(free_port)
"$PY" "$(dirname "$0")/git_http_auth.py" "$HPORT" "$WORK/git" deploy-bot "tok-$((6*7))-secret" >> "$WORK/githttp.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 1 50); do curl -s -o /dev/null "http://127.0.0.1:$HPORT/" && break; sleep 0.1; done
PRIV="http://127.0.0.1:$HPORT/web.git"
PB="\"start_command\":\"$HTTPD\",\"port\":8080,\"health_path\":\"/index.html\",\"image\":\"gf-busybox:1\",\"host\":\"dk\""
bad 400 repository "{\"name\":\"priv\",\"repository\":\"$PRIV\",$PB}"
bad 400 repository "{\"name\":\"priv\",\"repository\":\"$PRIV\",$PB,\"repository_auth\":{\"username\":\"deploy-bot\",\"password\":\"wrong\"}}"
bad 400 repository_auth "{\"name\":\"priv\",\"repository\":\"$REPO\",$PB,\"repository_auth\":{\"username\":\"x\",\"password\":\"y\"}}"
as alice POST /api/v1/apps "{\"name\":\"priv\",\"repository\":\"$PRIV\",$PB,\"repository_auth\":{\"username\":\"deploy-bot\",\"password\":\"tok-42-secret\"}}" > "$WORK/i.json"
[ "$HTTP_CODE" = 202 ] || fail "a private install: $HTTP_CODE $(cat "$WORK/i.json")"
j=$(wait_health priv RUNNING 30)
jq -e '.private == true and (.commit | length) == 40' <<< "$j" > /dev/null || fail "the private app: $j"
as alice POST /api/v1/apps/priv/update > /dev/null
[ "$HTTP_CODE" = 200 ] || fail "update of the private app: $HTTP_CODE"
j=$(wait_health priv RUNNING 30)
[ "$(jq -r .detail <<< "$j")" = "" ] || fail "the private app's update: $j"
for where in "$(as alice GET /api/v1/apps/priv)" "$(as alice GET /api/v1/apps)" "$(cat "$WORK"/*.log)" "$(sqlite3 "$WORK/s-data/audit.db" 'SELECT details FROM audit')" \
    "$(cat "$WORK/apps-dk/priv/.git/config" "$WORK/apps-dk/priv/docker-compose.yml")"; do
    grep -q "tok-42-secret" <<< "$where" && fail "the repository's password is shown or logged: $(grep -o '.\{60\}tok-42-secret.\{20\}' <<< "$where" | head -2)"
done
as alice DELETE /api/v1/apps/priv > /dev/null
ok "a private repository (HTTP basic auth): refused without credentials and with wrong ones (400 naming repository), installed and updated with them; private: true, the password in no answer, log, audit entry, compose file or the clone's .git/config"

# --- a private repository over ssh: a real OpenSSH sshd (in a container
# of the Debian worker image, git-upload-pack behind it) and a deploy key;
# the server's host key pinned on first contact; a rotated key taken by an
# update (the old one refused); a changed host key refused naming both
source "$(dirname "$0")/worker_image.sh"
WORKER_IMAGE=$(worker_image) || fail "the worker image (sshd, git) could not be made"
SPORT=$(free_port)
mkdir -p "$WORK/ssh"
for k in deploy1 deploy2; do ssh-keygen -q -t ed25519 -N '' -C "$k" -f "$WORK/ssh/$k"; done
cp "$WORK/ssh/deploy1.pub" "$WORK/ssh/authorized_keys"
chmod 600 "$WORK/ssh/authorized_keys"
AFTER_STOP+=("podman rm -f gf-gitssh-$$ > /dev/null 2>&1")
gitsshd() { # (re)made with new host keys each time
    podman rm -f "gf-gitssh-$$" > /dev/null 2>&1
    podman --runtime runc run -d --name "gf-gitssh-$$" --ulimit nofile=1024:1024 --ulimit nproc=1024:1024 \
        -p "127.0.0.1:$SPORT:22" -v "$WORK/git:/srv/git:ro" -v "$WORK/ssh/authorized_keys:/root/.ssh/authorized_keys:ro" \
        "$WORKER_IMAGE" sh -c 'ssh-keygen -A > /dev/null && mkdir -p /run/sshd && exec /usr/sbin/sshd -D -e' > /dev/null ||
        fail "the sshd container did not start"
    for _ in $(seq 1 100); do
        ssh-keyscan -T 1 -p "$SPORT" 127.0.0.1 2> /dev/null | grep -q ssh- && return 0
        sleep 0.1
    done
    fail "sshd did not answer: $(podman logs "gf-gitssh-$$" 2>&1 | tail -3)"
}
host_keys() { podman exec "gf-gitssh-$$" sh -c 'for f in /etc/ssh/ssh_host_*_key.pub; do ssh-keygen -lf "$f"; done' | awk '{print $2}'; }
gitsshd
SSHREPO="ssh://root@127.0.0.1:$SPORT/srv/git/web.git"
key() { jq -Rs . < "$WORK/ssh/$1"; }
SB="\"repository\":\"$SSHREPO\",\"start_command\":\"$HTTPD\",\"port\":8080,\"health_path\":\"/index.html\",\"image\":\"gf-busybox:1\",\"host\":\"dk\""
bad 400 repository_auth "{\"name\":\"viassh\",$SB}"
bad 400 repository "{\"name\":\"viassh\",$SB,\"repository_auth\":{\"ssh_key\":$(key deploy2)}}"
as alice POST /api/v1/apps "{\"name\":\"viassh\",$SB,\"repository_auth\":{\"ssh_key\":$(key deploy1)}}" > "$WORK/i.json"
[ "$HTTP_CODE" = 202 ] || fail "an install over ssh: $HTTP_CODE $(cat "$WORK/i.json")"
j=$(wait_health viassh RUNNING 30)
HK=$(jq -r .host_key <<< "$j")
MAIN=$(git -C "$WORK/git/web.git" rev-parse main)
jq -e --arg s "$MAIN" '.private and .commit == $s' <<< "$j" > /dev/null || fail "the app over ssh: $j"
host_keys | grep -qxF "$HK" || fail "pinned $HK, the server's keys are $(host_keys | tr '\n' ' ')"
# the key is rotated on the git server: the stored one is refused, the new one taken
cp "$WORK/ssh/deploy2.pub" "$WORK/ssh/authorized_keys"
page "version three"
git -C "$WORK/web.src" push -q "$WORK/git/web.git" main
SHA3=$(gitc rev-parse HEAD)
as alice POST /api/v1/apps/viassh/update > /dev/null
j=$(wait_health viassh RUNNING 30)
jq -e --arg s "$MAIN" '.commit == $s and (.detail | test("update failed"))' <<< "$j" > /dev/null || fail "an update with a revoked key: $j"
as alice POST /api/v1/apps/viassh/update "{\"repository_auth\":{\"ssh_key\":$(key deploy2)}}" > /dev/null
[ "$HTTP_CODE" = 200 ] || fail "an update with new credentials: $HTTP_CODE $(cat "$WORK/api.out")"
j=$(wait_health viassh RUNNING 30)
jq -e --arg s "$SHA3" --arg h "$HK" '.commit == $s and .detail == "" and .host_key == $h' <<< "$j" > /dev/null || fail "the update with deploy2: $j"
as alice POST /api/v1/apps/viassh/reinstall > /dev/null
j=$(wait_health viassh RUNNING 30)
jq -e --arg s "$SHA3" '.commit == $s and .detail == ""' <<< "$j" > /dev/null || fail "a reinstall with the kept deploy2: $j"
curl -fsS "http://127.0.0.1:$(jq .host_port <<< "$j")/index.html" | grep -q "version three" || fail "the page after the update"
# the git server comes back with other host keys: refused, both named
gitsshd
as alice POST /api/v1/apps/viassh/update > /dev/null
j=$(wait_health viassh RUNNING 30)
jq -e --arg h "$HK" '.detail | contains("changed: pinned " + $h + ", it shows SHA256:")' <<< "$j" > /dev/null ||
    fail "a changed host key was not refused: $(jq .detail <<< "$j")"
secret=$(sed -n 3p "$WORK/ssh/deploy2")
for where in "$(as alice GET /api/v1/apps/viassh)" "$(as alice GET /api/v1/apps)" "$(cat "$WORK"/*.log)" "$(sqlite3 "$WORK/s-data/audit.db" 'SELECT details FROM audit')" \
    "$(cat "$WORK/apps-dk/viassh/.git/config" "$WORK/apps-dk/viassh/docker-compose.yml")"; do
    grep -qF "$secret" <<< "$where" && fail "the deploy key is shown or logged"
done
sqlite3 "$WORK/s-data/audit.db" "SELECT details FROM audit WHERE action = 'app.action'" | grep -q '"repository_auth":"replaced"' ||
    fail "the new credentials' update is not audited as such"
as alice DELETE /api/v1/apps/viassh > /dev/null
ok "a private repository over ssh (OpenSSH sshd, a deploy key): no key 400 naming repository_auth, a key the server refuses 400 naming repository; installed with deploy1, its host key $HK pinned (the server's own); after the git server took deploy2 instead, an update with the stored key failed and left the app as it was, one given deploy2 took it (and kept it for a reinstall); new host keys were refused naming both; the key in no answer, log, audit entry or file"

# --- GPUs from the ledger: an app holds its GPU, and gives it back
GPU=$(as alice GET /api/v1/gpus | jq -r '.gpus[] | select(.server == "dk") | .uuid')
as alice POST /api/v1/apps "{\"name\":\"gpu-app\",\"repository\":\"$REPO\",\"start_command\":\"$HTTPD\",\"port\":8080,\"image\":\"gf-busybox:1\",\"host\":\"dk\",\"gpus\":1}" > /dev/null
[ "$HTTP_CODE" = 202 ] || fail "gpu app: $HTTP_CODE"
wait_health gpu-app RUNNING 30 > /dev/null
as alice GET /api/v1/gpus | jq -e --arg u "$GPU" '.gpus[] | select(.uuid == $u and .server == "dk") | .holder.name == "app-gpu-app"' > /dev/null \
    || fail "the app's GPU: $(as alice GET /api/v1/gpus | jq -c .gpus)"
grep -A4 'device_ids' "$WORK/apps-dk/gpu-app/docker-compose.yml" | grep -q "$GPU" || fail "the compose file's GPU: $(cat "$WORK/apps-dk/gpu-app/docker-compose.yml")"
engine "$DOCKER_SOCK" GET /containers/app-gpu-app/json | jq -e --arg u "$GPU" '.HostConfig.DeviceRequests[0].DeviceIDs == [$u]' > /dev/null \
    || fail "the container's GPU request"
# the folder web-dk's deinstall kept is in the cleanup's plan, gpu-app's is
# not; nor is gpu-app's container, but a running one labelled as the app
# "ghost" that no record knows (left by a lost server, or a compose up by hand) is
ghost=$(engine "$DOCKER_SOCK" POST /v1.41/containers/create?name=app-ghost \
    '{"Image":"gf-busybox:1","Cmd":["sleep","600"],"Labels":{"gpufleet.app":"ghost","gpufleet.managed":"true"}}' | jq -r .Id)
engine "$DOCKER_SOCK" POST "/v1.41/containers/$ghost/start" > /dev/null
as otto GET "/api/v1/servers/dk/cleanup?kinds=apps" > "$WORK/plan.json"
jq -e '[.items[] | select(.kind == "app_folder") | .id] == ["web-dk"] and ([.items[] | select(.kind == "app_folder")][0].bytes > 0)
    and [.items[] | select(.kind == "app_container") | .name] == ["app-ghost"]' "$WORK/plan.json" > /dev/null \
    || fail "the cleanup plan of apps: $HTTP_CODE $(cat "$WORK/plan.json")"
as otto POST /api/v1/servers/dk/cleanup "$(jq -c '{items: .items}' "$WORK/plan.json")" > "$WORK/run.json"
jq -e '([.removed[].id] | sort) == (["web-dk", $g] | sort) and (.skipped | length) == 0' --arg g "$ghost" "$WORK/run.json" > /dev/null ||
    fail "the cleanup run: $(cat "$WORK/run.json")"
[ ! -e "$WORK/apps-dk/web-dk" ] && [ -d "$WORK/apps-dk/gpu-app" ] || fail "the cleanup removed the wrong folders: $(ls "$WORK/apps-dk")"
[ "$(engine "$DOCKER_SOCK" GET "/v1.41/containers/json?all=1" | jq '[.[] | select(.Names[0] == "/app-ghost" or .Names[0] == "/app-gpu-app")] | map(.Names[0])')" = '[
  "/app-gpu-app"
]' ] || fail "the cleanup removed the wrong containers: $(engine "$DOCKER_SOCK" GET "/v1.41/containers/json?all=1" | jq -c 'map(.Names[0])')"
ok "the cleanup's dry run lists the folder web-dk's deinstall kept ($(jq '[.items[] | select(.kind == "app_folder")][0].bytes' "$WORK/plan.json") bytes) and the running container app-ghost no app record knows, not a running app's folder or container; its run removes exactly those"
ok "an app with a GPU holds $GPU in the ledger, its compose file reserves it (deploy.resources.reservations.devices), the engine was asked for it"

# --- templates: promote the working app, install a second one from it
as otto POST /api/v1/apps/gpu-app/promote '{"slug":"tiny-web","title":"Tiny web","categories":["test"]}' > "$WORK/t.json"
[ "$HTTP_CODE" = 201 ] && jq -e '.promoted_from == "gpu-app" and .port == 8080 and .gpus.count == 1' "$WORK/t.json" > /dev/null \
    || fail "promote: $HTTP_CODE $(cat "$WORK/t.json")"
as alice POST /api/v1/apps/gpu-app/promote '{"slug":"mine"}' > /dev/null
[ "$HTTP_CODE" = 403 ] || fail "a user promotes: $HTTP_CODE"
as alice DELETE /api/v1/apps/gpu-app > /dev/null
as alice GET /api/v1/gpus | jq -e --arg u "$GPU" '.gpus[] | select(.uuid == $u and .server == "dk") | .holder == null' > /dev/null || fail "the GPU was not released"
as alice POST /api/v1/apps '{"name":"from-tpl","template":"tiny-web","host":"dk"}' > "$WORK/i.json"
[ "$HTTP_CODE" = 202 ] || fail "install from the template: $HTTP_CODE $(cat "$WORK/i.json")"
j=$(wait_health from-tpl RUNNING 30)
jq -e '.template == "tiny-web" and .repository == "'"$REPO"'"' <<< "$j" > /dev/null || fail "the app from the template: $j"
curl -fsS "$(jq -r .url <<< "$j")" | grep -q 'version three' || fail "the page of the app from the template"
ok "promoted gpu-app to the template tiny-web (operators only), its GPU released on deinstall; from-tpl installed from it is RUNNING"

# a template's variables: required and options checked
as alice POST /api/v1/apps '{"name":"nb","template":"jupyterlab","host":"dk"}' > "$WORK/bad.json"
[ "$HTTP_CODE" = 400 ] && [ "$(jq -r .error.field "$WORK/bad.json")" = env.JUPYTER_TOKEN ] || fail "a required variable: $HTTP_CODE $(cat "$WORK/bad.json")"
as otto POST /api/v1/templates '{"slug":"Bad Slug","title":"x","port":80}' > "$WORK/bad.json"
[ "$HTTP_CODE" = 400 ] && [ "$(jq -r .error.field "$WORK/bad.json")" = slug ] || fail "a bad slug: $HTTP_CODE"
as otto GET /api/v1/templates | jq -e '[.templates[].slug] | (index("stable-diffusion-webui") and index("comfyui") and index("jupyterlab") and index("text-generation-webui") and index("vllm") and index("tiny-web"))' > /dev/null \
    || fail "the seeded templates: $(as otto GET /api/v1/templates | jq -c '[.templates[].slug]')"
ok "the marketplace has the seeded templates (Stable Diffusion WebUI, ComfyUI, JupyterLab, text-generation-webui, vLLM, Ollama); a required variable left out is refused (env.JUPYTER_TOKEN), a bad slug too"

# export, delete, import (ours), then a Portainer v2 file
as otto GET /api/v1/templates/export > "$WORK/export.json"
jq -e '.gpufleet_templates == 1 and ([.templates[].slug] | index("tiny-web"))' "$WORK/export.json" > /dev/null || fail "export: $(head -c 300 "$WORK/export.json")"
as otto DELETE /api/v1/templates/tiny-web > /dev/null
[ "$HTTP_CODE" = 200 ] || fail "delete a template: $HTTP_CODE"
as otto POST /api/v1/templates/import "$(cat "$WORK/export.json")" > "$WORK/imp.json"
jq -e '.imported == ["tiny-web"] and (.skipped | length) >= 6' "$WORK/imp.json" > /dev/null || fail "import: $(cat "$WORK/imp.json")"
cat > "$WORK/portainer.json" << 'EOF'
{"version":"2","templates":[
 {"type":1,"title":"Nginx web server","description":"A web server","categories":["webserver"],"image":"nginx:latest","ports":["8080:80/tcp","443/tcp"],
  "env":[{"name":"MODE","label":"Mode","select":[{"text":"A","value":"a"},{"text":"B","value":"b","default":true}]}]},
 {"type":3,"title":"A stack","repository":{"url":"https://github.com/portainer/templates","stackfile":"stacks/x/docker-compose.yml"}}]}
EOF
as otto POST /api/v1/templates/import "$(cat "$WORK/portainer.json")" > "$WORK/imp.json"
jq -e '.imported == ["nginx-web-server"] and .skipped[0].title == "A stack"' "$WORK/imp.json" > /dev/null || fail "Portainer import: $(cat "$WORK/imp.json")"
as otto GET /api/v1/templates/nginx-web-server | jq -e '.port == 80 and .image == "nginx:latest" and .env[0].default == "b" and .env[0].options == ["a","b"]' > /dev/null \
    || fail "the Portainer template: $(as otto GET /api/v1/templates/nginx-web-server)"
ok "templates exported, deleted, imported back; a Portainer v2 file: its container template imported (port 80, the select's options and default), its stack skipped with why"

# --- what browsers were told, live: alice saw her apps walk the light, bob nothing of hers
sleep 0.5
jq -e '[.[] | .apps[]? | select(.name == "web-dk")] | (map(.health) | index("STARTING") and index("RUNNING") and index("STOPPED")) and (map(.progress.step) | index("clone"))' "$WORK/ev-alice.json" > /dev/null \
    || fail "alice's live events: $(jq -c '[.[] | .apps[]? | select(.name == "web-dk") | {health, step: .progress.step}] | .[:12]' "$WORK/ev-alice.json")"
jq -e '[.[] | .removed[]?] | index("web-dk")' "$WORK/ev-alice.json" > /dev/null || fail "alice was not told web-dk went"
[ "$(jq '[.[] | .apps[]? | select(.owner == "alice")] | length' "$WORK/ev-bob.json")" = 0 ] || fail "bob was told of alice's apps"
ok "alice's browser was pushed web-dk's clone progress and its light (STARTING, RUNNING, STOPPED ...) and its removal: $(jq '[.[] | .apps[]?] | length' "$WORK/ev-alice.json") updates; bob's none of hers"

# --- audit
for act in app.install app.action app.deinstall template.promote template.import template.delete; do
    [ "$(sqlite3 "$WORK/s-data/audit.db" "SELECT count(*) FROM audit WHERE action = '$act' AND result = 'ok'")" -ge 1 ] || fail "$act not audited"
done
[ "$(sqlite3 "$WORK/s-data/audit.db" "SELECT count(*) FROM audit WHERE action = 'app.action' AND target = 'app:web-dk'")" -ge 5 ] \
    || fail "web-dk's actions in the audit log: $(sqlite3 "$WORK/s-data/audit.db" "SELECT action, target, result FROM audit ORDER BY rowid DESC LIMIT 5")"
ok "installs, actions, deinstalls and template changes are in the audit log"

# --- the apps page in chromium: the marketplace, the install dialog with the
# clone's progress live, the light changing colour (a 32 MiB repository, so
# the clone takes long enough to be seen)
if [ -x /usr/bin/chromium ] && [ -d "$SRC_DIR/web/node_modules/playwright-core" ]; then
    git -C "$WORK" init -q -b main big.src
    mkdir -p "$WORK/big.src/www"
    head -c $((32 << 20)) /dev/urandom > "$WORK/big.src/weights.bin"
    printf '<h1>the big one</h1>\n' > "$WORK/big.src/www/index.html"
    git -C "$WORK/big.src" add . && git -C "$WORK/big.src" -c user.name=t -c user.email=t@t commit -qm big
    git clone -q --bare "$WORK/big.src" "$WORK/git/big.git"
    GF_URL=$SERVER_URL GF_USER=alice GF_PASSWORD=correct-horse-battery-42 BIG_REPO="git://127.0.0.1:$GPORT/big.git" \
        ARTIFACTS="$BUILD_DIR/ui-artifacts" node "$SRC_DIR/web/tests/apps.test.mjs" || fail "the apps page in chromium (screenshots in $BUILD_DIR/ui-artifacts)"
    as alice DELETE /api/v1/apps/ui-web > /dev/null
    ok "the apps page in chromium: the marketplace's templates, the install dialog, the clone's progress live and the light amber -> green -> grey"
else
    fail "chromium or playwright-core missing (scripts/deps.sh test; scripts/build-web.sh)"
fi
