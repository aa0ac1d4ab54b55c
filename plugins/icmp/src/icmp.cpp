// ICMP echo availability poller.
//
// One socket per address family and one I/O thread serve every target of every poll: a sweep of
// 10,000 hosts costs 10,000 packets, not 10,000 threads. poll() only copies the request; the I/O
// thread paces probes with a token bucket, matches replies and ICMP errors to probes through a
// 32-bit key carried in identifier+sequence (and again in the payload), and completes each
// target exactly once, before the request's deadline.
#include <arpa/inet.h>
#include <linux/errqueue.h>
#include <netdb.h>
#include <netinet/icmp6.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <climits>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <outpost/sdk.hpp>
#include <queue>
#include <random>
#include <thread>
#include <unordered_map>

#include "icmp_packet.hpp"

namespace outpost::icmp {
namespace {

// ICMP_FILTER and its struct live in <linux/icmp.h>, which clashes with glibc's ICMP headers.
constexpr int kIcmpFilter = 1;
struct IcmpFilter {
  uint32_t data;
};
constexpr int kMaxCount = 1000;
constexpr std::size_t kMaxPayload = 1400;  // stays clear of fragmentation on common MTUs
constexpr int kMaxReadsPerWake = 2048;     // keeps sends flowing while replies pour in
constexpr std::size_t kFlushMetrics = 8192;
constexpr int64_t kMinMargin = 2'000'000, kMaxMargin = 200'000'000;

int64_t clock_ns(clockid_t id) {
  timespec ts{};
  ::clock_gettime(id, &ts);
  return int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

void put16(uint8_t* p, uint32_t v) {
  p[0] = static_cast<uint8_t>(v >> 8);
  p[1] = static_cast<uint8_t>(v);
}
void put32(uint8_t* p, uint32_t v) {
  put16(p, v >> 16);
  put16(p + 2, v & 0xFFFFu);
}

std::string ip_text(int family, const void* ip) {
  char buf[INET6_ADDRSTRLEN] = {};
  if (::inet_ntop(family, ip, buf, sizeof buf) == nullptr) return "?";
  return buf;
}

struct Address {
  sockaddr_storage ss{};
  socklen_t len = 0;

  int family() const { return ss.ss_family; }
  // The raw IP bytes inside ss (network order).
  const uint8_t* ip() const {
    const auto* base = reinterpret_cast<const uint8_t*>(&ss);
    return family() == AF_INET ? base + offsetof(sockaddr_in, sin_addr)
                               : base + offsetof(sockaddr_in6, sin6_addr);
  }
  std::size_t ip_len() const { return family() == AF_INET ? 4 : 16; }
  bool same_ip(const uint8_t* other) const {
    return other == nullptr || std::memcmp(ip(), other, ip_len()) == 0;
  }
  std::string text() const { return ip_text(family(), ip()); }
};

std::string strip_brackets(std::string_view s) {
  if (s.size() > 2 && s.front() == '[' && s.back() == ']') s = s.substr(1, s.size() - 2);
  return std::string(s);
}

// Literal addresses are parsed in poll() itself; anything else goes to the resolver thread.
bool parse_literal(std::string_view text, Address& out) {
  const std::string s = strip_brackets(text);
  sockaddr_in v4{};
  if (::inet_pton(AF_INET, s.c_str(), &v4.sin_addr) == 1) {
    v4.sin_family = AF_INET;
    std::memcpy(&out.ss, &v4, sizeof v4);
    out.len = sizeof v4;
    return true;
  }
  sockaddr_in6 v6{};
  if (::inet_pton(AF_INET6, s.c_str(), &v6.sin6_addr) == 1) {
    v6.sin6_family = AF_INET6;
    std::memcpy(&out.ss, &v6, sizeof v6);
    out.len = sizeof v6;
    return true;
  }
  return false;
}

// Empty on success, else why the name did not resolve.
std::string resolve_name(std::string_view text, Address& out) {
  const std::string host = strip_brackets(text);
  if (host.empty() || host.find('\0') != std::string::npos) return "empty or invalid host name";
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_DGRAM;  // one entry per address, not one per socket type
  addrinfo* res = nullptr;
  const int rc = ::getaddrinfo(host.c_str(), nullptr, &hints, &res);
  if (rc != 0) return ::gai_strerror(rc);
  std::string err = "no IPv4 or IPv6 address";
  for (const addrinfo* ai = res; ai != nullptr; ai = ai->ai_next) {
    if ((ai->ai_family == AF_INET || ai->ai_family == AF_INET6) &&
        ai->ai_addrlen <= sizeof(out.ss)) {
      std::memcpy(&out.ss, ai->ai_addr, ai->ai_addrlen);
      out.len = ai->ai_addrlen;
      err.clear();
      break;
    }
  }
  ::freeaddrinfo(res);
  return err;
}

enum class Outcome : uint8_t { none, ttl_exceeded, unreachable, send_failed };

std::string error_text(int family, Outcome o, uint8_t code) {
  if (o == Outcome::ttl_exceeded)
    return code == 1 ? "fragment reassembly time exceeded" : "ttl exceeded";
  static const char* const v4[] = {"network unreachable",
                                   "host unreachable",
                                   "protocol unreachable",
                                   "port unreachable",
                                   "fragmentation needed",
                                   "source route failed",
                                   "destination network unknown",
                                   "destination host unknown",
                                   "source host isolated",
                                   "network administratively prohibited",
                                   "host administratively prohibited",
                                   "network unreachable for tos",
                                   "host unreachable for tos",
                                   "communication administratively prohibited",
                                   "host precedence violation",
                                   "precedence cutoff in effect"};
  static const char* const v6[] = {"no route to destination",
                                   "administratively prohibited",
                                   "beyond scope of source address",
                                   "address unreachable",
                                   "port unreachable",
                                   "source address failed policy",
                                   "reject route to destination"};
  if (family == AF_INET && code < std::size(v4)) return v4[code];
  if (family == AF_INET6 && code < std::size(v6)) return v6[code];
  return "destination unreachable (code " + std::to_string(code) + ")";
}

struct Params {
  int count = 3;
  int64_t interval_ns = 200'000'000;
  int64_t timeout_ns = 1'000'000'000;
  int ttl = 0;  // 0: the socket's default
};

int64_t to_ns(double seconds) { return static_cast<int64_t>(std::llround(seconds * 1e9)); }
double to_s(int64_t ns) { return static_cast<double>(ns) / 1e9; }

Params read_params(const Config& c, const Params& base) {
  Params p = base;
  const int64_t count = c.get_int("count", p.count);
  if (count < 1 || count > kMaxCount)
    throw Error(OUTPOST_E_CONFIG, "count: must be 1.." + std::to_string(kMaxCount));
  p.count = static_cast<int>(count);
  const double interval = c.get_seconds("probe_interval", to_s(p.interval_ns));
  if (interval > 60) throw Error(OUTPOST_E_CONFIG, "probe_interval: at most 60s");
  p.interval_ns = to_ns(interval);
  const double timeout = c.get_seconds("reply_timeout", to_s(p.timeout_ns));
  if (timeout < 0.001 || timeout > 60)
    throw Error(OUTPOST_E_CONFIG, "reply_timeout: must be 1ms..60s");
  p.timeout_ns = to_ns(timeout);
  const int64_t ttl = c.get_int("ttl", p.ttl);
  if (ttl < 0 || ttl > 255) throw Error(OUTPOST_E_CONFIG, "ttl: must be 0..255");
  p.ttl = static_cast<int>(ttl);
  return p;
}

struct Probe {
  uint32_t key = 0;
  bool in_flight = false;
  int64_t sent_mono = 0, sent_real = 0;
  int64_t rtt_ns = -1;
};

struct TargetState {
  uint64_t id = 0;
  std::string device, address;
  Labels labels;  // the host's: device, address, tags
  Params p;
  Address dst;
  bool needs_resolve = false;
  outpost_status early_status = OUTPOST_OK;  // set when the target cannot be probed at all
  std::string early_detail;
  std::size_t first_probe = 0;  // its probes in Job::probes
  int next = 0, sent = 0, received = 0, errors = 0, outstanding = 0;
  bool done = false;
  Outcome outcome = Outcome::none;
  uint8_t err_type = 0, err_code = 0;
  std::string err_from, err_detail;
};

struct Job {
  uint64_t seq = 0, poll_id = 0;
  int64_t deadline = 0, finalize_at = 0;
  std::vector<TargetState> targets;
  std::vector<Probe> probes;
  std::size_t remaining = 0;
};

struct InFlight {
  uint64_t job;
  uint32_t target;
  uint32_t probe;  // index in Job::probes
};

struct Timer {
  int64_t when;
  uint64_t order;  // FIFO among equal times, so big sweeps go out in request order
  uint64_t job;
  uint32_t target;
  auto operator<=>(const Timer&) const = default;
};
using TimerQueue = std::priority_queue<Timer, std::vector<Timer>, std::greater<>>;

struct Completion {
  uint64_t poll_id, target_id;
  outpost_status status;
  std::string detail;
};

enum class Reason { normal, deadline, stopped };

struct Socket {
  int fd = -1;
  bool raw = false;
  std::string error;  // why it could not be opened
};

class IcmpPoller final : public Poller {
 public:
  IcmpPoller(Host host, const Config& cfg) : host_(host) {
    const int64_t pps = cfg.get_int("max_pps", 20000);
    if (pps < 1 || pps > 10'000'000) throw Error(OUTPOST_E_CONFIG, "max_pps: must be 1..10000000");
    pps_ = static_cast<double>(pps);
    // Up to 2 ms of sends at once, so a late wake-up does not lose rate; waking for every
    // 0.2 ms of tokens rather than each one keeps the thread from spinning at high rates.
    burst_ = std::max(1.0, pps_ / 500.0);
    wake_tokens_ = std::max(1.0, pps_ / 5000.0);
    const int64_t payload = cfg.get_int("payload_size", 56);
    if (payload < static_cast<int64_t>(kToken) || payload > static_cast<int64_t>(kMaxPayload))
      throw Error(OUTPOST_E_CONFIG, "payload_size: must be 8..1400");
    payload_size_ = static_cast<std::size_t>(payload);
    defaults_ = read_params(cfg, Params{});
    mode_ = cfg.get("socket_mode", "auto");
    if (mode_ != "auto" && mode_ != "raw" && mode_ != "dgram")
      throw Error(OUTPOST_E_CONFIG, "socket_mode: must be auto, raw or dgram");
    const int64_t max_targets = cfg.get_int("max_targets", 100000);
    if (max_targets < 1) throw Error(OUTPOST_E_CONFIG, "max_targets: must be positive");
    max_targets_ = static_cast<std::size_t>(max_targets);
    std::random_device rd;
    cookie_ = rd();
    next_key_ = rd();  // a random start keeps two instances (or restarts) apart
  }
  ~IcmpPoller() override { stop(); }
  IcmpPoller(const IcmpPoller&) = delete;
  IcmpPoller& operator=(const IcmpPoller&) = delete;

  static std::vector<outpost_field> config_fields() {
    return {
        field("max_pps", OUTPOST_FIELD_INT, "Probes sent per second, all targets together",
              "20000"),
        field("payload_size", OUTPOST_FIELD_INT,
              "Echo payload bytes after the ICMP header (8..1400)", "56"),
        field("ttl", OUTPOST_FIELD_INT,
              "IP TTL / IPv6 hop limit of probes; 0 keeps the system default", "0"),
        field("count", OUTPOST_FIELD_INT, "Default echo requests per target and poll", "3"),
        field("probe_interval", OUTPOST_FIELD_DURATION, "Default spacing of one target's requests",
              "200ms"),
        field("reply_timeout", OUTPOST_FIELD_DURATION,
              "Default wait for replies after a target's last request", "1s"),
        field("socket_mode", OUTPOST_FIELD_STRING, "auto (raw, else ping socket), raw or dgram",
              "auto"),
        field("max_targets", OUTPOST_FIELD_INT,
              "Targets queued or in progress at once; more are refused as busy", "100000"),
    };
  }
  static std::vector<outpost_field> target_fields() {
    return {
        field("count", OUTPOST_FIELD_INT, "Echo requests to send", "3"),
        field("probe_interval", OUTPOST_FIELD_DURATION, "Spacing of the requests", "200ms"),
        field("reply_timeout", OUTPOST_FIELD_DURATION,
              "Wait for replies after the last request (the monitor's timeout stays the deadline)",
              "1s"),
        field("ttl", OUTPOST_FIELD_INT, "IP TTL / IPv6 hop limit; 0 keeps the default", "0"),
    };
  }

  void start() override {
    if (running_) return;
    v4_ = open_socket(AF_INET);
    v6_ = open_socket(AF_INET6);
    if (v4_.fd < 0 && v6_.fd < 0) {
      const std::string why = "no ICMP socket: " + v4_.error + "; " + v6_.error;
      close_sockets();
      throw Error(OUTPOST_E_PERMISSION, why);
    }
    if (v4_.fd < 0 || v6_.fd < 0)
      host_.log(OUTPOST_LOG_WARN, "icmp: " + (v4_.fd < 0 ? v4_.error : v6_.error));
    wake_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (wake_fd_ < 0) {
      close_sockets();
      throw Error(OUTPOST_E_INTERNAL, std::string("eventfd: ") + std::strerror(errno));
    }
    {
      std::lock_guard g(mu_);
      stopping_ = false;
    }
    tokens_ = burst_;
    tokens_at_ = host_.monotonic_ns();
    io_ = std::thread([this] { io_loop(); });
    try {
      resolver_ = std::thread([this] { resolve_loop(); });
    } catch (...) {
      stop_threads();
      close_sockets();
      throw;
    }
    running_ = true;
  }

  void stop() override {
    if (!running_) return;
    stop_threads();
    running_ = false;
    // The I/O thread is gone: finish what is left here, so every target completes once.
    std::deque<std::unique_ptr<Job>> left;
    {
      std::lock_guard g(mu_);
      for (auto& j : to_resolve_) left.push_back(std::move(j));
      for (auto& j : incoming_) left.push_back(std::move(j));
      to_resolve_.clear();
      incoming_.clear();
    }
    for (auto& j : left) {
      const uint64_t seq = j->seq;
      jobs_.emplace(seq, std::move(j));
    }
    for (auto& [seq, job] : jobs_)
      for (uint32_t i = 0; i < job->targets.size(); ++i) finalize(*job, i, Reason::stopped);
    flush();
    jobs_.clear();
    in_flight_.clear();
    sends_ = {};
    finishes_ = {};
    close_sockets();
  }

  void poll(const PollRequest& req) override {
    if (!running_) {
      for (std::size_t i = 0; i < req.size(); ++i)
        host_.complete(req.id(), req[i].id(), OUTPOST_E_UNAVAILABLE, "icmp poller is not started");
      return;
    }
    if (active_.load() + req.size() > max_targets_) {
      for (std::size_t i = 0; i < req.size(); ++i)
        host_.complete(req.id(), req[i].id(), OUTPOST_E_BUSY,
                       "icmp: more than max_targets targets queued or in progress");
      return;
    }
    const int64_t now = host_.monotonic_ns();
    auto job = std::make_unique<Job>();
    job->poll_id = req.id();
    job->deadline = req.deadline_ns();
    // Leave room before the deadline to build metrics and complete every target.
    job->finalize_at =
        job->deadline - std::clamp((job->deadline - now) / 10, kMinMargin, kMaxMargin);
    job->targets.reserve(req.size());
    bool names = false;
    for (std::size_t i = 0; i < req.size(); ++i) {
      const Target t = req[i];
      TargetState s;
      s.id = t.id();
      try {
        s.p = read_params(t.params(), defaults_);
      } catch (const Error& e) {
        host_.complete(req.id(), t.id(), e.status(), e.what());
        continue;
      }
      s.device = t.device();
      s.address = t.address();
      s.labels = t.labels();
      s.needs_resolve = !parse_literal(s.address, s.dst);
      names = names || s.needs_resolve;
      job->targets.push_back(std::move(s));
    }
    if (job->targets.empty()) return;
    job->remaining = job->targets.size();
    active_ += job->remaining;
    {
      std::lock_guard g(mu_);
      job->seq = ++job_seq_;
      (names ? to_resolve_ : incoming_).push_back(std::move(job));
    }
    if (names)
      resolve_cv_.notify_one();
    else
      wake();
  }

 private:
  // ---- sockets --------------------------------------------------------------------------

  Socket open_socket(int family) const {
    Socket s;
    const int proto = family == AF_INET ? int{IPPROTO_ICMP} : int{IPPROTO_ICMPV6};
    const char* name = family == AF_INET ? "IPv4" : "IPv6";
    if (mode_ != "dgram") {
      s.fd = ::socket(family, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, proto);
      s.raw = s.fd >= 0;
      if (s.fd < 0) s.error = std::string(name) + " raw socket: " + std::strerror(errno);
      if (s.fd < 0 && mode_ == "raw") return s;
    }
    if (s.fd < 0) {
      // Unprivileged ping sockets: allowed by net.ipv4.ping_group_range, no CAP_NET_RAW needed.
      s.fd = ::socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, proto);
      if (s.fd < 0) {
        s.error += std::string(s.error.empty() ? "" : ", ") + name +
                   " ping socket: " + std::strerror(errno);
        return s;
      }
      s.error.clear();
    }
    const int on = 1;
    ::setsockopt(s.fd, SOL_SOCKET, SO_TIMESTAMPNS, &on, sizeof on);
    // Replies of a whole sweep may land between two reads.
    const int buf = 8 << 20;
    if (::setsockopt(s.fd, SOL_SOCKET, SO_RCVBUFFORCE, &buf, sizeof buf) != 0)
      ::setsockopt(s.fd, SOL_SOCKET, SO_RCVBUF, &buf, sizeof buf);
    if (::setsockopt(s.fd, SOL_SOCKET, SO_SNDBUFFORCE, &buf, sizeof buf) != 0)
      ::setsockopt(s.fd, SOL_SOCKET, SO_SNDBUF, &buf, sizeof buf);
    if (s.raw && family == AF_INET) {
      // A raw socket sees every ICMP packet of the host; let only what we parse through.
      const IcmpFilter f{~((1u << kEchoReply4) | (1u << kUnreach4) | (1u << kTimeExceeded4))};
      ::setsockopt(s.fd, SOL_RAW, kIcmpFilter, &f, sizeof f);
    } else if (s.raw) {
      icmp6_filter f{};
      ICMP6_FILTER_SETBLOCKALL(&f);
      ICMP6_FILTER_SETPASS(kEchoReply6, &f);
      ICMP6_FILTER_SETPASS(kUnreach6, &f);
      ICMP6_FILTER_SETPASS(kTimeExceeded6, &f);
      ::setsockopt(s.fd, IPPROTO_ICMPV6, ICMP6_FILTER, &f, sizeof f);
    } else if (family == AF_INET) {
      // Ping sockets get ICMP errors only through the error queue.
      ::setsockopt(s.fd, IPPROTO_IP, IP_RECVERR, &on, sizeof on);
    } else {
      ::setsockopt(s.fd, IPPROTO_IPV6, IPV6_RECVERR, &on, sizeof on);
    }
    return s;
  }

  void close_sockets() {
    for (int* fd : {&v4_.fd, &v6_.fd, &wake_fd_}) {
      if (*fd >= 0) ::close(*fd);
      *fd = -1;
    }
  }

  Socket& socket_for(int family) { return family == AF_INET ? v4_ : v6_; }

  void wake() {
    const uint64_t one = 1;
    if (wake_fd_ >= 0) (void)!::write(wake_fd_, &one, sizeof one);
  }

  void stop_threads() {
    {
      std::lock_guard g(mu_);
      stopping_ = true;
    }
    resolve_cv_.notify_all();
    wake();
    if (resolver_.joinable()) resolver_.join();
    if (io_.joinable()) io_.join();
  }

  // ---- resolver thread: host names only, so a slow DNS never stalls the I/O loop ----------

  void resolve_loop() {
    std::unique_lock lk(mu_);
    for (;;) {
      resolve_cv_.wait(lk, [this] { return stopping_ || !to_resolve_.empty(); });
      if (stopping_) return;
      std::unique_ptr<Job> job = std::move(to_resolve_.front());
      to_resolve_.pop_front();
      lk.unlock();
      for (auto& t : job->targets) {
        if (!t.needs_resolve) continue;
        const std::string err = resolve_name(t.address, t.dst);
        if (!err.empty()) {
          t.early_status = OUTPOST_E_NOT_FOUND;
          t.early_detail = "cannot resolve '" + t.address + "': " + err;
        }
      }
      lk.lock();
      incoming_.push_back(std::move(job));
      wake();
    }
  }

  // ---- I/O thread -----------------------------------------------------------------------

  void io_loop() {
    for (;;) {
      std::deque<std::unique_ptr<Job>> fresh;
      {
        std::lock_guard g(mu_);
        if (stopping_) return;
        fresh.swap(incoming_);
      }
      int64_t now = host_.monotonic_ns();
      for (auto& j : fresh) admit(std::move(j), now);
      send_due(now);
      flush();
      now = host_.monotonic_ns();
      wait_io(next_wake(now), now);
      read_socket(AF_INET, false);
      read_socket(AF_INET6, false);
      if (v4_.fd >= 0 && !v4_.raw) read_socket(AF_INET, true);
      if (v6_.fd >= 0 && !v6_.raw) read_socket(AF_INET6, true);
      expire(host_.monotonic_ns());
      flush();
      std::erase_if(jobs_, [](const auto& kv) { return kv.second->remaining == 0; });
    }
  }

  void admit(std::unique_ptr<Job> job, int64_t now) {
    std::size_t probes = 0;
    for (auto& t : job->targets) {
      if (t.early_status == OUTPOST_OK && socket_for(t.dst.family()).fd < 0) {
        t.early_status = OUTPOST_E_PERMISSION;
        t.early_detail = "no ICMP socket for this family: " + socket_for(t.dst.family()).error;
      }
      if (t.early_status != OUTPOST_OK) continue;
      t.first_probe = probes;
      probes += static_cast<std::size_t>(t.p.count);
    }
    job->probes.resize(probes);
    const uint64_t seq = job->seq;
    Job& j = *jobs_.emplace(seq, std::move(job)).first->second;
    for (uint32_t i = 0; i < j.targets.size(); ++i) {
      if (j.targets[i].early_status != OUTPOST_OK)
        finalize(j, i, Reason::normal);
      else
        sends_.push(Timer{now, ++order_, seq, i});
    }
  }

  Job* find_job(uint64_t seq) {
    auto it = jobs_.find(seq);
    return it == jobs_.end() ? nullptr : it->second.get();
  }

  void send_due(int64_t now) {
    tokens_ = std::min(burst_, tokens_ + to_s(now - tokens_at_) * pps_);
    tokens_at_ = now;
    while (!sends_.empty() && sends_.top().when <= now && tokens_ >= 1.0) {
      const Timer tm = sends_.top();
      sends_.pop();
      Job* j = find_job(tm.job);
      if (j == nullptr || j->targets[tm.target].done) continue;
      if (!send_probe(*j, tm.target, now)) {
        // The socket buffer is full: try again a little later rather than spin.
        sends_.push(Timer{now + 200'000, ++order_, tm.job, tm.target});
        break;
      }
      tokens_ -= 1.0;
    }
  }

  uint32_t take_key() {
    // Key = identifier<<16 | sequence; every 65536 probes move on to a new identifier, so far
    // more than 65536 probes may be in flight. Skip keys a very old probe still holds.
    while (in_flight_.count(next_key_) != 0) ++next_key_;
    return next_key_++;
  }

  // False when the kernel asks us to retry (buffer full).
  bool send_probe(Job& j, uint32_t ti, int64_t now) {
    TargetState& t = j.targets[ti];
    const int family = t.dst.family();
    Socket& s = socket_for(family);
    const uint32_t key = take_key();
    packet_.assign(kHeader + payload_size_, 0);
    for (std::size_t i = kHeader + kToken; i < packet_.size(); ++i)
      packet_[i] = static_cast<uint8_t>(i);
    packet_[0] = family == AF_INET ? kEchoRequest4 : kEchoRequest6;
    put16(&packet_[4], key >> 16);  // ping sockets overwrite the identifier; the token survives
    put16(&packet_[6], key & 0xFFFFu);
    put32(&packet_[8], cookie_);
    put32(&packet_[12], key);
    if (family == AF_INET) put16(&packet_[2], internet_checksum(packet_.data(), packet_.size()));
    // (The kernel fills in the ICMPv6 checksum: it needs the pseudo-header.)

    iovec iov{packet_.data(), packet_.size()};
    msghdr msg{};
    msg.msg_name = &t.dst.ss;
    msg.msg_namelen = t.dst.len;
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
    if (t.p.ttl > 0) {
      msg.msg_control = control;
      msg.msg_controllen = sizeof control;
      cmsghdr* c = CMSG_FIRSTHDR(&msg);
      c->cmsg_level = family == AF_INET ? IPPROTO_IP : IPPROTO_IPV6;
      c->cmsg_type = family == AF_INET ? IP_TTL : IPV6_HOPLIMIT;
      c->cmsg_len = CMSG_LEN(sizeof(int));
      std::memcpy(CMSG_DATA(c), &t.p.ttl, sizeof(int));
    }
    Probe& p = j.probes[t.first_probe + static_cast<std::size_t>(t.next)];
    p.sent_mono = clock_ns(CLOCK_MONOTONIC);
    p.sent_real = clock_ns(CLOCK_REALTIME);
    ssize_t rc = ::sendmsg(s.fd, &msg, MSG_DONTWAIT);
    // A ping socket reports a queued ICMP error on the next call; it belongs to another probe.
    if (rc < 0 && !s.raw && errno != EAGAIN && errno != ENOBUFS)
      rc = ::sendmsg(s.fd, &msg, MSG_DONTWAIT);
    if (rc < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS)) return false;
    ++t.sent;
    ++t.next;
    if (rc < 0) {
      const int err = errno;
      ++t.errors;
      t.outcome =
          (err == EHOSTUNREACH || err == ENETUNREACH) ? Outcome::unreachable : Outcome::send_failed;
      t.err_from = "local";
      t.err_detail = std::string("send failed: ") + std::strerror(err);
    } else {
      p.key = key;
      p.in_flight = true;
      in_flight_.emplace(
          key, InFlight{j.seq, ti,
                        static_cast<uint32_t>(t.first_probe) + static_cast<uint32_t>(t.next - 1)});
      ++t.outstanding;
    }
    if (t.next < t.p.count)
      sends_.push(Timer{now + t.p.interval_ns, ++order_, j.seq, ti});
    else
      finishes_.push(Timer{now + t.p.timeout_ns, ++order_, j.seq, ti});
    maybe_finish(j, ti);
    return true;
  }

  int64_t next_wake(int64_t now) const {
    int64_t wake = INT64_MAX;
    if (!sends_.empty()) {
      int64_t w = sends_.top().when;
      if (tokens_ < 1.0) w = std::max(w, now + to_ns((wake_tokens_ - tokens_) / pps_));
      wake = std::min(wake, w);
    }
    if (!finishes_.empty()) wake = std::min(wake, finishes_.top().when);
    for (const auto& [seq, j] : jobs_)
      if (j->remaining > 0) wake = std::min(wake, j->finalize_at);
    return wake;
  }

  void wait_io(int64_t wake, int64_t now) {
    pollfd fds[3] = {{wake_fd_, POLLIN, 0}, {v4_.fd, POLLIN, 0}, {v6_.fd, POLLIN, 0}};
    timespec ts{};
    timespec* timeout = nullptr;
    if (wake != INT64_MAX) {
      const int64_t d = std::max<int64_t>(0, wake - now);
      ts.tv_sec = d / 1'000'000'000;
      ts.tv_nsec = d % 1'000'000'000;
      timeout = &ts;
    }
    // Negative fds are ignored by ppoll, so a missing family needs no special case.
    if (::ppoll(fds, 3, timeout, nullptr) > 0 && (fds[0].revents & POLLIN) != 0) {
      uint64_t n = 0;
      (void)!::read(wake_fd_, &n, sizeof n);
    }
  }

  void read_socket(int family, bool errqueue) {
    Socket& s = socket_for(family);
    if (s.fd < 0) return;
    rx_.resize(2048);
    for (int i = 0; i < kMaxReadsPerWake; ++i) {
      sockaddr_storage from{};
      alignas(cmsghdr) char control[512];
      iovec iov{rx_.data(), rx_.size()};
      msghdr msg{};
      msg.msg_name = &from;
      msg.msg_namelen = sizeof from;
      msg.msg_iov = &iov;
      msg.msg_iovlen = 1;
      msg.msg_control = control;
      msg.msg_controllen = sizeof control;
      const ssize_t n = ::recvmsg(s.fd, &msg, MSG_DONTWAIT | (errqueue ? MSG_ERRQUEUE : 0));
      if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errqueue) return;
        continue;  // a pending socket error, now consumed
      }
      int64_t rx_real = 0;
      const sock_extended_err* ee = nullptr;
      for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_TIMESTAMPNS) {
          timespec ts{};
          std::memcpy(&ts, CMSG_DATA(c), sizeof ts);
          rx_real = int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
        } else if ((c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_RECVERR) ||
                   (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_RECVERR)) {
          ee = reinterpret_cast<const sock_extended_err*>(CMSG_DATA(c));
        }
      }
      const bool truncated = (msg.msg_flags & MSG_TRUNC) != 0;
      const auto len = static_cast<std::size_t>(n);
      if (errqueue)
        on_queued_error(family, ee, rx_.data(), len, from);
      else
        on_packet(family, s.raw, rx_.data(), len, truncated, from, rx_real);
    }
  }

  static const uint8_t* ip_of(const sockaddr_storage& ss) {
    const auto* base = reinterpret_cast<const uint8_t*>(&ss);
    if (ss.ss_family == AF_INET) return base + offsetof(sockaddr_in, sin_addr);
    if (ss.ss_family == AF_INET6) return base + offsetof(sockaddr_in6, sin6_addr);
    return nullptr;
  }
  static std::string sockaddr_text(const sockaddr_storage& ss) {
    const uint8_t* ip = ip_of(ss);
    return ip == nullptr ? std::string("?") : ip_text(ss.ss_family, ip);
  }

  void on_packet(int family, bool raw, const uint8_t* p, std::size_t n, bool truncated,
                 const sockaddr_storage& from, int64_t rx_real) {
    const Parsed r = parse_icmp(family, raw, p, n, truncated, cookie_);
    if (r.kind == Kind::echo_reply) return on_echo_reply(family, r.key, rx_real);
    if (r.kind == Kind::error) return on_error(family, r, from);
    ++(r.kind == Kind::malformed ? malformed_ : foreign_);
  }

  void on_queued_error(int family, const sock_extended_err* ee, const uint8_t* p, std::size_t n,
                       const sockaddr_storage& orig) {
    if (ee == nullptr ||
        (ee->ee_origin != SO_EE_ORIGIN_ICMP && ee->ee_origin != SO_EE_ORIGIN_ICMP6))
      return;  // local errors (e.g. EMSGSIZE) already failed the send
    const ErrorKind ek = error_kind(family, ee->ee_type);
    if (ek == ErrorKind::none) return;
    sockaddr_storage offender{};
    const auto* off = SO_EE_OFFENDER(ee);
    std::memcpy(&offender, off,
                off->sa_family == AF_INET6 ? sizeof(sockaddr_in6) : sizeof(sockaddr_in));
    // The kernel strips the IP headers and gives the error's type and code out of band.
    Parsed r = parse_quoted(family, false, p, n, cookie_);
    if (r.kind != Kind::error) return void(++(r.kind == Kind::malformed ? malformed_ : foreign_));
    r.error = ek;
    r.type = ee->ee_type;
    r.code = ee->ee_code;
    r.orig_dst = ip_of(orig);
    on_error(family, r, offender);
  }

  // The probe a reply or error belongs to, taken out of flight; nullptr when it is not ours.
  Probe* take_probe(uint32_t key, int family, const uint8_t* dst, bool ours, Job*& job,
                    uint32_t& ti) {
    auto it = in_flight_.find(key);
    if (it == in_flight_.end()) {
      ++(ours ? late_ : foreign_);
      return nullptr;
    }
    job = find_job(it->second.job);
    ti = it->second.target;
    if (job == nullptr) {
      in_flight_.erase(it);
      ++late_;
      return nullptr;
    }
    TargetState& t = job->targets[ti];
    if (t.dst.family() != family || !t.dst.same_ip(dst)) {
      ++foreign_;  // same key, other destination: somebody else's packet
      return nullptr;
    }
    Probe& p = job->probes[it->second.probe];
    in_flight_.erase(it);
    p.in_flight = false;
    --t.outstanding;
    return &p;
  }

  void on_echo_reply(int family, uint32_t key, int64_t rx_real) {
    Job* j = nullptr;
    uint32_t ti = 0;
    Probe* pr = take_probe(key, family, nullptr, true, j, ti);
    if (pr == nullptr) return;
    int64_t rtt = rx_real - pr->sent_real;
    if (rx_real == 0 || rtt <= 0)
      rtt = std::max<int64_t>(1, clock_ns(CLOCK_MONOTONIC) - pr->sent_mono);
    pr->rtt_ns = rtt;
    ++j->targets[ti].received;
    maybe_finish(*j, ti);
  }

  // `r` is a parsed error quoting one of our requests; `from` sent it.
  void on_error(int family, const Parsed& r, const sockaddr_storage& from) {
    Job* j = nullptr;
    uint32_t ti = 0;
    if (take_probe(r.key, family, r.orig_dst, r.has_token, j, ti) == nullptr) return;
    TargetState& t = j->targets[ti];
    ++t.errors;
    t.outcome = r.error == ErrorKind::ttl_exceeded ? Outcome::ttl_exceeded : Outcome::unreachable;
    t.err_type = r.type;
    t.err_code = r.code;
    t.err_from = sockaddr_text(from);
    t.err_detail = error_text(family, t.outcome, r.code) + " from " + t.err_from;
    maybe_finish(*j, ti);
  }

  void maybe_finish(Job& j, uint32_t ti) {
    const TargetState& t = j.targets[ti];
    if (!t.done && t.next == t.p.count && t.outstanding == 0) finalize(j, ti, Reason::normal);
  }

  void expire(int64_t now) {
    while (!finishes_.empty() && finishes_.top().when <= now) {
      const Timer tm = finishes_.top();
      finishes_.pop();
      if (Job* j = find_job(tm.job)) finalize(*j, tm.target, Reason::normal);
    }
    for (auto& [seq, j] : jobs_) {
      if (j->remaining == 0 || now < j->finalize_at) continue;
      for (uint32_t i = 0; i < j->targets.size(); ++i) finalize(*j, i, Reason::deadline);
    }
  }

  void add(const Labels& labels, const char* name, double value) {
    out_metrics_.push_back(Metric{name, labels, value, 0, OUTPOST_METRIC_GAUGE});
  }

  void finalize(Job& j, uint32_t ti, Reason why) {
    TargetState& t = j.targets[ti];
    if (t.done) return;
    t.done = true;
    --j.remaining;
    --active_;
    rtts_.clear();
    for (int k = 0; k < t.next; ++k) {
      Probe& p = j.probes[t.first_probe + static_cast<std::size_t>(k)];
      if (p.in_flight) in_flight_.erase(p.key);
      p.in_flight = false;
      if (p.rtt_ns >= 0) rtts_.push_back(p.rtt_ns);
    }
    if (why == Reason::stopped && t.early_status == OUTPOST_OK) {
      t.early_status = OUTPOST_E_UNAVAILABLE;
      t.early_detail = "icmp poller stopped";
    }
    if (t.early_status != OUTPOST_OK) {
      out_done_.push_back(Completion{j.poll_id, t.id, t.early_status, t.early_detail});
      return finish_job(j);
    }
    outpost_status status = OUTPOST_E_UNAVAILABLE;
    std::string detail;
    char buf[160];
    double min = 0, max = 0, avg = 0, jitter = 0;
    if (!rtts_.empty()) {
      min = to_s(*std::min_element(rtts_.begin(), rtts_.end()));
      max = to_s(*std::max_element(rtts_.begin(), rtts_.end()));
      for (std::size_t k = 0; k < rtts_.size(); ++k) {
        avg += to_s(rtts_[k]);
        if (k > 0) jitter += std::fabs(to_s(rtts_[k] - rtts_[k - 1]));
      }
      avg /= static_cast<double>(rtts_.size());
      if (rtts_.size() > 1) jitter /= static_cast<double>(rtts_.size() - 1);
      status = OUTPOST_OK;
      std::snprintf(buf, sizeof buf, "%d/%d replies, rtt min/avg/max %.3f/%.3f/%.3f ms", t.received,
                    t.sent, min * 1e3, avg * 1e3, max * 1e3);
      detail = buf;
    } else if (t.outcome != Outcome::none) {
      detail = t.err_detail;
    } else if (t.sent == 0) {
      status = OUTPOST_E_TIMEOUT;
      detail = "deadline passed before a request could be sent";
    } else {
      std::snprintf(buf, sizeof buf, "no reply: %d/%d requests lost%s", t.sent, t.sent,
                    why == Reason::deadline ? " by the deadline" : "");
      detail = buf;
    }
    if (t.sent > 0) {
      const Labels& labels = t.labels;
      add(labels, "icmp_up", t.received > 0 ? 1 : 0);
      add(labels, "icmp_sent", t.sent);
      add(labels, "icmp_received", t.received);
      add(labels, "icmp_loss_ratio", 1.0 - static_cast<double>(t.received) / t.sent);
      if (!rtts_.empty()) {
        add(labels, "icmp_rtt_min_seconds", min);
        add(labels, "icmp_rtt_avg_seconds", avg);
        add(labels, "icmp_rtt_max_seconds", max);
      }
      if (rtts_.size() > 1) add(labels, "icmp_jitter_seconds", jitter);
      if (t.errors > 0 && t.outcome != Outcome::none) {
        const char* reason = t.outcome == Outcome::ttl_exceeded  ? "ttl_exceeded"
                             : t.outcome == Outcome::unreachable ? "unreachable"
                                                                 : "send_failed";
        Labels el = labels;
        el.emplace_back("reason", reason);
        el.emplace_back("from", t.err_from);
        add(el, "icmp_errors", t.errors);
        Event e;
        e.kind = "icmp_error";  // availability itself is the engine's to announce
        e.source = t.device;
        e.message = t.err_detail;
        e.severity = OUTPOST_SEV_WARNING;
        e.attributes = {{"address", t.address},
                        {"reason", reason},
                        {"from", t.err_from},
                        {"icmp_type", std::to_string(t.err_type)},
                        {"icmp_code", std::to_string(t.err_code)}};
        out_events_.push_back(std::move(e));
      }
    }
    out_done_.push_back(Completion{j.poll_id, t.id, status, std::move(detail)});
    finish_job(j);
  }

  void finish_job(const Job& j) {
    if (j.remaining == 0) {
      // Plugin-wide counts of packets we read and dropped, so a noisy network shows.
      const std::pair<const char*, uint64_t> counts[] = {
          {"malformed", malformed_}, {"foreign", foreign_}, {"late", late_}};
      for (const auto& [reason, v] : counts)
        out_metrics_.push_back(Metric{"icmp_ignored_packets_total",
                                      {{"reason", reason}},
                                      static_cast<double>(v),
                                      0,
                                      OUTPOST_METRIC_COUNTER});
    }
    if (out_metrics_.size() >= kFlushMetrics) flush();
  }

  // Data first, then the completions it belongs to, in one emit per loop turn.
  void flush() {
    if (!out_metrics_.empty() || !out_events_.empty()) host_.emit(out_metrics_, out_events_);
    for (const auto& c : out_done_) host_.complete(c.poll_id, c.target_id, c.status, c.detail);
    out_metrics_.clear();
    out_events_.clear();
    out_done_.clear();
  }

  Host host_;
  // Settings.
  double pps_ = 20000, burst_ = 40, wake_tokens_ = 4;
  std::size_t payload_size_ = 56;
  std::size_t max_targets_ = 100000;
  std::string mode_;
  Params defaults_;
  uint32_t cookie_ = 0;

  // Shared with poll() and the resolver, under mu_.
  std::mutex mu_;
  std::condition_variable resolve_cv_;
  std::deque<std::unique_ptr<Job>> to_resolve_, incoming_;
  bool stopping_ = false;
  uint64_t job_seq_ = 0;
  std::atomic<std::size_t> active_{0};
  std::atomic<bool> running_{false};
  std::thread io_, resolver_;

  // The I/O thread's own (and stop()'s, once it has joined).
  Socket v4_, v6_;
  int wake_fd_ = -1;
  std::map<uint64_t, std::unique_ptr<Job>> jobs_;
  std::unordered_map<uint32_t, InFlight> in_flight_;
  TimerQueue sends_, finishes_;
  uint64_t order_ = 0;
  uint32_t next_key_ = 0;
  double tokens_ = 0;
  int64_t tokens_at_ = 0;
  std::vector<uint8_t> packet_, rx_;
  std::vector<int64_t> rtts_;
  std::vector<Metric> out_metrics_;
  std::vector<Event> out_events_;
  std::vector<Completion> out_done_;
  uint64_t malformed_ = 0, foreign_ = 0, late_ = 0;
};

}  // namespace
}  // namespace outpost::icmp

OUTPOST_PLUGIN(outpost::icmp::IcmpPoller, "icmp", "0.1.0",
               "ICMP echo availability, RTT, loss and jitter for many targets from one socket")
