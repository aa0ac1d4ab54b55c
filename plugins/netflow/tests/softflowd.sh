#!/usr/bin/env bash
# A real exporter into the real engine: softflowd reads pcaps of known traffic (flows.py) and
# exports them over loopback as NetFlow v5, v9, IPFIX, v9 with 1-in-4 sampling and IPFIX
# biflows with absolute times, all to one `outpost run` whose netflow listener writes JSON lines
# through the file sink. tshark captures the export datagrams. Then check_export.py compares the
# records with the pcaps, with tshark's decode of the capture, and with `outpost replay` of the
# capture; and a replay of the capture stripped of its templates shows the engine's state file
# carries the templates across a restart.
source "$(dirname "$0")/../../../tests/integration/lib.sh"
HERE=$(cd "$(dirname "$0")" && pwd)
PY=/usr/bin/python3  # Debian's scapy is importable only there
for t in softflowd softflowctl tshark; do
  command -v "$t" >/dev/null || { echo "FAIL: $t not installed (scripts/deps/netflow.list)"; exit 1; }
done

# run number:mode:softflowd arguments (the run number is the second octet of its addresses)
RUNS=("5:v5:-v 5" "9:v9:-v 9 -6" "10:ipfix:-v 10 -6" "94:v9s4:-v 9 -6 -s 4" "11:ipfixbi:-v 10 -6 -b -A milli")
runs=()
for r in "${RUNS[@]}"; do IFS=: read -r n _ _ <<< "$r"; runs+=("$n"); done
"$PY" "$HERE/flows.py" "$TMP" $(($(date +%s) - 20)) "${runs[@]}"

cat > "$TMP/live.yaml" <<YAML
engine: {data_dir: $TMP/data, summary_interval: 0, self_metrics_interval: 1h}
plugins:
  netflow: {state_dir: "\${data_dir}/netflow", stats_interval: 500ms}
listeners:
  - {plugin: netflow, udp: "127.0.0.1:0"}
sinks:
  out: {plugin: file, path: $TMP/live.jsonl}
YAML
start_engine "$TMP/live.yaml" netflow
echo "engine listening on 127.0.0.1:$PORT"

tshark -i lo -f "udp port $PORT" -F pcap -w "$TMP/export.pcap" -q > "$TMP/tshark.log" 2>&1 &
TSHARK=$!
PIDS+=($TSHARK)
for _ in $(seq 1 100); do grep -q Capturing "$TMP/tshark.log" && break; sleep 0.05; done

# softflowd -r reads its file only once its poll loop wakes: poke it through the control socket
# (PEERS-RECIPES.md), then "shutdown" exports every flow and exits.
for r in "${RUNS[@]}"; do
  IFS=: read -r n mode args <<< "$r"
  ctl="$TMP/sf$n.ctl"
  # shellcheck disable=SC2086
  timeout 20 softflowd -d -r "$TMP/run$n.pcap" -n "127.0.0.1:$PORT" $args -p "$TMP/sf$n.pid" -c "$ctl" \
    < /dev/null > "$TMP/sf$n.log" 2>&1 &
  sf=$!
  for _ in $(seq 1 100); do [ -S "$ctl" ] && break; sleep 0.02; done
  for _ in $(seq 1 100); do  # the first poke wakes it; it reads the whole file in one go
    softflowctl -c "$ctl" statistics 2> /dev/null | grep -q "Packets processed: [1-9]" && break
    sleep 0.05
  done
  # Flushes every flow and exits (a later poke after EOF would do the same, so it may be gone).
  softflowctl -c "$ctl" shutdown > /dev/null 2>&1 || true
  wait "$sf" || { cat "$TMP/sf$n.log"; fail "softflowd $mode exited with an error"; }
done
sleep 1  # stats_interval 500ms: the last counters go out before the engine stops
kill -INT "$TSHARK"
wait "$TSHARK" || true
kill -TERM "$ENGINE"
set +e
wait "$ENGINE"
rc=$?
set -e
check "the engine stops cleanly on SIGTERM" test "$rc" = 0
check "the engine saved its templates" test -s "$TMP/data/netflow/netflow-state.txt"

tshark -r "$TMP/export.pcap" -d "udp.port==$PORT,cflow" -T json --no-duplicate-keys > "$TMP/tshark.json" 2> /dev/null
cat > "$TMP/replay.yaml" <<YAML
engine: {data_dir: $TMP/replay-data}
sinks:
  out: {plugin: file, path: $TMP/replay.jsonl}
YAML
"$OUTPOST" replay --plugin netflow -c "$TMP/replay.yaml" --port "$PORT" "$TMP/export.pcap" 2> "$TMP/replay.err"
cat "$TMP/replay.err"

args=()
for r in "${RUNS[@]}"; do IFS=: read -r n mode _ <<< "$r"; args+=("$n:$mode"); done
check "records match the pcaps, tshark and the replay" "$PY" "$HERE/check_export.py" "$TMP" "$PORT" "${args[@]}"

# Restart: the last v9 and the last IPFIX export (runs 94 and 11; the runs before them used the
# same template ids, differently) without their template sets decode only with the state the
# live engine saved at stop.
"$PY" "$HERE/strip_templates.py" "$TMP/export.pcap" "$TMP/data-only.pcap"
flows_in() { grep -c '"type":"flow"' "$1" || true; }
expected_restart=$("$PY" - "$TMP/live.jsonl" <<'PY'
import ipaddress, json, sys
n = 0
for l in open(sys.argv[1]):
    r = json.loads(l)
    if r["type"] == "flow":
        a = ipaddress.ip_address(r["src"]).packed
        n += (a[1] if len(a) == 4 else a[5]) in (94, 11)
print(n)
PY
)
cat > "$TMP/restart.yaml" <<YAML
engine: {data_dir: $TMP/data}
plugins:
  netflow: {state_dir: "\${data_dir}/netflow"}
sinks:
  out: {plugin: file, path: $TMP/restart.jsonl}
YAML
"$OUTPOST" replay --plugin netflow -c "$TMP/restart.yaml" "$TMP/data-only.pcap" 2> /dev/null
check "after a restart, data without templates decodes from the saved state ($(flows_in "$TMP/restart.jsonl") of $expected_restart records)" \
  test "$(flows_in "$TMP/restart.jsonl")" = "$expected_restart"
sed -i "s|\${data_dir}/netflow|$TMP/empty-state|; s|restart.jsonl|nostate.jsonl|" "$TMP/restart.yaml"
"$OUTPOST" replay --plugin netflow -c "$TMP/restart.yaml" "$TMP/data-only.pcap" 2> /dev/null
check "without the saved state the same datagrams give no record" test "$(flows_in "$TMP/nostate.jsonl")" = 0
check "... they are held for a template that never comes" \
  grep -q '"name":"netflow_held_sets_total","labels":{},"value":[1-9]' "$TMP/nostate.jsonl"
# Dropped as no_template at stop: reported only by an engine that takes emits during stop().
if grep -q '"reason":"no_template","unit":"set"},"value":[1-9]' "$TMP/nostate.jsonl"; then
  pass "... and counted as no_template when the engine stops"
else
  echo "note: no counters from stop() (this engine refuses emits during stop)"
fi
finish
