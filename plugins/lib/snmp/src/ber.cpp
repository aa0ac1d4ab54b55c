#include "snmp/ber.hpp"

#include <cstdio>
#include <string>

namespace outpost::snmp::ber {

std::string_view status_name(Status s) noexcept {
  switch (s) {
    case Status::kOk:
      return "ok";
    case Status::kTruncated:
      return "truncated";
    case Status::kBadLength:
      return "bad_length";
    case Status::kBadTag:
      return "bad_tag";
    case Status::kUnexpectedTag:
      return "unexpected_tag";
    case Status::kBadInteger:
      return "bad_integer";
    case Status::kBadOid:
      return "bad_oid";
    case Status::kTrailing:
      return "trailing_bytes";
  }
  return "unknown";
}

Status Reader::next(Tlv& out) noexcept {
  const std::size_t n = data_.size();
  std::size_t p = pos_;
  if (p >= n) return Status::kTruncated;
  const uint8_t t = data_[p++];
  if ((t & 0x1F) == 0x1F) return Status::kBadTag;
  if (p >= n) return Status::kTruncated;
  std::size_t len = data_[p++];
  if (len & 0x80) {
    const std::size_t k = len & 0x7F;
    // 0x80 is the indefinite form (not allowed in SNMP); 0xFF is reserved.
    if (k == 0 || k > 4) return Status::kBadLength;
    if (n - p < k) return Status::kTruncated;
    len = 0;
    for (std::size_t i = 0; i < k; ++i) len = (len << 8) | data_[p++];
  }
  if (len > n - p) return Status::kTruncated;
  out.tag = t;
  out.offset = origin_ + pos_;
  out.value_offset = origin_ + p;
  out.value = data_.subspan(p, len);
  pos_ = p + len;
  return Status::kOk;
}

Status Reader::expect(uint8_t expected, Tlv& out) noexcept {
  const std::size_t saved = pos_;
  const Status s = next(out);
  if (s != Status::kOk) return s;
  if (out.tag != expected) {
    pos_ = saved;
    return Status::kUnexpectedTag;
  }
  return Status::kOk;
}

Status Reader::read_int(int64_t& out) noexcept {
  Tlv t;
  if (const Status s = expect(tag::kInteger, t); s != Status::kOk) return s;
  return decode_int(t.value, out);
}

Status Reader::read_octets(std::span<const uint8_t>& out, Tlv* tlv) noexcept {
  Tlv t;
  if (const Status s = expect(tag::kOctetString, t); s != Status::kOk) return s;
  out = t.value;
  if (tlv != nullptr) *tlv = t;
  return Status::kOk;
}

Status Reader::read_oid(Oid& out) {
  Tlv t;
  if (const Status s = expect(tag::kObjectId, t); s != Status::kOk) return s;
  return decode_oid(t.value, out);
}

Status Reader::read_null() noexcept {
  Tlv t;
  if (const Status s = expect(tag::kNull, t); s != Status::kOk) return s;
  return t.value.empty() ? Status::kOk : Status::kBadLength;
}

Status decode_int(std::span<const uint8_t> v, int64_t& out) noexcept {
  if (v.empty() || v.size() > 8) return Status::kBadInteger;
  uint64_t u = (v[0] & 0x80) ? ~uint64_t{0} : 0;  // sign extension
  for (const uint8_t b : v) u = (u << 8) | b;
  out = static_cast<int64_t>(u);
  return Status::kOk;
}

Status decode_unsigned(std::span<const uint8_t> v, unsigned bytes, uint64_t& out) noexcept {
  if (v.empty()) return Status::kBadInteger;
  if (v.size() == bytes + 1u) {
    if (v[0] != 0) return Status::kBadInteger;
    v = v.subspan(1);
  } else if (v.size() > bytes) {
    return Status::kBadInteger;
  }
  uint64_t u = 0;
  for (const uint8_t b : v) u = (u << 8) | b;
  out = u;
  return Status::kOk;
}

Status decode_oid(std::span<const uint8_t> v, Oid& out) {
  out.clear();
  if (v.empty()) return Status::kBadOid;
  uint64_t acc = 0;
  unsigned bytes = 0;
  for (std::size_t i = 0; i < v.size(); ++i) {
    const uint8_t b = v[i];
    if (bytes == 0 && b == 0x80) return Status::kBadOid;  // non-minimal sub-identifier
    acc = (acc << 7) | (b & 0x7F);
    if (++bytes > 5 || acc > 0xFFFFFFFFull) return Status::kBadOid;
    if (b & 0x80) continue;
    if (out.empty()) {  // the first sub-identifier holds two arcs: X*40+Y
      const uint32_t first = acc < 40 ? 0u : acc < 80 ? 1u : 2u;
      out.push_back(first);
      out.push_back(static_cast<uint32_t>(acc - uint64_t{first} * 40u));
    } else {
      if (out.size() >= 128) return Status::kBadOid;  // RFC 2578's limit
      out.push_back(static_cast<uint32_t>(acc));
    }
    acc = 0;
    bytes = 0;
  }
  return bytes == 0 ? Status::kOk : Status::kBadOid;
}

std::string hex(std::span<const uint8_t> v) {
  static const char* digits = "0123456789abcdef";
  std::string s;
  s.reserve(v.size() * 2);
  for (const uint8_t b : v) {
    s += digits[b >> 4];
    s += digits[b & 0xF];
  }
  return s;
}

Status decode_value(const Tlv& t, Value& out) {
  out = Value{};
  uint64_t u = 0;
  switch (t.tag) {
    case tag::kInteger: {
      int64_t i = 0;
      if (const Status s = decode_int(t.value, i); s != Status::kOk) return s;
      // Integer32; longer encodings are tolerated but the value must fit.
      if (i < INT32_MIN || i > INT32_MAX) return Status::kBadInteger;
      out.type = Value::Type::kInteger;
      out.number = static_cast<double>(i);
      return Status::kOk;
    }
    case tag::kCounter32:
    case tag::kGauge32:
    case tag::kUInteger32:
    case tag::kTimeTicks:
      if (const Status s = decode_unsigned(t.value, 4, u); s != Status::kOk) return s;
      out.type = t.tag == tag::kCounter32   ? Value::Type::kCounter32
                 : t.tag == tag::kTimeTicks ? Value::Type::kTimeTicks
                                            : Value::Type::kUnsigned;
      out.number = static_cast<double>(u);
      return Status::kOk;
    case tag::kCounter64:
      if (const Status s = decode_unsigned(t.value, 8, u); s != Status::kOk) return s;
      out.type = Value::Type::kCounter64;
      out.number = static_cast<double>(u);
      out.text = std::to_string(u);
      return Status::kOk;
    case tag::kOctetString:
      out.type = Value::Type::kOctets;
      out.text.assign(reinterpret_cast<const char*>(t.value.data()), t.value.size());
      return Status::kOk;
    case tag::kObjectId: {
      Oid oid;
      if (const Status s = decode_oid(t.value, oid); s != Status::kOk) return s;
      out.type = Value::Type::kOid;
      out.text = to_string(oid);
      return Status::kOk;
    }
    case tag::kIpAddress: {
      if (t.value.size() != 4) return Status::kBadLength;
      char buf[16];
      std::snprintf(buf, sizeof buf, "%u.%u.%u.%u", t.value[0], t.value[1], t.value[2], t.value[3]);
      out.type = Value::Type::kIpAddress;
      out.text = buf;
      return Status::kOk;
    }
    case tag::kNull:
      if (!t.value.empty()) return Status::kBadLength;
      out.type = Value::Type::kNull;
      return Status::kOk;
    case tag::kNoSuchObject:
    case tag::kNoSuchInstance:
    case tag::kEndOfMibView:
      if (!t.value.empty()) return Status::kBadLength;
      out.type = t.tag == tag::kNoSuchObject     ? Value::Type::kNoSuchObject
                 : t.tag == tag::kNoSuchInstance ? Value::Type::kNoSuchInstance
                                                 : Value::Type::kEndOfMibView;
      return Status::kOk;
    default:
      // Constructed values have no place in a varbind.
      if (t.tag & 0x20) return Status::kUnexpectedTag;
      out.type = Value::Type::kOther;
      out.text = hex(t.value);
      return Status::kOk;
  }
}

void put_length(std::vector<uint8_t>& out, std::size_t len) {
  if (len < 0x80) {
    out.push_back(static_cast<uint8_t>(len));
    return;
  }
  uint8_t buf[8];
  int n = 0;
  for (std::size_t l = len; l != 0; l >>= 8) buf[n++] = static_cast<uint8_t>(l & 0xFF);
  out.push_back(static_cast<uint8_t>(0x80 | n));
  while (n > 0) out.push_back(buf[--n]);
}

void put_tlv(std::vector<uint8_t>& out, uint8_t t, std::span<const uint8_t> content) {
  out.push_back(t);
  put_length(out, content.size());
  out.insert(out.end(), content.begin(), content.end());
}

void put_int(std::vector<uint8_t>& out, int64_t v, uint8_t t) {
  uint8_t buf[8];
  int n = 0;
  auto u = static_cast<uint64_t>(v);
  for (int i = 0; i < 8; ++i, u >>= 8) buf[i] = static_cast<uint8_t>(u & 0xFF);
  n = 8;
  // Drop leading bytes that only repeat the sign.
  while (n > 1 && ((buf[n - 1] == 0x00 && !(buf[n - 2] & 0x80)) ||
                   (buf[n - 1] == 0xFF && (buf[n - 2] & 0x80))))
    --n;
  out.push_back(t);
  out.push_back(static_cast<uint8_t>(n));
  while (n > 0) out.push_back(buf[--n]);
}

void put_unsigned(std::vector<uint8_t>& out, uint64_t v, uint8_t t) {
  uint8_t buf[9];
  int n = 0;
  do {
    buf[n++] = static_cast<uint8_t>(v & 0xFF);
    v >>= 8;
  } while (v != 0);
  if (buf[n - 1] & 0x80) buf[n++] = 0;  // keep it positive
  out.push_back(t);
  out.push_back(static_cast<uint8_t>(n));
  while (n > 0) out.push_back(buf[--n]);
}

void put_octets(std::vector<uint8_t>& out, std::span<const uint8_t> v, uint8_t t) {
  put_tlv(out, t, v);
}

void put_octets(std::vector<uint8_t>& out, std::string_view v) {
  put_tlv(out, tag::kOctetString,
          std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(v.data()), v.size()));
}

void put_oid(std::vector<uint8_t>& out, const Oid& oid) {
  std::vector<uint8_t> c;
  auto arc = [&c](uint64_t v) {
    uint8_t buf[10];
    int n = 0;
    do {
      buf[n++] = static_cast<uint8_t>(v & 0x7F);
      v >>= 7;
    } while (v != 0);
    while (n > 1) c.push_back(static_cast<uint8_t>(buf[--n] | 0x80));
    c.push_back(buf[0]);
  };
  if (oid.size() < 2) {
    arc(oid.empty() ? 0 : uint64_t{oid[0]} * 40);
  } else {
    arc(uint64_t{oid[0]} * 40 + oid[1]);
    for (std::size_t i = 2; i < oid.size(); ++i) arc(oid[i]);
  }
  put_tlv(out, tag::kObjectId, c);
}

void put_null(std::vector<uint8_t>& out) {
  out.push_back(tag::kNull);
  out.push_back(0);
}

}  // namespace outpost::snmp::ber
