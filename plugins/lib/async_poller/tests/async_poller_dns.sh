#!/usr/bin/env bash
# The poller runtime's name resolution against a real DNS server: dnsmasq on a loopback port,
# with its query log read back by the test (one query per name, answers kept within their TTL).
set -euo pipefail
TEST_BIN=$1
TMP=$(mktemp -d)
PID=
cleanup() { [ -n "$PID" ] && kill "$PID" 2>/dev/null; rm -rf "$TMP"; }
trap cleanup EXIT
PORT=$(python3 -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
USER_OPT=()
[ "$(id -u)" = 0 ] && USER_OPT=(--user=root)
dnsmasq --keep-in-foreground --port="$PORT" --listen-address=127.0.0.1 --bind-interfaces \
  --no-resolv --no-hosts --no-poll --pid-file="$TMP/pid" "${USER_OPT[@]}" \
  --log-queries --log-facility="$TMP/dnsmasq.log" --local-ttl=2 --local=/outpost.test/ \
  --host-record=many.outpost.test,127.0.0.53,fd00::53 \
  --host-record=other.outpost.test,127.0.0.54 &
PID=$!
for _ in $(seq 1 50); do
  grep -q "started" "$TMP/dnsmasq.log" 2>/dev/null && break
  sleep 0.1
done
DNS_SERVER="127.0.0.1:$PORT" DNSMASQ_LOG="$TMP/dnsmasq.log" "$TEST_BIN" "[dns]"
