// The runtime of pollers whose work blocks (an SSH session that converses with a device, a
// library without a non-blocking API): a fixed pool of worker threads takes the targets of each
// poll request, at most `threads` at a time. It keeps the poller contract the engine checks:
// every target completed exactly once; by the request's deadline (a watchdog completes a target
// whose work is still running as timed out, and what that work returns later is dropped); and
// nothing emitted or completed after stop(), which completes what is queued or running and joins
// the workers (so it waits for running work to return: keep each step of the work bounded).
#pragma once

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <outpost/sdk.hpp>
#include <string>
#include <thread>
#include <vector>

namespace outpost::lib {

// What one target's work found.
struct BlockingOutcome {
  outpost_status status = OUTPOST_OK;
  std::string detail;
  std::vector<outpost::Metric> metrics;
  std::vector<outpost::Event> events;
};

// The plugin setting max_concurrent (worker threads), 1-1024; throws outpost::Error(CONFIG).
std::size_t blocking_poller_threads(const outpost::Config& cfg, int64_t default_threads);

class BlockingPoller {
 public:
  // The work of one target; `deadline_ns` (host monotonic) is when its result stops counting.
  using Work = std::function<BlockingOutcome(int64_t deadline_ns)>;

  BlockingPoller(outpost::Host host, std::string name, std::size_t threads);
  ~BlockingPoller();
  BlockingPoller(const BlockingPoller&) = delete;
  BlockingPoller& operator=(const BlockingPoller&) = delete;

  void start();
  void stop();
  // From poll(): a Work per target, made on the calling thread by `make`; an outpost::Error it
  // throws completes that target with its status.
  void submit(const outpost::PollRequest& req,
              const std::function<Work(const outpost::Target&)>& make);

 private:
  struct Item {
    uint64_t poll_id = 0, target_id = 0;
    int64_t deadline_ns = 0;
    Work work;
    bool done = false;
  };
  void worker();
  void watchdog();
  void finish_locked(Item& item, outpost_status status, const std::string& detail);

  outpost::Host host_;
  std::string name_;
  std::size_t threads_;
  std::mutex mu_;
  std::condition_variable work_cv_, watch_cv_;
  std::deque<std::shared_ptr<Item>> queue_;
  std::vector<std::shared_ptr<Item>> running_;
  bool started_ = false, stopping_ = false;
  std::vector<std::thread> workers_;
  std::thread watchdog_;
};

}  // namespace outpost::lib
