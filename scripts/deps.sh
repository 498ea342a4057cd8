#!/usr/bin/env bash
# Installs the Debian packages gpufleet needs, and only those missing.
# usage: scripts/deps.sh [run|test|bench]   (default: run)
#   run:   what building and running needs
#   test:  run + what the tests need (cmocka, clang for libFuzzer, the real
#          peers: prometheus/promtool, node_exporter, curl, jq, Docker and
#          Podman with runc, busybox-static for their test image, a
#          registry (docker-registry) to pull from)
#   bench: test + wrk and nginx for bench/
set -euo pipefail

mode=${1:-run}
run_pkgs=(gcc make cmake pkg-config libmicrohttpd-dev libjansson-dev libyaml-dev zlib1g-dev curl
    libsqlite3-dev libcurl4-openssl-dev libzstd-dev libprotobuf-c-dev protobuf-c-compiler libsnappy-dev libsodium-dev openssl libwslay-dev libssh-dev libipmimonitoring-dev libgit2-dev)
test_pkgs=(libcmocka-dev clang libclang-rt-14-dev prometheus prometheus-node-exporter jq sqlite3 python3 nginx-light python3-websockets python3-fusepy fuse3
    victoria-metrics chromium docker.io podman runc netavark aardvark-dns busybox-static docker-registry docker-compose debootstrap openipmi)
# the web UI builds with Node.js and npm: Debian's unless the machine has its own
command -v npm > /dev/null || run_pkgs+=(nodejs npm)
bench_pkgs=(wrk)

case "$mode" in
run) want=("${run_pkgs[@]}") ;;
test) want=("${run_pkgs[@]}" "${test_pkgs[@]}") ;;
bench) want=("${run_pkgs[@]}" "${test_pkgs[@]}" "${bench_pkgs[@]}") ;;
*) echo "usage: $0 [run|test|bench]" >&2; exit 2 ;;
esac

missing=()
for p in "${want[@]}"; do
    if [ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null)" != "install ok installed" ]; then
        missing+=("$p")
    fi
done
if [ ${#missing[@]} -eq 0 ]; then
    echo "deps: all ${#want[@]} packages for '$mode' are installed"
    exit 0
fi

sudo=()
[ "$(id -u)" -eq 0 ] || sudo=(sudo)
echo "deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -q
"${sudo[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
