#!/usr/bin/env bash
# Installs what is missing, builds, and runs the gpufleet server on
# 127.0.0.1:8470 with a local gpufleet-agent on 127.0.0.1:9445 registered
# with it (the embedded SQLite store in ./data). Ctrl-C stops both.
# On a host without the NVIDIA driver the agent shows two fake H100s from
# tests/fakes so there is something to look at; GPUFLEET_FAKE_GPUS=0 turns
# that off, GPUFLEET_FAKE_GPUS=1 forces it.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/deps.sh run
scripts/build.sh Release

data=${GPUFLEET_DATA:-$PWD/data}
agent_listen=${GPUFLEET_AGENT_LISTEN:-127.0.0.1:9445}
server_listen=${GPUFLEET_LISTEN:-127.0.0.1:8470}
mkdir -p "$data"
chmod 700 "$data"
# the server reaches the agent with a token of its own
if [ ! -s "$data/agent.token" ]; then
    (umask 077 && head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$data/agent.token")
fi

args=(--listen "$agent_listen" --token-file "$data/agent.token")
fake=${GPUFLEET_FAKE_GPUS:-auto}
if [ "$fake" = auto ]; then
    if ldconfig -p 2>/dev/null | grep -q 'libnvidia-ml.so.1'; then fake=0; else fake=1; fi
fi
if [ "$fake" = 1 ]; then
    echo "quickstart: no NVIDIA driver here: the agent shows fake GPUs (tests/fakes/README.md)"
    args+=(--nvml-lib "$PWD/build/tests/fakes/libnvidia-ml.so.1")
    export FAKE_NVML_SCENARIO=${FAKE_NVML_SCENARIO:-$PWD/tests/fakes/scenarios/demo.scenario}
fi

pids=()
trap 'kill "${pids[@]}" 2>/dev/null; wait' INT TERM EXIT
build/gpufleet-agent "${args[@]}" &
pids+=($!)
build/gpufleet serve --listen "$server_listen" --data "$data" &
pids+=($!)
for url in "http://$agent_listen/healthz" "http://$server_listen/healthz"; do
    for _ in $(seq 1 100); do
        curl -fsS -o /dev/null "$url" 2>/dev/null && break
        sleep 0.1
    done
done
export GPUFLEET_URL="http://$server_listen"
# a short-lived admin token for registering the agent (the API needs one)
GPUFLEET_TOKEN=$(build/gpufleet token add admin "quickstart-$(date +%s)" --expires 1h --data "$data")
export GPUFLEET_TOKEN
if ! build/gpufleet servers list | grep -q '"name":"local"'; then
    build/gpufleet servers add local "${agent_listen%:*}" --agent-port "${agent_listen##*:}" \
        --agent-token-file "$data/agent.token" > /dev/null
fi
pwnote="printed above by the server on its first start"
[ -f "$data/admin-password" ] && pwnote="in $data/admin-password"
cat <<MSG
quickstart: gpufleet server on http://$server_listen (open it in a browser: the web UI), agent on http://$agent_listen
  sign in as admin (first password $pwnote; you will be asked to change it)
  make an API token:  build/gpufleet token add admin mytoken --data $data
  then, with TOKEN set to it:
  curl -s -H "Authorization: Bearer \$TOKEN" http://$server_listen/api/v1/servers | jq
  curl -sG -H "Authorization: Bearer \$TOKEN" http://$server_listen/api/v1/latest --data-urlencode 'match=DCGM_FI_DEV_GPU_UTIL' | jq
  curl -s http://$agent_listen/metrics | grep DCGM_FI_DEV_GPU_UTIL
Ctrl-C stops both.
MSG
wait
