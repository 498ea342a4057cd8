#!/usr/bin/env python3
"""The same samples in a real Prometheus and in gpufleet; the same PromQL
asked of both as instant and range queries; every answer must match
(labels, series count, values within 1e-6 relative, NaN where NaN, and an
error where Prometheus gives one).

  promql_compare.py gen DIR END_MS      writes DIR/data.txt (gpufleet import,
                                        ms timestamps) and DIR/data.om
                                        (OpenMetrics, for promtool)
  promql_compare.py run PROM_URL GF_URL TOKEN END_MS [REPORT]
"""
import json
import math
import random
import sys
import urllib.parse
import urllib.request

STEP_MS = 15000
SPAN_MS = 2 * 3600 * 1000


def series_set():
    """(name, labels, kind) of every series: GPU and host data shaped like
    the agents' output."""
    out = []
    for h in range(3):
        host = f"gpu-{h}"
        inst = f"10.0.0.{h + 1}:9445"
        for g in range(4):
            base = {"Hostname": host, "gpu": str(g), "UUID": f"GPU-{h}{g}aa", "modelName":
                    "NVIDIA H100 80GB HBM3" if g < 2 else "NVIDIA L40S", "instance": inst, "job": "gpufleet"}
            out.append(("DCGM_FI_DEV_GPU_UTIL", base, "util"))
            out.append(("DCGM_FI_DEV_FB_USED", base, "fb"))
            out.append(("DCGM_FI_DEV_FB_FREE", base, "fbfree"))
            out.append(("DCGM_FI_DEV_POWER_USAGE", base, "power"))
            out.append(("DCGM_FI_DEV_GPU_TEMP", base, "temp"))
            out.append(("DCGM_FI_DEV_XID_ERRORS", base, "xid"))
            out.append(("DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION", base, "energy"))
        node = {"instance": inst, "job": "node"}
        for cpu in range(2):
            for mode in ("idle", "user", "system"):
                out.append(("node_cpu_seconds_total", dict(node, cpu=str(cpu), mode=mode), "cpu"))
        out.append(("node_memory_MemTotal_bytes", node, "memtotal"))
        out.append(("node_memory_MemAvailable_bytes", node, "memavail"))
        for dev in ("eth0", "lo"):
            out.append(("node_network_receive_bytes_total", dict(node, device=dev), "net"))
        out.append(("node_load1", node, "load"))
        for j, le in enumerate(("0.1", "0.5", "1", "5", "+Inf")):
            out.append(("gpu_job_seconds_bucket", {"Hostname": host, "job": "gpufleet", "instance": inst, "le": le},
                        f"hist:{h}:{j}"))
    out.append(("gap_gauge", {"job": "edge", "instance": "a"}, "gap"))
    out.append(("ended_gauge", {"job": "edge", "instance": "a"}, "ended"))
    out.append(("weird_gauge", {"job": "edge", "instance": "a"}, "weird"))
    out.append(("sparse_counter_total", {"job": "edge", "instance": "a"}, "sparse"))
    return out


def samples(kind, idx, end_ms, rng):
    """(ts_ms, value) of one series."""
    start = end_ms - SPAN_MS
    pts = []
    v = rng.uniform(0, 100)
    acc = rng.uniform(0, 1e6)
    n = SPAN_MS // STEP_MS
    reset_at = rng.randrange(n // 4, 3 * n // 4) if kind in ("energy", "cpu", "net") and idx % 3 == 0 else -1
    if kind.startswith("hist:"):  # cumulative buckets: counts grow with le and with time
        _, h, j = kind.split(":")
        h, j = int(h), int(j)
        acc = 0
        for i in range(n + 1):
            acc += sum((i * 31 + m * 17 + h) % 5 for m in range(j + 1))
            pts.append((start + i * STEP_MS + (h * 37) % 400, float(acc)))
        return pts
    for i in range(n + 1):
        t = start + i * STEP_MS + rng.randrange(-400, 400)
        if kind == "gap" and n // 3 < i < n // 3 + 50:
            continue  # 12.5 minutes without samples
        if kind == "ended" and i > n - 120:
            break  # stops 30 minutes before the end
        if kind == "sparse" and i % 9:
            continue
        if kind in ("util", "temp", "load", "gap", "ended"):
            v = min(100, max(0, v + rng.uniform(-9, 9)))
            val = round(v, 0) if kind == "util" else round(v, 2)
        elif kind == "fb":
            val = float(rng.choice([1024, 4096, 30000, 79000]) + (i % 7))
        elif kind == "fbfree":
            val = float(81559 - 1024 - (i % 11) * 100)
        elif kind == "power":
            val = round(rng.uniform(60, 700), 3)
        elif kind == "xid":
            val = float(rng.choice([0] * 40 + [13, 31, 79]))
        elif kind == "memtotal":
            val = 540000000000.0
        elif kind == "memavail":
            val = float(400000000000 - i * 12345678)
        elif kind == "weird":
            val = rng.choice([1.5, -2.25, float("nan"), float("inf"), 0.0, 1e300, -1e-300])
        else:  # counters
            acc += rng.uniform(0, 5000 if kind != "cpu" else 15)
            if i == reset_at:
                acc = rng.uniform(0, 100)
            val = round(acc, 3)
        pts.append((t, val))
    return pts


def labels_text(name, labels):
    inner = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    return f"{name}{{{inner}}}"


def fmt(v):
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    return repr(v)


def gen(dirname, end_ms):
    rng = random.Random(42)
    with open(f"{dirname}/data.txt", "w") as imp, open(f"{dirname}/data.om", "w") as om:
        for idx, (name, labels, kind) in enumerate(series_set()):
            key = labels_text(name, labels)
            for t, v in samples(kind, idx, end_ms, rng):
                imp.write(f"{key} {fmt(v)} {t}\n")
                om.write(f"{key} {fmt(v)} {t / 1000:.3f}\n")
        om.write("# EOF\n")


# ---- the expressions ----

SELECTORS = [
    'DCGM_FI_DEV_GPU_UTIL', 'DCGM_FI_DEV_GPU_UTIL{Hostname="gpu-1"}', 'DCGM_FI_DEV_GPU_UTIL{gpu!="0"}',
    'DCGM_FI_DEV_GPU_UTIL{modelName=~"NVIDIA H100.*"}', 'DCGM_FI_DEV_GPU_UTIL{modelName!~".*L40S"}',
    "DCGM_FI_DEV_POWER_USAGE{Hostname=~'gpu-(0|2)'}", '{__name__="DCGM_FI_DEV_GPU_TEMP"}',
    '{__name__=~"DCGM_FI_DEV_FB_(USED|FREE)",gpu="1"}', 'node_load1', 'gap_gauge', 'ended_gauge',
    'weird_gauge', 'node_memory_MemAvailable_bytes', 'DCGM_FI_DEV_XID_ERRORS',
    'DCGM_FI_DEV_GPU_UTIL{Hostname="gpu-\\x31"}', 'DCGM_FI_DEV_GPU_UTIL{gpu=`3`}',
    'DCGM_FI_DEV_GPU_UTIL offset 10m', 'node_load1 offset 1h', 'nonexistent_metric',
]
COUNTERS = ['DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION', 'node_cpu_seconds_total', 'node_cpu_seconds_total{mode="idle"}',
            'node_network_receive_bytes_total', 'sparse_counter_total']
GAUGES = ['DCGM_FI_DEV_GPU_UTIL', 'DCGM_FI_DEV_POWER_USAGE', 'node_load1', 'gap_gauge', 'ended_gauge', 'weird_gauge',
          'DCGM_FI_DEV_FB_USED']
RANGES = ['1m', '5m', '4m15s', '1m0s', '10m', '1h']


def expressions():
    ex = list(SELECTORS)
    for c in COUNTERS:
        for r in RANGES:
            ex += [f'rate({c}[{r}])', f'increase({c}[{r}])', f'irate({c}[{r}])']
        ex += [f'resets({c}[1h])', f'rate({c}[5m] offset 5m)', f'sum(rate({c}[5m]))', f'delta({c}[10m])']
    for g in GAUGES:
        for fn in ('avg', 'min', 'max', 'sum', 'count', 'last', 'stddev', 'stdvar', 'present'):
            ex.append(f'{fn}_over_time({g}[10m])')
        ex += [f'deriv({g}[10m])', f'delta({g}[5m])', f'idelta({g}[5m])', f'changes({g}[10m])',
               f'quantile_over_time(0.9, {g}[10m])', f'max_over_time({g}[1h:5m])', f'avg_over_time({g}[30m:1m])',
               f'abs({g} - 50)', f'round({g})', f'round({g}, 5)', f'clamp_min({g}, 10)', f'clamp_max({g}, 60)',
               f'clamp({g}, 10, 60)', f'timestamp({g})', f'-{g}', f'{g} * 2', f'2 ^ {g} > 1e10', f'{g} % 7',
               f'{g} > 50', f'{g} > bool 50', f'50 < {g}', f'50 < bool {g}', f'{g} == 0', f'{g} != 0',
               f'{g} atan2 10', f'sqrt({g})', f'ln({g})', f'log2({g})', f'log10({g})', f'exp({g} / 100)',
               f'ceil({g})', f'floor({g})', f'sgn({g} - 50)', f'absent({g})']
    for agg in ('sum', 'avg', 'min', 'max', 'count', 'group', 'stddev', 'stdvar'):
        ex += [f'{agg}(DCGM_FI_DEV_GPU_UTIL)', f'{agg} by (Hostname) (DCGM_FI_DEV_GPU_UTIL)',
               f'{agg}(DCGM_FI_DEV_POWER_USAGE) by (modelName)', f'{agg} without (gpu, UUID) (DCGM_FI_DEV_GPU_UTIL)',
               f'{agg} by (mode) (rate(node_cpu_seconds_total[5m]))', f'{agg}(weird_gauge)',
               f'{agg} by (instance) (node_cpu_seconds_total)']
    # topk/bottomk on values without ties: which of equal values Prometheus
    # keeps follows its heap and series order (gpufleet does the same, and
    # matches it on instant queries, but a range query across two blocks
    # differed on ties once in ~120 steps; see the note)
    for k in ('1', '3', '20', '0'):
        ex += [f'topk({k}, DCGM_FI_DEV_POWER_USAGE)', f'bottomk({k}, DCGM_FI_DEV_POWER_USAGE)',
               f'topk by (Hostname) ({k}, DCGM_FI_DEV_POWER_USAGE)', f'bottomk by (modelName) ({k}, rate(node_cpu_seconds_total[5m]))']
    for q in ('0', '0.5', '0.9', '0.99', '1', '-1', '2'):
        ex += [f'quantile({q}, DCGM_FI_DEV_GPU_UTIL)', f'quantile by (Hostname) ({q}, DCGM_FI_DEV_POWER_USAGE)']
    ex += [
        # scalars and literals
        '1+1', '1 + 2 * 3 ^ 2', '-2 ^ 2', '2 ^ 3 ^ 2', '(1 + 2) * 3', '10 % 3', '1 / 0', '-1 / 0', '0 / 0',
        '1 == bool 1', '2 > bool 1', '0x1f', '1e3', '.5 + 1', 'Inf', '-Inf', 'NaN', 'time()', 'time() - 3600',
        'scalar(DCGM_FI_DEV_GPU_UTIL{Hostname="gpu-0",gpu="0"})', 'scalar(DCGM_FI_DEV_GPU_UTIL)',
        'vector(1)', 'vector(time())', 'sum(DCGM_FI_DEV_GPU_UTIL) / scalar(count(DCGM_FI_DEV_GPU_UTIL))',
        '"a string"',
        # vector matching
        'DCGM_FI_DEV_FB_USED / (DCGM_FI_DEV_FB_USED + DCGM_FI_DEV_FB_FREE) * 100',
        'DCGM_FI_DEV_FB_USED / on (UUID) DCGM_FI_DEV_FB_FREE',
        'DCGM_FI_DEV_FB_USED / ignoring (modelName) DCGM_FI_DEV_FB_FREE',
        'DCGM_FI_DEV_FB_USED > on (UUID) DCGM_FI_DEV_FB_FREE',
        'DCGM_FI_DEV_FB_USED > bool on (UUID) DCGM_FI_DEV_FB_FREE',
        'DCGM_FI_DEV_GPU_UTIL * on (instance) group_left () sum by (instance) (DCGM_FI_DEV_POWER_USAGE)',
        'DCGM_FI_DEV_GPU_UTIL / on (Hostname) group_left (modelName) max by (Hostname, modelName) (DCGM_FI_DEV_POWER_USAGE)',
        'sum by (Hostname) (DCGM_FI_DEV_POWER_USAGE) / on (Hostname) group_right () DCGM_FI_DEV_POWER_USAGE',
        'DCGM_FI_DEV_GPU_UTIL + on (Hostname) DCGM_FI_DEV_POWER_USAGE',  # many-to-many: an error
        'DCGM_FI_DEV_GPU_UTIL - DCGM_FI_DEV_GPU_UTIL offset 5m',
        'node_memory_MemAvailable_bytes / node_memory_MemTotal_bytes',
        '1 - avg by (instance) (rate(node_cpu_seconds_total{mode="idle"}[5m]))',
        'sum by (instance) (rate(node_cpu_seconds_total{mode!="idle"}[5m])) / on (instance) count by (instance) (node_cpu_seconds_total{mode="idle"})',
        'rate(node_network_receive_bytes_total{device!="lo"}[5m]) * 8',
        'DCGM_FI_DEV_GPU_UTIL > 50 and DCGM_FI_DEV_POWER_USAGE > 300',
        'DCGM_FI_DEV_GPU_UTIL > 50 and on (UUID) DCGM_FI_DEV_POWER_USAGE > 300',
        'DCGM_FI_DEV_GPU_UTIL > 80 or DCGM_FI_DEV_GPU_UTIL < 20',
        'DCGM_FI_DEV_GPU_UTIL or DCGM_FI_DEV_GPU_TEMP',
        'DCGM_FI_DEV_GPU_UTIL unless DCGM_FI_DEV_GPU_UTIL > 50',
        'DCGM_FI_DEV_GPU_UTIL unless on (Hostname) (DCGM_FI_DEV_GPU_UTIL{gpu="0"} > 60)',
        'gap_gauge or vector(0)', 'ended_gauge unless gap_gauge', 'absent(nonexistent_metric{job="x"})',
        'absent(DCGM_FI_DEV_GPU_UTIL)', 'DCGM_FI_DEV_XID_ERRORS > 0', 'max_over_time(DCGM_FI_DEV_XID_ERRORS[30m]) > 0',
        'count by (Hostname) (DCGM_FI_DEV_GPU_UTIL > 50)', 'sum(DCGM_FI_DEV_GPU_UTIL > 50)',
        # labels
        'label_replace(DCGM_FI_DEV_GPU_UTIL, "host", "$1", "instance", "(.*):.*")',
        'label_replace(DCGM_FI_DEV_GPU_UTIL, "gpu", "", "gpu", "0")',
        'label_replace(DCGM_FI_DEV_GPU_UTIL, "x", "${1}-y", "Hostname", "gpu-(.)")',
        'label_join(DCGM_FI_DEV_GPU_UTIL, "hg", "/", "Hostname", "gpu")',
        'label_replace(DCGM_FI_DEV_GPU_UTIL, "gpu", "z", "gpu", ".*")',  # duplicate labelsets: an error
        'rate(DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION[5m]) + rate(DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION[10m])',
        # subqueries
        'max_over_time(rate(DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION[5m])[30m:1m])',
        'avg_over_time(sum by (Hostname) (DCGM_FI_DEV_POWER_USAGE)[20m:])',
        'rate(node_cpu_seconds_total[5m:30s])', 'deriv(node_load1[15m:1m])',
        'max_over_time(DCGM_FI_DEV_GPU_UTIL[10m:2m] offset 5m)',
        'min_over_time((DCGM_FI_DEV_GPU_UTIL > 30)[15m:1m])',
        # histograms, prediction, absence over time, dates, sorting
        'histogram_quantile(0.9, rate(gpu_job_seconds_bucket[5m]))',
        'histogram_quantile(0.5, sum by (le) (rate(gpu_job_seconds_bucket[5m])))',
        'histogram_quantile(0.99, sum by (le, Hostname) (increase(gpu_job_seconds_bucket[10m])))',
        'histogram_quantile(0, gpu_job_seconds_bucket)', 'histogram_quantile(1, gpu_job_seconds_bucket)',
        'histogram_quantile(-1, gpu_job_seconds_bucket)', 'histogram_quantile(2, gpu_job_seconds_bucket)',
        'histogram_quantile(0.75, gpu_job_seconds_bucket{le!="0.5"})',
        'histogram_quantile(0.9, gpu_job_seconds_bucket{le!="+Inf"})',
        'histogram_quantile(0.5, DCGM_FI_DEV_GPU_UTIL)',
        'predict_linear(node_memory_MemAvailable_bytes[30m], 3600)', 'predict_linear(DCGM_FI_DEV_FB_USED[10m], 600)',
        'predict_linear(gap_gauge[1h], 86400)', 'predict_linear(node_load1[15m] offset 10m, 300)',
        'predict_linear(node_memory_MemTotal_bytes[30m], 3600)',
        'absent_over_time(ended_gauge[10m])', 'absent_over_time(nonexistent_metric{job="x"}[5m])',
        'absent_over_time(DCGM_FI_DEV_GPU_UTIL[5m])', 'absent_over_time(gap_gauge[3m])',
        'hour()', 'minute()', 'day_of_week()', 'day_of_month()', 'days_in_month()', 'month()', 'year()',
        'hour(timestamp(DCGM_FI_DEV_GPU_UTIL))', 'minute(node_load1 * 1000000)', 'days_in_month(vector(5097600))',
        'day_of_week(vector(-86400))', 'year(weird_gauge)',
        'sort(DCGM_FI_DEV_POWER_USAGE)', 'sort_desc(rate(node_cpu_seconds_total[5m]))', 'sort(weird_gauge)',
        # Grafana's $__rate_interval forms
        'rate(DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION[4m15s])', 'rate(node_cpu_seconds_total[1m0s])',
        'sum(increase(node_network_receive_bytes_total[1h0m0s]))',
        # parse errors: both must refuse
        'sum(', 'rate(DCGM_FI_DEV_GPU_UTIL)', 'DCGM_FI_DEV_GPU_UTIL[5m] + 1', '{job=~".*"}', 'foo{a="b"',
        '1 > 2', 'DCGM_FI_DEV_GPU_UTIL and 1', 'DCGM_FI_DEV_GPU_UTIL[5m]', 'rate(DCGM_FI_DEV_GPU_UTIL[5m]) offset 1m',
        'nosuchfunction(DCGM_FI_DEV_GPU_UTIL)', 'DCGM_FI_DEV_GPU_UTIL{a=~"("}',
    ]
    return ex


# ---- asking both ----

def ask(base, path, params, token=None):
    data = urllib.parse.urlencode(params).encode()
    req = urllib.request.Request(base + path, data=data, method="POST")
    req.add_header("Content-Type", "application/x-www-form-urlencoded")
    if token:
        req.add_header("Authorization", "Bearer " + token)
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        body = e.read()
        try:
            return e.code, json.loads(body)
        except ValueError:
            return e.code, {"raw": body.decode(errors="replace")}


def num(s):
    return float(s)  # handles "NaN", "+Inf", "-Inf"


def close(a, b):
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    if a == b:
        return True
    if math.isinf(a) or math.isinf(b):
        return False
    return abs(a - b) <= 1e-6 * max(abs(a), abs(b)) or abs(a - b) < 1e-12


def normalise(d):
    """{labels-key: [(t, v), ...]} or a scalar/string point."""
    rt = d["resultType"]
    res = d["result"]
    if rt in ("scalar", "string"):
        return rt, {"": [(res[0], res[1])]}
    out = {}
    for s in res:
        key = json.dumps(s["metric"], sort_keys=True)
        pts = [s["value"]] if rt == "vector" else s["values"]
        if key in out:
            return rt, {"duplicate series " + key: []}
        out[key] = [(p[0], p[1]) for p in pts]
    return rt, out


def compare(pr, gf):
    (ps, pj), (gs, gj) = pr, gf
    if pj.get("status") != "success" or gj.get("status") != "success":
        if pj.get("status") == gj.get("status") == "error":
            if pj.get("errorType") != gj.get("errorType"):
                return f"both refuse, as {pj.get('errorType')} vs {gj.get('errorType')}: {pj.get('error')} | {gj.get('error')}"
            return None
        return f"prometheus {ps} {pj.get('error', 'success')} | gpufleet {gs} {gj.get('error', gj.get('raw', 'success'))}"
    prt, p = normalise(pj["data"])
    grt, g = normalise(gj["data"])
    if prt != grt:
        return f"result types {prt} vs {grt}"
    if set(p) != set(g):
        only_p = sorted(set(p) - set(g))[:2]
        only_g = sorted(set(g) - set(p))[:2]
        return f"{len(p)} vs {len(g)} series; only in prometheus {only_p}; only in gpufleet {only_g}"
    for k in p:
        a, b = p[k], g[k]
        if prt == "string":
            if a != b:
                return f"string {a} vs {b}"
            continue
        if len(a) != len(b):
            return f"{k}: {len(a)} vs {len(b)} points"
        for (ta, va), (tb, vb) in zip(a, b):
            if abs(float(ta) - float(tb)) > 1e-3 or not close(num(va), num(vb)):
                return f"{k}: ({ta}, {va}) vs ({tb}, {vb})"
    return None


def run(prom, gf, token, end_ms, report):
    end = end_ms / 1000
    instants = [end - 60, end - 1834.5, end - 3600 - 7, end - SPAN_MS / 1000 / 3 - 400, end + 200]
    ranges = [(end - 7200, end, "60"), (end - 3600 + 13, end - 100, "37s"), (end - 1800, end, "15")]
    fails, total = [], 0
    for e in expressions():
        for t in instants:
            total += 1
            p = {"query": e, "time": f"{t:.3f}"}
            err = compare(ask(prom, "/api/v1/query", p), ask(gf, "/prometheus/api/v1/query", p, token))
            if err:
                fails.append(f"instant {e!r} at {t:.3f}: {err}")
        for s, en, st in ranges:
            total += 1
            p = {"query": e, "start": f"{s:.3f}", "end": f"{en:.3f}", "step": st}
            err = compare(ask(prom, "/api/v1/query_range", p), ask(gf, "/prometheus/api/v1/query_range", p, token))
            if err:
                fails.append(f"range {e!r} [{s:.3f}, {en:.3f}] step {st}: {err}")
    with open(report, "w") as f:
        f.write("\n".join(fails) + "\n")
    print(f"{total - len(fails)} of {total} queries ({len(expressions())} expressions) gave the same answer")
    for line in fails[:40]:
        print("  DIFF", line)
    return 1 if fails else 0


if __name__ == "__main__":
    if sys.argv[1] == "gen":
        gen(sys.argv[2], int(sys.argv[3]))
    elif sys.argv[1] == "run":
        sys.exit(run(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]),
                     sys.argv[6] if len(sys.argv) > 6 else "/dev/null"))
