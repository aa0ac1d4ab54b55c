// ICMP echo availability poller, on the shared poller runtime (plugins/lib/async_poller).
//
// One socket per address family serves every target of every poll: a sweep of 10,000 hosts
// costs 10,000 packets, not 10,000 threads. The runtime takes the targets from poll(), resolves
// names (c-ares), admits them under max_concurrent, keeps each one's timer and deadline and
// completes each exactly once; this file paces probes with a token bucket across all targets
// (the runtime's on_turn), matches replies and ICMP errors to probes through a 32-bit key
// carried in identifier+sequence (and again in the payload), and turns a target's probes into
// its metrics.
#include <arpa/inet.h>
#include <linux/errqueue.h>
#include <netinet/icmp6.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <climits>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <memory>
#include <outpost/sdk.hpp>
#include <outpost_lib/async_poller.hpp>
#include <queue>
#include <random>
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

// The raw IP bytes inside a socket address (network order); nullptr for other families.
const uint8_t* ip_of(const sockaddr_storage& ss) {
  const auto* base = reinterpret_cast<const uint8_t*>(&ss);
  if (ss.ss_family == AF_INET) return base + offsetof(sockaddr_in, sin_addr);
  if (ss.ss_family == AF_INET6) return base + offsetof(sockaddr_in6, sin6_addr);
  return nullptr;
}

std::string sockaddr_text(const sockaddr_storage& ss) {
  const uint8_t* ip = ip_of(ss);
  return ip == nullptr ? std::string("?") : ip_text(ss.ss_family, ip);
}

// One target of a poll.
struct IcmpJob final : lib::PollJob {
  uint64_t id = 0;  // this file's handle on it, for queued sends and probes in flight
  std::string device, address;
  Labels labels;  // the host's: device, address, tags
  Params p;
  lib::Address dst;
  std::vector<Probe> probes;
  int next = 0, sent = 0, received = 0, errors = 0, outstanding = 0;
  bool done = false;
  Outcome outcome = Outcome::none;
  uint8_t err_type = 0, err_code = 0;
  std::string err_from, err_detail;
  // Targets of the same poll still open: the last one reports the plugin's packet counts.
  std::shared_ptr<std::atomic<std::size_t>> poll_left;

  bool same_ip(const uint8_t* other) const {
    return other == nullptr ||
           std::memcmp(ip_of(dst.ss), other, dst.family() == AF_INET ? 4 : 16) == 0;
  }
};

struct InFlight {
  uint64_t job;
  uint32_t probe;
};

struct Send {
  int64_t when;
  uint64_t order;  // FIFO among equal times, so big sweeps go out in request order
  uint64_t job;
  auto operator<=>(const Send&) const = default;
};

enum class Reason { normal, deadline };

struct Socket {
  int fd = -1;
  bool raw = false;
  std::string error;  // why it could not be opened
};

IcmpJob& as_icmp(lib::PollJob& j) { return static_cast<IcmpJob&>(j); }

class IcmpPoller final : public Poller, private lib::AsyncPoller::Protocol {
 public:
  IcmpPoller(Host host, const Config& cfg) : host_(host), rt_(host, *this, runtime_options(cfg)) {
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
    std::random_device rd;
    cookie_ = rd();
    next_key_ = rd();  // a random start keeps two instances (or restarts) apart
  }
  ~IcmpPoller() override { stop(); }
  IcmpPoller(const IcmpPoller&) = delete;
  IcmpPoller& operator=(const IcmpPoller&) = delete;

  static std::vector<outpost_field> config_fields() {
    std::vector<outpost_field> fields = {
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
    };
    // max_concurrent (targets probed at once), dns_servers, ...
    for (auto& f : lib::async_poller_fields("100000")) fields.push_back(f);
    return fields;
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
    if (started_) return;
    v4_ = open_socket(AF_INET);
    v6_ = open_socket(AF_INET6);
    if (v4_.fd < 0 && v6_.fd < 0) {
      const std::string why = "no ICMP socket: " + v4_.error + "; " + v6_.error;
      close_sockets();
      throw Error(OUTPOST_E_PERMISSION, why);
    }
    if (v4_.fd < 0 || v6_.fd < 0)
      host_.log(OUTPOST_LOG_WARN, "icmp: " + (v4_.fd < 0 ? v4_.error : v6_.error));
    tokens_ = burst_;
    tokens_at_ = host_.monotonic_ns();
    try {
      rt_.start();  // its thread watches the sockets (on_start)
    } catch (...) {
      close_sockets();
      throw;
    }
    started_ = true;
  }

  void stop() override {
    if (!started_) return;
    rt_.stop();  // every target completed, the I/O thread joined
    started_ = false;
    live_.clear();
    in_flight_.clear();
    sends_ = {};
    close_sockets();
  }

  void poll(const PollRequest& req) override {
    std::vector<std::unique_ptr<lib::PollJob>> jobs;
    jobs.reserve(req.size());
    auto left = std::make_shared<std::atomic<std::size_t>>(0);
    for (std::size_t i = 0; i < req.size(); ++i) {
      const Target t = req[i];
      auto j = std::make_unique<IcmpJob>();
      try {
        j->p = read_params(t.params(), defaults_);
      } catch (const Error& e) {
        host_.complete(req.id(), t.id(), e.status(), e.what());
        continue;
      }
      j->poll_id = req.id();
      j->target_id = t.id();
      j->device = t.device();
      j->address = t.address();
      j->host = lib::Address::host_of(j->address);
      j->labels = t.labels();
      j->poll_left = left;
      jobs.push_back(std::move(j));
    }
    left->store(jobs.size());
    rt_.submit(std::move(jobs), req.deadline_ns());
  }

 private:
  static lib::AsyncPollerOptions runtime_options(const Config& cfg) {
    auto o = lib::async_poller_options(cfg, "icmp", 100000);
    o.socktype = SOCK_DGRAM;  // one answer per address, not one per socket type
    return o;
  }

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
    for (int* fd : {&v4_.fd, &v6_.fd}) {
      if (*fd >= 0) ::close(*fd);
      *fd = -1;
    }
  }

  Socket& socket_for(int family) { return family == AF_INET ? v4_ : v6_; }

  // ---- the runtime's hooks, on its I/O thread ----------------------------------------------

  void on_start() override {
    for (const Socket* s : {&v4_, &v6_})
      if (s->fd >= 0) rt_.watch_shared(s->fd, EPOLLIN);  // EPOLLERR (the error queue) always
  }

  void on_shared_io(int fd, uint32_t) override {
    const int family = fd == v4_.fd ? AF_INET : AF_INET6;
    read_socket(family, false);
    if (!socket_for(family).raw) read_socket(family, true);
  }

  // The target's address is known and it has a slot: its first probe joins the send queue.
  bool begin(lib::PollJob& pj) override {
    IcmpJob& j = as_icmp(pj);
    const lib::Address* dst = nullptr;
    for (const auto& a : j.addrs)
      if (socket_for(a.family()).fd >= 0) {
        dst = &a;
        break;
      }
    if (dst == nullptr) {
      rt_.finish(j, OUTPOST_E_PERMISSION,
                 "no ICMP socket for this family: " + socket_for(j.addrs.front().family()).error);
      return true;
    }
    j.dst = *dst;
    j.id = ++next_id_;
    j.probes.resize(static_cast<std::size_t>(j.p.count));
    live_.emplace(j.id, &j);
    sends_.push(Send{rt_.now(), ++order_, j.id});
    return true;
  }

  void on_io(lib::PollJob&, int, uint32_t) override {}  // no descriptor of its own

  // reply_timeout after its last request.
  void on_timer(lib::PollJob& pj) override { finalize(as_icmp(pj), Reason::normal); }
  void on_deadline(lib::PollJob& pj) override { finalize(as_icmp(pj), Reason::deadline); }

  void on_end(lib::PollJob& pj, outpost_status, bool) override {
    IcmpJob& j = as_icmp(pj);
    j.done = true;
    for (const Probe& p : j.probes)
      if (p.in_flight) in_flight_.erase(p.key);
    if (j.id != 0) live_.erase(j.id);
    if (j.poll_left && j.poll_left->fetch_sub(1) == 1) {
      // Plugin-wide counts of packets we read and dropped, so a noisy network shows.
      const std::pair<const char*, uint64_t> counts[] = {
          {"malformed", malformed_}, {"foreign", foreign_}, {"late", late_}};
      for (const auto& [reason, v] : counts)
        rt_.emit(Metric{"icmp_ignored_packets_total",
                        {{"reason", reason}},
                        static_cast<double>(v),
                        0,
                        OUTPOST_METRIC_COUNTER});
    }
  }

  // Sends what is due, as the token bucket allows; says when to come back.
  int64_t on_turn(int64_t now) override {
    tokens_ = std::min(burst_, tokens_ + to_s(now - tokens_at_) * pps_);
    tokens_at_ = now;
    while (!sends_.empty() && sends_.top().when <= now && tokens_ >= 1.0) {
      const Send sd = sends_.top();
      sends_.pop();
      auto it = live_.find(sd.job);
      if (it == live_.end() || it->second->done) continue;
      if (!send_probe(*it->second, now)) {
        // The socket buffer is full: try again a little later rather than spin.
        sends_.push(Send{now + 200'000, ++order_, sd.job});
        break;
      }
      tokens_ -= 1.0;
    }
    if (sends_.empty()) return INT64_MAX;
    int64_t w = sends_.top().when;
    if (tokens_ < 1.0) w = std::max(w, now + to_ns((wake_tokens_ - tokens_) / pps_));
    return w;
  }

  // ---- probes -----------------------------------------------------------------------------

  uint32_t take_key() {
    // Key = identifier<<16 | sequence; every 65536 probes move on to a new identifier, so far
    // more than 65536 probes may be in flight. Skip keys a very old probe still holds.
    while (in_flight_.count(next_key_) != 0) ++next_key_;
    return next_key_++;
  }

  // False when the kernel asks us to retry (buffer full).
  bool send_probe(IcmpJob& j, int64_t now) {
    const int family = j.dst.family();
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
    msg.msg_name = &j.dst.ss;
    msg.msg_namelen = j.dst.len;
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
    if (j.p.ttl > 0) {
      msg.msg_control = control;
      msg.msg_controllen = sizeof control;
      cmsghdr* c = CMSG_FIRSTHDR(&msg);
      c->cmsg_level = family == AF_INET ? IPPROTO_IP : IPPROTO_IPV6;
      c->cmsg_type = family == AF_INET ? IP_TTL : IPV6_HOPLIMIT;
      c->cmsg_len = CMSG_LEN(sizeof(int));
      std::memcpy(CMSG_DATA(c), &j.p.ttl, sizeof(int));
    }
    Probe& p = j.probes[static_cast<std::size_t>(j.next)];
    p.sent_mono = clock_ns(CLOCK_MONOTONIC);
    p.sent_real = clock_ns(CLOCK_REALTIME);
    ssize_t rc = ::sendmsg(s.fd, &msg, MSG_DONTWAIT);
    // A ping socket reports a queued ICMP error on the next call; it belongs to another probe.
    if (rc < 0 && !s.raw && errno != EAGAIN && errno != ENOBUFS)
      rc = ::sendmsg(s.fd, &msg, MSG_DONTWAIT);
    if (rc < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS)) return false;
    ++j.sent;
    ++j.next;
    if (rc < 0) {
      const int err = errno;
      ++j.errors;
      j.outcome =
          (err == EHOSTUNREACH || err == ENETUNREACH) ? Outcome::unreachable : Outcome::send_failed;
      j.err_from = "local";
      j.err_detail = std::string("send failed: ") + std::strerror(err);
    } else {
      p.key = key;
      p.in_flight = true;
      in_flight_.emplace(key, InFlight{j.id, static_cast<uint32_t>(j.next - 1)});
      ++j.outstanding;
    }
    if (j.next < j.p.count)
      sends_.push(Send{now + j.p.interval_ns, ++order_, j.id});
    else
      rt_.set_timer(j, now + j.p.timeout_ns);
    maybe_finish(j);
    return true;
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
  Probe* take_probe(uint32_t key, int family, const uint8_t* dst, bool ours, IcmpJob*& job) {
    auto it = in_flight_.find(key);
    if (it == in_flight_.end()) {
      ++(ours ? late_ : foreign_);
      return nullptr;
    }
    auto live = live_.find(it->second.job);
    if (live == live_.end()) {
      in_flight_.erase(it);
      ++late_;
      return nullptr;
    }
    job = live->second;
    if (job->dst.family() != family || !job->same_ip(dst)) {
      ++foreign_;  // same key, other destination: somebody else's packet
      return nullptr;
    }
    Probe& p = job->probes[it->second.probe];
    in_flight_.erase(it);
    p.in_flight = false;
    --job->outstanding;
    return &p;
  }

  void on_echo_reply(int family, uint32_t key, int64_t rx_real) {
    IcmpJob* j = nullptr;
    Probe* pr = take_probe(key, family, nullptr, true, j);
    if (pr == nullptr) return;
    int64_t rtt = rx_real - pr->sent_real;
    if (rx_real == 0 || rtt <= 0)
      rtt = std::max<int64_t>(1, clock_ns(CLOCK_MONOTONIC) - pr->sent_mono);
    pr->rtt_ns = rtt;
    ++j->received;
    maybe_finish(*j);
  }

  // `r` is a parsed error quoting one of our requests; `from` sent it.
  void on_error(int family, const Parsed& r, const sockaddr_storage& from) {
    IcmpJob* j = nullptr;
    if (take_probe(r.key, family, r.orig_dst, r.has_token, j) == nullptr) return;
    ++j->errors;
    j->outcome = r.error == ErrorKind::ttl_exceeded ? Outcome::ttl_exceeded : Outcome::unreachable;
    j->err_type = r.type;
    j->err_code = r.code;
    j->err_from = sockaddr_text(from);
    j->err_detail = error_text(family, j->outcome, r.code) + " from " + j->err_from;
    maybe_finish(*j);
  }

  void maybe_finish(IcmpJob& j) {
    if (!j.done && j.next == j.p.count && j.outstanding == 0) finalize(j, Reason::normal);
  }

  void add(const Labels& labels, const char* name, double value) {
    rt_.emit(Metric{name, labels, value, 0, OUTPOST_METRIC_GAUGE});
  }

  // The target's outcome from its probes: metrics, an icmp_error event, its status.
  void finalize(IcmpJob& j, Reason why) {
    if (j.done) return;
    j.done = true;
    rtts_.clear();
    for (int k = 0; k < j.next; ++k)
      if (const Probe& p = j.probes[static_cast<std::size_t>(k)]; p.rtt_ns >= 0)
        rtts_.push_back(p.rtt_ns);
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
      std::snprintf(buf, sizeof buf, "%d/%d replies, rtt min/avg/max %.3f/%.3f/%.3f ms", j.received,
                    j.sent, min * 1e3, avg * 1e3, max * 1e3);
      detail = buf;
    } else if (j.outcome != Outcome::none) {
      detail = j.err_detail;
    } else if (j.sent == 0) {
      status = OUTPOST_E_TIMEOUT;
      detail = "deadline passed before a request could be sent";
    } else {
      std::snprintf(buf, sizeof buf, "no reply: %d/%d requests lost%s", j.sent, j.sent,
                    why == Reason::deadline ? " by the deadline" : "");
      detail = buf;
    }
    if (j.sent > 0) {
      const Labels& labels = j.labels;
      add(labels, "icmp_up", j.received > 0 ? 1 : 0);
      add(labels, "icmp_sent", j.sent);
      add(labels, "icmp_received", j.received);
      add(labels, "icmp_loss_ratio", 1.0 - static_cast<double>(j.received) / j.sent);
      if (!rtts_.empty()) {
        add(labels, "icmp_rtt_min_seconds", min);
        add(labels, "icmp_rtt_avg_seconds", avg);
        add(labels, "icmp_rtt_max_seconds", max);
      }
      if (rtts_.size() > 1) add(labels, "icmp_jitter_seconds", jitter);
      if (j.errors > 0 && j.outcome != Outcome::none) {
        const char* reason = j.outcome == Outcome::ttl_exceeded  ? "ttl_exceeded"
                             : j.outcome == Outcome::unreachable ? "unreachable"
                                                                 : "send_failed";
        Labels el = labels;
        el.emplace_back("reason", reason);
        el.emplace_back("from", j.err_from);
        add(el, "icmp_errors", j.errors);
        Event e;
        e.kind = "icmp_error";  // availability itself is the engine's to announce
        e.source = j.device;
        e.message = j.err_detail;
        e.severity = OUTPOST_SEV_WARNING;
        e.attributes = {{"address", j.address},
                        {"reason", reason},
                        {"from", j.err_from},
                        {"icmp_type", std::to_string(j.err_type)},
                        {"icmp_code", std::to_string(j.err_code)}};
        rt_.emit(std::move(e));
      }
    }
    rt_.finish(j, status, std::move(detail));
  }

  Host host_;
  // Settings.
  double pps_ = 20000, burst_ = 40, wake_tokens_ = 4;
  std::size_t payload_size_ = 56;
  std::string mode_;
  Params defaults_;
  uint32_t cookie_ = 0;
  bool started_ = false;  // start() and stop() are the host's, serialised

  // The I/O thread's own (the sockets are opened before it starts and closed after it ends).
  Socket v4_, v6_;
  std::unordered_map<uint64_t, IcmpJob*> live_;  // targets probing, by id
  std::unordered_map<uint32_t, InFlight> in_flight_;
  std::priority_queue<Send, std::vector<Send>, std::greater<>> sends_;
  uint64_t next_id_ = 0, order_ = 0;
  uint32_t next_key_ = 0;
  double tokens_ = 0;
  int64_t tokens_at_ = 0;
  std::vector<uint8_t> packet_, rx_;
  std::vector<int64_t> rtts_;
  uint64_t malformed_ = 0, foreign_ = 0, late_ = 0;

  lib::AsyncPoller rt_;  // last: stopped (in ~AsyncPoller) before what its hooks use goes
};

}  // namespace
}  // namespace outpost::icmp

OUTPOST_PLUGIN(outpost::icmp::IcmpPoller, "icmp", "0.1.0",
               "ICMP echo availability, RTT, loss and jitter for many targets from one socket")
