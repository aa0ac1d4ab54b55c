#!/usr/bin/env bash
# The management channel against a real web server: nginx serves signed bundles over TLS (a test
# CA and certificate made here by openssl) and the engine polls it every second. A good config
# bundle is applied once and then only revalidated (304); a tampered bundle, one signed by an
# unknown key, an older serial, an invalid configuration and a truncated bundle are each refused
# with their counted reason while the running configuration stays; a plugin update is swapped in
# while the other plugins keep running (their counters never restart); an update that fails to
# create or to load is rolled back; a restart starts from what was applied; a wrong CA is one
# clear error; a client certificate is presented where the server asks for one.
source "$(dirname "$0")/lib.sh"

BUILD=$(cd "$BUILD" && pwd)
OUTPOST=$BUILD/outpost
NGINX=${NGINX:-/usr/sbin/nginx}
[ -x "$NGINX" ] || { echo "FAIL: $NGINX not found (Debian package nginx; ./dev setup installs it)"; exit 1; }
PROBES=$BUILD/probe-plugins

# --- a CA, a server certificate for 127.0.0.1, and a CA that signed nothing here
cd "$TMP"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=outpost-test-ca \
  -keyout ca.key -out ca.pem 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=127.0.0.1 \
  -keyout server.key -out server.csr 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1\n' > san.ext
openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 \
  -extfile san.ext -out server.pem 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=engine-1 \
  -keyout client.key -out client.csr 2>/dev/null
openssl x509 -req -in client.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 -out client.pem 2>/dev/null
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=other-ca \
  -keyout other.key -out other.pem 2>/dev/null

# --- nginx on loopback, everything under $TMP/nginx
HTTPS_PORT=$(free_port)
MTLS_PORT=$(free_port)  # the same files, to clients with a certificate from the test CA only
mkdir -p nginx/logs nginx/tmp www/mgmt/plugins
cat > nginx/nginx.conf <<CONF
user $(id -un) $(id -gn);
worker_processes 1;
pid $TMP/nginx/nginx.pid;
error_log $TMP/nginx/logs/error.log warn;
events { worker_connections 64; }
http {
  access_log $TMP/nginx/logs/access.log combined_sizes;
  client_body_temp_path $TMP/nginx/tmp/body;
  proxy_temp_path $TMP/nginx/tmp/proxy;
  fastcgi_temp_path $TMP/nginx/tmp/fastcgi;
  uwsgi_temp_path $TMP/nginx/tmp/uwsgi;
  scgi_temp_path $TMP/nginx/tmp/scgi;
  server {
    listen 127.0.0.1:$HTTPS_PORT ssl;
    ssl_certificate $TMP/server.pem;
    ssl_certificate_key $TMP/server.key;
    root $TMP/www;
  }
  server {
    listen 127.0.0.1:$MTLS_PORT ssl;
    ssl_certificate $TMP/server.pem;
    ssl_certificate_key $TMP/server.key;
    ssl_client_certificate $TMP/ca.pem;
    ssl_verify_client on;
    root $TMP/www;
  }
}
CONF
# the log format goes before its use
sed -i "s|^http {|http {\n  log_format combined_sizes '\$status \$request_length \$bytes_sent \"\$request\"';|" nginx/nginx.conf
"$NGINX" -p "$TMP/nginx" -c "$TMP/nginx/nginx.conf" -g 'daemon off;' 2> "$TMP/nginx/stderr" &
PIDS+=($!)
for _ in $(seq 1 100); do
  curl -s -o /dev/null --cacert ca.pem "https://127.0.0.1:$HTTPS_PORT/" && break
  sleep 0.05
done
check "nginx serves over TLS with the test CA" curl -s -o /dev/null --cacert ca.pem "https://127.0.0.1:$HTTPS_PORT/"

# --- signing keys: the trusted one and a stranger's
check "outpost keygen makes a key pair" "$OUTPOST" keygen --out "$TMP/trusted"
"$OUTPOST" keygen --out "$TMP/stranger" > /dev/null
check "the private key is mode 0600" test "$(stat -c %a "$TMP/trusted.key")" = 600

# --- the configuration: local file (management section) and the remote ones
OPEN=$(free_port)
python3 -m http.server "$OPEN" --bind 127.0.0.1 --directory "$TMP/www" >/dev/null 2>&1 &
PIDS+=($!)
body() { # DEVICE_NAME [EXTRA MONITOR PARAMS]
  cat <<YAML
engine:
  data_dir: $TMP/data
  plugin_dirs: [$PROBES/v1]
  summary_interval: 0
  self_metrics_interval: 500ms
sinks:
  local: {plugin: sqlite, path: "\${data_dir}/outpost.db"}
inventory:
  devices:
    - name: web
      address: 127.0.0.1
      monitors: [{plugin: tcp, port: $OPEN, interval: 200ms}]
    - name: $1
      address: 127.0.0.1
      monitors: [{plugin: probe, interval: 200ms${2:-}}]
YAML
}
management() { # CA_FILE
  cat <<YAML
management:
  url: https://127.0.0.1:$HTTPS_PORT/mgmt/
  interval: 1s
  public_keys: [$TMP/trusted.pub]
  ca_file: $1
  state_dir: $TMP/state
YAML
}
{ body local; management "$TMP/ca.pem"; } > local.yaml
check "check-config accepts the management section" "$OUTPOST" check-config local.yaml

MTIME=1700000000
serve() { # FILE TARGET: publish with an mtime of its own, so nginx's ETag changes every time
  MTIME=$((MTIME + 10))
  cp "$1" "$2.tmp" && touch -d "@$MTIME" "$2.tmp" && mv "$2.tmp" "$2"
}
sign_config() { # SERIAL DEVICE OUT [KEY] [EXTRA]
  body "$2" "${5:-}" > "cfg-$1.yaml"
  "$OUTPOST" sign --key "${4:-$TMP/trusted.key}" --kind config --serial "$1" --out "$3" "cfg-$1.yaml" > /dev/null
}
LOG=$TMP/engine.err
wait_log() { # PATTERN [COUNT]: waits up to 15 s for PATTERN to appear COUNT times in the log
  for _ in $(seq 1 150); do
    [ "$(grep -c -- "$1" "$LOG" || true)" -ge "${2:-1}" ] && return 0
    sleep 0.1
  done
  echo "--- waited in vain for: $1"; tail -20 "$LOG"; return 1
}
count() { grep -c -- "$1" "$LOG" || true; }
# Proxy environment variables pointing nowhere: the channel must ignore them (no proxy unless
# management.proxy says so).
NOWHERE=http://127.0.0.1:$(free_port)
run_engine() { # CONFIG
  https_proxy=$NOWHERE HTTPS_PROXY=$NOWHERE ALL_PROXY=$NOWHERE all_proxy=$NOWHERE \
    "$OUTPOST" run -c "$1" > "$TMP/engine.out" 2> "$LOG" &
  ENGINE=$!
  PIDS+=($ENGINE)
}

# --- a good configuration bundle: applied once, then 304 only
sign_config 10 remote-10 c10.bundle
check "outpost verify accepts it (exit 0)" "$OUTPOST" verify --pub "$TMP/trusted.pub" c10.bundle
set +e; "$OUTPOST" verify --pub "$TMP/stranger.pub" c10.bundle 2> verify.err; rc=$?; set -e
check "outpost verify refuses it with a stranger's key (exit 1)" test "$rc" = 1
check "... saying why" grep -q "bad_signature: signed with key .*, which is not a trusted key" verify.err
serve c10.bundle www/mgmt/config.bundle
run_engine local.yaml
check "the engine applies the configuration bundle (proxy variables ignored)" wait_log "applied configuration serial 10"
check "... through a reload" grep -q "configuration reloaded from remote configuration serial 10" "$LOG"
N304=$(grep -c '^304 .*config.bundle' nginx/logs/access.log || true)
for _ in $(seq 1 50); do
  [ "$(grep -c '^304 .*config.bundle' nginx/logs/access.log || true)" -ge $((N304 + 3)) ] && break
  sleep 0.1
done
check "the same bundle again is a 304 (conditional GET)" \
  test "$(grep -c '^304 .*config.bundle' nginx/logs/access.log)" -ge $((N304 + 3))
check "... and is not applied again" test "$(count 'configuration reloaded')" = 1

refused() { # REASON COUNT: the log says so
  wait_log "refused config serial .*: $1: " "$2"
}
# --- refusals: each counted, the running configuration stays
sign_config 11 remote-11 c11.bundle
python3 - c11.bundle <<'PY'
import sys
b = bytearray(open(sys.argv[1], "rb").read())
b[-80] ^= 0x01  # a payload byte
open(sys.argv[1], "wb").write(b)
PY
serve c11.bundle www/mgmt/config.bundle
check "a tampered bundle is refused: bad_signature" refused bad_signature 1
sign_config 12 remote-12 c12.bundle "$TMP/stranger.key"
serve c12.bundle www/mgmt/config.bundle
check "a bundle signed by an unknown key is refused: bad_signature" refused bad_signature 2
check "... naming the untrusted key" grep -q "which is not a trusted key; the running configuration stays" "$LOG"
sign_config 9 remote-9 c9.bundle
serve c9.bundle www/mgmt/config.bundle
check "an older serial is refused: old_serial" refused old_serial 1
sign_config 13 remote-13 c13.bundle "" ", prot: 1"
serve c13.bundle www/mgmt/config.bundle
check "a configuration that fails validation is refused: invalid_config" refused invalid_config 1
check "... with the validation error's place" grep -q "remote configuration serial 13:15:.*unknown key" "$LOG"
sign_config 14 remote-14 c14.bundle
head -c 200 c14.bundle > c14.cut
serve c14.cut www/mgmt/config.bundle
check "a truncated bundle is refused: corrupt" wait_log "refused config: corrupt: truncated: "
check "the running configuration stayed through every refusal" test "$(count 'configuration reloaded')" = 1
sign_config 15 remote-15 c15.bundle
serve c15.bundle www/mgmt/config.bundle
check "a good bundle after the refusals is applied" wait_log "applied configuration serial 15"

# --- plugin updates: probe 1.0.0 -> 2.0.0 while tcp and sqlite keep running
check "probe 1.0.0 runs first" grep -q "plugin instance 'probe' started (plugin probe 1.0.0)" "$LOG"
TCP_STARTS=$(count "plugin instance 'tcp' started")
SINK_STARTS=$(count "sink 'local' started")
sign_plugin() { # VERSION_DIR VERSION SERIAL OUT [FILE]
  "$OUTPOST" sign --key "$TMP/trusted.key" --kind plugin --name probe --version "$2" --serial "$3" \
    --out "$4" "${5:-$PROBES/$1/outpost_probe.so}" > /dev/null
}
sign_plugin v2 2.0.0 1 p1.bundle
serve p1.bundle www/mgmt/plugins/probe.bundle
check "the plugin update is applied" wait_log "management: plugin probe updated to 2.0.0 (serial 1)"
check "... as a swap of probe's instances" grep -q "plugin probe 2.0.0 now serves 1 instance(s)" "$LOG"
sleep 1.5
check "tcp's instance was not restarted" test "$(count "plugin instance 'tcp' started")" = "$TCP_STARTS"
check "the sqlite sink was not restarted" test "$(count "sink 'local' started")" = "$SINK_STARTS"
sign_plugin v3 3.0.0 2 p2.bundle
serve p2.bundle www/mgmt/plugins/probe.bundle
check "an update whose create fails is rolled back: load_failed" \
  wait_log "refused plugin/probe serial 2: load_failed: rolled back: instance 'probe': "
printf 'not a shared library\n' > junk.so
sign_plugin - 4.0.0 3 p3.bundle junk.so
serve p3.bundle www/mgmt/plugins/probe.bundle
check "an update whose library does not load is refused: load_failed" \
  wait_log "refused plugin/probe serial 3: load_failed: the library does not load: "
check "... the running version stays" grep -q "the running version of probe stays" "$LOG"
sleep 2  # probe 2.0.0 keeps answering, and the self-metrics are written
stop_engine
check "the engine stopped cleanly" test "$ENGINE_RC" = 0

DB=$TMP/data/outpost.db
query "$DB" series > series.json
query "$DB" samples --name probe_version_info > probe.json
check "probe 2.0.0 answered after the update" pycheck 'any(r["labels"].get("version")=="2.0.0" for r in rows)' < probe.json
check "probe 3.0.0 never answered" pycheck 'not any(r["labels"].get("version") in ("3.0.0","4.0.0") for r in rows)' < probe.json
monotonic() { # METRIC PLUGIN: "yes" when no sample of it is below the one before (no restart)
  query "$DB" samples --name "$1" | python3 -c '
import json, sys
rows = [json.loads(l) for l in sys.stdin if l.strip()]
rows = sorted((r for r in rows if r["labels"].get("plugin") == sys.argv[1]), key=lambda r: r["time_ns"])
vals = [r["value"] for r in rows]
print("few" if len(vals) <= 5 else "yes" if all(b >= a for a, b in zip(vals, vals[1:])) else "no")' "$2"
}
check "tcp's emitted counter never restarted across the swap" test "$(monotonic outpost_plugin_emitted_total tcp)" = yes
check "tcp's poll counter never restarted across the swap" test "$(monotonic outpost_poll_batches_total tcp)" = yes
check "probe's emitted counter did restart (its instance was swapped)" test "$(monotonic outpost_plugin_emitted_total probe)" = no
last_metric() { # NAME LABEL=VALUE...: the last sample's value
  query "$DB" samples --name "$1" | python3 -c '
import json, sys
want = dict(a.split("=", 1) for a in sys.argv[1:])
rows = [json.loads(l) for l in sys.stdin if l.strip()]
rows = [r for r in rows if all(r["labels"].get(k) == v for k, v in want.items())]
print(int(max(rows, key=lambda r: r["time_ns"])["value"]) if rows else "none")' "${@:2}"
}
check "refusals counted: bad_signature 2" test "$(last_metric outpost_management_refusals_total bundle=config reason=bad_signature)" = 2
check "refusals counted: old_serial 1" test "$(last_metric outpost_management_refusals_total bundle=config reason=old_serial)" = 1
check "refusals counted: invalid_config 1" test "$(last_metric outpost_management_refusals_total bundle=config reason=invalid_config)" = 1
check "refusals counted: corrupt 1" test "$(last_metric outpost_management_refusals_total bundle=config reason=corrupt)" = 1
check "refusals counted: load_failed 2" test "$(last_metric outpost_management_refusals_total bundle=plugin/probe reason=load_failed)" = 2
check "applied serials: config 15" test "$(last_metric outpost_management_applied_serial bundle=config)" = 15
check "applied serials: probe 1" test "$(last_metric outpost_management_applied_serial bundle=plugin/probe)" = 1
check "the last poll succeeded" test "$(last_metric outpost_management_last_poll_ok)" = 1

# The steady state's cost: what nginx counted for the revalidations (request + response bytes).
python3 - nginx/logs/access.log > steady.txt <<'PY'
import sys
rows = [l.split(" ", 3) for l in open(sys.argv[1])]
cost = [int(r[1]) + int(r[2]) for r in rows if r[0] in ("304", "404")]
print(max(cost), sum(cost) // len(cost))
PY
read -r MAX AVG < steady.txt
echo "steady state: a revalidation costs $AVG bytes on average, $MAX at most (HTTP, before TLS)"
check "a revalidation costs a few hundred bytes" test "$MAX" -lt 700

# --- a restart starts from what was applied, and revalidates it
run_engine local.yaml
check "a restart starts from the configuration applied last" \
  wait_log "starting from the configuration applied last (serial 15)"
check "... and from the plugin update applied last" wait_log "management: plugin probe 2.0.0 (serial 1) restored"
check "... whose instance runs" wait_log "plugin instance 'probe' started (plugin probe 2.0.0)"
wait_log "management: polling" > /dev/null
sleep 2.5
check "... and nothing is applied again" test "$(count 'applied configuration serial')" = 0
stop_engine

# --- a server the pinned CA did not sign: one clear error, however many polls fail
{ body local; management "$TMP/other.pem"; } > wrongca.yaml
sed -i "s|state_dir: .*|state_dir: $TMP/state-wrongca|" wrongca.yaml
run_engine wrongca.yaml
sleep 3.5
stop_engine
check "a wrong CA is reported" grep -q "management: GET https://127.0.0.1:$HTTPS_PORT/mgmt/config.bundle: .*certificate" "$LOG"
check "... once, not at every poll" test "$(grep -c 'management: GET ' "$LOG")" = 1
check "... and nothing was applied" test "$(count 'applied configuration')" = 0

# --- mutual TLS: with the client certificate the bundle is applied; without it, one error
{ body local; management "$TMP/ca.pem"; } > mtls.yaml
sed -i -e "s|:$HTTPS_PORT/|:$MTLS_PORT/|" -e "s|state_dir: .*|state_dir: $TMP/state-mtls|" mtls.yaml
printf '  client_cert: %s\n  client_key: %s\n' "$TMP/client.pem" "$TMP/client.key" >> mtls.yaml
run_engine mtls.yaml
check "with a client certificate (mTLS) the bundle is applied" wait_log "applied configuration serial 15"
stop_engine
grep -v client_ mtls.yaml | sed "s|state-mtls|state-nocert|" > nocert.yaml
run_engine nocert.yaml
sleep 2.5
stop_engine
check "without it the server's refusal is one clear error" \
  test "$(grep -c "management: GET https://127.0.0.1:$MTLS_PORT/mgmt/config.bundle: HTTP status 400" "$LOG")" = 1
finish
