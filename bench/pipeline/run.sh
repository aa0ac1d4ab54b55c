#!/usr/bin/env bash
# Pipeline throughput: emit -> queue -> batches -> null sink and the sqlite sink plugin, beside
# direct SQLite inserts of the same rows. Usage: run.sh [METRICS]
set -euo pipefail
BUILD=${OUTPOST_BUILD_DIR:-$(cd "$(dirname "$0")/../.." && pwd)/build}
exec "$BUILD/bench/pipeline/bench_pipeline" "$BUILD/plugins" "${1:-2000000}"
