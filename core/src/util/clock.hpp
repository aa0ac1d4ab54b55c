// The host's monotonic clock as plugins see it (host_api->monotonic_ns, poll deadlines):
// nanoseconds since this process first read it, so it starts near 0 on every run. Code that
// treats 0 as "long ago" then fails in its first test run, not only on a machine booted minutes
// ago.
//
// TimeSource is what a component that takes an injectable clock reads: the real clocks by
// default, a ManualClock in a test, whose time moves only when the test moves it.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>

namespace outpost::core {

using MonoClock = std::chrono::steady_clock;

inline MonoClock::time_point mono_origin() {
  static const MonoClock::time_point origin = MonoClock::now();
  return origin;
}

// A point of the steady clock on the host's monotonic scale.
inline int64_t host_mono_ns(MonoClock::time_point t) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(t - mono_origin()).count();
}
inline int64_t host_mono_ns() { return host_mono_ns(MonoClock::now()); }

inline int64_t real_wall_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

class TimeSource {
 public:
  virtual ~TimeSource() = default;
  virtual MonoClock::time_point mono() const = 0;  // monotonic: intervals, deadlines
  virtual int64_t wall_ns() const = 0;             // since the Unix epoch: what data is stamped
};

class RealTime final : public TimeSource {
 public:
  MonoClock::time_point mono() const override { return MonoClock::now(); }
  int64_t wall_ns() const override { return real_wall_ns(); }
};

// A clock for tests: both times move together, and only by advance(). It starts one second
// after the steady clock's epoch by default (a machine booted a second ago), so code that takes
// a time point of 0 for "long ago" shows it.
class ManualClock final : public TimeSource {
 public:
  explicit ManualClock(MonoClock::time_point start = MonoClock::time_point{} +
                                                     std::chrono::seconds(1),
                       int64_t wall_start_ns = int64_t{1'700'000'000} * 1'000'000'000)
      : start_(start), wall_start_ns_(wall_start_ns) {}

  MonoClock::time_point mono() const override { return start_ + MonoClock::duration(ticks_); }
  int64_t wall_ns() const override {
    return wall_start_ns_ +
           std::chrono::duration_cast<std::chrono::nanoseconds>(MonoClock::duration(ticks_))
               .count();
  }
  MonoClock::time_point start() const { return start_; }
  void advance(MonoClock::duration d) { ticks_ += d.count(); }
  // Moves the clock to t; a clock never goes back, so an earlier t leaves it where it is.
  void advance_to(MonoClock::time_point t) {
    const auto target = (t - start_).count();
    auto cur = ticks_.load();
    while (target > cur && !ticks_.compare_exchange_weak(cur, target)) {
    }
  }

 private:
  const MonoClock::time_point start_;
  const int64_t wall_start_ns_;
  std::atomic<MonoClock::rep> ticks_{0};
};

}  // namespace outpost::core
