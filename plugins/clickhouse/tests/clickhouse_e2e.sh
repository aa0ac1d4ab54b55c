#!/usr/bin/env bash
# The clickhouse sink against a real ClickHouse server (Debian 12's clickhouse-server, started
# here on loopback ports with its own data directory). softflowd exports pcaps of known traffic
# as NetFlow v9 to the engine; the netflow listener decodes them, flow_aggregator rolls them up,
# and both the raw records (raw_flows) and the rollups go through the disk spool into ClickHouse,
# while a file sink beside it records what the engine produced. Read back with clickhouse-client,
# row by row, ClickHouse must hold exactly what the file sink holds: nothing lost, nothing twice,
# across
#   run 1: the server stopped mid-run and started again (the spool holds, then delivers);
#   run 2: a wrong password (operator-class: nothing sent, the data waits in the spool);
#   run 3: the right password again (run 2's data arrives);
#   run 4: a flows table whose schema does not fit (rejected and counted; the rollups, whose
#          table fits, still arrive; the engine stops cleanly);
#   run 5: HTTPS to the server's https_port with a CA that did not sign its certificate
#          (operator-class: nothing sent, the data waits);
#   run 6: HTTPS with the right CA (run 5's data arrives);
#   runs 7-11: the engine killed (-9) at a random moment after each export, while it spools and
#          inserts; run 12 sends what they left. A batch the server took just before a kill is
#          offered again, and must be found there, not inserted twice: no row twice, no flow
#          with more bytes than its pcap has. (The file sink is no reference here: a kill may
#          fall between its write and the spool's.)
#   clickhouse_e2e.sh BUILD_DIR
source "$(dirname "$0")/../../../tests/integration/lib.sh"
HERE=$(cd "$(dirname "$0")" && pwd)
source "$HERE/clickhouse_server.sh"
PY=/usr/bin/python3
for tool in clickhouse-server clickhouse-client softflowd; do
  command -v "$tool" > /dev/null || { echo "FAIL: $tool is not installed (./dev setup)"; exit 1; }
done

tls_certs "$TMP"
ch_start "$TMP/ch" "$(free_port)" "$(free_port)" "$(free_port)" "$TMP/server.pem" "$TMP/server.key"
echo "clickhouse-server $(ch_sql 'SELECT version()') on 127.0.0.1:$CH_HTTP"
"$PY" "$SRC/plugins/netflow/tests/flows.py" "$TMP" $(($(date +%s) - 20)) 31 32 33 34 35 36

DB=outpost_test
export OUTPOST_TEST_CH_PASSWORD=s3cret
write_config() { # run flows_table password_ref [url ca_file]
  cat > "$TMP/$1.yaml" <<YAML
engine:
  data_dir: $TMP/data
  summary_interval: 0s
  self_metrics_interval: 1s
  pipeline: {raw_flows: true}
credentials:
  ch_right: \${env:OUTPOST_TEST_CH_PASSWORD}
  ch_wrong: not-the-password
listeners:
  - {plugin: netflow, udp: "127.0.0.1:0"}
processors:
  flows: {plugin: flow_aggregator, interval: 2s, top_n: 1000}
sinks:
  reference: {plugin: file, path: "$TMP/sent-$1.jsonl"}
  store:
    plugin: clickhouse
    url: ${4:-http://127.0.0.1:$CH_HTTP}
    ca_file: "${5:-}"
    database: $DB
    flows_table: $2
    user: outpost
    password: $3
    timeout: 5s
    stats_interval: 1s
    spool: {sync_interval: 100ms, max_delay: 300ms, backoff_initial: 200ms, backoff_max: 1s}
YAML
}
export_pcap() { # PCAP: softflowd reads it and exports every flow to the engine's listener
  local ctl=$TMP/sf.ctl sf
  rm -f "$ctl"
  timeout 20 softflowd -d -r "$1" -n "127.0.0.1:$PORT" -v 9 -6 -p "$TMP/sf.pid" -c "$ctl" \
    < /dev/null > "$TMP/sf.log" 2>&1 &
  sf=$!
  for _ in $(seq 1 100); do [ -S "$ctl" ] && break; sleep 0.02; done
  for _ in $(seq 1 100); do
    softflowctl -c "$ctl" statistics 2> /dev/null | grep -q "Packets processed: [1-9]" && break
    sleep 0.05
  done
  softflowctl -c "$ctl" shutdown > /dev/null 2>&1 || true
  wait "$sf" || true
}
sent_flows() { cat "$@" | grep -c '"type":"flow"' || true; }
sent_rollups() { cat "$@" | grep -c '"type":"metric","name":"flow_' || true; }
count() { ch_sql "SELECT count() FROM $DB.$1" 2> /dev/null || echo -1; }
wait_count() { # TABLE WHAT FILE...: until TABLE holds as many rows as the files have of WHAT
  # (flows or rollups; what the engine is still writing counted as it comes), 60 s at most
  local table=$1 what=$2 want
  shift 2
  for _ in $(seq 1 600); do
    want=$(sent_$what "$@")
    [ "$want" -gt 0 ] && [ "$(count "$table")" = "$want" ] && return 0
    sleep 0.1
  done
  echo "  $table holds $(count "$table") rows, the engine produced $want"
  return 1
}
wait_log() { # FILE PATTERN: until FILE has a line matching PATTERN (30 s at most)
  for _ in $(seq 1 300); do grep -q "$2" "$1" && return 0; sleep 0.1; done
  return 1
}
# the last value of a counter the engine wrote to a file sink
last_metric() { # FILE NAME [LABEL=VALUE]
  "$PY" - "$@" <<'PY'
import json, sys
path, name = sys.argv[1], sys.argv[2]
want = dict(a.split("=", 1) for a in sys.argv[3:])
v = None
for line in open(path):
    d = json.loads(line)
    if d["type"] == "metric" and d["name"] == name and all(d["labels"].get(k) == x for k, x in want.items()):
        v = d["value"]
print(-1 if v is None else int(v))
PY
}

# --- run 1: flows in; the server stopped mid-run; started again ---
write_config run1 flows ch_right
start_engine "$TMP/run1.yaml" netflow
export_pcap "$TMP/run31.pcap"
check "run 1: the first export's flows are in ClickHouse" wait_count flows flows "$TMP/sent-run1.jsonl"
ch_stop
echo "clickhouse-server stopped with $(sent_flows "$TMP/sent-run1.jsonl") flows sent"
export_pcap "$TMP/run32.pcap"
check "run 1: with the server away, sending fails and the spool keeps the batches" \
  wait_log "$TMP/engine.err" "spool .*store.*sending failed"
sleep 2  # a few more failed attempts
check "run 1: what was exported while the server was away reached the file sink" \
  test "$(grep -c '"src":"10.32.' "$TMP/sent-run1.jsonl")" -gt 0
ch_start "$TMP/ch" "$CH_HTTP" "$CH_TCP" "$CH_HTTPS" "$CH_CERT" "$CH_KEY"
check "run 1: once the server is back, the spool delivers" \
  wait_log "$TMP/engine.err" "spool .*store.*takes data again"
sleep 3  # the last rollup interval
stop_engine
check "run 1: the engine stops cleanly" test "$ENGINE_RC" = 0
cp "$TMP/engine.err" "$TMP/run1.err"

# --- run 2: a wrong password: operator-class, nothing sent, the data waits ---
write_config run2 flows ch_wrong
before=$(count flows)
start_engine "$TMP/run2.yaml" netflow
export_pcap "$TMP/run33.pcap"
check "run 2: the wrong password is refused and said to be the operator's (0x201)" \
  wait_log "$TMP/engine.err" "Wrong password"
sleep 2
stop_engine
cp "$TMP/engine.err" "$TMP/run2.err"
check "run 2: the engine stops cleanly" test "$ENGINE_RC" = 0
check "run 2: nothing reached ClickHouse" test "$(count flows)" = "$before"
check "run 2: the refusal was an authentication error (0x201), kept, not dropped" \
  bash -c "grep -q 'status 0x201; kept' '$TMP/run2.err' && ! grep -q 'refused a batch' '$TMP/run2.err'"

# --- run 3: the right password: run 2's data arrives ---
write_config run3 flows ch_right
start_engine "$TMP/run3.yaml" netflow
all="$TMP/sent-run1.jsonl $TMP/sent-run2.jsonl $TMP/sent-run3.jsonl"
check "run 3: every flow of runs 1-3 is in ClickHouse" wait_count flows flows $all
sleep 3
stop_engine
check "run 3: the engine stops cleanly" test "$ENGINE_RC" = 0
all="$TMP/sent-run1.jsonl $TMP/sent-run2.jsonl $TMP/sent-run3.jsonl"
wait_count flow_rollups rollups $all || true

ch_sql "SELECT start_ns, end_ns, IPv6NumToString(exporter) AS exporter, IPv6NumToString(src) AS src,
  IPv6NumToString(dst) AS dst, src_port, dst_port, protocol, tcp_flags, tos, bytes, packets,
  input_if, output_if, sampling_rate FROM $DB.flows FORMAT JSONEachRow" > "$TMP/ch-flows.jsonl"
ch_sql "SELECT toUInt32(time) AS t, name, exporter, ifindex, direction, src, dst, protocol, port,
  value, label_keys, label_values FROM $DB.flow_rollups FORMAT JSONEachRow" > "$TMP/ch-rollups.jsonl"
sent=$(echo $all | tr ' ' ',')
check "every flow record the engine produced is in ClickHouse once (outage, wrong password)" \
  "$PY" "$HERE/compare.py" flows "$sent" "$TMP/ch-flows.jsonl"
check "every rollup the engine produced is in ClickHouse once" \
  "$PY" "$HERE/compare.py" rollups "$sent" "$TMP/ch-rollups.jsonl" flow_
check "the flows are the pcaps' (per-flow bytes of run 31 as the pcap has them)" "$PY" - \
  "$TMP/expected_31.json" "$TMP/ch-flows.jsonl" <<'PY'
import json, sys, collections
exp = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
got = collections.Counter()
for l in open(sys.argv[2]):
    d = json.loads(l)
    got[(d["src"].replace("::ffff:", ""), d["dst"].replace("::ffff:", ""), int(d["src_port"]), int(d["dst_port"]))] += int(d["bytes"])
ok = all(got[(e["src"], e["dst"], e["sport"], e["dport"])] == e["bytes"] for e in exp if e["proto"] != 1)
sys.exit(0 if ok and exp else 1)
PY
check "the sink counted and ignored the engine's other metrics" \
  test "$(last_metric "$TMP/sent-run3.jsonl" outpost_clickhouse_ignored_total kind=metric)" -gt 0
check "the tables are what create_tables makes (MergeTree by day, ordered by time and exporter)" \
  bash -c "clickhouse-client --host 127.0.0.1 --port $CH_TCP --query 'SHOW CREATE TABLE $DB.flows' |
    grep -q 'MergeTree PARTITION BY toDate(time) ORDER BY (time, exporter)'"

# --- run 4: a flows table that does not fit: rejected and counted, no crash ---
ch_sql "CREATE TABLE $DB.flows_bad (time DateTime, bytes UInt32, packets UInt64)
  ENGINE = MergeTree ORDER BY time"
write_config run4 flows_bad ch_right
start_engine "$TMP/run4.yaml" netflow
export_pcap "$TMP/run34.pcap"
check "run 4: the table's misfit is said, column by column" \
  wait_log "$TMP/engine.err" "flows_bad does not fit the rows: no column start_ns"
check "run 4: the rollups still arrive (their table fits)" \
  wait_count flow_rollups rollups $all "$TMP/sent-run4.jsonl"
sleep 2
stop_engine
check "run 4: the engine stops cleanly" test "$ENGINE_RC" = 0
check "run 4: nothing went into the table that does not fit" test "$(count flows_bad)" = 0
check "run 4: the spool dropped the rejected batches for good and said so" \
  grep -q 'refused a batch of [0-9]* items for good (status 0x302)' "$TMP/engine.err"
check "run 4: the sink's counter of rejected rows says how many" \
  test "$(last_metric "$TMP/sent-run4.jsonl" outpost_clickhouse_rejected_rows_total)" -gt 0
check "the server is still up and the good table unchanged" test "$(count flows)" = "$(sent_flows $all)"

# --- run 5: HTTPS with a CA that did not sign the server's certificate: nothing sent, kept ---
HTTPS_URL=https://127.0.0.1:$CH_HTTPS
write_config run5 flows ch_right "$HTTPS_URL" "$TMP/other-ca.pem"
before=$(count flows)
start_engine "$TMP/run5.yaml" netflow
export_pcap "$TMP/run35.pcap"
check "run 5: the server's certificate is not trusted, said as the operator's (0x201), kept"   wait_log "$TMP/engine.err" "status 0x201; kept"
check "run 5: ... because of TLS" grep -q "TLS: " "$TMP/engine.err"
sleep 1
stop_engine
check "run 5: the engine stops cleanly" test "$ENGINE_RC" = 0
check "run 5: nothing reached ClickHouse" test "$(count flows)" = "$before"

# --- run 6: HTTPS with the right CA: run 5's data arrives ---
write_config run6 flows ch_right "$HTTPS_URL" "$TMP/ca.pem"
start_engine "$TMP/run6.yaml" netflow
export_pcap "$TMP/run36.pcap"
flows_runs="$all $TMP/sent-run5.jsonl $TMP/sent-run6.jsonl"
check "run 6: over HTTPS every flow of runs 5 and 6 arrives" wait_count flows flows $flows_runs
sleep 3
stop_engine
check "run 6: the engine stops cleanly" test "$ENGINE_RC" = 0

rollup_runs="$flows_runs $TMP/sent-run4.jsonl"
wait_count flow_rollups rollups $rollup_runs || true

ch_sql "SELECT start_ns, end_ns, IPv6NumToString(exporter) AS exporter, IPv6NumToString(src) AS src,
  IPv6NumToString(dst) AS dst, src_port, dst_port, protocol, tcp_flags, tos, bytes, packets,
  input_if, output_if, sampling_rate FROM $DB.flows FORMAT JSONEachRow" > "$TMP/ch-flows.jsonl"
ch_sql "SELECT toUInt32(time) AS t, name, exporter, ifindex, direction, src, dst, protocol, port,
  value, label_keys, label_values FROM $DB.flow_rollups FORMAT JSONEachRow" > "$TMP/ch-rollups.jsonl"
check "in the end every flow record of runs 1-3, 5 and 6 is in ClickHouse once" \
  "$PY" "$HERE/compare.py" flows "$(echo $flows_runs | tr ' ' ',')" "$TMP/ch-flows.jsonl"
check "in the end every rollup of runs 1-6 is in ClickHouse once" \
  "$PY" "$HERE/compare.py" rollups "$(echo $rollup_runs | tr ' ' ',')" "$TMP/ch-rollups.jsonl" flow_

# --- runs 7-11: kill -9 at a random moment after each export; run 12 drains the spool ---
"$PY" "$SRC/plugins/netflow/tests/flows.py" "$TMP" $(($(date +%s) - 20)) 37 38 39 40 41
for run in 7 8 9 10 11; do
  write_config "run$run" flows ch_right
  start_engine "$TMP/run$run.yaml" netflow
  export_pcap "$TMP/run$((30 + run)).pcap"
  # The kill comes at a random moment after the flows are in the pipeline (the reference file
  # sink has them), not after a fixed time a loaded machine may not have reached them by.
  for _ in $(seq 1 200); do grep -q '"src":' "$TMP/sent-run$run.jsonl" 2> /dev/null && break; sleep 0.05; done
  sleep "$("$PY" -c 'import random; print(round(random.uniform(0.1, 1.2), 2))')"
  kill -KILL "$ENGINE"
  wait "$ENGINE" 2> /dev/null || true
done
write_config run12 flows ch_right
start_engine "$TMP/run12.yaml" netflow
sleep 4  # the spool's leftovers go out
stop_engine
check "run 12: the engine stops cleanly" test "$ENGINE_RC" = 0
check "after five kill -9: no row is in ClickHouse twice" test "$(ch_sql "SELECT count() FROM
  (SELECT count() AS n FROM $DB.flows GROUP BY start_ns, end_ns, exporter, src, dst, src_port,
   dst_port, protocol, bytes, packets HAVING n > 1)")" = 0
ch_sql "SELECT IPv6NumToString(src) AS src, IPv6NumToString(dst) AS dst, src_port, dst_port, bytes
  FROM $DB.flows FORMAT JSONEachRow" > "$TMP/ch-flows.jsonl"
check "after five kill -9: the killed runs' flows arrived, none with more bytes than its pcap has" \
  "$PY" - "$TMP/ch-flows.jsonl" "$TMP"/expected_3[7-9].json "$TMP"/expected_4[01].json <<'PY'
import collections, json, sys
got = collections.Counter()
for l in open(sys.argv[1]):
    d = json.loads(l)
    got[(d["src"].replace("::ffff:", ""), d["dst"].replace("::ffff:", ""), int(d["src_port"]), int(d["dst_port"]))] += int(d["bytes"])
exp = {}
for path in sys.argv[2:]:
    for l in open(path):
        e = json.loads(l)
        exp[(e["src"], e["dst"], e["sport"], e["dport"])] = e["bytes"]
arrived = [k for k in exp if got[k] > 0]
over = [k for k in exp if got[k] > exp[k]]
print(f"  {len(arrived)} of {len(exp)} flows of the killed runs arrived, {len(over)} with too many bytes")
sys.exit(0 if arrived and not over else 1)
PY
ch_stop
finish
