// What the library's sources share: little-endian access, RC4, MD5 and randomness.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace outpost::lib::ntlm::detail {

inline uint16_t get16(std::span<const uint8_t> b, std::size_t at) {
  return static_cast<uint16_t>(b[at] | (b[at + 1] << 8));
}
inline uint32_t get32(std::span<const uint8_t> b, std::size_t at) {
  return static_cast<uint32_t>(b[at]) | static_cast<uint32_t>(b[at + 1]) << 8 |
         static_cast<uint32_t>(b[at + 2]) << 16 | static_cast<uint32_t>(b[at + 3]) << 24;
}
inline void put16(std::vector<uint8_t>& out, uint16_t v) {
  out.push_back(static_cast<uint8_t>(v));
  out.push_back(static_cast<uint8_t>(v >> 8));
}
inline void put32(std::vector<uint8_t>& out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<uint8_t>(v >> (8 * i)));
}
inline void put64(std::vector<uint8_t>& out, uint64_t v) {
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<uint8_t>(v >> (8 * i)));
}
inline void set32(std::span<uint8_t> b, std::size_t at, uint32_t v) {
  for (int i = 0; i < 4; ++i)
    b[at + static_cast<std::size_t>(i)] = static_cast<uint8_t>(v >> (8 * i));
}

// RC4 (ARCFOUR). The state is S[256] followed by i and j, so that a Session can hold it in a
// plain array the public header declares.
using Rc4State = std::array<uint8_t, 258>;
void rc4_init(Rc4State& s, std::span<const uint8_t> key);
void rc4_apply(Rc4State& s, std::span<uint8_t> data);

std::array<uint8_t, 16> md5(std::span<const uint8_t> a, std::span<const uint8_t> b = {});
// HMAC_MD5(key, a + b) without joining a and b.
std::array<uint8_t, 16> hmac_md5(std::span<const uint8_t> key, std::span<const uint8_t> a,
                                 std::span<const uint8_t> b);
void random_bytes(std::span<uint8_t> out);  // throws Error when the CSPRNG fails
void cleanse(void* p, std::size_t n);
bool equal_ct(std::span<const uint8_t> a, std::span<const uint8_t> b);  // constant time

}  // namespace outpost::lib::ntlm::detail
