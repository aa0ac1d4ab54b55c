// stdout: JSON lines (or a compact text form) on the process's standard output.
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstring>
#include <jsonl/jsonl.hpp>
#include <outpost/sdk.hpp>
#include <string>
#include <vector>

namespace {

using outpost::Error;

// Control characters would split a record over lines; everything else passes as is.
void append_text(std::string& out, std::string_view s) {
  static constexpr char hex[] = "0123456789abcdef";
  for (const char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if (c == '\n')
      out += "\\n";
    else if (c == '\t')
      out += "\\t";
    else if (c == '\r')
      out += "\\r";
    else if (c < 0x20 || c == 0x7F) {
      out += "\\x";
      out += hex[c >> 4];
      out += hex[c & 0xF];
    } else {
      out += ch;
    }
  }
}

void append_pairs(std::string& out, const outpost_kv* kv, std::size_t n) {
  out += '{';
  bool first = true;
  for (const outpost_kv* p : outpost::jsonl::sorted_pairs(kv, n)) {
    if (!first) out += ',';
    first = false;
    append_text(out, outpost::view(p->key));
    out += '=';
    append_text(out, outpost::view(p->value));
  }
  out += '}';
}

void append_value(std::string& out, double v) {
  if (std::isnan(v)) {
    out += "NaN";
  } else if (std::isinf(v)) {
    out += v > 0 ? "+Inf" : "-Inf";
  } else {
    char buf[32];
    out.append(buf, std::to_chars(buf, buf + sizeof buf, v).ptr);
  }
}

const char* severity_name(uint32_t s) {
  static constexpr const char* names[] = {"emergency", "alert",  "critical", "error",
                                          "warning",   "notice", "info",     "debug"};
  return s < 8 ? names[s] : "unknown";
}

void append_endpoint(std::string& out, const uint8_t (&addr)[16], uint8_t family, uint16_t port) {
  const std::string a = outpost::jsonl::format_address(addr, family);
  if (family == 6) out += '[';
  out += a.empty() ? "?" : a;
  if (family == 6) out += ']';
  out += ':';
  out += std::to_string(port);
}

class StdoutSink final : public outpost::Sink {
 public:
  StdoutSink(outpost::Host host, const outpost::Config& cfg) : host_(host) {
    metrics_ = cfg.get_bool("metrics", true);
    events_ = cfg.get_bool("events", true);
    flows_ = cfg.get_bool("flows", true);
    const std::string format = cfg.get("format", "json");
    if (format != "json" && format != "text")
      throw Error(OUTPOST_E_CONFIG, "format: must be json or text, not " + format);
    text_ = format == "text";
  }

  static std::vector<outpost_field> config_fields() {
    using outpost::field;
    return {
        field("metrics", OUTPOST_FIELD_BOOL, "print metrics", "true"),
        field("events", OUTPOST_FIELD_BOOL, "print events", "true"),
        field("flows", OUTPOST_FIELD_BOOL, "print flows", "true"),
        field("format", OUTPOST_FIELD_STRING,
              "json (one JSON object a line) or text (name{k=v,...} value)", "json"),
    };
  }

  void write(const outpost_batch& b) override {
    const int64_t now = host_.now_ns();
    out_.clear();
    for (std::size_t i = 0; metrics_ && i < b.metric_count; ++i) {
      const auto& m = outpost::element(b.metrics, b.metric_size, i);
      if (!text_) {
        outpost::jsonl::append_metric(out_, m, now);
        continue;
      }
      append_text(out_, outpost::view(m.name));
      if (m.label_count > 0) append_pairs(out_, m.labels, m.label_count);
      out_ += ' ';
      append_value(out_, m.value);
      out_ += '\n';
    }
    for (std::size_t i = 0; events_ && i < b.event_count; ++i) {
      const auto& e = outpost::element(b.events, b.event_size, i);
      if (!text_) {
        outpost::jsonl::append_event(out_, e, now);
        continue;
      }
      out_ += "event ";
      out_ += severity_name(e.severity);
      out_ += ' ';
      append_text(out_, outpost::view(e.source));
      out_ += ' ';
      append_text(out_, outpost::view(e.kind));
      out_ += ": ";
      append_text(out_, outpost::view(e.message));
      if (e.attribute_count > 0) {
        out_ += ' ';
        append_pairs(out_, e.attributes, e.attribute_count);
      }
      out_ += '\n';
    }
    for (std::size_t i = 0; flows_ && i < b.flow_count; ++i) {
      const auto& f = outpost::element(b.flows, b.flow_size, i);
      if (!text_) {
        outpost::jsonl::append_flow(out_, f);
        continue;
      }
      out_ += "flow ";
      append_endpoint(out_, f.src_addr, f.family, f.src_port);
      out_ += " -> ";
      append_endpoint(out_, f.dst_addr, f.family, f.dst_port);
      out_ += " proto=" + std::to_string(f.protocol) + " bytes=" + std::to_string(f.bytes) +
              " packets=" + std::to_string(f.packets) + '\n';
    }
    write_all();
  }

 private:
  // One write(2) per batch in the common case, so lines from other writers of the same stdout
  // (the engine's own log) interleave only between batches, never inside a line.
  void write_all() {
    std::size_t off = 0;
    while (off < out_.size()) {
      const ssize_t n = ::write(STDOUT_FILENO, out_.data() + off, out_.size() - off);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
        throw Error(OUTPOST_E_BUSY, "stdout is full");
      if (n <= 0)
        throw Error(OUTPOST_E_UNAVAILABLE,
                    std::string("stdout: ") + std::strerror(n < 0 ? errno : EIO));
      off += static_cast<std::size_t>(n);
    }
  }

  outpost::Host host_;
  bool metrics_ = true, events_ = true, flows_ = true, text_ = false;
  std::string out_;
};

}  // namespace

OUTPOST_PLUGIN(StdoutSink, "stdout", "1.0.0", "Prints metrics, events and flows on standard output")
