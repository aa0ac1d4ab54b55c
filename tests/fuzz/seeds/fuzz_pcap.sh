#!/usr/bin/env bash
# Seeds for fuzz_pcap: one small capture of each link type with an IPv4 and an IPv6 UDP packet.
python3 - "$1" <<'PY'
import struct, sys, os
def ip4_udp(payload):
    udp = struct.pack("!HHHH", 5000, 2055, 8 + len(payload), 0) + payload
    hdr = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 1, 0, 64, 17, 0, bytes([192,0,2,1]), bytes([192,0,2,9]))
    return hdr + udp
def ip6_udp(payload):
    udp = struct.pack("!HHHH", 5000, 2055, 8 + len(payload), 0) + payload
    return struct.pack("!IHBB", 0x60000000, len(udp), 17, 64) + bytes(15) + b"\x01" + bytes(15) + b"\x09" + udp
for link, frame in ((1, lambda p, et: bytes(12) + struct.pack("!H", et) + p),
                    (101, lambda p, et: p),
                    (113, lambda p, et: bytes(14) + struct.pack("!H", et) + p)):
    data = struct.pack("<IHHiIII", 0xa1b2c3d4, 2, 4, 0, 0, 65535, link)
    for pkt, et in ((ip4_udp(b"hello"), 0x0800), (ip6_udp(b"world"), 0x86dd)):
        f = frame(pkt, et)
        data += struct.pack("<IIII", 1, 2, len(f), len(f)) + f
    open(os.path.join(sys.argv[1], "link%d.pcap" % link), "wb").write(data)
PY
