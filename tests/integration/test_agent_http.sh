#!/usr/bin/env bash
# The agent's HTTP API as a client sees it: /metrics (plain and gzip),
# /api/v1/snapshot, /api/v1/history, /healthz, errors as JSON, the bearer
# token, and settings from a config file with flags winning.
source "$(dirname "$0")/lib.sh"

head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$WORK/token"
start_agent api "gpu h100 count=2" --interval 200 --token-file "$WORK/token"
TOKEN=$(cat "$WORK/token")

# /metrics stays open; the same bytes come gzipped when asked
curl -fsS "$AGENT_URL/metrics" -o "$WORK/plain.txt"
curl -fsS -H 'Accept-Encoding: gzip' -D "$WORK/gz.hdr" "$AGENT_URL/metrics" -o "$WORK/m.gz"
grep -qi '^Content-Encoding: gzip' "$WORK/gz.hdr" || fail "no gzip encoding"
grep -qi '^Content-Type: text/plain; version=0.0.4' "$WORK/gz.hdr" || fail "content type"
# (to a file first: grep -q ending early would SIGPIPE gunzip, and pipefail
# would call that a failure)
gunzip -c "$WORK/m.gz" > "$WORK/m.txt"
grep -q '^DCGM_FI_DEV_GPU_UTIL{gpu="1"' "$WORK/m.txt" || fail "gzip body"
[ "$(grep -c '^DCGM_FI_DEV_GPU_UTIL{' "$WORK/plain.txt")" = 2 ] || fail "two GPUs expected"
ok "metrics plain and gzip"

# every family has HELP and TYPE
families=$(grep -v '^#' "$WORK/plain.txt" | sed 's/[{ ].*//' | sort -u)
for f in $families; do
    grep -q "^# HELP $f " "$WORK/plain.txt" || fail "no HELP for $f"
    grep -q "^# TYPE $f " "$WORK/plain.txt" || fail "no TYPE for $f"
done
ok "HELP and TYPE for $(echo "$families" | wc -l) families"

# /api/v1/* needs the token
code=$(curl -s -o "$WORK/401.json" -w '%{http_code}' "$AGENT_URL/api/v1/snapshot")
[ "$code" = 401 ] || fail "snapshot without token gave $code"
jq -e '.error.code == "unauthorized"' "$WORK/401.json" > /dev/null || fail "401 body"
code=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer wrong$TOKEN" \
    "$AGENT_URL/api/v1/history")
[ "$code" = 401 ] || fail "wrong token gave $code"
AUTH=(-H "Authorization: Bearer $TOKEN")
curl -fsS "${AUTH[@]}" "$AGENT_URL/api/v1/snapshot" -o "$WORK/snap.json"
jq -e '.gpus | length == 2' "$WORK/snap.json" > /dev/null || fail "snapshot gpus"
jq -e '.gpus[0].fb_total_mib == 81559 and .gpus[0].power_watts == 631.95' "$WORK/snap.json" \
    > /dev/null || fail "snapshot values"
jq -e '.host.memory.total_bytes > 0 and (.host.cpu.count >= 1)' "$WORK/snap.json" > /dev/null \
    || fail "snapshot host"
grep -q "$TOKEN" "$WORK/api.log" && fail "the token appears in the log"
ok "token required on /api/v1, never logged"

# history: the ring holds samples with the fake's values
sleep 1
now=$(date +%s%3N)
curl -fsS "${AUTH[@]}" "$AGENT_URL/api/v1/history?since=$((now - 5000))" -o "$WORK/hist.json"
jq -e '.segments[0].samples | length >= 3' "$WORK/hist.json" > /dev/null || fail "history rows"
idx=$(jq '.segments[0].series | index("DCGM_FI_DEV_FB_TOTAL{gpu=\"0\",UUID=\"GPU-fa4e0000-5e1f-4c1d-9a52-000000000001\",pci_bus_id=\"00000000:1B:00.0\",device=\"nvidia0\",modelName=\"NVIDIA H100 80GB HBM3\",Hostname=\"'"$(jq -r .hostname "$WORK/snap.json")"'\"}")' "$WORK/hist.json")
[ "$idx" != null ] || fail "history lacks the FB_TOTAL series"
jq -e ".segments[0].samples[-1][$idx + 1] == 81559" "$WORK/hist.json" > /dev/null \
    || fail "history value"
ok "history backfill ring"

# bad parameters: 400 naming the parameter; unknown paths: 404 JSON
code=$(curl -s -o "$WORK/400.json" -w '%{http_code}' "${AUTH[@]}" \
    "$AGENT_URL/api/v1/history?since=yesterday")
[ "$code" = 400 ] || fail "bad since gave $code"
jq -e '.error.field == "since"' "$WORK/400.json" > /dev/null || fail "400 names since"
code=$(curl -s -o "$WORK/400b.json" -w '%{http_code}' "${AUTH[@]}" \
    "$AGENT_URL/api/v1/history?since=$now&until=1")
jq -e '.error.field == "until"' "$WORK/400b.json" > /dev/null || fail "400 names until"
code=$(curl -s -o "$WORK/404.json" -w '%{http_code}' "$AGENT_URL/nope")
[ "$code" = 404 ] || fail "unknown path gave $code"
jq -e '.error.code == "not_found"' "$WORK/404.json" > /dev/null || fail "404 body"
code=$(curl -s -o /dev/null -w '%{http_code}' -X POST "$AGENT_URL/metrics")
[ "$code" = 405 ] || fail "POST /metrics gave $code"
ok "errors are JSON and name the field"

jq -e '.status == "ok"' <(curl -fsS "$AGENT_URL/healthz") > /dev/null || fail "healthz"
ok "healthz"

# config file: settings apply, flags win, bad files are refused by name
port2=$(free_port)
cat > "$WORK/agent.yaml" <<YAML
listen: 127.0.0.1:1
interval_ms: 300
hostname: from-config
YAML
FAKE_NVML_SCENARIO="$WORK/api.scenario" "$AGENT" --config "$WORK/agent.yaml" \
    --listen "127.0.0.1:$port2" --nvml-lib "$FAKE_NVML" > "$WORK/cfg.log" 2>&1 &
PIDS+=($!)
wait_http "http://127.0.0.1:$port2/healthz"
curl -fsS "http://127.0.0.1:$port2/metrics" -o "$WORK/cfg.txt"
grep -q 'Hostname="from-config"' "$WORK/cfg.txt" \
    || fail "config hostname"
grep -q '^gpufleet_agent_sample_interval_seconds 0.3$' "$WORK/cfg.txt" \
    || fail "config interval"
printf 'interval_ms: 5\n' > "$WORK/bad.yaml"
if "$AGENT" --config "$WORK/bad.yaml" > "$WORK/bad.log" 2>&1; then fail "bad config accepted"; fi
grep -q 'interval_ms' "$WORK/bad.log" || fail "bad config error does not name interval_ms"
if "$AGENT" --interval 10 > "$WORK/badflag.log" 2>&1; then fail "bad flag accepted"; fi
grep -q 'interval_ms' "$WORK/badflag.log" || fail "bad flag error"
"$AGENT" --version | grep -q '^gpufleet-agent ' || fail "--version"
"$AGENT" --help | grep -q -- '--nvml-lib' || fail "--help"
ok "config file, flags win, bad settings refused by name"

# an agent without a token serves /metrics but keeps its history API shut
code=$(curl -s -o "$WORK/nohist.json" -w '%{http_code}' "http://127.0.0.1:$port2/api/v1/history")
[ "$code" = 403 ] || fail "history of a tokenless agent gave $code"
jq -e '.error.code == "token_required" and .error.field == "token_file"' "$WORK/nohist.json" > /dev/null \
    || fail "tokenless history error: $(cat "$WORK/nohist.json")"
ok "no token, no history API"
