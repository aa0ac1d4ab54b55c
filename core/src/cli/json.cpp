#include "cli/json.hpp"

#include <arpa/inet.h>
#include <sys/socket.h>

#include <algorithm>
#include <charconv>
#include <cmath>

namespace outpost::core::json {
namespace {

std::string_view sv(outpost_str s) {
  return s.ptr ? std::string_view(s.ptr, s.len) : std::string_view();
}

// Bytes of the well-formed UTF-8 sequence starting at p[0] (at most n), 0 when malformed:
// overlong, a surrogate, past U+10FFFF or cut short.
std::size_t utf8_sequence(const unsigned char* p, std::size_t n) {
  const unsigned lead = p[0];
  std::size_t len;
  uint32_t cp, lowest;
  if (lead < 0x80) return 1;
  if ((lead & 0xE0) == 0xC0) {
    len = 2, cp = lead & 0x1Fu, lowest = 0x80;
  } else if ((lead & 0xF0) == 0xE0) {
    len = 3, cp = lead & 0x0Fu, lowest = 0x800;
  } else if ((lead & 0xF8) == 0xF0) {
    len = 4, cp = lead & 0x07u, lowest = 0x10000;
  } else {
    return 0;
  }
  if (n < len) return 0;
  for (std::size_t k = 1; k < len; ++k) {
    if ((p[k] & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (p[k] & 0x3Fu);
  }
  if (cp < lowest || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
  return len;
}

template <typename T>
void append_chars(std::string& out, T v) {
  char buf[32];  // any int64, uint64 or shortest double fits
  out.append(buf, std::to_chars(buf, buf + sizeof buf, v).ptr);
}

void key(std::string& out, std::string_view k) {
  out += ',';
  append_string(out, k);
  out += ':';
}

void address(std::string& out, const uint8_t (&addr)[16], uint8_t family) {
  const std::string a = format_address(addr, family);
  if (a.empty())
    out += "null";
  else
    append_string(out, a);
}

}  // namespace

void append_string(std::string& out, std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  out += '"';
  std::size_t i = 0;
  while (i < s.size()) {
    const unsigned char c = p[i];
    if (c >= 0x80) {
      const std::size_t len = utf8_sequence(p + i, s.size() - i);
      if (len == 0) {
        out += "\\ufffd";
        i += 1;
      } else {
        out.append(s.data() + i, len);
        i += len;
      }
      continue;
    }
    ++i;
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\b':
        out += "\\b";
        break;
      case '\f':
        out += "\\f";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (c < 0x20) {
          out += "\\u00";
          out += kHex[c >> 4];
          out += kHex[c & 0xF];
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  out += '"';
}

void append_number(std::string& out, double v) {
  if (std::isfinite(v))
    append_chars(out, v);
  else
    out += "null";
}
void append_number(std::string& out, int64_t v) { append_chars(out, v); }
void append_number(std::string& out, uint64_t v) { append_chars(out, v); }

void append_object(std::string& out, const outpost_kv* kv, std::size_t n) {
  std::vector<const outpost_kv*> sorted;
  sorted.reserve(n);
  for (std::size_t i = 0; i < n; ++i) sorted.push_back(&kv[i]);
  // Stable: of equal keys the last given stays last, and is the one kept.
  std::stable_sort(sorted.begin(), sorted.end(), [](const outpost_kv* a, const outpost_kv* b) {
    return sv(a->key) < sv(b->key);
  });
  out += '{';
  bool first = true;
  for (std::size_t i = 0; i < sorted.size(); ++i) {
    if (i + 1 < sorted.size() && sv(sorted[i + 1]->key) == sv(sorted[i]->key)) continue;
    if (!first) out += ',';
    first = false;
    append_string(out, sv(sorted[i]->key));
    out += ':';
    append_string(out, sv(sorted[i]->value));
  }
  out += '}';
}

void append_pairs(std::string& out, const std::vector<std::pair<std::string, std::string>>& kv) {
  out += '{';
  for (std::size_t i = 0; i < kv.size(); ++i) {
    if (i != 0) out += ',';
    append_string(out, kv[i].first);
    out += ':';
    append_string(out, kv[i].second);
  }
  out += '}';
}

std::string format_address(const uint8_t (&addr)[16], uint8_t family) {
  char buf[INET6_ADDRSTRLEN];
  const int af = family == 4 ? AF_INET : family == 6 ? AF_INET6 : -1;
  if (af < 0 || ::inet_ntop(af, addr, buf, sizeof buf) == nullptr) return {};
  return buf;
}

void append_metric(std::string& out, const outpost_metric& m, int64_t now_ns) {
  out += "{\"type\":\"metric\"";
  key(out, "name");
  append_string(out, sv(m.name));
  key(out, "labels");
  append_object(out, m.labels, m.label_count);
  key(out, "value");
  append_number(out, m.value);
  key(out, "time_ns");
  append_number(out, m.time_ns != 0 ? m.time_ns : now_ns);
  key(out, "kind");
  out += m.type == OUTPOST_METRIC_COUNTER ? "\"counter\"}\n" : "\"gauge\"}\n";
}

void append_event(std::string& out, const outpost_event& e, int64_t now_ns) {
  out += "{\"type\":\"event\"";
  key(out, "time_ns");
  append_number(out, e.time_ns != 0 ? e.time_ns : now_ns);
  key(out, "severity");
  append_number(out, int64_t{e.severity});
  key(out, "source");
  append_string(out, sv(e.source));
  key(out, "kind");
  append_string(out, sv(e.kind));
  key(out, "message");
  append_string(out, sv(e.message));
  key(out, "attributes");
  append_object(out, e.attributes, e.attribute_count);
  out += "}\n";
}

void append_flow(std::string& out, const outpost_flow& f) {
  out += "{\"type\":\"flow\"";
  key(out, "start_ns");
  append_number(out, f.start_ns);
  key(out, "end_ns");
  append_number(out, f.end_ns);
  key(out, "exporter");
  address(out, f.exporter_addr, outpost_flow_exporter_family(&f));
  key(out, "src");
  address(out, f.src_addr, f.family);
  key(out, "dst");
  address(out, f.dst_addr, f.family);
  const std::pair<const char*, int64_t> small[] = {{"src_port", f.src_port},
                                                   {"dst_port", f.dst_port},
                                                   {"protocol", f.protocol},
                                                   {"tcp_flags", f.tcp_flags},
                                                   {"tos", f.tos}};
  for (const auto& [k, v] : small) {
    key(out, k);
    append_number(out, v);
  }
  key(out, "bytes");
  append_number(out, f.bytes);
  key(out, "packets");
  append_number(out, f.packets);
  const std::pair<const char*, int64_t> tail[] = {
      {"input_if", f.input_if}, {"output_if", f.output_if}, {"sampling_rate", f.sampling_rate}};
  for (const auto& [k, v] : tail) {
    key(out, k);
    append_number(out, v);
  }
  out += "}\n";
}

}  // namespace outpost::core::json
