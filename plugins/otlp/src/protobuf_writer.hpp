#pragma once
// A minimal protobuf encoder: just the wire types OTLP needs (varint, 64-bit, length-delimited),
// so the plugin carries no protobuf runtime. A nested message is written in place: its length
// prefix is reserved, the body written, then the prefix filled in and the body moved if the
// length took fewer bytes than reserved.
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

namespace outpost::otlp {

class ProtoWriter {
 public:
  enum WireType : uint32_t { kVarint = 0, kFixed64 = 1, kLengthDelimited = 2 };

  void varint(uint64_t v) {
    while (v >= 0x80) {
      out_.push_back(static_cast<char>((v & 0x7F) | 0x80));
      v >>= 7;
    }
    out_.push_back(static_cast<char>(v));
  }
  void tag(uint32_t field, WireType type) { varint((uint64_t{field} << 3) | type); }

  void uint_field(uint32_t field, uint64_t v) {
    tag(field, kVarint);
    varint(v);
  }
  // int64 fields: negative values are ten bytes of two's complement, as protobuf specifies.
  void int_field(uint32_t field, int64_t v) { uint_field(field, static_cast<uint64_t>(v)); }
  void bool_field(uint32_t field, bool v) { uint_field(field, v ? 1u : 0u); }
  void fixed64_field(uint32_t field, uint64_t v) {
    tag(field, kFixed64);
    char b[8];
    for (int i = 0; i < 8; ++i) b[i] = static_cast<char>((v >> (8 * i)) & 0xFF);
    out_.append(b, 8);
  }
  void double_field(uint32_t field, double v) {
    uint64_t bits = 0;
    std::memcpy(&bits, &v, sizeof bits);
    fixed64_field(field, bits);
  }
  void bytes_field(uint32_t field, std::string_view v) {
    tag(field, kLengthDelimited);
    varint(v.size());
    out_.append(v.data(), v.size());
  }

  // begin(field) ... end(): one nested message; nests freely.
  void begin(uint32_t field) {
    tag(field, kLengthDelimited);
    open_.push_back(out_.size());
    out_.append(kReserved, '\0');
  }
  void end() {
    const std::size_t at = open_.back();
    open_.pop_back();
    const std::size_t body = at + kReserved;
    const uint64_t len = out_.size() - body;
    char prefix[10];
    std::size_t n = 0;
    uint64_t v = len;
    while (v >= 0x80) {
      prefix[n++] = static_cast<char>((v & 0x7F) | 0x80);
      v >>= 7;
    }
    prefix[n++] = static_cast<char>(v);
    std::memcpy(out_.data() + at, prefix, n);
    if (n < kReserved) out_.erase(at + n, kReserved - n);
  }

  const std::string& bytes() const { return out_; }
  std::string take() { return std::move(out_); }
  std::size_t depth() const { return open_.size(); }

 private:
  // Five varint bytes hold lengths up to 32 GiB, far beyond any request the plugin builds.
  static constexpr std::size_t kReserved = 5;
  std::string out_;
  std::vector<std::size_t> open_;
};

}  // namespace outpost::otlp
