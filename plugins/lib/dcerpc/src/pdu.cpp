// UUIDs and the connection-oriented PDUs of C706 12.6 with MS-RPCE 2.2.2: encoding, decoding,
// and cutting them out of a byte stream.
#include <algorithm>
#include <cstdio>
#include <outpost_lib/dcerpc.hpp>

#include "wire.hpp"

namespace outpost::lib::dcerpc {

namespace {

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

constexpr uint8_t kVersion = 5, kVersionMinor = 0;
constexpr uint8_t kDrepLittleEndianAscii = 0x10;

bool has_stub(PduType t) {
  return t == PduType::request || t == PduType::response || t == PduType::fault;
}

std::string type_text(uint8_t t) { return "PDU type " + std::to_string(t); }

}  // namespace

Uuid Uuid::parse(std::string_view text) {
  static constexpr std::array<std::size_t, 4> kDashes{8, 13, 18, 23};
  if (text.size() != 36) throw Error(Status::protocol, 0, "not a UUID (length)");
  Uuid u;
  std::size_t n = 0;
  for (std::size_t i = 0; i < text.size();) {
    if (std::find(kDashes.begin(), kDashes.end(), i) != kDashes.end()) {
      if (text[i] != '-') throw Error(Status::protocol, 0, "not a UUID (dashes)");
      ++i;
      continue;
    }
    const int hi = hex_value(text[i]), lo = hex_value(text[i + 1]);
    if (hi < 0 || lo < 0) throw Error(Status::protocol, 0, "not a UUID (hex digits)");
    u.bytes[n++] = static_cast<uint8_t>(hi << 4 | lo);
    i += 2;
  }
  return u;
}

std::string Uuid::to_string() const {
  std::string s;
  static constexpr char kHex[] = "0123456789abcdef";
  for (std::size_t i = 0; i < 16; ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) s += '-';
    s += kHex[bytes[i] >> 4];
    s += kHex[bytes[i] & 15];
  }
  return s;
}

std::array<uint8_t, 16> Uuid::to_wire() const {
  std::array<uint8_t, 16> w = bytes;
  std::reverse(w.begin(), w.begin() + 4);
  std::reverse(w.begin() + 4, w.begin() + 6);
  std::reverse(w.begin() + 6, w.begin() + 8);
  return w;
}

Uuid Uuid::from_wire(std::span<const uint8_t, 16> wire) {
  Uuid u;
  std::copy(wire.begin(), wire.end(), u.bytes.begin());
  u.bytes = u.to_wire();  // the same three swaps undo themselves
  return u;
}

SyntaxId ndr_syntax() { return {Uuid::parse("8a885d04-1ceb-11c9-9fe8-08002b104860"), 2, 0}; }

std::vector<uint8_t> encode(const Pdu& pdu) {
  wire::Writer w;
  w.u8(kVersion);
  w.u8(kVersionMinor);
  w.u8(static_cast<uint8_t>(pdu.type));
  uint8_t flags = pdu.flags;
  if (const auto* r = std::get_if<Request>(&pdu.body)) {
    flags = static_cast<uint8_t>(r->object ? flags | kObjectUuid : flags & ~kObjectUuid);
  }
  w.u8(flags);
  w.bytes(std::array<uint8_t, 4>{kDrepLittleEndianAscii, 0, 0, 0});
  w.u16(0);  // frag_length, set below
  w.u16(0);  // auth_length, set below
  w.u32(pdu.call_id);

  auto wrong_body = [&] {
    throw Error(Status::protocol, 0,
                "cannot encode: body does not match " + type_text(static_cast<uint8_t>(pdu.type)));
  };
  switch (pdu.type) {
    case PduType::bind:
    case PduType::alter_context: {
      const auto* b = std::get_if<Bind>(&pdu.body);
      if (!b) wrong_body();
      w.u16(b->max_xmit_frag);
      w.u16(b->max_recv_frag);
      w.u32(b->assoc_group_id);
      w.u8(static_cast<uint8_t>(b->contexts.size()));
      w.u8(0);
      w.u16(0);
      for (const auto& c : b->contexts) {
        w.u16(c.context_id);
        w.u8(static_cast<uint8_t>(c.transfer_syntaxes.size()));
        w.u8(0);
        w.syntax(c.abstract_syntax);
        for (const auto& t : c.transfer_syntaxes) w.syntax(t);
      }
      break;
    }
    case PduType::bind_ack:
    case PduType::alter_context_resp: {
      const auto* b = std::get_if<BindAck>(&pdu.body);
      if (!b) wrong_body();
      w.u16(b->max_xmit_frag);
      w.u16(b->max_recv_frag);
      w.u32(b->assoc_group_id);
      if (b->secondary_address.empty()) {
        w.u16(0);
      } else {
        w.u16(static_cast<uint16_t>(b->secondary_address.size() + 1));
        w.bytes({reinterpret_cast<const uint8_t*>(b->secondary_address.data()),
                 b->secondary_address.size()});
        w.u8(0);
      }
      w.align(4);
      w.u8(static_cast<uint8_t>(b->results.size()));
      w.u8(0);
      w.u16(0);
      for (const auto& r : b->results) {
        w.u16(r.result);
        w.u16(r.reason);
        w.syntax(r.transfer_syntax);
      }
      break;
    }
    case PduType::bind_nak: {
      const auto* b = std::get_if<BindNak>(&pdu.body);
      if (!b) wrong_body();
      w.u16(b->reason);
      w.u8(static_cast<uint8_t>(b->versions.size()));
      for (const auto& v : b->versions) w.bytes(v);
      break;
    }
    case PduType::request: {
      const auto* r = std::get_if<Request>(&pdu.body);
      if (!r) wrong_body();
      w.u32(r->alloc_hint);
      w.u16(r->context_id);
      w.u16(r->opnum);
      if (r->object) w.bytes(r->object->to_wire());
      break;
    }
    case PduType::response: {
      const auto* r = std::get_if<Response>(&pdu.body);
      if (!r) wrong_body();
      w.u32(r->alloc_hint);
      w.u16(r->context_id);
      w.u8(r->cancel_count);
      w.u8(0);
      break;
    }
    case PduType::fault: {
      const auto* f = std::get_if<Fault>(&pdu.body);
      if (!f) wrong_body();
      w.u32(f->alloc_hint);
      w.u16(f->context_id);
      w.u8(f->cancel_count);
      w.u8(0);
      w.u32(f->status);
      w.u32(0);
      break;
    }
    case PduType::auth3:
      if (!std::holds_alternative<Auth3>(pdu.body)) wrong_body();
      w.u32(0);
      break;
    default:
      if (!std::holds_alternative<Other>(pdu.body)) wrong_body();
      break;
  }
  if (has_stub(pdu.type)) w.bytes(pdu.stub);
  if (pdu.auth) {
    // The sec_trailer starts 4-aligned; padding added here is counted in auth_pad_length.
    const std::size_t extra = (4 - w.out.size() % 4) % 4;
    w.align(4);
    const std::size_t pad = pdu.auth->pad_length + extra;
    if (pad > 255) throw Error(Status::protocol, 0, "cannot encode: auth padding above 255");
    w.u8(pdu.auth->type);
    w.u8(pdu.auth->level);
    w.u8(static_cast<uint8_t>(pad));
    w.u8(0);
    w.u32(pdu.auth->context_id);
    w.bytes(pdu.auth->value);
    if (pdu.auth->value.size() > 0xffff) throw Error(Status::protocol, 0, "auth value too long");
    w.put_u16(10, static_cast<uint16_t>(pdu.auth->value.size()));
  }
  if (w.out.size() > 0xffff)
    throw Error(Status::protocol, 0, "cannot encode: PDU above 65535 bytes");
  w.put_u16(8, static_cast<uint16_t>(w.out.size()));
  return std::move(w.out);
}

Pdu decode(std::span<const uint8_t> bytes) {
  if (bytes.size() < kHeaderSize) wire::malformed("PDU shorter than its header");
  if (bytes[0] != kVersion || bytes[1] != kVersionMinor) {
    wire::malformed("RPC version " + std::to_string(bytes[0]) + "." + std::to_string(bytes[1]) +
                    ", not 5.0");
  }
  if ((bytes[4] & 0xf0) != kDrepLittleEndianAscii || (bytes[4] & 0x0f) != 0 || bytes[5] != 0) {
    wire::malformed("data representation other than little-endian ASCII IEEE");
  }
  wire::Cursor h{bytes, 8, "header"};
  const uint16_t frag_length = h.u16();
  const uint16_t auth_length = h.u16();
  Pdu pdu;
  pdu.type = static_cast<PduType>(bytes[2]);
  pdu.flags = bytes[3];
  pdu.call_id = h.u32();
  if (frag_length != bytes.size()) {
    wire::malformed("frag_length " + std::to_string(frag_length) + " but " +
                    std::to_string(bytes.size()) + " bytes");
  }
  std::size_t body_end = bytes.size();
  if (auth_length > 0) {
    if (bytes.size() < kHeaderSize + kSecTrailerSize + auth_length) {
      wire::malformed("auth_length " + std::to_string(auth_length) + " beyond the PDU");
    }
    body_end = bytes.size() - auth_length - kSecTrailerSize;
    wire::Cursor t{bytes, body_end, "sec_trailer"};
    AuthVerifier a;
    a.type = t.u8();
    a.level = t.u8();
    a.pad_length = t.u8();
    (void)t.u8();
    a.context_id = t.u32();
    const auto v = t.take(auth_length);
    a.value.assign(v.begin(), v.end());
    pdu.auth = std::move(a);
  }
  wire::Cursor c{bytes.first(body_end), kHeaderSize, "PDU body"};
  switch (pdu.type) {
    case PduType::bind:
    case PduType::alter_context: {
      c.what = "bind";
      Bind b;
      b.max_xmit_frag = c.u16();
      b.max_recv_frag = c.u16();
      b.assoc_group_id = c.u32();
      const uint8_t n = c.u8();
      c.skip(3);
      for (uint8_t i = 0; i < n; ++i) {
        ContextElement e;
        e.context_id = c.u16();
        const uint8_t nt = c.u8();
        c.skip(1);
        e.abstract_syntax = c.syntax();
        for (uint8_t j = 0; j < nt; ++j) e.transfer_syntaxes.push_back(c.syntax());
        b.contexts.push_back(std::move(e));
      }
      pdu.body = std::move(b);
      break;
    }
    case PduType::bind_ack:
    case PduType::alter_context_resp: {
      c.what = "bind_ack";
      BindAck b;
      b.max_xmit_frag = c.u16();
      b.max_recv_frag = c.u16();
      b.assoc_group_id = c.u32();
      const uint16_t len = c.u16();
      const auto addr = c.take(len);
      b.secondary_address.assign(addr.begin(), addr.end());
      while (!b.secondary_address.empty() && b.secondary_address.back() == '\0') {
        b.secondary_address.pop_back();
      }
      c.align(4);
      const uint8_t n = c.u8();
      c.skip(3);
      for (uint8_t i = 0; i < n; ++i) {
        ContextResult r;
        r.result = c.u16();
        r.reason = c.u16();
        r.transfer_syntax = c.syntax();
        b.results.push_back(r);
      }
      pdu.body = std::move(b);
      break;
    }
    case PduType::bind_nak: {
      c.what = "bind_nak";
      BindNak b;
      b.reason = c.u16();
      if (c.left() > 0) {  // the version list is optional in practice
        const uint8_t n = c.u8();
        for (uint8_t i = 0; i < n; ++i) b.versions.push_back({c.u8(), c.u8()});
      }
      pdu.body = std::move(b);
      break;
    }
    case PduType::request: {
      c.what = "request";
      Request r;
      r.alloc_hint = c.u32();
      r.context_id = c.u16();
      r.opnum = c.u16();
      if (pdu.flags & kObjectUuid) r.object = Uuid::from_wire(c.take(16).first<16>());
      pdu.body = r;
      break;
    }
    case PduType::response: {
      c.what = "response";
      Response r;
      r.alloc_hint = c.u32();
      r.context_id = c.u16();
      r.cancel_count = c.u8();
      c.skip(1);
      pdu.body = r;
      break;
    }
    case PduType::fault: {
      c.what = "fault";
      Fault f;
      f.alloc_hint = c.u32();
      f.context_id = c.u16();
      f.cancel_count = c.u8();
      c.skip(1);
      f.status = c.u32();
      c.skip(std::min<std::size_t>(4, c.left()));  // reserved; absent in some old stacks
      pdu.body = f;
      break;
    }
    case PduType::auth3:
      c.what = "auth3";
      c.skip(std::min<std::size_t>(4, c.left()));
      pdu.body = Auth3{};
      break;
    case PduType::shutdown:
    case PduType::co_cancel:
    case PduType::orphaned:
      pdu.body = Other{};
      break;
    default:
      wire::malformed(type_text(bytes[2]) + " is not connection-oriented");
  }
  if (has_stub(pdu.type)) {
    const auto s = c.take(c.left());
    pdu.stub.assign(s.begin(), s.end());
  }
  if (pdu.auth && has_stub(pdu.type) && pdu.auth->pad_length > pdu.stub.size()) {
    wire::malformed("auth_pad_length beyond the stub");
  }
  return pdu;
}

void Reader::feed(std::span<const uint8_t> bytes) {
  if (at_ > 0 && at_ == buf_.size()) {
    buf_.clear();
    at_ = 0;
  } else if (at_ > 65536) {
    buf_.erase(buf_.begin(), buf_.begin() + static_cast<std::ptrdiff_t>(at_));
    at_ = 0;
  }
  buf_.insert(buf_.end(), bytes.begin(), bytes.end());
}

std::optional<std::vector<uint8_t>> Reader::next() {
  if (buffered() < kHeaderSize) return std::nullopt;
  const uint8_t* p = buf_.data() + at_;
  if (p[0] != kVersion || p[1] != kVersionMinor) {
    wire::malformed("stream is not DCE/RPC 5.0 (version " + std::to_string(p[0]) + "." +
                    std::to_string(p[1]) + ")");
  }
  if ((p[4] & 0xf0) != kDrepLittleEndianAscii) wire::malformed("big-endian data representation");
  const std::size_t frag = static_cast<std::size_t>(p[8] | p[9] << 8);
  if (frag < kHeaderSize || frag > max_) {
    wire::malformed("frag_length " + std::to_string(frag) + " out of range");
  }
  if (buffered() < frag) return std::nullopt;
  std::vector<uint8_t> pdu(p, p + frag);
  at_ += frag;
  return pdu;
}

}  // namespace outpost::lib::dcerpc
