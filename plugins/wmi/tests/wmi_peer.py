#!/usr/bin/python3
"""WMI over DCOM (MS-WMI on MS-DCOM on MS-RPCE) test peer for the wmi plugin's tests.

No Windows and no DCOM server exists here, so the tests talk to this server on
loopback.  Its security and marshalling layers are not ours: the NTLM acceptor
is built on impacket's NTLM structures and primitives (python3-impacket), the
NDR of the DCOM/WMI calls is impacket's (dcomrt.py, dcom/wmi.py), and
peer_selftest.sh proves the whole peer against impacket's own DCOM/WMI client.
The MS-WMIO object encoding (wmio_encode.py) is this peer's own.

    /usr/bin/python3 wmi_peer.py --port 0 --oxid-port 0 --fixture fixture.json \
        --user Administrator --password 'P@ss-w0rd1' --domain WINHOST \
        [--hostname WINHOST01] [--min-level integrity] [--max-frag 5840] \
        [--control control.json] [--log calls.jsonl] [--ready-file ready.json]

prints "WMI_PEER port=<resolver/activator port> oxid_port=<object exporter port>"
once both listen on 127.0.0.1 (and writes the same as JSON to --ready-file),
then serves until SIGTERM.  See PEER.md.

Only /usr/bin/python3 can import impacket (a Debian package).
"""

import argparse
import json
import os
import re
import signal
import socket
import socketserver
import struct
import sys
import threading
import time

from Cryptodome.Cipher import ARC4
from impacket import ntlm
from impacket.dcerpc.v5 import dcomrt
from impacket.dcerpc.v5.dcom import wmi
from impacket.dcerpc.v5.dtypes import HRESULT, NULL
from impacket.uuid import bin_to_string, string_to_bin, uuidtup_to_bin

HERE = os.path.dirname(os.path.abspath(__file__))
_LIB = os.path.join(HERE, '..', '..', 'lib')
sys.path.insert(0, os.path.join(_LIB, 'ntlm', 'tests'))
sys.path.insert(0, os.path.join(_LIB, 'wql', 'tests'))
sys.path.insert(0, HERE)
from ntlm_acceptor import NtlmAcceptor  # noqa: E402
from wmi_store import ReloadingJson, Store, Wql, WqlError, get_prop  # noqa: E402
import wmio_encode as wmio  # noqa: E402

# ---------------------------------------------------------------------------
# MS-RPCE / C706 constants
# ---------------------------------------------------------------------------
REQUEST, RESPONSE, FAULT, BIND, BIND_ACK, BIND_NAK = 0, 2, 3, 11, 12, 13
ALTER_CONTEXT, ALTER_CONTEXT_RESP, AUTH3, SHUTDOWN, CO_CANCEL, ORPHANED = 14, 15, 16, 17, 18, 19
FIRST_FRAG, LAST_FRAG, OBJECT_UUID = 0x01, 0x02, 0x80
AUTHN_WINNT = 10
LEVEL_NONE, LEVEL_CONNECT, LEVEL_CALL, LEVEL_PKT, LEVEL_INTEGRITY, LEVEL_PRIVACY = 1, 2, 3, 4, 5, 6
LEVELS = {'none': 1, 'connect': 2, 'call': 3, 'packet': 4, 'integrity': 5, 'privacy': 6}

NDR = uuidtup_to_bin(('8a885d04-1ceb-11c9-9fe8-08002b104860', '2.0'))
BTFN_PREFIX = string_to_bin('6cb71c2c-9812-4540-0000-000000000000')[:8]

# Faults (C706 appendix E, MS-RPCE 2.2.2.14 / 3.1.1.5.5)
NCA_S_FAULT_ACCESS_DENIED = 0x00000005
NCA_S_OP_RNG_ERROR = 0x1c010002
NCA_S_UNK_IF = 0x1c010003
NCA_S_PROTO_ERROR = 0x1c01000b
NCA_S_FAULT_NDR = 0x000006f7
RPC_S_SEC_PKG_ERROR = 0x00000721
# bind_nak reasons / context results
REASON_NOT_SPECIFIED, AUTH_TYPE_NOT_RECOGNIZED = 0, 8
RESULT_ACCEPT, RESULT_PROVIDER_REJECTION, RESULT_NEGOTIATE_ACK = 0, 2, 3
ABSTRACT_SYNTAX_NOT_SUPPORTED, TRANSFER_SYNTAXES_NOT_SUPPORTED = 1, 2

# HRESULTs
S_OK, S_FALSE = 0, 1
E_NOINTERFACE, E_NOTIMPL, E_ACCESSDENIED = 0x80004002, 0x80004001, 0x80070005
REGDB_E_CLASSNOTREG = 0x80040154
RPC_E_DISCONNECTED, RPC_E_INVALID_OBJECT = 0x80010108, 0x80010114
OR_INVALID_OXID, OR_INVALID_SET = 0x776, 0x777
WBEM_S_FALSE = 1
WBEM_S_TIMEDOUT = 0x00040004
WBEM_E_FAILED = 0x80041001
WBEM_E_NOT_FOUND = 0x80041002
WBEM_E_ACCESS_DENIED = 0x80041003
WBEM_E_INVALID_PARAMETER = 0x80041008
WBEM_E_NOT_SUPPORTED = 0x8004100C
WBEM_E_INVALID_NAMESPACE = 0x8004100E
WBEM_E_INVALID_CLASS = 0x80041010
WBEM_E_INVALID_METHOD = 0x80041055
WBEM_E_INVALID_QUERY = 0x80041017
WBEM_E_INVALID_QUERY_TYPE = 0x80041018
WBEM_E_INVALID_OBJECT_PATH = 0x8004103A

# Interfaces (MS-DCOM 1.9, MS-WMI 1.9)
def _iid(s):
    return string_to_bin(s)


IID = {
    'IRemoteSCMActivator': _iid('000001A0-0000-0000-C000-000000000046'),
    'IActivation': _iid('4d9f4ab8-7d1c-11cf-861e-0020af6e7c57'),
    'IObjectExporter': _iid('99fcfec4-5260-101b-bbcb-00aa0021347a'),
    'IRemUnknown': _iid('00000131-0000-0000-C000-000000000046'),
    'IRemUnknown2': _iid('00000143-0000-0000-C000-000000000046'),
    'IUnknown': _iid('00000000-0000-0000-C000-000000000046'),
    'IWbemLevel1Login': _iid('F309AD18-D86A-11d0-A075-00C04FB68820'),
    'IWbemServices': _iid('9556DC99-828C-11CF-A37E-00AA003240C7'),
    'IEnumWbemClassObject': _iid('027947e1-d731-11ce-a357-000000000001'),
    'IWbemClassObject': _iid('DC12A681-737F-11CF-884D-00AA004B2E24'),
    'IWbemFetchSmartEnum': _iid('1C1C45EE-4395-11d2-B60B-00104B703EFD'),
    'IWbemLoginClientID': _iid('d4781cd6-e5d3-44df-ad94-930efe48a887'),
}
IFACE_NAME = {v: k for k, v in IID.items()}
RESOLVER_IFACES = ('IRemoteSCMActivator', 'IObjectExporter')
EXPORTER_IFACES = ('IRemUnknown', 'IRemUnknown2', 'IWbemLevel1Login', 'IWbemServices',
                   'IEnumWbemClassObject')
CLSID_WbemLevel1Login = _iid('8BC3F05E-D86B-11D0-A075-00C04FB68820')
CLSID_WbemClassObject = _iid('4590F812-1D3A-11D0-891F-00AA004B2E24')
CLSID_ActivationPropertiesOut = _iid('00000339-0000-0000-c000-000000000046')
CLSID_PropsOutInfo = _iid('00000339-0000-0000-c000-000000000046')
CLSID_ScmReplyInfo = _iid('000001b6-0000-0000-c000-000000000046')
CLSID_InstantiationInfo = _iid('000001ab-0000-0000-c000-000000000046')
CLSID_ScmRequestInfo = _iid('000001aa-0000-0000-c000-000000000046')
IID_IActivationPropertiesOut = _iid('000001A3-0000-0000-C000-000000000046')
MEOW = 0x574F454D


class Fault(Exception):
    """Answer the call with a fault PDU carrying this status."""

    def __init__(self, status, why=''):
        Exception.__init__(self, '0x%08x %s' % (status, why))
        self.status = status
        self.why = why


class Drop(Exception):
    """Close the connection without answering."""


def hexs(v):
    return '0x%08x' % (v & 0xffffffff)


# ---------------------------------------------------------------------------
# CIM types of the fixture's properties
# ---------------------------------------------------------------------------
_DMTF = re.compile(r'^\d{14}\.\d{6}[+-]\d{3}$')
_DMTF_INTERVAL = re.compile(r'^\d{14}\.\d{6}:000$')


def infer_type(values):
    """A CIM type name for a column of JSON values (first non-null decides the kind)."""
    vals = [v for v in values if v is not None]
    if not vals:
        return 'string'
    first = vals[0]
    if isinstance(first, list):
        items = [x for v in vals if isinstance(v, list) for x in v]
        return infer_type(items) + '[]' if items else 'string[]'
    if isinstance(first, bool):
        return 'boolean'
    if isinstance(first, int):
        ints = [v for v in vals if isinstance(v, int) and not isinstance(v, bool)]
        lo, hi = min(ints), max(ints)
        if lo < 0:
            return 'sint32' if lo >= -2 ** 31 and hi < 2 ** 31 else 'sint64'
        return 'uint32' if hi < 2 ** 32 else 'uint64'
    if isinstance(first, float):
        return 'real64'
    if isinstance(first, str) and (_DMTF.match(first) or _DMTF_INTERVAL.match(first)):
        return 'datetime'
    return 'string'


KEY_GUESS = ('DeviceID', 'Name', 'Handle', 'Tag')


def class_def(fixture, cname, rows):
    """The ClassDef of a fixture class: properties in first-seen order, types from the
    fixture's "cim_types" (else inferred), keys from "keys" (else guessed)."""
    order = []
    seen = set()
    for r in rows:
        for k in r:
            if k.lower() not in seen:
                seen.add(k.lower())
                order.append(k)
    types = {k.lower(): v for k, v in fixture.get('cim_types', {}).get(cname, {}).items()}
    props = []
    for k in order:
        t = types.get(k.lower()) or infer_type([get_prop(r, k)[1] for r in rows])
        props.append((k, t))
    keys = fixture.get('keys', {}).get(cname)
    if keys is None:
        if cname.lower() == 'win32_ntlogevent':
            keys = ['Logfile', 'RecordNumber']
        else:
            keys = [next((k for k in KEY_GUESS if k.lower() in seen), order[0] if order else '')]
    return wmio.ClassDef(cname, props, keys)


def typed_value(tname, v):
    """Coerce a JSON value to what the CIM type needs (uint64 may be written as text)."""
    if v is None:
        return None
    base = tname[:-2] if tname.endswith('[]') else tname
    if tname.endswith('[]'):
        return [typed_value(base, x) for x in (v if isinstance(v, list) else [v])]
    if base in ('sint8', 'uint8', 'sint16', 'uint16', 'sint32', 'uint32', 'sint64', 'uint64'):
        return int(v)
    if base in ('real32', 'real64'):
        return float(v)
    if base == 'boolean':
        return v if isinstance(v, bool) else str(v).lower() in ('true', '1')
    return v


# ---------------------------------------------------------------------------
# NDR helpers for what impacket's structures do not cover on the server side
# ---------------------------------------------------------------------------
def dualstringarray_words(bindings, port_host_list, authn=AUTHN_WINNT, princ=''):
    """MS-DCOM 2.2.19: the u16 array of string bindings (tower 7 = ncacn_ip_tcp)
    then security bindings; returns (words, security offset)."""
    words = []
    for addr in port_host_list:
        words.append(7)
        words += [ord(c) for c in addr] + [0]
    words.append(0)
    sec_off = len(words)
    words += [authn, 0xFFFF] + [ord(c) for c in princ] + [0]
    words.append(0)
    return words, sec_off


def dualstringarray_packed(addrs):
    words, off = dualstringarray_words(None, addrs)
    return struct.pack('<HH', len(words), off) + struct.pack('<%dH' % len(words), *words)


def ndr_dualstringarray(struct_obj, addrs):
    words, off = dualstringarray_words(None, addrs)
    struct_obj['wNumEntries'] = len(words)
    struct_obj['wSecurityOffset'] = off
    struct_obj['aStringArray'] = words


def objref_standard(iid, oxid, oid, ipid, resolver_addrs, refs=5):
    return (struct.pack('<II', MEOW, 1) + iid +
            struct.pack('<IIQQ', 0, refs, oxid, oid) + ipid + dualstringarray_packed(resolver_addrs))


def objref_custom(iid, clsid, data, size=None):
    return (struct.pack('<II', MEOW, 4) + iid + clsid +
            struct.pack('<II', 0, len(data) if size is None else size) + data)


def ndr_dword(v):
    d = dcomrt.DWORD()
    d['Data'] = v
    return d


def double_ptr(data):
    """A PPMInterfacePointer (pointer to a pointer to an MInterfacePointer) holding data."""
    inner = dcomrt.PMInterfacePointer()
    set_iface_ptr(inner, data)
    outer = dcomrt.PPMInterfacePointer()
    outer.fields['Data'] = inner
    return outer


def orpcthat(resp):
    resp['ORPCthat']['flags'] = 0
    resp['ORPCthat']['extensions'] = NULL


def set_iface_ptr(field, data):
    field['ulCntData'] = len(data)
    field['abData'] = list(data)


# ---------------------------------------------------------------------------
# DCOM objects
# ---------------------------------------------------------------------------
class Obj:
    def __init__(self, kind, iid, oid, user, **data):
        self.kind, self.iid, self.oid, self.user = kind, iid, oid, user
        self.refs = 5
        self.__dict__.update(data)


class Peer:
    def __init__(self, args):
        self.args = args
        self.store = Store(args.fixture)
        self.control = ReloadingJson(args.control, {})
        self.lock = threading.Lock()
        self.objects = {}           # ipid -> Obj
        self.released = set()
        self.oxid = struct.unpack('<Q', os.urandom(8))[0] | 1
        self.ipid_remunknown = self.new_ipid()
        # The OXID's IRemUnknown(2) object: always there, never released.
        self.objects[self.ipid_remunknown] = Obj('remunknown', IID['IRemUnknown2'],
                                                 self.new_oid(), None)
        self.objects[self.ipid_remunknown].refs = float('inf')
        self.sets = {}              # ping set id -> set of oids
        self.calls = 0
        self.fired = {}
        self.log_fh = open(args.log, 'a', encoding='utf-8') if args.log else None
        self.log_lock = threading.Lock()
        self.port = self.oxid_port = None

    # --- ids ---
    def new_ipid(self):
        return os.urandom(16)

    def new_oid(self):
        return struct.unpack('<Q', os.urandom(8))[0] | 1

    def resolver_addrs(self):
        return ['127.0.0.1[%d]' % self.port]

    def exporter_addrs(self):
        return ['127.0.0.1[%d]' % self.oxid_port]

    def export(self, obj):
        ipid = self.new_ipid()
        with self.lock:
            self.objects[ipid] = obj
        return ipid

    def objref(self, obj, ipid):
        return objref_standard(obj.iid, self.oxid, obj.oid, ipid, self.resolver_addrs())

    def log(self, entry):
        if not self.log_fh:
            return
        with self.log_lock:
            self.log_fh.write(json.dumps(entry, sort_keys=True, default=str) + '\n')
            self.log_fh.flush()

    def fixture(self):
        return self.store.data.get()

    def min_level(self):
        lvl = self.control.get().get('min_level', self.args.min_level)
        return LEVELS.get(str(lvl).lower(), LEVEL_INTEGRITY) if not isinstance(lvl, int) else lvl

    def next_call(self):
        with self.lock:
            self.calls += 1
            return self.calls

    def planned(self, n, op, cls):
        """The first control rule that matches this call (and still has shots left)."""
        rules = self.control.get().get('faults', [])
        for i, rule in enumerate(rules):
            if 'nth' in rule and rule['nth'] != n:
                continue
            if 'op' in rule and str(rule['op']).lower() != op.lower():
                continue
            if 'class' in rule and (cls is None or str(rule['class']).lower() != cls.lower()):
                continue
            key = (i, json.dumps(rule, sort_keys=True))
            times = rule.get('times', 1)
            with self.lock:
                used = self.fired.get(key, 0)
                if times and used >= times:
                    continue
                self.fired[key] = used + 1
            return rule
        return None

    def access(self, user):
        """The fixture's access rules for a user (None: unrestricted)."""
        rules = self.fixture().get('access', {})
        for name, rule in rules.items():
            if name.lower() == (user or '').lower():
                return rule
        return None

    def accounts(self):
        return {name: rule.get('password', '') for name, rule in
                self.fixture().get('access', {}).items() if 'password' in rule}


# ---------------------------------------------------------------------------
# One security context (MS-RPCE 3.3.1.5.2; NTLM per MS-NLMP 3.4)
# ---------------------------------------------------------------------------
class SecCtx:
    def __init__(self, peer, level, ctx_id):
        a = peer.args
        self.acceptor = NtlmAcceptor(a.user, a.password, a.domain, a.hostname, peer.accounts())
        self.level, self.ctx_id = level, ctx_id
        self.state = 'challenge'
        self.user = None
        self.why = None

    def complete(self, auth_raw):
        try:
            flags, key, user, _mic = self.acceptor.accept(auth_raw)
        except (PermissionError, Exception) as exc:  # noqa: B014  (bad encodings too)
            self.state, self.why = 'failed', str(exc)
            return
        self.flags, self.user = flags, user
        self.c_sign = ntlm.SIGNKEY(flags, key, 'Client')
        self.s_sign = ntlm.SIGNKEY(flags, key, 'Server')
        self.c_seal = ARC4.new(ntlm.SEALKEY(flags, key, 'Client')).encrypt
        self.s_seal = ARC4.new(ntlm.SEALKEY(flags, key, 'Server')).encrypt
        self.seq_in = self.seq_out = 0
        self.state = 'ok'

    def verify(self, pdu, body_at, trailer_at, level):
        """Checks (and unseals) one request fragment; returns the plain stub+pad."""
        body = pdu[body_at:trailer_at]
        if level == LEVEL_PRIVACY:
            body = self.c_seal(body)
        signed = pdu[:body_at] + body + pdu[trailer_at:trailer_at + 8]
        want = ntlm.MAC(self.flags, self.c_seal, self.c_sign, self.seq_in, signed)
        self.seq_in += 1
        if want.getData() != pdu[trailer_at + 8:]:
            raise Fault(NCA_S_FAULT_ACCESS_DENIED, 'request signature does not verify')
        return body

    def protect(self, header, body, trailer, level, bad=False):
        """Signs (integrity) or seals (privacy) one response fragment."""
        if level == LEVEL_PRIVACY:
            sealed, sig = ntlm.SEAL(self.flags, self.s_sign, self.s_sign, header + body + trailer,
                                    body, self.seq_out, self.s_seal)
            body = sealed
        else:
            sig = ntlm.SIGN(self.flags, self.s_sign, header + body + trailer, self.seq_out,
                            self.s_seal)
        self.seq_out += 1
        sig = sig.getData()
        if bad:
            sig = sig[:4] + bytes([sig[4] ^ 0x55]) + sig[5:]
        return header + body + trailer + sig


# ---------------------------------------------------------------------------
# One TCP connection: a DCE/RPC association
# ---------------------------------------------------------------------------
class Conn(socketserver.BaseRequestHandler):
    exporter = False  # set on the subclass that serves the OXID port

    def setup(self):
        self.peer = self.server.peer
        self.contexts = {}     # p_cont_id -> interface name
        self.secs = {}         # auth_context_id -> SecCtx
        self.last_sec = None   # the security context the last bind/alter set up
        self.max_xmit = 4280   # what the client can receive (its max_recv_frag)
        self.partial = {}      # call_id -> [ctx, opnum, object, stub, sec, level]
        self.assoc = 0
        self.request.settimeout(600)

    # --- framing ---
    def read_exact(self, n):
        buf = b''
        while len(buf) < n:
            chunk = self.request.recv(n - len(buf))
            if not chunk:
                raise EOFError()
            buf += chunk
        return buf

    def send(self, data):
        self.request.sendall(data)

    def handle(self):
        try:
            while True:
                head = self.read_exact(16)
                ver, minor, ptype, flags, drep, frag_len, auth_len, call_id = \
                    struct.unpack('<BBBBIHHI', head)
                if ver != 5 or frag_len < 16 or drep & 0xF0 != 0x10:
                    return  # not DCE/RPC v5 little-endian: hang up
                pdu = head + self.read_exact(frag_len - 16)
                try:
                    if not self.pdu(ptype, flags, auth_len, call_id, pdu):
                        return
                except (struct.error, IndexError, ValueError) as exc:
                    # A malformed PDU from the client under test: say so in the log, hang up.
                    self.peer.log({'pdu': ptype, 'error': 'malformed PDU: %s' % exc})
                    return
        except (EOFError, ConnectionError, socket.timeout, OSError, Drop):
            return

    @staticmethod
    def header(ptype, flags, frag_len, auth_len, call_id):
        return struct.pack('<BBBBIHHI', 5, 0, ptype, flags, 0x10, frag_len, auth_len, call_id)

    def fault(self, call_id, ctx_id, status):
        body = struct.pack('<IHBBII', 0, ctx_id, 0, 0, status, 0)
        self.send(self.header(FAULT, FIRST_FRAG | LAST_FRAG, 16 + len(body), 0,
                              call_id) + body)

    def pdu(self, ptype, flags, auth_len, call_id, pdu):
        if ptype in (BIND, ALTER_CONTEXT):
            return self.bind(ptype, auth_len, call_id, pdu)
        if ptype == AUTH3:
            trailer_at = len(pdu) - auth_len - 8
            sec = self.secs.get(struct.unpack_from('<I', pdu, trailer_at + 4)[0])
            if sec is None or sec.state != 'challenge':
                return False
            sec.complete(pdu[trailer_at + 8:])
            self.peer.log({'pdu': 'auth3', 'user': sec.user, 'ok': sec.state == 'ok',
                           'why': sec.why, 'level': sec.level})
            return True
        if ptype == REQUEST:
            return self.request_pdu(flags, auth_len, call_id, pdu)
        if ptype in (CO_CANCEL, ORPHANED):
            return True
        return False  # shutdown or anything unexpected: close

    # --- bind / alter_context ---
    def bind(self, ptype, auth_len, call_id, pdu):
        max_xmit, max_recv, assoc = struct.unpack_from('<HHI', pdu, 16)
        n_ctx = pdu[24]
        pos = 28
        results = []
        allowed = RESOLVER_IFACES if not self.exporter else EXPORTER_IFACES
        for _ in range(n_ctx):
            ctx_id, n_ts = struct.unpack_from('<HB', pdu, pos)
            abstract = pdu[pos + 4:pos + 24]
            transfers = [pdu[pos + 24 + 20 * i:pos + 44 + 20 * i] for i in range(n_ts)]
            pos += 24 + 20 * n_ts
            if any(t[:8] == BTFN_PREFIX for t in transfers):
                # Bind time feature negotiation (MS-RPCE 3.3.1.5.3): acknowledged, no features.
                results.append(struct.pack('<HH', RESULT_NEGOTIATE_ACK, 0) + b'\0' * 20)
                continue
            name = IFACE_NAME.get(abstract[:16])
            if name not in allowed:
                results.append(struct.pack('<HH', RESULT_PROVIDER_REJECTION,
                                           ABSTRACT_SYNTAX_NOT_SUPPORTED) + b'\0' * 20)
            elif NDR not in transfers:
                results.append(struct.pack('<HH', RESULT_PROVIDER_REJECTION,
                                           TRANSFER_SYNTAXES_NOT_SUPPORTED) + b'\0' * 20)
            else:
                self.contexts[ctx_id] = name
                results.append(struct.pack('<HH', RESULT_ACCEPT, 0) + NDR)
        self.max_xmit = min(max_recv, self.peer.args.max_frag) if max_recv else \
            self.peer.args.max_frag
        auth = b''
        if auth_len:
            trailer_at = len(pdu) - auth_len - 8
            a_type, a_level, _pad, _r, a_ctx = struct.unpack_from('<BBBBI', pdu, trailer_at)
            token = pdu[trailer_at + 8:]
            if a_type != AUTHN_WINNT:
                if ptype == BIND:
                    body = struct.pack('<HB', AUTH_TYPE_NOT_RECOGNIZED, 0)
                    self.send(self.header(BIND_NAK, 3, 16 + len(body), 0, call_id) + body)
                    return False
                self.fault(call_id, 0, RPC_S_SEC_PKG_ERROR)
                return False
            sec = SecCtx(self.peer, a_level, a_ctx)
            try:
                challenge = sec.acceptor.challenge(token)
            except Exception:  # noqa: BLE001
                self.fault(call_id, 0, RPC_S_SEC_PKG_ERROR)
                return False
            self.secs[a_ctx] = sec
            self.last_sec = sec
            auth = (a_type, a_level, a_ctx, challenge)
        if ptype == BIND:
            self.assoc = assoc or (struct.unpack('<I', os.urandom(4))[0] & 0xffff) | 0x10000
            port = str(self.server.server_address[1]).encode() + b'\0'
            sec_addr = struct.pack('<H', len(port)) + port
        else:
            sec_addr = struct.pack('<H', 0)
        body = struct.pack('<HHI', self.peer.args.max_frag, self.peer.args.max_frag,
                           self.assoc) + sec_addr
        body += b'\0' * ((-(16 + len(body))) % 4)
        body += struct.pack('<BBH', len(results), 0, 0) + b''.join(results)
        trailer = b''
        if auth:
            pad = (-(16 + len(body))) % 4
            body += b'\0' * pad
            trailer = struct.pack('<BBBBI', auth[0], auth[1], pad, 0, auth[2]) + auth[3]
        rtype = BIND_ACK if ptype == BIND else ALTER_CONTEXT_RESP
        alen = len(auth[3]) if auth else 0
        self.send(self.header(rtype, FIRST_FRAG | LAST_FRAG, 16 + len(body) + len(trailer),
                              alen, call_id) + body + trailer)
        return True

    # --- requests ---
    def request_pdu(self, flags, auth_len, call_id, pdu):
        alloc_hint, ctx_id, opnum = struct.unpack_from('<IHH', pdu, 16)
        body_at = 24
        obj = None
        if flags & OBJECT_UUID:
            obj = pdu[24:40]
            body_at = 40
        level, sec = LEVEL_NONE, None
        if auth_len:
            trailer_at = len(pdu) - auth_len - 8
            a_type, a_level, pad, _r, a_ctx = struct.unpack_from('<BBBBI', pdu, trailer_at)
            sec = self.secs.get(a_ctx)
            if sec is None or sec.state != 'ok':
                # No such security context, or its AUTH3 was refused: access denied, hang up.
                self.peer.log({'pdu': 'request', 'deny': 'auth context %d: %s' % (
                    a_ctx, 'unknown' if sec is None else 'AUTH3 refused: %s' % sec.why)})
                self.fault(call_id, ctx_id, NCA_S_FAULT_ACCESS_DENIED)
                return False
            level = a_level
            try:
                if level in (LEVEL_INTEGRITY, LEVEL_PRIVACY):
                    stub = sec.verify(pdu, body_at, trailer_at, level)
                else:
                    stub = pdu[body_at:trailer_at]
            except Fault as f:
                self.peer.log({'pdu': 'request', 'deny': f.why})
                self.fault(call_id, ctx_id, f.status)
                return False
            stub = stub[:len(stub) - pad] if pad else stub
        else:
            stub = pdu[body_at:]
            sec = self.last_sec
            if sec is not None:
                if sec.state != 'ok':
                    # The AUTH3 was refused: the first call gets access denied, then hang up.
                    self.peer.log({'pdu': 'request', 'deny': 'auth3 refused: %s' % sec.why})
                    self.fault(call_id, ctx_id, NCA_S_FAULT_ACCESS_DENIED)
                    return False
                if sec.level >= LEVEL_INTEGRITY:
                    self.fault(call_id, ctx_id, NCA_S_FAULT_ACCESS_DENIED)
                    return False
                level = min(sec.level, LEVEL_CONNECT)
        if flags & FIRST_FRAG:
            self.partial[call_id] = [ctx_id, opnum, obj, b'', sec, level]
        part = self.partial.get(call_id)
        if part is None:
            self.fault(call_id, ctx_id, NCA_S_PROTO_ERROR)
            return False
        part[3] += stub
        if not flags & LAST_FRAG:
            return True
        del self.partial[call_id]
        return self.call(call_id, *part)

    def call(self, call_id, ctx_id, opnum, obj, stub, sec, level):
        peer = self.peer
        iface = self.contexts.get(ctx_id)
        n = peer.next_call()
        entry = {'n': n, 'iface': iface, 'opnum': opnum, 'level': level,
                 'user': sec.user if sec else None, 'port': 'exporter' if self.exporter else
                 'resolver'}
        if obj is not None:
            entry['ipid'] = bin_to_string(obj)
        if iface is None:
            self.fault(call_id, ctx_id, NCA_S_UNK_IF)
            return True
        ctx = Call(peer, self, iface, opnum, obj, stub, sec, level, entry)
        rule = None
        try:
            op, cls = ctx.describe()
            entry['op'] = op
            rule = peer.planned(n, op, cls)
            if rule:
                entry['fault_rule'] = rule
                kind = rule.get('kind')
                if kind == 'delay':
                    time.sleep(rule.get('ms', 1000) / 1000.0)
                elif kind == 'drop':
                    peer.log(entry)
                    raise Drop()
                elif kind == 'fault':
                    raise Fault(int(str(rule.get('status', '0x1c01000b')), 0), 'planned')
                elif kind == 'hresult':
                    ctx.forced_hresult = int(str(rule.get('hresult', '0x80041001')), 0)
                elif kind == 'timed_out':
                    ctx.timed_out = True
            out = ctx.run()
        except Fault as f:
            entry['fault'] = hexs(f.status)
            entry['why'] = f.why
            peer.log(entry)
            self.fault(call_id, ctx_id, f.status)
            return True
        except Drop:
            return False
        except Exception as exc:  # noqa: BLE001 - a peer bug: say so, answer a fault
            import traceback
            entry['error'] = '%s: %s' % (type(exc).__name__, exc)
            traceback.print_exc()
            peer.log(entry)
            self.fault(call_id, ctx_id, NCA_S_FAULT_NDR)
            return True
        if rule and rule.get('kind') == 'garble':
            out = bytes(b ^ 0xA5 for b in out[:64]) + out[64:]
            if len(out) > 8:
                out = out[:len(out) // 2]
        entry['hresult'] = hexs(struct.unpack('<I', out[-4:])[0]) if len(out) >= 4 else None
        peer.log(entry)
        self.respond(call_id, ctx_id, out, sec, level,
                     bad=bool(rule and rule.get('kind') == 'bad_signature'))
        return True

    def respond(self, call_id, ctx_id, stub, sec, level, bad=False):
        verifying = sec is not None and level in (LEVEL_INTEGRITY, LEVEL_PRIVACY)
        overhead = 24 + (24 if verifying else 0)
        chunk = max(8, (self.max_xmit - overhead) // 8 * 8)
        at = 0
        frags = []
        while True:
            piece = stub[at:at + chunk]
            flags = (FIRST_FRAG if at == 0 else 0)
            alloc = len(stub) - at
            at += len(piece)
            if at >= len(stub):
                flags |= LAST_FRAG
            if verifying:
                pad = (-len(piece)) % 4
                body = piece + b'\0' * pad
                trailer = struct.pack('<BBBBI', AUTHN_WINNT, level, pad, 0, sec.ctx_id)
                hdr = self.header(RESPONSE, flags, 24 + len(body) + 8 + 16, 16, call_id) + \
                    struct.pack('<IHBB', alloc, ctx_id, 0, 0)
                frags.append(sec.protect(hdr, body, trailer, level, bad))
            else:
                hdr = self.header(RESPONSE, flags, 24 + len(piece), 0, call_id) + \
                    struct.pack('<IHBB', alloc, ctx_id, 0, 0)
                frags.append(hdr + piece)
            if flags & LAST_FRAG:
                break
        for f in frags:
            self.send(f)


class ExporterConn(Conn):
    exporter = True


# ---------------------------------------------------------------------------
# The calls
# ---------------------------------------------------------------------------
OPS = {
    'IObjectExporter': {0: 'ResolveOxid', 1: 'SimplePing', 2: 'ComplexPing', 3: 'ServerAlive',
                        4: 'ResolveOxid2', 5: 'ServerAlive2'},
    'IRemoteSCMActivator': {3: 'RemoteGetClassObject', 4: 'RemoteCreateInstance'},
    'IRemUnknown': {3: 'RemQueryInterface', 4: 'RemAddRef', 5: 'RemRelease'},
    'IRemUnknown2': {3: 'RemQueryInterface', 4: 'RemAddRef', 5: 'RemRelease',
                     6: 'RemQueryInterface2'},
    'IWbemLevel1Login': {3: 'EstablishPosition', 4: 'RequestChallenge', 5: 'WBEMLogin',
                         6: 'NTLMLogin'},
    'IWbemServices': {3: 'OpenNamespace', 6: 'GetObject', 20: 'ExecQuery', 24: 'ExecMethod'},
    'IEnumWbemClassObject': {3: 'Reset', 4: 'Next', 7: 'Skip'},
}
OBJ_IFACES = ('IWbemLevel1Login', 'IWbemServices', 'IEnumWbemClassObject')
_PATH = re.compile(r'^\s*(?:\\\\[^\\]*\\[^:]*:|//[^/]*/[^:]*:)?([A-Za-z_][A-Za-z0-9_]*)'
                   r'(?:\.(.*))?\s*$')


def parse_path(path):
    """'Win32_Service.Name="Spooler"' -> ('Win32_Service', {'Name': 'Spooler'})."""
    m = _PATH.match(path or '')
    if not m:
        raise ValueError(path)
    keys = {}
    rest = m.group(2)
    if rest:
        for km in re.finditer(r'\s*([A-Za-z_][A-Za-z0-9_]*)\s*=\s*("(?:[^"\\]|\\.)*"|[^,]+)\s*,?',
                              rest):
            v = km.group(2)
            if v.startswith('"'):
                v = re.sub(r'\\(.)', r'\1', v[1:-1])
            keys[km.group(1)] = v
        if not keys:
            raise ValueError(path)
    return m.group(1), keys


def normalize_namespace(resource):
    """'//./root/cimv2', '\\\\.\\root\\cimv2', 'root\\cimv2' -> 'root/cimv2'."""
    ns = (resource or '').replace('\\', '/').rstrip('\0')
    if ns.startswith('//'):
        ns = ns[2:].split('/', 1)[1] if '/' in ns[2:] else ''
    return ns.strip('/')


class Call:
    def __init__(self, peer, conn, iface, opnum, obj, stub, sec, level, entry):
        self.peer, self.conn, self.iface, self.opnum = peer, conn, iface, opnum
        self.obj, self.stub, self.sec, self.level, self.entry = obj, stub, sec, level, entry
        self.user = sec.user if sec else None
        self.forced_hresult = None
        self.timed_out = False
        self.target = None

    def describe(self):
        op = OPS.get(self.iface, {}).get(self.opnum, '%s#%d' % (self.iface, self.opnum))
        cls = None
        if self.iface in OBJ_IFACES or self.iface.startswith('IRemUnknown'):
            if self.obj is None:
                raise Fault(RPC_E_INVALID_OBJECT, 'no IPID')
            with self.peer.lock:
                self.target = self.peer.objects.get(self.obj)
                released = self.obj in self.peer.released
            if self.target is None:
                raise Fault(RPC_E_DISCONNECTED if released else RPC_E_INVALID_OBJECT,
                            'unknown IPID')
            if self.iface in OBJ_IFACES and IID[self.iface] != self.target.iid:
                raise Fault(E_NOINTERFACE, 'IPID is a %s' % self.target.kind)
            cls = getattr(self.target, 'cls', None)
            if op == 'ExecQuery':
                try:
                    req = wmi.IWbemServices_ExecQuery(self.stub)
                    cls = Wql(str(req['strQuery']['asData']).rstrip('\0')).cls
                except Exception:  # noqa: BLE001
                    cls = None
            elif op in ('ExecMethod', 'GetObject'):
                try:
                    klass = wmi.IWbemServices_ExecMethod if op == 'ExecMethod' else \
                        wmi.IWbemServices_GetObject
                    req = klass(self.stub)
                    cls = parse_path(str(req['strObjectPath']['asData']).rstrip('\0'))[0]
                except Exception:  # noqa: BLE001
                    cls = None
        self.op = op
        return op, cls

    def run(self):
        if self.iface in OBJ_IFACES and self.level < self.peer.min_level():
            raise Fault(E_ACCESSDENIED, 'authentication level %d below %d'
                        % (self.level, self.peer.min_level()))
        fn = getattr(self, 'op_' + self.op, None)
        if fn is None:
            raise Fault(NCA_S_OP_RNG_ERROR, 'opnum %d of %s not implemented'
                        % (self.opnum, self.iface))
        try:
            return fn()
        except Fault:
            raise
        except (struct.error, IndexError, KeyError, TypeError) as exc:
            import traceback
            traceback.print_exc()
            raise Fault(NCA_S_FAULT_NDR, 'cannot decode %s: %s' % (self.op, exc))

    # --- IObjectExporter (MS-DCOM 3.1.2.5.1) ---
    def op_ServerAlive(self):
        return struct.pack('<I', 0)

    def op_ServerAlive2(self):
        r = dcomrt.ServerAlive2Response()
        r['pComVersion']['MajorVersion'] = 5
        r['pComVersion']['MinorVersion'] = 7
        ndr_dualstringarray(r['ppdsaOrBindings'], self.peer.resolver_addrs())
        r['pReserved'] = 0
        r['ErrorCode'] = 0
        return r.getData()

    def _resolve(self, two):
        req = (dcomrt.ResolveOxid2 if two else dcomrt.ResolveOxid)(self.stub)
        oxid = req['pOxid']
        self.entry['oxid'] = oxid
        r = (dcomrt.ResolveOxid2Response if two else dcomrt.ResolveOxidResponse)()
        if oxid != self.peer.oxid:
            r['ppdsaOxidBindings'] = NULL
            r['pipidRemUnknown'] = b'\0' * 16
            r['pAuthnHint'] = 0
            if two:
                r['pComVersion']['MajorVersion'] = 5
                r['pComVersion']['MinorVersion'] = 7
            r['ErrorCode'] = OR_INVALID_OXID
            return r.getData()
        ndr_dualstringarray(r['ppdsaOxidBindings'], self.peer.exporter_addrs())
        r['pipidRemUnknown'] = self.peer.ipid_remunknown
        r['pAuthnHint'] = max(self.level, LEVEL_CONNECT)
        if two:
            r['pComVersion']['MajorVersion'] = 5
            r['pComVersion']['MinorVersion'] = 7
        r['ErrorCode'] = 0
        return r.getData()

    def op_ResolveOxid(self):
        return self._resolve(False)

    def op_ResolveOxid2(self):
        return self._resolve(True)

    def op_SimplePing(self):
        req = dcomrt.SimplePing(self.stub)
        ok = req['pSetId'] in self.peer.sets
        return struct.pack('<I', 0 if ok else OR_INVALID_SET)

    def op_ComplexPing(self):
        req = dcomrt.ComplexPing(self.stub)
        set_id = req['pSetId']
        with self.peer.lock:
            if set_id == 0:
                set_id = struct.unpack('<Q', os.urandom(8))[0] | 1
                self.peer.sets[set_id] = set()
            oids = self.peer.sets.get(set_id)
            status = 0
            if oids is None:
                status = OR_INVALID_SET
            else:
                if req['AddToSet'] not in (NULL, None):
                    oids.update(o['Data'] for o in req['AddToSet'])
                if req['DelFromSet'] not in (NULL, None):
                    oids.difference_update(o['Data'] for o in req['DelFromSet'])
        r = dcomrt.ComplexPingResponse()
        r['pSetId'] = set_id
        r['pPingBackoffFactor'] = 0
        r['ErrorCode'] = status
        self.entry['set_id'] = set_id
        return r.getData()

    # --- IRemoteSCMActivator (MS-DCOM 3.1.2.5.2.3) ---
    def op_RemoteGetClassObject(self):
        r = dcomrt.RemoteGetClassObjectResponse()
        orpcthat(r)
        r['ppActProperties'] = NULL
        r['ErrorCode'] = E_NOTIMPL
        return r.getData()

    def op_RemoteCreateInstance(self):
        req = dcomrt.RemoteCreateInstance(self.stub)
        r = dcomrt.RemoteCreateInstanceResponse()
        orpcthat(r)
        r['ppActProperties'] = NULL

        def fail(hr, why):
            self.entry['why'] = why
            r['ErrorCode'] = hr
            return r.getData()

        if self.level < self.peer.min_level():
            return fail(E_ACCESSDENIED, 'activation at authentication level %d, %d required'
                        % (self.level, self.peer.min_level()))
        if self.forced_hresult is not None:
            return fail(self.forced_hresult, 'planned')
        blob_ref = dcomrt.OBJREF_CUSTOM(b''.join(req['pActProperties']['abData']))
        blob = dcomrt.ACTIVATION_BLOB(blob_ref['pObjectData'])
        clsids = [c['Data'] for c in blob['CustomHeader']['pclsid']]
        sizes = [s['Data'] for s in blob['CustomHeader']['pSizes']]
        props = blob['Property']
        at = 0
        clsid, iids = None, []
        for cid, size in zip(clsids, sizes):
            data = props[at:at + size]
            at += size
            if cid == CLSID_InstantiationInfo:
                info = dcomrt.InstantiationInfoData()
                n = info.fromString(data)
                info.fromStringReferents(data[n:])
                clsid = info['classId']
                iids = [i['Data'] for i in info['pIID']]
        self.entry['clsid'] = bin_to_string(clsid) if clsid else None
        if clsid != CLSID_WbemLevel1Login:
            return fail(REGDB_E_CLASSNOTREG, 'class not registered')
        login = Obj('login', IID['IWbemLevel1Login'], self.peer.new_oid(), self.user)
        ipid = self.peer.export(login)
        results, ptrs = [], []
        for iid in iids:
            if iid in (IID['IWbemLevel1Login'], IID['IUnknown']):
                results.append(0)
                ptrs.append(objref_standard(iid, self.peer.oxid, login.oid, ipid,
                                            self.peer.resolver_addrs()))
            else:
                results.append(E_NOINTERFACE)
                ptrs.append(None)
        props_out = dcomrt.PropsOutInfo()
        props_out['cIfs'] = len(iids)
        for iid in iids:
            g = dcomrt.IID()
            g['Data'] = iid
            props_out['piid'].append(g)
        for hr in results:
            h = HRESULT()
            h['Data'] = hr
            props_out['phresults'].append(h)
        for p in ptrs:
            mip = dcomrt.PMInterfacePointer()
            if p is None:
                mip = NULL
            else:
                set_iface_ptr(mip, p)
            props_out['ppIntfData'].append(mip)
        scm = dcomrt.ScmReplyInfoData()
        scm['pdwReserved'] = 0
        rr = scm['remoteReply']
        rr['Oxid'] = self.peer.oxid
        ndr_dualstringarray(rr['pdsaOxidBindings'], self.peer.exporter_addrs())
        rr['ipidRemUnknown'] = self.peer.ipid_remunknown
        rr['authnHint'] = max(self.level, LEVEL_CONNECT)
        rr['serverVersion']['MajorVersion'] = 5
        rr['serverVersion']['MinorVersion'] = 7
        parts = []
        for p in (props_out, scm):
            m = p.getData() + p.getDataReferents()
            parts.append(m + b'\0' * ((-len(m)) % 8))
        out = dcomrt.ACTIVATION_BLOB()
        out['dwReserved'] = 0
        hdr = out['CustomHeader']
        hdr['destCtx'] = 2
        hdr['classInfoClsid'] = b'\0' * 16
        for cid in (CLSID_PropsOutInfo, CLSID_ScmReplyInfo):
            c = dcomrt.CLSID()
            c['Data'] = cid
            hdr['pclsid'].append(c)
        for p in parts:
            d = dcomrt.DWORD()
            d['Data'] = len(p)
            hdr['pSizes'].append(d)
        hdr['pdwReserved'] = NULL
        out['Property'] = b''.join(parts)
        blob_out = out.getData()
        ref = objref_custom(IID_IActivationPropertiesOut, CLSID_ActivationPropertiesOut,
                            blob_out, len(blob_out) + 8)
        r.fields['ppActProperties'] = dcomrt.PMInterfacePointer()
        set_iface_ptr(r['ppActProperties'], ref)
        r['ErrorCode'] = 0
        self.entry['ipid_out'] = bin_to_string(ipid)
        return r.getData()

    # --- IRemUnknown / IRemUnknown2 (MS-DCOM 3.1.1.5.6) ---
    def _refs(self, req):
        return [(r['ipid'], r['cPublicRefs']) for r in req['InterfaceRefs']]

    def op_RemAddRef(self):
        req = dcomrt.RemAddRef(self.stub)
        r = dcomrt.RemAddRefResponse()
        orpcthat(r)
        status = 0
        with self.peer.lock:
            for ipid, n in self._refs(req):
                o = self.peer.objects.get(ipid)
                if o is None:
                    r['pResults'].append(ndr_dword(RPC_E_INVALID_OBJECT))
                    status = S_FALSE
                else:
                    o.refs += n
                    r['pResults'].append(ndr_dword(0))
        r['ErrorCode'] = status
        return r.getData()

    def op_RemRelease(self):
        req = dcomrt.RemRelease(self.stub)
        with self.peer.lock:
            for ipid, n in self._refs(req):
                o = self.peer.objects.get(ipid)
                if o is None:
                    continue
                o.refs -= n
                if o.refs <= 0:
                    del self.peer.objects[ipid]
                    self.peer.released.add(ipid)
        r = dcomrt.RemReleaseResponse()
        orpcthat(r)
        r['ErrorCode'] = 0
        return r.getData()

    def op_RemQueryInterface(self):
        req = dcomrt.RemQueryInterface(self.stub)
        src = self.peer.objects.get(req['ripid'])
        iids = [i['Data'] for i in req['iids']]
        if src is None:
            # ORPCTHAT, a NULL ppQIResults, the error.
            return struct.pack('<IIII', 0, 0, 0, RPC_E_INVALID_OBJECT)
        # [out, size_is(,cIids)] REMQIRESULT** ppQIResults: a referent, the conformance,
        # then the 8-aligned REMQIRESULTs (hResult, pad, STDOBJREF).
        out = struct.pack('<IIII', 0, 0, 0x20000, len(iids))
        for iid in iids:
            if iid in (src.iid, IID['IUnknown']):
                extra = {k: v for k, v in src.__dict__.items()
                         if k not in ('kind', 'iid', 'oid', 'user', 'refs')}
                ipid = self.peer.export(Obj(src.kind, src.iid, src.oid, src.user, **extra))
                out += struct.pack('<II', 0, 0) + \
                    struct.pack('<IIQQ', 0, req['cRefs'], self.peer.oxid, src.oid) + ipid
            else:
                out += struct.pack('<II', E_NOINTERFACE, 0) + b'\0' * 40
        return out + struct.pack('<I', 0)

    # --- IWbemLevel1Login (MS-WMI 3.1.4.1) ---
    def op_EstablishPosition(self):
        r = wmi.IWbemLevel1Login_EstablishPositionResponse()
        orpcthat(r)
        r['LocaleVersion'] = 0
        r['ErrorCode'] = 0
        return r.getData()

    def op_NTLMLogin(self):
        req = wmi.IWbemLevel1Login_NTLMLogin(self.stub)
        resource = req['wszNetworkResource']
        resource = '' if resource in (NULL, None) else str(resource)
        ns = normalize_namespace(resource)
        self.entry['namespace'] = ns
        r = wmi.IWbemLevel1Login_NTLMLoginResponse()
        orpcthat(r)
        r['ppNamespace'] = NULL
        canonical = self.find_namespace(ns)
        if self.forced_hresult is not None:
            r['ErrorCode'] = self.forced_hresult
            return r.getData()
        if canonical is None:
            r['ErrorCode'] = WBEM_E_INVALID_NAMESPACE
            return r.getData()
        rule = self.peer.access(self.user)
        if rule is not None and 'namespaces' in rule and \
                canonical.lower() not in [n.lower() for n in rule['namespaces']]:
            r['ErrorCode'] = WBEM_E_ACCESS_DENIED
            return r.getData()
        svc = Obj('services', IID['IWbemServices'], self.peer.new_oid(), self.user,
                  namespace=canonical)
        ipid = self.peer.export(svc)
        r.fields['ppNamespace'] = dcomrt.PMInterfacePointer()
        set_iface_ptr(r['ppNamespace'], self.peer.objref(svc, ipid))
        r['ErrorCode'] = 0
        return r.getData()

    def find_namespace(self, ns):
        nss = self.peer.fixture().get('namespaces')
        if nss is None:
            return ns if ns.lower().startswith('root') else None
        return next((k for k in nss if k.lower() == ns.lower()), None)

    # --- IWbemServices (MS-WMI 3.1.4.3) ---
    def _class(self, cname):
        """(canonical name, rows, ClassDef) or raises the HRESULT as Fault-less error."""
        ns = self.target.namespace
        found = self.peer.store.find_class(ns, cname)
        if found is None:
            return None
        canonical, rows = found
        fixture = self.peer.fixture()
        all_rows = fixture.get('classes', {}).get(canonical, rows)
        return canonical, rows, class_def(fixture, canonical, all_rows or rows)

    def _denied(self, cname, method=False):
        rule = self.peer.access(self.user)
        if rule is None:
            return False
        if method and rule.get('methods', True) is False:
            return True
        return cname.lower() in [c.lower() for c in rule.get('deny_classes', [])]

    def _instance_unit(self, cdef, row):
        ns = self.target.namespace.replace('/', '\\').upper()
        values = {p: typed_value(t, get_prop(row, p)[1]) for p, t in cdef.props}
        block = wmio.instance_block(cdef, values, self.peer.args.hostname.upper(), ns)
        return wmio.encoding_unit(block)

    def _wbem_object(self, unit):
        return objref_custom(IID['IWbemClassObject'], CLSID_WbemClassObject, unit)

    def op_ExecQuery(self):
        req = wmi.IWbemServices_ExecQuery(self.stub)
        lang = str(req['strQueryLanguage']['asData']).rstrip('\0')
        text = str(req['strQuery']['asData']).rstrip('\0')
        self.entry['wql'] = text
        r = wmi.IWbemServices_ExecQueryResponse()
        orpcthat(r)
        r['ppEnum'] = NULL

        def fail(hr, why=''):
            self.entry['why'] = why
            r['ErrorCode'] = hr
            return r.getData()

        if lang.upper() != 'WQL':
            return fail(WBEM_E_INVALID_QUERY_TYPE, lang)
        try:
            q = Wql(text)
        except WqlError as exc:
            return fail(WBEM_E_INVALID_QUERY, str(exc))
        self.entry['class'] = q.cls
        found = self._class(q.cls)
        if found is None:
            return fail(WBEM_E_INVALID_CLASS, 'no class %s in %s' % (q.cls, self.target.namespace))
        canonical, rows, cdef = found
        if self._denied(canonical):
            return fail(WBEM_E_ACCESS_DENIED, 'access rules')
        if self.forced_hresult is not None:
            return fail(self.forced_hresult, 'planned')
        try:
            matched = [row for row in rows if q.matches(row)]
        except WqlError as exc:
            return fail(WBEM_E_INVALID_QUERY, str(exc))
        if q.props is not None:
            names = {p.lower(): (p, t) for p, t in cdef.props}
            sel = []
            for p in q.props:
                if p.lower() not in names:
                    return fail(WBEM_E_INVALID_QUERY, 'no property %s' % p)
                if names[p.lower()] not in sel:
                    sel.append(names[p.lower()])
            # The projection keeps the class's declaration order.
            sel.sort(key=lambda pt: cdef.props.index(pt))
            cdef = wmio.ClassDef(canonical, sel, cdef.keys)
        units = [self._instance_unit(cdef, row) for row in matched]
        self.entry['matched'] = len(units)
        enum = Obj('enum', IID['IEnumWbemClassObject'], self.peer.new_oid(), self.user,
                   cls=canonical, units=units, pos=0, namespace=self.target.namespace)
        ipid = self.peer.export(enum)
        r.fields['ppEnum'] = dcomrt.PMInterfacePointer()
        set_iface_ptr(r['ppEnum'], self.peer.objref(enum, ipid))
        r['ErrorCode'] = 0
        return r.getData()

    def _find_instance(self, path):
        """(canonical class, row, ClassDef) for an object path with keys, or an HRESULT."""
        try:
            cname, keys = parse_path(path)
        except ValueError:
            return WBEM_E_INVALID_OBJECT_PATH
        found = self._class(cname)
        if found is None:
            return WBEM_E_INVALID_CLASS
        canonical, rows, cdef = found
        if not keys:
            return canonical, None, cdef
        for row in rows:
            if all(get_prop(row, k)[0] and str(get_prop(row, k)[1]).lower() == v.lower()
                   for k, v in keys.items()):
                return canonical, row, cdef
        return WBEM_E_NOT_FOUND

    def op_GetObject(self):
        req = wmi.IWbemServices_GetObject(self.stub)
        path = str(req['strObjectPath']['asData']).rstrip('\0')
        self.entry['path'] = path
        r = wmi.IWbemServices_GetObjectResponse()
        orpcthat(r)
        r['ppObject'] = NULL
        r['ppCallResult'] = NULL
        found = self._find_instance(path)
        if isinstance(found, int):
            r['ErrorCode'] = found
            return r.getData()
        canonical, row, cdef = found
        if self._denied(canonical):
            r['ErrorCode'] = WBEM_E_ACCESS_DENIED
            return r.getData()
        if self.forced_hresult is not None:
            r['ErrorCode'] = self.forced_hresult
            return r.getData()
        if row is None:
            ns = self.target.namespace.replace('/', '\\').upper()
            unit = wmio.encoding_unit(wmio.class_block(cdef, self.peer.args.hostname.upper(),
                                                       ns))
        else:
            unit = self._instance_unit(cdef, row)
        r.fields['ppObject'] = double_ptr(self._wbem_object(unit))
        r['ErrorCode'] = 0
        return r.getData()

    def op_ExecMethod(self):
        req = wmi.IWbemServices_ExecMethod(self.stub)
        path = str(req['strObjectPath']['asData']).rstrip('\0')
        method = str(req['strMethodName']['asData']).rstrip('\0')
        self.entry.update(path=path, method=method)
        r = wmi.IWbemServices_ExecMethodResponse()
        orpcthat(r)
        r['ppOutParams'] = NULL
        r['ppCallResult'] = NULL

        def fail(hr, why=''):
            self.entry['why'] = why
            r['ErrorCode'] = hr
            return r.getData()

        found = self._find_instance(path)
        if isinstance(found, int):
            return fail(found, 'object path')
        canonical, row, _cdef = found
        if canonical.lower() != 'win32_service' or method not in ('StartService', 'StopService'):
            return fail(WBEM_E_INVALID_METHOD, '%s.%s' % (canonical, method))
        if row is None:
            return fail(WBEM_E_INVALID_METHOD, 'not a static method')
        if self._denied(canonical, method=True):
            return fail(WBEM_E_ACCESS_DENIED, 'access rules')
        if self.forced_hresult is not None:
            return fail(self.forced_hresult, 'planned')
        rv = self.peer.store.service_control(canonical, row, method)
        self.entry['return_value'] = rv
        out_cls = wmio.ClassDef('__PARAMETERS', [('ReturnValue', 'uint32')], ())
        unit = wmio.encoding_unit(wmio.instance_block(out_cls, {'ReturnValue': rv}))
        try:
            wants_out = req['ppOutParams']['ReferentID'] != 0
        except (KeyError, TypeError):
            wants_out = True
        if wants_out:
            r.fields['ppOutParams'] = double_ptr(self._wbem_object(unit))
        r['ErrorCode'] = 0
        return r.getData()

    # --- IEnumWbemClassObject (MS-WMI 3.1.4.4) ---
    def op_Reset(self):
        self.target.pos = 0
        return struct.pack('<III', 0, 0, 0)

    def op_Next(self):
        req = wmi.IEnumWbemClassObject_Next(self.stub)
        count = req['uCount']
        e = self.target
        self.entry.update({'class': e.cls, 'asked': count, 'timeout': req['lTimeout']})
        r = wmi.IEnumWbemClassObject_NextResponse()
        orpcthat(r)
        if self.forced_hresult is not None or self.timed_out:
            # A provider error, or (timed_out) nothing ready within lTimeout: no objects.
            r['puReturned'] = 0
            r['ErrorCode'] = WBEM_S_TIMEDOUT if self.timed_out else self.forced_hresult
            self.entry['returned'] = 0
            return struct.pack('<III', 0, 0, count) + r.getData()[12:]
        with self.peer.lock:
            batch = e.units[e.pos:e.pos + count]
            e.pos += len(batch)
        for unit in batch:
            p = dcomrt.PMInterfacePointer()
            set_iface_ptr(p, self._wbem_object(unit))
            r['apObjects'].append(p)
        r['puReturned'] = len(batch)
        r['ErrorCode'] = S_OK if len(batch) == count else WBEM_S_FALSE
        self.entry['returned'] = len(batch)
        data = r.getData()
        # [size_is(uCount), length_is(*puReturned)]: the maximum count is uCount.
        return struct.pack('<II', 0, 0) + struct.pack('<I', count) + data[12:]

    def op_Skip(self):
        req = wmi.IEnumWbemClassObject_Skip(self.stub)
        e = self.target
        with self.peer.lock:
            left = len(e.units) - e.pos
            n = min(left, req['nCount'])
            e.pos += n
        return struct.pack('<III', 0, 0, S_OK if n == req['nCount'] else WBEM_S_FALSE)


# ---------------------------------------------------------------------------
class Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, addr, handler, peer):
        self.peer = peer
        socketserver.ThreadingTCPServer.__init__(self, addr, handler)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--port', type=int, default=0,
                    help='object resolver / activator port (Windows: 135)')
    ap.add_argument('--oxid-port', type=int, default=0, help='object exporter port')
    ap.add_argument('--fixture', required=True)
    ap.add_argument('--user', required=True)
    ap.add_argument('--password', required=True)
    ap.add_argument('--domain', default='WINHOST')
    ap.add_argument('--hostname', default='WINHOST01')
    ap.add_argument('--min-level', default='integrity', choices=sorted(LEVELS))
    ap.add_argument('--max-frag', type=int, default=5840,
                    help='largest fragment the peer sends and announces')
    ap.add_argument('--control', help='fault-injection JSON, re-read when it changes')
    ap.add_argument('--state-dir', help='where --control and --log default to')
    ap.add_argument('--log')
    ap.add_argument('--ready-file')
    args = ap.parse_args()
    if args.state_dir:
        args.control = args.control or os.path.join(args.state_dir, 'control.json')
        args.log = args.log or os.path.join(args.state_dir, 'calls.jsonl')
    args.max_frag = max(256, min(args.max_frag, 65535))
    peer = Peer(args)
    resolver = Server(('127.0.0.1', args.port), Conn, peer)
    exporter = Server(('127.0.0.1', args.oxid_port), ExporterConn, peer)
    peer.port = resolver.server_address[1]
    peer.oxid_port = exporter.server_address[1]
    for s in (resolver, exporter):
        threading.Thread(target=s.serve_forever, daemon=True).start()
    ready = {'port': peer.port, 'oxid_port': peer.oxid_port, 'pid': os.getpid(),
             'oxid': '%016x' % peer.oxid}
    if args.ready_file:
        tmp = args.ready_file + '.tmp'
        with open(tmp, 'w', encoding='utf-8') as fh:
            json.dump(ready, fh)
        os.replace(tmp, args.ready_file)
    print('WMI_PEER port=%d oxid_port=%d' % (peer.port, peer.oxid_port), flush=True)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    done.wait()
    for s in (resolver, exporter):
        s.shutdown()
        s.server_close()


if __name__ == '__main__':
    main()
