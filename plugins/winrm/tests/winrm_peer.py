#!/usr/bin/python3
"""WS-Management (MS-WSMV) test peer for the winrm plugin's tests.

No Windows and no WS-Man server exists in Debian, so the tests talk to this
single-file server on loopback instead.  Its security layers are deliberately
*not* ours: the NTLM acceptor is built on impacket's NTLM structures and
primitives (python3-impacket) and the message sealing on ntlm-auth's
SessionSecurity (python3-ntlm-auth), both independent implementations of
MS-NLMP, and peer_selftest.sh proves the whole peer against pywinrm
(python3-winrm), a real independent client.

    /usr/bin/python3 winrm_peer.py --port 0 --data fixture.json \
        --user Administrator --password 'P@ss-w0rd1' --domain WINHOST \
        --log requests.jsonl [--https cert.pem key.pem] [--auth ntlm,basic] \
        [--require-encryption] [--fault-plan plan.json]

prints "WINRM_PEER port=<n>" once listening on 127.0.0.1, then serves /wsman
until SIGTERM.  See PEER.md for the fixture, the fault plan and the log.

Only /usr/bin/python3 can import impacket/ntlm_auth (Debian packages).
"""

import argparse
import base64
import json
import os
import re
import signal
import ssl
import struct
import sys
import threading
import time
import uuid
import xml.etree.ElementTree as ET
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from xml.sax.saxutils import escape as _xml_escape


# The NTLM acceptor and the WMI store/WQL evaluator are shared with wmi_peer.py.
_LIB = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', 'lib')
sys.path.insert(0, os.path.join(_LIB, 'ntlm', 'tests'))
sys.path.insert(0, os.path.join(_LIB, 'wql', 'tests'))
from ntlm_acceptor import NtlmAcceptor  # noqa: E402
from wmi_store import ReloadingJson, Store, Wql, WqlError, get_prop  # noqa: E402

# --------------------------------------------------------------------------
# Namespaces (MS-WSMV 2.2.1; DSP0226; WS-Enumeration; WS-Addressing 2004/08)
# --------------------------------------------------------------------------
NS = {
    's': 'http://www.w3.org/2003/05/soap-envelope',
    'a': 'http://schemas.xmlsoap.org/ws/2004/08/addressing',
    'w': 'http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd',
    'n': 'http://schemas.xmlsoap.org/ws/2004/09/enumeration',
    'x': 'http://schemas.xmlsoap.org/ws/2004/09/transfer',
    'p': 'http://schemas.microsoft.com/wbem/wsman/1/wsman.xsd',
    'rsp': 'http://schemas.microsoft.com/wbem/wsman/1/windows/shell',
    'f': 'http://schemas.microsoft.com/wbem/wsman/1/wsmanfault',
    'cim': 'http://schemas.dmtf.org/wbem/wscim/1/common',
    'xsi': 'http://www.w3.org/2001/XMLSchema-instance',
}
ANONYMOUS = 'http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous'
WMI_PREFIX = 'http://schemas.microsoft.com/wbem/wsman/1/wmi/'
WQL_DIALECT = 'http://schemas.microsoft.com/wbem/wsman/1/WQL'
SHELL_URI = 'http://schemas.microsoft.com/wbem/wsman/1/windows/shell/cmd'
ENUM = 'http://schemas.xmlsoap.org/ws/2004/09/enumeration/'
TRANSFER = 'http://schemas.xmlsoap.org/ws/2004/09/transfer/'
SHELL = 'http://schemas.microsoft.com/wbem/wsman/1/windows/shell/'
WSMAN_FAULT_ACTION = 'http://schemas.dmtf.org/wbem/wsman/1/wsman/fault'
ENUM_FAULT_ACTION = ENUM + 'fault'
ADDR_FAULT_ACTION = 'http://schemas.xmlsoap.org/ws/2004/08/addressing/fault'

# MS-WSMV 2.2.9.1.1: the SPNEGO (here raw NTLM) session-encrypted body.
BOUNDARY = b'--Encrypted Boundary'
ENC_PROTOCOL = 'application/HTTP-SPNEGO-session-encrypted'
ENC_CONTENT_TYPE = ('multipart/encrypted;protocol="%s";boundary="Encrypted Boundary"'
                    % ENC_PROTOCOL)
SOAP_CONTENT_TYPE = 'application/soap+xml;charset=UTF-8'

# Enumeration contexts idle longer than this are gone, as with WinRM's
# default EnumerationTimeoutms (60 s).
ENUM_CONTEXT_TTL = 60.0


def esc(value):
    return _xml_escape(str(value), {'"': '&quot;'})


def new_uuid():
    return 'uuid:' + str(uuid.uuid4()).upper()


# --------------------------------------------------------------------------
# Faults.  s:Code/s:Subcode per DSP0226 table 10 / WS-Enumeration; the
# f:WSManFault Code attribute is the Win32/WinRM error number Windows puts
# there (winerror.h ERROR_WSMAN_*), in decimal as Windows renders it.
# --------------------------------------------------------------------------
FAULTS = {
    # kind: (http status, action, code, subcode, reason, wsman code, message)
    'quota': (500, WSMAN_FAULT_ACTION, 's:Sender', 'w:QuotaLimit',
              'The service is busy servicing other requests.',
              2150858815,  # 0x8033803F ERROR_WSMAN_QUOTA_LIMIT
              'The WS-Management service cannot process the request because the '
              'request exceeds a quota limit. '),
    'throttle': (500, WSMAN_FAULT_ACTION, 's:Sender', 'w:QuotaLimit',
                 'The service is busy servicing other requests.',
                 2150859174,  # 0x803381A6 ERROR_WSMAN_QUOTA_MAX_OPERATIONS
                 'The WS-Management service cannot process the request. This user is '
                 'allowed a maximum number of 25 concurrent operations, which has been '
                 'exceeded. Close existing operations for this user, or raise the quota '
                 'for this user. '),
    'access_denied': (500, WSMAN_FAULT_ACTION, 's:Sender', 'w:AccessDenied',
                      'The sender was not authorized to access the resource.',
                      5,  # ERROR_ACCESS_DENIED
                      'Access is denied. '),
    'timeout': (500, WSMAN_FAULT_ACTION, 's:Receiver', 'w:TimedOut',
                'The operation has timed out.',
                2150858793,  # 0x80338029 ERROR_WSMAN_OPERATION_TIMEDOUT
                'The WS-Management service cannot complete the operation within the '
                'time specified in OperationTimeout.  '),
    'invalid_selectors': (500, WSMAN_FAULT_ACTION, 's:Sender', 'w:InvalidSelectors',
                          'The Selectors for the resource were not valid.',
                          2150858752,  # 0x80338000 ERROR_WSMAN_RESOURCE_NOT_FOUND
                          'The WS-Management service cannot process the request. The '
                          'service cannot find the resource identified by the resource '
                          'URI and selectors. '),
    'unexpected_selectors': (500, WSMAN_FAULT_ACTION, 's:Sender', 'w:InvalidSelectors',
                             'The Selectors for the resource were not valid.',
                             2150858843,  # 0x8033805B ERROR_WSMAN_UNEXPECTED_SELECTORS
                             'The WS-Management service cannot process the request because '
                             'the request contained invalid selectors for the resource. '),
    'invalid_context': (500, ENUM_FAULT_ACTION, 's:Receiver', 'n:InvalidEnumerationContext',
                        'The supplied enumeration context is invalid.',
                        2150858779,  # 0x8033801B ERROR_WSMAN_ENUMERATE_INVALID_ENUMERATION_CONTEXT
                        'The WS-Management service cannot process the request because the '
                        'enumeration context supplied in the message is not valid. '),
    'destination_unreachable': (500, ADDR_FAULT_ACTION, 's:Sender', 'a:DestinationUnreachable',
                                'No route can be determined to reach the destination role '
                                'defined by the WS-Addressing To.',
                                2150858752,  # 0x80338000
                                'The WS-Management service cannot process the request. The '
                                'resource URI is not valid or the WMI class or namespace does '
                                'not exist. '),
    'cannot_process_filter': (500, WSMAN_FAULT_ACTION, 's:Sender', 'w:CannotProcessFilter',
                              'The requested filter could not be processed.',
                              2150858778,  # 0x8033801A ERROR_WSMAN_ENUMERATE_CANNOT_PROCESS_FILTER
                              'The WS-Management service cannot process the request because '
                              'the WQL query is invalid (WMI: 0x80041017 Invalid query). '),
    'action_not_supported': (500, ADDR_FAULT_ACTION, 's:Sender', 'a:ActionNotSupported',
                             'The action is not supported by the service.',
                             2150858771,  # 0x80338013 ERROR_WSMAN_ACTION_NOT_SUPPORTED
                             'The WS-Management service cannot process the request because '
                             'the action is not supported. '),
}


class WsmanFault(Exception):
    def __init__(self, kind, detail=None):
        super().__init__(kind)
        self.kind = kind
        self.detail = detail


# --------------------------------------------------------------------------
# Rendering WMI instances the way WinRM's WMI plug-in does.
# --------------------------------------------------------------------------
_DMTF = re.compile(r'^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})\.(\d{6})([+-])(\d{3})$')


def dmtf_to_xs(value):
    """CIM datetime 'yyyymmddHHMMSS.mmmmmmsUUU' -> xs:dateTime as WinRM renders it
    (<cim:Datetime>2026-12-05T18:30:00.5Z</cim:Datetime>-style, offset as +HH:MM)."""
    m = _DMTF.match(value)
    y, mo, d, h, mi, s, us, sign, off = m.groups()
    frac = us.rstrip('0')
    text = '%s-%s-%sT%s:%s:%s%s' % (y, mo, d, h, mi, s, ('.' + frac) if frac else '')
    off = int(off)
    if off == 0:
        return text + 'Z'
    return text + '%s%02d:%02d' % (sign, off // 60, off % 60)


def render_scalar(v):
    if isinstance(v, bool):
        return 'true' if v else 'false'
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return esc(v)


def render_property(tag, v):
    """One property: nil, repeated elements for arrays, cim:Datetime for dates.
    `tag` is 'p:Name' in a class instance, 'Name' inside w:XmlFragment."""
    dt_tag = 'cim:Datetime' if tag.startswith('p:') else 'Datetime'
    if v is None:
        return '<%s xsi:nil="true"/>' % tag
    values = v if isinstance(v, list) else [v]
    out = []
    for item in values:
        if isinstance(item, str) and _DMTF.match(item):
            out.append('<%s><%s>%s</%s></%s>' % (tag, dt_tag, dmtf_to_xs(item), dt_tag, tag))
        else:
            out.append('<%s>%s</%s>' % (tag, render_scalar(item), tag))
    return ''.join(out)


def render_instance(namespace, cname, row):
    # WinRM lists a WMI instance's properties in alphabetical order.
    uri = WMI_PREFIX + namespace + '/' + cname
    props = ''.join(render_property('p:' + k, row[k]) for k in sorted(row, key=str.lower))
    return ('<p:%s xmlns:p="%s" xmlns:cim="%s" xmlns:xsi="%s" xsi:type="p:%s_Type" '
            'xml:lang="en-US">%s</p:%s>' % (cname, uri, NS['cim'], NS['xsi'], cname, props, cname))


def render_fragment(row, props):
    # A WQL projection comes back as w:XmlFragment with unqualified children.
    parts = []
    for name in props:
        found, v = get_prop(row, name)
        canon = next((k for k in row if k.lower() == name.lower()), name)
        parts.append(render_property(canon, v if found else None))
    return '<w:XmlFragment xmlns:xsi="%s">%s</w:XmlFragment>' % (NS['xsi'], ''.join(parts))


# --------------------------------------------------------------------------
# MS-WSMV 2.2.9.1.1 framing
# --------------------------------------------------------------------------
def decrypt_body(session, body):
    protocol = getattr(session, 'protocol', ENC_PROTOCOL)
    """Parse one or more (header part, octet-stream part) pairs and unwrap them.
    The sealed length is known from OriginalContent's Length, so the binary
    part is cut by length, not by searching for the boundary in ciphertext."""
    out, pos = b'', 0
    hdr_re = re.compile(rb'--Encrypted Boundary\r\n\s*Content-Type: *' +
                        re.escape(protocol.encode()) +
                        rb'\r\n\s*OriginalContent: *type=[^\r\n]*?Length=(\d+)\r\n'
                        rb'--Encrypted Boundary\r\n\s*Content-Type: *application/octet-stream\r\n',
                        re.I)
    while True:
        m = hdr_re.match(body, pos)
        if not m:
            break
        length = int(m.group(1))
        p = m.end()
        (siglen,) = struct.unpack('<I', body[p:p + 4])
        sig = body[p + 4:p + 4 + siglen]
        sealed = body[p + 4 + siglen:p + 4 + siglen + length]
        if len(sealed) != length:
            raise ValueError('truncated encrypted part')
        out += session.unwrap(sealed, sig)
        pos = p + 4 + siglen + length
    if not body[pos:].startswith(BOUNDARY + b'--'):
        raise ValueError('bad multipart/encrypted framing at offset %d' % pos)
    return out


def encrypt_body(session, plain):
    sealed, sig = session.wrap(plain)
    protocol = getattr(session, 'protocol', ENC_PROTOCOL)
    return (BOUNDARY + b'\r\n'
            b'\tContent-Type: ' + protocol.encode() + b'\r\n'
            b'\tOriginalContent: type=application/soap+xml;charset=UTF-8;Length=' +
            str(len(plain)).encode() + b'\r\n' +
            BOUNDARY + b'\r\n'
            b'\tContent-Type: application/octet-stream\r\n' +
            struct.pack('<I', len(sig)) + sig + sealed +
            BOUNDARY + b'--\r\n')


# --------------------------------------------------------------------------
# Kerberos (python3-gssapi over MIT Kerberos): the acceptor, with the HTTP
# service key from a keytab, and MS-WSMV 2.2.9.1.2 sealing: GSS_WrapEx with
# the header apart (4-byte length, header, sealed data), as WinRM does.
# --------------------------------------------------------------------------
KRB_PROTOCOL = 'application/HTTP-Kerberos-session-encrypted'


class KerberosSession:
    protocol = KRB_PROTOCOL

    def __init__(self, ctx):
        self.ctx = ctx

    def wrap(self, plain):
        from gssapi.raw import ext_dce
        T = ext_dce.IOVBufferType
        iov = ext_dce.IOV(T.header, plain, T.padding, std_layout=False)
        ext_dce.wrap_iov(self.ctx, iov, confidential=True)
        return iov[1].value + (iov[2].value or b''), iov[0].value

    def unwrap(self, sealed, header):
        from gssapi.raw import ext_dce
        T = ext_dce.IOVBufferType
        iov = ext_dce.IOV((T.header, False, header), sealed, std_layout=False)
        res = ext_dce.unwrap_iov(self.ctx, iov)
        if not res.encrypted:
            raise ValueError('Kerberos message without confidentiality')
        return iov[1].value


def kerberos_accept(keytab, token):
    """One-leg Kerberos acceptance: (session, client principal, AP-REP token)."""
    import gssapi
    os.environ['KRB5_KTNAME'] = keytab
    creds = gssapi.Credentials(usage='accept')
    ctx = gssapi.SecurityContext(creds=creds, usage='accept')
    out = ctx.step(token)
    if not ctx.complete:
        raise PermissionError('Kerberos context not complete after one leg')
    return KerberosSession(ctx), str(ctx.initiator_name), out or b''


# --------------------------------------------------------------------------
# The server
# --------------------------------------------------------------------------
class Peer:
    def __init__(self, args):
        self.args = args
        self.store = Store(args.data)
        self.plan = ReloadingJson(args.fault_plan, {})
        self.plan_fired = {}
        self.log_lock = threading.Lock()
        self.log_fh = open(args.log, 'a', encoding='utf-8') if args.log else None
        self.auth_schemes = [s.strip().lower() for s in args.auth.split(',') if s.strip()]
        self.soap_count = 0
        self.count_lock = threading.Lock()
        self.contexts = {}
        self.shells = {}
        self.state_lock = threading.Lock()

    def log(self, entry):
        if not self.log_fh:
            return
        with self.log_lock:
            self.log_fh.write(json.dumps(entry, sort_keys=True) + '\n')
            self.log_fh.flush()

    def next_soap_number(self):
        with self.count_lock:
            self.soap_count += 1
            return self.soap_count

    def planned_fault(self, n, action, cls):
        """The fault plan: {"faults": [{"nth": 3 | "class": "Win32_X" |
        "action": "Pull", "kind": "quota", "times": 1}]}; times 0 = always."""
        rules = self.plan.get().get('faults', [])
        for i, rule in enumerate(rules):
            if 'nth' in rule and rule['nth'] != n:
                continue
            if 'class' in rule and (cls or '').lower() != rule['class'].lower():
                continue
            if 'action' in rule and not action.endswith('/' + rule['action']):
                continue
            key = (i, json.dumps(rule, sort_keys=True))
            with self.count_lock:
                fired = self.plan_fired.get(key, 0)
                times = rule.get('times', 1)
                if times and fired >= times:
                    continue
                self.plan_fired[key] = fired + 1
            return rule['kind']
        return None


class Handler(BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'
    server_version = 'Microsoft-HTTPAPI/2.0'
    sys_version = ''
    peer = None  # set in main()

    def setup(self):
        super().setup()
        # Per TCP connection: NTLM is connection-bound.
        self.acceptor = NtlmAcceptor(self.peer.args.user, self.peer.args.password,
                                     self.peer.args.domain, self.peer.args.hostname)
        self.session = None      # SessionSecurity once NTLM completes
        self.ntlm_user = None
        # Set by the fault plan's access_denied_401: the user authenticates
        # but is not allowed in (not in Remote Management Users), so the
        # client's re-authentication on this connection is refused as well.
        self.deny_reauth = False

    def log_message(self, fmt, *a):  # keep stderr quiet; the JSONL log is the record
        pass

    # ---- HTTP plumbing ----
    def _send(self, status, body=b'', ctype=None, headers=()):
        # Log before answering: a test reads the log as soon as it has the reply.
        entry = getattr(self, '_entry', None)
        if entry is not None:
            entry['status'] = status
            self.peer.log(entry)
            self._entry = None
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        if body:
            self.send_header('Content-Type', ctype or SOAP_CONTENT_TYPE)
        self.send_header('Content-Length', str(len(body)))
        self.end_headers()
        if body:
            self.wfile.write(body)

    def _challenge_headers(self):
        h = [('WWW-Authenticate', 'Negotiate')] if 'ntlm' in self.peer.auth_schemes else []
        if 'kerberos' in self.peer.auth_schemes:
            h.append(('WWW-Authenticate', 'Kerberos'))
        if 'basic' in self.peer.auth_schemes:
            h.append(('WWW-Authenticate', 'Basic realm="WSMAN"'))
        return h

    def do_GET(self):
        self._entry = None
        self._read_body()
        self._send(405, b'', headers=[('Allow', 'POST')])

    def _read_body(self):
        if 'chunked' in self.headers.get('Transfer-Encoding', '').lower():
            # http.sys accepts chunked request bodies; so do we.
            out = b''
            while True:
                size = int(self.rfile.readline().split(b';')[0].strip() or b'0', 16)
                if size == 0:
                    while self.rfile.readline() not in (b'\r\n', b'\n', b''):
                        pass  # trailers
                    return out
                out += self.rfile.read(size)
                self.rfile.readline()
        n = int(self.headers.get('Content-Length') or 0)
        return self.rfile.read(n) if n else b''

    def do_POST(self):
        entry = {'time': time.time(), 'method': 'POST', 'path': self.path,
                 'auth': None, 'encrypted': False, 'client': self.client_address[0]}
        self._entry = entry
        try:
            self._post(entry)
        except (BrokenPipeError, ConnectionResetError):
            raise
        except Exception as exc:  # never leave the client hanging
            entry['error'] = '%s: %s' % (type(exc).__name__, exc)
            if self._entry is None:  # the answer went out already
                self.peer.log(entry)
                raise
            self._send(500, b'')

    def _post(self, entry):
        body = self._read_body()
        if self.path.split('?')[0].lower() != '/wsman':
            entry['status'] = 404
            self._send(404, b'')
            return
        authz = self.headers.get('Authorization', '')
        scheme, _, token = authz.partition(' ')
        scheme = scheme.lower()
        entry['auth'] = scheme or ('connection' if self.session else None)

        if scheme in ('negotiate', 'ntlm'):
            if 'ntlm' not in self.peer.auth_schemes:
                return self._deny(entry, 'ntlm not enabled')
            raw = base64.b64decode(token.strip())
            if not raw.startswith(b'NTLMSSP\0'):
                # SPNEGO/Kerberos tokens: this peer speaks raw NTLMSSP only.
                return self._deny(entry, 'not a raw NTLMSSP token')
            mtype = struct.unpack('<I', raw[8:12])[0]
            label = 'Negotiate' if scheme == 'negotiate' else 'NTLM'
            if mtype == 1:
                self.session = None
                entry['ntlm'] = 'NEGOTIATE'
                try:
                    chal = self.acceptor.challenge(raw)
                except Exception as exc:
                    return self._deny(entry, 'bad NEGOTIATE: %s' % exc)
                entry['status'] = 401
                self._send(401, b'', headers=[
                    ('WWW-Authenticate', '%s %s' % (label, base64.b64encode(chal).decode()))])
                return
            if mtype == 3:
                entry['ntlm'] = 'AUTHENTICATE'
                if self.deny_reauth:
                    self.deny_reauth = False
                    self.session = None
                    return self._deny(entry, 'access denied (fault plan access_denied_401)')
                try:
                    self.session, self.ntlm_user, mic = self.acceptor.authenticate(raw)
                except PermissionError as exc:
                    self.session = None
                    return self._deny(entry, str(exc))
                except Exception as exc:
                    self.session = None
                    return self._deny(entry, 'bad AUTHENTICATE: %s' % exc)
                entry['user'] = self.ntlm_user
                entry['mic'] = mic
                # Fall through: the same request may carry the first SOAP body
                # (encrypted with the fresh session keys) or be empty (pywinrm).
                return self._soap(entry, body, authenticated_by='ntlm')
            return self._deny(entry, 'unexpected NTLM message type %d' % mtype)

        if scheme == 'kerberos':
            if 'kerberos' not in self.peer.auth_schemes or not self.peer.args.keytab:
                return self._deny(entry, 'kerberos not enabled')
            try:
                session, who, reply = kerberos_accept(self.peer.args.keytab,
                                                      base64.b64decode(token.strip()))
            except Exception as exc:
                self.session = None
                return self._deny(entry, 'kerberos: %s' % exc)
            self.session = session
            entry['user'] = who
            entry['kerberos'] = 'AP-REQ'
            if body:
                return self._deny(entry, 'kerberos: a body before the context is established')
            # Mutual authentication: the AP-REP rides on the 200 of the empty request.
            entry['status'] = 200
            self._send(200, b'', headers=[
                ('WWW-Authenticate', 'Kerberos ' + base64.b64encode(reply).decode())])
            return

        if scheme == 'basic':
            if 'basic' not in self.peer.auth_schemes:
                return self._deny(entry, 'basic not enabled')
            if not self.peer.args.https:
                # WinRM refuses Basic over HTTP unless AllowUnencrypted=true.
                return self._deny(entry, 'basic refused over plain HTTP')
            try:
                user, _, pw = base64.b64decode(token.strip()).decode('utf-8').partition(':')
            except Exception:
                return self._deny(entry, 'malformed basic credentials')
            short = user.split('\\')[-1]
            if short.lower() != self.peer.args.user.lower() or pw != self.peer.args.password:
                return self._deny(entry, 'basic: wrong user or password')
            entry['user'] = short
            return self._soap(entry, body, authenticated_by='basic')

        if scheme:
            return self._deny(entry, 'unsupported scheme %s' % scheme)
        if self.session is None:
            return self._deny(entry, 'no credentials')
        return self._soap(entry, body, authenticated_by=(
            'kerberos' if isinstance(self.session, KerberosSession) else 'ntlm'))

    def _deny(self, entry, reason):
        entry['status'] = 401
        entry['deny'] = reason
        self._send(401, b'', headers=self._challenge_headers())

    # ---- SOAP ----
    def _soap(self, entry, body, authenticated_by):
        ctype = self.headers.get('Content-Type', '')
        if not body:
            # pywinrm's setup_encryption: an empty POST to finish the handshake.
            entry['status'] = 200
            self._send(200, b'')
            return
        encrypted = ctype.lower().startswith('multipart/encrypted')
        entry['encrypted'] = encrypted
        if encrypted:
            if self.session is None or authenticated_by not in ('ntlm', 'kerberos'):
                entry['status'] = 400
                entry['deny'] = 'encrypted body without an NTLM session'
                self._send(400, b'')
                return
            try:
                plain = decrypt_body(self.session, body)
            except Exception as exc:
                # A bad signature or framing: Windows drops the request.
                entry['status'] = 400
                entry['deny'] = 'decrypt failed: %s' % exc
                self._send(400, b'')
                return
        else:
            if (self.peer.args.require_encryption and authenticated_by in ('ntlm', 'kerberos')
                    and not self.peer.args.https):
                # AllowUnencrypted=false: Windows answers a plaintext body over
                # HTTP with 401 (pywinrm reports "credentials were rejected").
                entry['status'] = 401
                entry['deny'] = 'unencrypted body refused (--require-encryption)'
                self._send(401, b'', headers=self._challenge_headers())
                return
            plain = body
        text = plain.decode('utf-8', errors='replace')
        entry['envelope'] = text
        status, reply, fault = self.peer_dispatch(text, entry)
        entry['status'] = status
        if fault:
            entry['fault'] = fault
        if reply is None:  # an HTTP-level answer (401 variant, 503)
            if status == 401:
                self.session = None
                self.deny_reauth = True
                self._send(401, b'', headers=self._challenge_headers())
            else:
                self._send(status, b'')
            return
        data = reply.encode('utf-8')
        if encrypted:
            self._send(status, encrypt_body(self.session, data), ctype=ENC_CONTENT_TYPE)
        else:
            self._send(status, data)

    def peer_dispatch(self, text, entry):
        peer = self.peer
        try:
            root = ET.fromstring(text)
        except ET.ParseError as exc:
            entry['error'] = 'xml: %s' % exc
            return 400, None, None
        hdr = root.find('s:Header', NS)
        body = root.find('s:Body', NS)
        if hdr is None or body is None:
            entry['error'] = 'not a SOAP 1.2 envelope'
            return 400, None, None
        action = (hdr.findtext('a:Action', '', NS) or '').strip()
        msgid = (hdr.findtext('a:MessageID', '', NS) or '').strip()
        uri = (hdr.findtext('w:ResourceURI', '', NS) or '').strip()
        selectors = {s.get('Name'): (s.text or '') for s in hdr.findall('w:SelectorSet/w:Selector', NS)}
        entry.update(action=action, resource_uri=uri, selectors=selectors, message_id=msgid)
        n = peer.next_soap_number()
        entry['n'] = n
        wql = None
        flt = body.find('n:Enumerate/w:Filter', NS) if body is not None else None
        if flt is not None:
            wql = (flt.text or '').strip()
            entry['wql'] = wql
            entry['dialect'] = flt.get('Dialect')
        cls = self._class_of(uri, wql, action, body)
        try:
            kind = peer.planned_fault(n, action, cls)
            if kind == 'access_denied_401':
                entry['fault'] = kind
                return 401, None, kind
            if kind == 'server_busy':
                entry['fault'] = kind
                return 503, None, kind
            if kind:
                raise WsmanFault(kind, 'fault plan')
            ract, rbody = self._operation(action, uri, selectors, hdr, body, entry)
            return 200, self._envelope(ract, msgid, rbody), None
        except WsmanFault as f:
            status, fact, code, sub, reason, wcode, message = FAULTS[f.kind]
            if f.detail:
                entry['fault_detail'] = f.detail
            fb = ('<s:Fault><s:Code><s:Value>%s</s:Value><s:Subcode><s:Value>%s</s:Value>'
                  '</s:Subcode></s:Code><s:Reason><s:Text xml:lang="en-US">%s</s:Text></s:Reason>'
                  '<s:Detail><f:WSManFault xmlns:f="%s" Code="%d" Machine="%s"><f:Message>%s'
                  '</f:Message></f:WSManFault></s:Detail></s:Fault>'
                  % (code, sub, esc(reason), NS['f'], wcode, esc(self.peer.args.hostname.lower()),
                     esc(message)))
            return status, self._envelope(fact, msgid, fb), f.kind

    def _class_of(self, uri, wql, action, body):
        if wql:
            try:
                return Wql(wql).cls
            except WqlError:
                return None
        if uri.startswith(WMI_PREFIX):
            return uri.rsplit('/', 1)[-1]
        if action.endswith('/Pull') and body is not None:
            ctx = (body.findtext('n:Pull/n:EnumerationContext', '', NS) or '').strip()
            with self.peer.state_lock:
                c = self.peer.contexts.get(ctx)
            return c['class'] if c else None
        return None

    def _envelope(self, action, relates_to, body_xml):
        return ('<s:Envelope xml:lang="en-US" xmlns:s="%s" xmlns:a="%s" xmlns:x="%s" '
                'xmlns:w="%s" xmlns:rsp="%s" xmlns:p="%s" xmlns:n="%s">'
                '<s:Header><a:Action>%s</a:Action><a:MessageID>%s</a:MessageID>'
                '<a:To>%s</a:To><a:RelatesTo>%s</a:RelatesTo></s:Header>'
                '<s:Body>%s</s:Body></s:Envelope>'
                % (NS['s'], NS['a'], NS['x'], NS['w'], NS['rsp'], NS['p'], NS['n'],
                   esc(action), new_uuid(), ANONYMOUS, esc(relates_to), body_xml))

    def _operation(self, action, uri, selectors, hdr, body, entry):
        if action == ENUM + 'Enumerate':
            return self._enumerate(uri, body, entry)
        if action == ENUM + 'Pull':
            return self._pull(body, entry)
        if action == ENUM + 'Release':
            ctx = (body.findtext('n:Release/n:EnumerationContext', '', NS) or '').strip()
            with self.peer.state_lock:
                self.peer.contexts.pop(ctx, None)
            return ENUM + 'ReleaseResponse', ''
        if uri == SHELL_URI or uri.startswith(SHELL):
            return self._shell(action, selectors, hdr, body, entry)
        if action == TRANSFER + 'Get' and uri.startswith(WMI_PREFIX):
            ns, cname = self._split_uri(uri)
            cname, row = self._select_one(ns, cname, selectors)
            return TRANSFER + 'GetResponse', render_instance(ns, cname, row)
        if uri.startswith(WMI_PREFIX) and action.startswith(WMI_PREFIX):
            return self._invoke(action, uri, selectors, body, entry)
        raise WsmanFault('action_not_supported', action)

    # ---- WMI ----
    @staticmethod
    def _split_uri(uri):
        rest = uri[len(WMI_PREFIX):]
        ns, _, cname = rest.rpartition('/')
        return ns, cname

    def _enumerate(self, uri, body, entry):
        if not uri.startswith(WMI_PREFIX):
            raise WsmanFault('destination_unreachable', 'not a WMI resource URI')
        ns, cname = self._split_uri(uri)
        en = body.find('n:Enumerate', NS)
        flt = en.find('w:Filter', NS)
        query = None
        if flt is not None:
            if flt.get('Dialect') != WQL_DIALECT:
                raise WsmanFault('cannot_process_filter', 'dialect %s' % flt.get('Dialect'))
            try:
                query = Wql((flt.text or '').strip())
            except WqlError as exc:
                raise WsmanFault('cannot_process_filter', str(exc))
            cname = query.cls
        elif cname == '*':
            # The '*' URI means "the class is in the filter"; there is none.
            raise WsmanFault('cannot_process_filter', '* URI without a WQL filter')
        found = self.peer.store.find_class(ns, cname)
        if found is None:
            raise WsmanFault('destination_unreachable', 'no class %s in %s' % (cname, ns))
        cname, rows = found
        try:
            rows = [r for r in rows if query is None or query.matches(r)]
        except WqlError as exc:
            raise WsmanFault('cannot_process_filter', str(exc))
        if query is not None and query.props is not None:
            for p in query.props:
                if rows and not get_prop(rows[0], p)[0]:
                    raise WsmanFault('cannot_process_filter', 'no property %s' % p)
            items = [render_fragment(r, query.props) for r in rows]
        else:
            items = [render_instance(ns, cname, r) for r in rows]
        entry['class'] = cname
        entry['namespace'] = ns
        entry['matched'] = len(items)
        mode = en.findtext('w:EnumerationMode', None, NS)
        if mode:
            entry['enumeration_mode'] = mode
        ctx = new_uuid()
        out = ''
        optimize = en.find('w:OptimizeEnumeration', NS) is not None
        if optimize:
            maxel = int(en.findtext('w:MaxElements', '1', NS) or 1)
            entry['max_elements'] = maxel
            first, items = items[:maxel], items[maxel:]
            out = '<w:Items>%s</w:Items>' % ''.join(first)
            if not items:
                out += '<w:EndOfSequence/>'
        if not optimize or items:
            with self.peer.state_lock:
                self._expire_contexts()
                self.peer.contexts[ctx] = {'items': items, 'class': cname,
                                           'touched': time.monotonic()}
        entry['context'] = ctx
        return (ENUM + 'EnumerateResponse',
                '<n:EnumerateResponse><n:EnumerationContext>%s</n:EnumerationContext>%s'
                '</n:EnumerateResponse>' % (ctx, out))

    def _expire_contexts(self):
        now = time.monotonic()
        for k in [k for k, c in self.peer.contexts.items() if now - c['touched'] > ENUM_CONTEXT_TTL]:
            del self.peer.contexts[k]

    def _pull(self, body, entry):
        pull = body.find('n:Pull', NS)
        ctx = (pull.findtext('n:EnumerationContext', '', NS) or '').strip()
        maxel = int(pull.findtext('n:MaxElements', '1', NS) or 1)
        entry['context'] = ctx
        entry['max_elements'] = maxel
        with self.peer.state_lock:
            self._expire_contexts()
            c = self.peer.contexts.get(ctx)
            if c is None:
                raise WsmanFault('invalid_context', 'unknown or expired context %s' % ctx)
            batch, c['items'] = c['items'][:maxel], c['items'][maxel:]
            c['touched'] = time.monotonic()
            done = not c['items']
            if done:
                del self.peer.contexts[ctx]
        entry['class'] = c['class']
        entry['returned'] = len(batch)
        out = '<n:PullResponse>'
        if not done:
            out += '<n:EnumerationContext>%s</n:EnumerationContext>' % ctx
        out += '<n:Items>%s</n:Items>' % ''.join(batch)
        if done:
            out += '<n:EndOfSequence/>'
        out += '</n:PullResponse>'
        return ENUM + 'PullResponse', out

    def _select_one(self, ns, cname, selectors):
        found = self.peer.store.find_class(ns, cname)
        if found is None:
            raise WsmanFault('destination_unreachable', 'no class %s in %s' % (cname, ns))
        cname, rows = found
        if not selectors:
            raise WsmanFault('invalid_selectors', 'no selectors')
        for name in selectors:
            if rows and not get_prop(rows[0], name)[0]:
                raise WsmanFault('unexpected_selectors', 'no key %s' % name)
        for r in rows:
            if all(str(get_prop(r, k)[1]).lower() == v.lower() for k, v in selectors.items()):
                return cname, r
        raise WsmanFault('invalid_selectors', 'no instance %s' % selectors)

    def _invoke(self, action, uri, selectors, body, entry):
        ns, cname = self._split_uri(uri)
        method = action.rsplit('/', 1)[-1]
        entry['method_name'] = method
        cname, row = self._select_one(ns, cname, selectors)
        if cname.lower() != 'win32_service' or method not in ('StartService', 'StopService'):
            raise WsmanFault('action_not_supported', action)
        rv = self.peer.store.service_control(cname, row, method)
        entry['return_value'] = rv
        rns = WMI_PREFIX + ns + '/' + cname
        return (action + 'Response',
                '<p:%s_OUTPUT xmlns:p="%s"><p:ReturnValue>%d</p:ReturnValue></p:%s_OUTPUT>'
                % (method, rns, rv, method))

    # ---- Remote shell (MS-WSMV 3.1.4.1x) ----
    def _shell(self, action, selectors, hdr, body, entry):
        peer = self.peer
        shell_id = selectors.get('ShellId')
        if action == TRANSFER + 'Create':
            shell_id = str(uuid.uuid4()).upper()
            with peer.state_lock:
                peer.shells[shell_id] = {}
            entry['shell_id'] = shell_id
            addr = 'http%s://127.0.0.1:%d/wsman' % ('s' if peer.args.https else '',
                                                   self.server.server_address[1])
            return (TRANSFER + 'CreateResponse',
                    '<x:ResourceCreated><a:Address>%s</a:Address><a:ReferenceParameters>'
                    '<w:ResourceURI>%s</w:ResourceURI><w:SelectorSet>'
                    '<w:Selector Name="ShellId">%s</w:Selector></w:SelectorSet>'
                    '</a:ReferenceParameters></x:ResourceCreated>'
                    '<rsp:Shell><rsp:ShellId>%s</rsp:ShellId><rsp:ResourceUri>%s</rsp:ResourceUri>'
                    '<rsp:Owner>%s\\%s</rsp:Owner><rsp:ClientIP>%s</rsp:ClientIP>'
                    '<rsp:IdleTimeOut>PT7200.000S</rsp:IdleTimeOut><rsp:InputStreams>stdin'
                    '</rsp:InputStreams><rsp:OutputStreams>stdout stderr</rsp:OutputStreams>'
                    '<rsp:ShellRunTime>P0DT0H0M0S</rsp:ShellRunTime>'
                    '<rsp:ShellInactivity>P0DT0H0M0S</rsp:ShellInactivity></rsp:Shell>'
                    % (addr, SHELL_URI, shell_id, shell_id, SHELL_URI,
                       esc(peer.args.domain.upper()), esc(peer.args.user),
                       self.client_address[0]))
        with peer.state_lock:
            shell = peer.shells.get(shell_id)
        if shell is None:
            raise WsmanFault('invalid_selectors', 'no shell %s' % shell_id)
        entry['shell_id'] = shell_id
        if action == SHELL + 'Command':
            line = body.find('rsp:CommandLine', NS)
            cmd = (line.findtext('rsp:Command', '', NS) or '').strip()
            args = [a.text or '' for a in line.findall('rsp:Arguments', NS)]
            full = ' '.join([cmd] + args).strip()
            entry['command'] = full
            table = peer.store.commands()
            spec = table.get(full) or table.get(cmd) or \
                next((v for k, v in table.items() if k.lower() == full.lower()), None)
            if spec is None:
                name = cmd.split()[0] if cmd.split() else cmd
                spec = {'stdout': '', 'exit': 1,
                        'stderr': "'%s' is not recognized as an internal or external command,\r\n"
                                  "operable program or batch file.\r\n" % name}
            cid = str(uuid.uuid4()).upper()
            with peer.state_lock:
                shell[cid] = {'spec': spec, 'sent': False}
            entry['command_id'] = cid
            return (SHELL + 'CommandResponse',
                    '<rsp:CommandResponse><rsp:CommandId>%s</rsp:CommandId></rsp:CommandResponse>'
                    % cid)
        if action == SHELL + 'Receive':
            ds = body.find('rsp:Receive/rsp:DesiredStream', NS)
            cid = ds.get('CommandId') if ds is not None else None
            with peer.state_lock:
                cmd = shell.get(cid)
            if cmd is None:
                raise WsmanFault('invalid_selectors', 'no command %s' % cid)
            spec = cmd['spec']
            out = '<rsp:ReceiveResponse>'
            for name in ('stdout', 'stderr'):
                data = spec.get(name, '').encode('utf-8')
                if data:
                    out += '<rsp:Stream Name="%s" CommandId="%s">%s</rsp:Stream>' % (
                        name, cid, base64.b64encode(data).decode())
                out += '<rsp:Stream Name="%s" CommandId="%s" End="true"></rsp:Stream>' % (name, cid)
            out += ('<rsp:CommandState CommandId="%s" State="%sCommandState/Done">'
                    '<rsp:ExitCode>%d</rsp:ExitCode></rsp:CommandState></rsp:ReceiveResponse>'
                    % (cid, SHELL, int(spec.get('exit', 0))))
            entry['exit'] = int(spec.get('exit', 0))
            return SHELL + 'ReceiveResponse', out
        if action == SHELL + 'Signal':
            sig = body.find('rsp:Signal', NS)
            cid = sig.get('CommandId')
            entry['signal'] = sig.findtext('rsp:Code', '', NS)
            with peer.state_lock:
                shell.pop(cid, None)
            return SHELL + 'SignalResponse', '<rsp:SignalResponse/>'
        if action == TRANSFER + 'Delete':
            with peer.state_lock:
                peer.shells.pop(shell_id, None)
            return TRANSFER + 'DeleteResponse', ''
        raise WsmanFault('action_not_supported', action)


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    ssl_context = None

    def get_request(self):
        sock, addr = self.socket.accept()
        if self.ssl_context:
            # The TLS handshake runs in the connection's thread (Handler.setup),
            # not here in the accept loop.
            sock = self.ssl_context.wrap_socket(sock, server_side=True,
                                                do_handshake_on_connect=False)
        return sock, addr


class TlsHandler(Handler):
    def setup(self):
        self.request.do_handshake()
        super().setup()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--port', type=int, default=0)
    ap.add_argument('--data', required=True)
    ap.add_argument('--user', required=True)
    ap.add_argument('--password', required=True)
    ap.add_argument('--domain', default='WINHOST',
                    help='NetBIOS domain the NTLM challenge announces (and accepts)')
    ap.add_argument('--hostname', default='WINHOST01',
                    help='NetBIOS computer name in the challenge and in f:WSManFault Machine')
    ap.add_argument('--log')
    ap.add_argument('--https', nargs=2, metavar=('CERT', 'KEY'))
    ap.add_argument('--auth', default='ntlm', help='comma list of ntlm, basic, kerberos')
    ap.add_argument('--keytab', help='keytab with the HTTP service key (for kerberos)')
    ap.add_argument('--require-encryption', action='store_true')
    ap.add_argument('--fault-plan')
    args = ap.parse_args()

    Handler.peer = Peer(args)
    srv = Server(('127.0.0.1', args.port), TlsHandler if args.https else Handler)
    if args.https:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(args.https[0], args.https[1])
        srv.ssl_context = ctx

    def stop(*_):
        threading.Thread(target=srv.shutdown, daemon=True).start()
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print('WINRM_PEER port=%d' % srv.server_address[1], flush=True)
    srv.serve_forever()
    srv.server_close()


if __name__ == '__main__':
    main()
