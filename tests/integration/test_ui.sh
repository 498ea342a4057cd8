#!/usr/bin/env bash
# The web UI in Debian's chromium (playwright-core, web/tests/ui.test.mjs)
# against the real server scraping agents on the fake NVML: sign-in, live
# values, charts, servers, alerts, users, tokens, audit, settings, roles,
# reconnects and sign-out. Screenshots of each page: $BUILD_DIR/ui-artifacts.
source "$(dirname "$0")/lib.sh"
: "${BUILD_DIR:?}"
[ -x /usr/bin/chromium ] || fail "chromium missing (scripts/deps.sh test)"
[ -d "$SRC_DIR/web/node_modules/playwright-core" ] || fail "web/node_modules missing (scripts/build-web.sh)"

INTERVAL_MS=1000
cat > "$WORK/srv.yaml" <<Y
alert_eval_interval_ms: 250
alert_group_wait_ms: 0
self_registration: 1
Y
# the test hooks (window.__gf) are in the build made for tests only
grep -q '__gf' "$SRC_DIR"/web/dist-test/assets/index-*.js || fail "web/dist-test has no test hooks"
if grep -l '__gf' "$SRC_DIR"/web/dist/assets/*.js; then fail "the shipped UI (web/dist) has test hooks"; fi
ok "test hooks only in the test build"

start_server srv --config "$WORK/srv.yaml" --agent-interval "$INTERVAL_MS" --ui-dir "$SRC_DIR/web/dist-test"
SERVER_ARGS=(serve --listen "127.0.0.1:$SERVER_PORT" --data "$WORK/srv-data" --config "$WORK/srv.yaml" --ui-dir "$SRC_DIR/web/dist-test"
    --agent-interval "$INTERVAL_MS")
AFTER_STOP+=("[ -f '$WORK/server2.pid' ] && kill \$(cat '$WORK/server2.pid') && sleep 1")

# host a: two H100 with set values; host b: an L40S; host c: registered from the UI
# (a process on GPU 0: this script's shell, 2 GiB)
start_agent a "$(printf 'seed 1\ngpu h100 count=2 util=37 temp=51 power_w=312\nset gpu=1 util=64 temp=58 power_w=455\nprocess gpu=0 pid=%d used_mib=2048' $$)" --interval 250
A_PORT=$AGENT_PORT
start_agent b "$(printf 'seed 2\ngpu l40s util=0')" --interval 250
B_PORT=$AGENT_PORT
start_agent c "$(printf 'seed 3\ngpu rtx2080s')" --interval 250
C_PORT=$AGENT_PORT
# history for the charts and the heatmap: 20 minutes of host-a's GPU
# utilization and temperature, imported under the labels its scrapes will
# carry, before it is registered (in order, so the roll-ups hold it too)
curl -fsS "http://127.0.0.1:$A_PORT/metrics" | grep -E '^DCGM_FI_DEV_(GPU_UTIL|GPU_TEMP)\{' | sed -E 's/ [^ ]+$//' > "$WORK/a.series"
[ "$(wc -l < "$WORK/a.series")" = 4 ] || fail "host-a series: $(cat "$WORK/a.series")"
now_ms=$(($(date +%s) * 1000))
while read -r key; do
    for i in $(seq 120 -1 3); do
        case "$key" in DCGM_FI_DEV_GPU_UTIL*) v=$((i * 7 % 100)) ;; *) v=$((40 + i % 30)) ;; esac
        echo "${key%\}},job=\"gpufleet-agent\",instance=\"127.0.0.1:$A_PORT\",server=\"host-a\"} $v $((now_ms - i * 10000))"
    done
done < "$WORK/a.series" > "$WORK/import.txt"
scurl -fsS --data-binary @"$WORK/import.txt" "$SERVER_URL/api/v1/import/prometheus" > /dev/null || fail "import"
api POST /api/v1/servers "{\"name\":\"host-a\",\"address\":\"127.0.0.1\",\"agent_port\":$A_PORT,\"labels\":{\"rack\":\"r1\"}}" > /dev/null
[ "$HTTP_CODE" = 201 ] || fail "register host-a: $HTTP_CODE"
api POST /api/v1/servers "{\"name\":\"host-b\",\"address\":\"127.0.0.1\",\"agent_port\":$B_PORT,\"labels\":{\"rack\":\"r2\"}}" > /dev/null
[ "$HTTP_CODE" = 201 ] || fail "register host-b: $HTTP_CODE"
sleep 3

ART="$BUILD_DIR/ui-artifacts"
rm -rf "$ART"
GF_URL="$SERVER_URL" ADMIN_PASSWORD="$ADMIN_PASSWORD" SCENARIO_A="$WORK/a.scenario" SCENARIO_B="$WORK/b.scenario" AGENT_C_PORT="$C_PORT" \
    INTERVAL_MS="$INTERVAL_MS" GF_SERVER_BIN="$SERVER" GF_SERVER_ARGS="$(printf '%s\n' "${SERVER_ARGS[@]}" | jq -R . | jq -sc .)" \
    GF_SERVER_PID="$SERVER_PID" GF_PID_FILE="$WORK/server2.pid" GF_SERVER_LOG="$WORK/srv2.log" ARTIFACTS="$ART" \
    node "$SRC_DIR/web/tests/ui.test.mjs" || fail "UI steps failed (screenshots in $ART)"
ls "$ART"/*.png > /dev/null || fail "no screenshots saved"
ok "UI in chromium: $(ls "$ART"/*.png | wc -l) screenshots in $ART"
