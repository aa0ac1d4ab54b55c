#!/usr/bin/env bash
# NetFlow collector throughput: the highest loss-free records/s and the CPU per million records,
# for Outpost beside nfcapd (nfdump) and nfacctd (pmacct), in the same run, for NetFlow v5, v9
# and IPFIX.
#
# bench_netflow_sender (sender.cpp) sends a fixed number of prebuilt, deterministic export
# packets over loopback at a paced rate (sendmmsg bursts; v9/IPFIX: a template packet first and
# again every 1000 data packets). For each collector and version, the rate steps up (doubling,
# then NETFLOW_BENCH_REFINE bisection steps between the last clean and the first lossy rate);
# each step starts the collector afresh, sends, waits until its socket is empty and its CPU idle,
# stops it and counts the records it kept. A step is loss-free when that count equals the
# records sent, exactly. CPU per million records is the collector's utime+stime (all its
# threads and child processes, /proc/PID/stat) from just before the first packet until drained,
# at its highest loss-free rate.
#
# What each collector does with the records, i.e. what its user would run:
#   outpost  `outpost run`: the netflow listener -> flow_aggregator processor -> sqlite sink (the
#            default local store). Counted: the flows the aggregator summed (flow_exporter_flows),
#            i.e. what went through the whole pipeline. Its interval is 1 s, not the usual 60 s,
#            so each step's counts are in before the engine stops (the summary emitted at stop is
#            kept too); the per-record work is the same, the extra summaries are a few hundred
#            rows a second;
#            netflow_records_total (decoded), outpost_listener_dropped_total and
#            outpost_pipeline_dropped_total tell where a loss happened.
#   nfcapd   binary nfcapd files, one per hour (-t 3600), no compression (the default).
#            Counted: `nfdump -R DIR -I` Flows.
#   nfacctd  the print plugin, aggregating on the 5-tuple, CSV written at exit, with pmacct's
#            large-buffer advice (plugin_pipe_size 128 MiB, plugin_buffer_size 64 KiB).
#            Counted: the sum of the PACKETS column (every record the sender makes has packets=1).
# Every socket gets the same receive buffer, NETFLOW_BENCH_RCVBUF (default 32 MiB; the kernel
# doubles it): Outpost's recv_buffer, nfcapd -B, nfacctd_pipe_size. net.core.rmem_max is raised
# for the run and restored at exit.
#
#   OUTPOST_BUILD_DIR=build-nfb bench/netflow/run.sh [quick|full]     (QUICK=1 = quick)
#
# quick: v5, v9 and IPFIX at 10k and 40k packets/s, 5,000 packets a step (< 60 s): a smoke test
#        of the harness only, since 5,000 datagrams fit in the socket buffer and nobody loses.
# full:  10k, 20k, ... 320k packets/s, 60,000 packets a step, 2 bisection steps (< 5 min).
# The 64 MiB a socket really gets holds ~25,000 of these datagrams, so a step can be clean while
# the collector runs somewhat slower than the send rate; the "drain" column (send end to idle)
# shows how far behind it was.
# Env: NETFLOW_BENCH_PACKETS, NETFLOW_BENCH_RATES ("10000 20000 ..."), NETFLOW_BENCH_REFINE,
# NETFLOW_BENCH_VERSIONS ("5 9 10"), NETFLOW_BENCH_COLLECTORS ("outpost nfcapd nfacctd"),
# NETFLOW_BENCH_RCVBUF, NETFLOW_BENCH_KEEP=1 (keep the work directory).
#
# Last line: RESULT netflow_lossfree outpost=<records/s> <best peer>=<records/s>
#            ratio=<outpost/peer> records/s      (NetFlow v9; the peer is the better of the two)
set -euo pipefail

mode=${1:-}
if [[ -z $mode ]]; then [[ ${QUICK:-0} == 1 ]] && mode=quick || mode=full; fi
case $mode in
  quick) def_packets=5000 def_rates="10000 40000" def_refine=0 ;;
  full) def_packets=60000 def_rates="10000 20000 40000 80000 160000 320000" def_refine=2 ;;
  *) echo "usage: run.sh [quick|full]" >&2; exit 2 ;;
esac
packets=${NETFLOW_BENCH_PACKETS:-$def_packets}
rates=${NETFLOW_BENCH_RATES:-$def_rates}
refine=${NETFLOW_BENCH_REFINE:-$def_refine}
versions=${NETFLOW_BENCH_VERSIONS:-"5 9 10"}
collectors=${NETFLOW_BENCH_COLLECTORS:-"outpost nfcapd nfacctd"}
rcvbuf=${NETFLOW_BENCH_RCVBUF:-33554432}
build=${OUTPOST_BUILD_DIR:-./build}
build=$(cd "$build" 2>/dev/null && pwd || echo "$build")
sender=$build/bench/netflow/bench_netflow_sender
outpost=$build/outpost
# Ports of our own, away from the tests' 42055-42063.
declare -A PORT=([outpost]=42171 [nfcapd]=42172 [nfacctd]=42173)

die() { echo "run.sh: $*" >&2; exit 1; }
[[ $(id -u) == 0 ]] || die "needs root (net.core.rmem_max for the peers' socket buffers)"
[[ -x $sender ]] || die "no $sender: build it (ninja -C $build bench_netflow_sender)"
for c in $collectors; do
  case $c in
    outpost)
      [[ -x $outpost ]] || die "no $outpost: build it (ninja -C $build outpost)"
      for p in netflow flow_aggregator sqlite; do
        [[ -f $build/plugins/outpost_$p.so ]] || die "no $build/plugins/outpost_$p.so: build outpost_plugin_$p"
      done ;;
    nfcapd) { command -v nfcapd >/dev/null && command -v nfdump >/dev/null; } ||
      die "nfdump is not installed (scripts/deps/bench.list)" ;;
    nfacctd) command -v nfacctd >/dev/null || die "pmacct is not installed (scripts/deps/bench.list)" ;;
    *) die "unknown collector $c" ;;
  esac
done
command -v ss >/dev/null || die "ss (iproute2) is not installed"

work=$(mktemp -d /tmp/netflow-bench.XXXXXX)
old_rmem=$(sysctl -n net.core.rmem_max)
CPID=
cleanup() {
  # a step runs in a subshell: its collector's PID is in $work/cpid while it runs
  local p
  p=$(cat "$work/cpid" 2>/dev/null || true)
  if [[ -n $p ]] && kill -0 "$p" 2>/dev/null; then
    # shellcheck disable=SC2046  # one PID a word
    kill -KILL $(pgrep -P "$p" 2>/dev/null || true) "$p" 2>/dev/null || true
  fi
  sysctl -qw net.core.rmem_max="$old_rmem" || true
  if [[ ${NETFLOW_BENCH_KEEP:-0} == 1 ]]; then echo "work directory kept: $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM
if ((old_rmem < rcvbuf)); then sysctl -qw net.core.rmem_max="$rcvbuf"; fi

hz=$(getconf CLK_TCK)
now() { date +%s.%N; }

# /proc/net/udp line of a bound 127.0.0.1:port socket: "rx_queue drops" (rx_queue in bytes).
sock_state() {
  local want addr q rest
  want=$(printf '0100007F:%04X' "$1")
  while read -r _ addr _ _ q rest; do
    if [[ $addr == "$want" ]]; then
      echo "$((16#${q#*:})) ${rest##* }"
      return
    fi
  done < /proc/net/udp
}
# utime+stime ticks of a process, its threads and its children (nfacctd forks its plugins).
tree_ticks() {
  local total=0 p s rest
  local -a fields
  for p in "$1" $(pgrep -P "$1" 2>/dev/null || true); do
    s=$(cat "/proc/$p/stat" 2>/dev/null) || continue
    rest=${s##*) }
    read -r -a fields <<< "$rest"
    total=$((total + fields[11] + fields[12]))
  done
  echo "$total"
}
# Loopback drops before any socket: the per-CPU backlog (softnet_stat column 2).
backlog_drops() {
  local total=0 b rest
  while read -r _ b rest; do total=$((total + 16#$b)); done < /proc/net/softnet_stat
  echo "$total"
}

wait_bound() {
  local port=$1 i
  for i in $(seq 1 200); do
    [[ -n $(sock_state "$port") ]] && return 0
    kill -0 "$CPID" 2>/dev/null || return 1
    sleep 0.05
  done
  return 1
}
# Drained: the socket queue is empty and the collector used at most one tick in 300 ms.
wait_drained() {
  local port=$1 last cur st stable=0 i
  last=$(tree_ticks "$CPID")
  for i in $(seq 1 600); do
    sleep 0.1
    cur=$(tree_ticks "$CPID")
    st=$(sock_state "$port")
    if [[ ${st%% *} == 0 ]] && ((cur - last <= 1)); then
      stable=$((stable + 1))
      ((stable >= 3)) && return 0
    else
      stable=0
      last=$cur
    fi
    ((stable == 0)) && last=$cur
  done
  return 1
}
stop_collector() {
  local sig=$1 i kids
  kids=$(pgrep -P "$CPID" 2>/dev/null || true)
  kill -"$sig" "$CPID" 2>/dev/null || true
  for i in $(seq 1 600); do
    kill -0 "$CPID" 2>/dev/null || break
    sleep 0.1
  done
  # shellcheck disable=SC2086
  kill -KILL "$CPID" $kids 2>/dev/null || true
  wait "$CPID" 2>/dev/null || true
  CPID=
  : > "$work/cpid"
}

# --- the collectors: start_X DIR PORT (sets CPID), stop_X DIR, count_X DIR -> records ---------
start_outpost() {
  local dir=$1 port=$2
  cat > "$dir/outpost.yaml" <<YAML
engine: {id: netflow-bench, data_dir: $dir/data, log_level: warn, summary_interval: 0, self_metrics_interval: 10s}
plugins:
  netflow: {stats_interval: 1s}
processors:
  flows: {plugin: flow_aggregator, interval: 1s}
sinks:
  local: {plugin: sqlite, path: "\${data_dir}/outpost.db"}
listeners:
  - {plugin: netflow, udp: "127.0.0.1:$port", recv_buffer: $rcvbuf}
YAML
  "$outpost" run -c "$dir/outpost.yaml" > "$dir/outpost.out" 2> "$dir/outpost.err" &
  CPID=$!
}
stop_outpost() {
  # What a plugin emits from its stop hook is refused by the engine today (PluginInstance::stop
  # stops accepting first), so the last summary and counters must go out before the stop: the
  # aggregator summarises every 1 s and the netflow counters follow every 1 s.
  sleep 1.5
  stop_collector TERM
}
# Sum of the newest value of each series of a metric (counters), or of all samples (gauges).
outpost_metric() {
  local dir=$1 name=$2 how=$3 match=${4:-}
  "$outpost" query samples --db "$dir/data/outpost.db" --name "$name" ${match:+--match "$match"} \
    --since 24h --limit 1000000 --json 2>/dev/null |
    /usr/bin/python3 -c '
import json, sys
how = sys.argv[1]
rows = []
for line in sys.stdin:
    line = line.strip()
    if not line: continue
    v = json.loads(line)
    rows.extend(v if isinstance(v, list) else [v])
if how == "sum":
    print(int(sum(float(r["value"]) for r in rows)))
else:  # newest per series, summed
    last = {}
    for r in rows:
        key = json.dumps(r["labels"], sort_keys=True)
        t = r["time_ns"]
        if key not in last or t >= last[key][0]: last[key] = (t, float(r["value"]))
    print(int(sum(v for _, v in last.values())))
' "$how"
}
count_outpost() {
  local dir=$1
  outpost_metric "$dir" flow_exporter_flows sum
}
detail_outpost() {
  local dir=$1 reasons
  reasons=$("$outpost" query series --db "$dir/data/outpost.db" --match outpost_pipeline_dropped_total \
    --limit 100 --json 2>/dev/null | /usr/bin/python3 -c '
import json, sys
out = []
for line in sys.stdin:
    if line.strip():
        r = json.loads(line)
        if r["name"] == "outpost_pipeline_dropped_total" and r["last"]:
            out.append("%s:%d" % (r["labels"].get("reason", "?"), r["last"]))
print(",".join(out) or "0")')
  printf 'decoded=%s sock_overflow=%s pipeline_dropped=%s' \
    "$(outpost_metric "$dir" netflow_records_total last)" \
    "$(outpost_metric "$dir" outpost_listener_dropped_total last socket_overflow)" "$reasons"
}

start_nfcapd() {
  local dir=$1 port=$2
  mkdir -p "$dir/flows"
  nfcapd -b 127.0.0.1 -p "$port" -w "$dir/flows" -t 3600 -B "$rcvbuf" -P "$dir/nfcapd.pid" \
    > "$dir/nfcapd.log" 2>&1 &
  CPID=$!
}
stop_nfcapd() { stop_collector TERM; }
count_nfcapd() { nfdump -R "$1/flows" -I 2>/dev/null | awk '$1 == "Flows:" { s += $2 } END { print s + 0 }'; }
detail_nfcapd() { sed -n "s/.*Ident: 'none' \(Flows: [0-9]*\).*\(Sequence Errors: [0-9]*\).*/\1 \2/p" "$1/nfcapd.log" | tail -1; }

start_nfacctd() {
  local dir=$1 port=$2
  cat > "$dir/nfacctd.conf" <<CONF
daemonize: false
pidfile: $dir/nfacctd.pid
logfile: $dir/nfacctd.log
nfacctd_ip: 127.0.0.1
nfacctd_port: $port
nfacctd_pipe_size: $rcvbuf
plugins: print[p]
aggregate[p]: src_host, dst_host, src_port, dst_port, proto
print_output[p]: csv
print_output_file[p]: $dir/records.csv
print_refresh_time[p]: 3600
print_cache_entries[p]: 65537
plugin_pipe_size[p]: 134217728
plugin_buffer_size[p]: 65536
CONF
  nfacctd -f "$dir/nfacctd.conf" > "$dir/nfacctd.out" 2>&1 &
  CPID=$!
}
stop_nfacctd() { stop_collector INT; }
count_nfacctd() {
  [[ -f $1/records.csv ]] || { echo 0; return; }
  awk -F, 'NR == 1 { for (i = 1; i <= NF; i++) if ($i == "PACKETS") c = i; next } { s += $c } END { print s + 0 }' \
    "$1/records.csv"
}
detail_nfacctd() { grep -c -i -E "missing data|buffer.*full" "$1/nfacctd.log" 2>/dev/null | sed 's/^/pipe_warnings=/' || true; }

# --- one step -------------------------------------------------------------------------------
# run_step COLLECTOR VERSION RATE -> prints "ok|lost|fail sent got recs_per_s cpu_per_m drain_s
# sock_drops backlog_drops achieved_pps", logs the details.
run_step() {
  local c=$1 v=$2 rate=$3 port=${PORT[$1]}
  local dir=$work/$c-v$v-$rate
  mkdir -p "$dir"
  [[ -z $(sock_state "$port") ]] || { echo "fail 0 0 0 0 0 0 0 0"; echo "port $port busy" >> "$work/log"; return; }
  "start_$c" "$dir" "$port"
  echo "$CPID" > "$work/cpid"
  if ! wait_bound "$port"; then
    echo "fail 0 0 0 0 0 0 0 0"
    { echo "$c did not bind 127.0.0.1:$port"; tail -n 5 "$dir"/*.log "$dir"/*.err "$dir"/*.out 2>/dev/null || true; } >> "$work/log"
    stop_collector KILL
    return
  fi
  sleep 0.3
  local rb t1 t2 ticks0 ticks1 drops0 drops1 bl0 bl1 out sent secs
  rb=$(ss -uamn "sport = :$port" | sed -n 's/.*skmem:(.*,rb\([0-9]*\),.*/\1/p' | head -1)
  drops0=$(sock_state "$port"); drops0=${drops0#* }
  bl0=$(backlog_drops)
  ticks0=$(tree_ticks "$CPID")
  out=$("$sender" --to "127.0.0.1:$port" --version "$v" --packets "$packets" --pps "$rate")
  t1=$(now)
  wait_drained "$port" || echo "$c v$v $rate: not drained after 60 s" >> "$work/log"
  t2=$(now)
  ticks1=$(tree_ticks "$CPID")
  drops1=$(sock_state "$port"); drops1=${drops1#* }
  bl1=$(backlog_drops)
  "stop_$c" "$dir"
  sent=$(sed -n 's/.* records=\([0-9]*\) .*/\1/p' <<< "$out")
  secs=$(sed -n 's/.* seconds=\([0-9.]*\) .*/\1/p' <<< "$out")
  local got detail
  got=$("count_$c" "$dir")
  detail=$("detail_$c" "$dir" 2>/dev/null || true)
  # nfcapd files are ~120 bytes a record: keep the disk free
  [[ ${NETFLOW_BENCH_KEEP:-0} == 1 ]] || rm -rf "$dir/flows" "$dir/data" "$dir/records.csv"
  echo "$c v$v rate=$rate: $out | got=$got rcvbuf=$rb sock_drops=$((drops1 - drops0)) backlog_drops=$((bl1 - bl0)) cpu_ticks=$((ticks1 - ticks0)) drain=$(awk -v a="$t1" -v b="$t2" 'BEGIN{printf "%.2f", b-a}')s $detail" >> "$work/log"
  awk -v sent="$sent" -v got="$got" -v secs="$secs" -v t="$((ticks1 - ticks0))" -v hz="$hz" \
      -v a="$t1" -v b="$t2" -v sd="$((drops1 - drops0))" -v bd="$((bl1 - bl0))" -v pk="$packets" 'BEGIN {
    st = (got == sent) ? "ok" : "lost"
    printf "%s %d %d %.0f %.3f %.2f %d %d %.0f\n", st, sent, got, sent / secs, (t / hz) / (sent / 1e6), b - a, sd, bd, pk / secs
  }'
}

# --- the sweep --------------------------------------------------------------------------------
declare -A BEST_RPS BEST_RATE BEST_CPU FIRST_LOSS
sweep() {
  local c=$1 v=$2 rate r st sent got rps cpu drain sd bd ach ok_rate=0 bad_rate=0 i
  BEST_RPS[$c,$v]=0 BEST_RATE[$c,$v]=0 BEST_CPU[$c,$v]=- FIRST_LOSS[$c,$v]=-
  step() {
    read -r st sent got rps cpu drain sd bd ach < <(run_step "$c" "$v" "$1")
    printf '  %-8s v%-2s %7s pkt/s  sent %9s  got %9s  %-4s  %9s rec/s  %6s cpu-s/M  drain %5ss  sock_drops %s%s\n' \
      "$c" "$v" "$1" "$sent" "$got" "$st" "$rps" "$cpu" "$drain" "$sd" "$( ((bd > 0)) && echo " backlog_drops $bd")"
    if [[ $st == ok ]]; then
      if awk -v a="$rps" -v b="${BEST_RPS[$c,$v]}" 'BEGIN { exit !(a > b) }'; then
        BEST_RPS[$c,$v]=$rps BEST_RATE[$c,$v]=$1 BEST_CPU[$c,$v]=$cpu
      fi
      # the sender could not keep the pace: this is the cap
      awk -v a="$ach" -v r="$1" 'BEGIN { exit !(a < 0.9 * r) }' && return 2
      return 0
    fi
    if [[ ${FIRST_LOSS[$c,$v]} == - ]]; then
      if [[ $st == fail ]]; then FIRST_LOSS[$c,$v]="$1 (did not start: see details)"
      else FIRST_LOSS[$c,$v]="$1 ($((sent - got)) lost)"; fi
    fi
    return 1
  }
  local rc
  for rate in $rates; do
    rc=0
    step "$rate" || rc=$?
    if ((rc == 0)); then ok_rate=$rate; continue; fi
    if ((rc == 2)); then  # clean, but the sender fell short of the pace: no point going higher
      echo "  (the sender reached less than 90% of $rate pkt/s: stopping here)"
      break
    fi
    bad_rate=$rate
    break
  done
  # bisect between the last clean and the first lossy rate
  if ((bad_rate > 0 && ok_rate > 0)); then
    for ((i = 0; i < refine; i++)); do
      r=$(((ok_rate + bad_rate) / 2))
      rc=0
      step "$r" || rc=$?
      if ((rc == 1)); then bad_rate=$r; else ok_rate=$r; fi
    done
  fi
}

echo "netflow bench ($mode): $packets data packets a step (v5 30 records/packet, v9 30, IPFIX 20);" \
  "rates: $rates pkt/s; refine $refine; socket buffer $rcvbuf for every collector (rmem_max $old_rmem -> $(sysctl -n net.core.rmem_max))"
echo "outpost: netflow listener -> flow_aggregator -> sqlite | nfcapd: nfcapd files | nfacctd: print plugin (csv)"
started=$(now)
for v in $versions; do
  for c in $collectors; do
    sweep "$c" "$v"
  done
done
elapsed=$(awk -v a="$started" -v b="$(now)" 'BEGIN { printf "%.0f", b - a }')

echo
echo "details:"
sed 's/^/  /' "$work/log"
echo
printf '%-8s %-6s %16s %14s %14s %s\n' collector flows "loss-free rec/s" "at pkt/s" "cpu-s/M rec" "first loss at pkt/s"
for v in $versions; do
  vn=$([[ $v == 10 ]] && echo IPFIX || echo "v$v")
  for c in $collectors; do
    printf '%-8s %-6s %16s %14s %14s %s\n' "$c" "$vn" "${BEST_RPS[$c,$v]}" "${BEST_RATE[$c,$v]}" \
      "${BEST_CPU[$c,$v]}" "${FIRST_LOSS[$c,$v]}"
  done
done
echo "(loss-free rec/s: records sent / send time at the highest rate where the collector kept every record;"
echo " cpu-s/M rec: the collector's CPU seconds per million records there; ${elapsed}s in all)"

# RESULT: NetFlow v9, Outpost against the better peer.
rv=9
[[ " $versions " == *" 9 "* ]] || rv=${versions%% *}
peer='' peer_rps=0
for c in $collectors; do
  [[ $c == outpost ]] && continue
  if [[ -z $peer ]] || awk -v a="${BEST_RPS[$c,$rv]}" -v b="$peer_rps" 'BEGIN { exit !(a > b) }'; then
    peer=$c peer_rps=${BEST_RPS[$c,$rv]}
  fi
done
o_rps=${BEST_RPS[outpost,$rv]:-0}
ratio=$(awk -v o="$o_rps" -v p="$peer_rps" 'BEGIN { if (p > 0) printf "%.2f", o / p; else print "inf" }')
echo "RESULT netflow_lossfree outpost=$o_rps ${peer:-peer}=$peer_rps ratio=$ratio records/s"
