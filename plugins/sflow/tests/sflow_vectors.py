#!/usr/bin/python3
"""sFlow v5 test datagrams, written from the spec (sflow.org/sflow_version_5.txt) with struct.pack,
the sampled packets inside them built by scapy (2.5 has no sFlow layer). Prints one case a line:
name TAB datagram-hex TAB expectations (key=value ...), which test_sflow_decoder.cpp checks.
Run with /usr/bin/python3 (Debian's scapy)."""
import struct
import sys
from scapy.all import (ARP, ICMP, IP, UDP, TCP, Dot1AD, Dot1Q, Ether, ICMPv6EchoRequest, IPv6,
                       IPv6ExtHdrFragment, IPv6ExtHdrHopByHop, IPv6ExtHdrRouting, Raw)
import socket

u32 = lambda v: struct.pack("!I", v)
u64 = lambda v: struct.pack("!Q", v)


def pad(b):
    return b + b"\0" * (-len(b) % 4)


def opaque(b, length=None):  # XDR opaque<>: length, bytes, padding
    return u32(len(b) if length is None else length) + pad(b)


def rec(fmt, body, length=None, enterprise=0):  # flow/counter record, sample: format, opaque
    return u32(enterprise << 12 | fmt) + opaque(body, length)


def datagram(samples, agent="192.0.2.10", sub=0, seq=1, uptime=1000, count=None, version=5):
    if ":" in agent:
        a = u32(2) + socket.inet_pton(socket.AF_INET6, agent)
    else:
        a = u32(1) + socket.inet_aton(agent)
    n = len(samples) if count is None else count
    return u32(version) + a + u32(sub) + u32(seq) + u32(uptime) + u32(n) + b"".join(samples)


def raw_header(pkt, frame_len=None, proto=1, stripped=4, hlen=None, cut=128):
    b = bytes(pkt)[:cut]
    flen = len(bytes(pkt)) + 4 if frame_len is None else frame_len
    return rec(1, u32(proto) + u32(flen) + u32(stripped) + opaque(b, hlen))


def sampled_ipv4(length, proto, src, dst, sp, dp, flags, tos):
    return rec(3, u32(length) + u32(proto) + socket.inet_aton(src) + socket.inet_aton(dst) +
               u32(sp) + u32(dp) + u32(flags) + u32(tos))


def sampled_ipv6(length, proto, src, dst, sp, dp, flags, prio):
    return rec(4, u32(length) + u32(proto) + socket.inet_pton(socket.AF_INET6, src) +
               socket.inet_pton(socket.AF_INET6, dst) + u32(sp) + u32(dp) + u32(flags) + u32(prio))


def sampled_ethernet(length):
    return rec(2, u32(length) + b"\x02\0\0\0\0\x01\0\0" + b"\x02\0\0\0\0\x02\0\0" + u32(0x0800))


def flow_sample(records, seq=1, rate=1, inp=3, out=7, src=3, nrec=None):
    body = (u32(seq) + u32(src) + u32(rate) + u32(rate * 10) + u32(0) + u32(inp) + u32(out) +
            u32(len(records) if nrec is None else nrec) + b"".join(records))
    return rec(1, body)


def flow_sample_exp(records, seq=1, rate=1, inp=(0, 3), out=(0, 7), src=(0, 3)):
    body = (u32(seq) + u32(src[0]) + u32(src[1]) + u32(rate) + u32(rate * 10) + u32(0) +
            u32(inp[0]) + u32(inp[1]) + u32(out[0]) + u32(out[1]) + u32(len(records)) +
            b"".join(records))
    return rec(3, body)


def if_counters(ifindex, speed=1000000000, status=3, in_oct=123456789012, in_ucast=1000,
                in_err=5, out_oct=987654321098, out_disc=6):
    body = (u32(ifindex) + u32(6) + u64(speed) + u32(1) + u32(status) + u64(in_oct) +
            u32(in_ucast) + u32(11) + u32(12) + u32(13) + u32(in_err) + u32(14) + u64(out_oct) +
            u32(2000) + u32(21) + u32(22) + u32(out_disc) + u32(23) + u32(0))
    assert len(body) == 88
    return rec(1, body)


def counter_sample(records, seq=1, src=3, expanded=False):
    s = u32(seq) + (u32(0) + u32(src) if expanded else u32(src))
    return rec(4 if expanded else 2, s + u32(len(records)) + b"".join(records))


E = lambda: Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
cases = []


def case(name, data, **expect):
    cases.append((name, data, " ".join(f"{k.replace('__', '.')}={v}" for k, v in expect.items())))


tcp = E() / IP(src="10.1.0.1", dst="192.0.2.1", tos=0x28) / TCP(sport=40000, dport=443, flags="SA") / Raw(b"x" * 1400)
case("ipv4_tcp_compact", datagram([flow_sample([raw_header(tcp, frame_len=1518)], rate=100, inp=3, out=7)], seq=42),
     drop="none", agent="192.0.2.10", sub_agent=0, seq=42, flows=1, counters=0,
     f0__family=4, f0__src="10.1.0.1", f0__dst="192.0.2.1", f0__sport=40000, f0__dport=443,
     f0__proto=6, f0__flags=0x12, f0__tos=0x28, f0__bytes=151800, f0__packets=100, f0__rate=100,
     f0__in=3, f0__out=7, f0__exporter="192.0.2.10", f0__time=1700000000000000000)

v6 = (E() / Dot1AD(vlan=100) / Dot1Q(vlan=200) / IPv6(src="2001:db8::1", dst="2001:db8::2", tc=0xb8) /
      IPv6ExtHdrHopByHop() / IPv6ExtHdrRouting() / IPv6ExtHdrFragment(offset=0, m=1) /
      UDP(sport=5353, dport=6000) / Raw(b"y" * 300))
case("ipv6_qinq_exthdrs_expanded",
     datagram([flow_sample_exp([raw_header(v6)], rate=1000, inp=(0, 0x12345678), out=(0, 2))],
              agent="2001:db8:ffff::1", sub=7, seq=9),
     drop="none", agent="2001:db8:ffff::1", sub_agent=7, seq=9, flows=1, f0__family=6,
     f0__src="2001:db8::1", f0__dst="2001:db8::2", f0__proto=17, f0__sport=5353, f0__dport=6000,
     f0__tos=0xb8, f0__in=0x12345678, f0__out=2, f0__packets=1000,
     f0__bytes=(len(bytes(v6)) + 4) * 1000, f0__exporter="2001:db8:ffff::1")

frag = E() / IPv6(src="2001:db8::3", dst="2001:db8::4") / IPv6ExtHdrFragment(offset=100, nh=17) / Raw(b"z" * 64)
icmp = E() / Dot1Q(vlan=5) / IP(src="10.9.9.9", dst="192.0.2.9") / ICMP(type=3, code=1)
icmp6 = E() / IPv6(src="2001:db8::5", dst="2001:db8::6") / ICMPv6EchoRequest()
v4frag = E() / IP(src="10.2.0.1", dst="10.2.0.2", frag=185, proto=6) / Raw(b"q" * 40)
case("fragments_and_icmp", datagram([flow_sample([raw_header(frag)], seq=1), flow_sample([raw_header(icmp)], seq=2),
                                     flow_sample([raw_header(icmp6)], seq=3), flow_sample([raw_header(v4frag)], seq=4)]),
     drop="none", flows=4, f0__proto=17, f0__sport=0, f0__dport=0, f0__src="2001:db8::3",
     f0__exporter="192.0.2.10",  # the IPv4 agent of an IPv6 flow keeps its own family
     f1__proto=1, f1__sport=0, f1__dport=0x0301, f1__src="10.9.9.9",
     f2__proto=58, f2__dport=128 << 8, f3__proto=6, f3__sport=0, f3__dport=0)

# No raw header: the sampled IPv4/IPv6 records, with the Ethernet record's length when present.
case("sampled_ip_records",
     datagram([flow_sample([sampled_ethernet(1000), sampled_ipv4(982, 6, "10.3.0.1", "10.3.0.2", 1234, 80, 0x18, 0x10)], rate=10),
               flow_sample([sampled_ipv6(500, 17, "2001:db8::7", "2001:db8::8", 53, 5353, 0, 0x20)], rate=2)]),
     drop="none", flows=2, f0__src="10.3.0.1", f0__dst="10.3.0.2", f0__sport=1234, f0__dport=80,
     f0__flags=0x18, f0__tos=0x10, f0__bytes=10000, f0__packets=10,
     f1__family=6, f1__src="2001:db8::7", f1__proto=17, f1__dport=5353, f1__tos=0x20, f1__bytes=1000, f1__packets=2)

# A raw header wins over a sampled IPv4 record in the same sample; vendor records are skipped.
case("header_wins_vendor_skipped",
     datagram([flow_sample([rec(5, b"\1\2\3\4\5\6\7\x08", enterprise=4413), sampled_ipv4(1, 17, "1.1.1.1", "2.2.2.2", 1, 2, 0, 0),
                            raw_header(tcp, frame_len=1518), rec(1001, u32(1) + u32(0) + u32(2) + u32(0))])]),
     drop="none", flows=1, f0__src="10.1.0.1", f0__bytes=1518, skip__ignored_flow_record=2)

case("counters", datagram([counter_sample([rec(2, b"\0" * 52), if_counters(3)], seq=5),
                           counter_sample([if_counters(0x01000002, status=1, in_oct=1, out_oct=2)], expanded=True)]),
     drop="none", flows=0, counters=2, c0__ifindex=3, c0__speed=1000000000, c0__status=3,
     c0__in_octets=123456789012, c0__in_ucast=1000, c0__in_errors=5, c0__out_octets=987654321098,
     c0__out_discards=6, c1__ifindex=0x01000002, c1__status=1, c1__in_octets=1,
     skip__ignored_counter_record=1)

arp = E() / ARP()
case("skips", datagram([rec(1, b"\0" * 12, enterprise=9), flow_sample([raw_header(arp)]),
                        flow_sample([raw_header(tcp, proto=7)]), flow_sample([]),
                        flow_sample([raw_header(IP(src="10.4.0.1", dst="10.4.0.2") / UDP(sport=1, dport=2), proto=11)])]),
     drop="none", flows=1, f0__src="10.4.0.1", f0__dport=2, skip__unknown_sample=1, skip__not_ip=1,
     skip__header_protocol=1, skip__no_packet_record=1)

case("compact_interface_formats", datagram([flow_sample([raw_header(tcp)], inp=0x3FFFFFFF, out=0x40000001),
                                            flow_sample([raw_header(tcp)], inp=5, out=0x80000003)]),
     drop="none", flows=2, f0__in=0, f0__out=0, f1__in=5, f1__out=0)

# Hostile datagrams: each must be dropped whole, for the stated reason.
good = flow_sample([raw_header(tcp)])
case("empty", b"", drop="truncated")
case("short_header", datagram([])[:20], drop="truncated")
case("version_4", datagram([], version=4), drop="bad_version")
case("agent_type_3", u32(5) + u32(3) + b"\0" * 40, drop="bad_agent_address")
case("huge_sample_count", datagram([good], count=0xFFFFFFFF), drop="too_many_samples", flows=0)
case("sample_count_past_end", datagram([good], count=2), drop="bad_sample_length", flows=0)
case("sample_length_past_end", datagram([good, rec(1, b"\0" * 8, length=4000)]), drop="bad_sample_length", flows=0)
case("sample_length_overflow", datagram([good, u32(1) + u32(0xFFFFFFFF) + b"\0" * 16]), drop="bad_sample_length", flows=0)
case("zero_length_flow_sample", datagram([good, rec(1, b"")]), drop="bad_sample", flows=0)
case("zero_length_counter_sample", datagram([rec(2, b"")]), drop="bad_sample")
case("huge_record_count", datagram([good, flow_sample([raw_header(tcp)], nrec=0x7FFFFFFF)]), drop="too_many_records", flows=0)
case("record_count_past_end", datagram([flow_sample([raw_header(tcp)], nrec=2)]), drop="bad_record_length")
case("record_length_past_sample", datagram([flow_sample([rec(1, b"\0" * 16, length=64)])]), drop="bad_record_length")
case("record_length_overflow", datagram([flow_sample([u32(1) + u32(0xFFFFFFFD)])]), drop="bad_record_length")
case("header_length_past_record", datagram([flow_sample([raw_header(tcp, hlen=0xFFFFFFF0)])]), drop="bad_record")
case("zero_length_header_record", datagram([flow_sample([rec(1, b"")])]), drop="bad_record")
case("short_ipv4_record", datagram([flow_sample([rec(3, b"\0" * 20)])]), drop="bad_record")
case("short_if_counters", datagram([counter_sample([rec(1, b"\0" * 40)])]), drop="bad_record")
case("sampling_rate_0", datagram([flow_sample([raw_header(tcp)], rate=0)]), drop="bad_sampling_rate")
# Zero-length unknown records and samples are legal: skipped by their (empty) length.
case("zero_length_unknown", datagram([rec(7, b""), flow_sample([rec(99, b""), raw_header(tcp)])]),
     drop="none", flows=1, skip__unknown_sample=1, skip__ignored_flow_record=1)

for name, data, expect in cases:
    print(f"{name}\t{data.hex()}\t{expect}")
