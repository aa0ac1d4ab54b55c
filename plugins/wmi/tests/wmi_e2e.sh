#!/usr/bin/env bash
# The wmi plugin end to end against the WMI/DCOM test peer (wmi_peer.py: impacket's NTLM
# structures and DCOM/WMI NDR, its own PDU layer and MS-WMIO encoder; proven against impacket's
# own WMI client by peer_selftest.sh), started once, serving the winrm peer's fixture. The same
# fixture behind the winrm peer answers the same profiles over WS-Management: both transports
# must give the same metrics. Every poll is a new `outpost poll` process, so the event log
# bookmarks cross a restart each time.
#   wmi_e2e.sh BUILD_DIR
source "$(dirname "$0")/../../../tests/integration/lib.sh"
HERE=$(cd "$(dirname "$0")" && pwd)
FIXTURE=$SRC/plugins/winrm/tests/fixture.json
PY=/usr/bin/python3
$PY -c 'import impacket, Cryptodome, ntlm_auth' 2>/dev/null ||
  { echo "FAIL: python3-impacket, -pycryptodome, -ntlm-auth are needed (scripts/deps/wmi.list)"; exit 1; }

USER=Administrator
PASS='P@ss-w0rd1'
cp "$FIXTURE" "$TMP/wmi.json"
echo '{"faults": []}' > "$TMP/control.json"
$PY "$HERE/wmi_peer.py" --port 0 --oxid-port 0 --fixture "$TMP/wmi.json" --user "$USER" \
  --password "$PASS" --domain WINHOST --control "$TMP/control.json" --log "$TMP/wmi.jsonl" \
  > "$TMP/wmi.out" 2> "$TMP/wmi.err" &
PIDS+=($!)
for _ in $(seq 1 100); do
  PORT=$(sed -n 's/^WMI_PEER port=\([0-9]*\) .*/\1/p' "$TMP/wmi.out")
  [ -n "$PORT" ] && break
  sleep 0.1
done
[ -n "$PORT" ] || { cat "$TMP/wmi.err"; echo "FAIL: the wmi peer did not start"; exit 1; }
# The same fixture over WS-Management, for the comparison of the two transports.
cp "$FIXTURE" "$TMP/winrm.json"
$PY "$SRC/plugins/winrm/tests/winrm_peer.py" --port 0 --data "$TMP/winrm.json" --user "$USER" \
  --password "$PASS" --domain WINHOST --log "$TMP/winrm.jsonl" --require-encryption \
  > "$TMP/winrm.out" 2> "$TMP/winrm.err" &
PIDS+=($!)
for _ in $(seq 1 100); do
  WINRM_PORT=$(sed -n 's/^WINRM_PEER port=//p' "$TMP/winrm.out")
  [ -n "$WINRM_PORT" ] && break
  sleep 0.1
done
[ -n "$WINRM_PORT" ] || { cat "$TMP/winrm.err"; echo "FAIL: the winrm peer did not start"; exit 1; }

# poll NAME [--param K=V]...: one poll of 127.0.0.1 (JSON lines in $TMP/NAME.json); RC = status.
poll() {
  local name=$1; shift
  set +e
  "$OUTPOST" poll --plugin "${PLUGIN:-wmi}" --set state_dir="${STATE:-$TMP/state}" \
    --set eventlog_lookback=36500d --timeout 20s --json --param user=$USER --param "password=$PASS" \
    --param domain=WINHOST --param port="${P:-$PORT}" "$@" 127.0.0.1 > "$TMP/$name.json" 2> "$TMP/$name.err"
  RC=$?
  set -e
}
has() {
  $PY "$SRC/tests/integration/poll_has.py" "$TMP/$1.json" "$TMP/wmi.json" "$TMP/wmi.jsonl" "$2"
}
# calls NAME EXPR: EXPR over `calls`, the peer's log lines of the poll NAME (since its mark).
mark() { wc -l < "$TMP/wmi.jsonl" > "$TMP/mark"; }
calls() {
  $PY - "$TMP/wmi.jsonl" "$(cat "$TMP/mark")" "$1" <<'EOF'
import json, sys
calls = [json.loads(l) for l in open(sys.argv[1]).readlines()[int(sys.argv[2]):] if l.strip()]
ok = eval(sys.argv[3])
if not ok:
    print('  calls:', [(c.get('op'), c.get('level'), c.get('hresult')) for c in calls][:40])
sys.exit(0 if ok else 1)
EOF
}
touch "$TMP/wmi.jsonl"

# 1. The default profiles at packet privacy.
mark
poll first
check "first poll succeeds" [ "$RC" -eq 0 ]
check "processor time per CPU as the fixture has it" has first \
  "metric('windows_cpu_time_percent', cpu='_Total') == [float(next(i for i in fx['classes']['Win32_PerfFormattedData_PerfOS_Processor'] if i['Name'] == '_Total')['PercentProcessorTime'])]"
check "free memory in bytes (KiB x 1024)" has first \
  "metric('windows_memory_free_bytes') == [float(fx['classes']['Win32_OperatingSystem'][0]['FreePhysicalMemory']) * 1024]"
check "fixed disks only, each with its size (uint64 on the wire)" has first \
  "sorted((r['labels']['volume'], r['value']) for r in rows if r.get('name') == 'windows_disk_size_bytes') == sorted((d['DeviceID'], float(d['Size'])) for d in fx['classes']['Win32_LogicalDisk'] if d.get('DriveType') == 3)"
check "every service, running as the fixture says" has first \
  "sorted((r['labels']['service'], r['value']) for r in rows if r.get('name') == 'windows_service_running') == sorted((s['Name'], 1.0 if s['State'] == 'Running' else 0.0) for s in fx['classes']['Win32_Service'])"
WANTED="sorted(e['RecordNumber'] for e in fx['classes']['Win32_NTLogEvent'] if e['Logfile'] in ('System', 'Application') and e['EventType'] in (1, 2, 5))"
check "event log: every error and warning of System and Application, once" has first \
  "sorted(int(e['attributes']['record']) for e in events('windows.eventlog')) == $WANTED and len($WANTED) > 0"
check "one activation, every call after it at packet privacy" calls \
  "sum(c.get('op') == 'RemoteCreateInstance' for c in calls) == 1 and all(c.get('level') == 6 for c in calls if c.get('op')) and len(calls) > 20"
check "one NTLMLogin per namespace, to root/cimv2" calls \
  "[c.get('op') for c in calls].count('NTLMLogin') == 1"
check "every enumerator released, and the login and services objects at the end" calls \
  "[c.get('op') for c in calls].count('RemRelease') == [c.get('op') for c in calls].count('ExecQuery') + 1"

# 2. Both transports, the same fixture, the same metrics.
PLUGIN=winrm P=$WINRM_PORT poll over_winrm --set builtin_profiles=true --param profile=windows-os,windows-disk,windows-network,windows-services
poll over_wmi --param profile=windows-os,windows-disk,windows-network,windows-services
$PY - "$TMP/over_winrm.json" "$TMP/over_wmi.json" <<'EOF' && pass "wmi and winrm give the same metrics from the same fixture" || fail "wmi and winrm give the same metrics from the same fixture"
import json, sys
def metrics(path):
    out = set()
    for l in open(path):
        r = json.loads(l)
        if r['type'] == 'metric' and not r['name'].endswith('_query_failures') and r['name'] != 'windows_uptime_seconds':
            out.add((r['name'], tuple(sorted(r['labels'].items())), r['value']))
    return out
a, b = metrics(sys.argv[1]), metrics(sys.argv[2])
assert len(a) > 40, len(a)
assert a == b, (sorted(a - b)[:5], sorted(b - a)[:5])
EOF

# 3. A restart reads nothing twice; new entries, and only those, come next.
poll second
check "second poll succeeds" [ "$RC" -eq 0 ]
check "no event log entry is read twice" has second "len(events('windows.eventlog')) == 0"
$PY - "$TMP/wmi.json" <<'EOF'
import json, os, sys
fx = json.load(open(sys.argv[1]))
ev = fx['classes']['Win32_NTLogEvent']
top = max(e['RecordNumber'] for e in ev if e['Logfile'] == 'System')
base = dict(next(e for e in ev if e['Logfile'] == 'System'))
for i, t in enumerate((2, 3, 1)):
    ev.append(dict(base, RecordNumber=top + 1 + i, EventType=t, EventCode=9000 + i, Message='new %d' % i))
json.dump(fx, open(sys.argv[1] + '.tmp', 'w'))
os.replace(sys.argv[1] + '.tmp', sys.argv[1])
EOF
sleep 1
poll third
check "only the new warning and error come, in record order" has third \
  "[e['attributes']['event_id'] for e in events('windows.eventlog')] == ['9000', '9002']"

# 4. Authentication levels and refusals.
mark
poll integrity --param auth_level=integrity --param profile=windows-services
check "packet integrity works too, every call signed" has integrity "target['status'] == 'ok'"
check "the peer saw integrity (5) on every call" calls "all(c.get('level') == 5 for c in calls if c.get('op')) and calls"
echo '{"min_level": "privacy", "faults": []}' > "$TMP/control.json"
poll lowlevel --param auth_level=integrity --param profile=windows-services
check "an activation below the server's level is refused (E_ACCESSDENIED): auth" has lowlevel \
  "target['status'] == 'auth' and 'E_ACCESSDENIED' in target['detail']"
echo '{"faults": []}' > "$TMP/control.json"
poll badpass --param password=wrong --param profile=windows-services
check "a wrong password is an authentication failure" has badpass "target['status'] == 'auth'"
poll badutf8 --param password=$'p\xffw'
check "a password that is not UTF-8 is a configuration error" has badutf8 \
  "target['status'] == 'config' and 'UTF-8' in target['detail']"
poll monitor --param user=monitor --param 'password=M0n-itor!' --param profile=windows-services,windows-eventlog
check "a non-administrator denied the event log: that query fails, the others work" has monitor \
  "target['status'] == 'ok' and 'WBEM_E_ACCESS_DENIED' in target['detail'] and len(metric('windows_service_running')) > 5 and metric('wmi_query_failures') == [2.0]"
poll badns --param "query=SELECT Name FROM Win32_Service" --param namespace=root/nosuch
check "an unknown namespace is not_found" has badns \
  "target['status'] == 'not_found' and 'WBEM_E_INVALID_NAMESPACE' in target['detail']"
poll badclass --param "query=SELECT * FROM Win32_NoSuchClass"
check "an unknown class is not_found" has badclass "target['status'] == 'not_found'"
poll badwql --param "query=SELEKT nothing"
check "a query WMI cannot parse is config" has badwql "target['status'] == 'config'"
poll nosql --param profile=mssql
check "SQL Server counters where the classes exist; absent ones are no failure" has nosql \
  "target['status'] == 'ok' and metric('mssql_user_connections') and 'optional' in target['detail']"

# 5. Faults of a server under load, or broken.
echo '{"faults": [{"op": "ExecQuery", "class": "Win32_PerfFormattedData_PerfOS_Memory", "kind": "hresult", "hresult": "0x8004106C", "times": 0}]}' > "$TMP/control.json"
poll quota --param profile=windows-os
check "a quota violation fails one query, not the device" has quota \
  "target['status'] == 'ok' and 'windows-os/memory' in target['detail'] and 'WBEM_E_QUOTA_VIOLATION' in target['detail']"
echo '{"faults": [{"op": "Next", "kind": "timed_out", "times": 2}]}' > "$TMP/control.json"
poll slow --param profile=windows-services
check "Next that timed out is asked again" has slow "target['status'] == 'ok' and len(metric('windows_service_running')) > 5"
echo '{"faults": [{"op": "Next", "kind": "drop", "times": 1}]}' > "$TMP/control.json"
poll dropped --param profile=windows-services
check "a connection dropped in the middle fails the poll, unavailable" has dropped "target['status'] == 'unavailable'"
echo '{"faults": [{"op": "ExecQuery", "kind": "bad_signature", "times": 1}]}' > "$TMP/control.json"
poll tampered --param profile=windows-services
check "an answer whose signature does not verify ends the poll" has tampered \
  "target['status'] == 'unavailable' and 'signature' in target['detail']"
echo '{"faults": [{"op": "ExecQuery", "kind": "garble", "times": 1}]}' > "$TMP/control.json"
poll garbled --param profile=windows-services
check "a garbled answer is an error, not a crash" has garbled "target['status'] in ('unavailable', 'not_found', 'config')"
echo '{"faults": []}' > "$TMP/control.json"
poll closed --param port=1 --param profile=windows-services
check "nothing on the resolver port: unavailable, named" has closed \
  "target['status'] == 'unavailable' and 'object resolver' in target['detail']"

# 6. Services: stop, look, restart; each action audited.
poll stop --param service=Spooler --param service_action=stop
check "StopService is audited" has stop \
  "[e['attributes']['return_value'] for e in events('windows.service_control')] == ['0'] and target['status'] == 'ok'"
poll look --param "query=SELECT Name, State FROM Win32_Service WHERE Name = 'Spooler'"
check "the service is stopped" has look "[e['attributes'].get('State') for e in events('windows.wmi_instance')] == ['Stopped']"
poll restart --param service=Spooler --param service_action=restart
check "restart stops what runs and starts it again" has restart \
  "target['status'] == 'ok' and [e['attributes']['method'] for e in events('windows.service_control')][-1] == 'StartService'"
poll look2 --param "query=SELECT Name, State FROM Win32_Service WHERE Name = 'Spooler'"
check "the service runs again" has look2 "[e['attributes'].get('State') for e in events('windows.wmi_instance')] == ['Running']"
poll denied_svc --param user=monitor --param 'password=M0n-itor!' --param service=Spooler --param service_action=stop
check "a service method the account may not call is auth" has denied_svc "target['status'] == 'auth'"
poll nocmd --param command=hostname
check "commands are winrm's: refused before anything is sent" [ "$RC" -eq 2 ]

check "the peer wrote nothing to stderr" test ! -s "$TMP/wmi.err"
finish
