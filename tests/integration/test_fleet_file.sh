#!/usr/bin/env bash
# `gpufleet fleet plan -c fleet.yaml`: a fleet file checked with the key and
# line of each error, passwords only in owner-only files, and the plan
# against a running server's registry (install, update with what differs,
# unchanged, registered but not in the file); admins only.
source "$(dirname "$0")/lib.sh"

start_server srv
export GPUFLEET_URL=$SERVER_URL
cat > "$WORK/fleet.yaml" <<'Y'
site: lab
ssh: {user: root, key: /root/.ssh/id_ed25519}
bmc: {user: ADMIN}
servers:
  - name: gpu-01
    address: 10.0.0.21
    labels: {rack: r1}
    bmc: {address: 10.0.1.21}
  - name: gpu-02
    address: 10.0.0.22
  - name: gpu-03
    address: 10.0.0.23
Y
chmod 644 "$WORK/fleet.yaml"
api POST /api/v1/servers '{"name":"gpu-02","address":"10.0.0.22","agent_port":9446}' > /dev/null
api POST /api/v1/servers '{"name":"gpu-03","address":"10.0.0.23","agent_port":9445}' > /dev/null
api POST /api/v1/servers '{"name":"old-node","address":"10.0.0.9"}' > /dev/null
"$SERVER" fleet plan -c "$WORK/fleet.yaml" > "$WORK/plan.txt" 2>&1 || fail "plan: $(cat "$WORK/plan.txt")"
grep -qx 'site lab: 1 to install, 1 to update, 1 unchanged, 1 registered but not in the file' "$WORK/plan.txt" \
    || fail "plan summary: $(cat "$WORK/plan.txt")"
grep -qE '^  install +gpu-01$' "$WORK/plan.txt" && grep -qE '^  update +gpu-02  agent_port 9446 -> 9445$' "$WORK/plan.txt" \
    && grep -qE '^  unchanged +gpu-03$' "$WORK/plan.txt" && grep -qE '^  remove +old-node .*kept' "$WORK/plan.txt" \
    || fail "plan lines: $(cat "$WORK/plan.txt")"
"$SERVER" fleet plan -c "$WORK/fleet.yaml" --json | jq -e '.summary == {"install":1,"update":1,"unchanged":1,"remove":1}' \
    > /dev/null || fail "--json"
[ "$(api GET /api/v1/servers | jq '.servers | length')" = 3 ] || fail "a plan changed the registry"
ok "the plan: install gpu-01, update gpu-02's port, gpu-03 unchanged, old-node kept; the registry untouched"

# ---- errors name the key and the line ----
printf 'site: lab\nservers:\n  - name: gpu-01\n    address: 10.0.0.21\n    ssh:\n      prot: 22\n' > "$WORK/typo.yaml"
"$SERVER" fleet plan -c "$WORK/typo.yaml" > "$WORK/typo.out" 2>&1 && fail "a typo was taken"
grep -qF 'typo.yaml: line 6: servers[0].ssh.prot: unknown key' "$WORK/typo.out" || fail "typo: $(cat "$WORK/typo.out")"
# the server says the same to a client that did not check first
api POST /api/v1/fleet/plan "$(jq -n --rawfile f "$WORK/typo.yaml" '{fleet: $f}')" > "$WORK/typo.json"
[ "$HTTP_CODE" = 400 ] && jq -e '.error.field == "servers[0].ssh.prot" and (.error.message | startswith("line 6:"))' \
    "$WORK/typo.json" > /dev/null || fail "API typo: $HTTP_CODE $(cat "$WORK/typo.json")"
api POST /api/v1/fleet/plan '{"fleet": 7}' > /dev/null
[ "$HTTP_CODE" = 400 ] || fail "fleet not text: $HTTP_CODE"
ok "a typo is refused naming servers[0].ssh.prot and line 6, by the CLI and the API"

# ---- passwords only in owner-only files ----
printf 'bmc_password: s3cret-pw\n' > "$WORK/secrets.yaml"
chmod 644 "$WORK/secrets.yaml"
"$SERVER" fleet plan -c "$WORK/fleet.yaml" --secrets "$WORK/secrets.yaml" > "$WORK/s.out" 2>&1 && fail "a readable secrets file was taken"
grep -q 'others may read it (mode 644)' "$WORK/s.out" || fail "secrets mode: $(cat "$WORK/s.out")"
chmod 600 "$WORK/secrets.yaml"
"$SERVER" fleet plan -c "$WORK/fleet.yaml" --secrets "$WORK/secrets.yaml" > "$WORK/s.out" 2>&1 || fail "secrets 600: $(cat "$WORK/s.out")"
sed 's/bmc: {user: ADMIN}/bmc: {user: ADMIN, password: inline-pw}/' "$WORK/fleet.yaml" > "$WORK/inline.yaml"
chmod 644 "$WORK/inline.yaml"
"$SERVER" fleet plan -c "$WORK/inline.yaml" > "$WORK/i.out" 2>&1 && fail "a readable file with a password was taken"
grep -q 'holds a password and others may read it' "$WORK/i.out" || fail "inline: $(cat "$WORK/i.out")"
grep -rq 's3cret-pw\|inline-pw' "$WORK"/*.log && fail "a password reached a log"
ok "a password in a file others may read is refused; none reaches the log"

# ---- the site's admin_user: said in the plan, made by an apply from the
# secrets file's admin_password (changed at first sign-in) ----
printf 'site: lab\nadmin_user: site-admin\nservers: []\n' > "$WORK/adm.yaml"
"$SERVER" fleet plan -c "$WORK/adm.yaml" > "$WORK/adm1.txt" 2>&1 || fail "plan adm: $(cat "$WORK/adm1.txt")"
grep -q '^  admin user site-admin: missing (no such user: give admin_password in the secrets file' "$WORK/adm1.txt" ||
    fail "a missing admin user: $(cat "$WORK/adm1.txt")"
"$SERVER" fleet plan -c "$WORK/fleet.yaml" | grep -q '^  admin user admin: exists' || fail "the default admin user"
adm_apply() { api POST /api/v1/fleet/apply "$(jq -n --rawfile f "$WORK/adm.yaml" --arg s "admin_password: $1" '{fleet: $f, secrets: $s}')"; }
adm_apply short > /dev/null
[ "$HTTP_CODE" = 400 ] && [ "$(jq -r .error.field "$WORK/api.out")" = admin_password ] || fail "a short admin_password: $HTTP_CODE $(cat "$WORK/api.out")"
api POST /api/v1/fleet/plan "$(jq -n --rawfile f "$WORK/adm.yaml" '{fleet: $f, secrets: "admin_password: lab-operators-pw-7"}')" |
    jq -e '.admin_user.state == "create"' > /dev/null || fail "the plan with a password: $(cat "$WORK/api.out")"
adm_apply lab-operators-pw-7 > /dev/null
[ "$HTTP_CODE" = 202 ] || fail "apply adm: $HTTP_CODE $(cat "$WORK/api.out")"
api GET /api/v1/users | jq -e '.users[] | select(.username == "site-admin") | .role == "admin" and .must_change_password' > /dev/null ||
    fail "site-admin: $(api GET /api/v1/users)"
code=$(curl -s -o /dev/null -w '%{http_code}' --data '{"username":"site-admin","password":"lab-operators-pw-7"}' "$SERVER_URL/api/v1/auth/login")
[ "$code" = 200 ] || fail "site-admin cannot sign in: $code"
"$SERVER" fleet plan -c "$WORK/adm.yaml" | grep -q '^  admin user site-admin: exists' || fail "after the apply"
api POST /api/v1/users '{"username":"site-viewer","password":"viewer-pass-123","role":"viewer"}' > /dev/null
sed -i 's/site-admin/site-viewer/' "$WORK/adm.yaml"
"$SERVER" fleet plan -c "$WORK/adm.yaml" | grep -q '^  admin user site-viewer: not_admin (a user of role viewer: left as it is' ||
    fail "a viewer named admin_user: $("$SERVER" fleet plan -c "$WORK/adm.yaml")"
sqlite3 "$WORK/srv-data/audit.db" "SELECT details FROM audit WHERE action = 'fleet.apply'" | grep -q '"admin_user_created":"site-admin"' ||
    fail "the made admin is not in the audit log"
grep -rq 'lab-operators-pw-7' "$WORK"/*.log "$WORK/srv-data/audit.db" && fail "the admin password reached a log"
ok "admin_user: the plan says missing / create / exists / not_admin (a viewer, left as it is); an apply made site-admin an admin from admin_password (too short: 400 naming it), who must change it at first sign-in; audited, in no log"

# ---- one apply at a time: a second while one runs is 409 ----
# an "sshd" that takes the connection and never speaks keeps the first apply busy
SILENT=$(free_port)
python3 -c 'import socket, sys, time
s = socket.socket(); s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(8); time.sleep(60)' "$SILENT" &
PIDS+=($!)
sleep 0.3
body=$(jq -n --arg f "site: lab
servers:
  - {name: quiet, address: 127.0.0.1, ssh: {port: $SILENT}}" '{fleet: $f}')
api POST /api/v1/fleet/apply "$body" > /dev/null
[ "$HTTP_CODE" = 202 ] || fail "first apply: $HTTP_CODE $(cat "$WORK/api.out")"
api POST /api/v1/fleet/apply "$body" > /dev/null
[ "$HTTP_CODE" = 409 ] && jq -e '.error.message | test("an apply is running")' "$WORK/api.out" > /dev/null \
    || fail "a second apply while one runs: $HTTP_CODE $(cat "$WORK/api.out")"
api GET /api/v1/fleet/apply | jq -e '.state == "running" and .hosts[0].step == "connect"' > /dev/null \
    || fail "status while running: $(cat "$WORK/api.out")"
ok "a second apply while one runs is refused (409)"

# ---- admins only ----
printf 'deploy-pass-1234\n' | "$SERVER" user add op --role operator --password-stdin --data "$WORK/srv-data" > /dev/null
OT=$("$SERVER" token add op t --data "$WORK/srv-data")
GPUFLEET_TOKEN=$OT "$SERVER" fleet plan -c "$WORK/fleet.yaml" > "$WORK/op.out" 2>&1 && fail "an operator planned"
ok "an operator is refused: $(cat "$WORK/op.out")"
