#!/usr/bin/python3
# Test vectors for the netflow decoder, built with scapy (an independent encoder): one line per
# export datagram, "name hex". test_netflow.cpp runs this with /usr/bin/python3 and checks every
# decoded field against the values written here. With --pcap FILE it also writes the datagrams
# as UDP/2055 packets, so `tshark -d udp.port==2055,cflow` can confirm the vectors are sound.
import struct
import sys

from scapy.all import IP, UDP, Ether, Raw, wrpcap
from scapy.layers.netflow import (GetNetflowRecordV9, NetflowDataflowsetV9, NetflowFlowsetV9,
                                  NetflowHeader, NetflowHeaderV5, NetflowHeaderV9,
                                  NetflowHeaderV10, NetflowOptionsFlowset10,
                                  NetflowOptionsFlowsetOptionV9, NetflowOptionsFlowsetScopeV9,
                                  NetflowOptionsFlowsetV9, NetflowRecordV5, NetflowRecordV9,
                                  NetflowTemplateFieldV9, NetflowTemplateV9)

F = NetflowTemplateFieldV9


def u32(v):  # scapy encodes counters and ifIndex of v9 records as raw bytes
    return struct.pack("!I", v)


def u16(v):
    return struct.pack("!H", v)
T0 = 1700000000  # export time of every vector
out = {}


def v9(*sets, uptime=100000, source=7):
    return NetflowHeader(version=9) / NetflowHeaderV9(sysUptime=uptime, unixSecs=T0, SourceID=source) / _chain(sets)


def ipfix(*sets, domain=5):
    b = bytearray(bytes(NetflowHeader(version=10) / NetflowHeaderV10(ExportTime=T0, ObservationDomainID=domain) /
                        _chain(sets)))
    b[2:4] = struct.pack("!H", len(b))  # scapy 2.5 leaves the version field out of the length
    return bytes(b)


def _chain(sets):
    p = sets[0]
    for s in sets[1:]:
        p = p / s
    return p


def raw_set(set_id, body):
    """A data set whose records scapy cannot generate (options data, variable length)."""
    pad = (-len(body)) % 4
    return NetflowDataflowsetV9(templateID=set_id, length=4 + len(body) + pad,
                                records=[NetflowRecordV9(fieldValue=body + b"\0" * pad)])


# ---- NetFlow v5 ----------------------------------------------------------------------------
r1 = NetflowRecordV5(src="10.0.0.1", dst="10.0.0.2", input=3, output=4, dpkts=10, dOctets=1500,
                     first=90000, last=99000, srcport=1234, dstport=80, tcpFlags=0x1b, prot=6, tos=0x10)
r2 = NetflowRecordV5(src="192.0.2.1", dst="198.51.100.2", input=1, output=2, dpkts=1, dOctets=76,
                     first=99500, last=99500, srcport=53, dstport=5353, tcpFlags=0, prot=17, tos=0)
out["v5_two"] = NetflowHeader(version=5) / NetflowHeaderV5(count=2, sysUptime=100000, unixSecs=T0,
                                                             unixNanoSeconds=500000000) / r1 / r2
out["v5_sampled"] = NetflowHeader(version=5) / NetflowHeaderV5(
    count=1, sysUptime=100000, unixSecs=T0, samplingInterval=0x4000 | 100) / NetflowRecordV5(
    src="10.0.0.3", dst="10.0.0.4", dpkts=2, dOctets=200, first=100000, last=100000, prot=6)

# ---- NetFlow v9 ----------------------------------------------------------------------------
tpl256 = NetflowFlowsetV9(templates=[NetflowTemplateV9(templateID=256, template_fields=[
    F(fieldType=8), F(fieldType=12), F(fieldType=1), F(fieldType=2), F(fieldType=7), F(fieldType=11),
    F(fieldType=4), F(fieldType=6), F(fieldType=5), F(fieldType=10), F(fieldType=14),
    F(fieldType=22), F(fieldType=21)])])
R256 = GetNetflowRecordV9(tpl256)
data256 = NetflowDataflowsetV9(templateID=256, records=[
    R256(IPV4_SRC_ADDR="10.0.0.1", IPV4_DST_ADDR="10.0.0.2", IN_BYTES=u32(1500), IN_PKTS=u32(10), L4_SRC_PORT=1234,
         L4_DST_PORT=80, PROTOCOL=6, TCP_FLAGS=0x1b, TOS=0x10, INPUT_SNMP=u16(3), OUTPUT_SNMP=u16(4),
         FIRST_SWITCHED=90000, LAST_SWITCHED=99000),
    R256(IPV4_SRC_ADDR="10.0.0.5", IPV4_DST_ADDR="10.0.0.6", IN_BYTES=u32(300), IN_PKTS=u32(3), L4_SRC_PORT=5000,
         L4_DST_PORT=53, PROTOCOL=17, TCP_FLAGS=0, TOS=0, INPUT_SNMP=u16(1), OUTPUT_SNMP=u16(2),
         FIRST_SWITCHED=99000, LAST_SWITCHED=99900)])
out["v9_tpl_data"] = v9(tpl256, data256)
out["v9_tpl_only"] = v9(tpl256)
out["v9_data_only"] = v9(data256)
# Uptime wrapped past 2^32 ms since the flow started: still 10 s before export.
out["v9_wrap"] = v9(tpl256, NetflowDataflowsetV9(templateID=256, records=[
    R256(IPV4_SRC_ADDR="10.0.0.7", IPV4_DST_ADDR="10.0.0.8", IN_BYTES=u32(1), IN_PKTS=u32(1), PROTOCOL=6,
         FIRST_SWITCHED=0xFFFFFFFF - 4999, LAST_SWITCHED=5000)]), uptime=5000)

tpl257 = NetflowFlowsetV9(templates=[NetflowTemplateV9(templateID=257, template_fields=[
    F(fieldType=27), F(fieldType=28), F(fieldType=7), F(fieldType=11), F(fieldType=4),
    F(fieldType=1), F(fieldType=2)])])
R257 = GetNetflowRecordV9(tpl257)
out["v9_v6"] = v9(tpl257, NetflowDataflowsetV9(templateID=257, records=[
    R257(IPV6_SRC_ADDR="2001:db8::1", IPV6_DST_ADDR="2001:db8::2", L4_SRC_PORT=5000, L4_DST_PORT=6000,
         PROTOCOL=17, IN_BYTES=u32(150), IN_PKTS=u32(3))]))

# Sampling from an options template (scope System; SAMPLING_INTERVAL 34, SAMPLING_ALGORITHM 35).
# (scapy 2.5 pads options template sets after their length field; hence the explicit pads.)
opt300 = NetflowOptionsFlowsetV9(templateID=300, option_scope_length=4, option_field_length=8, pad=b"\0\0",
                                 scopes=[NetflowOptionsFlowsetScopeV9(scopeFieldType=1, scopeFieldlength=4)],
                                 options=[NetflowOptionsFlowsetOptionV9(optionFieldType=34, optionFieldlength=4),
                                          NetflowOptionsFlowsetOptionV9(optionFieldType=35, optionFieldlength=1)])
optdata300 = raw_set(300, struct.pack("!IIB", 0x0a000001, 10, 2))
out["v9_sampling"] = v9(opt300, optdata300, tpl256, data256, source=8)
out["v9_sampling_options_only"] = v9(opt300, optdata300, source=9)
out["v9_sampling_data_only"] = v9(tpl256, data256, source=9)

# Per-sampler rates (Cisco style): FLOW_SAMPLER_ID 48, MODE 49, RANDOM_INTERVAL 50.
opt301 = NetflowOptionsFlowsetV9(templateID=301, option_scope_length=4, option_field_length=12, pad=b"\0\0",
                                 scopes=[NetflowOptionsFlowsetScopeV9(scopeFieldType=1, scopeFieldlength=4)],
                                 options=[NetflowOptionsFlowsetOptionV9(optionFieldType=48, optionFieldlength=1),
                                          NetflowOptionsFlowsetOptionV9(optionFieldType=49, optionFieldlength=1),
                                          NetflowOptionsFlowsetOptionV9(optionFieldType=50, optionFieldlength=4)])
optdata301 = raw_set(301, struct.pack("!IBBI", 1, 1, 2, 100) + struct.pack("!IBBI", 1, 2, 2, 1000))
tpl258 = NetflowFlowsetV9(templates=[NetflowTemplateV9(templateID=258, template_fields=[
    F(fieldType=8), F(fieldType=12), F(fieldType=1), F(fieldType=2), F(fieldType=48, fieldLength=1)])])
data258 = raw_set(258, b"".join(struct.pack("!4s4sIIB", bytes([10, 0, 1, s]), bytes([10, 0, 2, s]), 100, 1, s)
                                for s in (1, 2, 3)))
out["v9_samplers"] = v9(opt301, optdata301, tpl258, data258, source=10)

# ---- IPFIX ---------------------------------------------------------------------------------
tpl400 = NetflowFlowsetV9(flowSetID=2, templates=[NetflowTemplateV9(templateID=400, template_fields=[
    F(fieldType=8), F(fieldType=12), F(fieldType=7), F(fieldType=11), F(fieldType=4),
    F(fieldType=6, fieldLength=2), F(fieldType=1, fieldLength=8), F(fieldType=2, fieldLength=8),
    F(fieldType=152, fieldLength=8), F(fieldType=153, fieldLength=8), F(fieldType=10, fieldLength=4),
    F(fieldType=14, fieldLength=4)])])
data400 = raw_set(400, struct.pack("!4s4sHHBHQQQQII", bytes([10, 1, 0, 1]), bytes([10, 1, 0, 2]), 40000, 443,
                                   6, 0x0118, 123456, 100, T0 * 1000 - 2500, T0 * 1000 - 1250, 7, 8))
out["ipfix_basic"] = ipfix(tpl400, data400)
out["ipfix_data_only"] = ipfix(data400)
out["ipfix_withdraw"] = ipfix(NetflowFlowsetV9(flowSetID=2, templates=[NetflowTemplateV9(templateID=400, fieldCount=0)]))

# Enterprise fields we do not know (fixed and variable length) and a variable-length IANA field.
tpl401 = NetflowFlowsetV9(flowSetID=2, templates=[NetflowTemplateV9(templateID=401, template_fields=[
    F(fieldType=8), F(fieldType=12),
    F(enterpriseBit=1, fieldType=100, fieldLength=3, enterpriseNumber=9),
    F(enterpriseBit=1, fieldType=101, fieldLength=65535, enterpriseNumber=9),
    F(fieldType=82, fieldLength=65535),  # interfaceName
    F(fieldType=1), F(fieldType=2)])])
rec_a = bytes([10, 2, 0, 1, 10, 2, 0, 2]) + b"abc" + b"\x05hello" + b"\x03eth" + struct.pack("!II", 1000, 10)
rec_b = bytes([10, 2, 0, 3, 10, 2, 0, 4]) + b"xyz" + b"\xff" + struct.pack("!H", 300) + b"L" * 300 + b"\x00" + \
    struct.pack("!II", 2000, 20)
out["ipfix_varlen"] = ipfix(tpl401, raw_set(401, rec_a + rec_b))
# The second record announces a 256-byte string and ends after 10 of them.
out["ipfix_varlen_truncated"] = ipfix(tpl401, raw_set(401, rec_a + bytes([10, 2, 0, 3, 10, 2, 0, 4]) + b"xyz" +
                                                      b"\xff\x01\x00" + b"L" * 10))

# Options: systemInitTimeMilliseconds and packet interval/space sampling; data in uptime ms.
# (scapy 2.5 drops the option fields when it pads this set itself, hence the explicit pad.)
opt402 = NetflowOptionsFlowset10(templateID=402, field_count=4, scope_field_count=1, pad=b"\0\0", scopes=[NetflowOptionsFlowsetScopeV9(scopeFieldType=143, scopeFieldlength=4)],
                                 options=[NetflowOptionsFlowsetOptionV9(optionFieldType=160, optionFieldlength=8),
                                          NetflowOptionsFlowsetOptionV9(optionFieldType=305, optionFieldlength=4),
                                          NetflowOptionsFlowsetOptionV9(optionFieldType=306, optionFieldlength=4)])
optdata402 = raw_set(402, struct.pack("!IQII", 1, (T0 - 100) * 1000, 1, 9))
tpl403 = NetflowFlowsetV9(flowSetID=2, templates=[NetflowTemplateV9(templateID=403, template_fields=[
    F(fieldType=8), F(fieldType=12), F(fieldType=1), F(fieldType=2), F(fieldType=22), F(fieldType=21)])])
data403 = raw_set(403, struct.pack("!4s4sIIII", bytes([10, 3, 0, 1]), bytes([10, 3, 0, 2]), 700, 7, 5000, 6000))
out["ipfix_options"] = ipfix(opt402, optdata402, tpl403, data403, domain=6)

# RFC 5103 biflow: reverse counters under PEN 29305.
tpl404 = NetflowFlowsetV9(flowSetID=2, templates=[NetflowTemplateV9(templateID=404, template_fields=[
    F(fieldType=8), F(fieldType=12), F(fieldType=7), F(fieldType=11), F(fieldType=4),
    F(fieldType=1, fieldLength=8), F(fieldType=2, fieldLength=8),
    F(enterpriseBit=1, fieldType=1, fieldLength=8, enterpriseNumber=29305),
    F(enterpriseBit=1, fieldType=2, fieldLength=8, enterpriseNumber=29305)])])
out["ipfix_biflow"] = ipfix(tpl404, raw_set(404, struct.pack("!4s4sHHBQQQQ", bytes([10, 4, 0, 1]), bytes([10, 4, 0, 2]),
                                                             40000, 80, 6, 1000, 10, 500, 5)))

# IPv6 with times as microsecond deltas to the export time.
tpl405 = NetflowFlowsetV9(flowSetID=2, templates=[NetflowTemplateV9(templateID=405, template_fields=[
    F(fieldType=27), F(fieldType=28), F(fieldType=4), F(fieldType=1), F(fieldType=2),
    F(fieldType=158, fieldLength=4), F(fieldType=159, fieldLength=4)])])
out["ipfix_v6_deltas"] = ipfix(tpl405, raw_set(405, bytes.fromhex("20010db8" + "0" * 23 + "1") +
                                               bytes.fromhex("20010db8" + "0" * 23 + "2") +
                                               struct.pack("!BIIII", 58, 64, 1, 3000000, 1000000)))

for name, pkt in out.items():
    print(name, bytes(pkt).hex())

if len(sys.argv) == 3 and sys.argv[1] == "--pcap":
    wrpcap(sys.argv[2], [Ether() / IP(src="192.0.2.200", dst="192.0.2.201") / UDP(sport=5000, dport=2055) /
                         Raw(bytes(p)) for p in out.values()])
