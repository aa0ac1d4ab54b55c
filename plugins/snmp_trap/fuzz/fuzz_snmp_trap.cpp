// libFuzzer target: one datagram through the whole receive path (BER, v1/v2c communities, v3
// USM with configured users, decryption, PDU, rules, event, inform Response, reports), with
// invariants the plugin relies on. A v3 message for the user "fuzz" is first re-encrypted and
// re-signed with that user's keys, so mutated bytes get past the MAC and the cipher and reach
// the code behind them; the input also goes straight into the PDU and scoped-PDU parsers.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <vector>

#include "message.hpp"
#include "mib.hpp"
#include "receiver.hpp"
#include "rules.hpp"
#include "usm.hpp"

using namespace outpost::snmp_trap;

namespace {

constexpr int64_t kWall = 1'700'000'000'000'000'000;
constexpr int64_t kMono = 10'000'000'000;  // 10 s after this engine's start

// Engine ID, users and rules shared with make_seeds.sh.
const Bytes kOwnEngine = {0x80, 0x00, 0x00, 0x00, 0x05, 0xf0, 0x0f, 0xf0, 0x0f, 0x01};

User user(const char* name, AuthProto a, const char* apw, PrivProto p, const char* ppw) {
  User u;
  u.name = name;
  u.auth = a;
  u.priv = p;
  if (a != AuthProto::kNone) u.auth_ku = password_to_key(a, apw);
  if (p != PrivProto::kNone) u.priv_ku = password_to_key(a, ppw);
  return u;
}

const Settings& settings() {
  static const Settings s = [] {
    Settings x;
    auto m = std::make_shared<MibMap>();
    add_builtin_names(*m);
    x.mibs = m;
    x.users.push_back(
        user("fuzz", AuthProto::kSha1, "fuzzauth123", PrivProto::kAes128, "fuzzpriv123"));
    x.users.push_back(user("fuzzauth", AuthProto::kSha256, "fuzzauth123", PrivProto::kNone, ""));
    x.users.push_back(
        user("fuzz256", AuthProto::kSha512, "fuzzauth123", PrivProto::kAes256, "fuzzpriv123"));
    x.users.push_back(user("fuzznone", AuthProto::kNone, "", PrivProto::kNone, ""));
    x.rules.push_back(make_rule(
        parse_pairs("name=down oid=IF-MIB::linkDown varbind=1.3.6.1.2.1.2.2.1.8 equals=down "
                    "severity=crit message='{trap} {ifIndex} {source} {nope}'"),
        *m));
    x.rules.push_back(make_rule(
        parse_pairs("name=re varbind=1.3.6.1.4.1 regex=^a(b|c)*d source=127.0.0.0/8"), *m));
    x.max_varbinds = 16;
    x.max_value_length = 64;
    x.max_engines = 8;
    x.max_reports_per_second = 0;
    return x;
  }();
  return s;
}

// When the input is a v3 message of one of our users with auth: encrypt the "encrypted" part if
// it holds a plaintext scoped PDU (a SEQUENCE; real ciphertext is left alone), then sign the
// result, with that user's keys for the message's engine.
bool reseal(std::vector<uint8_t>& d) {
  Message m;
  if (!parse_message(d, m).ok() || m.version != kVersion3 || !(m.flags & kFlagAuth)) return false;
  const User* u = nullptr;
  for (const auto& x : settings().users)
    if (x.auth != AuthProto::kNone &&
        std::string_view(reinterpret_cast<const char*>(m.user.data()), m.user.size()) == x.name)
      u = &x;
  if (u == nullptr || m.auth_params.size() != mac_size(u->auth)) return false;
  if ((m.flags & kFlagPriv) && u->priv != PrivProto::kNone && m.priv_params.size() == 8 &&
      !m.encrypted.empty() && m.encrypted[0] == 0x30) {
    const Key pk = privacy_key(u->auth, u->priv, u->priv_ku, m.engine_id);
    std::vector<uint8_t> c(m.encrypted.size());
    const std::size_t at = static_cast<std::size_t>(m.encrypted.data() - d.data());
    if (aes_cfb(u->priv, pk, static_cast<uint32_t>(m.engine_boots),
                static_cast<uint32_t>(m.engine_time), m.priv_params, m.encrypted, c.data(), true))
      std::memcpy(d.data() + at, c.data(), c.size());
  }
  const Key ak = localize(u->auth, u->auth_ku, m.engine_id);
  std::memset(d.data() + m.auth_params_offset, 0, m.auth_params.size());
  uint8_t mac[64];
  hmac(u->auth, ak, d, mac);
  std::memcpy(d.data() + m.auth_params_offset, mac, m.auth_params.size());
  return true;
}

void check(const Receiver& r, const Outcome& out) {
  const Counters& c = r.counters();
  uint64_t dropped = 0, received = 0;
  for (uint64_t x : c.dropped) dropped += x;
  for (auto& v : c.received) received += v[0] + v[1];
  // Exactly one fate per datagram.
  if (c.datagrams != 1 || dropped + received + c.duplicates != 1) std::abort();
  if ((out.drop == Drop::kNone) != (out.has_event || out.duplicate)) std::abort();
  if (out.drop != Drop::kNone && !out.reply.empty() && !out.has_report) std::abort();
  if (out.has_event) {
    if (out.event.kind != "trap" && out.event.kind != "alert") std::abort();
    bool has_oid = false;
    for (const auto& [k, v] : out.event.attributes) has_oid = has_oid || k == "trap_oid";
    if (!has_oid || out.event.source != "127.0.0.1") std::abort();
  }
  if (!out.reply.empty()) {
    // Every answer is a well-formed message of its own.
    Message m;
    if (!parse_message(out.reply, m).ok()) std::abort();
    if (out.ack && m.version == kVersion3 && !(m.flags & kFlagPriv)) {
      ScopedPdu sp;
      Pdu p;
      if (!parse_scoped_pdu(m.scoped_pdu, sp, false).ok() || !parse_pdu(sp.pdu, p, 0).ok() ||
          p.type != outpost::snmp::ber::tag::kResponse)
        std::abort();
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::span<const uint8_t> in(data, size);
  outpost_sockaddr from{};
  from.family = 4;
  from.addr[0] = 127;
  from.addr[3] = 1;
  from.port = 5000;
  OwnEngine own;
  own.engine_id = kOwnEngine;
  own.boots = 1;
  own.start_mono_ns = 0;

  {
    Receiver r(settings(), own);
    Outcome out;
    r.handle(in, from, kWall, kMono, out);
    check(r, out);
  }
  std::vector<uint8_t> sealed(data, data + size);
  if (reseal(sealed)) {
    Receiver r(settings(), own);
    Outcome out;
    r.handle(sealed, from, kWall, kMono, out);
    check(r, out);
  }
  // The parsers behind decryption, fed directly.
  Pdu pdu;
  (void)parse_pdu(in, pdu, 8);
  ScopedPdu sp;
  (void)parse_scoped_pdu(in, sp, true);
  return 0;
}
