#include "message.hpp"

namespace outpost::snmp_trap {
namespace {

using ber::Reader;
using ber::Status;
using ber::Tlv;

constexpr int64_t kInt32Max = 2147483647;

ParseResult fail(Status s) { return ParseResult{Shape::kBer, s}; }
ParseResult bad(Shape s) { return ParseResult{s, Status::kOk}; }

// Reads an INTEGER and checks it lies in [lo, hi].
ParseResult read_ranged(Reader& r, int64_t lo, int64_t hi, int64_t& out) {
  if (const Status s = r.read_int(out); s != Status::kOk) return fail(s);
  if (out < lo || out > hi) return bad(Shape::kBadField);
  return {};
}

ParseResult parse_usm(std::span<const uint8_t> sec_params, std::size_t origin, Message& m) {
  Reader outer(sec_params, origin);
  Tlv seq;
  if (const Status s = outer.expect(ber::tag::kSequence, seq); s != Status::kOk) return fail(s);
  if (!outer.at_end()) return fail(Status::kTrailing);
  Reader r = Reader::enter(seq);
  if (const Status s = r.read_octets(m.engine_id); s != Status::kOk) return fail(s);
  // RFC 3411 SnmpEngineID is 5 to 32 octets; an empty one asks for discovery (RFC 3414 4).
  if (m.engine_id.size() > 32) return bad(Shape::kBadField);
  if (auto p = read_ranged(r, 0, kInt32Max, m.engine_boots); !p.ok()) return p;
  if (auto p = read_ranged(r, 0, kInt32Max, m.engine_time); !p.ok()) return p;
  if (const Status s = r.read_octets(m.user); s != Status::kOk) return fail(s);
  if (m.user.size() > 32) return bad(Shape::kBadField);
  Tlv auth;
  if (const Status s = r.read_octets(m.auth_params, &auth); s != Status::kOk) return fail(s);
  m.auth_params_offset = auth.value_offset;
  if (const Status s = r.read_octets(m.priv_params); s != Status::kOk) return fail(s);
  if (!r.at_end()) return fail(Status::kTrailing);
  return {};
}

}  // namespace

ParseResult parse_message(std::span<const uint8_t> data, Message& m) {
  m = Message{};
  Reader top(data);
  Tlv msg;
  if (const Status s = top.expect(ber::tag::kSequence, msg); s != Status::kOk) return fail(s);
  if (!top.at_end()) return fail(Status::kTrailing);
  Reader r = Reader::enter(msg);
  if (const Status s = r.read_int(m.version); s != Status::kOk) return fail(s);
  if (m.version == kVersion1 || m.version == kVersion2c) {
    if (const Status s = r.read_octets(m.community); s != Status::kOk) return fail(s);
    Tlv pdu;
    if (const Status s = r.next(pdu); s != Status::kOk) return fail(s);
    if (!r.at_end()) return fail(Status::kTrailing);
    m.pdu = data.subspan(pdu.offset, pdu.size());
    return {};
  }
  if (m.version != kVersion3) return bad(Shape::kBadVersion);

  Tlv global;
  if (const Status s = r.expect(ber::tag::kSequence, global); s != Status::kOk) return fail(s);
  Reader g = Reader::enter(global);
  if (auto p = read_ranged(g, 0, kInt32Max, m.msg_id); !p.ok()) return p;
  if (auto p = read_ranged(g, 484, kInt32Max, m.max_size); !p.ok()) return p;
  std::span<const uint8_t> flags;
  if (const Status s = g.read_octets(flags); s != Status::kOk) return fail(s);
  if (flags.size() != 1) return bad(Shape::kBadField);
  m.flags = flags[0];
  if (auto p = read_ranged(g, 1, kInt32Max, m.security_model); !p.ok()) return p;
  if (!g.at_end()) return fail(Status::kTrailing);

  Tlv sec;
  if (const Status s = r.expect(ber::tag::kOctetString, sec); s != Status::kOk) return fail(s);
  if (m.security_model == kSecurityModelUsm) {
    if (auto p = parse_usm(sec.value, sec.value_offset, m); !p.ok()) return p;
  }
  Tlv body;
  if (const Status s = r.next(body); s != Status::kOk) return fail(s);
  if (!r.at_end()) return fail(Status::kTrailing);
  if (m.flags & kFlagPriv) {
    if (body.tag != ber::tag::kOctetString) return fail(Status::kUnexpectedTag);
    m.encrypted = body.value;
  } else {
    if (body.tag != ber::tag::kSequence) return fail(Status::kUnexpectedTag);
    m.scoped_pdu = data.subspan(body.offset, body.size());
  }
  return {};
}

ParseResult parse_scoped_pdu(std::span<const uint8_t> data, ScopedPdu& out, bool allow_trailing) {
  out = ScopedPdu{};
  Reader top(data);
  Tlv seq;
  if (const Status s = top.expect(ber::tag::kSequence, seq); s != Status::kOk) return fail(s);
  if (!allow_trailing && !top.at_end()) return fail(Status::kTrailing);
  Reader r = Reader::enter(seq);
  if (const Status s = r.read_octets(out.context_engine_id); s != Status::kOk) return fail(s);
  if (const Status s = r.read_octets(out.context_name); s != Status::kOk) return fail(s);
  Tlv pdu;
  if (const Status s = r.next(pdu); s != Status::kOk) return fail(s);
  if (!r.at_end()) return fail(Status::kTrailing);
  // Offsets are relative to `data` here (the reader started at 0).
  out.pdu = data.subspan(pdu.offset, pdu.size());
  return {};
}

ParseResult parse_pdu(std::span<const uint8_t> data, Pdu& out, std::size_t max_varbinds) {
  out.type = 0;
  out.request_id = out.error_status = out.error_index = 0;
  out.varbind_list = {};
  out.varbind_count = 0;
  out.varbinds.clear();
  out.enterprise.clear();
  out.agent_addr = {};
  out.generic_trap = out.specific_trap = 0;
  out.time_stamp = 0;

  Reader top(data);
  Tlv pdu;
  if (const Status s = top.next(pdu); s != Status::kOk) return fail(s);
  if (!top.at_end()) return fail(Status::kTrailing);
  // Every PDU is context-specific and constructed: 0xA0..0xA8.
  if (pdu.tag < ber::tag::kGetRequest || pdu.tag > ber::tag::kReport)
    return fail(Status::kUnexpectedTag);
  out.type = pdu.tag;
  Reader r = Reader::enter(pdu);
  if (pdu.tag == ber::tag::kTrapV1) {
    if (const Status s = r.read_oid(out.enterprise); s != Status::kOk) return fail(s);
    std::span<const uint8_t> addr;
    Tlv a;
    if (const Status s = r.expect(ber::tag::kIpAddress, a); s != Status::kOk) return fail(s);
    addr = a.value;
    if (addr.size() != 4) return bad(Shape::kBadField);
    for (std::size_t i = 0; i < 4; ++i) out.agent_addr[i] = addr[i];
    if (auto p = read_ranged(r, 0, 6, out.generic_trap); !p.ok()) return p;
    if (auto p = read_ranged(r, 0, kInt32Max, out.specific_trap); !p.ok()) return p;
    Tlv ts;
    if (const Status s = r.expect(ber::tag::kTimeTicks, ts); s != Status::kOk) return fail(s);
    uint64_t ticks = 0;
    if (const Status s = ber::decode_unsigned(ts.value, 4, ticks); s != Status::kOk) return fail(s);
    out.time_stamp = static_cast<uint32_t>(ticks);
  } else {
    if (auto p = read_ranged(r, -kInt32Max - 1, kInt32Max, out.request_id); !p.ok()) return p;
    // GetBulk's non-repeaters and max-repetitions sit here too: any Integer32.
    if (auto p = read_ranged(r, -kInt32Max - 1, kInt32Max, out.error_status); !p.ok()) return p;
    if (auto p = read_ranged(r, -kInt32Max - 1, kInt32Max, out.error_index); !p.ok()) return p;
  }
  Tlv list;
  if (const Status s = r.expect(ber::tag::kSequence, list); s != Status::kOk) return fail(s);
  if (!r.at_end()) return fail(Status::kTrailing);
  out.varbind_list = list.value;
  Reader vr(list.value);
  VarBind scratch;
  while (!vr.at_end()) {
    Tlv vb;
    if (const Status s = vr.expect(ber::tag::kSequence, vb); s != Status::kOk) return fail(s);
    Reader one = Reader::enter(vb);
    VarBind& dst = out.varbinds.size() < max_varbinds ? out.varbinds.emplace_back() : scratch;
    if (const Status s = one.read_oid(dst.oid); s != Status::kOk) return fail(s);
    Tlv value;
    if (const Status s = one.next(value); s != Status::kOk) return fail(s);
    if (const Status s = ber::decode_value(value, dst.value); s != Status::kOk) return fail(s);
    if (!one.at_end()) return fail(Status::kTrailing);
    ++out.varbind_count;
  }
  return {};
}

std::vector<uint8_t> encode_pdu(uint8_t type, int64_t request_id, int64_t error_status,
                                int64_t error_index, std::span<const uint8_t> varbind_list) {
  std::vector<uint8_t> c;
  c.reserve(varbind_list.size() + 24);
  ber::put_int(c, request_id);
  ber::put_int(c, error_status);
  ber::put_int(c, error_index);
  ber::put_tlv(c, ber::tag::kSequence, varbind_list);
  std::vector<uint8_t> out;
  out.reserve(c.size() + 6);
  ber::put_tlv(out, type, c);
  return out;
}

void append_varbind_counter32(std::vector<uint8_t>& list, const Oid& oid, uint32_t value) {
  std::vector<uint8_t> c;
  ber::put_oid(c, oid);
  ber::put_unsigned(c, value, ber::tag::kCounter32);
  ber::put_tlv(list, ber::tag::kSequence, c);
}

std::vector<uint8_t> encode_community_message(int64_t version, std::span<const uint8_t> community,
                                              std::span<const uint8_t> pdu) {
  std::vector<uint8_t> c;
  c.reserve(pdu.size() + community.size() + 8);
  ber::put_int(c, version);
  ber::put_octets(c, community);
  c.insert(c.end(), pdu.begin(), pdu.end());
  std::vector<uint8_t> out;
  out.reserve(c.size() + 6);
  ber::put_tlv(out, ber::tag::kSequence, c);
  return out;
}

std::vector<uint8_t> encode_scoped_pdu(std::span<const uint8_t> context_engine_id,
                                       std::span<const uint8_t> context_name,
                                       std::span<const uint8_t> pdu) {
  std::vector<uint8_t> c;
  c.reserve(pdu.size() + context_engine_id.size() + context_name.size() + 8);
  ber::put_octets(c, context_engine_id);
  ber::put_octets(c, context_name);
  c.insert(c.end(), pdu.begin(), pdu.end());
  std::vector<uint8_t> out;
  ber::put_tlv(out, ber::tag::kSequence, c);
  return out;
}

std::vector<uint8_t> encode_v3(const V3Header& h, std::span<const uint8_t> msg_data,
                               std::size_t* auth_offset) {
  std::vector<uint8_t> global;
  ber::put_int(global, h.msg_id);
  ber::put_int(global, h.max_size);
  const uint8_t flags[1] = {h.flags};
  ber::put_octets(global, flags);
  ber::put_int(global, kSecurityModelUsm);

  std::vector<uint8_t> usm;
  ber::put_octets(usm, h.engine_id);
  ber::put_int(usm, h.engine_boots);
  ber::put_int(usm, h.engine_time);
  ber::put_octets(usm, h.user);
  const std::vector<uint8_t> zeros(h.auth_size, 0);
  ber::put_octets(usm, zeros);
  ber::put_octets(usm, h.priv_params);
  std::vector<uint8_t> usm_seq;
  ber::put_tlv(usm_seq, ber::tag::kSequence, usm);

  std::vector<uint8_t> c;
  ber::put_int(c, kVersion3);
  ber::put_tlv(c, ber::tag::kSequence, global);
  ber::put_octets(c, usm_seq);
  if (h.flags & kFlagPriv)
    ber::put_octets(c, msg_data);
  else
    c.insert(c.end(), msg_data.begin(), msg_data.end());
  std::vector<uint8_t> out;
  out.reserve(c.size() + 6);
  ber::put_tlv(out, ber::tag::kSequence, c);
  if (auth_offset != nullptr) {
    // Found again by parsing: the wrapping above shifted every offset by its headers.
    Message m;
    *auth_offset = parse_message(out, m).ok() ? m.auth_params_offset : 0;
  }
  return out;
}

}  // namespace outpost::snmp_trap
