#!/usr/bin/env bash
# Routes to the web apps inside containers, through a real nginx running
# deploy/nginx-gpufleet.conf (TLS taken off, ports and paths substituted)
# in front of a real server whose agent drives a real dockerd: the owner
# reaches a web server in the container at /u/OWNER/CONTAINER/PORT/ and a
# WebSocket in it, an operator too, another user gets 403, a logged-out
# browser the login page; the app never sees gpufleet's session cookie;
# the route goes when the container stops or is removed.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/engines.sh"
command -v nginx > /dev/null || fail "nginx missing (scripts/deps.sh test)"
PY=/usr/bin/python3
"$PY" -c 'import websockets' 2> /dev/null || fail "python3-websockets missing (scripts/deps.sh test)"

start_dockerd
import_image "$DOCKER_SOCK"
head -c 24 /dev/urandom | base64 | tr -d '/+=' > "$WORK/agent.token"
AGENT_TOKEN=$(cat "$WORK/agent.token")
start_agent a1 "gpu h100 count=1" --token-file "$WORK/agent.token" --engine-socket "$DOCKER_SOCK" --workspace-root "$WORK/ws"

NP=$(free_port)
NGINX="http://127.0.0.1:$NP"
mkdir -p "$WORK/nginx/logs" "$WORK/routes"
cat > "$WORK/server.yaml" << EOF
container_host_ip: 127.0.0.1
container_default_memory_mib: 64
container_reconcile_ms: 500
trusted_proxies: 127.0.0.1
public_url: $NGINX
routes_file: $WORK/routes/nginx-routes.conf
routes_nginx_pidfile: $WORK/nginx/nginx.pid
EOF
mkdir -p "$WORK/s-data"
make_admin "$WORK/s-data"
add_users "$WORK/s-data" alice:user bob:user otto:operator
start_server s --config "$WORK/server.yaml"
api POST /api/v1/servers "{\"name\":\"gpu-1\",\"address\":\"127.0.0.1\",\"agent_port\":$AGENT_PORT,\"agent_token\":\"$AGENT_TOKEN\"}" > /dev/null
[ "$HTTP_CODE" = 201 ] || fail "register: $HTTP_CODE"
for _ in $(seq 1 50); do [ -f "$WORK/routes/nginx-routes.conf" ] && break; sleep 0.1; done
[ -f "$WORK/routes/nginx-routes.conf" ] || fail "the routes file was not written"

sed -e "s|listen 443 ssl;|listen 127.0.0.1:$NP;|" -e '/ssl_/d' \
    -e "s|/var/lib/gpufleet/nginx-routes\*.conf|$WORK/routes/nginx-routes*.conf|" \
    -e "s|http://127.0.0.1:8470|http://127.0.0.1:$SERVER_PORT|" "$SRC_DIR/deploy/nginx-gpufleet.conf" > "$WORK/nginx/site.conf"
grep -q "include $WORK/routes/nginx-routes\*.conf;" "$WORK/nginx/site.conf" || fail "the deploy file has no routes include"
cat > "$WORK/nginx/nginx.conf" <<NGX
daemon off;
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/logs/error.log;
events {}
http {
    access_log off;
    client_body_temp_path $WORK/nginx/body;
    proxy_temp_path $WORK/nginx/proxy;
    include $WORK/nginx/site.conf;
}
NGX
nginx -p "$WORK/nginx" -c "$WORK/nginx/nginx.conf" &
PIDS+=($!)
wait_http "$NGINX/healthz"

# signed in through nginx, as a browser would be
login() {
    curl -s -D - -o /dev/null -H "Origin: $NGINX" --data "{\"username\":\"$1\",\"password\":\"correct-horse-battery-42\"}" \
        "$NGINX/api/v1/auth/login" | grep -io 'gf_session=[^;]*'
}
CA=$(login alice); CB=$(login bob); CO=$(login otto)
[ -n "$CA" ] && [ -n "$CB" ] && [ -n "$CO" ] || fail "logins through nginx"

# a web server (with a CGI that shows the cookies it got) and a WebSocket
# server (busybox nc and a script: the handshake, then one text frame)
WS_SCRIPT='key=
while IFS= read -r line; do
  line=$(printf "%s" "$line" | tr -d "\r")
  [ -z "$line" ] && break
  case "$line" in [Ss]ec-[Ww]eb[Ss]ocket-[Kk]ey:*) key=${line#*: };; esac
done
acc=$(printf "%s258EAFA5-E914-47DA-95CA-C5AB0DC85B11" "$key" | sha1sum | cut -d" " -f1 | sed "s/../\\\\x&/g")
acc=$(printf "$acc" | base64)
printf "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n" "$acc"
printf "\201\010in-a-box"
sleep 2'
CGI='#!/bin/sh
printf "Content-Type: text/plain\r\n\r\ncookie=[%s]\n" "$HTTP_COOKIE"'
body=$(jq -nc --arg ws "$WS_SCRIPT" --arg cgi "$CGI" '{name:"web1",image:"gf-busybox:1",gpus:0,ports:[80,81],
  env:{WS_SCRIPT:$ws,CGI:$cgi},
  command:["sh","-c","mkdir -p /www/cgi-bin && printf \"%s\" \"$CGI\" > /www/cgi-bin/c && chmod +x /www/cgi-bin/c && printf \"%s\" \"$WS_SCRIPT\" > /tmp/ws.sh && (while true; do nc -l -p 81 -e sh /tmp/ws.sh; done &) && exec httpd -f -p 80 -h /www"]}')
as alice POST /api/v1/containers "$body" > "$WORK/c.json"
[ "$HTTP_CODE" = 201 ] || fail "create: $HTTP_CODE $(cat "$WORK/c.json")"
id=$(jq -r .id "$WORK/c.json")
R="$NGINX/u/alice/web1/80/"
# route_up: up to 15 s for the route to answer three times in a row (just
# after nginx's reload an old worker may still answer with the old routes)
route_up() {
    local n=0
    for _ in $(seq 1 150); do
        if curl -s -b "$CA" "$R" | grep -q "hello from a gpufleet container"; then
            n=$((n + 1))
            [ $n -ge 3 ] && return 0
        else
            n=0
        fi
        sleep 0.1
    done
    return 1
}
t0=$(date +%s%N)
route_up
ms=$((($(date +%s%N) - t0) / 1000000))
curl -s -b "$CA" "$R" | grep -q "hello from a gpufleet container" || fail "the owner through the route: $(curl -s -i -b "$CA" "$R" | head -5); $(cat "$WORK/routes/nginx-routes.conf")"
grep -q 'location /u/alice/web1/80/' "$WORK/routes/nginx-routes.conf" || fail "no route in the file"
ok "the route /u/alice/web1/80/ works through nginx ${ms} ms after the create (file written, nginx reloaded)"

code() { curl -s -o /dev/null -w '%{http_code}' "$@"; }
[ "$(code -b "$CO" "$R")" = 200 ] || fail "an operator: $(code -b "$CO" "$R")"
[ "$(code -b "$CB" "$R")" = 403 ] || fail "another user: $(code -b "$CB" "$R")"
loc=$(curl -s -o /dev/null -w '%{http_code} %{redirect_url}' "$R")
[ "$loc" = "302 $NGINX/?next=/u/alice/web1/80/" ] || fail "logged out: $loc"
curl -s "$NGINX/?next=/u/alice/web1/80/" | grep -qi '<div id="app"\|<!doctype html' || fail "the login page"
ok "an operator reaches it too; another user gets 403; a logged-out browser goes to the login page"

got=$(curl -s -b "$CA; theme=dark" "${R}cgi-bin/c")
grep -q 'theme=dark' <<< "$got" || fail "the app's own cookies: $got"
grep -q "${CA#gf_session=}" <<< "$got" && fail "gpufleet's session reached the app: $got"
ok "the app gets the browser's cookies but not gpufleet's session ($got)"

cat > "$WORK/ws.py" <<'PY'
import asyncio, sys, websockets
async def main():
    async with websockets.connect(sys.argv[1], extra_headers=[("Cookie", sys.argv[2])], open_timeout=5) as ws:
        print(await asyncio.wait_for(ws.recv(), 5))
asyncio.run(main())
PY
out=$("$PY" "$WORK/ws.py" "ws://127.0.0.1:$NP/u/alice/web1/81/" "$CA" 2>&1) || fail "a WebSocket through the route: $out"
[ "$out" = in-a-box ] || fail "a WebSocket through the route: $out"
out=$("$PY" "$WORK/ws.py" "ws://127.0.0.1:$NP/u/alice/web1/81/" "$CB" 2>&1 || true)
grep -q 403 <<< "$out" || fail "another user's WebSocket: $out"
ok "a WebSocket in the container through the route (the owner's; another user's handshake is 403)"

as alice POST "/api/v1/containers/$id/stop" > /dev/null
for _ in $(seq 1 50); do grep -q 'web1' "$WORK/routes/nginx-routes.conf" || break; sleep 0.1; done
grep -q 'web1' "$WORK/routes/nginx-routes.conf" && fail "the route stays after a stop"
sleep 0.5
curl -s -b "$CA" "$R" | grep -q "hello from a gpufleet container" && fail "the stopped container is still routed"
as alice POST "/api/v1/containers/$id/start" > /dev/null
route_up || fail "started again: no route"
as alice DELETE "/api/v1/containers/$id" > /dev/null
for _ in $(seq 1 50); do grep -q 'web1' "$WORK/routes/nginx-routes.conf" || break; sleep 0.1; done
grep -q 'location /u/' "$WORK/routes/nginx-routes.conf" && fail "the route stays after removal"
sleep 0.5
curl -s -b "$CA" "$R" | grep -q "hello from a gpufleet container" && fail "the removed container is still routed"
ok "the route goes when the container stops, comes back when it starts, and goes when it is removed"

# the auth check itself: not a route path, no credential
h=(-H "X-Original-URI: /u/alice/x/1/")
[ "$(code "${h[@]}" "$SERVER_URL/api/v1/routes/auth")" = 401 ] || fail "auth without a credential"
[ "$(code -H "X-Original-URI: /elsewhere" -H "Authorization: Bearer $TOK_alice" "$SERVER_URL/api/v1/routes/auth")" = 404 ] || fail "auth of a non-route"
ok "/api/v1/routes/auth: 401 without a credential, 404 for what is not a route"
