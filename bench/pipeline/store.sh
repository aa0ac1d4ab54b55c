#!/usr/bin/env bash
# The local store at N devices (default 10,000: 1.6 million series) for M minutes of polls, beside
# plain SQLite inserts of the same rows. Usage: store.sh [DEVICES] [MINUTES]
set -euo pipefail
BUILD=${OUTPOST_BUILD_DIR:-$(cd "$(dirname "$0")/../.." && pwd)/build}
exec "$BUILD/bench/pipeline/bench_store" "$BUILD/plugins" "${1:-10000}" "${2:-10}"
