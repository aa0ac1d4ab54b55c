#!/usr/bin/python3
# Writes pcaps of known traffic for softflowd to turn into flow records, and what a correct
# collector must report, one JSON line per direction:
#   {"src","dst","sport","dport","proto","packets","bytes","flags","first","last"}
# usage: flows.py DIR START_TIME RUN...   -> DIR/runRUN.pcap, DIR/expected_RUN.json
# RUN (1-250) picks the addresses (10.RUN.0.0/16, 2001:db8:RUN::/48) so several exports can share
# one collector and still be told apart. Bytes are IP bytes (header included), as exporters count.
import json
import os
import sys

from scapy.all import ICMP, IP, TCP, UDP, Ether, IPv6, Raw, wrpcap

pkts, expected, t, run = [], {}, 0.0, 0


def add(l3):
    global t
    p = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02") / l3
    p.time = t
    t += 0.005
    pkts.append(p)
    ip = p[IP] if IP in p else p[IPv6]
    length = ip.len if IP in p else ip.plen + 40
    if TCP in p:
        key, flags = (ip.src, ip.dst, p[TCP].sport, p[TCP].dport, 6), int(p[TCP].flags)
    elif UDP in p:
        key, flags = (ip.src, ip.dst, p[UDP].sport, p[UDP].dport, 17), 0
    else:
        key, flags = (ip.src, ip.dst, 0, (p[ICMP].type << 8) | p[ICMP].code, 1), 0
    e = expected.setdefault(key, {"packets": 0, "bytes": 0, "flags": 0, "first": p.time, "last": p.time})
    e["packets"] += 1
    e["bytes"] += length
    e["flags"] |= flags
    e["last"] = p.time


def build(pkt):  # lengths filled in, so expected bytes are the wire bytes
    return pkt.__class__(bytes(pkt))


def tcp_session(ip, cli, srv, sport, dport, rounds):
    add(build(ip(src=cli, dst=srv) / TCP(sport=sport, dport=dport, flags="S", seq=1)))
    add(build(ip(src=srv, dst=cli) / TCP(sport=dport, dport=sport, flags="SA", seq=1, ack=2)))
    for i in range(rounds):
        add(build(ip(src=cli, dst=srv) / TCP(sport=sport, dport=dport, flags="PA") / Raw(b"q" * (100 + 7 * i))))
        add(build(ip(src=srv, dst=cli) / TCP(sport=dport, dport=sport, flags="A") / Raw(b"r" * (400 + 13 * i))))
    add(build(ip(src=cli, dst=srv) / TCP(sport=sport, dport=dport, flags="FA")))
    add(build(ip(src=srv, dst=cli) / TCP(sport=dport, dport=sport, flags="FA")))


def generate(out):
    global t
    v4 = lambda n, h: f"10.{run}.{n}.{h}"  # noqa: E731
    v6 = lambda h: f"2001:db8:{run:x}::{h:x}"  # noqa: E731
    for i in range(6):
        tcp_session(IP, v4(0, i + 1), v4(1, i + 1), 30000 + i, [80, 443, 22][i % 3], 2 + i)
    for i in range(3):
        for k in range(2 + i):
            add(build(IP(src=v4(0, 20 + i), dst=v4(1, 53)) / UDP(sport=40000 + i, dport=53) / Raw(b"d" * (40 + k))))
            add(build(IP(src=v4(1, 53), dst=v4(0, 20 + i)) / UDP(sport=53, dport=40000 + i) / Raw(b"D" * (120 + k))))
    for k in range(3):
        add(build(IP(src=v4(0, 30), dst=v4(1, 30)) / ICMP(type=8, id=7, seq=k) / Raw(b"p" * 56)))
        add(build(IP(src=v4(1, 30), dst=v4(0, 30)) / ICMP(type=0, id=7, seq=k) / Raw(b"p" * 56)))
    for k in range(4):
        add(build(IPv6(src=v6(1), dst=v6(2)) / UDP(sport=5000, dport=6000) / Raw(b"y" * (50 + k))))
    tcp_session(IPv6, v6(3), v6(4), 1234, 80, 3)
    wrpcap(os.path.join(out, f"run{run}.pcap"), pkts)
    with open(os.path.join(out, f"expected_{run}.json"), "w") as f:
        for (src, dst, sport, dport, proto), e in expected.items():
            f.write(json.dumps({"src": src, "dst": dst, "sport": sport, "dport": dport, "proto": proto,
                                "packets": e["packets"], "bytes": e["bytes"], "flags": e["flags"],
                                "first": float(e["first"]), "last": float(e["last"])}) + "\n")


for run in map(int, sys.argv[3:]):  # one process: scapy takes seconds to import
    pkts, expected, t = [], {}, float(sys.argv[2])
    generate(sys.argv[1])
