// The one common sink path: every plugin's metrics, events and flows go through one bounded
// queue, are merged into batches and handed to every sink. What cannot be kept is counted by
// reason, never silently lost.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "pipeline/batch.hpp"

namespace outpost::core {

class SinkPort {
 public:
  virtual ~SinkPort() = default;
  virtual const std::string& name() const = 0;
  virtual outpost_status write(const outpost_batch& batch) = 0;
  virtual outpost_status flush() = 0;
  // A sink behind a disk spool takes the owned batches (with their origins) instead of write;
  // it sends them from the spool on a thread of its own.
  virtual bool spooled() const { return false; }
  virtual outpost_status append(const std::vector<const Batch*>& /*batches*/) {
    return OUTPOST_E_UNSUPPORTED;
  }
};

class ProcessorPort {
 public:
  virtual ~ProcessorPort() = default;
  virtual const std::string& name() const = 0;
  virtual outpost_status process(const outpost_batch& batch) = 0;
  virtual bool consumes_flows() const = 0;
};

// Where data comes from decides how it is admitted. Listeners cannot be slowed: past the capacity
// their data is dropped and counted. Pollers are slowed instead (the scheduler holds back
// dispatch while the pipeline is congested), so what a running poll fetched is still taken, as
// are processors' summaries and the engine's own data, up to a hard ceiling that bounds memory.
// What processors emit never goes through the processors again.
enum class Source { poller, listener, processor, engine };

struct PipelineOptions {
  std::size_t capacity = 100000;  // items queued, all kinds
  std::size_t batch_size = 2000;  // items per sink write
  double flush_interval_s = 1.0;  // a partial batch waits at most this long
  int max_retries = 3;            // per write, for retry-class statuses
  double retry_backoff_s = 0.2;   // doubled each retry
  bool raw_flows = false;         // flows go to sinks even when a processor consumes them
};

struct SinkStats {
  uint64_t written = 0;  // items
  uint64_t writes = 0;
  uint64_t failures = 0;
  uint64_t retries = 0;
  outpost_status last_status = 0;
};

struct PipelineStats {
  std::size_t depth = 0;
  std::size_t capacity = 0;
  uint64_t accepted = 0;   // items
  uint64_t delivered = 0;  // items handed to the sinks (once per item, not per sink)
  std::map<std::string, uint64_t> dropped;  // reason -> items
  std::map<std::string, SinkStats> sinks;
  std::map<std::string, uint64_t> processor_failures;
};

class Pipeline {
 public:
  explicit Pipeline(PipelineOptions options);
  ~Pipeline();
  Pipeline(const Pipeline&) = delete;
  Pipeline& operator=(const Pipeline&) = delete;

  void set_sinks(std::vector<std::shared_ptr<SinkPort>> sinks);
  void set_processors(std::vector<std::shared_ptr<ProcessorPort>> processors);
  void start();
  // Refuses new data, delivers everything queued, flushes every sink, joins.
  void stop();
  // Waits until everything queued now has been delivered (still accepting), up to timeout_s.
  bool drain(double timeout_s);

  // The one way a plugin's data enters. Thread-safe, on the emitting thread. Refuses a batch
  // whose struct or element sizes are below ABI 1.0's (OUTPOST_E_INVALID_ARGUMENT, counted as
  // invalid_batch: nothing is read past what the plugin gave). A source's flows go through every
  // processor right here, on its own thread, before anything is queued (the hottest path: no
  // copy into the queue only to be summed, no wait on the one delivery thread); the sinks get
  // them too only when engine.pipeline.raw_flows is set or no processor consumes flows. Then the
  // rest is deep-copied and queued as submit(Batch&&) does.
  // origin names the source for spooled sinks (Batch::origin).
  outpost_status submit(const outpost_batch& batch, Source source, int64_t now_ns,
                        std::string_view origin = {});
  // Owned data. OUTPOST_E_BUSY when the queue is full (for all but listeners: past
  // kHeldCeiling times the capacity), OUTPOST_E_UNAVAILABLE after stop; the batch's items are
  // counted as dropped in both cases.
  outpost_status submit(Batch&& batch, Source source = Source::engine);
  // True while the queue is at least half full: pollers should not start more work.
  bool congested() const;
  static constexpr std::size_t kHeldCeiling = 2;
  void count_drop(const std::string& reason, uint64_t items);

  PipelineStats stats() const;

 private:
  void run();
  // Runs the processors over a source's flows; whether the sinks still want them.
  bool process_flows(const outpost_batch& flows);
  void deliver(const std::vector<const Batch*>& batches, std::size_t items);

  PipelineOptions opt_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Batch> queue_;
  std::size_t queued_items_ = 0;
  bool stopping_ = false;
  bool started_ = false;
  std::vector<std::shared_ptr<SinkPort>> sinks_;
  std::vector<std::shared_ptr<ProcessorPort>> processors_;
  bool delivering_ = false;
  int drainers_ = 0;
  std::condition_variable idle_cv_;
  BatchView processor_view_;  // dispatcher thread only
  PipelineStats stats_;
  BatchView view_;  // dispatcher thread only
  std::thread thread_;
};

}  // namespace outpost::core
