#include "otlp_encode.hpp"

#include <map>
#include <string_view>

#include "protobuf_writer.hpp"

namespace outpost::otlp {
namespace {

// Field numbers of plugins/otlp/proto/ (the names are those of the messages there).
namespace f {
constexpr uint32_t kRequestResource = 1;  // resource_metrics / resource_logs
constexpr uint32_t kResource = 1, kScopeList = 2;
constexpr uint32_t kResourceAttributes = 1;
constexpr uint32_t kScope = 1, kScopeItems = 2;  // ScopeMetrics.metrics / ScopeLogs.log_records
constexpr uint32_t kScopeName = 1, kScopeVersion = 2;
constexpr uint32_t kKey = 1, kValue = 2, kStringValue = 1;
constexpr uint32_t kMetricName = 1, kMetricGauge = 5, kMetricSum = 7;
constexpr uint32_t kDataPoints = 1, kSumTemporality = 2, kSumMonotonic = 3;
constexpr uint32_t kPointTime = 3, kPointDouble = 4, kPointAttributes = 7;
constexpr uint32_t kLogTime = 1, kLogSeverityNumber = 2, kLogSeverityText = 3, kLogBody = 5,
                   kLogAttributes = 6, kLogObservedTime = 11;
constexpr uint32_t kPartialSuccess = 1, kRejected = 1, kErrorMessage = 2;
}  // namespace f

constexpr uint64_t kCumulative = 2;  // AggregationTemporality

std::string_view view(outpost_str s) { return {s.ptr, s.len}; }

void key_value(ProtoWriter& w, uint32_t field, std::string_view k, std::string_view v) {
  w.begin(field);
  w.bytes_field(f::kKey, k);
  w.begin(f::kValue);
  w.bytes_field(f::kStringValue, v);
  w.end();
  w.end();
}

void open_scope(ProtoWriter& w, const Resource& r) {
  w.begin(f::kRequestResource);
  w.begin(f::kResource);
  for (const auto& [k, v] : r.attributes) key_value(w, f::kResourceAttributes, k, v);
  w.end();
  w.begin(f::kScopeList);
  w.begin(f::kScope);
  w.bytes_field(f::kScopeName, r.scope_name);
  if (!r.scope_version.empty()) w.bytes_field(f::kScopeVersion, r.scope_version);
  w.end();
}

void close_scope(ProtoWriter& w) {
  w.end();  // ScopeMetrics / ScopeLogs
  w.end();  // ResourceMetrics / ResourceLogs
}

uint64_t nanos(int64_t t, int64_t now_ns) { return static_cast<uint64_t>(t != 0 ? t : now_ns); }

}  // namespace

uint32_t severity_number(uint32_t s) {
  switch (s) {
    case OUTPOST_SEV_EMERGENCY:
      return 24;  // FATAL4
    case OUTPOST_SEV_ALERT:
      return 23;  // FATAL3
    case OUTPOST_SEV_CRITICAL:
      return 21;  // FATAL
    case OUTPOST_SEV_ERROR:
      return 17;  // ERROR
    case OUTPOST_SEV_WARNING:
      return 13;  // WARN
    case OUTPOST_SEV_NOTICE:
      return 10;  // INFO2
    case OUTPOST_SEV_INFO:
      return 9;  // INFO
    case OUTPOST_SEV_DEBUG:
      return 5;  // DEBUG
    default:
      return 0;  // UNSPECIFIED
  }
}

const char* severity_text(uint32_t s) {
  static const char* const kText[] = {"EMERGENCY", "ALERT",  "CRITICAL", "ERROR",
                                      "WARNING",   "NOTICE", "INFO",     "DEBUG"};
  return s < 8 ? kText[s] : "UNSPECIFIED";
}

Encoded encode_metrics(const Resource& r, const outpost_batch& b, int64_t now_ns) {
  Encoded out;
  if (b.metric_count == 0) return out;
  // Points of one (name, type) together, names in the order they first appear.
  std::vector<std::vector<std::size_t>> groups;
  std::map<std::pair<std::string_view, uint32_t>, std::size_t> index;
  auto at = [&](std::size_t i) -> const outpost_metric& {
    return *reinterpret_cast<const outpost_metric*>(reinterpret_cast<const char*>(b.metrics) +
                                                    i * b.metric_size);
  };
  for (std::size_t i = 0; i < b.metric_count; ++i) {
    const outpost_metric& m = at(i);
    const auto key = std::make_pair(view(m.name), m.type == OUTPOST_METRIC_COUNTER ? 1u : 0u);
    auto [it, fresh] = index.emplace(key, groups.size());
    if (fresh) groups.emplace_back();
    groups[it->second].push_back(i);
  }
  ProtoWriter w;
  open_scope(w, r);
  for (const auto& g : groups) {
    const outpost_metric& first = at(g.front());
    const bool sum = first.type == OUTPOST_METRIC_COUNTER;
    w.begin(f::kScopeItems);
    w.bytes_field(f::kMetricName, view(first.name));
    w.begin(sum ? f::kMetricSum : f::kMetricGauge);
    for (const std::size_t i : g) {
      const outpost_metric& m = at(i);
      w.begin(f::kDataPoints);
      for (std::size_t l = 0; l < m.label_count; ++l)
        key_value(w, f::kPointAttributes, view(m.labels[l].key), view(m.labels[l].value));
      w.fixed64_field(f::kPointTime, nanos(m.time_ns, now_ns));
      w.double_field(f::kPointDouble, m.value);
      w.end();
      ++out.items;
    }
    if (sum) {
      w.uint_field(f::kSumTemporality, kCumulative);
      w.bool_field(f::kSumMonotonic, true);
    }
    w.end();  // Gauge / Sum
    w.end();  // Metric
  }
  close_scope(w);
  out.body = w.take();
  return out;
}

Encoded encode_logs(const Resource& r, const outpost_batch& b, int64_t now_ns) {
  Encoded out;
  if (b.event_count == 0) return out;
  ProtoWriter w;
  open_scope(w, r);
  for (std::size_t i = 0; i < b.event_count; ++i) {
    const outpost_event& e = *reinterpret_cast<const outpost_event*>(
        reinterpret_cast<const char*>(b.events) + i * b.event_size);
    w.begin(f::kScopeItems);
    w.fixed64_field(f::kLogTime, nanos(e.time_ns, now_ns));
    w.uint_field(f::kLogSeverityNumber, severity_number(e.severity));
    w.bytes_field(f::kLogSeverityText, severity_text(e.severity));
    w.begin(f::kLogBody);
    w.bytes_field(f::kStringValue, view(e.message));
    w.end();
    key_value(w, f::kLogAttributes, "source", view(e.source));
    key_value(w, f::kLogAttributes, "kind", view(e.kind));
    for (std::size_t a = 0; a < e.attribute_count; ++a) {
      const std::string_view k = view(e.attributes[a].key);
      if (k == "source" || k == "kind") continue;  // keys are unique in OTLP; ours come first
      key_value(w, f::kLogAttributes, k, view(e.attributes[a].value));
    }
    w.fixed64_field(f::kLogObservedTime, static_cast<uint64_t>(now_ns));
    w.end();
    ++out.items;
  }
  close_scope(w);
  out.body = w.take();
  return out;
}

namespace {

// Reads one varint at p; false past the end or beyond ten bytes.
bool read_varint(std::string_view& s, uint64_t& v) {
  v = 0;
  for (int shift = 0; shift < 70 && !s.empty(); shift += 7) {
    const auto c = static_cast<uint8_t>(s.front());
    s.remove_prefix(1);
    v |= uint64_t{c & 0x7Fu} << shift;
    if ((c & 0x80) == 0) return true;
  }
  return false;
}

// Calls fn(field, wire type, varint value, length-delimited bytes) for each field of a message;
// false when the message is malformed.
template <typename Fn>
bool each_field(std::string_view s, Fn&& fn) {
  while (!s.empty()) {
    uint64_t tag = 0, v = 0;
    if (!read_varint(s, tag)) return false;
    std::string_view bytes;
    switch (tag & 7) {
      case 0:
        if (!read_varint(s, v)) return false;
        break;
      case 1:
        if (s.size() < 8) return false;
        s.remove_prefix(8);
        break;
      case 2:
        if (!read_varint(s, v) || v > s.size()) return false;
        bytes = s.substr(0, v);
        s.remove_prefix(v);
        break;
      case 5:
        if (s.size() < 4) return false;
        s.remove_prefix(4);
        break;
      default:
        return false;
    }
    fn(static_cast<uint32_t>(tag >> 3), static_cast<uint32_t>(tag & 7), v, bytes);
  }
  return true;
}

}  // namespace

PartialSuccess decode_partial_success(const std::string& body) {
  PartialSuccess out;
  each_field(body, [&](uint32_t field, uint32_t type, uint64_t, std::string_view bytes) {
    if (field != f::kPartialSuccess || type != 2) return;
    each_field(bytes, [&](uint32_t f2, uint32_t t2, uint64_t v, std::string_view b2) {
      if (f2 == f::kRejected && t2 == 0) out.rejected = static_cast<int64_t>(v);
      if (f2 == f::kErrorMessage && t2 == 2) out.message.assign(b2.data(), b2.size());
    });
  });
  return out;
}

}  // namespace outpost::otlp
