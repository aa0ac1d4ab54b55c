// An interactive CLI session over SSH v2 with libssh: connect, host key, login, shell, prompts.
#include <fcntl.h>
#include <libssh/libssh.h>
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <outpost_lib/cli.hpp>
#include <thread>

namespace outpost::lib::cli {

namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

// Only what current OpenSSH, IOS-XE, NX-OS, Junos, EOS and PAN-OS agree on: no SHA-1 key
// exchange or MACs, no CBC or arcfour ciphers, no DSA keys. A device that offers nothing else is
// refused (weak_algorithm) rather than talked to weakly.
constexpr const char* kKex =
    "curve25519-sha256,curve25519-sha256@libssh.org,ecdh-sha2-nistp256,ecdh-sha2-nistp384,"
    "ecdh-sha2-nistp521,diffie-hellman-group16-sha512,diffie-hellman-group18-sha512,"
    "diffie-hellman-group14-sha256";
constexpr const char* kHostKeys =
    "ssh-ed25519,ecdsa-sha2-nistp256,ecdsa-sha2-nistp384,ecdsa-sha2-nistp521,rsa-sha2-512,"
    "rsa-sha2-256";
constexpr const char* kCiphers =
    "chacha20-poly1305@openssh.com,aes256-gcm@openssh.com,aes128-gcm@openssh.com,aes256-ctr,"
    "aes192-ctr,aes128-ctr";
constexpr const char* kMacs =
    "hmac-sha2-256-etm@openssh.com,hmac-sha2-512-etm@openssh.com,hmac-sha2-256,hmac-sha2-512";

std::string where(const Options& o) {
  return std::string(o.transport == Transport::telnet ? "Telnet" : "SSH") + " to " + o.host +
         " port " + std::to_string(o.port);
}

// The text as lines: \r\n and lone \r become \n, terminal escape sequences (colours, cursor
// moves some CLIs send) and NULs are dropped, backspaces erase.
void clean_into(std::string& out, std::string_view in) {
  for (std::size_t i = 0; i < in.size(); ++i) {
    const char c = in[i];
    if (c == '\x1b') {  // ESC [ ... final byte, or ESC and one more
      if (i + 1 < in.size() && in[i + 1] == '[') {
        i += 2;
        while (i < in.size() && !(in[i] >= '@' && in[i] <= '~')) ++i;
      } else {
        ++i;
      }
      continue;
    }
    // A carriage return is kept until the next character says what it was: before a newline
    // (or another one) the end of a line; alone, the return to the line's start that a pager
    // uses to wipe its prompt ("\r" spaces "\r"), so what follows overwrites that line.
    if (c == '\r') {
      if (out.empty() || out.back() != '\r') out += '\r';
      continue;
    }
    if (!out.empty() && out.back() == '\r') {
      out.pop_back();
      if (c != '\n') {
        const auto nl = out.rfind('\n');
        out.resize(nl == std::string::npos ? 0 : nl + 1);
      }
    }
    if (c == '\b') {
      if (!out.empty() && out.back() != '\n') out.pop_back();
      continue;
    }
    if (c == '\0' || c == '\a') continue;
    out += c;
  }
}

std::string_view last_line(std::string_view text) {
  const auto nl = text.rfind('\n');
  return nl == std::string_view::npos ? text : text.substr(nl + 1);
}

}  // namespace

struct Session::Impl {
  ssh_session s = nullptr;
  ssh_channel ch = nullptr;
  int fd = -1;  // Telnet: the TCP connection
  // Telnet's option negotiation (RFC 854/855), between the data bytes.
  enum class Iac : uint8_t { data, iac, will, wont, do_, dont, sb, sb_iac } iac = Iac::data;

  // Up to n bytes of data within timeout_ms: > 0 read, 0 nothing yet, -1 the peer closed.
  int read(char* buf, std::size_t n, int timeout_ms, const Options& o) {
    if (fd < 0) {
      const int got = ssh_channel_read_timeout(ch, buf, static_cast<uint32_t>(n), 0, timeout_ms);
      if (got == SSH_ERROR) throw Error(Status::closed, where(o) + ": " + ssh_get_error(s));
      if (got == 0 && (ssh_channel_is_eof(ch) != 0 || ssh_channel_is_closed(ch) != 0)) return -1;
      return got;
    }
    pollfd p{fd, POLLIN, 0};
    const int r = ::poll(&p, 1, timeout_ms);
    if (r < 0 && errno != EINTR)
      throw Error(Status::closed, where(o) + ": " + std::strerror(errno));
    if (r <= 0) return 0;
    unsigned char raw[8192];
    const ssize_t got = ::recv(fd, raw, std::min(n, sizeof raw), 0);
    if (got == 0) return -1;
    if (got < 0) {
      if (errno == EAGAIN || errno == EINTR) return 0;
      throw Error(Status::closed, where(o) + ": " + std::strerror(errno));
    }
    std::size_t out = 0;
    std::string reply;
    for (ssize_t i = 0; i < got; ++i) {
      const unsigned char c = raw[i];
      switch (iac) {
        case Iac::data:
          if (c == 255)
            iac = Iac::iac;
          else
            buf[out++] = static_cast<char>(c);
          break;
        case Iac::iac:
          iac = c == 251   ? Iac::will
                : c == 252 ? Iac::wont
                : c == 253 ? Iac::do_
                : c == 254 ? Iac::dont
                : c == 250 ? Iac::sb
                           : Iac::data;
          if (c == 255) buf[out++] = static_cast<char>(c);  // an escaped 255
          break;
        case Iac::will:  // the server will echo and suppress go-ahead: yes; anything else: no
          reply += {'\xff', (c == 1 || c == 3) ? '\xfd' : '\xfe', static_cast<char>(c)};
          iac = Iac::data;
          break;
        case Iac::do_:  // we only suppress go-ahead; no terminal type, window size, ...
          reply += {'\xff', c == 3 ? '\xfb' : '\xfc', static_cast<char>(c)};
          iac = Iac::data;
          break;
        case Iac::wont:
        case Iac::dont:
          iac = Iac::data;
          break;
        case Iac::sb:
          if (c == 255) iac = Iac::sb_iac;
          break;
        case Iac::sb_iac:
          iac = c == 240 ? Iac::data : Iac::sb;
          break;
      }
    }
    if (!reply.empty()) write_raw(reply, o);
    return static_cast<int>(out);
  }

  void write(std::string_view text, const Options& o) {
    if (fd < 0) {
      std::size_t at = 0;
      while (at < text.size()) {
        const int n =
            ssh_channel_write(ch, text.data() + at, static_cast<uint32_t>(text.size() - at));
        if (n <= 0) throw Error(Status::closed, where(o) + ": the session closed");
        at += static_cast<std::size_t>(n);
      }
      return;
    }
    std::string out;  // NVT: a line ends CR LF; a data 255 is doubled
    for (char c : text) {
      if (c == '\n')
        out += "\r\n";
      else if (c == '\xff')
        out += "\xff\xff";
      else
        out += c;
    }
    write_raw(out, o);
  }

  void write_raw(std::string_view out, const Options& o) {
    std::size_t at = 0;
    while (at < out.size()) {
      const ssize_t n = ::send(fd, out.data() + at, out.size() - at, MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) throw Error(Status::closed, where(o) + ": the session closed");
      at += static_cast<std::size_t>(n);
    }
  }

  ~Impl() {
    if (fd >= 0) ::close(fd);
    if (ch != nullptr) {
      ssh_channel_close(ch);
      ssh_channel_free(ch);
    }
    if (s != nullptr) {
      ssh_disconnect(s);
      ssh_free(s);
    }
  }
};

Session::~Session() = default;

// Connects, checks the host key against the store, logs in: the session, ready for a channel.
static void connect_login(Session::Impl& impl, const Options& o, const HostKeyPolicy& keys,
                          std::string& fingerprint, HostKey& host_key) {
  if (keys.known_hosts.empty())
    throw Error(Status::host_key_unknown,
                "no known-hosts store configured: host keys cannot be verified");
  ssh_session s = ssh_new();
  if (s == nullptr) throw Error(Status::protocol, "libssh: out of memory");
  impl.s = s;

  const long timeout_s = std::max<long>(
      1, static_cast<long>(
             std::chrono::duration_cast<std::chrono::seconds>(o.connect_timeout).count()));
  const unsigned int port = o.port;
  bool no = false;
  const std::pair<ssh_options_e, const void*> settings[] = {
      {SSH_OPTIONS_HOST, o.host.c_str()},
      {SSH_OPTIONS_PORT, &port},
      {SSH_OPTIONS_USER, o.user.c_str()},
      {SSH_OPTIONS_TIMEOUT, &timeout_s},
      {SSH_OPTIONS_PROCESS_CONFIG, &no},  // ~/.ssh/config and /etc/ssh/ssh_config play no part
      {SSH_OPTIONS_KNOWNHOSTS, keys.known_hosts.c_str()},
      {SSH_OPTIONS_GLOBAL_KNOWNHOSTS, "/dev/null"},
      // No SSH_OPTIONS_STRICTHOSTKEYCHECK: turned off, libssh writes an unknown key to the store
      // by itself during the connect. The store's answer is judged below.
      {SSH_OPTIONS_KEY_EXCHANGE, kKex},
      {SSH_OPTIONS_HOSTKEYS, kHostKeys},
      {SSH_OPTIONS_CIPHERS_C_S, kCiphers},
      {SSH_OPTIONS_CIPHERS_S_C, kCiphers},
      {SSH_OPTIONS_HMAC_C_S, kMacs},
      {SSH_OPTIONS_HMAC_S_C, kMacs},
  };
  for (const auto& [opt, value] : settings)
    if (ssh_options_set(s, opt, value) != SSH_OK)
      throw Error(Status::protocol, std::string("libssh option: ") + ssh_get_error(s));

  if (ssh_connect(s) != SSH_OK) {
    const std::string e = ssh_get_error(s);
    if (e.find("no match for method") != std::string::npos ||
        e.find("kex error") != std::string::npos)
      throw Error(Status::weak_algorithm,
                  where(o) + ": no algorithm both sides accept (" + e + ")");
    if (e.find("imeout") != std::string::npos || e.find("imed out") != std::string::npos)
      throw Error(Status::timeout, where(o) + ": " + e);
    throw Error(Status::unreachable, where(o) + ": " + e);
  }

  // The host key, against the store.
  ssh_key key = nullptr;
  if (ssh_get_server_publickey(s, &key) != SSH_OK)
    throw Error(Status::protocol, where(o) + ": no host key");
  unsigned char* hash = nullptr;
  std::size_t hlen = 0;
  if (ssh_get_publickey_hash(key, SSH_PUBLICKEY_HASH_SHA256, &hash, &hlen) == SSH_OK) {
    char* fp = ssh_get_fingerprint_hash(SSH_PUBLICKEY_HASH_SHA256, hash, hlen);
    if (fp != nullptr) fingerprint = fp;
    ssh_string_free_char(fp);
    ssh_clean_pubkey_hash(&hash);
  }
  ssh_key_free(key);
  switch (ssh_session_is_known_server(s)) {
    case SSH_KNOWN_HOSTS_OK:
      break;
    case SSH_KNOWN_HOSTS_CHANGED:
    case SSH_KNOWN_HOSTS_OTHER:
      throw Error(Status::host_key_changed,
                  where(o) + ": the host key changed (now " + fingerprint +
                      "): another device, a reinstall, or an attack; remove the old key from the "
                      "known-hosts store once verified");
    case SSH_KNOWN_HOSTS_UNKNOWN:
    case SSH_KNOWN_HOSTS_NOT_FOUND:
      if (!keys.trust_on_first_use)
        throw Error(Status::host_key_unknown,
                    where(o) + ": host key " + fingerprint +
                        " is not in the known-hosts store (add it, or allow trust on first use)");
      if (ssh_session_update_known_hosts(s) != SSH_OK)
        throw Error(Status::host_key_unknown, where(o) + ": cannot add the host key to " +
                                                  keys.known_hosts + ": " + ssh_get_error(s));
      host_key = HostKey::added;
      break;
    default:
      throw Error(Status::protocol, where(o) + ": known-hosts store: " + ssh_get_error(s));
  }

  // Login: a key first, then password, then keyboard-interactive with the password.
  bool in = false;
  if (!o.key_file.empty()) {
    ssh_key priv = nullptr;
    if (ssh_pki_import_privkey_file(o.key_file.c_str(),
                                    o.key_passphrase.empty() ? nullptr : o.key_passphrase.c_str(),
                                    nullptr, nullptr, &priv) != SSH_OK)
      throw Error(Status::auth, "SSH key " + o.key_file + ": cannot be read (or wrong passphrase)");
    const int rc = ssh_userauth_publickey(s, nullptr, priv);
    ssh_key_free(priv);
    if (rc == SSH_AUTH_ERROR) throw Error(Status::closed, where(o) + ": " + ssh_get_error(s));
    in = rc == SSH_AUTH_SUCCESS;
  }
  if (!in && !o.password.empty()) {
    int rc = ssh_userauth_password(s, nullptr, o.password.c_str());
    if (rc == SSH_AUTH_ERROR) throw Error(Status::closed, where(o) + ": " + ssh_get_error(s));
    in = rc == SSH_AUTH_SUCCESS;
    if (!in) {
      // Devices with only keyboard-interactive (many network OSes) ask for the password there.
      rc = ssh_userauth_kbdint(s, nullptr, nullptr);
      for (int round = 0; rc == SSH_AUTH_INFO && round < 4; ++round) {
        const int n = ssh_userauth_kbdint_getnprompts(s);
        for (int i = 0; i < n; ++i)
          if (ssh_userauth_kbdint_setanswer(s, static_cast<unsigned>(i), o.password.c_str()) < 0)
            break;
        rc = ssh_userauth_kbdint(s, nullptr, nullptr);
      }
      in = rc == SSH_AUTH_SUCCESS;
    }
  }
  if (!in) throw Error(Status::auth, where(o) + ": login of " + o.user + " refused");
}

std::unique_ptr<Session> Session::open(const Options& o, const HostKeyPolicy& keys,
                                       const Driver& d) {
  std::unique_ptr<Session> self(new Session());
  self->impl_ = std::make_unique<Impl>();
  self->driver_ = &d;
  self->opts_ = o;
  if (o.transport == Transport::telnet) {
    self->telnet_login();
  } else {
    connect_login(*self->impl_, o, keys, self->fingerprint_, self->host_key_);
    ssh_session s = self->impl_->s;

    ssh_channel ch = ssh_channel_new(s);
    if (ch == nullptr) throw Error(Status::protocol, "SSH: no channel");
    self->impl_->ch = ch;
    if (ssh_channel_open_session(ch) != SSH_OK ||
        ssh_channel_request_pty_size(ch, "vt100", 511, 50) != SSH_OK ||
        ssh_channel_request_shell(ch) != SSH_OK)
      throw Error(Status::closed, where(o) + ": no shell: " + ssh_get_error(s));
    self->banner_ = self->read_until_prompt(Clock::now() + o.connect_timeout);
  }
  for (const auto& cmd : d.setup) (void)self->run(cmd);
  if (!o.enable_secret.empty() && !d.enable.empty()) {
    self->send(d.enable + "\n");
    const auto deadline = Clock::now() + o.command_timeout;
    // read_until_prompt leaves the prompt it stopped at out of its text: "Password:" is there.
    (void)self->read_until_prompt(deadline, &d.password_prompt);
    if (std::regex_search(self->last_prompt(), d.password_prompt)) {
      self->send(o.enable_secret + "\n");
      (void)self->read_until_prompt(deadline);
    }
    if (!std::regex_search(self->last_prompt(), d.enable_prompt))
      throw Error(Status::auth, where(o) + ": the enable secret was refused");
  }
  return self;
}

void Session::send(std::string_view text) { impl_->write(text, opts_); }

std::string Session::read_until_prompt(Clock::time_point deadline, const std::regex* also) {
  const Driver& d = *driver_;
  std::string text;
  char buf[16384];
  bool prompt_seen = false;
  for (;;) {
    const auto now = Clock::now();
    if (now >= deadline)
      throw Error(Status::timeout, where(opts_) + ": no prompt within the time allowed (last: \"" +
                                       std::string(last_line(text)).substr(0, 80) + "\")");
    // Once a prompt showed, a short quiet spell confirms it is the end and not a line of output
    // that happens to look like one.
    const int wait_ms =
        prompt_seen ? 60
                    : static_cast<int>(std::min<long long>(
                          std::chrono::duration_cast<milliseconds>(deadline - now).count(), 1000));
    const int n = impl_->read(buf, sizeof buf, std::max(wait_ms, 1), opts_);
    if (n < 0) throw Error(Status::closed, where(opts_) + ": the device closed the session");
    if (n == 0) {
      if (prompt_seen) break;
      continue;
    }
    clean_into(text, std::string_view(buf, static_cast<std::size_t>(n)));
    if (text.size() > opts_.max_output)
      throw Error(Status::too_large,
                  where(opts_) + ": output beyond " + std::to_string(opts_.max_output) + " bytes");
    const std::string tail(last_line(text));
    if (!tail.empty() && std::regex_search(tail, d.pager)) {
      text.resize(text.size() - tail.size());
      send(" ");
      prompt_seen = false;
      continue;
    }
    prompt_seen =
        std::regex_search(tail, d.prompt) || (also != nullptr && std::regex_search(tail, *also));
  }
  last_prompt_ = std::string(last_line(text));
  text.resize(text.size() - last_prompt_.size());
  return text;
}

std::string Session::run(std::string_view command, std::optional<milliseconds> timeout) {
  send(std::string(command) + "\n");
  std::string out = read_until_prompt(Clock::now() + timeout.value_or(opts_.command_timeout));
  // The terminal echoed the command first.
  if (const auto nl = out.find('\n');
      nl != std::string::npos && out.substr(0, nl).find(command) != std::string::npos)
    out.erase(0, nl + 1);
  return out;
}

bool Session::failed(std::string_view output) const {
  std::size_t at = 0;
  while (at < output.size()) {
    auto nl = output.find('\n', at);
    if (nl == std::string_view::npos) nl = output.size();
    if (std::regex_search(std::string(output.substr(at, nl - at)), driver_->error)) return true;
    at = nl + 1;
  }
  return false;
}

void Session::telnet_login() {
  const Options& o = opts_;
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  const std::string port = std::to_string(o.port);
  if (const int rc = ::getaddrinfo(o.host.c_str(), port.c_str(), &hints, &res); rc != 0)
    throw Error(Status::unreachable, where(o) + ": " + ::gai_strerror(rc));
  std::string why = "no address";
  const auto deadline = Clock::now() + o.connect_timeout;
  for (addrinfo* a = res; a != nullptr && impl_->fd < 0; a = a->ai_next) {
    const int fd = ::socket(a->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) continue;
    if (::connect(fd, a->ai_addr, a->ai_addrlen) != 0 && errno != EINPROGRESS) {
      why = std::strerror(errno);
      ::close(fd);
      continue;
    }
    pollfd p{fd, POLLOUT, 0};
    const auto left = std::chrono::duration_cast<milliseconds>(deadline - Clock::now()).count();
    int err = ETIMEDOUT;
    if (::poll(&p, 1, static_cast<int>(std::max<long long>(left, 1))) == 1) {
      socklen_t len = sizeof err;
      ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
    }
    if (err != 0) {
      why = std::strerror(err);
      ::close(fd);
      continue;
    }
    impl_->fd = fd;
  }
  ::freeaddrinfo(res);
  if (impl_->fd < 0) throw Error(Status::unreachable, where(o) + ": " + why);

  // The login: the user at "login:"/"Username:", the password at "Password:"; then the prompt.
  static const std::regex kAsk(R"(([Ll]ogin|[Uu]ser ?[Nn]ame|[Pp]assword): ?$)");
  static const std::regex kPass(R"([Pp]assword: ?$)");
  static const std::regex kRefused(
      R"((Login incorrect|[Aa]uthentication failed|Access denied|% Bad passwords|Login invalid))");
  bool sent_user = false, sent_password = false;
  std::string seen;
  for (int step = 0; step < 6; ++step) {
    const std::string got = read_until_prompt(deadline, &kAsk);
    seen += got + last_prompt_;
    if (std::regex_search(seen, kRefused))
      throw Error(Status::auth, where(o) + ": login of " + o.user + " refused");
    if (std::regex_search(last_prompt_, kPass)) {
      if (sent_password) throw Error(Status::auth, where(o) + ": login of " + o.user + " refused");
      send(o.password + "\n");
      sent_password = true;
    } else if (std::regex_search(last_prompt_, kAsk)) {
      if (sent_user) throw Error(Status::auth, where(o) + ": login of " + o.user + " refused");
      send(o.user + "\n");
      sent_user = true;
    } else {
      banner_ = seen;
      return;  // the device's prompt
    }
  }
  throw Error(Status::auth, where(o) + ": no prompt after the login");
}

}  // namespace outpost::lib::cli

namespace outpost::lib::cli {

ExecResult exec(const Options& o, const HostKeyPolicy& keys, std::string_view command) {
  Session::Impl impl;
  ExecResult r;
  std::string fingerprint;
  connect_login(impl, o, keys, fingerprint, r.host_key);
  impl.ch = ssh_channel_new(impl.s);
  if (impl.ch == nullptr) throw Error(Status::protocol, "SSH: no channel");
  const std::string cmd(command);
  if (ssh_channel_open_session(impl.ch) != SSH_OK ||
      ssh_channel_request_exec(impl.ch, cmd.c_str()) != SSH_OK)
    throw Error(Status::closed, where(o) + ": cannot run a command: " + ssh_get_error(impl.s));
  const auto deadline = Clock::now() + o.command_timeout;
  char buf[16384];
  for (;;) {
    const auto now = Clock::now();
    if (now >= deadline)
      throw Error(Status::timeout, where(o) + ": the command ran longer than allowed");
    const int wait_ms = static_cast<int>(std::clamp<long long>(
        std::chrono::duration_cast<milliseconds>(deadline - now).count(), 1, 1000));
    bool any = false;
    for (int is_err = 0; is_err < 2; ++is_err) {
      const int n =
          ssh_channel_read_timeout(impl.ch, buf, sizeof buf, is_err, is_err ? 0 : wait_ms);
      if (n == SSH_ERROR) throw Error(Status::closed, where(o) + ": " + ssh_get_error(impl.s));
      if (n > 0) {
        (is_err ? r.err : r.out).append(buf, static_cast<std::size_t>(n));
        any = true;
      }
    }
    if (r.out.size() > o.max_output || r.err.size() > o.max_output)
      throw Error(Status::too_large,
                  where(o) + ": output beyond " + std::to_string(o.max_output) + " bytes");
    if (!any && ssh_channel_is_eof(impl.ch) != 0) break;
  }
  r.exit_status = ssh_channel_get_exit_status(impl.ch);
  return r;
}

}  // namespace outpost::lib::cli
