// Integration tests of the icmp plugin against the local kernel: 127/8 and ::1, plus network
// namespaces this test creates (and removes) for the silent, ttl-exceeded and unreachable cases.
// Packets only ever go to 127/8, ::1 or addresses inside those namespaces.
#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <catch2/catch.hpp>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <map>
#include <optional>
#include <outpost/testing.hpp>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace {

using outpost::testing::FakeHost;
using outpost::testing::RecordedCompletion;
using KV = std::vector<std::pair<std::string, std::string>>;

const outpost_plugin_descriptor* plugin() {
  static const outpost_plugin_descriptor* d =
      outpost::testing::open_plugin(OUTPOST_TEST_PLUGIN_DIR "/outpost_icmp.so");
  return d;
}

bool need_root() {
  if (::geteuid() == 0) return true;
  WARN("not root: skipping (raw ICMP sockets and network namespaces need root)");
  return false;
}

int sh(const std::string& cmd) { return std::system((cmd + " >/dev/null 2>&1").c_str()); }

struct Spec {
  std::string device, address;
  KV params;
};

struct PollResult {
  std::vector<RecordedCompletion> done;
  double call_ms = 0;            // how long poll() itself took
  bool before_deadline = false;  // every target completed before the deadline
  std::map<std::string, RecordedCompletion> by_device;
};

// Polls through the raw ABI (so tags can be passed and the poll() call timed), frees the request
// right after the call (the plugin must have copied it) and waits for every completion.
PollResult run_poll(FakeHost& host, const std::vector<Spec>& specs, int deadline_ms,
                    const KV& tags = {}) {
  static uint64_t next_id = 1000;
  const uint64_t poll_id = ++next_id;
  PollResult res;
  int64_t deadline = 0;
  {
    std::vector<std::vector<outpost_kv>> kvs(specs.size());
    std::vector<outpost_kv> tag_kv;
    for (const auto& [k, v] : tags) tag_kv.push_back({{k.data(), k.size()}, {v.data(), v.size()}});
    std::vector<outpost_target> ts(specs.size());
    for (std::size_t i = 0; i < specs.size(); ++i) {
      for (const auto& [k, v] : specs[i].params)
        kvs[i].push_back({{k.data(), k.size()}, {v.data(), v.size()}});
      ts[i].id = i + 1;
      ts[i].device = {specs[i].device.data(), specs[i].device.size()};
      ts[i].address = {specs[i].address.data(), specs[i].address.size()};
      ts[i].params = kvs[i].data();
      ts[i].param_count = kvs[i].size();
      ts[i].tags = tag_kv.data();
      ts[i].tag_count = tag_kv.size();
    }
    outpost_poll_request r{};
    r.struct_size = sizeof r;
    r.target_size = sizeof(outpost_target);
    r.poll_id = poll_id;
    deadline = FakeHost::mono() + int64_t{deadline_ms} * 1'000'000;
    r.deadline_ns = deadline;
    r.targets = ts.data();
    r.target_count = ts.size();
    const auto t0 = std::chrono::steady_clock::now();
    REQUIRE(host.descriptor()->poll(host.instance(), &r) == OUTPOST_OK);
    res.call_ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    std::fill(ts.begin(), ts.end(), outpost_target{});  // poisons what the plugin should not keep
  }
  auto count = [&] {
    std::size_t n = 0;
    for (const auto& c : host.completions()) n += c.poll_id == poll_id;
    return n;
  };
  while (count() < specs.size() && FakeHost::mono() < deadline + 3'000'000'000)
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  res.before_deadline = count() >= specs.size() && FakeHost::mono() <= deadline;
  std::this_thread::sleep_for(std::chrono::milliseconds(30));  // let duplicates show up
  for (const auto& c : host.completions())
    if (c.poll_id == poll_id) res.done.push_back(c);
  for (const auto& c : res.done) res.by_device[specs.at(c.target_id - 1).device] = c;
  return res;
}

// Last value of every metric by device and name, from one snapshot (FakeHost::find copies all).
class Metrics {
 public:
  explicit Metrics(const FakeHost& host) {
    for (const auto& m : host.metrics()) {
      auto it = m.labels.find("device");
      if (it != m.labels.end()) values_[it->second][m.name] = m.value;
    }
  }
  std::optional<double> operator()(const std::string& name, const std::string& device) const {
    auto d = values_.find(device);
    if (d == values_.end()) return std::nullopt;
    auto v = d->second.find(name);
    if (v == d->second.end()) return std::nullopt;
    return v->second;
  }

 private:
  std::map<std::string, std::map<std::string, double>> values_;
};

std::optional<double> metric(const FakeHost& host, const std::string& name,
                             const std::string& device) {
  return Metrics(host)(name, device);
}

double max_counter(const FakeHost& host, const std::string& reason) {
  double m = 0;
  for (const auto& x : host.find("icmp_ignored_packets_total", {{"reason", reason}}))
    m = std::max(m, x.value);
  return m;
}

std::string loop_addr(int second, int i) {
  return "127." + std::to_string(second) + "." + std::to_string(i / 250) + "." +
         std::to_string(i % 250 + 1);
}

void check_all_up(const FakeHost& host, const PollResult& r, std::size_t n, int count) {
  REQUIRE(r.done.size() == n);  // exactly once each
  std::set<uint64_t> ids;
  for (const auto& c : r.done) ids.insert(c.target_id);
  REQUIRE(ids.size() == n);
  std::size_t up = 0;
  const Metrics metric(host);
  for (const auto& [dev, c] : r.by_device) {
    INFO(dev << ": " << c.detail);
    CHECK(c.status == OUTPOST_OK);
    up += c.status == OUTPOST_OK;
    CHECK(metric("icmp_up", dev) == 1.0);
    CHECK(metric("icmp_loss_ratio", dev) == 0.0);
    CHECK(metric("icmp_sent", dev) == count);
    CHECK(metric("icmp_received", dev) == count);
    const auto avg = metric("icmp_rtt_avg_seconds", dev);
    REQUIRE(avg.has_value());
    CHECK(*avg > 0);
    CHECK(*metric("icmp_rtt_min_seconds", dev) <= *avg);
    CHECK(*metric("icmp_rtt_max_seconds", dev) >= *avg);
    if (count > 1) CHECK(metric("icmp_jitter_seconds", dev) >= 0.0);
  }
  CHECK(up == n);
}

}  // namespace

TEST_CASE("icmp: schema, config validation, lifecycle without start", "[icmp]") {
  const auto* d = plugin();
  REQUIRE(d != nullptr);
  CHECK(outpost::testing::str(d->name) == "icmp");
  CHECK((d->kinds & OUTPOST_KIND_POLLER) != 0);
  std::set<std::string> cfg, tgt;
  for (std::size_t i = 0; i < d->config_field_count; ++i)
    cfg.insert(outpost::testing::str(d->config_fields[i].name));
  for (std::size_t i = 0; i < d->target_field_count; ++i)
    tgt.insert(outpost::testing::str(d->target_fields[i].name));
  for (const char* k : {"max_pps", "payload_size", "ttl", "count", "probe_interval",
                        "reply_timeout", "socket_mode"})
    CHECK(cfg.count(k) == 1);
  for (const char* k : {"count", "probe_interval", "reply_timeout", "ttl"})
    CHECK(tgt.count(k) == 1);

  for (const KV& bad : {KV{{"max_pps", "fast"}}, KV{{"max_pps", "0"}}, KV{{"payload_size", "2"}},
                        KV{{"ttl", "300"}}, KV{{"probe_interval", "soon"}}, KV{{"count", "0"}},
                        KV{{"socket_mode", "magic"}}}) {
    FakeHost h(d);
    INFO(bad[0].first << "=" << bad[0].second);
    CHECK(h.create(bad) == OUTPOST_E_CONFIG);
    CHECK(h.instance() == nullptr);
  }

  FakeHost h(d);
  REQUIRE(h.create({{"max_pps", "1000"}, {"count", "2"}}) == OUTPOST_OK);
  // Not started: every target still completes, at once.
  auto r = run_poll(h, {{"a", "127.0.0.1", {}}}, 1000);
  REQUIRE(r.done.size() == 1);
  CHECK(r.done[0].status == OUTPOST_E_UNAVAILABLE);
  h.stop();  // stop without start is harmless, and so is destroy (FakeHost's destructor)
}

TEST_CASE("icmp: hundreds of loopback addresses in one poll, with tags as labels", "[icmp]") {
  if (!need_root()) return;
  FakeHost h(plugin());
  REQUIRE(h.create({{"max_pps", "5000"}}) == OUTPOST_OK);
  REQUIRE(h.start() == OUTPOST_OK);
  std::vector<Spec> specs;
  for (int i = 0; i < 300; ++i)
    specs.push_back({"dev" + std::to_string(i),
                     loop_addr(10, i),
                     {{"count", "2"}, {"probe_interval", "20ms"}}});
  auto r = run_poll(h, specs, 5000, {{"site", "lab"}, {"rack", "r1"}});
  CHECK(r.call_ms < 100);
  CHECK(r.before_deadline);
  check_all_up(h, r, specs.size(), 2);
  auto m = h.find("icmp_up", {{"device", "dev7"}});
  REQUIRE(m.size() == 1);
  CHECK(m[0].labels.at("address") == loop_addr(10, 7));
  CHECK(m[0].labels.at("site") == "lab");
  CHECK(m[0].labels.at("rack") == "r1");
  CHECK(h.stop() == OUTPOST_OK);
}

TEST_CASE("icmp: IPv6 loopback", "[icmp]") {
  if (!need_root()) return;
  const int fd = ::socket(AF_INET6, SOCK_DGRAM, 0);
  sockaddr_in6 lo{};
  lo.sin6_family = AF_INET6;
  lo.sin6_addr = in6addr_loopback;
  const bool has_v6 = fd >= 0 && ::bind(fd, reinterpret_cast<sockaddr*>(&lo), sizeof lo) == 0;
  if (fd >= 0) ::close(fd);
  if (!has_v6) {
    WARN("no ::1 on this machine: skipping the IPv6 loopback case");
    return;
  }
  FakeHost h(plugin());
  REQUIRE(h.create() == OUTPOST_OK);
  REQUIRE(h.start() == OUTPOST_OK);
  auto r = run_poll(h,
                    {{"v6", "::1", {{"count", "3"}, {"probe_interval", "10ms"}}},
                     {"v6b", "[::1]", {{"count", "3"}, {"probe_interval", "10ms"}}}},
                    3000);
  check_all_up(h, r, 2, 3);
}

TEST_CASE("icmp: bad addresses, names and parameters complete per target", "[icmp]") {
  if (!need_root()) return;
  FakeHost h(plugin());
  REQUIRE(h.create({{"count", "1"}}) == OUTPOST_OK);
  REQUIRE(h.start() == OUTPOST_OK);
  auto r = run_poll(h,
                    {{"bad", "not..an..ip", {}},
                     {"empty", "", {}},
                     {"good", "127.0.0.1", {}},
                     {"name", "localhost", {}},
                     {"badcount", "127.0.0.1", {{"count", "zero"}}},
                     {"badttl", "127.0.0.1", {{"ttl", "999"}}}},
                    5000);
  REQUIRE(r.done.size() == 6);
  CHECK(r.by_device["bad"].status == OUTPOST_E_NOT_FOUND);
  CHECK(r.by_device["empty"].status == OUTPOST_E_NOT_FOUND);
  CHECK(r.by_device["good"].status == OUTPOST_OK);
  CHECK(r.by_device["name"].status == OUTPOST_OK);
  CHECK(r.by_device["badcount"].status == OUTPOST_E_CONFIG);
  CHECK(r.by_device["badttl"].status == OUTPOST_E_CONFIG);
  CHECK(h.find("icmp_up", {{"device", "bad"}}).empty());
}

TEST_CASE("icmp: malformed and foreign packets are counted and ignored", "[icmp]") {
  if (!need_root()) return;
  FakeHost h(plugin());
  REQUIRE(h.create({{"max_pps", "2000"}}) == OUTPOST_OK);
  REQUIRE(h.start() == OUTPOST_OK);
  std::atomic<bool> done{false};
  // Junk aimed at ourselves: every raw ICMP socket of the host reads it.
  std::thread junk([&] {
    const int fd = ::socket(AF_INET, SOCK_RAW, IPPROTO_ICMP);
    if (fd < 0) return;
    sockaddr_in to{};
    to.sin_family = AF_INET;
    to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    uint8_t pkt[64];
    unsigned seed = 7;
    while (!done) {
      for (std::size_t len = 1; len <= sizeof pkt; len += 3) {
        for (auto& b : pkt) b = static_cast<uint8_t>(seed = seed * 1103515245u + 12345u);
        const uint8_t types[] = {0, 3, 11};
        pkt[0] = types[len % 3];
        pkt[1] = 0;
        if (len > 28 && pkt[0] != 0) {  // an error quoting an ICMP echo request that is not ours
          pkt[8] = 0x45;
          pkt[17] = IPPROTO_ICMP;
          pkt[28] = 8;
        }
        ::sendto(fd, pkt, len, 0, reinterpret_cast<sockaddr*>(&to), sizeof to);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    ::close(fd);
  });
  // Another pinger at the same time: its replies reach our raw socket too.
  std::thread other([] { sh("fping -q -c 20 -p 20 127.0.0.1 127.11.9.9"); });
  std::vector<Spec> specs;
  for (int i = 0; i < 50; ++i)
    specs.push_back(
        {"j" + std::to_string(i), loop_addr(11, i), {{"count", "4"}, {"probe_interval", "50ms"}}});
  auto r = run_poll(h, specs, 5000);
  done = true;
  junk.join();
  other.join();
  check_all_up(h, r, specs.size(), 4);
  CHECK(max_counter(h, "malformed") > 0);
  CHECK(max_counter(h, "foreign") > 0);
}

TEST_CASE("icmp: more probes than one ICMP identifier can number", "[icmp]") {
  if (!need_root()) return;
  FakeHost h(plugin());
  REQUIRE(h.create({{"max_pps", "100000"}}) == OUTPOST_OK);
  REQUIRE(h.start() == OUTPOST_OK);
  std::vector<Spec> specs;
  for (int i = 0; i < 700; ++i)  // 70,000 probes: the keys cross at least one identifier
    specs.push_back(
        {"k" + std::to_string(i), loop_addr(13, i), {{"count", "100"}, {"probe_interval", "1ms"}}});
  auto r = run_poll(h, specs, 30000);
  CHECK(r.before_deadline);
  check_all_up(h, r, specs.size(), 100);
}

TEST_CASE("icmp: 10,000 targets in one poll", "[icmp]") {
  if (!need_root()) return;
  FakeHost h(plugin());
  REQUIRE(h.create({{"max_pps", "50000"}, {"count", "1"}}) == OUTPOST_OK);
  REQUIRE(h.start() == OUTPOST_OK);
  std::vector<Spec> specs;
  for (int i = 0; i < 10000; ++i) specs.push_back({"t" + std::to_string(i), loop_addr(12, i), {}});
  auto r = run_poll(h, specs, 15000);
  CHECK(r.call_ms < 500);
  CHECK(r.before_deadline);
  REQUIRE(r.done.size() == specs.size());
  std::size_t ok = 0;
  for (const auto& c : r.done) ok += c.status == OUTPOST_OK;
  CHECK(ok == specs.size());
  CHECK(h.find("icmp_up").size() == specs.size());
}

// ---- network namespaces ---------------------------------------------------------------------
//
//   ns A (the plugin runs here)            ns R (router)
//   a0 10.200.1.1/30  fd00:200:1::1/64 --- r0 10.200.1.2/30  fd00:200:1::2/64
//   default via R                          r1 10.200.2.1/30  fd00:200:2::1/64 (veth to nowhere)
//   unreachable 10.200.9.0/24 (local)      10.200.5.0/24, fd00:200:5::/64 -> r1 (ttl 1 dies here)
//                                          unreachable 10.200.3.0/24, fd00:200:3::/64
//                                          blackhole   10.200.4.0/24, fd00:200:4::/64

namespace {

class Lab {
 public:
  Lab() {
    remove_stale();
    const std::string pid = std::to_string(::getpid());
    a_ = "opicmp-a-" + pid;
    r_ = "opicmp-r-" + pid;
    const std::string A = "ip -n " + a_ + " ", R = "ip -n " + r_ + " ";
    const std::vector<std::string> cmds = {
        "ip netns add " + a_,
        "ip netns add " + r_,
        // No duplicate address detection: addresses must work at once, link-local ones too.
        "ip netns exec " + a_ +
            " sysctl -qw net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0",
        "ip netns exec " + r_ +
            " sysctl -qw net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0",
        A + "link set lo up",
        R + "link set lo up",
        A + "link add a0 type veth peer name r0 netns " + r_,
        R + "link add r1 type veth peer name r2",
        A + "addr add 10.200.1.1/30 dev a0",
        A + "-6 addr add fd00:200:1::1/64 dev a0 nodad",
        A + "link set a0 up",
        R + "addr add 10.200.1.2/30 dev r0",
        R + "-6 addr add fd00:200:1::2/64 dev r0 nodad",
        R + "addr add 10.200.2.1/30 dev r1",
        R + "-6 addr add fd00:200:2::1/64 dev r1 nodad",
        R + "link set r0 up",
        R + "link set r1 up",
        R + "link set r2 up",
        A + "route add default via 10.200.1.2",
        A + "-6 route add default via fd00:200:1::2",
        A + "route add unreachable 10.200.9.0/24",
        R + "route add 10.200.5.0/24 dev r1",
        R + "-6 route add fd00:200:5::/64 dev r1",
        R + "route add unreachable 10.200.3.0/24",
        R + "-6 route add unreachable fd00:200:3::/64",
        R + "route add blackhole 10.200.4.0/24",
        R + "-6 route add blackhole fd00:200:4::/64",
        "ip netns exec " + r_ +
            " sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1 "
            "net.ipv4.icmp_ratelimit=0 net.ipv6.icmp.ratelimit=0",
        "ip netns exec " + a_ + " sysctl -qw net.ipv4.ping_group_range='0 2147483647'",
    };
    for (const auto& c : cmds) {
      if (sh(c) != 0) {
        error_ = c;
        return;
      }
    }
    // IPv6 neighbours need a moment after the links come up; wait until the router answers.
    const std::string ready =
        "ip netns exec " + a_ + " fping -q -B 1 -r 40 -t 50 10.200.1.2 fd00:200:1::2";
    if (sh(ready) != 0) {
      error_ = ready;
      return;
    }
    ok_ = true;
  }
  ~Lab() {
    sh("ip netns del " + a_);
    sh("ip netns del " + r_);
  }
  Lab(const Lab&) = delete;
  Lab& operator=(const Lab&) = delete;

  bool ok() const { return ok_; }
  const std::string& error() const { return error_; }
  const std::string& a() const { return a_; }

 private:
  // Namespaces left by a run that crashed: their pid is gone.
  static void remove_stale() {
    DIR* d = ::opendir("/run/netns");
    if (d == nullptr) return;
    while (dirent* e = ::readdir(d)) {
      const std::string n = e->d_name;
      if (n.rfind("opicmp-", 0) != 0 || n.size() < 10) continue;
      const int pid = std::atoi(n.c_str() + 9);
      if (pid > 0 && ::kill(pid, 0) != 0 && errno == ESRCH) sh("ip netns del " + n);
    }
    ::closedir(d);
  }
  std::string a_, r_, error_;
  bool ok_ = false;
};

// Moves the calling thread into a namespace; sockets and threads the plugin creates meanwhile
// stay there after the thread moves back.
class InNetns {
 public:
  explicit InNetns(const std::string& name) {
    self_ = ::open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
    const int fd = ::open(("/run/netns/" + name).c_str(), O_RDONLY | O_CLOEXEC);
    ok_ = self_ >= 0 && fd >= 0 && ::setns(fd, CLONE_NEWNET) == 0;
    if (fd >= 0) ::close(fd);
  }
  ~InNetns() {
    if (ok_) REQUIRE(::setns(self_, CLONE_NEWNET) == 0);
    if (self_ >= 0) ::close(self_);
  }
  InNetns(const InNetns&) = delete;
  InNetns& operator=(const InNetns&) = delete;
  bool ok() const { return ok_; }

 private:
  int self_ = -1;
  bool ok_ = false;
};

Lab* lab() {
  static Lab instance;  // removed at exit, failed assertions included
  return &instance;
}

void start_in_lab(FakeHost& h, const KV& cfg) {
  InNetns in(lab()->a());
  REQUIRE(in.ok());
  REQUIRE(h.create(cfg) == OUTPOST_OK);
  REQUIRE(h.start() == OUTPOST_OK);
}

bool lab_ready() {
  if (!need_root()) return false;
  if (!lab()->ok()) {
    WARN("cannot build the network namespaces (" << lab()->error() << "): skipping");
    return false;
  }
  return true;
}

void check_error(const FakeHost& h, PollResult& r, const std::string& dev,
                 const std::string& detail, const std::string& reason, const std::string& from) {
  const auto& c = r.by_device[dev];
  INFO(dev << ": " << c.detail << " (ignored packets: malformed " << max_counter(h, "malformed")
           << ", foreign " << max_counter(h, "foreign") << ", late " << max_counter(h, "late")
           << ")");
  CHECK(c.status == OUTPOST_E_UNAVAILABLE);
  CHECK(c.detail == detail);
  CHECK(metric(h, "icmp_up", dev) == 0.0);
  CHECK(metric(h, "icmp_loss_ratio", dev) == 1.0);
  auto e = h.find("icmp_errors", {{"device", dev}, {"reason", reason}, {"from", from}});
  CHECK(e.size() == 1);
  bool event = false;
  for (const auto& ev : h.events())
    event = event || (ev.source == dev && ev.kind == "icmp_error" && ev.message == detail &&
                      ev.attributes.at("reason") == reason);
  CHECK(event);
}

}  // namespace

TEST_CASE("icmp: silent, ttl-exceeded and unreachable targets behind a namespace router",
          "[icmp][netns]") {
  if (!lab_ready()) return;
  FakeHost h(plugin());
  start_in_lab(h, {{"count", "2"}, {"probe_interval", "50ms"}, {"reply_timeout", "400ms"}});
  // "unreach" goes first: R answers it only while its per-source error token bucket is full,
  // and the time-exceeded answers drain that same bucket (kernel inet_peer rate limiting).
  auto r = run_poll(h,
                    {{"unreach", "10.200.3.1", {}},
                     {"router", "10.200.1.2", {}},
                     {"silent", "10.200.4.1", {}},
                     {"far", "10.200.5.2", {{"ttl", "1"}}},
                     {"noroute", "10.200.9.1", {}},
                     {"unreach6", "fd00:200:3::1", {}},
                     {"router6", "fd00:200:1::2", {}},
                     {"silent6", "fd00:200:4::1", {}},
                     {"far6", "fd00:200:5::2", {{"ttl", "1"}}}},
                    3000);
  REQUIRE(r.done.size() == 9);
  CHECK(r.before_deadline);
  for (const char* dev : {"router", "router6"}) {
    INFO(dev << ": " << r.by_device[dev].detail);
    CHECK(r.by_device[dev].status == OUTPOST_OK);
    CHECK(metric(h, "icmp_up", dev) == 1.0);
  }
  for (const char* dev : {"silent", "silent6"}) {
    INFO(dev << ": " << r.by_device[dev].detail);
    CHECK(r.by_device[dev].status == OUTPOST_E_UNAVAILABLE);
    CHECK(metric(h, "icmp_loss_ratio", dev) == 1.0);
    CHECK(metric(h, "icmp_sent", dev) == 2.0);
    CHECK(metric(h, "icmp_received", dev) == 0.0);
    CHECK_FALSE(metric(h, "icmp_rtt_avg_seconds", dev).has_value());
  }
  check_error(h, r, "far", "ttl exceeded from 10.200.1.2", "ttl_exceeded", "10.200.1.2");
  check_error(h, r, "unreach", "host unreachable from 10.200.1.2", "unreachable", "10.200.1.2");
  check_error(h, r, "far6", "ttl exceeded from fd00:200:1::2", "ttl_exceeded", "fd00:200:1::2");
  check_error(h, r, "unreach6", "no route to destination from fd00:200:1::2", "unreachable",
              "fd00:200:1::2");
  INFO("noroute: " << r.by_device["noroute"].detail);
  CHECK(r.by_device["noroute"].status == OUTPOST_E_UNAVAILABLE);
  CHECK(r.by_device["noroute"].detail.find("send failed") != std::string::npos);
}

TEST_CASE("icmp: a silent target is completed before a deadline shorter than its timeout",
          "[icmp][netns]") {
  if (!lab_ready()) return;
  FakeHost h(plugin());
  start_in_lab(h, {});
  const auto t0 = std::chrono::steady_clock::now();
  auto r = run_poll(h,
                    {{"silent", "10.200.4.2", {{"count", "3"}, {"reply_timeout", "5s"}}},
                     {"router", "10.200.1.2", {{"count", "3"}, {"reply_timeout", "5s"}}}},
                    800);
  const auto ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  REQUIRE(r.done.size() == 2);
  CHECK(r.before_deadline);
  CHECK(ms < 800 + 40);  // 30ms of it is run_poll's wait for duplicates
  CHECK(r.by_device["silent"].status == OUTPOST_E_UNAVAILABLE);
  CHECK(metric(h, "icmp_loss_ratio", "silent") == 1.0);
  CHECK(r.by_device["router"].status == OUTPOST_OK);
}

TEST_CASE("icmp: ping sockets (socket_mode dgram) read errors from the error queue",
          "[icmp][netns]") {
  if (!lab_ready()) return;
  FakeHost h(plugin());
  {
    InNetns in(lab()->a());
    REQUIRE(in.ok());
    REQUIRE(h.create({{"socket_mode", "dgram"},
                      {"count", "2"},
                      {"probe_interval", "50ms"},
                      {"reply_timeout", "400ms"}}) == OUTPOST_OK);
    if (h.start() != OUTPOST_OK) {
      WARN("ping sockets are not available here: skipping");
      return;
    }
  }
  // Let R's error token bucket for our address refill after the earlier cases (one per second).
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  auto r = run_poll(h,
                    {{"unreach", "10.200.3.1", {}},
                     {"router", "10.200.1.2", {}},
                     {"far", "10.200.5.2", {{"ttl", "1"}}},
                     {"router6", "fd00:200:1::2", {}},
                     {"far6", "fd00:200:5::2", {{"ttl", "1"}}}},
                    3000);
  REQUIRE(r.done.size() == 5);
  CHECK(r.by_device["router"].status == OUTPOST_OK);
  CHECK(r.by_device["router6"].status == OUTPOST_OK);
  check_error(h, r, "far", "ttl exceeded from 10.200.1.2", "ttl_exceeded", "10.200.1.2");
  check_error(h, r, "unreach", "host unreachable from 10.200.1.2", "unreachable", "10.200.1.2");
  check_error(h, r, "far6", "ttl exceeded from fd00:200:1::2", "ttl_exceeded", "fd00:200:1::2");
}
