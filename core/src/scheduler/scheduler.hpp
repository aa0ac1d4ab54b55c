// Runs (device x monitor) pairs at their intervals: due targets are grouped per plugin
// instance into batches with a deadline, handed to the instance's poll hook, and every target
// gets an outcome: the plugin's, or a timeout at the deadline. One slow device or plugin never
// holds up the others.
//
// Time comes from SchedulerOptions::clock. With the real clocks (the default) start() runs the
// scheduler's own thread, which is only a loop of run_due() and a wait until the time run_due()
// names or a completion arrives. With an injected clock (a test's ManualClock) start() runs no
// thread: the test moves the clock and calls run_due() itself, so it alone moves scheduler
// time, each step is finished when run_due() returns, and no thread waits on real time. That is
// simpler than a thread waiting on the fake clock, which would need the clock to wake it and a
// second signal back to tell the test the step was done.
#pragma once

#include <outpost/plugin.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "pipeline/batch.hpp"
#include "util/clock.hpp"

namespace outpost::core {

class PluginInstance;

struct TaskSpec {
  PluginInstance* instance = nullptr;
  std::string device;
  std::string address;
  Tags tags;
  std::vector<std::pair<std::string, std::string>> params;
  double interval_s = 60;
  double timeout_s = 10;
};

struct SchedulerOptions {
  std::size_t max_in_flight = 20000;
  std::size_t max_batch_targets = 5000;
  // Fraction of its interval over which a monitor's targets are spread: each target's first run
  // comes at a fixed phase (a hash of instance, device and address) of that span, and every run
  // after it one interval later, so polls and their data come evenly, not in a burst.
  double jitter = 1.0;
  // Back-pressure: while this says the pipeline is congested, nothing new is dispatched; polls
  // start late (counted as delayed) rather than their data being dropped.
  std::function<bool()> congested;
  // Where the time comes from. Null: the real clocks, and start() runs the scheduler's thread.
  // Anything else: no thread; the owner moves the clock and calls run_due().
  std::shared_ptr<const TimeSource> clock;
};

struct TargetStatus {
  std::string instance, device, address;
  bool polled = false;
  bool ok = false;
  outpost_status last_status = 0;
  std::string last_detail;
  uint64_t consecutive_failures = 0;
  uint64_t skipped = 0;    // polls the plugin or engine had no capacity for
  int64_t last_ok_ns = 0;  // wall clock
};

struct InstancePollStats {
  std::map<outpost_status, uint64_t> results;  // per target outcome
  uint64_t polls = 0;                          // batches handed to the plugin
  uint64_t late = 0;          // completions after the deadline or for unknown targets
  uint64_t busy = 0;          // targets not polled: the instance was still busy
  uint64_t skipped = 0;       // targets reported overloaded or busy: not a device failure
  uint64_t delayed = 0;       // targets dispatched late because the pipeline was congested
  double delay_sum_s = 0;     // how late, summed
  double duration_sum_s = 0;  // target completion times
  uint64_t duration_count = 0;
  std::size_t targets = 0, targets_ok = 0, targets_failing = 0;
};

struct SchedulerStats {
  std::size_t in_flight = 0;
  double held_s = 0;  // time dispatch was held back by a congested pipeline
  std::size_t tasks = 0;
  std::map<std::string, InstancePollStats> instances;
};

// What identifies a task across reloads, and its fixed phase in [0, 1): where in the spread
// (jitter x interval) its first run falls.
std::string task_key(const TaskSpec& task);
double task_phase(const std::string& key);

class Scheduler {
 public:
  using EmitFn = std::function<void(Batch&&)>;
  Scheduler(SchedulerOptions options, EmitFn emit);
  ~Scheduler();
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  // While stopped. A task equal to a running one (same instance, device, address and
  // parameters) keeps its state: its phase, its availability and its counters, so a reload
  // neither re-announces failing devices nor restarts counters at 0.
  void set_tasks(std::vector<TaskSpec> tasks);
  void start();
  void stop();  // outstanding targets are abandoned: late completions are counted and ignored

  // Any thread.
  void complete(const std::string& instance, uint64_t poll_id, uint64_t target_id,
                outpost_status status, std::string_view detail);

  // Does everything due at the clock's current time: handles the queued completions, times out
  // polls past their deadline and dispatches the due targets (unless the pipeline is
  // congested). Returns when the next thing falls due (time_point::max() when nothing will
  // without a completion). The scheduler's thread calls it; with an injected clock, the owner.
  MonoClock::time_point run_due();

  SchedulerStats stats() const;
  std::vector<TargetStatus> targets() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace outpost::core
