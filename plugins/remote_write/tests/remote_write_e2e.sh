#!/usr/bin/env bash
# The remote_write sink end to end against two real stores on loopback, VictoriaMetrics and
# Prometheus (each started once). The engine polls loopback targets every second and sends its
# own metrics too; a file sink beside the two remote_write sinks gets the same batches. Mid-run
# VictoriaMetrics is stopped for a few seconds and started again on its data directory (the disk
# spool keeps what it could not take). Afterwards both stores are read back and compared with the
# file sample by sample (compare.py): names, labels, millisecond timestamps and values.
#   remote_write_e2e.sh BUILD_DIR
source "$(dirname "$0")/../../../tests/integration/lib.sh"
HERE=$(cd "$(dirname "$0")" && pwd)

VM_BIN=$(command -v victoria-metrics || true)
PROM_BIN=$(command -v prometheus || true)
[ -n "$VM_BIN" ] && [ -n "$PROM_BIN" ] ||
  { echo "FAIL: victoria-metrics and prometheus are needed (scripts/deps/remote_write.list)"; exit 1; }

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
"$PROM_BIN" --config.file="$TMP/prom.yml" --storage.tsdb.path="$TMP/prom" \
  --web.listen-address="127.0.0.1:$PROMPORT" --web.enable-remote-write-receiver \
  > "$TMP/prom.log" 2>&1 &
PIDS+=($!)
start_vm
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$PROMPORT/-/ready" > /dev/null && break; sleep 0.1; done
curl -sf "http://127.0.0.1:$PROMPORT/-/ready" > /dev/null || { echo "FAIL: Prometheus did not start"; tail "$TMP/prom.log"; exit 1; }

WEB=$(free_port)
python3 -m http.server "$WEB" --bind 127.0.0.1 --directory "$TMP" > /dev/null 2>&1 &
PIDS+=($!)

# Run 1 polls and sends; run 2 has nothing to poll and only empties the spools.
write_config() { # name with-sources
  local selfm=0s stats=0s
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

write_config run1 yes
"$OUTPOST" run -c "$TMP/run1.yaml" > "$TMP/run1.out" 2> "$TMP/run1.err" &
ENGINE=$!
PIDS+=($ENGINE)
sleep 6
kill -TERM "$VM"; wait "$VM" 2>/dev/null || true
echo "VictoriaMetrics stopped at $(date +%T)"
sleep 5
start_vm
echo "VictoriaMetrics started again at $(date +%T)"
sleep 8
kill -0 "$ENGINE" 2>/dev/null || { echo "FAIL: the engine ended early"; tail -20 "$TMP/run1.err"; exit 1; }
stop_engine
check "run 1 stops cleanly" test "$ENGINE_RC" = 0
check "the engine said once that VictoriaMetrics was away" \
  test "$(grep -c "remote_write http://127.0.0.1:$VMPORT" "$TMP/run1.err")" -ge 1
write_config run2 no
"$OUTPOST" run -c "$TMP/run2.yaml" > "$TMP/run2.out" 2> "$TMP/run2.err" &
ENGINE=$!
PIDS+=($ENGINE)
sleep 4
stop_engine
check "run 2 stops cleanly" test "$ENGINE_RC" = 0

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
  python3 "$HERE/compare.py" "$SENT" vm "$TMP/vm.jsonl" --external engine=site-1
check "Prometheus holds exactly what the file sink wrote" \
  python3 "$HERE/compare.py" "$SENT" prom "$TMP/prom.json" --external engine=site-1
check "a label colliding after sanitising (if.name vs if_name) kept the if.name value" \
  grep -q '"if_name":"lo"' "$TMP/vm.jsonl"
if [ "$FAILS" -ne 0 ]; then
  echo "--- engine run 1 ---"; tail -20 "$TMP/run1.err"
  echo "--- engine run 2 ---"; tail -20 "$TMP/run2.err"
fi
finish
