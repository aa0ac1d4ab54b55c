#!/usr/bin/env bash
# ICMP sweep: N loopback addresses (default 10,000), one echo request each, first with Outpost's
# icmp plugin (bench_icmp_sweep: one poll, one raw socket), then with fping, in the same run.
# Fair terms: the same address list, 1 probe per target, the same send rate (ICMP_BENCH_PPS,
# default 20000/s; fping -i is its inverse), the same 1 s reply timeout, both as root, both
# timed wall-clock from process start to exit.
#
#   OUTPOST_BUILD_DIR=build-icmp bench/icmp_sweep/run.sh [N]
#
# Last line: RESULT icmp_sweep_10k outpost=<s> fping=<s> ratio=<fping/outpost> seconds
# (ratio > 1: Outpost was faster). Exits non-zero unless both found every target up.
set -euo pipefail

n=${1:-10000}
pps=${ICMP_BENCH_PPS:-20000}
build=${OUTPOST_BUILD_DIR:-./build}
driver=$build/bench/icmp_sweep/bench_icmp_sweep
plugin=$build/plugins/outpost_icmp.so

die() { echo "run.sh: $*" >&2; exit 1; }
[[ $n =~ ^[0-9]+$ && $n -ge 1 && $n -le 62500 ]] || die "target count must be 1..62500"
[[ $(id -u) == 0 ]] || die "needs root (raw ICMP sockets for both tools)"
[[ -x $driver ]] || die "no $driver: build it (ninja -C $build bench_icmp_sweep)"
[[ -f $plugin ]] || die "no $plugin: build it (ninja -C $build outpost_plugin_icmp)"
command -v fping >/dev/null || die "fping is not installed (see scripts/deps/icmp.list)"

if [[ $n == 10000 ]]; then name=icmp_sweep_10k; else name=icmp_sweep_$n; fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# 127.1.0.1 .. 127.1.39.250 for 10,000: distinct addresses, all answered by the local kernel.
awk -v n="$n" 'BEGIN { for (i = 0; i < n; i++) printf "127.1.%d.%d\n", int(i / 250), i % 250 + 1 }' \
  >"$work/targets"
interval_ms=$(awk -v p="$pps" 'BEGIN { printf "%.4f", 1000 / p }')

now() { date +%s.%N; }

t0=$(now)
"$driver" --plugin "$plugin" --file "$work/targets" --count 1 --max-pps "$pps" --timeout 1s \
  >"$work/outpost.out" 2>&1 || true
t1=$(now)
outpost_up=$(sed -n 's/^outpost: \([0-9]*\)\/.*/\1/p' "$work/outpost.out")
outpost_up=${outpost_up:-0}

t2=$(now)
fping -q -c 1 -i "$interval_ms" -t 1000 -f "$work/targets" >"$work/fping.out" 2>&1 || true
t3=$(now)
fping_up=$(grep -c ' = 1/1/0%' "$work/fping.out" || true)

outpost_s=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')
fping_s=$(awk -v a="$t2" -v b="$t3" 'BEGIN { printf "%.3f", b - a }')
ratio=$(awk -v o="$outpost_s" -v f="$fping_s" 'BEGIN { printf "%.2f", f / o }')

cat "$work/outpost.out"
echo "fping: ${fping_up}/${n} up (fping -q -c 1 -i ${interval_ms} -t 1000)"
echo "targets=$n rate=${pps}/s: outpost up=${outpost_up} in ${outpost_s}s, fping up=${fping_up} in ${fping_s}s"
status=0
[[ $outpost_up == "$n" && $fping_up == "$n" ]] || { echo "run.sh: not every target was up" >&2; status=1; }
echo "RESULT $name outpost=$outpost_s fping=$fping_s ratio=$ratio seconds"
exit $status
