# Real container engines for the integration tests (sourced after lib.sh):
# a dockerd of the test's own (own socket, data, bridge) and a Podman API
# service of its own (own storage), both with the busybox image imported,
# and the fakes of the absent NVIDIA toolkit: a runtime hook for Docker and
# a CDI spec for Podman. Needs root, docker.io, podman, runc and
# busybox-static (scripts/deps.sh test installs them).

[ "$(id -u)" -eq 0 ] || fail "container engine tests need root (dockerd, podman with runc)"
for b in dockerd podman runc; do
    command -v "$b" > /dev/null || fail "$b is missing: run scripts/deps.sh test"
done

# The image's root: busybox-static and a few applets, cached outside the
# clone keyed by the busybox binary's hash and the applets, so a machine
# builds it once.
BUSYBOX_APPLETS="sh httpd sleep cat env ls echo nc ps wget true stty seq tr sha1sum cut sed base64 mkdir chmod head rm stat vi ln yes"
busybox_tar() {
    local bb cache key
    bb=$(command -v busybox || true)
    [ -n "$bb" ] || bb=/bin/busybox
    [ -x "$bb" ] || fail "busybox-static is missing: run scripts/deps.sh test"
    # (the recipe's version in the key: 2 made the root 0755, which a
    # container running as a user other than root needs)
    key=$( (sha256sum < "$bb"; echo "$BUSYBOX_APPLETS 2") | sha256sum | cut -c1-16)
    cache=${XDG_CACHE_HOME:-$HOME/.cache}/gpufleet-tests
    BUSYBOX_TAR="$cache/busybox-$key.tar"
    [ -f "$BUSYBOX_TAR" ] && return 0
    mkdir -p "$cache"
    local root
    root=$(mktemp -d "$WORK/bbroot.XXXX")
    mkdir -p "$root/bin" "$root/tmp" "$root/etc" "$root/www" "$root/workspace"
    cp "$bb" "$root/bin/busybox"
    for a in $BUSYBOX_APPLETS; do ln -sf busybox "$root/bin/$a"; done
    echo "hello from a gpufleet container" > "$root/www/index.html"
    chmod 0755 "$root"
    chmod 1777 "$root/tmp"
    tar -C "$root" -cf "$BUSYBOX_TAR.tmp" . && mv "$BUSYBOX_TAR.tmp" "$BUSYBOX_TAR"
}

# The NVIDIA toolkit's hook, faked: dockerd accepts Driver "nvidia" requests
# when an executable of this name is on its PATH, and puts the asked UUIDs
# in the container's NVIDIA_VISIBLE_DEVICES.
FAKE_HOOK_DIR="$WORK/fake-toolkit"
mkdir -p "$FAKE_HOOK_DIR"
printf '#!/bin/sh\ncat > /dev/null\nexit 0\n' > "$FAKE_HOOK_DIR/nvidia-container-runtime-hook"
chmod +x "$FAKE_HOOK_DIR/nvidia-container-runtime-hook"

# start_dockerd: a dockerd on its own socket, data root and bridge; sets
# DOCKER_SOCK and DOCKERD_PID. Safe to call again after stop_dockerd.
DOCKER_BRIDGE="gfbr$$"
DOCKER_BRIDGE=${DOCKER_BRIDGE:0:15}
start_dockerd() {
    DOCKER_SOCK="$WORK/docker.sock"
    if ! ip link show "$DOCKER_BRIDGE" > /dev/null 2>&1; then
        ip link add "$DOCKER_BRIDGE" type bridge || fail "ip link add bridge"
        # a /20: room for 4,094 containers (the bench makes 1,000)
        ip addr add "172.29.$((RANDOM % 16 * 16)).1/20" dev "$DOCKER_BRIDGE"
        ip link set "$DOCKER_BRIDGE" up
        # a dockerd stopped before it has stopped every container (the
        # bench's thousand) leaves their shims running, and veth pairs
        AFTER_STOP+=("pkill -9 -f -- '-address $WORK/docker-exec/' || true")
        AFTER_STOP+=("ip link del $DOCKER_BRIDGE")
        AFTER_STOP+=("grep -o \" $WORK/[^ ]*\" /proc/mounts | sort -r | xargs -r -n1 umount -l")
    fi
    mkdir -p "$WORK/docker-data" "$WORK/docker-exec"
    PATH="$FAKE_HOOK_DIR:$PATH" dockerd --host "unix://$DOCKER_SOCK" --data-root "$WORK/docker-data" \
        --exec-root "$WORK/docker-exec" --pidfile "$WORK/docker.pid" --storage-driver=vfs \
        --iptables=false --ip-masq=false --bridge="$DOCKER_BRIDGE" \
        --default-ulimit nofile=1024:1024 --default-ulimit nproc=1024:1024 \
        >> "$WORK/dockerd.log" 2>&1 &
    DOCKERD_PID=$!
    PIDS+=($DOCKERD_PID)
    wait_engine "$DOCKER_SOCK" dockerd
}

# wait_engine SOCK NAME: up to 15 s for the engine's _ping.
wait_engine() {
    for _ in $(seq 1 150); do
        curl -fsS --unix-socket "$1" http://d/_ping > /dev/null 2>&1 && return 0
        sleep 0.1
    done
    fail "$2 did not come up"
}

# stop_dockerd: SIGTERM and wait, as a service manager would.
stop_dockerd() {
    kill "$DOCKERD_PID" 2>/dev/null || true
    wait "$DOCKERD_PID" 2>/dev/null || true
}

# engine SOCK METHOD PATH [JSON]: a call to an engine's API; prints the body.
engine() {
    local sock=$1 method=$2 path=$3 body=${4:-}
    local args=(-sS --unix-socket "$sock" -X "$method")
    [ -n "$body" ] && args+=(-H 'Content-Type: application/json' --data "$body")
    curl "${args[@]}" "http://d$path"
}

# import_image SOCK: gf-busybox:1 from the cached tarball (Podman's compat
# import drops the tag: its libpod import keeps it).
import_image() {
    local url='http://d/v1.41/images/create?fromSrc=-&repo=gf-busybox&tag=1'
    busybox_tar
    [ "$1" = "${PODMAN_SOCK:-}" ] && url='http://d/v4.0.0/libpod/images/import?reference=gf-busybox:1'
    curl -fsS --unix-socket "$1" -X POST -H 'Content-Type: application/x-tar' \
        --data-binary "@$BUSYBOX_TAR" "$url" > /dev/null || fail "image import"
}

# start_podman: a Podman API service (runc, ulimits 1024) on its own
# storage, trusting the test's registry (REGISTRY) without TLS; sets
# PODMAN_SOCK.
start_podman() {
    PODMAN_SOCK="$WORK/podman.sock"
    cat > "$WORK/containers.conf" << 'EOF'
[containers]
default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]
[engine]
runtime = "runc"
EOF
    mkdir -p "$WORK/podman-root" "$WORK/podman-run"
    # a registry of the test's (start_registry first) is plain HTTP
    printf '[[registry]]\nlocation = "%s"\ninsecure = true\n' "${REGISTRY:-127.0.0.1:5000}" > "$WORK/registries.conf"
    CONTAINERS_REGISTRIES_CONF="$WORK/registries.conf" CONTAINERS_CONF="$WORK/containers.conf" podman --root "$WORK/podman-root" \
        --runroot "$WORK/podman-run" --runtime runc system service --time=0 \
        "unix://$PODMAN_SOCK" >> "$WORK/podman.log" 2>&1 &
    PIDS+=($!)
    AFTER_STOP+=("CONTAINERS_CONF=$WORK/containers.conf podman --root $WORK/podman-root --runroot $WORK/podman-run rm -af -t 0 > /dev/null 2>&1")
    AFTER_STOP+=("grep -o \" $WORK/[^ ]*\" /proc/mounts | sort -r | xargs -r -n1 umount -l")
    wait_engine "$PODMAN_SOCK" "podman system service"
}

# gpu_uuids AGENT_URL TOKEN: the fake GPUs' UUIDs, one per line, by index.
gpu_uuids() {
    curl -fsS -H "Authorization: Bearer $2" "$1/metrics" |
        awk '/^DCGM_FI_DEV_GPU_TEMP\{/ { match($0, /UUID="[^"]*"/); u = substr($0, RSTART + 6, RLENGTH - 7);
             match($0, /gpu="[0-9]+"/); i = substr($0, RSTART + 5, RLENGTH - 6); print i, u }' |
        sort -n | awk '{ print $2 }'
}

# start_registry: a registry (distribution 2.8) on loopback with its own
# storage; sets REGISTRY (127.0.0.1:PORT). Docker trusts 127.0.0.0/8
# without TLS; Podman is told so in its registries.conf.
start_registry() {
    command -v docker-registry > /dev/null || fail "docker-registry is missing: run scripts/deps.sh test"
    local port
    port=$(free_port)
    REGISTRY="127.0.0.1:$port"
    mkdir -p "$WORK/registry"
    cat > "$WORK/registry.yml" << EOF2
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $WORK/registry
http:
  addr: $REGISTRY
EOF2
    docker-registry serve "$WORK/registry.yml" >> "$WORK/registry.log" 2>&1 &
    PIDS+=($!)
    wait_http "http://$REGISTRY/v2/"
}

# add_users DATA NAME:ROLE...: users (password correct-horse-battery-42)
# made at the shell before the server starts, each with an API token in
# TOK_NAME; `as NAME METHOD PATH [JSON]` then calls the API as that user.
add_users() {
    local data=$1 u
    shift
    for u in "$@"; do
        printf 'correct-horse-battery-42\n' | "$SERVER" user add "${u%%:*}" --role "${u#*:}" \
            --password-stdin --data "$data" > /dev/null
        declare -g "TOK_${u%%:*}=$("$SERVER" token add "${u%%:*}" t --data "$data")"
    done
}
as() {
    local who=$1
    shift
    local tok="TOK_$who"
    local -a API_AUTH=(-H "Authorization: Bearer ${!tok}")
    api "$@"
}

# start_two_hosts: a dockerd and a Podman service (busybox imported), and
# an agent driving each: host "dk" and host "pd" (one fake GPU each, the
# workspaces under $WORK/ws-dk and $WORK/ws-pd, the apps' folders under
# $WORK/apps-dk and $WORK/apps-pd). Sets AGENT_TOKEN, DK_PORT,
# DK_URL, DK_PID, PD_PORT. Then, once the server runs, register_two_hosts.
# Its arguments go to both agents.
start_two_hosts() {
    start_dockerd
    import_image "$DOCKER_SOCK"
    start_podman
    import_image "$PODMAN_SOCK"
    head -c 24 /dev/urandom | base64 | tr -d '/+=' > "$WORK/agent.token"
    AGENT_TOKEN=$(cat "$WORK/agent.token")
    start_agent dk "gpu h100 count=1" --token-file "$WORK/agent.token" --engine-socket "$DOCKER_SOCK" \
        --workspace-root "$WORK/ws-dk" --apps-root "$WORK/apps-dk" --interval 500 "$@"
    DK_PORT=$AGENT_PORT DK_URL=$AGENT_URL DK_PID=${PIDS[-1]}
    start_agent pd "gpu h100 count=1" --token-file "$WORK/agent.token" --engine-socket "$PODMAN_SOCK" \
        --workspace-root "$WORK/ws-pd" --apps-root "$WORK/apps-pd" --interval 500 "$@"
    PD_PORT=$AGENT_PORT
}

register_two_hosts() {
    local h
    for h in dk:$DK_PORT pd:$PD_PORT; do
        api POST /api/v1/servers "{\"name\":\"${h%%:*}\",\"address\":\"127.0.0.1\",\"agent_port\":${h#*:},\"agent_token\":\"$AGENT_TOKEN\"}" > /dev/null
        [ "$HTTP_CODE" = 201 ] || fail "register ${h%%:*}: $HTTP_CODE"
    done
}
