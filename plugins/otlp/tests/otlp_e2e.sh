#!/usr/bin/env bash
# The otlp sink end to end: a real `outpost run` polls loopback targets (an open and a closed TCP
# port, ICMP to 127.0.0.1) every second and sends through two otlp sinks (gzip and plain) to a
# loopback OTLP/HTTP receiver (tests/receiver.py) that answers its first requests 503 with
# Retry-After; a file sink beside them is the reference. protoc decodes every stored body with
# the plugin's own .proto files and tests/compare.py holds each data point and log record
# against the file sink's lines: nothing lost to the 503s, nothing extra.
#   otlp_e2e.sh BUILD_DIR
source "$(dirname "$0")/../../../tests/integration/lib.sh"
HERE=$(cd "$(dirname "$0")" && pwd)
PROTO=$HERE/../proto

command -v protoc >/dev/null || { echo "FAIL: protoc not found (scripts/deps/otlp.list)"; exit 1; }
[ -f "$BUILD/plugins/outpost_otlp.so" ] ||
  { echo "FAIL: the otlp plugin is not built in $BUILD"; exit 1; }

RPORT=$(free_port)
WEB=$(free_port)
CLOSED=$(free_port)
python3 -m http.server "$WEB" --bind 127.0.0.1 --directory "$TMP" >/dev/null 2>&1 &
PIDS+=($!)
mkdir -p "$TMP/received"
python3 "$HERE/receiver.py" "$RPORT" "$TMP/received" --fail 3 --retry-after 2 \
  > "$TMP/receiver.out" 2> "$TMP/receiver.err" &
PIDS+=($!)
for _ in $(seq 1 100); do grep -q listening "$TMP/receiver.out" && break; sleep 0.05; done

cat > "$TMP/run.yaml" <<YAML
engine:
  data_dir: $TMP/data
  summary_interval: 0s
  self_metrics_interval: 1s
sinks:
  local: {plugin: file, path: "$TMP/sent.jsonl"}
  otel:
    plugin: otlp
    endpoint: http://127.0.0.1:$RPORT
    engine_id: e2e-engine
    resource_attributes: ["deployment.environment=test"]
    headers: ["X-Test: one"]
    timeout: 2s
    stats_interval: 1s
    spool: {sync_interval: 100ms, max_delay: 300ms, backoff_initial: 200ms, backoff_max: 1s}
  otel_plain:
    plugin: otlp
    endpoint: http://127.0.0.1:$RPORT/plain/
    compression: none
    engine_id: e2e-engine
    resource_attributes: ["deployment.environment=test"]
    timeout: 2s
    stats_interval: 1s
    spool: {sync_interval: 100ms, max_delay: 300ms, backoff_initial: 200ms, backoff_max: 1s}
inventory:
  devices:
    - name: web
      address: 127.0.0.1
      monitors: [{plugin: tcp, port: $WEB, interval: 1s, timeout: 1s}]
    - name: closed
      address: 127.0.0.1
      monitors: [{plugin: tcp, port: $CLOSED, interval: 1s, timeout: 1s}]
    - name: loop
      address: 127.0.0.1
      monitors: [{plugin: icmp, interval: 1s, count: 1}]
YAML

"$OUTPOST" run -c "$TMP/run.yaml" > "$TMP/run.out" 2> "$TMP/run.err" &
ENGINE=$!
PIDS+=($ENGINE)
sleep 10
stop_engine
cutoff=$(($(date +%s%N) - 2000000000))
check "the engine stops cleanly" test "$ENGINE_RC" = 0
[ "$ENGINE_RC" = 0 ] || tail -20 "$TMP/run.err"

check "the receiver answered its first three requests 503" \
  test "$(awk '$3 == 503' "$TMP/received/requests.log" | wc -l)" = 3
check "after a 503 the sink waited its Retry-After (2 s) before the next request" \
  python3 - "$TMP/received/requests.log" <<'PY'
import sys
rows = [l.split() for l in open(sys.argv[1])]
bad = [i for i, r in enumerate(rows) if r[2] == "503"]
plain = lambda r: r[1].startswith("/plain")
# the next request of the sink that got the 503 comes no sooner than 2 s later
first_next = []
for i in bad:
    same = [r for r in rows[i + 1:] if plain(r) == plain(rows[i])]
    if same:
        first_next.append(float(same[0][0]) - float(rows[i][0]))
print("  next request of the same sink after each 503:", ", ".join(f"{d:.2f} s" for d in first_next))
sys.exit(0 if first_next and min(first_next) >= 1.9 else 1)
PY
check "every request is application/x-protobuf; gzip where configured, none where not" \
  python3 - "$TMP/received/requests.log" <<'PY'
import sys
rows = [l.split() for l in open(sys.argv[1])]
ok = all(r[3] == "application/x-protobuf" and r[4] == ("-" if r[1].startswith("/plain") else "gzip")
         for r in rows)
sys.exit(0 if ok and rows else 1)
PY
check "the closed port made availability events" grep -q '"kind":"availability"' "$TMP/sent.jsonl"
check "gzip sink: every data point and event of the file sink, decoded by protoc, equal" \
  python3 "$HERE/compare.py" "$PROTO" "$TMP/received/root" "$TMP/sent.jsonl" e2e-engine \
  deployment.environment=test "$cutoff"
check "plain sink: every data point and event of the file sink, decoded by protoc, equal" \
  python3 "$HERE/compare.py" "$PROTO" "$TMP/received/plain" "$TMP/sent.jsonl" e2e-engine \
  deployment.environment=test "$cutoff"
check "the sink counted its 503s as retries, not drops" \
  bash -c "grep -q '\"name\":\"outpost_otlp_retries_total\".*\"value\":[1-9]' '$TMP/sent.jsonl' &&
           ! grep -q '\"name\":\"outpost_otlp_dropped_requests_total\".*\"value\":[1-9]' '$TMP/sent.jsonl'"
finish
