#!/usr/bin/env python3
"""Asks every expression of the shipped Grafana dashboards of one or two
Prometheus-API data sources, as Grafana would: the dashboard's variables
resolved through the API (label_values), $__rate_interval substituted, table
panels as instant queries, the rest as range queries. Every expression must
return data (a series with a number that is not NaN); with two data sources
both must return the same label sets, the labels named by --ignore-label
aside (target labels one side adds).

usage: grafana_dashboards.py [--ignore-label NAME]... [--rate-interval D]
                             DASHBOARD_DIR NAME=URL[,TOKEN]...
"""
import glob
import json
import math
import re
import sys
import time
import urllib.error
import urllib.parse
import urllib.request


def api(src, path, params, method="POST"):
    """POST form bodies for queries, as Grafana's httpMethod POST; GET where
    Prometheus takes only GET (label values)."""
    url, token = src
    data = urllib.parse.urlencode(params, doseq=True)
    if method == "GET":
        req = urllib.request.Request(url + "/api/v1/" + path + "?" + data)
    else:
        req = urllib.request.Request(url + "/api/v1/" + path, data=data.encode(), method="POST")
        req.add_header("Content-Type", "application/x-www-form-urlencoded")
    if token:
        req.add_header("Authorization", "Bearer " + token)
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            body = json.load(r)
    except urllib.error.HTTPError as e:
        raise RuntimeError(f"{url} {path} {params}: HTTP {e.code} {e.read()[:300]!r}") from None
    if body.get("status") != "success":
        raise RuntimeError(f"{path} {params}: {body}")
    return body["data"]


def substitute(expr, variables, rate_interval):
    expr = expr.replace("$__rate_interval", rate_interval).replace("$__interval", "2s")
    for name, value in variables.items():
        expr = expr.replace("${" + name + "}", value).replace("$" + name, value)
    return expr


def resolve_variables(dash, src, rate_interval):
    variables = {}
    for v in dash.get("templating", {}).get("list", []):
        if v["type"] != "query":
            continue
        q = v["query"]["query"] if isinstance(v["query"], dict) else v["query"]
        q = substitute(q, variables, rate_interval)
        m = re.fullmatch(r"label_values\((.*),\s*(\w+)\)", q)
        if not m:
            raise RuntimeError(f"{dash['title']}: variable {v['name']}: {q} is not label_values(SELECTOR, LABEL)")
        values = api(src, f"label/{m.group(2)}/values", {"match[]": m.group(1)}, "GET")
        if not values:
            raise RuntimeError(f"{dash['title']}: variable {v['name']} ({q}) has no value")
        variables[v["name"]] = sorted(values)[0]
    return variables


def label_sets(result, ignore):
    return sorted(json.dumps({k: v for k, v in s["metric"].items() if k not in ignore}, sort_keys=True)
                  for s in result)


def has_number(result, key):
    for s in result:
        for _, val in ([s["value"]] if key == "value" else s["values"]):
            if not math.isnan(float(val)):
                return True
    return False


def ask(src, expr, instant, now):
    if instant:
        return api(src, "query", {"query": expr, "time": now})["result"], "value"
    return api(src, "query_range", {"query": expr, "start": now - 30, "end": now, "step": 2})["result"], "values"


def main(argv):
    ignore, rate_interval, args = set(), "10s", []
    i = 0
    while i < len(argv):
        if argv[i] == "--ignore-label":
            ignore.add(argv[i + 1]); i += 2
        elif argv[i] == "--rate-interval":
            rate_interval = argv[i + 1]; i += 2
        else:
            args.append(argv[i]); i += 1
    directory, sources = args[0], {}
    for a in args[1:]:
        name, rest = a.split("=", 1)
        url, _, token = rest.partition(",")
        sources[name] = (url.rstrip("/"), token)
    bad, asked = [], 0
    now = time.time()
    for path in sorted(glob.glob(directory + "/*.json")):
        dash = json.load(open(path))
        answers = {}
        for name, src in sources.items():
            variables = resolve_variables(dash, src, rate_interval)
            for p in dash["panels"]:
                for t in p.get("targets", []):
                    expr = substitute(t["expr"], variables, rate_interval)
                    result, key = ask(src, expr, p["type"] == "table", now)
                    asked += 1
                    where = f"{dash['title']} / {p['title']} [{name}]: {expr}"
                    if not result or not has_number(result, key):
                        bad.append(f"no data: {where}")
                    answers.setdefault((p["title"], t["refId"]), {})[name] = (expr, label_sets(result, ignore))
        if len(sources) == 2:
            for panel, by in answers.items():
                (a_name, (a_expr, a)), (b_name, (b_expr, b)) = list(by.items())
                if a != b:
                    bad.append(f"{dash['title']} / {panel[0]}: {a_name} and {b_name} differ on {a_expr}:\n"
                               f"  {a_name}: {a[:3]}\n  {b_name}: {b[:3]}")
    for b in bad:
        print(b)
    print(f"{asked} dashboard queries asked, {len(bad)} problems")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
