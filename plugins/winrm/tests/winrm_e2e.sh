#!/usr/bin/env bash
# The winrm plugin end to end against the WS-Management test peer (winrm_peer.py: impacket's NTLM
# acceptor, ntlm-auth's MS-WSMV sealing; proven against pywinrm by peer_selftest.sh). Two peers,
# each started once: plain HTTP that refuses unencrypted bodies (as Windows does by default),
# and HTTPS with Basic and NTLM behind a test CA. Every poll is a new `outpost poll` process, so
# the event log bookmarks cross a restart each time.
#   winrm_e2e.sh BUILD_DIR
source "$(dirname "$0")/../../../tests/integration/lib.sh"
source "$SRC/tests/integration/kdc.sh"
HERE=$(cd "$(dirname "$0")" && pwd)
PY=/usr/bin/python3
$PY -c 'import impacket, ntlm_auth' 2>/dev/null ||
  { echo "FAIL: python3-impacket and python3-ntlm-auth are needed (scripts/deps/winrm.list)"; exit 1; }

USER=Administrator
PASS='P@ss-w0rd1'
start_peer() { # NAME ARGS... -> PORT
  local name=$1; shift
  cp "$HERE/fixture.json" "$TMP/$name.json"
  $PY "$HERE/winrm_peer.py" --port 0 --data "$TMP/$name.json" --user "$USER" --password "$PASS" \
    --domain WINHOST --log "$TMP/$name.jsonl" "$@" > "$TMP/$name.out" 2> "$TMP/$name.err" &
  PIDS+=($!)
  for _ in $(seq 1 100); do
    PORT=$(sed -n 's/^WINRM_PEER port=//p' "$TMP/$name.out")
    [ -n "$PORT" ] && return 0
    sleep 0.1
  done
  cat "$TMP/$name.err"; echo "FAIL: peer $name did not start"; exit 1
}
tls_certs "$TMP"
start_peer plain --require-encryption --fault-plan "$TMP/plan.json"
HTTP=$PORT
start_peer tls --https "$TMP/server.pem" "$TMP/server.key" --auth ntlm,basic
HTTPS=$PORT
# A Kerberos realm of its own; the third peer holds the key of HTTP/127.0.0.1 in a keytab.
start_kdc OUTPOST.TEST
kdc_user monitor 'Krb-pass1'
kdc_service HTTP/127.0.0.1 "$TMP/http.keytab"
start_peer krb --auth kerberos --keytab "$TMP/http.keytab" --require-encryption
KRB=$PORT
echo '{"faults": []}' > "$TMP/plan.json"

# poll NAME [--param K=V]...: one poll of 127.0.0.1 (JSON lines in $TMP/NAME.json); RC = status.
poll() {
  local name=$1; shift
  set +e
  # shellcheck disable=SC2086 # SETS is a list of --set options
  "$OUTPOST" poll --plugin winrm --set state_dir="${STATE:-$TMP/state}" --set eventlog_lookback=36500d \
    ${SETS:-} --timeout 20s --json --param user=$USER --param "password=$PASS" "$@" 127.0.0.1 \
    > "$TMP/$name.json" 2> "$TMP/$name.err"
  RC=$?
  set -e
}
# has NAME EXPR: EXPR (python) over `rows` (the poll's JSON lines), `fx` (the fixture), `log`
# (the peer's request log lines), `target` (the target line).
has() {
  $PY "$SRC/tests/integration/poll_has.py" "$TMP/$1.json" "$TMP/${3:-plain}.json" \
    "$TMP/${3:-plain}.jsonl" "$2"
}
H="--param port=$HTTP --param domain=WINHOST"

# 1. The default profiles over HTTP: NTLM, every body sealed.
poll first $H
check "first poll succeeds" [ "$RC" -eq 0 ]
check "processor time per CPU as the fixture has it" has first \
  "metric('windows_cpu_time_percent', cpu='_Total') == [float(next(i for i in fx['classes']['Win32_PerfFormattedData_PerfOS_Processor'] if i['Name'] == '_Total')['PercentProcessorTime'])]"
check "free memory in bytes (KiB x 1024)" has first \
  "metric('windows_memory_free_bytes') == [float(fx['classes']['Win32_OperatingSystem'][0]['FreePhysicalMemory']) * 1024]"
check "fixed disks only, each with its free space" has first \
  "sorted(r['labels']['volume'] for r in rows if r.get('name') == 'windows_disk_free_bytes') == sorted(d['DeviceID'] for d in fx['classes']['Win32_LogicalDisk'] if d.get('DriveType') == 3)"
check "every service, running as the fixture says" has first \
  "sorted((r['labels']['service'], r['value']) for r in rows if r.get('name') == 'windows_service_running') == sorted((s['Name'], 1.0 if s['State'] == 'Running' else 0.0) for s in fx['classes']['Win32_Service'])"
check "uptime from LastBootUpTime is positive" has first "len(metric('windows_uptime_seconds')) == 1 and metric('windows_uptime_seconds')[0] > 0"
WANTED="sorted(e['RecordNumber'] for e in fx['classes']['Win32_NTLogEvent'] if e['Logfile'] in ('System', 'Application') and e['EventType'] in (1, 2, 5))"
check "event log: every error and warning of System and Application, once" has first \
  "sorted(int(e['attributes']['record']) for e in events('windows.eventlog')) == $WANTED and len($WANTED) > 0"
check "every SOAP request after the login was sealed" has first \
  "all(l['encrypted'] for l in log if l.get('envelope')) and sum(1 for l in log if l.get('envelope')) >= 8"
check "one NTLM login for the whole poll" has first "sum(1 for l in log if l.get('ntlm') == 'AUTHENTICATE') == 1"
check "the client's MIC was present and verified" has first "any(l.get('mic') for l in log)"

# 2. A restart reads nothing twice; new entries, and only those, come next.
poll second $H
check "second poll succeeds" [ "$RC" -eq 0 ]
check "no event log entry is read twice" has second "len(events('windows.eventlog')) == 0"
$PY - "$TMP/plain.json" <<'EOF'
import json, sys
fx = json.load(open(sys.argv[1]))
ev = fx['classes']['Win32_NTLogEvent']
top = max(e['RecordNumber'] for e in ev if e['Logfile'] == 'System')
base = dict(next(e for e in ev if e['Logfile'] == 'System'))
for i, t in enumerate((2, 3, 1)):
    e = dict(base, RecordNumber=top + 1 + i, EventType=t, EventCode=9000 + i, Message='new %d' % i)
    ev.append(e)
json.dump(fx, open(sys.argv[1] + '.tmp', 'w'))
EOF
mv "$TMP/plain.json.tmp" "$TMP/plain.json"
poll third $H
check "new warning and error entries come, the information one does not" has third \
  "sorted(int(e['attributes']['event_id']) for e in events('windows.eventlog')) == [9000, 9002]"
check "an entry carries its log, level and source" has third \
  "any(e['attributes']['log'] == 'System' and e['attributes']['level'] == 'error' and e['severity'] == 3 and e['attributes']['source_name'] == 'EventLog' for e in events('windows.eventlog'))"

# 2b. A backlog comes a window of records per poll (3 here), every entry once, none skipped,
# also where a whole window holds only entries the level filter leaves out.
: > "$TMP/backlog.json"
for i in $(seq 1 20); do
  STATE=$TMP/state-backlog SETS="--set max_events_per_poll=3" poll "backlog$i" $H --param profile=windows-eventlog
  grep '"type":"event"' "$TMP/backlog$i.json" >> "$TMP/backlog.json" || break
done
echo '{"type":"target","status":"ok"}' >> "$TMP/backlog.json"
check "a backlog is read a window per poll, each entry once" has backlog \
  "sorted(int(e['attributes']['record']) for e in events('windows.eventlog')) == $WANTED and $i > 4"
check "the windows asked for at most 3 records each" has backlog \
  "any('RecordNumber <= ' in (l.get('wql') or '') for l in log)"

# 3. Refusals and faults, each with its class.
poll badutf8 $H --param password=$'p\xffw'
check "a password that is not UTF-8 is a configuration error" has badutf8 \
  "target['status'] == 'config' and 'UTF-8' in target['detail']"
poll badpass --param port=$HTTP --param domain=WINHOST --param password=wrong
check "a wrong password is an authentication failure" has badpass \
  "target['status'] == 'auth' and 'refused the login' in target['detail']"
echo '{"faults": [{"class": "Win32_PerfFormattedData_PerfOS_Memory", "kind": "quota", "times": 0}]}' > "$TMP/plan.json"
poll quota $H --param profile=windows-os
check "a quota fault fails one query, not the device" has quota \
  "target['status'] == 'ok' and 'windows-os/memory: QuotaLimit' in target['detail'] and metric('winrm_query_failures') == [1.0]"
echo '{"faults": [{"kind": "access_denied", "times": 0}]}' > "$TMP/plan.json"
poll denied $H --param profile=windows-os
check "access denied everywhere is the operator's to fix" has denied \
  "target['status'] == 'auth' and 'AccessDenied' in target['detail']"
echo '{"faults": []}' > "$TMP/plan.json"
poll nosql $H --param profile=mssql
check "SQL Server counters where the classes exist; absent ones are no failure" has nosql \
  "target['status'] == 'ok' and metric('mssql_user_connections') and 'optional' in target['detail']"
poll badclass $H --param "query=SELECT * FROM Win32_NoSuchClass"
check "an unknown class is not_found" has badclass "target['status'] == 'not_found'"

# 4. Services: stop, look, restart; each action audited.
poll stop $H --param service=Spooler --param service_action=stop
check "StopService is audited" has stop \
  "[e['attributes']['return_value'] for e in events('windows.service_control')] == ['0'] and target['status'] == 'ok'"
poll look $H --param "query=SELECT Name, State FROM Win32_Service WHERE Name = 'Spooler'"
check "the service is stopped" has look "[e['attributes'].get('State') for e in events('windows.wmi_instance')] == ['Stopped']"
poll restart $H --param service=Spooler --param service_action=restart
check "restart stops what runs and starts it again" has restart \
  "target['status'] == 'ok' and [e['attributes']['method'] for e in events('windows.service_control')][-1] == 'StartService'"
poll look2 $H --param "query=SELECT Name, State FROM Win32_Service WHERE Name = 'Spooler'"
check "the service runs again" has look2 "[e['attributes'].get('State') for e in events('windows.wmi_instance')] == ['Running']"
poll nosvc $H --param service=NoSuchService --param service_action=start
check "an unknown service is not_found" has nosvc "target['status'] == 'not_found'"

# 5. A command in a remote shell.
poll cmd $H --param command=hostname
check "hostname runs in a remote cmd shell" has cmd \
  "[e['message'].strip() for e in events('windows.command')] == ['WINHOST01'] and metric('windows_command_exit_code') == [0.0]"

# 6. HTTPS: the certificate is checked; Basic and NTLM both work over it.
S="--param transport=https --param port=$HTTPS"
poll tls_untrusted $S --param auth=basic
check "an untrusted certificate is refused" has tls_untrusted \
  "target['status'] == 'auth' and 'not trusted' in target['detail']" tls
poll tls_basic $S --param auth=basic --param tls_ca_file="$TMP/ca.pem" --param profile=windows-services
check "Basic over verified TLS" has tls_basic "target['status'] == 'ok' and len(metric('windows_service_running')) > 5" tls
poll tls_ntlm $S --param tls_ca_file="$TMP/ca.pem" --param domain=WINHOST --param profile=windows-disk
check "NTLM over verified TLS, bodies not sealed twice" has tls_ntlm \
  "target['status'] == 'ok' and metric('windows_disk_free_bytes') and not any(l['encrypted'] for l in log if l.get('envelope'))" tls
poll tls_any $S --param auth=basic --param tls_verify=false --param profile=windows-services
check "tls_verify false accepts the certificate" has tls_any "target['status'] == 'ok'" tls
poll basic_http --param port=$HTTP --param auth=basic
check "Basic over plain HTTP is refused before anything is sent" [ "$RC" -eq 2 ]

# 7. Kerberos: a ticket from the throwaway KDC, mutual authentication, every body sealed with
# GSS wrap (the peer unwraps with python3-gssapi and answers sealed).
K="--param port=$KRB --param auth=kerberos --param user=monitor@outpost.test"
poll krb_ok $K --param password=Krb-pass1 --param profile=windows-os,windows-services
check "Kerberos login, metrics of two profiles" has krb_ok \
  "target['status'] == 'ok' and metric('windows_memory_free_bytes') and len(metric('windows_service_running')) > 5" krb
check "the peer saw the principal, and every SOAP body sealed" has krb_ok \
  "any(l.get('user', '').startswith('monitor@OUTPOST.TEST') for l in log) and all(l['encrypted'] for l in log if l.get('envelope')) and sum(1 for l in log if l.get('envelope')) >= 5" krb
poll krb_badpass $K --param password=wrong
check "a wrong Kerberos password is an authentication failure" has krb_badpass \
  "target['status'] == 'auth' and 'Kerberos login of monitor@OUTPOST.TEST' in target['detail']" krb
poll krb_nospn $K --param password=Krb-pass1 --param spn=HTTP/unknown.outpost.test
check "a service principal the KDC does not know is a configuration error" has krb_nospn \
  "target['status'] == 'config' and 'HTTP@unknown.outpost.test' in target['detail']" krb
poll krb_norealm --param port=$KRB --param auth=kerberos --param user=monitor --param password=x
check "Kerberos without a realm is refused before anything is sent" [ "$RC" -eq 2 ]

# 8. What Outpost sends, read by an independent implementation: pywinrm builds the same shell
# envelope, and its header elements and values match ours (the peer logged ours decrypted).
$PY - "$TMP/plain.jsonl" <<'EOF' && pass "shell Create envelope matches pywinrm's" || fail "shell Create envelope matches pywinrm's"
import json, sys, xml.etree.ElementTree as ET
from winrm.protocol import Protocol
sent = {}
p = Protocol('http://127.0.0.1:1/wsman', transport='plaintext', username='u', password='p')
p.send_message = lambda m: (sent.setdefault('x', m), (_ for _ in ()).throw(RuntimeError('captured')))[1]
try:
    p.open_shell(codepage=65001)
except RuntimeError:
    pass
theirs = ET.fromstring(sent['x'])
ours = next(ET.fromstring(l['envelope']) for l in map(json.loads, open(sys.argv[1]))
            if l.get('envelope') and 'transfer/Create' in l['envelope'])
S = '{http://www.w3.org/2003/05/soap-envelope}'
def header(e):
    return {c.tag: (c.text or '').strip() for c in e.find(S + 'Header')}
ht, ho = header(theirs), header(ours)
W = '{http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd}'
A = '{http://schemas.xmlsoap.org/ws/2004/08/addressing}'
for tag in (W + 'ResourceURI', A + 'Action'):
    assert ht[tag] == ho[tag], (tag, ht[tag], ho[tag])
missing = set(ht) - set(ho) - {W + 'OperationTimeout'}
assert not missing, missing
opts = lambda e: {o.get('Name'): o.text for o in e.iter(W + 'Option')}
assert opts(theirs).get('WINRS_CODEPAGE') == opts(ours).get('WINRS_CODEPAGE'), (opts(theirs), opts(ours))
body = lambda e: sorted(c.tag for c in e.find(S + 'Body').iter())
assert body(theirs) == body(ours), (body(theirs), body(ours))
EOF
finish
