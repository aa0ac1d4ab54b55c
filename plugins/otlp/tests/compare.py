#!/usr/bin/env python3
"""Decodes every OTLP body a receiver stored with protoc (the independent decoder) and compares
each data point and log record with the file sink's JSON lines, both ways.
  compare.py PROTO_DIR BODIES_DIR FILE_SINK_JSONL ENGINE_ID RESOURCE_KEY=VALUE [CUTOFF_NS]
Items of the file sink newer than CUTOFF_NS may be missing: the engine stopped while they were
still in the spool."""
import collections
import gzip
import json
import os
import re
import subprocess
import sys

proto_dir, bodies, jsonl, engine_id, extra = sys.argv[1:6]
cutoff = int(sys.argv[6]) if len(sys.argv) > 6 else 1 << 62
extra_key, _, extra_value = extra.partition("=")
fails = []


def check(ok, what):
    if not ok:
        fails.append(what)


TOKEN = re.compile(r'\s*(?:([A-Za-z_][\w.]*)|("(?:[^"\\]|\\.)*")|([-+0-9.eEinfa]+)|([{}:]))')


def unquote(s):
    raw = s[1:-1].encode("latin-1").decode("unicode_escape").encode("latin-1")
    return raw.decode("utf-8")


def parse_text(text):
    """protoc's text format into dicts of lists: {field: [value or dict, ...]}."""
    pos, stack = 0, [collections.defaultdict(list)]
    pending = None
    while True:
        m = TOKEN.match(text, pos)
        if not m or m.end() == pos:
            break
        pos = m.end()
        ident, string, number, punct = m.groups()
        if punct == "{":
            child = collections.defaultdict(list)
            stack[-1][pending].append(child)
            stack.append(child)
            pending = None
        elif punct == "}":
            stack.pop()
        elif punct == ":":
            continue
        elif pending is None and ident is not None:
            pending = ident
        else:
            value = unquote(string) if string else (number if number else ident)
            stack[-1][pending].append(value)
            pending = None
    assert text[pos:].strip() == "", "unparsed text: " + text[pos:pos + 80]
    return stack[0]


def decode(path, message, proto):
    data = open(path, "rb").read()
    if path.endswith(".gz"):
        data = gzip.decompress(data)
    out = subprocess.run(["protoc", "-I", proto_dir, f"--decode={message}", proto], input=data,
                         capture_output=True, check=True)
    return parse_text(out.stdout.decode())


def attrs(kvs):
    return {kv["key"][0]: kv["value"][0]["string_value"][0] for kv in kvs}


def one(d, key):
    return d[key][0] if d.get(key) else None


SEV = {0: (24, "EMERGENCY"), 1: (23, "ALERT"), 2: (21, "CRITICAL"), 3: (17, "ERROR"),
       4: (13, "WARNING"), 5: (10, "NOTICE"), 6: (9, "INFO"), 7: (5, "DEBUG")}
SEV_ENUM = {5: "SEVERITY_NUMBER_DEBUG", 9: "SEVERITY_NUMBER_INFO", 10: "SEVERITY_NUMBER_INFO2",
            13: "SEVERITY_NUMBER_WARN", 17: "SEVERITY_NUMBER_ERROR", 21: "SEVERITY_NUMBER_FATAL",
            23: "SEVERITY_NUMBER_FATAL3", 24: "SEVERITY_NUMBER_FATAL4"}

points, records = collections.Counter(), collections.Counter()
values = {}
requests = {"metrics": 0, "logs": 0}
for name in sorted(os.listdir(bodies)):
    path = os.path.join(bodies, name)
    signal = "metrics" if "-metrics." in name else "logs"
    requests[signal] += 1
    if signal == "metrics":
        req = decode(path, "opentelemetry.proto.collector.metrics.v1.ExportMetricsServiceRequest",
                     "metrics_service.proto")
        rms = req["resource_metrics"]
    else:
        req = decode(path, "opentelemetry.proto.collector.logs.v1.ExportLogsServiceRequest",
                     "logs_service.proto")
        rms = req["resource_logs"]
    check(len(rms) == 1, f"{name}: one resource")
    for rm in rms:
        res = attrs(rm["resource"][0]["attributes"])
        check(res.get("service.name") == "outpost", f"{name}: service.name {res}")
        check(bool(res.get("host.name")), f"{name}: host.name")
        check(res.get("service.instance.id") == engine_id, f"{name}: service.instance.id")
        check(res.get(extra_key) == extra_value, f"{name}: resource attribute {extra_key}")
        scopes = rm["scope_metrics" if signal == "metrics" else "scope_logs"]
        check(len(scopes) == 1, f"{name}: one scope")
        for sc in scopes:
            check(one(sc["scope"][0], "name") == "outpost", f"{name}: scope name")
            check(bool(one(sc["scope"][0], "version")), f"{name}: scope version")
            if signal == "metrics":
                seen = set()
                for m in sc["metrics"]:
                    mname = one(m, "name")
                    kind = "counter" if "sum" in m else "gauge"
                    check((mname, kind) not in seen, f"{name}: {mname} twice in one request")
                    seen.add((mname, kind))
                    if kind == "counter":
                        s = m["sum"][0]
                        check(one(s, "is_monotonic") == "true", f"{mname}: not monotonic")
                        check(one(s, "aggregation_temporality") ==
                              "AGGREGATION_TEMPORALITY_CUMULATIVE", f"{mname}: not cumulative")
                        dps = s["data_points"]
                    else:
                        dps = m["gauge"][0]["data_points"]
                    for dp in dps:
                        key = (mname, tuple(sorted(attrs(dp.get("attributes", [])).items())),
                               int(one(dp, "time_unix_nano")), kind)
                        points[key] += 1
                        values.setdefault(key, []).append(float(one(dp, "as_double") or 0.0))
            else:
                for lr in sc["log_records"]:
                    a = attrs(lr.get("attributes", []))
                    t = int(one(lr, "time_unix_nano"))
                    obs = int(one(lr, "observed_time_unix_nano"))
                    check(obs >= t - 10**9, f"{name}: observed_time before time")
                    body = one(lr, "body")
                    msg = one(body, "string_value") if body else ""
                    key = (t, one(lr, "severity_number"), one(lr, "severity_text"), msg,
                           tuple(sorted(a.items())))
                    records[key] += 1

want_points, want_records = collections.Counter(), collections.Counter()
want_values = {}
for line in open(jsonl):
    r = json.loads(line)
    if r["type"] == "metric":
        key = (r["name"], tuple(sorted(r["labels"].items())), int(r["time_ns"]), r["kind"])
        want_points[key] += 1
        want_values.setdefault(key, []).append(float(r["value"]))
    elif r["type"] == "event":
        num, text = SEV[r["severity"]]
        a = dict(r["attributes"])
        a["source"], a["kind"] = r["source"], r["kind"]
        key = (int(r["time_ns"]), SEV_ENUM[num], text, r["message"], tuple(sorted(a.items())))
        want_records[key] += 1

missing_p = want_points - points
extra_p = points - want_points
missing_r = want_records - records
late = sum(n for k, n in missing_p.items() if k[2] > cutoff) + \
    sum(n for k, n in missing_r.items() if k[0] > cutoff)
missing_p = collections.Counter({k: n for k, n in missing_p.items() if k[2] <= cutoff})
missing_r = collections.Counter({k: n for k, n in missing_r.items() if k[0] <= cutoff})
if late:
    print(f"  {late} items from the last seconds before the stop were still in the spool")
extra_r = records - want_records
for k in list(missing_p)[:5] + list(extra_p)[:5] + list(missing_r)[:5] + list(extra_r)[:5]:
    print("  differs:", k)
check(not missing_p, f"{sum(missing_p.values())} data points of the file sink not received")
check(not extra_p, f"{sum(extra_p.values())} data points received that the file sink lacks")
check(not missing_r, f"{sum(missing_r.values())} events of the file sink not received")
check(not extra_r, f"{sum(extra_r.values())} log records received that the file sink lacks")
bad = [k for k in want_values if k in values and
       sorted(values[k]) != sorted(want_values[k]) and
       any(abs(a - b) > 1e-9 * max(1.0, abs(b))
           for a, b in zip(sorted(values[k]), sorted(want_values[k])))]
check(not bad, f"{len(bad)} data points with another value, e.g. {bad[:2]}")
counters = sum(n for k, n in points.items() if k[3] == "counter")
sevs = sorted({k[1] for k in records})
print(f"  {requests['metrics']} metrics and {requests['logs']} logs requests: "
      f"{sum(points.values())} data points ({counters} of counters as sums), "
      f"{sum(records.values())} log records ({', '.join(sevs)})")
check(sum(points.values()) > 0 and counters > 0 and sum(records.values()) > 0,
      "points, counters and log records all present")
for f in fails:
    print("  " + f)
sys.exit(1 if fails else 0)
