// The client side of the handshake: NEGOTIATE_MESSAGE out, CHALLENGE_MESSAGE in,
// AUTHENTICATE_MESSAGE out (MS-NLMP 3.1.5.1), NTLMv2 only.
#include <chrono>
#include <cstring>

#include "internal.hpp"
#include "outpost_lib/ntlm.hpp"

namespace outpost::lib::ntlm {
namespace {

constexpr uint8_t kSignature[8] = {'N', 'T', 'L', 'M', 'S', 'S', 'P', 0};
// VERSION (MS-NLMP 2.2.2.10) is for debugging only; the revision is the one that matters.
constexpr uint8_t kVersion[8] = {10, 0, 0, 0, 0, 0, 0, 0x0F};
constexpr std::size_t kAuthHeaderSize = 88;  // fields, flags, Version, MIC
constexpr std::size_t kMicOffset = 72;
constexpr uint32_t kAvFlagMicPresent = 0x2;

uint64_t filetime_now() {
  // FILETIME: 100 ns units since 1601-01-01.
  const auto since_unix = std::chrono::duration_cast<std::chrono::nanoseconds>(
      std::chrono::system_clock::now().time_since_epoch());
  return static_cast<uint64_t>(since_unix.count() / 100) + 116444736000000000ull;
}

void put_av(std::vector<uint8_t>& out, uint16_t id, std::span<const uint8_t> value) {
  detail::put16(out, id);
  detail::put16(out, static_cast<uint16_t>(value.size()));
  out.insert(out.end(), value.begin(), value.end());
}

// The AV pairs the client returns inside its NTLMv2 response (MS-NLMP 3.1.5.1.2): the server's,
// with MsvAvFlags, MsvAvChannelBindings and MsvAvTargetName as the client sets them.
std::vector<uint8_t> client_target_info(const Challenge& c, bool mic,
                                        std::span<const uint8_t> channel_bindings,
                                        std::string_view spn) {
  std::vector<uint8_t> out;
  uint32_t av_flags = 0;
  for (const auto& p : c.target_info) {
    if (p.id == kAvFlags && p.value.size() == 4) av_flags = detail::get32(p.value, 0);
    if (p.id == kAvFlags || p.id == kAvChannelBindings || p.id == kAvTargetName) continue;
    put_av(out, p.id, p.value);
  }
  if (mic) av_flags |= kAvFlagMicPresent;
  if (av_flags) {
    std::vector<uint8_t> v;
    detail::put32(v, av_flags);
    put_av(out, kAvFlags, v);
  }
  static const uint8_t kNoBindings[16] = {};
  put_av(out, kAvChannelBindings,
         channel_bindings.empty() ? std::span<const uint8_t>(kNoBindings) : channel_bindings);
  if (!spn.empty()) {
    const auto name = utf16le(spn);
    if (name.size() > 0xFFFF) throw Error("ntlm: target SPN is too long");
    put_av(out, kAvTargetName, name);
  }
  put_av(out, kAvEol, {});
  return out;
}

// Appends a payload field's bytes and fills in its Len/MaxLen/Offset at `at`.
void add_field(std::vector<uint8_t>& msg, std::size_t at, std::span<const uint8_t> data) {
  if (data.size() > 0xFFFF) throw Error("ntlm: AUTHENTICATE_MESSAGE field is too long");
  const auto len = static_cast<uint16_t>(data.size());
  msg[at] = msg[at + 2] = static_cast<uint8_t>(len);
  msg[at + 1] = msg[at + 3] = static_cast<uint8_t>(len >> 8);
  detail::set32(msg, at + 4, static_cast<uint32_t>(msg.size()));
  msg.insert(msg.end(), data.begin(), data.end());
}

}  // namespace

Client::Client(Credentials c, ClientOptions o)
    : user_(std::move(c.user)), domain_(std::move(c.domain)), opts_(std::move(o)) {
  if (!opts_.channel_bindings_md5.empty() && opts_.channel_bindings_md5.size() != 16)
    throw Error("ntlm: channel bindings must be the 16 bytes of an MD5 hash");
  try {
    response_key_ = nt_owf_v2(user_, domain_, c.password);
  } catch (...) {
    detail::cleanse(c.password.data(), c.password.size());
    throw;
  }
  detail::cleanse(c.password.data(), c.password.size());
}

Client::~Client() {
  detail::cleanse(exported_key_.data(), exported_key_.size());
  if (opts_.exported_session_key) detail::cleanse(opts_.exported_session_key->data(), 16);
  detail::cleanse(response_key_.data(), response_key_.size());
}

std::vector<uint8_t> Client::negotiate() {
  uint32_t flags = kNegotiateUnicode | kRequestTarget | kNegotiateNtlm | kNegotiateAlwaysSign |
                   kNegotiateExtendedSessionSecurity | kNegotiateVersion | kNegotiate128 |
                   kNegotiate56 | kNegotiateKeyExch;
  // Sealing is always signed as well (MS-NLMP 3.4.3).
  if (opts_.sign || opts_.seal) flags |= kNegotiateSign;
  if (opts_.seal) flags |= kNegotiateSeal;
  flags_ = flags;
  std::vector<uint8_t> m(kSignature, kSignature + 8);
  detail::put32(m, 1);
  detail::put32(m, flags);
  // DomainNameFields and WorkstationFields stay empty: the OEM_*_SUPPLIED flags are not set.
  detail::put32(m, 0), detail::put32(m, 40);
  detail::put32(m, 0), detail::put32(m, 40);
  m.insert(m.end(), kVersion, kVersion + 8);
  negotiate_ = m;
  return m;
}

std::vector<uint8_t> Client::authenticate(std::span<const uint8_t> challenge) {
  if (negotiate_.empty()) throw Error("ntlm: authenticate() before negotiate()");
  if (authenticated_) throw Error("ntlm: authenticate() was already called");
  const Challenge c = parse_challenge(challenge);

  const uint32_t granted = c.flags & flags_;
  if (!(granted & kNegotiateUnicode)) throw Error("ntlm: the server did not grant Unicode");
  if (!(granted & kNegotiateExtendedSessionSecurity))
    throw Error("ntlm: the server did not grant extended session security");
  if (!(granted & kNegotiate128)) throw Error("ntlm: the server did not grant 128-bit keys");
  if ((flags_ & kNegotiateSign) && !(granted & kNegotiateSign))
    throw Error("ntlm: the server did not grant signing");
  if ((flags_ & kNegotiateSeal) && !(granted & kNegotiateSeal))
    throw Error("ntlm: the server did not grant sealing");

  std::array<uint8_t, 8> client_challenge{};
  if (opts_.client_challenge)
    client_challenge = *opts_.client_challenge;
  else
    detail::random_bytes(client_challenge);

  // With a server timestamp the MIC is sent and the LM response is Z(24) (MS-NLMP 3.1.5.1.2).
  const bool mic = c.timestamp.has_value();
  const uint64_t time = c.timestamp ? *c.timestamp : opts_.timestamp.value_or(filetime_now());
  const auto target_info = client_target_info(c, mic, opts_.channel_bindings_md5, opts_.target_spn);

  Ntlmv2Response r =
      ntlmv2_response(response_key_, c.server_challenge, client_challenge, time, target_info);
  if (mic) r.lm_response.fill(0);

  // NTLMv2: KeyExchangeKey is the session base key.
  std::array<uint8_t, 16> encrypted_key{};
  const bool key_exch = granted & kNegotiateKeyExch;
  if (key_exch) {
    if (opts_.exported_session_key)
      exported_key_ = *opts_.exported_session_key;
    else
      detail::random_bytes(exported_key_);
    encrypted_key = encrypt_session_key(r.session_base_key, exported_key_);
  } else {
    exported_key_ = r.session_base_key;
  }
  detail::cleanse(r.session_base_key.data(), r.session_base_key.size());

  std::vector<uint8_t> m(kAuthHeaderSize, 0);
  std::memcpy(m.data(), kSignature, 8);
  detail::set32(m, 8, 3);
  add_field(m, 28, utf16le(domain_));
  add_field(m, 36, utf16le(user_));
  add_field(m, 44, utf16le(opts_.workstation));
  add_field(m, 12, r.lm_response);
  add_field(m, 20, r.nt_response);
  add_field(m, 52, key_exch ? std::span<const uint8_t>(encrypted_key) : std::span<const uint8_t>());
  detail::set32(m, 60, granted);
  std::memcpy(m.data() + 64, kVersion, 8);
  if (mic) {
    // MIC = HMAC_MD5(ExportedSessionKey, NEGOTIATE + CHALLENGE + AUTHENTICATE with a zero MIC).
    std::vector<uint8_t> all(negotiate_);
    all.insert(all.end(), challenge.begin(), challenge.end());
    all.insert(all.end(), m.begin(), m.end());
    const auto code = hmac_md5(exported_key_, all);
    std::memcpy(m.data() + kMicOffset, code.data(), 16);
  }
  flags_ = granted;
  authenticated_ = true;
  return m;
}

Session Client::session() const {
  if (!authenticated_) throw Error("ntlm: no session before authenticate()");
  return Session(exported_key_, Session::Side::client, flags_);
}

}  // namespace outpost::lib::ntlm
