# A throwaway MIT Kerberos realm on loopback for the tests that log in with Kerberos. Source it
# after lib.sh; start_kdc REALM starts krb5kdc on a free port (KDC_PORT), with its database,
# configuration and logs under $TMP/kdc, and exports KRB5_CONFIG (clients), KRB5_KDC_PROFILE.
#   kdc_user NAME PASSWORD        a user principal
#   kdc_service PRINCIPAL KEYTAB  a service principal with a random key, exported to KEYTAB
# Needs krb5-kdc and krb5-admin-server (kdb5_util, kadmin.local, krb5kdc in /usr/sbin).
KDC_BIN=/usr/sbin
start_kdc() {
  KDC_REALM=$1
  KDC_DIR=$TMP/kdc
  mkdir -p "$KDC_DIR"
  KDC_PORT=$(free_port)
  cat > "$KDC_DIR/kdc.conf" <<CONF
[kdcdefaults]
  kdc_ports = $KDC_PORT
  kdc_tcp_ports = $KDC_PORT
[realms]
  $KDC_REALM = {
    database_name = $KDC_DIR/principal
    key_stash_file = $KDC_DIR/stash
    acl_file = $KDC_DIR/kadm5.acl
    max_life = 10h
    supported_enctypes = aes256-cts-hmac-sha1-96:normal aes128-cts-hmac-sha1-96:normal
  }
[logging]
  kdc = FILE:$KDC_DIR/kdc.log
CONF
  cat > "$KDC_DIR/krb5.conf" <<CONF
[libdefaults]
  default_realm = $KDC_REALM
  dns_lookup_kdc = false
  dns_lookup_realm = false
  rdns = false
  dns_canonicalize_hostname = false
  udp_preference_limit = 1
[realms]
  $KDC_REALM = {
    kdc = 127.0.0.1:$KDC_PORT
  }
CONF
  export KRB5_CONFIG=$KDC_DIR/krb5.conf KRB5_KDC_PROFILE=$KDC_DIR/kdc.conf
  : > "$KDC_DIR/kadm5.acl"
  "$KDC_BIN/kdb5_util" create -s -r "$KDC_REALM" -P "master-$RANDOM$RANDOM" > "$KDC_DIR/create.log" 2>&1 ||
    { cat "$KDC_DIR/create.log"; echo "FAIL: kdb5_util create"; exit 1; }
  "$KDC_BIN/krb5kdc" -n -r "$KDC_REALM" > "$KDC_DIR/krb5kdc.out" 2>&1 &
  PIDS+=($!)
  for _ in $(seq 1 100); do
    python3 -c "import socket,sys; s=socket.socket(); s.settimeout(0.2); sys.exit(s.connect_ex(('127.0.0.1', $KDC_PORT)))" && return 0
    sleep 0.1
  done
  cat "$KDC_DIR/krb5kdc.out" "$KDC_DIR/kdc.log" 2>/dev/null; echo "FAIL: krb5kdc did not start"; exit 1
}
kdc_user() {
  "$KDC_BIN/kadmin.local" -r "$KDC_REALM" -q "addprinc -pw $2 $1" > /dev/null 2>&1 ||
    { echo "FAIL: addprinc $1"; exit 1; }
}
kdc_service() {
  "$KDC_BIN/kadmin.local" -r "$KDC_REALM" -q "addprinc -randkey $1" > /dev/null 2>&1 &&
    "$KDC_BIN/kadmin.local" -r "$KDC_REALM" -q "ktadd -k $2 $1" > /dev/null 2>&1 ||
    { echo "FAIL: service principal $1"; exit 1; }
}
