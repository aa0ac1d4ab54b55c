// The blocking poller runtime: every target completed exactly once, by the deadline even when
// its work hangs, late results dropped, stop() completing what is queued or running, nothing
// after stop; randomised rounds (also run under ThreadSanitizer).
#include <atomic>
#include <catch2/catch.hpp>
#include <outpost_lib/blocking_poller.hpp>
#include <outpost_test/recording_host.hpp>
#include <random>
#include <thread>
#include <vector>

using outpost::lib::BlockingOutcome;
using outpost::lib::BlockingPoller;
using outpost::test::mono_ns;
using outpost::test::RecordingHost;
using namespace std::chrono_literals;

namespace {

// A poll request of n targets (ids 1..n) with a deadline `in_ms` from now.
struct Request {
  std::vector<outpost_target> targets;
  outpost_poll_request req{};
  Request(uint64_t poll_id, std::size_t n, int64_t in_ms) : targets(n) {
    for (std::size_t i = 0; i < n; ++i) {
      targets[i] = {};
      targets[i].id = i + 1;
      targets[i].address = {"127.0.0.1", 9};
      targets[i].device = {"127.0.0.1", 9};
    }
    req.struct_size = sizeof req;
    req.target_size = sizeof(outpost_target);
    req.poll_id = poll_id;
    req.deadline_ns = mono_ns() + in_ms * 1'000'000;
    req.targets = targets.data();
    req.target_count = n;
  }
  outpost::PollRequest view() const { return outpost::PollRequest(&req); }
};

}  // namespace

TEST_CASE(
    "every target once: quick ones with their metrics, a hanging one timed out at the deadline") {
  RecordingHost h;
  BlockingPoller p(h.host(), "test", 4);
  p.start();
  std::atomic<bool> release{false};
  Request r(1, 6, 400);
  p.submit(r.view(), [&](const outpost::Target& t) -> BlockingPoller::Work {
    const uint64_t id = t.id();
    if (id == 3) throw outpost::Error(OUTPOST_E_CONFIG, "bad parameter");  // refused at once
    return [&, id](int64_t) {
      BlockingOutcome o;
      if (id == 5) {  // hangs past the deadline; its late answer must not count
        while (!release) std::this_thread::sleep_for(5ms);
        o.detail = "late";
        return o;
      }
      o.metrics.push_back({"up", {}, 1, 0, OUTPOST_METRIC_GAUGE});
      return o;
    };
  });
  REQUIRE(h.wait_for(6));
  const auto done = h.done();
  CHECK(done.at({1, 3}).first == OUTPOST_E_CONFIG);
  CHECK(done.at({1, 5}).first == OUTPOST_E_TIMEOUT);
  for (uint64_t id : {1, 2, 4, 6}) CHECK(done.at({1, id}).first == OUTPOST_OK);
  CHECK(h.metrics_ == 4);
  release = true;
  std::this_thread::sleep_for(50ms);
  p.stop();
  CHECK(h.duplicates() == 0);
  CHECK(h.done().at({1, 5}).second != "late");
}

TEST_CASE("more targets than workers can poll in time: the rest timed out, each once") {
  RecordingHost h;
  BlockingPoller p(h.host(), "test", 1);
  p.start();
  Request r(2, 5, 150);
  p.submit(r.view(), [](const outpost::Target&) -> BlockingPoller::Work {
    return [](int64_t) {
      std::this_thread::sleep_for(100ms);
      return BlockingOutcome{};
    };
  });
  REQUIRE(h.wait_for(5));
  std::size_t ok = 0, timeout = 0;
  for (const auto& [k, v] : h.done()) (v.first == OUTPOST_OK ? ok : timeout)++;
  CHECK(ok >= 1);
  CHECK(timeout >= 3);
  p.stop();
  CHECK(h.duplicates() == 0);
}

TEST_CASE("stop completes what is queued or running, and nothing comes after it") {
  for (int round = 0; round < 20; ++round) {
    RecordingHost h;
    std::mt19937 rng(static_cast<unsigned>(round));
    BlockingPoller p(h.host(), "test", 1 + rng() % 4);
    p.start();
    const std::size_t n = 1 + rng() % 30;
    Request r(3, n, 10'000);
    p.submit(r.view(), [&rng](const outpost::Target&) -> BlockingPoller::Work {
      const auto ms = std::chrono::milliseconds(rng() % 20);
      return [ms](int64_t) {
        std::this_thread::sleep_for(ms);
        BlockingOutcome o;
        o.metrics.push_back({"up", {}, 1, 0, OUTPOST_METRIC_GAUGE});
        return o;
      };
    });
    std::this_thread::sleep_for(std::chrono::milliseconds(rng() % 30));
    p.stop();
    CHECK(h.count() == n);
    const std::size_t after_stop = h.metrics_;
    std::this_thread::sleep_for(30ms);
    CHECK(h.metrics_ == after_stop);
    CHECK(h.duplicates() == 0);
    Request late(4, 2, 1000);  // after stop: refused at once, still once each
    p.submit(late.view(), [](const outpost::Target&) -> BlockingPoller::Work {
      return [](int64_t) { return BlockingOutcome{}; };
    });
    CHECK(h.count() == n + 2);
  }
}
