// The primitives OpenSSL's default provider has: MD5, HMAC-MD5, the CSPRNG, cleansing.
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
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

std::array<uint8_t, 16> hmac_md5(std::span<const uint8_t> key, std::span<const uint8_t> a,
                                 std::span<const uint8_t> b) {
  // Fetched once: a fetch per signature would cost more than the HMAC of a small message.
  static EVP_MAC* const mac = EVP_MAC_fetch(nullptr, "HMAC", nullptr);
  std::array<uint8_t, 16> out{};
  char md5_name[] = "MD5";
  const OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, md5_name, 0),
                               OSSL_PARAM_END};
  EVP_MAC_CTX* ctx = mac ? EVP_MAC_CTX_new(mac) : nullptr;
  std::size_t n = 0;
  // A null key means "keep the previous key" to EVP_MAC_init; an empty key is still a key.
  static const uint8_t kEmpty = 0;
  const uint8_t* k = key.empty() ? &kEmpty : key.data();
  const bool ok = ctx && EVP_MAC_init(ctx, k, key.size(), params) == 1 &&
                  EVP_MAC_update(ctx, a.data(), a.size()) == 1 &&
                  EVP_MAC_update(ctx, b.data(), b.size()) == 1 &&
                  EVP_MAC_final(ctx, out.data(), &n, out.size()) == 1 && n == out.size();
  EVP_MAC_CTX_free(ctx);
  if (!ok) throw Error("ntlm: HMAC-MD5 is not available");
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
  return detail::hmac_md5(key, data, {});
}

}  // namespace outpost::lib::ntlm
