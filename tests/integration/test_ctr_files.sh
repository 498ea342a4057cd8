#!/usr/bin/env bash
# Files in containers on a real Docker 20.10 and a real Podman 4.3: list a
# folder, make one, upload files (into the container and into the owner's
# workspace), download a file as it is and a folder as a tar, delete; names
# with spaces and UTF-8; a 300 MB file up and down with the server's and
# the agent's memory flat; bad paths (.., relative, /) named; missing paths
# 404; roles (another user 404, a viewer 403); uploads past the bound
# refused; every change audited.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/engines.sh"

start_two_hosts
printf 'container_host_ip: 127.0.0.1\ncontainer_default_memory_mib: 64\nfiles_upload_max_mib: 400\n' > "$WORK/server.yaml"
mkdir -p "$WORK/s-data"
make_admin "$WORK/s-data"
add_users "$WORK/s-data" alice:user bob:user vera:viewer
start_server s --config "$WORK/server.yaml"
register_two_hosts

head -c 3000000 /dev/urandom > "$WORK/data.bin"
printf 'hello files\n' > "$WORK/note.txt"
up() { # up ID PATH FILE [TOKEN]: PUT the file; prints the answer, HTTP code in UP_CODE
    UP_CODE=$(curl -sS -o "$WORK/up.out" -w '%{http_code}' -X PUT -H "Authorization: Bearer ${4:-$TOK_alice}" \
        --data-binary "@$3" "$SERVER_URL/api/v1/containers/$1/files/upload?path=$(jq -rn --arg p "$2" '$p|@uri')")
    cat "$WORK/up.out"
}
down() { # down ID PATH OUT: GET the download; headers in OUT.h
    curl -sS -D "$3.h" -o "$3" -H "Authorization: Bearer $TOK_alice" \
        "$SERVER_URL/api/v1/containers/$1/files/download?path=$(jq -rn --arg p "$2" '$p|@uri')"
}
ls_() { as alice GET "/api/v1/containers/$1/files?path=$(jq -rn --arg p "$2" '$p|@uri')"; }

check_engine() {
    local host=$1 id
    as alice POST /api/v1/containers "{\"name\":\"box-$host\",\"image\":\"gf-busybox:1\",\"host\":\"$host\",\"gpus\":0,\"command\":[\"sleep\",\"600\"]}" > "$WORK/c.json"
    [ "$HTTP_CODE" = 201 ] || fail "$host: create: $(cat "$WORK/c.json")"
    id=$(jq -r .id "$WORK/c.json")
    ls_ "$id" / > "$WORK/root.json"
    [ "$HTTP_CODE" = 200 ] || fail "$host: list /: $HTTP_CODE $(cat "$WORK/root.json")"
    jq -e '[.entries[] | select(.type == "dir") | .name] | contains(["bin", "tmp", "workspace"])' "$WORK/root.json" > /dev/null \
        || fail "$host: /: $(cat "$WORK/root.json")"
    as alice POST "/api/v1/containers/$id/files/mkdir?path=/tmp/up/sub" > /dev/null
    [ "$HTTP_CODE" = 200 ] || fail "$host: mkdir: $HTTP_CODE"
    up "$id" /tmp/up/data.bin "$WORK/data.bin" > /dev/null
    [ "$UP_CODE" = 201 ] || fail "$host: upload: $UP_CODE $(cat "$WORK/up.out")"
    up "$id" "/tmp/up/été file.txt" "$WORK/note.txt" > /dev/null
    [ "$UP_CODE" = 201 ] || fail "$host: upload a UTF-8 name: $UP_CODE $(cat "$WORK/up.out")"
    ls_ "$id" /tmp/up > "$WORK/up.json"
    [ "$(jq -r '[.entries[] | .name + ":" + .type + ":" + (.size|tostring)] | sort | join(" ")' "$WORK/up.json")" = \
        "data.bin:file:3000000 sub:dir:$(jq -r '.entries[] | select(.name == "sub") | .size' "$WORK/up.json") été file.txt:file:12" ] \
        || fail "$host: /tmp/up: $(cat "$WORK/up.json")"
    ok "$host: list, mkdir, uploads (a UTF-8 name with a space too)"

    down "$id" /tmp/up/data.bin "$WORK/got.bin"
    cmp -s "$WORK/data.bin" "$WORK/got.bin" || fail "$host: the download differs ($(stat -c %s "$WORK/got.bin") bytes; $(head -3 "$WORK/got.bin.h"))"
    grep -qi 'content-disposition: attachment; filename="data.bin"' "$WORK/got.bin.h" && grep -qi '^content-length: 3000000' "$WORK/got.bin.h" \
        || fail "$host: download headers: $(cat "$WORK/got.bin.h")"
    down "$id" /tmp/up "$WORK/up.tar"
    grep -qi 'filename="up.tar"' "$WORK/up.tar.h" || fail "$host: folder download: $(cat "$WORK/up.tar.h")"
    # (Podman writes folders without the trailing /)
    [ "$(tar -tf "$WORK/up.tar" | sed 's|/$||' | sort | tr '\n' ',')" = "up,up/data.bin,up/sub,up/été file.txt," ] || fail "$host: the tar: $(tar -tf "$WORK/up.tar" | tr '\n' ,)"
    up "$id" /workspace/notes.txt "$WORK/note.txt" > /dev/null
    cmp -s "$WORK/note.txt" "$WORK/ws-$host/alice/notes.txt" || fail "$host: the workspace upload is not in the owner's folder on the host"
    ok "$host: a file downloads as it is (same bytes, its name and length), a folder as a tar; an upload to /workspace lands in the owner's folder on the host"

    # --- links out of the workspace: the workspace is a folder on the host,
    # and a link a user makes in it (from a terminal) names a host path; it
    # must resolve inside the container, never on the host
    printf 'host-only-secret-%s\n' "$host" > "$WORK/host-secret.txt"
    rm -f /tmp/gf-escaped-$$.txt
    ln -s "$WORK/host-secret.txt" "$WORK/ws-$host/alice/esc"
    ln -s / "$WORK/ws-$host/alice/root"
    down "$id" /workspace/esc "$WORK/esc.out"
    grep -q host-only-secret "$WORK/esc.out" && fail "$host: a link in the workspace gave out a host file"
    [ "$(curl -s -o "$WORK/esc2.out" -w '%{http_code}' -H "Authorization: Bearer $TOK_alice" \
        "$SERVER_URL/api/v1/containers/$id/files/download?path=$(jq -rn --arg p "/workspace/root$WORK/host-secret.txt" '$p|@uri')")" = 404 ] \
        || fail "$host: through a link to /, a host path: $(head -c 200 "$WORK/esc2.out")"
    ls_ "$id" "/workspace/root$WORK" > /dev/null
    [ "$HTTP_CODE" = 404 ] || fail "$host: a host folder listed through a link to /: $HTTP_CODE"
    up "$id" "/workspace/root/tmp/gf-escaped-$$.txt" "$WORK/note.txt" > /dev/null
    [ "$UP_CODE" = 201 ] && [ ! -e "/tmp/gf-escaped-$$.txt" ] || fail "$host: an upload through a link to / reached the host ($UP_CODE)"
    down "$id" "/tmp/gf-escaped-$$.txt" "$WORK/esc3.out"
    cmp -s "$WORK/note.txt" "$WORK/esc3.out" || fail "$host: the upload through the link is not in the container's /tmp"
    rm -f "$WORK/ws-$host/alice/esc" "$WORK/ws-$host/alice/root"
    ok "$host: links in the workspace to a host file and to / resolve inside the container: no host file read (404), listed or written (the upload lands in the container's /tmp)"

    as alice DELETE "/api/v1/containers/$id/files?path=/tmp/up/data.bin" > /dev/null
    [ "$HTTP_CODE" = 200 ] || fail "$host: delete: $HTTP_CODE"
    ls_ "$id" /tmp/up | jq -e '[.entries[].name] | index("data.bin") == null' > /dev/null || fail "$host: deleted file still listed"
    for p in "/tmp/../etc" "tmp/x" "/tmp//x" "/tmp/./x"; do
        ls_ "$id" "$p" > "$WORK/bad.json"
        [ "$HTTP_CODE" = 400 ] && [ "$(jq -r .error.field "$WORK/bad.json")" = path ] || fail "$host: bad path $p: $HTTP_CODE"
    done
    for p in relative /tmp/../x /; do
        up "$id" "$p" "$WORK/note.txt" > "$WORK/bad.json"
        [ "$UP_CODE" = 400 ] && [ "$(jq -r .error.field "$WORK/bad.json")" = path ] || fail "$host: upload to $p: $UP_CODE $(cat "$WORK/bad.json")"
    done
    as alice DELETE "/api/v1/containers/$id/files?path=/" > "$WORK/bad.json"
    [ "$HTTP_CODE" = 400 ] || fail "$host: delete /: $HTTP_CODE"
    ls_ "$id" /nope > /dev/null
    [ "$HTTP_CODE" = 404 ] || fail "$host: list a missing folder: $HTTP_CODE"
    [ "$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $TOK_alice" "$SERVER_URL/api/v1/containers/$id/files/download?path=/nope")" = 404 ] \
        || fail "$host: download a missing file"
    as bob GET "/api/v1/containers/$id/files?path=/" > /dev/null
    [ "$HTTP_CODE" = 404 ] || fail "$host: another user's files: $HTTP_CODE"
    as vera GET "/api/v1/containers/$id/files?path=/" > /dev/null
    [ "$HTTP_CODE" = 403 ] || fail "$host: a viewer's look at files: $HTTP_CODE"
    up "$id" /tmp/x "$WORK/note.txt" "$TOK_bob" > /dev/null
    [ "$UP_CODE" = 404 ] || fail "$host: another user's upload: $UP_CODE"
    ok "$host: delete; .., relative, // and . paths and deleting / are 400 naming path; missing paths 404; another user 404, a viewer 403"
    CID[$host]=$id
}
declare -A CID
check_engine dk
check_engine pd

# --- 300 MB up and down through server and agent: memory stays flat
hwm() { awk '/^VmHWM/ {print $2}' "/proc/$1/status"; }
head -c 300000000 /dev/urandom > "$WORK/big.bin"
s0=$(hwm "$SERVER_PID"); a0=$(hwm "$DK_PID")
t0=$(date +%s%N)
up "${CID[dk]}" /tmp/big.bin "$WORK/big.bin" > /dev/null
[ "$UP_CODE" = 201 ] || fail "big upload: $UP_CODE $(cat "$WORK/up.out")"
t1=$(date +%s%N)
down "${CID[dk]}" /tmp/big.bin "$WORK/big.got"
t2=$(date +%s%N)
cmp -s "$WORK/big.bin" "$WORK/big.got" || fail "the 300 MB download differs"
s1=$(hwm "$SERVER_PID"); a1=$(hwm "$DK_PID")
[ $((s1 - s0)) -lt 65536 ] && [ $((a1 - a0)) -lt 65536 ] || fail "memory grew: server ${s0}->${s1} kB, agent ${a0}->${a1} kB"
rm -f "$WORK/big.got"
ok "300 MB up in $(((t1 - t0) / 1000000)) ms and down in $(((t2 - t1) / 1000000)) ms, same bytes; peak memory grew by $(((s1 - s0) / 1024)) MB in the server, $(((a1 - a0) / 1024)) MB in the agent"
head -c 420000000 /dev/zero > "$WORK/too.bin"
up "${CID[dk]}" /tmp/too.bin "$WORK/too.bin" > /dev/null
[ "$UP_CODE" = 413 ] || fail "an upload past files_upload_max_mib: $UP_CODE $(cat "$WORK/up.out")"
rm -f "$WORK/too.bin" "$WORK/big.bin"
ok "an upload past files_upload_max_mib is refused (413)"

n=$(sqlite3 "$WORK/s-data/audit.db" "SELECT count(*) FROM audit WHERE username = 'alice' AND action = 'container.file_upload' AND result = 'ok' AND details LIKE '%\"bytes\":%'")
[ "$n" -ge 7 ] || fail "uploads audited: $n"
n=$(sqlite3 "$WORK/s-data/audit.db" "SELECT count(*) FROM audit WHERE action IN ('container.file_delete', 'container.file_mkdir', 'container.file_download') AND result = 'ok'")
[ "$n" -ge 8 ] || fail "deletes, mkdirs and downloads audited: $n"
ok "uploads (with their bytes), downloads, folders made and deletes are audited"
