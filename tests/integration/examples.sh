#!/usr/bin/env bash
# The SDK as a product: install it, build both examples out of tree against it, load them into
# the engine and check what they measured against real peers (monitoring-plugins' check_tcp and
# check_dummy, a python web server). Compatibility is proven, not assumed: app_check is built
# again by clang against libc++ and minimal_c against the frozen ABI 1.0 header, and both run in
# this gcc-built engine.
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
check "outpost plugins lists minimal_c" grep -Eq '^minimal_c +1.0.0 +poller +1.4 ' "$TMP/plugins.txt"
check "outpost plugins lists app_check" grep -Eq '^app_check +1.0.0 +poller +1.4 ' "$TMP/plugins.txt"

# Another compiler and standard library: clang with libc++, same SDK.
cmake -S "$SRC/examples/app_check" -B "$TMP/ex-clang" -G Ninja -DCMAKE_PREFIX_PATH="$TMP/sdk" \
  -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_CXX_FLAGS="-stdlib=libc++ -Wall -Werror" \
  -DCMAKE_SHARED_LINKER_FLAGS="-stdlib=libc++" -DCMAKE_MODULE_LINKER_FLAGS="-stdlib=libc++" \
  --no-warn-unused-cli >/dev/null
ninja -C "$TMP/ex-clang" >/dev/null
mkdir -p "$TMP/plugins-clang"
cp "$TMP/ex-clang/outpost_app_check.so" "$TMP/plugins-clang/"
check "the clang build links libc++, not libstdc++" \
  sh -c "ldd '$TMP/plugins-clang/outpost_app_check.so' | grep -q 'libc++' && ! ldd '$TMP/plugins-clang/outpost_app_check.so' | grep -q 'libstdc++'"
"$OUTPOST" poll --plugin app_check --plugin-dir "$TMP/plugins-clang" \
  --param command="/usr/lib/nagios/plugins/check_dummy 1 'from clang'" gone > "$TMP/clang-poll.out" || true
check "the clang/libc++ plugin ran in the gcc engine" grep -q 'from clang' "$TMP/clang-poll.out"

# A plugin built against the oldest released header, as its author built it then.
mkdir -p "$TMP/plugins-1.0"
printf '0123456789' > "$TMP/present.txt"
clang -std=c11 -Wall -Werror -fPIC -shared -fvisibility=hidden -I "$SRC/sdk/abi/1.0" \
  -o "$TMP/plugins-1.0/outpost_minimal_c.so" "$SRC/examples/minimal_c/minimal_c.c"
"$OUTPOST" plugins --plugin-dir "$TMP/plugins-1.0" > "$TMP/plugins-1.0.txt"
check "a plugin built against the frozen 1.0 header loads as ABI 1.0" \
  grep -Eq '^minimal_c +1.0.0 +poller +1.0 ' "$TMP/plugins-1.0.txt"
"$OUTPOST" poll --plugin minimal_c --plugin-dir "$TMP/plugins-1.0" --param path="$TMP/present.txt" \
  web > "$TMP/abi10-poll.out"
check "the 1.0 plugin polls in the current engine" grep -Eq 'file_size_bytes.* 10' "$TMP/abi10-poll.out"

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
