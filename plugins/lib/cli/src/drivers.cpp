// The vendors' CLIs as data, and what a stored configuration leaves out or masks.
#include <map>
#include <outpost_lib/cli.hpp>

namespace outpost::lib::cli {

namespace {

using std::regex;
constexpr auto kRe = std::regex::ECMAScript | std::regex::optimize;
const char* const kNever = "(?!)";

regex re(const char* pattern) { return regex(pattern, kRe); }

// "hostname>" or "hostname#", with a mode in parentheses: "hostname(config-if)#".
const char* const kCiscoPrompt = R"(^[A-Za-z0-9_.:/@-]+(\([A-Za-z0-9_.:/ -]+\))?[>#] ?$)";
const char* const kPassword = R"([Pp]assword: ?$)";
const char* const kMore = R"(-+ ?\(?[Mm]ore\b.*$)";

std::map<std::string, Driver, std::less<>> make_drivers() {
  std::map<std::string, Driver, std::less<>> m;
  {
    Driver d;
    d.name = "ios";  // Cisco IOS and IOS-XE
    d.prompt = re(kCiscoPrompt);
    d.setup = {"terminal length 0", "terminal width 0"};
    d.enable = "enable";
    d.enable_prompt = re("#\\s*$");
    d.password_prompt = re(kPassword);
    d.pager = re(kMore);
    d.error = re("^% (Invalid|Incomplete|Ambiguous|Unknown|Bad)");
    d.show_config = "show running-config";
    d.config_enter = {"configure terminal"};
    d.config_exit = {"end"};
    d.save = {"write memory"};
    d.volatile_lines = {re("^Building configuration"), re("^Current configuration ?: "),
                        re("^! (Last configuration change|NVRAM config last updated) at "),
                        re("^! No configuration change since last restart"),
                        re("^ntp clock-period ")};
    d.secrets = {
        {re(R"(^(\s*enable (secret|password)( level \d+)?( \d+)? )\S+)"), "$1<removed>"},
        // "secret 9 HASH" (IOS), "secret sha512 HASH" (EOS): the hash, not its type.
        {re(R"(^(\s*username \S+ .*(secret|password)( \d+| sha512)? )\S+)"), "$1<removed>"},
        {re(R"(^(\s*snmp-server community )\S+)"), "$1<removed>"},
        {re(R"(^(\s*(password|key|key-string|authentication-key)( \d+)? )\S+)"), "$1<removed>"},
        {re(R"(^(\s*(tacacs-server|radius-server) .*key( \d+)? )\S+)"), "$1<removed>"},
        {re(R"(^(\s*ip ospf (authentication-key|message-digest-key \d+ md5)( \d+)? )\S+)"),
         "$1<removed>"}};
    m[d.name] = d;
  }
  {
    Driver d = m["ios"];
    d.name = "nxos";  // Cisco NX-OS
    d.setup = {"terminal length 0", "terminal width 511"};
    d.volatile_lines = {re("^!Command: "), re("^!Time: "),
                        re("^!Running configuration last done at"),
                        re("^!No configuration change since last restart")};
    d.secrets.push_back({re(R"(^(\s*snmp-server user \S+ \S+ auth \S+ )\S+( priv (aes-128 )?)\S+)"),
                         "$1<removed>$2<removed>"});
    d.save = {"copy running-config startup-config"};
    m[d.name] = d;
  }
  {
    Driver d = m["ios"];
    d.name = "eos";  // Arista EOS
    d.setup = {"terminal length 0", "terminal width 32767"};
    d.volatile_lines = {re("^! Command: "), re("^! (Startup-config last modified|device: ).*"),
                        re("^! boot system ")};
    m[d.name] = d;
  }
  {
    Driver d;
    d.name = "junos";  // Juniper Junos: "user@host>" operational, "user@host#" configuration
    d.prompt = re(R"(^([A-Za-z0-9_.-]+@)?[A-Za-z0-9_.-]+[>#%] ?$)");
    d.setup = {"set cli screen-length 0", "set cli screen-width 0",
               "set cli complete-on-space off"};
    d.enable_prompt = re(kNever);
    d.password_prompt = re(kNever);
    d.pager = re(R"(^---\(more( \d+%)?\)---)");
    d.error = re(R"(^(error: |syntax error|unknown command))");
    d.show_config = "show configuration | display omit";
    d.config_enter = {"configure private"};
    d.config_commit = {"commit"};
    d.config_abort = {"rollback 0"};
    d.config_exit = {"exit configuration-mode"};
    d.volatile_lines = {re("^## Last (commit|changed): "), re("^## Image name: ")};
    d.secrets = {
        {re(R"###(((encrypted-password|secret|authentication-key|pre-shared-key ascii-text|community|key) ")[^"]+)###"),
         "$1<removed>"},
        {re(R"(^(\s*community )\S+( \{)?$)"), "$1<removed>$2"}};
    m[d.name] = d;
  }
  {
    Driver d;
    d.name = "panos";  // Palo Alto PAN-OS: "admin@fw1>" operational, "admin@fw1#" configure
    d.prompt = re(R"(^([A-Za-z0-9_.-]+@)?[A-Za-z0-9_.()-]+[>#] ?$)");
    d.setup = {"set cli pager off", "set cli confirmation-prompt off",
               "set cli config-output-format set"};
    d.enable_prompt = re(kNever);
    d.password_prompt = re(kNever);
    d.pager = re(R"(^lines \d+-\d+)");
    d.error = re(R"(^(Invalid syntax|Unknown command|Server error|Validation Error))");
    d.show_config = "show config running";
    d.config_enter = {"configure"};
    d.config_commit = {"commit"};  // PAN-OS commits from configuration mode only
    d.config_abort = {"revert config"};
    d.config_exit = {"exit"};
    d.volatile_lines = {re(R"(^\s*<?(last-commit|uptime|time)\b)")};
    d.secrets = {
        {re(R"(((phash|password-hash|secret|pre-shared-key key|key) )\S+)"), "$1<removed>"},
        {re(R"(<(phash|secret|key)>[^<]*</)"), "<$1><removed></"}};
    m[d.name] = d;
  }
  {
    Driver d;
    d.name = "vtysh";  // FRRouting and Quagga
    d.prompt = re(R"(^[A-Za-z0-9_.-]+(\([A-Za-z0-9_.: -]+\))?[>#] ?$)");
    d.setup = {"terminal length 0"};
    d.enable = "enable";
    d.enable_prompt = re("#\\s*$");
    d.password_prompt = re(kPassword);
    d.pager = re(kMore);
    d.error = re("^% (Unknown|Command incomplete|Ambiguous|Invalid|Configuration)");
    d.show_config = "show running-config";
    d.config_enter = {"configure terminal"};
    d.config_exit = {"end"};
    d.save = {"write memory"};
    d.volatile_lines = {re("^Building configuration"), re("^Current configuration:")};
    d.secrets = {{re(R"(^(\s*(password|enable password) )\S+)"), "$1<removed>"},
                 {re(R"(^(\s*neighbor \S+ password )\S+)"), "$1<removed>"},
                 {re(R"(^(\s*ip ospf message-digest-key \d+ md5 )\S+)"), "$1<removed>"}};
    m[d.name] = d;
  }
  {
    Driver d;
    d.name = "linux";  // a POSIX shell; the prompt is set to one we recognise
    d.prompt = re(R"((^OUTPOST-CLI> $)|([$#>] ?$))");
    d.setup = {"unset PROMPT_COMMAND; PS1='OUTPOST-CLI> '; PS2=''; export TERM=dumb LC_ALL=C"};
    d.enable_prompt = re(kNever);
    d.password_prompt = re(kNever);
    d.pager = re(kNever);
    d.error = re(R"((command not found|No such file or directory|Permission denied)$)");
    m[d.name] = d;
  }
  return m;
}

const std::map<std::string, Driver, std::less<>>& drivers() {
  static const auto m = make_drivers();
  return m;
}

}  // namespace

const Driver* find_driver(std::string_view name) {
  auto it = drivers().find(name);
  return it == drivers().end() ? nullptr : &it->second;
}

std::vector<std::string> driver_names() {
  std::vector<std::string> out;
  for (const auto& [n, d] : drivers()) out.push_back(n);
  return out;
}

std::string normalize_config(const Driver& d, std::string_view text) {
  std::string out;
  std::size_t at = 0;
  while (at < text.size()) {
    auto nl = text.find('\n', at);
    if (nl == std::string_view::npos) nl = text.size();
    std::string line(text.substr(at, nl - at));
    at = nl + 1;
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ' || line.back() == '\t'))
      line.pop_back();
    bool drop = false;
    for (const auto& v : d.volatile_lines)
      if (std::regex_search(line, v)) {
        drop = true;
        break;
      }
    if (drop) continue;
    for (const auto& [pattern, with] : d.secrets) line = std::regex_replace(line, pattern, with);
    out += line;
    out += '\n';
  }
  while (out.size() >= 2 && out[out.size() - 1] == '\n' && out[out.size() - 2] == '\n')
    out.pop_back();
  return out;
}

std::string_view status_name(Status s) {
  switch (s) {
    case Status::unreachable:
      return "unreachable";
    case Status::host_key_unknown:
      return "host_key_unknown";
    case Status::host_key_changed:
      return "host_key_changed";
    case Status::weak_algorithm:
      return "weak_algorithm";
    case Status::auth:
      return "auth";
    case Status::timeout:
      return "timeout";
    case Status::closed:
      return "closed";
    case Status::too_large:
      return "too_large";
    case Status::protocol:
      return "protocol";
  }
  return "?";
}

}  // namespace outpost::lib::cli
