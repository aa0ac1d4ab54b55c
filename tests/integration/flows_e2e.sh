#!/usr/bin/env bash
# Flows end to end (F1, F2): softflowd exports a pcap of known traffic as NetFlow v9 to the
# engine; the netflow listener decodes it, the flow_aggregator processor summarises it, and the
# sqlite sink stores the summaries, not the raw records. The last (partial) interval is emitted
# when the engine stops. Totals and top talkers are compared with what the pcap contains.
source "$(dirname "$0")/lib.sh"
PY=/usr/bin/python3
FLOWS=$SRC/plugins/netflow/tests/flows.py
"$PY" "$FLOWS" "$TMP" $(($(date +%s) - 20)) 30

cat > "$TMP/outpost.yaml" <<YAML
engine: {data_dir: $TMP/data, summary_interval: 0}
listeners:
  - {plugin: netflow, udp: "127.0.0.1:0"}
processors:
  flows: {plugin: flow_aggregator, interval: 1h, top_n: 1000}
sinks:
  local: {plugin: sqlite, path: "\${data_dir}/outpost.db"}
YAML
start_engine "$TMP/outpost.yaml" netflow

ctl=$TMP/sf.ctl
timeout 20 softflowd -d -r "$TMP/run30.pcap" -n "127.0.0.1:$PORT" -v 9 -6 -p "$TMP/sf.pid" -c "$ctl" \
  < /dev/null > "$TMP/sf.log" 2>&1 &
sf=$!
for _ in $(seq 1 100); do [ -S "$ctl" ] && break; sleep 0.02; done
for _ in $(seq 1 100); do
  softflowctl -c "$ctl" statistics 2> /dev/null | grep -q "Packets processed: [1-9]" && break
  sleep 0.05
done
softflowctl -c "$ctl" shutdown > /dev/null 2>&1 || true
wait "$sf" || true
sleep 1
stop_engine
rc=$ENGINE_RC
check "the engine stops cleanly" test "$rc" = 0

DB=$TMP/data/outpost.db
query "$DB" series > "$TMP/series.json"
"$PY" - "$TMP/expected_30.json" "$TMP/series.json" > "$TMP/compare.txt" <<'PY'
import json, sys
expected = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
rows = [json.loads(l) for l in open(sys.argv[2]) if l.strip()]
total = sum(e["bytes"] for e in expected)
by_src = {}
for e in expected:
    by_src[e["src"]] = by_src.get(e["src"], 0) + e["bytes"]
got_total = sum(r["last"] for r in rows if r["name"] == "flow_exporter_bytes")
got_src = {r["labels"]["src"]: r["last"] for r in rows if r["name"] == "flow_top_talker_bytes"}
got_flows = sum(r["last"] for r in rows if r["name"] == "flow_exporter_flows")
print("total", total, got_total)
print("flows", len(expected), got_flows)
print("talkers_ok", all(got_src.get(s) == b for s, b in by_src.items()), len(by_src))
PY
cat "$TMP/compare.txt"
check "exporter bytes equal the pcap's" awk '$1=="total" && $2==$3 && $2>0 {ok=1} END {exit !ok}' "$TMP/compare.txt"
check "every flow was counted" awk '$1=="flows" && $2==$3 {ok=1} END {exit !ok}' "$TMP/compare.txt"
check "each source's top-talker bytes equal the pcap's" grep -q "talkers_ok True" "$TMP/compare.txt"
check "raw flow records stayed out of the store" test "$(sqlite3 "$DB" 'select count(*) from flows')" = 0
check "the summary came from the final interval at stop" pycheck 'any(r["name"]=="flow_application_bytes" for r in rows)' < "$TMP/series.json"
finish
