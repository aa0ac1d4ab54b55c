#!/usr/bin/env bash
# The DCE/RPC client against a real Samba 4.17 on loopback: smbd and samba-dcerpcd (epmapper on
# 127.0.0.1:135, the rpcd_* helpers on 49152+), started once for the whole run. impacket asks the
# same server the same questions in the same run, and test_dcerpc_samba must get the same answers.
#   dcerpc_samba.sh BUILD_DIR TEST_BINARY
# Exit 77 (skipped) when Samba is not installed or we are not root (port 135, smbpasswd).
source "$(dirname "$0")/../../../../tests/integration/lib.sh"
CLIENT=${2:?usage: $0 BUILD_DIR TEST_BINARY}
PY=/usr/bin/python3
DCERPCD=/usr/libexec/samba/samba-dcerpcd
if [ "$(id -u)" != 0 ] || ! command -v smbd > /dev/null || [ ! -x $DCERPCD ]; then
  echo "SKIP: needs root and samba (scripts/deps/dcerpc.list)"
  exit 77
fi
$PY -c 'import impacket' 2> /dev/null || { echo "FAIL: python3-impacket is needed"; exit 1; }
if (exec 3<> /dev/tcp/127.0.0.1/135) 2> /dev/null; then
  echo "FAIL: something already listens on 127.0.0.1:135"
  exit 1
fi

USER_NAME=smbtest
PASS='Smb-pass1'
B=$TMP/samba
mkdir -p "$B"/{private,lock,state,cache,pid,share,log}
cat > "$B/smb.conf" << EOF
[global]
  workgroup = TESTDOM
  netbios name = TPSAMBA
  server role = standalone server
  interfaces = lo
  bind interfaces only = yes
  smb ports = 42445
  private dir = $B/private
  lock directory = $B/lock
  state directory = $B/state
  cache directory = $B/cache
  pid directory = $B/pid
  ncalrpc dir = $B/ncalrpc
  log file = $B/log/%m.log
  passdb backend = tdbsam
  disable spoolss = yes
  load printers = no
  rpc start on demand helpers = no
  ntlm auth = ntlmv2-only
[share]
  path = $B/share
  read only = no
EOF
# tdbsam maps to a Unix account; the test creates it (no home, no shell) when missing.
id "$USER_NAME" > /dev/null 2>&1 || useradd -M -s /usr/sbin/nologin "$USER_NAME"
printf '%s\n%s\n' "$PASS" "$PASS" | smbpasswd -c "$B/smb.conf" -s -a "$USER_NAME" > /dev/null

stop_samba() {
  # samba-dcerpcd forks rpcd_* helpers that carry the same --configfile; kill them all by pid.
  local p
  for p in $(pgrep -f -- "--configfile=$B/smb.conf" || true) ${SAMBA_PIDS[@]:-}; do
    kill "$p" 2> /dev/null || true
  done
  sleep 0.3
  for p in $(pgrep -f -- "--configfile=$B/smb.conf" || true) ${SAMBA_PIDS[@]:-}; do
    kill -9 "$p" 2> /dev/null || true
  done
  cleanup
}
trap stop_samba EXIT
SAMBA_PIDS=()
smbd -F --debug-stdout -d 1 --configfile="$B/smb.conf" < /dev/null > "$B/smbd.out" 2>&1 &
SAMBA_PIDS+=($!)
$DCERPCD -F --debug-stdout -d 1 --configfile="$B/smb.conf" --libexec-rpcds < /dev/null \
  > "$B/dcerpcd.out" 2>&1 &
SAMBA_PIDS+=($!)

# Ready when impacket can map SAMR through the endpoint mapper; its answers are the reference.
REF=
for _ in $(seq 1 100); do
  if REF=$($PY - "$USER_NAME" "$PASS" 2> "$TMP/impacket.err" << 'EOF'
import sys
from impacket.dcerpc.v5 import transport, epm, samr
from impacket.dcerpc.v5.rpcrt import RPC_C_AUTHN_LEVEL_PKT_PRIVACY
s = epm.hept_map('127.0.0.1', samr.MSRPC_UUID_SAMR, protocol='ncacn_ip_tcp')
t = transport.DCERPCTransportFactory(s)
t.set_credentials(sys.argv[1], sys.argv[2], '')
d = t.get_dce_rpc()
d.set_auth_level(RPC_C_AUTHN_LEVEL_PKT_PRIVACY)
d.connect()
d.bind(samr.MSRPC_UUID_SAMR)
h = samr.hSamrConnect(d)['ServerHandle']
names = [x['Name'] for x in samr.hSamrEnumerateDomainsInSamServer(d, h)['Buffer']['Buffer']]
print(s.split('[')[1].rstrip(']'), ','.join(names))
EOF
  ); then
    break
  fi
  REF=
  sleep 0.1
done
if [ -z "$REF" ]; then
  cat "$TMP/impacket.err" "$B/dcerpcd.out"
  echo "FAIL: Samba did not come up (impacket could not reach SAMR)"
  exit 1
fi
read -r REF_PORT REF_DOMAINS <<< "$REF"
echo "impacket: SAMR on port $REF_PORT, domains $REF_DOMAINS"

DCERPC_USER=$USER_NAME DCERPC_PASSWORD=$PASS DCERPC_SAMR_PORT=$REF_PORT \
  DCERPC_DOMAINS=$REF_DOMAINS "$CLIENT"
