#!/usr/bin/env bash
# A full disk: the server says so in its log and in /healthz, keeps serving,
# keeps the unwritten chunks and writes them once there is room again; the
# databases are never corrupt. Needs root to mount a small tmpfs.
source "$(dirname "$0")/lib.sh"
command -v sqlite3 > /dev/null || fail "sqlite3 missing (scripts/deps.sh test)"

mnt="$WORK/small"
mkdir -p "$mnt"
# a fresh data folder takes ~650 kB (eight SQLite databases with their WAL)
if ! mount -t tmpfs -o size=900k tmpfs "$mnt" 2> "$WORK/mount.err"; then
    echo "SKIP: cannot mount a tmpfs here ($(cat "$WORK/mount.err")); run as root to test a full disk"
    exit 0
fi
AFTER_STOP+=("umount '$mnt'")

mkdir -p "$mnt/data"
make_admin "$mnt/data"
SERVER_PORT=$(free_port)
SERVER_URL="http://127.0.0.1:$SERVER_PORT"
"$SERVER" serve --listen "127.0.0.1:$SERVER_PORT" --data "$mnt/data" > "$WORK/srv.log" 2>&1 &
SERVER_PID=$!
PIDS+=($SERVER_PID)
wait_http "$SERVER_URL/healthz"

t0=$(( ($(date +%s) - 3600) * 1000 ))
for round in $(seq 0 40); do
    awk -v GPUS=8 -v HOURS=0.05 -v T0=$((t0 + round * 180000)) -f "$SRC_DIR/bench/gen_dcgm.awk" \
        | scurl -s -o /dev/null -X POST -T - "$SERVER_URL/api/v1/import/prometheus" || true
    code=$(curl -s -o "$WORK/health.json" -w '%{http_code}' "$SERVER_URL/healthz")
    [ "$code" = 503 ] && break
done
[ "$code" = 503 ] || fail "the disk never filled (healthz $code)"
jq -e '.status == "degraded" and (.error | test("full"))' "$WORK/health.json" > /dev/null \
    || fail "healthz: $(cat "$WORK/health.json")"
grep -q 'tsdb: writing chunks: .*full' "$WORK/srv.log" || fail "no clear error in the log"
# a full disk lets a small write through now and then: the sample log's
# failure is said once a minute, not once per batch
n=$(grep -c 'cannot write the sample log' "$WORK/srv.log" || true)
[ "$n" -le 2 ] || fail "the sample log's failure logged $n times"
ok "disk full: healthz 503 $(jq -c .error "$WORK/health.json"), error in the log (sample log: $n lines)"

query /api/v1/series 'DCGM_FI_DEV_GPU_UTIL' | jq -e '.data | length == 8' > /dev/null \
    || fail "queries stopped working"
cp "$mnt/data/"*.db "$WORK/" 2>/dev/null
for f in tsdb.db gpufleet.db; do
    [ "$(sqlite3 "$mnt/data/$f" 'PRAGMA integrity_check')" = ok ] || fail "$f corrupt"
done
ok "still serving queries; both databases pass integrity_check"

# room again: the kept chunks are written and health recovers
mount -o remount,size=64m "$mnt"
for _ in $(seq 1 50); do
    code=$(curl -s -o "$WORK/health.json" -w '%{http_code}' "$SERVER_URL/healthz")
    [ "$code" = 200 ] && break
    sleep 0.2
done
[ "$code" = 200 ] || fail "health did not recover: $(cat "$WORK/health.json")"
kill "$SERVER_PID"
wait "$SERVER_PID" 2>/dev/null || true
for f in tsdb.db gpufleet.db; do
    [ "$(sqlite3 "$mnt/data/$f" 'PRAGMA integrity_check')" = ok ] || fail "$f corrupt after recovery"
done
ok "space back: chunks written, healthy, databases intact"
