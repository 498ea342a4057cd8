#!/usr/bin/env bash
# Databases as each earlier release left them (tests/fixtures/schema/VERSION,
# sqlite3 dumps) are opened by today's server: the migrations run, and the
# users, tokens, servers, rules, receivers and samples are all still there.
source "$(dirname "$0")/lib.sh"
command -v sqlite3 > /dev/null || fail "sqlite3 missing (scripts/deps.sh test)"

for dir in "$SRC_DIR"/tests/fixtures/schema/*/; do
    ver=$(basename "$dir")
    data="$WORK/data-$ver"
    mkdir -p "$data"
    for sql in "$dir"/*.sql; do
        sqlite3 "$data/$(basename "$sql" .sql).db" < "$sql" || fail "$ver: cannot load $(basename "$sql")"
    done
    tok=$(cat "$dir/admin.token")
    port=$(free_port)
    url="http://127.0.0.1:$port"
    # the fixture's samples are as old as the fixture: keep them
    printf 'raw_retention_days: 3650\nm1_retention_days: 3650\nh1_retention_days: 36500\n' > "$WORK/keep.yaml"
    "$SERVER" serve --listen "127.0.0.1:$port" --data "$data" --config "$WORK/keep.yaml" > "$WORK/srv-$ver.log" 2>&1 &
    pid=$!
    PIDS+=($pid)
    wait_http "$url/healthz"
    get() { curl -fsS -H "Authorization: Bearer $tok" "$url$1"; }
    get /api/v1/servers | jq -e '.servers[0] | .name == "gpu-old" and .labels.rack == "r7" and .agent_token_set' > /dev/null \
        || fail "$ver: servers: $(get /api/v1/servers)"
    get /api/v1/alerts/rules | jq -e '.rules | map(.name) | index("OldRule") != null' > /dev/null || fail "$ver: rules"
    get /api/v1/receivers | jq -e '.receivers[0].name == "oldhook"' > /dev/null || fail "$ver: receivers"
    code=$(curl -s -o /dev/null -w '%{http_code}' --data '{"username":"viewer-old","password":"old-viewer-pass-9"}' "$url/api/v1/auth/login")
    [ "$code" = 200 ] || fail "$ver: the old viewer cannot sign in: $code"
    curl -fsS -G -H "Authorization: Bearer $tok" "$url/api/v1/export" --data-urlencode 'match=fx_metric' \
        --data-urlencode start=1 | sort > "$WORK/export-$ver.txt"
    cmp -s "$WORK/export-$ver.txt" "$dir/fx_metric.export" || fail "$ver: samples differ ($(wc -l < "$WORK/export-$ver.txt") lines)"
    kill "$pid"
    wait "$pid" 2>/dev/null || true
    for db in "$data"/*.db; do
        [ "$(sqlite3 "$db" 'PRAGMA integrity_check')" = ok ] || fail "$ver: $(basename "$db") integrity"
    done
    [ "$(sqlite3 "$data/alerts.db" 'PRAGMA user_version')" -ge 3 ] || fail "$ver: alerts.db not migrated"
    ok "$ver's databases open in today's server, migrated, with their users, token, servers, rules, receivers and samples"
done
