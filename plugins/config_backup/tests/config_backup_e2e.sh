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
has() {
  $PY - "$TMP/$1.json" "$2" <<'PYEOF'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
target = next((r for r in rows if r['type'] == 'target'), {})
def events(kind):
    return [r for r in rows if r['type'] == 'event' and r['kind'] == kind]
def metric(name):
    return [r['value'] for r in rows if r['type'] == 'metric' and r['name'] == name]
ok = eval(sys.argv[2])
if not ok:
    print('  target:', target)
    print('  events:', [(e['kind'], e['message']) for e in rows if e['type'] == 'event'])
sys.exit(0 if ok else 1)
PYEOF
}
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
finish
