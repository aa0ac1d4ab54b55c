#include "pipeline/pipeline.hpp"

#include <algorithm>
#include <chrono>
#include <cstring>

#include "util/log.hpp"

namespace outpost::core {

Pipeline::Pipeline(PipelineOptions options) : opt_(options) { stats_.capacity = opt_.capacity; }

Pipeline::~Pipeline() { stop(); }

void Pipeline::set_sinks(std::vector<std::shared_ptr<SinkPort>> sinks) {
  std::lock_guard g(mu_);
  sinks_ = std::move(sinks);
}

void Pipeline::set_processors(std::vector<std::shared_ptr<ProcessorPort>> processors) {
  std::lock_guard g(mu_);
  processors_ = std::move(processors);
}

bool Pipeline::drain(double timeout_s) {
  std::unique_lock lk(mu_);
  ++drainers_;
  cv_.notify_all();
  const bool idle = idle_cv_.wait_for(lk, std::chrono::duration<double>(timeout_s), [&] {
    return !started_ || (queue_.empty() && !delivering_);
  });
  --drainers_;
  return idle;
}

void Pipeline::start() {
  std::lock_guard g(mu_);
  if (started_) return;
  started_ = true;
  stopping_ = false;
  thread_ = std::thread([this] { run(); });
}

void Pipeline::stop() {
  {
    std::lock_guard g(mu_);
    if (!started_) {
      stopping_ = true;
      return;
    }
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  std::lock_guard g(mu_);
  started_ = false;
}

namespace {
// ABI 1.0's sizes: nothing smaller is read.
constexpr std::size_t kBatch10 = 64, kMetric10 = 56, kEvent10 = 80, kFlow10 = 104;
}  // namespace

outpost_status Pipeline::submit(const outpost_batch& in, Source source, int64_t now_ns,
                                std::string_view origin) {
  const std::size_t items = in.metric_count + in.event_count + in.flow_count;
  auto below = [](std::size_t count, uint32_t size, std::size_t need) {
    return count != 0 && size < need;
  };
  if (in.struct_size < kBatch10 || below(in.metric_count, in.metric_size, kMetric10) ||
      below(in.event_count, in.event_size, kEvent10) ||
      below(in.flow_count, in.flow_size, kFlow10)) {
    count_drop("invalid_batch", items);
    return OUTPOST_E_INVALID_ARGUMENT;
  }
  outpost_batch b = outpost_batch_make();
  std::memcpy(&b, &in, std::min<std::size_t>(in.struct_size, sizeof b));
  const bool keep_flows = b.flow_count == 0 || source == Source::processor || process_flows(b);
  Batch owned;
  owned.origin = origin;
  owned.add_c_batch(b, now_ns, keep_flows);
  if (owned.empty()) return OUTPOST_OK;  // flows consumed by processors, nothing else
  return submit(std::move(owned), source);
}

outpost_status Pipeline::submit(Batch&& batch, Source source) {
  if (source == Source::processor) batch.for_processors = false;  // never fed back
  const std::size_t n = batch.items();
  if (n == 0) return OUTPOST_OK;
  {
    std::lock_guard g(mu_);
    if (stopping_) {
      stats_.dropped["after_stop"] += n;
      return OUTPOST_E_UNAVAILABLE;
    }
    const std::size_t limit =
        source == Source::listener ? opt_.capacity : opt_.capacity * kHeldCeiling;
    if (queued_items_ + n > limit) {
      stats_.dropped["queue_full"] += n;
      return OUTPOST_E_BUSY;
    }
    queued_items_ += n;
    stats_.accepted += n;
    queue_.push_back(std::move(batch));
  }
  cv_.notify_one();
  return OUTPOST_OK;
}

bool Pipeline::congested() const {
  std::lock_guard g(mu_);
  return queued_items_ * 2 >= opt_.capacity;
}

bool Pipeline::process_flows(const outpost_batch& flows) {
  std::vector<std::shared_ptr<ProcessorPort>> processors;
  {
    std::lock_guard g(mu_);
    if (processors_.empty()) return true;
    processors = processors_;
  }
  outpost_batch only = outpost_batch_make();
  only.flows = flows.flows;
  only.flow_size = flows.flow_size;
  only.flow_count = flows.flow_count;
  bool consumed = false;
  for (auto& p : processors) {
    consumed = consumed || p->consumes_flows();
    if (p->process(only) != OUTPOST_OK) {
      std::lock_guard g(mu_);
      stats_.processor_failures[p->name()]++;
    }
  }
  return opt_.raw_flows || !consumed;
}

void Pipeline::count_drop(const std::string& reason, uint64_t items) {
  std::lock_guard g(mu_);
  stats_.dropped[reason] += items;
}

PipelineStats Pipeline::stats() const {
  std::lock_guard g(mu_);
  PipelineStats s = stats_;
  s.depth = queued_items_;
  return s;
}

void Pipeline::run() {
  using clock = std::chrono::steady_clock;
  const auto flush_every = std::chrono::duration_cast<clock::duration>(
      std::chrono::duration<double>(opt_.flush_interval_s));
  std::deque<Batch> taken;
  auto last_flush = clock::now();
  for (;;) {
    std::size_t items = 0;
    bool stopping = false;
    {
      std::unique_lock lk(mu_);
      // A full batch goes at once; a partial one waits for the flush interval (or a drain).
      cv_.wait_until(lk, last_flush + flush_every, [&] {
        return stopping_ || queued_items_ >= opt_.batch_size || (drainers_ > 0 && !queue_.empty());
      });
      stopping = stopping_;
      while (!queue_.empty() && (items == 0 || items + queue_.front().items() <= opt_.batch_size)) {
        items += queue_.front().items();
        taken.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
      queued_items_ -= items;
      delivering_ = items > 0;
    }
    if (items > 0) {
      std::vector<const Batch*> ptrs;
      ptrs.reserve(taken.size());
      for (const auto& b : taken) ptrs.push_back(&b);
      deliver(ptrs, items);
      taken.clear();
    }
    const bool more = [&] {
      std::lock_guard g(mu_);
      delivering_ = false;
      if (queue_.empty()) idle_cv_.notify_all();
      return !queue_.empty();
    }();
    if (!more) last_flush = clock::now();
    if (stopping && !more) break;
  }
  std::vector<std::shared_ptr<SinkPort>> sinks;
  {
    std::lock_guard g(mu_);
    sinks = sinks_;
  }
  for (auto& s : sinks) {
    const outpost_status st = s->flush();
    if (st != OUTPOST_OK)
      logf(LogLevel::warn, "sink {}: flush failed with status {:#x}", s->name(), st);
  }
}

void Pipeline::deliver(const std::vector<const Batch*>& batches, std::size_t items) {
  std::vector<std::shared_ptr<SinkPort>> sinks;
  std::vector<std::shared_ptr<ProcessorPort>> processors;
  bool stopping = false;
  {
    std::lock_guard g(mu_);
    sinks = sinks_;
    processors = processors_;
    stopping = stopping_;
  }
  if (!processors.empty()) {
    processor_view_.build(batches, true);
    if (processor_view_.items() > 0) {
      const outpost_batch pb = processor_view_.c_batch();
      for (auto& p : processors) {
        if (p->process(pb) != OUTPOST_OK) {
          std::lock_guard g(mu_);
          stats_.processor_failures[p->name()]++;
        }
      }
    }
  }
  view_.build(batches);
  const outpost_batch cb = view_.c_batch();
  for (auto& sink : sinks) {
    if (sink->spooled()) {  // on disk now; the spool's sender does the rest
      const outpost_status st = sink->append(batches);
      std::lock_guard g(mu_);
      auto& ss = stats_.sinks[sink->name()];
      ss.writes++;
      ss.last_status = st;
      if (st == OUTPOST_OK) {
        ss.written += items;
      } else {
        ss.failures++;
        stats_.dropped["spool_error:" + sink->name()] += items;
      }
      continue;
    }
    outpost_status st = OUTPOST_E_INTERNAL;
    int attempt = 0;
    double backoff = opt_.retry_backoff_s;
    uint64_t retries = 0;
    for (;;) {
      st = sink->write(cb);
      if (st == OUTPOST_OK || OUTPOST_STATUS_CLASS(st) != OUTPOST_CLASS_RETRY) break;
      // While stopping, one retry at most: shutdown must not hang on a dead destination.
      if (attempt >= (stopping ? 1 : opt_.max_retries)) break;
      ++attempt;
      ++retries;
      std::this_thread::sleep_for(std::chrono::duration<double>(backoff));
      backoff *= 2;
    }
    std::lock_guard g(mu_);
    auto& ss = stats_.sinks[sink->name()];
    ss.writes++;
    ss.retries += retries;
    ss.last_status = st;
    if (st == OUTPOST_OK) {
      ss.written += items;
    } else {
      ss.failures++;
      stats_.dropped["sink_error:" + sink->name()] += items;
    }
  }
  std::lock_guard g(mu_);
  stats_.delivered += items;
}

}  // namespace outpost::core
