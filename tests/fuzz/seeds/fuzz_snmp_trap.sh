#!/usr/bin/env bash
# Seeds for fuzz_snmp_trap: scapy v1/v2c vectors and v3 messages of the fuzzer's users.
exec bash plugins/snmp_trap/fuzz/make_seeds.sh "$1"
