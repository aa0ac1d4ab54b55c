// The command-line session layer the device plugins share (configuration backup and push, the
// looking glass, SSH-based Linux polling, the Palo Alto hybrid): an interactive session on a
// device's CLI over SSH v2 (libssh), driven by a per-vendor Driver that knows the device's
// prompt, how to turn paging off, how to reach privileged mode, what its errors look like and
// which lines of its configuration are volatile or secret.
//
// libssh over libssh2: libssh has a known-hosts API that tells an unknown key from a changed one,
// algorithm lists per session (so weak ones are refused here, not by a global config), keyboard-
// interactive logins, and no SSH-1 at all; both are in Debian, libssh is the one maintained with
// a server side and a test suite against OpenSSH.
//
// Sessions block (each call has a timeout): a plugin runs them on worker threads of its own,
// never on the poller runtime's I/O thread.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <regex>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace outpost::lib::cli {

// How a failure should be read; what() says it in words, without secrets.
enum class Status : uint8_t {
  unreachable,       // no TCP connection (refused, no route, DNS)
  host_key_unknown,  // the device's key is not in the known-hosts store (and TOFU is off)
  host_key_changed,  // the device shows another key than the store holds: possible attack
  weak_algorithm,    // no algorithm both sides accept (the device offers only weak ones)
  auth,              // credentials or the enable secret refused
  timeout,           // connect, login, prompt or a command took longer than allowed
  closed,            // the device closed the session
  too_large,         // output beyond the limit
  protocol,          // anything else the SSH library reports
};
std::string_view status_name(Status s);

struct Error : std::runtime_error {
  Error(Status s, const std::string& what) : std::runtime_error(what), status(s) {}
  Status status;
};

// A vendor's CLI. Regexes are ECMAScript, matched against one line (the last, for prompts);
// one a driver does not need is "(?!)", which never matches.
struct Driver {
  std::string name;
  std::regex prompt;                       // the CLI is ready for a command
  std::vector<std::string> setup;          // sent once after login (paging off, width)
  std::string enable;                      // privileged mode command; empty: none
  std::regex enable_prompt;                // privileged mode (checked after `enable`)
  std::regex password_prompt;              // asks for the enable secret
  std::regex pager;                        // a pager waiting ("--More--"): a space is sent
  std::regex error;                        // a line saying the command failed
  std::string show_config;                 // the running configuration
  std::vector<std::string> config_enter;   // to configuration mode
  std::vector<std::string> config_commit;  // in configuration mode: make the changes take effect
  std::vector<std::string> config_abort;   // in configuration mode: drop them (a line failed)
  std::vector<std::string> config_exit;    // back
  std::vector<std::string> save;           // make the running configuration the startup one
  std::vector<std::regex> volatile_lines;  // left out of stored configurations
  std::vector<std::pair<std::regex, std::string>> secrets;  // masked in stored configurations
};

// ios, nxos, junos, eos, panos, vtysh (FRRouting/Quagga), linux; nullptr when unknown.
const Driver* find_driver(std::string_view name);
std::vector<std::string> driver_names();

// The configuration as it is stored: volatile lines left out, secrets masked, line ends \n,
// trailing blanks trimmed.
std::string normalize_config(const Driver& d, std::string_view text);

struct HostKeyPolicy {
  std::string known_hosts;          // the store (OpenSSH known_hosts format); required
  bool trust_on_first_use = false;  // an unknown key is added (and logged) instead of refused
};

// Telnet sends everything, the password too, in clear: only for devices that can do nothing else
// (the plugin warns when a target uses it).
enum class Transport : uint8_t { ssh, telnet };

struct Options {
  Transport transport = Transport::ssh;
  std::string host;
  uint16_t port = 22;  // 23 for Telnet
  std::string user;
  std::string password;  // password or keyboard-interactive; empty: key only
  std::string key_file;  // private key (OpenSSH format); empty: password only
  std::string key_passphrase;
  std::string enable_secret;  // privileged mode; empty: stay unprivileged
  std::chrono::milliseconds connect_timeout{10'000};
  std::chrono::milliseconds command_timeout{30'000};
  std::size_t max_output = 16u << 20;  // one command's output
};

// What happened to the host key, for the caller to log.
enum class HostKey : uint8_t { known, added };

class Session {
 public:
  // Connects, checks the host key, logs in, opens the shell, waits for the prompt, runs the
  // driver's setup and, with an enable secret, enters privileged mode. Blocks up to the
  // timeouts; throws Error. Over Telnet there is no host key (the policy is not used): the
  // login and password prompts are answered instead.
  static std::unique_ptr<Session> open(const Options& o, const HostKeyPolicy& keys,
                                       const Driver& d);
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  // Runs one command: its output without the echoed command and the prompt after it. A pager
  // is answered; `timeout` bounds the whole command (default: Options::command_timeout).
  std::string run(std::string_view command,
                  std::optional<std::chrono::milliseconds> timeout = std::nullopt);
  // Whether `output` holds a line the driver reads as an error.
  bool failed(std::string_view output) const;

  HostKey host_key() const { return host_key_; }
  std::string_view host_key_fingerprint() const { return fingerprint_; }  // SHA256:...
  std::string_view banner() const { return banner_; }  // what came before the first prompt
  const std::string& last_prompt() const { return last_prompt_; }  // e.g. "router#"

  struct Impl;  // the libssh session and channel (opaque)

 private:
  Session() = default;
  std::unique_ptr<Impl> impl_;
  const Driver* driver_ = nullptr;
  Options opts_;
  HostKey host_key_ = HostKey::known;
  std::string fingerprint_, banner_, last_prompt_;
  std::string read_until_prompt(std::chrono::steady_clock::time_point deadline,
                                const std::regex* also = nullptr);
  void send(std::string_view text);
  void telnet_login();
};

// One command on a host with a POSIX shell, without prompts or a terminal (an SSH exec channel):
// what it wrote to stdout and stderr (each bounded by max_output) and its exit status (-1 when
// the server sent none). Connects, checks the host key and logs in as Session::open does.
struct ExecResult {
  std::string out, err;
  int exit_status = -1;
  HostKey host_key = HostKey::known;
};
ExecResult exec(const Options& o, const HostKeyPolicy& keys, std::string_view command);

}  // namespace outpost::lib::cli
