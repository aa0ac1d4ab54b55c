#!/usr/bin/python3
# strip_templates.py IN.pcap OUT.pcap: keeps the datagrams of the last v9 and the last IPFIX
# exporter (by UDP source port) and removes every template and options-template set from them,
# so only data sets remain: what a collector sees after a restart until the next template
# refresh. Reads and writes classic pcap of Ethernet/IPv4/UDP (tshark -F pcap on lo).
import struct
import sys

raw = open(sys.argv[1], "rb").read()
end = "<" if raw[:4] in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
assert struct.unpack(end + "I", raw[20:24])[0] == 1, "expected Ethernet link type"
records, pos = [], 24
while pos + 16 <= len(raw):
    ts, tu, caplen, origlen = struct.unpack(end + "IIII", raw[pos:pos + 16])
    records.append((raw[pos:pos + 8], raw[pos + 16:pos + 16 + caplen]))
    pos += 16 + caplen


def split(frame):  # -> (eth+ip header, udp header, payload) or None
    if frame[12:14] != b"\x08\x00" or frame[23] != 17:
        return None
    ihl = (frame[14] & 15) * 4
    udp = 14 + ihl
    return frame[:udp], frame[udp:udp + 8], frame[udp + 8:]


last = {}  # version -> source port of the last exporter
for _, frame in records:
    parts = split(frame)
    if parts:
        last[struct.unpack("!H", parts[2][:2])[0]] = parts[1][:2]


def checksum(hdr):
    s = sum(struct.unpack("!%dH" % (len(hdr) // 2), hdr))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return struct.pack("!H", ~s & 0xFFFF)


out = [raw[:24]]
for head, frame in records:
    parts = split(frame)
    if not parts:
        continue
    l3, udp, b = parts
    version = struct.unpack("!H", b[:2])[0]
    if version not in (9, 10) or udp[:2] != last[version]:
        continue
    hlen = 20 if version == 9 else 16
    stop = len(b) if version == 9 else struct.unpack("!H", b[2:4])[0]
    sets, p = [], hlen
    while p + 4 <= stop:
        sid, slen = struct.unpack("!HH", b[p:p + 4])
        if slen < 4:
            break
        if sid >= 256:
            sets.append(b[p:p + slen])
        p += slen
    if not sets:
        continue
    body = b[:hlen] + b"".join(sets)
    if version == 10:
        body = body[:2] + struct.pack("!H", len(body)) + body[4:]
    ip = bytearray(l3[14:])
    ip[2:4] = struct.pack("!H", len(ip) + 8 + len(body))
    ip[10:12] = b"\0\0"
    ip[10:12] = checksum(bytes(ip))
    udp = udp[:4] + struct.pack("!H", 8 + len(body)) + b"\0\0"  # no UDP checksum (IPv4 allows it)
    frame = l3[:14] + bytes(ip) + udp + body
    out.append(head + struct.pack(end + "II", len(frame), len(frame)) + frame)
open(sys.argv[2], "wb").write(b"".join(out))
