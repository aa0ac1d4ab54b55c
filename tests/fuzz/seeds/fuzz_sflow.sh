#!/usr/bin/env bash
# Seeds for fuzz_sflow: datagrams built from the sFlow v5 spec by the sflow plugin.
exec bash plugins/sflow/fuzz/make_seeds.sh "$1"
