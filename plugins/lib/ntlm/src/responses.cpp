// The NTLMv2 computations of MS-NLMP 3.3.2 and the session keys of 3.4.5.
#include <cstring>

#include "internal.hpp"
#include "outpost_lib/ntlm.hpp"

namespace outpost::lib::ntlm {

std::vector<uint8_t> utf16le_upper(std::string_view utf8);  // unicode.cpp

std::array<uint8_t, 16> nt_owf_v2(std::string_view user, std::string_view domain,
                                  std::string_view password) {
  std::vector<uint8_t> pw = utf16le(password);
  std::array<uint8_t, 16> nt_hash = md4(pw);
  detail::cleanse(pw.data(), pw.size());
  std::vector<uint8_t> user_dom = utf16le_upper(user);
  const std::vector<uint8_t> dom = utf16le(domain);
  user_dom.insert(user_dom.end(), dom.begin(), dom.end());
  const auto key = hmac_md5(nt_hash, user_dom);
  detail::cleanse(nt_hash.data(), nt_hash.size());
  return key;
}

Ntlmv2Response ntlmv2_response(std::span<const uint8_t, 16> response_key_nt,
                               std::span<const uint8_t, 8> server_challenge,
                               std::span<const uint8_t, 8> client_challenge, uint64_t timestamp,
                               std::span<const uint8_t> target_info) {
  // temp = Responserversion, HiResponserversion, Z(6), Time, ClientChallenge, Z(4), ServerName,
  // Z(4); ServerName being the AV pairs.
  std::vector<uint8_t> temp = {1, 1, 0, 0, 0, 0, 0, 0};
  detail::put64(temp, timestamp);
  temp.insert(temp.end(), client_challenge.begin(), client_challenge.end());
  detail::put32(temp, 0);
  temp.insert(temp.end(), target_info.begin(), target_info.end());
  detail::put32(temp, 0);

  std::vector<uint8_t> proof_input(server_challenge.begin(), server_challenge.end());
  proof_input.insert(proof_input.end(), temp.begin(), temp.end());
  const auto nt_proof = hmac_md5(response_key_nt, proof_input);

  Ntlmv2Response r;
  r.nt_response.resize(16 + temp.size());
  std::memcpy(r.nt_response.data(), nt_proof.data(), 16);
  std::memcpy(r.nt_response.data() + 16, temp.data(), temp.size());

  uint8_t sc_cc[16];
  std::memcpy(sc_cc, server_challenge.data(), 8);
  std::memcpy(sc_cc + 8, client_challenge.data(), 8);
  const auto lm = hmac_md5(response_key_nt, sc_cc);
  std::memcpy(r.lm_response.data(), lm.data(), 16);
  std::memcpy(r.lm_response.data() + 16, client_challenge.data(), 8);

  r.session_base_key = hmac_md5(response_key_nt, nt_proof);
  return r;
}

std::array<uint8_t, 16> encrypt_session_key(std::span<const uint8_t, 16> key_exchange_key,
                                            std::span<const uint8_t, 16> exported_session_key) {
  detail::Rc4State s;
  detail::rc4_init(s, key_exchange_key);
  std::array<uint8_t, 16> out{};
  std::memcpy(out.data(), exported_session_key.data(), 16);
  detail::rc4_apply(s, out);
  detail::cleanse(s.data(), s.size());
  return out;
}

namespace {
// The magic constants are hashed with their terminating NUL (MS-NLMP 3.4.5.2).
constexpr char kClientSign[] = "session key to client-to-server signing key magic constant";
constexpr char kServerSign[] = "session key to server-to-client signing key magic constant";
constexpr char kClientSeal[] = "session key to client-to-server sealing key magic constant";
constexpr char kServerSeal[] = "session key to server-to-client sealing key magic constant";

std::span<const uint8_t> with_nul(const char* s, std::size_t size_with_nul) {
  return {reinterpret_cast<const uint8_t*>(s), size_with_nul};
}
}  // namespace

std::array<uint8_t, 16> sign_key(std::span<const uint8_t, 16> key, Session::Side side) {
  return side == Session::Side::client
             ? detail::md5(key, with_nul(kClientSign, sizeof kClientSign))
             : detail::md5(key, with_nul(kServerSign, sizeof kServerSign));
}

std::array<uint8_t, 16> seal_key(std::span<const uint8_t, 16> key, Session::Side side) {
  return side == Session::Side::client
             ? detail::md5(key, with_nul(kClientSeal, sizeof kClientSeal))
             : detail::md5(key, with_nul(kServerSeal, sizeof kServerSeal));
}

}  // namespace outpost::lib::ntlm
