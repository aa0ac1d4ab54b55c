// The instance's hook thread: queued hooks in order, and periodic jobs (host timers) that run
// on the same thread only while armed. Conditions are waited for, never timed.
#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <thread>

#include "engine/hook_runner.hpp"

using outpost::core::HookRunner;
using namespace std::chrono_literals;

namespace {
// Waits (up to a generous bound) for a condition; the bound only stops a broken test.
template <typename F>
bool eventually(F&& f) {
  for (int i = 0; i < 2000; ++i) {
    if (f()) return true;
    std::this_thread::sleep_for(5ms);
  }
  return f();
}
}  // namespace

TEST_CASE("hook runner: periodic jobs run on the hook thread, only while armed") {
  HookRunner r;
  std::atomic<int> fired{0};
  std::atomic<bool> same_thread{true};
  std::thread::id hook_thread;
  REQUIRE(r.run_sync([&] { hook_thread = std::this_thread::get_id(); }, 10));
  r.set_periodic(7, 1ms, [&] {
    if (std::this_thread::get_id() != hook_thread) same_thread = false;
    ++fired;
  });
  // Not armed: queued jobs run, the periodic one does not.
  for (int i = 0; i < 5; ++i) REQUIRE(r.run_sync([] { std::this_thread::sleep_for(2ms); }, 10));
  CHECK(fired == 0);
  r.arm_periodic(true);
  CHECK(eventually([&] { return fired >= 3; }));
  CHECK(same_thread);
  r.arm_periodic(false);
  REQUIRE(r.run_sync([] {}, 10));  // a firing in progress ended before this job
  const int after = fired;
  for (int i = 0; i < 5; ++i) REQUIRE(r.run_sync([] { std::this_thread::sleep_for(2ms); }, 10));
  CHECK(fired == after);
  r.shutdown(5);
}

TEST_CASE("hook runner: a period of 0 removes a periodic job; a new period replaces it") {
  HookRunner r;
  std::atomic<int> a{0}, b{0};
  r.arm_periodic(true);
  r.set_periodic(1, 1ms, [&] { ++a; });
  CHECK(eventually([&] { return a >= 1; }));
  r.set_periodic(1, 0ns, {});
  REQUIRE(r.run_sync([] {}, 10));
  const int a_after = a;
  r.set_periodic(2, 1ms, [&] { ++b; });
  CHECK(eventually([&] { return b >= 3; }));
  CHECK(a == a_after);
  r.set_periodic(2, 1ms, [&] { b = -1000; });  // replaced: the new job runs, not the old
  CHECK(eventually([&] { return b < 0; }));
  r.shutdown(5);
}

TEST_CASE("hook runner: a periodic job slower than its period never overlaps itself") {
  HookRunner r;
  std::atomic<int> fired{0}, running{0}, overlaps{0};
  r.set_periodic(1, 1ms, [&] {
    if (++running > 1) ++overlaps;
    ++fired;
    std::this_thread::sleep_for(20ms);  // twenty periods
    --running;
  });
  r.arm_periodic(true);
  CHECK(eventually([&] { return fired >= 3; }));
  r.arm_periodic(false);
  REQUIRE(r.run_sync([] {}, 10));
  CHECK(overlaps == 0);
  const int n = fired;
  for (int i = 0; i < 3; ++i) REQUIRE(r.run_sync([] {}, 10));
  CHECK(fired == n);
  r.shutdown(5);
}
