#!/usr/bin/env bash
# Benchmark: `gpufleet fleet apply` over SSH to N worker hosts (Debian 12
# containers with systemd and sshd, the test's image) against the anchor, one
# host applied alone, in one run. Budget: N hosts within 2x the slowest
# single host; one install under 5 s on loopback. Each apply installs from
# scratch (the agent uninstalled with --prune between runs).
# usage: bench/fleet_apply.sh [hosts] [runs]   (default 8 3; as many hosts
# as this machine holds: each is a systemd container of ~40 MB)
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-8}
runs=${2:-3}
srv=${SERVER:-build/gpufleet}
[ -x "$srv" ] || scripts/build.sh Release > /dev/null
WORK=$(mktemp -d /tmp/gf-bench-fleet.XXXXXX)
PIDS=() AFTER_STOP=()
fail() { echo "FAIL: $*" >&2; exit 1; }
cleanup() {
    kill "${PIDS[@]}" 2>/dev/null || true
    wait 2>/dev/null || true
    for c in "${AFTER_STOP[@]}"; do eval "$c" || true; done
    rm -rf "$WORK"
}
trap cleanup EXIT
port() { while :; do p=$((10000 + RANDOM % 22000)); (exec 3<>/dev/tcp/127.0.0.1/$p) 2>/dev/null || { echo $p; return; }; done; }
source tests/integration/worker_image.sh
WORKER_IMAGE=$(worker_image)

printf 'bench-pass-12345\n' | "$srv" user add admin --role admin --password-stdin --data "$WORK/d" > /dev/null
export GPUFLEET_TOKEN=$("$srv" token add admin bench --data "$WORK/d")
sp=$(port)
export GPUFLEET_URL=http://127.0.0.1:$sp
"$srv" serve --listen "127.0.0.1:$sp" --data "$WORK/d" --agent-binary "${AGENT_BIN:-$(dirname "$srv")/gpufleet-agent}" \
    > "$WORK/srv.log" 2>&1 &
PIDS+=($!)
SRV_PID=$!
# the server's own CPU seconds: the workers share this machine's cores, so
# N hosts at once is CPU-bound here in a way N real hosts are not
cpu_s() { awk -v hz="$(getconf CLK_TCK)" '{ printf "%.2f", ($14 + $15) / hz }' "/proc/$SRV_PID/stat"; }
for _ in $(seq 1 100); do curl -fs -o /dev/null "$GPUFLEET_URL/healthz" && break; sleep 0.1; done
pub=$("$srv" ssh-key --data "$WORK/d")
declare -A SSH AGENT
for i in $(seq 1 "$n"); do
    SSH[$i]=$(port); AGENT[$i]=$(port)
    start_worker "gf-bench-$$-$i" "${SSH[$i]}" "${AGENT[$i]}"
    podman exec -i "gf-bench-$$-$i" sh -c 'mkdir -p -m 700 /root/.ssh && cat > /root/.ssh/authorized_keys' <<< "$pub"
done
fleet() { # the hosts named
    [ $# = 0 ] && { printf 'site: bench\nservers: []\n'; return; }
    printf 'site: bench\nservers:\n'
    for i in "$@"; do printf '  - {name: w%s, address: 127.0.0.1, agent_port: %s, gpu: false, ssh: {port: %s}}\n' \
        "$i" "${AGENT[$i]}" "${SSH[$i]}"; done
}
apply_ms() { # FILE [--prune]: the apply's wall time and its slowest host, ms
    "$srv" fleet apply -c "$1" ${2:-} > "$WORK/apply.out" 2>&1 || fail "apply: $(tail -5 "$WORK/apply.out")"
    curl -fsS -H "Authorization: Bearer $GPUFLEET_TOKEN" "$GPUFLEET_URL/api/v1/fleet/apply" \
        | jq -r '"\(.finished_ms - .started_ms) \([.hosts[] | select(.state == "ok") | .ms] | max // 0)"'
}
fleet > "$WORK/none.yaml"
singles=() totals=() ratios=()
for r in $(seq 1 "$runs"); do
    # the anchor: each host alone; its slowest
    slow=0
    for i in $(seq 1 "$n"); do
        fleet "$i" > "$WORK/one.yaml"
        read -r t _ < <(apply_ms "$WORK/one.yaml")
        slow=$(( t > slow ? t : slow ))
        apply_ms "$WORK/none.yaml" --prune > /dev/null
    done
    fleet $(seq 1 "$n") > "$WORK/all.yaml"
    c0=$(cpu_s)
    read -r total _ < <(apply_ms "$WORK/all.yaml")
    c1=$(cpu_s)
    apply_ms "$WORK/none.yaml" --prune > /dev/null
    singles+=("$slow") totals+=("$total")
    ratios+=("$(awk -v a="$total" -v b="$slow" 'BEGIN { printf "%.2f", a / b }')")
    echo "run $r: $n hosts together ${total} ms; slowest host alone ${slow} ms; ratio ${ratios[-1]};" \
        "gpufleet's own CPU for the $n: $(awk -v a="$c0" -v b="$c1" 'BEGIN { printf "%.2f", b - a }') s" \
        "(this machine: $(nproc) cores for the server and all $n hosts)"
done
med() { printf '%s\n' "$@" | sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
echo "median: $n hosts in $(med "${totals[@]}") ms, slowest single host $(med "${singles[@]}") ms (budget < 5000)," \
    "ratio $(med "${ratios[@]}") (budget <= 2.0)"
