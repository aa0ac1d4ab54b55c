// NTLMv2 client authentication and session security (MS-NLMP), for the plugins that speak to
// Windows hosts: WinRM over HTTP (message encryption) and DCE/RPC (packet integrity and privacy).
// The client side of the handshake only; the Session also has a server side so that tests and
// peers can act as the other end. Free of any transport: bytes in, bytes out.
//
// Only one mode is negotiated: NTLMv2 responses with extended session security (ESS) and 128-bit
// keys; a server that grants less is refused with an Error. Sequence numbers and RC4 state run
// on across messages (connection-oriented mode); the datagram mode is not implemented.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace outpost::lib::ntlm {

// NEGOTIATE flags (MS-NLMP 2.2.2.5) that this library sends or looks at.
inline constexpr uint32_t kNegotiateUnicode = 0x00000001;
inline constexpr uint32_t kRequestTarget = 0x00000004;
inline constexpr uint32_t kNegotiateSign = 0x00000010;
inline constexpr uint32_t kNegotiateSeal = 0x00000020;
inline constexpr uint32_t kNegotiateNtlm = 0x00000200;
inline constexpr uint32_t kNegotiateAlwaysSign = 0x00008000;
inline constexpr uint32_t kNegotiateExtendedSessionSecurity = 0x00080000;
inline constexpr uint32_t kNegotiateTargetInfo = 0x00800000;
inline constexpr uint32_t kNegotiateVersion = 0x02000000;
inline constexpr uint32_t kNegotiate128 = 0x20000000;
inline constexpr uint32_t kNegotiateKeyExch = 0x40000000;
inline constexpr uint32_t kNegotiate56 = 0x80000000;

// AV_PAIR ids (MS-NLMP 2.2.2.1).
inline constexpr uint16_t kAvEol = 0;
inline constexpr uint16_t kAvNbComputerName = 1;
inline constexpr uint16_t kAvNbDomainName = 2;
inline constexpr uint16_t kAvFlags = 6;
inline constexpr uint16_t kAvTimestamp = 7;
inline constexpr uint16_t kAvTargetName = 9;
inline constexpr uint16_t kAvChannelBindings = 10;

struct Credentials {
  std::string user, domain, password;  // UTF-8; converted to UTF-16LE internally
};

// Thrown on malformed server messages and failed checks; what() is safe to log (no secrets).
struct Error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Session security after a successful handshake (MS-NLMP 3.4) with ESS, in connection-oriented
// mode: each direction has its own signing key, its own RC4 state over its own sealing key, and
// its own sequence number, all running on across messages.
//
// Move-only: a copy would reuse the RC4 key stream. After unseal() or verify() returned false
// the receiving direction is out of step with the peer (its RC4 state has moved on); the caller
// drops the connection.
class Session {
 public:
  enum class Side { client, server };
  // The flags the Session needs: ESS and 128-bit always; KEY_EXCH decides whether the checksum
  // is RC4-encrypted; SEAL decides whether seal()/unseal() may be used.
  static constexpr uint32_t kDefaultFlags = kNegotiateExtendedSessionSecurity | kNegotiate128 |
                                            kNegotiateKeyExch | kNegotiateSign | kNegotiateSeal;

  // Throws Error when `negotiated_flags` lacks ESS or 128-bit.
  Session(std::span<const uint8_t, 16> exported_session_key, Side side,
          uint32_t negotiated_flags = kDefaultFlags);
  static Session client(std::span<const uint8_t, 16> key, uint32_t flags = kDefaultFlags) {
    return Session(key, Side::client, flags);
  }
  static Session server(std::span<const uint8_t, 16> key, uint32_t flags = kDefaultFlags) {
    return Session(key, Side::server, flags);
  }
  Session(Session&&) noexcept;
  Session& operator=(Session&&) noexcept;
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;
  ~Session();

  // Encrypts `encrypt` in place and returns the 16-byte signature computed over the plaintext
  // of `sign` (for WinRM both are the same message; for DCE/RPC `sign` is the whole PDU with
  // the plaintext stub and `encrypt` is the stub; they may alias). The RC4 key stream is used
  // for the message first, then for the checksum (MS-NLMP 3.4.3). Throws Error if sealing was
  // not negotiated.
  std::array<uint8_t, 16> seal(std::span<uint8_t> encrypt, std::span<const uint8_t> sign);
  // Decrypts `decrypt` in place, then verifies `signature` over `sign` (a view that already
  // holds the decrypted bytes; it may alias). Returns false (never throws) on a bad signature,
  // a signature of the wrong size or the wrong sequence number; throws Error only if sealing
  // was not negotiated.
  bool unseal(std::span<uint8_t> decrypt, std::span<const uint8_t> sign,
              std::span<const uint8_t> signature);
  // Integrity only (MS-NLMP 3.4.4).
  std::array<uint8_t, 16> sign(std::span<const uint8_t> message);
  bool verify(std::span<const uint8_t> message, std::span<const uint8_t> signature);

  // The sequence number the next outgoing signature carries and the one the next incoming
  // signature must carry. Both start at 0 and count each signature of their direction. The
  // setters are for protocols whose peers count otherwise; RC4 state is not affected.
  uint32_t send_sequence() const { return send_.seq; }
  uint32_t receive_sequence() const { return receive_.seq; }
  void set_send_sequence(uint32_t seq) { send_.seq = seq; }
  void set_receive_sequence(uint32_t seq) { receive_.seq = seq; }
  uint32_t negotiated_flags() const { return flags_; }

 private:
  struct Direction {
    std::array<uint8_t, 16> sign_key{};
    std::array<uint8_t, 258> rc4{};  // RC4 state: S[256], i, j
    uint32_t seq = 0;
  };
  static std::array<uint8_t, 16> mac(const Direction& d, std::span<const uint8_t> message);
  std::array<uint8_t, 16> finish(Direction& d, std::array<uint8_t, 16> mac);
  bool check(Direction& d, std::span<const uint8_t> message, std::span<const uint8_t> signature);
  void wipe();

  Direction send_, receive_;
  uint32_t flags_ = 0;
};

struct ClientOptions {
  std::string workstation{};                    // may be empty
  std::string target_spn{};                     // e.g. "HTTP/host.example" -> MsvAvTargetName
  std::vector<uint8_t> channel_bindings_md5{};  // 16 bytes of MD5(gss_channel_bindings_struct) for
                                                // HTTPS EPA; empty: none (an all-zero AV pair)
  bool sign = true, seal = true;  // request NTLMSSP_NEGOTIATE_SIGN / SEAL (+ KEY_EXCH, 128, ESS)
  // For tests only: fixed randomness and time (nullopt: RAND_bytes / current FILETIME).
  std::optional<std::array<uint8_t, 8>> client_challenge{};
  std::optional<std::array<uint8_t, 16>> exported_session_key{};
  std::optional<uint64_t> timestamp{};  // FILETIME used only when the server sent none
};

class Client {
 public:
  // Derives the response key (NTOWFv2) at once and keeps no copy of the password. Throws Error
  // if a credential is not valid UTF-8 or channel_bindings_md5 is neither empty nor 16 bytes.
  Client(Credentials c, ClientOptions o = {});
  Client(Client&&) noexcept = default;
  Client& operator=(Client&&) noexcept = default;
  Client(const Client&) = delete;  // it holds the response key
  Client& operator=(const Client&) = delete;
  ~Client();

  std::vector<uint8_t> negotiate();  // NEGOTIATE_MESSAGE (type 1)
  // AUTHENTICATE_MESSAGE (type 3) from the server's CHALLENGE (type 2); negotiate() first, once.
  // NTLMv2 only. Includes the MIC (and sets MsvAvFlags bit 0x2) when the challenge's target
  // info has MsvAvTimestamp. Throws Error on a malformed challenge, or when the server does not
  // grant Unicode, ESS, 128-bit keys, or the signing/sealing that was asked for.
  std::vector<uint8_t> authenticate(std::span<const uint8_t> challenge);
  // A fresh Session (sequence 0) over the exported session key; valid after authenticate(),
  // throws Error before.
  Session session() const;
  uint32_t negotiated_flags() const { return flags_; }

 private:
  std::string user_, domain_;
  ClientOptions opts_;
  std::array<uint8_t, 16> response_key_{};
  std::vector<uint8_t> negotiate_;
  std::array<uint8_t, 16> exported_key_{};
  uint32_t flags_ = 0;
  bool authenticated_ = false;
};

// ---- Lower-level pieces, exposed for the tests against MS-NLMP 4.2 and for the fuzzer.

// A CHALLENGE_MESSAGE (MS-NLMP 2.2.1.2) as read by the client.
struct AvPair {
  uint16_t id = 0;
  std::vector<uint8_t> value;
};
struct Challenge {
  uint32_t flags = 0;
  std::array<uint8_t, 8> server_challenge{};
  std::vector<uint8_t> target_name;   // as sent (UTF-16LE when Unicode)
  std::vector<AvPair> target_info;    // without the terminating MsvAvEOL
  std::optional<uint64_t> timestamp;  // MsvAvTimestamp
};
// Throws Error on anything malformed: wrong signature or type, truncation, fields out of
// bounds, target info absent or not ending in MsvAvEOL.
Challenge parse_challenge(std::span<const uint8_t> message);

std::array<uint8_t, 16> md4(std::span<const uint8_t> data);
std::array<uint8_t, 16> hmac_md5(std::span<const uint8_t> key, std::span<const uint8_t> data);
// UTF-8 to UTF-16LE; throws Error on invalid UTF-8.
std::vector<uint8_t> utf16le(std::string_view utf8);
// NTOWFv2 (MS-NLMP 3.3.2): HMAC_MD5(MD4(UTF16(password)), UTF16(Uppercase(user) + domain)).
// Uppercasing covers ASCII, Latin-1, Latin Extended-A, basic Greek and Cyrillic.
std::array<uint8_t, 16> nt_owf_v2(std::string_view user, std::string_view domain,
                                  std::string_view password);

struct Ntlmv2Response {
  std::vector<uint8_t> nt_response;       // NTProofStr (16 bytes) followed by temp
  std::array<uint8_t, 24> lm_response{};  // LMv2: HMAC_MD5(key, SC + CC) + CC
  std::array<uint8_t, 16> session_base_key{};
};
// The NTLMv2 computation of MS-NLMP 3.3.2 with explicit inputs; `target_info` is the AV pair
// list as it goes into temp, MsvAvEOL included.
Ntlmv2Response ntlmv2_response(std::span<const uint8_t, 16> response_key_nt,
                               std::span<const uint8_t, 8> server_challenge,
                               std::span<const uint8_t, 8> client_challenge, uint64_t timestamp,
                               std::span<const uint8_t> target_info);
// RC4(KeyExchangeKey, ExportedSessionKey): EncryptedRandomSessionKey (MS-NLMP 3.1.5.1.2).
std::array<uint8_t, 16> encrypt_session_key(std::span<const uint8_t, 16> key_exchange_key,
                                            std::span<const uint8_t, 16> exported_session_key);
// SIGNKEY and SEALKEY with ESS and 128-bit keys (MS-NLMP 3.4.5.2, 3.4.5.3).
std::array<uint8_t, 16> sign_key(std::span<const uint8_t, 16> exported_session_key, Session::Side);
std::array<uint8_t, 16> seal_key(std::span<const uint8_t, 16> exported_session_key, Session::Side);

}  // namespace outpost::lib::ntlm
