#!/bin/bash
# Proves wmi_peer.py against a real, independent WMI/DCOM client: impacket's own
# (python3-impacket: DCOMConnection, IRemoteSCMActivator, IWbemLevel1Login,
# IWbemServices, IEnumWbemClassObject, IWbemClassObject's MS-WMIO decoding).
#   * packet privacy and packet integrity: activation, NTLMLogin, ExecQuery +
#     Next (one by one and in batches ending in WBEM_S_FALSE), every property of
#     Win32_OperatingSystem and Win32_LogicalDisk compared with the fixture
#     (values and CIM types), a projection, ExecMethod StopService/StartService
#     and their ReturnValues and the State seen by a later query, GetObject;
#   * every response signature checked on the side (impacket does not check
#     them): MS-NLMP MAC with the server keys over header+stub+pad+sec_trailer;
#   * fragmentation both ways (a peer with small fragments, a long WQL);
#   * a wrong password, a lower authentication level, an unknown namespace,
#     class and a bad WQL, a non-admin account denied by the fixture's rules;
#   * IObjectExporter ServerAlive2/ResolveOxid2/ComplexPing/SimplePing and
#     IRemUnknown RemAddRef/RemQueryInterface/RemRelease;
#   * the control file's knobs: hresult, delay, drop, garble, bad_signature,
#     fault, min_level.
# Prints PASS/FAIL lines; exits non-zero on any failure.  Loopback only.
#
# Usage: bash plugins/wmi/tests/peer_selftest.sh   (no build needed)
HERE=$(cd "$(dirname "$0")" && pwd)
set -- "${1:-none}"   # lib.sh wants a build directory; nothing here runs the engine
source "$HERE/../../../tests/integration/lib.sh"
PY=/usr/bin/python3   # the only interpreter that sees Debian's impacket
T=$TMP

USER=Administrator
PASS='P@ss-w0rd1'
FIXTURE="$HERE/../../winrm/tests/fixture.json"

# start_peer NAME ARGS... -> sets PORT, appends the pid to PIDS
start_peer() {
    name=$1; shift
    cp "$FIXTURE" "$T/$name.json"
    "$PY" "$HERE/wmi_peer.py" --port 0 --oxid-port 0 --fixture "$T/$name.json" \
        --user "$USER" --password "$PASS" --domain WINHOST --log "$T/$name.jsonl" \
        --ready-file "$T/$name.ready" "$@" >"$T/$name.out" 2>"$T/$name.err" &
    PIDS+=($!)
    i=0
    while ! grep -q '^WMI_PEER port=' "$T/$name.out" 2>/dev/null; do
        i=$((i + 1))
        if [ $i -gt 100 ]; then echo "peer $name did not start"; cat "$T/$name.err"; exit 1; fi
        sleep 0.1
    done
    PORT=$(sed -n 's/^WMI_PEER port=\([0-9]*\) .*/\1/p' "$T/$name.out")
}

echo '{}' >"$T/control.json"
start_peer main --control "$T/control.json"
MAIN_PORT=$PORT
start_peer small --max-frag 1024
SMALL_PORT=$PORT

if "$PY" "$HERE/peer_selftest_client.py" "$FIXTURE" "$MAIN_PORT" "$SMALL_PORT" \
    "$T/control.json" "$T/main.jsonl"; then
    pass "impacket client checks"
else
    fail "impacket client checks"
fi
check "peers wrote nothing on stderr (no peer-side exceptions)" \
    test ! -s "$T/main.err" -a ! -s "$T/small.err"
[ -s "$T/main.err" ] && cat "$T/main.err"
finish
