#!/usr/bin/env bash
# Outpost's remote_write sink beside vmagent (Debian's victoria-metrics package), both relaying
# the same samples by Prometheus remote write to one VictoriaMetrics on loopback, in the same run.
#
# Outpost: bench_remote_write loads outpost_remote_write.so as the engine does and hands it
# batches of 2,000 metrics (built before the clock starts); the sink groups them into series,
# encodes, snappy-compresses and POSTs each batch, one request at a time, as it does behind the
# spool. CPU: this process's user+system time while it sends. vmagent: the same samples arrive as
# remote write requests of 2,000 samples at its /api/v1/write (from bench_remote_write feed, whose
# CPU is not counted), and vmagent relays them with its defaults (its queues, its block size, 1 s
# flush). CPU: vmagent's user+system time (/proc) from the first request to the last sample
# stored. Both rates are samples / (time until VictoriaMetrics counted every one of them as
# inserted, vm_rows_inserted_total{type="promremotewrite"}); afterwards each relay's samples are
# counted in VictoriaMetrics (a `relay` label tells them apart) and must all be there.
#
#   OUTPOST_BUILD_DIR=build bench/remote_write/run.sh [SERIES [STEPS]]   (default 10000 x 200)
# Last lines: RESULT remote_write_cpu outpost=<CPU s per million samples> vmagent=<...> ratio=<x>
# cpu_s_per_M_samples, then RESULT remote_write outpost=<samples/s> vmagent=<samples/s> ratio=<x>
# samples/s (ratio > 1: Outpost better).
set -euo pipefail
series=${1:-10000}
steps=${2:-200}
here=$(cd "$(dirname "$0")" && pwd)
build=${OUTPOST_BUILD_DIR:-$here/../../build}
build=$(cd "$build" && pwd)
driver=$build/bench/remote_write/bench_remote_write
plugin=$build/plugins/outpost_remote_write.so
die() { echo "run.sh: $*" >&2; exit 1; }
[[ -x $driver ]] || die "no $driver: build it"
[[ -f $plugin ]] || die "no $plugin: build it"
command -v victoria-metrics > /dev/null || die "victoria-metrics not found (scripts/deps/remote_write.list)"
command -v vmagent > /dev/null || die "vmagent not found (Debian's victoria-metrics package ships it)"

work=$(mktemp -d /tmp/remote-write-bench.XXXXXX)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2> /dev/null || true; done
  wait 2> /dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_http() { # url what
  for _ in $(seq 1 200); do curl -sf "$1" > /dev/null && return 0; sleep 0.05; done
  die "$2 did not start"
}

vmport=$(free_port)
victoria-metrics -storageDataPath "$work/vm" -httpListenAddr "127.0.0.1:$vmport" \
  -retentionPeriod 1d -search.latencyOffset 0s > "$work/vm.log" 2>&1 &
PIDS+=($!)
wait_http "http://127.0.0.1:$vmport/health" VictoriaMetrics
agentport=$(free_port)
vmagent -httpListenAddr "127.0.0.1:$agentport" -remoteWrite.tmpDataPath "$work/vmagent" \
  -remoteWrite.url "http://127.0.0.1:$vmport/api/v1/write" > "$work/vmagent.log" 2>&1 &
AGENT=$!
PIDS+=($AGENT)
wait_http "http://127.0.0.1:$agentport/health" vmagent

inserted() {
  curl -sf "http://127.0.0.1:$vmport/metrics" |
    awk '/^vm_rows_inserted_total\{type="promremotewrite"\}/ {print $2; found=1} END {if (!found) print 0}'
}
# Waits until VictoriaMetrics counted `want` more rows than `from`; prints the time it did.
wait_inserted() { # from want
  local deadline=$((SECONDS + 300))
  while :; do
    if (($(inserted) - $1 >= $2)); then date +%s.%N; return 0; fi
    ((SECONDS < deadline)) || die "VictoriaMetrics did not get $2 samples in 300 s"
    sleep 0.02
  done
}
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
total=$((series * steps))
echo "samples: $series series x $steps steps = $total per relay"

# Outpost: the sink's requests are synchronous, so its samples are stored when it returns.
base=$(inserted)
out=$("$driver" outpost "$plugin" "http://127.0.0.1:$vmport/api/v1/write" "$series" "$steps")
wait_inserted "$base" "$total" > /dev/null
echo "outpost: $out"
o_wall=$(sed -n 's/.*seconds=\([0-9.]*\).*/\1/p' <<< "$out")
o_cpu=$(sed -n 's/.*cpu=\([0-9.]*\).*/\1/p' <<< "$out")

# vmagent: from the first request it is fed to the last sample VictoriaMetrics stored.
base=$(inserted)
c0=$(ticks "$AGENT")
t2=$(date +%s.%N)
feed=$("$driver" feed "http://127.0.0.1:$agentport/api/v1/write" "$series" "$steps")
t3=$(wait_inserted "$base" "$total")
c1=$(ticks "$AGENT")
echo "vmagent fed: $feed"

# Every sample of both relays is in VictoriaMetrics, once.
curl -sf "http://127.0.0.1:$vmport/internal/force_flush" > /dev/null
sleep 1
stored() {
  curl -sf "http://127.0.0.1:$vmport/api/v1/query" \
    --data-urlencode "query=sum(count_over_time({relay=\"$1\"}[1d]))" |
    python3 -c 'import json,sys; r=json.load(sys.stdin)["data"]["result"]; print(int(float(r[0]["value"][1])) if r else 0)'
}
s_out=$(stored outpost)
s_agent=$(stored vmagent)
echo "stored in VictoriaMetrics: outpost $s_out, vmagent $s_agent (of $total each)"
[[ $s_out == "$total" && $s_agent == "$total" ]] || die "a relay lost or repeated samples"

python3 - "$total" "$o_wall" "$o_cpu" "$t2" "$t3" "$c0" "$c1" "$(getconf CLK_TCK)" <<'PY'
import sys
total, o_wall, o_cpu, t2, t3, c0, c1, hz = map(float, sys.argv[1:])
a_wall = t3 - t2
a_cpu = (c1 - c0) / hz
o_rate, a_rate = total / o_wall, total / a_wall
o_cpm, a_cpm = o_cpu / total * 1e6, a_cpu / total * 1e6
print(f"outpost sink: {o_rate:,.0f} samples/s, {o_cpm:.2f} CPU s per million samples "
      f"({o_wall:.2f} s, {o_cpu:.2f} CPU s)")
print(f"vmagent:      {a_rate:,.0f} samples/s, {a_cpm:.2f} CPU s per million samples "
      f"({a_wall:.2f} s, {a_cpu:.2f} CPU s)")
print(f"RESULT remote_write_cpu outpost={o_cpm:.2f} vmagent={a_cpm:.2f} "
      f"ratio={a_cpm / o_cpm:.2f} cpu_s_per_M_samples")
print(f"RESULT remote_write outpost={o_rate:.0f} vmagent={a_rate:.0f} "
      f"ratio={o_rate / a_rate:.2f} samples/s")
PY
