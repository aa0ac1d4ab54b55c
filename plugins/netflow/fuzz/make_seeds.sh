#!/usr/bin/env bash
# Seeds for the netflow fuzzers: make_seeds.sh DIR TARGET writes inputs for TARGET
# (fuzz_netflow_v5, fuzz_netflow_v9, fuzz_ipfix, fuzz_netflow_state) into DIR, from the scapy
# vectors of the unit tests, in the fuzzers' framing (2-byte length before each datagram).
set -euo pipefail
dir=$1 target=$2
mkdir -p "$dir"
/usr/bin/python3 - "$dir" "$target" "$(dirname "$0")/../tests/vectors.py" <<'PY'
import os, struct, subprocess, sys
out, target, script = sys.argv[1:4]
vec = dict(l.split() for l in subprocess.run(["/usr/bin/python3", script], capture_output=True, text=True,
                                             check=True).stdout.splitlines())
vec = {k: bytes.fromhex(v) for k, v in vec.items()}
frame = lambda *names: b"".join(struct.pack("!H", len(vec[n])) + vec[n] for n in names)
seeds = {
    "fuzz_netflow_v5": [frame("v5_two"), frame("v5_sampled", "v5_two")],
    "fuzz_netflow_v9": [frame("v9_tpl_data"), frame("v9_data_only", "v9_data_only", "v9_tpl_only"),
                        frame("v9_sampling"), frame("v9_samplers"), frame("v9_v6"), frame("v9_wrap"),
                        frame("v9_sampling_options_only", "v9_sampling_options_only", "v9_sampling_data_only")],
    "fuzz_ipfix": [frame("ipfix_basic"), frame("ipfix_basic", "ipfix_withdraw", "ipfix_data_only"),
                   frame("ipfix_varlen"), frame("ipfix_varlen_truncated"), frame("ipfix_options"),
                   frame("ipfix_biflow"), frame("ipfix_v6_deltas"),
                   frame("ipfix_data_only", "ipfix_data_only", "ipfix_basic")],
    "fuzz_netflow_state": [b"outpost-netflow-state 1\n"
                           b"T 4 c0000201000000000000000000000000 9 7 256 0 0 3 8:4:0 12:4:0 1:4:0\n"
                           b"T 6 20010db8000000000000000000000001 10 5 401 0 0 3 8:4:0 101:65535:9 2:8:0\n"
                           b"T 4 c0000201000000000000000000000000 10 6 402 1 1 2 143:4:0 160:8:0\n"
                           b"D 4 c0000201000000000000000000000000 9 8 10 -1 2 1:100 2:1000\n"],
}[target]
for i, s in enumerate(seeds):
    with open(os.path.join(out, f"seed{i}"), "wb") as f:
        f.write(s)
PY
