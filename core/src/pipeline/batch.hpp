// Owned telemetry: what the host keeps after deep-copying a plugin's emit. Strings live in one
// arena per batch, so a batch is a handful of allocations however many labels it carries.
#pragma once

#include <outpost/plugin.h>

#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <string>
#include <string_view>
#include <vector>

namespace outpost::core {

struct StrRef {
  uint32_t off = 0;
  uint32_t len = 0;
};
struct KvRec {
  StrRef key, value;
};
struct MetricRec {
  StrRef name;
  uint32_t label_begin = 0, label_count = 0;
  double value = 0;
  int64_t time_ns = 0;
  uint32_t type = 0;
};
struct EventRec {
  int64_t time_ns = 0;
  uint32_t severity = 0;
  StrRef source, kind, message;
  uint32_t attr_begin = 0, attr_count = 0;
};

class Batch {
 public:
  StrRef add_str(std::string_view s) {
    StrRef r{static_cast<uint32_t>(arena_.size()), static_cast<uint32_t>(s.size())};
    arena_.append(s);
    return r;
  }
  std::string_view str(StrRef r) const { return std::string_view(arena_).substr(r.off, r.len); }

  void add_metric(std::string_view name, const outpost_kv* labels, std::size_t n, double value,
                  int64_t time_ns, uint32_t type);
  void add_metric(std::string_view name,
                  std::initializer_list<std::pair<std::string_view, std::string_view>> labels,
                  double value, int64_t time_ns, uint32_t type);
  void add_event(const outpost_event& e, int64_t default_time_ns);
  void add_event(std::string_view source, std::string_view kind, std::string_view message,
                 uint32_t severity, int64_t time_ns,
                 std::initializer_list<std::pair<std::string_view, std::string_view>> attrs = {});
  void add_flow(const outpost_flow& f) { flows_.push_back(f); }
  // Deep-copies a C batch, stamping time 0 with now_ns; its flows only when with_flows.
  void add_c_batch(const outpost_batch& b, int64_t now_ns, bool with_flows = true);

  std::size_t items() const { return metrics_.size() + events_.size() + flows_.size(); }
  bool empty() const { return items() == 0; }

  // Processors see the metrics and events of every batch but their own output. Flows in a queued
  // batch are always for the sinks: a source's flows went through the processors before the
  // queue (Pipeline::submit).
  bool for_processors = true;
  // Which source it came from (a plugin instance's name, or "engine"): a disk spool keeps each
  // source's data in a stream of its own, with its own quota.
  std::string origin;

  // Reassembles a batch from its parts (the spool's reader, after checking every reference).
  static Batch from_parts(std::string arena, std::vector<KvRec> kvs, std::vector<MetricRec> metrics,
                          std::vector<EventRec> events, std::vector<outpost_flow> flows);

  const std::vector<MetricRec>& metrics() const { return metrics_; }
  const std::vector<EventRec>& events() const { return events_; }
  const std::vector<outpost_flow>& flows() const { return flows_; }
  const std::vector<KvRec>& kvs() const { return kvs_; }
  const std::string& arena() const { return arena_; }

  outpost_str c_str(StrRef r) const { return outpost_str{arena_.data() + r.off, r.len}; }

 private:
  std::string arena_;
  std::vector<KvRec> kvs_;
  std::vector<MetricRec> metrics_;
  std::vector<EventRec> events_;
  std::vector<outpost_flow> flows_;
};

// C views of one or more batches, valid while the batches live and are not changed.
class BatchView {
 public:
  // Rebuilds the views over `batches` (reusing this object's storage): everything, for the sinks;
  // for the processors, the metrics and events of batches that are for_processors.
  void build(const std::vector<const Batch*>& batches, bool for_processors = false);
  outpost_batch c_batch() const;
  std::size_t items() const { return metrics_.size() + events_.size() + flows_.size(); }

 private:
  std::vector<outpost_kv> kvs_;
  std::vector<outpost_metric> metrics_;
  std::vector<outpost_event> events_;
  std::vector<outpost_flow> flows_;
};

}  // namespace outpost::core
