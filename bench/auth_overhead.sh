#!/usr/bin/env bash
# Benchmark: what checking a credential adds to a request. The same route
# (/healthz: the handler does the same work either way) is hit with wrk with
# no credential (the anchor), with an API token and with a session cookie,
# interleaved in one run; the server's CPU time per request comes from
# /proc/PID/stat, so the difference is the cost of authentication alone.
# Target (issue 4): under 20 us per request. Also times logins (argon2id).
# usage: bench/auth_overhead.sh [seconds per wrk run] [rounds]   (default 5 3)
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-5}
rounds=${2:-3}
srv=build/gpufleet
[ -x "$srv" ] || scripts/build.sh Release > /dev/null
command -v wrk > /dev/null || { echo "wrk missing: scripts/deps.sh bench" >&2; exit 1; }
work=$(mktemp -d /tmp/gf-bench-auth.XXXXXX)
pids=()
trap 'kill "${pids[@]}" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"' EXIT
port() { echo $((20000 + RANDOM % 10000)); }
median() { sort -g | awk '{a[NR] = $1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }

echo 'bench-root-pass-1' | "$srv" user add admin --role admin --password-stdin --data "$work/d" > /dev/null
tok=$("$srv" token add admin bench --data "$work/d")
p=$(port)
"$srv" serve --listen 127.0.0.1:$p --data "$work/d" --log-level warn > "$work/server.log" 2>&1 &
spid=$!
pids+=($spid)
for _ in $(seq 1 100); do curl -fsS -o /dev/null http://127.0.0.1:$p/healthz 2>/dev/null && break; sleep 0.05; done
cookie=$(curl -s -D - -o /dev/null --data '{"username":"admin","password":"bench-root-pass-1"}' \
    http://127.0.0.1:$p/api/v1/auth/login | grep -io 'gf_session=[^;]*')
[ -n "$cookie" ] || { echo "login failed" >&2; exit 1; }
curl -fsS -o /dev/null -H "Authorization: Bearer $tok" http://127.0.0.1:$p/api/v1/auth/me
curl -fsS -o /dev/null -H "Cookie: $cookie" http://127.0.0.1:$p/api/v1/auth/me

ticks() { awk '{print $14 + $15}' /proc/$spid/stat; }
hz=$(getconf CLK_TCK)
run() { # NAME [header]
    local name=$1 t0 t1 out reqs
    shift
    t0=$(ticks)
    out=$(wrk -t2 -c8 -d"${secs}s" --latency "$@" http://127.0.0.1:$p/healthz)
    t1=$(ticks)
    reqs=$(echo "$out" | awk '/requests in/ {print $1}')
    # CPU microseconds per request, and the p50 latency in microseconds
    awk -v a=$t0 -v b=$t1 -v hz=$hz -v n=$reqs 'BEGIN {printf "%.3f ", (b - a) / hz * 1e6 / n}' >> "$work/$name.cpu"
    echo >> "$work/$name.cpu"
    echo "$out" | awk '/^ +50%/ {v = $2; if (v ~ /us$/) {sub(/us/, "", v); print v} else if (v ~ /ms$/) {sub(/ms/, "", v); print v * 1000}}' >> "$work/$name.p50"
    echo "$out" | awk '/Requests\/sec/ {print $2}' >> "$work/$name.rps"
}
for r in $(seq 1 "$rounds"); do
    run none
    run token -H "Authorization: Bearer $tok"
    run cookie -H "Cookie: $cookie"
    echo "round $r: CPU us/request none $(tail -1 "$work/none.cpu") token $(tail -1 "$work/token.cpu") cookie $(tail -1 "$work/cookie.cpu")"
done
for v in none token cookie; do
    eval "${v}_cpu=$(median < "$work/$v.cpu") ${v}_p50=$(median < "$work/$v.p50") ${v}_rps=$(median < "$work/$v.rps")"
done

# logins: each is one argon2id (64 MiB, 2 passes); run one after another
t0=$(date +%s%N)
for _ in $(seq 1 10); do
    curl -fsS -o /dev/null --data '{"username":"admin","password":"bench-root-pass-1"}' http://127.0.0.1:$p/api/v1/auth/login
done
login_ms=$(( ($(date +%s%N) - t0) / 10000000 ))

echo
echo "auth overhead on /healthz, medians of $rounds rounds of ${secs}s (wrk -t2 -c8):"
printf "  %-8s %10s %14s %12s\n" "" "req/s" "CPU us/req" "p50 us"
printf "  %-8s %10.0f %14.2f %12.1f\n" none "$none_rps" "$none_cpu" "$none_p50"
printf "  %-8s %10.0f %14.2f %12.1f\n" token "$token_rps" "$token_cpu" "$token_p50"
printf "  %-8s %10.0f %14.2f %12.1f\n" cookie "$cookie_rps" "$cookie_cpu" "$cookie_p50"
awk -v n=$none_cpu -v t=$token_cpu -v c=$cookie_cpu 'BEGIN {
    printf "added by a token: %.2f us CPU per request (ratio %.2fx); by a session: %.2f us (%.2fx); target < 20 us\n",
        t - n, t / n, c - n, c / n }'
echo "login (argon2id): ${login_ms} ms each, sequential"
