#!/usr/bin/env bash
# Flow rows into ClickHouse: through Outpost's clickhouse sink (the plugin driven as the engine
# drives a spooled sink: batches of 20,000 flows, the spool's default, encoded as RowBinary and
# POSTed to the HTTP interface) against ClickHouse's own client inserting the same rows
# (`clickhouse-client --query 'INSERT INTO ... FORMAT RowBinary'` reading them from a file, over
# the native protocol), in the same run, into the same server (Debian's clickhouse-server,
# started here on loopback ports with its own data directory). Each side runs CH_BENCH_REPS
# times (2), alternating, the best run counts; every run's row count is checked, and the two
# tables' sums must agree. CPU per million rows: the inserting process's, and the server's
# (/proc/PID/stat) during the insert.
# Then, for the sink's choice of insert format: the same rows POSTed over HTTP by curl as
# RowBinary, TabSeparated and JSONEachRow, the server's time and CPU for each.
#   OUTPOST_BUILD_DIR=build bench/clickhouse/run.sh [quick|full|ROWS]
#   (quick, the default: 1,000,000 rows, about 30 s; full: 5,000,000)
# Last line: RESULT clickhouse_flows outpost=<rows/s> clickhouse_client=<rows/s> ratio=<x> rows/s
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${OUTPOST_BUILD_DIR:-$ROOT/build}
case ${1:-quick} in
  quick) ROWS=1000000 ;;
  full) ROWS=5000000 ;;
  *[!0-9]* | 0) echo "usage: run.sh [quick|full|ROWS]" >&2; exit 2 ;;
  *) ROWS=$1 ;;
esac
BATCH=${CH_BENCH_BATCH:-20000}
REPS=${CH_BENCH_REPS:-2}
DRIVER=$BUILD/bench/clickhouse/bench_clickhouse
[ -x "$DRIVER" ] || { echo "no $DRIVER: build first" >&2; exit 1; }
for tool in clickhouse-server clickhouse-client curl; do
  command -v "$tool" > /dev/null || { echo "$tool is not installed (./dev setup)" >&2; exit 1; }
done
TMP=$(mktemp -d)
PIDS=()
trap 'for p in "${PIDS[@]:-}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$TMP"' EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
source "$ROOT/plugins/clickhouse/tests/clickhouse_server.sh"

ch_start "$TMP/ch" "$(free_port)" "$(free_port)"
URL=http://127.0.0.1:$CH_HTTP
echo "clickhouse-server $(ch_sql 'SELECT version()'), $ROWS flow rows, best of $REPS runs each"
ch_sql "CREATE DATABASE bench"
"$DRIVER" dump "$ROWS" "$TMP/rows.bin"
CLK=$(getconf CLK_TCK)
server_ticks() { awk '{print $14 + $15}' "/proc/$CH_PID/stat"; }
rows_in() { ch_sql "SELECT count() FROM bench.$1"; }
# timed CMD...: runs CMD (stdin from $TIMED_IN), prints "wall_seconds child_cpu_seconds"
timed() {
  python3 - "$@" <<'PY'
import os, resource, subprocess, sys, time
t = time.monotonic()
with open(os.environ["TIMED_IN"], "rb") as f:
    subprocess.run(sys.argv[1:], stdin=f, stdout=subprocess.DEVNULL, check=True)
wall = time.monotonic() - t
u = resource.getrusage(resource.RUSAGE_CHILDREN)
print(f"{wall:.3f} {u.ru_utime + u.ru_stime:.3f}")
PY
}
best_o=0 best_c=0
for rep in $(seq 1 "$REPS"); do
  ch_sql "DROP TABLE IF EXISTS bench.flows"
  s0=$(server_ticks)
  out=$("$DRIVER" sink "$ROWS" "$BATCH" "$URL" bench)
  s1=$(server_ticks)
  [ "$(rows_in flows)" = "$ROWS" ] || { echo "outpost: $(rows_in flows) rows, not $ROWS" >&2; exit 1; }
  read -r secs cpu <<< "$(echo "$out" | sed 's/.*seconds=\([0-9.]*\) cpu_seconds=\([0-9.]*\)/\1 \2/')"
  o=$(python3 -c "print(round($ROWS / $secs))")
  echo "outpost sink:      $o rows/s ($secs s); CPU per million rows: sink $(python3 -c "print(f'{$cpu * 1e6 / $ROWS:.2f}')") s, server $(python3 -c "print(f'{($s1 - $s0) / $CLK * 1e6 / $ROWS:.2f}')") s"
  [ "$o" -gt "$best_o" ] && best_o=$o && o_cpu=$cpu && o_srv=$((s1 - s0))

  ch_sql "DROP TABLE IF EXISTS bench.flows_client"
  ch_sql "CREATE TABLE bench.flows_client AS bench.flows"
  s0=$(server_ticks)
  read -r secs cpu <<< "$(TIMED_IN=$TMP/rows.bin timed clickhouse-client --host 127.0.0.1 \
    --port "$CH_TCP" --query 'INSERT INTO bench.flows_client FORMAT RowBinary')"
  s1=$(server_ticks)
  [ "$(rows_in flows_client)" = "$ROWS" ] || { echo "client: $(rows_in flows_client) rows" >&2; exit 1; }
  c=$(python3 -c "print(round($ROWS / $secs))")
  echo "clickhouse-client: $c rows/s ($secs s); CPU per million rows: client $(python3 -c "print(f'{$cpu * 1e6 / $ROWS:.2f}')") s, server $(python3 -c "print(f'{($s1 - $s0) / $CLK * 1e6 / $ROWS:.2f}')") s"
  [ "$c" -gt "$best_c" ] && best_c=$c && c_cpu=$cpu && c_srv=$((s1 - s0))
done
sums="sum(bytes), sum(packets), sum(src_port), sum(input_if), sum(end_ns), count(DISTINCT src)"
a=$(ch_sql "SELECT $sums FROM bench.flows")
b=$(ch_sql "SELECT $sums FROM bench.flows_client")
[ "$a" = "$b" ] || { echo "the two tables differ: $a / $b" >&2; exit 1; }
echo "both tables hold the same rows (sums of bytes, packets, ports, interfaces, times agree)"

# The insert formats over HTTP, as the sink would send them (curl, the same rows).
for fmt in RowBinary TabSeparated JSONEachRow; do
  ch_sql "SELECT * FROM bench.flows_client FORMAT $fmt" > "$TMP/rows.$fmt"
  ch_sql "DROP TABLE IF EXISTS bench.fmt"
  ch_sql "CREATE TABLE bench.fmt AS bench.flows"
  s0=$(server_ticks)
  read -r secs cpu <<< "$(TIMED_IN=$TMP/rows.$fmt timed curl -sf --data-binary @- \
    "$URL/?query=INSERT%20INTO%20bench.fmt%20FORMAT%20$fmt")"
  s1=$(server_ticks)
  [ "$(rows_in fmt)" = "$ROWS" ] || { echo "$fmt: $(rows_in fmt) rows" >&2; exit 1; }
  printf 'HTTP insert as %-12s %9d rows/s, %4d bytes/row, server CPU per million rows %.2f s\n' \
    "$fmt" "$(python3 -c "print(round($ROWS / $secs))")" \
    "$(($(stat -c %s "$TMP/rows.$fmt") / ROWS))" "$(python3 -c "print(($s1 - $s0) / $CLK * 1e6 / $ROWS)")"
done
ch_stop
python3 - "$best_o" "$best_c" "$o_cpu" "$o_srv" "$c_cpu" "$c_srv" "$ROWS" "$CLK" <<'PY'
import sys
o, c, o_cpu, o_srv, c_cpu, c_srv, rows, clk = map(float, sys.argv[1:])
m = 1e6 / rows
print(f"CPU per million rows (best runs): outpost sink {o_cpu * m:.2f} s + server {o_srv / clk * m:.2f} s; "
      f"clickhouse-client {c_cpu * m:.2f} s + server {c_srv / clk * m:.2f} s")
print(f"RESULT clickhouse_flows outpost={o:.0f} clickhouse_client={c:.0f} ratio={o / c:.2f} rows/s")
PY
