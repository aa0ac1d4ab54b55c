#!/usr/bin/env bash
# The remote_write sink end to end against two real stores on loopback, VictoriaMetrics and
# Prometheus (each started once). The engine polls loopback targets every second and sends its
# own metrics too; a file sink beside the two remote_write sinks gets the same batches. Mid-run
# VictoriaMetrics is stopped for a few seconds and started again on its data directory (the disk
# spool keeps what it could not take); Prometheus is stopped before the engine, so its spool
# carries items across the engine's restart, and started again for a second run that only
# empties the spools. Afterwards both stores are read back and compared with the file sample by
# sample (compare.py): names, labels, millisecond timestamps and values; nothing missing, nothing
# extra, no sample stored more often than the engine produced it.
#   remote_write_e2e.sh BUILD_DIR
source "$(dirname "$0")/../../../tests/integration/lib.sh"
HERE=$(cd "$(dirname "$0")" && pwd)

VM_BIN=$(command -v victoria-metrics || true)
PROM_BIN=$(command -v prometheus || true)
[ -n "$VM_BIN" ] && [ -n "$PROM_BIN" ] ||
  { echo "FAIL: victoria-metrics and prometheus are needed (scripts/deps/remote_write.list)"; exit 1; }

# The stores end before their data directories are removed (a store still writing makes rm fail).
stop_stores() {
  for p in ${VM:-} ${PROM:-}; do kill -TERM "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
}
trap 'stop_stores; cleanup' EXIT

VMPORT=$(free_port)
PROMPORT=$(free_port)
start_vm() {
  "$VM_BIN" -storageDataPath "$TMP/vm" -httpListenAddr "127.0.0.1:$VMPORT" -retentionPeriod 1d \
    -search.latencyOffset 0s >> "$TMP/vm.log" 2>&1 &
  VM=$!
  PIDS+=($VM)
  for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$VMPORT/health" > /dev/null && return 0; sleep 0.1; done
  echo "FAIL: VictoriaMetrics did not start"; tail "$TMP/vm.log"; exit 1
}
printf 'global:\n  scrape_interval: 15s\nscrape_configs: []\n' > "$TMP/prom.yml"
start_prom() {
  "$PROM_BIN" --config.file="$TMP/prom.yml" --storage.tsdb.path="$TMP/prom" \
    --web.listen-address="127.0.0.1:$PROMPORT" --web.enable-remote-write-receiver \
    >> "$TMP/prom.log" 2>&1 &
  PROM=$!
  PIDS+=($PROM)
  for _ in $(seq 1 200); do curl -sf "http://127.0.0.1:$PROMPORT/-/ready" > /dev/null && return 0; sleep 0.1; done
  echo "FAIL: Prometheus did not start"; tail "$TMP/prom.log"; exit 1
}
# Each store is started once for the whole file (and again only after the outage it is given).
start_prom
start_vm

WEB=$(free_port)
python3 -m http.server "$WEB" --bind 127.0.0.1 --directory "$TMP" > /dev/null 2>&1 &
PIDS+=($!)

# Run 1 polls and sends. VictoriaMetrics goes away in the middle and comes back while the engine
# runs; Prometheus goes away near the end and is still away when run 1 stops, so its spool holds
# items across the engine's restart. Run 2 has nothing to poll (self-metrics once an hour) and
# only empties the spools. (An interval of 0 is not a valid self_metrics_interval: a config that
# said so made run 2 refuse to start.)
write_config() { # name with-sources
  local selfm=1h stats=0s
  [ "$2" = yes ] && selfm=1s && stats=1s
  cat <<YAML > "$TMP/$1.yaml"
engine:
  data_dir: $TMP/data
  summary_interval: 0s
  self_metrics_interval: $selfm
  scheduler: {jitter: 0.5}
sinks:
  local: {plugin: file, path: "$TMP/sent-$1.jsonl"}
  vm:
    plugin: remote_write
    url: http://127.0.0.1:$VMPORT/api/v1/write
    external_labels: [engine=site-1]
    timeout: 2s
    stats_interval: $stats
    max_samples_per_request: 50
    spool: {sync_interval: 100ms, max_delay: 300ms, backoff_initial: 200ms, backoff_max: 1s}
  prom:
    plugin: remote_write
    url: http://127.0.0.1:$PROMPORT/api/v1/write
    external_labels: [engine=site-1]
    timeout: 2s
    stats_interval: $stats
    spool: {sync_interval: 100ms, max_delay: 300ms, backoff_initial: 200ms, backoff_max: 1s}
YAML
  if [ "$2" = yes ]; then
    {
      echo "inventory:"
      echo "  devices:"
      echo "    - {name: web, address: 127.0.0.1, tags: {if.name: lo, if_name: x, role: ''}, monitors: [{plugin: tcp, port: $WEB, interval: 1s, timeout: 1s}]}"
      for i in $(seq 1 10); do
        echo "    - {name: host-$i, address: 127.7.1.$i, monitors: [{plugin: icmp, interval: 1s, count: 1}]}"
      done
    } >> "$TMP/$1.yaml"
  fi
}
engine_alive() { # run
  kill -0 "$ENGINE" 2>/dev/null && return 0
  echo "FAIL: the engine of $1 ended before the test stopped it"; tail -20 "$TMP/$1.err"; exit 1
}
spool_waiting() { # run sink: the items the sink's spool held when the engine started
  sed -n "s/.*sink '$2': spool .* (\([0-9]*\) items waiting.*/\1/p" "$TMP/$1.err" | head -1
}

write_config run1 yes
"$OUTPOST" run -c "$TMP/run1.yaml" > "$TMP/run1.out" 2> "$TMP/run1.err" &
ENGINE=$!
PIDS+=($ENGINE)
sleep 6
engine_alive run1
kill -TERM "$VM"; wait "$VM" 2>/dev/null || true
echo "VictoriaMetrics stopped at $(date +%T)"
sleep 5
start_vm
echo "VictoriaMetrics started again at $(date +%T)"
sleep 6
engine_alive run1
kill -TERM "$PROM"; wait "$PROM" 2>/dev/null || true
echo "Prometheus stopped at $(date +%T)"
sleep 4
engine_alive run1
stop_engine
check "run 1 stops cleanly" test "$ENGINE_RC" = 0
check "the engine said that VictoriaMetrics was away" \
  grep -q "remote_write http://127.0.0.1:$VMPORT/api/v1/write: " "$TMP/run1.err"
check "and that it took requests again" \
  grep -q "remote_write http://127.0.0.1:$VMPORT/api/v1/write takes requests again" "$TMP/run1.err"
start_prom
echo "Prometheus started again at $(date +%T)"
write_config run2 no
"$OUTPOST" run -c "$TMP/run2.yaml" > "$TMP/run2.out" 2> "$TMP/run2.err" &
ENGINE=$!
PIDS+=($ENGINE)
sleep 5
engine_alive run2
STOP2_MS=$(date +%s%3N)
stop_engine
check "run 2 stops cleanly" test "$ENGINE_RC" = 0
waiting=$(spool_waiting run2 prom)
echo "  Prometheus' spool held ${waiting:-?} items when run 2 started"
check "what Prometheus could not take in run 1 waited in its spool for run 2" \
  test "${waiting:-0}" -gt 0

curl -sf "http://127.0.0.1:$VMPORT/internal/force_flush" > /dev/null
sleep 1
curl -sf "http://127.0.0.1:$VMPORT/api/v1/export" --data-urlencode 'match[]={__name__!=""}' \
  > "$TMP/vm.jsonl"
curl -sf "http://127.0.0.1:$PROMPORT/api/v1/query" --data-urlencode 'query={__name__!=""}[1h]' \
  --data-urlencode "time=$(date +%s)" > "$TMP/prom.json"
SENT="$TMP/sent-run1.jsonl,$TMP/sent-run2.jsonl"
check "the file sink wrote metrics of the tcp and icmp monitors and of the engine" python3 - "$TMP/sent-run1.jsonl" <<'PY'
import json, sys
names = {json.loads(l)["name"] for l in open(sys.argv[1]) if '"type":"metric"' in l}
print(f"  {len(names)} metric names, e.g. {sorted(names)[:4]}")
sys.exit(0 if any(n.startswith("outpost_remote_write") for n in names) and len(names) > 10 else 1)
PY
check "VictoriaMetrics holds exactly what the file sink wrote, after its outage too" \
  python3 "$HERE/compare.py" "$SENT" vm "$TMP/vm.jsonl" --pending-after "$STOP2_MS" \
    --external engine=site-1
check "Prometheus holds exactly what the file sink wrote, after its outage and the restart too" \
  python3 "$HERE/compare.py" "$SENT" prom "$TMP/prom.json" --pending-after "$STOP2_MS" \
    --external engine=site-1
# What run 2 emitted as it stopped (its self-metrics) is in the spools, exactly that: a third
# start finds it waiting (it is started after the stores were read, so it changes nothing above).
late=$(python3 -c '
import json, sys
print(sum(1 for l in open(sys.argv[1]) if json.loads(l)["time_ns"] // 1000000 >= int(sys.argv[2])))
' "$TMP/sent-run2.jsonl" "$STOP2_MS")
"$OUTPOST" run -c "$TMP/run2.yaml" > "$TMP/run3.out" 2> "$TMP/run3.err" &
ENGINE=$!
PIDS+=($ENGINE)
for _ in $(seq 1 100); do grep -q "engine '.*' running" "$TMP/run3.err" && break; sleep 0.1; done
stop_engine
echo "  run 2 emitted $late items as it stopped; run 3 found $(spool_waiting run3 vm) and $(spool_waiting run3 prom) waiting"
check "run 3 found in each spool exactly what run 2 emitted as it stopped" \
  test "$(spool_waiting run3 vm)" = "$late" -a "$(spool_waiting run3 prom)" = "$late"
check "a label colliding after sanitising (if.name vs if_name) kept the if.name value" \
  grep -q '"if_name":"lo"' "$TMP/vm.jsonl"
if [ "$FAILS" -ne 0 ]; then
  echo "--- engine run 1 ---"; tail -20 "$TMP/run1.err"
  echo "--- engine run 2 ---"; tail -20 "$TMP/run2.err"
fi
finish
