// The NTLM library against MS-NLMP section 4.2.4 (NTLMv2 test vectors), RFC 1320 (MD4), and two
// independent implementations run as peers: impacket and ntlm_auth (python3, ntlm_peer.py).
#include <stdlib.h>  // mkdtemp

#include <algorithm>
#include <catch2/catch.hpp>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
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

TEST_CASE("hmac_md5: RFC 2202 test case 2, and an empty key (Python's hmac)") {
  CHECK(hex(ntlm::hmac_md5(ascii("Jefe"), ascii("what do ya want for nothing?"))) ==
        "750c783e6ab0b503eaa86e310a5db738");
  CHECK(hex(ntlm::hmac_md5({}, ascii("abc"))) == "dd2701993d29fdd0b032c233cec63403");
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

// ---- Malformed CHALLENGE messages: an Error, never a crash.

namespace {

// A well-formed CHALLENGE_MESSAGE: flags, server challenge, target info at offset 56.
Bytes make_challenge(uint32_t flags, const Bytes& target_info, bool with_time = false) {
  Bytes ti = target_info;
  if (with_time) {
    ti.resize(ti.size() - 4);  // before MsvAvEOL
    const Bytes t = unhex("0700080000e4a9c0ffffd801");
    ti.insert(ti.end(), t.begin(), t.end());
    ti.insert(ti.end(), {0, 0, 0, 0});
  }
  Bytes m = ascii(std::string_view("NTLMSSP\0", 8));
  auto put32 = [&](uint32_t v) {
    for (int i = 0; i < 4; ++i) m.push_back(static_cast<uint8_t>(v >> (8 * i)));
  };
  put32(2);
  put32(0), put32(56);  // TargetNameFields: empty
  put32(flags);
  m.insert(m.end(), kServerChallenge.begin(), kServerChallenge.end());
  put32(0), put32(0);
  const auto n = static_cast<uint32_t>(ti.size());
  put32(n | (n << 16));
  put32(56);
  m.insert(m.end(), {10, 0, 0x7c, 0x4f, 0, 0, 0, 15});
  m.insert(m.end(), ti.begin(), ti.end());
  return m;
}

// The flags of the MS-NLMP 4.2.4 examples (0xe28a8233 without OEM).
constexpr uint32_t kSpecFlags = 0xe28a8231;

ntlm::Client spec_client() {
  ntlm::ClientOptions o;
  o.client_challenge = std::array<uint8_t, 8>{};
  std::copy(kClientChallenge.begin(), kClientChallenge.end(), o.client_challenge->begin());
  o.exported_session_key = std::array<uint8_t, 16>{};
  std::copy(kRandomSessionKey.begin(), kRandomSessionKey.end(), o.exported_session_key->begin());
  o.timestamp = 0;
  return ntlm::Client({"User", "Domain", "Password"}, o);
}

}  // namespace

TEST_CASE("challenge: a well-formed message is read field by field") {
  const auto c = ntlm::parse_challenge(make_challenge(kSpecFlags, kTargetInfo, true));
  CHECK(c.flags == kSpecFlags);
  CHECK(Bytes(c.server_challenge.begin(), c.server_challenge.end()) == kServerChallenge);
  REQUIRE(c.target_info.size() == 3);
  CHECK(c.target_info[0].id == ntlm::kAvNbDomainName);
  CHECK(c.target_info[0].value == ntlm::utf16le("Domain"));
  CHECK(c.target_info[1].id == ntlm::kAvNbComputerName);
  REQUIRE(c.timestamp);
  CHECK(*c.timestamp == 0x01d8ffffc0a9e400ull);
  CHECK_FALSE(ntlm::parse_challenge(make_challenge(kSpecFlags, kTargetInfo)).timestamp);
}

TEST_CASE("challenge: malformed messages are refused with an Error") {
  const Bytes good = make_challenge(kSpecFlags, kTargetInfo, true);
  // Every truncation.
  for (std::size_t n = 0; n < good.size(); ++n)
    CHECK_THROWS_AS(ntlm::parse_challenge(std::span(good).first(n)), ntlm::Error);

  auto with = [&](std::size_t at, std::initializer_list<uint8_t> bytes) {
    Bytes m = good;
    std::copy(bytes.begin(), bytes.end(), m.begin() + static_cast<std::ptrdiff_t>(at));
    return m;
  };
  auto refused = [](const Bytes& m, std::string_view why) {
    try {
      ntlm::parse_challenge(m);
    } catch (const ntlm::Error& e) {
      return std::string_view(e.what()).find(why) != std::string_view::npos;
    }
    return false;
  };
  CHECK(refused(with(0, {'X'}), "not an NTLMSSP message"));
  CHECK(refused(with(8, {3}), "not a CHALLENGE_MESSAGE"));
  CHECK(refused(with(8, {1}), "not a CHALLENGE_MESSAGE"));
  // Offsets and lengths pointing outside the message, or into its header.
  CHECK(refused(with(44, {0xff, 0xff, 0xff, 0xff}), "target info is out of bounds"));
  CHECK(refused(with(44, {0x10, 0, 0, 0}), "target info is out of bounds"));
  CHECK(refused(with(40, {0xff, 0xff}), "target info is out of bounds"));
  CHECK(refused(with(12, {4, 0, 4, 0, 0xf0, 0xff, 0xff, 0xff}), "target name is out of bounds"));
  // No target info at all.
  CHECK(refused(with(40, {0, 0}), "no target info"));
  // AV pairs: one running past the list, none ending it, a timestamp of the wrong size.
  CHECK(refused(with(56 + 2, {0xff, 0}), "target info is truncated"));
  {
    Bytes m = make_challenge(kSpecFlags, Bytes(kTargetInfo.begin(), kTargetInfo.end() - 4));
    CHECK(refused(m, "target info is truncated"));
  }
  CHECK(refused(make_challenge(kSpecFlags, unhex("070004000102030400000000")),
                "timestamp is not 8 bytes"));
  // Too many AV pairs.
  {
    Bytes ti;
    for (int i = 0; i < 100; ++i) ti.insert(ti.end(), {1, 0, 0, 0});
    ti.insert(ti.end(), {0, 0, 0, 0});
    CHECK(refused(make_challenge(kSpecFlags, ti), "too many AV pairs"));
  }
}

TEST_CASE("client: a server that grants too little is refused") {
  const auto try_flags = [](uint32_t flags) -> std::string {
    auto c = spec_client();
    c.negotiate();
    try {
      c.authenticate(make_challenge(flags, kTargetInfo));
    } catch (const ntlm::Error& e) {
      return e.what();
    }
    return "";
  };
  CHECK(try_flags(kSpecFlags) == "");
  CHECK(try_flags(kSpecFlags & ~ntlm::kNegotiateExtendedSessionSecurity) ==
        "ntlm: the server did not grant extended session security");
  CHECK(try_flags(kSpecFlags & ~ntlm::kNegotiate128) ==
        "ntlm: the server did not grant 128-bit keys");
  CHECK(try_flags(kSpecFlags & ~ntlm::kNegotiateSeal) == "ntlm: the server did not grant sealing");
  CHECK(try_flags(kSpecFlags & ~ntlm::kNegotiateSign) == "ntlm: the server did not grant signing");
  CHECK(try_flags(kSpecFlags & ~ntlm::kNegotiateUnicode) ==
        "ntlm: the server did not grant Unicode");
}

TEST_CASE("client: the calls come in order") {
  auto c = spec_client();
  CHECK_THROWS_AS(c.session(), ntlm::Error);
  CHECK_THROWS_AS(c.authenticate(make_challenge(kSpecFlags, kTargetInfo)), ntlm::Error);
  const Bytes neg = c.negotiate();
  REQUIRE(neg.size() == 40);
  CHECK(Bytes(neg.begin(), neg.begin() + 12) == unhex("4e544c4d5353500001000000"));
  CHECK_THROWS_AS(c.authenticate(Bytes{1, 2, 3}), ntlm::Error);
  CHECK_THROWS_AS(c.session(), ntlm::Error);
  c.authenticate(make_challenge(kSpecFlags, kTargetInfo));
  CHECK(c.negotiated_flags() ==
        (kSpecFlags & (ntlm::kNegotiateUnicode | ntlm::kRequestTarget | ntlm::kNegotiateSign |
                       ntlm::kNegotiateSeal | ntlm::kNegotiateNtlm | ntlm::kNegotiateAlwaysSign |
                       ntlm::kNegotiateExtendedSessionSecurity | ntlm::kNegotiateVersion |
                       ntlm::kNegotiate128 | ntlm::kNegotiateKeyExch | ntlm::kNegotiate56)));
  CHECK_NOTHROW(c.session());
  ntlm::Client moved = std::move(c);
  CHECK_NOTHROW(moved.session());
  CHECK_THROWS_AS(moved.authenticate(make_challenge(kSpecFlags, kTargetInfo)), ntlm::Error);
  CHECK_THROWS_AS(ntlm::Client({"u", "d", "p"}, {.channel_bindings_md5 = Bytes(15)}), ntlm::Error);
}

TEST_CASE("session: sign-only sessions cannot seal; too weak flags are refused") {
  const std::span<const uint8_t, 16> key(kRandomSessionKey);
  auto s = ntlm::Session::client(key, ntlm::Session::kDefaultFlags & ~ntlm::kNegotiateSeal);
  Bytes m = ascii("x");
  CHECK_THROWS_AS(s.seal(m, m), ntlm::Error);
  auto peer = ntlm::Session::server(key, ntlm::Session::kDefaultFlags & ~ntlm::kNegotiateSeal);
  CHECK(peer.verify(m, s.sign(m)));
  CHECK_THROWS_AS(ntlm::Session::client(key, ntlm::Session::kDefaultFlags & ~ntlm::kNegotiate128),
                  ntlm::Error);
  CHECK_THROWS_AS(ntlm::Session::client(
                      key, ntlm::Session::kDefaultFlags & ~ntlm::kNegotiateExtendedSessionSecurity),
                  ntlm::Error);
}

// ---- Against independent implementations: impacket and ntlm_auth, run by ntlm_peer.py.

namespace {

const std::string kPeer = OUTPOST_TEST_SOURCE_DIR "/plugins/lib/ntlm/tests/ntlm_peer.py";

struct TempDir {
  std::filesystem::path path;
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "test_ntlm.XXXXXX").string();
    REQUIRE(::mkdtemp(tmpl.data()) != nullptr);
    path = tmpl;
  }
  ~TempDir() { std::filesystem::remove_all(path); }
  std::string file(const char* name) const { return (path / name).string(); }
};

// Only /usr/bin/python3 has Debian's python3-impacket and python3-ntlm-auth.
bool peer_available() {
  static const bool ok = [] {
    FILE* p = ::popen(("/usr/bin/python3 " + kPeer + " check 2>&1").c_str(), "r");
    if (!p) return false;
    char buf[256];
    while (std::fread(buf, 1, sizeof buf, p) > 0) {
    }
    return ::pclose(p) == 0;
  }();
  if (!ok)
    WARN(
        "skipped: /usr/bin/python3 cannot import impacket and ntlm_auth "
        "(apt-get install python3-impacket python3-ntlm-auth, scripts/deps/ntlm.list)");
  return ok;
}

struct Run {
  int status = -1;
  std::vector<std::string> lines;
};

// Runs the peer with `args`, `input` on its stdin; stderr goes to the test's output.
Run peer(const TempDir& dir, const std::string& args, const std::string& input = "") {
  {
    std::ofstream in(dir.file("stdin.txt"));
    in << input;
  }
  const std::string cmd = "/usr/bin/python3 " + kPeer + " " + args + " < " + dir.file("stdin.txt");
  FILE* p = ::popen(cmd.c_str(), "r");
  REQUIRE(p != nullptr);
  std::string all;
  char buf[4096];
  std::size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) all.append(buf, n);
  Run r;
  r.status = ::pclose(p);
  std::istringstream s(all);
  for (std::string line; std::getline(s, line);) r.lines.push_back(line);
  return r;
}

void write_file(const std::string& path, const Bytes& b) {
  std::ofstream f(path, std::ios::binary);
  f.write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
}

Bytes read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return Bytes(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
}

std::vector<std::string> words(const std::string& line) {
  std::istringstream s(line);
  std::vector<std::string> w;
  for (std::string x; s >> x;) w.push_back(x);
  return w;
}

Bytes message(std::size_t n, uint8_t seed) {
  Bytes m(n);
  for (std::size_t i = 0; i < n; ++i) m[i] = static_cast<uint8_t>(seed + i * 7 + (i >> 8));
  return m;
}

// WinRM style: whole messages sealed and signed, several each way, then integrity-only
// messages in the same session, so that sequence numbers and RC4 state must run on in step
// with ntlm_auth's server side. The last message each way is tampered with and must fail.
void exchange_with_ntlm_auth(const TempDir& dir, ntlm::Session& s, const std::string& key_hex,
                             uint32_t flags) {
  const std::size_t sizes[] = {1, 17, 300, 4000, 64};
  std::string input;
  std::vector<Bytes> ours, theirs;
  for (std::size_t i = 0; i < std::size(sizes); ++i) {
    Bytes m = message(sizes[i], static_cast<uint8_t>(i));
    ours.push_back(m);
    const auto sig = s.seal(m, ours.back());
    input += "c " + hex(m) + " " + hex(sig) + "\n";
    theirs.push_back(message(sizes[i] + 3, static_cast<uint8_t>(100 + i)));
    input += "s " + hex(theirs.back()) + "\n";
  }
  const Bytes plain = ascii("integrity only");
  input += "v " + hex(plain) + " " + hex(s.sign(plain)) + "\n";
  input += "g " + hex(plain) + "\n";
  Bytes tampered = ascii("tampered");
  auto tsig = s.seal(tampered, tampered);
  tampered[0] ^= 0x80;
  input += "c " + hex(tampered) + " " + hex(tsig) + "\n";
  input += "s " + hex(plain) + "\n";

  const Run r = peer(dir, "winrm " + key_hex + " " + std::to_string(flags), input);
  REQUIRE(r.status == 0);
  REQUIRE(r.lines.size() == 2 * std::size(sizes) + 4);
  for (std::size_t i = 0; i < std::size(sizes); ++i) {
    CHECK(r.lines[2 * i] == "plain " + hex(ours[i]));  // ntlm_auth unsealed ours
    const auto w = words(r.lines[2 * i + 1]);
    REQUIRE(w.size() == 3);
    REQUIRE(w[0] == "sealed");
    Bytes m = unhex(w[1]);
    CHECK(m != theirs[i]);
    CHECK(s.receive_sequence() == i);
    CHECK(s.unseal(m, m, unhex(w[2])));  // we unseal theirs
    CHECK(m == theirs[i]);
  }
  CHECK(r.lines[2 * std::size(sizes)] == "verified");
  const auto g = words(r.lines[2 * std::size(sizes) + 1]);
  REQUIRE(g.size() == 2);
  CHECK(s.verify(plain, unhex(g[1])));
  CHECK(r.lines[2 * std::size(sizes) + 2] == "bad");
  const auto last = words(r.lines.back());
  REQUIRE(last.size() == 3);
  Bytes m = unhex(last[1]);
  m.back() ^= 1;
  CHECK_FALSE(s.unseal(m, m, unhex(last[2])));
}

// One handshake: impacket's CHALLENGE, our AUTHENTICATE, checked by the peer as a server would;
// then the exported session key it recovered drives a session against ours.
void handshake(bool server_time, const std::string& spn, const Bytes& cbt, bool key_exch = true) {
  TempDir dir;
  REQUIRE(peer(dir, "challenge " + dir.path.string() + (server_time ? "" : " notime") +
                        (key_exch ? "" : " nokeyexch"))
              .status == 0);
  const Bytes challenge = read_file(dir.file("challenge.bin"));
  REQUIRE(challenge.size() > 56);

  // Non-ASCII credentials: the user name is uppercased, both are UTF-16LE on the wire.
  const ntlm::Credentials creds{"monitor.é", "OUTPOST", "Pässwörd-1 ✓"};
  ntlm::ClientOptions o;
  o.workstation = "COLLECTOR";
  o.target_spn = spn;
  o.channel_bindings_md5 = cbt;
  ntlm::Client client(creds, o);
  write_file(dir.file("negotiate.bin"), client.negotiate());
  write_file(dir.file("authenticate.bin"), client.authenticate(challenge));

  const std::string cbt_arg = cbt.empty() ? "-" : hex(cbt);
  const std::string spn_arg = spn.empty() ? "''" : "'" + spn + "'";
  const std::string common = dir.path.string() + " '" + creds.user + "' '" + creds.domain + "' ";
  const Run r =
      peer(dir, "verify " + common + "'" + creds.password + "' " + spn_arg + " " + cbt_arg);
  REQUIRE(r.status == 0);
  REQUIRE(r.lines.size() == 2);
  const auto key = words(r.lines[0]);
  REQUIRE(key.size() == 2);
  REQUIRE(key[0] == "key");
  CHECK(r.lines[1] == "flags " + std::to_string(client.negotiated_flags()));
  CHECK(((client.negotiated_flags() & ntlm::kNegotiateKeyExch) != 0) == key_exch);

  // The same server with a different password refuses the response.
  CHECK(peer(dir, "verify " + common + "'Pässwörd-2 ✓' " + spn_arg + " " + cbt_arg + " 2>/dev/null")
            .status != 0);

  auto s = client.session();
  exchange_with_ntlm_auth(dir, s, key[1], client.negotiated_flags());
}

}  // namespace

TEST_CASE("handshake: impacket's CHALLENGE with a timestamp; MIC, proof and key verified") {
  if (!peer_available()) return;
  handshake(true, "HTTP/winhost.outpost.test", {});
}

TEST_CASE("handshake: with channel bindings (HTTPS EPA)") {
  if (!peer_available()) return;
  handshake(true, "HTTP/winhost.outpost.test", message(16, 9));
}

TEST_CASE("handshake: a CHALLENGE without timestamp gets an LMv2 response and no MIC") {
  if (!peer_available()) return;
  handshake(false, "", {});
}

TEST_CASE("handshake: a server without KEY_EXCH: the session base key is the exported key") {
  if (!peer_available()) return;
  handshake(true, "HTTP/winhost.outpost.test", {}, false);
}

TEST_CASE("session: WinRM-style sealing both ways with ntlm_auth, fixed exported key") {
  if (!peer_available()) return;
  TempDir dir;
  auto s = ntlm::Session::client(std::span<const uint8_t, 16>(kRandomSessionKey));
  const uint32_t flags = 0xe28a8235;  // as Windows grants it
  exchange_with_ntlm_auth(dir, s, hex(kRandomSessionKey), flags);
}

TEST_CASE("session: DCE/RPC-style, stub sealed and whole PDU signed, with impacket") {
  if (!peer_available()) return;
  TempDir dir;
  const Bytes key = message(16, 42);
  const uint32_t flags = 0xe28a8235;
  auto s = ntlm::Session::client(std::span<const uint8_t, 16>(key), flags);
  // A PDU: 24-byte header, stub, 8-byte sec_trailer. Only the stub is encrypted; the signature
  // covers all of it, over the plaintext stub.
  const std::size_t stubs[] = {8, 100, 1024, 16};
  std::string input;
  std::vector<Bytes> ours, theirs;
  for (std::size_t i = 0; i < std::size(stubs); ++i) {
    const std::size_t n = 24 + stubs[i] + 8;
    Bytes pdu = message(n, static_cast<uint8_t>(i));
    ours.push_back(pdu);
    const auto sig = s.seal(std::span(pdu).subspan(24, stubs[i]), pdu);
    CHECK(Bytes(pdu.begin(), pdu.begin() + 24) == Bytes(ours[i].begin(), ours[i].begin() + 24));
    input += "c " + hex(pdu) + " 24 " + std::to_string(stubs[i]) + " " + hex(sig) + "\n";
    theirs.push_back(message(n, static_cast<uint8_t>(200 + i)));
    input += "s " + hex(theirs.back()) + " 24 " + std::to_string(stubs[i]) + "\n";
  }
  const Run r = peer(dir, "dcerpc " + hex(key) + " " + std::to_string(flags), input);
  REQUIRE(r.status == 0);
  REQUIRE(r.lines.size() == 2 * std::size(stubs));
  for (std::size_t i = 0; i < std::size(stubs); ++i) {
    CHECK(r.lines[2 * i] == "plain " + hex(ours[i]));
    const auto w = words(r.lines[2 * i + 1]);
    REQUIRE(w.size() == 3);
    Bytes pdu = unhex(w[1]);
    CHECK(pdu != theirs[i]);
    CHECK(s.unseal(std::span(pdu).subspan(24, stubs[i]), pdu, unhex(w[2])));
    CHECK(pdu == theirs[i]);
  }
}

TEST_CASE("session: sequence numbers count per direction and can be set") {
  const std::span<const uint8_t, 16> key(kRandomSessionKey);
  auto client = ntlm::Session::client(key);
  auto server = ntlm::Session::server(key);
  const Bytes m = ascii("message");
  // Each direction counts on its own.
  for (uint32_t i = 0; i < 3; ++i) {
    const auto sig = client.sign(m);
    CHECK(sig[12] == i);
    CHECK(server.verify(m, sig));
  }
  CHECK(client.receive_sequence() == 0);
  CHECK(server.send_sequence() == 0);
  CHECK(client.verify(m, server.sign(m)));
  // A peer that counts otherwise: the number on the wire follows the setter, RC4 runs on.
  client.set_send_sequence(41);
  const auto sig = client.sign(m);
  CHECK(sig[12] == 41);
  CHECK_FALSE(ntlm::Session::server(key).verify(m, sig));  // fresh RC4 state: out of step
  server.set_receive_sequence(41);
  CHECK(server.verify(m, sig));
  CHECK(server.receive_sequence() == 42);
}
