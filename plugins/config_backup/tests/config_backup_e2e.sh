#!/usr/bin/env bash
# config_backup end to end against a real router CLI: FRRouting's vtysh as the login shell of a
# user behind OpenSSH's sshd (tests/integration/sshd.sh), both started once. Each poll is a new
# `outpost poll` process; the repository is read back with the git CLI and the router with vtysh
# itself, never through the plugin. Skipped (77) when not root (the peers add local users).
#   config_backup_e2e.sh BUILD_DIR
source "$(dirname "$0")/../../../tests/integration/lib.sh"
source "$SRC/tests/integration/sshd.sh"
if [ "$(id -u)" != 0 ]; then
  echo "SKIP: needs root (the SSH peers add local users)"
  exit 77
fi
PY=/usr/bin/python3
start_sshd
start_frr
REPO=$TMP/repo
ROUTE='ip route 10.9.9.0/24 Null0'

poll() { # NAME [--param K=V]...
  local name=$1; shift
  set +e
  "$OUTPOST" poll --plugin config_backup --set repository="$REPO" --set known_hosts="$SSHD_KNOWN_HOSTS" \
    --timeout 30s --json --param driver=vtysh --param port="$SSHD_PORT" --param user="$FRR_USER" \
    --param password="$FRR_PASS" "$@" 127.0.0.1 > "$TMP/$name.json" 2> "$TMP/$name.err"
  RC=$?
  set -e
}
has() { $PY "$SRC/tests/integration/poll_has.py" "$TMP/$1.json" - - "$2"; }
commits() { git -C "$REPO" rev-list --count main 2> /dev/null || echo 0; }
vtysh_has_route() { frr_vtysh -c 'show running-config' | grep -qx "$ROUTE"; }
no_route() { ! vtysh_has_route; }

poll first
check "the first backup succeeds" [ "$RC" -eq 0 ]
check "it is stored as the first version, with its event" has first \
  "target['status'] == 'ok' and [e['attributes']['previous'] for e in events('config.change')] == [''] and metric('config_backup_changed') == [1.0]"
check "one commit by the engine, message device and trigger" \
  test "$(git -C "$REPO" log -1 --format='%an|%s' main)" = "Outpost|127.0.0.1: scheduled"
stored_is_live() { # the stored text is what vtysh shows, without the two volatile lines
  diff <(git -C "$REPO" show main:127.0.0.1.cfg) \
    <(frr_vtysh -c 'show running-config' | grep -v -e '^Building configuration' -e '^Current configuration' | sed 's/[[:space:]]*$//')
}
check "the stored text is vtysh's running-config without its volatile lines" stored_is_live
FIRST=$(git -C "$REPO" rev-parse main)

poll again
check "an unchanged configuration makes no commit" has again \
  "target['status'] == 'ok' and not events('config.change') and metric('config_backup_changed') == [0.0]"
check "still one commit" test "$(commits)" = 1

poll dry --param "push=$ROUTE"
check "a push without confirm only says what it would send" has dry \
  "target['status'] == 'ok' and [e['attributes']['applied'] for e in events('config.push')] == ['false'] and '$ROUTE' in events('config.push')[0]['attributes']['lines']"
check "and the router is untouched" no_route

poll push --param "push=$ROUTE" --param confirm=true --param requested_by=alice
check "a confirmed push is applied and audited" has push \
  "target['status'] == 'ok' and [(e['attributes']['applied'], e['attributes']['requested_by']) for e in events('config.push')] == [('true', 'alice')]"
check "vtysh itself shows the route" vtysh_has_route
check "the change event carries the diff" has push \
  "any('+$ROUTE' in e['attributes']['diff'] for e in events('config.change'))"
check "a second commit, triggered by the push" \
  test "$(git -C "$REPO" log -1 --format='%s' main)" = "127.0.0.1: push by alice"

poll badpush --param "push=ip route nonsense" --param confirm=true
check "a line the router refuses is named, config" has badpush \
  "target['status'] == 'config' and 'ip route nonsense' in target['detail']"

poll rollback --param "rollback=${FIRST:0:10}" --param confirm=true --param requested_by=bob
check "a rollback to the first version is applied" has rollback \
  "target['status'] == 'ok' and any(e['attributes']['action'].startswith('rollback to') and 'no $ROUTE' in e['attributes']['lines'] for e in events('config.push'))"
check "vtysh no longer shows the route" no_route
check "the stored configuration is the first one again" \
  test "$(git -C "$REPO" show "$FIRST:127.0.0.1.cfg")" = "$(git -C "$REPO" show main:127.0.0.1.cfg)"
check "history: first, push, rollback" \
  test "$(git -C "$REPO" log --format='%s' main | tr '\n' '|')" = "127.0.0.1: rollback to ${FIRST:0:10} by bob|127.0.0.1: push by alice|127.0.0.1: scheduled|"
poll badversion --param rollback=deadbeef99 --param confirm=true
check "an unknown version is not_found" has badversion "target['status'] == 'not_found'"
check "git fsck finds the repository sound" git -C "$REPO" fsck --strict --no-progress

# `outpost config` reads the repository; `outpost lg` runs one allowed command, audited.
cat > "$TMP/cb.yaml" << YAML
plugins:
  config_backup: {repository: $REPO, known_hosts: $SSHD_KNOWN_HOSTS, lg_allow_group: ["lab=write terminal"]}
YAML
PUSHED=$(git -C "$REPO" rev-parse main~1)
set +e
"$OUTPOST" config history 127.0.0.1 --config "$TMP/cb.yaml" > "$TMP/history.out" 2>&1; HRC=$?
"$OUTPOST" config show 127.0.0.1 "${FIRST:0:8}" --config "$TMP/cb.yaml" > "$TMP/show.out" 2>&1
"$OUTPOST" config diff 127.0.0.1 "${FIRST:0:8}" "$PUSHED" --config "$TMP/cb.yaml" > "$TMP/diff.out" 2>&1
"$OUTPOST" config history 10.255.255.1 --config "$TMP/cb.yaml" > "$TMP/nohistory.out" 2>&1; NRC=$?
LG="--driver vtysh --user $FRR_USER --password $FRR_PASS --port $SSHD_PORT --by carol --config $TMP/cb.yaml"
# shellcheck disable=SC2086 # LG is a list of options
"$OUTPOST" lg 127.0.0.1 show version $LG > "$TMP/lg.out" 2>&1; LRC=$?
# shellcheck disable=SC2086
"$OUTPOST" lg 127.0.0.1 show version --json $LG > "$TMP/lg.json" 2> /dev/null
# shellcheck disable=SC2086
"$OUTPOST" lg 127.0.0.1 configure terminal $LG > "$TMP/lg_conf.out" 2>&1; CRC=$?
# shellcheck disable=SC2086
"$OUTPOST" lg 127.0.0.1 "show version ; reload" $LG > "$TMP/lg_two.out" 2>&1
# shellcheck disable=SC2086
"$OUTPOST" lg 127.0.0.1 write terminal $LG > "$TMP/lg_nogroup.out" 2>&1; GRC=$?
# shellcheck disable=SC2086
"$OUTPOST" lg 127.0.0.1 write terminal --group lab $LG > "$TMP/lg_group.out" 2>&1; LGRC=$?
set -e
check "config history: newest first, each version once" \
  test "$HRC" = 0 -a "$(cut -c 15- "$TMP/history.out" | sed 's/^[^ ]* [^ ]*  //' | tr '\n' '|')" = "127.0.0.1: rollback to ${FIRST:0:10} by bob|127.0.0.1: push by alice|127.0.0.1: scheduled|"
check "config show VERSION: the stored text of that version" \
  test "$(cat "$TMP/show.out")" = "$(git -C "$REPO" show "$FIRST:127.0.0.1.cfg")"
check "config diff: the route the push added" grep -qx "+$ROUTE" "$TMP/diff.out"
check "config history of a device never stored: not found" \
  sh -c "[ $NRC -ne 0 ] && grep -q 'not_found' '$TMP/nohistory.out'"
check "lg: an allowed command's output" sh -c "[ $LRC -eq 0 ] && grep -q 'FRRouting' '$TMP/lg.out'"
check "lg: audited (who, what)" $PY -c "
import json, sys
ev = [json.loads(l) for l in open('$TMP/lg.json') if l.strip()]
a = [e for e in ev if e.get('kind') == 'config.lg']
sys.exit(0 if a and a[0]['attributes']['requested_by'] == 'carol' and a[0]['attributes']['command'] == 'show version' and a[0]['attributes']['allowed'] == 'true' else 1)"
check "lg: a command not on the allowlist is refused (auth)" \
  sh -c "[ $CRC -ne 0 ] && grep -q 'auth.*not on the looking glass allowlist' '$TMP/lg_conf.out'"
check "lg: a second command smuggled in is refused" grep -q "one command only" "$TMP/lg_two.out"
check "lg: a group's own command is refused elsewhere" sh -c "[ $GRC -ne 0 ]"
check "lg: and allowed for the group" sh -c "[ $LGRC -eq 0 ] && grep -q 'hostname' '$TMP/lg_group.out'"
finish
