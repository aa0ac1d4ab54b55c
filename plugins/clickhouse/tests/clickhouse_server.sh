# A throwaway clickhouse-server for tests and benchmarks (sourced): its own config, data and logs
# under a directory, HTTP and native ports on 127.0.0.1, no system service. Users: `default`
# (no password) and `outpost` (password `s3cret`), both from 127.0.0.1 only.
#   ch_start DIR HTTP_PORT TCP_PORT [HTTPS_PORT CERT KEY]
#                                     starts it (CH_PID), waits until /ping answers; with
#                                     HTTPS_PORT also TLS there, with the PEM certificate and key
#   ch_stop                           SIGTERM, waits (SIGKILL after 60 s)
#   ch_sql SQL                        clickhouse-client as `default`, TabSeparated out
ch_start() {
  CH_DIR=$1 CH_HTTP=$2 CH_TCP=$3 CH_HTTPS=${4:-} CH_CERT=${5:-} CH_KEY=${6:-}
  local tls=
  if [ -n "$CH_HTTPS" ]; then
    tls="<https_port>$CH_HTTPS</https_port>
  <openSSL><server><certificateFile>$CH_CERT</certificateFile><privateKeyFile>$CH_KEY</privateKeyFile>
    <verificationMode>none</verificationMode><loadDefaultCAFile>false</loadDefaultCAFile>
    <disableProtocols>sslv2,sslv3</disableProtocols></server></openSSL>"
  fi
  mkdir -p "$CH_DIR/data" "$CH_DIR/tmp" "$CH_DIR/user_files" "$CH_DIR/format_schemas"
  cat > "$CH_DIR/config.xml" <<XML
<?xml version="1.0"?>
<yandex>
  <logger><level>information</level><log>$CH_DIR/server.log</log>
    <errorlog>$CH_DIR/server.err.log</errorlog></logger>
  <listen_host>127.0.0.1</listen_host>
  <http_port>$CH_HTTP</http_port>
  <tcp_port>$CH_TCP</tcp_port>
  $tls
  <path>$CH_DIR/data/</path>
  <tmp_path>$CH_DIR/tmp/</tmp_path>
  <user_files_path>$CH_DIR/user_files/</user_files_path>
  <format_schema_path>$CH_DIR/format_schemas/</format_schema_path>
  <users_config>$CH_DIR/users.xml</users_config>
  <default_profile>default</default_profile>
  <default_database>default</default_database>
  <timezone>UTC</timezone>
  <mark_cache_size>268435456</mark_cache_size>
  <uncompressed_cache_size>0</uncompressed_cache_size>
</yandex>
XML
  cat > "$CH_DIR/users.xml" <<XML
<?xml version="1.0"?>
<yandex>
  <profiles><default/></profiles>
  <quotas><default/></quotas>
  <users>
    <default><password></password><networks><ip>127.0.0.1</ip></networks>
      <profile>default</profile><quota>default</quota></default>
    <outpost><password>s3cret</password><networks><ip>127.0.0.1</ip></networks>
      <profile>default</profile><quota>default</quota></outpost>
  </users>
</yandex>
XML
  clickhouse-server --config-file="$CH_DIR/config.xml" > "$CH_DIR/stdout.log" 2>&1 &
  CH_PID=$!
  PIDS+=($CH_PID)
  for _ in $(seq 1 300); do
    [ "$(curl -s "http://127.0.0.1:$CH_HTTP/ping" 2>/dev/null)" = "Ok." ] && return 0
    kill -0 "$CH_PID" 2>/dev/null || break
    sleep 0.1
  done
  tail -20 "$CH_DIR/server.err.log" "$CH_DIR/stdout.log" 2>/dev/null
  echo "FAIL: clickhouse-server did not start"
  exit 1
}
ch_stop() {
  kill -TERM "$CH_PID" 2>/dev/null || return 0
  for _ in $(seq 1 600); do kill -0 "$CH_PID" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$CH_PID" 2>/dev/null || true
  wait "$CH_PID" 2>/dev/null || true
}
ch_sql() { clickhouse-client --host 127.0.0.1 --port "$CH_TCP" --query "$1"; }
