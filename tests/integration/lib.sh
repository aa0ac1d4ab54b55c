# Helpers for the shell-level integration tests. Each test sources this file.
set -euo pipefail
BUILD=${1:?usage: $0 BUILD_DIR}
SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
OUTPOST=$BUILD/outpost
TMP=$(mktemp -d)
PIDS=()
# Commands (eval'd) run at exit after the PIDS are signalled, before $TMP goes: the helpers that
# change the machine (tests/integration/sshd.sh's users) register their undoing here.
AT_EXIT=()
cleanup() {
  for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done
  for c in "${AT_EXIT[@]:-}"; do [ -n "$c" ] && { eval "$c" || true; }; done
  [ -n "${KEEP_TMP:-}" ] || rm -rf "$TMP"
}
trap cleanup EXIT
FAILS=0
pass() { echo "ok: $*"; }
fail() { echo "FAIL: $*"; FAILS=$((FAILS + 1)); }
check() { # description, command...
  local what=$1; shift
  if "$@"; then pass "$what"; else fail "$what"; fi
}
finish() {
  if [ "$FAILS" -ne 0 ]; then echo "$FAILS check(s) failed"; exit 1; fi
  echo "all checks passed"
}
# A free TCP port on 127.0.0.1.
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
# query DB KIND [args] -> JSON lines on stdout
query() { local db=$1; shift; "$OUTPOST" query --db "$db" "$@" --json --limit 100000; }
# jq-like check with python: series JSON lines on stdin; expression over list `rows`
pycheck() { /usr/bin/python3 -c "import json,sys; rows=[json.loads(l) for l in sys.stdin if l.strip()]; sys.exit(0 if ($1) else 1)"; }
# start_engine CONFIG PLUGIN: runs `outpost run -c CONFIG` in the background (ENGINE = its pid,
# output in $TMP/engine.out and $TMP/engine.err) and waits until PLUGIN's UDP listener is bound;
# PORT = the port it got (configs bind port 0). Exits the test when no listener comes up.
start_engine() {
  : > "$TMP/engine.err"  # exists before the wait below reads it
  "$OUTPOST" run -c "$1" > "$TMP/engine.out" 2> "$TMP/engine.err" &
  ENGINE=$!
  PIDS+=($ENGINE)
  PORT=
  for _ in $(seq 1 100); do
    PORT=$(sed -n "s/.*listening on udp:\/\/127.0.0.1:\([0-9]*\) for '$2'.*/\1/p" "$TMP/engine.err")
    [ -n "$PORT" ] && return 0
    sleep 0.05
  done
  cat "$TMP/engine.err"
  echo "FAIL: the engine did not open its $2 listener"
  exit 1
}
# stop_engine: SIGTERM to $ENGINE, waits for it; ENGINE_RC = its exit status.
stop_engine() {
  kill -TERM "$ENGINE"
  set +e
  wait "$ENGINE"
  ENGINE_RC=$?
  set -e
}
# tls_certs DIR: a test CA (DIR/ca.pem, .key), a certificate for 127.0.0.1 and localhost signed by
# it (DIR/server.pem, .key), and a CA that signed nothing (DIR/other-ca.pem): P-256, 2 days.
tls_certs() {
  local d=$1 ca
  for ca in ca other-ca; do
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$d/$ca.key" \
      -out "$d/$ca.pem" -days 2 -subj "/CN=outpost test $ca" 2>/dev/null
  done
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$d/server.key" \
    -out "$d/server.csr" -subj "/CN=127.0.0.1" 2>/dev/null
  printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' > "$d/server.ext"
  openssl x509 -req -in "$d/server.csr" -CA "$d/ca.pem" -CAkey "$d/ca.key" -CAcreateserial \
    -days 2 -extfile "$d/server.ext" -out "$d/server.pem" 2>/dev/null
}
# start_receiver ARGS...: outpost-receiver over TLS (tls_certs in $TMP) on $RPORT, appending to
# $TMP/received.jsonl, logging requests to $TMP/receiver.err; RECV = its pid.
start_receiver() {
  : > "$TMP/receiver.out"
  "$BUILD/outpost-receiver" --listen "127.0.0.1:$RPORT" --cert "$TMP/server.pem" \
    --key "$TMP/server.key" --out "$TMP/received.jsonl" --verbose "$@" \
    >> "$TMP/receiver.out" 2>> "$TMP/receiver.err" &
  RECV=$!
  PIDS+=($RECV)
  for _ in $(seq 1 100); do grep -q '^listening' "$TMP/receiver.out" && return 0; sleep 0.05; done
  cat "$TMP/receiver.err"
  echo "FAIL: the receiver did not start"
  exit 1
}
# rstat EXPR: EXPR over the receiver's GET /v1/stats JSON (its keys as names).
rstat() {
  curl -s --cacert "$TMP/ca.pem" "https://127.0.0.1:$RPORT/v1/stats" |
    python3 -c "import json,sys; d=json.load(sys.stdin); print(eval(sys.argv[1], {}, d))" "$1"
}
