#!/usr/bin/env bash
# kill -9 of the server while it ingests: after a restart both databases pass
# PRAGMA integrity_check and, once the agent's history ring is backfilled, no
# sample the agent still holds is missing.
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
sleep 2
for db in tsdb.db gpufleet.db; do
    r=$(sqlite3 "$WORK/srv-data/$db" 'PRAGMA integrity_check')
    [ "$r" = ok ] || fail "$db integrity_check: $r"
done
ok "integrity_check ok on both databases"

# every sample the agent took while the server was down (and the ones the
# kill lost from memory) is in the server, with the agent's own timestamps
sel='DCGM_FI_DEV_GPU_UTIL{gpu="0"}'
curl -fsS -H "Authorization: Bearer $(cat "$WORK/ag.token")" "$AGENT_URL/api/v1/history?since=$t_start" -o "$WORK/hist.json"
idx=$(jq '.segments[0].series | map(startswith("DCGM_FI_DEV_GPU_UTIL{gpu=\"0\"")) | index(true)' "$WORK/hist.json")
[ "$idx" != null ] || fail "agent history lacks the series"
jq -r ".segments[].samples[] | \"\(.[0]) \(.[$idx + 1])\"" "$WORK/hist.json" > "$WORK/agent.txt"
query /api/v1/export "$sel" --data-urlencode "start=$(( t_start / 1000 - 1 ))" \
    | awk '{print $NF, $(NF - 1)}' > "$WORK/server.txt"
missing=$(awk -v a="$t_start" -v b="$t_restart" 'NR == FNR { have[$1] = $2; next }
    $1 >= a && $1 <= b && !($1 in have) { m++ } END { print m + 0 }' "$WORK/server.txt" "$WORK/agent.txt")
held=$(awk -v a="$t_start" -v b="$t_restart" '$1 >= a && $1 <= b' "$WORK/agent.txt" | wc -l)
echo "agent samples from registration to restart: $held, missing in the server: $missing"
[ "$held" -ge 20 ] || fail "too few agent samples to judge ($held)"
[ "$missing" = 0 ] || fail "$missing samples lost"
# and the values agree
bad=$(awk 'NR == FNR { have[$1] = $2; next } ($1 in have) && have[$1] != $2 { b++ } END { print b + 0 }' \
    "$WORK/server.txt" "$WORK/agent.txt")
[ "$bad" = 0 ] || fail "$bad backfilled values differ from the agent's"
ok "no sample lost across kill -9 ($held agent samples checked)"
