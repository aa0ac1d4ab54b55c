// PDUs, associations and the endpoint mapper without a network: the shapes cross-checked with
// impacket (tests/impacket_pdus.py under /usr/bin/python3) in both directions, NTLM sealing
// against impacket's and against the ntlm library's server side, and every refusal. What a real
// server says is checked in test_dcerpc_samba (dcerpc_samba.sh).
#include <catch2/catch.hpp>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <outpost_lib/dcerpc.hpp>
#include <outpost_test/tool.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "wire.hpp"

namespace rpc = outpost::lib::dcerpc;
namespace ntlm = outpost::lib::ntlm;
using Bytes = std::vector<uint8_t>;

namespace {

const rpc::SyntaxId kSamr{rpc::Uuid::parse("12345778-1234-abcd-ef00-0123456789ac"), 1, 0};
const rpc::SyntaxId kLsarpc{rpc::Uuid::parse("12345778-1234-abcd-ef00-0123456789ab"), 0, 0};
const rpc::Uuid kObject = rpc::Uuid::parse("01234567-89ab-cdef-0123-456789abcdef");
const std::array<uint8_t, 16> kSessionKey{0x55, 0x55, 0x55, 0x55, 0x55, 0x55, 0x55, 0x55,
                                          0x55, 0x55, 0x55, 0x55, 0x55, 0x55, 0x55, 0x55};
// What the challenge below grants: Unicode, request target, sign, seal, NTLM, always sign,
// target type server, ESS, target info, version, 128, key exchange, 56.
constexpr uint32_t kChallengeFlags = 0xe28a8235;

using outpost::test::hex;
using outpost::test::unhex;

Bytes range(std::size_t n) {
  Bytes b(n);
  for (std::size_t i = 0; i < n; ++i) b[i] = static_cast<uint8_t>(i);
  return b;
}

// ---- impacket, the independent encoder/decoder.

const std::string kPeer = OUTPOST_TEST_SOURCE_DIR "/plugins/lib/dcerpc/tests/impacket_pdus.py";

bool impacket_available() {
  static const bool ok =
      std::system(("/usr/bin/python3 " + kPeer + " check >/dev/null 2>&1").c_str()) == 0;
  if (!ok) WARN("skipped: /usr/bin/python3 cannot import impacket (scripts/deps/dcerpc.list)");
  return ok;
}

// Runs the peer; its output lines "name rest..." by name.
std::map<std::string, std::string> impacket(const std::string& args,
                                            const std::string& input = "") {
  return outpost::test::lines_by_name(
      outpost::test::run_tool("/usr/bin/python3 " + kPeer + " " + args, input));
}

bool has_field(const std::string& fields, const std::string& f) {
  return (" " + fields + " ").find(" " + f + " ") != std::string::npos;
}

// ---- An NTLM server side, enough to act as the peer of an Association.

// A CHALLENGE_MESSAGE (MS-NLMP 2.2.1.2) for TPSAMBA with a timestamp (so the client adds a MIC).
Bytes challenge_message() {
  auto utf16 = [](std::string_view s) {
    Bytes b;
    for (char c : s) {
      b.push_back(static_cast<uint8_t>(c));
      b.push_back(0);
    }
    return b;
  };
  const Bytes name = utf16("TPSAMBA");
  rpc::wire::Writer info;
  for (uint16_t id : {uint16_t{2}, uint16_t{1}}) {
    info.u16(id);
    info.u16(static_cast<uint16_t>(name.size()));
    info.bytes(name);
  }
  info.u16(7);  // MsvAvTimestamp
  info.u16(8);
  info.bytes(std::array<uint8_t, 8>{0x00, 0x80, 0x3e, 0xd5, 0xde, 0xb1, 0x9d, 0x01});
  info.u32(0);  // MsvAvEOL
  rpc::wire::Writer w;
  w.bytes(std::array<uint8_t, 8>{'N', 'T', 'L', 'M', 'S', 'S', 'P', 0});
  w.u32(2);
  w.u16(static_cast<uint16_t>(name.size()));
  w.u16(static_cast<uint16_t>(name.size()));
  w.u32(56);
  w.u32(kChallengeFlags);
  w.bytes(std::array<uint8_t, 8>{1, 2, 3, 4, 5, 6, 7, 8});
  w.bytes(std::array<uint8_t, 8>{});
  w.u16(static_cast<uint16_t>(info.out.size()));
  w.u16(static_cast<uint16_t>(info.out.size()));
  w.u32(static_cast<uint32_t>(56 + name.size()));
  w.bytes(std::array<uint8_t, 8>{6, 1, 0xb1, 0x1d, 0, 0, 0, 0x0f});
  w.bytes(name);
  w.bytes(info.out);
  return w.out;
}

rpc::AssociationOptions fixed_options() {
  rpc::AssociationOptions o;
  o.ntlm_client_challenge = std::array<uint8_t, 8>{9, 9, 9, 9, 9, 9, 9, 9};
  o.ntlm_exported_session_key = kSessionKey;
  o.ntlm_timestamp = 0;
  return o;
}

Bytes bind_ack(uint32_t call_id, std::optional<rpc::AuthVerifier> auth, uint16_t max_recv = 5840,
               rpc::PduType type = rpc::PduType::bind_ack, uint16_t result = 0,
               uint16_t reason = 0) {
  rpc::Pdu p;
  p.type = type;
  p.call_id = call_id;
  p.body = rpc::BindAck{max_recv,
                        max_recv,
                        0x5eed,
                        type == rpc::PduType::bind_ack ? "49154" : "",
                        {{result, reason, rpc::ndr_syntax()}}};
  p.auth = std::move(auth);
  return rpc::encode(p);
}

struct Bound {
  rpc::Association a;
  Bytes bind, auth3;
};

// An association through bind, bind_ack (with the challenge) and AUTH3, under fixed randomness.
Bound handshake(rpc::AuthLevel level, uint16_t server_max_recv = 5840,
                rpc::AssociationOptions o = fixed_options()) {
  rpc::Association a(level, ntlm::Credentials{"smbtest", "", "Smb-pass1"}, o);
  Bytes bind = a.bind(kSamr);
  const Bytes auth3 = a.on_bind_ack(
      bind_ack(1, rpc::AuthVerifier{10, static_cast<uint8_t>(level), 0, 0, challenge_message()},
               server_max_recv));
  return {std::move(a), std::move(bind), auth3};
}

// The server's half of the session that handshake() sets up.
ntlm::Session server_session() { return ntlm::Session::server(kSessionKey); }

Bytes server_response(ntlm::Session& s, rpc::AuthLevel level, uint32_t call_id, const Bytes& stub,
                      uint8_t flags = rpc::kFirstFrag | rpc::kLastFrag, uint32_t alloc_hint = 0) {
  const std::size_t pad = (16 - stub.size() % 16) % 16;
  rpc::Pdu p;
  p.type = rpc::PduType::response;
  p.flags = flags;
  p.call_id = call_id;
  p.body = rpc::Response{alloc_hint ? alloc_hint : static_cast<uint32_t>(stub.size()), 0, 0};
  p.stub = stub;
  p.stub.resize(stub.size() + pad);
  p.auth =
      rpc::AuthVerifier{10, static_cast<uint8_t>(level), static_cast<uint8_t>(pad), 0, Bytes(16)};
  Bytes out = rpc::encode(p);
  const std::span<uint8_t> all(out);
  const auto sig = level == rpc::AuthLevel::privacy
                       ? s.seal(all.subspan(24, p.stub.size()), all.first(out.size() - 16))
                       : s.sign(all.first(out.size() - 16));
  std::copy(sig.begin(), sig.end(), out.end() - 16);
  return out;
}

// Opens one request fragment as the server would: its stub without the padding.
Bytes server_open(ntlm::Session& s, rpc::AuthLevel level, Bytes pdu) {
  const rpc::Pdu p = rpc::decode(pdu);
  REQUIRE(p.auth);
  const std::size_t at = std::get<rpc::Request>(p.body).object ? 40 : 24;
  const std::span<uint8_t> all(pdu);
  const bool ok =
      level == rpc::AuthLevel::privacy
          ? s.unseal(all.subspan(at, p.stub.size()), all.first(pdu.size() - 16), all.last(16))
          : s.verify(all.first(pdu.size() - 16), all.last(16));
  REQUIRE(ok);
  return Bytes(pdu.begin() + static_cast<std::ptrdiff_t>(at),
               pdu.begin() + static_cast<std::ptrdiff_t>(at + p.stub.size() - p.auth->pad_length));
}

Bytes fault(uint32_t call_id, uint32_t status) {
  rpc::Pdu p;
  p.type = rpc::PduType::fault;
  p.call_id = call_id;
  p.body = rpc::Fault{0, 0, 0, status};
  return rpc::encode(p);
}

template <class F>
rpc::Error error_of(F&& f) {
  try {
    f();
  } catch (const rpc::Error& e) {
    return e;
  }
  FAIL("no rpc::Error thrown");
  return rpc::Error(rpc::Status::protocol, 0, "");
}

}  // namespace

TEST_CASE("UUIDs read and write text and the NDR wire form") {
  const auto u = rpc::Uuid::parse("12345778-1234-ABCD-ef00-0123456789ac");
  CHECK(u.to_string() == "12345778-1234-abcd-ef00-0123456789ac");
  CHECK(hex(u.to_wire()) == "785734123412cdabef000123456789ac");
  CHECK(rpc::Uuid::from_wire(u.to_wire()) == u);
  CHECK(hex(rpc::ndr_syntax().uuid.to_wire()) == "045d888aeb1cc9119fe808002b104860");
  for (const char* bad :
       {"", "12345778-1234-abcd-ef00-0123456789a", "12345778x1234-abcd-ef00-0123456789ac",
        "1234577g-1234-abcd-ef00-0123456789ac"}) {
    CHECK(error_of([&] { rpc::Uuid::parse(bad); }).status == rpc::Status::protocol);
  }
}

TEST_CASE("every PDU type goes through encode and decode unchanged") {
  std::vector<rpc::Pdu> pdus;
  rpc::Pdu p;
  p.call_id = 3;
  p.type = rpc::PduType::bind;
  p.body = rpc::Bind{5840, 5840, 7, {{0, kSamr, {rpc::ndr_syntax()}}, {1, kLsarpc, {}}}};
  p.auth = rpc::AuthVerifier{10, 6, 0, 9, range(32)};
  pdus.push_back(p);
  p.type = rpc::PduType::alter_context;
  p.auth.reset();
  pdus.push_back(p);
  p.type = rpc::PduType::bind_ack;
  p.body = rpc::BindAck{4280, 4280, 0x5eed, "49154", {{0, 0, rpc::ndr_syntax()}, {2, 1, {}}}};
  p.auth = rpc::AuthVerifier{10, 5, 0, 0, range(20)};
  pdus.push_back(p);
  p.type = rpc::PduType::alter_context_resp;
  p.body = rpc::BindAck{4280, 4280, 0x5eed, "", {{0, 0, rpc::ndr_syntax()}}};
  p.auth.reset();
  pdus.push_back(p);
  p.type = rpc::PduType::bind_nak;
  p.body = rpc::BindNak{8, {{5, 0}}};
  pdus.push_back(p);
  p.type = rpc::PduType::request;
  p.flags = rpc::kFirstFrag | rpc::kLastFrag | rpc::kObjectUuid;
  p.body = rpc::Request{100, 1, 57, kObject};
  p.stub = range(48);
  p.auth = rpc::AuthVerifier{10, 6, 12, 0, range(16)};
  pdus.push_back(p);
  p.type = rpc::PduType::response;
  p.flags = rpc::kLastFrag;
  p.body = rpc::Response{100, 1, 0};
  pdus.push_back(p);
  p.type = rpc::PduType::fault;
  p.body = rpc::Fault{0, 1, 0, rpc::kNcaUnknownInterface};
  p.stub.clear();
  p.auth.reset();
  pdus.push_back(p);
  p.type = rpc::PduType::auth3;
  p.body = rpc::Auth3{};
  p.auth = rpc::AuthVerifier{10, 6, 0, 0, range(60)};
  pdus.push_back(p);
  p.type = rpc::PduType::shutdown;
  p.body = rpc::Other{};
  p.auth.reset();
  pdus.push_back(p);

  for (const auto& pdu : pdus) {
    INFO("PDU type " << static_cast<int>(pdu.type));
    const Bytes bytes = rpc::encode(pdu);
    const rpc::Pdu back = rpc::decode(bytes);
    CHECK(back.type == pdu.type);
    CHECK(back.flags == pdu.flags);
    CHECK(back.call_id == pdu.call_id);
    CHECK(back.stub == pdu.stub);
    CHECK(back.auth.has_value() == pdu.auth.has_value());
    if (pdu.auth) CHECK(back.auth->value == pdu.auth->value);
    CHECK(back.body.index() == pdu.body.index());
    CHECK(rpc::encode(back) == bytes);
  }
  const auto ack = std::get<rpc::BindAck>(rpc::decode(rpc::encode(pdus[2])).body);
  CHECK(ack.secondary_address == "49154");
  CHECK(ack.results.size() == 2);
  CHECK(ack.results[1].reason == 1);
  const auto req = rpc::decode(rpc::encode(pdus[5]));
  CHECK(std::get<rpc::Request>(req.body).object == kObject);
  CHECK(std::get<rpc::Request>(req.body).opnum == 57);
  CHECK(req.auth->pad_length == 12);
}

TEST_CASE("impacket builds the same bind, alter_context, request and ept_map bytes") {
  if (!impacket_available()) return;
  auto theirs = impacket("build");

  rpc::Pdu bind;
  bind.type = rpc::PduType::bind;
  bind.call_id = 1;
  bind.body = rpc::Bind{5840, 5840, 0, {{0, kSamr, {rpc::ndr_syntax()}}}};
  bind.auth = rpc::AuthVerifier{10, 6, 0, 0, range(40)};
  CHECK(hex(rpc::encode(bind)) == theirs["bind"]);

  rpc::Pdu alter;
  alter.type = rpc::PduType::alter_context;
  alter.call_id = 2;
  alter.body = rpc::Bind{5840, 5840, 0x1234, {{1, kLsarpc, {rpc::ndr_syntax()}}}};
  CHECK(hex(rpc::encode(alter)) == theirs["alter_context"]);

  rpc::Pdu request;
  request.call_id = 7;
  request.body = rpc::Request{32, 1, 57, std::nullopt};
  request.stub = range(32);
  CHECK(hex(rpc::encode(request)) == theirs["request"]);
  request.call_id = 8;
  request.body = rpc::Request{8, 0, 3, kObject};
  request.stub = Bytes(8);
  CHECK(hex(rpc::encode(request)) == theirs["request_object"]);

  CHECK(hex(rpc::tcp_tower(kSamr)) == theirs["tower"]);
  // impacket fills the NDR alignment after the tower with 0xab, we with zero.
  std::string ept = theirs["ept_map"];
  const std::size_t pad_at = 2 * (4 + 16 + 4 + 8 + rpc::tcp_tower(kSamr).size());
  REQUIRE(ept.substr(pad_at, 2) == "ab");
  ept.replace(pad_at, 2, "00");
  CHECK(hex(rpc::ept_map_request(kSamr)) == ept);

  // And the other way: theirs read by us, and written back byte for byte.
  for (const char* name :
       {"bind", "alter_context", "request", "request_object", "bind_ack", "fault"}) {
    INFO(name);
    const Bytes b = unhex(theirs[name]);
    CHECK(rpc::encode(rpc::decode(b)) == b);
  }
  const auto ack = rpc::decode(unhex(theirs["bind_ack"]));
  REQUIRE(ack.type == rpc::PduType::bind_ack);
  const auto& body = std::get<rpc::BindAck>(ack.body);
  CHECK(body.max_recv_frag == 4280);
  CHECK(body.assoc_group_id == 0x5eed);
  CHECK(body.secondary_address == "49154");
  REQUIRE(body.results.size() == 1);
  CHECK(body.results[0].transfer_syntax == rpc::ndr_syntax());
  CHECK(ack.auth->value == range(40));
  const auto f = rpc::decode(unhex(theirs["fault"]));
  CHECK(std::get<rpc::Fault>(f.body).status == rpc::kNcaUnknownInterface);
  CHECK(rpc::decode(unhex(theirs["request_object"])).call_id == 8);
}

TEST_CASE("impacket parses the PDUs an association sends") {
  if (!impacket_available()) return;
  rpc::AssociationOptions o = fixed_options();
  o.max_xmit_frag = 4000;
  auto b = handshake(rpc::AuthLevel::privacy, 1500, o);
  const Bytes stub = range(3000);
  const auto fragments = b.a.request(6, stub, kObject);
  REQUIRE(fragments.size() == 3);  // 1500 - 40 header - 24 verifier = 1436, in 1424 pieces
  std::string input = "bind " + hex(b.bind) + "\nauth3 " + hex(b.auth3) + "\n";
  for (std::size_t i = 0; i < fragments.size(); ++i) {
    input += "fragment" + std::to_string(i) + " " + hex(fragments[i]) + "\n";
  }
  auto parsed = impacket("parse", input);
  const auto& bind = parsed["bind"];
  INFO(bind);
  CHECK(has_field(bind, "type=11"));
  CHECK(has_field(bind, "call_id=1"));
  CHECK(has_field(bind, "max_tfrag=4000"));
  CHECK(has_field(bind, "abstract=12345778-1234-ABCD-EF00-0123456789AC/1.0"));
  CHECK(has_field(bind, "transfer=8A885D04-1CEB-11C9-9FE8-08002B104860/2.0"));
  CHECK(has_field(bind, "auth_type=10"));
  CHECK(has_field(bind, "auth_level=6"));
  const rpc::Pdu bind_pdu = rpc::decode(b.bind);
  CHECK(has_field(bind, "auth_value=" + hex(bind_pdu.auth->value)));
  const auto& auth3 = parsed["auth3"];
  INFO(auth3);
  CHECK(has_field(auth3, "type=16"));
  CHECK(has_field(auth3, "auth_len=" + std::to_string(rpc::decode(b.auth3).auth->value.size())));
  CHECK(has_field(auth3, "auth3_pad=4"));
  for (std::size_t i = 0; i < fragments.size(); ++i) {
    const auto& f = parsed["fragment" + std::to_string(i)];
    INFO(f);
    CHECK(has_field(f, "type=0"));
    CHECK(has_field(f, "call_id=2"));
    CHECK(has_field(f, "opnum=6"));
    CHECK(has_field(f, "object=01234567-89AB-CDEF-0123-456789ABCDEF"));
    CHECK(has_field(f, "flags=" + std::to_string(0x80 | (i == 0 ? 1 : 0) | (i == 2 ? 2 : 0))));
    CHECK(has_field(f, "alloc_hint=" + std::to_string(3000 - 1424 * i)));
    CHECK(has_field(f, "auth_len=16"));
    CHECK(has_field(f, "auth_pad=" + std::to_string(i == 2 ? 8 : 0)));
    CHECK(fragments[i].size() <= 1500);
  }
}

TEST_CASE("sealing and signing agree with impacket's NTLM in both directions") {
  if (!impacket_available()) return;
  for (auto level : {rpc::AuthLevel::privacy, rpc::AuthLevel::integrity}) {
    INFO("level " << static_cast<int>(level));
    auto b = handshake(level);
    const Bytes request_stub = range(37), response_stub = range(21);
    const auto ours = b.a.request(6, request_stub);
    REQUIRE(ours.size() == 1);
    auto theirs = impacket("seal " + hex(kSessionKey) + " " + std::to_string(kChallengeFlags) +
                           " 2 6 " + std::to_string(static_cast<int>(level)) + " " +
                           hex(request_stub) + " " + hex(response_stub));
    CHECK(hex(ours[0]) == theirs["request"]);
    const auto stub = b.a.on_response(unhex(theirs["response"]));
    REQUIRE(stub);
    CHECK(*stub == response_stub);
  }
}

TEST_CASE("a tampered sealed or signed response is detected") {
  for (auto level : {rpc::AuthLevel::privacy, rpc::AuthLevel::integrity}) {
    // A captured response; every copy below is answered by a fresh, identical association.
    auto s = server_session();
    const Bytes captured = server_response(s, level, 2, range(40));
    {
      auto b = handshake(level);
      (void)b.a.request(6, range(10));
      REQUIRE(b.a.on_response(captured) == range(40));
    }
    // context id, reserved byte, stub, auth pad length, sec_trailer reserved, signature
    for (std::size_t at :
         {std::size_t{20}, std::size_t{23}, std::size_t{30}, std::size_t{63},
          captured.size() - 24 + 2, captured.size() - 24 + 3, captured.size() - 1}) {
      INFO("level " << static_cast<int>(level) << ", byte " << at);
      auto b = handshake(level);
      (void)b.a.request(6, range(10));
      Bytes tampered = captured;
      tampered[at] ^= 0x01;
      const auto e = error_of([&] { b.a.on_response(tampered); });
      CHECK(e.status == rpc::Status::integrity);
      CHECK(error_of([&] { b.a.request(6, {}); }).status == rpc::Status::protocol);  // broken
    }
  }
}

TEST_CASE("a long request goes in verified fragments of max_xmit_frag") {
  for (auto level : {rpc::AuthLevel::privacy, rpc::AuthLevel::integrity}) {
    auto b = handshake(level, 1024);
    CHECK(b.a.max_xmit_frag() == 1024);
    const Bytes stub = range(5000);
    const auto fragments = b.a.request(9, stub);
    REQUIRE(fragments.size() == 6);  // (1024 - 24 - 24) rounded down to 16: 976 per piece
    auto s = server_session();
    Bytes joined;
    for (std::size_t i = 0; i < fragments.size(); ++i) {
      CHECK(fragments[i].size() <= 1024);
      const auto p = rpc::decode(fragments[i]);
      CHECK(p.call_id == 2);
      CHECK(((p.flags & rpc::kFirstFrag) != 0) == (i == 0));
      CHECK(((p.flags & rpc::kLastFrag) != 0) == (i + 1 == fragments.size()));
      CHECK(std::get<rpc::Request>(p.body).alloc_hint == 5000 - 976 * i);
      const Bytes piece = server_open(s, level, fragments[i]);
      joined.insert(joined.end(), piece.begin(), piece.end());
    }
    CHECK(joined == stub);
  }
}

TEST_CASE("a response of several fragments is reassembled, each one verified") {
  auto b = handshake(rpc::AuthLevel::privacy);
  (void)b.a.request(6, range(4));
  auto s = server_session();
  const Bytes all = range(300);
  const Bytes p1(all.begin(), all.begin() + 112), p2(all.begin() + 112, all.begin() + 224),
      p3(all.begin() + 224, all.end());
  CHECK(!b.a.on_response(server_response(s, rpc::AuthLevel::privacy, 2, p1, rpc::kFirstFrag, 300)));
  CHECK(!b.a.on_response(server_response(s, rpc::AuthLevel::privacy, 2, p2, 0, 188)));
  const auto out =
      b.a.on_response(server_response(s, rpc::AuthLevel::privacy, 2, p3, rpc::kLastFrag, 76));
  REQUIRE(out);
  CHECK(*out == all);
  // The next call's response: sequence numbers run on.
  (void)b.a.request(6, range(4));
  CHECK(b.a.on_response(server_response(s, rpc::AuthLevel::privacy, 3, range(5))) == range(5));

  SECTION("fragments out of order") {
    (void)b.a.request(6, range(4));
    CHECK(error_of([&] {
            b.a.on_response(server_response(s, rpc::AuthLevel::privacy, 4, p2, 0));
          }).status == rpc::Status::protocol);
  }
  SECTION("another call's response") {
    (void)b.a.request(6, range(4));
    CHECK(error_of([&] {
            b.a.on_response(server_response(s, rpc::AuthLevel::privacy, 9, p2));
          }).status == rpc::Status::protocol);
  }
  SECTION("a response above the bound") {
    rpc::AssociationOptions o = fixed_options();
    o.max_response = 100;
    auto c = handshake(rpc::AuthLevel::privacy, 5840, o);
    auto s2 = server_session();
    (void)c.a.request(6, range(4));
    CHECK(error_of([&] {
            c.a.on_response(server_response(s2, rpc::AuthLevel::privacy, 2, range(101)));
          }).status == rpc::Status::protocol);
  }
  SECTION("a response without its verifier") {
    (void)b.a.request(6, range(4));
    rpc::Pdu p;
    p.type = rpc::PduType::response;
    p.call_id = 4;
    p.body = rpc::Response{};
    p.stub = range(8);
    CHECK(error_of([&] { b.a.on_response(rpc::encode(p)); }).status == rpc::Status::integrity);
  }
}

TEST_CASE("faults are typed errors with the status and its name") {
  rpc::Association a(rpc::AuthLevel::none, std::nullopt);
  (void)a.bind(kSamr);
  CHECK(a.on_bind_ack(bind_ack(1, std::nullopt)).empty());
  CHECK(a.bound());
  (void)a.request(1, range(8));
  auto e = error_of([&] { a.on_response(fault(2, rpc::kNcaUnknownInterface)); });
  CHECK(e.status == rpc::Status::unavailable);
  CHECK(e.code == rpc::kNcaUnknownInterface);
  CHECK(std::string(e.what()) ==
        "the server answered call 2 with a fault: 0x1c010003 (nca_s_unk_if)");
  // A fault about the call leaves the association usable.
  (void)a.request(1, range(8));
  e = error_of([&] { a.on_response(fault(3, 0x12345678)); });
  CHECK(e.status == rpc::Status::fault);
  CHECK(std::string(e.what()) == "the server answered call 3 with a fault: 0x12345678");
  (void)a.request(1, range(8));
  e = error_of([&] { a.on_response(fault(4, rpc::kRpcAccessDenied)); });
  CHECK(e.status == rpc::Status::auth_refused);
  CHECK(std::string(e.what()).find("rpc_s_access_denied") != std::string::npos);

  CHECK(rpc::fault_name(rpc::kNcaOpRangeError) == "nca_s_op_rng_error");
  CHECK(rpc::fault_name(rpc::kEptNotRegistered) == "ept_s_not_registered");
  CHECK(rpc::fault_name(0x12345678).empty());
  CHECK(rpc::classify_fault(rpc::kNcaInvalidChecksum) == rpc::Status::integrity);
  CHECK(rpc::status_name(rpc::Status::auth_refused) == "auth_refused");
}

TEST_CASE("credentials refused after AUTH3 are an auth error") {
  SECTION("Samba: nca_s_proto_error on the first call") {
    auto b = handshake(rpc::AuthLevel::privacy);
    (void)b.a.request(57, range(8));
    const auto e = error_of([&] { b.a.on_response(fault(2, rpc::kNcaProtoError)); });
    CHECK(e.status == rpc::Status::auth_refused);
    CHECK(e.code == rpc::kNcaProtoError);
  }
  SECTION("the connection closed before the first answer") {
    auto b = handshake(rpc::AuthLevel::privacy);
    (void)b.a.request(57, range(8));
    CHECK(b.a.closed().status == rpc::Status::auth_refused);
  }
  SECTION("after a first answer, a proto error is a protocol error") {
    auto b = handshake(rpc::AuthLevel::privacy);
    auto s = server_session();
    (void)b.a.request(57, range(8));
    REQUIRE(b.a.on_response(server_response(s, rpc::AuthLevel::privacy, 2, range(4))));
    (void)b.a.request(57, range(8));
    CHECK(b.a.closed().status == rpc::Status::unavailable);
    CHECK(error_of([&] { b.a.on_response(fault(3, rpc::kNcaProtoError)); }).status ==
          rpc::Status::protocol);
  }
}

TEST_CASE("bind refusals are classified") {
  auto refused = [](const Bytes& answer, bool with_ntlm = false) {
    auto a = with_ntlm ? rpc::Association(rpc::AuthLevel::privacy, ntlm::Credentials{"u", "", "p"},
                                          fixed_options())
                       : rpc::Association(rpc::AuthLevel::none, std::nullopt);
    (void)a.bind(kSamr);
    return error_of([&] { a.on_bind_ack(answer); });
  };
  auto nak = [](uint16_t reason) {
    rpc::Pdu p;
    p.type = rpc::PduType::bind_nak;
    p.call_id = 1;
    p.body = rpc::BindNak{reason, {}};
    return rpc::encode(p);
  };
  auto e = refused(nak(8));
  CHECK(e.status == rpc::Status::auth_refused);
  CHECK(std::string(e.what()) ==
        "the server refused the bind (bind_nak): authentication type not recognized");
  CHECK(refused(nak(9)).status == rpc::Status::auth_refused);
  CHECK(refused(nak(1)).status == rpc::Status::unavailable);
  CHECK(refused(nak(4)).status == rpc::Status::protocol);
  e = refused(bind_ack(1, std::nullopt, 5840, rpc::PduType::bind_ack, 2, 1));
  CHECK(e.status == rpc::Status::unavailable);
  CHECK(std::string(e.what()) ==
        "the server rejected interface 12345778-1234-abcd-ef00-0123456789ac v1.0 on bind: "
        "abstract syntax not supported");
  CHECK(refused(bind_ack(2, std::nullopt)).status == rpc::Status::protocol);  // other call id
  CHECK(refused(bind_ack(1, std::nullopt, 512)).status == rpc::Status::protocol);
  CHECK(refused(fault(1, rpc::kRpcAccessDenied)).status == rpc::Status::auth_refused);
  CHECK(refused(bind_ack(1, std::nullopt), true).status == rpc::Status::auth_refused);
  CHECK(refused(bind_ack(1, rpc::AuthVerifier{10, 6, 0, 0, range(30)}), true).status ==
        rpc::Status::auth_refused);  // not an NTLM challenge
}

TEST_CASE("alter_context adds a presentation context to the association") {
  auto b = handshake(rpc::AuthLevel::privacy);
  const Bytes alter = b.a.alter_context(kLsarpc);
  const auto p = rpc::decode(alter);
  CHECK(p.type == rpc::PduType::alter_context);
  CHECK(p.call_id == 2);
  CHECK(!p.auth);  // the security context of the bind goes on
  const auto& body = std::get<rpc::Bind>(p.body);
  CHECK(body.assoc_group_id == 0x5eed);
  REQUIRE(body.contexts.size() == 1);
  CHECK(body.contexts[0].context_id == 1);
  CHECK(body.contexts[0].abstract_syntax == kLsarpc);
  CHECK_THROWS_AS(b.a.request(0, {}), rpc::Error);  // not while altering
  b.a.on_alter_context_resp(bind_ack(2, std::nullopt, 5840, rpc::PduType::alter_context_resp));
  CHECK(b.a.context_id(kLsarpc) == uint16_t{1});
  CHECK(b.a.context_id(kSamr) == uint16_t{0});
  auto s = server_session();
  CHECK(std::get<rpc::Request>(rpc::decode(b.a.request(0, range(4))[0]).body).context_id == 1);
  REQUIRE(b.a.on_response(server_response(s, rpc::AuthLevel::privacy, 3, range(4))));
  CHECK(std::get<rpc::Request>(rpc::decode(b.a.request(0, range(4), std::nullopt, 0)[0]).body)
            .context_id == 0);
  REQUIRE(b.a.on_response(server_response(s, rpc::AuthLevel::privacy, 4, range(4))));

  SECTION("a rejected interface leaves the association usable") {
    (void)b.a.alter_context({kObject, 1, 0});
    const auto e = error_of([&] {
      b.a.on_alter_context_resp(
          bind_ack(5, std::nullopt, 5840, rpc::PduType::alter_context_resp, 2, 1));
    });
    CHECK(e.status == rpc::Status::unavailable);
    CHECK(b.a.bound());
    CHECK(b.a.request(0, range(4)).size() == 1);
  }
}

TEST_CASE("misuse is refused") {
  CHECK_THROWS_AS(rpc::Association(rpc::AuthLevel::privacy, std::nullopt), rpc::Error);
  CHECK_THROWS_AS(rpc::Association(rpc::AuthLevel::none, ntlm::Credentials{"u", "", "p"}),
                  rpc::Error);
  rpc::Association a(rpc::AuthLevel::none, std::nullopt);
  CHECK_THROWS_AS(a.request(0, {}), rpc::Error);
  CHECK_THROWS_AS(a.on_response(fault(1, 5)), rpc::Error);
  (void)a.bind(kSamr);
  CHECK_THROWS_AS(a.bind(kSamr), rpc::Error);
  CHECK(a.closed().status == rpc::Status::unavailable);
}

TEST_CASE("malformed PDUs are errors, never crashes") {
  rpc::Pdu p;
  p.call_id = 5;
  p.body = rpc::Request{16, 0, 1, std::nullopt};
  p.stub = range(16);
  p.auth = rpc::AuthVerifier{10, 6, 0, 0, range(16)};
  const Bytes good = rpc::encode(p);
  REQUIRE(good.size() == 24 + 16 + 8 + 16);
  auto malformed = [](Bytes b) {
    const auto e = error_of([&] { rpc::decode(b); });
    CHECK(e.status == rpc::Status::protocol);
    return std::string(e.what());
  };
  Bytes b = good;
  b[0] = 4;
  CHECK(malformed(b) == "malformed DCE/RPC data: RPC version 4.0, not 5.0");
  b = good;
  b[1] = 1;
  malformed(b);
  b = good;
  b[4] = 0x00;  // big-endian
  malformed(b);
  b = good;
  b[8] = static_cast<uint8_t>(good.size() + 1);
  CHECK(malformed(b) == "malformed DCE/RPC data: frag_length 65 but 64 bytes");
  b = good;
  b.pop_back();
  malformed(b);
  b = good;
  b[10] = 60;  // auth_length beyond the PDU
  CHECK(malformed(b) == "malformed DCE/RPC data: auth_length 60 beyond the PDU");
  b = good;
  b[10] = 36;  // the sec_trailer would start inside the request header
  malformed(b);
  b = good;
  b[good.size() - 24 + 2] = 17;  // auth pad longer than the stub
  CHECK(malformed(b) == "malformed DCE/RPC data: auth_pad_length beyond the stub");
  b = good;
  b[2] = 1;  // ping: connectionless
  malformed(b);
  malformed(Bytes(good.begin(), good.begin() + 15));
  // truncated sec_trailer: auth_length says 16 but the PDU ends inside the trailer
  b = Bytes(good.begin(), good.begin() + 24 + 16 + 4);
  b[8] = static_cast<uint8_t>(b.size());
  malformed(b);
  // a bind that promises more contexts than it has
  rpc::Pdu bind;
  bind.type = rpc::PduType::bind;
  bind.body = rpc::Bind{5840, 5840, 0, {{0, kSamr, {rpc::ndr_syntax()}}}};
  b = rpc::encode(bind);
  b[24] = 3;
  CHECK(malformed(b) == "malformed DCE/RPC data: bind truncated");
  // a bind_ack whose secondary address runs past the end
  b = bind_ack(1, std::nullopt);
  b[24] = 0xff;
  malformed(b);
  // a request with the object flag but no object
  b = Bytes(good.begin(), good.begin() + 24);
  b[3] |= rpc::kObjectUuid;
  b[8] = 24;
  b[10] = 0;
  CHECK(malformed(b) == "malformed DCE/RPC data: request truncated");

  // And through an association: the error comes out, the association is unusable.
  auto bd = handshake(rpc::AuthLevel::privacy);
  (void)bd.a.request(6, range(4));
  b = good;
  b[0] = 6;
  CHECK(error_of([&] { bd.a.on_response(b); }).status == rpc::Status::protocol);
  CHECK_THROWS_AS(bd.a.request(6, range(4)), rpc::Error);
}

TEST_CASE("the reader cuts PDUs out of a byte stream") {
  const Bytes one = fault(1, 5), two = bind_ack(2, std::nullopt);
  Bytes stream = one;
  stream.insert(stream.end(), two.begin(), two.end());
  rpc::Reader r;
  for (std::size_t i = 0; i < stream.size(); i += 7) {
    r.feed(std::span(stream).subspan(i, std::min<std::size_t>(7, stream.size() - i)));
  }
  CHECK(r.next() == one);
  CHECK(r.next() == two);
  CHECK(!r.next());
  CHECK(r.buffered() == 0);

  rpc::Reader partial;
  partial.feed(std::span(one).first(10));
  CHECK(!partial.next());
  partial.feed(std::span(one).subspan(10));
  CHECK(partial.next() == one);

  auto refused = [](Bytes b, std::size_t max = 65535) {
    rpc::Reader bad(max);
    bad.feed(b);
    CHECK(error_of([&] { bad.next(); }).status == rpc::Status::protocol);
  };
  Bytes b = one;
  b[8] = 15;
  b[9] = 0;
  refused(b);
  refused(one, 20);  // above the maximum
  b = one;
  b[0] = 4;
  refused(b);
  b = one;
  b[4] = 0;
  refused(b);
}

TEST_CASE("ept_map: the request, the ports of the answer, not registered") {
  const Bytes req = rpc::ept_map_request(kSamr, 4);
  CHECK(req.size() == 4 + 16 + 4 + 8 + 75 + 1 + 20 + 4);

  auto answer = [](std::vector<std::optional<uint16_t>> ports, uint32_t status) {
    rpc::wire::Writer w;
    w.bytes(std::array<uint8_t, 20>{});
    w.u32(static_cast<uint32_t>(ports.size()));
    w.u32(4);
    w.u32(0);
    w.u32(static_cast<uint32_t>(ports.size()));
    for (std::size_t i = 0; i < ports.size(); ++i) w.u32(static_cast<uint32_t>(3 + i));
    for (const auto& port : ports) {
      Bytes tower = rpc::tcp_tower(kSamr);
      if (port) {  // the TCP floor's value, big-endian
        tower[64] = static_cast<uint8_t>(*port >> 8);
        tower[65] = static_cast<uint8_t>(*port);
      }
      w.u32(static_cast<uint32_t>(tower.size()));
      w.u32(static_cast<uint32_t>(tower.size()));
      w.bytes(tower);
      w.align(4);
    }
    w.u32(status);
    return w.out;
  };
  // Floor count, two UUID floors of 25 bytes, the RPC floor of 7: the TCP floor's id at 61.
  REQUIRE(rpc::tcp_tower(kSamr)[61] == 0x07);
  CHECK(rpc::ept_map_ports(answer({49154}, 0)) == std::vector<uint16_t>{49154});
  CHECK(rpc::ept_map_ports(answer({49154, 1025}, 0)) == std::vector<uint16_t>{49154, 1025});
  auto e = error_of([&] { rpc::ept_map_ports(answer({}, rpc::kEptNotRegistered)); });
  CHECK(e.status == rpc::Status::unavailable);
  CHECK(e.code == rpc::kEptNotRegistered);
  CHECK(error_of([&] { rpc::ept_map_ports(answer({}, 0)); }).status == rpc::Status::unavailable);
  Bytes bad = answer({49154}, 0);
  bad[20] = 9;  // num_towers other than the array's count
  CHECK(error_of([&] { rpc::ept_map_ports(bad); }).status == rpc::Status::protocol);
  bad = answer({49154}, 0);
  bad.resize(bad.size() - 10);
  CHECK(error_of([&] { rpc::ept_map_ports(bad); }).status == rpc::Status::protocol);
}
