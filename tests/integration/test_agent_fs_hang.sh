#!/usr/bin/env bash
# A mount that stops answering (a FUSE filesystem on loopback whose statfs
# hangs, as an NFS home does when its server goes away) does not stop the
# agent's sampler: the mount is reported stale, every other figure goes on,
# and the mount comes back when it answers again (issue 18, defect 15).
source "$(dirname "$0")/lib.sh"
PY=/usr/bin/python3
"$PY" -c 'import fusepy' 2> /dev/null || fail "python3-fusepy missing (scripts/deps.sh test)"
[ -c /dev/fuse ] || fail "/dev/fuse missing: this test needs FUSE"

cat > "$WORK/hangfs.py" <<'PY'
import errno, os, sys, time
from fusepy import FUSE, Operations
flag = sys.argv[2]
class Hang(Operations):
    def statfs(self, path):
        while os.path.exists(flag):  # no answer while the flag exists
            time.sleep(0.1)
        return {"f_bsize": 4096, "f_frsize": 4096, "f_blocks": 1000, "f_bfree": 500,
                "f_bavail": 400, "f_files": 100, "f_ffree": 50, "f_namemax": 255}
    def getattr(self, path, fh=None):
        if path == "/":
            return {"st_mode": 0o40755, "st_nlink": 2}
        raise OSError(errno.ENOENT, "")
    def readdir(self, path, fh):
        return [".", ".."]
FUSE(Hang(), sys.argv[1], foreground=True)
PY
mkdir -p "$WORK/hang"
"$PY" "$WORK/hangfs.py" "$WORK/hang" "$WORK/flag" > "$WORK/fuse.log" 2>&1 &
PIDS+=($!)
# let the filesystem answer before it is unmounted, or the unmount waits too
AFTER_STOP+=("rm -f '$WORK/flag'; fusermount3 -u '$WORK/hang' 2>/dev/null || umount -l '$WORK/hang'")
for _ in $(seq 1 50); do grep -q " $WORK/hang fuse" /proc/mounts && break; sleep 0.1; done
grep -q " $WORK/hang fuse" /proc/mounts || fail "the FUSE filesystem did not mount: $(cat "$WORK/fuse.log")"
stat -f "$WORK/hang" > /dev/null || fail "the FUSE filesystem does not answer"

start_agent ag "gpu h100 count=2
vary 1" --interval 200 --fs-timeout 300
sel="gpufleet_filesystem_stale{device=\"Hang\",fstype=\"fuse\",mountpoint=\"$WORK/hang\"}"
curl -fsS "$AGENT_URL/metrics" -o "$WORK/m0.txt"
grep -qF "$sel 0" "$WORK/m0.txt" || fail "the mount is not sampled: $(grep -F "$WORK/hang" "$WORK/m0.txt" | head -3)"

touch "$WORK/flag" # the filesystem stops answering
sleep 2
curl -fsS --max-time 2 "$AGENT_URL/healthz" > /dev/null || fail "the sampler stalled on the hung mount"
curl -fsS "$AGENT_URL/metrics" -o "$WORK/m1.txt"
sleep 1
curl -fsS "$AGENT_URL/metrics" -o "$WORK/m2.txt"
grep -qF "$sel 1" "$WORK/m2.txt" || fail "the hung mount is not reported stale"
grep '^DCGM_FI_DEV_GPU_TEMP{' "$WORK/m1.txt" > "$WORK/t1"
grep '^DCGM_FI_DEV_GPU_TEMP{' "$WORK/m2.txt" > "$WORK/t2"
[ -s "$WORK/t2" ] && ! cmp -s "$WORK/t1" "$WORK/t2" || fail "GPU figures stopped while the mount hung"
grep -q "$WORK/hang: statvfs did not answer" "$WORK/ag.log" || fail "not logged"
ok "a hung mount is reported stale; the sampler and the GPU figures go on"

rm -f "$WORK/flag" # it answers again
poll_metrics "$AGENT_URL/metrics" "$WORK/m3.txt" 100 -F "$sel 0" \
    || fail "the mount stayed stale after it answered"
grep -q "node_filesystem_size_bytes{device=\"Hang\",fstype=\"fuse\",mountpoint=\"$WORK/hang\"} 4096000" "$WORK/m3.txt" \
    || fail "the mount's figures did not come back"
ok "the mount is sampled again once it answers"
