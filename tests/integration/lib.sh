# Shared helpers for the integration tests (sourced). Every server started
# here binds 127.0.0.1 and is killed when the test exits.
set -euo pipefail

: "${AGENT:?AGENT must point at the gpufleet-agent binary}"
: "${FAKE_NVML:?FAKE_NVML must point at the fake libnvidia-ml.so.1}"
: "${SRC_DIR:?}"
# leaks of system libraries we cannot free (each explained in the file)
export LSAN_OPTIONS="suppressions=$SRC_DIR/tests/lsan.supp${LSAN_OPTIONS:+:$LSAN_OPTIONS}"

WORK=$(mktemp -d /tmp/gf-it.XXXXXX)
PIDS=()
AFTER_STOP=() # commands run once the servers are stopped (umount, ...)
cleanup() {
    local rc=$?
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
    for c in "${AFTER_STOP[@]}"; do eval "$c" || true; done
    # under the sanitizer build, a report in any server log fails the test
    if grep -lE 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$WORK"/*.log 2>/dev/null; then
        echo "FAIL: sanitizer report in a log above"
        rc=1
    fi
    if [ $rc -ne 0 ]; then
        echo "--- logs of the failed test ($WORK) ---"
        for f in "$WORK"/*.log; do [ -f "$f" ] && { echo "== $f"; tail -n 40 "$f"; }; done
    else
        rm -rf "$WORK"
    fi
    exit $rc
}
trap cleanup EXIT

fail() { echo "FAIL: $*" >&2; exit 1; }
ok() { echo "ok: $*"; }

# A free TCP port on 127.0.0.1, never one this test was given before: two
# calls before either program binds would otherwise be able to get the
# same one (seen once: a webhook sink and an SMTP sink). Called in $(...),
# so what was given is kept in a file.
free_port() {
    local p
    for _ in $(seq 1 50); do
        p=$((10000 + RANDOM % 22000)) # below the ephemeral range (32768+)
        grep -qx "$p" "$WORK/.ports-given" 2>/dev/null && continue
        if ! (exec 3<>/dev/tcp/127.0.0.1/$p) 2>/dev/null; then
            echo "$p" >> "$WORK/.ports-given"
            echo "$p"
            return 0
        fi
    done
    return 1
}

# wait_http URL [seconds]: until URL answers 2xx.
wait_http() {
    local url=$1 secs=${2:-15}
    for _ in $(seq 1 $((secs * 10))); do
        curl -fsS -o /dev/null "$url" 2>/dev/null && return 0
        sleep 0.1
    done
    fail "$url did not come up in ${secs}s"
}

# start_agent NAME SCENARIO_TEXT [agent flags...]: starts an agent on the fake
# NVML with that scenario; sets AGENT_PORT and AGENT_URL.
start_agent() {
    local name=$1 scenario=$2
    shift 2
    printf '%s\n' "$scenario" > "$WORK/$name.scenario"
    AGENT_PORT=$(free_port)
    AGENT_URL="http://127.0.0.1:$AGENT_PORT"
    FAKE_NVML_SCENARIO="$WORK/$name.scenario" "$AGENT" --listen "127.0.0.1:$AGENT_PORT" \
        --nvml-lib "$FAKE_NVML" "$@" > "$WORK/$name.log" 2>&1 &
    PIDS+=($!)
    wait_http "$AGENT_URL/healthz"
}

# poll_metrics URL FILE TRIES GREP_ARGS...: fetches URL into FILE every
# 0.1 s until grep GREP_ARGS FILE matches, TRIES times at most; 0 or 1.
poll_metrics() {
    local url=$1 file=$2 tries=$3
    shift 3
    for _ in $(seq 1 "$tries"); do
        curl -fsS "$url" -o "$file" && grep -q "$@" "$file" && return 0
        sleep 0.1
    done
    return 1
}

# metric_value TEXT_FILE PREFIX: value of the first line starting with PREFIX.
metric_value() {
    awk -v p="$2" 'index($0, p) == 1 { print $NF; exit }' "$1"
}

# make_admin DATA_DIR: creates user admin (password ADMIN_PASSWORD) and an
# admin API token in DATA_DIR before the server starts, as an operator at
# the shell would; exports GF_TOKEN and GPUFLEET_TOKEN (for the CLI).
ADMIN_PASSWORD='it-root-pass-1234'
make_admin() {
    local dir=$1
    if [ ! -f "$dir/auth.db" ]; then
        printf '%s\n' "$ADMIN_PASSWORD" | "$SERVER" user add admin --role admin --password-stdin \
            --data "$dir" > /dev/null || fail "user add admin"
        GF_TOKEN=$("$SERVER" token add admin tests --data "$dir") || fail "token add"
        echo "$GF_TOKEN" > "$dir/.test-token"
    fi
    GF_TOKEN=$(cat "$dir/.test-token")
    export GF_TOKEN GPUFLEET_TOKEN=$GF_TOKEN
}

# start_server NAME [flags...]: starts gpufleet serve with its data in
# $WORK/NAME-data (an admin and its token made first, see make_admin); sets
# SERVER_PORT, SERVER_URL, SERVER_PID.
start_server() {
    local name=$1
    shift
    : "${SERVER:?SERVER must point at the gpufleet binary}"
    mkdir -p "$WORK/$name-data"
    make_admin "$WORK/$name-data"
    SERVER_PORT=${SERVER_PORT_WANT:-$(free_port)}
    SERVER_URL="http://127.0.0.1:$SERVER_PORT"
    "$SERVER" serve --listen "127.0.0.1:$SERVER_PORT" --data "$WORK/$name-data" "$@" \
        >> "$WORK/$name.log" 2>&1 &
    SERVER_PID=$!
    PIDS+=($SERVER_PID)
    wait_http "$SERVER_URL/healthz"
}

# scurl ARGS...: curl with the admin token.
scurl() {
    curl -H "Authorization: Bearer $GF_TOKEN" "$@"
}

# api METHOD PATH [JSON]: calls the server as admin (or with API_AUTH, an
# array of curl arguments, when set); prints the body; HTTP_CODE is set.
api() {
    local method=$1 path=$2 body=${3:-}
    local args=(-s -o "$WORK/api.out" -w '%{http_code}' -X "$method")
    if [ -n "${API_AUTH+x}" ]; then args+=("${API_AUTH[@]}"); else args+=(-H "Authorization: Bearer $GF_TOKEN"); fi
    [ -n "$body" ] && args+=(-H 'Content-Type: application/json' --data "$body")
    HTTP_CODE=$(curl "${args[@]}" "$SERVER_URL$path")
    cat "$WORK/api.out"
}

# query PATH SELECTOR [curl args...]: a GET with the selector URL-encoded.
query() {
    local path=$1 sel=$2
    shift 2
    scurl -fsSG "$SERVER_URL$path" --data-urlencode "match=$sel" "$@"
}
