# Shared helpers of the benchmark scripts (sourced).

# wait_http URL: up to 15 s for URL to answer 2xx.
wait_http() { for _ in $(seq 1 300); do curl -fsS -o /dev/null "$1" 2>/dev/null && return 0; sleep 0.05; done; return 1; }

# median: of the numbers on stdin, one a line.
median() { sort -g | awk '{a[NR] = $1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }

# cpu_of PID: user + system clock ticks the process has used.
cpu_of() { awk '{print $14 + $15}' "/proc/$1/stat"; }

# nginx_targets_conf WORK BASE N [LOCATION_EXTRA]: an nginx configuration
# (on stdout) serving WORK/metrics as /metrics on N loopback ports from
# BASE, so each simulated exporter costs the machine nothing but its bytes.
nginx_targets_conf() {
    local work=$1 base=$2 n=$3 extra=${4:-}
    echo "daemon off; worker_processes 1; pid $work/nginx.pid; error_log $work/nginx.err;"
    echo "worker_rlimit_nofile 8192; events { worker_connections 4096; }"
    echo "http { access_log off; keepalive_requests 100000;"
    for t in client_body proxy fastcgi uwsgi scgi; do echo "${t}_temp_path $work;"; done
    echo "server {"
    for i in $(seq 0 $((n - 1))); do echo "listen 127.0.0.1:$((base + i));"; done
    echo "location = /metrics { alias $work/metrics; default_type text/plain; $extra } } }"
}
