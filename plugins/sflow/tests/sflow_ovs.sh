#!/usr/bin/env bash
# sflow against a real switch: Open vSwitch's own sFlow agent (counter samples every second, flow
# samples at 1/1) on a private bridge. Everything runs inside a network namespace the test makes
# (unshare --net): a private ovsdb-server + ovs-vswitchd (userspace datapath, run and db files
# under $TMP), two more namespaces as hosts on veth ports of the bridge, the engine's listener on
# that namespace's loopback. Known traffic (ICMP, UDP, one short TCP connection) crosses the
# bridge; the engine's sflow_if_* counters (sqlite sink) and flow records (file sink) are checked
# against the traffic sent, against the switch's own port counters (ovs-ofctl dump-ports, the
# kernel's link statistics), and against tshark's decode of the same datagrams (captured by
# tcpdump). Needs root; about 10 s. usage: sflow_ovs.sh BUILD_DIR
PY=/usr/bin/python3
if [ -z "${OUTPOST_OVS_NETNS:-}" ]; then
  for t in ovsdb-tool ovsdb-server ovs-vswitchd ovs-vsctl ovs-ofctl ovs-appctl tshark tcpdump unshare nsenter ethtool; do
    command -v $t > /dev/null || { echo "SKIP: $t not installed (scripts/deps/sflow.list)"; exit 77; }
  done
  [ "$(id -u)" = 0 ] || { echo "SKIP: needs root (network namespaces, veth pairs, ovs-vswitchd)"; exit 77; }
  if ! err=$(unshare --net true 2>&1); then
    echo "SKIP: cannot make a network namespace: unshare --net: $err"; exit 77
  fi
  # The userspace datapath opens its bridge port as a tap device (the tap itself is made in the
  # test's namespace); without /dev/net/tun ovs-vswitchd cannot create the bridge at all.
  if [ ! -c /dev/net/tun ]; then
    mkdir -p /dev/net && mknod -m 600 /dev/net/tun c 10 200 ||
      { echo "SKIP: no /dev/net/tun, and mknod failed: the userspace datapath needs it"; exit 77; }
  fi
  OUTPOST_OVS_NETNS=1 exec unshare --net -- bash "$0" "$@"
fi

# From here on in the test's own network namespace: nothing below touches the host's interfaces.
ip link set lo up
sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1  # no ND/MLD noise
source "$(dirname "$0")/../../../tests/integration/lib.sh"
O=$TMP/ovs
mkdir -p "$O"
export OVS_RUNDIR=$O OVS_DBDIR=$O OVS_LOGDIR=$O OVS_SYSCONFDIR=$O  # never the system's instance
VSCTL=(ovs-vsctl --db="unix:$O/db.sock" --timeout=10)
teardown() {
  local rc=$?
  [ "$rc" = 0 ] || { echo "--- ovs-vswitchd.log (tail)"; tail -n 20 "$O/ovs-vswitchd.log" 2>/dev/null || true; }
  if [ -S "$O/ovs-vswitchd.ctl" ]; then timeout 5 ovs-appctl -t "$O/ovs-vswitchd.ctl" exit --cleanup > /dev/null 2>&1 || true; fi
  if [ -S "$O/ovsdb-server.ctl" ]; then timeout 5 ovs-appctl -t "$O/ovsdb-server.ctl" exit > /dev/null 2>&1 || true; fi
  [ -z "${OUTPOST_KEEP_TMP:-}" ] || cp -r "$TMP" "$OUTPOST_KEEP_TMP"
  cleanup
  exit "$rc"
}
trap teardown EXIT
trap 'exit 143' TERM INT
die() { echo "FAIL: $*"; exit 1; }
# wait_for TENTHS COMMAND...: polls COMMAND every 0.1 s, at most TENTHS times.
wait_for() { local n=$1; shift; for _ in $(seq "$n"); do "$@" > /dev/null 2>&1 && return 0; sleep 0.1; done; return 1; }
T0=$(date +%s%N)

# 1. The switch: ovsdb-server, then ovs-vswitchd, in the foreground as children of this script.
# The kernel datapath module is not used: it is often absent (it is here), and the userspace
# datapath runs the same sFlow agent (ofproto-dpif-sflow) on AF_PACKET sockets.
ovsdb-tool create "$O/conf.db" /usr/share/openvswitch/vswitch.ovsschema
ovsdb-server "$O/conf.db" --remote="punix:$O/db.sock" --pidfile="$O/ovsdb-server.pid" \
  --unixctl="$O/ovsdb-server.ctl" --log-file="$O/ovsdb-server.log" --no-chdir -vconsole:off 2>> "$O/stderr" &
PIDS+=($!)
wait_for 50 test -S "$O/db.sock" || die "ovsdb-server did not open $O/db.sock"
"${VSCTL[@]}" --no-wait init
ovs-vswitchd "unix:$O/db.sock" --pidfile="$O/ovs-vswitchd.pid" --unixctl="$O/ovs-vswitchd.ctl" \
  --log-file="$O/ovs-vswitchd.log" --no-chdir -vconsole:off 2>> "$O/stderr" &
PIDS+=($!)
wait_for 50 test -S "$O/ovs-vswitchd.ctl" || die "ovs-vswitchd did not start"
"${VSCTL[@]}" add-br br0 -- set bridge br0 datapath_type=netdev

# 2. Two hosts, each a namespace held by a sleeping process (it goes away with the process), on a
# veth pair whose other end is a port of br0. Fixed MACs and static ARP entries: the only packets
# on the wire are the ones this test sends. Transmit checksum offload off on the hosts' veths:
# the userspace datapath forwards what its packet socket reads, and a TCP/UDP checksum left to
# the "hardware" would arrive unfinished (and be dropped) on the other host.
own_netns() { [ "$(readlink /proc/$1/ns/net)" != "$(readlink /proc/$$/ns/net)" ]; }
declare -A NS
for i in 1 2; do
  unshare --net sleep 300 < /dev/null > /dev/null 2>&1 &
  NS[$i]=$!; PIDS+=(${NS[$i]})
  wait_for 50 own_netns ${NS[$i]} || die "host $i: no namespace of its own"
  nsenter -t ${NS[$i]} -n sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
  ip link add ovsp$i type veth peer name veth0 netns ${NS[$i]}
  nsenter -t ${NS[$i]} -n sh -ec "ip link set lo up; ip link set veth0 address 02:00:00:00:00:0$i
    ip addr add 10.200.0.$i/24 dev veth0; ip link set veth0 up
    ethtool -K veth0 tx off > /dev/null"
  ip link set ovsp$i up
  "${VSCTL[@]}" add-port br0 ovsp$i
done
nsenter -t ${NS[1]} -n ip neigh replace 10.200.0.2 lladdr 02:00:00:00:00:02 dev veth0 nud permanent
nsenter -t ${NS[2]} -n ip neigh replace 10.200.0.1 lladdr 02:00:00:00:00:01 dev veth0 nud permanent
# ovs-vswitchd fills in ifindex and ofport as it takes the ports up; wait for them.
has_index() { "${VSCTL[@]}" get interface "$1" ifindex ofport | { read -r a; read -r b; [ "${a:-0}" -gt 0 ] && [ "${b:--1}" -ge 0 ]; }; }
for p in ovsp1 ovsp2 br0; do wait_for 50 has_index $p || die "ovs-vswitchd gave $p no ifindex/ofport"; done
IF1=$("${VSCTL[@]}" get interface ovsp1 ifindex)
IF2=$("${VSCTL[@]}" get interface ovsp2 ifindex)
IFBR=$("${VSCTL[@]}" get interface br0 ifindex)
OF1=$("${VSCTL[@]}" get interface ovsp1 ofport)
OF2=$("${VSCTL[@]}" get interface ovsp2 ofport)
# (/sys shows the host's namespace here, so the kernel's view comes from netlink: ip -j.)
kstat() { ip -j -s link show dev "$1" | $PY -c 'import json, sys; l = json.load(sys.stdin)[0]; s = l["stats64"]
print(l["ifindex"], s["rx"]["bytes"], s["rx"]["packets"], s["tx"]["bytes"], s["tx"]["packets"])'; }
check "OVS and the kernel agree on the ports' ifIndex ($IF1, $IF2)" \
  test "$IF1 $IF2" = "$(kstat ovsp1 | cut -d' ' -f1) $(kstat ovsp2 | cut -d' ' -f1)"

# 3. The engine (sqlite sink for the metrics, file sink for the flow records with their sampling
# rate), a capture of its port, then sFlow on the bridge.
cat > "$TMP/run.yaml" <<YAML
engine: {data_dir: $TMP/data, summary_interval: 0, pipeline: {flush_interval: 200ms}}
plugins:
  sflow: {stats_interval: 0}
sinks:
  db: {plugin: sqlite, path: "\${data_dir}/outpost.db"}
  out: {plugin: file, path: $TMP/out.jsonl}
listeners:
  - {plugin: sflow, udp: "127.0.0.1:0"}
YAML
start_engine "$TMP/run.yaml" sflow
DB=$TMP/data/outpost.db
MARK=$(free_port)  # a marker sent there shows when the capture holds everything before it
tcpdump -i lo -n -U -w "$TMP/cap.pcap" "udp port $PORT or udp port $MARK" 2> "$TMP/tcpdump.err" &
TD=$!; PIDS+=($TD)
wait_for 50 grep -q "listening on" "$TMP/tcpdump.err" || die "tcpdump did not start: $(cat "$TMP/tcpdump.err")"
"${VSCTL[@]}" -- --id=@s create sflow agent=lo target="\"127.0.0.1:$PORT\"" header=128 sampling=1 \
  polling=1 -- set bridge br0 sflow=@s > /dev/null

# samples_after NS IFINDEX...: true once every IFINDEX has an sflow_if_in_octets sample received
# after NS (ns since the epoch, the clock the engine stamps datagrams with).
samples_after() {
  query "$DB" samples --name sflow_if_in_octets | $PY -c '
import json, sys
t, want = int(sys.argv[1]), set(sys.argv[2:])
seen = {r["labels"]["ifindex"] for r in map(json.loads, sys.stdin) if r["time_ns"] > t}
sys.exit(0 if want <= seen else 1)' "$@"
}
wait_for 80 samples_after 0 "$IF1" "$IF2" || die "no counter sample of ports $IF1 and $IF2 within 8 s"
T=$(date +%s%N)
wait_for 30 samples_after "$T" "$IF1" "$IF2" || die "no second counter sample of ports $IF1 and $IF2"
echo "setup done after $(( ($(date +%s%N) - T0) / 1000000 )) ms"

# 4. Known traffic from host 1 to host 2: 20 pings of 1000 bytes, 100 UDP datagrams of 400 bytes
# (10.200.0.1:5001 -> 10.200.0.2:5002), one TCP connection (10.200.0.1:40000 -> :7000) that sends
# 1000 bytes and reads them echoed back. Host 2 runs the UDP and TCP receivers.
T_START=$(date +%s%N)
nsenter -t ${NS[2]} -n $PY - "$TMP/recv.json" > "$TMP/recv.log" 2>&1 <<'PY' &
import json, select, socket, sys, time
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind(("10.200.0.2", 5002))
t = socket.socket(); t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
t.bind(("10.200.0.2", 7000)); t.listen(1)
open(sys.argv[1] + ".ready", "w").close()
udp, tcp, end = 0, 0, time.time() + 8
while time.time() < end and not (udp == 100 and tcp):
    r, _, _ = select.select([u, t], [], [], 0.2)
    if u in r: u.recv(2048); udp += 1
    if t in r:
        c, _ = t.accept(); c.settimeout(5); data = b"."
        while data and len(data) < 1001: d = c.recv(4096); data = data + d if d else b""
        c.sendall(data[1:]); c.shutdown(socket.SHUT_WR); c.recv(1); c.close(); tcp = len(data) - 1
json.dump({"udp": udp, "tcp": tcp}, open(sys.argv[1], "w"))
PY
RECV=$!; PIDS+=($RECV)
wait_for 50 test -e "$TMP/recv.json.ready" || die "the receiver in host 2 did not start"
nsenter -t ${NS[1]} -n ping -q -n -c 20 -i 0.02 -s 1000 -W 2 10.200.0.2 > "$TMP/ping.txt" 2>&1 || true
check "host 1 sent the UDP datagrams and got its TCP bytes echoed" nsenter -t ${NS[1]} -n $PY - <<'PY'
import socket, time
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind(("10.200.0.1", 5001))
for i in range(100):
    u.sendto(bytes([i]) * 400, ("10.200.0.2", 5002)); time.sleep(0.002)
t = socket.socket(); t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
t.bind(("10.200.0.1", 40000)); t.settimeout(5); t.connect(("10.200.0.2", 7000))
t.sendall(b"t" * 1000); back = b""
while True:
    d = t.recv(4096)
    if not d: break
    back += d
t.close()
assert back == b"t" * 1000, len(back)
PY
wait $RECV || true
T_END=$(date +%s%N)
check "20 pings answered across the bridge" grep -q "20 packets transmitted, 20 received" "$TMP/ping.txt"
check "host 2 got 100 UDP datagrams and 1000 TCP bytes" grep -q '"udp": 100, "tcp": 1000' "$TMP/recv.json"

# 5. Quiet now: the switch's port counters, then wait for a counter sample of each port taken
# after them.
sleep 0.3
ovs-ofctl dump-ports br0 > "$TMP/dump-ports.txt"
for i in 1 2; do echo "ovsp$i $(kstat ovsp$i)"; done > "$TMP/kernel-stats.txt"
T_STATS=$(date +%s%N)
wait_for 80 samples_after "$T_STATS" "$IF1" "$IF2" || echo "no counter sample after the traffic within 8 s"
"${VSCTL[@]}" clear bridge br0 sflow
sleep 0.5
# tcpdump loses what it has not written when stopped: stop it only once a marker sent after the
# last sFlow datagram is in the file (on a busy machine the tail otherwise goes missing).
captured=0
for _ in $(seq 1 100); do
  printf 'outpost-capture-end' > "/dev/udp/127.0.0.1/$MARK"
  for _ in $(seq 1 5); do grep -qa outpost-capture-end "$TMP/cap.pcap" 2> /dev/null && captured=1 && break 2; sleep 0.02; done
done
[ "$captured" = 1 ] || echo "the capture never showed its end marker"
kill -INT $TD; wait $TD || true
tshark -n -r "$TMP/cap.pcap" -Y "udp.port == $PORT" -F pcap -w "$TMP/cap-sflow.pcap" 2>> "$TMP/tcpdump.err"
mv "$TMP/cap-sflow.pcap" "$TMP/cap.pcap"  # the sFlow datagrams alone
sleep 0.3
kill -TERM $ENGINE
set +e; wait $ENGINE; rc=$?; set -e
check "the engine stops cleanly" test "$rc" = 0

# 6. What each party saw, in one file: the engine's counter samples and flows, tshark's decode.
for n in in_octets in_ucast_pkts in_multicast_pkts in_broadcast_pkts in_discards in_errors \
         in_unknown_protos out_octets out_ucast_pkts out_multicast_pkts out_broadcast_pkts \
         out_discards out_errors speed oper_status admin_status; do
  query "$DB" samples --name sflow_if_$n
done > "$TMP/samples.jsonl"
# tshark 4.0 does not skip counter records it does not know by their length: on OVS's datagrams
# it reads OpenFlow port (0,1004), port name (0,1005) and application (0,2203/2207) records as
# garbage and marks the datagram malformed before reaching the generic interface counters. So it
# decodes a copy of the capture from which those records are cut (lengths and counts fixed; no
# value is touched): the framing is this script's, every field value tshark's.
$PY - "$TMP/cap.pcap" "$TMP/cap-tshark.pcap" > "$TMP/strip.txt" <<'PY'
import struct, sys
raw = open(sys.argv[1], "rb").read()
assert raw[:4] == b"\xd4\xc3\xb2\xa1" and struct.unpack("<I", raw[20:24])[0] == 1, "pcap, Ethernet"
out, pos, cut, kept = [raw[:24]], 24, {}, 0
while pos < len(raw):
    ts, tu, incl, orig = struct.unpack("<IIII", raw[pos:pos + 16]); pkt = raw[pos + 16:pos + 16 + incl]
    pos += 16 + incl
    ihl = (pkt[14] & 15) * 4; d = pkt[14 + ihl + 8:]  # Ethernet, IPv4, UDP, then sFlow
    off = 8 + (4 if struct.unpack(">I", d[4:8])[0] == 1 else 16)
    head, n = d[:off + 12], struct.unpack(">I", d[off + 12:off + 16])[0]
    off += 16; samples = []
    for _ in range(n):
        fmt, ln = struct.unpack(">II", d[off:off + 8]); body = d[off + 8:off + 8 + ln]; off += 8 + ln
        if fmt in (2, 4):  # counter sample: keep generic (1) and Ethernet (2) records only
            hl = 12 if fmt == 2 else 16
            nrec, b, recs = struct.unpack(">I", body[hl - 4:hl])[0], hl, []
            for _ in range(nrec):
                rf, rl = struct.unpack(">II", body[b:b + 8])
                if rf in (1, 2): recs.append(body[b:b + 8 + rl]); kept += 1
                else: cut[rf] = cut.get(rf, 0) + 1
                b += 8 + rl
            if not recs: continue
            body = body[:hl - 4] + struct.pack(">I", len(recs)) + b"".join(recs)
        samples.append(struct.pack(">II", fmt, len(body)) + body)
    sf = head + struct.pack(">I", len(samples)) + b"".join(samples)
    ip = bytearray(pkt[14:14 + ihl]); ip[2:4] = struct.pack(">H", ihl + 8 + len(sf)); ip[10:12] = b"\0\0"
    s = sum(struct.unpack(f">{ihl // 2}H", ip)); s = (s & 0xFFFF) + (s >> 16); s += s >> 16
    ip[10:12] = struct.pack(">H", ~s & 0xFFFF)
    udp = pkt[14 + ihl:14 + ihl + 4] + struct.pack(">HH", 8 + len(sf), 0)  # UDP checksum: none
    new = pkt[:14] + bytes(ip) + udp + sf
    out.append(struct.pack("<IIII", ts, tu, len(new), len(new)) + new)
open(sys.argv[2], "wb").write(b"".join(out))
print(f"kept {kept} generic/ethernet counter records; cut {cut}")
PY
cat "$TMP/strip.txt"
tshark -n -r "$TMP/cap-tshark.pcap" -d "udp.port==$PORT,sflow" -T fields -E separator=/t -E occurrence=a \
  -e sflow_245.ifindex -e sflow_245.ifspeed -e sflow_245.ifadmin_status -e sflow_245.ifoper_status \
  -e sflow_245.ifinoct -e sflow_245.ifinpkt -e sflow_245.ifinmcast -e sflow_245.ifinbcast \
  -e sflow_245.ifindisc -e sflow_245.ifinerr -e sflow_245.ifinunk -e sflow_245.ifoutoct \
  -e sflow_245.ifoutpkt -e sflow_245.ifoutmcast -e sflow_245.ifoutbcast -e sflow_245.ifoutdisc \
  -e sflow_245.ifouterr -e sflow.flow_sample.input_interface -e sflow.flow_sample.output_interface_format \
  -e sflow.flow_sample.output_interface -e sflow_245.header.frame_length \
  -e sflow.flow_sample.sampling_rate -e ip.src -e ip.dst -e ip.proto -e _ws.malformed \
  > "$TMP/ts.tsv" 2> "$TMP/tshark.err"
tshark -n -r "$TMP/cap.pcap" -d "udp.port==$PORT,sflow" -T fields -e sflow_245.agent -e _ws.malformed \
  > "$TMP/ts-orig.tsv" 2>> "$TMP/tshark.err"

$PY - "$TMP" "$IF1" "$IF2" "$IFBR" "$T_START" "$T_END" "$T_STATS" "$OF1" "$OF2" > "$TMP/facts.json" <<'PY'
import json, re, sys
tmp, if1, if2, ifbr, t_start, t_end, t_stats = sys.argv[1], *sys.argv[2:5], *map(int, sys.argv[5:8])
ofport = {sys.argv[8]: "ovsp1", sys.argv[9]: "ovsp2"}
series = {}  # (ifindex, metric) -> [(time, value)]
for line in open(f"{tmp}/samples.jsonl"):
    r = json.loads(line)
    if r["labels"].get("agent") != "127.0.0.1": continue
    series.setdefault(r["labels"]["ifindex"], {}).setdefault(r["name"][9:], []).append((r["time_ns"], r["value"]))
for per in series.values():
    for v in per.values(): v.sort()
ts_names = ["ifindex", "speed", "admin_status", "oper_status", "in_octets", "in_ucast_pkts",
            "in_multicast_pkts", "in_broadcast_pkts", "in_discards", "in_errors", "in_unknown_protos",
            "out_octets", "out_ucast_pkts", "out_multicast_pkts", "out_broadcast_pkts", "out_discards",
            "out_errors"]
ts_counters, ts_flows, bad, ts_malformed = [], [], [], 0
for line in open(f"{tmp}/ts.tsv"):
    cols = [c.split(",") if c else [] for c in line.rstrip("\n").split("\t")]
    counters, fl, ts_malformed = cols[:17], cols[17:25], ts_malformed + bool(cols[25:] and cols[25])
    fl[5:8] = [c[1:] for c in fl[5:8]]  # ip.*: the first is the datagram's own IP header
    if len({len(c) for c in counters}) != 1 or len({len(c) for c in fl}) != 1: bad.append(line); continue
    for rec in zip(*counters): ts_counters.append(dict(zip(ts_names, map(int, rec))))
    for i, of, o, fr, rate, s, d, p in zip(*fl):
        ts_flows.append({"in": int(i, 0), "out": int(o, 0) if int(of, 0) == 0 else 0, "frame": int(fr),
                         "rate": int(rate), "src": s, "dst": d, "proto": int(p)})
flows, metrics = [], []
for line in open(f"{tmp}/out.jsonl"):
    r = json.loads(line)
    if r.get("type") == "flow": flows.append(r)
    elif r.get("type") == "metric" and not r["name"].startswith("sflow_if_"): metrics.append(r)
ports = {}
txt = open(f"{tmp}/dump-ports.txt").read()
for m in re.finditer(r'port\s+"?(\w+)"?:\s*rx pkts=(\d+), bytes=(\d+).*?\n\s*tx pkts=(\d+), bytes=(\d+)', txt):
    ports[ofport.get(m[1], m[1])] = {"rx_packets": int(m[2]), "rx_bytes": int(m[3]), "tx_packets": int(m[4]), "tx_bytes": int(m[5])}
kernel = {}
for line in open(f"{tmp}/kernel-stats.txt"):
    dev, _, *v = line.split()
    kernel[dev] = dict(zip(("rx_bytes", "rx_packets", "tx_bytes", "tx_packets"), map(int, v)))
orig = [l.rstrip("\n").split("\t") for l in open(f"{tmp}/ts-orig.tsv")]
json.dump({"if1": if1, "if2": if2, "ifbr": ifbr, "t_start": t_start, "t_end": t_end, "t_stats": t_stats,
           "series": series, "ts_counters": ts_counters, "ts_flows": ts_flows, "ts_bad_lines": bad, "ts_malformed": ts_malformed,
           "ts_datagrams": len(orig), "ts_orig_malformed": sum(1 for o in orig if len(o) > 1 and o[1]),
           "flows": flows, "metrics": metrics, "ports": ports, "kernel": kernel,
           }, sys.stdout)
PY
# facts < CODE: runs CODE (python) after this prelude, F = the facts above; CODE prints what
# differs and exits 1.
F_LIB='
import json, sys
F = json.load(open(sys.argv[1]))
IF1, IF2 = F["if1"], F["if2"]
def S(i, m): return F["series"].get(i, {}).get(m, [])
ok = True
def fail(*a):
    global ok
    print("  ", *a); ok = False
# The traffic, as frames on the veth (no FCS): Ethernet 14 + IPv4 20 + ICMP/UDP 8 + payload.
PING, UDP = 20 * (14 + 20 + 8 + 1000), 100 * (14 + 20 + 8 + 400)
'
facts() { { printf '%s\n' "$F_LIB"; cat; } | $PY - "$TMP/facts.json"; }

# 7. The checks.
check "the engine has counter samples for both OVS ports, and only for the bridge's ports" facts <<'PY'
have = set(F["series"]); want = {IF1, IF2}
print(f"   ifindex seen: {sorted(have)}; ports {IF1}, {IF2}, bridge {F['ifbr']}; "
      f"samples of {IF1}: {len(S(IF1, 'in_octets'))}, of {IF2}: {len(S(IF2, 'in_octets'))}")
if not want <= have: fail("missing", want - have)
if not have <= want | {F['ifbr']}: fail("unexpected", have - want - {F['ifbr']})
for i in want:
    if len(S(i, "in_octets")) < 3: fail(i, "fewer than 3 counter samples")
    for m in ("speed", "oper_status", "admin_status", "in_ucast_pkts", "out_octets", "out_ucast_pkts"):
        if len(S(i, m)) != len(S(i, "in_octets")): fail(i, m, "has", len(S(i, m)), "samples")
    if S(i, "oper_status")[-1][1] != 1 or S(i, "admin_status")[-1][1] != 1: fail(i, "not up")
    if S(i, "speed")[-1][1] <= 0: fail(i, "speed", S(i, "speed")[-1][1])
sys.exit(not ok)
PY

check "every octet and packet counter is monotonic from sample to sample" facts <<'PY'
for i, per in F["series"].items():
    for m, v in per.items():
        if m in ("speed", "oper_status", "admin_status"): continue
        for (t0, a), (t1, b) in zip(v, v[1:]):
            if b < a: fail(f"ifindex {i} {m}: {a} at {t0} then {b} at {t1}")
sys.exit(not ok)
PY

check "counters OVS does not keep (-1) are left out, not stored as 4294967295" facts <<'PY'
unk = ("in_broadcast_pkts", "in_unknown_protos", "out_multicast_pkts", "out_broadcast_pkts")
for i, per in F["series"].items():
    for m, v in per.items():
        if any(x == 4294967295 for _, x in v): fail(f"ifindex {i} {m} stored as 4294967295")
        if m in unk: fail(f"ifindex {i} {m} present: {v[:3]}")
ts = [c for c in F["ts_counters"] if str(c["ifindex"]) in (IF1, IF2)]
if not ts or any(c[m] != 4294967295 for c in ts for m in unk): fail("tshark does not show them as 2^32-1")
sys.exit(not ok)
PY

check "counters grew by at least the traffic sent (baseline before it, last sample after it)" facts <<'PY'
def delta(i, m):
    v = S(i, m); before = [x for t, x in v if t < F["t_start"]]
    return v[-1][1] - before[-1] if before and v[-1][0] > F["t_stats"] else None
# ovsp1 receives from host 1 what it sends and transmits to it what host 2 sends back, and so on.
need = {(IF1, "in_octets"): PING + UDP, (IF1, "in_ucast_pkts"): 20 + 100 + 4,
        (IF1, "out_octets"): PING, (IF1, "out_ucast_pkts"): 20 + 3,
        (IF2, "in_octets"): PING, (IF2, "in_ucast_pkts"): 20 + 3,
        (IF2, "out_octets"): PING + UDP, (IF2, "out_ucast_pkts"): 20 + 100 + 4}
for (i, m), n in need.items():
    d = delta(i, m); print(f"   ifindex {i} {m}: +{d} (sent at least {n})")
    if d is None or d < n: fail(f"ifindex {i} {m}: grew {d}, less than {n}")
sys.exit(not ok)
PY

check "the last counter samples equal ovs-ofctl dump-ports and the kernel's port statistics" facts <<'PY'
for dev, i in (("ovsp1", IF1), ("ovsp2", IF2)):
    mine = {"rx_bytes": S(i, "in_octets")[-1][1], "rx_packets": S(i, "in_ucast_pkts")[-1][1],
            "tx_bytes": S(i, "out_octets")[-1][1], "tx_packets": S(i, "out_ucast_pkts")[-1][1]}
    print(f"   {dev}: engine {mine}")
    for name, other in (("dump-ports", F["ports"].get(dev)), ("the kernel", F["kernel"].get(dev))):
        if other != mine: fail(f"{dev}: {name} says {other}")
sys.exit(not ok)
PY

check "tshark decodes the same counter values, record for record" facts <<'PY'
if F["ts_bad_lines"]: fail("tshark fields not aligned:", F["ts_bad_lines"][:2])
if F["ts_malformed"]: fail(F["ts_malformed"], "datagrams malformed to tshark even without the records it cannot skip")
mine, theirs = {}, {}
names = [m for m in F["ts_counters"][0] if m != "ifindex"] if F["ts_counters"] else []
for c in F["ts_counters"]:
    for m in names:
        if c[m] != 4294967295: theirs.setdefault((str(c["ifindex"]), m), []).append(c[m])
for i, per in F["series"].items():
    for m, v in per.items(): mine[(i, m)] = [x for _, x in v]
n = sum(len(v) for v in theirs.values())
print(f"   {len(F['ts_counters'])} generic counter records in tshark, {n} known values; engine {sum(len(v) for v in mine.values())}")
for k in sorted(set(mine) | set(theirs)):
    a, b = sorted(mine.get(k, [])), sorted(theirs.get(k, []))
    if a != b: fail(f"{k}: engine {a[:6]}... tshark {b[:6]}...")
sys.exit(not ok or n == 0)
PY

check "flow records: the traffic per 5-tuple, rate 1 applied, ports by ifIndex (sampling 1/1)" facts <<'PY'
got = {}
for f in F["flows"]:
    k = (f["src"], f["dst"], f["protocol"], f["src_port"], f["dst_port"])
    e = got.setdefault(k, {"packets": 0, "bytes": 0, "in": set(), "out": set(), "rate": set(), "agent": set()})
    e["packets"] += f["packets"]; e["bytes"] += f["bytes"]; e["in"].add(f["input_if"])
    e["out"].add(f["output_if"]); e["rate"].add(f["sampling_rate"]); e["agent"].add(f["exporter"])
a, b, i1, i2 = "10.200.0.1", "10.200.0.2", int(IF1), int(IF2)
# Frame lengths in flow samples include the 4-byte FCS. Exact for ICMP and UDP; TCP: present.
exact = {(a, b, 1, 0, 8 << 8): (20, 20 * 1046, i1, i2), (b, a, 1, 0, 0): (20, 20 * 1046, i2, i1),
         (a, b, 17, 5001, 5002): (100, 100 * 446, i1, i2)}
tcp = {(a, b, 6, 40000, 7000): (i1, i2), (b, a, 6, 7000, 40000): (i2, i1)}
for k, v in sorted(got.items(), key=str):
    print("  ", k, v["packets"], "pkts", v["bytes"], "bytes, in", v["in"], "out", v["out"], "rate", v["rate"])
for k, (p, n, i, o) in exact.items():
    e = got.get(k)
    if not e or (e["packets"], e["bytes"], e["in"]) != (p, n, {i}) or not e["out"] <= {o, 0}:
        fail(k, "expected", p, "pkts", n, "bytes, in", i, "out", o)
for k, (i, o) in tcp.items():
    e = got.get(k)
    if not e or e["packets"] < 3 or e["in"] != {i} or e["out"] != {o}: fail(k, "expected >= 3 pkts in", i, "out", o)
if set(got) - set(exact) - set(tcp): fail("other 5-tuples:", set(got) - set(exact) - set(tcp))
if any(f["sampling_rate"] != 1 or f["packets"] != 1 or f["exporter"] != "127.0.0.1" for f in F["flows"]):
    fail("a flow with rate != 1, packets != 1 or another agent")
# Flooded before MAC learning (output = several ports, written 0): at most the very first packet.
if sum(f["output_if"] == 0 for f in F["flows"]) > 1: fail("more than one flow with output_if 0")
sys.exit(not ok)
PY

check "tshark agrees on every flow sample: ports, frame length, rate, addresses" facts <<'PY'
mine = sorted((f["input_if"], f["output_if"], f["bytes"] // f["sampling_rate"], f["sampling_rate"],
               f["src"], f["dst"], f["protocol"]) for f in F["flows"])
theirs = sorted((t["in"], t["out"], t["frame"], t["rate"], t["src"], t["dst"], t["proto"]) for t in F["ts_flows"])
print(f"   engine {len(mine)} flow records, tshark {len(theirs)} flow samples")
if mine != theirs:
    d1 = [x for x in mine if x not in theirs]; d2 = [x for x in theirs if x not in mine]
    fail("engine only:", d1[:5], "tshark only:", d2[:5])
sys.exit(not ok or not mine)
PY

check "flow samples add up to the counters: every packet a port received was sampled once" facts <<'PY'
# Between the last counter sample before the traffic and the first one after it had settled, a
# port received exactly the packets and bytes of the flow samples whose input is that port (their
# frame lengths less the FCS). Flow samples travel in the same datagrams as the counters, before
# the counter samples of the poll that follows them.
for i in (IF1, IF2):
    oc, pk = S(i, "in_octets"), S(i, "in_ucast_pkts")
    t0 = max((t for t, _ in oc if t < F["t_start"]), default=None)
    t1 = min((t for t, _ in oc if t > F["t_stats"]), default=None)
    if t0 is None or t1 is None: fail(i, "no counter sample before or after the traffic"); continue
    d_oct = dict(oc)[t1] - dict(oc)[t0]; d_pk = dict(pk)[t1] - dict(pk)[t0]
    fl = [f for f in F["flows"] if f["input_if"] == int(i) and t0 < f["start_ns"] <= t1]
    n, b = len(fl), sum(f["bytes"] - 4 for f in fl)
    print(f"   ifindex {i}: counters +{d_pk} pkts +{d_oct} bytes; flow samples {n} pkts {b} bytes")
    if (n, b) != (d_pk, d_oct): fail(i, "differ")
sys.exit(not ok)
PY

check "the engine decoded every captured datagram, none dropped or lost" facts <<'PY'
m = {(x["name"], json.dumps(x["labels"], sort_keys=True)): x["value"] for x in F["metrics"]}
dg = m.get(("sflow_datagrams_total", "{}"))
bad = {k: v for k, v in m.items() if k[0] in ("sflow_dropped_total", "sflow_lost_datagrams") and v}
print(f"   engine {dg} datagrams, tshark {F['ts_datagrams']} captured ({F['ts_orig_malformed']} of them "
      f"malformed to tshark before cutting the records it cannot skip); drops/losses {bad}")
if dg != F["ts_datagrams"] or bad or not dg: fail("differ")
sys.exit(not ok)
PY
echo "ran $(( ($(date +%s%N) - T0) / 1000000 )) ms"
finish
