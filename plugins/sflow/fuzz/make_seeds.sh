#!/usr/bin/env bash
# Seeds for fuzz_sflow: every datagram of tests/sflow_vectors.py (valid and hostile), one file each.
# usage: make_seeds.sh CORPUS_DIR
set -euo pipefail
mkdir -p "$1"
/usr/bin/python3 "$(dirname "$0")/../tests/sflow_vectors.py" |
  /usr/bin/python3 -c '
import sys, os
for line in sys.stdin:
    name, data, _ = line.rstrip("\n").split("\t")
    open(os.path.join(sys.argv[1], name), "wb").write(bytes.fromhex(data))
' "$1"
