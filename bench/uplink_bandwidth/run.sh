#!/usr/bin/env bash
# The uplink's bandwidth (MISSION U3): what 1,000 monitored devices cost on the wire from the
# engine to the cloud, next to the guide's 140-200 Kbps per 1,000 devices.
#
# The fleet: bench_snmp_fleet_agent (bench/snmp), UPLINK_BENCH_DEVICES devices on their own
# loopback addresses with UPLINK_BENCH_IFACES interfaces each. The engine polls each one every
# UPLINK_BENCH_INTERVAL seconds (60) for the `generic` profile (system group and IF-MIB
# ifTable/ifXTable: the interfaces) and pings it (icmp: availability, round-trip, loss), with its
# own self-metrics every 60 s, and sends everything through its disk spool and the uplink sink
# (defaults: batches every 5 s, zstd level 3) over TLS to outpost-receiver. Between the two sits
# relay.py, which counts every byte both ways: TLS records, HTTP and all (TCP/IP headers are not
# counted; at ~1.4 kB per segment they would add about 4 %).
#
# Phase 1 (UPLINK_BENCH_SECONDS, default 600): live. Kbps = bytes engine->receiver * 8 / time,
# scaled to 1,000 devices; also per sample, and steady state (without the first cycle, which
# describes every series once).
# Phase 2: the receiver away for UPLINK_BENCH_OUTAGE seconds (120; the relay refuses
# connections), then back: the spool's ingest rate (items/s while away: the live rate) and its
# catch-up rate (the backlog's items / the time the receiver took to get them).
#
#   OUTPOST_BUILD_DIR=build bench/uplink_bandwidth/run.sh [quick|full]   (quick: 120 s, 30 s away)
# Last line: RESULT uplink_bandwidth outpost=<Kbps per 1,000 devices> guide=140 ratio=<x> Kbps
set -euo pipefail

mode=${1:-full}
case $mode in
  quick) def_secs=120 def_out=30 ;;
  full) def_secs=600 def_out=120 ;;
  *) echo "usage: run.sh [quick|full]" >&2; exit 2 ;;
esac
devices=${UPLINK_BENCH_DEVICES:-1000}
ifaces=${UPLINK_BENCH_IFACES:-8}
interval=${UPLINK_BENCH_INTERVAL:-60}
secs=${UPLINK_BENCH_SECONDS:-$def_secs}
outage=${UPLINK_BENCH_OUTAGE:-$def_out}
port=${UPLINK_BENCH_PORT:-16200}
base=${UPLINK_BENCH_BASE:-127.21.0.1}
here=$(cd "$(dirname "$0")" && pwd)
build=${OUTPOST_BUILD_DIR:-$here/../../build}
build=$(cd "$build" && pwd)
agent=$build/bench/snmp/bench_snmp_fleet_agent
die() { echo "run.sh: $*" >&2; exit 1; }
for f in "$agent" "$build/outpost" "$build/outpost-receiver"; do [[ -x $f ]] || die "no $f: build it"; done
for p in snmp icmp uplink; do [[ -f $build/plugins/outpost_$p.so ]] || die "no outpost_$p.so"; done

work=$(mktemp -d /tmp/uplink-bench.XXXXXX)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  [[ ${UPLINK_BENCH_KEEP:-0} == 1 ]] && echo "work directory kept: $work" >&2 || rm -rf "$work"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

cd "$work"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key -out ca.pem \
  -days 2 -subj "/CN=bench CA" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout server.key \
  -out server.csr -subj "/CN=127.0.0.1" 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1\n' > server.ext
openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 \
  -extfile server.ext -out server.pem 2>/dev/null
cd - > /dev/null

rport=$(free_port)
"$build/outpost-receiver" --listen "127.0.0.1:$rport" --cert "$work/server.pem" \
  --key "$work/server.key" > "$work/receiver.out" 2> "$work/receiver.err" &
PIDS+=($!)
for _ in $(seq 1 100); do grep -q '^listening' "$work/receiver.out" && break; sleep 0.05; done
lport=$(free_port)
python3 "$here/relay.py" "$lport" "$rport" "$work/counts" > "$work/relay.out" 2>&1 &
RELAY=$!
PIDS+=($RELAY)
for _ in $(seq 1 100); do [[ -s $work/counts ]] && break; sleep 0.05; done
counts() { cat "$work/counts"; }
items() {
  curl -s --cacert "$work/ca.pem" "https://127.0.0.1:$rport/v1/stats" |
    python3 -c 'import json,sys; d=json.load(sys.stdin)["items"]; print(d["metric"]+d["event"]+d["flow"])'
}

"$agent" --devices "$devices" --base "$base" --port "$port" --ifaces "$ifaces" \
  --slow-fraction 0 --dead-fraction 0.01 --list "$work/fleet.txt" \
  > "$work/agent.out" 2> "$work/agent.err" &
PIDS+=($!)
for _ in $(seq 1 100); do [[ -s $work/agent.out ]] && break; sleep 0.05; done
[[ -s $work/agent.out ]] || die "the fleet agent did not start"

{
  cat <<YAML
engine:
  id: bandwidth-bench
  data_dir: $work/data
  log_level: warn
  summary_interval: 0s
  self_metrics_interval: ${interval}s
sinks:
  cloud: {plugin: uplink, url: "https://127.0.0.1:$lport/v1/batches", ca_file: $work/ca.pem, stats_interval: $interval}
inventory:
  devices:
YAML
  while read -r i ip p _; do
    echo "    - {name: dev-$i, address: $ip, monitors: [{plugin: snmp, interval: ${interval}s, port: $p, community: public, profile: generic}, {plugin: icmp, interval: ${interval}s}]}"
  done < "$work/fleet.txt"
} > "$work/outpost.yaml"

"$build/outpost" run -c "$work/outpost.yaml" > "$work/engine.out" 2> "$work/engine.err" &
ENGINE=$!
PIDS+=($ENGINE)
t0=$(date +%s.%N)
read -r up0 down0 _ < <(counts)
i0=$(items)
sleep "$interval"
read -r up1 down1 _ < <(counts)
i1=$(items)
t1=$(date +%s.%N)
sleep "$(python3 -c "print(max(1, $secs - $interval))")"
read -r up2 down2 conns < <(counts)
i2=$(items)
t2=$(date +%s.%N)

# Phase 2: away, then back.
kill -USR1 "$RELAY"
tout=$(date +%s.%N)
sleep "$outage"
backlog_from=$(items)
kill -USR2 "$RELAY"
tback=$(date +%s.%N)
# The backlog is what came live before, over the time away. The engine's next attempt comes when
# its back-off (up to 60 s) says; catch-up is timed from the first item to the backlog's last.
expect=$(python3 -c "print(int(($i2 - $i1) / ($t2 - $t1) * ($tback - $tout) * 0.97))")
tfirst= tdone=
while :; do
  sleep 0.1
  now_items=$(items)
  now=$(date +%s.%N)
  [[ -z $tfirst && $now_items != "$backlog_from" ]] && tfirst=$now
  if ((now_items - backlog_from >= expect)); then tdone=$now; break; fi
  python3 -c "import sys; sys.exit(0 if $now - $tback > 300 else 1)" && break
done
prev=$now_items
[[ -n $tfirst ]] || tfirst=$tback
[[ -n $tdone ]] || tdone=$now
last_change=$tdone
tback_first=$tfirst
kill -TERM "$ENGINE"; wait "$ENGINE" 2>/dev/null || true

python3 - "$devices" "$t0" "$t1" "$t2" "$up0" "$up1" "$up2" "$down0" "$down2" "$i0" "$i1" "$i2" \
  "$tout" "$tback_first" "$last_change" "$backlog_from" "$prev" "$conns" "$interval" "$tback" <<'PY'
import sys
a = sys.argv[1:]
devices = int(a[0]); t0, t1, t2 = map(float, a[1:4]); up0, up1, up2 = map(int, a[4:7])
down0, down2 = int(a[7]), int(a[8]); i0, i1, i2 = map(int, a[9:12])
tout, tback, tdone = map(float, a[12:15]); b0, b1 = int(a[15]), int(a[16]); conns = int(a[17])
interval = float(a[18]); tup = float(a[19])
scale = 1000 / devices
kbps = (up2 - up0) * 8 / (t2 - t0) / 1000 * scale
steady = (up2 - up1) * 8 / (t2 - t1) / 1000 * scale
down = (down2 - down0) * 8 / (t2 - t0) / 1000 * scale
samples = i2 - i0
live_rate = (i2 - i1) / (t2 - t1)
backlog = b1 - b0
catchup = backlog / max(0.001, tdone - tback)
print(f"{devices} devices, {t2 - t0:.0f} s live: {up2 - up0} bytes up, {down2 - down0} down, "
      f"{samples} items received ({samples / (t2 - t0):.0f}/s), {conns} TCP connections")
print(f"per 1,000 devices: {kbps:.2f} Kbps up (steady state after the first cycle: {steady:.2f}), "
      f"{down:.2f} Kbps down; {(up2 - up0) / max(1, samples):.2f} bytes per item on the wire")
print(f"spool: ingest {live_rate:.0f} items/s live; {backlog} items spooled while the receiver was "
      f"away {tup - tout:.0f} s; the first came {tback - tup:.1f} s after it was back (the "
      f"back-off), the rest in {tdone - tback:.1f} s: {catchup:.0f} items/s "
      f"({catchup / max(1, live_rate):.0f}x the live rate)")
print(f"RESULT uplink_bandwidth outpost={kbps:.2f} guide=140 ratio={140 / kbps:.2f} Kbps")
PY
