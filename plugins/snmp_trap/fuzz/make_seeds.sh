#!/usr/bin/env bash
# Seeds for fuzz_snmp_trap: the scapy vectors of tests/trap_vectors.py, datagrams captured from
# net-snmp's snmptrap/snmpinform (v1, v2c, v3 for the fuzzer's users, discovery probes, informs
# to the fuzzer's engine ID), and v3 messages carrying their scoped PDU in clear where the
# ciphertext goes, which the fuzzer encrypts and signs itself. usage: make_seeds.sh CORPUS_DIR
set -euo pipefail
mkdir -p "$1"
HERE=$(cd "$(dirname "$0")" && pwd)
/usr/bin/python3 "$HERE/../tests/trap_vectors.py" | /usr/bin/python3 -c '
import sys, os
for line in sys.stdin:
    f = line.rstrip("\n").split("\t")
    open(os.path.join(sys.argv[1], "vec_" + f[0]), "wb").write(bytes.fromhex(f[1]))
' "$1"
command -v snmptrap >/dev/null || exit 0
/usr/bin/python3 - "$1" <<'PY'
import os, socket, subprocess, sys, tempfile
from scapy.asn1.asn1 import ASN1_INTEGER, ASN1_OID, ASN1_STRING, ASN1_TIME_TICKS
from scapy.layers.snmp import SNMPinform, SNMPtrapv2, SNMPvarbind

out = sys.argv[1]
state = tempfile.mkdtemp()
env = dict(os.environ, MIBS="", MIBDIRS="/nonexistent", SNMP_PERSISTENT_DIR=state, SNMPCONFPATH=state)
OWN = "0x8000000005f00ff00f01"   # fuzz_snmp_trap.cpp's kOwnEngine
TRAP = ["", "1.3.6.1.6.3.1.1.5.3", "1.3.6.1.2.1.2.2.1.1.2", "i", "2", "1.3.6.1.2.1.2.2.1.8.2", "i", "2",
        "1.3.6.1.4.1.32473.7.1.3.0", "s", "abcbd", "1.3.6.1.4.1.32473.7.1.4.0", "C", "99"]
USERS = {
    "fuzz": ["-u", "fuzz", "-l", "authPriv", "-a", "SHA", "-A", "fuzzauth123", "-x", "AES", "-X", "fuzzpriv123"],
    "fuzzauth": ["-u", "fuzzauth", "-l", "authNoPriv", "-a", "SHA-256", "-A", "fuzzauth123"],
    "fuzz256": ["-u", "fuzz256", "-l", "authPriv", "-a", "SHA-512", "-A", "fuzzauth123", "-x", "AES-256", "-X", "fuzzpriv123"],
    "fuzznone": ["-u", "fuzznone", "-l", "noAuthNoPriv"],
}

def capture(name, args):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    s.settimeout(5)
    target = "udp:127.0.0.1:%d" % s.getsockname()[1]
    p = subprocess.Popen([a if a != "TARGET" else target for a in args], env=env,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        d, _ = s.recvfrom(65535)
        open(os.path.join(out, "netsnmp_" + name), "wb").write(d)
    except socket.timeout:
        pass
    p.kill()
    p.wait()

capture("v1", ["snmptrap", "-v1", "-c", "public", "TARGET", "1.3.6.1.4.1.32473.7", "192.0.2.1", "6", "1", "55",
               "1.3.6.1.4.1.32473.7.1.1.0", "i", "3"])
capture("v2c", ["snmptrap", "-v2c", "-c", "public", "TARGET"] + TRAP)
capture("v2c_inform", ["snmpinform", "-v2c", "-c", "public", "TARGET"] + TRAP)
for u, a in USERS.items():
    capture("v3_trap_" + u, ["snmptrap", "-v3", "-e", "0x8000000001aabbccdd"] + a + ["TARGET"] + TRAP)
    capture("v3_inform_" + u, ["snmpinform", "-v3", "-e", OWN, "-Z", "1,10"] + a + ["TARGET"] + TRAP)
capture("v3_probe", ["snmpinform", "-v3"] + USERS["fuzz"] + ["TARGET"] + TRAP)

# v3 messages with the scoped PDU in clear in msgData's OCTET STRING, for the fuzzer to seal.
def tlv(tag, body):
    n = len(body)
    if n < 0x80:
        return bytes([tag, n]) + body
    b = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(b)]) + b + body

def integer(v):
    return tlv(0x02, v.to_bytes(max(1, (v.bit_length() + 8) // 8), "big", signed=True))

def octets(b):
    return tlv(0x04, b)

def vb(oid, value):
    return SNMPvarbind(oid=ASN1_OID(oid), value=value)

vbs = [vb("1.3.6.1.2.1.1.3.0", ASN1_TIME_TICKS(5)), vb("1.3.6.1.6.3.1.1.4.1.0", ASN1_OID("1.3.6.1.6.3.1.1.5.3")),
       vb("1.3.6.1.2.1.2.2.1.8.2", ASN1_INTEGER(2)), vb("1.3.6.1.4.1.9.1", ASN1_STRING(b"abd"))]
for name, pdu, engine in [("trap", SNMPtrapv2(id=7, varbindlist=vbs), bytes.fromhex("8000000001aabbccdd")),
                          ("inform", SNMPinform(id=8, varbindlist=vbs), bytes.fromhex(OWN[2:]))]:
    for user, flags, mac, priv in [("fuzz", 7, 12, 8), ("fuzz256", 7, 48, 8), ("fuzzauth", 5, 24, 0)]:
        scoped = tlv(0x30, octets(engine) + octets(b"") + bytes(pdu))
        usm = tlv(0x30, octets(engine) + integer(1) + integer(10) + octets(user.encode()) +
                  octets(b"\0" * mac) + octets(b"\1" * priv))
        header = tlv(0x30, integer(4242) + integer(65507) + octets(bytes([flags])) + integer(3))
        body = octets(scoped) if flags & 2 else scoped
        msg = tlv(0x30, integer(3) + header + octets(usm) + body)
        open(os.path.join(out, "clear_%s_%s" % (name, user)), "wb").write(msg)
PY
