// Little-endian NDR 2.0 (C706 chapter 14) writing and bounds-checked reading, for the DCE/RPC
// PDUs and the endpoint mapper here and for the stubs of the libraries above (dcom). A reader's
// alignment counts from the start of the span it was given; every step past the end calls the
// owner's `fail`, which throws that library's error.
#pragma once

#include <cstddef>
#include <cstdint>
#include <outpost_lib/dcerpc.hpp>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

namespace outpost::lib::dcerpc::ndr {

struct Writer {
  std::vector<uint8_t> out;
  uint32_t next_referent = 0x00020000;

  void u8(uint8_t v) { out.push_back(v); }
  void u16(uint16_t v) {
    out.push_back(static_cast<uint8_t>(v));
    out.push_back(static_cast<uint8_t>(v >> 8));
  }
  void u32(uint32_t v) {
    for (unsigned i = 0; i < 32; i += 8) out.push_back(static_cast<uint8_t>(v >> i));
  }
  void u64(uint64_t v) {
    for (unsigned i = 0; i < 64; i += 8) out.push_back(static_cast<uint8_t>(v >> i));
  }
  void bytes(std::span<const uint8_t> b) { out.insert(out.end(), b.begin(), b.end()); }
  void zeros(std::size_t n) { out.resize(out.size() + n, 0); }
  void align(std::size_t n) {
    while (out.size() % n != 0) out.push_back(0);
  }
  void uuid(const Uuid& u) { bytes(u.to_wire()); }
  void syntax(const SyntaxId& s) {
    uuid(s.uuid);
    u16(s.major);
    u16(s.minor);
  }
  // A non-NULL unique pointer: a fresh referent id.
  void pointer() {
    u32(next_referent);
    next_referent += 4;
  }
  void null() { u32(0); }
  void put_u16(std::size_t at, uint16_t v) {
    out[at] = static_cast<uint8_t>(v);
    out[at + 1] = static_cast<uint8_t>(v >> 8);
  }
  void put_u32(std::size_t at, uint32_t v) {
    for (std::size_t i = 0; i < 4; ++i) out[at + i] = static_cast<uint8_t>(v >> (8 * i));
  }
};

class Reader {
 public:
  using Fail = void (*)(const std::string& what);  // must throw

  Reader(std::span<const uint8_t> data, std::size_t start, const char* name, Fail fail)
      : in(data), at(start), what(name), fail_(fail) {}

  std::span<const uint8_t> in;
  std::size_t at = 0;
  const char* what;  // names the structure in errors

  std::size_t left() const { return at <= in.size() ? in.size() - at : 0; }
  bool done() const { return at == in.size(); }
  void need(std::size_t n) const {
    if (left() < n) malformed(std::string(what) + " truncated");
  }
  [[noreturn]] void malformed(const std::string& why) const {
    fail_(why);
    throw std::logic_error("ndr: fail returned");  // never: fail throws
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
    uint32_t v = 0;
    for (std::size_t i = 0; i < 4; ++i) v |= static_cast<uint32_t>(in[at + i]) << (8 * i);
    at += 4;
    return v;
  }
  uint64_t u64() {
    need(8);
    uint64_t v = 0;
    for (std::size_t i = 0; i < 8; ++i) v |= static_cast<uint64_t>(in[at + i]) << (8 * i);
    at += 8;
    return v;
  }
  std::span<const uint8_t> take(std::size_t n) {
    need(n);
    auto s = in.subspan(at, n);
    at += n;
    return s;
  }
  void skip(std::size_t n) { (void)take(n); }
  void align(std::size_t n) { skip((n - at % n) % n); }
  Uuid uuid() { return Uuid::from_wire(take(16).first<16>()); }
  SyntaxId syntax() {
    SyntaxId s;
    s.uuid = uuid();
    s.major = u16();
    s.minor = u16();
    return s;
  }
  // A conformance (or variance) count for `each`-byte elements: it must fit in what is left, so
  // a hostile count can neither overflow nor make us reserve memory for data that is not there.
  uint32_t count(std::size_t each, const char* field) {
    const uint32_t n = u32();
    if (each != 0 && n > left() / each)
      malformed(std::string(what) + ": " + field + " count " + std::to_string(n) +
                " runs past the end");
    return n;
  }

 private:
  Fail fail_;
};

}  // namespace outpost::lib::dcerpc::ndr
