// SNMPv3 User-based Security Model primitives on OpenSSL's libcrypto: password to key and key
// localization (RFC 3414 A.2, RFC 7860 for SHA-2), HMAC authentication (RFC 3414, RFC 7860),
// AES-CFB privacy (RFC 3826) with the 192/256-bit key extension net-snmp 5.9 uses for
// `-x AES-192/AES-256` (Blumenthal's draft: Kul || H(Kul) || ...) and, as "AES-192-C"/"AES-256-C",
// the one Cisco devices use (Reeder's draft: Kul || localize(Ku(Kul)) ...). No DES: OpenSSL 3
// keeps it in the legacy provider.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace outpost::snmp_trap {

using Bytes = std::vector<uint8_t>;

enum class AuthProto : uint8_t { kNone, kMd5, kSha1, kSha224, kSha256, kSha384, kSha512 };
enum class PrivProto : uint8_t { kNone, kAes128, kAes192, kAes256, kAes192Reeder, kAes256Reeder };

// "MD5", "SHA" / "SHA1" / "SHA-1", "SHA-224" ... "SHA-512" (case-insensitive, dash optional).
std::optional<AuthProto> parse_auth(std::string_view s);
// "AES" / "AES-128", "AES-192", "AES-256", "AES-192-C", "AES-256-C"; "DES" is refused by the
// caller.
std::optional<PrivProto> parse_priv(std::string_view s);
const char* auth_name(AuthProto p) noexcept;
const char* priv_name(PrivProto p) noexcept;

std::size_t digest_size(AuthProto p) noexcept;  // hash output: 16, 20, 28, 32, 48, 64
std::size_t mac_size(AuthProto p) noexcept;  // truncated HMAC on the wire: 12, 12, 16, 24, 32, 48
std::size_t priv_key_size(PrivProto p) noexcept;  // 16, 24, 32

// A key that wipes itself.
class Key {
 public:
  Key() = default;
  explicit Key(Bytes b) : b_(std::move(b)) {}
  Key(const Key&) = default;
  Key& operator=(const Key&) = default;
  Key(Key&&) noexcept = default;
  Key& operator=(Key&&) noexcept = default;
  ~Key();
  std::span<const uint8_t> bytes() const noexcept { return b_; }
  bool empty() const noexcept { return b_.empty(); }
  std::size_t size() const noexcept { return b_.size(); }

 private:
  Bytes b_;
};

// RFC 3414 A.2.1: the password repeated over 1 MiB, hashed. Throws std::invalid_argument for an
// empty password (the RFC's algorithm needs at least one character; net-snmp asks for 8).
Key password_to_key(AuthProto p, std::string_view password);
// RFC 3414 A.2.2: H(Ku || engineID || Ku).
Key localize(AuthProto p, const Key& ku, std::span<const uint8_t> engine_id);
// The localized privacy key for `priv`: Kul of the privacy password, cut or extended to the
// cipher's key size.
Key privacy_key(AuthProto a, PrivProto priv, const Key& priv_ku,
                std::span<const uint8_t> engine_id);

// HMAC of data with the localized auth key, truncated to mac_size(p). `out` holds mac_size(p).
void hmac(AuthProto p, const Key& key, std::span<const uint8_t> data, uint8_t* out);
// Constant-time comparison of the expected MAC with the received one.
bool mac_equal(const uint8_t* a, const uint8_t* b, std::size_t n) noexcept;

// AES in CFB-128 mode; IV = engineBoots (4 bytes) || engineTime (4 bytes) || salt (8 bytes) of
// the authoritative engine, as RFC 3826 3.1.2.1 builds it. out holds in.size() bytes.
bool aes_cfb(PrivProto p, const Key& key, uint32_t boots, uint32_t time,
             std::span<const uint8_t> salt, std::span<const uint8_t> in, uint8_t* out,
             bool encrypt);

// Random bytes from OpenSSL's generator.
void random_bytes(uint8_t* out, std::size_t n);

}  // namespace outpost::snmp_trap
