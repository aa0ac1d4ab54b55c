// Ed25519 keys, signatures and SHA-256 for the management channel (OpenSSL's EVP API; no
// OpenSSL type leaves signing.cpp). Keys are PEM files: PKCS#8 for the private key,
// SubjectPublicKeyInfo for the public one. A key id is the first 8 bytes of the SHA-256 of the
// raw 32-byte public key, in hex.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "management/bundle.hpp"

namespace outpost::core::mgmt {

struct PublicKey {
  std::array<uint8_t, 32> raw{};
  std::string id;
  std::string source;  // the file it came from
};

struct PrivateKey {
  std::array<uint8_t, 32> seed{};
  PublicKey pub;
  ~PrivateKey();  // wipes the seed
};

std::string sha256_hex(std::string_view bytes);
std::string key_id_of(const std::array<uint8_t, 32>& raw_public);

bool load_public_key(const std::string& path, PublicKey& out, std::string& why);
bool load_private_key(const std::string& path, PrivateKey& out, std::string& why);
// Writes PREFIX.key (mode 0600, never over an existing file) and PREFIX.pub.
bool generate_key_files(const std::string& prefix, std::string& key_id, std::string& why);

bool sign(const PrivateKey& key, std::string_view message,
          std::array<uint8_t, kSignatureSize>& signature, std::string& why);
bool verify(const PublicKey& key, std::string_view message,
            const std::array<uint8_t, kSignatureSize>& signature);

// Why a bundle is refused; the label of the refusal counter.
enum class Refusal { none, bad_signature, corrupt, old_serial, invalid_config, load_failed };
const char* refusal_name(Refusal r);

// Parses `bytes` and checks its signature with the key its manifest names, then the payload's
// hash. Refusal::none when the bundle is authentic and whole.
Refusal open_bundle(std::string_view bytes, const std::vector<PublicKey>& keys, Bundle& out,
                    std::string& why);

// A complete signed bundle.
bool make_bundle(const PrivateKey& key, Manifest m, std::string_view payload, std::string& out,
                 std::string& why);

}  // namespace outpost::core::mgmt
