#!/usr/bin/env bash
# A reload keeps what did not change: ten SIGHUPs (half of them replacing the listener plugin's
# instance with new settings) while net-snmp's snmptrap sends a steady stream of traps to the
# snmp_trap listener. Every trap sent must be stored, the socket must stay the one bound at start,
# and failing devices must not be announced again after each reload.
source "$(dirname "$0")/lib.sh"

write_config() { # SEVERITY EXTRA_DEVICE
  cat > "$TMP/outpost.yaml" <<YAML
engine:
  data_dir: $TMP/data
  summary_interval: 0
plugins:
  snmp_trap: {communities: [public], severity: $1}
listeners:
  - {plugin: snmp_trap, udp: "127.0.0.1:0"}
sinks:
  local: {plugin: sqlite, path: "\${data_dir}/outpost.db"}
inventory:
  devices:
    - {name: closed-port, address: 127.0.0.1, monitors: [{plugin: tcp, port: $CLOSED, interval: 200ms, timeout: 150ms}]}
$2
YAML
}
CLOSED=$(free_port)
write_config info ""
start_engine "$TMP/outpost.yaml" snmp_trap
FIRST_PORT=$PORT

SENT=0
sender() {
  for i in $(seq 1 300); do
    snmptrap -v 2c -c public "127.0.0.1:$FIRST_PORT" '' 1.3.6.1.6.3.1.1.5.1 1.3.6.1.2.1.1.5.0 s "trap-$i" 2>/dev/null
  done
}
sender &
SENDER=$!
PIDS+=($SENDER)
for r in $(seq 1 10); do
  sleep 0.3
  if [ $((r % 2)) = 0 ]; then write_config notice "    - {name: extra-$r, address: 127.0.0.1, monitors: [{plugin: tcp, port: $CLOSED, interval: 1s}]}"
  else write_config info "    - {name: extra-$r, address: 127.0.0.1, monitors: [{plugin: tcp, port: $CLOSED, interval: 1s}]}"; fi
  kill -HUP "$ENGINE"
done
wait "$SENDER"
sleep 1
stop_engine
rc=$ENGINE_RC
check "the engine stopped cleanly" test "$rc" = 0
check "ten reloads were applied" test "$(grep -c 'configuration reloaded' "$TMP/engine.err")" = 10
check "the trap socket was bound once and never closed" \
  test "$(grep -c "listening on udp://127.0.0.1:.* for 'snmp_trap'" "$TMP/engine.err")" = 1
query "$TMP/data/outpost.db" events > "$TMP/events.json"
STORED=$(python3 -c 'import json,re,sys; print(len({m.group(0) for r in map(json.loads, sys.stdin) if r["kind"]=="trap" for m in [re.search(r"trap-[0-9]+", r["message"])] if m}))' < "$TMP/events.json")
check "every one of 300 traps sent across the reloads was stored (got $STORED)" test "$STORED" = 300
check "both instances' settings took effect (info and notice traps)" \
  pycheck 'len({r["severity"] for r in rows if r["kind"]=="trap"}) == 2' < "$TMP/events.json"
check "the failing port was announced once, not after every reload" \
  pycheck 'sum(1 for r in rows if r["kind"]=="availability" and r["source"]=="closed-port") == 1' < "$TMP/events.json"
finish
