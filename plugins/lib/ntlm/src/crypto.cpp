// The primitives OpenSSL's default provider has: MD5, HMAC-MD5, the CSPRNG, cleansing.
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "internal.hpp"
#include "outpost_lib/ntlm.hpp"

namespace outpost::lib::ntlm {
namespace detail {

std::array<uint8_t, 16> md5(std::span<const uint8_t> a, std::span<const uint8_t> b) {
  std::array<uint8_t, 16> out{};
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  unsigned int n = 0;
  const bool ok = ctx && EVP_DigestInit_ex(ctx, EVP_md5(), nullptr) == 1 &&
                  EVP_DigestUpdate(ctx, a.data(), a.size()) == 1 &&
                  EVP_DigestUpdate(ctx, b.data(), b.size()) == 1 &&
                  EVP_DigestFinal_ex(ctx, out.data(), &n) == 1 && n == out.size();
  EVP_MD_CTX_free(ctx);
  if (!ok) throw Error("ntlm: MD5 is not available");
  return out;
}

void random_bytes(std::span<uint8_t> out) {
  if (RAND_bytes(out.data(), static_cast<int>(out.size())) != 1)
    throw Error("ntlm: the random number generator failed");
}

void cleanse(void* p, std::size_t n) { OPENSSL_cleanse(p, n); }

bool equal_ct(std::span<const uint8_t> a, std::span<const uint8_t> b) {
  return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

}  // namespace detail

std::array<uint8_t, 16> hmac_md5(std::span<const uint8_t> key, std::span<const uint8_t> data) {
  std::array<uint8_t, 16> out{};
  unsigned int n = 0;
  // HMAC() with a null key pointer means "no key" to OpenSSL; an empty key is still a key.
  static const uint8_t kNone = 0;
  if (!HMAC(EVP_md5(), key.empty() ? &kNone : key.data(), static_cast<int>(key.size()), data.data(),
            data.size(), out.data(), &n) ||
      n != out.size())
    throw Error("ntlm: HMAC-MD5 is not available");
  return out;
}

}  // namespace outpost::lib::ntlm
