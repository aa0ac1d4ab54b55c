#!/usr/bin/env bash
# outpost replay: a capture written by scapy (an independent pcap writer) is fed through the
# same listener hook the sockets use; what the listener saw is compared with what scapy itself
# reads back from the file. Non-UDP packets, later fragments and a broken header are skipped
# and counted; a file that is not pcap is refused with a clear message.
source "$(dirname "$0")/lib.sh"

/usr/bin/python3 - "$TMP/cap.pcap" <<'PY'
import sys
from scapy.all import Ether, Dot1Q, IP, IPv6, UDP, TCP, Raw, wrpcap
pkts = [
    Ether()/IP(src="192.0.2.1", dst="192.0.2.9")/UDP(sport=5001, dport=2055)/Raw(b"plain-v4"),
    Ether()/Dot1Q(vlan=7)/IP(src="192.0.2.2", dst="192.0.2.9")/UDP(sport=5002, dport=2055)/Raw(b"vlan-tagged"),
    Ether()/Dot1Q(vlan=7)/Dot1Q(vlan=8)/IP(src="192.0.2.3", dst="192.0.2.9")/UDP(sport=5003, dport=2055)/Raw(b"qinq"),
    Ether()/IPv6(src="2001:db8::1", dst="2001:db8::9")/UDP(sport=5004, dport=2055)/Raw(b"over-v6"),
    Ether()/IP(src="192.0.2.4", dst="192.0.2.9")/UDP(sport=5005, dport=9999)/Raw(b"other-port"),
    Ether()/IP(src="192.0.2.5", dst="192.0.2.9")/TCP(sport=5006, dport=2055)/Raw(b"not-udp"),
    Ether()/IP(src="192.0.2.6", dst="192.0.2.9", frag=10, proto=17)/Raw(b"later-fragment"),
]
bad = Ether()/IP(src="192.0.2.7", dst="192.0.2.9")/UDP(sport=5007, dport=2055, len=200)/Raw(b"short")
pkts.append(bad)
wrpcap(sys.argv[1], pkts)
PY
# What an independent reader (scapy) finds: UDP payloads to port 2055 with a consistent length.
/usr/bin/python3 - "$TMP/cap.pcap" > "$TMP/expected.txt" <<'PY'
import sys
from scapy.all import rdpcap, UDP
for p in rdpcap(sys.argv[1]):
    if UDP in p and p[UDP].dport == 2055 and p[UDP].len == 8 + len(bytes(p[UDP].payload)):
        print(bytes(p[UDP].payload).decode())
PY
cat > "$TMP/replay.yaml" <<YAML
engine: {data_dir: $TMP/data}
sinks:
  out: {plugin: file, path: $TMP/out.jsonl}
YAML
"$OUTPOST" replay --plugin echo_listener --plugin-dir "$BUILD/test-plugins" -c "$TMP/replay.yaml" \
  --port 2055 "$TMP/cap.pcap" 2> "$TMP/replay.err"
cat "$TMP/replay.err"
/usr/bin/python3 - "$TMP/out.jsonl" > "$TMP/got.txt" <<'PY'
import json, sys
for line in open(sys.argv[1]):
    r = json.loads(line)
    if r.get("type") == "event" and r.get("kind") == "datagram":
        print(r["message"])
PY
check "replay saw exactly what scapy reads (4 datagrams)" diff <(sort "$TMP/expected.txt") <(sort "$TMP/got.txt")
check "IPv6 sources survive" grep -q '"source":"2001:db8::1"' "$TMP/out.jsonl"
check "the summary counts records, UDP, others and malformed" \
  grep -q "replayed 4 datagrams into echo_listener (8 records, 5 UDP, 2 other, 1 malformed" "$TMP/replay.err"
printf 'this is not a capture at all' > "$TMP/junk.pcap"
set +e
"$OUTPOST" replay --plugin echo_listener --plugin-dir "$BUILD/test-plugins" -c "$TMP/replay.yaml" "$TMP/junk.pcap" 2> "$TMP/junk.err"
rc=$?
set -e
check "a file that is not pcap is refused (exit 1)" test "$rc" = 1
check "with a clear message" grep -q "not a pcap file (bad magic)" "$TMP/junk.err"
finish
