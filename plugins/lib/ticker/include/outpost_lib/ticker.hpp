// A plugin's timer thread: calls a function every period while holding the plugin's own lock,
// until stop(). Listeners use it to report their counters while no datagram comes.
#pragma once

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>

namespace outpost::lib {

class Ticker {
 public:
  Ticker() = default;
  Ticker(const Ticker&) = delete;
  Ticker& operator=(const Ticker&) = delete;
  ~Ticker() { stop(); }

  // A tenth of a stats interval, between 10 ms and 1 s: counters of a burst go out at most 10 %
  // late.
  static std::chrono::nanoseconds stats_period(int64_t interval_ns) {
    return std::chrono::nanoseconds(std::clamp<int64_t>(interval_ns / 10, 10'000'000, 1'000'000'000));
  }

  // mu is the plugin's lock, held while fn runs; the caller must not hold it here.
  void start(std::mutex& mu, std::chrono::nanoseconds period, std::function<void()> fn) {
    stop();
    {
      std::lock_guard g(mu);
      mu_ = &mu;
      stopping_ = false;
    }
    thread_ = std::thread([this, period, fn = std::move(fn)] {
      std::unique_lock lk(*mu_);
      while (!wake_.wait_for(lk, period, [this] { return stopping_; })) fn();
    });
  }

  // Returns once the thread is gone; the caller must not hold the plugin's lock.
  void stop() {
    if (!thread_.joinable()) return;
    {
      std::lock_guard g(*mu_);
      stopping_ = true;
    }
    wake_.notify_all();
    thread_.join();
  }

 private:
  std::mutex* mu_ = nullptr;
  bool stopping_ = false;
  std::condition_variable wake_;
  std::thread thread_;
};

}  // namespace outpost::lib
