#!/usr/bin/env bash
# BMC health over IPMI-over-LAN against OpenIPMI's ipmi_sim on loopback (a
# simulated BMC: SDRs compiled from tests/fixtures/ipmi/bmc.sdrs, sensor
# values read from files the test writes): the server stores the BMC's
# sensors under ipmi_exporter's names with the simulator's values; a
# temperature past its critical threshold fires the built-in alert; a wrong
# password is a clear per-server error (ipmi_up 0, the BMC list and the
# fleet health say why); the password is never shown.
source "$(dirname "$0")/lib.sh"
command -v ipmi_sim > /dev/null && command -v sdrcomp > /dev/null || fail "ipmi_sim/sdrcomp missing (scripts/deps.sh test)"

# ---- the simulated BMC ----
B="$WORK/bmc"
mkdir -p "$B/state"
sdrcomp -r -o "$B/sdrs.raw" "$SRC_DIR/tests/fixtures/ipmi/bmc.sdrs" || fail "sdrcomp"
echo 60 > "$B/temp"  # degrees C
echo 100 > "$B/fan"  # x 50 = 5000 rpm
IPMI_PORT=$(free_port)
cat > "$B/lan.conf" <<EOF
name "gfsim"
set_working_mc 0x20
  startlan 1
    addr 127.0.0.1 $IPMI_PORT
    priv_limit admin
    allowed_auths_callback md5
    allowed_auths_user md5
    allowed_auths_operator md5
    allowed_auths_admin md5
    guid a123456789abcdefa123456789abcdef
  endlan
  user 2 true "ADMIN" "bmc-pass-42" admin 10 md5
EOF
{
    echo "mc_setbmc 0x20"
    echo "mc_add 0x20 0 no-device-sdrs 0x23 9 8 0x9f 0x1291 0xf02"
    # each SDR record: 5 header bytes, the 5th the length of the rest
    python3 - "$B/sdrs.raw" <<'PY'
import sys
d = open(sys.argv[1], 'rb').read()
i = 0
while i < len(d):
    n = d[i + 4] + 5
    print('main_sdr_add 0x20 ' + ' '.join('0x%02x' % b for b in d[i:i + n]))
    i += n
PY
    echo "sel_enable 0x20 1000 0x0a"
    echo "sensor_add 0x20 0 1 0x01 0x01 poll 200 file \"$B/temp\""
    echo "sensor_set_threshold 0x20 0 1 settable 111000 100 90 80 0 0 0"
    # upper threshold events go to the SEL
    echo "sensor_set_event_support 0x20 0 1 enable scanning per-state 000111111000000 000111111000000 000111111000000 000111111000000"
    echo "sensor_add 0x20 0 2 0x04 0x01 poll 200 file \"$B/fan\""
    echo "sensor_set_threshold 0x20 0 2 settable 000111 0 0 0 30 20 10"
    echo "mc_enable 0x20"
} > "$B/sim.emu"
ipmi_sim -c "$B/lan.conf" -f "$B/sim.emu" -s "$B/state" -n > "$WORK/ipmi_sim.log" 2>&1 &
PIDS+=($!)
sleep 0.5

cat > "$WORK/srv.yaml" <<Y
bmc_interval_ms: 1000
alert_eval_interval_ms: 300
Y
start_server srv --config "$WORK/srv.yaml"
for n in host-1 host-2; do
    api POST /api/v1/servers "{\"name\":\"$n\",\"address\":\"127.0.0.1\",\"agent_port\":$(free_port)}" > /dev/null
    [ "$HTTP_CODE" = 201 ] || fail "add $n: $HTTP_CODE"
done
id_of() { api GET /api/v1/servers | jq ".servers[] | select(.name == \"$1\") | .id"; }
api PUT "/api/v1/servers/$(id_of host-1)/bmc" "{\"address\":\"127.0.0.1:$IPMI_PORT\",\"user\":\"ADMIN\",\"password\":\"bmc-pass-42\"}" > /dev/null
[ "$HTTP_CODE" = 200 ] || fail "set the BMC: $HTTP_CODE $(cat "$WORK/api.out")"
api PUT "/api/v1/servers/$(id_of host-2)/bmc" "{\"address\":\"127.0.0.1:$IPMI_PORT\",\"user\":\"ADMIN\",\"password\":\"wrong-pass\"}" > /dev/null
api PUT "/api/v1/servers/$(id_of host-1)/bmc" '{"address":"bmc; rm -rf /","user":"ADMIN"}' > /dev/null
[ "$HTTP_CODE" = 400 ] && jq -e '.error.field == "address"' "$WORK/api.out" > /dev/null || fail "a bad address: $HTTP_CODE"

P="$SERVER_URL/prometheus/api/v1"
value() { scurl -fsS "$P/query" --data-urlencode "query=$1" | jq -r '.data.result[0].value[1] // "none"'; }
for _ in $(seq 1 100); do
    [ "$(value 'ipmi_temperature_celsius{server="host-1"}')" = 60 ] && break
    sleep 0.1
done
[ "$(value 'ipmi_temperature_celsius{server="host-1",name="CPU Temp",job="ipmi"}')" = 60 ] \
    || fail "CPU temperature: $(scurl -fsS "$P/query" --data-urlencode 'query={job="ipmi"}')"
[ "$(value 'ipmi_fan_speed_rpm{server="host-1",name="Fan 1"}')" = 5000 ] || fail "fan: $(value 'ipmi_fan_speed_rpm')"
[ "$(value 'ipmi_temperature_state{server="host-1"}')" = 0 ] || fail "temperature state"
[ "$(value 'ipmi_up{server="host-1"}')" = 1 ] || fail "ipmi_up host-1"
ok "the BMC's sensors stored as ipmi_exporter names: CPU Temp 60 C, Fan 1 5000 rpm, states nominal"

# ---- a wrong password: clear, per server ----
for _ in $(seq 1 100); do
    [ "$(value 'ipmi_up{server="host-2"}')" = 0 ] && break
    sleep 0.1
done
[ "$(value 'ipmi_up{server="host-2"}')" = 0 ] || fail "ipmi_up host-2"
api GET /api/v1/bmcs > "$WORK/bmcs.json"
jq -e '.bmcs[] | select(.server == "host-2") | .status == "down" and (.detail | test("refused user ADMIN: wrong user name or password"))' \
    "$WORK/bmcs.json" > /dev/null || fail "host-2's reason: $(cat "$WORK/bmcs.json")"
jq -e '.bmcs[] | select(.server == "host-1") | .status == "ok" and .password_set and .sensors >= 2' "$WORK/bmcs.json" > /dev/null \
    || fail "host-1: $(cat "$WORK/bmcs.json")"
grep -q 'bmc-pass-42\|wrong-pass' "$WORK/bmcs.json" "$WORK"/*.log && fail "a BMC password was shown or logged"
api GET /api/v1/health/fleet | jq -e '.bmcs[] | select(.server == "host-2") | .status == "down"' > /dev/null \
    || fail "fleet health: $(api GET /api/v1/health/fleet | jq -c .bmcs)"
ok "a wrong BMC password: ipmi_up 0 and '$(jq -r '.bmcs[] | select(.server == "host-2") | .detail' "$WORK/bmcs.json")'"

# ---- past the critical threshold: the built-in alert fires ----
echo 95 > "$B/temp"
# up to 30 s: under ASan on a loaded machine a BMC poll (1 s) can take several
for _ in $(seq 1 300); do
    api GET '/api/v1/alerts?state=firing' | jq -e '.alerts[] | select(.rule == "BmcTemperatureCritical")' > /dev/null && break
    sleep 0.1
done
api GET '/api/v1/alerts?state=firing' | jq -e '.alerts[] | select(.rule == "BmcTemperatureCritical") | .labels.server == "host-1"' \
    > /dev/null || fail "no BmcTemperatureCritical: state $(value 'ipmi_temperature_state{server="host-1"}')"
[ "$(value 'ipmi_temperature_celsius{server="host-1"}')" = 95 ] || fail "95 C not read"
ok "95 C past the 90 C threshold: ipmi_temperature_state 2 and BmcTemperatureCritical firing for host-1"

# ---- the SEL entry the crossing made: a fleet event of host-1 ----
for _ in $(seq 1 100); do
    api GET "/api/v1/servers/$(id_of host-1)/events" > "$WORK/ev.json"
    jq -e '.events[] | select(.kind == "sel" and (.detail | test("CPU Temp: Upper Critical")))' "$WORK/ev.json" > /dev/null && break
    sleep 0.1
done
jq -e '.events[] | select(.kind == "sel" and (.detail | test("CPU Temp: Upper Critical")))' "$WORK/ev.json" > /dev/null \
    || fail "no SEL event: $(cat "$WORK/ev.json")"
n1=$(jq '[.events[] | select(.kind == "sel")] | length' "$WORK/ev.json")
sleep 2.5 # more polls: each record once
n2=$(api GET "/api/v1/servers/$(id_of host-1)/events" | jq '[.events[] | select(.kind == "sel")] | length')
[ "$n1" = "$n2" ] || fail "SEL records taken again: $n1 then $n2"
ok "the SEL's threshold event is host-1's fleet event: $(jq -r '[.events[] | select(.kind == "sel")][0].detail' "$WORK/ev.json")"

# ---- the SEL cleared on the BMC (FreeIPMI's ipmi-sel): said, and the
# records after it (their ids start over) taken, not skipped as old ----
sel_events() { api GET "/api/v1/servers/$(id_of host-1)/events" | jq -c '[.events[] | select(.kind == "sel") | .detail]'; }
ipmi-sel -D LAN -h "127.0.0.1:$IPMI_PORT" -u ADMIN -p bmc-pass-42 -a MD5 -l ADMIN --clear > "$WORK/clear.out" 2>&1 ||
    fail "ipmi-sel --clear: $(cat "$WORK/clear.out")"
for _ in $(seq 1 100); do sel_events | grep -q "BMC SEL cleared" && break; sleep 0.1; done
sel_events | grep -q "BMC SEL cleared: its newest record was #[0-9]*, now it is empty" || fail "the cleared SEL was not said: $(sel_events)"
before=$(sel_events | jq length)
echo 50 > "$B/temp"
sleep 1
echo 96 > "$B/temp"
for _ in $(seq 1 150); do [ "$(sel_events | jq length)" -gt "$before" ] && break; sleep 0.1; done
sel_events | jq -e --argjson n "$before" '.[:(length - $n)] | any(test("CPU Temp: Upper Critical"))' > /dev/null ||
    fail "a record after the clear was not taken: $(sel_events)"
ok "a cleared SEL is a fleet event ($(sel_events | jq -r '[.[] | select(test("cleared"))][0]')), and the records after it are taken though their ids start over"

# ---- a server removed from gpufleet takes its BMC with it ----
api DELETE "/api/v1/servers/$(id_of host-2)" > /dev/null
[ "$HTTP_CODE" = 204 ] || fail "delete host-2: $HTTP_CODE"
for _ in $(seq 1 100); do
    api GET /api/v1/bmcs | jq -e '[.bmcs[].server] == ["host-1"]' > /dev/null && break
    sleep 0.1
done
api GET /api/v1/bmcs | jq -e '[.bmcs[].server] == ["host-1"]' > /dev/null || fail "host-2's BMC outlived it: $(api GET /api/v1/bmcs)"
ok "a removed server's BMC is dropped at the next round"
