# Sourced by tests that need fleet hosts: worker_image prints the name of a
# Podman image of a Debian 12 host with systemd as PID 1, sshd, sudo (a
# non-root SSH user), git (the apps test's git server over ssh) and the
# agent's runtime libraries, made
# once per machine with debootstrap (Debian's mirror) and kept: the
# image's tag is the hash of its recipe, so a changed recipe makes a new
# one. Built under a lock (tests may run at once); the root folder under
# /var/cache/gpufleet-test goes once imported.
WORKER_SUITE=bookworm
WORKER_MIRROR=http://deb.debian.org/debian
# what the agent links against, and what a host of the fleet runs
WORKER_PKGS=systemd,systemd-sysv,openssh-server,git,sudo,dbus,libcurl4,libjansson4,libmicrohttpd12,libyaml-0-2,libzstd1,libgit2-1.5
WORKER_CACHE=/var/cache/gpufleet-test

worker_image() {
    local key name root
    key=$(printf '%s\n' "$WORKER_SUITE" "$WORKER_MIRROR" "$WORKER_PKGS" "minbase v2" | sha256sum | cut -c1-12)
    name=localhost/gpufleet-worker:$key
    podman image exists "$name" && { echo "$name"; return 0; }
    mkdir -p "$WORKER_CACHE"
    (
        flock 9
        podman image exists "$name" && exit 0
        root=$WORKER_CACHE/worker-$key
        rm -rf "$root"
        debootstrap --variant=minbase --include="$WORKER_PKGS" "$WORKER_SUITE" "$root" "$WORKER_MIRROR" \
            > "$WORKER_CACHE/worker-$key.log" 2>&1 || { tail -5 "$WORKER_CACHE/worker-$key.log" >&2; exit 1; }
        # sshd takes keys only; the image holds no host keys (each worker makes its own)
        rm -f "$root"/etc/ssh/ssh_host_*
        printf 'PasswordAuthentication no\n' > "$root/etc/ssh/sshd_config.d/gpufleet-test.conf"
        mkdir -p "$root/etc/systemd/system/ssh.service.d"
        printf '[Service]\nExecStartPre=\nExecStartPre=/usr/bin/ssh-keygen -A\nExecStartPre=/usr/sbin/sshd -t\n' > "$root/etc/systemd/system/ssh.service.d/keys.conf"
        tar -C "$root" -c . | podman import - "$name" > /dev/null || exit 1
        rm -rf "$root"
    ) 9> "$WORKER_CACHE/worker.lock" >&2 || return 1
    echo "$name"
}

# start_worker NAME SSH_PORT AGENT_PORT: a worker host from the image,
# systemd as PID 1, sshd on 127.0.0.1:SSH_PORT and AGENT_PORT published as
# itself; removed when the test ends. Waits for sshd.
start_worker() {
    local name=$1 ssh_port=$2 agent_port=$3
    # privileged: the agent's unit sandboxing (ProtectSystem, PrivateTmp...)
    # needs mount namespaces inside, as on a real host
    podman --runtime runc run -d --name "$name" --systemd=always --privileged --ulimit nofile=1024:1024 \
        --ulimit nproc=1024:1024 -p "127.0.0.1:$ssh_port:22" -p "127.0.0.1:$agent_port:$agent_port" \
        "$WORKER_IMAGE" /sbin/init > /dev/null || fail "worker $name did not start"
    AFTER_STOP+=("podman rm -f $name > /dev/null 2>&1")
    for _ in $(seq 1 100); do
        podman exec "$name" systemctl is-active ssh > /dev/null 2>&1 && return 0
        sleep 0.1
    done
    fail "sshd did not start in worker $name: $(podman exec "$name" systemctl status ssh --no-pager 2>&1 | tail -5)"
}
