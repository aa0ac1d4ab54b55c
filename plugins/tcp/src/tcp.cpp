// TCP availability poller: connect to a port, optionally send a line and wait for an expected
// answer. Built on the shared poller runtime: one epoll thread drives every socket, so a poll of
// thousands of targets costs one file descriptor per in-flight connect, not a thread per target.
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <optional>
#include <outpost/sdk.hpp>
#include <outpost_lib/async_poller.hpp>

namespace {

using outpost::Error;

// Bounds what an expect check buffers: a banner or a status line is found well before this.
constexpr std::size_t kReadLimit = std::size_t{64} * 1024;
constexpr int64_t kMs = 1'000'000;
// Longer timeouts are pointless (the poll deadline cuts them) and would overflow nanoseconds.
constexpr double kMaxTimeoutSeconds = 86400.0;

class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  Fd(Fd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  Fd& operator=(Fd&& o) noexcept {
    if (this != &o) {
      reset();
      fd_ = std::exchange(o.fd_, -1);
    }
    return *this;
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() { reset(); }
  int get() const noexcept { return fd_; }
  int release() noexcept { return std::exchange(fd_, -1); }
  explicit operator bool() const noexcept { return fd_ >= 0; }
  void reset() noexcept {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  int fd_ = -1;
};

std::string errno_text(int err) {
  char buf[128];
  std::string s = ::strerror_r(err, buf, sizeof buf);  // GNU variant: thread-safe, returns char*
  if (!s.empty()) s[0] = static_cast<char>(std::tolower(static_cast<unsigned char>(s[0])));
  return s;
}

// "2s", "250ms", "1.5s": the detail strings operators read.
std::string format_seconds(int64_t ns) {
  const int64_t ms = (ns + kMs / 2) / kMs;
  if (ms % 1000 == 0) return std::to_string(ms / 1000) + "s";
  if (ms < 1000) return std::to_string(ms) + "ms";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3f", static_cast<double>(ms) / 1000.0);
  std::string s = buf;
  while (s.back() == '0') s.pop_back();
  return s + "s";
}

// YAML users write "GET / HTTP/1.0\r\n\r\n" in single quotes or plain scalars, so the escapes
// arrive literally; \xHH covers binary protocols.
std::string unescape(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '\\' || i + 1 == s.size()) {
      out += s[i];
      continue;
    }
    const char c = s[++i];
    switch (c) {
      case 'r':
        out += '\r';
        break;
      case 'n':
        out += '\n';
        break;
      case 't':
        out += '\t';
        break;
      case '0':
        out += '\0';
        break;
      case '\\':
        out += '\\';
        break;
      case 'x':
        if (i + 2 < s.size() && std::isxdigit(static_cast<unsigned char>(s[i + 1])) &&
            std::isxdigit(static_cast<unsigned char>(s[i + 2]))) {
          out += static_cast<char>(std::stoi(std::string(s.substr(i + 1, 2)), nullptr, 16));
          i += 2;
          break;
        }
        [[fallthrough]];
      default:
        out += '\\';
        out += c;
    }
  }
  return out;
}

using outpost::lib::Address;
using outpost::lib::AsyncPoller;
using outpost::lib::PollJob;

enum class Phase { kConnecting, kSending, kReading };

struct TcpJob final : PollJob {
  outpost::Labels labels;
  uint16_t port = 0;
  int64_t timeout_ns = 0;
  std::string send, expect, expect_raw;

  Phase phase = Phase::kConnecting;
  std::size_t next_addr = 0;
  std::string last_error;
  int fd = -1;  // watched: the runtime closes it
  int64_t attempt_ns = 0, connected_ns = 0;
  std::size_t sent = 0;
  std::string received;
};

// The protocol alone: connect (each address in turn), send, expect. Intake, names, slots,
// deadlines and the exactly-once promise are the runtime's (plugins/lib/async_poller).
class TcpMonitor final : public outpost::Poller, private AsyncPoller::Protocol {
 public:
  TcpMonitor(outpost::Host host, const outpost::Config& cfg)
      : host_(host), runtime_(host, *this, options(cfg)) {
    const double t = cfg.get_seconds("connect_timeout", 5.0);
    if (t <= 0) throw Error(OUTPOST_E_CONFIG, "timeout must be positive");
    default_timeout_ns_ = static_cast<int64_t>(std::min(t, kMaxTimeoutSeconds) * 1e9);
  }
  ~TcpMonitor() override { runtime_.stop(); }
  TcpMonitor(const TcpMonitor&) = delete;
  TcpMonitor& operator=(const TcpMonitor&) = delete;

  static std::vector<outpost_field> config_fields() {
    using outpost::field;
    std::vector<outpost_field> f = outpost::lib::async_poller_fields("256");
    f.push_back(field("connect_timeout", OUTPOST_FIELD_DURATION,
                      "Connect and exchange timeout of monitors that set none (the poll deadline "
                      "still bounds it)",
                      "5s"));
    f.push_back(
        field("source_address", OUTPOST_FIELD_STRING,
              "Local IP address to connect from; targets are reached over its family only"));
    return f;
  }
  static std::vector<outpost_field> target_fields() {
    using outpost::field;
    return {
        field("port", OUTPOST_FIELD_INT, "TCP port to connect to (1-65535)", "",
              OUTPOST_FIELD_REQUIRED),
        field("connect_timeout", OUTPOST_FIELD_DURATION,
              "Time allowed for connect plus send/expect; default: the plugin's timeout"),
        field("send", OUTPOST_FIELD_STRING,
              "Bytes to send once connected; \\r \\n \\t \\\\ \\xHH are understood"),
        field("expect", OUTPOST_FIELD_STRING,
              "Substring the response must contain (same escapes); read until found, closed, "
              "64 KiB or timeout"),
    };
  }

  void start() override { runtime_.start(); }
  void stop() override { runtime_.stop(); }

  void poll(const outpost::PollRequest& req) override {
    runtime_.submit(req, [this](const outpost::Target& t) { return make_job(t); });
  }

 private:
  outpost::lib::AsyncPollerOptions options(const outpost::Config& cfg) {
    auto o = outpost::lib::async_poller_options(cfg, "tcp", 256);
    if (auto src = cfg.find("source_address"); src && !src->empty()) {
      const auto a = Address::parse(Address::host_of(*src));
      if (!a)
        throw Error(OUTPOST_E_CONFIG, "source_address: not an IP address: " + std::string(*src));
      source_ = *a;
      o.family = a->family();  // targets are reached over the source's family only
    }
    o.socktype = SOCK_STREAM;
    return o;
  }

  std::unique_ptr<PollJob> make_job(const outpost::Target& t) const {
    const outpost::Config p = t.params();
    auto j = std::make_unique<TcpJob>();
    int64_t port = 0;
    try {
      if (!p.has("port")) throw Error(OUTPOST_E_CONFIG, "port is required");
      port = p.get_int("port", 0);
      if (port < 1 || port > 65535)
        throw Error(OUTPOST_E_CONFIG, "port " + std::to_string(port) + " out of range 1-65535");
      const double timeout =
          p.get_seconds("connect_timeout", static_cast<double>(default_timeout_ns_) / 1e9);
      if (timeout <= 0) throw Error(OUTPOST_E_CONFIG, "timeout must be positive");
      j->timeout_ns = static_cast<int64_t>(std::min(timeout, kMaxTimeoutSeconds) * 1e9);
    } catch (const Error& e) {
      throw Error(OUTPOST_E_CONFIG, e.what());  // a bad value is the operator's to fix
    }
    j->port = static_cast<uint16_t>(port);
    j->host = Address::host_of(t.address());
    j->send = unescape(p.get("send"));
    j->expect_raw = p.get("expect");
    j->expect = unescape(j->expect_raw);
    j->labels = t.labels({{"port", std::to_string(port)}});
    return j;
  }

  // ---- the protocol, on the runtime's I/O thread ------------------------------------------

  bool begin(PollJob& pj) override {
    auto& j = static_cast<TcpJob&>(pj);
    for (auto& a : j.addrs) a.set_port(j.port);
    runtime_.set_timer(j, j.started_ns + j.timeout_ns);
    return connect_next(j);
  }

  // The details say how long the job was given, not when the loop got round to it.
  void on_timer(PollJob& pj) override {
    auto& j = static_cast<TcpJob&>(pj);
    timed_out(j, j.started_ns + j.timeout_ns);
  }
  void on_deadline(PollJob& j) override { timed_out(static_cast<TcpJob&>(j), j.deadline_ns); }

  void timed_out(TcpJob& j, int64_t at) {
    const std::string after = "timed out after " + format_seconds(at - j.started_ns);
    switch (j.phase) {
      case Phase::kConnecting:
        return finish(j, OUTPOST_E_TIMEOUT, after);
      case Phase::kSending:
        return finish(j, OUTPOST_E_TIMEOUT, after + " sending");
      case Phase::kReading:
        return finish(j, OUTPOST_E_TIMEOUT, after + " waiting for '" + j.expect_raw + "'");
    }
  }

  // Tries the job's addresses in order until one connects or is in progress. False only when
  // descriptors ran out while others are open: the runtime retries later.
  bool connect_next(TcpJob& j) {
    while (j.next_addr < j.addrs.size()) {
      const Address& a = j.addrs[j.next_addr++];
      Fd fd(::socket(a.family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
      if (!fd) {
        const int err = errno;
        if ((err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM) &&
            runtime_.running() > 1) {
          --j.next_addr;
          return false;
        }
        j.last_error = "socket: " + errno_text(err);
        continue;
      }
      if (source_) {
#ifdef IP_BIND_ADDRESS_NO_PORT
        // Defers the port choice to connect(), so thousands of binds do not use up ports that
        // only differ by destination.
        const int one = 1;
        ::setsockopt(fd.get(), IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
#endif
        if (::bind(fd.get(), reinterpret_cast<const sockaddr*>(&source_->ss), source_->len) != 0) {
          finish(j, OUTPOST_E_CONFIG, "source_address: " + errno_text(errno));
          return true;
        }
      }
      j.attempt_ns = runtime_.now();
      const int rc = ::connect(fd.get(), reinterpret_cast<const sockaddr*>(&a.ss), a.len);
      if (rc != 0 && errno != EINPROGRESS) {
        j.last_error = errno_text(errno);
        continue;
      }
      j.fd = fd.release();
      runtime_.watch(j, j.fd, EPOLLOUT);
      j.phase = Phase::kConnecting;
      if (rc == 0) on_connected(j);
      return true;
    }
    finish(j, OUTPOST_E_UNAVAILABLE, j.last_error.empty() ? "connect failed" : j.last_error);
    return true;
  }

  void on_io(PollJob& pj, int fd, uint32_t) override {
    auto& j = static_cast<TcpJob&>(pj);
    if (fd != j.fd) return;  // an address given up on
    switch (j.phase) {
      case Phase::kConnecting: {
        int err = 0;
        socklen_t len = sizeof err;
        if (::getsockopt(j.fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
        if (err == 0) return on_connected(j);
        if (err == EINPROGRESS) return;
        if (err == ETIMEDOUT) return timed_out(j, runtime_.now());
        j.last_error = errno_text(err);
        runtime_.unwatch(j, j.fd);
        j.fd = -1;
        if (!connect_next(j))  // another address may answer, if a descriptor is free for it
          finish(j, OUTPOST_E_UNAVAILABLE,
                 "no descriptor free to try the next address after: " + j.last_error);
        return;
      }
      case Phase::kSending:
        return do_send(j);
      case Phase::kReading:
        return do_read(j);
    }
  }

  void on_connected(TcpJob& j) {
    j.connected_ns = runtime_.now();
    if (!j.send.empty()) {
      j.phase = Phase::kSending;
      return do_send(j);
    }
    if (j.expect.empty()) return finish(j, OUTPOST_OK, {});
    j.phase = Phase::kReading;
    runtime_.watch(j, j.fd, EPOLLIN);
  }

  void do_send(TcpJob& j) {
    while (j.sent < j.send.size()) {
      const ssize_t n = ::send(j.fd, j.send.data() + j.sent, j.send.size() - j.sent, MSG_NOSIGNAL);
      if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK) return;  // EPOLLOUT brings us back
        if (errno == EINTR) continue;
        return finish(j, OUTPOST_E_UNAVAILABLE, "send failed: " + errno_text(errno));
      }
      j.sent += static_cast<std::size_t>(n);
    }
    if (j.expect.empty()) return finish(j, OUTPOST_OK, {});
    j.phase = Phase::kReading;
    runtime_.watch(j, j.fd, EPOLLIN);
    do_read(j);  // the answer may already be there
  }

  void do_read(TcpJob& j) {
    char buf[4096];
    for (;;) {
      const std::size_t room = std::min(sizeof buf, kReadLimit - j.received.size());
      const ssize_t n = ::recv(j.fd, buf, room, 0);
      if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK) return;
        if (errno == EINTR) continue;
        return finish(j, OUTPOST_E_UNAVAILABLE,
                      "expect '" + j.expect_raw + "' not found: " + errno_text(errno));
      }
      if (n == 0)
        return finish(j, OUTPOST_E_UNAVAILABLE,
                      "expect '" + j.expect_raw + "' not found (connection closed after " +
                          std::to_string(j.received.size()) + " bytes)");
      // Search only the new bytes plus the tail an earlier chunk may have started a match in.
      const std::size_t from =
          j.received.size() >= j.expect.size() - 1 ? j.received.size() - (j.expect.size() - 1) : 0;
      j.received.append(buf, static_cast<std::size_t>(n));
      if (j.received.find(j.expect, from) != std::string::npos) return finish(j, OUTPOST_OK, {});
      if (j.received.size() >= kReadLimit)
        return finish(j, OUTPOST_E_UNAVAILABLE,
                      "expect '" + j.expect_raw + "' not found in the first " +
                          std::to_string(kReadLimit) + " bytes");
    }
  }

  void finish(TcpJob& j, outpost_status status, std::string detail) {
    runtime_.finish(j, status, std::move(detail));
  }

  // Every outcome's metrics, also of targets the runtime ended (a name that does not resolve):
  // not for a configuration error, a target never attempted (overloaded), or stop.
  void on_end(PollJob& pj, outpost_status status, bool stopped) override {
    auto& j = static_cast<TcpJob&>(pj);
    if (stopped || status == OUTPOST_E_CONFIG || status == OUTPOST_E_OVERLOADED) return;
    auto metric = [&](const char* name, double v) {
      runtime_.emit(outpost::Metric{name, j.labels, v, 0, OUTPOST_METRIC_GAUGE});
    };
    metric("tcp_up", status == OUTPOST_OK ? 1.0 : 0.0);
    if (j.connected_ns != 0)
      metric("tcp_connect_seconds", static_cast<double>(j.connected_ns - j.attempt_ns) / 1e9);
    if (status == OUTPOST_OK && !j.expect.empty())
      metric("tcp_response_seconds", static_cast<double>(runtime_.now() - j.connected_ns) / 1e9);
  }

  outpost::Host host_;
  int64_t default_timeout_ns_ = 0;
  std::optional<Address> source_;
  AsyncPoller runtime_;
};

}  // namespace

OUTPOST_PLUGIN(TcpMonitor, "tcp", "1.0.0",
               "TCP port availability: connect time and an optional send/expect exchange")
