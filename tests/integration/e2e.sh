#!/usr/bin/env bash
# End to end: the outpost binary on a config that pings and TCP-checks loopback targets (a real
# web server for the open port), stores into the local store (the store sink, the default) and,
# beside it, the sqlite sink; survives a bad reload, applies a good one, stops cleanly on SIGTERM,
# and `outpost query` reads the results back: the two stores hold the same samples.
source "$(dirname "$0")/lib.sh"

PORT=$(free_port)
CLOSED=$(free_port)  # bound and released: nothing listens there now
mkdir -p "$TMP/www"
echo hello > "$TMP/www/index.html"
python3 -m http.server "$PORT" --bind 127.0.0.1 --directory "$TMP/www" >/dev/null 2>&1 &
PIDS+=($!)
for i in $(seq 1 50); do python3 - "$PORT" <<'PY' && break || sleep 0.1; done
import socket, sys
socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=1).close()
PY

devices() { # the 50 extra icmp targets
  for i in $(seq 1 50); do echo "    - {name: host-$i, address: 127.3.0.$i, tags: {rack: r$((i % 3))}, monitors: [{plugin: icmp, interval: 1s, count: 1}]}"; done
}
write_config() { # extra device lines
  cat > "$TMP/outpost.yaml" <<YAML
engine:
  data_dir: $TMP/data
  summary_interval: 1s
  self_metrics_interval: 1s
  scheduler: {jitter: 0.2}
sinks:
  local: {plugin: store, path: "\${data_dir}/store"}
  rows: {plugin: sqlite, path: "\${data_dir}/outpost.db"}
inventory:
  devices:
    - name: gateway
      address: 127.0.0.1
      tags: {site: lab}
      monitors:
        - {plugin: icmp, interval: 1s}
        - {plugin: tcp, port: $PORT, interval: 1s, timeout: 1s}
        - {plugin: tcp, port: $CLOSED, interval: 1s, timeout: 1s}
    - name: v6
      address: "::1"
      monitors: [{plugin: icmp, interval: 1s}]
$(devices)
$1
YAML
}
write_config ""
check "check-config accepts the config" "$OUTPOST" check-config "$TMP/outpost.yaml"

printf 'inventory:\n  devices:\n    - name: x\n      monitors:\n        - {plugin: tcp, prot: 22}\n' > "$TMP/bad.yaml"
set +e
"$OUTPOST" check-config "$TMP/bad.yaml" 2> "$TMP/bad.err"
rc=$?
set -e
check "check-config refuses an unknown key (exit 1)" test "$rc" = 1
check "the error names file:line:column and key path" \
  grep -q "bad.yaml:5:25: inventory.devices\[0\].monitors\[0\].prot: unknown key" "$TMP/bad.err"
check "the error names the missing required key" grep -q "bad.yaml:5:11: inventory.devices\[0\].monitors\[0\]: missing required key 'port'" "$TMP/bad.err"

"$OUTPOST" run -c "$TMP/outpost.yaml" > "$TMP/run.out" 2> "$TMP/run.err" &
ENGINE=$!
PIDS+=($ENGINE)
sleep 3
cp "$TMP/outpost.yaml" "$TMP/good.yaml"
printf 'engine: {bogus: 1}\n' > "$TMP/outpost.yaml"
kill -HUP "$ENGINE"
sleep 1
check "a bad reload is refused" grep -q "reload refused" "$TMP/run.err"
check "the engine keeps running after a bad reload" kill -0 "$ENGINE"
cp "$TMP/good.yaml" "$TMP/outpost.yaml"
write_config "    - {name: added-by-reload, address: 127.4.0.1, monitors: [{plugin: icmp, interval: 1s}]}"
kill -HUP "$ENGINE"
sleep 2.5
stop_engine
rc=$ENGINE_RC
check "SIGTERM stops the engine cleanly (exit 0)" test "$rc" = 0
check "the good reload was applied" grep -q "configuration reloaded" "$TMP/run.err"
check "the engine reported its final counts" grep -q "stopped: .* dropped" "$TMP/run.err"
check "summary lines were printed" grep -q "^targets 5[45]: " "$TMP/run.out"

DB=$TMP/data/store
query "$DB" series > "$TMP/series.json"
check "127.0.0.1 answered ICMP" pycheck 'any(r["name"]=="icmp_up" and r["labels"]["device"]=="gateway" and r["last"]==1 for r in rows)' < "$TMP/series.json"
check "::1 answered ICMPv6" pycheck 'any(r["name"]=="icmp_up" and r["labels"]["device"]=="v6" and r["last"]==1 for r in rows)' < "$TMP/series.json"
check "all 50 extra loopback hosts are up" pycheck 'len({r["labels"]["device"] for r in rows if r["name"]=="icmp_up" and r["labels"]["device"].startswith("host-") and r["last"]==1})==50' < "$TMP/series.json"
check "device tags became labels" pycheck 'any(r["name"]=="icmp_up" and r["labels"].get("rack")=="r1" for r in rows)' < "$TMP/series.json"
check "RTT was measured" pycheck 'any(r["name"]=="icmp_rtt_avg_seconds" and 0 < r["last"] < 1 for r in rows)' < "$TMP/series.json"
check "the open port is up" pycheck "any(r['name']=='tcp_up' and r['labels']['port']=='$PORT' and r['last']==1 for r in rows)" < "$TMP/series.json"
check "the closed port is down" pycheck "any(r['name']=='tcp_up' and r['labels']['port']=='$CLOSED' and r['last']==0 for r in rows)" < "$TMP/series.json"
check "the device added by reload was polled" pycheck 'any(r["name"]=="icmp_up" and r["labels"]["device"]=="added-by-reload" for r in rows)' < "$TMP/series.json"
check "self-metrics were stored" pycheck 'any(r["name"]=="outpost_poll_results_total" and r["labels"]["plugin"]=="icmp" for r in rows)' < "$TMP/series.json"
check "nothing was dropped" pycheck 'not any(r["name"]=="outpost_pipeline_dropped_total" and r["last"]>0 for r in rows)' < "$TMP/series.json"
query "$DB" events > "$TMP/events.json"
check "the closed port raised an availability event" pycheck 'any(r["kind"]=="availability" and r["source"]=="gateway" and "tcp" in r["message"] for r in rows)' < "$TMP/events.json"
"$OUTPOST" query --db "$DB" > "$TMP/query.txt"
check "outpost query prints series and events" grep -q "== recent events ==" "$TMP/query.txt"
"$OUTPOST" query --db "$DB" samples --name icmp_up --match '"gateway"' --limit 3 > "$TMP/samples.txt"
check "outpost query samples prints rows" test "$(grep -c 'icmp_up{' "$TMP/samples.txt")" = 3
"$OUTPOST" query -c "$TMP/outpost.yaml" series --name icmp_up > "$TMP/default_sink.txt"
check "outpost query reads the config's first sink, the store" grep -q "icmp_up{" "$TMP/default_sink.txt"

# The store against the sqlite sink: the same samples, bit for bit, and the same latest values.
query "$DB" samples > "$TMP/store_samples.json"
query "$TMP/data/outpost.db" samples > "$TMP/sqlite_samples.json"
query "$TMP/data/outpost.db" series > "$TMP/sqlite_series.json"
same() { # what: compares two JSON-lines files as multisets of rows (keys $3...)
  python3 - "$@" <<'PY'
import collections, json, sys
what, a, b = sys.argv[1], sys.argv[2], sys.argv[3]
keys = sys.argv[4:]
def rows(p):
    return collections.Counter(json.dumps([r[k] for k in keys], sort_keys=True)
                               for r in map(json.loads, open(p)) if r)
ra, rb = rows(a), rows(b)
if ra != rb or not ra:
    print(f"{what}: {sum(ra.values())} rows against {sum(rb.values())}; only in the first: "
          f"{list((ra - rb).items())[:3]}; only in the second: {list((rb - ra).items())[:3]}")
    sys.exit(1)
PY
}
check "the store holds every sample the sqlite sink holds, and no other" \
  same samples "$TMP/store_samples.json" "$TMP/sqlite_samples.json" time_ns name labels value
check "the store's latest values are the sqlite sink's" \
  same series "$TMP/series.json" "$TMP/sqlite_series.json" name labels last last_time_ns
finish
