#include "outpost_lib/async_poller.hpp"

#include <ares.h>
#include <arpa/inet.h>
#include <net/if.h>
#include <netdb.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <deque>
#include <optional>
#include <queue>
#include <unordered_map>
#include <unordered_set>

namespace outpost::lib {
namespace {

constexpr int64_t kMs = 1'000'000;
// epoll tags: 0 is the wake-up eventfd; the rest carry the descriptor in the low 32 bits.
constexpr uint64_t kJobTag = uint64_t{1} << 62;
constexpr uint64_t kDnsTag = uint64_t{1} << 63;
constexpr uint64_t kSharedTag = uint64_t{1} << 61;

std::string errno_text(int err) {
  char buf[128];
  return ::strerror_r(err, buf, sizeof buf);  // GNU variant: returns char*
}

}  // namespace

std::optional<Address> Address::parse(const std::string& host) {
  Address a;
  auto* v4 = reinterpret_cast<sockaddr_in*>(&a.ss);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&a.ss);
  if (::inet_pton(AF_INET, host.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    a.len = sizeof(sockaddr_in);
    return a;
  }
  std::string h = host;
  uint32_t scope = 0;
  if (auto pct = h.find('%'); pct != std::string::npos) {  // fe80::1%eth0
    scope = ::if_nametoindex(h.c_str() + pct + 1);
    h.resize(pct);
  }
  if (::inet_pton(AF_INET6, h.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_scope_id = scope;
    a.len = sizeof(sockaddr_in6);
    return a;
  }
  return std::nullopt;
}

namespace {

const char* family_name(int f) { return f == AF_INET ? "IPv4" : "IPv6"; }

}  // namespace

std::string Address::host_of(std::string_view a) {
  if (a.size() >= 2 && a.front() == '[' && a.back() == ']') a = a.substr(1, a.size() - 2);
  return std::string(a);
}

void Address::set_port(uint16_t port) {
  if (ss.ss_family == AF_INET)
    reinterpret_cast<sockaddr_in*>(&ss)->sin_port = htons(port);
  else
    reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port = htons(port);
}

std::string Address::text() const {
  char buf[INET6_ADDRSTRLEN] = {};
  if (ss.ss_family == AF_INET)
    ::inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(&ss)->sin_addr, buf, sizeof buf);
  else
    ::inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(&ss)->sin6_addr, buf, sizeof buf);
  return buf;
}

struct AsyncPoller::Impl {
  struct Incoming {
    std::unique_ptr<PollJob> job;
    int64_t deadline_ns;
  };
  struct Cached {
    std::vector<Address> addrs;
    std::string error;
    int64_t expires_ns = 0;
  };
  struct Completion {
    uint64_t poll_id, target_id;
    outpost_status status;
    std::string detail;
  };
  struct Lookup {
    AsyncPoller* self;
    std::string host;
  };

  // Shared with poll() and stop().
  std::mutex mu;
  bool started = false, stopping = false;
  std::vector<Incoming> incoming;
  Stats stats;

  // The I/O thread's own.
  int epoll = -1, wake = -1;
  ares_channel dns = nullptr;
  bool dns_closing = false;
  std::unordered_set<int> dns_fds;
  std::unordered_map<std::string, Cached> cache;
  std::unordered_map<std::string, std::vector<uint64_t>> pending;  // host -> jobs waiting on it
  std::unordered_map<uint64_t, std::unique_ptr<PollJob>> jobs;
  std::vector<std::unique_ptr<PollJob>> ended;  // kept alive until the loop turn is over
  std::unordered_map<int, uint64_t> fd_owner;
  std::deque<uint64_t> waiting;
  std::priority_queue<std::pair<int64_t, uint64_t>, std::vector<std::pair<int64_t, uint64_t>>,
                      std::greater<>>
      timers;
  uint64_t next_seq = 1;
  int64_t turn_at = 0;  // when the protocol's on_turn wants to run again
  std::vector<int> shared_fds;
  std::vector<outpost::Metric> metrics;
  std::vector<outpost::Event> events;
  std::vector<Completion> completions;

  void wake_up() const {
    const uint64_t one = 1;
    if (wake >= 0) [[maybe_unused]]
      const ssize_t n = ::write(wake, &one, sizeof one);
  }
};

std::vector<outpost_field> async_poller_fields(const char* default_max_concurrent) {
  using outpost::field;
  return {
      field("max_concurrent", OUTPOST_FIELD_INT,
            "Targets in progress at once; the rest wait for a free slot (one that gets none "
            "before its deadline is reported overloaded, not down)",
            default_max_concurrent),
      field("dns_servers", OUTPOST_FIELD_LIST,
            "DNS servers for target host names (ip, ip:port, [ipv6]:port); empty: the system's "
            "(/etc/resolv.conf), /etc/hosts first"),
      field("dns_timeout", OUTPOST_FIELD_DURATION, "Time one DNS query may take", "2s"),
      field("dns_cache_ttl", OUTPOST_FIELD_DURATION,
            "Longest time an answer is kept (it is never kept past its own TTL)", "1h"),
  };
}

AsyncPollerOptions async_poller_options(const outpost::Config& cfg, std::string name,
                                        int64_t default_max_concurrent) {
  AsyncPollerOptions o;
  o.name = std::move(name);
  const int64_t mc = cfg.get_int("max_concurrent", default_max_concurrent);
  if (mc < 1 || mc > 1'000'000)
    throw outpost::Error(OUTPOST_E_CONFIG, "max_concurrent must be between 1 and 1000000");
  o.max_concurrent = static_cast<std::size_t>(mc);
  o.dns_servers = cfg.get_list("dns_servers");
  for (const auto& s : o.dns_servers)
    if (s.empty() || s.find(',') != std::string::npos)
      throw outpost::Error(OUTPOST_E_CONFIG, "dns_servers: not a server address: '" + s + "'");
  const double t = cfg.get_seconds("dns_timeout", 2.0);
  if (t <= 0 || t > 60) throw outpost::Error(OUTPOST_E_CONFIG, "dns_timeout: between 0 and 60s");
  o.dns_timeout_ms = static_cast<int>(t * 1000);
  const double ttl = cfg.get_seconds("dns_cache_ttl", 3600);
  if (ttl < 0 || ttl > 86400) throw outpost::Error(OUTPOST_E_CONFIG, "dns_cache_ttl: 0 to 1 day");
  o.dns_max_ttl_ns = static_cast<int64_t>(ttl * 1e9);
  o.dns_min_ttl_ns = std::min(o.dns_min_ttl_ns, o.dns_max_ttl_ns);
  return o;
}

AsyncPoller::AsyncPoller(outpost::Host host, Protocol& protocol, AsyncPollerOptions options)
    : host_(host), protocol_(protocol), opt_(std::move(options)), impl_(std::make_unique<Impl>()) {}

AsyncPoller::~AsyncPoller() { stop(); }

AsyncPoller::Stats AsyncPoller::stats() const {
  std::lock_guard g(impl_->mu);
  return impl_->stats;
}

void AsyncPoller::start() {
  Impl& m = *impl_;
  {
    std::lock_guard g(m.mu);
    if (m.started) return;
  }
  static std::once_flag ares_once;
  std::call_once(ares_once, [] { ares_library_init(ARES_LIB_INIT_ALL); });
  const int ep = ::epoll_create1(EPOLL_CLOEXEC);
  if (ep < 0) throw outpost::Error(OUTPOST_E_INTERNAL, "epoll_create1: " + errno_text(errno));
  const int ev = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (ev < 0) {
    ::close(ep);
    throw outpost::Error(OUTPOST_E_INTERNAL, "eventfd: " + errno_text(errno));
  }
  epoll_event e{};
  e.events = EPOLLIN;
  e.data.u64 = 0;
  ::epoll_ctl(ep, EPOLL_CTL_ADD, ev, &e);

  ares_options ao{};
  ao.timeout = opt_.dns_timeout_ms;
  ao.tries = opt_.dns_tries;
  ao.sock_state_cb = [](void* data, ares_socket_t fd, int readable, int writable) {
    auto* self = static_cast<AsyncPoller*>(data);
    Impl& im = *self->impl_;
    epoll_event x{};
    x.events = (readable ? EPOLLIN : 0u) | (writable ? EPOLLOUT : 0u);
    x.data.u64 = kDnsTag | static_cast<uint32_t>(fd);
    if (x.events == 0) {
      ::epoll_ctl(im.epoll, EPOLL_CTL_DEL, fd, nullptr);
      im.dns_fds.erase(fd);
    } else if (im.dns_fds.insert(fd).second) {
      ::epoll_ctl(im.epoll, EPOLL_CTL_ADD, fd, &x);
    } else {
      ::epoll_ctl(im.epoll, EPOLL_CTL_MOD, fd, &x);
    }
  };
  ao.sock_state_cb_data = this;
  m.epoll = ep;
  m.wake = ev;
  int rc =
      ares_init_options(&m.dns, &ao, ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES | ARES_OPT_SOCK_STATE_CB);
  if (rc == ARES_SUCCESS && !opt_.dns_servers.empty()) {
    std::string csv;
    for (const auto& s : opt_.dns_servers) csv += (csv.empty() ? "" : ",") + s;
    rc = ares_set_servers_ports_csv(m.dns, csv.c_str());
  }
  if (rc != ARES_SUCCESS) {
    const std::string why = ares_strerror(rc);
    if (m.dns != nullptr) ares_destroy(m.dns);
    m.dns = nullptr;
    ::close(ep);
    ::close(ev);
    m.epoll = m.wake = -1;
    throw outpost::Error(rc == ARES_EBADSTR ? OUTPOST_E_CONFIG : OUTPOST_E_INTERNAL,
                         "DNS resolver: " + why);
  }
  {
    std::lock_guard g(m.mu);
    m.started = true;
    m.stopping = false;
  }
  thread_ = std::thread([this] { loop(); });
}

void AsyncPoller::stop() {
  Impl& m = *impl_;
  {
    std::lock_guard g(m.mu);
    if (!m.started) return;
    m.stopping = true;
    m.wake_up();
  }
  if (thread_.joinable()) thread_.join();
  // Lookups still in flight call back with ARES_EDESTRUCTION; every job has ended already.
  m.dns_closing = true;
  if (m.dns != nullptr) ares_destroy(m.dns);
  m.dns = nullptr;
  m.dns_fds.clear();
  ::close(m.epoll);
  ::close(m.wake);
  m.epoll = m.wake = -1;
  std::lock_guard g(m.mu);
  m.started = false;
  m.dns_closing = false;
}

int start_connect(const Address& a, uint16_t port, int* err) {
  Address to = a;
  to.set_port(port);
  const int fd = ::socket(to.family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    *err = errno;
    return -1;
  }
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&to.ss), to.len) != 0 &&
      errno != EINPROGRESS) {
    *err = errno;
    ::close(fd);
    return -1;
  }
  *err = 0;
  return fd;
}

int connect_result(int fd, uint32_t events) {
  int err = 0;
  socklen_t len = sizeof err;
  if (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
  if (err == 0 && (events & (EPOLLERR | EPOLLHUP)) != 0) err = ECONNREFUSED;
  return err;
}

void AsyncPoller::submit(
    const outpost::PollRequest& req,
    const std::function<std::unique_ptr<PollJob>(const outpost::Target&)>& make) {
  std::vector<std::unique_ptr<PollJob>> jobs;
  jobs.reserve(req.size());
  for (std::size_t i = 0; i < req.size(); ++i) {
    const outpost::Target t = req[i];
    try {
      std::unique_ptr<PollJob> j = make(t);
      j->poll_id = req.id();
      j->target_id = t.id();
      jobs.push_back(std::move(j));
    } catch (const outpost::Error& e) {
      host_.complete(req.id(), t.id(), e.status(), e.what());
    }
  }
  submit(std::move(jobs), req.deadline_ns());
}

void AsyncPoller::submit(std::vector<std::unique_ptr<PollJob>> jobs, int64_t deadline_ns) {
  if (jobs.empty()) return;
  Impl& m = *impl_;
  {
    std::lock_guard g(m.mu);
    if (m.started && !m.stopping) {
      m.stats.submitted += jobs.size();
      for (auto& j : jobs) m.incoming.push_back({std::move(j), deadline_ns});
      m.wake_up();
      return;
    }
  }
  for (const auto& j : jobs)
    host_.complete(j->poll_id, j->target_id, OUTPOST_E_UNAVAILABLE,
                   opt_.name + " plugin not started");
}

// ---- the I/O thread ------------------------------------------------------------------------

void AsyncPoller::loop() {
  Impl& m = *impl_;
  std::vector<epoll_event> events(512);
  try {
    protocol_.on_start();
  } catch (const std::exception& e) {
    host_.report_error(OUTPOST_E_INTERNAL, opt_.name + " start: " + e.what());
  }
  for (;;) {
    bool stopping = false;
    try {
      const int n =
          ::epoll_wait(m.epoll, events.data(), static_cast<int>(events.size()), wait_ms());
      for (int i = 0; i < n; ++i) {
        const auto& e = events[static_cast<std::size_t>(i)];
        const int fd = static_cast<int>(e.data.u64 & 0xFFFFFFFFu);
        if (e.data.u64 == 0) {
          uint64_t v = 0;
          [[maybe_unused]] auto r = ::read(m.wake, &v, sizeof v);
        } else if (e.data.u64 & kSharedTag) {
          protocol_.on_shared_io(fd, e.events);
        } else if (e.data.u64 & kDnsTag) {
          ares_process_fd(m.dns,
                          (e.events & (EPOLLIN | EPOLLERR | EPOLLHUP)) ? fd : ARES_SOCKET_BAD,
                          (e.events & EPOLLOUT) ? fd : ARES_SOCKET_BAD);
        } else if (auto it = m.fd_owner.find(fd); it != m.fd_owner.end()) {
          if (auto j = m.jobs.find(it->second); j != m.jobs.end()) {
            PollJob& job = *j->second;
            try {
              protocol_.on_io(job, fd, e.events);
            } catch (const std::exception& ex) {
              contain(job, "on_io", ex);
            }
          }
        }
      }
      {
        std::lock_guard g(m.mu);
        stopping = m.stopping;
      }
      take_incoming();
      ares_process_fd(m.dns, ARES_SOCKET_BAD, ARES_SOCKET_BAD);  // lookups past their timeout
      fire_timers();
      admit();
      m.turn_at = protocol_.on_turn(host_.monotonic_ns());
      flush();
      m.ended.clear();
    } catch (const std::exception& e) {
      // Most likely out of memory; keep serving rather than leave targets unreported.
      host_.report_error(OUTPOST_E_INTERNAL, opt_.name + " I/O loop: " + e.what());
    }
    if (stopping) break;
  }
  stop_all();
}

void AsyncPoller::stop_all() {
  Impl& m = *impl_;
  stopping_ = true;
  const std::string why = opt_.name + " plugin stopped";
  try {
    std::vector<PollJob*> open;
    for (auto& [seq, j] : m.jobs) open.push_back(j.get());
    for (PollJob* j : open) finish(*j, OUTPOST_E_UNAVAILABLE, why);
    std::vector<Impl::Incoming> in;
    {
      std::lock_guard g(m.mu);
      in.swap(m.incoming);
    }
    for (auto& i : in)
      m.completions.push_back({i.job->poll_id, i.job->target_id, OUTPOST_E_UNAVAILABLE, why});
    m.pending.clear();
    m.waiting.clear();
    m.timers = {};
    flush();
  } catch (...) {
    host_.report_error(OUTPOST_E_INTERNAL, opt_.name + ": could not report targets at stop");
  }
  m.ended.clear();
  m.cache.clear();
  for (int fd : m.shared_fds) ::epoll_ctl(m.epoll, EPOLL_CTL_DEL, fd, nullptr);
  m.shared_fds.clear();
  m.turn_at = 0;
  stopping_ = false;  // a later start() runs afresh
}

void AsyncPoller::take_incoming() {
  Impl& m = *impl_;
  std::vector<Impl::Incoming> in;
  {
    std::lock_guard g(m.mu);
    in.swap(m.incoming);
  }
  const int64_t now = host_.monotonic_ns();
  for (auto& i : in) {
    const uint64_t seq = m.next_seq++;
    PollJob& j = *i.job;
    j.seq_ = seq;
    // Report a little before the deadline, so a completion racing it is not counted late.
    const int64_t margin = std::clamp((i.deadline_ns - now) / 20, 5 * kMs, 250 * kMs);
    j.deadline_ns = i.deadline_ns - margin;
    j.stage = PollJob::Stage::resolving;
    m.jobs.emplace(seq, std::move(i.job));
    arm(j);
    if (j.host.empty()) {
      finish(j, OUTPOST_E_NOT_FOUND, "no address: the target's address is empty");
      continue;
    }
    if (auto a = Address::parse(j.host)) {
      resolved_one(j, {*a}, {});
      continue;
    }
    if (auto c = m.cache.find(j.host); c != m.cache.end() && c->second.expires_ns > now) {
      {
        std::lock_guard g(m.mu);
        m.stats.dns_cache_hits++;
      }
      resolved_one(j, c->second.addrs, c->second.error);  // may end the job: no lock held
      continue;
    }
    auto& waiters = m.pending[j.host];
    waiters.push_back(seq);
    if (waiters.size() > 1) continue;  // one lookup per name
    {
      std::lock_guard g(m.mu);
      m.stats.dns_queries++;
    }
    ares_addrinfo_hints hints{};
    hints.ai_family = opt_.family;
    hints.ai_socktype = opt_.socktype;
    auto* lookup = new Impl::Lookup{this, j.host};
    ares_getaddrinfo(
        m.dns, j.host.c_str(), nullptr, &hints,
        [](void* arg, int status, int, ares_addrinfo* res) {
          std::unique_ptr<Impl::Lookup> l(static_cast<Impl::Lookup*>(arg));
          std::vector<Address> addrs;
          int ttl = INT32_MAX;
          if (status == ARES_SUCCESS && res != nullptr) {
            for (ares_addrinfo_node* n = res->nodes; n != nullptr; n = n->ai_next) {
              if ((n->ai_family != AF_INET && n->ai_family != AF_INET6) ||
                  n->ai_addrlen > sizeof(sockaddr_storage))
                continue;
              Address a;
              std::memcpy(&a.ss, n->ai_addr, n->ai_addrlen);
              a.len = static_cast<socklen_t>(n->ai_addrlen);
              addrs.push_back(a);
              ttl = std::min(ttl, n->ai_ttl);
            }
          }
          if (res != nullptr) ares_freeaddrinfo(res);
          if (l->self->impl_->dns_closing || status == ARES_EDESTRUCTION) return;
          l->self->resolved(l->host, addrs,
                            status == ARES_SUCCESS ? std::string() : ares_strerror(status), ttl);
        },
        lookup);
  }
}

void AsyncPoller::resolved(const std::string& host, const std::vector<Address>& addrs,
                           const std::string& error, int ttl_s) {
  Impl& m = *impl_;
  const int64_t now = host_.monotonic_ns();
  int64_t keep = error.empty() ? std::clamp<int64_t>(int64_t{std::max(ttl_s, 0)} * 1'000'000'000,
                                                     opt_.dns_min_ttl_ns, opt_.dns_max_ttl_ns)
                               : std::min(opt_.dns_negative_ttl_ns, opt_.dns_max_ttl_ns);
  if (m.cache.size() >= opt_.dns_cache_size)
    std::erase_if(m.cache, [&](const auto& c) { return c.second.expires_ns <= now; });
  if (m.cache.size() >= opt_.dns_cache_size) m.cache.clear();  // a flood of names: start over
  if (keep > 0) m.cache[host] = Impl::Cached{addrs, error, now + keep};
  auto node = m.pending.extract(host);
  if (node.empty()) return;
  for (uint64_t seq : node.mapped())
    if (auto it = m.jobs.find(seq);
        it != m.jobs.end() && it->second->stage == PollJob::Stage::resolving)
      resolved_one(*it->second, addrs, error);
}

void AsyncPoller::resolved_one(PollJob& j, std::vector<Address> addrs, const std::string& error) {
  if (!error.empty())
    return finish(j, OUTPOST_E_NOT_FOUND, "cannot resolve '" + j.host + "': " + error);
  if (opt_.family != AF_UNSPEC) {
    std::erase_if(addrs, [&](const Address& a) { return a.family() != opt_.family; });
    if (addrs.empty())
      return finish(j, OUTPOST_E_NOT_FOUND,
                    "'" + j.host + "' has no " + family_name(opt_.family) + " address");
  }
  if (addrs.empty()) return finish(j, OUTPOST_E_NOT_FOUND, "'" + j.host + "' has no address");
  j.addrs = std::move(addrs);
  j.stage = PollJob::Stage::waiting;
  j.queued_ns = host_.monotonic_ns();
  impl_->waiting.push_back(j.seq_);
}

// Starts waiting jobs while slots are free. A job that cannot open a socket for lack of
// descriptors waits for one to be released instead of failing.
void AsyncPoller::admit() {
  Impl& m = *impl_;
  while (running_ < opt_.max_concurrent && !m.waiting.empty()) {
    const uint64_t seq = m.waiting.front();
    m.waiting.pop_front();
    auto it = m.jobs.find(seq);
    if (it == m.jobs.end() || it->second->stage != PollJob::Stage::waiting) continue;
    PollJob& j = *it->second;
    j.stage = PollJob::Stage::running;
    j.started_ns = host_.monotonic_ns();
    ++running_;
    bool begun = true;
    try {
      begun = protocol_.begin(j);
    } catch (const std::exception& ex) {
      contain(j, "begin", ex);
      continue;
    }
    if (!begun) {
      --running_;
      j.stage = PollJob::Stage::waiting;
      j.protocol_timer_ = INT64_MAX;  // a timer begin() set is for a job that runs
      arm(j);
      m.waiting.push_front(seq);
      saturated_ns_ = host_.monotonic_ns();
      return;
    }
  }
  // Remembered so a job that times out in the queue can say the slots were the reason.
  if (!m.waiting.empty()) saturated_ns_ = host_.monotonic_ns();
}

void AsyncPoller::arm(PollJob& j) {
  const int64_t at = std::min(j.deadline_ns, j.protocol_timer_);
  if (at == j.timer_at_) return;
  j.timer_at_ = at;
  impl_->timers.emplace(at, j.seq_);
}

void AsyncPoller::set_timer(PollJob& j, int64_t at_ns) {
  j.protocol_timer_ = at_ns;
  arm(j);
}

void AsyncPoller::fire_timers() {
  Impl& m = *impl_;
  const int64_t now = host_.monotonic_ns();
  std::vector<std::pair<int64_t, uint64_t>> due;
  while (!m.timers.empty() && m.timers.top().first <= now) {
    auto [at, seq] = m.timers.top();
    m.timers.pop();
    auto it = m.jobs.find(seq);
    if (it != m.jobs.end() && it->second->timer_at_ == at) due.emplace_back(at, seq);  // else stale
  }
  for (const auto& [at, seq] : due) {
    auto it = m.jobs.find(seq);
    // Gone, or an identical entry of the same job handled a moment ago (set, cancel, set again).
    if (it == m.jobs.end() || it->second->timer_at_ != at) continue;
    PollJob& j = *it->second;
    j.timer_at_ = INT64_MAX;
    if (now < j.deadline_ns) {
      j.protocol_timer_ = INT64_MAX;
      if (j.stage == PollJob::Stage::running) {
        try {
          protocol_.on_timer(j);
        } catch (const std::exception& ex) {
          contain(j, "on_timer", ex);
        }
      }
      if (m.jobs.count(seq)) arm(j);
      continue;
    }
    switch (j.stage) {
      case PollJob::Stage::resolving:
        finish(j, OUTPOST_E_TIMEOUT, "resolving '" + j.host + "' timed out");
        break;
      case PollJob::Stage::waiting:  // never attempted: says nothing about the device
        finish(j, OUTPOST_E_OVERLOADED,
               saturated_since(j.queued_ns)
                   ? "no slot free before the deadline (max_concurrent " +
                         std::to_string(opt_.max_concurrent) + ")"
                   : std::string("deadline reached before it could start"));
        break;
      case PollJob::Stage::running:
        try {
          protocol_.on_deadline(j);
        } catch (const std::exception& ex) {
          contain(j, "on_deadline", ex);
        }
        if (m.jobs.count(seq)) finish(j, OUTPOST_E_TIMEOUT, "deadline reached");
        break;
    }
  }
}

void AsyncPoller::watch(PollJob& j, int fd, uint32_t events, FdOwner owner) {
  Impl& m = *impl_;
  epoll_event e{};
  e.events = events;
  e.data.u64 = kJobTag | static_cast<uint32_t>(fd);
  auto [it, fresh] = m.fd_owner.emplace(fd, j.seq_);
  if (fresh) {
    j.fds_.push_back({fd, owner == FdOwner::runtime});
    if (::epoll_ctl(m.epoll, EPOLL_CTL_ADD, fd, &e) != 0)
      throw outpost::Error(OUTPOST_E_INTERNAL, "epoll_ctl: " + errno_text(errno));
  } else {
    ::epoll_ctl(m.epoll, EPOLL_CTL_MOD, fd, &e);
  }
}

void AsyncPoller::watch_shared(int fd, uint32_t events) {
  Impl& m = *impl_;
  epoll_event e{};
  e.events = events;
  e.data.u64 = kSharedTag | static_cast<uint32_t>(fd);
  if (std::find(m.shared_fds.begin(), m.shared_fds.end(), fd) == m.shared_fds.end()) {
    if (::epoll_ctl(m.epoll, EPOLL_CTL_ADD, fd, &e) != 0)
      throw outpost::Error(OUTPOST_E_INTERNAL, "epoll_ctl: " + errno_text(errno));
    m.shared_fds.push_back(fd);
  } else {
    ::epoll_ctl(m.epoll, EPOLL_CTL_MOD, fd, &e);
  }
}

void AsyncPoller::unwatch(PollJob& j, int fd) {
  Impl& m = *impl_;
  if (m.fd_owner.erase(fd) == 0) return;
  bool owned = true;
  std::erase_if(j.fds_, [&](const PollJob::Watched& w) {
    if (w.fd == fd) owned = w.owned;
    return w.fd == fd;
  });
  if (owned)
    ::close(fd);  // closing also removes it from the epoll set
  else
    ::epoll_ctl(m.epoll, EPOLL_CTL_DEL, fd, nullptr);
}

// A protocol hook that throws (a bug, or memory running out) fails its own job; the loop turn
// goes on, so timers, completions and stop() still work for every other job.
void AsyncPoller::contain(PollJob& j, const char* hook, const std::exception& e) {
  finish(j, OUTPOST_E_INTERNAL, opt_.name + " " + hook + ": " + e.what());
}

void AsyncPoller::finish(PollJob& j, outpost_status status, std::string detail) {
  Impl& m = *impl_;
  auto it = m.jobs.find(j.seq_);
  if (it == m.jobs.end() || it->second.get() != &j) return;  // ended already: once only
  m.completions.push_back({j.poll_id, j.target_id, status, std::move(detail)});
  std::unique_ptr<PollJob> keep = std::move(it->second);
  m.jobs.erase(it);
  for (const auto& w : j.fds_) {
    m.fd_owner.erase(w.fd);
    if (!w.owned) ::epoll_ctl(m.epoll, EPOLL_CTL_DEL, w.fd, nullptr);  // on_end closes it
  }
  protocol_.on_end(j, status, stopping_);
  for (const auto& w : j.fds_)
    if (w.owned) ::close(w.fd);
  j.fds_.clear();
  if (j.stage == PollJob::Stage::running) --running_;
  m.ended.push_back(std::move(keep));
}

void AsyncPoller::emit(outpost::Metric metric) { impl_->metrics.push_back(std::move(metric)); }

void AsyncPoller::emit(outpost::Event event) { impl_->events.push_back(std::move(event)); }

int AsyncPoller::wait_ms() {
  Impl& m = *impl_;
  int64_t cap = 60'000;
  while (!m.timers.empty()) {
    auto [at, seq] = m.timers.top();
    auto it = m.jobs.find(seq);
    if (it == m.jobs.end() || it->second->timer_at_ != at) {
      m.timers.pop();  // stale: the job ended or its timer moved
      continue;
    }
    const int64_t left = at - host_.monotonic_ns();
    cap = left <= 0 ? 0 : std::min(cap, (left + kMs - 1) / kMs);
    break;
  }
  if (m.turn_at != INT64_MAX) {
    const int64_t left = m.turn_at - host_.monotonic_ns();
    cap = left <= 0 ? 0 : std::min(cap, (left + kMs - 1) / kMs);
  }
  timeval max{static_cast<time_t>(cap / 1000), static_cast<suseconds_t>((cap % 1000) * 1000)}, tv{};
  if (const timeval* t = ares_timeout(m.dns, &max, &tv))
    cap = std::min<int64_t>(cap, t->tv_sec * 1000 + (t->tv_usec + 999) / 1000);
  return static_cast<int>(cap);
}

// Metrics, events and completions of one loop turn leave together: one emit however many targets
// ended.
void AsyncPoller::flush() {
  Impl& m = *impl_;
  if (!m.metrics.empty() || !m.events.empty()) {
    std::vector<outpost::Metric> batch;
    std::vector<outpost::Event> events;
    batch.swap(m.metrics);
    events.swap(m.events);
    host_.emit(batch, events);  // a BUSY answer is the host's back-pressure, counted there
  }
  if (m.completions.empty()) return;
  std::vector<Impl::Completion> done;
  done.swap(m.completions);
  {
    std::lock_guard g(m.mu);
    m.stats.completed += done.size();
  }
  for (const auto& c : done) host_.complete(c.poll_id, c.target_id, c.status, c.detail);
}

}  // namespace outpost::lib
