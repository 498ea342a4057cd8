#!/usr/bin/env bash
# Containers, side by side with the engine itself, in one run:
#  1. create-to-running: gpufleet's POST /api/v1/containers (quota, placement,
#     ledgers, a call to the agent, the agent's create and start) against
#     the same container made with the engine's own API (create + start on
#     dockerd's socket); medians of ROUNDS each, alternating, and the ratio
#     (target: gpufleet adds under 10 %).
#  2. the ledger decision of a create (quota, placement, the row and its
#     GPUs, with the lock held: the summary gpufleet_server_container_
#     decision_seconds), mean, p50/p90/p99 and the slowest; target: p99
#     under 1 ms.
#  3. listing LIST_N containers across HOSTS hosts: the median of 30
#     GET /api/v1/containers (target: 1,000 across 10 hosts under 100 ms).
# The HOSTS agents share one dockerd (one machine), so the reconcile loop
# reports each host's containers as orphans on the others: expected here.
# usage: [ROUNDS=10] [HOSTS=10] [LIST_N=1000] [BUILD=build] bench/containers.sh   (root;
# scripts/build.sh first; LIST_N real containers on a vfs dockerd take
# minutes and about 1 MB of disk each)
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-10}
HOSTS=${HOSTS:-10}
LIST_N=${LIST_N:-1000}
B=${BUILD:-$PWD/build}
export AGENT=$B/gpufleet-agent SERVER=$B/gpufleet SRC_DIR=$PWD
export FAKE_NVML=$B/tests/fakes/libnvidia-ml.so.1
source tests/integration/lib.sh
source tests/integration/engines.sh
source bench/lib.sh

ms() { echo $((($(date +%s%N) - $1) / 1000000)); }

start_dockerd
import_image "$DOCKER_SOCK"
head -c 24 /dev/urandom | base64 | tr -d '/+=' > "$WORK/agent.token"
TOK=$(cat "$WORK/agent.token")
PORTS=()
for h in $(seq 1 "$HOSTS"); do
    PATH="$FAKE_HOOK_DIR:$PATH" start_agent "a$h" "gpu h100 count=8
seed $h" --token-file "$WORK/agent.token" --engine-socket "$DOCKER_SOCK" --workspace-root "$WORK/ws" --interval 1000
    PORTS+=("$AGENT_PORT")
done
cat > "$WORK/server.yaml" << EOF
container_host_ip: 127.0.0.1
container_default_memory_mib: 32
container_default_cpus: 1
quota_containers: 100000
quota_gpus: 100000
quota_cpus: 1000000
quota_memory_mib: 100000000
container_reconcile_ms: 5000
EOF
start_server s --config "$WORK/server.yaml"
for h in $(seq 1 "$HOSTS"); do
    api POST /api/v1/servers "{\"name\":\"gpu-$h\",\"address\":\"127.0.0.1\",\"agent_port\":${PORTS[$((h - 1))]},\"agent_token\":\"$TOK\"}" > /dev/null
done
for _ in $(seq 1 100); do
    [ "$(api GET /api/v1/gpus | jq '.gpus | length')" = $((HOSTS * 8)) ] && break
    sleep 0.2
done

# 1. create-to-running, alternating so drift hits both alike
: > "$WORK/engine.ms"
: > "$WORK/gpufleet.ms"
for r in $(seq 1 "$ROUNDS"); do
    t=$(date +%s%N)
    id=$(engine "$DOCKER_SOCK" POST "/v1.41/containers/create?name=e$r" \
        '{"Image":"gf-busybox:1","Cmd":["sleep","600"],"Env":["NVIDIA_VISIBLE_DEVICES=void"],"HostConfig":{"Init":true,"NanoCpus":1000000000,"Memory":33554432,"RestartPolicy":{"Name":"unless-stopped"},"Binds":["'"$WORK"'/ws:/workspace"],"PortBindings":{"80/tcp":[{"HostIp":"127.0.0.1","HostPort":"'$((29000 + r))'"}]}},"ExposedPorts":{"80/tcp":{}}}' | jq -r .Id)
    engine "$DOCKER_SOCK" POST "/v1.41/containers/$id/start" > /dev/null
    ms "$t" >> "$WORK/engine.ms"
    t=$(date +%s%N)
    api POST /api/v1/containers "{\"name\":\"g$r\",\"image\":\"gf-busybox:1\",\"ports\":[80],\"host\":\"gpu-1\",\"command\":[\"sleep\",\"600\"]}" > /dev/null
    ms "$t" >> "$WORK/gpufleet.ms"
    [ "$HTTP_CODE" = 201 ] || fail "create g$r: $HTTP_CODE $(cat "$WORK/api.out")"
    engine "$DOCKER_SOCK" DELETE "/v1.41/containers/$id?force=true" > /dev/null
    api DELETE "/api/v1/containers/$(jq -r .id "$WORK/api.out" 2>/dev/null || echo 0)" > /dev/null || true
done
for id in $(api GET /api/v1/containers | jq -r '.containers[].id'); do api DELETE "/api/v1/containers/$id" > /dev/null; done
e=$(median < "$WORK/engine.ms")
g=$(median < "$WORK/gpufleet.ms")
echo "create-to-running (median of $ROUNDS): engine API ${e} ms, gpufleet ${g} ms, ratio $(awk -v a="$g" -v b="$e" 'BEGIN{printf "%.3f", a / b}') (target < 1.10)"

# 3. LIST_N containers across the hosts, 4 creates at a time
t=$(date +%s%N)
jobs_=()
for i in $(seq 0 $((LIST_N - 1))); do
    curl -s -o "$WORK/l.$i" -w '%{http_code}\n' -H "Authorization: Bearer $GF_TOKEN" -H 'Content-Type: application/json' \
        --data "{\"name\":\"l$i\",\"image\":\"gf-busybox:1\",\"host\":\"gpu-$((i % HOSTS + 1))\",\"gpus\":$((i / HOSTS < 8 ? 1 : 0)),\"command\":[\"sleep\",\"3600\"]}" \
        "$SERVER_URL/api/v1/containers" > "$WORK/l.$i.code" &
    jobs_+=($!)
    if [ ${#jobs_[@]} = 4 ]; then
        for j in "${jobs_[@]}"; do wait "$j" || true; done
        jobs_=()
    fi
done
for j in "${jobs_[@]}"; do wait "$j" || true; done
n=$(api GET /api/v1/containers | jq '.containers | length')
echo "made $n containers across $HOSTS hosts in $(ms "$t") ms"
# what the refused ones were told, by count
for i in $(seq 0 $((LIST_N - 1))); do
    [ "$(cat "$WORK/l.$i.code")" = 201 ] || echo "$(cat "$WORK/l.$i.code") $(jq -r '.error.code + ": " + .error.message' "$WORK/l.$i" 2>/dev/null | cut -c1-100)"
done | sort | uniq -c | sort -rn | head -5
: > "$WORK/list.ms"
for _ in $(seq 1 30); do
    curl -s -o /dev/null -w '%{time_total}\n' -H "Authorization: Bearer $GF_TOKEN" "$SERVER_URL/api/v1/containers" |
        awk '{ printf "%.1f\n", $1 * 1000 }' >> "$WORK/list.ms"
done
echo "list $n containers (median of 30): $(median < "$WORK/list.ms") ms (target < 100 ms for 1,000 across 10 hosts)"
# the engine's own list of the same, for scale
: > "$WORK/elist.ms"
for _ in $(seq 1 10); do
    curl -s -o /dev/null -w '%{time_total}\n' --unix-socket "$DOCKER_SOCK" 'http://d/v1.41/containers/json?all=1' |
        awk '{ printf "%.1f\n", $1 * 1000 }' >> "$WORK/elist.ms"
done
echo "dockerd's own list of the same $n (median of 10): $(median < "$WORK/elist.ms") ms"

# 2. the ledger decisions of every create above
scurl -fsS "$SERVER_URL/metrics" > "$WORK/metrics"
m() { awk -v v="$(metric_value "$WORK/metrics" "gpufleet_server_container_decision_${2:-}seconds$1")" 'BEGIN{printf "%.3f", v * 1000}'; }
c=$(metric_value "$WORK/metrics" gpufleet_server_container_decision_seconds_count)
sum=$(metric_value "$WORK/metrics" gpufleet_server_container_decision_seconds_sum)
echo "ledger decision (quota, placement, the row and its GPUs; lock held), $c creates: mean $(awk -v s="$sum" -v c="$c" 'BEGIN{printf "%.3f", s * 1000 / c}') ms, p50 $(m '{quantile="0.5"}') ms, p90 $(m '{quantile="0.9"}') ms, p99 $(m '{quantile="0.99"}') ms (of the last 1,024), slowest $(m _max) ms (target: p99 < 1 ms)"
echo "  their CPU time (the rest is waiting for a core or the disk): p50 $(m '{quantile="0.5"}' cpu_) ms, p99 $(m '{quantile="0.99"}' cpu_) ms, most $(m _max cpu_) ms"
# the engine's containers go with the test's dockerd (lib.sh's cleanup)
