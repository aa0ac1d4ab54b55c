#include "items_json.hpp"

#include <cmath>
#include <cstdio>
#include <cstring>
#include <jsonl/jsonl.hpp>

namespace outpost::receiver {

namespace {

void key(std::string& out, const char* k) {
  out += ",\"";
  out += k;
  out += "\":";
}

void append_value(std::string& out, double v) {
  if (std::isnan(v)) {
    out += "\"NaN\"";
  } else if (std::isinf(v)) {
    out += v > 0 ? "\"Infinity\"" : "\"-Infinity\"";
  } else {
    jsonl::append_number(out, v);
  }
  uint64_t bits;
  std::memcpy(&bits, &v, sizeof bits);
  char hex[24];
  std::snprintf(hex, sizeof hex, "\"%016llx\"", static_cast<unsigned long long>(bits));
  key(out, "value_bits");
  out += hex;
}

void append_address(std::string& out, const uint8_t (&a)[16], uint8_t family) {
  const std::string text = jsonl::format_address(a, family);
  if (text.empty()) {
    out += "null";
  } else {
    jsonl::append_string(out, text);
  }
}

}  // namespace

void append_items(std::string& out, const lib::wire::Result& r) {
  std::string engine;
  jsonl::append_string(engine, r.header.engine);
  for (const auto& m : r.metrics) {
    out += "{\"type\":\"metric\",\"engine\":" + engine;
    key(out, "name");
    jsonl::append_string(out, m.name);
    key(out, "labels");
    jsonl::append_pairs(out, m.labels);
    key(out, "value");
    append_value(out, m.value);
    key(out, "time_ns");
    jsonl::append_number(out, m.time_ns);
    key(out, "kind");
    out += m.type == OUTPOST_METRIC_COUNTER ? "\"counter\""
           : m.type == OUTPOST_METRIC_GAUGE ? "\"gauge\""
                                            : std::to_string(m.type);
    out += "}\n";
  }
  for (const auto& e : r.events) {
    out += "{\"type\":\"event\",\"engine\":" + engine;
    key(out, "time_ns");
    jsonl::append_number(out, e.time_ns);
    key(out, "severity");
    jsonl::append_number(out, int64_t{e.severity});
    key(out, "source");
    jsonl::append_string(out, e.source);
    key(out, "kind");
    jsonl::append_string(out, e.kind);
    key(out, "message");
    jsonl::append_string(out, e.message);
    key(out, "attributes");
    jsonl::append_pairs(out, e.attributes);
    out += "}\n";
  }
  for (const auto& f : r.flows) {
    out += "{\"type\":\"flow\",\"engine\":" + engine;
    key(out, "start_ns");
    jsonl::append_number(out, f.start_ns);
    key(out, "end_ns");
    jsonl::append_number(out, f.end_ns);
    key(out, "family");
    jsonl::append_number(out, int64_t{f.family});
    key(out, "exporter_family");
    jsonl::append_number(out, int64_t{f.exporter_family});
    key(out, "exporter");
    append_address(out, f.exporter_addr, outpost_flow_exporter_family(&f));
    key(out, "src");
    append_address(out, f.src_addr, f.family);
    key(out, "dst");
    append_address(out, f.dst_addr, f.family);
    const std::pair<const char*, uint64_t> nums[] = {{"src_port", f.src_port},
                                                     {"dst_port", f.dst_port},
                                                     {"protocol", f.protocol},
                                                     {"tcp_flags", f.tcp_flags},
                                                     {"tos", f.tos},
                                                     {"bytes", f.bytes},
                                                     {"packets", f.packets},
                                                     {"input_if", f.input_if},
                                                     {"output_if", f.output_if},
                                                     {"sampling_rate", f.sampling_rate}};
    for (const auto& [k, v] : nums) {
      key(out, k);
      jsonl::append_number(out, v);
    }
    out += "}\n";
  }
}

}  // namespace outpost::receiver
