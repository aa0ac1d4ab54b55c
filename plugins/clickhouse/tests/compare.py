#!/usr/bin/python3
# What the engine produced (file sink JSON lines) against what ClickHouse holds (JSONEachRow from
# clickhouse-client), row by row, as multisets: every row once, none missing, none extra.
#   compare.py flows SENT.jsonl[,SENT2...] CLICKHOUSE.jsonl
#   compare.py rollups SENT.jsonl[,SENT2...] CLICKHOUSE.jsonl PREFIX
# Prints a summary; exit 0 when equal.
import collections
import ipaddress
import json
import sys

LABEL_COLUMNS = ["exporter", "ifindex", "direction", "src", "dst", "protocol", "port"]


def address(text):
    a = ipaddress.ip_address(text)
    if a.version == 6 and a.ipv4_mapped is not None:
        return str(a.ipv4_mapped)
    return str(a)


def sent_lines(paths):
    for path in paths.split(","):
        for line in open(path):
            if line.strip():
                yield json.loads(line)


def flow_key(d):
    return (int(d["start_ns"]), int(d["end_ns"]), address(d["exporter"]), address(d["src"]),
            address(d["dst"]), int(d["src_port"]), int(d["dst_port"]), int(d["protocol"]),
            int(d["tcp_flags"]), int(d["tos"]), int(d["bytes"]), int(d["packets"]),
            int(d["input_if"]), int(d["output_if"]), int(d["sampling_rate"]))


def rollup_from_sent(d):
    labels = d["labels"]
    extra = tuple(sorted((k, v) for k, v in labels.items() if k not in LABEL_COLUMNS))
    return (d["time_ns"] // 1_000_000_000, d["name"]) + tuple(
        labels.get(c, "") for c in LABEL_COLUMNS) + (float(d["value"]), extra)


def rollup_from_clickhouse(d):
    extra = tuple(sorted(zip(d["label_keys"], d["label_values"])))
    return (int(d["t"]), d["name"]) + tuple(d[c] for c in LABEL_COLUMNS) + (float(d["value"]), extra)


def main():
    kind, sent_paths, got_path = sys.argv[1], sys.argv[2], sys.argv[3]
    got_rows = [json.loads(l) for l in open(got_path) if l.strip()]
    if kind == "flows":
        want = collections.Counter(flow_key(d) for d in sent_lines(sent_paths) if d["type"] == "flow")
        got = collections.Counter(flow_key(d) for d in got_rows)
    else:
        prefix = sys.argv[4]
        want = collections.Counter(rollup_from_sent(d) for d in sent_lines(sent_paths)
                                   if d["type"] == "metric" and d["name"].startswith(prefix))
        got = collections.Counter(rollup_from_clickhouse(d) for d in got_rows)
    missing, extra = want - got, got - want
    dups = sum(n - 1 for n in got.values() if n > 1) - sum(n - 1 for n in want.values() if n > 1)
    print(f"{kind}: engine {sum(want.values())} rows, clickhouse {sum(got.values())} rows, "
          f"missing {sum(missing.values())}, extra {sum(extra.values())}, repeated {max(dups, 0)}")
    for k in list(missing)[:3]:
        print("  missing:", k)
    for k in list(extra)[:3]:
        print("  extra:", k)
    sys.exit(0 if sum(want.values()) > 0 and not missing and not extra else 1)


main()
