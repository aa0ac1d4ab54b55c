# Real SSH, router-CLI and Telnet peers on loopback for the tests of SSH/Telnet sessions, config
# backup/push/rollback, the looking glass and SSH-based Linux polling. Source it after lib.sh; the
# tests run as root (they add users). Files live under $TMP/ssh; at exit the daemons are stopped
# through PIDS and the users deleted through AT_EXIT (lib.sh). Packages: scripts/deps/ssh.list.
#   start_sshd        OpenSSH's sshd on 127.0.0.1:$SSHD_PORT with its own ed25519 and rsa host keys.
#                     SSHD_HOSTKEY_PUB: the ed25519 public key file (what OpenSSH and libssh clients
#                     are shown by default), SSHD_HOSTKEY_FP its SHA256:... fingerprint,
#                     SSHD_HOSTKEY_RSA_PUB the rsa one; SSHD_KNOWN_HOSTS: a known_hosts file with
#                     both as [127.0.0.1]:PORT; SSHD_LOG: its log (-e); SSH_OPTS: options for the
#                     OpenSSH client (port, that known_hosts, StrictHostKeyChecking yes, no
#                     ~/.ssh/config; ssh keeps the first value of an option, so overrides go
#                     before them). Password (PAM; also keyboard-interactive) and public key
#                     logins; only users made by ssh_user may log in, root may not.
#   ssh_user NAME PASSWORD [SHELL [GROUP,...]]
#                     a local user SSH_USER=outpost-test-NAME-PID (NAME: [a-z][a-z0-9]{0,10}) with
#                     that password, login shell (default /bin/bash), supplementary groups and a
#                     home under $TMP; an ed25519 key pair SSH_KEY (private) and SSH_KEY.pub that
#                     sshd accepts for it. Deleted at exit; users left by a killed run (whose PID
#                     is gone) are deleted by the next call.
#   start_frr         FRRouting 8.4's zebra and staticd in a network namespace of their own (their
#                     routes never reach the machine), config, PID files and vty sockets in
#                     FRR_DIR (integrated config FRR_DIR/frr.conf, loaded at start; it describes
#                     interface lo). frr_vtysh ARGS... runs vtysh as root against them. The router
#                     CLI user: FRR_USER, FRR_PASS, FRR_KEY (an ssh_user whose login shell runs that
#                     vtysh: `ssh ... FRR_USER@127.0.0.1 'show running-config'` runs one command,
#                     newline-separated commands run in order, no command gives the CLI with the
#                     prompt "FRR_HOSTNAME#" after PAM's motd). write memory saves FRR_DIR/frr.conf
#                     (vtysh warns that it writes without watchfrr and cannot chown the file).
#                     FRR_HOSTNAME is the machine's hostname: vtysh's running-config always says
#                     `hostname` with it, whatever the daemons were told.
#   start_telnetd     GNU inetutils telnetd behind socat on 127.0.0.1:$TELNETD_PORT; /bin/login
#                     (PAM) asks for user and password, so any ssh_user can log in.
#   telnet_login USER PASSWORD COMMAND
#                     a telnet client (python3, no telnetlib): logs in, runs COMMAND in the shell,
#                     prints the session's text; exits with COMMAND's status (1 when the login
#                     is refused or the session stalls for 10 s).
# Each start_* exits the test with a FAIL line when a package is missing or the daemon does not
# answer within 5 s.
SSH_TMP=$TMP/ssh

# _ssh_need FILE PACKAGE: FAIL unless FILE is an executable.
_ssh_need() {
  [ -x "$1" ] || _ssh_fail "$1 missing: install $2 (listed in scripts/deps/ssh.list)"
}
_ssh_dir() {
  # Users read their keys, homes and login shells under $TMP: others may traverse it (not list it).
  chmod o+x "$TMP"
  mkdir -p "$SSH_TMP/keys" "$SSH_TMP/authorized" "$SSH_TMP/home"
  chmod 711 "$SSH_TMP" "$SSH_TMP/home"
  chmod 755 "$SSH_TMP/authorized"
}
# _ssh_wait PID SECONDS COMMAND...: true once COMMAND succeeds (polled every 0.05 s), false when
# the time is up or the daemon PID has exited.
_ssh_wait() {
  local pid=$1 n=$(($2 * 20)); shift 2
  for _ in $(seq 1 "$n"); do
    "$@" && return 0
    kill -0 "$pid" 2> /dev/null || return 1
    sleep 0.05
  done
  return 1
}
# _ssh_fail MESSAGE FILE...: the FILEs that exist, then FAIL: MESSAGE; exits the test.
_ssh_fail() {
  local m=$1; shift
  cat "$@" 2> /dev/null || true
  echo "FAIL: $m"
  exit 1
}

start_sshd() {
  _ssh_need /usr/sbin/sshd openssh-server
  _ssh_need /usr/bin/ssh-keygen openssh-client
  _ssh_dir
  local d=$SSH_TMP/sshd
  mkdir -p "$d"
  ssh-keygen -q -t ed25519 -N '' -C outpost-test-sshd -f "$d/host_ed25519"
  ssh-keygen -q -t rsa -b 3072 -N '' -C outpost-test-sshd -f "$d/host_rsa"
  # sshd's privilege separation directory (compiled in; Debian's service creates it at start).
  [ -d /run/sshd ] || mkdir -m 0755 /run/sshd
  SSHD_PORT=$(free_port)
  cat > "$d/sshd_config" <<CONF
Port $SSHD_PORT
ListenAddress 127.0.0.1
HostKey $d/host_ed25519
HostKey $d/host_rsa
PidFile $d/sshd.pid
AuthorizedKeysFile $SSH_TMP/authorized/%u
# The keys and homes are under /tmp, which is world-writable: the ownership checks would refuse.
StrictModes no
PubkeyAuthentication yes
PasswordAuthentication yes
KbdInteractiveAuthentication yes
UsePAM yes
PermitRootLogin no
AllowUsers outpost-test-*
PrintMotd no
PrintLastLog no
UseDNS no
X11Forwarding no
AllowTcpForwarding no
LogLevel VERBOSE
MaxStartups 100:30:200
MaxSessions 50
LoginGraceTime 30
Subsystem sftp internal-sftp
CONF
  /usr/sbin/sshd -t -f "$d/sshd_config" > "$d/check.log" 2>&1 ||
    _ssh_fail "sshd -t refused its configuration" "$d/check.log"
  SSHD_LOG=$d/sshd.log
  : > "$SSHD_LOG"
  /usr/sbin/sshd -D -e -f "$d/sshd_config" >> "$SSHD_LOG" 2>&1 &
  SSHD_PID=$!
  PIDS+=($SSHD_PID)
  _ssh_wait "$SSHD_PID" 5 grep -q "^Server listening on 127.0.0.1 port $SSHD_PORT" "$SSHD_LOG" ||
    _ssh_fail "sshd did not listen on 127.0.0.1:$SSHD_PORT within 5 s" "$SSHD_LOG"
  SSHD_HOSTKEY_PUB=$d/host_ed25519.pub
  SSHD_HOSTKEY_RSA_PUB=$d/host_rsa.pub
  SSHD_HOSTKEY_FP=$(ssh-keygen -l -E sha256 -f "$SSHD_HOSTKEY_PUB" | cut -d' ' -f2)
  SSHD_KNOWN_HOSTS=$d/known_hosts
  local k
  for k in "$SSHD_HOSTKEY_PUB" "$SSHD_HOSTKEY_RSA_PUB"; do
    echo "[127.0.0.1]:$SSHD_PORT $(cut -d' ' -f1,2 "$k")"
  done > "$SSHD_KNOWN_HOSTS"
  SSH_OPTS=(-F /dev/null -p "$SSHD_PORT" -o UserKnownHostsFile="$SSHD_KNOWN_HOSTS"
    -o GlobalKnownHostsFile=/dev/null -o StrictHostKeyChecking=yes -o LogLevel=ERROR
    -o ConnectTimeout=10)  # ssh keeps an option's first value: put overrides before these
  export SSHD_PORT SSHD_HOSTKEY_PUB SSHD_HOSTKEY_RSA_PUB SSHD_HOSTKEY_FP SSHD_KNOWN_HOSTS
}

SSH_USER_PREFIX=outpost-test-
# _ssh_userdel NAME: NAME and its user group gone (-f: even with processes left).
_ssh_userdel() {
  getent passwd "$1" > /dev/null || return 0
  userdel -f "$1" 2> /dev/null || { echo "FAIL: userdel $1"; return 1; }
}
# Users of earlier runs that were killed before their cleanup: their PID suffix is not running.
_ssh_userdel_stale() {
  local u p
  for u in $(getent passwd | cut -d: -f1 | grep -E "^${SSH_USER_PREFIX}[a-z][a-z0-9]*-[0-9]+\$"); do
    p=${u##*-}
    [ "$p" = "$$" ] || kill -0 "$p" 2> /dev/null || _ssh_userdel "$u"
  done
}
ssh_user() {
  local name=$1 pass=$2 shell=${3:-/bin/bash} groups=${4:-}
  [[ $name =~ ^[a-z][a-z0-9]{0,10}$ ]] ||
    { echo "FAIL: ssh_user: NAME '$name' is not [a-z][a-z0-9]{0,10}"; exit 1; }
  _ssh_need /usr/sbin/useradd passwd
  _ssh_need /usr/bin/ssh-keygen openssh-client
  _ssh_dir
  _ssh_userdel_stale
  SSH_USER=$SSH_USER_PREFIX$name-$$
  _ssh_userdel "$SSH_USER" || exit 1  # left by a killed run that had our PID
  local home=$SSH_TMP/home/$name
  mkdir -p "$home"
  useradd -M -U -d "$home" -s "$shell" ${groups:+-G "$groups"} \
    -c "Outpost test user (tests/integration/sshd.sh, pid $$)" "$SSH_USER" ||
    { echo "FAIL: useradd $SSH_USER"; exit 1; }
  AT_EXIT+=("_ssh_userdel $SSH_USER")
  chown "$SSH_USER:$SSH_USER" "$home"
  chmod 700 "$home"
  echo "$SSH_USER:$pass" | chpasswd || { echo "FAIL: chpasswd $SSH_USER"; exit 1; }
  SSH_KEY=$SSH_TMP/keys/$name
  rm -f "$SSH_KEY" "$SSH_KEY.pub"
  ssh-keygen -q -t ed25519 -N '' -C "$SSH_USER" -f "$SSH_KEY"
  install -m 644 "$SSH_KEY.pub" "$SSH_TMP/authorized/$SSH_USER"
}

FRR_BIN=/usr/lib/frr
# frr_vtysh ARGS...: vtysh (as root) against the daemons of start_frr.
frr_vtysh() { vtysh --vty_socket "$FRR_DIR" --config_dir "$FRR_DIR" "$@"; }
_frr_up() { frr_vtysh -d "$1" -c 'show version' > /dev/null 2>&1; }
start_frr() {
  _ssh_need "$FRR_BIN/zebra" frr
  _ssh_need "$FRR_BIN/staticd" frr
  _ssh_need /usr/bin/vtysh frr
  _ssh_need /usr/bin/unshare util-linux
  _ssh_need /usr/bin/nsenter util-linux
  getent group frrvty > /dev/null ||
    _ssh_fail "no group frrvty: reinstall frr (listed in scripts/deps/ssh.list)"
  _ssh_dir
  FRR_DIR=$SSH_TMP/frr
  mkdir -p "$FRR_DIR"
  # The daemons run as frr and create their sockets in it; the CLI user (group frrvty) writes
  # frr.conf into it on write memory.
  chown frr:frrvty "$FRR_DIR"
  chmod 2775 "$FRR_DIR"
  printf 'service integrated-vtysh-config\n' > "$FRR_DIR/vtysh.conf"
  cat > "$FRR_DIR/frr.conf" <<CONF
frr defaults traditional
service integrated-vtysh-config
!
interface lo
 description outpost test router
exit
!
CONF
  # Per-daemon files stay empty: the integrated frr.conf is applied by vtysh -b below.
  : > "$FRR_DIR/zebra.conf"
  : > "$FRR_DIR/staticd.conf"
  chown frr:frrvty "$FRR_DIR"/*.conf
  chmod 664 "$FRR_DIR"/*.conf
  # -P 0: no TCP vty; -z: zebra's API socket here, not in /run/frr. zebra gets a new network
  # namespace (unshare execs it: $! is zebra) and staticd joins it.
  local common=(-P 0 -z "$FRR_DIR/zserv.api" --vty_socket "$FRR_DIR")
  unshare --net "$FRR_BIN/zebra" "${common[@]}" -f "$FRR_DIR/zebra.conf" -i "$FRR_DIR/zebra.pid" \
    --log "file:$FRR_DIR/zebra.log" > "$FRR_DIR/zebra.out" 2>&1 &
  FRR_ZEBRA_PID=$!
  PIDS+=($FRR_ZEBRA_PID)
  _ssh_wait "$FRR_ZEBRA_PID" 5 _frr_up zebra ||
    _ssh_fail "zebra did not answer vtysh within 5 s (unshare --net needs root)" \
      "$FRR_DIR/zebra.out" "$FRR_DIR/zebra.log"
  nsenter --net="/proc/$FRR_ZEBRA_PID/ns/net" ip link set lo up
  nsenter --net="/proc/$FRR_ZEBRA_PID/ns/net" "$FRR_BIN/staticd" "${common[@]}" \
    -f "$FRR_DIR/staticd.conf" -i "$FRR_DIR/staticd.pid" --log "file:$FRR_DIR/staticd.log" \
    > "$FRR_DIR/staticd.out" 2>&1 &
  FRR_STATICD_PID=$!
  PIDS+=($FRR_STATICD_PID)
  _ssh_wait "$FRR_STATICD_PID" 5 _frr_up staticd ||
    _ssh_fail "staticd did not answer vtysh within 5 s" "$FRR_DIR/staticd.out" "$FRR_DIR/staticd.log"
  frr_vtysh -b > "$FRR_DIR/boot.log" 2>&1 ||
    _ssh_fail "vtysh -b did not apply $FRR_DIR/frr.conf" "$FRR_DIR/boot.log"
  # The CLI user's login shell: sshd runs it as `SHELL -c COMMAND` for a command, else with no
  # arguments (argv[0] "-vtysh-shell") for a session.
  cat > "$FRR_DIR/vtysh-shell" <<SH
#!/bin/sh
if [ "\$1" = -c ]; then exec /usr/bin/vtysh --vty_socket '$FRR_DIR' --config_dir '$FRR_DIR' -c "\$2"; fi
exec /usr/bin/vtysh --vty_socket '$FRR_DIR' --config_dir '$FRR_DIR'
SH
  chmod 755 "$FRR_DIR/vtysh-shell"
  FRR_PASS=frr-pass-$RANDOM$RANDOM
  local user=${SSH_USER:-} key=${SSH_KEY:-}  # the test's last ssh_user stays SSH_USER
  ssh_user frr "$FRR_PASS" "$FRR_DIR/vtysh-shell" frrvty
  FRR_USER=$SSH_USER FRR_KEY=$SSH_KEY SSH_USER=$user SSH_KEY=$key
  # vtysh's prompt and the hostname line of its running-config are the machine's hostname.
  FRR_HOSTNAME=$(uname -n)
  export FRR_DIR FRR_USER FRR_PASS FRR_KEY FRR_HOSTNAME
}

start_telnetd() {
  _ssh_need /usr/sbin/telnetd inetutils-telnetd
  _ssh_need /usr/bin/socat socat
  /usr/sbin/telnetd --version 2>&1 | grep -q inetutils ||
    _ssh_fail "/usr/sbin/telnetd is not GNU inetutils' telnetd: install inetutils-telnetd"
  _ssh_dir
  local d=$SSH_TMP/telnetd
  mkdir -p "$d"
  TELNETD_PORT=$(free_port)
  TELNETD_LOG=$d/socat.log
  : > "$TELNETD_LOG"
  # nofork: telnetd gets the connection itself as stdin/stdout (it negotiates and makes a pty);
  # -h: no host banner before the login.
  socat -d -d "TCP-LISTEN:$TELNETD_PORT,bind=127.0.0.1,reuseaddr,fork" \
    "EXEC:/usr/sbin/telnetd -h,nofork" 2>> "$TELNETD_LOG" &
  TELNETD_PID=$!
  PIDS+=($TELNETD_PID)
  _ssh_wait "$TELNETD_PID" 5 grep -q "listening on .*:$TELNETD_PORT" "$TELNETD_LOG" ||
    _ssh_fail "socat did not listen for telnetd on 127.0.0.1:$TELNETD_PORT within 5 s" "$TELNETD_LOG"
  export TELNETD_PORT
}

telnet_login() {
  /usr/bin/python3 - "$TELNETD_PORT" "$@" <<'PY'
import re, socket, sys, time
port, user, password, command = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
IAC, DONT, DO, WONT, WILL, SB, SE = 255, 254, 253, 252, 251, 250, 240
ECHO, SGA = 1, 3
s = socket.create_connection(("127.0.0.1", port), timeout=10)
text = bytearray()
def read_until(pattern, timeout=10):
    """Answers option negotiation (only the server's ECHO and SGA are accepted) until the text
    seen so far matches pattern."""
    end = time.time() + timeout
    while not re.search(pattern, text):
        s.settimeout(max(0.01, end - time.time()))
        try:
            data = s.recv(4096)
        except socket.timeout:
            raise SystemExit("timed out waiting for %r; got: %r" % (pattern, bytes(text)))
        if not data:
            raise SystemExit("connection closed waiting for %r; got: %r" % (pattern, bytes(text)))
        i = 0
        while i < len(data):
            b = data[i]
            if b == IAC and i + 1 < len(data):
                c = data[i + 1]
                if c in (DO, DONT, WILL, WONT) and i + 2 < len(data):
                    opt = data[i + 2]
                    if c == DO:
                        s.sendall(bytes([IAC, WONT, opt]))
                    elif c == WILL:
                        s.sendall(bytes([IAC, DO if opt in (ECHO, SGA) else DONT, opt]))
                    i += 3
                    continue
                if c == SB:
                    j = data.find(bytes([IAC, SE]), i)
                    i = len(data) if j < 0 else j + 2
                    continue
                if c == IAC:
                    text.append(IAC)
                i += 2
                continue
            if b != 0:  # NVT: a bare CR is sent as CR NUL
                text.append(b)
            i += 1
marker = "outpost-telnet-done"
read_until(rb"login: $")
s.sendall(user.encode() + b"\r\n")
read_until(rb"assword: ?$")
s.sendall(password.encode() + b"\r\n")
read_until(rb"[$#] $|Login incorrect")
if b"Login incorrect" in text:
    sys.stdout.write(text.decode(errors="replace"))
    raise SystemExit("login refused")
s.sendall(command.encode() + b"; echo " + marker.encode() + b"-$?\r\n")
read_until((marker + r"-\d+\r?\n").encode())
s.sendall(b"exit\r\n")
sys.stdout.write(text.decode(errors="replace"))
sys.exit(int(re.search((marker + r"-(\d+)\r?\n").encode(), text).group(1)))
PY
}
