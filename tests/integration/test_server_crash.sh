#!/usr/bin/env bash
# kill -9 of the server while it ingests: after a restart both databases pass
# PRAGMA integrity_check; every sample the server had stored before the kill
# is still there (the sample log replays the heads that were only in
# memory: pushed samples have no agent to backfill them), and once the
# agent's history ring is backfilled, none it took while the server was
# down is missing.
source "$(dirname "$0")/lib.sh"
command -v sqlite3 > /dev/null || fail "sqlite3 missing (scripts/deps.sh test)"

# the agent's history (what backfill reads) needs the agent's own token:
# the server generates one at registration, shown once
start_server srv --agent-interval 500
api POST /api/v1/servers "{\"name\":\"ag\",\"address\":\"127.0.0.1\",\"agent_port\":$(free_port)}" > "$WORK/reg.json"
[ "$HTTP_CODE" = 201 ] || fail "register: $HTTP_CODE"
jq -r .agent_token "$WORK/reg.json" > "$WORK/ag.token"
[ "$(wc -c < "$WORK/ag.token")" -gt 40 ] || fail "no agent token generated at registration"
start_agent ag "gpu h100 count=2
vary 1" --interval 250 --token-file "$WORK/ag.token"
api PATCH /api/v1/servers/1 "{\"agent_port\":$AGENT_PORT,\"keep_agent_token\":true}" > /dev/null
[ "$HTTP_CODE" = 200 ] || fail "set the agent port: $HTTP_CODE"
t_start=$(date +%s%3N)
sleep 4
# pushed samples of the last 100 s: one head, not full, not old enough to
# be sealed, so only the sample log can bring them back
now_s=$(date +%s)
for i in $(seq 0 99); do
    echo "pushed_jobs_running{job=\"batch\",instance=\"q1\"} $((i * 7 % 13)) $(( (now_s - 100 + i) * 1000 ))"
done > "$WORK/pushed.prom"
code=$(scurl -s -o "$WORK/import.out" -w '%{http_code}' --data-binary @"$WORK/pushed.prom" \
    "$SERVER_URL/api/v1/import/prometheus")
[ "$code" = 204 ] || [ "$code" = 200 ] || fail "import: $code $(cat "$WORK/import.out")"
sel='DCGM_FI_DEV_GPU_UTIL{gpu="0"}'
query /api/v1/export "$sel" --data-urlencode "start=$(( t_start / 1000 - 1 ))" \
    | awk '{print $NF, $(NF - 1)}' > "$WORK/before.txt"
t_kill=$(date +%s%3N)
kill -9 "$SERVER_PID"
wait "$SERVER_PID" 2>/dev/null || true
ok "server killed with SIGKILL while ingesting"
sleep 3 # the agent keeps sampling; the server misses this
t_restart=$(date +%s%3N)
SERVER_PORT_WANT=$SERVER_PORT start_server srv --agent-interval 500
for _ in $(seq 1 50); do
    grep -q 'backfilled' "$WORK/srv.log" && break
    sleep 0.1
done
grep -q 'backfilled' "$WORK/srv.log" || fail "no backfill after the restart"
grep -q 'replayed [0-9]* samples from the sample log' "$WORK/srv.log" || fail "no replay of the sample log"
sleep 2
for db in tsdb.db gpufleet.db; do
    r=$(sqlite3 "$WORK/srv-data/$db" 'PRAGMA integrity_check')
    [ "$r" = ok ] || fail "$db integrity_check: $r"
done
ok "integrity_check ok on both databases"

query /api/v1/export 'pushed_jobs_running' --data-urlencode "start=$(( now_s - 200 ))" \
    | awk '{print $NF, $(NF - 1)}' > "$WORK/pushed_after.txt"
n=$(wc -l < "$WORK/pushed_after.txt")
[ "$n" = 100 ] || fail "$n of 100 pushed samples survived the kill"
awk '{ split($1, a, "}"); print $NF, $(NF - 1) }' "$WORK/pushed.prom" | sort > "$WORK/pushed_want.txt"
sort "$WORK/pushed_after.txt" | diff - "$WORK/pushed_want.txt" > /dev/null \
    || fail "pushed samples differ after the replay"
ok "all 100 pushed samples (heads in memory at the kill) are back, values equal"

# every sample the agent took while the server was down is in the server,
# with the agent's own timestamps, and every one it had before is kept
curl -fsS -H "Authorization: Bearer $(cat "$WORK/ag.token")" "$AGENT_URL/api/v1/history?since=$t_start" -o "$WORK/hist.json"
idx=$(jq '.segments[0].series | map(startswith("DCGM_FI_DEV_GPU_UTIL{gpu=\"0\"")) | index(true)' "$WORK/hist.json")
[ "$idx" != null ] || fail "agent history lacks the series"
jq -r ".segments[].samples[] | \"\(.[0]) \(.[$idx + 1])\"" "$WORK/hist.json" > "$WORK/agent.txt"
query /api/v1/export "$sel" --data-urlencode "start=$(( t_start / 1000 - 1 ))" \
    | awk '{print $NF, $(NF - 1)}' > "$WORK/server.txt"
kept=$(awk 'NR == FNR { have[$1] = $2; next } !($1 in have) || have[$1] != $2 { m++ } END { print m + 0 }' \
    "$WORK/server.txt" "$WORK/before.txt")
[ "$(wc -l < "$WORK/before.txt")" -ge 5 ] || fail "too few samples before the kill to judge"
[ "$kept" = 0 ] || fail "$kept of the samples stored before the kill are gone or changed"
ok "all $(wc -l < "$WORK/before.txt") samples stored before the kill are kept"
missing=$(awk -v a="$t_kill" -v b="$t_restart" 'NR == FNR { have[$1] = $2; next }
    $1 >= a && $1 <= b && !($1 in have) { m++ } END { print m + 0 }' "$WORK/server.txt" "$WORK/agent.txt")
held=$(awk -v a="$t_kill" -v b="$t_restart" '$1 >= a && $1 <= b' "$WORK/agent.txt" | wc -l)
echo "agent samples while the server was down: $held, missing in the server: $missing"
[ "$held" -ge 8 ] || fail "too few agent samples to judge ($held)"
[ "$missing" = 0 ] || fail "$missing samples lost"
# and the values agree
bad=$(awk 'NR == FNR { have[$1] = $2; next } ($1 in have) && have[$1] != $2 { b++ } END { print b + 0 }' \
    "$WORK/server.txt" "$WORK/agent.txt")
[ "$bad" = 0 ] || fail "$bad backfilled values differ from the agent's"
ok "no sample lost across kill -9 ($held agent samples checked)"
