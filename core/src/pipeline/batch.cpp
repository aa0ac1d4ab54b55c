#include "pipeline/batch.hpp"

namespace outpost::core {
namespace {
std::string_view sv(outpost_str s) {
  return s.ptr ? std::string_view(s.ptr, s.len) : std::string_view();
}
}  // namespace

Batch Batch::from_parts(std::string arena, std::vector<KvRec> kvs, std::vector<MetricRec> metrics,
                        std::vector<EventRec> events, std::vector<outpost_flow> flows) {
  Batch b;
  b.arena_ = std::move(arena);
  b.kvs_ = std::move(kvs);
  b.metrics_ = std::move(metrics);
  b.events_ = std::move(events);
  b.flows_ = std::move(flows);
  return b;
}

void Batch::add_metric(std::string_view name, const outpost_kv* labels, std::size_t n, double value,
                       int64_t time_ns, uint32_t type) {
  MetricRec m;
  m.name = add_str(name);
  m.label_begin = static_cast<uint32_t>(kvs_.size());
  m.label_count = static_cast<uint32_t>(n);
  for (std::size_t i = 0; i < n; ++i)
    kvs_.push_back(KvRec{add_str(sv(labels[i].key)), add_str(sv(labels[i].value))});
  m.value = value;
  m.time_ns = time_ns;
  m.type = type;
  metrics_.push_back(m);
}

void Batch::add_metric(std::string_view name,
                       std::initializer_list<std::pair<std::string_view, std::string_view>> labels,
                       double value, int64_t time_ns, uint32_t type) {
  MetricRec m;
  m.name = add_str(name);
  m.label_begin = static_cast<uint32_t>(kvs_.size());
  m.label_count = static_cast<uint32_t>(labels.size());
  for (const auto& [k, v] : labels) kvs_.push_back(KvRec{add_str(k), add_str(v)});
  m.value = value;
  m.time_ns = time_ns;
  m.type = type;
  metrics_.push_back(m);
}

void Batch::add_event(const outpost_event& e, int64_t default_time_ns) {
  EventRec r;
  r.time_ns = e.time_ns != 0 ? e.time_ns : default_time_ns;
  r.severity = e.severity;
  r.source = add_str(sv(e.source));
  r.kind = add_str(sv(e.kind));
  r.message = add_str(sv(e.message));
  r.attr_begin = static_cast<uint32_t>(kvs_.size());
  r.attr_count = static_cast<uint32_t>(e.attribute_count);
  for (std::size_t i = 0; i < e.attribute_count; ++i)
    kvs_.push_back(KvRec{add_str(sv(e.attributes[i].key)), add_str(sv(e.attributes[i].value))});
  events_.push_back(r);
}

void Batch::add_event(std::string_view source, std::string_view kind, std::string_view message,
                      uint32_t severity, int64_t time_ns,
                      std::initializer_list<std::pair<std::string_view, std::string_view>> attrs) {
  EventRec r;
  r.time_ns = time_ns;
  r.severity = severity;
  r.source = add_str(source);
  r.kind = add_str(kind);
  r.message = add_str(message);
  r.attr_begin = static_cast<uint32_t>(kvs_.size());
  r.attr_count = static_cast<uint32_t>(attrs.size());
  for (const auto& [k, v] : attrs) kvs_.push_back(KvRec{add_str(k), add_str(v)});
  events_.push_back(r);
}

void Batch::add_c_batch(const outpost_batch& b, int64_t now_ns, bool with_flows) {
  const auto* mb = reinterpret_cast<const char*>(b.metrics);
  for (std::size_t i = 0; i < b.metric_count; ++i) {
    const auto& m = *reinterpret_cast<const outpost_metric*>(mb + i * b.metric_size);
    add_metric(sv(m.name), m.labels, m.label_count, m.value, m.time_ns != 0 ? m.time_ns : now_ns,
               m.type);
  }
  const auto* eb = reinterpret_cast<const char*>(b.events);
  for (std::size_t i = 0; i < b.event_count; ++i)
    add_event(*reinterpret_cast<const outpost_event*>(eb + i * b.event_size), now_ns);
  if (!with_flows || b.flow_count == 0) return;
  const auto* fb = reinterpret_cast<const char*>(b.flows);
  if (b.flow_size == sizeof(outpost_flow)) {  // the usual case: one copy of the whole array
    const auto* first = reinterpret_cast<const outpost_flow*>(fb);
    flows_.insert(flows_.end(), first, first + b.flow_count);
    return;
  }
  for (std::size_t i = 0; i < b.flow_count; ++i) {
    outpost_flow f{};
    std::memcpy(&f, fb + i * b.flow_size, b.flow_size < sizeof f ? b.flow_size : sizeof f);
    flows_.push_back(f);
  }
}

void BatchView::build(const std::vector<const Batch*>& batches, bool for_processors) {
  kvs_.clear();
  metrics_.clear();
  events_.clear();
  flows_.clear();
  std::size_t nkv = 0;
  for (const Batch* b : batches) nkv += b->kvs().size();
  kvs_.reserve(nkv);  // no reallocation below: label pointers stay valid
  for (const Batch* b : batches) {
    if (for_processors && !b->for_processors) continue;
    const std::size_t base = kvs_.size();
    for (const auto& kv : b->kvs())
      kvs_.push_back(outpost_kv{b->c_str(kv.key), b->c_str(kv.value)});
    for (const auto& m : b->metrics())
      metrics_.push_back(outpost_metric{b->c_str(m.name), kvs_.data() + base + m.label_begin,
                                        m.label_count, m.value, m.time_ns, m.type, 0});
    for (const auto& e : b->events())
      events_.push_back(outpost_event{e.time_ns, e.severity, 0, b->c_str(e.source),
                                      b->c_str(e.kind), b->c_str(e.message),
                                      kvs_.data() + base + e.attr_begin, e.attr_count});
    if (!for_processors) flows_.insert(flows_.end(), b->flows().begin(), b->flows().end());
  }
}

outpost_batch BatchView::c_batch() const {
  outpost_batch b = outpost_batch_make();
  b.metrics = metrics_.data();
  b.metric_count = metrics_.size();
  b.events = events_.data();
  b.event_count = events_.size();
  b.flows = flows_.data();
  b.flow_count = flows_.size();
  return b;
}

}  // namespace outpost::core
