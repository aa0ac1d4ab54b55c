// TCP availability poller: connect to a port, optionally send a line and wait for an expected
// answer. One epoll thread drives every socket, so a poll of thousands of targets costs one
// file descriptor per in-flight connect, not one thread per target.
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <functional>
#include <mutex>
#include <outpost/sdk.hpp>
#include <queue>
#include <thread>
#include <unordered_map>

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

struct Address {
  sockaddr_storage ss{};
  socklen_t len = 0;
};

// A numeric address parses without I/O; a name goes to the resolver threads.
std::vector<Address> resolve(const std::string& host, bool numeric_only, int& gai_error) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = numeric_only ? AI_NUMERICHOST : 0;
  addrinfo* res = nullptr;
  gai_error = ::getaddrinfo(host.c_str(), nullptr, &hints, &res);
  std::vector<Address> out;
  if (gai_error != 0) return out;
  for (addrinfo* ai = res; ai != nullptr; ai = ai->ai_next) {
    if ((ai->ai_family != AF_INET && ai->ai_family != AF_INET6) ||
        ai->ai_addrlen > sizeof(sockaddr_storage))
      continue;
    Address a;
    std::memcpy(&a.ss, ai->ai_addr, ai->ai_addrlen);
    a.len = ai->ai_addrlen;
    out.push_back(a);
  }
  ::freeaddrinfo(res);
  return out;
}

std::string strip_brackets(std::string_view a) {
  if (a.size() >= 2 && a.front() == '[' && a.back() == ']') a = a.substr(1, a.size() - 2);
  return std::string(a);
}

enum class Phase { kResolving, kWaiting, kConnecting, kSending, kReading };

struct Job {
  uint64_t poll_id = 0, target_id = 0;
  std::string host;  // the address without brackets, as handed to getaddrinfo
  outpost::Labels labels;
  uint16_t port = 0;
  int64_t timeout_ns = 0;
  int64_t deadline_ns = 0;  // the request's deadline less a margin to report in time
  std::string send, expect, expect_raw;

  Phase phase = Phase::kResolving;
  std::vector<Address> addrs;
  std::size_t next_addr = 0;
  std::string last_error;
  Fd fd;
  int64_t queued_ns = 0, started_ns = 0, attempt_ns = 0, connected_ns = 0, expiry_ns = 0;
  std::size_t sent = 0;
  std::string received;
};

struct Completion {
  uint64_t poll_id, target_id;
  outpost_status status;
  std::string detail;
};

struct Resolved {
  std::string host;
  std::vector<Address> addrs;
  int gai_error = 0;
};

class TcpMonitor final : public outpost::Poller {
 public:
  TcpMonitor(outpost::Host host, const outpost::Config& cfg) : host_(host) {
    const int64_t mc = cfg.get_int("max_concurrent", 256);
    if (mc < 1 || mc > 1'000'000)
      throw Error(OUTPOST_E_CONFIG, "max_concurrent must be between 1 and 1000000");
    max_concurrent_ = static_cast<std::size_t>(mc);
    const int64_t rt = cfg.get_int("resolver_threads", 4);
    if (rt < 1 || rt > 64)
      throw Error(OUTPOST_E_CONFIG, "resolver_threads must be between 1 and 64");
    resolver_threads_ = static_cast<int>(rt);
    const double t = cfg.get_seconds("connect_timeout", 5.0);
    if (t <= 0) throw Error(OUTPOST_E_CONFIG, "timeout must be positive");
    default_timeout_ns_ = static_cast<int64_t>(std::min(t, kMaxTimeoutSeconds) * 1e9);
    if (auto src = cfg.find("source_address"); src && !src->empty()) {
      int err = 0;
      auto a = resolve(strip_brackets(*src), true, err);
      if (a.empty())
        throw Error(OUTPOST_E_CONFIG, "source_address: not an IP address: " + std::string(*src));
      source_ = a.front();
    }
  }
  ~TcpMonitor() override {
    try {
      stop();
    } catch (...) {  // a destructor must not throw; stop() only fails on a broken join
    }
  }
  TcpMonitor(const TcpMonitor&) = delete;
  TcpMonitor& operator=(const TcpMonitor&) = delete;

  static std::vector<outpost_field> config_fields() {
    using outpost::field;
    return {
        field("max_concurrent", OUTPOST_FIELD_INT,
              "Connections in flight at once; further targets wait for a free slot", "256"),
        field("connect_timeout", OUTPOST_FIELD_DURATION,
              "Connect and exchange timeout of monitors that set none (the poll deadline still "
              "bounds it)",
              "5s"),
        field("source_address", OUTPOST_FIELD_STRING,
              "Local IP address to connect from; targets are reached over its family only"),
        field("resolver_threads", OUTPOST_FIELD_INT,
              "Threads that resolve host names, so a slow DNS server never stalls connects", "4"),
    };
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

  void start() override {
    {
      std::lock_guard g(mu_);
      if (running_) return;
    }
    Fd ep(::epoll_create1(EPOLL_CLOEXEC));
    if (!ep) throw Error(OUTPOST_E_INTERNAL, "epoll_create1: " + errno_text(errno));
    Fd ev(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
    if (!ev) throw Error(OUTPOST_E_INTERNAL, "eventfd: " + errno_text(errno));
    epoll_event e{};
    e.events = EPOLLIN;
    e.data.u64 = 0;  // job sequence numbers start at 1, so 0 marks the wake-up eventfd
    if (::epoll_ctl(ep.get(), EPOLL_CTL_ADD, ev.get(), &e) != 0)
      throw Error(OUTPOST_E_INTERNAL, "epoll_ctl: " + errno_text(errno));
    {
      std::lock_guard g(mu_);
      epoll_ = std::move(ep);
      wake_ = std::move(ev);
      stopping_ = false;
      running_ = true;
    }
    try {
      io_ = std::thread([this] { io_loop(); });
      for (int i = 0; i < resolver_threads_; ++i)
        resolvers_.emplace_back([this] { resolver_loop(); });
    } catch (...) {
      stop();  // joins whichever threads did start
      throw;
    }
  }

  void stop() override {
    {
      std::lock_guard g(mu_);
      if (!running_) return;
      running_ = false;
      stopping_ = true;
      wake();
    }
    cv_dns_.notify_all();
    join_all();
    epoll_.reset();
    wake_.reset();
  }

  void poll(const outpost::PollRequest& req) override {
    const int64_t now = host_.monotonic_ns();
    // Report a little before the deadline so a completion racing it is not counted late.
    const int64_t margin = std::clamp((req.deadline_ns() - now) / 20, 5 * kMs, 250 * kMs);
    std::vector<Job> jobs;
    jobs.reserve(req.size());
    for (std::size_t i = 0; i < req.size(); ++i) {
      const outpost::Target t = req[i];
      try {
        jobs.push_back(make_job(t, req.id(), req.deadline_ns() - margin));
      } catch (const Error& e) {
        host_.complete(req.id(), t.id(), e.status(), e.what());
      }
    }
    {
      std::lock_guard g(mu_);
      if (running_) {
        for (auto& j : jobs) incoming_.push_back(std::move(j));
        wake();
        return;
      }
    }
    for (const auto& j : jobs)
      host_.complete(j.poll_id, j.target_id, OUTPOST_E_UNAVAILABLE, "tcp plugin not started");
  }

 private:
  Job make_job(const outpost::Target& t, uint64_t poll_id, int64_t deadline_ns) const {
    const outpost::Config p = t.params();
    Job j;
    j.poll_id = poll_id;
    j.target_id = t.id();
    j.deadline_ns = deadline_ns;
    int64_t port = 0;
    try {
      if (!p.has("port")) throw Error(OUTPOST_E_CONFIG, "port is required");
      port = p.get_int("port", 0);
      if (port < 1 || port > 65535)
        throw Error(OUTPOST_E_CONFIG, "port " + std::to_string(port) + " out of range 1-65535");
      const double timeout =
          p.get_seconds("connect_timeout", static_cast<double>(default_timeout_ns_) / 1e9);
      if (timeout <= 0) throw Error(OUTPOST_E_CONFIG, "timeout must be positive");
      j.timeout_ns = static_cast<int64_t>(std::min(timeout, kMaxTimeoutSeconds) * 1e9);
    } catch (const Error& e) {
      throw Error(OUTPOST_E_CONFIG, e.what());  // a bad value is the operator's to fix
    }
    j.port = static_cast<uint16_t>(port);
    j.host = strip_brackets(t.address());
    j.send = unescape(p.get("send"));
    j.expect_raw = p.get("expect");
    j.expect = unescape(j.expect_raw);
    j.labels = {{"device", std::string(t.device())},
                {"address", std::string(t.address())},
                {"port", std::to_string(port)}};
    for (auto& [k, v] : t.tags())
      if (k != "device" && k != "address" && k != "port") j.labels.emplace_back(k, v);
    return j;
  }

  void wake() const noexcept {
    const uint64_t one = 1;
    if (wake_) {
      [[maybe_unused]] const ssize_t n = ::write(wake_.get(), &one, sizeof one);
    }
  }

  void join_all() {
    if (io_.joinable()) io_.join();
    for (auto& t : resolvers_)
      if (t.joinable()) t.join();
    resolvers_.clear();
  }

  // ---- resolver threads: getaddrinfo blocks, so it never runs on the I/O thread ----------

  void resolver_loop() {
    std::unique_lock lk(mu_);
    for (;;) {
      cv_dns_.wait(lk, [this] { return stopping_ || !dns_queue_.empty(); });
      if (stopping_) return;
      Resolved r{std::move(dns_queue_.front()), {}, 0};
      dns_queue_.pop_front();
      lk.unlock();
      r.addrs = resolve(r.host, false, r.gai_error);
      lk.lock();
      dns_results_.push_back(std::move(r));
      wake();
    }
  }

  // ---- the I/O thread: everything below runs on it alone --------------------------------

  void io_loop() {
    std::vector<epoll_event> events(512);
    bool stopping = false;
    while (!stopping) {
      try {
        const int n =
            ::epoll_wait(epoll_.get(), events.data(), static_cast<int>(events.size()), wait_ms());
        for (int i = 0; i < n; ++i) {
          const auto& e = events[static_cast<std::size_t>(i)];
          if (e.data.u64 == 0) {
            uint64_t v = 0;
            [[maybe_unused]] auto r = ::read(wake_.get(), &v, sizeof v);
          } else if (auto it = jobs_.find(e.data.u64); it != jobs_.end()) {
            on_io(it->first, it->second);
          }
        }
        stopping = take_incoming();
        fire_timers();
        admit();
        flush();
      } catch (const std::exception& e) {
        // Most likely out of memory; keep serving rather than leave targets unreported.
        host_.report_error(OUTPOST_E_INTERNAL, std::string("tcp I/O loop: ") + e.what());
      }
    }
    // Every target is reported exactly once, even those cut short by stop().
    for (auto& [seq, j] : jobs_)
      completions_.push_back({j.poll_id, j.target_id, OUTPOST_E_UNAVAILABLE, "tcp plugin stopped"});
    {
      std::lock_guard g(mu_);
      for (auto& j : incoming_)
        completions_.push_back(
            {j.poll_id, j.target_id, OUTPOST_E_UNAVAILABLE, "tcp plugin stopped"});
      incoming_.clear();
      dns_queue_.clear();
      dns_results_.clear();
    }
    jobs_.clear();
    waiting_.clear();
    pending_dns_.clear();
    timers_ = {};
    active_ = 0;
    try {
      flush();
    } catch (...) {
      host_.report_error(OUTPOST_E_INTERNAL, "tcp: could not report targets at stop");
    }
  }

  int wait_ms() {
    while (!timers_.empty()) {
      auto [at, seq] = timers_.top();
      auto it = jobs_.find(seq);
      if (it == jobs_.end() || it->second.expiry_ns != at) {
        timers_.pop();  // stale: the job finished or its expiry moved
        continue;
      }
      const int64_t left = at - host_.monotonic_ns();
      if (left <= 0) return 0;
      return static_cast<int>(std::min<int64_t>((left + kMs - 1) / kMs, 60'000));
    }
    return -1;
  }

  bool take_incoming() {
    std::vector<Job> in;
    std::vector<Resolved> res;
    bool stopping = false;
    {
      std::lock_guard g(mu_);
      in.swap(incoming_);
      res.swap(dns_results_);
      stopping = stopping_;
    }
    std::vector<std::string> lookups;
    for (auto& j : in) {
      const uint64_t seq = next_seq_++;
      Job& job = jobs_.emplace(seq, std::move(j)).first->second;
      set_expiry(seq, job, job.deadline_ns);
      int err = 0;
      auto addrs = resolve(job.host, true, err);
      if (!addrs.empty()) {
        resolved(seq, job, std::move(addrs), 0);
      } else {
        auto& waiters = pending_dns_[job.host];
        if (waiters.empty()) lookups.push_back(job.host);
        waiters.push_back(seq);
      }
    }
    if (!lookups.empty()) {
      {
        std::lock_guard g(mu_);
        for (auto& h : lookups) dns_queue_.push_back(std::move(h));
      }
      cv_dns_.notify_all();
    }
    for (auto& r : res) {
      auto node = pending_dns_.extract(r.host);
      if (node.empty()) continue;
      for (uint64_t seq : node.mapped())
        if (auto it = jobs_.find(seq); it != jobs_.end() && it->second.phase == Phase::kResolving)
          resolved(seq, it->second, r.addrs, r.gai_error);
    }
    return stopping;
  }

  void resolved(uint64_t seq, Job& j, std::vector<Address> addrs, int gai_error) {
    if (gai_error != 0)
      return finish(seq, j, OUTPOST_E_NOT_FOUND,
                    "cannot resolve '" + j.host + "': " + ::gai_strerror(gai_error));
    if (source_) {
      std::erase_if(addrs,
                    [&](const Address& a) { return a.ss.ss_family != source_->ss.ss_family; });
      if (addrs.empty())
        return finish(seq, j, OUTPOST_E_NOT_FOUND,
                      "'" + j.host + "' has no " +
                          (source_->ss.ss_family == AF_INET ? "IPv4" : "IPv6") +
                          " address to reach from source_address");
    }
    if (addrs.empty())
      return finish(seq, j, OUTPOST_E_NOT_FOUND, "'" + j.host + "' has no address");
    for (auto& a : addrs) {
      if (a.ss.ss_family == AF_INET)
        reinterpret_cast<sockaddr_in*>(&a.ss)->sin_port = htons(j.port);
      else
        reinterpret_cast<sockaddr_in6*>(&a.ss)->sin6_port = htons(j.port);
    }
    j.addrs = std::move(addrs);
    j.phase = Phase::kWaiting;
    j.queued_ns = host_.monotonic_ns();
    waiting_.push_back(seq);
  }

  void set_expiry(uint64_t seq, Job& j, int64_t at) {
    j.expiry_ns = at;
    timers_.emplace(at, seq);
  }

  void fire_timers() {
    const int64_t now = host_.monotonic_ns();
    while (!timers_.empty() && timers_.top().first <= now) {
      auto [at, seq] = timers_.top();
      timers_.pop();
      auto it = jobs_.find(seq);
      if (it == jobs_.end() || it->second.expiry_ns != at) continue;
      Job& j = it->second;
      const std::string after = "timed out after " + format_seconds(at - j.started_ns);
      switch (j.phase) {
        case Phase::kResolving:
          finish(seq, j, OUTPOST_E_TIMEOUT, "resolving '" + j.host + "' timed out");
          break;
        case Phase::kWaiting:  // never attempted: says nothing about the device
          finish(seq, j, OUTPOST_E_OVERLOADED,
                 saturated_ns_ >= j.queued_ns
                     ? "no connection slot free before the deadline (max_concurrent " +
                           std::to_string(max_concurrent_) + ")"
                     : std::string("deadline reached before connecting"));
          break;
        case Phase::kConnecting:
          finish(seq, j, OUTPOST_E_TIMEOUT, after);
          break;
        case Phase::kSending:
          finish(seq, j, OUTPOST_E_TIMEOUT, after + " sending");
          break;
        case Phase::kReading:
          finish(seq, j, OUTPOST_E_TIMEOUT, after + " waiting for '" + j.expect_raw + "'");
          break;
      }
    }
  }

  // Starts waiting targets while slots are free. A target whose socket cannot be made for lack
  // of descriptors waits for one to be released instead of failing.
  void admit() {
    while (active_ < max_concurrent_ && !waiting_.empty()) {
      const uint64_t seq = waiting_.front();
      waiting_.pop_front();
      auto it = jobs_.find(seq);
      if (it == jobs_.end() || it->second.phase != Phase::kWaiting) continue;
      Job& j = it->second;
      j.started_ns = host_.monotonic_ns();
      set_expiry(seq, j, std::min(j.deadline_ns, j.started_ns + j.timeout_ns));
      if (!connect_next(seq, j)) {
        waiting_.push_front(seq);
        saturated_ns_ = host_.monotonic_ns();
        return;
      }
    }
    // Remembered so a target that times out in the queue can say the slots were the reason.
    if (!waiting_.empty()) saturated_ns_ = host_.monotonic_ns();
  }

  // Tries the job's addresses in order until one connects or is in progress. False only when
  // descriptors ran out while others are open: the caller retries later.
  bool connect_next(uint64_t seq, Job& j) {
    while (j.next_addr < j.addrs.size()) {
      const Address& a = j.addrs[j.next_addr++];
      Fd fd(::socket(a.ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
      if (!fd) {
        const int err = errno;
        if ((err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM) && active_ > 0) {
          --j.next_addr;
          j.phase = Phase::kWaiting;
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
      }
      if (source_ &&
          ::bind(fd.get(), reinterpret_cast<const sockaddr*>(&source_->ss), source_->len) != 0) {
        finish(seq, j, OUTPOST_E_CONFIG, "source_address: " + errno_text(errno));
        return true;
      }
      j.attempt_ns = host_.monotonic_ns();
      const int rc = ::connect(fd.get(), reinterpret_cast<const sockaddr*>(&a.ss), a.len);
      if (rc != 0 && errno != EINPROGRESS) {
        j.last_error = errno_text(errno);
        continue;
      }
      epoll_event e{};
      e.events = EPOLLOUT;
      e.data.u64 = seq;
      if (::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, fd.get(), &e) != 0) {
        j.last_error = "epoll_ctl: " + errno_text(errno);
        continue;
      }
      j.fd = std::move(fd);
      ++active_;
      j.phase = Phase::kConnecting;
      if (rc == 0) on_connected(seq, j);
      return true;
    }
    finish(seq, j, OUTPOST_E_UNAVAILABLE, j.last_error.empty() ? "connect failed" : j.last_error);
    return true;
  }

  void release(Job& j) {
    if (j.fd) {
      j.fd.reset();  // closing also removes it from the epoll set
      --active_;
    }
  }

  void watch(uint64_t seq, Job& j, uint32_t events) {
    epoll_event e{};
    e.events = events;
    e.data.u64 = seq;
    ::epoll_ctl(epoll_.get(), EPOLL_CTL_MOD, j.fd.get(), &e);
  }

  void on_io(uint64_t seq, Job& j) {
    switch (j.phase) {
      case Phase::kConnecting: {
        int err = 0;
        socklen_t len = sizeof err;
        if (::getsockopt(j.fd.get(), SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
        if (err == 0) return on_connected(seq, j);
        if (err == EINPROGRESS) return;
        if (err == ETIMEDOUT)
          return finish(seq, j, OUTPOST_E_TIMEOUT,
                        "timed out after " + format_seconds(host_.monotonic_ns() - j.started_ns));
        j.last_error = errno_text(err);
        release(j);
        if (!connect_next(seq, j)) waiting_.push_front(seq);  // another address may answer
        return;
      }
      case Phase::kSending:
        return do_send(seq, j);
      case Phase::kReading:
        return do_read(seq, j);
      default:
        return;
    }
  }

  void on_connected(uint64_t seq, Job& j) {
    j.connected_ns = host_.monotonic_ns();
    if (!j.send.empty()) {
      j.phase = Phase::kSending;
      return do_send(seq, j);
    }
    if (j.expect.empty()) return finish(seq, j, OUTPOST_OK, {});
    j.phase = Phase::kReading;
    watch(seq, j, EPOLLIN);
  }

  void do_send(uint64_t seq, Job& j) {
    while (j.sent < j.send.size()) {
      const ssize_t n =
          ::send(j.fd.get(), j.send.data() + j.sent, j.send.size() - j.sent, MSG_NOSIGNAL);
      if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK) return;  // EPOLLOUT brings us back
        if (errno == EINTR) continue;
        return finish(seq, j, OUTPOST_E_UNAVAILABLE, "send failed: " + errno_text(errno));
      }
      j.sent += static_cast<std::size_t>(n);
    }
    if (j.expect.empty()) return finish(seq, j, OUTPOST_OK, {});
    j.phase = Phase::kReading;
    watch(seq, j, EPOLLIN);
    do_read(seq, j);  // the answer may already be there
  }

  void do_read(uint64_t seq, Job& j) {
    char buf[4096];
    for (;;) {
      const std::size_t room = std::min(sizeof buf, kReadLimit - j.received.size());
      const ssize_t n = ::recv(j.fd.get(), buf, room, 0);
      if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK) return;
        if (errno == EINTR) continue;
        return finish(seq, j, OUTPOST_E_UNAVAILABLE,
                      "expect '" + j.expect_raw + "' not found: " + errno_text(errno));
      }
      if (n == 0)
        return finish(seq, j, OUTPOST_E_UNAVAILABLE,
                      "expect '" + j.expect_raw + "' not found (connection closed after " +
                          std::to_string(j.received.size()) + " bytes)");
      // Search only the new bytes plus the tail an earlier chunk may have started a match in.
      const std::size_t from =
          j.received.size() >= j.expect.size() - 1 ? j.received.size() - (j.expect.size() - 1) : 0;
      j.received.append(buf, static_cast<std::size_t>(n));
      if (j.received.find(j.expect, from) != std::string::npos)
        return finish(seq, j, OUTPOST_OK, {});
      if (j.received.size() >= kReadLimit)
        return finish(seq, j, OUTPOST_E_UNAVAILABLE,
                      "expect '" + j.expect_raw + "' not found in the first " +
                          std::to_string(kReadLimit) + " bytes");
    }
  }

  // Records the outcome; metrics and completions leave together in flush(), one emit per loop
  // turn however many targets finished in it.
  void finish(uint64_t seq, Job& j, outpost_status status, std::string detail) {
    const int64_t now = host_.monotonic_ns();
    release(j);
    if (status != OUTPOST_E_CONFIG) {
      auto metric = [&](const char* name, double v) {
        metrics_.push_back(outpost::Metric{name, j.labels, v, 0, OUTPOST_METRIC_GAUGE});
      };
      metric("tcp_up", status == OUTPOST_OK ? 1.0 : 0.0);
      if (j.connected_ns != 0)
        metric("tcp_connect_seconds", static_cast<double>(j.connected_ns - j.attempt_ns) / 1e9);
      if (status == OUTPOST_OK && !j.expect.empty())
        metric("tcp_response_seconds", static_cast<double>(now - j.connected_ns) / 1e9);
    }
    completions_.push_back({j.poll_id, j.target_id, status, std::move(detail)});
    jobs_.erase(seq);
  }

  void flush() {
    if (!metrics_.empty()) {
      std::vector<outpost::Metric> batch;
      batch.swap(metrics_);
      host_.emit(batch);  // a BUSY answer is the host's back-pressure, counted there
    }
    std::vector<Completion> done;
    done.swap(completions_);
    for (const auto& c : done) host_.complete(c.poll_id, c.target_id, c.status, c.detail);
  }

  outpost::Host host_;
  std::size_t max_concurrent_ = 256;
  int resolver_threads_ = 4;
  int64_t default_timeout_ns_ = 0;
  std::optional<Address> source_;

  // Shared with poll() and the resolver threads.
  mutable std::mutex mu_;
  std::condition_variable cv_dns_;
  bool running_ = false;
  bool stopping_ = false;
  std::vector<Job> incoming_;
  std::deque<std::string> dns_queue_;
  std::vector<Resolved> dns_results_;
  Fd epoll_, wake_;
  std::thread io_;
  std::vector<std::thread> resolvers_;

  // Owned by the I/O thread.
  std::unordered_map<uint64_t, Job> jobs_;
  std::deque<uint64_t> waiting_;
  std::unordered_map<std::string, std::vector<uint64_t>> pending_dns_;
  std::priority_queue<std::pair<int64_t, uint64_t>, std::vector<std::pair<int64_t, uint64_t>>,
                      std::greater<>>
      timers_;
  uint64_t next_seq_ = 1;
  std::size_t active_ = 0;
  int64_t saturated_ns_ = INT64_MIN;
  std::vector<outpost::Metric> metrics_;
  std::vector<Completion> completions_;
};

}  // namespace

OUTPOST_PLUGIN(TcpMonitor, "tcp", "1.0.0",
               "TCP port availability: connect time and an optional send/expect exchange")
