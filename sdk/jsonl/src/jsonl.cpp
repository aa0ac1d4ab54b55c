#include <arpa/inet.h>
#include <sys/socket.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <jsonl/jsonl.hpp>
#include <outpost/sdk.hpp>

namespace outpost::jsonl {
namespace {

// Length of the valid UTF-8 sequence at p, or 0 when it is malformed (overlong, surrogate,
// beyond U+10FFFF, truncated).
std::size_t utf8_length(const unsigned char* p, std::size_t n) {
  const unsigned c = p[0];
  std::size_t len = 0;
  uint32_t cp = 0, min = 0;
  if (c < 0x80) return 1;
  if ((c & 0xE0) == 0xC0) {
    len = 2;
    cp = c & 0x1F;
    min = 0x80;
  } else if ((c & 0xF0) == 0xE0) {
    len = 3;
    cp = c & 0x0F;
    min = 0x800;
  } else if ((c & 0xF8) == 0xF0) {
    len = 4;
    cp = c & 0x07;
    min = 0x10000;
  } else
    return 0;
  if (n < len) return 0;
  for (std::size_t i = 1; i < len; ++i) {
    if ((p[i] & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (p[i] & 0x3Fu);
  }
  if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
  return len;
}

template <typename T>
void append_chars(std::string& out, T v) {
  char buf[32];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  (void)ec;  // 32 bytes hold any int64, uint64 or shortest double
  out.append(buf, end);
}

void append_key(std::string& out, std::string_view key) {
  out += ',';
  append_string(out, key);
  out += ':';
}

void append_address(std::string& out, const uint8_t (&addr)[16], uint8_t family) {
  const std::string s = format_address(addr, family);
  if (s.empty())
    out += "null";
  else
    append_string(out, s);
}

}  // namespace

void append_string(std::string& out, std::string_view s) {
  static constexpr char hex[] = "0123456789abcdef";
  out += '"';
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const std::size_t n = s.size();
  for (std::size_t i = 0; i < n;) {
    const unsigned char c = p[i];
    if (c >= 0x80) {
      const std::size_t len = utf8_length(p + i, n - i);
      if (len == 0) {
        out += "\\ufffd";
        ++i;
      } else {
        out.append(s.data() + i, len);
        i += len;
      }
      continue;
    }
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
          out += hex[c >> 4];
          out += hex[c & 0xF];
        } else {
          out += static_cast<char>(c);
        }
    }
    ++i;
  }
  out += '"';
}

void append_number(std::string& out, double v) {
  if (!std::isfinite(v))
    out += "null";
  else
    append_chars(out, v);
}
void append_number(std::string& out, int64_t v) { append_chars(out, v); }
void append_number(std::string& out, uint64_t v) { append_chars(out, v); }

std::vector<const outpost_kv*> sorted_pairs(const outpost_kv* kv, std::size_t n) {
  std::vector<const outpost_kv*> v;
  v.reserve(n);
  for (std::size_t i = 0; i < n; ++i) v.push_back(&kv[i]);
  // Stable, so among equal keys the last one given stays last and wins below.
  std::stable_sort(v.begin(), v.end(), [](const outpost_kv* a, const outpost_kv* b) {
    return view(a->key) < view(b->key);
  });
  std::vector<const outpost_kv*> out;
  out.reserve(v.size());
  for (const outpost_kv* p : v) {
    if (!out.empty() && view(out.back()->key) == view(p->key))
      out.back() = p;
    else
      out.push_back(p);
  }
  return out;
}

void append_object(std::string& out, const outpost_kv* kv, std::size_t n) {
  out += '{';
  bool first = true;
  for (const outpost_kv* p : sorted_pairs(kv, n)) {
    if (!first) out += ',';
    first = false;
    append_string(out, view(p->key));
    out += ':';
    append_string(out, view(p->value));
  }
  out += '}';
}

std::string canonical_object(const outpost_kv* kv, std::size_t n) {
  std::string s;
  append_object(s, kv, n);
  return s;
}

namespace {

// A JSON reader of just what parse_object needs: whitespace, strings, ':' ',' '{' '}'.
class Reader {
 public:
  explicit Reader(std::string_view s) : s_(s) {}
  void skip_space() {
    while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\t' || s_[i_] == '\n' || s_[i_] == '\r'))
      ++i_;
  }
  bool take(char c) {
    skip_space();
    if (i_ < s_.size() && s_[i_] == c) {
      ++i_;
      return true;
    }
    return false;
  }
  bool at_end() {
    skip_space();
    return i_ == s_.size();
  }
  bool string(std::string& out) {
    out.clear();
    if (!take('"')) return false;
    while (i_ < s_.size()) {
      const char c = s_[i_++];
      if (c == '"') return true;
      if (static_cast<unsigned char>(c) < 0x20) return false;
      if (c != '\\') {
        out += c;
        continue;
      }
      if (i_ >= s_.size()) return false;
      switch (s_[i_++]) {
        case '"':
          out += '"';
          break;
        case '\\':
          out += '\\';
          break;
        case '/':
          out += '/';
          break;
        case 'b':
          out += '\b';
          break;
        case 'f':
          out += '\f';
          break;
        case 'n':
          out += '\n';
          break;
        case 'r':
          out += '\r';
          break;
        case 't':
          out += '\t';
          break;
        case 'u': {
          uint32_t cp = 0;
          if (!hex4(cp)) return false;
          if (cp >= 0xD800 && cp <= 0xDBFF) {  // a high surrogate: its low half follows
            uint32_t low = 0;
            if (i_ + 1 >= s_.size() || s_[i_] != '\\' || s_[i_ + 1] != 'u') return false;
            i_ += 2;
            if (!hex4(low) || low < 0xDC00 || low > 0xDFFF) return false;
            cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
          } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
            return false;
          }
          utf8(out, cp);
          break;
        }
        default:
          return false;
      }
    }
    return false;
  }

 private:
  bool hex4(uint32_t& out) {
    if (s_.size() - i_ < 4) return false;
    out = 0;
    for (int k = 0; k < 4; ++k) {
      const char c = s_[i_++];
      out <<= 4;
      if (c >= '0' && c <= '9')
        out |= static_cast<uint32_t>(c - '0');
      else if (c >= 'a' && c <= 'f')
        out |= static_cast<uint32_t>(c - 'a' + 10);
      else if (c >= 'A' && c <= 'F')
        out |= static_cast<uint32_t>(c - 'A' + 10);
      else
        return false;
    }
    return true;
  }
  static void utf8(std::string& out, uint32_t cp) {
    if (cp < 0x80) {
      out += static_cast<char>(cp);
    } else if (cp < 0x800) {
      out += static_cast<char>(0xC0 | (cp >> 6));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
      out += static_cast<char>(0xE0 | (cp >> 12));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    } else {
      out += static_cast<char>(0xF0 | (cp >> 18));
      out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    }
  }
  std::string_view s_;
  std::size_t i_ = 0;
};

}  // namespace

bool parse_object(std::string_view s, std::vector<std::pair<std::string, std::string>>& out) {
  out.clear();
  Reader r(s);
  if (!r.take('{')) return false;
  if (!r.take('}')) {
    do {
      std::string k, v;
      if (!r.string(k) || !r.take(':') || !r.string(v)) return false;
      out.emplace_back(std::move(k), std::move(v));
    } while (r.take(','));
    if (!r.take('}')) return false;
  }
  return r.at_end();
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
  const int af = family == 4 ? AF_INET : family == 6 ? AF_INET6 : 0;
  if (af == 0 || ::inet_ntop(af, addr, buf, sizeof buf) == nullptr) return {};
  return buf;
}

void append_metric(std::string& out, const outpost_metric& m, int64_t now_ns) {
  out += "{\"type\":\"metric\"";
  append_key(out, "name");
  append_string(out, view(m.name));
  append_key(out, "labels");
  append_object(out, m.labels, m.label_count);
  append_key(out, "value");
  append_number(out, m.value);
  append_key(out, "time_ns");
  append_number(out, m.time_ns != 0 ? m.time_ns : now_ns);
  append_key(out, "kind");
  out += m.type == OUTPOST_METRIC_COUNTER ? "\"counter\"" : "\"gauge\"";
  out += "}\n";
}

void append_event(std::string& out, const outpost_event& e, int64_t now_ns) {
  out += "{\"type\":\"event\"";
  append_key(out, "time_ns");
  append_number(out, e.time_ns != 0 ? e.time_ns : now_ns);
  append_key(out, "severity");
  append_number(out, int64_t{e.severity});
  append_key(out, "source");
  append_string(out, view(e.source));
  append_key(out, "kind");
  append_string(out, view(e.kind));
  append_key(out, "message");
  append_string(out, view(e.message));
  append_key(out, "attributes");
  append_object(out, e.attributes, e.attribute_count);
  out += "}\n";
}

void append_flow(std::string& out, const outpost_flow& f) {
  out += "{\"type\":\"flow\"";
  append_key(out, "start_ns");
  append_number(out, f.start_ns);
  append_key(out, "end_ns");
  append_number(out, f.end_ns);
  append_key(out, "exporter");
  append_address(out, f.exporter_addr, outpost_flow_exporter_family(&f));
  append_key(out, "src");
  append_address(out, f.src_addr, f.family);
  append_key(out, "dst");
  append_address(out, f.dst_addr, f.family);
  append_key(out, "src_port");
  append_number(out, int64_t{f.src_port});
  append_key(out, "dst_port");
  append_number(out, int64_t{f.dst_port});
  append_key(out, "protocol");
  append_number(out, int64_t{f.protocol});
  append_key(out, "tcp_flags");
  append_number(out, int64_t{f.tcp_flags});
  append_key(out, "tos");
  append_number(out, int64_t{f.tos});
  append_key(out, "bytes");
  append_number(out, f.bytes);
  append_key(out, "packets");
  append_number(out, f.packets);
  append_key(out, "input_if");
  append_number(out, int64_t{f.input_if});
  append_key(out, "output_if");
  append_number(out, int64_t{f.output_if});
  append_key(out, "sampling_rate");
  append_number(out, int64_t{f.sampling_rate});
  out += "}\n";
}

}  // namespace outpost::jsonl
