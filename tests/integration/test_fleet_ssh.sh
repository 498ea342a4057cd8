#!/usr/bin/env bash
# `gpufleet fleet apply` against real hosts: three Debian 12 workers with
# systemd as PID 1 and sshd (Podman containers from a debootstrap root).
# The agent is installed over SSH as a systemd service on each host the
# fleet key opens, verified and registered, and scraped; a host that
# refuses the key, given a wrong password, fails alone with the reason; the
# right one (a secrets file) adds the fleet key once; a second apply changes
# nothing and says so; systemd restarts a killed agent; a changed host key
# is refused with both fingerprints until unpinned; a port held by another
# program is named; --prune uninstalls (no unit left) and unregisters; an
# admin opens a shell on a host in the browser's terminal, over SSH.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/worker_image.sh"
command -v podman > /dev/null && command -v debootstrap > /dev/null || fail "podman/debootstrap missing (scripts/deps.sh test)"

WORKER_IMAGE=$(worker_image) || fail "the worker image could not be made"
# the hosts get a plain agent: one built with ASan needs libasan, which a
# host does not have (apply says so: "the agent does not run on the host")
AGENT_BIN=$AGENT
if ldd "$AGENT" | grep -q libasan; then
    AGENT_BIN=$SRC_DIR/build/gpufleet-agent
    [ -x "$AGENT_BIN" ] || fail "under ASan this test installs the Release agent: build it first (scripts/build.sh)"
fi
start_server srv --agent-interval 500 --agent-binary "$AGENT_BIN"
D="$WORK/srv-data"
export GPUFLEET_URL=$SERVER_URL
PUB=$("$SERVER" ssh-key --data "$D") || fail "ssh-key"
[[ $PUB == ssh-ed25519\ * ]] || fail "fleet key: $PUB"
[ "$(stat -c %a "$D/fleet_ed25519")" = 600 ] || fail "the fleet key is not owner-only"
[ "$("$SERVER" ssh-key --data "$D")" = "$PUB" ] || fail "the fleet key changed on a second call"

tag=$$
declare -A SSH AGENT
for w in w1 w2 w3; do
    SSH[$w]=$(free_port) AGENT[$w]=$(free_port)
    start_worker "gf-$w-$tag" "${SSH[$w]}" "${AGENT[$w]}"
done
authorize() {
    podman exec -i "gf-$1-$tag" sh -c 'mkdir -p -m 700 /root/.ssh && cat > /root/.ssh/authorized_keys' <<< "$PUB"
}
authorize w1
authorize w2
# w3 takes a root password only, until apply adds the fleet key
podman exec "gf-w3-$tag" sh -c 'echo root:w3-right-pass-1 | chpasswd && rm -f /etc/ssh/sshd_config.d/gpufleet-test.conf &&
    printf "PermitRootLogin yes\nPasswordAuthentication yes\n" > /etc/ssh/sshd_config.d/pw.conf && systemctl restart ssh'
printf 'servers:\n  w3: {ssh_password: not-the-pass}\n' > "$WORK/secrets.yaml"
chmod 600 "$WORK/secrets.yaml"

fleet_file() { # the servers named, each as its worker
    {
        printf 'site: it-lab\nssh: {user: root}\nservers:\n'
        for w in "$@"; do
            printf '  - name: %s\n    address: 127.0.0.1\n    agent_port: %s\n    gpu: false\n' "$w" "${AGENT[$w]}"
            printf '    labels: {rack: %s}\n    ssh: {port: %s}\n' "${RACK[$w]:-r1}" "${SSH[$w]}"
            if [ "$w" = w1 ]; then printf '    bmc: {address: "127.0.0.1:%s", user: ADMIN}\n' "$BMC_PORT"; fi
        done
    } > "$WORK/fleet.yaml"
}
declare -A RACK
BMC_PORT=$(free_port) # nothing answers there: the BMC is set, and reported down
fleet_file w1 w2 w3

# ---- first apply: two installed, one refused ----
"$SERVER" fleet apply -c "$WORK/fleet.yaml" --secrets "$WORK/secrets.yaml" > "$WORK/apply1.txt" 2>&1 \
    && fail "an apply with a refused host said ok"
grep -q '^2 installed or updated, 0 unchanged, 0 removed, 0 kept, 1 failed' "$WORK/apply1.txt" \
    || fail "apply 1: $(cat "$WORK/apply1.txt")"
grep -q "^FAILED w3 at connect: the key was refused; with the password too: authentication refused for root (password)" \
    "$WORK/apply1.txt" || fail "w3's reason: $(cat "$WORK/apply1.txt")"
grep -rq 'not-the-pass' "$WORK"/*.log "$D"/*.json 2>/dev/null && fail "the SSH password was written down"
for w in w1 w2; do
    podman exec "gf-$w-$tag" systemctl is-active gpufleet-agent > /dev/null || fail "$w: the agent's unit is not active"
    podman exec "gf-$w-$tag" stat -c '%U:%G %a' /etc/gpufleet/agent.token | grep -qx 'root:gpufleet-agent 640' \
        || fail "$w: token file mode"
done
api GET /api/v1/fleet/apply > "$WORK/st1.json"
ms=$(jq '[.hosts[] | select(.state == "ok") | .ms] | max' "$WORK/st1.json")
[ "$ms" -lt 5000 ] || fail "an SSH install took $ms ms (budget 5000)"
for _ in $(seq 1 100); do
    up=$(api GET /api/v1/servers | jq '[.servers[] | select(.status == "online")] | length')
    [ "$up" = 2 ] && break
    sleep 0.1
done
[ "$up" = 2 ] || fail "registered and online: $up of 2: $(api GET /api/v1/servers | jq -c '[.servers[] | [.name, .status, .last_error]]')"
api GET /api/v1/servers | jq -e '.servers[] | select(.name == "w1") | .labels == {"rack":"r1"} and .agent_token_set' > /dev/null \
    || fail "w1 registered with its labels and token"
ok "apply: w1 and w2 installed as systemd services in ${ms} ms at most, registered and scraped; w3 (wrong password) failed alone"

# ---- the right password: the fleet key added, w3 alone installed; then nothing to do ----
printf 'ssh_password: w3-right-pass-1\nbmc_password: bmc-secret-1\n' > "$WORK/secrets.yaml"
"$SERVER" fleet apply -c "$WORK/fleet.yaml" --secrets "$WORK/secrets.yaml" > "$WORK/apply2.txt" 2>&1 \
    || fail "apply 2: $(cat "$WORK/apply2.txt")"
grep -q '^1 installed or updated, 2 unchanged' "$WORK/apply2.txt" || fail "apply 2: $(cat "$WORK/apply2.txt")"
podman exec "gf-w3-$tag" grep -qxF "$PUB" /root/.ssh/authorized_keys || fail "the fleet key was not added on w3"
api GET /api/v1/bmcs | jq -e --arg a "127.0.0.1:$BMC_PORT" '.bmcs == [.bmcs[] | select(.server == "w1" and .address == $a
    and .user == "ADMIN" and .password_set)]' > /dev/null || fail "w1's BMC from the file: $(api GET /api/v1/bmcs)"
grep -rq 'bmc-secret-1' "$WORK"/*.log "$D"/*.json 2>/dev/null && fail "the BMC password was written down"
sleep 1.5 # w3's first scrapes
"$SERVER" fleet apply -c "$WORK/fleet.yaml" > "$WORK/apply3.txt" 2>&1 || fail "apply 3: $(cat "$WORK/apply3.txt")"
grep -q '^0 installed or updated, 3 unchanged' "$WORK/apply3.txt" && grep -q '^nothing to change' "$WORK/apply3.txt" \
    || fail "a second apply changed something: $(cat "$WORK/apply3.txt")"
"$SERVER" fleet apply -c "$WORK/fleet.yaml" --dry-run | grep -q '0 to install, 0 to update, 3 unchanged' || fail "--dry-run"
ok "with the right password the fleet key is added and w3 alone installed; the next apply (no password) changes nothing"

# ---- systemd restarts a killed agent ----
pid=$(podman exec "gf-w1-$tag" systemctl show -p MainPID --value gpufleet-agent)
podman exec "gf-w1-$tag" kill -9 "$pid"
for _ in $(seq 1 50); do
    now=$(podman exec "gf-w1-$tag" systemctl show -p MainPID --value gpufleet-agent)
    [ "$now" != 0 ] && [ "$now" != "$pid" ] && curl -fsS -o /dev/null "http://127.0.0.1:${AGENT[w1]}/healthz" 2> /dev/null && break
    sleep 0.1
done
[ "$now" != 0 ] && [ "$now" != "$pid" ] || fail "the killed agent was not restarted ($pid -> $now)"
ok "a killed agent is back by systemd (pid $pid -> $now) and answers"

# ---- an agent that is not running is installed again (how an upgrade goes too) ----
podman exec "gf-w1-$tag" systemctl stop gpufleet-agent
for _ in $(seq 1 100); do
    api GET /api/v1/servers | jq -e '.servers[] | select(.name == "w1") | .status == "offline"' > /dev/null && break
    sleep 0.1
done
"$SERVER" fleet apply -c "$WORK/fleet.yaml" > "$WORK/apply3b.txt" 2>&1 || fail "apply 3b: $(cat "$WORK/apply3b.txt")"
grep -q '^1 installed or updated, 2 unchanged' "$WORK/apply3b.txt" || fail "a stopped agent was left: $(cat "$WORK/apply3b.txt")"
podman exec "gf-w1-$tag" systemctl is-active gpufleet-agent > /dev/null || fail "w1's agent not running again"
ok "an unchanged server whose agent stopped is installed again and runs"

# ---- a changed host key is refused until unpinned ----
podman exec "gf-w2-$tag" sh -c 'rm -f /etc/ssh/ssh_host_* && systemctl restart ssh'
RACK[w2]=r2 # w2 changes: it needs SSH
fleet_file w1 w2 w3
"$SERVER" fleet apply -c "$WORK/fleet.yaml" > "$WORK/apply4.txt" 2>&1 && fail "a changed host key was taken"
grep -qE "^FAILED w2 at connect: host key changed: pinned SHA256:[A-Za-z0-9+/]{43}, the host offers SHA256:[A-Za-z0-9+/]{43}" \
    "$WORK/apply4.txt" || fail "host key: $(cat "$WORK/apply4.txt")"
"$SERVER" ssh-key unpin "127.0.0.1:${SSH[w2]}" --data "$D" > /dev/null || fail "unpin"
"$SERVER" fleet apply -c "$WORK/fleet.yaml" > "$WORK/apply5.txt" 2>&1 || fail "after unpin: $(cat "$WORK/apply5.txt")"
api GET /api/v1/servers | jq -e '.servers[] | select(.name == "w2") | .labels == {"rack":"r2"}' > /dev/null || fail "w2 updated"
ok "a changed host key is refused naming both fingerprints; unpinned, the update goes through"

# ---- a port another program holds ----
busy=$(free_port)
podman exec "gf-w3-$tag" /usr/sbin/sshd -p "$busy" -o PidFile=/run/busy.pid
W3_AGENT=${AGENT[w3]}
AGENT[w3]=$busy
fleet_file w1 w2 w3
"$SERVER" fleet apply -c "$WORK/fleet.yaml" > "$WORK/apply6.txt" 2>&1 && fail "a busy port was taken"
grep -q "^FAILED w3 at connect: port $busy already in use on the host" "$WORK/apply6.txt" || fail "busy port: $(cat "$WORK/apply6.txt")"
ok "a port held by another program is named"

# ---- prune: uninstalled, unregistered ----
fleet_file w1 w2
"$SERVER" fleet apply -c "$WORK/fleet.yaml" > "$WORK/apply7.txt" 2>&1 || fail "apply 7: $(cat "$WORK/apply7.txt")"
grep -q '1 kept' "$WORK/apply7.txt" || fail "without --prune w3 is kept: $(cat "$WORK/apply7.txt")"
"$SERVER" fleet apply -c "$WORK/fleet.yaml" --prune > "$WORK/apply8.txt" 2>&1 || fail "prune: $(cat "$WORK/apply8.txt")"
grep -q '1 removed' "$WORK/apply8.txt" || fail "prune: $(cat "$WORK/apply8.txt")"
podman exec "gf-w3-$tag" test ! -e /etc/systemd/system/gpufleet-agent.service || fail "the unit is left on w3"
podman exec "gf-w3-$tag" test ! -e /usr/local/bin/gpufleet-agent || fail "the binary is left on w3"
[ -z "$(podman exec "gf-w3-$tag" systemctl list-unit-files gpufleet-agent.service --no-legend)" ] || fail "systemd still knows the unit"
api GET /api/v1/servers | jq -e '[.servers[].name] | sort == ["w1", "w2"]' > /dev/null || fail "w3 still registered"
[ "$(sqlite3 "$D/audit.db" "SELECT count(*) FROM audit WHERE action = 'fleet.apply'")" -ge 9 ] || fail "not every apply audited"
ok "--prune uninstalls w3 (no unit, no binary) and unregisters it; without it, w3 is kept"

# ---- a non-root SSH user: refused in words without passwordless sudo,
# installed with it (every command of the install through sudo -n) ----
podman exec -i "gf-w3-$tag" sh -c 'useradd -m -s /bin/sh deploy && mkdir -p -m 700 ~deploy/.ssh &&
    cat > ~deploy/.ssh/authorized_keys && chown -R deploy: ~deploy/.ssh' <<< "$PUB"
AGENT[w3]=$W3_AGENT
fleet_file w1 w2 w3
sed -i "/^  - name: w3$/,/ssh:/ s/ssh: {port: \([0-9]*\)}/ssh: {port: \1, user: deploy}/" "$WORK/fleet.yaml"
grep -q "user: deploy" "$WORK/fleet.yaml" || fail "the fleet file: $(cat "$WORK/fleet.yaml")"
"$SERVER" fleet apply -c "$WORK/fleet.yaml" > "$WORK/apply9.txt" 2>&1 && fail "installed without sudo rights"
grep -q "w3.*root on the host: the SSH user needs passwordless sudo (sudo said: .*password is required" "$WORK/apply9.txt" ||
    fail "the reason without sudo: $(cat "$WORK/apply9.txt")"
podman exec "gf-w3-$tag" sh -c 'echo "deploy ALL=(ALL) NOPASSWD:ALL" > /etc/sudoers.d/deploy && chmod 440 /etc/sudoers.d/deploy'
"$SERVER" fleet apply -c "$WORK/fleet.yaml" > "$WORK/apply10.txt" 2>&1 || fail "apply as deploy: $(cat "$WORK/apply10.txt")"
podman exec "gf-w3-$tag" systemctl is-active gpufleet-agent > /dev/null || fail "w3's agent is not running"
[ "$(podman exec "gf-w3-$tag" stat -c '%U %a' /etc/gpufleet/agent.token)" = "root 640" ] || fail "the token's owner and mode as deploy"
for _ in $(seq 1 100); do
    api GET /api/v1/servers | jq -e '.servers[] | select(.name == "w3") | .status == "online"' > /dev/null && break
    sleep 0.1
done
api GET /api/v1/servers | jq -e '.servers[] | select(.name == "w3") | .status == "online"' > /dev/null || fail "w3 (as deploy) not scraped"
ok "a non-root SSH user: without passwordless sudo refused in words ($(grep -o 'the SSH user needs passwordless sudo' "$WORK/apply9.txt" | head -1)); with it, w3 installed through sudo (the token root's, 640), registered and scraped"

# ---- an admin's shell on a host, in the browser's terminal ----
PY=/usr/bin/python3
WSC="$SRC_DIR/tests/integration/ctrstream.py"
"$PY" "$WSC" term "ws://127.0.0.1:$SERVER_PORT/api/v1/servers/w1/shell?rows=24&cols=80" "$WORK/shell.json" \
    "Authorization: Bearer $GF_TOKEN" || fail "host shell: $(cat "$WORK/shell.json" 2>/dev/null)"
sh=$(cat "$WORK/shell.json")
jq -e '(.text | contains("gf-42-ok")) and (.text | contains("33 101")) and (.text | contains("été-done")) and .close == 1000' \
    <<< "$sh" > /dev/null || fail "host shell: $sh"
api POST /api/v1/users '{"username":"otto","password":"operator-pass-123","role":"operator"}' > /dev/null
ocookie=$(curl -s -D - -o /dev/null --data '{"username":"otto","password":"operator-pass-123"}' "$SERVER_URL/api/v1/auth/login" | grep -io 'gf_session=[^;]*')
out=$("$PY" "$WSC" term "ws://127.0.0.1:$SERVER_PORT/api/v1/servers/w1/shell" "$WORK/x.json" "Cookie: $ocookie" "Origin: $SERVER_URL" || true)
[ "$out" = "status 403" ] || fail "an operator's host shell: $out"
[ "$(sqlite3 "$D/audit.db" "SELECT count(*) FROM audit WHERE action = 'host.shell' AND target = 'server:w1' AND result = 'ok'")" = 1 ] || fail "host.shell not audited"
sqlite3 "$D/audit.db" "SELECT details FROM audit WHERE action = 'host.shell_end' AND target = 'server:w1'" | grep -q duration_ms || fail "host.shell_end not audited"
# a changed host key: refused, naming both fingerprints
podman exec "gf-w1-$tag" sh -c 'rm -f /etc/ssh/ssh_host_* && systemctl restart ssh'
curl -sS -o "$WORK/shell-key.json" -w '%{http_code}' -H "Authorization: Bearer $GF_TOKEN" -H 'Connection: Upgrade' -H 'Upgrade: websocket' \
    -H 'Sec-WebSocket-Version: 13' -H 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==' \
    "$SERVER_URL/api/v1/servers/w1/shell" > "$WORK/shell-key.code"
[ "$(cat "$WORK/shell-key.code")" = 502 ] && jq -r .error.message "$WORK/shell-key.json" |
    grep -qE "host key changed: pinned SHA256:[A-Za-z0-9+/]{43}, the host offers SHA256:[A-Za-z0-9+/]{43}" \
    || fail "a changed host key for the shell: $(cat "$WORK/shell-key.code") $(cat "$WORK/shell-key.json")"
ok "an admin's shell on w1 over SSH (first byte $(jq '.first_byte_ms | floor' <<< "$sh") ms, resize, UTF-8, exit), audited open and close; operators 403; a changed host key refused naming both fingerprints"
