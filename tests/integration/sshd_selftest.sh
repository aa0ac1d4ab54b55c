# The test peers of tests/integration/sshd.sh, proven with the OpenSSH client, sshpass and a
# python telnet client: key and password logins, a refused password, the host key the client is
# shown, the FRR router CLI behind sshd (show, push, a second session sees it, write memory,
# rollback) and a telnet login. Needs root (it adds users); packages: scripts/deps/ssh.list.
[ "$(id -u)" = 0 ] || { echo "SKIP: needs root (it adds local users)"; exit 77; }
source "$(dirname "$0")/lib.sh"
source "$SRC/tests/integration/sshd.sh"
for t in sshpass ssh; do
  command -v $t > /dev/null || { echo "FAIL: $t missing: install it (listed in scripts/deps/ssh.list)"; exit 1; }
done
T0=$(date +%s%N)

start_sshd
ssh_user alice 'Alice-pass-1'
ALICE=$SSH_USER ALICE_KEY=$SSH_KEY
KEY=(-o BatchMode=yes -o PasswordAuthentication=no -o KbdInteractiveAuthentication=no)
PASS=(-o PubkeyAuthentication=no -o NumberOfPasswordPrompts=1)

out=$(ssh "${SSH_OPTS[@]}" "${KEY[@]}" -i "$ALICE_KEY" "$ALICE@127.0.0.1" 'id -un; echo $((6 * 7))' 2>&1) || true
check "key login runs a command as the user" [ "$out" = "$ALICE"$'\n42' ]
out=$(ssh "${SSH_OPTS[@]}" "${KEY[@]}" -i "$SSHD_HOSTKEY_PUB" "$ALICE@127.0.0.1" true 2>&1) && r=0 || r=$?
check "a key that is not authorized is refused (ssh exit $r)" [ "$r" = 255 ]
out=$(sshpass -p 'Alice-pass-1' ssh "${SSH_OPTS[@]}" "${PASS[@]}" -o PreferredAuthentications=password \
  "$ALICE@127.0.0.1" 'echo pw-$USER' 2>&1) || true
check "password login (password method)" [ "$out" = "pw-$ALICE" ]
out=$(sshpass -p 'Alice-pass-1' ssh "${SSH_OPTS[@]}" "${PASS[@]}" \
  -o PreferredAuthentications=keyboard-interactive "$ALICE@127.0.0.1" 'echo kbd-$USER' 2>&1) || true
check "password login (keyboard-interactive, PAM)" [ "$out" = "kbd-$ALICE" ]
out=$(sshpass -p 'wrong-pass' ssh "${SSH_OPTS[@]}" "${PASS[@]}" -o PreferredAuthentications=password \
  "$ALICE@127.0.0.1" 'echo logged-in' 2>&1) && r=0 || r=$?
check "a wrong password is refused (ssh exit $r: Permission denied)" \
  [ "$r" = 255 -a "${out/Permission denied/}" != "$out" -a "${out/logged-in/}" = "$out" ]
out=$(ssh "${SSH_OPTS[@]}" "${KEY[@]}" -i "$ALICE_KEY" -l root 127.0.0.1 true 2>&1) && r=0 || r=$?
check "root may not log in" [ "$r" = 255 ]

# The host key: the client is shown SSHD_HOSTKEY_PUB (ed25519) by default, the rsa key when it
# asks for rsa, and a known_hosts with another key for the address makes it refuse.
seen=$(ssh -o LogLevel=DEBUG "${SSH_OPTS[@]}" "${KEY[@]}" -i "$ALICE_KEY" "$ALICE@127.0.0.1" true 2>&1 |
  tr -d '\r' | sed -n 's/^debug1: Server host key: //p')
check "the client is shown SSHD_HOSTKEY_PUB ($seen)" [ "$seen" = "ssh-ed25519 $SSHD_HOSTKEY_FP" ]
rsa_fp=$(ssh-keygen -l -E sha256 -f "$SSHD_HOSTKEY_RSA_PUB" | cut -d' ' -f2)
seen=$(ssh -o LogLevel=DEBUG -o HostKeyAlgorithms=rsa-sha2-512 "${SSH_OPTS[@]}" "${KEY[@]}" \
  -i "$ALICE_KEY" "$ALICE@127.0.0.1" true 2>&1 | tr -d '\r' | sed -n 's/^debug1: Server host key: //p')
check "asked for rsa, the client is shown SSHD_HOSTKEY_RSA_PUB" [ "$seen" = "ssh-rsa $rsa_fp" ]
check "ssh-keyscan sees the keys of SSHD_KNOWN_HOSTS" \
  diff <(ssh-keyscan -p "$SSHD_PORT" -t ed25519,rsa 127.0.0.1 2> /dev/null | cut -d' ' -f2,3 | sort) \
       <(cut -d' ' -f2,3 "$SSHD_KNOWN_HOSTS" | sort)
echo "[127.0.0.1]:$SSHD_PORT $(cut -d' ' -f1,2 "$ALICE_KEY.pub")" > "$TMP/other_known_hosts"
out=$(ssh -o UserKnownHostsFile="$TMP/other_known_hosts" "${SSH_OPTS[@]}" "${KEY[@]}" \
  -i "$ALICE_KEY" "$ALICE@127.0.0.1" 'echo logged-in' 2>&1) && r=0 || r=$?
check "another host key in known_hosts: refused with StrictHostKeyChecking yes" \
  [ "$r" = 255 -a "${out/HOST IDENTIFICATION HAS CHANGED/}" != "$out" -a "${out/logged-in/}" = "$out" ]

# The router CLI: FRR's vtysh as the login shell behind sshd.
start_frr
frr_ssh() { ssh "${SSH_OPTS[@]}" "${KEY[@]}" -i "$FRR_KEY" "$FRR_USER@127.0.0.1" "$@"; }
before=$(frr_ssh 'show running-config' 2>&1) || true
check "the FRR user gets the router CLI: show running-config has hostname" \
  grep -q "^hostname $FRR_HOSTNAME\$" <<< "$before"
check "show running-config has the boot config (interface lo's description)" \
  grep -q '^ description outpost test router$' <<< "$before"
out=$(sshpass -p "$FRR_PASS" ssh "${SSH_OPTS[@]}" "${PASS[@]}" "$FRR_USER@127.0.0.1" \
  'show running-config' 2>&1) || true
check "the FRR user logs in with its password too" [ "$out" = "$before" ]
out=$(printf 'terminal length 0\nshow running-config\nexit\n' |
  ssh "${SSH_OPTS[@]}" "${KEY[@]}" -tt -i "$FRR_KEY" "$FRR_USER@127.0.0.1" 2>&1) || true
check "an interactive session (pty) gives the prompt '$FRR_HOSTNAME#' and the config" \
  grep -q "^$FRR_HOSTNAME# show running-config" <<< "${out//$'\r'/}"
push=$(frr_ssh $'configure terminal\nip route 10.9.9.0/24 Null0\nend\nwrite memory' 2>&1) || true
check "configure terminal + ip route + end + write memory: saved" \
  grep -q "^Integrated configuration saved to $FRR_DIR/frr.conf" <<< "$push"
after=$(frr_ssh 'show running-config' 2>&1) || true
check "a second session's show running-config has the pushed route" \
  grep -q '^ip route 10.9.9.0/24 Null0$' <<< "$after"
check "vtysh as root sees it too" \
  grep -q '^ip route 10.9.9.0/24 Null0$' <<< "$(frr_vtysh -c 'show running-config')"
check "write memory wrote it to FRR_DIR/frr.conf" grep -q '^ip route 10.9.9.0/24 Null0$' "$FRR_DIR/frr.conf"
check "zebra installed it (in its own network namespace)" \
  grep -q '^S>\* 10.9.9.0/24 .*blackhole' <<< "$(frr_vtysh -c 'show ip route static')"
check "the machine's own routing table did not get it" [ -z "$(ip route show 10.9.9.0/24)" ]
frr_ssh $'configure terminal\nno ip route 10.9.9.0/24 Null0\nend\nwrite memory' > /dev/null 2>&1 || true
restored=$(frr_ssh 'show running-config' 2>&1) || true
check "removing the route restores the original running-config" [ "$restored" = "$before" ]
check "and frr.conf no longer has it" bash -c "! grep -q '10.9.9.0' '$FRR_DIR/frr.conf'"
out=$(frr_ssh 'no such command' 2>&1) && r=0 || r=$?
check "an unknown command is refused by the CLI (% Unknown command, exit $r)" \
  grep -q '% Unknown command' <<< "$out"

# Telnet: inetutils-telnetd and /bin/login.
start_telnetd
out=$(telnet_login "$ALICE" 'Alice-pass-1' 'echo telnet-$(id -un)') && r=0 || r=$?
check "telnet login runs a command as the user" grep -qx "telnet-$ALICE" <<< "${out//$'\r'/}"
out=$(telnet_login "$ALICE" 'wrong-pass' 'true' 2>&1) && r=0 || r=$?
check "telnet: a wrong password is refused (Login incorrect)" \
  [ "$r" != 0 -a "${out/Login incorrect/}" != "$out" ]

echo "peers up and checked in $((($(date +%s%N) - T0) / 1000000)) ms"
finish
