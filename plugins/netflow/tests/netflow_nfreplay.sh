#!/usr/bin/env bash
# nfdump's nfreplay as a real exporter: scapy writes two pcaps of known conversations (TCP, UDP,
# ICMP, ICMPv6; IPv4 and IPv6; some 5-tuples in both, so they make two flows), softflowd exports
# each as NetFlow v9 to nfcapd, which writes an nfdump file; nfreplay then sends that file's flows
# as v9 and as v5 to two `outpost run` netflow listeners (raw flows into the file sink) while
# tshark captures the datagrams. The checks compare, per 5-tuple (flows, packets, bytes, TCP
# flags) and per record (times, everything tshark decodes): the pcaps, `nfdump -r FILE -o json`,
# tshark's decode of what nfreplay sent, the live records, `outpost replay` of the capture, and
# the plugin's counters. Loopback only; about 6 s.
source "$(dirname "$0")/../../../tests/integration/lib.sh"
PY=/usr/bin/python3  # Debian's scapy is importable only there
for t in softflowd softflowctl nfcapd nfdump nfreplay tshark; do
  command -v "$t" >/dev/null || { echo "FAIL: $t not installed (scripts/deps/netflow.list)"; exit 1; }
done
udp_port() { "$PY" -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
export TZ=UTC  # nfdump prints times in local time

# --- 1. two engines (v9, v5) and tshark capturing what they receive; tshark takes ~3 s to start
declare -A EPORT EPID
for v in 9 5; do
  cat > "$TMP/live$v.yaml" <<YAML
engine:
  data_dir: $TMP/data$v
  summary_interval: 0
  self_metrics_interval: 1h
  pipeline: {flush_interval: 100ms, raw_flows: true}
plugins:
  netflow: {stats_interval: 200ms}
listeners:
  - {plugin: netflow, udp: "127.0.0.1:0"}
sinks:
  raw: {plugin: file, path: $TMP/live$v.jsonl}
YAML
  : > "$TMP/engine.err"  # start_engine reads it at once: it must exist before the engine opens it
  start_engine "$TMP/live$v.yaml" netflow
  mv "$TMP/engine.err" "$TMP/engine$v.err"  # the engine keeps writing to it
  EPORT[$v]=$PORT
  EPID[$v]=$ENGINE
  echo "engine for v$v listening on 127.0.0.1:$PORT"
done
MARK=$(udp_port)  # markers to a port nobody reads show when the capture runs and is complete
tshark -i lo -f "udp port ${EPORT[9]} or udp port ${EPORT[5]} or udp port $MARK" -F pcap -w "$TMP/sent.pcap" -q \
  > "$TMP/tshark.log" 2>&1 &
TSHARK=$!
PIDS+=($TSHARK)
marked() { # text: send it to the marker port until the capture holds it
  for _ in $(seq 1 100); do
    printf '%s' "$1" > "/dev/udp/127.0.0.1/$MARK"
    for _ in $(seq 1 5); do grep -qa "$1" "$TMP/sent.pcap" 2> /dev/null && return 0; sleep 0.02; done
  done
  cat "$TMP/tshark.log"
  echo "FAIL: tshark did not capture the marker '$1'"
  exit 1
}

# --- 2. the traffic: two pcaps, and what they contain (read back from the files) -------------
# The packets are 10 s in the future: softflowd gives v9 times relative to its own start, and
# nfcapd 1.7.1 does not unwrap a flow that began before the exporter did (it lands 2^32 ms late).
"$PY" - "$TMP" $(($(date +%s) + 10)) <<'PY'
import json, struct, sys
from collections import defaultdict
from scapy.all import ICMP, IP, TCP, UDP, Ether, IPv6, ICMPv6EchoReply, ICMPv6EchoRequest, Raw, rdpcap, wrpcap

out, start = sys.argv[1], float(sys.argv[2])


def pcap(name, t0, build):
    pkts, t = [], [t0]

    def add(l3):
        p = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02") / l3
        p = p.__class__(bytes(p))  # lengths and checksums filled in
        p.time = t[0]
        t[0] += 0.004
        pkts.append(p)

    build(add)
    wrpcap(f"{out}/{name}.pcap", pkts)


def tcp(add, ip, cli, srv, sport, dport, sizes):
    add(ip(src=cli, dst=srv) / TCP(sport=sport, dport=dport, flags="S", seq=1))
    add(ip(src=srv, dst=cli) / TCP(sport=dport, dport=sport, flags="SA", seq=1, ack=2))
    for i, n in enumerate(sizes):
        add(ip(src=cli, dst=srv) / TCP(sport=sport, dport=dport, flags="PA") / Raw(b"q" * n))
        add(ip(src=srv, dst=cli) / TCP(sport=dport, dport=sport, flags="A") / Raw(b"r" * (3 * n + i)))
    add(ip(src=cli, dst=srv) / TCP(sport=sport, dport=dport, flags="FA"))
    add(ip(src=srv, dst=cli) / TCP(sport=dport, dport=sport, flags="RA"))


def a(add):
    for i in range(4):
        tcp(add, IP, f"10.78.0.{i + 1}", f"10.78.1.{i + 1}", 31000 + i, [80, 443, 22, 25][i], [90 + 11 * k for k in range(i + 2)])
    tcp(add, IPv6, "2001:db8:78::1", "2001:db8:78::2", 1234, 443, [200, 700, 1200])
    for k in range(3):
        add(IP(src="10.78.0.20", dst="10.78.1.53") / UDP(sport=40000, dport=53) / Raw(b"d" * (30 + k)))
        add(IP(src="10.78.1.53", dst="10.78.0.20") / UDP(sport=53, dport=40000) / Raw(b"D" * (150 + k)))
    for k in range(4):
        add(IPv6(src="2001:db8:78::10", dst="2001:db8:78::11") / UDP(sport=5000, dport=6000) / Raw(b"y" * (60 + k)))
        add(IP(src="10.78.0.30", dst="10.78.1.30") / ICMP(type=8, id=7, seq=k) / Raw(b"p" * 56))
        add(IP(src="10.78.1.30", dst="10.78.0.30") / ICMP(type=0, id=7, seq=k) / Raw(b"p" * 56))
    add(IP(src="10.78.0.31", dst="10.78.1.31") / UDP(sport=33434, dport=33435) / Raw(b"t" * 12))
    add(IP(src="10.78.1.31", dst="10.78.0.31") / ICMP(type=3, code=3) / Raw(b"\0" * 28))
    for k in range(2):
        add(IPv6(src="2001:db8:78::20", dst="2001:db8:78::21") / ICMPv6EchoRequest(id=9, seq=k) / Raw(b"6" * 40))
        add(IPv6(src="2001:db8:78::21", dst="2001:db8:78::20") / ICMPv6EchoReply(id=9, seq=k) / Raw(b"6" * 40))


def b(add):  # later: the same 5-tuples again (a second flow each), and one new
    tcp(add, IP, "10.78.0.1", "10.78.1.1", 31000, 80, [500])
    for k in range(2):
        add(IP(src="10.78.0.20", dst="10.78.1.53") / UDP(sport=40000, dport=53) / Raw(b"e" * (70 + k)))
        add(IPv6(src="2001:db8:78::10", dst="2001:db8:78::11") / UDP(sport=5000, dport=6000) / Raw(b"z" * (900 + k)))
        add(IP(src="10.78.0.30", dst="10.78.1.30") / ICMP(type=8, id=8, seq=k) / Raw(b"P" * 100))
    add(IP(src="10.78.0.40", dst="10.78.1.40") / UDP(sport=123, dport=123) / Raw(b"n" * 48))


pcap("a", start, a)
pcap("b", start + 2, b)

# What the pcaps contain, per direction 5-tuple: packets, IP bytes, TCP flags, and in how many
# pcaps it occurs (softflowd makes one flow of it per pcap).
truth = defaultdict(lambda: {"flows": 0, "packets": 0, "bytes": 0, "flags": 0})
for name in ("a", "b"):
    seen = set()
    for p in rdpcap(f"{out}/{name}.pcap"):
        raw = bytes(p)[14:]
        if raw[0] >> 4 == 4:
            hl, proto, length = (raw[0] & 15) * 4, raw[9], struct.unpack("!H", raw[2:4])[0]
            src, dst = ".".join(map(str, raw[12:16])), ".".join(map(str, raw[16:20]))
        else:
            hl, proto, length = 40, raw[6], struct.unpack("!H", raw[4:6])[0] + 40
            src, dst = str(IPv6(raw).src), str(IPv6(raw).dst)
        l4 = raw[hl:]
        sport, dport, flags = 0, 0, 0
        if proto in (6, 17):
            sport, dport = struct.unpack("!HH", l4[:4])
            flags = l4[13] if proto == 6 else 0
        elif proto in (1, 58):
            dport = l4[0] << 8 | l4[1]  # type*256+code, as NetFlow v5 carries it
        k = f"{src} {dst} {sport} {dport} {proto}"
        e = truth[k]
        e["packets"] += 1
        e["bytes"] += length
        e["flags"] |= flags
        seen.add(k)
    for k in seen:
        truth[k]["flows"] += 1
json.dump(truth, open(f"{out}/truth.json", "w"), indent=1, sort_keys=True)
PY

# --- 3. softflowd -> nfcapd: the nfdump file nfreplay will read ------------------------------
NFPORT=$(udp_port)
mkdir -p "$TMP/nf"
nfcapd -b 127.0.0.1 -p "$NFPORT" -w "$TMP/nf" -t 3600 -P "$TMP/nfcapd.pid" > "$TMP/nfcapd.log" 2>&1 &
NFCAPD=$!
PIDS+=($NFCAPD)
for _ in $(seq 1 100); do grep -q "Startup nfcapd" "$TMP/nfcapd.log" 2> /dev/null && break; sleep 0.02; done
grep -q "Startup nfcapd" "$TMP/nfcapd.log" || { cat "$TMP/nfcapd.log"; echo "FAIL: nfcapd did not start"; exit 1; }
# softflowd -r reads its file only once its poll loop wakes: poke it through the control socket
# (PEERS-RECIPES.md), then "shutdown" exports every flow and exits.
for n in a b; do
  ctl="$TMP/sf$n.ctl"
  timeout 20 softflowd -d -r "$TMP/$n.pcap" -n "127.0.0.1:$NFPORT" -v 9 -6 -p "$TMP/sf$n.pid" -c "$ctl" \
    < /dev/null > "$TMP/sf$n.log" 2>&1 &
  sf=$!
  for _ in $(seq 1 100); do [ -S "$ctl" ] && break; sleep 0.02; done
  for _ in $(seq 1 100); do
    softflowctl -c "$ctl" statistics 2> /dev/null | grep -q "Packets processed: [1-9]" && break
    sleep 0.05
  done
  softflowctl -c "$ctl" shutdown > /dev/null 2>&1 || true
  wait "$sf" || { cat "$TMP/sf$n.log"; echo "FAIL: softflowd ($n.pcap) exited with an error"; exit 1; }
done
sleep 0.2  # the last export datagram reaches nfcapd's socket
kill -TERM "$NFCAPD"
wait "$NFCAPD" || true
grep -h "Flows:" "$TMP/nfcapd.log" || true
files=("$TMP"/nf/nfcapd.2*)
if [ "${#files[@]}" -eq 1 ] && [ -s "${files[0]}" ]; then
  FLOWFILE=${files[0]}
elif [ "${#files[@]}" -gt 1 ]; then  # nfcapd rotated (an hour boundary): one file of them all
  nfdump -R "$TMP/nf" -w "$TMP/merged.nf"
  FLOWFILE=$TMP/merged.nf
else
  cat "$TMP/nfcapd.log"
  echo "FAIL: nfcapd wrote no flow file"
  exit 1
fi
nfdump -r "$FLOWFILE" -o json > "$TMP/nfdump.json"

# --- 4. nfreplay -v 9 and -v 5, each to its engine ------------------------------------------
marked outpost-capture-start
for v in 9 5; do
  check "nfreplay -v $v sends the file" nfreplay -H 127.0.0.1 -p "${EPORT[$v]}" -v "$v" -r "$FLOWFILE"
done
marked outpost-capture-end
kill -INT "$TSHARK"
wait "$TSHARK" || true
# The engines got the datagrams before the end marker; wait until their records reached the sink
# (v5 carries no IPv6, hence fewer), then stop them.
want9=$("$PY" -c 'import json,sys; print(sum(1 for r in json.load(open(sys.argv[1])) if r["type"] == "FLOW"))' "$TMP/nfdump.json")
want5=$("$PY" -c 'import json,sys; print(sum(1 for r in json.load(open(sys.argv[1])) if r["type"] == "FLOW" and "src4_addr" in r))' "$TMP/nfdump.json")
for v in 9 5; do
  want=$([ "$v" = 9 ] && echo "$want9" || echo "$want5")
  for _ in $(seq 1 100); do
    n=$(grep -c '"type":"flow"' "$TMP/live$v.jsonl" 2> /dev/null) || true
    [ "${n:-0}" -ge "$want" ] && break
    sleep 0.03
  done
  sleep 0.3  # the counters: the stats tick after the last batch
  kill -TERM "${EPID[$v]}"
  set +e
  wait "${EPID[$v]}"
  rc=$?
  set -e
  check "the v$v engine stops cleanly on SIGTERM" test "$rc" = 0
done

# --- 5. references: tshark's decode, `outpost replay` of the capture -------------------------
tshark -r "$TMP/sent.pcap" -d "udp.port==${EPORT[9]},cflow" -d "udp.port==${EPORT[5]},cflow" -T json \
  --no-duplicate-keys > "$TMP/tshark.json" 2> /dev/null
for v in 9 5; do
  cat > "$TMP/replay$v.yaml" <<YAML
engine: {data_dir: $TMP/replay-data$v}
sinks:
  out: {plugin: file, path: $TMP/replay$v.jsonl}
YAML
  "$OUTPOST" replay --plugin netflow -c "$TMP/replay$v.yaml" --port "${EPORT[$v]}" "$TMP/sent.pcap" \
    2> "$TMP/replay$v.err" || { cat "$TMP/replay$v.err"; fail "outpost replay of the v$v datagrams"; }
done

# --- 6. compare -------------------------------------------------------------------------------
check "every comparison holds" "$PY" - "$TMP" "9:${EPORT[9]}" "5:${EPORT[5]}" <<'PY'
import ipaddress
import json
import sys
from collections import Counter, defaultdict
from datetime import datetime, timezone

d = sys.argv[1]
modes = [tuple(map(int, a.split(":"))) for a in sys.argv[2:]]
fails = 0


def check(what, ok, detail=""):
    global fails
    print(("ok: " if ok else "FAIL: ") + what)
    if not ok and detail != "":
        print("      " + str(detail))
    fails += 0 if ok else 1


def diff(a, b, na, nb):  # the entries of two dicts (or Counters) that differ, a few of each
    if isinstance(a, Counter):
        x, y = a - b, b - a
        return f"only in {na}: {sorted(x.elements())[:6]}; only in {nb}: {sorted(y.elements())[:6]}"
    keys = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
    return "; ".join(f"{k}: {na} {a.get(k)} / {nb} {b.get(k)}" for k in keys[:8]) + \
        (f" (+{len(keys) - 8} more)" if len(keys) > 8 else "")


def addr(a):
    return str(ipaddress.ip_address(a))


def is6(key):
    return ":" in key.split()[0]


def per_tuple(records):  # records: (key, packets, bytes, flags)
    t = defaultdict(lambda: {"flows": 0, "packets": 0, "bytes": 0, "flags": 0})
    for k, p, b, f in records:
        e = t[k]
        e["flows"] += 1
        e["packets"] += p
        e["bytes"] += b
        e["flags"] |= f
    return dict(t)


def counts(t, flags=False):
    return {k: (v["flows"], v["packets"], v["bytes"]) + ((v["flags"],) if flags else ()) for k, v in t.items()}


truth = json.load(open(f"{d}/truth.json"))
# softflowd sends ICMPv6 type/code as ICMP_TYPE_IPV6 (139), which nfcapd 1.7.1 does not read: the
# nfdump file, and so all nfreplay sends, has 0 there. Compare the pcaps as they come through.
through = defaultdict(lambda: {"flows": 0, "packets": 0, "bytes": 0, "flags": 0})
for k, e in truth.items():
    src, dst, sport, dport, proto = k.split()
    t = through[f"{src} {dst} {sport} {0 if proto == '58' else dport} {proto}"]
    for f in t:
        t[f] = t[f] | e[f] if f == "flags" else t[f] + e[f]
through = dict(through)

# nfdump's reading of the file nfreplay sends
ms = lambda s: int(round(datetime.strptime(s, "%Y-%m-%dT%H:%M:%S.%f").replace(tzinfo=timezone.utc).timestamp() * 1000))  # noqa: E731
nfd = []
for r in json.load(open(f"{d}/nfdump.json")):
    if r["type"] != "FLOW":
        continue
    src, dst = addr(r.get("src4_addr") or r["src6_addr"]), addr(r.get("dst4_addr") or r["dst6_addr"])
    if r["proto"] in (1, 58):
        sport, dport = 0, (r["icmp_type"] << 8) | r["icmp_code"]
    else:
        sport, dport = r["src_port"], r["dst_port"]
    flags = sum(1 << (7 - i) for i, c in enumerate(r.get("tcp_flags", "")) if c != ".")
    nfd.append((f"{src} {dst} {sport} {dport} {r['proto']}", r["in_packets"], r["in_bytes"], flags,
                ms(r["first"]), ms(r["last"])))
nfd_t = per_tuple(x[:4] for x in nfd)
check(f"the nfdump file (softflowd -> nfcapd) holds the pcaps' {len(truth)} 5-tuples: flows, packets, bytes, "
      f"TCP flags per 5-tuple (ICMPv6 type/code lost)", counts(nfd_t, True) == counts(through, True),
      diff(counts(nfd_t, True), counts(through, True), "nfdump", "pcap"))
check("... some 5-tuples make two flows, IPv4 and IPv6, TCP, UDP, ICMP and ICMPv6 all present",
      any(v["flows"] == 2 for v in truth.values()) and {int(k.split()[4]) for k in truth} == {1, 6, 17, 58}
      and any(is6(k) for k in truth) and any(not is6(k) for k in truth))


# tshark: every record of every cflow datagram, by destination port
def one(x):
    return x[0] if isinstance(x, list) else x


shark, versions = defaultdict(list), defaultdict(Counter)


def walk(o, port):
    if isinstance(o, dict):
        for k, v in o.items():
            if k.startswith(("Flow ", "pdu ")) and isinstance(v, dict) and "cflow.octets" in v:  # v9, v5
                src = addr(v.get("cflow.srcaddr") or v["cflow.srcaddrv6"])
                dst = addr(v.get("cflow.dstaddr") or v["cflow.dstaddrv6"])
                proto = int(v["cflow.protocol"])
                sport, dport = int(one(v.get("cflow.srcport", "0"))), int(one(v.get("cflow.dstport", "0")))
                icmp = v.get("cflow.icmp_type_code_ipv4") or v.get("cflow.icmp_type_code_ipv6")
                if proto in (1, 58) and icmp is not None:  # the ICMP type/code element, when sent
                    dport = int(one(icmp), 0)
                shark[port].append((f"{src} {dst} {sport} {dport} {proto}", int(v["cflow.packets"]),
                                    int(v["cflow.octets"]), int(v.get("cflow.tcpflags", "0"), 0)))
            elif isinstance(v, (dict, list)):
                walk(v, port)
    elif isinstance(o, list):
        for x in o:
            walk(x, port)


for pkt in json.load(open(f"{d}/tshark.json")):
    layers = pkt["_source"]["layers"]
    if "cflow" in layers:
        port = int(layers["udp"]["udp.dstport"])
        versions[port][layers["cflow"]["cflow.version"]] += 1
        walk(layers["cflow"], port)


def lines(path):
    with open(path) as f:
        return [json.loads(l) for l in f if l.strip()]


for v, port in modes:
    live = lines(f"{d}/live{v}.jsonl")
    flows = [r for r in live if r["type"] == "flow"]
    mine = [(f"{addr(f['src'])} {addr(f['dst'])} {f['src_port']} {f['dst_port']} {f['protocol']}", f["packets"],
             f["bytes"], f["tcp_flags"]) for f in flows]
    nref = [x for x in nfd if v == 9 or not is6(x[0])]  # v5 carries IPv4 only
    exp = {k: e for k, e in through.items() if v == 9 or not is6(k)}
    sent = sum(versions[port].values())
    check(f"v{v}: nfreplay sent {sent} datagrams, all NetFlow v{v}", sent > 0 and set(versions[port]) == {str(v)},
          dict(versions[port]))
    check(f"v{v}: the {len(mine)} stored records equal tshark's decode of the same datagrams "
          f"(5-tuple, packets, bytes, TCP flags)", Counter(mine) == Counter(shark[port]) and mine,
          diff(Counter(mine), Counter(shark[port]), "outpost", "tshark"))
    t = per_tuple(mine)
    check(f"v{v}: per 5-tuple flows, packets and bytes equal nfdump's reading of the file sent ({len(nref)} flows)",
          counts(t) == counts(per_tuple(x[:4] for x in nref)), diff(counts(t), counts(per_tuple(x[:4] for x in nref)), "outpost", "nfdump"))
    check(f"v{v}: per 5-tuple flows, packets, bytes and TCP flags equal the pcaps' ({len(exp)} 5-tuples"
          + (", IPv4 only" if v == 5 else "") + ")", counts(t, True) == counts(exp, True),
          diff(counts(t, True), counts(exp, True), "outpost", "pcap"))
    if v == 5:
        check("v5: no IPv6 record (nfreplay leaves the IPv6 flows out of v5)",
              not any(":" in f["src"] for f in flows)
              and len(nref) < len(nfd))
    # times: each record's start/end against nfdump's first/last of the same flow
    # (paired without the destination port, which the checks above cover)
    a = sorted((k.rsplit(" ", 2)[0] + " " + k.split()[4], p, b, fl, f["start_ns"] // 1_000_000, f["end_ns"] // 1_000_000)
               for (k, p, b, fl), f in zip(mine, flows))
    e = sorted((k.rsplit(" ", 2)[0] + " " + k.split()[4], p, b, fl, t0, t1) for k, p, b, fl, t0, t1 in nref)
    worst = max((max(abs(x[4] - y[4]), abs(x[5] - y[5])) for x, y in zip(a, e) if x[:4] == y[:4]), default=None)
    check(f"v{v}: start/end of every record equal nfdump's first/last to the ms (worst {worst} ms)",
          len(a) == len(e) and all(x[:4] == y[:4] for x, y in zip(a, e)) and worst is not None and worst <= 1,
          [(x, y) for x, y in zip(a, e) if x[:4] != y[:4] or max(abs(x[4] - y[4]), abs(x[5] - y[5])) > 1][:4])
    check(f"v{v}: every record unsampled, from 127.0.0.1",
          all(f["sampling_rate"] == 1 and f["exporter"] in ("127.0.0.1", "::ffff:127.0.0.1") for f in flows),
          Counter((f["sampling_rate"], f["exporter"]) for f in flows))
    rep = [r for r in lines(f"{d}/replay{v}.jsonl") if r["type"] == "flow"]
    check(f"v{v}: outpost replay of the captured datagrams gives the same {len(rep)} records",
          sorted(map(json.dumps, rep)) == sorted(map(json.dumps, flows)) and rep, (len(rep), len(flows)))
    metrics = {}
    for m in live:
        if m["type"] == "metric" and m["name"].startswith("netflow_"):
            metrics[(m["name"], tuple(sorted(m["labels"].items())))] = m["value"]  # the last value wins
    drops = {dict(k[1])["reason"]: val for k, val in metrics.items() if k[0] == "netflow_dropped_total"}
    check(f"v{v}: nothing dropped", drops and not any(drops.values()), drops)
    n = metrics.get(("netflow_packets_total", (("exporter", "127.0.0.1"), ("version", str(v)))))
    check(f"v{v}: netflow_packets_total = {n}, the {sent} datagrams tshark saw", n == sent)
    recs = sum(val for k, val in metrics.items() if k[0] == "netflow_records_total")
    check(f"v{v}: netflow_records_total = {recs}, the {len(flows)} records stored", recs == len(flows))
sys.exit(1 if fails else 0)
PY
finish
