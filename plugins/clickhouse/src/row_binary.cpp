#include "row_binary.hpp"

#include <array>
#include <cstring>

namespace outpost::clickhouse {
namespace {

template <typename T>
void put(std::string& out, T v) {
  char b[sizeof(T)];
  for (std::size_t i = 0; i < sizeof(T); ++i)
    b[i] = static_cast<char>(static_cast<uint64_t>(v) >> (8 * i));
  out.append(b, sizeof(T));
}

void put_double(std::string& out, double d) {
  uint64_t bits = 0;
  std::memcpy(&bits, &d, sizeof bits);
  put<uint64_t>(out, bits);
}

void put_leb128(std::string& out, uint64_t v) {
  do {
    uint8_t byte = v & 0x7f;
    v >>= 7;
    if (v != 0) byte |= 0x80;
    out += static_cast<char>(byte);
  } while (v != 0);
}

void put_string(std::string& out, std::string_view s) {
  put_leb128(out, s.size());
  out.append(s.data(), s.size());
}

void put_address(std::string& out, const uint8_t* addr, uint8_t family) {
  if (family == 6) {
    out.append(reinterpret_cast<const char*>(addr), 16);
    return;
  }
  static constexpr std::array<char, 12> kMapped{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, '\xff', '\xff'};
  out.append(kMapped.data(), kMapped.size());
  out.append(reinterpret_cast<const char*>(addr), 4);
}

void note_time(EncodedRows& out, uint32_t t) {
  if (t < out.min_time) out.min_time = t;
  if (t > out.max_time) out.max_time = t;
}

std::string_view sv(outpost_str s) {
  return s.ptr == nullptr ? std::string_view{} : std::string_view(s.ptr, s.len);
}

// The rollup columns named after labels, in schema order.
constexpr std::array<std::string_view, 7> kLabelColumns{"exporter", "ifindex",  "direction", "src",
                                                        "dst",      "protocol", "port"};

}  // namespace

uint32_t datetime_of(int64_t ns) {
  if (ns <= 0) return 0;
  const int64_t s = ns / 1'000'000'000;
  return s > int64_t{UINT32_MAX} ? UINT32_MAX : static_cast<uint32_t>(s);
}

void append_flow(EncodedRows& out, const outpost_flow& f, uint64_t batch, uint32_t now_s) {
  uint32_t t = datetime_of(f.end_ns > 0 ? f.end_ns : f.start_ns);
  if (t == 0) t = now_s;
  note_time(out, t);
  std::string& b = out.body;
  put<uint32_t>(b, t);
  put<int64_t>(b, f.start_ns);
  put<int64_t>(b, f.end_ns);
  put_address(b, f.exporter_addr, outpost_flow_exporter_family(&f));
  put_address(b, f.src_addr, f.family);
  put_address(b, f.dst_addr, f.family);
  put<uint8_t>(b, f.family);
  put<uint8_t>(b, f.protocol);
  put<uint16_t>(b, f.src_port);
  put<uint16_t>(b, f.dst_port);
  put<uint8_t>(b, f.tcp_flags);
  put<uint8_t>(b, f.tos);
  put<uint32_t>(b, f.input_if);
  put<uint32_t>(b, f.output_if);
  put<uint32_t>(b, f.sampling_rate);
  put<uint64_t>(b, f.bytes);
  put<uint64_t>(b, f.packets);
  put<uint64_t>(b, batch);
  ++out.rows;
}

void append_rollup(EncodedRows& out, const outpost_metric& m, uint64_t batch, uint32_t now_s) {
  uint32_t t = datetime_of(m.time_ns);
  if (t == 0) t = now_s;
  note_time(out, t);
  std::string& b = out.body;
  put<uint32_t>(b, t);
  put_string(b, sv(m.name));
  const outpost_kv* labels = m.label_count > 0 ? m.labels : nullptr;
  for (const std::string_view col : kLabelColumns) {
    std::string_view value;
    for (std::size_t i = 0; labels != nullptr && i < m.label_count; ++i)
      if (sv(labels[i].key) == col) value = sv(labels[i].value);
    put_string(b, value);
  }
  put_double(b, m.value);
  auto is_column = [](std::string_view key) {
    for (const std::string_view col : kLabelColumns)
      if (key == col) return true;
    return false;
  };
  std::size_t extra = 0;
  for (std::size_t i = 0; labels != nullptr && i < m.label_count; ++i)
    extra += is_column(sv(labels[i].key)) ? 0 : 1;
  for (const bool keys : {true, false}) {
    put_leb128(b, extra);
    for (std::size_t i = 0; labels != nullptr && i < m.label_count; ++i)
      if (!is_column(sv(labels[i].key)))
        put_string(b, keys ? sv(labels[i].key) : sv(labels[i].value));
  }
  put<uint64_t>(b, batch);
  ++out.rows;
}

uint64_t batch_key(std::string_view identity) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (const char c : identity) {
    h ^= static_cast<unsigned char>(c);
    h *= 0x100000001b3ull;
  }
  return h;
}

}  // namespace outpost::clickhouse
