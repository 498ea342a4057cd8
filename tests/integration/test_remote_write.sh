#!/usr/bin/env bash
# remote_write into a real VictoriaMetrics: what the server stores (imported
# and scraped samples) comes back from VictoriaMetrics' own API; while
# VictoriaMetrics is down the server retries and loses nothing.
source "$(dirname "$0")/lib.sh"
command -v victoria-metrics > /dev/null || fail "victoria-metrics missing (scripts/deps.sh test)"

VM_PORT=$(free_port)
start_vm() {
    victoria-metrics -httpListenAddr="127.0.0.1:$VM_PORT" -storageDataPath="$WORK/vm" \
        -retentionPeriod=100y -search.latencyOffset=0s >> "$WORK/vm.log" 2>&1 &
    VM_PID=$!
    PIDS+=($VM_PID)
    wait_http "http://127.0.0.1:$VM_PORT/health" 30
}
start_vm
start_agent ag "gpu h100 util=64" --interval 500
start_server srv --agent-interval 500 --remote-write "http://127.0.0.1:$VM_PORT/api/v1/write"
api POST /api/v1/servers "{\"name\":\"ag\",\"address\":\"127.0.0.1\",\"agent_port\":$AGENT_PORT}" > /dev/null

now=$(date +%s)000
awk -v t0="$((now - 120000))" 'BEGIN { for (i = 0; i < 100; i++)
    printf "rw_test{job=\"rw\",instance=\"h\",k=\"v\"} %.3f %.0f\n", i * 1.25, t0 + i * 1000 }' > "$WORK/rw.txt"
scurl -fsS --data-binary @"$WORK/rw.txt" "$SERVER_URL/api/v1/import/prometheus" > /dev/null

pending() { scurl -fsS "$SERVER_URL/metrics" | awk '$1 == "gpufleet_remote_write_samples_pending" { print $2 }'; }
drain() {
    for _ in $(seq 1 100); do
        [ "$(pending)" = 0 ] && return 0
        sleep 0.1
    done
    fail "remote_write queue did not drain ($(pending) pending)"
}
sleep 1.5
drain
curl -fsS "http://127.0.0.1:$VM_PORT/internal/force_flush" > /dev/null
vm_export() { curl -fsS "http://127.0.0.1:$VM_PORT/api/v1/export" --data-urlencode "match[]=$1" \
    --data-urlencode "start=$(( now / 1000 - 3600 ))"; }
vm_export 'rw_test' > "$WORK/vm.json"
jq -e --slurp 'length == 1 and (.[0].values | length) == 100 and .[0].metric.k == "v" and .[0].values[4] == 5' \
    "$WORK/vm.json" > /dev/null || fail "VictoriaMetrics has: $(head -c 300 "$WORK/vm.json")"
jq -e --slurp --arg t0 "$((now - 120000))" '.[0].timestamps[0] == ($t0 | tonumber)' "$WORK/vm.json" \
    > /dev/null || fail "timestamps differ"
ok "100 imported samples reached VictoriaMetrics with their timestamps and labels"

vm_export 'DCGM_FI_DEV_GPU_UTIL' | jq -e --slurp 'length == 1 and (.[0].values | all(. == 64)) and .[0].metric.server == "ag" and .[0].metric.modelName == "NVIDIA H100 80GB HBM3"' \
    > /dev/null || fail "scraped series missing in VictoriaMetrics"
ours=$(query /api/v1/export 'DCGM_FI_DEV_GPU_UTIL' --data-urlencode "start=$(( now / 1000 - 3600 ))" | wc -l)
theirs=$(vm_export 'DCGM_FI_DEV_GPU_UTIL' | jq '.values | length')
echo "scraped samples: server $ours, VictoriaMetrics $theirs"
[ "$theirs" -ge $((ours - 4)) ] || fail "VictoriaMetrics lacks scraped samples"
ok "scraped samples reached VictoriaMetrics"

# the receiver goes away: the server retries and nothing is lost
kill "$VM_PID"
wait "$VM_PID" 2>/dev/null || true
awk -v t0="$((now - 60000))" 'BEGIN { for (i = 0; i < 50; i++)
    printf "rw_down{job=\"rw\",instance=\"h\"} %d %.0f\n", i, t0 + i * 1000 }' > "$WORK/rw2.txt"
scurl -fsS --data-binary @"$WORK/rw2.txt" "$SERVER_URL/api/v1/import/prometheus" > /dev/null
sleep 2
[ "$(pending)" -ge 50 ] || fail "samples should wait while the receiver is down"
retries=$(scurl -fsS "$SERVER_URL/metrics" | awk '$1 == "gpufleet_remote_write_retries_total" { print $2 }')
[ "$retries" -ge 1 ] || fail "no retry counted"
start_vm
sleep 1
drain
curl -fsS "http://127.0.0.1:$VM_PORT/internal/force_flush" > /dev/null
vm_export 'rw_down' | jq -e '(.values | length) == 50' > /dev/null || fail "samples lost while down"
ok "receiver down: retried ($retries retries), all 50 samples delivered after it came back"

# a receiver that refuses (400) is not retried; one that is overloaded
# (503, then 429) is retried until it accepts
RX_PORT=$(free_port)
cat > "$WORK/rx.py" <<'PY'
import http.server, sys
calls = {"flaky": 0}
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        ok = self.headers.get("Content-Encoding") == "snappy" and \
            self.headers.get("Content-Type") == "application/x-protobuf" and \
            self.headers.get("X-Prometheus-Remote-Write-Version") == "0.1.0"
        if self.path == "/refuse" or not ok:
            code = 400
        else:
            calls["flaky"] += 1
            code = 503 if calls["flaky"] == 1 else 429 if calls["flaky"] == 2 else 204
        self.send_response(code)
        self.send_header("Content-Length", "0")
        self.end_headers()
    def log_message(self, *a):
        pass
http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
PY
python3 "$WORK/rx.py" "$RX_PORT" > "$WORK/rx.log" 2>&1 &
PIDS+=($!)
sleep 0.5
declare -A TOKEN_OF
metric() { curl -fsS -H "Authorization: Bearer ${TOKEN_OF[$1]}" "$1/metrics" | awk -v m="$2" '$1 == m { print $2 }'; }
start_server refuse --remote-write "http://127.0.0.1:$RX_PORT/refuse"
URL_REFUSE=$SERVER_URL
TOKEN_OF[$SERVER_URL]=$GF_TOKEN
start_server flaky --remote-write "http://127.0.0.1:$RX_PORT/flaky"
URL_FLAKY=$SERVER_URL
TOKEN_OF[$SERVER_URL]=$GF_TOKEN
for u in "$URL_REFUSE" "$URL_FLAKY"; do
    curl -fsS -H "Authorization: Bearer ${TOKEN_OF[$u]}" --data-binary @"$WORK/rw2.txt" "$u/api/v1/import/prometheus" > /dev/null
done
sleep 2.5
[ "$(metric "$URL_REFUSE" gpufleet_remote_write_samples_failed_total)" = 50 ] || fail "400 not counted as failed"
[ "$(metric "$URL_REFUSE" gpufleet_remote_write_retries_total)" = 0 ] || fail "a 400 was retried"
[ "$(metric "$URL_FLAKY" gpufleet_remote_write_retries_total)" = 2 ] || fail "503 and 429 not retried twice"
[ "$(metric "$URL_FLAKY" gpufleet_remote_write_samples_sent_total)" = 50 ] || fail "flaky receiver did not get the samples"
ok "400 is not retried (50 failed); 503 then 429 are retried and the samples delivered"
