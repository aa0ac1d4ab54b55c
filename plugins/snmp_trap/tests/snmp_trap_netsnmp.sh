#!/usr/bin/env bash
# snmp_trap against net-snmp, end to end: the outpost binary with the snmp_trap listener on a
# loopback port and the sqlite sink; net-snmp's snmptrap (v1, v2c, v3 with two users and two
# engine IDs) and snmpinform (v2c, v3; each must exit 0, which it does only when acknowledged)
# send to it; a wrong community, a wrong key and an unknown user must be dropped and counted.
# Every stored event is checked field by field with `outpost query`; tshark decodes the captured
# datagrams (v1, v2c and the v3 authNoPriv trap in clear) and must agree with the events; `outpost
# replay` of the capture must give the same events again. Last, the snmp poller and snmp_trap in
# one engine, in both creation orders, against snmpd (which also sends its coldStart trap).
# usage: snmp_trap_netsnmp.sh BUILD_DIR
source "$(dirname "$0")/../../../tests/integration/lib.sh"
PY=/usr/bin/python3
for t in snmptrap snmpinform snmpd tshark tcpdump; do
  command -v $t >/dev/null || { echo "SKIP: $t not installed (scripts/deps/snmp.list)"; exit 77; }
done
for p in snmp_trap sqlite file; do
  [ -f "$BUILD/plugins/outpost_$p.so" ] || { echo "SKIP: plugin $p not built"; exit 77; }
done
MIBDIR=$SRC/plugins/snmp_trap/tests/mibs
DB=$TMP/data/outpost.db
OWN=8000000005aabbccdd0011
# net-snmp's tools: no MIB files, no configuration, state in the test's directory.
export MIBS= MIBDIRS=/nonexistent SNMP_PERSISTENT_DIR=$TMP/netsnmp SNMPCONFPATH=$TMP/netsnmp
mkdir -p "$TMP/netsnmp/cert_indexes"
export TRAP_ALICE_AUTH=alice-auth-pw TRAP_ALICE_PRIV=alice-priv-pw TRAP_BOB_AUTH=bob-auth-password
ALICE=(-u alice -l authPriv -a SHA -A alice-auth-pw -x AES -X alice-priv-pw)
BOB=(-u bob -l authNoPriv -a SHA-256 -A bob-auth-password)

plugin_settings() { # $1: mib settings
  cat <<YAML
    communities: [public]
    engine_id: "$OWN"
    users:
      - "alice auth=SHA auth_password_ref=alice_auth priv=AES priv_password_ref=alice_priv"
      - {name: bob, auth: SHA-256, auth_password_ref: bob_auth}   # the map form
    rules:
      - "name=port-down oid=1.3.6.1.4.1.32473.7.0.1 varbind=1.3.6.1.4.1.32473.7.1.2 equals=2 severity=crit message='port {1.3.6.1.4.1.32473.7.1.1} down on {source}'"
    stats_interval: 1s
$1
YAML
}
CREDS='credentials:
  alice_auth: "${env:TRAP_ALICE_AUTH}"
  alice_priv: "${env:TRAP_ALICE_PRIV}"
  bob_auth: "${env:TRAP_BOB_AUTH}"'

cat > "$TMP/run.yaml" <<YAML
engine: {data_dir: $TMP/data, summary_interval: 0}
$CREDS
plugins:
  snmp_trap:
$(plugin_settings "    mib_dirs: [$MIBDIR]
    state_dir: $TMP/data/snmp_trap")
sinks:
  db: {plugin: sqlite, path: $DB}
listeners:
  - {plugin: snmp_trap, udp: "127.0.0.1:0"}
YAML

# 1. The engine, a capture of its port, the senders.
T0=$(date +%s.%N)
start_engine "$TMP/run.yaml" snmp_trap
TARGET=udp:127.0.0.1:$PORT
tcpdump -i lo -n -U -w "$TMP/cap.pcap" "udp port $PORT" 2> "$TMP/tcpdump.err" &
TD=$!; PIDS+=($TD)
for _ in $(seq 50); do grep -q "listening on" "$TMP/tcpdump.err" && break; sleep 0.1; done

M=1.3.6.1.4.1.32473.7   # OUTPOST-TEST-MIB (tests/mibs)
snmptrap -v1 -c public $TARGET $M 192.0.2.5 6 1 4321 $M.1.1.0 i 7 $M.1.2.0 i 2 $M.1.3.0 s "v1 port down"
snmptrap -v2c -c public $TARGET '' 1.3.6.1.6.3.1.1.5.3 1.3.6.1.2.1.2.2.1.1.2 i 2 1.3.6.1.2.1.2.2.1.8.2 i 2 \
  1.3.6.1.2.1.2.2.1.2.2 s eth1 1.3.6.1.2.1.2.2.1.7.2 i 1
RC=0; snmpinform -v2c -c public -r 1 -t 3 $TARGET '' $M.0.2 $M.1.1.0 i 3 $M.1.4.0 C 12345678901234567890 || RC=$?
check "snmpinform -v2c was acknowledged (exit 0)" test $RC = 0
snmptrap -v3 -e 0x8000000001aa0001 "${ALICE[@]}" $TARGET '' $M.0.1 $M.1.1.0 i 12 $M.1.2.0 i 2 $M.1.3.0 s "v3 alice"
snmptrap -v3 -e 0x8000000001bb0002 "${BOB[@]}" $TARGET '' $M.0.2 $M.1.1.0 i 13 $M.1.2.0 i 1 1.3.6.1.2.1.1.5.0 s bobhost
RC=0; snmpinform -v3 "${ALICE[@]}" -r 1 -t 3 $TARGET '' $M.0.2 $M.1.3.0 s "inform alice" || RC=$?
check "snmpinform -v3 authPriv SHA/AES was acknowledged (exit 0)" test $RC = 0
RC=0; snmpinform -v3 "${BOB[@]}" -r 1 -t 3 $TARGET '' $M.0.1 $M.1.2.0 i 3 || RC=$?
check "snmpinform -v3 authNoPriv SHA-256 was acknowledged (exit 0)" test $RC = 0
# Refused: a wrong community, a wrong key for a known engine, an unknown user.
snmptrap -v2c -c wrong $TARGET '' 1.3.6.1.6.3.1.1.5.1
snmptrap -v3 -e 0x8000000001aa0001 -u alice -l authPriv -a SHA -A not-the-password -x AES -X alice-priv-pw $TARGET '' $M.0.1
snmptrap -v3 -e 0x8000000001aa0001 -u carol -l authNoPriv -a SHA -A carol-password $TARGET '' $M.0.1
RC=0; snmpinform -v3 -u alice -l authPriv -a SHA -A not-the-password -x AES -X alice-priv-pw -r 0 -t 2 $TARGET '' $M.0.1 2>/dev/null || RC=$?
check "snmpinform -v3 with a wrong key fails (reported, not acknowledged)" test $RC != 0
sleep 1.5  # one stats interval
kill -INT $TD 2>/dev/null || true; wait $TD 2>/dev/null || true
kill -TERM $ENGINE; ERC=0; wait $ENGINE || ERC=$?
T1=$(date +%s.%N)
check "the engine stopped cleanly (exit $ERC), no sanitizer report" \
  bash -c "[ $ERC = 0 ] && ! grep -q Sanitizer '$TMP/engine.err'"

# 2. Every event, field by field.
query "$DB" events > "$TMP/events.json"
check "the engine stored the events (outpost query)" test -s "$TMP/events.json"
cat > "$TMP/expect.py" <<'PY'
import json, sys
M = "OUTPOST-TEST-MIB::"
OWN = sys.argv[2]
events = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
fails = []
def find(**attrs):
    hit = [e for e in events if all(e["attributes"].get(k) == v for k, v in attrs.items())]
    if len(hit) != 1:
        fails.append(f"{len(hit)} events with {attrs}")
        return None
    return hit[0]
def same(e, what, got, want):
    if got != want:
        fails.append(f"{what}: {got!r} != {want!r}")
def exact(e, kind, severity, message, attrs, volatile=()):
    if e is None: return
    same(e, "kind", e["kind"], kind)
    same(e, "severity", e["severity"], severity)
    same(e, "source", e["source"], "127.0.0.1")
    if message is not None: same(e, "message", e["message"], message)
    a = dict(e["attributes"])
    same(e, "sender", a.pop("sender", "").rsplit(":", 1)[0], "127.0.0.1")
    for k in volatile:
        v = a.pop(k, None)
        if v is None or not v.lstrip("-").isdigit(): fails.append(f"{k}: {v!r} is not a number")
    a.pop("context_engine_id", None)  # snmptrap's own engine, random per state dir
    for k in sorted(set(a) | set(attrs)):
        same(e, k, a.get(k), attrs.get(k))

same(None, "events stored", len(events), 7)
exact(find(version="1"), "alert", 2, "port 7 down on 127.0.0.1", {
    "version": "1", "pdu": "trap", "community": "public",
    "trap_oid": "1.3.6.1.4.1.32473.7.0.1", "trap_name": M + "outpostTestPortDown",
    "sys_uptime": "4321", "enterprise": "1.3.6.1.4.1.32473.7", "agent_addr": "192.0.2.5",
    "generic_trap": "6", "specific_trap": "1", "rule": "port-down",
    M + "outpostTestPortIndex.0": "integer: 7", M + "outpostTestPortState.0": "integer: down(2)",
    M + "outpostTestMessage.0": "octets: v1 port down"})
exact(find(version="2c", pdu="trap"), "trap", 6,
      "IF-MIB::linkDown ifIndex.2=2 ifOperStatus.2=down ifDescr.2=eth1 ifAdminStatus.2=up", {
    "version": "2c", "pdu": "trap", "community": "public",
    "trap_oid": "1.3.6.1.6.3.1.1.5.3", "trap_name": "IF-MIB::linkDown",
    "IF-MIB::ifIndex.2": "integer: 2", "IF-MIB::ifOperStatus.2": "integer: down(2)",
    "IF-MIB::ifDescr.2": "octets: eth1", "IF-MIB::ifAdminStatus.2": "integer: up(1)"},
    volatile=("request_id", "sys_uptime"))
exact(find(version="2c", pdu="inform"), "trap", 6, None, {
    "version": "2c", "pdu": "inform", "community": "public",
    "trap_oid": "1.3.6.1.4.1.32473.7.0.2", "trap_name": M + "outpostTestPortUp",
    M + "outpostTestPortIndex.0": "integer: 3", M + "outpostTestOctets.0": "counter64: 12345678901234567890"},
    volatile=("request_id", "sys_uptime"))
exact(find(user="alice", pdu="trap"), "alert", 2, "port 12 down on 127.0.0.1", {
    "version": "3", "pdu": "trap", "user": "alice", "engine_id": "8000000001aa0001",
    "security_level": "authPriv", "trap_oid": "1.3.6.1.4.1.32473.7.0.1",
    "trap_name": M + "outpostTestPortDown", "rule": "port-down",
    M + "outpostTestPortIndex.0": "integer: 12", M + "outpostTestPortState.0": "integer: down(2)",
    M + "outpostTestMessage.0": "octets: v3 alice"}, volatile=("request_id", "sys_uptime"))
exact(find(user="bob", pdu="trap"), "trap", 6,
      "OUTPOST-TEST-MIB::outpostTestPortUp outpostTestPortIndex.0=13 outpostTestPortState.0=up sysName.0=bobhost", {
    "version": "3", "pdu": "trap", "user": "bob", "engine_id": "8000000001bb0002",
    "security_level": "authNoPriv", "trap_oid": "1.3.6.1.4.1.32473.7.0.2",
    "trap_name": M + "outpostTestPortUp", M + "outpostTestPortIndex.0": "integer: 13",
    M + "outpostTestPortState.0": "integer: up(1)", "SNMPv2-MIB::sysName.0": "octets: bobhost"},
    volatile=("request_id", "sys_uptime"))
exact(find(user="alice", pdu="inform"), "trap", 6, None, {
    "version": "3", "pdu": "inform", "user": "alice", "engine_id": OWN, "security_level": "authPriv",
    "trap_oid": "1.3.6.1.4.1.32473.7.0.2", "trap_name": M + "outpostTestPortUp",
    M + "outpostTestMessage.0": "octets: inform alice"}, volatile=("request_id", "sys_uptime"))
# No rule: the state is 3 (flapping), not down.
exact(find(user="bob", pdu="inform"), "trap", 6, None, {
    "version": "3", "pdu": "inform", "user": "bob", "engine_id": OWN, "security_level": "authNoPriv",
    "trap_oid": "1.3.6.1.4.1.32473.7.0.1", "trap_name": M + "outpostTestPortDown",
    M + "outpostTestPortState.0": "integer: flapping(3)"}, volatile=("request_id", "sys_uptime"))
t0, t1 = float(sys.argv[3]), float(sys.argv[4])
for e in events:
    if not (t0 <= e["time_ns"] / 1e9 <= t1): fails.append(f"time {e['time_ns']} outside the run")
for f in fails: print("  " + f)
sys.exit(1 if fails else 0)
PY
check "7 events, every field as sent (v1, v2c trap+inform, v3 alice/bob traps+informs)" \
  $PY "$TMP/expect.py" "$TMP/events.json" "$OWN" "$T0" "$T1"

# 3. The counters, as stored.
query "$DB" series > "$TMP/series.json"
metric() { # name labels-substring -> last value
  $PY - "$TMP/series.json" "$1" "$2" <<'PY'
import json, sys
for l in open(sys.argv[1]):
    r = json.loads(l)
    if r["name"] == sys.argv[2] and all(kv.strip() in json.dumps(r["labels"]) for kv in sys.argv[3].split(",") if kv.strip()):
        print(int(r["last"])); break
else:
    print("none")
PY
}
check_metric() { local got; got=$(metric "$1" "$2"); check "$1{$2} = $3 (got $got)" test "$got" = "$3"; }
check_metric snmp_trap_dropped_total '"reason": "bad_community"' 1
check_metric snmp_trap_dropped_total '"reason": "wrong_digest"' 2
check_metric snmp_trap_dropped_total '"reason": "unknown_user"' 1
check_metric snmp_trap_dropped_total '"reason": "truncated"' 0
check_metric snmp_trap_informs_acknowledged_total '"version": "2c"' 1
check_metric snmp_trap_informs_acknowledged_total '"version": "3"' 2
check_metric snmp_trap_reports_sent_total '"reason": "unknown_engine_id"' 3
check_metric snmp_trap_reports_sent_total '"reason": "wrong_digest"' 1
check_metric snmp_trap_received_total '"version": "3", "pdu": "trap"' 2
check_metric snmp_trap_alerts_total '"rule": "port-down"' 2
check_metric snmp_trap_engines '' 2
check "engineBoots kept in the state file" grep -qx "boots 1" "$TMP/data/snmp_trap/snmp_trap-engine.txt"

# 4. tshark decodes the same datagrams: every trap/inform it can read in clear must match an event,
# varbind by varbind (names mapped back to numbers), and the informs got their Response.
tshark -r "$TMP/cap.pcap" -d "udp.port==$PORT,snmp" -T json > "$TMP/tshark.json" 2> "$TMP/tshark.err" || true
check "tshark agrees with every event it can decode" $PY - "$TMP/tshark.json" "$TMP/events.json" "$PORT" <<'PY'
import json, sys
pkts = json.load(open(sys.argv[1]))
events = [json.loads(l) for l in open(sys.argv[2]) if l.strip()]
port = sys.argv[3]
NAMES = {"OUTPOST-TEST-MIB::outpostTestPortIndex": "1.3.6.1.4.1.32473.7.1.1",
         "OUTPOST-TEST-MIB::outpostTestPortState": "1.3.6.1.4.1.32473.7.1.2",
         "OUTPOST-TEST-MIB::outpostTestMessage": "1.3.6.1.4.1.32473.7.1.3",
         "OUTPOST-TEST-MIB::outpostTestOctets": "1.3.6.1.4.1.32473.7.1.4",
         "IF-MIB::ifIndex": "1.3.6.1.2.1.2.2.1.1", "IF-MIB::ifDescr": "1.3.6.1.2.1.2.2.1.2",
         "IF-MIB::ifAdminStatus": "1.3.6.1.2.1.2.2.1.7", "IF-MIB::ifOperStatus": "1.3.6.1.2.1.2.2.1.8",
         "SNMPv2-MIB::sysName": "1.3.6.1.2.1.1.5"}
def numeric(key):
    base, _, inst = key.partition(".")
    return NAMES[base] + "." + inst if base in NAMES else key
def plain(v):  # "integer: down(2)" -> "2"; "octets: eth1" -> "eth1"
    t, _, x = v.partition(": ")
    if "(" in x and x.endswith(")") and t == "integer": x = x[x.rindex("(") + 1:-1]
    return x
def walk(node, out):
    if isinstance(node, dict):
        if "snmp.name" in node:
            val = [v for k, v in node.items() if k.startswith("snmp.value.")][0]
            if any(k == "snmp.value.octets" for k in node):
                val = bytes.fromhex(val.replace(":", "")).decode() if val else ""
            out[node["snmp.name"]] = val
        for v in node.values(): walk(v, out)
    elif isinstance(node, list):
        for v in node: walk(v, out)
def find(node, key):
    if isinstance(node, dict):
        for k, v in node.items():
            if k == key: return v
            r = find(v, key)
            if r is not None: return r
    return None
bad, matched, acks = [], 0, 0
for p in pkts:
    layers = p["_source"]["layers"]
    snmp, udp = layers.get("snmp"), layers.get("udp", {})
    if snmp is None: continue
    if udp.get("udp.srcport") == port:
        acks += 1 if find(snmp, "snmp.get_response_element") is not None else 0
        continue
    vbs = {}
    walk(snmp, vbs)
    if not vbs and find(snmp, "snmp.trap_element") is None: continue  # encrypted or a probe
    req = find(snmp, "snmp.request_id")
    if find(snmp, "snmp.trap_element") is not None:
        cand = [e for e in events if e["attributes"].get("version") == "1"]
        v1 = find(snmp, "snmp.trap_element")
        for k, want in (("enterprise", "snmp.enterprise"), ("agent_addr", "snmp.agent_addr"),
                        ("generic_trap", "snmp.generic_trap"), ("specific_trap", "snmp.specific_trap"),
                        ("sys_uptime", "snmp.time_stamp")):
            if cand and cand[0]["attributes"].get(k) != v1[want]: bad.append((k, v1[want]))
    else:
        cand = [e for e in events if e["attributes"].get("request_id") == req]
    community = find(snmp, "snmp.community")
    if community not in (None, "public"): continue  # the refused one: no event expected
    user = find(snmp, "snmp.msgUserName")
    if user not in (None, "alice", "bob"): continue
    if len(cand) != 1:
        bad.append(("no event for", req, community, user)); continue
    a = cand[0]["attributes"]
    mine = {numeric(k): plain(v) for k, v in a.items() if "." in k and ":" in v}
    for name, val in vbs.items():
        if name == "1.3.6.1.2.1.1.3.0":
            if a.get("sys_uptime") != val: bad.append(("uptime", val, a.get("sys_uptime")))
        elif name == "1.3.6.1.6.3.1.1.4.1.0":
            if a.get("trap_oid") != val: bad.append(("trap oid", val, a.get("trap_oid")))
        elif mine.get(name) != val:
            bad.append((name, val, mine.get(name)))
    if user is not None and a.get("engine_id") != find(snmp, "snmp.msgAuthoritativeEngineID").replace(":", ""):
        bad.append(("engine id", a.get("engine_id")))
    matched += 1
print(f"  tshark: {len(pkts)} datagrams, {matched} traps/informs compared in clear, {acks} responses from the engine")
for b in bad: print("  differs:", b)
sys.exit(0 if not bad and matched >= 5 and acks >= 2 else 1)
PY

# 5. The capture through `outpost replay` (numeric names this time): the same notifications.
cat > "$TMP/replay.yaml" <<YAML
engine: {data_dir: $TMP/replay-data}
$CREDS
plugins:
  snmp_trap:
$(plugin_settings "    builtin_names: false")
sinks:
  out: {plugin: file, path: $TMP/replay.jsonl}
YAML
"$OUTPOST" replay --plugin snmp_trap -c "$TMP/replay.yaml" --port "$PORT" "$TMP/cap.pcap" 2> "$TMP/replay.err" || true
check "outpost replay gives the same 7 notifications, with numeric names" $PY - "$TMP/replay.jsonl" "$TMP/events.json" <<'PY'
import json, sys
rep = [json.loads(l) for l in open(sys.argv[1])]
rep = [r for r in rep if r.get("type") == "event"]
live = [json.loads(l) for l in open(sys.argv[2]) if l.strip()]
key = lambda a: (a.get("version"), a.get("pdu"), a.get("request_id"), a.get("user"), a.get("trap_oid"))
got = sorted(key(r["attributes"]) for r in rep)
want = sorted(key(e["attributes"]) for e in live)
numeric = all(r["attributes"]["trap_name"] == r["attributes"]["trap_oid"] for r in rep)
print(f"  replay: {len(rep)} events; live: {len(live)}")
sys.exit(0 if got == want and numeric and len(rep) == 7 else 1)
PY

# 6. The snmp poller and snmp_trap in one engine, each created first once: MIB names still
# come out (the poller's net-snmp initialisation does not hide them, nor ours its settings),
# the poller still polls snmpd, and snmpd's own coldStart trap arrives.
udp_port() { $PY -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
ORDERS="poller-first trap-first"
[ -f "$BUILD/plugins/outpost_snmp.so" ] || { echo "skipped: the snmp poller is not built"; ORDERS=; }
for order in $ORDERS; do
  W=$TMP/$order; mkdir -p "$W"
  TRAPPORT=$(udp_port); AGENTPORT=$(udp_port)
  POLLER="  snmp: {request_timeout: 500ms, retries: 1}"
  TRAPS="  snmp_trap: {mib_dirs: [$MIBDIR], communities: [public], stats_interval: 1s}"
  if [ $order = poller-first ]; then FIRST=$POLLER SECOND=$TRAPS; else FIRST=$TRAPS SECOND=$POLLER; fi
  cat > "$W/run.yaml" <<YAML
engine: {data_dir: $W/data, summary_interval: 0}
plugins:
$FIRST
$SECOND
sinks:
  db: {plugin: sqlite, path: $W/data/outpost.db}
listeners:
  - {plugin: snmp_trap, udp: "127.0.0.1:$TRAPPORT"}
inventory:
  devices:
    - name: agent
      address: 127.0.0.1
      monitors:
        - {plugin: snmp, port: $AGENTPORT, community: public, interval: 1s, timeout: 1s}
YAML
  "$OUTPOST" run -c "$W/run.yaml" > "$W/engine.out" 2> "$W/engine.err" &
  EP=$!; PIDS+=($EP)
  for _ in $(seq 100); do grep -q "listening on udp://127.0.0.1:$TRAPPORT" "$W/engine.err" && break; sleep 0.05; done
  cat > "$W/snmpd.conf" <<CONF
rocommunity public 127.0.0.1
trap2sink 127.0.0.1:$TRAPPORT public
CONF
  SNMP_PERSISTENT_DIR=$W/snmpd snmpd -f -Lf "$W/snmpd.log" -C -c "$W/snmpd.conf" -p "$W/snmpd.pid" udp:127.0.0.1:$AGENTPORT &
  SP=$!; PIDS+=($SP)
  sleep 2.5
  snmptrap -v2c -c public udp:127.0.0.1:$TRAPPORT '' $M.0.1 $M.1.2.0 i 2
  sleep 1
  kill -TERM $SP 2>/dev/null; wait $SP 2>/dev/null || true
  sleep 0.3
  kill -TERM $EP; ERC=0; wait $EP || ERC=$?
  check "$order: the engine stopped cleanly (exit $ERC), no sanitizer report" \
    bash -c "[ $ERC = 0 ] && ! grep -q Sanitizer '$W/engine.err'"
  first=$(grep -o "plugin instance '[a-z_]*' started" "$W/engine.err" | head -1)
  check "$order: the engine created $first" \
    test "$first" = "plugin instance '$([ $order = poller-first ] && echo snmp || echo snmp_trap)' started"
  "$OUTPOST" query --db "$W/data/outpost.db" events --json --limit 1000 > "$W/events.json"
  "$OUTPOST" query --db "$W/data/outpost.db" samples --name snmp_up --json --limit 1000 > "$W/up.json"
  check "$order: a trap named by the test MIB" pycheck \
    'any(r["attributes"].get("trap_name") == "OUTPOST-TEST-MIB::outpostTestPortDown" and r["attributes"].get("OUTPOST-TEST-MIB::outpostTestPortState.0") == "integer: down(2)" for r in rows)' < "$W/events.json"
  check "$order: snmpd's coldStart trap arrived" pycheck \
    'any(r["attributes"].get("trap_name") == "SNMPv2-MIB::coldStart" and r["attributes"].get("version") == "2c" for r in rows)' < "$W/events.json"
  check "$order: the poller polled snmpd (snmp_up = 1)" pycheck 'any(r["value"] == 1 for r in rows)' < "$W/up.json"
done
finish
