#!/usr/bin/env bash
# The ssh_linux plugin against a real OpenSSH sshd on loopback (tests/integration/sshd.sh): this
# machine is the polled server, so what the plugin reports is compared with /proc, df and /sys
# read here at the same moment. Skipped (77) when not root (the peer adds a local user).
#   ssh_linux_e2e.sh BUILD_DIR
source "$(dirname "$0")/../../../tests/integration/lib.sh"
source "$SRC/tests/integration/sshd.sh"
if [ "$(id -u)" != 0 ]; then
  echo "SKIP: needs root (the SSH peer adds a local user)"
  exit 77
fi
PY=/usr/bin/python3
start_sshd
ssh_user lin 'Lin-pass1'

# poll NAME [options]...: one poll of 127.0.0.1 (JSON lines in $TMP/NAME.json); RC = status.
poll() {
  local name=$1; shift
  set +e
  "$OUTPOST" poll --plugin ssh_linux --set known_hosts="${KH:-$SSHD_KNOWN_HOSTS}" --timeout 15s --json \
    --param port="$SSHD_PORT" --param user="$SSH_USER" "$@" 127.0.0.1 > "$TMP/$name.json" 2> "$TMP/$name.err"
  RC=$?
  set -e
}
# compare NAME: the poll's metrics against this machine, read right after it.
compare() {
  $PY - "$TMP/$1.json" <<'PYEOF'
import json, os, subprocess, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
target = next(r for r in rows if r['type'] == 'target')
assert target['status'] == 'ok', target
def m(name, **labels):
    return [r['value'] for r in rows if r['type'] == 'metric' and r['name'] == name
            and all(r['labels'].get(k) == v for k, v in labels.items())]
problems = []
def expect(what, ok):
    if not ok:
        problems.append(what)
mem = {l.split(':')[0]: int(l.split()[1]) * 1024 for l in open('/proc/meminfo')}
expect('hrMemorySize is MemTotal', m('hrMemorySize') == [float(mem['MemTotal'])])
expect('Physical memory size', m('hrStorageSizeBytes', hrStorageDescr='Physical memory') == [float(mem['MemTotal'])])
used = m('hrStorageUsedBytes', hrStorageDescr='Physical memory')
expect('Physical memory used within 5%% (%s vs %s)' % (used, mem['MemTotal'] - mem['MemFree']),
       len(used) == 1 and abs(used[0] - (mem['MemTotal'] - mem['MemFree'])) < 0.05 * mem['MemTotal'])
up = float(open('/proc/uptime').read().split()[0])
expect('uptime within 30 s', len(m('hrSystemUptime')) == 1 and 0 <= up - m('hrSystemUptime')[0] < 30)
cpus = sorted(l.split()[0] for l in open('/proc/stat') if l.startswith('cpu') and l[3].isdigit())
got = sorted(r['labels']['hrDeviceDescr'] for r in rows if r.get('name') == 'hrProcessorLoad')
expect('one hrProcessorLoad per CPU (%s vs %s)' % (got, cpus), got == cpus)
expect('CPU loads are percentages', all(0 <= v <= 100 for v in m('hrProcessorLoad')))
ifs = sorted(l.split(':')[0].strip() for l in open('/proc/net/dev') if ':' in l)
got = sorted(r['labels']['ifName'] for r in rows if r.get('name') == 'ifHCInOctets')
expect('every interface of /proc/net/dev (%s vs %s)' % (got, ifs), got == ifs)
lo_now = next(int(l.split(':')[1].split()[0]) for l in open('/proc/net/dev') if l.strip().startswith('lo:'))
lo = m('ifHCInOctets', ifName='lo')
expect('lo octets counted, not past now (%s, %s)' % (lo, lo_now), len(lo) == 1 and 0 < lo[0] <= lo_now)
expect('lo is unknown/up in ifOperStatus', m('ifOperStatus', ifName='lo')[0] in (1.0, 4.0))
df = subprocess.run(['df', '-P', '-k', '/'], capture_output=True, text=True).stdout.splitlines()[1].split()
expect('the root file system size as df says', m('hrStorageSizeBytes', hrStorageDescr='/') == [float(df[1]) * 1024])
load = float(open('/proc/loadavg').read().split()[0])
expect('Load-1 within 2 of now', len(m('laLoad', laNames='Load-1')) == 1 and abs(m('laLoad', laNames='Load-1')[0] - load) < 2)
procs = len([d for d in os.listdir('/proc') if d.isdigit()])
expect('process count within 100 of now', len(m('hrSystemProcesses')) == 1 and abs(m('hrSystemProcesses')[0] - procs) < 100)
counters = [r for r in rows if r.get('name') in ('ifHCInOctets', 'diskIONRead')]
expect('traffic and disk bytes are counters', counters and all(r['kind'] == 'counter' for r in counters))
for p in problems:
    print('  ' + p)
sys.exit(1 if problems else 0)
PYEOF
}
has() {
  $PY - "$TMP/$1.json" "$2" <<'PYEOF'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
target = next((r for r in rows if r['type'] == 'target'), {})
ok = eval(sys.argv[2])
if not ok:
    print('  target:', target)
sys.exit(0 if ok else 1)
PYEOF
}

poll pw --param password=Lin-pass1
check "a password login polls the host" [ "$RC" -eq 0 ]
check "what it reports is what /proc, df and /sys say here" compare pw
poll key --param key_file="$SSH_KEY"
check "a key login polls the host" compare key
poll badpass --param password=wrong
check "a wrong password is auth" has badpass "target['status'] == 'auth' and 'refused' in target['detail']"
: > "$TMP/empty_known_hosts"
KH=$TMP/empty_known_hosts poll unknownkey --param password=Lin-pass1
check "an unknown host key is refused (auth), not trusted" has unknownkey \
  "target['status'] == 'auth' and 'not in the known-hosts store' in target['detail']"
ssh-keygen -q -t ed25519 -N '' -f "$TMP/other_hostkey" > /dev/null
printf '[127.0.0.1]:%s %s\n' "$SSHD_PORT" "$(cut -d' ' -f1,2 "$TMP/other_hostkey.pub")" > "$TMP/other_known_hosts"
KH=$TMP/other_known_hosts poll changedkey --param password=Lin-pass1
check "a changed host key is refused (auth)" has changedkey \
  "target['status'] == 'auth' and 'changed' in target['detail']"
poll closed --param password=Lin-pass1 --param port=1
check "nothing listening: unavailable" has closed "target['status'] == 'unavailable'"
poll nocred
check "no password and no key: refused before connecting" [ "$RC" -eq 2 ]
finish
