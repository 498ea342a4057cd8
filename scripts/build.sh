#!/usr/bin/env bash
# Configures and builds one build type into its own folder.
# usage: scripts/build.sh [Release|Asan|Fuzz]   (default Release)
set -euo pipefail
cd "$(dirname "$0")/.."

type=${1:-Release}
jobs=$(nproc 2>/dev/null || echo 2)
case "$type" in
Release) dir=build; args=(-DCMAKE_BUILD_TYPE=Release) ;;
Asan) dir=build-asan; args=(-DCMAKE_BUILD_TYPE=Asan) ;;
Fuzz) dir=build-fuzz; args=(-DCMAKE_BUILD_TYPE=Release -DGPUFLEET_FUZZ=ON -DCMAKE_C_COMPILER=clang) ;;
*) echo "usage: $0 [Release|Asan|Fuzz]" >&2; exit 2 ;;
esac
# the server embeds the web UI; a fuzz build has no use for it
[ "$type" = Fuzz ] || [ "${GPUFLEET_SKIP_WEB:-}" = 1 ] || scripts/build-web.sh
cmake -S . -B "$dir" "${args[@]}" > /dev/null
cmake --build "$dir" -j "$jobs"
