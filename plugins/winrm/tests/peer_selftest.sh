#!/bin/sh
# Proves winrm_peer.py against a real, independent WS-Man client: Debian's
# python3-winrm (pywinrm 0.3.0, with requests-ntlm/ntlm-auth underneath).
#   * NTLM over HTTP with MS-WSMV message encryption ('always'): a shell
#     round trip (hostname), an unknown command, a raw WQL Enumerate + Pull, an
#     optimized Enumerate with a projection, StartService/StopService and the
#     state change seen by a later Enumerate, faults from a fault plan, an
#     invalid enumeration context, a fixture appended while the peer runs;
#   * a wrong password is refused (401);
#   * a plaintext body after NTLM is refused under --require-encryption;
#   * Basic over HTTPS (self-signed cert from openssl), and Basic refused
#     over plain HTTP.
# Exits non-zero on any failure.  Loopback only.
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
PY=/usr/bin/python3          # the only interpreter that sees the Debian modules
T=$(mktemp -d)
PIDS=""
cleanup() {
    for p in $PIDS; do kill "$p" 2>/dev/null || true; done
    for p in $PIDS; do wait "$p" 2>/dev/null || true; done
    rm -rf "$T"
}
trap cleanup EXIT INT TERM

USER=Administrator
PASS='P@ss-w0rd1'

# start_peer NAME ARGS... -> sets PORT, appends the pid to PIDS
start_peer() {
    name=$1; shift
    cp "$HERE/fixture.json" "$T/$name.json"
    "$PY" "$HERE/winrm_peer.py" --port 0 --data "$T/$name.json" --user "$USER" \
        --password "$PASS" --domain WINHOST --log "$T/$name.jsonl" "$@" \
        >"$T/$name.out" 2>"$T/$name.err" &
    PIDS="$PIDS $!"
    i=0
    while ! grep -q '^WINRM_PEER port=' "$T/$name.out" 2>/dev/null; do
        i=$((i + 1))
        if [ $i -gt 100 ]; then echo "peer $name did not start"; cat "$T/$name.err"; exit 1; fi
        sleep 0.1
    done
    PORT=$(sed -n 's/^WINRM_PEER port=//p' "$T/$name.out")
}

# ntlm-auth (the client side) computes NTOWF with hashlib's MD4, which OpenSSL 3
# only has in its legacy provider; enable it for the client process alone.
cat >"$T/openssl.cnf" <<'EOF'
openssl_conf = openssl_init
[openssl_init]
providers = provider_sect
[provider_sect]
default = default_sect
legacy = legacy_sect
[default_sect]
activate = 1
[legacy_sect]
activate = 1
EOF

openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=127.0.0.1 \
    -keyout "$T/key.pem" -out "$T/cert.pem" >/dev/null 2>&1

cat >"$T/plan.json" <<'EOF'
{"faults": [{"class": "Win32_PerfFormattedData_PerfOS_Memory", "kind": "quota", "times": 1},
            {"class": "Win32_LogicalDisk", "kind": "timeout", "times": 1},
            {"class": "Win32_ComputerSystem", "kind": "access_denied", "times": 1},
            {"class": "Win32_PerfFormattedData_Tcpip_NetworkInterface", "kind": "access_denied_401", "times": 1}]}
EOF

start_peer http --require-encryption --fault-plan "$T/plan.json"
HTTP_PORT=$PORT
start_peer https --https "$T/cert.pem" "$T/key.pem" --auth ntlm,basic
HTTPS_PORT=$PORT
start_peer basichttp --auth ntlm,basic
BASICHTTP_PORT=$PORT

# pywinrm 0.3.0 lets REQUESTS_CA_BUNDLE/CURL_CA_BUNDLE override
# server_cert_validation='ignore', and takes proxies from the environment:
# drop both so the client verifies nothing and talks to loopback directly.
env -u REQUESTS_CA_BUNDLE -u CURL_CA_BUNDLE -u HTTP_PROXY -u HTTPS_PROXY -u http_proxy \
    -u https_proxy -u ALL_PROXY -u all_proxy NO_PROXY=127.0.0.1 no_proxy=127.0.0.1 \
    OPENSSL_CONF="$T/openssl.cnf" "$PY" - "$HTTP_PORT" "$HTTPS_PORT" "$BASICHTTP_PORT" "$T" "$USER" "$PASS" <<'EOF'
import json, sys, uuid, xml.etree.ElementTree as ET
import warnings
warnings.filterwarnings('ignore')
from winrm.protocol import Protocol
from winrm.exceptions import InvalidCredentialsError, WinRMError, WinRMTransportError

http_port, https_port, basichttp_port, tmp, user, password = sys.argv[1:]
failures = []

def check(cond, what):
    print(('ok   ' if cond else 'FAIL ') + what)
    if not cond:
        failures.append(what)

NS = {'s': 'http://www.w3.org/2003/05/soap-envelope',
      'a': 'http://schemas.xmlsoap.org/ws/2004/08/addressing',
      'w': 'http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd',
      'n': 'http://schemas.xmlsoap.org/ws/2004/09/enumeration',
      'f': 'http://schemas.microsoft.com/wbem/wsman/1/wsmanfault'}
CIMV2 = 'http://schemas.microsoft.com/wbem/wsman/1/wmi/root/cimv2/'

def envelope(action, uri, body, selectors=None, msgid=None):
    sel = ''
    if selectors:
        sel = '<w:SelectorSet>%s</w:SelectorSet>' % ''.join(
            '<w:Selector Name="%s">%s</w:Selector>' % kv for kv in selectors.items())
    return ('<s:Envelope xmlns:s="%(s)s" xmlns:a="%(a)s" xmlns:w="%(w)s" xmlns:n="%(n)s">'
            '<s:Header><a:To>http://127.0.0.1/wsman</a:To>'
            '<w:ResourceURI s:mustUnderstand="true">%(uri)s</w:ResourceURI>'
            '<a:ReplyTo><a:Address s:mustUnderstand="true">'
            'http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous</a:Address></a:ReplyTo>'
            '<a:Action s:mustUnderstand="true">%(action)s</a:Action>'
            '<w:MaxEnvelopeSize s:mustUnderstand="true">153600</w:MaxEnvelopeSize>'
            '<a:MessageID>%(msgid)s</a:MessageID><w:OperationTimeout>PT20S</w:OperationTimeout>'
            '%(sel)s</s:Header><s:Body>%(body)s</s:Body></s:Envelope>'
            % dict(NS, uri=uri, action=action, body=body, sel=sel,
                   msgid=msgid or 'uuid:' + str(uuid.uuid4()).upper()))

ENUM = 'http://schemas.xmlsoap.org/ws/2004/09/enumeration/'
WQL = 'http://schemas.microsoft.com/wbem/wsman/1/WQL'

def enumerate_all(p, uri, wql=None, optimize=None):
    """Enumerate (+ Pull until EndOfSequence) through pywinrm's transport."""
    flt = '<w:Filter Dialect="%s">%s</w:Filter>' % (WQL, wql) if wql else ''
    opt = ('<w:OptimizeEnumeration/><w:MaxElements>%d</w:MaxElements>' % optimize) if optimize else ''
    msgid = 'uuid:' + str(uuid.uuid4()).upper()
    resp = ET.fromstring(p.send_message(envelope(ENUM + 'Enumerate', uri,
        '<n:Enumerate>%s%s</n:Enumerate>' % (opt, flt), msgid=msgid)))
    assert resp.findtext('s:Header/a:RelatesTo', None, NS) == msgid, 'RelatesTo'
    er = resp.find('s:Body/n:EnumerateResponse', NS)
    items = list(er.find('w:Items', NS) or [])
    ctx = er.findtext('n:EnumerationContext', None, NS)
    done = er.find('w:EndOfSequence', NS) is not None
    pulls = 0
    while not done:
        resp = ET.fromstring(p.send_message(envelope(ENUM + 'Pull', uri,
            '<n:Pull><n:EnumerationContext>%s</n:EnumerationContext>'
            '<n:MaxElements>5</n:MaxElements></n:Pull>' % ctx)))
        pr = resp.find('s:Body/n:PullResponse', NS)
        items += list(pr.find('n:Items', NS))
        ctx = pr.findtext('n:EnumerationContext', ctx, NS)
        done = pr.find('n:EndOfSequence', NS) is not None
        pulls += 1
    return items, pulls

def local(tag):
    return tag.rsplit('}', 1)[-1]

def props(item):
    out = {}
    for c in item:
        nil = c.get('{http://www.w3.org/2001/XMLSchema-instance}nil') == 'true'
        val = None if nil else (c[0].text if len(c) else (c.text or ''))
        if local(c.tag) in out:
            prev = out[local(c.tag)]
            out[local(c.tag)] = (prev if isinstance(prev, list) else [prev]) + [val]
        else:
            out[local(c.tag)] = val
    return out

def fault_of(exc):
    return str(exc)

# ---- 1. NTLM + message encryption over HTTP --------------------------------
ep = 'http://127.0.0.1:%s/wsman' % http_port
p = Protocol(ep, transport='ntlm', username=user, password=password,
             message_encryption='always')
shell = p.open_shell()
cid = p.run_command(shell, 'hostname')
out, err, code = p.get_command_output(shell, cid)
p.cleanup_command(shell, cid)
check(out == b'WINHOST01\r\n' and code == 0, 'ntlm+encryption: run_command hostname -> %r, %d' % (out, code))
cid = p.run_command(shell, 'nosuchtool', ['/x'])
out, err, code = p.get_command_output(shell, cid)
p.cleanup_command(shell, cid)
check(code == 1 and b"'nosuchtool' is not recognized" in err, 'unknown command -> stderr, exit 1')
p.close_shell(shell)

items, pulls = enumerate_all(p, CIMV2 + '*', "SELECT * FROM Win32_Service WHERE State = 'Running' AND StartMode='Auto'")
names = sorted(props(i)['Name'] for i in items)
check(names == ['Dnscache', 'EventLog', 'LanmanServer', 'MSSQLSERVER', 'Spooler', 'W3SVC', 'WinRM'],
      'WQL SELECT * with WHERE through Enumerate+Pull (%d pulls): %s' % (pulls, names))
check(all(local(i.tag) == 'Win32_Service' and i.tag.startswith('{' + CIMV2 + 'Win32_Service}') for i in items),
      'SELECT * items are p:Win32_Service instances')

items, pulls = enumerate_all(p, CIMV2 + '*', 'SELECT Name, State FROM Win32_Service WHERE ProcessId > 2000', optimize=3)
check(all(local(i.tag) == 'XmlFragment' and [local(c.tag) for c in i] == ['Name', 'State'] for i in items)
      and sorted(props(i)['Name'] for i in items) == ['MSSQLSERVER', 'Spooler', 'W3SVC'],
      'optimized WQL projection -> w:XmlFragment Name/State (%d items, %d pulls)' % (len(items), pulls))

items, _ = enumerate_all(p, CIMV2 + 'Win32_OperatingSystem', optimize=10)
os_ = props(items[0]) if items else {}
check(os_.get('LastBootUpTime') == '2026-12-01T06:15:12.5+01:00' and os_.get('MUILanguages') == 'en-US',
      'plain class URI, cim:Datetime rendered as xs:dateTime: %r' % os_.get('LastBootUpTime'))

items, _ = enumerate_all(p, CIMV2 + 'Win32_Service', optimize=100)
check(len(items) == 13, 'plain class URI Win32_Service without filter -> %d items' % len(items))

# Start/Stop with SelectorSet, then see the state in a later Enumerate.
def invoke(method, name):
    r = ET.fromstring(p.send_message(envelope(CIMV2 + 'Win32_Service/' + method, CIMV2 + 'Win32_Service',
        '<p:%s_INPUT xmlns:p="%sWin32_Service"/>' % (method, CIMV2), selectors={'Name': name})))
    return int(r.find('.//{%sWin32_Service}ReturnValue' % CIMV2).text)
check(invoke('StartService', 'Spooler') == 10, 'StartService on a running service -> 10')
check(invoke('StopService', 'Spooler') == 0, 'StopService Spooler -> 0')
items, _ = enumerate_all(p, CIMV2 + '*', "SELECT Name,State FROM Win32_Service WHERE Name='Spooler'", optimize=5)
check([props(i)['State'] for i in items] == ['Stopped'], 'Enumerate after StopService -> Stopped')
check(invoke('StopService', 'Spooler') == 5, 'StopService on a stopped service -> 5')
check(invoke('StartService', 'Spooler') == 0, 'StartService Spooler -> 0')
try:
    invoke('StartService', 'NoSuchService')
    check(False, 'unknown selector -> fault')
except WinRMError as exc:
    check('w:InvalidSelectors' in str(exc) and '2150858752' in str(exc), 'unknown selector -> w:InvalidSelectors: %s' % exc)

# Faults from the plan, rendered as WinRM faults (pywinrm parses them).
for cls, sub, code in (('Win32_PerfFormattedData_PerfOS_Memory', 'w:QuotaLimit', '2150858815'),
                       ('Win32_ComputerSystem', 'w:AccessDenied', '5')):
    try:
        enumerate_all(p, CIMV2 + cls, optimize=5)
        check(False, '%s fault' % sub)
    except WinRMError as exc:
        check(sub in str(exc) and "'wsmanfault_code': '%s'" % code in str(exc) and "'http_status_code': 500" in str(exc),
              '%s fault: %s' % (sub, exc))
try:
    enumerate_all(p, CIMV2 + 'Win32_LogicalDisk', optimize=5)
    check(False, 'w:TimedOut fault')
except Exception as exc:
    # pywinrm maps 2150858793 to WinRMOperationTimeoutError
    check(type(exc).__name__ == 'WinRMOperationTimeoutError', 'w:TimedOut fault -> %s' % type(exc).__name__)
items, _ = enumerate_all(p, CIMV2 + 'Win32_LogicalDisk', optimize=5)
check(sorted(props(i)['DeviceID'] for i in items) == ['C:', 'D:'], 'fault plan fires once, then data')
try:
    p.send_message(envelope(ENUM + 'Pull', CIMV2 + 'Win32_Service',
        '<n:Pull><n:EnumerationContext>uuid:00000000-0000-0000-0000-000000000000</n:EnumerationContext></n:Pull>'))
    check(False, 'invalid enumeration context fault')
except WinRMError as exc:
    check('InvalidEnumerationContext' in str(exc), 'Pull with an unknown context -> %s' % exc)

for wql, sub in (('SELECT Name FROM', 'w:CannotProcessFilter'),
                 ('SELECT Name FROM Win32_NoSuchClass', 'a:DestinationUnreachable')):
    try:
        enumerate_all(p, CIMV2 + '*', wql)
        check(False, '%r -> %s' % (wql, sub))
    except WinRMError as exc:
        check(sub in str(exc), '%r -> %s' % (wql, exc))

# The fixture is re-read when it changes: append an event record.
fx_path = tmp + '/http.json'
fx = json.load(open(fx_path))
last = max(e['RecordNumber'] for e in fx['classes']['Win32_NTLogEvent'] if e['Logfile'] == 'System')
fx['classes']['Win32_NTLogEvent'].append(dict(fx['classes']['Win32_NTLogEvent'][0], RecordNumber=last + 1,
                                              EventCode=7040, Message='appended'))
json.dump(fx, open(fx_path + '.tmp', 'w'))
import os; os.replace(fx_path + '.tmp', fx_path)
items, _ = enumerate_all(p, CIMV2 + '*',
    "SELECT RecordNumber, EventCode, Message FROM Win32_NTLogEvent WHERE Logfile = 'System' AND RecordNumber > %d" % (last - 1))
check(sorted(int(props(i)['RecordNumber']) for i in items) == [last, last + 1], 'appended NTLogEvent record seen')

# HTTP 401 variant of access denied: pywinrm reports rejected credentials.
try:
    enumerate_all(p, CIMV2 + 'Win32_PerfFormattedData_Tcpip_NetworkInterface', optimize=5)
    check(False, 'access_denied_401')
except InvalidCredentialsError:
    check(True, 'access_denied_401 -> HTTP 401 (InvalidCredentialsError)')

# ---- 1b. first encrypted body sent together with the AUTHENTICATE ---------
# pywinrm finishes the handshake with an empty POST; other clients send their
# first SOAP body encrypted in the AUTHENTICATE request itself.  Drive that
# with ntlm-auth directly over one http.client connection ("NTLM" scheme),
# framing the bodies with pywinrm's own Encryption code; the second request
# carries no Authorization header and a chunked body.
import base64, http.client, types
from ntlm_auth.ntlm import Ntlm
from winrm.encryption import Encryption
conn = http.client.HTTPConnection('127.0.0.1', int(http_port), timeout=10)
ctx = Ntlm()
conn.request('POST', '/wsman', body=b'', headers={
    'Authorization': 'NTLM ' + ctx.create_negotiate_message('WINHOST').decode(), 'Content-Length': '0'})
r = conn.getresponse(); r.read()
chal = [v for k, v in r.getheaders() if k.lower() == 'www-authenticate'][0]
check(r.status == 401 and chal.startswith('NTLM '), 'raw: NTLM challenge in a 401 (%s...)' % chal[:12])
ctx.parse_challenge_message(chal[5:])
auth = ctx.create_authenticate_message(user, password, 'WINHOST').decode()
enc = Encryption(types.SimpleNamespace(auth=types.SimpleNamespace(session_security=ctx.session_security)), 'ntlm')
def encrypted(xml):
    return enc._encrypt_message(xml.encode(), '127.0.0.1') + enc.MIME_BOUNDARY + b'--\r\n'
ctype = 'multipart/encrypted;protocol="application/HTTP-SPNEGO-session-encrypted";boundary="Encrypted Boundary"'
q = envelope(ENUM + 'Enumerate', CIMV2 + '*', '<n:Enumerate><w:OptimizeEnumeration/><w:MaxElements>32000'
             '</w:MaxElements><w:Filter Dialect="%s">SELECT DeviceID, FreeSpace FROM Win32_LogicalDisk'
             '</w:Filter></n:Enumerate>' % WQL)
conn.request('POST', '/wsman', body=encrypted(q), headers={'Authorization': 'NTLM ' + auth, 'Content-Type': ctype})
r = conn.getresponse()
body = r.read()
ok = r.status == 200 and 'HTTP-SPNEGO-session-encrypted' in r.getheader('Content-Type', '')
if ok:
    x = ET.fromstring(enc._decrypt_response(types.SimpleNamespace(content=body), '127.0.0.1'))
    disks = [props(i) for i in x.find('s:Body/n:EnumerateResponse/w:Items', NS)]
    ok = [d['DeviceID'] for d in disks] == ['C:', 'D:'] and \
        x.find('s:Body/n:EnumerateResponse/w:EndOfSequence', NS) is not None
check(ok, 'raw: encrypted Enumerate in the AUTHENTICATE request, answered encrypted')
def chunks(data):
    yield data[:100]
    yield data[100:]
conn.request('POST', '/wsman', body=chunks(encrypted(envelope(ENUM + 'Enumerate', CIMV2 + 'Win32_ComputerSystem',
             '<n:Enumerate><w:OptimizeEnumeration/><w:MaxElements>5</w:MaxElements></n:Enumerate>'))),
             headers={'Content-Type': ctype, 'Transfer-Encoding': 'chunked'}, encode_chunked=True)
r = conn.getresponse()
body = r.read()
ok = r.status == 200
if ok:
    x = ET.fromstring(enc._decrypt_response(types.SimpleNamespace(content=body), '127.0.0.1'))
    cs = [props(i) for i in x.find('s:Body/n:EnumerateResponse/w:Items', NS)]
    ok = cs and cs[0]['Roles'] == ['LM_Workstation', 'LM_Server', 'NT', 'Server_NT']
check(ok, 'raw: same connection, no Authorization header, chunked body; array rendered as repeated elements'
      + ('' if ok else ' (HTTP %d, %r)' % (r.status, body[:200])))
conn.close()

# ---- 1c. a UNICODE initiator without MIC (impacket's client side) ---------
# ntlm-auth offers OEM only and sends a MIC; this covers the other branch.
from impacket import ntlm as imp
for pw, want in ((password, 200), ('wrong', 401)):
    conn = http.client.HTTPConnection('127.0.0.1', int(http_port), timeout=10)
    t1 = imp.getNTLMSSPType1('', '', signingRequired=True)
    conn.request('POST', '/wsman', body=b'', headers={'Authorization': 'Negotiate ' + base64.b64encode(t1.getData()).decode()})
    r = conn.getresponse(); r.read()
    t2 = base64.b64decode(r.getheader('WWW-Authenticate').split()[1])
    t3, _ = imp.getNTLMSSPType3(t1, t2, user, pw, 'WINHOST')
    conn.request('POST', '/wsman', body=b'', headers={'Authorization': 'Negotiate ' + base64.b64encode(t3.getData()).decode()})
    r = conn.getresponse(); r.read()
    check(r.status == want, 'impacket initiator (UNICODE, no MIC), password %s -> HTTP %d' % ('right' if pw == password else 'wrong', r.status))
    conn.close()

# ---- 2. wrong password ----------------------------------------------------
bad = Protocol(ep, transport='ntlm', username=user, password='wrong', message_encryption='always')
try:
    bad.open_shell()
    check(False, 'wrong password refused')
except InvalidCredentialsError:
    check(True, 'wrong password -> 401 InvalidCredentialsError')

# ---- 3. plaintext after NTLM refused under --require-encryption ----------
plain = Protocol(ep, transport='ntlm', username=user, password=password, message_encryption='never')
try:
    plain.open_shell()
    check(False, 'plaintext refused')
except InvalidCredentialsError:
    check(True, 'unencrypted body over HTTP -> 401 (--require-encryption)')

# ---- 4. Basic over HTTPS; Basic refused over HTTP -------------------------
hp = Protocol('https://127.0.0.1:%s/wsman' % https_port, transport='basic', username=user,
              password=password, server_cert_validation='ignore')
shell = hp.open_shell()
cid = hp.run_command(shell, 'hostname')
out, err, code = hp.get_command_output(shell, cid)
hp.cleanup_command(shell, cid)
hp.close_shell(shell)
check(out == b'WINHOST01\r\n', 'basic over https: hostname -> %r' % out)
items, _ = enumerate_all(hp, CIMV2 + '*', 'SELECT Name FROM Win32_LogicalDisk', optimize=1)
check(sorted(props(i)['Name'] for i in items) == ['C:', 'D:'], 'basic over https: WQL')
np = Protocol('https://127.0.0.1:%s/wsman' % https_port, transport='ntlm', username=user,
              password=password, server_cert_validation='ignore', message_encryption='auto')
shell = np.open_shell()
np.close_shell(shell)
check(True, 'ntlm over https without message encryption')
bp = Protocol('http://127.0.0.1:%s/wsman' % basichttp_port, transport='basic', username=user,
              password=password)
try:
    bp.open_shell()
    check(False, 'basic refused over http')
except InvalidCredentialsError:
    check(True, 'basic over plain http -> 401')

# ---- 5. what the peer logged ---------------------------------------------
log = [json.loads(l) for l in open(tmp + '/http.jsonl')]
soap = [e for e in log if e.get('envelope')]
check(soap and all(e['encrypted'] for e in soap), 'every SOAP request from pywinrm was encrypted (%d)' % len(soap))
check(any(e.get('wql', '').startswith('SELECT Name, State') for e in log), 'log records the WQL')
check(any(e.get('deny') == 'NTLMv2 proof mismatch (wrong password)' for e in log), 'log records the wrong password')
check(any(e.get('mic') is True for e in log), 'the client sent a MIC and it verified')
blog = [json.loads(l) for l in open(tmp + '/basichttp.jsonl')]
check(any(e.get('deny') == 'basic refused over plain HTTP' for e in blog), 'log says why basic was refused')

print('%d failure(s)' % len(failures))
sys.exit(1 if failures else 0)
EOF
