// A host for tests of the poller runtimes: it records every completion (and counts a second
// one for the same target), the metrics emitted and the errors reported, with a monotonic clock
// that starts near 0 like the engine's.
#pragma once

#include <outpost/plugin.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <mutex>
#include <outpost/sdk.hpp>
#include <string>
#include <utility>

namespace outpost::test {

inline int64_t mono_ns() {
  static const auto origin = std::chrono::steady_clock::now();
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() -
                                                              origin)
      .count();
}

// A host that records completions and counts every duplicate.
class RecordingHost {
 public:
  RecordingHost() {
    api_.struct_size = sizeof api_;
    api_.abi_version = OUTPOST_ABI_VERSION;
    api_.emit = [](outpost_host* h, const outpost_batch* b) -> outpost_status {
      self(h)->metrics_ += b->metric_count;
      return OUTPOST_OK;
    };
    api_.log_enabled = [](outpost_host*, uint32_t) -> int { return 0; };
    api_.log = [](outpost_host*, uint32_t, outpost_str) {};
    api_.report_error = [](outpost_host* h, outpost_status, outpost_str) { self(h)->errors_++; };
    api_.get_secret = [](outpost_host*, outpost_str, char*, size_t, size_t*) -> outpost_status {
      return OUTPOST_E_NOT_FOUND;
    };
    api_.now_ns = [](outpost_host*) -> int64_t { return mono_ns(); };
    api_.monotonic_ns = [](outpost_host*) -> int64_t { return mono_ns(); };
    api_.complete = [](outpost_host* h, uint64_t poll, uint64_t target, outpost_status s,
                       outpost_str d) {
      RecordingHost* me = self(h);
      std::lock_guard g(me->mu_);
      auto [it, fresh] = me->done_.emplace(std::make_pair(poll, target),
                                           std::make_pair(s, std::string(d.ptr, d.len)));
      if (!fresh) me->duplicates_++;
      me->cv_.notify_all();
    };
  }
  outpost::Host host() { return outpost::Host(&api_, reinterpret_cast<outpost_host*>(this)); }
  bool wait_for(std::size_t n) {
    std::unique_lock lk(mu_);
    return cv_.wait_for(lk, std::chrono::seconds(60), [&] { return done_.size() >= n; });
  }
  std::size_t count() {
    std::lock_guard g(mu_);
    return done_.size();
  }
  std::map<std::pair<uint64_t, uint64_t>, std::pair<outpost_status, std::string>> done() {
    std::lock_guard g(mu_);
    return done_;
  }
  int duplicates() {
    std::lock_guard g(mu_);
    return duplicates_;
  }
  std::atomic<std::size_t> metrics_{0};
  std::atomic<int> errors_{0};

 private:
  static RecordingHost* self(outpost_host* h) { return reinterpret_cast<RecordingHost*>(h); }
  outpost_host_api api_{};
  std::mutex mu_;
  std::condition_variable cv_;
  std::map<std::pair<uint64_t, uint64_t>, std::pair<outpost_status, std::string>> done_;
  int duplicates_ = 0;
};

}  // namespace outpost::test
