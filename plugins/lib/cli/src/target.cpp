#include <outpost_lib/cli_target.hpp>

namespace outpost::lib::cli {

namespace {

std::string secret(const outpost::Config& p, outpost::Host host, const std::string& name) {
  if (auto ref = p.find(name + "_ref"); ref && !ref->empty()) {
    try {
      return host.secret(*ref);
    } catch (const outpost::Error&) {
      throw outpost::Error(OUTPOST_E_CONFIG,
                           name + "_ref: credential '" + std::string(*ref) + "' not found");
    }
  }
  return p.get(name);
}

}  // namespace

outpost_status engine_status(Status s) {
  switch (s) {
    case Status::auth:
    case Status::host_key_unknown:
    case Status::host_key_changed:
      return OUTPOST_E_AUTH;
    case Status::weak_algorithm:
      return OUTPOST_E_CONFIG;
    case Status::timeout:
      return OUTPOST_E_TIMEOUT;
    default:
      return OUTPOST_E_UNAVAILABLE;
  }
}

std::vector<outpost_field> host_key_fields() {
  using outpost::field;
  return {
      field("known_hosts", OUTPOST_FIELD_STRING,
            "The known-hosts store (OpenSSH format) host keys are checked against, e.g. "
            "${data_dir}/ssh_known_hosts",
            "", OUTPOST_FIELD_REQUIRED),
      field("trust_on_first_use", OUTPOST_FIELD_BOOL,
            "Add the key of a host not yet in known_hosts instead of refusing it (a changed key "
            "is always refused)",
            "false"),
  };
}

HostKeyPolicy host_key_policy(const outpost::Config& cfg, outpost::Host host,
                              std::string_view plugin) {
  HostKeyPolicy k;
  k.known_hosts = cfg.get("known_hosts");
  if (k.known_hosts.empty())
    throw outpost::Error(OUTPOST_E_CONFIG,
                         "known_hosts is required: host keys are always verified");
  k.trust_on_first_use = cfg.get_bool("trust_on_first_use", false);
  if (k.trust_on_first_use)
    host.log(OUTPOST_LOG_WARN, std::string(plugin) +
                                   ": trust_on_first_use is on: unknown host keys are added to " +
                                   k.known_hosts + " without verification");
  return k;
}

std::vector<outpost_field> target_fields(bool telnet) {
  using outpost::field;
  std::vector<outpost_field> f;
  if (telnet)
    f.push_back(field("transport", OUTPOST_FIELD_STRING,
                      "ssh, or telnet for a device that can do nothing else (clear text: warned)",
                      "ssh"));
  for (auto& x : std::vector<outpost_field>{
           field("port", OUTPOST_FIELD_INT,
                 telnet ? "TCP port; default 22 (ssh) or 23 (telnet)" : "SSH port; default 22"),
           field("user", OUTPOST_FIELD_STRING, "Account on the device"),
           field("password", OUTPOST_FIELD_STRING, "Password, literally (prefer password_ref)"),
           field("password_ref", OUTPOST_FIELD_SECRET, "Password, a credential reference"),
           field("key_file", OUTPOST_FIELD_STRING, "Private key file (OpenSSH format)"),
           field("key_passphrase_ref", OUTPOST_FIELD_SECRET, "Passphrase of key_file, a reference"),
           field("enable_secret_ref", OUTPOST_FIELD_SECRET,
                 "Privileged (enable) mode secret, a reference"),
       })
    f.push_back(x);
  return f;
}

Options target_options(const outpost::Target& t, outpost::Host host, bool telnet) {
  const outpost::Config p = t.params();
  Options o;
  const std::string transport = telnet ? p.get("transport", "ssh") : "ssh";
  if (transport != "ssh" && transport != "telnet")
    throw outpost::Error(OUTPOST_E_CONFIG, "transport must be ssh or telnet");
  o.transport = transport == "telnet" ? Transport::telnet : Transport::ssh;
  std::string_view addr = t.address();
  if (addr.size() >= 2 && addr.front() == '[' && addr.back() == ']')
    addr = addr.substr(1, addr.size() - 2);  // an IPv6 literal
  o.host = std::string(addr);
  const int64_t port = p.get_int("port", o.transport == Transport::telnet ? 23 : 22);
  if (port < 1 || port > 65535) throw outpost::Error(OUTPOST_E_CONFIG, "port out of range 1-65535");
  o.port = static_cast<uint16_t>(port);
  o.user = p.get("user");
  if (o.user.empty()) throw outpost::Error(OUTPOST_E_CONFIG, "user is required");
  o.password = secret(p, host, "password");
  o.key_file = p.get("key_file");
  if (auto ref = p.find("key_passphrase_ref"); ref && !ref->empty())
    o.key_passphrase = secret(p, host, "key_passphrase");
  if (auto ref = p.find("enable_secret_ref"); ref && !ref->empty())
    o.enable_secret = secret(p, host, "enable_secret");
  if (o.password.empty() && o.key_file.empty())
    throw outpost::Error(OUTPOST_E_CONFIG, "password, password_ref or key_file is required");
  return o;
}

}  // namespace outpost::lib::cli
