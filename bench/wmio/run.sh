#!/usr/bin/env bash
# MS-WMIO decoding: objects per second and CPU per 1,000 objects, Outpost's outpost_lib_wmio
# beside impacket (Debian python3-impacket 0.10.0, /usr/bin/python3), in the same run, on the
# same objects.
#
# The objects: N EncodingUnits (the object data of the OBJREF_CUSTOM that
# IEnumWbemClassObject::Next returns), Win32_Process-like instances of 62 properties (the 45 of
# Win32_Process plus one of every other CIM type and arrays; 8-bit and UTF-16 strings, NULLs, an
# embedded object), each carrying its class part as Windows sends them, written by the test-only
# encoder (bench_wmio gen) to one file.
#   outpost   bench_wmio decode: wmio::decode of every unit into wql::Instance (every value
#             rendered as text), one ClassCache per pass as one enumeration would: a class
#             part byte for byte the one before is not parsed again. Printed beside it, not in
#             the RESULT: the same with a new ClassCache for every object (every class part
#             parsed, as impacket does).
#   impacket  impacket_bench.py: ENCODING_UNIT + OBJECT_BLOCK.parseObject() of every unit (what
#             its IWbemClassObject does for each object Next returns) and every property value
#             read.
# Each side decodes the whole file again and again for at least 2 s; objects/s = objects decoded
# / wall seconds; CPU per 1,000 objects = the process's user+system seconds over the decoding
# loop (file reading and interpreter start-up not counted) / objects * 1000. Before the rates
# count, both sides must have decoded every object and the same number of property values.
#
#   OUTPOST_BUILD_DIR=build bench/wmio/run.sh [N]     (default N = 500; impacket takes ~17 ms
#   an object, so 500 take ~9 s)
# Last line: RESULT wmio_decode outpost=<objects/s> impacket=<objects/s> ratio=<x> objects/s
# (ratio > 1: Outpost better).
set -euo pipefail
n=${1:-500}
here=$(cd "$(dirname "$0")" && pwd)
build=${OUTPOST_BUILD_DIR:-$here/../../build}
build=$(cd "$build" && pwd)
driver=$build/bench/wmio/bench_wmio
die() { echo "run.sh: $*" >&2; exit 1; }
[[ -x $driver ]] || die "no $driver: build it (ninja bench_wmio)"
/usr/bin/python3 -c 'import impacket.dcerpc.v5.dcom.wmi' 2> /dev/null ||
  die "impacket not importable by /usr/bin/python3 (Debian: python3-impacket)"

work=$(mktemp -d /tmp/wmio-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT
"$driver" gen "$n" "$work/units"
echo "objects: $n EncodingUnits, $(stat -c %s "$work/units") octets"

out=$("$driver" decode "$work/units")
fresh=$("$driver" decode "$work/units" fresh)
imp=$(/usr/bin/python3 "$here/impacket_bench.py" "$work/units")
echo "$out"
echo "${fresh/outpost/outpost-fresh-cache}"
echo "$imp"
field() { sed -n "s/.* $2=\([^ ]*\).*/\1/p" <<< "$1"; }
ov=$(field "$out" values) iv=$(field "$imp" values)
[[ $ov == "$iv" ]] || die "property values decoded differ: outpost $ov, impacket $iv"
(( $(field "$out" objects) % n == 0 && $(field "$imp" objects) % n == 0 )) || die "objects lost"

rate() { awk -v o="$(field "$1" objects)" -v w="$(field "$1" wall_s)" 'BEGIN { printf "%.0f", o / w }'; }
cpu_k() { awk -v o="$(field "$1" objects)" -v c="$(field "$1" cpu_s)" 'BEGIN { printf "%.4f", c / o * 1000 }'; }
orate=$(rate "$out") irate=$(rate "$imp")
ocpu=$(cpu_k "$out") icpu=$(cpu_k "$imp")
printf '%-9s %14s %26s\n' decoder "objects/s" "CPU s per 1,000 objects"
printf '%-9s %14s %26s\n' outpost "$orate" "$ocpu"
printf '%-9s %14s %26s   (a new ClassCache per object: every class part parsed)\n' "" "$(rate "$fresh")" "$(cpu_k "$fresh")"
printf '%-9s %14s %26s\n' impacket "$irate" "$icpu"
echo "(both decoded $ov property values per pass over the $n objects)"
ratio=$(awk -v o="$orate" -v p="$irate" 'BEGIN { if (p > 0) printf "%.1f", o / p; else print "inf" }')
cratio=$(awk -v o="$ocpu" -v p="$icpu" 'BEGIN { if (o > 0) printf "%.1f", p / o; else print "inf" }')
echo "RESULT wmio_decode_cpu outpost=$ocpu impacket=$icpu ratio=$cratio cpu_s_per_1000_objects"
echo "RESULT wmio_decode outpost=$orate impacket=$irate ratio=$ratio objects/s"
