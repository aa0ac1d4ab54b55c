#!/usr/bin/env bash
# The pipeline into the local stores, beside plain SQLite inserts of the same rows:
#   1. emit -> queue -> batches -> null sink and the sqlite sink plugin (bench_pipeline);
#   2. the store sink at fleet scale (bench_store, store.sh): ingest, compaction, disk, query.
# Usage: run.sh [quick|full]  (quick: 1,000 devices for 30 minutes of polls; full: 10,000 devices
# for 10 minutes, then 1,000 for two hours, a whole block window). Each part prints its RESULT
# line; the store's is last.
set -euo pipefail
BUILD=${OUTPOST_BUILD_DIR:-$(cd "$(dirname "$0")/../.." && pwd)/build}
HERE=$(dirname "$0")
"$BUILD/bench/pipeline/bench_pipeline" "$BUILD/plugins" 2000000
if [ "${1:-quick}" = full ]; then
  bash "$HERE/store.sh" 10000 10
  bash "$HERE/store.sh" 1000 120
else
  bash "$HERE/store.sh" 1000 30
fi
