// `outpost snmp get|walk`, the snmp plugin's subcommand (ABI 1.2): net-snmp's options mapped
// onto the plugin's get/walk monitor parameters, for one poll the host runs as `outpost poll`
// does; the varbinds come back as snmp.varbind events, printed one a line as snmpget -On and
// snmpbulkwalk -On print them, so the two can be compared.
#include "cli.hpp"

#include <string>
#include <string_view>
#include <vector>

namespace outpost::snmp {

namespace {

const char* kSnmpUsage = R"(usage: outpost snmp get|walk [OPTIONS] AGENT OID...

Reads OIDs through the snmp plugin, with its sessions, credentials and error classification,
and prints each varbind as net-snmp's tools do (`snmpget -On`, `snmpbulkwalk -On`):
  .1.3.6.1.2.1.1.5.0 = STRING: "router-1"
AGENT is HOST, HOST:PORT, [IPv6]:PORT, udp:HOST:PORT or udp6:[IPv6]:PORT. OIDs are numeric (no
MIB files are read); walk without an OID walks 1.3.6.1.2.1.

options (as net-snmp's):
  -v 1|2c|3            SNMP version (default 2c)
  -c COMMUNITY         v1/v2c community
  -u USER              v3 security name
  -l LEVEL             v3 noAuthNoPriv, authNoPriv or authPriv (default: from the passwords)
  -a PROTOCOL          v3 MD5, SHA (default), SHA-224, SHA-256, SHA-384, SHA-512
  -A PASSWORD          v3 authentication password
  -x PROTOCOL          v3 DES, AES (default), AES-192, AES-256
  -X PASSWORD          v3 privacy password
  -n CONTEXT           v3 context name
  -t SECONDS           wait for one answer (default 1)
  -r RETRIES           resends of an unanswered request (default 2)
  -Cr N                GETBULK max-repetitions of a walk (default 10)
  -On                  accepted; OIDs are always printed numerically
A value of -c, -A or -X written as ${env:NAME} or ${file:PATH} is read from there, as a
credential reference, and stays off the command line.

more options:
  --timeout DURATION   the whole read's deadline (default 60s; retries end a dead agent sooner)
  --json               JSON lines: each varbind as an snmp.varbind event, then the target
  --config FILE        the snmp plugin's settings and the credentials from a configuration
  --plugin-dir DIR     look for plugins in DIR first (repeatable)
  --log-level LEVEL    debug, info, warn (default) or error, on stderr

exit status: 0 a value was read, 1 the agent failed or had none of the OIDs, 2 usage error
)";

// HOST, HOST:PORT, [V6]:PORT, udp:..., udp6:... -> host (IPv6 bracketed) and port ("" = 161).
bool split_agent(std::string a, std::string& host, std::string& port) {
  for (const char* prefix : {"udp:", "udp6:"})
    if (a.rfind(prefix, 0) == 0) a = a.substr(std::string_view(prefix).size());
  if (a.rfind("tcp:", 0) == 0 || a.rfind("tcp6:", 0) == 0 || a.empty()) return false;
  if (a.front() == '[') {
    const auto close = a.find(']');
    if (close == std::string::npos || close == 1) return false;
    host = a.substr(0, close + 1);
    if (close + 1 == a.size()) return true;
    if (a[close + 1] != ':') return false;
    port = a.substr(close + 2);
  } else if (const auto colon = a.find(':'); colon != std::string::npos && a.rfind(':') == colon) {
    host = a.substr(0, colon);
    port = a.substr(colon + 1);
  } else {
    host = a;  // a name, an IPv4 address, or a bare IPv6 address
  }
  if (host.empty()) return false;
  if (!port.empty() && port.find_first_not_of("0123456789") != std::string::npos) return false;
  return true;
}

bool numeric_oid(std::string_view s) {
  if (!s.empty() && s.front() == '.') s.remove_prefix(1);
  if (s.empty() || s.back() == '.' || s.front() == '.') return false;
  bool digit = false;
  for (const char c : s) {
    if (c == '.') {
      if (!digit) return false;
      digit = false;
    } else if (c >= '0' && c <= '9') {
      digit = true;
    } else {
      return false;
    }
  }
  return true;
}

}  // namespace

outpost::CommandPlan command(std::span<const std::string_view> argv) {
  using outpost::CommandPlan;
  const std::size_t argc = argv.size();
  if (argc >= 1 && (argv[0] == "-h" || argv[0] == "--help"))
    return CommandPlan::usage(kSnmpUsage, 0);
  if (argc < 1 || (argv[0] != "get" && argv[0] != "walk")) return CommandPlan::usage(kSnmpUsage, 2);
  const std::string mode(argv[0]);
  CommandPlan plan;
  plan.run_poll = true;
  plan.print_kind = "snmp.varbind";
  plan.timeout_s = 60;
  std::vector<std::string> positional;
  auto usage_error = [](const std::string& msg) {
    return CommandPlan::usage("outpost snmp: " + msg + "\n", 2);
  };
  // A password or community given as a reference goes to the plugin's *_ref parameter.
  auto secret = [&plan](const std::string& key, const std::string& v) {
    plan.params.emplace_back(v.rfind("${", 0) == 0 ? key + "_ref" : key, v);
  };
  for (std::size_t i = 1; i < argc; ++i) {
    const std::string o(argv[i]);
    auto next = [&](std::string& into) {
      if (i + 1 >= argc) return false;
      into = std::string(argv[++i]);
      return true;
    };
    std::string v;
    if (o == "-h" || o == "--help") return CommandPlan::usage(kSnmpUsage, 0);
    if (o.rfind("-O", 0) == 0 && o.size() > 2) {
      if (o.find_first_not_of("n", 2) != std::string::npos)
        return usage_error("only -On is understood of the -O options (output is always numeric)");
      continue;
    }
    if (o.rfind("-C", 0) == 0) {  // -Cr10 / -Cr 10
      if (o.size() < 3 || o[2] != 'r')
        return usage_error("only -Cr N is understood of the -C options");
      v = o.substr(3);
      if (v.empty() && !next(v)) return usage_error("-Cr needs a value");
      plan.params.emplace_back("max_repetitions", v);
      continue;
    }
    if (o.size() >= 2 && o[0] == '-' &&
        std::string_view("vculaAxXntr").find(o[1]) != std::string_view::npos) {
      const char flag = o[1];
      if (o.size() > 2)
        v = o.substr(2);  // -v2c, -cpublic
      else if (!next(v))
        return usage_error(std::string("-") + flag + " needs a value");
      switch (flag) {
        case 'v':
          plan.params.emplace_back("version", v);
          break;
        case 'c':
          secret("community", v);
          break;
        case 'u':
          plan.params.emplace_back("user", v);
          break;
        case 'l':
          plan.params.emplace_back("security_level", v);
          break;
        case 'a':
          plan.params.emplace_back("auth_protocol", v);
          break;
        case 'A':
          secret("auth_password", v);
          break;
        case 'x':
          plan.params.emplace_back("priv_protocol", v);
          break;
        case 'X':
          secret("priv_password", v);
          break;
        case 'n':
          plan.params.emplace_back("context", v);
          break;
        case 't': {
          // net-snmp's -t is in seconds; a duration with a unit is taken as well.
          const bool bare = v.find_first_not_of("0123456789.") == std::string::npos;
          plan.params.emplace_back("request_timeout", bare ? v + "s" : v);
          break;
        }
        case 'r':
          plan.params.emplace_back("retries", v);
          break;
        default:
          break;
      }
      continue;
    }
    if (!o.empty() && o[0] == '-')
      return usage_error("unknown option " + o + " (see outpost snmp --help)");
    positional.push_back(o);
  }
  if (positional.empty()) return usage_error("no agent given (see outpost snmp --help)");
  std::string host, port;
  if (!split_agent(positional[0], host, port))
    return usage_error("not an agent address: '" + positional[0] +
                       "' (HOST, HOST:PORT, [IPv6]:PORT)");
  if (!port.empty()) plan.params.emplace_back("port", port);
  std::vector<std::string> oids(positional.begin() + 1, positional.end());
  if (oids.empty()) {
    if (mode == "get") return usage_error("get: no OID given");
    oids.push_back("1.3.6.1.2.1");
  }
  for (auto& oid : oids) {
    if (!numeric_oid(oid))
      return usage_error("'" + oid +
                         "' is not a numeric OID (no MIB files are read: write 1.3.6.1.2.1.1.5.0, "
                         "not sysName.0)");
    if (oid.front() == '.') oid.erase(0, 1);
    plan.params.emplace_back(mode, oid);
  }
  plan.targets = {host};
  return plan;
}

}  // namespace outpost::snmp
