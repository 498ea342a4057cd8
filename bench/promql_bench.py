#!/usr/bin/env python3
"""PromQL speed, gpufleet against Prometheus 2.42 on the same data.

  promql_bench.py gen DIR END_MS HOSTS     DIR/data.txt (import) + DIR/data.om (promtool)
  promql_bench.py run PROM_URL GF_URL TOKEN END_MS RUNS

Data: HOSTS hosts x 8 GPUs of utilization, and one host (gpu-000) with
everything a DCGM + node dashboard reads, every 30 s over 24 h."""
import statistics
import sys
import time
import urllib.parse
import urllib.request
import random

STEP_MS = 30000
SPAN_MS = 24 * 3600 * 1000
GPU_METRICS = ["DCGM_FI_DEV_GPU_UTIL", "DCGM_FI_DEV_FB_USED", "DCGM_FI_DEV_FB_FREE", "DCGM_FI_DEV_POWER_USAGE",
               "DCGM_FI_DEV_GPU_TEMP", "DCGM_FI_DEV_SM_CLOCK", "DCGM_FI_DEV_XID_ERRORS",
               "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION"]


def gen(d, end_ms, hosts):
    rng = random.Random(7)
    start = end_ms - SPAN_MS
    n = SPAN_MS // STEP_MS
    # the import goes time by time, as scrapes would have stored it (every
    # series of a host in the same rows); promtool wants series by series
    rows = [[] for _ in range(n)]
    with open(f"{d}/data.om", "w") as om:
        def series(key, values):
            for i, v in enumerate(values):
                t = start + i * STEP_MS
                rows[i].append(f"{key} {v} {t}\n")
                om.write(f"{key} {v} {t / 1000:.3f}\n")
        for h in range(hosts):
            host = f"gpu-{h:03d}"
            for g in range(8):
                lab = f'Hostname="{host}",UUID="GPU-{h:03d}-{g}",gpu="{g}",instance="{host}:9445",job="gpufleet",modelName="NVIDIA H100 80GB HBM3"'
                metrics = GPU_METRICS if h == 0 else GPU_METRICS[:1]
                for m in metrics:
                    acc, vals = 0.0, []
                    for i in range(n):
                        if m.endswith("CONSUMPTION"):
                            acc += rng.uniform(1e5, 7e5)
                            vals.append(round(acc))
                        elif m.endswith("XID_ERRORS"):
                            vals.append(0)
                        else:
                            vals.append(rng.randrange(0, 100))
                    series(f"{m}{{{lab}}}", vals)
        node = 'instance="gpu-000:9100",job="node"'
        for cpu in range(16):
            for mode in ("idle", "user", "system", "iowait"):
                acc, vals = 0.0, []
                for i in range(n):
                    acc += rng.uniform(0, 30)
                    vals.append(round(acc, 2))
                series(f'node_cpu_seconds_total{{cpu="{cpu}",{node},mode="{mode}"}}', vals)
        for m in ("node_memory_MemTotal_bytes", "node_memory_MemAvailable_bytes", "node_load1"):
            series(f"{m}{{{node}}}", [rng.randrange(1, 1 << 40) for _ in range(n)])
        for dev in ("eth0", "ib0"):
            for m in ("node_network_receive_bytes_total", "node_network_transmit_bytes_total"):
                acc, vals = 0.0, []
                for i in range(n):
                    acc += rng.uniform(0, 1e9)
                    vals.append(round(acc))
                series(f'{m}{{device="{dev}",{node}}}', vals)
        om.write("# EOF\n")
    with open(f"{d}/data.txt", "w") as imp:
        for r in rows:
            imp.writelines(r)


H = 'Hostname="gpu-000"'
DASHBOARD = [
    f'DCGM_FI_DEV_GPU_UTIL{{{H}}}', f'avg(DCGM_FI_DEV_GPU_UTIL{{{H}}})', f'DCGM_FI_DEV_GPU_TEMP{{{H}}}',
    f'max(DCGM_FI_DEV_GPU_TEMP{{{H}}})', f'DCGM_FI_DEV_POWER_USAGE{{{H}}}', f'sum(DCGM_FI_DEV_POWER_USAGE{{{H}}})',
    f'DCGM_FI_DEV_SM_CLOCK{{{H}}} * 1000000', f'DCGM_FI_DEV_FB_USED{{{H}}}',
    f'DCGM_FI_DEV_FB_USED{{{H}}} / (DCGM_FI_DEV_FB_USED{{{H}}} + DCGM_FI_DEV_FB_FREE{{{H}}}) * 100',
    f'rate(DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION{{{H}}}[4m0s]) / 1000',
    f'sum(increase(DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION{{{H}}}[1h])) / 3.6e9',
    f'max_over_time(DCGM_FI_DEV_XID_ERRORS{{{H}}}[5m])', f'avg_over_time(DCGM_FI_DEV_GPU_UTIL{{{H}}}[10m])',
    f'topk(3, DCGM_FI_DEV_POWER_USAGE{{{H}}})', f'quantile(0.9, DCGM_FI_DEV_GPU_UTIL{{{H}}})',
    'sum by (mode) (rate(node_cpu_seconds_total{instance="gpu-000:9100"}[4m0s]))',
    '100 - avg(rate(node_cpu_seconds_total{instance="gpu-000:9100",mode="idle"}[4m0s])) * 100',
    'count(count by (cpu) (node_cpu_seconds_total{instance="gpu-000:9100"}))',
    'node_memory_MemTotal_bytes{instance="gpu-000:9100"} - node_memory_MemAvailable_bytes{instance="gpu-000:9100"}',
    '(1 - node_memory_MemAvailable_bytes{instance="gpu-000:9100"} / node_memory_MemTotal_bytes{instance="gpu-000:9100"}) * 100',
    'node_load1{instance="gpu-000:9100"}',
    'rate(node_network_receive_bytes_total{instance="gpu-000:9100"}[4m0s]) * 8',
    'rate(node_network_transmit_bytes_total{instance="gpu-000:9100"}[4m0s]) * 8',
    'irate(node_network_receive_bytes_total{instance="gpu-000:9100",device="ib0"}[4m0s])',
    f'DCGM_FI_DEV_GPU_UTIL{{{H}}} > 90', f'count(DCGM_FI_DEV_GPU_UTIL{{{H}}} > 50)',
    f'DCGM_FI_DEV_POWER_USAGE{{{H}}} * on (UUID) group_left DCGM_FI_DEV_GPU_UTIL{{{H}}} / 100',
    f'max_over_time(DCGM_FI_DEV_GPU_TEMP{{{H}}}[1h:5m])', f'deriv(DCGM_FI_DEV_FB_USED{{{H}}}[10m])',
    f'stddev_over_time(DCGM_FI_DEV_GPU_UTIL{{{H}}}[10m])',
]
FLEET = 'avg by (Hostname) (DCGM_FI_DEV_GPU_UTIL)'


def ask(base, path, params, token=None):
    req = urllib.request.Request(base + path, data=urllib.parse.urlencode(params).encode(), method="POST")
    req.add_header("Content-Type", "application/x-www-form-urlencoded")
    if token:
        req.add_header("Authorization", "Bearer " + token)
    t0 = time.perf_counter()
    with urllib.request.urlopen(req, timeout=300) as r:
        body = r.read()
    dt = time.perf_counter() - t0
    assert b'"success"' in body[:40], body[:200]
    return dt


def run(prom, gf, token, end_ms, runs):
    end = end_ms / 1000
    p = lambda q: {"query": q, "start": f"{end - 86400:.0f}", "end": f"{end:.0f}", "step": "60"}
    path = "/api/v1/query_range"
    totals = {"prometheus": [], "gpufleet": []}
    for _ in range(runs):
        totals["prometheus"].append(sum(ask(prom, path, p(q)) for q in DASHBOARD))
        totals["gpufleet"].append(sum(ask(gf, "/prometheus" + path, p(q), token) for q in DASHBOARD))
    tp, tg = statistics.median(totals["prometheus"]), statistics.median(totals["gpufleet"])
    print(f"dashboard ({len(DASHBOARD)} range queries, 24 h, step 60 s, median of {runs}): "
          f"gpufleet {tg * 1000:.0f} ms, prometheus {tp * 1000:.0f} ms, ratio {tg / tp:.2f} (budget <= 0.5)")
    # alternated, each after a pause: one side's leftover work (Go's
    # collector after a big answer) must not land in the other's time
    fps, fgs = [], []
    for _ in range(runs):
        time.sleep(0.3)
        fps.append(ask(prom, path, p(FLEET)))
        time.sleep(0.3)
        fgs.append(ask(gf, "/prometheus" + path, p(FLEET), token))
    fp, fg = statistics.median(fps), statistics.median(fgs)
    print(f"{FLEET} over the fleet, 24 h, step 60 s: gpufleet {fg * 1000:.1f} ms (budget 50), "
          f"prometheus {fp * 1000:.1f} ms, ratio {fg / fp:.2f}")
    slow = sorted(((ask(gf, "/prometheus" + path, p(q), token), q) for q in DASHBOARD), reverse=True)[:5]
    for dt, q in slow:
        print(f"  gpufleet slowest: {dt * 1000:7.1f} ms  {q}")


if __name__ == "__main__":
    if sys.argv[1] == "gen":
        gen(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
    else:
        run(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]), int(sys.argv[6]))
