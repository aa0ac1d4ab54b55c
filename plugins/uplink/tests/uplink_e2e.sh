#!/usr/bin/env bash
# The uplink end to end: the engine polls loopback targets and sends everything through its
# disk spool and the uplink sink, over TLS, to the reference receiver (outpost-receiver); a file
# sink beside it writes the same batches, and at the end every item written there must be at the
# receiver exactly once, in order per series. On the way the receiver answers 500 three times,
# answers one batch too late (the engine times out and sends it again: a duplicate the receiver
# drops), drops a connection, answers 429 with Retry-After, and goes away for a while; then a run with
# the wrong CA sends nothing and says so once.
#   uplink_e2e.sh BUILD_DIR
source "$(dirname "$0")/../../../tests/integration/lib.sh"
HERE=$(cd "$(dirname "$0")" && pwd)

[ -x "$BUILD/outpost-receiver" ] || { echo "FAIL: no outpost-receiver in $BUILD"; exit 1; }
tls_certs "$TMP"
RPORT=$(free_port)
stop_receiver() { kill -TERM "$RECV" 2>/dev/null || true; wait "$RECV" 2>/dev/null || true; }

# --- what is polled: a web server's open port and 20 loopback addresses, every second ---
WEB=$(free_port)
python3 -m http.server "$WEB" --bind 127.0.0.1 --directory "$TMP" >/dev/null 2>&1 &
PIDS+=($!)
write_config() { # run-name ca-file
  {
    cat <<YAML
engine:
  data_dir: $TMP/data
  summary_interval: 0s
  self_metrics_interval: 1s
  scheduler: {jitter: 0.5}
sinks:
  local: {plugin: file, path: "$TMP/sent-$1.jsonl"}
  cloud:
    plugin: uplink
    url: https://127.0.0.1:$RPORT/v1/batches
    ca_file: $2
    timeout: 2
    stats_interval: 1
    spool: {sync_interval: 100ms, max_delay: 300ms, backoff_initial: 200ms, backoff_max: 1s}
inventory:
  devices:
    - name: web
      address: 127.0.0.1
      monitors: [{plugin: tcp, port: $WEB, interval: 1s, timeout: 1s}]
YAML
    for i in $(seq 1 20); do
      echo "    - {name: host-$i, address: 127.3.1.$i, monitors: [{plugin: icmp, interval: 1s, count: 1}]}"
    done
  } > "$TMP/$1.yaml"
}

# --- run 1: faults, then the receiver away for a while ---
start_receiver --state "$TMP/receiver.state" --fault "500x3,delay:3000x1,closex1,429:2x1"
write_config run1 "$TMP/ca.pem"
"$OUTPOST" run -c "$TMP/run1.yaml" > "$TMP/run1.out" 2> "$TMP/run1.err" &
ENGINE=$!
PIDS+=($ENGINE)
sleep 12
echo "receiver stats after the faults: $(curl -s --cacert "$TMP/ca.pem" "https://127.0.0.1:$RPORT/v1/stats")"
check "the receiver answered its five faults (500 x3, 429, a dropped connection)" \
  test "$(rstat "errors.get('fault', 0)")" = 5
check "the late answer's batch came again and was dropped as a duplicate" \
  test "$(rstat duplicates)" -ge 1
check "after the 429 the engine waited its Retry-After (2 s) before the next POST" python3 - "$TMP/receiver.err" <<'PY'
import sys
posts = [l.split() for l in open(sys.argv[1]) if " POST " in l]
at = [i for i, f in enumerate(posts) if f[4] == "429"]
if len(at) != 1 or at[0] + 1 >= len(posts):
    sys.exit(1)
waited = float(posts[at[0] + 1][0]) - float(posts[at[0]][0])
print(f"  next POST {waited:.2f} s after the 429")
sys.exit(0 if waited >= 2.0 else 1)
PY
stop_receiver
sleep 6  # the engine spools what it cannot send
start_receiver --state "$TMP/receiver.state"
sleep 8
stop_engine
check "run 1 stops cleanly" test "$ENGINE_RC" = 0

# --- run 2: the rest of the spool goes out, direct although the environment names a proxy
# (a closed port: were it used, nothing would arrive) ---
write_config run2 "$TMP/ca.pem"
https_proxy=http://127.0.0.1:9 HTTPS_PROXY=http://127.0.0.1:9 ALL_PROXY=http://127.0.0.1:9 \
  "$OUTPOST" run -c "$TMP/run2.yaml" > "$TMP/run2.out" 2> "$TMP/run2.err" &
ENGINE=$!
PIDS+=($ENGINE)
sleep 6
stop_engine
run2_end=$(($(date +%s%N) - 3000000000))

check "the spool reopened with what run 1 left" grep -q "sink 'cloud': spool" "$TMP/run2.err"
check "everything run 1 sent is at the receiver once, in order per series (run 2 ignored the proxy environment)" \
  python3 "$HERE/compare.py" "$TMP/sent-run1.jsonl,$TMP/sent-run2.jsonl" "$TMP/received.jsonl" \
  --allow-missing-after "$run2_end"
failed=$(grep -c 'sending failed' "$TMP/run1.err" || true)
again=$(grep -c 'takes data again' "$TMP/run1.err" || true)
check "the engine said once per outage that sending failed ($failed) and that it works again ($again)" \
  test "$failed" -ge 2 -a "$failed" = "$again"
check "while the receiver was away nothing was dropped by the pipeline" \
  bash -c "! grep -q 'spool_error' '$TMP/sent-run1.jsonl'"

# --- run 3: a CA the receiver's certificate is not from: nothing sent, one clear error ---
before=$(rstat bytes)
write_config run3 "$TMP/other-ca.pem"
"$OUTPOST" run -c "$TMP/run3.yaml" > "$TMP/run3.out" 2> "$TMP/run3.err" &
ENGINE=$!
PIDS+=($ENGINE)
sleep 5
stop_engine
check "with the wrong CA the receiver got no batch (not a byte)" test "$(rstat bytes)" = "$before"
check "with the wrong CA the engine says so once" \
  test "$(grep -c 'uplink https://127.0.0.1:[0-9]*/v1/batches: TLS' "$TMP/run3.err")" = 1
check "and keeps the data: the spool holds it" \
  grep -q 'outpost_spool_pending_items' "$TMP/sent-run3.jsonl"
stop_receiver
finish
