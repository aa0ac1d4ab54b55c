#!/usr/bin/env bash
# The CLI session layer against a real OpenSSH sshd (a shell user with key and password),
# FRRouting's vtysh as a router CLI behind it and GNU inetutils telnetd, started once for the
# run; the program alone knows what to ask them. Skipped (77) when not root (the peers add local users).
#   cli_sshd.sh BUILD_DIR TEST_BINARY
source "$(dirname "$0")/../../../../tests/integration/lib.sh"
source "$SRC/tests/integration/sshd.sh"
CLIENT=${2:?usage: $0 BUILD_DIR TEST_BINARY}
if [ "$(id -u)" != 0 ]; then
  echo "SKIP: needs root (the SSH peers add local users)"
  exit 77
fi
start_sshd
ssh_user shell 'Sh-pass1'
SHELL_USER=$SSH_USER SHELL_KEY=$SSH_KEY
ssh_user nologin 'No-pass1' /bin/false
NOLOGIN_USER=$SSH_USER
start_frr
start_telnetd
# The program is the test; the peers are its environment.
env CLI_PORT="$SSHD_PORT" CLI_KNOWN_HOSTS="$SSHD_KNOWN_HOSTS" CLI_HOSTKEY_FP="$SSHD_HOSTKEY_FP" \
  CLI_SHELL_USER="$SHELL_USER" CLI_SHELL_PASS='Sh-pass1' CLI_SHELL_KEY="$SHELL_KEY" \
  CLI_NOLOGIN_USER="$NOLOGIN_USER" CLI_NOLOGIN_PASS='No-pass1' \
  CLI_FRR_USER="$FRR_USER" CLI_FRR_PASS="$FRR_PASS" CLI_FRR_KEY="$FRR_KEY" \
  CLI_FRR_VTYSH="vtysh --vty_socket $FRR_DIR --config_dir $FRR_DIR" CLI_TMP="$TMP" CLI_TELNET_PORT="$TELNETD_PORT" \
  "$CLIENT" && pass "CLI sessions against sshd and vtysh" || fail "CLI sessions against sshd and vtysh"
finish
