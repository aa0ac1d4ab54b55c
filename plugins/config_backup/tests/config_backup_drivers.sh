#!/usr/bin/env bash
# config_backup's vendor drivers (ios, nxos, eos, junos, panos) against a login shell that plays
# each vendor's CLI from a transcript (tests/integration/cli_replay.py and transcripts/, written
# from the vendors' public documentation, not recorded from devices) behind OpenSSH's sshd
# (tests/integration/sshd.sh), started once. Each poll is a new `outpost poll` process; the
# repositories are read back with the git CLI. Skipped (77) when not root (it adds local users).
#   config_backup_drivers.sh BUILD_DIR
source "$(dirname "$0")/../../../tests/integration/lib.sh"
source "$SRC/tests/integration/sshd.sh"
if [ "$(id -u)" != 0 ]; then
  echo "SKIP: needs root (the SSH peers add local users)"
  exit 77
fi
PY=/usr/bin/python3
start_sshd
PASS=replay-Pass1
export CB_ENABLE=en4ble-S3cret CB_WRONG=not-the-secret

# The shell and transcripts where the test users may read them.
REPLAY=$SSH_TMP/replay
mkdir -p "$REPLAY"
cp "$SRC/tests/integration/cli_replay.py" "$SRC"/tests/integration/transcripts/*.txt "$REPLAY/"
chmod 755 "$REPLAY"
chmod 644 "$REPLAY"/*
# shell VENDOR NAME [ENV=VALUE...]: a login shell replaying VENDOR's transcript.
shell() {
  local vendor=$1 name=$2; shift 2
  {
    echo '#!/bin/sh'
    for kv in "$@"; do echo "export $kv"; done
    echo "exec $PY $REPLAY/cli_replay.py $REPLAY/$vendor.txt \"\$@\""
  } > "$REPLAY/$name.sh"
  chmod 755 "$REPLAY/$name.sh"
  echo "$REPLAY/$name.sh"
}
# user VENDOR NAME [ENV=VALUE...]: an ssh_user with that shell; sets U_NAME=user, H_NAME=home.
user() {
  local vendor=$1 name=$2
  ssh_user "$name" "$PASS" "$(shell "$@")"
  printf -v "U_$name" %s "$SSH_USER"
  printf -v "H_$name" %s "$SSH_TMP/home/$name"
}

poll() { # RESULT VENDOR USER REPO [--param K=V]...
  local name=$1 driver=$2 u=$3 repo=$4; shift 4
  set +e
  "$OUTPOST" poll --plugin config_backup --set repository="$repo" --set known_hosts="$SSHD_KNOWN_HOSTS" \
    --timeout 30s --json --param driver="$driver" --param port="$SSHD_PORT" --param user="$u" \
    --param password="$PASS" "$@" 127.0.0.1 > "$TMP/$name.json" 2> "$TMP/$name.err"
  RC=$?
  set -e
}
has() { $PY "$SRC/tests/integration/poll_has.py" "$TMP/$1.json" - - "$2"; }
stored() { git -C "$1" show main:127.0.0.1.cfg; }
commits() { git -C "$1" rev-list --count main 2> /dev/null || echo 0; }
# transcript_config VENDOR: the running configuration as the transcript has it (with {now}).
transcript_config() {
  sed -n '/^=== show-config$/,/^=== /p' "$SRC/tests/integration/transcripts/$1.txt" | sed '1d;/^=== /d'
}

# Per vendor: the volatile lines (a regex the stored file must not match), the secrets (fixed
# strings from the transcript the stored file must not contain), how many lines are masked, a
# line the device accepts and shows afterwards, a show command for the looking glass and a line
# of its output.
declare -A VOLATILE SECRETS MASKED LINE LG LGOUT
VOLATILE[ios]='^(Building configuration|Current configuration|! Last configuration change|! NVRAM config)'
SECRETS[ios]='$9$nhEmQVczB7|$9$4/Ig3Ec6|s3cr3t-RO|0822455D0A16|070C285F4D06'
MASKED[ios]=5
LINE[ios]='ip route 10.9.9.0 255.255.255.0 Null0'
LG[ios]='show ip interface brief'
LGOUT[ios]='GigabitEthernet0/0/0   198.51.100.2'
VOLATILE[nxos]='^!(Command|Time|Running configuration last done)'
SECRETS[nxos]='$5$KLMNOP|0x3d6f1a2b|n3xus-RO'
MASKED[nxos]=3
LINE[nxos]='ip route 10.9.9.0/24 Null0'
LG[nxos]='show running-config'
LGOUT[nxos]='hostname dc-leaf1'
VOLATILE[eos]='^! (Command|device|Startup-config last modified|boot system)'
SECRETS[eos]='$6$Xq1rJ9wH|ar1sta-RO'
MASKED[eos]=2
LINE[eos]='ip route 10.9.9.0/24 Null0'
LG[eos]='show version'
LGOUT[eos]='Software image version: 4.30.2F'
VOLATILE[junos]='^## Last commit'
SECRETS[junos]='$6$sYbD1oT4|$6$aB3cD4eF|jun1per-RO|$9$Hk5FCtO1'
MASKED[junos]=4
LINE[junos]='set system location building b1'
LG[junos]='show version'
LGOUT[junos]='Junos: 22.4R3.25'
VOLATILE[panos]='^\s*<?(last-commit|uptime|time)\b'
SECRETS[panos]='$5$wqbnvzsr|-AQ==Ue2k3'
MASKED[panos]=2
LINE[panos]='set deviceconfig system location building-b1'
LG[panos]='show system info'
LGOUT[panos]='sw-version: 10.2.7'
START=$(date +%s)

for v in ios nxos eos junos panos; do
  user "$v" "$v"
  uvar=U_$v hvar=H_$v
  U=${!uvar} H=${!hvar}
  R=$TMP/repo-$v
  poll "$v-first" "$v" "$U" "$R"
  check "$v: the first backup succeeds" has "$v-first" "target['status'] == 'ok' and metric('config_backup_changed') == [1.0]"
  stored "$R" > "$TMP/$v.cfg"
  check "$v: the stored file has no volatile line" sh -c "! grep -qE '${VOLATILE[$v]}' '$TMP/$v.cfg'"
  # PAN-OS's running configuration carries no timestamp line; the others must have had some.
  [ "$v" = panos ] || check "$v: the transcript had them" grep -qE "${VOLATILE[$v]}" "$SRC/tests/integration/transcripts/$v.txt"
  check "$v: no secret of the transcript is stored" $PY -c "
import sys
text = open('$TMP/$v.cfg').read()
sys.exit(1 if any(s in text for s in sys.argv[1].split('|')) else 0)" "${SECRETS[$v]}"
  check "$v: each is masked as <removed>" test "$(grep -c '<removed>' "$TMP/$v.cfg")" = "${MASKED[$v]}"
  # Every other line is the transcript's, in order: nothing lost or doubled by the pager.
  check "$v: the rest is the transcript's configuration line for line" diff \
    <(grep -v '<removed>' "$TMP/$v.cfg") \
    <(transcript_config "$v" | grep -vE "${VOLATILE[$v]}" | grep -vF -f <(tr '|' '\n' <<< "${SECRETS[$v]}") | sed 's/[[:space:]]*$//')
  check "$v: setup turned paging off, no pager prompt was shown" test ! -e "$H/replay-paged.log"
  sleep 0.01
  poll "$v-again" "$v" "$U" "$R"
  check "$v: a second read (new timestamps) makes no commit" has "$v-again" \
    "target['status'] == 'ok' and not events('config.change') and metric('config_backup_changed') == [0.0]"
  check "$v: still one commit" test "$(commits "$R")" = 1

  # A device that ignores the command turning paging off: the session answers its pager.
  user "$v" "${v}pg" REPLAY_NO_SETUP=1
  uvar=U_${v}pg hvar=H_${v}pg
  poll "$v-paged" "$v" "${!uvar}" "$TMP/repo-${v}pg"
  check "$v: with paging left on, the backup succeeds" has "$v-paged" "target['status'] == 'ok'"
  check "$v: the device paged it" test -s "${!hvar}/replay-paged.log"
  check "$v: and the stored text is the same as without paging" \
    test "$(stored "$TMP/repo-${v}pg")" = "$(cat "$TMP/$v.cfg")"

  poll "$v-bad" "$v" "$U" "$R" --param "push=frobnicate the widget" --param confirm=true
  check "$v: a command the device does not know is refused, config" has "$v-bad" \
    "target['status'] == 'config' and 'frobnicate the widget' in target['detail']"
  poll "$v-push" "$v" "$U" "$R" --param "push=${LINE[$v]}" --param confirm=true --param requested_by=alice
  check "$v: a confirmed push is applied" has "$v-push" \
    "target['status'] == 'ok' and [e['attributes']['applied'] for e in events('config.push')] == ['true']"
  case $v in ios | nxos | eos)
    check "$v: the pushed line is in the next backup's diff" has "$v-push" \
      "any('+${LINE[$v]}' in e['attributes']['diff'] for e in events('config.change'))"
    check "$v: and in the stored configuration" sh -c "git -C '$R' show main:127.0.0.1.cfg | grep -qxF '${LINE[$v]}'"
    FIRST=$(git -C "$R" rev-list --max-parents=0 main)
    poll "$v-rollback" "$v" "$U" "$R" --param "rollback=${FIRST:0:10}" --param confirm=true
    check "$v: a rollback removes it again" has "$v-rollback" \
      "target['status'] == 'ok' and any('no ${LINE[$v]}' in e['attributes']['lines'] for e in events('config.push'))"
    check "$v: the stored configuration is the first one again" \
      test "$(git -C "$R" show "$FIRST:127.0.0.1.cfg")" = "$(stored "$R")"

    # Unprivileged at login: enable with the secret, a credential reference.
    user "$v" "${v}en" REPLAY_PRIV=1
    uvar=U_${v}en
    poll "$v-enable" "$v" "${!uvar}" "$TMP/repo-${v}en" --param 'enable_secret_ref=${env:CB_ENABLE}'
    check "$v: enable with the right secret, then the backup" has "$v-enable" "target['status'] == 'ok'"
    check "$v: the same configuration" test "$(stored "$TMP/repo-${v}en")" = "$(git -C "$R" show "$FIRST:127.0.0.1.cfg")"
    poll "$v-wrong" "$v" "${!uvar}" "$TMP/repo-${v}wr" --param 'enable_secret_ref=${env:CB_WRONG}'
    check "$v: a wrong enable secret is refused, auth" has "$v-wrong" \
      "target['status'] == 'auth' and 'enable secret' in target['detail']"
    ;;
  esac

  cat > "$TMP/cb-$v.yaml" << YAML
plugins:
  config_backup: {repository: $R, known_hosts: $SSHD_KNOWN_HOSTS}
YAML
  set +e
  # shellcheck disable=SC2086 # the command is words
  "$OUTPOST" lg 127.0.0.1 ${LG[$v]} --driver "$v" --user "$U" --password "$PASS" --port "$SSHD_PORT" \
    --by carol --config "$TMP/cb-$v.yaml" > "$TMP/$v-lg.out" 2>&1
  LRC=$?
  set -e
  check "$v: lg '${LG[$v]}' prints the transcript's output" \
    sh -c "[ $LRC -eq 0 ] && grep -qF '${LGOUT[$v]}' '$TMP/$v-lg.out'"
done
echo "drivers checked in $(($(date +%s) - START)) s"
finish
