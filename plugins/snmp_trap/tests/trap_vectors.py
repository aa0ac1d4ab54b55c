#!/usr/bin/python3
"""SNMP v1/v2c trap and inform datagrams built with scapy's SNMP layer (an encoder nobody on this
project wrote), plus hostile variants made by cutting and patching its bytes. Prints one case a
line: name TAB datagram-hex TAB expectation TAB expectation ... with expectations
  drop=REASON          the datagram is dropped for that reason (no event, no reply)
  kind=K / source=S / message=M / severity=N
  @ATTR=VALUE          the event's attribute
  !ATTR                the attribute is absent
  reply=HEX            the exact answer (an inform's Response, encoded by scapy too)
test_snmp_trap.cpp runs every case through the receiver with communities [public, private].
Run with /usr/bin/python3 (Debian's scapy)."""
import sys

from scapy.asn1.asn1 import (ASN1_COUNTER32, ASN1_GAUGE32, ASN1_INTEGER, ASN1_IPADDRESS, ASN1_NULL,
                             ASN1_OID, ASN1_STRING, ASN1_TIME_TICKS)
from scapy.layers.snmp import (SNMP, SNMPget, SNMPinform, SNMPresponse, SNMPtrapv1, SNMPtrapv2,
                               SNMPvarbind)

UPTIME = "1.3.6.1.2.1.1.3.0"
TRAPOID = "1.3.6.1.6.3.1.1.4.1.0"
TEST = "1.3.6.1.4.1.32473.7"          # OUTPOST-TEST-MIB::outpostTestMIB (tests/mibs)
cases = []


def vb(oid, value):
    return SNMPvarbind(oid=ASN1_OID(oid), value=value)


def case(name, data, *expect):
    cases.append((name, bytes(data), list(expect)))


def v2_list(trap, extra, uptime=4242):
    return [vb(UPTIME, ASN1_TIME_TICKS(uptime)), vb(TRAPOID, ASN1_OID(trap))] + extra


# ---- v1 ------------------------------------------------------------------------------------
v1 = SNMP(version=0, community=b"public", PDU=SNMPtrapv1(
    enterprise=ASN1_OID(TEST), agent_addr=ASN1_IPADDRESS("192.0.2.5"), generic_trap=6,
    specific_trap=1, time_stamp=ASN1_TIME_TICKS(12345), varbindlist=[
        vb(TEST + ".1.1.0", ASN1_INTEGER(7)),
        vb(TEST + ".1.2.0", ASN1_INTEGER(2)),
        vb(TEST + ".1.3.0", ASN1_STRING(b"uplink lost")),
    ]))
case("v1_enterprise_specific", v1, "kind=trap", "severity=6", "source=127.0.0.1",
     "@version=1", "@pdu=trap", "@community=public", "@sender=127.0.0.1:40000",
     "@trap_oid=1.3.6.1.4.1.32473.7.0.1", "@trap_name=1.3.6.1.4.1.32473.7.0.1",
     "@enterprise=1.3.6.1.4.1.32473.7", "@agent_addr=192.0.2.5", "@generic_trap=6",
     "@specific_trap=1", "@sys_uptime=12345", "!request_id",
     "@1.3.6.1.4.1.32473.7.1.1.0=integer: 7", "@1.3.6.1.4.1.32473.7.1.2.0=integer: 2",
     "@1.3.6.1.4.1.32473.7.1.3.0=octets: uplink lost",
     "message=1.3.6.1.4.1.32473.7.0.1 1.3.6.1.4.1.32473.7.1.1.0=7 1.3.6.1.4.1.32473.7.1.2.0=2 "
     "1.3.6.1.4.1.32473.7.1.3.0=uplink lost")

# Generic linkDown: RFC 3584 maps generic-trap 2 to snmpTraps.3, named by the built-in names.
v1g = SNMP(version=0, community=b"private", PDU=SNMPtrapv1(
    enterprise=ASN1_OID("1.3.6.1.4.1.8072.3.2.10"), agent_addr=ASN1_IPADDRESS("198.51.100.1"),
    generic_trap=2, specific_trap=0, time_stamp=ASN1_TIME_TICKS(99),
    varbindlist=[vb("1.3.6.1.2.1.2.2.1.1.3", ASN1_INTEGER(3)),
                 vb("1.3.6.1.2.1.2.2.1.7.3", ASN1_INTEGER(1)),
                 vb("1.3.6.1.2.1.2.2.1.8.3", ASN1_INTEGER(7))]))
case("v1_generic_linkdown", v1g, "kind=trap", "@community=private",
     "@trap_oid=1.3.6.1.6.3.1.1.5.3", "@trap_name=IF-MIB::linkDown", "@generic_trap=2",
     "@agent_addr=198.51.100.1", "@IF-MIB::ifIndex.3=integer: 3",
     "@IF-MIB::ifAdminStatus.3=integer: up(1)", "@IF-MIB::ifOperStatus.3=integer: lowerLayerDown(7)",
     "message=IF-MIB::linkDown ifIndex.3=3 ifAdminStatus.3=up ifOperStatus.3=lowerLayerDown")

for g, name in [(0, "SNMPv2-MIB::coldStart"), (1, "SNMPv2-MIB::warmStart"),
                (4, "SNMPv2-MIB::authenticationFailure"), (5, "1.3.6.1.6.3.1.1.5.6")]:
    p = SNMP(version=0, community=b"public", PDU=SNMPtrapv1(
        enterprise=ASN1_OID("1.3.6.1.4.1.8072.3.2.10"), agent_addr=ASN1_IPADDRESS("10.0.0.1"),
        generic_trap=g, specific_trap=0, time_stamp=ASN1_TIME_TICKS(1), varbindlist=[]))
    case(f"v1_generic_{g}", p, f"@trap_name={name}", f"@trap_oid=1.3.6.1.6.3.1.1.5.{g + 1}",
         f"message={name}")

# ---- v2c trap: every value type scapy encodes ----------------------------------------------
v2 = SNMP(version=1, community=b"public", PDU=SNMPtrapv2(id=1234567, varbindlist=v2_list(
    "1.3.6.1.6.3.1.1.5.3", [
        vb("1.3.6.1.2.1.2.2.1.1.2", ASN1_INTEGER(2)),
        vb("1.3.6.1.2.1.2.2.1.8.2", ASN1_INTEGER(2)),
        vb("1.3.6.1.2.1.2.2.1.2.2", ASN1_STRING(b"eth1")),
        vb("1.3.6.1.4.1.32473.7.1.5", ASN1_INTEGER(-5)),
        vb("1.3.6.1.4.1.32473.7.1.6", ASN1_GAUGE32(4294967295)),
        vb("1.3.6.1.4.1.32473.7.1.7", ASN1_COUNTER32(17)),
        vb("1.3.6.1.4.1.32473.7.1.8", ASN1_IPADDRESS("10.1.2.3")),
        vb("1.3.6.1.4.1.32473.7.1.9", ASN1_OID("1.3.6.1.6.3.1.1.5.4")),
        vb("1.3.6.1.4.1.32473.7.1.10", ASN1_STRING(b"\x00\x1b\x21\xaa\xbb\xcc")),
        vb("1.3.6.1.4.1.32473.7.1.11", ASN1_TIME_TICKS(360000)),
        vb("1.3.6.1.4.1.32473.7.1.12", ASN1_NULL(0)),
    ], uptime=4242)))
case("v2c_linkdown_all_types", v2, "kind=trap", "@version=2c", "@pdu=trap", "@community=public",
     "@request_id=1234567", "@trap_oid=1.3.6.1.6.3.1.1.5.3", "@trap_name=IF-MIB::linkDown",
     "@sys_uptime=4242", "!agent_addr", "!enterprise",
     "@IF-MIB::ifIndex.2=integer: 2", "@IF-MIB::ifOperStatus.2=integer: down(2)",
     "@IF-MIB::ifDescr.2=octets: eth1",
     "@1.3.6.1.4.1.32473.7.1.5=integer: -5", "@1.3.6.1.4.1.32473.7.1.6=gauge32: 4294967295",
     "@1.3.6.1.4.1.32473.7.1.7=counter32: 17", "@1.3.6.1.4.1.32473.7.1.8=ipaddress: 10.1.2.3",
     "@1.3.6.1.4.1.32473.7.1.9=oid: IF-MIB::linkUp",
     "@1.3.6.1.4.1.32473.7.1.10=octets: 00:1b:21:aa:bb:cc",
     "@1.3.6.1.4.1.32473.7.1.11=timeticks: 360000", "@1.3.6.1.4.1.32473.7.1.12=null",
     "!1.3.6.1.2.1.1.3.0", "!1.3.6.1.6.3.1.1.4.1.0")

# snmpTrapOID.0 first and sysUpTime.0 missing: still a trap, no sys_uptime.
odd = SNMP(version=1, community=b"public", PDU=SNMPtrapv2(id=5, varbindlist=[
    vb(TRAPOID, ASN1_OID(TEST + ".0.2")), vb(TEST + ".1.1.0", ASN1_INTEGER(9))]))
case("v2c_no_uptime", odd, "kind=trap", "@trap_oid=1.3.6.1.4.1.32473.7.0.2", "!sys_uptime",
     "@1.3.6.1.4.1.32473.7.1.1.0=integer: 9")

# Octets: UTF-8 text stays text, other bytes become hex (every sink gets valid text), trailing
# NULs of C strings go.
txt = SNMP(version=1, community=b"public", PDU=SNMPtrapv2(id=8, varbindlist=v2_list(TEST + ".0.1", [
    vb(TEST + ".1.3.1", ASN1_STRING("été ☃".encode())), vb(TEST + ".1.3.2", ASN1_STRING(b"\xff\xfe abc")),
    vb(TEST + ".1.3.3", ASN1_STRING(b"\xed\xa0\x80")), vb(TEST + ".1.3.4", ASN1_STRING(b"name\x00\x00"))])))
case("v2c_octets_text_and_binary", txt, "@1.3.6.1.4.1.32473.7.1.3.1=octets: été ☃",
     "@1.3.6.1.4.1.32473.7.1.3.2=octets: ff:fe:20:61:62:63", "@1.3.6.1.4.1.32473.7.1.3.3=octets: ed:a0:80",
     "@1.3.6.1.4.1.32473.7.1.3.4=octets: name")

# Two varbinds with one OID keep both.
dup = SNMP(version=1, community=b"public", PDU=SNMPtrapv2(id=6, varbindlist=v2_list(
    TEST + ".0.1", [vb(TEST + ".1.3.0", ASN1_STRING(b"a")), vb(TEST + ".1.3.0", ASN1_STRING(b"b"))])))
case("v2c_same_oid_twice", dup, "@1.3.6.1.4.1.32473.7.1.3.0=octets: a",
     "@1.3.6.1.4.1.32473.7.1.3.0#2=octets: b")

# ---- v2c inform: acknowledged with a Response of the same request-id and varbinds -----------
inform_vbs = v2_list(TEST + ".0.2", [vb(TEST + ".1.1.0", ASN1_INTEGER(4)),
                                     vb(TEST + ".1.3.0", ASN1_STRING(b"back"))], uptime=77)
inf = SNMP(version=1, community=b"private", PDU=SNMPinform(id=424242, varbindlist=inform_vbs))
ack = SNMP(version=1, community=b"private", PDU=SNMPresponse(id=424242, varbindlist=inform_vbs))
case("v2c_inform", inf, "kind=trap", "@pdu=inform", "@request_id=424242", "@community=private",
     "@sys_uptime=77", "reply=" + bytes(ack).hex())
inf_neg = SNMP(version=1, community=b"public", PDU=SNMPinform(id=-7, varbindlist=inform_vbs))
ack_neg = SNMP(version=1, community=b"public", PDU=SNMPresponse(id=-7, varbindlist=inform_vbs))
case("v2c_inform_negative_id", inf_neg, "@request_id=-7", "reply=" + bytes(ack_neg).hex())

# ---- refused --------------------------------------------------------------------------------
case("bad_community", SNMP(version=1, community=b"secret", PDU=v2.PDU), "drop=bad_community")
case("v1_inform_is_not_v1", SNMP(version=0, community=b"public", PDU=inf.PDU), "drop=not_a_notification")
case("v2c_carrying_v1_pdu", SNMP(version=1, community=b"public", PDU=v1.PDU), "drop=not_a_notification")
case("get_request", SNMP(version=1, community=b"public", PDU=SNMPget(id=1, varbindlist=[vb(UPTIME, ASN1_NULL(0))])),
     "drop=not_a_notification")
case("response", ack, "drop=not_a_notification")
case("v2c_no_trap_oid", SNMP(version=1, community=b"public", PDU=SNMPtrapv2(id=1, varbindlist=[
    vb(UPTIME, ASN1_TIME_TICKS(1))])), "drop=missing_trap_oid")
case("version_2", SNMP(version=2, community=b"public", PDU=v2.PDU), "drop=bad_version")
case("version_big", SNMP(version=1 << 40, community=b"public", PDU=v2.PDU), "drop=bad_version")

raw = bytes(v2)
case("truncated", raw[:-3], "drop=truncated")
case("trailing_bytes", raw + b"\x00\x00", "drop=trailing_bytes")
case("empty", b"", "drop=truncated")
case("not_a_sequence", b"\x04\x03abc", "drop=unexpected_tag")
case("indefinite_length", b"\x30\x80" + raw[4:] + b"\x00\x00", "drop=bad_length")
case("five_length_bytes", b"\x30\x85\x00\x00\x00\x00\x05\x02\x01\x01\x04\x00", "drop=bad_length")
case("high_tag_number", b"\x30\x05\x1f\x01\x01\x01\x01", "drop=bad_tag")
case("length_past_end", b"\x30\x84\x7f\xff\xff\xff\x02\x01\x01", "drop=truncated")
case("empty_integer_version", b"\x30\x02\x02\x00", "drop=bad_integer")
case("nine_byte_version", b"\x30\x0b\x02\x09" + b"\x01" * 9, "drop=bad_integer")


def patch_oid(data, old, new):
    i = data.index(old)
    assert data.index(old) == data.rindex(old)
    return data[:i] + new + data[i + len(old):]


# The trap OID value's encoding made non-minimal (0x80 leading byte in a sub-identifier).
trap_oid_value = bytes(ASN1_OID(TEST + ".0.1"))
bad = SNMP(version=1, community=b"public", PDU=SNMPtrapv2(id=9, varbindlist=v2_list(TEST + ".0.1", [])))
b = bytes(bad)
bad_oid_value = trap_oid_value[:2] + b"\x80" + trap_oid_value[3:]  # same length, first arc 0x80-led
case("oid_non_minimal", patch_oid(b, trap_oid_value, bad_oid_value), "drop=bad_oid")
case("oid_unfinished", patch_oid(b, trap_oid_value, trap_oid_value[:-1] + b"\x81"), "drop=bad_oid")
# An empty OID: the trap OID value's TLV becomes 06 00 and an OCTET STRING that fills its room
# (the varbind then has a third element, but the OID fails first).
case("oid_empty", patch_oid(b, trap_oid_value, b"\x06\x00\x04" + bytes([len(trap_oid_value) - 4]) +
                            b"x" * (len(trap_oid_value) - 4)), "drop=bad_oid")
gen9 = SNMP(version=0, community=b"public", PDU=SNMPtrapv1(
    enterprise=ASN1_OID(TEST), agent_addr=ASN1_IPADDRESS("192.0.2.5"), generic_trap=9,
    specific_trap=1, time_stamp=ASN1_TIME_TICKS(1), varbindlist=[]))
case("v1_generic_out_of_range", gen9, "drop=bad_field")

for name, data, expect in cases:
    print(name + "\t" + data.hex() + "\t" + "\t".join(expect))
