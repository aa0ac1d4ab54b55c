// Runs (device x monitor) pairs at their intervals: due targets are grouped per plugin
// instance into batches with a deadline, handed to the instance's poll hook, and every target
// gets an outcome: the plugin's, or a timeout at the deadline. One slow device or plugin never
// holds up the others.
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
  double jitter = 0.1;
};

struct TargetStatus {
  std::string instance, device, address;
  bool polled = false;
  bool ok = false;
  outpost_status last_status = 0;
  std::string last_detail;
  uint64_t consecutive_failures = 0;
  int64_t last_ok_ns = 0;  // wall clock
};

struct InstancePollStats {
  std::map<outpost_status, uint64_t> results;  // per target outcome
  uint64_t polls = 0;               // batches handed to the plugin
  uint64_t late = 0;                // completions after the deadline or for unknown targets
  uint64_t busy = 0;                // targets not polled: the instance was still busy
  double duration_sum_s = 0;        // target completion times
  uint64_t duration_count = 0;
  std::size_t targets = 0, targets_ok = 0, targets_failing = 0;
};

struct SchedulerStats {
  std::size_t in_flight = 0;
  std::size_t tasks = 0;
  std::map<std::string, InstancePollStats> instances;
};

class Scheduler {
 public:
  using EmitFn = std::function<void(Batch&&)>;
  Scheduler(SchedulerOptions options, EmitFn emit);
  ~Scheduler();
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  void set_tasks(std::vector<TaskSpec> tasks);  // while stopped
  void start();
  void stop();  // outstanding targets are abandoned: late completions are counted and ignored

  // Any thread.
  void complete(const std::string& instance, uint64_t poll_id, uint64_t target_id,
                outpost_status status, std::string_view detail);

  SchedulerStats stats() const;
  std::vector<TargetStatus> targets() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace outpost::core
