// The host's monotonic clock as plugins see it (host_api->monotonic_ns, poll deadlines):
// nanoseconds since this process first read it, so it starts near 0 on every run. Code that
// treats 0 as "long ago" then fails in its first test run, not only on a machine booted minutes
// ago.
#pragma once

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

}  // namespace outpost::core
