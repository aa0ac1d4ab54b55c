// MD4 (RFC 1320), needed only for the NT hash of the password. OpenSSL 3 keeps MD4 in its
// legacy provider, which is not loaded by default (Debian 12).
#include <cstring>

#include "internal.hpp"
#include "outpost_lib/ntlm.hpp"

namespace outpost::lib::ntlm {
namespace {

inline uint32_t rotl(uint32_t x, int n) { return (x << n) | (x >> (32 - n)); }

void block(std::array<uint32_t, 4>& h, const uint8_t* p) {
  uint32_t x[16];
  for (std::size_t i = 0; i < 16; ++i) x[i] = detail::get32({p, 64}, 4 * i);
  uint32_t a = h[0], b = h[1], c = h[2], d = h[3];
  auto f = [](uint32_t u, uint32_t v, uint32_t w) { return (u & v) | (~u & w); };
  auto g = [](uint32_t u, uint32_t v, uint32_t w) { return (u & v) | (u & w) | (v & w); };
  auto hh = [](uint32_t u, uint32_t v, uint32_t w) { return u ^ v ^ w; };
  static constexpr int kR1[4] = {3, 7, 11, 19}, kR2[4] = {3, 5, 9, 13}, kR3[4] = {3, 9, 11, 15};
  // Round 1: the 16 words in order.
  for (int i = 0; i < 16; ++i) {
    const uint32_t t = rotl(a + f(b, c, d) + x[i], kR1[i % 4]);
    a = d, d = c, c = b, b = t;
  }
  // Round 2: words by column (0, 4, 8, 12, 1, 5, ...), constant sqrt(2).
  for (int i = 0; i < 16; ++i) {
    const int k = (i % 4) * 4 + i / 4;
    const uint32_t t = rotl(a + g(b, c, d) + x[k] + 0x5A827999u, kR2[i % 4]);
    a = d, d = c, c = b, b = t;
  }
  // Round 3: words in bit-reversed order (0, 8, 4, 12, 2, ...), constant sqrt(3).
  static constexpr int kOrder3[16] = {0, 8, 4, 12, 2, 10, 6, 14, 1, 9, 5, 13, 3, 11, 7, 15};
  for (int i = 0; i < 16; ++i) {
    const uint32_t t = rotl(a + hh(b, c, d) + x[kOrder3[i]] + 0x6ED9EBA1u, kR3[i % 4]);
    a = d, d = c, c = b, b = t;
  }
  h[0] += a, h[1] += b, h[2] += c, h[3] += d;
  detail::cleanse(x, sizeof x);
}

}  // namespace

std::array<uint8_t, 16> md4(std::span<const uint8_t> data) {
  std::array<uint32_t, 4> h = {0x67452301u, 0xefcdab89u, 0x98badcfeu, 0x10325476u};
  std::size_t n = data.size();
  const uint8_t* p = data.data();
  for (; n >= 64; n -= 64, p += 64) block(h, p);
  // Padding: 0x80, zeros to 56 mod 64, then the length in bits, little-endian.
  uint8_t tail[128] = {};
  if (n) std::memcpy(tail, p, n);
  tail[n] = 0x80;
  const std::size_t len = n < 56 ? 64 : 128;
  const uint64_t bits = static_cast<uint64_t>(data.size()) * 8;
  for (int i = 0; i < 8; ++i)
    tail[len - 8 + static_cast<std::size_t>(i)] = static_cast<uint8_t>(bits >> (8 * i));
  block(h, tail);
  if (len == 128) block(h, tail + 64);
  detail::cleanse(tail, sizeof tail);
  std::array<uint8_t, 16> out{};
  for (std::size_t i = 0; i < 16; ++i) out[i] = static_cast<uint8_t>(h[i / 4] >> (8 * (i % 4)));
  return out;
}

}  // namespace outpost::lib::ntlm
