"""Whether a Windows poller's poll said what a test expects.

    poll_has.py ROWS FIXTURE PEER_LOG EXPR      (FIXTURE, PEER_LOG: "-" when there is none)

EXPR is a Python expression over `rows` (the JSON lines `outpost poll --json` wrote), `fx` (the
peer's fixture), `log` (the peer's request log lines), `target` (the target line), `metric(name,
**labels)` (the values of that metric) and `events(kind)`. Exit 0 when it is true; otherwise the
target line and the events are printed to help the reader. Shared by the end-to-end tests of
the pollers (winrm, wmi, config_backup).
"""
import json
import sys

rows = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
fx = json.load(open(sys.argv[2])) if sys.argv[2] != '-' else {}
try:
    log = [json.loads(line) for line in open(sys.argv[3]) if line.strip()] if sys.argv[3] != '-' else []
except FileNotFoundError:
    log = []
target = next((r for r in rows if r['type'] == 'target'), {})


def metric(name, **labels):
    return [r['value'] for r in rows if r['type'] == 'metric' and r['name'] == name
            and all(r['labels'].get(k) == v for k, v in labels.items())]


def events(kind):
    return [r for r in rows if r['type'] == 'event' and r['kind'] == kind]


ok = eval(sys.argv[4])
if not ok:
    print('  target:', target)
    print('  rows:', len(rows))
    print('  events:', [(e['kind'], e['message'][:80]) for e in rows if e['type'] == 'event'])
sys.exit(0 if ok else 1)
