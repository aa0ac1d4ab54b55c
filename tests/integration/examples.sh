#!/usr/bin/env bash
# The SDK as a product: install it, build both examples out of tree against it, load them into
# the engine and check what they measured against real peers (monitoring-plugins' check_tcp and
# check_dummy, a python web server).
source "$(dirname "$0")/lib.sh"

cmake --install "$BUILD" --component sdk --prefix "$TMP/sdk" >/dev/null
for ex in minimal_c app_check; do
  cmake -S "$SRC/examples/$ex" -B "$TMP/ex-$ex" -G Ninja -DCMAKE_PREFIX_PATH="$TMP/sdk" \
    -DCMAKE_C_FLAGS="-Wall -Werror" -DCMAKE_CXX_FLAGS="-Wall -Werror" --no-warn-unused-cli >/dev/null
  ninja -C "$TMP/ex-$ex" >/dev/null
  mkdir -p "$TMP/plugins"
  cp "$TMP/ex-$ex/outpost_$ex.so" "$TMP/plugins/"
done
check "the examples export exactly one symbol" \
  test "$(nm -D --defined-only "$TMP/plugins/outpost_app_check.so" | awk '{print $3}' | sort -u | tr '\n' ' ')" = "outpost_plugin_entry "
"$OUTPOST" plugins --plugin-dir "$TMP/plugins" > "$TMP/plugins.txt"
check "outpost plugins lists minimal_c" grep -Eq '^minimal_c +1.0.0 +poller +1.1 ' "$TMP/plugins.txt"
check "outpost plugins lists app_check" grep -Eq '^app_check +1.0.0 +poller +1.1 ' "$TMP/plugins.txt"

PORT=$(free_port)
mkdir -p "$TMP/www"
echo hello > "$TMP/www/index.html"
python3 -m http.server "$PORT" --bind 127.0.0.1 --directory "$TMP/www" >/dev/null 2>&1 &
PIDS+=($!)
printf '0123456789' > "$TMP/present.txt"
CHECKS=/usr/lib/nagios/plugins
cat > "$TMP/outpost.yaml" <<YAML
engine:
  data_dir: $TMP/data
  summary_interval: 1s
  scheduler: {jitter: 0}
sinks:
  local: {plugin: sqlite, path: "\${data_dir}/outpost.db"}
inventory:
  devices:
    - name: web
      address: 127.0.0.1
      monitors:
        - {plugin: minimal_c, path: $TMP/present.txt, interval: 1s}
        - {plugin: app_check, command: "$CHECKS/check_tcp -H \$HOSTADDRESS\$ -p $PORT", interval: 1s}
    - name: gone
      monitors:
        - {plugin: minimal_c, path: $TMP/absent.txt, interval: 1s}
    - name: dummy
      monitors:
        - {plugin: app_check, command: "$CHECKS/check_dummy 2 'disk full'", interval: 1s}
YAML
"$OUTPOST" check-config "$TMP/outpost.yaml" --plugin-dir "$TMP/plugins"
"$OUTPOST" run -c "$TMP/outpost.yaml" --plugin-dir "$TMP/plugins" --for 3s > "$TMP/run.out" 2> "$TMP/run.err"
DB=$TMP/data/outpost.db
query "$DB" series > "$TMP/series.json"
check "minimal_c saw the file (size 10)" pycheck 'any(r["name"]=="file_size_bytes" and r["labels"]["device"]=="web" and r["last"]==10 for r in rows)' < "$TMP/series.json"
check "minimal_c reports the absent file" pycheck 'any(r["name"]=="file_exists" and r["labels"]["device"]=="gone" and r["last"]==0 for r in rows)' < "$TMP/series.json"
check "check_tcp against the web server is OK" pycheck 'any(r["name"]=="app_check_state" and r["labels"]["check"]=="check_tcp" and r["last"]==0 for r in rows)' < "$TMP/series.json"
check "check_tcp perfdata became a metric" pycheck 'any(r["name"]=="app_check_perf" and r["labels"]["label"]=="time" and r["labels"].get("unit")=="s" for r in rows)' < "$TMP/series.json"
check "check_dummy CRITICAL is state 2" pycheck 'any(r["name"]=="app_check_state" and r["labels"]["device"]=="dummy" and r["last"]==2 for r in rows)' < "$TMP/series.json"
query "$DB" events > "$TMP/events.json"
check "the failing checks raised availability events" pycheck 'any(r["source"]=="dummy" and "disk full" in r["message"] for r in rows) and any(r["source"]=="gone" for r in rows)' < "$TMP/events.json"
check "the summary line counted 2 ok and 2 failing" grep -q 'targets 4: 2 ok, 2 failing' "$TMP/run.out"
finish
