#include "receiver.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace outpost::snmp_trap {
namespace {

using outpost::snmp::Value;
namespace tag = ber::tag;

constexpr int64_t kInt32Max = 2147483647;
constexpr int64_t kTimeWindow = 150;  // seconds, RFC 3414 3.2 step 7
constexpr int64_t kInformMemoryNs = 60'000'000'000;
constexpr std::size_t kInformMemory = 4096;
constexpr std::size_t kMaxSummary = 1000;

const Oid kSysUpTime0 = {1, 3, 6, 1, 2, 1, 1, 3, 0};
const Oid kSnmpTrapOid0 = {1, 3, 6, 1, 6, 3, 1, 1, 4, 1, 0};
const Oid kSnmpTraps = {1, 3, 6, 1, 6, 3, 1, 1, 5};
const Oid kUsmStats = {1, 3, 6, 1, 6, 3, 15, 1, 1};

bool same(std::span<const uint8_t> a, std::span<const uint8_t> b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin());
}

std::string_view as_text(std::span<const uint8_t> s) {
  return {reinterpret_cast<const char*>(s.data()), s.size()};
}

using ber::hex;

Drop drop_of(const ParseResult& p) {
  switch (p.shape) {
    case Shape::kBadVersion:
      return Drop::kBadVersion;
    case Shape::kBadField:
      return Drop::kBadField;
    case Shape::kOk:
    case Shape::kBer:
      break;
  }
  switch (p.ber) {
    case ber::Status::kTruncated:
      return Drop::kTruncated;
    case ber::Status::kBadLength:
      return Drop::kBadLength;
    case ber::Status::kBadTag:
      return Drop::kBadTag;
    case ber::Status::kUnexpectedTag:
      return Drop::kUnexpectedTag;
    case ber::Status::kBadInteger:
      return Drop::kBadInteger;
    case ber::Status::kBadOid:
      return Drop::kBadOid;
    case ber::Status::kTrailing:
      return Drop::kTrailing;
    case ber::Status::kOk:
      break;
  }
  return Drop::kBadField;
}

// The sender as 4 bytes (IPv4, also when it came as ::ffff:a.b.c.d) or 16.
struct Sender {
  uint8_t addr[16] = {};
  uint8_t family = 4;
  std::string ip;
  std::string ip_port;
};

Sender sender_of(const outpost_sockaddr& from) {
  Sender s;
  static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF};
  char buf[INET6_ADDRSTRLEN] = {};
  if (from.family == 6 && std::memcmp(from.addr, mapped, 12) != 0) {
    s.family = 6;
    std::memcpy(s.addr, from.addr, 16);
    ::inet_ntop(AF_INET6, s.addr, buf, sizeof buf);
    s.ip = buf;
    s.ip_port = "[" + s.ip + "]:" + std::to_string(from.port);
  } else {
    s.family = 4;
    std::memcpy(s.addr, from.family == 6 ? from.addr + 12 : from.addr, 4);
    ::inet_ntop(AF_INET, s.addr, buf, sizeof buf);
    s.ip = buf;
    s.ip_port = s.ip + ":" + std::to_string(from.port);
  }
  return s;
}

// Cuts text to at most n bytes on a UTF-8 character boundary, marking the cut.
void limit(std::string& s, std::size_t n) {
  if (s.size() <= n) return;
  std::size_t cut = n;
  while (cut > 0 && (static_cast<unsigned char>(s[cut]) & 0xC0) == 0x80) --cut;
  s.resize(cut);
  s += "...";
}

// Strict UTF-8 (no overlong forms, no surrogates, nothing past U+10FFFF).
bool valid_utf8(std::string_view s) {
  std::size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    std::size_t n = 0;
    unsigned char lo = 0x80, hi = 0xBF;  // range of the first continuation byte
    if (c < 0x80) {
      n = 0;
    } else if (c >= 0xC2 && c <= 0xDF) {
      n = 1;
    } else if (c >= 0xE0 && c <= 0xEF) {
      n = 2;
      if (c == 0xE0) lo = 0xA0;
      if (c == 0xED) hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
      n = 3;
      if (c == 0xF0) lo = 0x90;
      if (c == 0xF4) hi = 0x8F;
    } else {
      return false;
    }
    if (s.size() - i - 1 < n) return false;
    for (std::size_t k = 1; k <= n; ++k) {
      const auto x = static_cast<unsigned char>(s[i + k]);
      if (k == 1 ? (x < lo || x > hi) : (x & 0xC0) != 0x80) return false;
    }
    i += n + 1;
  }
  return true;
}

std::string hex_colons(std::string_view s) {
  static const char* digits = "0123456789abcdef";
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (i != 0) out += ':';
    const auto c = static_cast<unsigned char>(s[i]);
    out += digits[c >> 4];
    out += digits[c & 0xF];
  }
  return out;
}

struct Rendered {
  std::string text;   // readable
  std::string alt;    // raw, when it differs
  std::string typed;  // "integer: down(2)"
};

// node: the MIB object the varbind belongs to (from one lookup), for enum labels.
Rendered render(const outpost::snmp::VarBind& vb, const MibMap::Node* node, const MibMap& mib,
                std::size_t max_len) {
  Rendered r;
  const Value& v = vb.value;
  const char* type = outpost::snmp::type_name(v.type);
  switch (v.type) {
    case Value::Type::kInteger: {
      const auto n = static_cast<int64_t>(v.number);
      r.text = std::to_string(n);
      const std::string* label = nullptr;
      if (node != nullptr)
        for (const auto& [value, l] : node->enums)
          if (value == n) label = &l;
      if (label != nullptr) {
        r.alt = r.text;
        r.text = *label;
        r.typed = std::string(type) + ": " + *label + "(" + r.alt + ")";
        return r;
      }
      break;
    }
    case Value::Type::kCounter64:
      r.text = v.text;
      break;
    case Value::Type::kOid: {
      if (auto oid = outpost::snmp::parse_oid(v.text)) {
        r.text = mib.name(*oid);
        if (r.text != v.text) r.alt = v.text;
      } else {
        r.text = v.text;
      }
      break;
    }
    case Value::Type::kOctets:
    case Value::Type::kIpAddress:
    case Value::Type::kOther:
      r.text = v.as_label();
      // Bytes that are neither text nor valid UTF-8 go out as hex, so every sink gets text.
      if (!valid_utf8(r.text)) r.text = hex_colons(v.text);
      limit(r.text, max_len);
      break;
    case Value::Type::kNull:
    case Value::Type::kNoSuchObject:
    case Value::Type::kNoSuchInstance:
    case Value::Type::kEndOfMibView:
      r.text = type;
      r.typed = type;
      return r;
    default:
      r.text = outpost::snmp::format_number(v.number);
      break;
  }
  r.typed = std::string(type) + ": " + r.text;
  return r;
}

const char* level_name(uint8_t flags) {
  if (!(flags & kFlagAuth)) return "noAuthNoPriv";
  return (flags & kFlagPriv) ? "authPriv" : "authNoPriv";
}

}  // namespace

const char* drop_name(Drop d) noexcept {
  switch (d) {
    case Drop::kNone:
      return "none";
    case Drop::kTruncated:
      return "truncated";
    case Drop::kBadLength:
      return "bad_length";
    case Drop::kBadTag:
      return "bad_tag";
    case Drop::kUnexpectedTag:
      return "unexpected_tag";
    case Drop::kBadInteger:
      return "bad_integer";
    case Drop::kBadOid:
      return "bad_oid";
    case Drop::kTrailing:
      return "trailing_bytes";
    case Drop::kBadVersion:
      return "bad_version";
    case Drop::kBadField:
      return "bad_field";
    case Drop::kBadCommunity:
      return "bad_community";
    case Drop::kNotANotification:
      return "not_a_notification";
    case Drop::kMissingTrapOid:
      return "missing_trap_oid";
    case Drop::kUnknownSecurityModel:
      return "unknown_security_model";
    case Drop::kBadFlags:
      return "bad_flags";
    case Drop::kUnknownEngineId:
      return "unknown_engine_id";
    case Drop::kUnknownUser:
      return "unknown_user";
    case Drop::kUnsupportedSecLevel:
      return "unsupported_sec_level";
    case Drop::kWrongDigest:
      return "wrong_digest";
    case Drop::kNotInTimeWindow:
      return "not_in_time_window";
    case Drop::kDecryptionError:
      return "decryption_error";
  }
  return "none";
}

const char* report_name(Report r) noexcept {
  switch (r) {
    case Report::kUnsupportedSecLevel:
      return "unsupported_sec_level";
    case Report::kNotInTimeWindow:
      return "not_in_time_window";
    case Report::kUnknownUser:
      return "unknown_user";
    case Report::kUnknownEngineId:
      return "unknown_engine_id";
    case Report::kWrongDigest:
      return "wrong_digest";
    case Report::kDecryptionError:
      return "decryption_error";
  }
  return "unknown";
}

Receiver::Receiver(Settings settings, OwnEngine own)
    : settings_(std::move(settings)),
      own_(std::move(own)),
      empty_mibs_(std::make_unique<MibMap>()) {
  counters_.alerts.assign(settings_.rules.size(), 0);
  own_keys_.resize(settings_.users.size());
  random_bytes(reinterpret_cast<uint8_t*>(&salt_), sizeof salt_);
  report_tokens_ = settings_.max_reports_per_second;
}

void Receiver::set_own(OwnEngine own) {
  own_ = std::move(own);
  for (auto& k : own_keys_) k.reset();
}

int64_t Receiver::engine_time(int64_t mono_ns) const noexcept {
  const int64_t t = (mono_ns - own_.start_mono_ns) / 1'000'000'000;
  return std::clamp<int64_t>(t, 0, kInt32Max);
}

void Receiver::handle(std::span<const uint8_t> data, const outpost_sockaddr& from, int64_t wall_ns,
                      int64_t mono_ns, Outcome& out) {
  out.drop = Drop::kNone;
  out.has_event = false;
  out.reply.clear();
  out.ack = out.duplicate = out.has_report = out.report_suppressed = false;
  ++counters_.datagrams;
  Message m;
  const ParseResult p = parse_message(data, m);
  if (!p.ok()) {
    out.drop = drop_of(p);
  } else if (m.version == kVersion3) {
    handle_v3(data, m, from, wall_ns, mono_ns, out);
  } else {
    handle_community(m, from, wall_ns, mono_ns, out);
  }
  if (out.drop != Drop::kNone) ++counters_.dropped[static_cast<std::size_t>(out.drop)];
}

bool Receiver::seen_inform(const std::string& key, int64_t mono_ns) {
  while (!recent_informs_.empty() && (recent_informs_.size() >= kInformMemory ||
                                      mono_ns - recent_informs_.front().second > kInformMemoryNs)) {
    recent_set_.erase(recent_informs_.front().first);
    recent_informs_.pop_front();
  }
  if (recent_set_.count(key) != 0) return true;
  recent_set_.insert(key);
  recent_informs_.emplace_back(key, mono_ns);
  return false;
}

void Receiver::handle_community(const Message& m, const outpost_sockaddr& from, int64_t wall_ns,
                                int64_t mono_ns, Outcome& out) {
  const std::string_view community = as_text(m.community);
  if (!settings_.communities.empty() &&
      std::find(settings_.communities.begin(), settings_.communities.end(), community) ==
          settings_.communities.end()) {
    out.drop = Drop::kBadCommunity;
    return;
  }
  if (const ParseResult p = parse_pdu(m.pdu, pdu_, settings_.max_varbinds); !p.ok()) {
    out.drop = drop_of(p);
    return;
  }
  const bool v1 = m.version == kVersion1;
  const bool inform = !v1 && pdu_.type == tag::kInformRequest;
  if (v1 ? pdu_.type != tag::kTrapV1 : (pdu_.type != tag::kTrapV2 && !inform)) {
    out.drop = Drop::kNotANotification;
    return;
  }
  Security sec;
  sec.version = v1 ? 0 : 1;
  sec.community = std::string(community);
  if (!notify(sec, pdu_, from, wall_ns, out)) {
    out.drop = Drop::kMissingTrapOid;
    return;
  }
  if (!inform) {
    ++counters_.received[sec.version][0];
    return;
  }
  std::string key = "2|" + std::to_string(pdu_.request_id) + "|";
  key.append(reinterpret_cast<const char*>(from.addr), 16);
  key += std::to_string(from.port) + "|" + sec.community;
  if (seen_inform(key, mono_ns)) {
    out.has_event = false;
    out.duplicate = true;
    ++counters_.duplicates;
  } else {
    ++counters_.received[1][1];
  }
  out.reply = encode_community_message(
      m.version, m.community, encode_pdu(tag::kResponse, pdu_.request_id, 0, 0, pdu_.varbind_list));
  out.ack = true;
  ++counters_.acknowledged[1];
}

Receiver::EngineEntry* Receiver::find_engine(std::span<const uint8_t> engine_id) {
  auto it = engines_.find(std::string(as_text(engine_id)));
  if (it == engines_.end()) return nullptr;
  lru_.splice(lru_.begin(), lru_, it->second.lru);
  return &it->second;
}

Receiver::EngineEntry& Receiver::learn(std::span<const uint8_t> engine_id, int64_t mono_ns) {
  if (EngineEntry* e = find_engine(engine_id)) return *e;
  while (!engines_.empty() && engines_.size() >= std::max<std::size_t>(settings_.max_engines, 1)) {
    engines_.erase(lru_.back());
    lru_.pop_back();
  }
  std::string key(as_text(engine_id));
  lru_.push_front(key);
  EngineEntry& e = engines_[key];
  e.lru = lru_.begin();
  e.keys.resize(settings_.users.size());
  e.mono_ns = mono_ns;
  ++counters_.engines_learned;
  return e;
}

Receiver::LocalKeys* Receiver::keys_for(std::size_t u, std::span<const uint8_t> engine_id,
                                        bool need_priv, LocalKeys& scratch) {
  const User& user = settings_.users[u];
  std::unique_ptr<LocalKeys>* slot = nullptr;
  if (same(engine_id, own_.engine_id)) {
    slot = &own_keys_[u];
  } else if (EngineEntry* e = find_engine(engine_id)) {
    slot = &e->keys[u];
  }
  LocalKeys* k = slot != nullptr && *slot ? slot->get() : nullptr;
  if (k == nullptr) {
    if (slot != nullptr) {
      *slot = std::make_unique<LocalKeys>();
      k = slot->get();
    } else {
      scratch = LocalKeys{};
      k = &scratch;
    }
    k->auth = localize(user.auth, user.auth_ku, engine_id);
  }
  if (need_priv && !k->has_priv) {
    k->priv = privacy_key(user.auth, user.priv, user.priv_ku, engine_id);
    k->has_priv = true;
  }
  return k;
}

bool Receiver::take_report_token(int64_t mono_ns) {
  const double rate = settings_.max_reports_per_second;
  if (rate <= 0) return true;
  if (report_refill_ns_ != 0) {
    const double add = static_cast<double>(mono_ns - report_refill_ns_) * 1e-9 * rate;
    report_tokens_ = std::min(rate, report_tokens_ + std::max(0.0, add));
  }
  report_refill_ns_ = mono_ns;
  if (report_tokens_ < 1) return false;
  report_tokens_ -= 1;
  return true;
}

void Receiver::report(const Message& m, Report r, int64_t request_id, const User* auth_user,
                      const LocalKeys* keys, int64_t mono_ns, Outcome& out) {
  out.has_report = true;
  out.report = r;
  if (!take_report_token(mono_ns)) {
    out.report_suppressed = true;
    ++counters_.reports_suppressed;
    return;
  }
  const auto ri = static_cast<std::size_t>(r);
  ++counters_.reports[ri];
  Oid oid = kUsmStats;
  oid.push_back(static_cast<uint32_t>(ri + 1));
  oid.push_back(0);
  std::vector<uint8_t> list;
  // The usmStats counter the report names (the drops of its reason), this datagram included.
  append_varbind_counter32(
      list, oid, static_cast<uint32_t>(counters_.dropped[static_cast<std::size_t>(out.drop)] + 1));
  const auto pdu = encode_pdu(tag::kReport, request_id, 0, 0, list);
  const auto scoped = encode_scoped_pdu(own_.engine_id, {}, pdu);
  const bool auth = auth_user != nullptr && keys != nullptr;
  V3Header h;
  h.msg_id = m.msg_id;
  h.flags = auth ? kFlagAuth : 0;
  h.engine_id = own_.engine_id;
  h.engine_boots = own_.boots;
  h.engine_time = engine_time(mono_ns);
  h.user = m.user;
  h.auth_size = auth ? mac_size(auth_user->auth) : 0;
  std::size_t off = 0;
  out.reply = encode_v3(h, scoped, &off);
  if (auth && off != 0) hmac(auth_user->auth, keys->auth, out.reply, out.reply.data() + off);
}

std::vector<uint8_t> Receiver::v3_response(const Message& m, const ScopedPdu& sp, const Pdu& pdu,
                                           const User& user, const LocalKeys& keys,
                                           int64_t mono_ns) {
  const auto body = encode_pdu(tag::kResponse, pdu.request_id, 0, 0, pdu.varbind_list);
  const auto scoped = encode_scoped_pdu(sp.context_engine_id, sp.context_name, body);
  V3Header h;
  h.msg_id = m.msg_id;
  h.flags = m.flags & (kFlagAuth | kFlagPriv);
  h.engine_id = own_.engine_id;
  h.engine_boots = own_.boots;
  h.engine_time = engine_time(mono_ns);
  h.user = m.user;
  h.auth_size = (h.flags & kFlagAuth) ? mac_size(user.auth) : 0;
  uint8_t salt[8];
  std::vector<uint8_t> cipher;
  std::span<const uint8_t> data = scoped;
  if (h.flags & kFlagPriv) {
    ++salt_;
    for (int i = 0; i < 8; ++i) salt[i] = static_cast<uint8_t>(salt_ >> (56 - 8 * i));
    cipher.resize(scoped.size());
    if (!aes_cfb(user.priv, keys.priv, static_cast<uint32_t>(h.engine_boots),
                 static_cast<uint32_t>(h.engine_time), salt, scoped, cipher.data(), true))
      return {};
    h.priv_params = salt;
    data = cipher;
  }
  std::size_t off = 0;
  auto out = encode_v3(h, data, &off);
  if ((h.flags & kFlagAuth) && off != 0) hmac(user.auth, keys.auth, out, out.data() + off);
  return out;
}

// The request-id for a report, when the PDU can be read without keys.
int64_t Receiver::plain_request_id(const Message& m) const {
  if (m.flags & kFlagPriv) return 0;
  ScopedPdu sp;
  Pdu pdu;
  if (!parse_scoped_pdu(m.scoped_pdu, sp, false).ok() || !parse_pdu(sp.pdu, pdu, 0).ok()) return 0;
  return pdu.request_id;
}

// RFC 3414 3.2 steps 2-6: the user, and for authenticated levels the one configured entry of
// that name (and engine, when pinned) whose keys verify the MAC, so devices may share a name
// with different passwords. On failure `failure` says why.
Receiver::Authenticated Receiver::authenticate(std::span<const uint8_t> data, const Message& m,
                                               int level, LocalKeys& scratch, Drop& failure) {
  const std::string_view name = as_text(m.user);
  failure = Drop::kUnknownUser;
  for (std::size_t i = 0; i < settings_.users.size(); ++i) {
    const User& u = settings_.users[i];
    if (u.name != name || (!u.engine_id.empty() && !same(u.engine_id, m.engine_id))) continue;
    if (u.level() != level) {
      if (failure == Drop::kUnknownUser) failure = Drop::kUnsupportedSecLevel;
      continue;
    }
    if (level == 0) return {&u, i, nullptr};
    failure = Drop::kWrongDigest;
    if (m.auth_params.size() != mac_size(u.auth)) continue;
    LocalKeys* k = keys_for(i, m.engine_id, false, scratch);
    work_.assign(data.begin(), data.end());
    std::fill_n(work_.begin() + static_cast<std::ptrdiff_t>(m.auth_params_offset),
                m.auth_params.size(), 0);
    uint8_t mac[64];
    hmac(u.auth, k->auth, work_, mac);
    if (mac_equal(mac, m.auth_params.data(), m.auth_params.size())) return {&u, i, k};
  }
  return {};
}

// RFC 3414 3.2 step 7, for authenticated messages: within the time window of the authoritative
// engine, ours (an inform) or the sender's as last seen (a trap; older boots or a time more than
// the window behind is a replay).
bool Receiver::timely(const Message& m, bool own, int64_t mono_ns) {
  if (own) {
    const int64_t now = engine_time(mono_ns);
    return own_.boots < kInt32Max && m.engine_boots == own_.boots &&
           std::abs(m.engine_time - now) <= kTimeWindow;
  }
  const EngineEntry* e = find_engine(m.engine_id);
  if (e == nullptr || !e->timed) return true;
  const int64_t estimate = e->time + (mono_ns - e->mono_ns) / 1'000'000'000;
  return !(e->boots >= kInt32Max || m.engine_boots < e->boots ||
           (m.engine_boots == e->boots && m.engine_time + kTimeWindow < estimate));
}

// RFC 3414 3.2 step 8 and RFC 3412 7.2 step 9: the scoped PDU, decrypted at the privacy level.
Drop Receiver::open_scoped_pdu(const Message& m, int level, const Authenticated& a,
                               LocalKeys*& keys, LocalKeys& scratch, ScopedPdu& sp,
                               std::vector<uint8_t>& plain) {
  if (level == 2) {
    keys = keys_for(a.index, m.engine_id, true, scratch);
    plain.resize(m.encrypted.size());
    if (m.priv_params.size() != 8 ||
        !aes_cfb(a.user->priv, keys->priv, static_cast<uint32_t>(m.engine_boots),
                 static_cast<uint32_t>(m.engine_time), m.priv_params, m.encrypted, plain.data(),
                 false) ||
        !parse_scoped_pdu(plain, sp, true).ok())
      return Drop::kDecryptionError;
  } else if (const ParseResult p = parse_scoped_pdu(m.scoped_pdu, sp, false); !p.ok()) {
    return drop_of(p);
  }
  if (const ParseResult p = parse_pdu(sp.pdu, pdu_, settings_.max_varbinds); !p.ok())
    return drop_of(p);
  return Drop::kNone;
}

// The sender's engine, learned from an authenticated trap: its clock, and the keys just computed.
void Receiver::learn_sender(const Message& m, std::size_t user_index, LocalKeys*& keys,
                            LocalKeys& scratch, int64_t mono_ns) {
  const bool known = find_engine(m.engine_id) != nullptr;
  EngineEntry& e = learn(m.engine_id, mono_ns);
  const int64_t estimate = e.timed ? e.time + (mono_ns - e.mono_ns) / 1'000'000'000 : 0;
  if (!e.timed || m.engine_boots > e.boots ||
      (m.engine_boots == e.boots && m.engine_time > estimate)) {
    e.timed = true;
    e.boots = m.engine_boots;
    e.time = m.engine_time;
    e.mono_ns = mono_ns;
  }
  if (!known && keys == &scratch && !e.keys[user_index]) {
    e.keys[user_index] = std::make_unique<LocalKeys>(std::move(scratch));
    keys = e.keys[user_index].get();
  }
}

void Receiver::handle_v3(std::span<const uint8_t> data, const Message& m,
                         const outpost_sockaddr& from, int64_t wall_ns, int64_t mono_ns,
                         Outcome& out) {
  if (m.security_model != kSecurityModelUsm) {
    out.drop = Drop::kUnknownSecurityModel;
    return;
  }
  if ((m.flags & kFlagPriv) && !(m.flags & kFlagAuth)) {  // RFC 3412 7.2 step 5
    out.drop = Drop::kBadFlags;
    return;
  }
  const bool reportable = (m.flags & kFlagReportable) != 0;
  const int level = !(m.flags & kFlagAuth) ? 0 : (m.flags & kFlagPriv) ? 2 : 1;
  const bool own = same(m.engine_id, own_.engine_id);

  if (m.engine_id.empty()) {  // discovery (RFC 3414 4): tell our engine ID, boots and time
    out.drop = Drop::kUnknownEngineId;
    if (reportable)
      report(m, Report::kUnknownEngineId, plain_request_id(m), nullptr, nullptr, mono_ns, out);
    return;
  }

  LocalKeys scratch;
  Drop failure = Drop::kNone;
  const Authenticated a = authenticate(data, m, level, scratch, failure);
  if (a.user == nullptr) {
    out.drop = failure;
    if (reportable) {
      const Report r = failure == Drop::kUnknownUser           ? Report::kUnknownUser
                       : failure == Drop::kUnsupportedSecLevel ? Report::kUnsupportedSecLevel
                                                               : Report::kWrongDigest;
      report(m, r, plain_request_id(m), nullptr, nullptr, mono_ns, out);
    }
    return;
  }
  LocalKeys* keys = a.keys;
  if (level >= 1 && !timely(m, own, mono_ns)) {
    out.drop = Drop::kNotInTimeWindow;
    if (own && reportable)  // only the authoritative engine reports its clock
      report(m, Report::kNotInTimeWindow, plain_request_id(m), a.user, keys, mono_ns, out);
    return;
  }

  ScopedPdu sp;
  std::vector<uint8_t> plain;
  if (const Drop d = open_scoped_pdu(m, level, a, keys, scratch, sp, plain); d != Drop::kNone) {
    out.drop = d;
    if (d == Drop::kDecryptionError && reportable)
      report(m, Report::kDecryptionError, 0, nullptr, nullptr, mono_ns, out);
    return;
  }
  const bool inform = pdu_.type == tag::kInformRequest;
  if (!inform && pdu_.type != tag::kTrapV2) {
    out.drop = Drop::kNotANotification;
    return;
  }
  if (inform && !own) {
    // An inform names its receiver as the authoritative engine; this one is for another engine
    // (or the sender skipped discovery with a wrong -e): tell it ours.
    out.drop = Drop::kUnknownEngineId;
    if (reportable)
      report(m, Report::kUnknownEngineId, pdu_.request_id, nullptr, nullptr, mono_ns, out);
    return;
  }
  if (level >= 1 && !own) learn_sender(m, a.index, keys, scratch, mono_ns);

  Security sec;
  sec.version = 2;
  sec.user = a.user;
  sec.engine_id = m.engine_id;
  sec.context_engine_id = sp.context_engine_id;
  sec.context_name = sp.context_name;
  sec.flags = m.flags;
  if (!notify(sec, pdu_, from, wall_ns, out)) {
    out.drop = Drop::kMissingTrapOid;
    return;
  }
  if (!inform) {
    ++counters_.received[2][0];
    return;
  }
  acknowledge_inform(m, sp, *a.user, keys, from, mono_ns, out);
}

// An inform is answered every time it comes (the sender may not have heard us), stored once.
void Receiver::acknowledge_inform(const Message& m, const ScopedPdu& sp, const User& user,
                                  const LocalKeys* keys, const outpost_sockaddr& from,
                                  int64_t mono_ns, Outcome& out) {
  std::string key = "3|" + std::to_string(pdu_.request_id) + "|";
  key.append(reinterpret_cast<const char*>(from.addr), 16);
  key += std::to_string(from.port) + "|";
  key.append(as_text(m.user));
  if (seen_inform(key, mono_ns)) {
    out.has_event = false;
    out.duplicate = true;
    ++counters_.duplicates;
  } else {
    ++counters_.received[2][1];
  }
  LocalKeys none;
  out.reply = v3_response(m, sp, pdu_, user, keys != nullptr ? *keys : none, mono_ns);
  out.ack = !out.reply.empty();
  if (out.ack) ++counters_.acknowledged[2];
}

bool Receiver::notify(const Security& sec, const Pdu& pdu, const outpost_sockaddr& from,
                      int64_t wall_ns, Outcome& out) {
  const MibMap& mib = settings_.mibs ? *settings_.mibs : *empty_mibs_;
  Oid trap_oid;
  bool has_uptime = false;
  uint32_t uptime = 0;
  std::vector<bool> skip(pdu.varbinds.size(), false);
  if (pdu.type == tag::kTrapV1) {
    // RFC 3584 3.1: generic traps map to snmpTraps.(generic+1), enterprise-specific ones to
    // enterprise.0.specific.
    if (pdu.generic_trap < 6) {
      trap_oid = kSnmpTraps;
      trap_oid.push_back(static_cast<uint32_t>(pdu.generic_trap + 1));
    } else {
      trap_oid = pdu.enterprise;
      trap_oid.push_back(0);
      trap_oid.push_back(static_cast<uint32_t>(pdu.specific_trap));
    }
    has_uptime = true;
    uptime = pdu.time_stamp;
  } else {
    // RFC 3416 4.2.6: sysUpTime.0 and snmpTrapOID.0 come first; found wherever they are.
    for (std::size_t i = 0; i < pdu.varbinds.size(); ++i) {
      const auto& vb = pdu.varbinds[i];
      if (!has_uptime && vb.value.type == Value::Type::kTimeTicks && vb.oid == kSysUpTime0) {
        has_uptime = true;
        uptime = static_cast<uint32_t>(vb.value.number);
        skip[i] = true;
      } else if (trap_oid.empty() && vb.value.type == Value::Type::kOid &&
                 vb.oid == kSnmpTrapOid0) {
        if (auto o = outpost::snmp::parse_oid(vb.value.text)) {
          trap_oid = std::move(*o);
          skip[i] = true;
        }
      }
    }
    if (trap_oid.empty()) return false;
  }

  const Sender s = sender_of(from);
  outpost::Event& ev = out.event;
  ev = outpost::Event{};
  ev.kind = "trap";
  ev.source = s.ip;
  ev.severity = settings_.severity;
  ev.time_ns = wall_ns;
  auto& at = ev.attributes;
  static const char* versions[] = {"1", "2c", "3"};
  at.emplace_back("version", versions[sec.version]);
  at.emplace_back("pdu", pdu.type == tag::kInformRequest ? "inform" : "trap");
  at.emplace_back("sender", s.ip_port);
  TrapView view;
  if (sec.version < 2) {
    at.emplace_back("community", sec.community);
    view.fields["community"] = sec.community;
  } else {
    at.emplace_back("user", sec.user->name);
    at.emplace_back("engine_id", hex(sec.engine_id));
    at.emplace_back("security_level", level_name(sec.flags));
    if (!sec.context_engine_id.empty() && !same(sec.context_engine_id, sec.engine_id))
      at.emplace_back("context_engine_id", hex(sec.context_engine_id));
    if (!sec.context_name.empty())
      at.emplace_back("context_name", std::string(as_text(sec.context_name)));
    view.fields["user"] = sec.user->name;
    view.fields["engine_id"] = hex(sec.engine_id);
  }
  if (pdu.type != tag::kTrapV1) at.emplace_back("request_id", std::to_string(pdu.request_id));
  const std::string trap_name = mib.name(trap_oid);
  at.emplace_back("trap_oid", outpost::snmp::to_string(trap_oid));
  at.emplace_back("trap_name", trap_name);
  if (has_uptime) at.emplace_back("sys_uptime", std::to_string(uptime));
  if (pdu.type == tag::kTrapV1) {
    char agent[16];
    std::snprintf(agent, sizeof agent, "%u.%u.%u.%u", pdu.agent_addr[0], pdu.agent_addr[1],
                  pdu.agent_addr[2], pdu.agent_addr[3]);
    at.emplace_back("enterprise", outpost::snmp::to_string(pdu.enterprise));
    at.emplace_back("agent_addr", agent);
    at.emplace_back("generic_trap", std::to_string(pdu.generic_trap));
    at.emplace_back("specific_trap", std::to_string(pdu.specific_trap));
    view.fields["agent_addr"] = agent;
    view.fields["enterprise"] = mib.name(pdu.enterprise);
  }
  view.fields["version"] = versions[sec.version];
  if (pdu.varbind_count > pdu.varbinds.size())
    at.emplace_back("varbinds_omitted", std::to_string(pdu.varbind_count - pdu.varbinds.size()));

  std::string summary = trap_name;
  view.varbinds.reserve(pdu.varbinds.size());
  for (std::size_t i = 0; i < pdu.varbinds.size(); ++i) {
    if (skip[i]) continue;
    const auto& vb = pdu.varbinds[i];
    std::size_t label_arcs = 0;
    const MibMap::Node* node = mib.lookup(vb.oid, &label_arcs);
    Rendered r = render(vb, node, mib, settings_.max_value_length);
    std::string name = MibMap::spell(node, label_arcs, vb.oid, true);
    if (summary.size() < kMaxSummary) {
      summary += ' ';
      summary += MibMap::spell(node, label_arcs, vb.oid, false);
      summary += '=';
      summary += r.text;
      if (summary.size() > kMaxSummary) limit(summary, kMaxSummary);
    }
    // Two varbinds of one OID keep both: the second key gets "#2".
    std::string key = name;
    for (int n = 2;
         std::any_of(at.begin(), at.end(), [&key](const auto& kv) { return kv.first == key; }); ++n)
      key = name + "#" + std::to_string(n);
    at.emplace_back(std::move(key), std::move(r.typed));
    VarbindView vv;
    vv.oid = &vb.oid;
    vv.name = std::move(name);
    vv.label = node != nullptr ? node->label : "";
    vv.text = std::move(r.text);
    vv.alt = std::move(r.alt);
    view.varbinds.push_back(std::move(vv));
  }
  ev.message = summary;

  view.trap_oid = &trap_oid;
  view.trap_name = trap_name;
  view.sender = s.addr;
  view.family = s.family;
  view.source = s.ip;
  view.summary = summary;
  for (std::size_t i = 0; i < settings_.rules.size(); ++i) {
    const Rule& rule = settings_.rules[i];
    if (!rule.matches(view)) continue;
    ev.kind = "alert";
    ev.severity = rule.severity;
    ev.message = rule.render(view);
    at.emplace_back("rule", rule.name);
    ++counters_.alerts[i];
    break;
  }
  out.has_event = true;
  return true;
}

}  // namespace outpost::snmp_trap
