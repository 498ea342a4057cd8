#!/usr/bin/env bash
# Users, roles, sessions, tokens and the audit log, end to end: every route
# of the table walked with no credentials and with each role; exactly one
# audit row per mutating request, naming the right actor; session idle and
# absolute expiry and revocation; token expiry and revocation; CSRF; login
# backoff that does not tell users apart from non-users; proxy SSO headers
# only from the configured address; bad input; secrets kept out of the log.
source "$(dirname "$0")/lib.sh"
command -v sqlite3 > /dev/null || fail "sqlite3 missing (scripts/deps.sh test)"

cat > "$WORK/auth.yaml" <<EOF
session_idle_s: 3
session_max_s: 7
login_backoff_after: 3
login_backoff_base_ms: 1500
trusted_proxies: 127.0.0.2
EOF
start_server srv --config "$WORK/auth.yaml"
D="$WORK/srv-data"
ORIGIN=(-H "Origin: $SERVER_URL")
rows() { sqlite3 "$D/audit.db" 'SELECT count(*) FROM audit'; }
newest() { sqlite3 -separator '|' "$D/audit.db" "SELECT username, action, result, source FROM audit ORDER BY id DESC LIMIT 1"; }

# login USER PASSWORD [curl args]: sets COOKIE (the session) and HTTP_CODE.
login() {
    local u=$1 p=$2
    shift 2
    HTTP_CODE=$(curl -s -o "$WORK/login.json" -D "$WORK/login.hdr" -w '%{http_code}' "$@" \
        -H 'Content-Type: application/json' --data "{\"username\":\"$u\",\"password\":\"$p\"}" \
        "$SERVER_URL/api/v1/auth/login")
    COOKIE=$(grep -io 'gf_session=[^;]*' "$WORK/login.hdr" | head -1 || true)
}

# ---- users of each role, each with a token they made themselves ----
declare -A TOK
TOK[admin]=$GF_TOKEN
for r in operator user viewer; do
    api POST /api/v1/users "{\"username\":\"$r-1\",\"password\":\"pass-for-$r-ok\",\"role\":\"$r\"}" > /dev/null
    [ "$HTTP_CODE" = 201 ] || fail "create $r: $HTTP_CODE $(cat "$WORK/api.out")"
    login "$r-1" "pass-for-$r-ok"
    c=$COOKIE
    [ "$HTTP_CODE" = 200 ] || fail "login $r: $HTTP_CODE $(cat "$WORK/login.json")"
    grep -qi 'HttpOnly; SameSite=Strict' "$WORK/login.hdr" || fail "cookie flags: $(grep -i set-cookie "$WORK/login.hdr")"
    TOK[$r]=$(curl -fsS -b "$c" "${ORIGIN[@]}" -X POST --data "{\"name\":\"walk\"}" "$SERVER_URL/api/v1/tokens" | jq -r .token)
    [ "${#TOK[$r]}" -gt 40 ] || fail "token for $r"
done
ok "users of each role made, each with its own token"

# ---- the route walk ----
rank() { case $1 in public) echo 0 ;; viewer) echo 1 ;; user) echo 2 ;; operator) echo 3 ;; admin) echo 4 ;; none) echo -1 ;; esac; }
declare -A USER_OF=([admin]=admin [operator]=operator-1 [user]=user-1 [viewer]=viewer-1 [none]="")
n=0
while IFS=$'\t' read -r method pattern least own action person; do
    path=${pattern//\{id\}/999999}
    path=${path//\{name\}/job}
    for who in none viewer user operator admin; do
        auth=()
        [ "$who" != none ] && auth=(-H "Authorization: Bearer ${TOK[$who]}")
        before=$(rows)
        args=(-s -o "$WORK/walk.out" -w '%{http_code}' -X "$method" "${auth[@]}")
        [ "$method" != GET ] && args+=(-H 'Content-Type: application/json' --data '{}')
        code=$(curl "${args[@]}" "$SERVER_URL$path")
        if [ "$least" = public ]; then
            [[ $code != 401 && $code != 403 && $code -lt 500 ]] || fail "$method $pattern as $who: $code (public)"
        elif [ "$who" = none ]; then
            [ "$code" = 401 ] || fail "$method $pattern without credentials: $code"
        elif [ "$person" = person ]; then # the walk calls with tokens
            [ "$code" = 403 ] || fail "$method $pattern with a token (person-only): $code"
        elif [ "$(rank "$who")" -ge "$(rank "$least")" ]; then
            [[ $code != 401 && $code != 403 && $code -lt 500 ]] || fail "$method $pattern as $who: $code $(cat "$WORK/walk.out")"
        else
            [ "$code" = 403 ] || fail "$method $pattern as $who (needs $least): $code"
        fi
        after=$(rows)
        want=0
        [ "$action" != - ] && [ "$code" != 401 ] && want=1
        [ $((after - before)) = "$want" ] || fail "$method $pattern as $who ($code): $((after - before)) audit rows, want $want"
        if [ "$want" = 1 ]; then
            IFS='|' read -r u a _ <<< "$(newest)"
            [ "$a" = "$action" ] && [ "$u" = "${USER_OF[$who]}" ] \
                || fail "$method $pattern as $who: audit row '$(newest)', want ${USER_OF[$who]} $action"
        fi
        n=$((n + 1))
    done
done < <("$SERVER" routes)
[ "$n" -ge 150 ] || fail "walked only $n route x caller pairs"
ok "route walk: $n route x caller pairs gave 401/403/allowed as the table says, one audit row per mutation"

# the API offers no way to change or delete audit rows
for m in DELETE PUT PATCH POST; do
    code=$(curl -s -o /dev/null -w '%{http_code}' -X "$m" -H "Authorization: Bearer $GF_TOKEN" "$SERVER_URL/api/v1/audit")
    [ "$code" = 405 ] || fail "$m /api/v1/audit gave $code"
done
ok "audit rows cannot be changed through the API"

# ---- real changes, each one audited with its actor ----
mark=$(rows)
expect_row() { # USER ACTION RESULT
    local now
    now=$(rows)
    [ $((now - mark)) = 1 ] || fail "$2: $((now - mark)) audit rows"
    IFS='|' read -r u a r s <<< "$(newest)"
    [ "$u $a $r" = "$1 $2 $3" ] || fail "audit row '$u $a $r', want '$1 $2 $3'"
    [ "$s" = 127.0.0.1 ] || fail "audit source '$s'"
    mark=$now
}
API_AUTH=(-H "Authorization: Bearer ${TOK[operator]}")
api POST /api/v1/servers '{"name":"gpu-1","address":"127.0.0.1","agent_port":9}' > "$WORK/s.json"
[ "$HTTP_CODE" = 201 ] || fail "operator adds a server: $HTTP_CODE"
jq -e '.agent_token | length > 40' "$WORK/s.json" > /dev/null || fail "no agent token generated"
expect_row operator-1 server.create ok
sid=$(jq .id "$WORK/s.json")
api PATCH "/api/v1/servers/$sid" '{"labels":{"rack":"r1"}}' > /dev/null
expect_row operator-1 server.update ok
api DELETE "/api/v1/servers/$sid" > /dev/null
expect_row operator-1 server.delete ok
API_AUTH=(-H "Authorization: Bearer ${TOK[viewer]}")
api POST /api/v1/servers '{"name":"gpu-2","address":"127.0.0.1"}' > /dev/null
[ "$HTTP_CODE" = 403 ] || fail "viewer adds a server: $HTTP_CODE"
expect_row viewer-1 server.create denied
unset API_AUTH
api POST /api/v1/users '{"username":"scratch","password":"temp-pass-12345","role":"viewer"}' > "$WORK/u.json"
expect_row admin user.create ok
uid=$(jq .id "$WORK/u.json")
api PATCH "/api/v1/users/$uid" '{"role":"operator"}' > /dev/null
expect_row admin user.update ok
api DELETE "/api/v1/users/$uid" > /dev/null
expect_row admin user.delete ok
sqlite3 "$D/audit.db" "SELECT details FROM audit" | grep -q 'temp-pass' && fail "a password reached the audit log"
ok "changes audited: who, what, result, source; no secrets in details"

# ---- sessions: CSRF, idle and absolute expiry, revocation ----
login viewer-1 pass-for-viewer-ok
c=$COOKIE
code=$(curl -s -o "$WORK/csrf.json" -w '%{http_code}' -b "$c" -X POST --data '{"name":"x1"}' "$SERVER_URL/api/v1/tokens")
[ "$code" = 403 ] && jq -e '.error.code == "csrf"' "$WORK/csrf.json" > /dev/null || fail "no Origin: $code"
code=$(curl -s -o /dev/null -w '%{http_code}' -b "$c" -H 'Origin: http://evil.example' -X POST --data '{"name":"x2"}' "$SERVER_URL/api/v1/tokens")
[ "$code" = 403 ] || fail "foreign Origin: $code"
code=$(curl -s -o /dev/null -w '%{http_code}' -b "$c" -H "Referer: http://evil.example/$SERVER_URL" -X POST --data '{"name":"x3"}' "$SERVER_URL/api/v1/tokens")
[ "$code" = 403 ] || fail "foreign Referer: $code"
code=$(curl -s -o /dev/null -w '%{http_code}' -b "$c" -H "Referer: $SERVER_URL/servers" -X POST --data '{"name":"x4"}' "$SERVER_URL/api/v1/tokens")
[ "$code" = 201 ] || fail "own Referer: $code"
code=$(curl -s -o /dev/null -w '%{http_code}' -H 'Origin: http://evil.example' -H "Authorization: Bearer ${TOK[viewer]}" -X POST --data '{"name":"x5"}' "$SERVER_URL/api/v1/silences")
[ "$code" = 403 ] || fail "bearer (viewer) silence: $code"
code=$(curl -s -o "$WORK/x5.json" -w '%{http_code}' -H 'Origin: http://evil.example' -H "Authorization: Bearer $GF_TOKEN" -X POST \
    --data '{"matchers":"{alertname=\"X\"}","duration":"1m"}' "$SERVER_URL/api/v1/silences")
[ "$code" = 201 ] || [ "$code" = 200 ] || fail "bearer requests need no Origin: $code $(cat "$WORK/x5.json")"
login viewer-1 pass-for-viewer-ok -H 'Origin: http://evil.example'
[ "$HTTP_CODE" = 403 ] || fail "cross-site login: $HTTP_CODE"
ok "CSRF: cookie requests need our Origin or Referer; bearer requests do not"

# idle: 3 s without use ends it
code=$(curl -s -o /dev/null -w '%{http_code}' -b "$c" "$SERVER_URL/api/v1/auth/me")
[ "$code" = 200 ] || fail "fresh session: $code"
sleep 3.3
code=$(curl -s -o /dev/null -w '%{http_code}' -b "$c" "$SERVER_URL/api/v1/auth/me")
[ "$code" = 401 ] || fail "idle session still valid: $code"
# absolute: used every second, still over after 7 s
login viewer-1 pass-for-viewer-ok
c=$COOKIE
t0=$(date +%s%3N)
while :; do
    code=$(curl -s -o /dev/null -w '%{http_code}' -b "$c" "$SERVER_URL/api/v1/auth/me")
    el=$(( $(date +%s%3N) - t0 ))
    if [ "$code" != 200 ]; then break; fi
    [ $el -lt 8000 ] || fail "session outlived session_max_s"
    sleep 0.7
done
[ "$code" = 401 ] && [ $el -ge 6500 ] || fail "session ended after ${el} ms with $code"
ok "sessions end after session_idle_s idle and session_max_s in all"

login viewer-1 pass-for-viewer-ok
c1=$COOKIE
login viewer-1 pass-for-viewer-ok
c2=$COOKIE
curl -fsS -b "$c1" "$SERVER_URL/api/v1/auth/sessions" > "$WORK/sess.json"
jq -e '.sessions | length >= 2' "$WORK/sess.json" > /dev/null || fail "sessions list"
other=$(jq '[.sessions[] | select(.current | not)] | .[0].id' "$WORK/sess.json")
# another user cannot revoke it; its owner can
code=$(curl -s -o /dev/null -w '%{http_code}' -X DELETE -H "Authorization: Bearer ${TOK[operator]}" "$SERVER_URL/api/v1/auth/sessions/$other")
[ "$code" = 404 ] || fail "operator revoked a viewer's session: $code"
code=$(curl -s -o /dev/null -w '%{http_code}' -b "$c1" "${ORIGIN[@]}" -X DELETE "$SERVER_URL/api/v1/auth/sessions/$other")
[ "$code" = 200 ] || fail "revoke own session: $code"
code=$(curl -s -o /dev/null -w '%{http_code}' -b "$c2" "$SERVER_URL/api/v1/auth/me")
[ "$code" = 401 ] || fail "revoked session still valid: $code"
code=$(curl -s -o /dev/null -w '%{http_code}' -b "$c1" "${ORIGIN[@]}" -X POST "$SERVER_URL/api/v1/auth/logout")
[ "$code" = 200 ] || fail "logout: $code"
code=$(curl -s -o /dev/null -w '%{http_code}' -b "$c1" "$SERVER_URL/api/v1/auth/me")
[ "$code" = 401 ] || fail "session valid after logout: $code"
ok "sessions listed, revoked by their owner only, ended by logout"

# ---- tokens: expiry and revocation; tokens make no tokens ----
api POST /api/v1/users '{"username":"tok-maker","password":"pass-for-maker-ok","role":"operator"}' > /dev/null
login tok-maker pass-for-maker-ok
mk=(-b "$COOKIE" "${ORIGIN[@]}" -s -w '%{http_code}' -X POST)
code=$(curl "${mk[@]}" -o "$WORK/t.json" --data '{"name":"short","expires_in":"2s"}' "$SERVER_URL/api/v1/tokens")
[ "$code" = 201 ] || fail "short token: $code"
code=$(curl "${mk[@]}" -o /dev/null --data '{"name":"too-high","role":"admin"}' "$SERVER_URL/api/v1/tokens")
[ "$code" = 400 ] || fail "token above the creator's role: $code"
code=$(curl -s -o "$WORK/tt.json" -w '%{http_code}' -H "Authorization: Bearer $(jq -r .token "$WORK/t.json")" \
    -X POST --data '{"name":"child","expires_in":"366d"}' "$SERVER_URL/api/v1/tokens")
[ "$code" = 403 ] || fail "a token made a token: $code $(cat "$WORK/tt.json")"
ok "an API token cannot make tokens (a short-lived one cannot mint a long-lived one)"
short=$(jq -r .token "$WORK/t.json")
code=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $short" "$SERVER_URL/api/v1/servers")
[ "$code" = 200 ] || fail "fresh token: $code"
sleep 2.2
code=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $short" "$SERVER_URL/api/v1/servers")
[ "$code" = 401 ] || fail "expired token: $code"
tid=$(curl -fsS -H "Authorization: Bearer ${TOK[user]}" "$SERVER_URL/api/v1/tokens" | jq '.tokens[0].id')
code=$(curl -s -o /dev/null -w '%{http_code}' -X DELETE -H "Authorization: Bearer ${TOK[viewer]}" "$SERVER_URL/api/v1/tokens/$tid")
[ "$code" = 404 ] || fail "viewer revoked the user's token: $code"
code=$(curl -s -o /dev/null -w '%{http_code}' -X DELETE -H "Authorization: Bearer ${TOK[user]}" "$SERVER_URL/api/v1/tokens/$tid")
[ "$code" = 200 ] || fail "revoke own token: $code"
code=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer ${TOK[user]}" "$SERVER_URL/api/v1/servers")
[ "$code" = 401 ] || fail "revoked token still valid: $code"
ok "tokens expire and are revoked by their owner"

# ---- backoff, without telling users from non-users ----
login viewer-1 wrong-password-1
[ "$HTTP_CODE" = 401 ] || fail "wrong password: $HTTP_CODE"
cp "$WORK/login.json" "$WORK/wrong-user-exists.json"
login ghost-user wrong-password-1
[ "$HTTP_CODE" = 401 ] || fail "unknown user: $HTTP_CODE"
cmp -s "$WORK/login.json" "$WORK/wrong-user-exists.json" || fail "unknown user answered differently"
login viewer-1 wrong-password-2
login viewer-1 wrong-password-3
login viewer-1 pass-for-viewer-ok
[ "$HTTP_CODE" = 429 ] || fail "no backoff after 3 failures: $HTTP_CODE"
grep -qi '^Retry-After: [12]' "$WORK/login.hdr" || fail "no Retry-After"
for i in 1 2 3; do login ghost-user "wrong-$i-x" --interface 127.0.0.3 > /dev/null; done
login ghost-user wrong-4-x --interface 127.0.0.3
[ "$HTTP_CODE" = 429 ] || fail "unknown users back off the same: $HTTP_CODE"
sleep 1.6
login viewer-1 pass-for-viewer-ok --interface 127.0.0.4
[ "$HTTP_CODE" = 200 ] || fail "login after the wait: $HTTP_CODE"
failed=$(sqlite3 "$D/audit.db" "SELECT count(*) FROM audit WHERE action = 'auth.login' AND result <> 'ok'")
[ "$failed" -ge 7 ] || fail "failed logins not recorded ($failed)"
ok "failed logins back off per user and address, look alike, and are recorded"

# ---- a password change: no oracle, the same backoff as a login (issue 18, 3) ----
api POST /api/v1/users '{"username":"pw-user","password":"pass-for-pw-ok","role":"viewer"}' > /dev/null
login pw-user pass-for-pw-ok --interface 127.0.0.5
pwc=(--interface 127.0.0.5 -b "$COOKIE" "${ORIGIN[@]}" -s -D "$WORK/pw.hdr" -w '%{http_code}' -X POST "$SERVER_URL/api/v1/auth/password")
# new = current, with the right and with a wrong current password: the same answer
right=$(curl "${pwc[@]}" -o "$WORK/pw-right.json" --data '{"current_password":"pass-for-pw-ok","new_password":"pass-for-pw-ok"}')
wrong=$(curl "${pwc[@]}" -o "$WORK/pw-wrong.json" --data '{"current_password":"guess-guess-1","new_password":"guess-guess-1"}')
[ "$right" = 400 ] && [ "$wrong" = 400 ] || fail "new = current: $right / $wrong"
jq -e '.error.field == "new_password"' "$WORK/pw-right.json" > /dev/null || fail "new = current names $(cat "$WORK/pw-right.json")"
[ "$(jq -c .error "$WORK/pw-right.json")" = "$(jq -c .error "$WORK/pw-wrong.json")" ] \
    || fail "a right guess answers differently: $(cat "$WORK/pw-right.json") vs $(cat "$WORK/pw-wrong.json")"
for i in 1 2 3; do
    code=$(curl "${pwc[@]}" -o /dev/null --data "{\"current_password\":\"guess-$i-guess\",\"new_password\":\"a-new-one-12345\"}")
    [ "$code" = 403 ] || fail "wrong current password $i: $code"
done
code=$(curl "${pwc[@]}" -o "$WORK/pw.json" --data '{"current_password":"pass-for-pw-ok","new_password":"a-new-one-12345"}')
[ "$code" = 429 ] || fail "no backoff on password guesses: $code $(cat "$WORK/pw.json")"
grep -qi '^Retry-After: [12]' "$WORK/pw.hdr" || fail "password change: no Retry-After"
sleep 1.6
code=$(curl "${pwc[@]}" -o "$WORK/pw.json" --data '{"current_password":"pass-for-pw-ok","new_password":"a-new-one-12345"}')
[ "$code" = 200 ] || fail "password change after the wait: $code $(cat "$WORK/pw.json")"
ok "password change: a right guess looks like a wrong one until verified, and guesses back off"

# ---- a refused user update changes nothing (issue 18, 7) ----
uid=$(api GET /api/v1/users | jq '.users[] | select(.username == "pw-user") | .id')
api PATCH "/api/v1/users/$uid" '{"role":"admin","password":"short"}' > /dev/null
[ "$HTTP_CODE" = 400 ] || fail "bad update: $HTTP_CODE"
[ "$(api GET "/api/v1/users/$uid" | jq -r .role)" = viewer ] || fail "a refused update changed the role"
ok "a refused user update changes nothing"

# ---- the agent token never follows a server to a new place (issue 18, 5) ----
api POST /api/v1/servers '{"name":"moved","address":"127.0.0.1","agent_port":9445,"agent_token":"0123456789abcdef0123"}' > "$WORK/srv.json"
sid=$(jq .id "$WORK/srv.json")
API_AUTH=(-H "Authorization: Bearer ${TOK[operator]}")
api PATCH "/api/v1/servers/$sid" '{"agent_port":9446}' > /dev/null
[ "$HTTP_CODE" = 400 ] && jq -e '.error.field == "agent_token"' "$WORK/api.out" > /dev/null \
    || fail "an operator moved a server keeping its token: $HTTP_CODE $(cat "$WORK/api.out")"
api PATCH "/api/v1/servers/$sid" '{"address":"127.0.0.9","keep_agent_token":true}' > /dev/null
[ "$HTTP_CODE" = 400 ] || fail "keep_agent_token from an operator: $HTTP_CODE"
api PATCH "/api/v1/servers/$sid" '{"labels":{"rack":"r9"}}' > /dev/null
[ "$HTTP_CODE" = 200 ] || fail "a change in place: $HTTP_CODE"
api PATCH "/api/v1/servers/$sid" '{"agent_port":9447,"agent_token":"another-token-0123456"}' > /dev/null
[ "$HTTP_CODE" = 200 ] || fail "a move with its token: $HTTP_CODE"
unset API_AUTH
api PATCH "/api/v1/servers/$sid" '{"agent_port":9448,"keep_agent_token":true}' > /dev/null
[ "$HTTP_CODE" = 200 ] || fail "an admin keeping the token: $HTTP_CODE"
[ "$(api GET "/api/v1/servers/$sid" | jq .agent_port)" = 9448 ] || fail "not moved"
ok "a server moves with its agent token again, or an admin keeps it on purpose"

# ---- single sign-on headers, from the trusted proxy only ----
code=$(curl -s -o /dev/null -w '%{http_code}' -H 'X-Fleet-Auth-User: mallory' -H 'X-Fleet-Auth-Role: admin' \
    "$SERVER_URL/api/v1/users")
[ "$code" = 401 ] || fail "proxy headers honoured from 127.0.0.1: $code"
code=$(curl -s -o "$WORK/sso.json" -w '%{http_code}' --interface 127.0.0.2 -H 'X-Fleet-Auth-User: sso.op@lab' \
    -H 'X-Fleet-Auth-Role: operator' -H 'X-Forwarded-For: 10.9.8.7' "$SERVER_URL/api/v1/auth/me")
[ "$code" = 200 ] || fail "trusted proxy: $code"
jq -e '.username == "sso.op@lab" and .role == "operator" and .method == "proxy"' "$WORK/sso.json" > /dev/null \
    || fail "proxy identity: $(cat "$WORK/sso.json")"
curl -s -o /dev/null --interface 127.0.0.2 -H 'X-Fleet-Auth-User: sso.op@lab' -H "Origin: $SERVER_URL" \
    -H 'X-Forwarded-For: 10.9.8.7' -X POST --data '{"name":"sso-tok"}' "$SERVER_URL/api/v1/tokens"
[ "$(newest)" = "sso.op@lab|token.create|ok|10.9.8.7" ] || fail "proxy audit row: $(newest)"
for pair in readwrite:operator readonly:viewer admin:admin; do
    curl -s -o "$WORK/sso.json" --interface 127.0.0.2 -H "X-Fleet-Auth-User: sso.alias.${pair%%:*}" \
        -H "X-Fleet-Auth-Role: ${pair%%:*}" "$SERVER_URL/api/v1/auth/me"
    jq -e --arg r "${pair##*:}" '.role == $r' "$WORK/sso.json" > /dev/null \
        || fail "proxy role ${pair%%:*}: $(cat "$WORK/sso.json")"
done
code=$(curl -s -o /dev/null -w '%{http_code}' --interface 127.0.0.2 -H 'X-Fleet-Auth-User: sso.bogus' \
    -H 'X-Fleet-Auth-Role: superuser' "$SERVER_URL/api/v1/auth/me")
[ "$code" = 401 ] || fail "an unknown proxy role was accepted: $code"
ok "SSO headers honoured from trusted_proxies only; the client address comes from X-Forwarded-For; readwrite/readonly are operator/viewer"

# ---- bad input: 400 naming the field, nothing changed ----
users_before=$(sqlite3 "$D/auth.db" 'SELECT count(*) FROM users')
for body in '{"username":"admin'"'"' OR 1=1 --","password":"x"}' \
    "{\"username\":\"$(head -c 300 /dev/zero | tr '\0' a)\",\"password\":\"x\"}" \
    '{"username":"adm\u0000in","password":"x"}' '{"username":"admin","password":""}' '{"username":1}' 'not json'; do
    code=$(curl -s -o "$WORK/bad.json" -w '%{http_code}' --data "$body" "$SERVER_URL/api/v1/auth/login")
    [ "$code" = 400 ] || fail "login body $body: $code"
    jq -e '.error.field | length > 0' "$WORK/bad.json" > /dev/null || fail "no field named for $body"
done
printf '{"username":"\xff\xfe","password":"x"}' | curl -s -o "$WORK/bad.json" -w '%{http_code}' --data-binary @- \
    "$SERVER_URL/api/v1/auth/login" > "$WORK/code"
[ "$(cat "$WORK/code")" = 400 ] || fail "invalid UTF-8 login: $(cat "$WORK/code")"
for q in 'user=%00admin' 'action=%ff%fe' "target=$(head -c 300 /dev/zero | tr '\0' x)" 'since=yesterday' \
    'limit=0' 'limit=99999' 'before_id=-1' "user=admin'%20OR%20'1'='1"; do
    code=$(curl -s -o "$WORK/bad.json" -w '%{http_code}' -H "Authorization: Bearer $GF_TOKEN" "$SERVER_URL/api/v1/audit?$q")
    name=${q%%=*}
    if [ "$name" = user ] && [[ $q == *OR* ]]; then
        [ "$code" = 200 ] && jq -e '.entries == []' "$WORK/bad.json" > /dev/null || fail "injection filter: $code"
        continue
    fi
    [ "$code" = 400 ] && jq -e --arg f "$name" '.error.field == $f' "$WORK/bad.json" > /dev/null \
        || fail "audit filter $q: $code $(cat "$WORK/bad.json")"
done
api POST /api/v1/users '{"username":"x; DROP TABLE users","password":"long-enough-pass","role":"viewer"}' > "$WORK/bad.json"
[ "$HTTP_CODE" = 400 ] && jq -e '.error.field == "username"' "$WORK/bad.json" > /dev/null || fail "bad user name: $HTTP_CODE"
api POST /api/v1/users '{"username":"shorty","password":"short","role":"viewer"}' > "$WORK/bad.json"
[ "$HTTP_CODE" = 400 ] && jq -e '.error.field == "password"' "$WORK/bad.json" > /dev/null || fail "short password: $HTTP_CODE"
api POST /api/v1/users '{"username":"king","password":"long-enough-pass","role":"king"}' > "$WORK/bad.json"
[ "$HTTP_CODE" = 400 ] && jq -e '.error.field == "role"' "$WORK/bad.json" > /dev/null || fail "bad role: $HTTP_CODE"
code=$(curl -s -o /dev/null -w '%{http_code}' -H 'Cookie: gf_session=x'"$(head -c 400 /dev/zero | tr '\0' y)" "$SERVER_URL/api/v1/auth/me")
[ "$code" = 401 ] || fail "overlong cookie: $code"
code=$(curl -s -o /dev/null -w '%{http_code}' -H 'Authorization: Bearer '"$(head -c 4000 /dev/zero | tr '\0' z)" "$SERVER_URL/api/v1/auth/me")
[ "$code" = 401 ] || fail "overlong token: $code"
[ "$(sqlite3 "$D/auth.db" 'SELECT count(*) FROM users')" = "$users_before" ] || fail "bad input changed the users"
[ "$(sqlite3 "$D/auth.db" 'PRAGMA integrity_check')" = ok ] || fail "auth.db integrity"
ok "injection strings, overlong values, invalid UTF-8 and NUL bytes: 400 with the field, nothing changed"

# ---- the shell: disable a user and its sessions end within a second ----
login operator-1 pass-for-operator-ok --interface 127.0.0.5
c=$COOKIE
code=$(curl -s -o /dev/null -w '%{http_code}' -b "$c" "$SERVER_URL/api/v1/auth/me")
[ "$code" = 200 ] || fail "operator session: $code"
"$SERVER" user disable operator-1 --data "$D" > /dev/null || fail "user disable"
t0=$(date +%s%3N)
while code=$(curl -s -o /dev/null -w '%{http_code}' -b "$c" "$SERVER_URL/api/v1/auth/me"); [ "$code" = 200 ]; do
    [ $(( $(date +%s%3N) - t0 )) -lt 2500 ] || fail "disabled user's session still valid after 2.5 s"
    sleep 0.1
done
[ "$code" = 401 ] || fail "disabled user's session: $code"
"$SERVER" user list --data "$D" | grep -q 'operator-1 .*disabled' || fail "user list"
[ "$(sqlite3 "$D/audit.db" "SELECT source FROM audit WHERE action = 'user.update' ORDER BY id DESC LIMIT 1")" = cli ] \
    || fail "CLI change not audited"
ok "gpufleet user disable ends the sessions on the running server within $(( $(date +%s%3N) - t0 )) ms, audited"

# ---- logins cannot starve other requests ----
storm=()
for i in $(seq 1 8); do
    login viewer-1 pass-for-viewer-ok --interface "127.0.1.$i" &
    storm+=($!)
done
t0=$(date +%s%3N)
for _ in $(seq 1 5); do
    curl -fsS -o /dev/null -H "Authorization: Bearer $GF_TOKEN" "$SERVER_URL/api/v1/servers" || fail "request during a login storm"
done
el=$(( $(date +%s%3N) - t0 ))
wait "${storm[@]}"
[ $el -lt 2000 ] || fail "5 requests took ${el} ms during 8 logins"
ok "5 API requests answered in ${el} ms while 8 logins hashed"

# secrets never reach the log
for s in "${TOK[@]}" pass-for-viewer-ok "$ADMIN_PASSWORD"; do
    grep -qF -- "$s" "$WORK/srv.log" && fail "a secret is in the server log"
done
ok "no password or token in the log"

# ---- first start: a random admin password, changed at first login ----
mkdir -p "$WORK/fresh-data"
FP=$(free_port)
"$SERVER" serve --listen "127.0.0.1:$FP" --data "$WORK/fresh-data" > "$WORK/fresh.log" 2>&1 &
PIDS+=($!)
wait_http "http://127.0.0.1:$FP/healthz"
[ "$(stat -c %a "$WORK/fresh-data/admin-password")" = 600 ] || fail "admin-password not 0600"
pw=$(cat "$WORK/fresh-data/admin-password")
grep -qF "$pw" "$WORK/fresh.log" && fail "first password in the log"
SERVER_URL_SAVE=$SERVER_URL
SERVER_URL="http://127.0.0.1:$FP"
login admin "$pw"
c=$COOKIE
[ "$HTTP_CODE" = 200 ] && jq -e '.must_change_password' "$WORK/login.json" > /dev/null || fail "first login"
code=$(curl -s -o "$WORK/pc.json" -w '%{http_code}' -b "$c" "$SERVER_URL/api/v1/servers")
[ "$code" = 403 ] && jq -e '.error.code == "password_change_required"' "$WORK/pc.json" > /dev/null || fail "change not required: $code"
code=$(curl -s -o /dev/null -w '%{http_code}' -b "$c" -H "Origin: $SERVER_URL" --data "{\"current_password\":\"$pw\",\"new_password\":\"admin-is-me-now\"}" "$SERVER_URL/api/v1/auth/password")
[ "$code" = 400 ] || fail "password with the user name accepted: $code"
code=$(curl -s -o /dev/null -w '%{http_code}' -b "$c" -H "Origin: $SERVER_URL" --data "{\"current_password\":\"$pw\",\"new_password\":\"a-fresh-long-secret\"}" "$SERVER_URL/api/v1/auth/password")
[ "$code" = 200 ] || fail "password change: $code"
code=$(curl -s -o /dev/null -w '%{http_code}' -b "$c" "$SERVER_URL/api/v1/servers")
[ "$code" = 200 ] || fail "after the change: $code"
SERVER_URL=$SERVER_URL_SAVE
ok "first start: random admin password in a 0600 file, not the log; change enforced"

# unattended install: the password from the environment, no forced change
mkdir -p "$WORK/env-data"
EP=$(free_port)
GPUFLEET_ADMIN_PASSWORD=from-the-env-123 "$SERVER" serve --listen "127.0.0.1:$EP" --data "$WORK/env-data" > "$WORK/env.log" 2>&1 &
EPID=$!
PIDS+=($EPID)
wait_http "http://127.0.0.1:$EP/healthz"
[ ! -e "$WORK/env-data/admin-password" ] || fail "password file written for a given password"
code=$(curl -s -o "$WORK/env.json" -w '%{http_code}' --data '{"username":"admin","password":"from-the-env-123"}' "http://127.0.0.1:$EP/api/v1/auth/login")
[ "$code" = 200 ] && jq -e '.must_change_password == false' "$WORK/env.json" > /dev/null || fail "env admin: $code"
ok "GPUFLEET_ADMIN_PASSWORD sets the first admin's password"

# ---- no audit flood without an account (issue 18, 6) ----
# 400 failed logins from one address, most of them throttled: a few rows,
# the rest counted into one summary row when the window ends (here: at stop)
FP=$(free_port)
kill "$EPID" && wait "$EPID" 2> /dev/null # one server per data folder
"$SERVER" serve --listen "127.0.0.1:$FP" --data "$WORK/env-data" > "$WORK/flood.log" 2>&1 &
FPID=$!
PIDS+=($FPID)
wait_http "http://127.0.0.1:$FP/healthz"
cpids=()
for b in $(seq 1 8); do
    for i in $(seq 1 50); do
        echo "url = \"http://127.0.0.1:$FP/api/v1/auth/login\""
        echo 'data = "{\"username\":\"admin\",\"password\":\"flood-guess-1\"}"'
        echo 'output = "/dev/null"'
    done > "$WORK/flood$b.cfg"
    curl -s --interface 127.0.0.7 --parallel --parallel-max 10 -K "$WORK/flood$b.cfg" &
    cpids+=($!)
done
for p in "${cpids[@]}"; do wait "$p" || true; done
kill -TERM "$FPID"
wait "$FPID" 2>/dev/null || true
rows=$(sqlite3 "$WORK/env-data/audit.db" "SELECT count(*) FROM audit WHERE source = '127.0.0.7' AND action = 'auth.login'")
counted=$(sqlite3 "$WORK/env-data/audit.db" "SELECT coalesce(sum(json_extract(details, '\$.count')), 0) FROM audit WHERE source = '127.0.0.7' AND action = 'audit.suppressed'")
echo "400 failed logins from one address: $rows rows, $counted counted in summaries"
[ "$rows" -le 20 ] || fail "the flood wrote $rows rows"
[ $((rows + counted)) = 400 ] || fail "rows $rows + counted $counted != 400 attempts"
ok "a login flood writes at most 20 rows a minute per address; the rest is one summary row"
