#!/usr/bin/env bash
# CLI diagnostics against real peers: `outpost snmp get|walk` beside net-snmp's own snmpget and
# snmpbulkwalk on a real snmpd (same OIDs, same lines), v3 authPriv, failures (wrong community,
# wrong privacy password, dead port) reported before the deadline; `outpost poll` through the
# tcp plugin (python's http.server, a closed port), the icmp plugin (127.0.0.1) and the snmp
# plugin with a config file's credentials; and configuration errors worded as check-config's.
source "$(dirname "$0")/lib.sh"
PY=/usr/bin/python3
for tool in snmpd snmpget snmpbulkwalk snmpwalk; do
  command -v $tool > /dev/null || { echo "FAIL: $tool not installed (scripts/deps/snmp.list)"; exit 1; }
done
# net-snmp's tools print numeric OIDs and quoted strings when no MIB file is loaded, which is
# what Outpost prints; make sure none is, whatever the machine has installed.
export MIBS= MIBDIRS=/nonexistent
free_udp_port() { $PY -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
seconds() { date +%s.%N; }
# run NAME CMD...: stdout to $TMP/NAME.out, stderr to $TMP/NAME.err, exit status to RC, wall
# time to TOOK.
run() {
  local name=$1 t0; shift
  t0=$(seconds)
  set +e
  "$@" > "$TMP/$name.out" 2> "$TMP/$name.err"
  RC=$?
  set -e
  TOOK=$($PY -c "print($(seconds) - $t0)")
}
lt() { $PY -c "import sys; sys.exit(0 if $1 < $2 else 1)"; }
strip() { sed 's/ *$//' "$@"; }  # net-snmp ends Hex-STRING lines with a space

# ---- a real snmpd -------------------------------------------------------------------------
SNMP_PORT=$(free_udp_port)
AGENT=127.0.0.1:$SNMP_PORT
mkdir -p "$TMP/snmpd"
cat > "$TMP/snmpd/snmpd.conf" <<CONF
rocommunity public 127.0.0.1
createUser privUser SHA "authpass123" AES "privpass123"
rouser privUser priv
sysName outpost-cli-test
sysLocation loopback "lab" 7
dontLogTCPWrappersConnects yes
CONF
SNMP_PERSISTENT_DIR=$TMP/snmpd/persist snmpd -f -Lo -C -I -smux -c "$TMP/snmpd/snmpd.conf" \
  -p "$TMP/snmpd/pid" "udp:$AGENT" > "$TMP/snmpd/log" 2>&1 &
SNMPD=$!
PIDS+=($SNMPD)
up=0
for _ in $(seq 1 100); do
  if snmpget -v2c -c public -t 0.2 -r 0 "$AGENT" 1.3.6.1.2.1.1.3.0 > /dev/null 2>&1; then up=1; break; fi
  sleep 0.1
done
[ $up = 1 ] || { cat "$TMP/snmpd/log"; echo "FAIL: snmpd did not come up"; exit 1; }

# ---- snmp get: the same lines as snmpget -On ----------------------------------------------
# sysDescr, sysObjectID, sysContact (empty), sysName, sysLocation (quotes inside), ifDescr.1,
# hrStorageDescr of the first storage entry, ifNumber.
GETS="1.3.6.1.2.1.1.1.0 1.3.6.1.2.1.1.2.0 1.3.6.1.2.1.1.4.0 1.3.6.1.2.1.1.5.0 1.3.6.1.2.1.1.6.0
      1.3.6.1.2.1.2.2.1.2.1 1.3.6.1.2.1.25.2.3.1.3.1 1.3.6.1.2.1.2.1.0"
snmpget -v2c -c public -On "$AGENT" $GETS > "$TMP/get.expected" 2> /dev/null
run get "$OUTPOST" snmp get -v2c -c public "$AGENT" $GETS
check "snmp get: exit 0" test "$RC" = 0
check "snmp get: snmpget -On prints 8 values" test "$(wc -l < "$TMP/get.expected")" = 8
check "snmp get: the same lines as snmpget -On" diff "$TMP/get.expected" "$TMP/get.out"
check "snmp get: a string with quotes is escaped as net-snmp does" \
  grep -qF '.1.3.6.1.2.1.1.6.0 = STRING: "loopback \"lab\" 7"' "$TMP/get.out"
# Attached option values (-v2c -cpublic) as net-snmp's tools take them; an OID written with a
# leading dot.
run get_attached "$OUTPOST" snmp get -v2c -cpublic -On "$AGENT" .1.3.6.1.2.1.1.5.0
check "snmp get: -v2c -cpublic and a leading dot" \
  diff <(snmpget -v2c -c public -On "$AGENT" 1.3.6.1.2.1.1.5.0) "$TMP/get_attached.out"

# Objects the agent does not have: one line each, and the exit status says a value was read.
run get_missing "$OUTPOST" snmp get -v2c -c public "$AGENT" 1.3.6.1.2.1.1.5.0 1.3.6.1.2.1.1.99.0 1.3.6.1.2.1.1.5.1
check "snmp get: noSuchObject shown for its OID" grep -qx '.1.3.6.1.2.1.1.99.0 = noSuchObject' "$TMP/get_missing.out"
check "snmp get: noSuchInstance shown for its OID" grep -qx '.1.3.6.1.2.1.1.5.1 = noSuchInstance' "$TMP/get_missing.out"
check "snmp get: with one value read, exit 0" test "$RC" = 0
run get_none "$OUTPOST" snmp get -v2c -c public "$AGENT" 1.3.6.1.2.1.1.99.0
check "snmp get: no value at all is exit 1 (not_found)" test "$RC" = 1
check "snmp get: ... and says so" grep -q "not_found: the agent answered but gave no value" "$TMP/get_none.err"

# ---- snmp walk: the same lines as snmpbulkwalk -On ----------------------------------------
# The system group (sysUpTime moves: left out), ifDescr, ifType, ifPhysAddress (Hex-STRING and
# an empty string), hrStorageDescr; a walk of a scalar's instance (a GET, as snmpwalk does).
for oid in 1.3.6.1.2.1.1 1.3.6.1.2.1.2.2.1.2 1.3.6.1.2.1.2.2.1.3 1.3.6.1.2.1.2.2.1.6 \
           1.3.6.1.2.1.25.2.3.1.3 1.3.6.1.2.1.1.5.0; do
  snmpbulkwalk -v2c -c public -On "$AGENT" "$oid" 2> /dev/null | strip | grep -v '^\.1\.3\.6\.1\.2\.1\.1\.3\.0 ' > "$TMP/walk-$oid.expected"
  run walk "$OUTPOST" snmp walk -v2c -c public "$AGENT" "$oid"
  check "snmp walk $oid: exit 0" test "$RC" = 0
  check "snmp walk $oid: snmpbulkwalk found something" test -s "$TMP/walk-$oid.expected"
  check "snmp walk $oid: the same lines as snmpbulkwalk -On" \
    diff "$TMP/walk-$oid.expected" <(grep -v '^\.1\.3\.6\.1\.2\.1\.1\.3\.0 ' "$TMP/walk.out")
done
check "snmp walk: Hex-STRING values (MAC addresses) were among those compared" \
  grep -q "= Hex-STRING: " "$TMP/walk-1.3.6.1.2.1.2.2.1.6.expected"
check "snmp walk: an empty string (lo's ifPhysAddress) too" grep -qx '.1.3.6.1.2.1.2.2.1.6.1 = ""' "$TMP/walk-1.3.6.1.2.1.2.2.1.6.expected"
# Several roots in one walk, and SNMPv1 (GETNEXT) beside snmpwalk -v1.
run walk2 "$OUTPOST" snmp walk -v2c -c public -Cr 3 "$AGENT" 1.3.6.1.2.1.2.2.1.2 1.3.6.1.2.1.25.2.3.1.3
check "snmp walk: two roots, in order, max-repetitions 3" diff \
  <(snmpbulkwalk -v2c -c public -On "$AGENT" 1.3.6.1.2.1.2.2.1.2; snmpbulkwalk -v2c -c public -On "$AGENT" 1.3.6.1.2.1.25.2.3.1.3) \
  "$TMP/walk2.out"
run walk_v1 "$OUTPOST" snmp walk -v 1 -c public "$AGENT" 1.3.6.1.2.1.2.2.1.2
check "snmp walk -v 1: the same lines as snmpwalk -v1" \
  diff <(snmpwalk -v1 -c public -On "$AGENT" 1.3.6.1.2.1.2.2.1.2) "$TMP/walk_v1.out"

# ---- SNMPv3 authPriv ---------------------------------------------------------------------
V3="-v3 -l authPriv -u privUser -a SHA -A authpass123 -x AES -X privpass123"
run v3 "$OUTPOST" snmp get $V3 "$AGENT" 1.3.6.1.2.1.1.1.0 1.3.6.1.2.1.1.5.0
check "snmp get -v3 authPriv: exit 0" test "$RC" = 0
check "snmp get -v3 authPriv: the same lines as snmpget" \
  diff <(snmpget $V3 -On "$AGENT" 1.3.6.1.2.1.1.1.0 1.3.6.1.2.1.1.5.0) "$TMP/v3.out"
export OUTPOST_TEST_AUTH=authpass123 OUTPOST_TEST_PRIV=privpass123
run v3_refs "$OUTPOST" snmp walk -v3 -u privUser -A '${env:OUTPOST_TEST_AUTH}' -X '${env:OUTPOST_TEST_PRIV}' \
  "$AGENT" 1.3.6.1.2.1.2.2.1.2
check "snmp walk -v3 with passwords as \${env:...} references" \
  diff <(snmpbulkwalk $V3 -On "$AGENT" 1.3.6.1.2.1.2.2.1.2) "$TMP/v3_refs.out"
run v3_badpriv "$OUTPOST" snmp get -v3 -u privUser -A authpass123 -X wrongpriv123 -t 0.5 -r 1 "$AGENT" 1.3.6.1.2.1.1.5.0
check "snmp -v3 wrong privacy password: exit 1" test "$RC" = 1
check "snmp -v3 wrong privacy password: named as such" grep -q "auth: wrong SNMPv3 privacy password" "$TMP/v3_badpriv.err"

# ---- failures: wrong community, dead port, both well before the deadline ------------------
run badcomm "$OUTPOST" snmp get -v2c -c wrong -t 0.5 -r 1 --timeout 20s "$AGENT" 1.3.6.1.2.1.1.5.0
check "wrong community: non-zero exit" test "$RC" != 0
check "wrong community: the error is printed" grep -q "timeout: no response from udp:$AGENT after 2 attempts .*wrong community" "$TMP/badcomm.err"
check "wrong community: nothing on stdout" test ! -s "$TMP/badcomm.out"
check "wrong community: over after the retries (2 x 0.5 s), not at the 20 s deadline ($TOOK s)" lt "$TOOK" 5
DEAD=$(free_udp_port)
run dead "$OUTPOST" snmp walk -v2c -c public -t 0.3 -r 1 --timeout 20s "127.0.0.1:$DEAD" 1.3.6.1.2.1.1
check "dead port: exit 1" test "$RC" = 1
check "dead port: a timeout naming the agent" grep -q "timeout: no response from udp:127.0.0.1:$DEAD" "$TMP/dead.err"
check "dead port: over before the deadline ($TOOK s)" lt "$TOOK" 5
run dead_v3 "$OUTPOST" snmp get $V3 -t 0.3 -r 0 "127.0.0.1:$DEAD" 1.3.6.1.2.1.1.5.0
check "dead port v3: engine discovery times out" grep -q "no answer to SNMPv3 engine discovery" "$TMP/dead_v3.err"

# ---- usage errors ----------------------------------------------------------------------------
run byname "$OUTPOST" snmp get -v2c -c public "$AGENT" sysName.0
check "a MIB name is a usage error (exit 2)" test "$RC" = 2
check "... that says why" grep -q "'sysName.0' is not a numeric OID" "$TMP/byname.err"
run badver "$OUTPOST" snmp get -v 4 -c public "$AGENT" 1.3.6.1.2.1.1.5.0
check "a version the plugin refuses is a configuration error (exit 2)" test "$RC" = 2
check "... in the plugin's words" grep -q "config: version must be 1, 2c or 3" "$TMP/badver.err"

# ---- JSON: every varbind an snmp.varbind event; values as snmpget -Oqv reads them ---------
run json "$OUTPOST" snmp get -v2c -c public --json "$AGENT" 1.3.6.1.2.1.1.5.0 1.3.6.1.2.1.1.2.0 1.3.6.1.2.1.1.3.0
check "snmp --json: exit 0" test "$RC" = 0
NAME=$(snmpget -v2c -c public -Oqv "$AGENT" 1.3.6.1.2.1.1.5.0 | tr -d '"')
check "snmp --json: oid, type and value attributes; the target line" $PY - "$TMP/json.out" "$NAME" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
ev = {r["attributes"]["oid"]: r for r in rows if r["type"] == "event"}
assert all(r["kind"] == "snmp.varbind" for r in ev.values()), rows
a = ev["1.3.6.1.2.1.1.5.0"]["attributes"]
assert a["type"] == "STRING" and a["value"] == sys.argv[2], a
assert ev["1.3.6.1.2.1.1.2.0"]["attributes"]["value"] == "1.3.6.1.4.1.8072.3.2.10"
t = ev["1.3.6.1.2.1.1.3.0"]["attributes"]
assert t["type"] == "Timeticks" and int(t["value"]) > 0, t
assert not [r for r in rows if r["type"] == "metric"], "metrics are left out of snmp --json"
targets = [r for r in rows if r["type"] == "target"]
assert len(targets) == 1 and targets[0]["status"] == "ok", targets
PY

# ---- outpost poll through the snmp plugin, credentials from a config file -----------------
export OUTPOST_TEST_COMMUNITY=public
cat > "$TMP/snmp.yaml" <<YAML
credentials:
  snmp_ro: \${env:OUTPOST_TEST_COMMUNITY}
plugins:
  snmp_lab: {plugin: snmp, request_timeout: 700ms, retries: 1}
YAML
run poll_snmp "$OUTPOST" poll --plugin snmp_lab -c "$TMP/snmp.yaml" --param community_ref=snmp_ro \
  --param port="$SNMP_PORT" --param get=1.3.6.1.2.1.1.5.0 --param walk=1.3.6.1.2.1.2.2.1.2 127.0.0.1
check "poll --plugin snmp_lab (config instance, credential name): exit 0" test "$RC" = 0
check "poll: the varbind events in the table" grep -qF 'snmp.varbind  127.0.0.1  .1.3.6.1.2.1.1.5.0 = STRING: "outpost-cli-test"' "$TMP/poll_snmp.out"
check "poll: the walk's varbinds as snmpbulkwalk lists them" diff \
  <(snmpbulkwalk -v2c -c public -On "$AGENT" 1.3.6.1.2.1.2.2.1.2) \
  <(grep -o '\.1\.3\.6\.1\.2\.1\.2\.2\.1\.2\..*= STRING: "[^"]*"' "$TMP/poll_snmp.out")
check "poll: snmp_up 1 in the metrics" grep -qE '^snmp_up\{device="127.0.0.1",address="127.0.0.1"\} +1 +gauge' "$TMP/poll_snmp.out"
check "poll: the target line" grep -qE '^127.0.0.1 +ok +[0-9.]+ +[0-9]+ varbinds in [0-9]+ responses' "$TMP/poll_snmp.out"
run poll_snmp_nocred "$OUTPOST" poll --plugin snmp --param community_ref=no_such --param port="$SNMP_PORT" \
  --param get=1.3.6.1.2.1.1.5.0 127.0.0.1
check "poll: a credential that does not resolve is a configuration error (exit 2)" test "$RC" = 2
check "poll: ... named in the target's detail" grep -qE "config +[0-9.]+ +community_ref: credential 'no_such' not found" "$TMP/poll_snmp_nocred.out"

# ---- outpost poll through the tcp plugin: python's http.server, a closed port --------------
OPEN=$(free_port)
CLOSED=$(free_port)
mkdir -p "$TMP/www"
echo hello > "$TMP/www/index.html"
$PY -m http.server "$OPEN" --bind 127.0.0.1 --directory "$TMP/www" > /dev/null 2>&1 &
PIDS+=($!)
for _ in $(seq 1 50); do $PY -c "import socket; socket.create_connection(('127.0.0.1', $OPEN), timeout=1).close()" 2> /dev/null && break || sleep 0.1; done
run tcp_open "$OUTPOST" poll --plugin tcp --param port="$OPEN" --param send='HEAD / HTTP/1.0\r\n\r\n' --param expect="HTTP/1.0 200" 127.0.0.1
check "poll tcp, open port: exit 0" test "$RC" = 0
check "poll tcp, open port: tcp_up 1 with its labels" grep -qE "^tcp_up\{device=\"127.0.0.1\",address=\"127.0.0.1\",port=\"$OPEN\"\} +1 +gauge" "$TMP/tcp_open.out"
check "poll tcp, open port: target ok" grep -qE '^127.0.0.1 +ok ' "$TMP/tcp_open.out"
run tcp_closed "$OUTPOST" poll --plugin tcp --param port="$CLOSED" --json 127.0.0.1 ::1
check "poll tcp, closed port: exit 1" test "$RC" = 1
check "poll tcp, closed port: refused, tcp_up 0, both targets (JSON)" $PY - "$TMP/tcp_closed.out" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
up = {r["labels"]["device"]: r["value"] for r in rows if r["type"] == "metric" and r["name"] == "tcp_up"}
assert up == {"127.0.0.1": 0, "::1": 0}, up
t = [r for r in rows if r["type"] == "target"]
assert [x["address"] for x in t] == ["127.0.0.1", "::1"], t
assert all(x["status"] == "unavailable" and "refused" in x["detail"] for x in t), t
PY
run tcp_mixed "$OUTPOST" poll --plugin tcp --param port="$OPEN" --timeout 2s 127.0.0.1 127.0.0.2
check "poll tcp: open on 127.0.0.1, closed on 127.0.0.2 (nothing listens there): exit 1" test "$RC" = 1

# ---- outpost poll through the icmp plugin ----------------------------------------------------
run icmp "$OUTPOST" poll --plugin icmp --param count=2 --param probe_interval=50ms 127.0.0.1
if grep -q "permission" "$TMP/icmp.out" "$TMP/icmp.err"; then
  echo "skip: icmp needs root or CAP_NET_RAW (or ping sockets) here"
else
  check "poll icmp 127.0.0.1: exit 0" test "$RC" = 0
  check "poll icmp 127.0.0.1: 2 sent, 2 received" grep -qE '^icmp_received\{device="127.0.0.1",address="127.0.0.1"\} +2 ' "$TMP/icmp.out"
  check "poll icmp: the target line" grep -qE '^127.0.0.1 +ok +[0-9.]+ +2/2 replies' "$TMP/icmp.out"
fi

# ---- configuration errors read as check-config's ---------------------------------------------
run err_param "$OUTPOST" poll --plugin tcp --param port=abc --param prot=22 127.0.0.1
check "poll: a bad monitor parameter is exit 2" test "$RC" = 2
check "poll: ... with the key's path and the expected type" grep -qx "\-\-param: monitor.port: expected an integer, got 'abc'" "$TMP/err_param.err"
check "poll: ... an unknown key listed with the known ones" grep -q "^--param: monitor.prot: unknown key (expected one of: port," "$TMP/err_param.err"
run err_missing "$OUTPOST" poll --plugin tcp 127.0.0.1
check "poll: a missing required parameter" grep -qx "\-\-param: monitor: missing required key 'port'" "$TMP/err_missing.err"
run err_set "$OUTPOST" poll --plugin tcp --set max_concurrent=many --param port=1 127.0.0.1
check "poll: a bad --set value" grep -qx "\-\-set: plugins.tcp.max_concurrent: expected an integer, got 'many'" "$TMP/err_set.err"
run err_plugin "$OUTPOST" poll --plugin nope 127.0.0.1
check "poll: an unknown plugin is exit 2, the loaded ones listed" grep -q "^--plugin: plugins.nope: no plugin named 'nope' (loaded: .*tcp" "$TMP/err_plugin.err"
check "poll: ... exit 2" test "$RC" = 2
run err_kind "$OUTPOST" poll --plugin sqlite 127.0.0.1
check "poll: a sink is not a poller" grep -q "plugin 'sqlite' is a sink, not a poller" "$TMP/err_kind.err"
cat > "$TMP/bad.yaml" <<YAML
plugins:
  tcp_fast: {plugin: tcp, connect_timeout: soon}
inventory:
  devices:
    - {name: x, address: 127.0.0.1, monitors: [{plugin: tcp_fast, port: 1}]}
YAML
run err_file "$OUTPOST" poll --plugin tcp_fast -c "$TMP/bad.yaml" --param port=1 127.0.0.1
"$OUTPOST" check-config "$TMP/bad.yaml" 2> "$TMP/check.err" || true
check "poll -c: a bad setting in the file, exit 2" test "$RC" = 2
check "poll -c: the same error line as check-config (file:line:column: path: message)" \
  diff "$TMP/check.err" "$TMP/err_file.err"
check "poll -c: ... which names the file and the key" grep -q "bad.yaml:2:44: plugins.tcp_fast.connect_timeout: expected a duration" "$TMP/err_file.err"

# snmpd writes its persistent state as it stops: let it finish before the directory goes.
kill "$SNMPD" 2> /dev/null || true
wait "$SNMPD" 2> /dev/null || true
finish
