#!/usr/bin/env bash
# SNMP fleet polling: devices polled per second and CPU per device, for Outpost's snmp plugin
# beside collectd's snmp plugin (Debian collectd-core 5.12), in the same run, on the same
# simulated fleet.
#
# The fleet: bench_snmp_fleet_agent (fleet_agent.cpp), one process, one UDP socket per device
# on its own loopback address (127.20.0.1, 127.20.0.2, ... port SNMP_BENCH_PORT), SNMPv1/v2c
# GET/GETNEXT/GETBULK over the system group and IF-MIB ifTable/ifXTable with SNMP_BENCH_IFACES
# interfaces a device, counters and sysUpTime advancing with time, answers cut at 1400 bytes.
# On purpose 2 % of the devices are slow (every answer 200-500 ms late) and 1 % dead (never
# answer). It answers ~100k requests/s on one core (its CPU share is printed: it is not the
# bottleneck). Before anything is measured the agent checks itself (--self-check) and net-snmp's
# own tools check it: snmpwalk and snmpbulkwalk of ifTable/ifXTable must give every row,
# snmpget a sysUpTime that advances, a dead device must not answer.
#
# Both pollers get the same schedule: every device every SNMP_BENCH_INTERVAL seconds (1 s, i.e.
# a demand of ~1,000 device polls a second), for SNMP_BENCH_SECONDS, one after the other (never
# at once: 2 cores).
#   outpost   `outpost run -c CONFIG --for Ns`: snmp plugin (defaults: max_concurrent 512,
#             GETBULK max_repetitions 10, request_timeout 1 s, retries 2, all inside the poll's
#             timeout = the interval), the `generic` profile (system group + if-mib: 14 columns
#             of ifTable/ifXTable), sqlite sink (a row a sample, counted with SQL; queue 1,000,000).
#             Counted: snmp_up samples (one per completed poll; value 1 = OK).
#   collectd  collectd -f: the snmp plugin with one <Host> per device (Interval = the same,
#             Timeout 1, Retries 1, BulkSize 10 = GETBULK) collecting sysUpTime and the same
#             IF-MIB columns in 8 <Data> tables (if_octets, if_packets, if_errors, if_dropped from
#             the HC and error/discard columns, oper/admin status and ifHighSpeed as gauges; it
#             has no string labels), csv plugin into the work directory, ReadThreads
#             SNMP_BENCH_COLLECTD_THREADS (64; each thread polls one host at a time).
#             Counted: rows of its last Data block of interface 1 (one per completed poll).
# devices/s = completed OK polls / run time; CPU per device = utime+stime of the poller's
# process (all threads, /usr/bin/time) / completed polls.
#
#   OUTPOST_BUILD_DIR=build-snmpb bench/snmp/run.sh [quick|full]      (QUICK=1 = quick)
#
# quick: 1,000 devices x 8 interfaces, 15 s each (< 60 s).  full: the same, 60 s each (< 4 min).
# Env: SNMP_BENCH_DEVICES (1000), SNMP_BENCH_IFACES (8), SNMP_BENCH_SECONDS, SNMP_BENCH_INTERVAL
# (1), SNMP_BENCH_PORT (16100), SNMP_BENCH_BASE (127.20.0.1), SNMP_BENCH_SLOW (0.02),
# SNMP_BENCH_DEAD (0.01), SNMP_BENCH_POLLERS ("outpost collectd"), SNMP_BENCH_COLLECTD_THREADS
# (64), SNMP_BENCH_KEEP=1 (keep the work directory), SNMP_BENCH_DEFAULTS=1 (Outpost on its
# default engine and plugin settings: queue 100,000, max_concurrent 512 ... as a user runs it).
#
# Fleet scale, the way a site runs it: SNMP_BENCH_DEFAULTS=1 SNMP_BENCH_DEVICES=10000
# SNMP_BENCH_INTERVAL=60 SNMP_BENCH_SECONDS=600 run.sh full. Outpost's line then also says how
# many samples the pipeline dropped, how many availability events named a device that answers
# (false alarms), how many answering devices got an snmp_up sample in each full cycle, and its
# CPU per minute and peak RSS.
#
# Last line: RESULT snmp_fleet outpost=<devices/s> collectd=<devices/s> ratio=<x> devices/s
set -euo pipefail

mode=${1:-}
if [[ -z $mode ]]; then [[ ${QUICK:-0} == 1 ]] && mode=quick || mode=full; fi
case $mode in
  quick) def_secs=15 ;;
  full) def_secs=60 ;;
  *) echo "usage: run.sh [quick|full]" >&2; exit 2 ;;
esac
devices=${SNMP_BENCH_DEVICES:-1000}
ifaces=${SNMP_BENCH_IFACES:-8}
secs=${SNMP_BENCH_SECONDS:-$def_secs}
interval=${SNMP_BENCH_INTERVAL:-1}
port=${SNMP_BENCH_PORT:-16100}
base=${SNMP_BENCH_BASE:-127.20.0.1}
slow=${SNMP_BENCH_SLOW:-0.02}
slow_ms=${SNMP_BENCH_SLOW_MS:-200-500}
dead=${SNMP_BENCH_DEAD:-0.01}
pollers=${SNMP_BENCH_POLLERS:-"outpost collectd"}
cthreads=${SNMP_BENCH_COLLECTD_THREADS:-64}
build=${OUTPOST_BUILD_DIR:-./build}
build=$(cd "$build" 2>/dev/null && pwd || echo "$build")
agent=$build/bench/snmp/bench_snmp_fleet_agent
outpost=$build/outpost

die() { echo "run.sh: $*" >&2; exit 1; }
[[ -x $agent ]] || die "no $agent: build it (ninja -C $build bench_snmp_fleet_agent)"
for p in $pollers; do
  case $p in
    outpost)
      [[ -x $outpost ]] || die "no $outpost: build it (ninja -C $build outpost)"
      for s in snmp sqlite; do
        [[ -f $build/plugins/outpost_$s.so ]] || die "no $build/plugins/outpost_$s.so: build outpost_plugin_$s"
      done ;;
    collectd)
      command -v collectd >/dev/null && [[ -f /usr/lib/collectd/snmp.so ]] ||
        die "collectd-core is not installed (scripts/deps/bench-snmp.list)" ;;
    *) die "unknown poller $p" ;;
  esac
done
for t in snmpwalk snmpbulkwalk snmpget; do command -v $t >/dev/null || die "$t is not installed (package snmp)"; done
[[ -x /usr/bin/time ]] || die "/usr/bin/time is not installed (package time)"

work=$(mktemp -d /tmp/snmp-bench.XXXXXX)
APID= PPID_= 
cleanup() {
  local p
  if [[ -n $APID ]] && kill -0 "$APID" 2>/dev/null; then
    kill -TERM "$APID" 2>/dev/null || true
    for _ in 1 2 3 4 5 6 7 8 9 10; do kill -0 "$APID" 2>/dev/null || break; sleep 0.1; done
    wait "$APID" 2>/dev/null || true
  fi
  for p in $PPID_ $APID; do
    if [[ -n $p ]] && kill -0 "$p" 2>/dev/null; then
      # shellcheck disable=SC2046
      kill -KILL $(pgrep -P "$p" 2>/dev/null || true) "$p" 2>/dev/null || true
    fi
  done
  if [[ ${SNMP_BENCH_KEEP:-0} == 1 ]]; then echo "work directory kept: $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM
hz=$(getconf CLK_TCK)
now() { date +%s.%N; }
ticks() {  # utime+stime of one process (all its threads)
  local s rest
  s=$(cat "/proc/$1/stat" 2>/dev/null) || { echo 0; return; }
  rest=${s##*) }
  local -a f
  read -r -a f <<< "$rest"
  echo $((f[11] + f[12]))
}
export MIBS= MIBDIRS=/nonexistent  # numeric OIDs only, no MIB files needed

# --- the fleet --------------------------------------------------------------------------------
"$agent" --self-check --ifaces "$ifaces" || die "the agent's self-check failed"
"$agent" --devices "$devices" --base "$base" --port "$port" --ifaces "$ifaces" \
  --slow-fraction "$slow" --slow-min-ms "${slow_ms%-*}" --slow-max-ms "${slow_ms#*-}" \
  --dead-fraction "$dead" --list "$work/fleet.txt" \
  > "$work/agent.out" 2> "$work/agent.err" &
APID=$!
for _ in $(seq 1 100); do [[ -s $work/agent.out ]] && break; kill -0 $APID 2>/dev/null || break; sleep 0.05; done
[[ -s $work/agent.out ]] || { cat "$work/agent.err" >&2; die "the fleet agent did not start"; }
cat "$work/agent.out"
n_ok=$(grep -c ' ok$' "$work/fleet.txt" || true)
n_slow=$(grep -c ' slow$' "$work/fleet.txt" || true)
n_dead=$(grep -c ' dead$' "$work/fleet.txt" || true)

# --- validation with net-snmp's tools ----------------------------------------------------------
read -r _ ok_ip ok_port _ < <(grep ' ok$' "$work/fleet.txt" | head -1)
read -r _ ok2_ip ok2_port _ < <(grep ' ok$' "$work/fleet.txt" | tail -1)
read -r _ dead_ip dead_port _ < <(grep ' dead$' "$work/fleet.txt" | head -1 || true)
rows() { grep -v -c -E 'No more variables|End of MIB' || true; }
want_if=$((1 + 22 * ifaces)) want_ifx=$((19 * ifaces))
got_walk=$(snmpwalk -v2c -c public -t 2 -r 1 "$ok_ip:$ok_port" 1.3.6.1.2.1.2 | rows)
got_bulk=$(snmpbulkwalk -v2c -c public -t 2 -r 1 "$ok2_ip:$ok2_port" 1.3.6.1.2.1.2 | rows)
got_bulkx=$(snmpbulkwalk -v2c -c public -t 2 -r 1 -Cr25 "$ok2_ip:$ok2_port" 1.3.6.1.2.1.31.1.1.1 | rows)
got_v1=$(snmpwalk -v1 -c public -t 2 -r 1 "$ok_ip:$ok_port" 1.3.6.1.2.1.31.1.1.1 | rows)
up1=$(snmpget -v2c -c public -Oqvt "$ok_ip:$ok_port" 1.3.6.1.2.1.1.3.0)
sleep 1.1
up2=$(snmpget -v2c -c public -Oqvt "$ok_ip:$ok_port" 1.3.6.1.2.1.1.3.0)
dead_answer=none
if [[ -n ${dead_ip:-} ]] && snmpget -v2c -c public -t 0.3 -r 0 "$dead_ip:$dead_port" 1.3.6.1.2.1.1.3.0 >/dev/null 2>&1; then
  dead_answer=answered
fi
echo "validation: snmpwalk ifTable ($ok_ip) $got_walk rows (want $want_if); snmpbulkwalk ifTable ($ok2_ip) $got_bulk (want $want_if)," \
  "ifXTable $got_bulkx (want $want_ifx); v1 walk of ifXTable $got_v1 (want $((11 * ifaces)), no Counter64);" \
  "sysUpTime $up1 -> $up2 ticks; dead device ${dead_ip:-none}: $dead_answer"
[[ $got_walk == "$want_if" && $got_bulk == "$want_if" && $got_bulkx == "$want_ifx" && $got_v1 == $((11 * ifaces)) ]] ||
  die "the fleet agent fails validation"
((up2 >= up1 + 100)) || die "sysUpTime did not advance"
[[ $dead_answer == none ]] || die "a dead device answered"

# --- the pollers -------------------------------------------------------------------------------
declare -A RATE CPU_MS POLLS FAILED DISTINCT NOTE EXTRA
fleet_rows() { while read -r i ip p kind; do printf '%s %s %s %s\n' "$i" "$ip" "$p" "$kind"; done < "$work/fleet.txt"; }

# A poller's resident memory once a cycle (MB): it must level off, not grow with time.
sample_rss() { # process-name file
  sleep 1
  local pid
  pid=$(pgrep -n -x "$1" || true)  # the newest: the one this run started
  while [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null; do
    awk '/^VmRSS/ { printf "%d ", $2 / 1024 }' "/proc/$pid/status" 2>/dev/null || true
    sleep "$interval"
  done > "$2"
}

run_outpost() {
  local dir=$work/outpost
  mkdir -p "$dir"
  {
    cat <<YAML
engine:
  id: snmp-bench
  data_dir: $dir/data
  log_level: warn
  summary_interval: 5s
  self_metrics_interval: 5s
$(if [[ ${SNMP_BENCH_DEFAULTS:-0} != 1 ]]; then printf '  pipeline: {queue_capacity: 1000000}\nplugins:\n  snmp: {max_concurrent: 512}\n'; fi)
sinks:
  local: {plugin: sqlite, path: "\${data_dir}/outpost.db", max_rows: 0}  # every sample kept, so every cycle is counted
inventory:
  devices:
YAML
    # With the defaults a monitor's timeout is the engine's (half its interval, at least 10 s).
    local mt=", timeout: ${interval}s"
    [[ ${SNMP_BENCH_DEFAULTS:-0} == 1 ]] && mt=
    fleet_rows | while read -r i ip p _; do
      echo "    - {name: dev-$i, address: $ip, monitors: [{plugin: snmp, interval: ${interval}s$mt, port: $p, community: public, profile: generic}]}"
    done
  } > "$dir/outpost.yaml"
  "$outpost" check-config "$dir/outpost.yaml" > "$dir/check.txt" 2>&1 || { tail -5 "$dir/check.txt" >&2; die "bad outpost config"; }
  local a0 a1 t0 t1
  a0=$(ticks $APID); t0=$(now)
  /usr/bin/time -f '%U %S %e %M' -o "$dir/time.txt" "$outpost" run -c "$dir/outpost.yaml" --for "${secs}s" \
    > "$dir/outpost.out" 2> "$dir/outpost.err" &
  PPID_=$!
  sample_rss outpost "$dir/rss.txt" &
  local rss_pid=$!
  wait $PPID_ || true
  wait $rss_pid 2>/dev/null || true
  PPID_=
  t1=$(now); a1=$(ticks $APID)
  read -r u s e m < <(grep -E '^[0-9.]+ [0-9.]+ [0-9.]+ [0-9]+$' "$dir/time.txt")
  "$outpost" query samples --db "$dir/data/outpost.db" --name snmp_up --since 24h --limit 100000000 --json 2>/dev/null |
    /usr/bin/python3 -c '
import json, sys
ok = bad = 0; seen = set()
for line in sys.stdin:
    line = line.strip()
    if not line: continue
    r = json.loads(line)
    if float(r["value"]) == 1: ok += 1; seen.add(r["labels"].get("device"))
    else: bad += 1
print(ok, bad, len(seen))' > "$dir/counts.txt"
  local ok bad distinct
  read -r ok bad distinct < "$dir/counts.txt"
  POLLS[outpost]=$ok FAILED[outpost]=$bad DISTINCT[outpost]=$distinct
  RATE[outpost]=$(awk -v n="$ok" -v t="$secs" 'BEGIN { printf "%.1f", n / t }')
  CPU_MS[outpost]=$(awk -v u="$u" -v s="$s" -v n="$ok" 'BEGIN { printf "%.3f", n ? (u + s) * 1000 / n : 0 }')
  # What a site would see: drops, false alarms, devices stored each full cycle.
  "$outpost" query series --db "$dir/data/outpost.db" --match outpost_pipeline_dropped_total --limit 1000 --json 2>/dev/null > "$dir/dropped.json" || true
  "$outpost" query events --db "$dir/data/outpost.db" --match availability --limit 10000000 --json 2>/dev/null > "$dir/events.json" || true
  "$outpost" query samples --db "$dir/data/outpost.db" --name snmp_up --limit 100000000 --json 2>/dev/null > "$dir/up.json" || true
  EXTRA[outpost]=$(/usr/bin/python3 - "$work/fleet.txt" "$dir" "$interval" "$secs" <<'PY'
import json, sys
fleet, d, interval, secs = sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4])
kind = {}
for line in open(fleet):
    i, ip, port, k = line.split()
    kind["dev-" + i] = k
dropped = sum(json.loads(l)["last"] or 0 for l in open(d + "/dropped.json") if l.strip())
false_alarms = sum(1 for l in open(d + "/events.json") if l.strip()
                   and json.loads(l)["kind"] == "availability" and kind.get(json.loads(l)["source"]) in ("ok", "slow"))
times = {}
for l in open(d + "/up.json"):
    if not l.strip(): continue
    r = json.loads(l)
    if float(r["value"]) == 1: times.setdefault(r["labels"]["device"], []).append(r["time_ns"] / 1e9)
# Stored every cycle: an OK sample at least once per cycle of the run, and never more than an
# interval (plus 10 %: a poll's duration varies by a retry) between two of them. Counted per
# device, not against fixed cycle boundaries, which a device's phase straddles.
cycles = int(secs // interval) - 1  # whole cycles after the first
answering = [k for k, v in kind.items() if v in ("ok", "slow")]
full = full_slow = 0
worst = 0.0
for dev in answering:
    ts = sorted(times.get(dev, []))
    gap = max((b - a for a, b in zip(ts, ts[1:])), default=float("inf"))
    worst = max(worst, gap)
    if len(ts) >= cycles and gap <= 1.1 * interval:
        full += 1
        full_slow += kind[dev] == "slow"
n_slow = sum(1 for v in kind.values() if v == "slow")
rss = open(d + "/rss.txt").read().split()
print(f"dropped samples {int(dropped)}, false availability events {false_alarms}, "
      f"answering devices stored (snmp_up 1) every cycle: {full}/{len(answering)} "
      f"(slow ones {full_slow}/{n_slow}; longest gap between two {worst:.1f} s); "
      f"RSS MB once a cycle: {' '.join(rss)}")
PY
)
  local last
  last=$(grep '^targets' "$dir/outpost.out" | tail -1 || true)
  NOTE[outpost]="${EXTRA[outpost]}; cpu ${u}+${s}s ($(awk -v u="$u" -v s="$s" -v t="$secs" 'BEGIN { printf "%.1f", (u + s) * 60 / t }') CPU-s/min), rss $((m / 1024)) MB, agent cpu $(awk -v a="$((a1 - a0))" -v hz="$hz" -v t0="$t0" -v t1="$t1" 'BEGIN { printf "%.0f%%", 100 * a / hz / (t1 - t0) }'); last summary: ${last:-none}"
}

run_collectd() {
  local dir=$work/collectd
  mkdir -p "$dir/csv"
  local cols='TypeInstanceOID "1.3.6.1.2.1.31.1.1.1.1"'
  {
    cat <<CONF
Hostname "collectd-bench"
FQDNLookup false
BaseDir "$dir"
PIDFile "$dir/collectd.pid"
Interval $interval
ReadThreads $cthreads
WriteThreads 2
LoadPlugin logfile
<Plugin logfile>
  LogLevel warning
  File "$dir/collectd.log"
</Plugin>
LoadPlugin csv
<Plugin csv>
  DataDir "$dir/csv"
  StoreRates false
</Plugin>
LoadPlugin snmp
<Plugin snmp>
  <Data "uptime">
    Type "uptime"
    Table false
    Values "1.3.6.1.2.1.1.3.0"
    Scale 0.01
  </Data>
  <Data "if_octets">
    Type "if_octets"
    Table true
    $cols
    Values "1.3.6.1.2.1.31.1.1.1.6" "1.3.6.1.2.1.31.1.1.1.10"
  </Data>
  <Data "if_packets">
    Type "if_packets"
    Table true
    $cols
    Values "1.3.6.1.2.1.31.1.1.1.7" "1.3.6.1.2.1.31.1.1.1.11"
  </Data>
  <Data "if_errors">
    Type "if_errors"
    Table true
    $cols
    Values "1.3.6.1.2.1.2.2.1.14" "1.3.6.1.2.1.2.2.1.20"
  </Data>
  <Data "if_dropped">
    Type "if_dropped"
    Table true
    $cols
    Values "1.3.6.1.2.1.2.2.1.13" "1.3.6.1.2.1.2.2.1.19"
  </Data>
  <Data "if_oper">
    Type "gauge"
    Table true
    $cols
    TypeInstancePrefix "oper-"
    Values "1.3.6.1.2.1.2.2.1.8"
  </Data>
  <Data "if_admin">
    Type "gauge"
    Table true
    $cols
    TypeInstancePrefix "admin-"
    Values "1.3.6.1.2.1.2.2.1.7"
  </Data>
  <Data "if_speed">
    Type "gauge"
    Table true
    $cols
    TypeInstancePrefix "speed-"
    Values "1.3.6.1.2.1.31.1.1.1.15"
  </Data>
CONF
    fleet_rows | while read -r i ip p _; do
      cat <<CONF
  <Host "dev-$i">
    Address "$ip:$p"
    Version 2
    Community "public"
    Collect "uptime" "if_octets" "if_packets" "if_errors" "if_dropped" "if_oper" "if_admin" "if_speed"
    Interval $interval
    Timeout 1
    Retries 1
    BulkSize 10
  </Host>
CONF
    done
    echo "</Plugin>"
  } > "$dir/collectd.conf"
  collectd -t -C "$dir/collectd.conf" > "$dir/check.txt" 2>&1 || { tail -5 "$dir/check.txt" >&2; die "bad collectd config"; }
  local a0 a1 t0 t1
  a0=$(ticks $APID); t0=$(now)
  /usr/bin/time -f '%U %S %e %M' -o "$dir/time.txt" timeout -s TERM "$secs" collectd -f -C "$dir/collectd.conf" \
    > "$dir/collectd.out" 2>&1 &
  PPID_=$!
  sample_rss collectd "$dir/rss.txt" &
  local rss_pid=$!
  wait $PPID_ || true
  wait $rss_pid 2>/dev/null || true
  PPID_=
  t1=$(now); a1=$(ticks $APID)
  read -r u s e m < <(grep -E '^[0-9.]+ [0-9.]+ [0-9.]+ [0-9]+$' "$dir/time.txt")
  # one row of the last Data block of interface 1 per completed poll of a device
  local ok distinct
  ok=$(find "$dir/csv" -name 'gauge-speed-Gi0_1-*' -exec cat {} + 2>/dev/null | grep -c -v '^epoch' || true)
  distinct=$(find "$dir/csv" -name 'gauge-speed-Gi0_1-*' | wc -l)
  POLLS[collectd]=$ok DISTINCT[collectd]=$distinct
  FAILED[collectd]=$(grep -c -i -E 'timeout|failed|error' "$dir/collectd.log" 2>/dev/null || true)
  RATE[collectd]=$(awk -v n="$ok" -v t="$secs" 'BEGIN { printf "%.1f", n / t }')
  CPU_MS[collectd]=$(awk -v u="$u" -v s="$s" -v n="$ok" 'BEGIN { printf "%.3f", n ? (u + s) * 1000 / n : 0 }')
  local late
  late=$(grep -c 'above its read interval' "$dir/collectd.log" 2>/dev/null || true)
  NOTE[collectd]="cpu ${u}+${s}s ($(awk -v u="$u" -v s="$s" -v t="$secs" 'BEGIN { printf "%.1f", (u + s) * 60 / t }') CPU-s/min), rss $((m / 1024)) MB, agent cpu $(awk -v a="$((a1 - a0))" -v hz="$hz" -v t0="$t0" -v t1="$t1" 'BEGIN { printf "%.0f%%", 100 * a / hz / (t1 - t0) }'); reads over their interval logged: $late; RSS MB once a cycle: $(cat "$dir/rss.txt" 2>/dev/null)"
}

echo "snmp fleet bench ($mode): $devices devices x $ifaces interfaces ($n_ok ok, $n_slow slow, $n_dead dead)," \
  "every device every ${interval}s, ${secs}s per poller; pollers: $pollers"
for p in $pollers; do
  echo "running $p ..."
  "run_$p"
done
kill -USR1 $APID 2>/dev/null || true
sleep 0.3

echo
printf '%-9s %12s %14s %16s %14s %s\n' poller "devices/s" "polls OK" "devices reached" "CPU ms/device" "failed polls"
for p in $pollers; do
  printf '%-9s %12s %14s %16s %14s %s\n' "$p" "${RATE[$p]}" "${POLLS[$p]}" "${DISTINCT[$p]}/$devices" "${CPU_MS[$p]}" \
    "${FAILED[$p]}$([[ $p == collectd ]] && echo ' (log lines)')"
done
for p in $pollers; do echo "  $p: ${NOTE[$p]}"; done
echo "  agent: $(tail -1 "$work/agent.err")"
echo "(devices/s: completed OK polls / ${secs}s; the demand is $((n_ok + n_slow)) answering devices / ${interval}s;" \
  "CPU ms/device: the poller's utime+stime / OK polls)"

o=${RATE[outpost]:-0} peer=collectd pr=${RATE[collectd]:-0}
ratio=$(awk -v o="$o" -v p="$pr" 'BEGIN { if (p > 0) printf "%.2f", o / p; else print "inf" }')
echo "RESULT snmp_fleet outpost=$o $peer=$pr ratio=$ratio devices/s"
