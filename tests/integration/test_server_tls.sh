#!/usr/bin/env bash
# HTTPS: the server serving TLS itself (certificate and key files), with the
# session cookie marked Secure; then deploy/nginx-gpufleet.conf, run as it
# is, terminating TLS in front of a plain-HTTP server: sign-in, a change
# through the proxy passing the CSRF check, and SSO headers a client sends
# being dropped by the proxy.
source "$(dirname "$0")/lib.sh"
command -v openssl > /dev/null || fail "openssl missing (scripts/deps.sh)"

openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=127.0.0.1 \
    -addext subjectAltName=IP:127.0.0.1 -keyout "$WORK/key.pem" -out "$WORK/cert.pem" 2> "$WORK/openssl.log" \
    || fail "openssl: $(cat "$WORK/openssl.log")"
chmod 600 "$WORK/key.pem"

# a broken key is refused at start, by name
printf 'tls_cert_file: %s\ntls_key_file: %s\n' "$WORK/cert.pem" "$WORK/nope.pem" > "$WORK/bad.yaml"
if "$SERVER" serve --config "$WORK/bad.yaml" --listen 127.0.0.1:0 --data "$WORK/bad-data" > "$WORK/bad.log" 2>&1; then
    fail "a missing key was accepted"
fi
grep -q 'tls_key_file' "$WORK/bad.log" || fail "missing key not named: $(cat "$WORK/bad.log")"

printf 'tls_cert_file: %s\ntls_key_file: %s\n' "$WORK/cert.pem" "$WORK/key.pem" > "$WORK/tls.yaml"
SERVER_PORT=$(free_port)
mkdir -p "$WORK/tls-data"
make_admin "$WORK/tls-data"
"$SERVER" serve --config "$WORK/tls.yaml" --listen "127.0.0.1:$SERVER_PORT" --data "$WORK/tls-data" \
    > "$WORK/tls.log" 2>&1 &
PIDS+=($!)
URL="https://127.0.0.1:$SERVER_PORT"
for _ in $(seq 1 100); do curl -fsS -o /dev/null --cacert "$WORK/cert.pem" "$URL/healthz" 2>/dev/null && break; sleep 0.1; done
curl -fsS --cacert "$WORK/cert.pem" "$URL/healthz" | jq -e '.status == "ok"' > /dev/null || fail "healthz over TLS"
curl -fsS -o /dev/null "http://127.0.0.1:$SERVER_PORT/healthz" 2>/dev/null && fail "plain HTTP answered on the TLS port"
code=$(curl -s -o /dev/null -D "$WORK/h.txt" -w '%{http_code}' --cacert "$WORK/cert.pem" \
    --data "{\"username\":\"admin\",\"password\":\"$ADMIN_PASSWORD\"}" "$URL/api/v1/auth/login")
[ "$code" = 200 ] || fail "login over TLS: $code"
grep -i '^Set-Cookie:' "$WORK/h.txt" | grep -q '; Secure' || fail "cookie not Secure over TLS"
curl -fsS --cacert "$WORK/cert.pem" -H "Authorization: Bearer $GF_TOKEN" "$URL/api/v1/servers" > /dev/null \
    || fail "API over TLS"
ok "HTTPS served by gpufleet itself; the session cookie is Secure"

# nginx from deploy/, terminating TLS for a plain server that trusts it
command -v nginx > /dev/null || fail "nginx missing (scripts/deps.sh test)"
printf 'trusted_proxies: 127.0.0.1\n' > "$WORK/behind.yaml"
start_server behind --config "$WORK/behind.yaml"
NP=$(free_port)
mkdir -p "$WORK/nginx/logs"
sed -e "s|listen 443 ssl;|listen 127.0.0.1:$NP ssl;|" \
    -e "s|/etc/ssl/gpufleet/fullchain.pem|$WORK/cert.pem|" -e "s|/etc/ssl/gpufleet/privkey.pem|$WORK/key.pem|" \
    -e "s|http://127.0.0.1:8470|http://127.0.0.1:$SERVER_PORT|" "$SRC_DIR/deploy/nginx-gpufleet.conf" > "$WORK/nginx/site.conf"
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
nginx -t -p "$WORK/nginx" -c "$WORK/nginx/nginx.conf" > "$WORK/nginx-t.log" 2>&1 || fail "nginx -t: $(cat "$WORK/nginx-t.log")"
nginx -p "$WORK/nginx" -c "$WORK/nginx/nginx.conf" > "$WORK/nginx.log" 2>&1 &
PIDS+=($!)
PURL="https://127.0.0.1:$NP"
for _ in $(seq 1 100); do curl -fsS -o /dev/null --cacert "$WORK/cert.pem" "$PURL/healthz" 2>/dev/null && break; sleep 0.1; done
code=$(curl -s -o /dev/null -D "$WORK/ph.txt" -w '%{http_code}' --cacert "$WORK/cert.pem" \
    --data "{\"username\":\"admin\",\"password\":\"$ADMIN_PASSWORD\"}" "$PURL/api/v1/auth/login")
[ "$code" = 200 ] || fail "login through nginx: $code"
grep -i '^Set-Cookie:' "$WORK/ph.txt" | grep -q '; Secure' || fail "cookie not Secure behind the TLS proxy"
cookie=$(grep -io 'gf_session=[^;]*' "$WORK/ph.txt")
code=$(curl -s -o "$WORK/p.json" -w '%{http_code}' --cacert "$WORK/cert.pem" -b "$cookie" -H "Origin: $PURL" \
    --data '{"name":"via-proxy"}' "$PURL/api/v1/tokens")
[ "$code" = 201 ] || fail "a browser-style change through nginx: $code $(cat "$WORK/p.json")"
# a client's own SSO header is dropped by the proxy
code=$(curl -s -o /dev/null -w '%{http_code}' --cacert "$WORK/cert.pem" -H 'X-Fleet-Auth-User: mallory' \
    -H 'X-Fleet-Auth-Role: admin' "$PURL/api/v1/users")
[ "$code" = 401 ] || fail "spoofed SSO header passed through nginx: $code"
ok "deploy/nginx-gpufleet.conf: TLS in front, Secure cookie, CSRF check passes, spoofed SSO headers dropped"
