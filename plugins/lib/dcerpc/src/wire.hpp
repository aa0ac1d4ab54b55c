// Little-endian byte writing and bounds-checked reading, shared by the PDU codec and the
// endpoint mapper's NDR.
#pragma once

#include <cstddef>
#include <cstdint>
#include <outpost_lib/dcerpc.hpp>
#include <span>
#include <string>
#include <vector>

namespace outpost::lib::dcerpc::wire {

[[noreturn]] inline void malformed(const std::string& what) {
  throw Error(Status::protocol, 0, "malformed DCE/RPC data: " + what);
}

struct Writer {
  std::vector<uint8_t> out;
  void u8(uint8_t v) { out.push_back(v); }
  void u16(uint16_t v) {
    out.push_back(static_cast<uint8_t>(v));
    out.push_back(static_cast<uint8_t>(v >> 8));
  }
  void u32(uint32_t v) {
    for (int i = 0; i < 32; i += 8) out.push_back(static_cast<uint8_t>(v >> i));
  }
  void bytes(std::span<const uint8_t> b) { out.insert(out.end(), b.begin(), b.end()); }
  void zeros(std::size_t n) { out.resize(out.size() + n, 0); }
  void align(std::size_t n) {
    while (out.size() % n != 0) out.push_back(0);
  }
  void syntax(const SyntaxId& s) {
    bytes(s.uuid.to_wire());
    u16(s.major);
    u16(s.minor);
  }
  void put_u16(std::size_t at, uint16_t v) {
    out[at] = static_cast<uint8_t>(v);
    out[at + 1] = static_cast<uint8_t>(v >> 8);
  }
};

struct Cursor {
  std::span<const uint8_t> in;
  std::size_t at = 0;
  const char* what;  // names the structure in errors

  std::size_t left() const { return in.size() - at; }
  void need(std::size_t n) const {
    if (left() < n) malformed(std::string(what) + " truncated");
  }
  uint8_t u8() {
    need(1);
    return in[at++];
  }
  uint16_t u16() {
    need(2);
    const auto v = static_cast<uint16_t>(in[at] | in[at + 1] << 8);
    at += 2;
    return v;
  }
  uint32_t u32() {
    need(4);
    const uint32_t v = static_cast<uint32_t>(in[at]) | static_cast<uint32_t>(in[at + 1]) << 8 |
                       static_cast<uint32_t>(in[at + 2]) << 16 |
                       static_cast<uint32_t>(in[at + 3]) << 24;
    at += 4;
    return v;
  }
  std::span<const uint8_t> take(std::size_t n) {
    need(n);
    auto s = in.subspan(at, n);
    at += n;
    return s;
  }
  void skip(std::size_t n) { (void)take(n); }
  void align(std::size_t n) {
    const std::size_t pad = (n - at % n) % n;
    skip(pad);
  }
  SyntaxId syntax() {
    SyntaxId s;
    s.uuid = Uuid::from_wire(take(16).first<16>());
    s.major = u16();
    s.minor = u16();
    return s;
  }
};

}  // namespace outpost::lib::dcerpc::wire
