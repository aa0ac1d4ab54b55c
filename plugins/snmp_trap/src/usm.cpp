#include "usm.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <algorithm>
#include <cctype>
#include <memory>
#include <stdexcept>

namespace outpost::snmp_trap {
namespace {

const EVP_MD* md(AuthProto p) {
  switch (p) {
    case AuthProto::kMd5:
      return EVP_md5();
    case AuthProto::kSha1:
      return EVP_sha1();
    case AuthProto::kSha224:
      return EVP_sha224();
    case AuthProto::kSha256:
      return EVP_sha256();
    case AuthProto::kSha384:
      return EVP_sha384();
    case AuthProto::kSha512:
      return EVP_sha512();
    case AuthProto::kNone:
      break;
  }
  return nullptr;
}

std::string normalize(std::string_view s) {
  std::string out;
  for (const char c : s)
    if (c != '-' && c != '_') out += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return out;
}

struct MdCtxFree {
  void operator()(EVP_MD_CTX* c) const { EVP_MD_CTX_free(c); }
};
struct CipherCtxFree {
  void operator()(EVP_CIPHER_CTX* c) const { EVP_CIPHER_CTX_free(c); }
};

Bytes hash(AuthProto p, std::span<const uint8_t> a, std::span<const uint8_t> b = {},
           std::span<const uint8_t> c = {}) {
  std::unique_ptr<EVP_MD_CTX, MdCtxFree> ctx(EVP_MD_CTX_new());
  Bytes out(EVP_MAX_MD_SIZE);
  unsigned n = 0;
  if (!ctx || EVP_DigestInit_ex(ctx.get(), md(p), nullptr) != 1 ||
      EVP_DigestUpdate(ctx.get(), a.data(), a.size()) != 1 ||
      (!b.empty() && EVP_DigestUpdate(ctx.get(), b.data(), b.size()) != 1) ||
      (!c.empty() && EVP_DigestUpdate(ctx.get(), c.data(), c.size()) != 1) ||
      EVP_DigestFinal_ex(ctx.get(), out.data(), &n) != 1)
    throw std::runtime_error("libcrypto digest failed");
  out.resize(n);
  return out;
}

}  // namespace

Key::~Key() {
  if (!b_.empty()) OPENSSL_cleanse(b_.data(), b_.size());
}

std::optional<AuthProto> parse_auth(std::string_view s) {
  const std::string n = normalize(s);
  if (n == "MD5") return AuthProto::kMd5;
  if (n == "SHA" || n == "SHA1") return AuthProto::kSha1;
  if (n == "SHA224") return AuthProto::kSha224;
  if (n == "SHA256") return AuthProto::kSha256;
  if (n == "SHA384") return AuthProto::kSha384;
  if (n == "SHA512") return AuthProto::kSha512;
  return std::nullopt;
}

std::optional<PrivProto> parse_priv(std::string_view s) {
  const std::string n = normalize(s);
  if (n == "AES" || n == "AES128") return PrivProto::kAes128;
  if (n == "AES192") return PrivProto::kAes192;
  if (n == "AES256") return PrivProto::kAes256;
  if (n == "AES192C") return PrivProto::kAes192Reeder;
  if (n == "AES256C") return PrivProto::kAes256Reeder;
  return std::nullopt;
}

const char* auth_name(AuthProto p) noexcept {
  switch (p) {
    case AuthProto::kNone:
      return "none";
    case AuthProto::kMd5:
      return "MD5";
    case AuthProto::kSha1:
      return "SHA";
    case AuthProto::kSha224:
      return "SHA-224";
    case AuthProto::kSha256:
      return "SHA-256";
    case AuthProto::kSha384:
      return "SHA-384";
    case AuthProto::kSha512:
      return "SHA-512";
  }
  return "none";
}

const char* priv_name(PrivProto p) noexcept {
  switch (p) {
    case PrivProto::kNone:
      return "none";
    case PrivProto::kAes128:
      return "AES";
    case PrivProto::kAes192:
      return "AES-192";
    case PrivProto::kAes256:
      return "AES-256";
    case PrivProto::kAes192Reeder:
      return "AES-192-C";
    case PrivProto::kAes256Reeder:
      return "AES-256-C";
  }
  return "none";
}

std::size_t digest_size(AuthProto p) noexcept {
  switch (p) {
    case AuthProto::kMd5:
      return 16;
    case AuthProto::kSha1:
      return 20;
    case AuthProto::kSha224:
      return 28;
    case AuthProto::kSha256:
      return 32;
    case AuthProto::kSha384:
      return 48;
    case AuthProto::kSha512:
      return 64;
    case AuthProto::kNone:
      break;
  }
  return 0;
}

std::size_t mac_size(AuthProto p) noexcept {
  switch (p) {
    case AuthProto::kMd5:
    case AuthProto::kSha1:
      return 12;
    case AuthProto::kSha224:
      return 16;
    case AuthProto::kSha256:
      return 24;
    case AuthProto::kSha384:
      return 32;
    case AuthProto::kSha512:
      return 48;
    case AuthProto::kNone:
      break;
  }
  return 0;
}

std::size_t priv_key_size(PrivProto p) noexcept {
  switch (p) {
    case PrivProto::kAes128:
      return 16;
    case PrivProto::kAes192:
    case PrivProto::kAes192Reeder:
      return 24;
    case PrivProto::kAes256:
    case PrivProto::kAes256Reeder:
      return 32;
    case PrivProto::kNone:
      break;
  }
  return 0;
}

Key password_to_key(AuthProto p, std::string_view password) {
  if (password.empty()) throw std::invalid_argument("empty password");
  constexpr std::size_t kTotal = 1048576;  // RFC 3414 A.2.1: one megabyte of the password
  constexpr std::size_t kChunk = 4096;
  // Fill a chunk with the repeated password once; successive chunks continue where the last
  // one left off in the password.
  Bytes buf(kChunk + password.size());
  for (std::size_t i = 0; i < buf.size(); ++i)
    buf[i] = static_cast<uint8_t>(password[i % password.size()]);
  std::unique_ptr<EVP_MD_CTX, MdCtxFree> ctx(EVP_MD_CTX_new());
  if (!ctx || EVP_DigestInit_ex(ctx.get(), md(p), nullptr) != 1)
    throw std::runtime_error("libcrypto digest failed");
  std::size_t done = 0;
  while (done < kTotal) {
    const std::size_t start = done % password.size();
    const std::size_t n = std::min(kChunk, kTotal - done);
    if (EVP_DigestUpdate(ctx.get(), buf.data() + start, n) != 1)
      throw std::runtime_error("libcrypto digest failed");
    done += n;
  }
  Bytes out(EVP_MAX_MD_SIZE);
  unsigned n = 0;
  if (EVP_DigestFinal_ex(ctx.get(), out.data(), &n) != 1)
    throw std::runtime_error("libcrypto digest failed");
  out.resize(n);
  OPENSSL_cleanse(buf.data(), buf.size());
  return Key(std::move(out));
}

Key localize(AuthProto p, const Key& ku, std::span<const uint8_t> engine_id) {
  return Key(hash(p, ku.bytes(), engine_id, ku.bytes()));
}

Key privacy_key(AuthProto a, PrivProto priv, const Key& priv_ku,
                std::span<const uint8_t> engine_id) {
  const std::size_t need = priv_key_size(priv);
  Key kul = localize(a, priv_ku, engine_id);
  Bytes k(kul.bytes().begin(), kul.bytes().end());
  while (k.size() < need) {
    Bytes more;
    if (priv == PrivProto::kAes192Reeder || priv == PrivProto::kAes256Reeder) {
      // Reeder: the key so far, taken as a password, through password-to-key and localization.
      const Key ku2 =
          password_to_key(a, std::string_view(reinterpret_cast<const char*>(k.data()), k.size()));
      const Key kul2 = localize(a, ku2, engine_id);
      more.assign(kul2.bytes().begin(), kul2.bytes().end());
    } else {
      // Blumenthal: the hash of the key so far.
      more = hash(a, k);
    }
    k.insert(k.end(), more.begin(),
             more.begin() + static_cast<std::ptrdiff_t>(std::min(more.size(), need - k.size())));
    OPENSSL_cleanse(more.data(), more.size());
  }
  k.resize(need);
  return Key(std::move(k));
}

void hmac(AuthProto p, const Key& key, std::span<const uint8_t> data, uint8_t* out) {
  uint8_t full[EVP_MAX_MD_SIZE];
  unsigned n = 0;
  if (HMAC(md(p), key.bytes().data(), static_cast<int>(key.size()), data.data(), data.size(), full,
           &n) == nullptr)
    throw std::runtime_error("libcrypto HMAC failed");
  std::copy_n(full, mac_size(p), out);
}

bool mac_equal(const uint8_t* a, const uint8_t* b, std::size_t n) noexcept {
  return CRYPTO_memcmp(a, b, n) == 0;
}

bool aes_cfb(PrivProto p, const Key& key, uint32_t boots, uint32_t time,
             std::span<const uint8_t> salt, std::span<const uint8_t> in, uint8_t* out,
             bool encrypt) {
  const EVP_CIPHER* cipher = nullptr;
  switch (priv_key_size(p)) {
    case 16:
      cipher = EVP_aes_128_cfb128();
      break;
    case 24:
      cipher = EVP_aes_192_cfb128();
      break;
    case 32:
      cipher = EVP_aes_256_cfb128();
      break;
    default:
      return false;
  }
  if (salt.size() != 8 || key.size() < priv_key_size(p)) return false;
  uint8_t iv[16];
  for (int i = 0; i < 4; ++i) {
    iv[i] = static_cast<uint8_t>(boots >> (24 - 8 * i));
    iv[4 + i] = static_cast<uint8_t>(time >> (24 - 8 * i));
  }
  std::copy(salt.begin(), salt.end(), iv + 8);
  std::unique_ptr<EVP_CIPHER_CTX, CipherCtxFree> ctx(EVP_CIPHER_CTX_new());
  int len = 0, fin = 0;
  if (!ctx ||
      EVP_CipherInit_ex(ctx.get(), cipher, nullptr, key.bytes().data(), iv, encrypt ? 1 : 0) != 1)
    return false;
  if (in.empty()) return true;
  if (EVP_CipherUpdate(ctx.get(), out, &len, in.data(), static_cast<int>(in.size())) != 1 ||
      EVP_CipherFinal_ex(ctx.get(), out + len, &fin) != 1)
    return false;
  return static_cast<std::size_t>(len) + static_cast<std::size_t>(fin) == in.size();
}

void random_bytes(uint8_t* out, std::size_t n) {
  if (RAND_bytes(out, static_cast<int>(n)) != 1)
    throw std::runtime_error("libcrypto RAND_bytes failed");
}

}  // namespace outpost::snmp_trap
