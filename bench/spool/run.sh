#!/usr/bin/env bash
# The spool's ingest and catch-up rates beside SQLite in WAL mode doing the same job: the same
# records (50 SNMP-like metrics each, one source), appended one at a time, each durable against a
# kill -9 as soon as it is in (the spool: one write(2); SQLite: one autocommit transaction,
# synchronous=NORMAL), everything synced every second; then read back oldest first in batches of
# 20,000 items, checked and acknowledged (the spool: CRC, decode, cursor synced per batch;
# SQLite: SELECT, decode, DELETE per batch).
#   run.sh [ITEMS]      (default 2,000,000; data in $TMPDIR)
# Last line: RESULT spool_ingest outpost=<items/s> sqlite_wal=<items/s> ratio=<x> items/s
set -euo pipefail
BUILD=${OUTPOST_BUILD_DIR:-$(cd "$(dirname "$0")/../.." && pwd)/build}
exec "$BUILD/bench/spool/bench_spool" "${1:-2000000}"
