#!/usr/bin/env bash
# Chaos soak (a soak, not a CI test): the server under a fleet's load while
# faults strike, then a reckoning. Load: AGENTS real agents (fake GPUs,
# values drifting, scraped every 2 s), TARGETS simulated exporters (nginx
# serving one agent body), WS browser-like live clients, an API writer
# (servers, rules, users, tokens) and a reader (series, labels, latest,
# query_range, export). Every FAULT_S one fault at random: kill -9 of the
# server (restarted), kill -9 of an agent (restarted), an agent paused
# (SIGSTOP) for 90 s, the data folder's disk filled and freed (a tmpfs of
# its own), a target that starts answering garbage. At the end:
#   - every sample the agents' rings still hold (those never killed) has one
#     in the store within 2.5 s (scrapes carry the server's clock), for GPU
#     0's utilization of each agent;
#   - PRAGMA integrity_check ok on every database;
#   - the server's RSS and open files flat over the last two thirds;
#   - with SERVER=build-asan/gpufleet, no sanitizer report in its log.
# usage: bench/chaos_soak.sh [minutes]   (default 30; MINUTES env too)
# env: AGENTS (50) TARGETS (500) WS (20) FAULT_S (60) SERVER AGENT
set -euo pipefail
cd "$(dirname "$0")/.."
minutes=${1:-${MINUTES:-30}}
agents=${AGENTS:-50} targets=${TARGETS:-500} nws=${WS:-20} fault_s=${FAULT_S:-60}
srv=${SERVER:-build/gpufleet} agent=${AGENT:-build/gpufleet-agent} fake=build/tests/fakes/libnvidia-ml.so.1
[ -x "$srv" ] && [ -x "$agent" ] || { echo "build first: scripts/build.sh Release" >&2; exit 1; }
[ "$(id -u)" = 0 ] || { echo "needs root (a tmpfs to fill)" >&2; exit 1; }
work=$(mktemp -d /tmp/gf-soak.XXXXXX)
chmod 755 "$work"
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill -CONT "$p" 2>/dev/null || true; kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    umount -l "$work/data" 2>/dev/null || true
}
trap cleanup EXIT
log() { echo "$(date +%T) $*" | tee -a "$work/soak.log"; }
source bench/lib.sh
PY=/usr/bin/python3

# the data folder on a tmpfs of its own, so filling it fills nothing else
mkdir -p "$work/data"
mount -t tmpfs -o size=1500m tmpfs "$work/data"
echo 'soak-root-pass-1' | "$srv" user add admin --role admin --password-stdin --data "$work/data" > /dev/null
tok=$("$srv" token add admin soak --data "$work/data")
H=(-H "Authorization: Bearer $tok")
sp=$((15000 + RANDOM % 5000))
url=http://127.0.0.1:$sp
printf 'rate_limit_per_s: 0\nagent_interval_ms: 2000\nexporter_interval_ms: 5000\n' > "$work/srv.yaml"
start_server() {
    ASAN_OPTIONS=detect_leaks=1 "$srv" serve --listen 127.0.0.1:$sp --data "$work/data" --config "$work/srv.yaml" \
        --log-level warn >> "$work/server.log" 2>&1 &
    spid=$!
    pids+=($spid)
    wait_http "$url/healthz"
}
start_server

# agents with their rings covering the whole run
ring=$((minutes + 5))
start_agent() { # i
    local i=$1 port=$((base_a + $1))
    printf 'gpu h100 count=8\nvary 1\nseed %d\n' "$i" > "$work/a$i.scenario"
    FAKE_NVML_SCENARIO=$work/a$i.scenario "$agent" --listen 127.0.0.1:$port --nvml-lib "$PWD/$fake" \
        --interval 2000 --history-minutes "$ring" --token-file "$work/a.token" --log-level warn \
        > "$work/a$i.log" 2>&1 &
    apid[$i]=$!
    pids+=($!)
}
head -c 32 /dev/urandom | base64 | tr -d '=+/' > "$work/a.token"
base_a=$((22000 + RANDOM % 2000))
declare -A apid killed
for i in $(seq 0 $((agents - 1))); do start_agent "$i"; done
for i in $(seq 0 $((agents - 1))); do wait_http "http://127.0.0.1:$((base_a + i))/healthz"; done
for i in $(seq 0 $((agents - 1))); do
    printf '{"name":"ag-%03d","address":"127.0.0.1","agent_port":%d,"agent_token":"%s"}' "$i" $((base_a + i)) "$(cat "$work/a.token")" \
        | curl -fsS "${H[@]}" -o /dev/null --data @- "$url/api/v1/servers"
done

# simulated exporters: one agent body behind nginx on TARGETS ports (one,
# "garbage", answers nonsense when the fault comes)
curl -fsS "http://127.0.0.1:$base_a/metrics" -o "$work/metrics"
cp "$work/metrics" "$work/good"
base_t=$((26000 + RANDOM % 2000))
nginx_targets_conf "$work" $base_t $targets > "$work/nginx.conf"
nginx -p "$work" -c "$work/nginx.conf" &
pids+=($!)
wait_http "http://127.0.0.1:$base_t/metrics"
for i in $(seq 0 $((targets - 1)) ); do
    printf '{"name":"sim-%03d","address":"127.0.0.%d","agent_port":9,"targets":[{"name":"node","url":"http://127.0.0.1:%d/metrics"}]}' \
        "$i" $((2 + i % 200)) $((base_t + i)) | curl -fsS "${H[@]}" -o /dev/null --data @- "$url/api/v1/servers"
done
log "load: $agents agents, $targets targets, $nws live clients; $minutes min, a fault every $fault_s s"

# live clients (reconnecting: the server is killed now and then)
cat > "$work/ws.py" <<'PY'
import asyncio, sys, websockets
async def main():
    while True:
        try:
            async with websockets.connect(sys.argv[1], extra_headers=[("Authorization", "Bearer " + sys.argv[2])]) as ws:
                while True:
                    await ws.recv()
        except Exception:
            await asyncio.sleep(1)
asyncio.run(main())
PY
for i in $(seq 1 "$nws"); do "$PY" "$work/ws.py" "ws://127.0.0.1:$sp/api/v1/live" "$tok" > /dev/null 2>&1 & pids+=($!); done

# an API writer and a reader, both bounded and never stopping the soak
( n=0; while true; do n=$((n + 1))
    curl -s "${H[@]}" -o /dev/null --data "{\"name\":\"soak-rule-$((n % 7))\",\"metric\":\"DCGM_FI_DEV_GPU_TEMP\",\"op\":\">\",\"threshold\":$((80 + n % 10))}" "$url/api/v1/alerts/rules"
    curl -s "${H[@]}" -o /dev/null --data "{\"username\":\"soak-u$((n % 13))\",\"password\":\"pw-soak-$n-long\",\"role\":\"viewer\"}" "$url/api/v1/users"
    curl -s "${H[@]}" -o /dev/null -X PATCH --data "{\"labels\":{\"n\":\"$n\"}}" "$url/api/v1/servers/$((1 + n % agents))"
    curl -s -b "x=1" "${H[@]}" -o /dev/null "$url/api/v1/tokens"
    sleep 1; done ) > /dev/null 2>&1 &
pids+=($!)
( while true; do
    for q in "series?match=up" "labels" "label/server/values" "latest?match=DCGM_FI_DEV_GPU_UTIL" \
             "query_range?match=DCGM_FI_DEV_GPU_UTIL%7Bgpu%3D%220%22%7D&step=60&fn=avg" \
             "export?match=up%7Bserver%3D%22ag-001%22%7D" "fleet" "alerts?state=active"; do
        curl -s "${H[@]}" -o /dev/null --max-time 20 "$url/api/v1/$q"
    done; sleep 0.5; done ) > /dev/null 2>&1 &
pids+=($!)

# faults and the server's RSS and open files every 30 s
faults=(kill_server kill_agent pause_agent fill_disk garbage_target)
t_start=$(date +%s%3N)
end=$(( $(date +%s) + minutes * 60 ))
next_fault=$(( $(date +%s) + fault_s ))
echo "t_s rss_kb fds" > "$work/res.txt"
while [ "$(date +%s)" -lt "$end" ]; do
    echo "$(( $(date +%s) - t_start / 1000 )) $(awk '/^VmRSS/ {print $2}' /proc/$spid/status 2>/dev/null || echo 0) $(ls /proc/$spid/fd 2>/dev/null | wc -l)" >> "$work/res.txt"
    if [ "$(date +%s)" -ge "$next_fault" ]; then
        f=${faults[$((RANDOM % ${#faults[@]}))]}
        case $f in
        kill_server) log "fault: kill -9 of the server"; kill -9 "$spid"; wait "$spid" 2>/dev/null || true; start_server ;;
        kill_agent) i=$((RANDOM % agents)); log "fault: kill -9 of agent $i"; kill -9 "${apid[$i]}" 2>/dev/null || true
            killed[$i]=1; start_agent "$i" ;;
        pause_agent) i=$((RANDOM % agents)); log "fault: agent $i paused 90 s"; kill -STOP "${apid[$i]}"
            ( sleep 90; kill -CONT "${apid[$i]}" 2>/dev/null ) & ;;
        fill_disk) log "fault: the data disk filled for 20 s"; dd if=/dev/zero of="$work/data/fill" bs=1M 2>/dev/null || true
            ( sleep 20; rm -f "$work/data/fill" ) & ;;
        garbage_target) log "fault: a target answers garbage for 60 s"; head -c 3000 /dev/urandom > "$work/metrics.tmp"; mv "$work/metrics.tmp" "$work/metrics"
            ( sleep 60; cp "$work/good" "$work/metrics" ) & ;;
        esac
        next_fault=$(( $(date +%s) + fault_s ))
    fi
    sleep 30
done
log "load ends; reckoning"
sleep 95 # paused agents resumed, a last backfill done
curl -fsS "${H[@]}" -X POST -o /dev/null "$url/api/v1/admin/checkpoint"

# every sample an agent (never killed) still holds is in the store
missing_total=0 checked=0
for i in $(seq 0 $((agents - 1))); do
    [ -n "${killed[$i]:-}" ] && continue
    p=$((base_a + i))
    curl -fsS -H "Authorization: Bearer $(cat "$work/a.token")" "http://127.0.0.1:$p/api/v1/history?since=$t_start" -o "$work/h.json" || continue
    idx=$(jq '.segments[0].series | map(startswith("DCGM_FI_DEV_GPU_UTIL{gpu=\"0\"")) | index(true)' "$work/h.json")
    [ "$idx" = null ] && continue
    jq -r ".segments[].samples[] | .[0]" "$work/h.json" | awk -v s="$t_start" -v e="$(( $(date +%s%3N) - 20000 ))" '$1 >= s && $1 <= e' > "$work/agent.txt"
    curl -fsSG "${H[@]}" "$url/api/v1/export" --data-urlencode "match=DCGM_FI_DEV_GPU_UTIL{server=\"$(printf 'ag-%03d' "$i")\",gpu=\"0\"}" \
        --data-urlencode "start=$(( t_start / 1000 ))" | awk '{print $NF}' > "$work/server.txt"
    # scrapes are stamped with the server's clock, backfills with the
    # agent's: a sample counts as kept when the store has one within 2.5 s
    m=$(awk 'NR == FNR { have[int($1 / 500)] = 1; next }
        { k = int($1 / 500); f = 1; for (d = -5; d <= 5; d++) if ((k + d) in have) f = 0; m += f } END { print m + 0 }' \
        "$work/server.txt" "$work/agent.txt")
    missing_total=$((missing_total + m)); checked=$((checked + $(wc -l < "$work/agent.txt")))
done
log "samples the agents held: $checked checked, $missing_total missing in the store"
kill "$spid"; wait "$spid" 2>/dev/null || true
bad=0
for db in "$work"/data/*.db; do
    r=$(sqlite3 "$db" 'PRAGMA integrity_check'); [ "$r" = ok ] || { log "$(basename "$db"): $r"; bad=1; }
done
log "integrity_check: $([ $bad = 0 ] && echo ok || echo FAILED) on every database"
awk -v from=$(( minutes * 60 / 3 )) 'NR > 1 && $1 >= from && $2 > 0 { n++; if (n == 1) { r0 = $2; f0 = $3 } r1 = $2; f1 = $3; if ($2 > rmax) rmax = $2 }
    END { printf "RSS over the last two thirds: %d -> %d MB (max %d); open files %d -> %d\n", r0 / 1024, r1 / 1024, rmax / 1024, f0, f1 }' \
    "$work/res.txt" | tee -a "$work/soak.log"
if grep -lE 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$work/server.log" > /dev/null; then
    log "sanitizer report in the server log"; bad=1
fi
[ "$missing_total" = 0 ] || bad=1
log "result: $([ $bad = 0 ] && echo PASS || echo FAIL) (log in $work/soak.log)"
cp "$work/soak.log" /tmp/gf-soak-last.log
[ $bad = 0 ]
