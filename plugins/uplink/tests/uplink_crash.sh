#!/usr/bin/env bash
# kill -9 of the engine, again and again, while it polls, spools and sends over TLS to the
# reference receiver: after every restart the spool opens without damage, nothing the receiver
# acknowledged is sent as new again, nothing spooled is skipped (every stream's sequence numbers
# reach the receiver without a gap), at most the one batch in flight at each kill comes twice,
# and the receiver's de-duplication drops those.
#   uplink_crash.sh BUILD_DIR [KILLS]   (KILLS defaults to 50)
source "$(dirname "$0")/../../../tests/integration/lib.sh"
KILLS=${2:-${UPLINK_CRASH_KILLS:-50}}
[ -x "$BUILD/outpost-receiver" ] || { echo "FAIL: no outpost-receiver in $BUILD"; exit 1; }
tls_certs "$TMP"
RPORT=$(free_port)
start_receiver

WEB=$(free_port)
python3 -m http.server "$WEB" --bind 127.0.0.1 --directory "$TMP" >/dev/null 2>&1 &
PIDS+=($!)
{
  cat <<YAML
engine:
  data_dir: $TMP/data
  summary_interval: 0s
  self_metrics_interval: 500ms
  pipeline: {flush_interval: 100ms}
  scheduler: {jitter: 0.5}
sinks:
  local: {plugin: file, path: "$TMP/sent.jsonl"}  # the same batches: what the engine produced
  cloud:
    plugin: uplink
    url: https://127.0.0.1:$RPORT/v1/batches
    ca_file: $TMP/ca.pem
    stats_interval: 0.5
    spool: {sync_interval: 100ms, max_delay: 100ms, batch_items: 200}
inventory:
  devices:
    - name: web
      address: 127.0.0.1
      monitors: [{plugin: tcp, port: $WEB, interval: 1s, timeout: 1s}]
YAML
  for i in $(seq 1 30); do
    echo "    - {name: host-$i, address: 127.3.2.$i, monitors: [{plugin: icmp, interval: 1s, count: 1}]}"
  done
} > "$TMP/crash.yaml"

for k in $(seq 1 "$KILLS"); do
  "$OUTPOST" run -c "$TMP/crash.yaml" >> "$TMP/engine.out" 2>> "$TMP/engine.err" &
  ENGINE=$!
  # 0.4 to 1.6 s: kills land while polling, appending, syncing, sending and acknowledging.
  sleep "$(python3 -c "import random; print(round(random.uniform(0.4, 1.6), 2))")"
  kill -KILL "$ENGINE"
  wait "$ENGINE" 2>/dev/null || true
done
# A last clean run sends what the kills left behind.
"$OUTPOST" run -c "$TMP/crash.yaml" >> "$TMP/engine.out" 2>> "$TMP/engine.err" &
ENGINE=$!
PIDS+=($ENGINE)
sleep 4
stop_engine

echo "receiver: $(curl -s --cacert "$TMP/ca.pem" "https://127.0.0.1:$RPORT/v1/stats")"
check "the last run stops cleanly" test "$ENGINE_RC" = 0
check "the engine started $((KILLS + 1)) times" \
  test "$(grep -c "sink 'cloud': spool" "$TMP/engine.err")" = "$((KILLS + 1))"
check "no spool ever found a damaged record or cursor" \
  bash -c "! grep -q 'fail their checks\|cursor is corrupt' '$TMP/engine.err'"
check "batches arrived from most runs" test "$(rstat batches)" -ge "$KILLS"
check "at most one repeated batch per kill, and the receiver dropped each" \
  test "$(rstat duplicates)" -le "$KILLS"
check "no item reached the receiver's output more often than the engine produced it" \
  python3 - "$TMP/received.jsonl" "$TMP/sent.jsonl" <<'PY'
import collections, json, sys
def load(path):
    out = []
    for line in open(path):
        if line.strip():
            item = json.loads(line)
            item.pop("value_bits", None)
            item.pop("engine", None)
            out.append(json.dumps(item, sort_keys=True))
    return out
received, sent = collections.Counter(load(sys.argv[1])), collections.Counter(load(sys.argv[2]))
twice = [l for l, n in received.items() if n > max(1, sent[l])]
produced_twice = sum(1 for n in sent.values() if n > 1)
print(f"  {sum(received.values())} items received, {len(twice)} more often than produced;"
      f" {produced_twice} items the engine itself produced more than once")
for l in twice[:5]:
    print("   ", l)
sys.exit(1 if twice or not received else 0)
PY
check "every stream's records reached the receiver without a gap" python3 - "$TMP/receiver.err" <<'PY'
import re, sys
# Verbose lines of accepted batches name their ranges: ... ranges=stream:first-last,...
seen = {}
for line in open(sys.argv[1]):
    if " 200 " not in line or "duplicate" in line:
        continue
    m = re.search(r"ranges=(\S+)", line)
    if not m:
        continue
    for r in m.group(1).split(","):
        stream, span = r.rsplit(":", 1)
        first, last = map(int, span.split("-"))
        seen.setdefault(stream, []).append((first, last))
bad = 0
for stream, spans in seen.items():
    spans.sort()
    expect = 1
    for first, last in spans:
        if first != expect:
            print(f"  stream {stream}: expected seq {expect}, got {first}-{last}")
            bad += 1
        expect = last + 1
print(f"  {len(seen)} streams, {sum(len(s) for s in seen.values())} batches checked")
sys.exit(1 if bad or not seen else 0)
PY
finish
