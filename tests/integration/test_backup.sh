#!/usr/bin/env bash
# gpufleet backup while the server ingests (an agent scraped every 300 ms,
# imports going on), then gpufleet restore into a new data folder: a server
# started there answers the same data, every database passes
# integrity_check, and a damaged backup is refused.
source "$(dirname "$0")/lib.sh"

start_agent ag "gpu h100 count=2
vary 1" --interval 200
start_server srv --agent-interval 300
api POST /api/v1/servers "{\"name\":\"ag\",\"address\":\"127.0.0.1\",\"agent_port\":$AGENT_PORT}" > /dev/null
now=$(date +%s%3N)
awk -v t="$now" 'BEGIN { for (i = 0; i < 600; i++) printf "bk_metric{job=\"bk\",instance=\"x\",n=\"%d\"} %d %.0f\n", i % 6, i, t - 600000 + i * 1000 }' \
    > "$WORK/data.prom"
code=$(scurl -s -o /dev/null -w '%{http_code}' --data-binary @"$WORK/data.prom" "$SERVER_URL/api/v1/import/prometheus")
[ "$code" = 200 ] || fail "import: $code"
api POST /api/v1/users '{"username":"bk-user","password":"restored-pass-123","role":"viewer"}' > /dev/null
sleep 1
# under load: more imports while the backup runs
( for i in $(seq 1 20); do
      awk -v t="$now" -v k="$i" 'BEGIN { for (j = 0; j < 200; j++) printf "load_metric{job=\"ld\",instance=\"y\",k=\"%d\"} %d %.0f\n", k, j, t - 200000 + j * 1000 }' \
          | scurl -s -o /dev/null --data-binary @- "$SERVER_URL/api/v1/import/prometheus"
  done ) &
loader=$!
GPUFLEET_URL=$SERVER_URL "$SERVER" backup "$WORK/bk" --data "$WORK/srv-data" > "$WORK/backup.out" 2>&1 || fail "backup: $(cat "$WORK/backup.out")"
wait "$loader"
grep -q 'checkpointed first' "$WORK/backup.out" || fail "no checkpoint: $(cat "$WORK/backup.out")"
jq -e '.files | length == 6 and all(.sha256 | length == 64)' "$WORK/bk/manifest.json" > /dev/null || fail "manifest: $(cat "$WORK/bk/manifest.json")"
ok "backup of 6 databases under load, with a manifest of checksums"

query /api/v1/export 'bk_metric' --data-urlencode "start=$(( now / 1000 - 700 ))" | sort > "$WORK/before.txt"
[ "$(wc -l < "$WORK/before.txt")" = 600 ] || fail "export before: $(wc -l < "$WORK/before.txt") lines"
"$SERVER" restore "$WORK/bk" --data "$WORK/srv-data" > "$WORK/r0.out" 2>&1 && fail "restore over a live data folder without --force"
"$SERVER" restore "$WORK/bk" --data "$WORK/restored" > "$WORK/restore.out" 2>&1 || fail "restore: $(cat "$WORK/restore.out")"
for db in gpufleet auth audit alerts containers tsdb; do
    [ "$(sqlite3 "$WORK/restored/$db.db" 'PRAGMA integrity_check')" = ok ] || fail "$db.db integrity"
done
R_PORT=$(free_port)
"$SERVER" serve --listen "127.0.0.1:$R_PORT" --data "$WORK/restored" --agent-interval 300 > "$WORK/restored.log" 2>&1 &
PIDS+=($!)
wait_http "http://127.0.0.1:$R_PORT/healthz"
curl -fsS -G -H "Authorization: Bearer $GF_TOKEN" "http://127.0.0.1:$R_PORT/api/v1/export" \
    --data-urlencode 'match=bk_metric' --data-urlencode "start=$(( now / 1000 - 700 ))" | sort > "$WORK/after.txt"
cmp -s "$WORK/before.txt" "$WORK/after.txt" || fail "restored data differs ($(wc -l < "$WORK/after.txt") lines)"
code=$(curl -s -o /dev/null -w '%{http_code}' --data '{"username":"bk-user","password":"restored-pass-123"}' \
    "http://127.0.0.1:$R_PORT/api/v1/auth/login")
[ "$code" = 200 ] || fail "a user of the backup cannot sign in: $code"
curl -fsS -H "Authorization: Bearer $GF_TOKEN" "http://127.0.0.1:$R_PORT/api/v1/servers" | jq -e '.servers[0].name == "ag"' > /dev/null \
    || fail "servers not restored"
ok "restored: the same 600 samples, users, tokens and servers; integrity_check ok"

# a restore --force over a crashed server's folder: the sample log of the
# replaced store must not be replayed onto the backup
R_PID=${PIDS[-1]}
echo "after_backup_metric 1 $(( now - 1000 ))" | curl -fsS -H "Authorization: Bearer $GF_TOKEN" \
    --data-binary @- "http://127.0.0.1:$R_PORT/api/v1/import/prometheus" > /dev/null
kill -9 "$R_PID"
wait "$R_PID" 2> /dev/null || true
[ -n "$(ls "$WORK/restored/tsdb.db-samples")" ] || fail "no sample log after the kill"
"$SERVER" restore "$WORK/bk" --data "$WORK/restored" --force > "$WORK/restore2.out" 2>&1 \
    || fail "restore --force: $(cat "$WORK/restore2.out")"
[ ! -e "$WORK/restored/tsdb.db-samples" ] || fail "the replaced store's sample log was kept"
"$SERVER" serve --listen "127.0.0.1:$R_PORT" --data "$WORK/restored" > "$WORK/restored2.log" 2>&1 &
PIDS+=($!)
wait_http "http://127.0.0.1:$R_PORT/healthz"
curl -fsS -G -H "Authorization: Bearer $GF_TOKEN" "http://127.0.0.1:$R_PORT/api/v1/series" \
    --data-urlencode 'match[]=after_backup_metric' | jq -e '.data | length == 0' > /dev/null \
    || fail "a sample from after the backup came back with the restore"
ok "restore --force over a crashed server: its sample log is deleted, not replayed"

# one server per data folder: a restore --force under a running server is
# refused naming it; a second server waits for the first to stop (a
# restart that comes before the last one has closed its store), then serves
R2_PID=${PIDS[-1]}
"$SERVER" restore "$WORK/bk" --data "$WORK/restored" --force > "$WORK/r3.out" 2>&1 && fail "restore --force under a running server"
grep -q "a gpufleet server (pid $R2_PID) serves $WORK/restored: stop it first" "$WORK/r3.out" || fail "restore under a server: $(cat "$WORK/r3.out")"
R3_PORT=$(free_port)
"$SERVER" serve --listen "127.0.0.1:$R3_PORT" --data "$WORK/restored" > "$WORK/restored3.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 1 50); do grep -q "waiting for the server still serving" "$WORK/restored3.log" && break; sleep 0.1; done
grep -q "waiting for the server still serving $WORK/restored (pid $R2_PID) to stop" "$WORK/restored3.log" ||
    fail "the second server did not wait: $(cat "$WORK/restored3.log")"
curl -s -o /dev/null "http://127.0.0.1:$R3_PORT/healthz" && fail "a second server serves the same data folder"
kill "$R2_PID"
wait_http "http://127.0.0.1:$R3_PORT/healthz"
curl -fsS -H "Authorization: Bearer $GF_TOKEN" "http://127.0.0.1:$R3_PORT/api/v1/servers" | jq -e '.servers[0].name == "ag"' > /dev/null ||
    fail "the second server's data"
ok "one server per data folder: restore --force under a running server refused naming its pid; a second server waited for the first to stop, then served its data"

cp -r "$WORK/bk" "$WORK/bad"
printf 'x' | dd of="$WORK/bad/auth.db" bs=1 seek=5000 conv=notrunc 2> /dev/null
"$SERVER" restore "$WORK/bad" --data "$WORK/r2" > "$WORK/bad.out" 2>&1 && fail "a damaged backup was restored"
grep -q 'does not match the manifest' "$WORK/bad.out" || fail "damaged: $(cat "$WORK/bad.out")"
ok "a damaged backup is refused, naming the file"
