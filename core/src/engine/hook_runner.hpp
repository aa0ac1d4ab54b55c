// Runs one plugin instance's hooks on a thread of its own, one at a time, so a hook that hangs
// holds up only its own instance. Periodic jobs (the instance's host timers) run on the same
// thread between queued jobs while armed, so a timer never needs a thread of its own.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

namespace outpost::core {

class HookRunner {
 public:
  explicit HookRunner(std::size_t max_queue = 64);
  ~HookRunner();
  HookRunner(const HookRunner&) = delete;
  HookRunner& operator=(const HookRunner&) = delete;

  // Queues a job; false when the queue is full (the instance is stuck or overloaded).
  bool post(std::function<void()> job);
  // Runs a job and waits up to timeout_s; false when it did not finish in time.
  bool run_sync(std::function<void()> job, double timeout_s);
  // Sets periodic job `id` (replacing one of the same id): first due one period from now, then
  // every period; a firing whose time passed while another job ran runs once, late, and the
  // next is a period later (missed firings are skipped). A period of 0 removes it.
  void set_periodic(uint64_t id, std::chrono::nanoseconds period, std::function<void()> job);
  // Periodic jobs run only while armed. Disarming waits for nothing: a periodic job that is
  // running now finishes before any job queued after this call.
  void arm_periodic(bool armed);
  // True while a job has been running longer than `seconds`.
  bool stuck(double seconds) const;
  // Stops the thread. Waits up to grace_s for the current job; a job that is still running
  // then is abandoned (the thread is detached and keeps only its own state alive).
  void shutdown(double grace_s);

 private:
  struct State;
  std::shared_ptr<State> state_;
  std::thread thread_;
};

}  // namespace outpost::core
