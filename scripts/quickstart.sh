#!/usr/bin/env bash
# Installs what is missing, builds, and runs gpufleet-agent in the
# foreground on 127.0.0.1:9445 (Ctrl-C stops it).
# On a host without the NVIDIA driver it shows two fake H100s from
# tests/fakes so there is something to look at; GPUFLEET_FAKE_GPUS=0 turns
# that off, GPUFLEET_FAKE_GPUS=1 forces it.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/deps.sh run
scripts/build.sh Release

listen=${GPUFLEET_AGENT_LISTEN:-127.0.0.1:9445}
args=(--listen "$listen")
fake=${GPUFLEET_FAKE_GPUS:-auto}
if [ "$fake" = auto ]; then
    if ldconfig -p 2>/dev/null | grep -q 'libnvidia-ml.so.1'; then fake=0; else fake=1; fi
fi
if [ "$fake" = 1 ]; then
    echo "quickstart: no NVIDIA driver here: showing fake GPUs (tests/fakes/README.md)"
    args+=(--nvml-lib "$PWD/build/tests/fakes/libnvidia-ml.so.1")
    export FAKE_NVML_SCENARIO=${FAKE_NVML_SCENARIO:-$PWD/tests/fakes/scenarios/demo.scenario}
fi
echo "quickstart: gpufleet-agent on http://$listen/metrics (snapshot: /api/v1/snapshot)"
exec build/gpufleet-agent "${args[@]}" "$@"
