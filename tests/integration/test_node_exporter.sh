#!/usr/bin/env bash
# The agent and a real prometheus-node-exporter, scraped at the same moment,
# agree on the host: memory total equal, CPU seconds within 2%, network byte
# counters within 1%.
source "$(dirname "$0")/lib.sh"
NE=$(command -v prometheus-node-exporter || true)
[ -n "$NE" ] || fail "prometheus-node-exporter missing (scripts/deps.sh test)"

start_agent host "gpu h100" --interval 100
NE_PORT=$(free_port)
"$NE" --web.listen-address="127.0.0.1:$NE_PORT" > "$WORK/node_exporter.log" 2>&1 &
PIDS+=($!)
wait_http "http://127.0.0.1:$NE_PORT/metrics"

curl -fsS "$AGENT_URL/metrics" -o "$WORK/agent.txt" &
a=$!
curl -fsS "http://127.0.0.1:$NE_PORT/metrics" -o "$WORK/ne.txt" &
b=$!
wait $a $b

mem_a=$(metric_value "$WORK/agent.txt" 'node_memory_MemTotal_bytes ')
mem_b=$(metric_value "$WORK/ne.txt" 'node_memory_MemTotal_bytes ')
awk -v a="$mem_a" -v b="$mem_b" 'BEGIN { exit !(a + 0 == b + 0 && a > 0) }' \
    || fail "MemTotal: agent $mem_a, node_exporter $mem_b"
ok "memory total equal ($mem_a bytes)"

# compare PREFIX TOLERANCE SLACK: every series of the family in both outputs
compare() {
    local prefix=$1 tol=$2 slack=$3
    awk -v prefix="$prefix" -v tol="$tol" -v slack="$slack" '
        FNR == 1 { file++ }
        index($0, prefix) == 1 {
            key = $1; val = $2 + 0
            if (file == 1) a[key] = val; else b[key] = val
        }
        END {
            n = 0; bad = 0
            for (k in b) {
                if (!(k in a)) { print "missing in agent: " k; bad++; continue }
                d = a[k] - b[k]; if (d < 0) d = -d
                m = a[k] > b[k] ? a[k] : b[k]
                if (d > tol * m + slack) { printf "%s agent=%s node_exporter=%s\n", k, a[k], b[k]; bad++ }
                n++
            }
            printf "%d series compared\n", n
            exit (bad > 0 || n == 0)
        }' "$WORK/agent.txt" "$WORK/ne.txt"
}
compare 'node_cpu_seconds_total{' 0.02 0.02 || fail "CPU seconds differ by more than 2%"
ok "CPU seconds within 2%"
compare 'node_network_receive_bytes_total{' 0.01 4096 || fail "network bytes differ by more than 1%"
compare 'node_network_transmit_bytes_total{' 0.01 4096 || fail "network bytes differ by more than 1%"
ok "network byte counters within 1%"
compare 'node_filesystem_size_bytes{' 0 0 || fail "filesystem sizes differ"
compare 'node_disk_reads_completed_total{' 0.01 16 || fail "disk reads differ"
ok "filesystems and disks agree"
