#!/usr/bin/env bash
# POST /api/v1/import/prometheus takes Prometheus text with timestamps (as
# VictoriaMetrics does); /api/v1/export gives the same samples back; bad
# bodies get a 400 naming the line and change nothing stored before them.
source "$(dirname "$0")/lib.sh"

start_server srv
now=$(date +%s)000
awk -v t0="$((now - 600000))" 'BEGIN {
    for (i = 0; i < 300; i++) {
        t = t0 + i * 1000 + (i % 7) - 3
        printf "imp_power_watts{gpu=\"0\",instance=\"h9:9445\",job=\"imp\"} %.3f %.0f\n", 600 + (i % 50) / 8, t
        printf "imp_util{gpu=\"0\",instance=\"h9:9445\",job=\"imp\"} %d %.0f\n", i % 101, t
        printf "imp_energy_total{gpu=\"0\",instance=\"h9:9445\",job=\"imp\"} %.0f %.0f\n", 1000000 + i * 631950, t
    }
    printf "imp_nan{instance=\"h9:9445\",job=\"imp\"} NaN %.0f\n", t0
    printf "imp_inf{instance=\"h9:9445\",job=\"imp\"} +Inf %.0f\n", t0
}' > "$WORK/import.txt"
code=$(scurl -s -o "$WORK/imp.json" -w '%{http_code}' --data-binary @"$WORK/import.txt" \
    "$SERVER_URL/api/v1/import/prometheus")
[ "$code" = 200 ] || fail "import gave $code: $(cat "$WORK/imp.json")"
jq -e '.imported == 902' "$WORK/imp.json" > /dev/null || fail "imported: $(cat "$WORK/imp.json")"
ok "imported 902 samples"

query /api/v1/export '{job="imp"}' --data-urlencode "start=$(( now / 1000 - 700 ))" > "$WORK/export.txt"
sort "$WORK/import.txt" > "$WORK/a.txt"
# values come back in the shortest form; normalise both sides through awk
awk -v OFMT=%.17g -v CONVFMT=%.17g '{ $(NF-1) = $(NF-1) + 0; print }' "$WORK/a.txt" | sort > "$WORK/a.norm"
awk -v OFMT=%.17g -v CONVFMT=%.17g '{ $(NF-1) = $(NF-1) + 0; print }' "$WORK/export.txt" | sort > "$WORK/b.norm"
diff "$WORK/a.norm" "$WORK/b.norm" > "$WORK/diff.txt" || { head "$WORK/diff.txt"; fail "export differs from import"; }
ok "export returns exactly what was imported (NaN and +Inf included)"

query /api/v1/query_range 'imp_energy_total' --data-urlencode "start=$(( now / 1000 - 600 ))" \
    --data-urlencode "end=$(( now / 1000 - 300 ))" --data-urlencode step=60 --data-urlencode fn=rate \
    | jq -e '.data.tier == "1m" and (.data.result[0].values | length) >= 4 and ([.data.result[0].values[:-1][][1] | tonumber] | add / length | (. > 619000 and . < 645000))' \
    > /dev/null || fail "rate over the 1m roll-up: $(query /api/v1/query_range 'imp_energy_total' --data-urlencode "start=$(( now / 1000 - 600 ))" --data-urlencode step=60 --data-urlencode fn=rate)"
ok "imported counters give a rate of ~631950 mJ/s (within 2% on average) from the 1-minute roll-up"

# bad bodies
printf 'good_a{job="imp2",instance="x"} 1 %s\nbroken{ 2\ngood_b{job="imp2",instance="x"} 3\n' "$now" > "$WORK/bad.txt"
code=$(scurl -s -o "$WORK/bad.json" -w '%{http_code}' --data-binary @"$WORK/bad.txt" \
    "$SERVER_URL/api/v1/import/prometheus")
[ "$code" = 400 ] || fail "bad import gave $code"
jq -e '.error.field == "body" and (.error.message | test("line 2")) and (.error.message | test("1 samples before it were imported"))' "$WORK/bad.json" > /dev/null \
    || fail "bad import error: $(cat "$WORK/bad.json")"
query /api/v1/latest 'good_a' | jq -e '.data.result | length == 1' > /dev/null || fail "line 1 (before the bad one) lost"
query /api/v1/latest 'good_b' | jq -e '.data.result | length == 0' > /dev/null || fail "line 3 stored"
code=$(scurl -s -o /dev/null -w '%{http_code}' -X POST "$SERVER_URL/api/v1/import/prometheus")
[ "$code" = 400 ] || fail "empty import gave $code"
head -c 70000 /dev/zero | tr '\0' 'a' > "$WORK/long.txt"
code=$(scurl -s -o "$WORK/long.json" -w '%{http_code}' --data-binary @"$WORK/long.txt" \
    "$SERVER_URL/api/v1/import/prometheus")
[ "$code" = 400 ] || fail "a 70 KB line gave $code"
printf '\xff\xfe garbage\x00\x01\n' | scurl -s -o /dev/null -w '%{http_code}' --data-binary @- \
    "$SERVER_URL/api/v1/import/prometheus" | grep -q 400 || fail "binary garbage"
curl -fsS "$SERVER_URL/healthz" | jq -e '.status == "ok"' > /dev/null || fail "server unhealthy"
query /api/v1/series '{job="imp"}' | jq -e '.data | length == 5' > /dev/null || fail "stored data changed"
ok "bad imports: 400 naming the line; nothing before it lost; the server is fine"

# bad query parameters name the parameter
for p in 'start=yesterday|start' 'step=-1|step' 'fn=median|fn' 'match=up{|match' 'tier=5m|tier' \
    'match={__name__=~"(.*)(.*)\\2x"}|match'; do
    kv=${p%|*} field=${p##*|}
    args=(--data-urlencode "$kv")
    [ "$field" != match ] && args+=(--data-urlencode 'match=imp_util')
    code=$(scurl -s -o "$WORK/q.json" -w '%{http_code}' -G "$SERVER_URL/api/v1/query_range" "${args[@]}")
    [ "$code" = 400 ] || fail "$kv gave $code"
    jq -e --arg f "$field" '.error.field == $f' "$WORK/q.json" > /dev/null || fail "$kv: $(cat "$WORK/q.json")"
done
ok "bad query parameters: 400 naming the parameter"

# a range query over many series (the overview's heatmap of a big fleet:
# 8,000 GPUs): bounded by its points, not by a series count
now=$(date +%s)
awk -v t="$((now - 30))000" 'BEGIN { for (h = 0; h < 3000; h++) printf "imp_fleet_util{gpu=\"%d\",host=\"h%04d\"} %d %s\n", h % 8, h, h % 101, t }' \
    > "$WORK/fleet.txt"
code=$(scurl -s -o "$WORK/imp.json" -w '%{http_code}' --data-binary @"$WORK/fleet.txt" "$SERVER_URL/api/v1/import/prometheus")
[ "$code" = 200 ] || fail "fleet import gave $code: $(cat "$WORK/imp.json")"
code=$(scurl -s -o "$WORK/q.json" -w '%{http_code}' -G "$SERVER_URL/api/v1/query_range" --data-urlencode 'match=imp_fleet_util' \
    --data-urlencode "start=$((now - 3600))" --data-urlencode "end=$now" --data-urlencode step=60 --data-urlencode fn=avg)
[ "$code" = 200 ] || fail "a range query over 3,000 series gave $code: $(head -c 300 "$WORK/q.json")"
[ "$(jq '.data.result | length' "$WORK/q.json")" = 3000 ] || fail "series: $(jq '.data.result | length' "$WORK/q.json")"
# too many points (3,000 series x 3,601 one-second steps) is refused, naming step
code=$(scurl -s -o "$WORK/q.json" -w '%{http_code}' -G "$SERVER_URL/api/v1/query_range" --data-urlencode 'match=imp_fleet_util' \
    --data-urlencode "start=$((now - 3600))" --data-urlencode "end=$now" --data-urlencode step=1)
[ "$code" = 400 ] && jq -e '.error.field == "step" and (.error.message | test("points"))' "$WORK/q.json" > /dev/null \
    || fail "too many points: $code $(head -c 300 "$WORK/q.json")"
ok "a range query over 3,000 series answers all of them (no series cap); 10.8 M points is refused naming step"
