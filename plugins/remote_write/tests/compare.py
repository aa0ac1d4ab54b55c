#!/usr/bin/env python3
"""What the engine wrote to its file sink against what a store holds, sample by sample.

compare.py SENT.jsonl[,SENT2.jsonl...] STORE_KIND STORE_DUMP [--pending-after MS]
           [--external name=value ...]

SENT: the file sink's JSON lines (the same batches every sink got). STORE_KIND: vm (the JSON
lines of VictoriaMetrics' /api/v1/export) or prom (the JSON of Prometheus' /api/v1/query with a
range selector). The sent metrics are mapped as the README says (names sanitised, empty labels
left out, colliding label names resolved, external labels added) by this script's own code, and
must match the store exactly: every sample there, none extra, same millisecond and same value
(bit for bit, or reported as rounded), and no sample stored more often than the file sink holds
it (a retry that repeated samples shows here in VictoriaMetrics, which keeps repeats). Exits 1 on
any difference. --pending-after MS: samples stamped at or after MS (what the engine's last run
emitted as it stopped: they wait in the spool for the next run) may be absent; they are counted.
"""
import json
import math
import re
import sys


def metric_name(n):
    n = re.sub(r"[^a-zA-Z0-9_:]", "_", n.encode("utf-8").decode("latin-1"))
    return "_" + n if n == "" or n[0].isdigit() else n


def label_name(n):
    n = re.sub(r"[^a-zA-Z0-9_]", "_", n.encode("utf-8").decode("latin-1"))
    return "_" + n if n == "" or n[0].isdigit() else n


def series_of(item, external):
    cands = [(label_name(k), k, v) for k, v in item.get("labels", {}).items() if v != ""]
    labels = {"__name__": metric_name(item["name"])}
    for name, _orig, value in sorted(cands):  # same name: the smallest original wins
        labels.setdefault(name, value)
    for k, v in external:
        labels.setdefault(k, v)
    return tuple(sorted(labels.items()))


def load_sent(paths, external):
    out = {}
    for path in paths.split(","):
        with open(path, encoding="utf-8") as f:
            for line in f:
                item = json.loads(line)
                if item["type"] != "metric":
                    continue
                key = (series_of(item, external), item["time_ns"] // 1_000_000)
                v = item["value"]
                out.setdefault(key, []).append(math.nan if v is None else float(v))
    return out


def load_store(kind, path):
    out = {}
    with open(path, encoding="utf-8") as f:
        if kind == "vm":
            for line in f:
                if not line.strip():
                    continue
                row = json.loads(line)
                s = tuple(sorted(row["metric"].items()))
                for t, v in zip(row["timestamps"], row["values"]):
                    out.setdefault((s, t), []).append(float(v) if v is not None else math.nan)
        else:
            for r in json.load(f)["data"]["result"]:
                s = tuple(sorted(r["metric"].items()))
                for t, v in r["values"]:
                    out.setdefault((s, round(float(t) * 1000)), []).append(float(v))
    return out


def same(a, b):
    return (math.isnan(a) and math.isnan(b)) or a == b


def main():
    sent_path, kind, store_path = sys.argv[1:4]
    args = sys.argv[4:]
    pending_after = None
    if "--pending-after" in args:
        pending_after = int(args[args.index("--pending-after") + 1])
    external = []
    if "--external" in args:
        external = [e.split("=", 1) for e in args[args.index("--external") + 1:]]
    sent = load_sent(sent_path, external)
    got = load_store(kind, store_path)
    absent = [k for k in sent if k not in got]
    pending = [k for k in absent if pending_after is not None and k[1] >= pending_after]
    missing = [k for k in absent if k not in set(pending)]
    extra = [k for k in got if k not in sent]
    wrong, rounded, twice = [], 0, []
    for k, vs in sent.items():
        if k not in got:
            continue
        want = vs[-1]
        for v in got[k]:
            if same(v, want):
                continue
            if abs(v - want) <= 1e-12 * max(abs(want), 1e-300):
                rounded += 1
            else:
                wrong.append((k, want, v))
        if len(got[k]) > len(vs):
            twice.append((k, len(vs), len(got[k])))
    series = {k[0] for k in sent}
    print(f"{kind}: sent {len(sent)} samples of {len(series)} series; store holds {len(got)}; "
          f"missing {len(missing)}, extra {len(extra)}, wrong {len(wrong)}, "
          f"rounded {rounded}, stored more often than sent {len(twice)}, "
          f"still spooled (emitted at the last stop) {len(pending)}")
    for what, rows in (("missing", missing), ("extra", extra), ("wrong", wrong),
                       ("repeated", twice)):
        for r in sorted(rows, key=str)[:5]:
            print(f"  {what}: {r}")
    sys.exit(1 if missing or extra or wrong or twice else 0)


if __name__ == "__main__":
    main()
