#!/usr/bin/env bash
# Seeds for fuzz_netflow_v9: the scapy-built vectors of the netflow plugin.
exec bash plugins/netflow/fuzz/make_seeds.sh "$1" fuzz_netflow_v9
