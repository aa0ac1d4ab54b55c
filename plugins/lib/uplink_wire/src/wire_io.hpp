// Byte-level conventions of the wire format shared by the encoder and the decoder: LEB128
// varints, zigzag, little-endian fixed words, the column order, and the value tags.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>
#include <string_view>

namespace outpost::lib::wire::detail {

inline constexpr char kMagic[4] = {'O', 'P', 'W', 'B'};

// The columns of the decompressed payload, each preceded by its byte length, in this order.
enum Column : uint8_t {
  kStrings,        // count, then (length, bytes) each
  kSeriesDefs,     // per new series: name index, type, label count, (key index, value index)...
  kMetricIds,      // zigzag(id - previous id - 1)
  kMetricTimes,    // zigzag(time - previous time), the first against 0
  kMetricTags,     // one byte each: a ValueTag
  kMetricInts,     // zigzag varints of the kInt and kIntDelta values
  kMetricDoubles,  // 8 bytes little-endian each, kXor values
  kEventTimes,     // zigzag(time - previous time), the first against 0
  kEventFields,    // severity, source, kind, message, attribute count, (key, value)...
  kFlowTimes,      // zigzag(start - previous start), zigzag(end - start)
  kFlowSmall,      // address layout, family, exporter_family, protocol, tcp_flags, tos
  kFlowAddrs,      // src, dst, exporter: 4 bytes when the layout says so, else 16
  kFlowNums,       // src_port, dst_port, input_if, output_if, sampling_rate, bytes, packets
  kColumnCount
};

enum ValueTag : uint8_t {
  kInt = 0,       // the value is an integer: zigzag of it
  kIntDelta = 1,  // integer, as the difference to the series' previous (integer) value
  kXor = 2,       // the bits XOR the series' previous value's bits (0 when it has none)
  kSame = 3,      // the very bits of the series' previous value; nothing in any column
  // kDecimal + k, k = 1..9: n / 10^k, zigzag(n) in the ints column (0.25 ms, 99.5 %).
  kDecimal = 3,
  kDecimalLast = kDecimal + 9,
};
inline constexpr double kPow10[10] = {1, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9};

// The flow address layout byte: a set bit means the address is 4 bytes, the other 12 zero.
inline constexpr uint8_t kShortSrc = 1, kShortDst = 2, kShortExporter = 4;

inline uint64_t zigzag(uint64_t d) {  // d: a two's-complement int64 in uint64
  return (d << 1) ^ (0 - (d >> 63));
}
inline uint64_t unzigzag(uint64_t z) { return (z >> 1) ^ (0 - (z & 1)); }

inline void put_varint(std::string& out, uint64_t v) {
  while (v >= 0x80) {
    out += static_cast<char>(static_cast<uint8_t>(v) | 0x80);
    v >>= 7;
  }
  out += static_cast<char>(v);
}
inline std::size_t varint_size(uint64_t v) {
  std::size_t n = 1;
  while (v >= 0x80) {
    v >>= 7;
    ++n;
  }
  return n;
}
inline void put_u64le(std::string& out, uint64_t v) {
  char b[8];
  for (int i = 0; i < 8; ++i) b[i] = static_cast<char>(v >> (8 * i));
  out.append(b, 8);
}
inline void put_bytes(std::string& out, std::string_view s) {
  put_varint(out, s.size());
  out += s;
}

// Thrown by Reader and the decoder's checks; caught in Decoder::decode, never leaves it.
struct Malformed : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Reads one region; every read is bounds-checked and throws Malformed naming `what_`.
class Reader {
 public:
  Reader() = default;
  Reader(const uint8_t* p, std::size_t n, const char* what) : p_(p), end_(p + n), what_(what) {}
  std::size_t left() const { return static_cast<std::size_t>(end_ - p_); }
  bool done() const { return p_ == end_; }
  const uint8_t* pos() const { return p_; }
  uint8_t u8() {
    need(1);
    return *p_++;
  }
  uint64_t varint() {
    uint64_t v = 0;
    for (unsigned shift = 0; shift < 64; shift += 7) {
      const uint8_t b = u8();
      // The tenth byte may only carry the top bit of a 64-bit value.
      if (shift == 63 && b > 1) fail("varint over 64 bits");
      v |= static_cast<uint64_t>(b & 0x7F) << shift;
      if ((b & 0x80) == 0) return v;
    }
    fail("varint over 64 bits");
  }
  // A varint that must be at most max (a count or a length).
  uint64_t bounded(uint64_t max, const char* name) {
    const uint64_t v = varint();
    if (v > max) {
      throw Malformed(std::string(what_) + ": " + name + " " + std::to_string(v) + " over " +
                      std::to_string(max));
    }
    return v;
  }
  uint64_t u64le() {
    need(8);
    uint64_t v = 0;
    for (int i = 0; i < 8; ++i) v |= static_cast<uint64_t>(p_[i]) << (8 * i);
    p_ += 8;
    return v;
  }
  std::string_view bytes(std::size_t n) {
    need(n);
    std::string_view s(reinterpret_cast<const char*>(p_), n);
    p_ += n;
    return s;
  }
  std::string_view string(std::size_t max_len, const char* name) {
    return bytes(static_cast<std::size_t>(bounded(max_len, name)));
  }
  void copy(uint8_t* dst, std::size_t n) {
    need(n);
    std::memcpy(dst, p_, n);
    p_ += n;
  }
  [[noreturn]] void fail(const std::string& why) const {
    throw Malformed(std::string(what_) + ": " + why);
  }

 private:
  void need(std::size_t n) const {
    if (left() < n) fail("truncated");
  }
  const uint8_t* p_ = nullptr;
  const uint8_t* end_ = nullptr;
  const char* what_ = "";
};

// The integers a double can be coded as: those in [-2^63, 2^64), -0.0 excepted (its sign would
// be lost). Wide enough for any uint64 counter and any int64 gauge.
__extension__ typedef __int128 Wide;
inline bool integral(double v, Wide& out) {
  if (!(v >= -9223372036854775808.0 && v < 18446744073709551616.0)) return false;  // NaN too
  if (v == 0 && std::signbit(v)) return false;
  const Wide w = static_cast<Wide>(v);
  if (static_cast<double>(w) != v) return false;
  out = w;
  return true;
}
inline bool in_domain(Wide w) { return w >= -(Wide{1} << 63) && w < (Wide{1} << 64); }
inline uint64_t bits_of(double v) {
  uint64_t b;
  std::memcpy(&b, &v, 8);
  return b;
}
inline double double_of(uint64_t b) {
  double v;
  std::memcpy(&v, &b, 8);
  return v;
}

}  // namespace outpost::lib::wire::detail
