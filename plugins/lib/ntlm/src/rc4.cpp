// RC4 for NTLM sealing and key exchange. OpenSSL 3 keeps RC4 in its legacy provider, which is
// not loaded by default (Debian 12), so the cipher is written out here.
#include <utility>

#include "internal.hpp"

namespace outpost::lib::ntlm::detail {

void rc4_init(Rc4State& s, std::span<const uint8_t> key) {
  for (std::size_t i = 0; i < 256; ++i) s[i] = static_cast<uint8_t>(i);
  uint8_t j = 0;
  for (std::size_t i = 0; i < 256; ++i) {
    j = static_cast<uint8_t>(j + s[i] + key[i % key.size()]);
    std::swap(s[i], s[j]);
  }
  s[256] = 0;
  s[257] = 0;
}

void rc4_apply(Rc4State& s, std::span<uint8_t> data) {
  uint8_t i = s[256], j = s[257];
  for (uint8_t& b : data) {
    i = static_cast<uint8_t>(i + 1);
    j = static_cast<uint8_t>(j + s[i]);
    std::swap(s[i], s[j]);
    b ^= s[static_cast<uint8_t>(s[i] + s[j])];
  }
  s[256] = i;
  s[257] = j;
}

}  // namespace outpost::lib::ntlm::detail
