// Session security with extended session security (MS-NLMP 3.4.3, 3.4.4.2): RC4 sealing and
// HMAC-MD5 signatures, one key set, RC4 state and sequence number per direction.
#include <cstring>
#include <utility>

#include "internal.hpp"
#include "outpost_lib/ntlm.hpp"

namespace outpost::lib::ntlm {

Session::Session(std::span<const uint8_t, 16> key, Side side, uint32_t negotiated_flags)
    : flags_(negotiated_flags) {
  if (!(flags_ & kNegotiateExtendedSessionSecurity))
    throw Error("ntlm: session security needs extended session security");
  if (!(flags_ & kNegotiate128)) throw Error("ntlm: session security needs 128-bit keys");
  const Side other = side == Side::client ? Side::server : Side::client;
  send_.sign_key = sign_key(key, side);
  receive_.sign_key = sign_key(key, other);
  auto k = seal_key(key, side);
  detail::rc4_init(send_.rc4, k);
  k = seal_key(key, other);
  detail::rc4_init(receive_.rc4, k);
  detail::cleanse(k.data(), k.size());
}

Session::Session(Session&& o) noexcept : send_(o.send_), receive_(o.receive_), flags_(o.flags_) {
  o.wipe();
}

Session& Session::operator=(Session&& o) noexcept {
  if (this != &o) {
    send_ = o.send_, receive_ = o.receive_, flags_ = o.flags_;
    o.wipe();
  }
  return *this;
}

Session::~Session() { wipe(); }

void Session::wipe() {
  detail::cleanse(&send_, sizeof send_);
  detail::cleanse(&receive_, sizeof receive_);
  flags_ = 0;
}

// NTLMSSP_MESSAGE_SIGNATURE: Version 1, HMAC_MD5(SigningKey, SeqNum + Message)[0..7], RC4'd
// with the direction's handle when keys were exchanged, SeqNum. mac() is the HMAC alone, so
// that seal() can take it over the plaintext before it encrypts (the two may alias).
std::array<uint8_t, 16> Session::mac(const Direction& d, std::span<const uint8_t> message) {
  std::array<uint8_t, 4> seq{};
  detail::set32(seq, 0, d.seq);
  return detail::hmac_md5(d.sign_key, seq, message);
}

std::array<uint8_t, 16> Session::finish(Direction& d, std::array<uint8_t, 16> mac) {
  std::array<uint8_t, 16> sig{};
  sig[0] = 1;
  std::memcpy(sig.data() + 4, mac.data(), 8);
  detail::cleanse(mac.data(), mac.size());
  if (flags_ & kNegotiateKeyExch) detail::rc4_apply(d.rc4, std::span<uint8_t>(sig).subspan(4, 8));
  detail::set32(sig, 12, d.seq);
  ++d.seq;
  return sig;
}

bool Session::check(Direction& d, std::span<const uint8_t> message,
                    std::span<const uint8_t> signature) {
  const auto expected = finish(d, mac(d, message));
  return signature.size() == 16 && detail::equal_ct(expected, signature);
}

std::array<uint8_t, 16> Session::seal(std::span<uint8_t> encrypt, std::span<const uint8_t> sign) {
  if (!(flags_ & kNegotiateSeal)) throw Error("ntlm: sealing was not negotiated");
  // The key stream goes to the message first and to the checksum after (MS-NLMP 3.4.3).
  auto m = mac(send_, sign);
  detail::rc4_apply(send_.rc4, encrypt);
  return finish(send_, m);
}

bool Session::unseal(std::span<uint8_t> decrypt, std::span<const uint8_t> sign,
                     std::span<const uint8_t> signature) {
  if (!(flags_ & kNegotiateSeal)) throw Error("ntlm: sealing was not negotiated");
  detail::rc4_apply(receive_.rc4, decrypt);
  return check(receive_, sign, signature);
}

std::array<uint8_t, 16> Session::sign(std::span<const uint8_t> message) {
  return finish(send_, mac(send_, message));
}

bool Session::verify(std::span<const uint8_t> message, std::span<const uint8_t> signature) {
  return check(receive_, message, signature);
}

}  // namespace outpost::lib::ntlm
