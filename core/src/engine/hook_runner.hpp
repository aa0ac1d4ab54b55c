// Runs one plugin instance's hooks on a thread of its own, one at a time, so hooks of an
// instance never run concurrently and a hook that hangs holds up only its own instance.
#pragma once

#include <condition_variable>
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
