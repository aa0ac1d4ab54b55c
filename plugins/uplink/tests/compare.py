#!/usr/bin/env python3
"""What the engine sent against what the receiver got, item by item.

compare.py SENT.jsonl[,SENT2.jsonl...] RECEIVED.jsonl [--allow-missing-after NS]

SENT: the file sink's JSON lines (the same batches the uplink sink got, written beside it).
RECEIVED: the reference receiver's --out. Prints one line of counts and exits 1 when:
  - an item of SENT is missing from RECEIVED (unless stamped after NS, the last moments of a run
    the test could not wait out),
  - RECEIVED holds an item twice (the receiver's de-duplication failed) or one nobody sent,
  - a series' samples arrived out of order.
"""
import collections
import json
import sys


def load(path):
    """Items as canonical JSON (the receiver adds the engine and value_bits, the exact double)."""
    out = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if line:
                item = json.loads(line)
                item.pop("value_bits", None)
                item.pop("engine", None)  # the receiver says which engine sent it
                out.append(json.dumps(item, sort_keys=True))
    return out


def series_key(item):
    if item.get("type") == "metric":
        return ("metric", item["name"], json.dumps(item.get("labels", {}), sort_keys=True))
    if item.get("type") == "event":
        return ("event", item.get("source"), item.get("kind"))
    return ("flow", item.get("exporter"))


def when(item):
    return item.get("time_ns", item.get("start_ns", 0))


def main():
    args = sys.argv[1:]
    after = None
    if "--allow-missing-after" in args:
        i = args.index("--allow-missing-after")
        after = int(args[i + 1])
        del args[i : i + 2]
    sent_paths, received_path = args[0].split(","), args[1]
    sent = []
    for p in sent_paths:
        sent += load(p)
    received = load(received_path)
    sent_count = collections.Counter(sent)
    recv_count = collections.Counter(received)
    missing = [l for l in sent_count if recv_count[l] < sent_count[l]]
    excused = [l for l in missing if after is not None and when(json.loads(l)) > after]
    missing = [l for l in missing if l not in excused]
    doubled = [l for l, n in recv_count.items() if n > max(1, sent_count[l])]
    foreign = [l for l in recv_count if sent_count[l] == 0]
    # Order per series: the receiver's file is in arrival order.
    last = {}
    disorder = 0
    for line in received:
        item = json.loads(line)
        k = series_key(item)
        t = when(item)
        if item.get("type") == "metric" and k in last and t < last[k]:
            disorder += 1
        last[k] = max(t, last.get(k, t))
    print(
        f"sent {len(sent)} received {len(received)} missing {len(missing)} "
        f"(excused {len(excused)}) doubled {len(doubled)} foreign {len(foreign)} "
        f"out_of_order {disorder}"
    )
    for what, lines in (("missing", missing), ("doubled", doubled), ("foreign", foreign)):
        for l in lines[:3]:
            print(f"  {what}: {l}")
    bad = missing or doubled or foreign or disorder
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
