// The poller runtime's promise, tested once for every poller built on it: every target is
// completed exactly once, whatever order its protocol finishes jobs in, whatever the deadlines,
// slots and descriptor shortages, and when stop() cuts it all short. Randomised, many rounds.
// The [dns] cases run against a real dnsmasq (async_poller_dns.sh starts it).
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <fstream>
#include <map>
#include <outpost_lib/async_poller.hpp>
#include <outpost_test/recording_host.hpp>
#include <random>
#include <set>
#include <sstream>
#include <stdexcept>
#include <thread>

using outpost::lib::AsyncPoller;
using outpost::lib::PollJob;

namespace {

int64_t mono() { return outpost::test::mono_ns(); }  // the recording host's clock

using outpost::test::RecordingHost;

enum class Plan {
  finish_now,
  timer,
  io,
  never,
  no_descriptor_once,
  finish_twice,
  throw_begin,
  throw_io
};

struct SimJob : PollJob {
  Plan plan = Plan::finish_now;
  int64_t after_ns = 0;
  bool refused = false;
  int fd = -1;
};

// A protocol whose jobs end in every way a real one's do.
class Sim final : public AsyncPoller::Protocol {
 public:
  AsyncPoller* rt = nullptr;
  static void answer(SimJob& j) {
    const uint64_t one = 1;
    [[maybe_unused]] const auto n = ::write(j.fd, &one, sizeof one);
  }
  bool begin(PollJob& pj) override {
    auto& j = static_cast<SimJob&>(pj);
    switch (j.plan) {
      case Plan::finish_now:
        rt->emit(outpost::Metric{"sim_up", {}, 1, 0, OUTPOST_METRIC_GAUGE});
        rt->finish(j, OUTPOST_OK, {});
        return true;
      case Plan::finish_twice:
        rt->finish(j, OUTPOST_OK, {});
        rt->finish(j, OUTPOST_E_INTERNAL, "second");  // ignored: once only
        return true;
      case Plan::timer:
        rt->set_timer(j, rt->now() + j.after_ns);
        return true;
      case Plan::io: {
        j.fd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        rt->watch(j, j.fd, EPOLLIN);
        if (j.after_ns == 0)
          answer(j);
        else
          rt->set_timer(j, rt->now() + j.after_ns);  // then the "peer" answers
        return true;
      }
      case Plan::no_descriptor_once:
        if (!j.refused && rt->running() > 1) {
          j.refused = true;
          return false;
        }
        rt->finish(j, OUTPOST_OK, "after a refusal");
        return true;
      case Plan::never:
        return true;
      case Plan::throw_begin:
        throw std::runtime_error("boom in begin");
      case Plan::throw_io:
        j.fd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        rt->watch(j, j.fd, EPOLLIN);
        answer(j);
        return true;
    }
    return true;
  }
  void on_io(PollJob& pj, int, uint32_t) override {
    // Level-triggered and never read: a hook that throws here would fire every turn.
    if (static_cast<SimJob&>(pj).plan == Plan::throw_io) throw std::runtime_error("boom in on_io");
    rt->finish(pj, OUTPOST_OK, "io");
  }
  void on_timer(PollJob& pj) override {
    auto& j = static_cast<SimJob&>(pj);
    if (j.plan == Plan::io) return answer(j);  // readable next turn, as a peer's answer
    rt->finish(j, OUTPOST_OK, "timer");
  }
  void on_deadline(PollJob& pj) override {
    auto& j = static_cast<SimJob&>(pj);
    if (j.plan == Plan::timer) rt->finish(j, OUTPOST_E_TIMEOUT, "sim timeout");
    // Plan::never: left to the runtime's plain timeout.
  }
};

}  // namespace

TEST_CASE("async poller: every target completed exactly once, in every order, also at stop") {
  std::mt19937_64 rng(12345);
  for (int round = 0; round < 40; ++round) {
    RecordingHost rec;
    Sim sim;
    outpost::lib::AsyncPollerOptions o;
    o.name = "sim";
    o.max_concurrent = 1 + rng() % 40;
    AsyncPoller rt(rec.host(), sim, o);
    sim.rt = &rt;
    rt.start();
    std::size_t total = 0;
    const int polls = 1 + static_cast<int>(rng() % 5);
    const bool stop_early = round % 3 == 2;
    for (int p = 1; p <= polls; ++p) {
      std::vector<std::unique_ptr<PollJob>> jobs;
      const std::size_t n = 1 + rng() % 200;
      const int64_t deadline = mono() + static_cast<int64_t>(20 + rng() % 200) * 1'000'000;
      for (std::size_t t = 1; t <= n; ++t) {
        auto j = std::make_unique<SimJob>();
        j->poll_id = static_cast<uint64_t>(round * 100 + p);
        j->target_id = t;
        j->host = (t % 2) ? "127.0.0.1" : "::1";
        j->plan = static_cast<Plan>(rng() % 6);
        j->after_ns = static_cast<int64_t>(rng() % 300) * 1'000'000;
        jobs.push_back(std::move(j));
      }
      total += n;
      rt.submit(std::move(jobs), deadline);
    }
    if (stop_early) {
      std::this_thread::sleep_for(std::chrono::milliseconds(rng() % 30));
      rt.stop();
    }
    INFO("round " << round);
    REQUIRE(rec.wait_for(total));
    rt.stop();
    CHECK(rec.count() == total);
    CHECK(rec.duplicates() == 0);
    for (const auto& [key, outcome] : rec.done()) {
      const outpost_status s = outcome.first;
      const bool known = s == OUTPOST_OK || s == OUTPOST_E_TIMEOUT || s == OUTPOST_E_OVERLOADED ||
                         s == OUTPOST_E_UNAVAILABLE;
      INFO(outcome.second);
      CHECK(known);
      if (!stop_early) CHECK(s != OUTPOST_E_UNAVAILABLE);
    }
    CHECK(rt.stats().submitted == total);
    CHECK(rt.stats().completed == total);
  }
}

TEST_CASE("async poller: a target with no free slot before its deadline is overloaded, not down") {
  RecordingHost rec;
  Sim sim;
  outpost::lib::AsyncPollerOptions o;
  o.name = "sim";
  o.max_concurrent = 1;
  AsyncPoller rt(rec.host(), sim, o);
  sim.rt = &rt;
  rt.start();
  std::vector<std::unique_ptr<PollJob>> jobs;
  for (uint64_t t = 1; t <= 3; ++t) {
    auto j = std::make_unique<SimJob>();
    j->poll_id = 1;
    j->target_id = t;
    j->host = "127.0.0.1";
    j->plan = Plan::never;
    jobs.push_back(std::move(j));
  }
  rt.submit(std::move(jobs), mono() + 100'000'000);
  REQUIRE(rec.wait_for(3));
  rt.stop();
  const auto done = rec.done();
  CHECK(done.at({1, 1}).first == OUTPOST_E_TIMEOUT);
  CHECK(done.at({1, 1}).second == "deadline reached");
  CHECK(done.at({1, 2}).first == OUTPOST_E_OVERLOADED);
  CHECK(done.at({1, 2}).second == "no slot free before the deadline (max_concurrent 1)");
  CHECK(done.at({1, 3}).first == OUTPOST_E_OVERLOADED);
}

TEST_CASE("async poller: a hook that throws fails its own target, not the others or stop") {
  RecordingHost rec;
  Sim sim;
  outpost::lib::AsyncPollerOptions o;
  o.name = "sim";
  AsyncPoller rt(rec.host(), sim, o);
  sim.rt = &rt;
  rt.start();
  std::vector<std::unique_ptr<PollJob>> v;
  const Plan plans[] = {Plan::throw_begin, Plan::throw_io, Plan::finish_now, Plan::timer};
  for (std::size_t i = 0; i < 4; ++i) {
    auto j = std::make_unique<SimJob>();
    j->poll_id = 7;
    j->target_id = i;
    j->host = "127.0.0.1";
    j->plan = plans[i];
    j->after_ns = 50'000'000;
    v.push_back(std::move(j));
  }
  rt.submit(std::move(v), mono() + 5'000'000'000);
  REQUIRE(rec.wait_for(4));
  const auto done = rec.done();
  CHECK(done.at({7, 0}) ==
        std::make_pair(OUTPOST_E_INTERNAL, std::string("sim begin: boom in begin")));
  CHECK(done.at({7, 1}) ==
        std::make_pair(OUTPOST_E_INTERNAL, std::string("sim on_io: boom in on_io")));
  CHECK(done.at({7, 2}).first == OUTPOST_OK);
  CHECK(done.at({7, 3}) == std::make_pair(OUTPOST_OK, std::string("timer")));
  rt.stop();
  CHECK(rec.duplicates() == 0);
}

TEST_CASE("async poller: submit before start and after stop completes at once") {
  RecordingHost rec;
  Sim sim;
  outpost::lib::AsyncPollerOptions o;
  o.name = "sim";
  AsyncPoller rt(rec.host(), sim, o);
  sim.rt = &rt;
  auto one = [] {
    std::vector<std::unique_ptr<PollJob>> v;
    auto j = std::make_unique<SimJob>();
    j->poll_id = 9;
    j->target_id = 1;
    j->host = "127.0.0.1";
    v.push_back(std::move(j));
    return v;
  };
  rt.submit(one(), mono() + 1'000'000'000);
  REQUIRE(rec.count() == 1);
  CHECK(rec.done().begin()->second.second == "sim plugin not started");
  CHECK(rec.duplicates() == 0);
}

// ---- against dnsmasq (async_poller_dns.sh) ----------------------------------------------------

namespace {
struct Resolve final : AsyncPoller::Protocol {
  AsyncPoller* rt = nullptr;
  std::mutex mu;
  std::map<uint64_t, std::string> addrs;
  bool begin(PollJob& j) override {
    std::string all;
    for (const auto& a : j.addrs) all += (all.empty() ? "" : " ") + a.text();
    {
      std::lock_guard g(mu);
      addrs[j.target_id] = all;
    }
    rt->finish(j, OUTPOST_OK, all);
    return true;
  }
  void on_io(PollJob&, int, uint32_t) override {}
  void on_deadline(PollJob&) override {}
};

int queries_in(const std::string& log, const std::string& name) {
  std::ifstream in(log);
  std::string line;
  int n = 0;
  while (std::getline(in, line))
    if (line.find("query[A] " + name + " ") != std::string::npos) ++n;
  return n;
}

std::vector<std::unique_ptr<PollJob>> jobs_for(uint64_t poll,
                                               const std::vector<std::string>& hosts) {
  std::vector<std::unique_ptr<PollJob>> v;
  for (std::size_t i = 0; i < hosts.size(); ++i) {
    auto j = std::make_unique<SimJob>();
    j->poll_id = poll;
    j->target_id = i + 1;
    j->host = hosts[i];
    v.push_back(std::move(j));
  }
  return v;
}
}  // namespace

TEST_CASE("async poller: names through a real DNS server, one query per name, kept within TTL",
          "[.][dns]") {
  const char* server = std::getenv("DNS_SERVER");
  const char* log = std::getenv("DNSMASQ_LOG");
  REQUIRE(server != nullptr);
  REQUIRE(log != nullptr);
  RecordingHost rec;
  Resolve proto;
  outpost::lib::AsyncPollerOptions o;
  o.name = "dns";
  o.dns_servers = {server};
  AsyncPoller rt(rec.host(), proto, o);
  proto.rt = &rt;
  rt.start();
  std::vector<std::string> hosts(200, "many.outpost.test");
  hosts.push_back("other.outpost.test");
  hosts.push_back("missing.outpost.test");
  hosts.push_back("192.0.2.7");
  rt.submit(jobs_for(1, hosts), mono() + 5'000'000'000);
  REQUIRE(rec.wait_for(hosts.size()));
  auto done = rec.done();
  CHECK(done.at({1, 1}).first == OUTPOST_OK);
  CHECK(done.at({1, 1}).second == "127.0.0.53 fd00::53");  // both families, A first
  CHECK(done.at({1, 200}).second == "127.0.0.53 fd00::53");
  CHECK(done.at({1, 201}).second == "127.0.0.54");
  CHECK(done.at({1, 202}).first == OUTPOST_E_NOT_FOUND);
  CHECK(done.at({1, 202}).second.rfind("cannot resolve 'missing.outpost.test': ", 0) == 0);
  CHECK(done.at({1, 203}).second == "192.0.2.7");    // a literal needs no server
  CHECK(queries_in(log, "many.outpost.test") == 1);  // 200 targets, one lookup
  CHECK(rt.stats().dns_queries == 3);

  rt.submit(jobs_for(2, {"many.outpost.test"}), mono() + 5'000'000'000);
  REQUIRE(rec.wait_for(hosts.size() + 1));
  CHECK(queries_in(log, "many.outpost.test") == 1);  // within its TTL: from the cache
  CHECK(rt.stats().dns_cache_hits == 1);

  std::this_thread::sleep_for(std::chrono::milliseconds(2500));  // dnsmasq's --local-ttl=2
  rt.submit(jobs_for(3, {"many.outpost.test"}), mono() + 5'000'000'000);
  REQUIRE(rec.wait_for(hosts.size() + 2));
  CHECK(queries_in(log, "many.outpost.test") == 2);  // expired: asked again
  rt.stop();
  CHECK(rec.duplicates() == 0);
}

namespace {

// A protocol in icmp's shape: one descriptor shared by every job (a socketpair standing in for
// a raw socket), sends paced across jobs by on_turn, answers matched to jobs by a key; plus, in
// snmp's shape, a descriptor of the job that the protocol itself closes (FdOwner::protocol).
struct PacedJob : PollJob {
  uint8_t key = 0;
  int own = -1;  // the job's descriptor, the protocol's to close
};

class Paced final : public AsyncPoller::Protocol {
 public:
  AsyncPoller* rt = nullptr;
  int pair[2] = {-1, -1};  // [0] watched shared, [1] the "network"
  std::vector<PacedJob*> queue;
  std::map<uint8_t, PacedJob*> waiting;
  int64_t gap_ns = 1'000'000;  // one send a millisecond at most
  int64_t next_send = 0;
  std::atomic<int> turns{0}, shared_reads{0}, closed_by_protocol{0};
  uint8_t next_key = 0;

  void on_start() override { rt->watch_shared(pair[0], EPOLLIN); }
  bool begin(PollJob& pj) override {
    auto& j = static_cast<PacedJob&>(pj);
    j.own = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    rt->watch(j, j.own, EPOLLIN, AsyncPoller::FdOwner::protocol);
    queue.push_back(&j);
    return true;
  }
  void on_io(PollJob&, int, uint32_t) override {}
  void on_deadline(PollJob& j) override { rt->finish(j, OUTPOST_E_TIMEOUT, "no answer"); }
  int64_t on_turn(int64_t now) override {
    ++turns;
    if (queue.empty()) return INT64_MAX;
    if (now < next_send) return next_send;
    PacedJob* j = queue.front();
    queue.erase(queue.begin());
    j->key = ++next_key;
    waiting[j->key] = j;
    [[maybe_unused]] auto n = ::write(pair[1], &j->key, 1);  // the peer echoes it back
    next_send = now + gap_ns;
    return queue.empty() ? INT64_MAX : next_send;
  }
  void on_shared_io(int fd, uint32_t) override {
    uint8_t buf[64];
    for (ssize_t n; (n = ::read(fd, buf, sizeof buf)) > 0;)
      for (ssize_t i = 0; i < n; ++i) {
        ++shared_reads;
        auto it = waiting.find(buf[i]);
        if (it == waiting.end()) continue;
        PacedJob* j = it->second;
        waiting.erase(it);
        rt->finish(*j, OUTPOST_OK, "answered");
      }
  }
  void on_end(PollJob& pj, outpost_status, bool) override {
    auto& j = static_cast<PacedJob&>(pj);
    std::erase(queue, &j);
    if (j.key != 0) waiting.erase(j.key);
    if (j.own >= 0) {
      // No longer watched: closing it here must not disturb the runtime (a closed descriptor
      // that were still in its epoll set, or closed twice, would).
      if (::close(j.own) == 0) ++closed_by_protocol;
      j.own = -1;
    }
  }
};

}  // namespace

TEST_CASE(
    "async poller: a shared descriptor, sends paced by on_turn, descriptors the protocol closes") {
  RecordingHost rec;
  Paced proto;
  REQUIRE(::socketpair(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, proto.pair) == 0);
  outpost::lib::AsyncPollerOptions o;
  o.name = "paced";
  o.max_concurrent = 1000;
  AsyncPoller rt(rec.host(), proto, o);
  proto.rt = &rt;
  rt.start();
  // The "network": a thread that echoes every key back through the shared descriptor.
  std::atomic<bool> quit{false};
  std::thread peer([&] {
    uint8_t b[64];
    while (!quit) {
      const ssize_t n = ::read(proto.pair[1], b, sizeof b);
      if (n > 0) [[maybe_unused]]
        auto w = ::write(proto.pair[1], b, static_cast<std::size_t>(n));
      else
        std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
  });
  std::vector<std::unique_ptr<PollJob>> jobs;
  for (uint64_t i = 1; i <= 200; ++i) {
    auto j = std::make_unique<PacedJob>();
    j->poll_id = 1;
    j->target_id = i;
    j->host = "127.0.0.1";
    jobs.push_back(std::move(j));
  }
  rt.submit(std::move(jobs), mono() + 30'000'000'000);
  REQUIRE(rec.wait_for(200));
  // A second poll cut short by stop(): the queued ones complete once, as stopped.
  jobs.clear();
  for (uint64_t i = 1; i <= 50; ++i) {
    auto j = std::make_unique<PacedJob>();
    j->poll_id = 2;
    j->target_id = i;
    j->host = "127.0.0.1";
    jobs.push_back(std::move(j));
  }
  proto.gap_ns = 50'000'000;  // slow sends: most are still queued at stop
  rt.submit(std::move(jobs), mono() + 30'000'000'000);
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  rt.stop();
  quit = true;
  peer.join();
  const auto done = rec.done();
  REQUIRE(done.size() == 250);
  CHECK(rec.duplicates() == 0);
  std::size_t ok = 0, stopped = 0;
  for (const auto& [id, r] : done) {
    if (id.first == 1) {
      CHECK(r.first == OUTPOST_OK);
      CHECK(r.second == "answered");
    }
    ok += r.first == OUTPOST_OK;
    stopped += r.second == "paced plugin stopped";
  }
  CHECK(ok + stopped == 250);
  CHECK(stopped > 0);
  CHECK(proto.shared_reads >= 200);
  CHECK(proto.closed_by_protocol == 250);  // every job's own descriptor, closed once, by us
  ::close(proto.pair[0]);
  ::close(proto.pair[1]);
}
