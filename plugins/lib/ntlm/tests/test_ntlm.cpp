// The NTLM library against MS-NLMP section 4.2.4 (NTLMv2 test vectors), RFC 1320 (MD4), and two
// independent implementations run as peers: impacket and ntlm_auth (python3, ntlm_peer.py).
#include <catch2/catch.hpp>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <outpost_lib/ntlm.hpp>
#include <sstream>
#include <string>
#include <vector>

namespace ntlm = outpost::lib::ntlm;
using Bytes = std::vector<uint8_t>;

namespace {

Bytes unhex(std::string_view h) {
  Bytes out;
  std::string digits;
  for (char c : h)
    if (std::isxdigit(static_cast<unsigned char>(c))) digits.push_back(c);
  for (std::size_t i = 0; i + 1 < digits.size(); i += 2)
    out.push_back(static_cast<uint8_t>(std::stoi(digits.substr(i, 2), nullptr, 16)));
  return out;
}

template <typename T>
std::string hex(const T& bytes) {
  static const char* d = "0123456789abcdef";
  std::string s;
  for (uint8_t b : bytes) s += d[b >> 4], s += d[b & 15];
  return s;
}

Bytes ascii(std::string_view s) { return Bytes(s.begin(), s.end()); }

// MS-NLMP 4.2.1 and 4.2.4: the inputs of the NTLMv2 examples.
const Bytes kServerChallenge = unhex("0123456789abcdef");
const Bytes kClientChallenge = unhex("aaaaaaaaaaaaaaaa");
const Bytes kRandomSessionKey = unhex("55555555555555555555555555555555");
// 4.2.4.1.3: the AV pairs of temp (NetBIOS domain "Domain", NetBIOS server "Server", EOL).
const Bytes kTargetInfo = unhex(
    "02000c0044006f006d00610069006e00"
    "01000c005300650072007600650072000000"
    "0000");

}  // namespace

TEST_CASE("md4: the RFC 1320 test suite") {
  const std::pair<const char*, const char*> cases[] = {
      {"", "31d6cfe0d16ae931b73c59d7e0c089c0"},
      {"a", "bde52cb31de33e46245e05fbdbd6fb24"},
      {"abc", "a448017aaf21d8525fc10ae87aa6729d"},
      {"message digest", "d9130a8164549fe818874806e1c7014b"},
      {"abcdefghijklmnopqrstuvwxyz", "d79e1c308aa5bbcdeea8ed63df412da9"},
      {"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789",
       "043f8582f241db351ce627e153e7f0e4"},
      {"12345678901234567890123456789012345678901234567890123456789012345678901234567890",
       "e33b4ddc9c38f2199c3e7b164fcc0536"},
  };
  for (const auto& [in, want] : cases) CHECK(hex(ntlm::md4(ascii(in))) == want);
}

TEST_CASE("ntlmv2: MS-NLMP 4.2.4 NTOWFv2, responses and session base key") {
  const auto key = ntlm::nt_owf_v2("User", "Domain", "Password");
  CHECK(hex(key) == "0c868a403bfd7a93a3001ef22ef02e3f");  // 4.2.4.1.1
  // The user name is uppercased, the domain is not.
  CHECK(ntlm::nt_owf_v2("user", "Domain", "Password") == key);
  CHECK(ntlm::nt_owf_v2("User", "DOMAIN", "Password") != key);

  const auto r =
      ntlm::ntlmv2_response(key, std::span<const uint8_t, 8>(kServerChallenge),
                            std::span<const uint8_t, 8>(kClientChallenge), 0, kTargetInfo);
  // 4.2.4.2.1 LMv2 response.
  CHECK(hex(r.lm_response) == "86c35097ac9cec102554764a57cccc19aaaaaaaaaaaaaaaa");
  // 4.2.4.2.2: NTProofStr, followed by temp as 4.2.4.1.3 lists it.
  REQUIRE(r.nt_response.size() == 16 + 28 + kTargetInfo.size() + 4);
  CHECK(hex(Bytes(r.nt_response.begin(), r.nt_response.begin() + 16)) ==
        "68cd0ab851e51c96aabc927bebef6a1c");
  CHECK(hex(Bytes(r.nt_response.begin() + 16, r.nt_response.end())) ==
        "0101000000000000"
        "0000000000000000"
        "aaaaaaaaaaaaaaaa"
        "00000000"
        "02000c0044006f006d00610069006e0001000c00530065007200760065007200"
        "00000000"
        "00000000");
  // 4.2.4.1.2 session base key, 4.2.4.2.3 encrypted session key.
  CHECK(hex(r.session_base_key) == "8de40ccadbc14a82f15cb0ad0de95ca3");
  CHECK(hex(ntlm::encrypt_session_key(r.session_base_key,
                                      std::span<const uint8_t, 16>(kRandomSessionKey))) ==
        "c5dad2544fc9799094ce1ce90bc9d03e");
}

TEST_CASE("session: MS-NLMP 4.2.4.4 GSS_WrapEx example") {
  const std::span<const uint8_t, 16> key(kRandomSessionKey);
  CHECK(hex(ntlm::seal_key(key, ntlm::Session::Side::client)) ==
        "59f600973cc4960a25480a7c196e4c58");
  CHECK(hex(ntlm::sign_key(key, ntlm::Session::Side::client)) ==
        "4788dc861b4782f35d43fd98fe1a2d39");

  const Bytes plaintext = ntlm::utf16le("Plaintext");
  Bytes msg = plaintext;
  auto client = ntlm::Session::client(key);
  CHECK(client.send_sequence() == 0);
  const auto sig = client.seal(msg, msg);  // WinRM style: one buffer, signed as plaintext
  CHECK(hex(msg) == "54e50165bf1936dc996020c1811b0f06fb5f");
  CHECK(hex(sig) == "010000007fb38ec5c55d497600000000");
  CHECK(client.send_sequence() == 1);

  // The server side takes it back; a flipped bit or a replay is refused.
  auto server = ntlm::Session::server(key);
  Bytes copy = msg;
  CHECK(server.unseal(copy, copy, sig));
  CHECK(copy == plaintext);
  CHECK(server.receive_sequence() == 1);
  auto server2 = ntlm::Session::server(key);
  Bytes tampered = msg;
  tampered[3] ^= 1;
  CHECK_FALSE(server2.unseal(tampered, tampered, sig));
  auto server3 = ntlm::Session::server(key);
  auto bad_seq = sig;
  bad_seq[12] = 1;
  Bytes copy3 = msg;
  CHECK_FALSE(server3.unseal(copy3, copy3, bad_seq));
  CHECK_FALSE(server3.unseal(copy3, copy3, std::span<const uint8_t>(sig).first(15)));
}
