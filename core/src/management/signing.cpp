#include "management/signing.hpp"

#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/sha.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <memory>
#include <sstream>

namespace outpost::core::mgmt {
namespace {

struct PkeyFree {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
struct MdCtxFree {
  void operator()(EVP_MD_CTX* c) const { EVP_MD_CTX_free(c); }
};
struct BioFree {
  void operator()(BIO* b) const { BIO_free(b); }
};
using Pkey = std::unique_ptr<EVP_PKEY, PkeyFree>;
using MdCtx = std::unique_ptr<EVP_MD_CTX, MdCtxFree>;
using Bio = std::unique_ptr<BIO, BioFree>;

std::string hex(const uint8_t* p, std::size_t n) {
  static const char* digits = "0123456789abcdef";
  std::string s;
  for (std::size_t i = 0; i < n; ++i) {
    s.push_back(digits[p[i] >> 4]);
    s.push_back(digits[p[i] & 15]);
  }
  return s;
}

std::string openssl_error() {
  const unsigned long e = ERR_get_error();
  ERR_clear_error();
  if (e == 0) return "unknown OpenSSL error";
  char buf[256];
  ERR_error_string_n(e, buf, sizeof buf);
  return buf;
}

bool read_file(const std::string& path, std::string& out, std::string& why) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    why = path + ": cannot open the file";
    return false;
  }
  std::stringstream ss;
  ss << in.rdbuf();
  out = ss.str();
  return true;
}

bool raw_public(EVP_PKEY* k, PublicKey& out, std::string& why) {
  if (EVP_PKEY_get_base_id(k) != EVP_PKEY_ED25519) {
    why = "not an Ed25519 key";
    return false;
  }
  std::size_t len = out.raw.size();
  if (EVP_PKEY_get_raw_public_key(k, out.raw.data(), &len) != 1 || len != out.raw.size()) {
    why = openssl_error();
    return false;
  }
  out.id = key_id_of(out.raw);
  return true;
}

bool write_all(int fd, const std::string& data) {
  std::size_t done = 0;
  while (done < data.size()) {
    const ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n <= 0) return false;
    done += static_cast<std::size_t>(n);
  }
  return true;
}

bool pem_of(EVP_PKEY* k, bool private_key, std::string& out) {
  Bio bio(BIO_new(BIO_s_mem()));
  if (!bio) return false;
  const int ok = private_key
                     ? PEM_write_bio_PrivateKey(bio.get(), k, nullptr, nullptr, 0, nullptr, nullptr)
                     : PEM_write_bio_PUBKEY(bio.get(), k);
  if (ok != 1) return false;
  char* data = nullptr;
  const long n = BIO_get_mem_data(bio.get(), &data);
  out.assign(data, static_cast<std::size_t>(n));
  return true;
}

// O_EXCL: a key is never written over another.
bool create_file(const std::string& path, const std::string& data, mode_t mode, std::string& why) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
  if (fd < 0) {
    why = path + ": " + std::strerror(errno);
    return false;
  }
  const bool ok = ::fchmod(fd, mode) == 0 && write_all(fd, data) && ::fsync(fd) == 0;
  if (!ok) why = path + ": " + std::strerror(errno);
  ::close(fd);
  return ok;
}

}  // namespace

PrivateKey::~PrivateKey() { OPENSSL_cleanse(seed.data(), seed.size()); }

std::string sha256_hex(std::string_view bytes) {
  uint8_t md[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size(), md);
  return hex(md, sizeof md);
}

std::string key_id_of(const std::array<uint8_t, 32>& raw_public) {
  uint8_t md[SHA256_DIGEST_LENGTH];
  SHA256(raw_public.data(), raw_public.size(), md);
  return hex(md, 8);
}

bool load_public_key(const std::string& path, PublicKey& out, std::string& why) {
  std::string pem;
  if (!read_file(path, pem, why)) return false;
  Bio bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  Pkey k(bio ? PEM_read_bio_PUBKEY(bio.get(), nullptr, nullptr, nullptr) : nullptr);
  if (!k) {
    ERR_clear_error();
    why = path + ": not a PEM public key";
    return false;
  }
  if (!raw_public(k.get(), out, why)) {
    why = path + ": " + why;
    return false;
  }
  out.source = path;
  return true;
}

bool load_private_key(const std::string& path, PrivateKey& out, std::string& why) {
  std::string pem;
  if (!read_file(path, pem, why)) return false;
  Bio bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));  // borrows `pem`
  Pkey k(bio ? PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr) : nullptr);
  bio.reset();
  OPENSSL_cleanse(pem.data(), pem.size());
  if (!k) {
    ERR_clear_error();
    why = path + ": not a PEM private key";
    return false;
  }
  std::size_t len = out.seed.size();
  if (!raw_public(k.get(), out.pub, why) ||
      EVP_PKEY_get_raw_private_key(k.get(), out.seed.data(), &len) != 1 || len != out.seed.size()) {
    why = path + ": " + (why.empty() ? openssl_error() : why);
    return false;
  }
  out.pub.source = path;
  return true;
}

bool generate_key_files(const std::string& prefix, std::string& key_id, std::string& why) {
  Pkey k(EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519"));
  if (!k) {
    why = "key generation failed: " + openssl_error();
    return false;
  }
  PublicKey pub;
  std::string priv_pem, pub_pem;
  if (!raw_public(k.get(), pub, why)) return false;
  if (!pem_of(k.get(), true, priv_pem) || !pem_of(k.get(), false, pub_pem)) {
    why = "cannot write PEM: " + openssl_error();
    return false;
  }
  const bool ok = create_file(prefix + ".key", priv_pem, 0600, why) &&
                  create_file(prefix + ".pub", pub_pem, 0644, why);
  OPENSSL_cleanse(priv_pem.data(), priv_pem.size());
  key_id = pub.id;
  return ok;
}

bool sign(const PrivateKey& key, std::string_view message,
          std::array<uint8_t, kSignatureSize>& signature, std::string& why) {
  Pkey k(EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, nullptr, key.seed.data(), key.seed.size()));
  MdCtx ctx(EVP_MD_CTX_new());
  std::size_t len = signature.size();
  // Ed25519 hashes the message itself: no digest is named.
  if (!k || !ctx || EVP_DigestSignInit(ctx.get(), nullptr, nullptr, nullptr, k.get()) != 1 ||
      EVP_DigestSign(ctx.get(), signature.data(), &len,
                     reinterpret_cast<const unsigned char*>(message.data()), message.size()) != 1 ||
      len != signature.size()) {
    why = "signing failed: " + openssl_error();
    return false;
  }
  return true;
}

bool verify(const PublicKey& key, std::string_view message,
            const std::array<uint8_t, kSignatureSize>& signature) {
  Pkey k(EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, nullptr, key.raw.data(), key.raw.size()));
  MdCtx ctx(EVP_MD_CTX_new());
  const bool ok =
      k && ctx && EVP_DigestVerifyInit(ctx.get(), nullptr, nullptr, nullptr, k.get()) == 1 &&
      EVP_DigestVerify(ctx.get(), signature.data(), signature.size(),
                       reinterpret_cast<const unsigned char*>(message.data()), message.size()) == 1;
  ERR_clear_error();
  return ok;
}

const char* refusal_name(Refusal r) {
  switch (r) {
    case Refusal::bad_signature:
      return "bad_signature";
    case Refusal::corrupt:
      return "corrupt";
    case Refusal::old_serial:
      return "old_serial";
    case Refusal::invalid_config:
      return "invalid_config";
    case Refusal::load_failed:
      return "load_failed";
    default:
      return "none";
  }
}

Refusal open_bundle(std::string_view bytes, const std::vector<PublicKey>& keys, Bundle& out,
                    std::string& why) {
  if (!parse_bundle(bytes, out, why)) return Refusal::corrupt;
  const PublicKey* key = nullptr;
  for (const auto& k : keys)
    if (k.id == out.manifest.key_id) key = &k;
  if (key == nullptr) {
    why = "signed with key " + out.manifest.key_id + ", which is not a trusted key";
    return Refusal::bad_signature;
  }
  if (!verify(*key, out.signed_bytes, out.signature)) {
    why = "the signature does not verify with key " + key->id + " (" + key->source + ")";
    return Refusal::bad_signature;
  }
  if (sha256_hex(out.payload) != out.manifest.payload_sha256) {
    why = "the payload's SHA-256 differs from the manifest's";
    return Refusal::corrupt;
  }
  return Refusal::none;
}

bool make_bundle(const PrivateKey& key, Manifest m, std::string_view payload, std::string& out,
                 std::string& why) {
  m.key_id = key.pub.id;
  m.payload_sha256 = sha256_hex(payload);
  const std::size_t limit = m.kind == BundleKind::config ? kMaxConfigPayload : kMaxPluginPayload;
  if (payload.size() > limit) {
    why = "the payload is larger than a " + std::string(kind_name(m.kind)) + " bundle allows (" +
          std::to_string(limit) + " bytes)";
    return false;
  }
  out = bundle_signed_part(m, payload);
  std::array<uint8_t, kSignatureSize> sig{};
  if (!sign(key, out, sig, why)) return false;
  out.append(reinterpret_cast<const char*>(sig.data()), sig.size());
  return true;
}

}  // namespace outpost::core::mgmt
