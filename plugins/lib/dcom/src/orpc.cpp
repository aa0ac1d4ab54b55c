// ORPCTHIS/ORPCTHAT, interface pointers, OBJREFs and string bindings (MS-DCOM 2.2.13 to 2.2.19).
#include "orpc.hpp"

#include <charconv>
#include <string>

namespace outpost::lib::dcom {

namespace orpc {

void write_orpcthis(ndr::Writer& w, const Uuid& causality) {
  w.u16(kComMajor);
  w.u16(kComMinor);
  w.u32(0);  // flags: ORPCF_NULL, as ORPC calls must send
  w.u32(0);  // reserved1
  w.uuid(causality);
  w.null();  // extensions
}

void read_orpcthat(ndr::Reader& r) {
  r.align(4);
  (void)r.u32();  // flags, ignored on receipt
  if (r.u32() == 0) return;
  // ORPC_EXTENT_ARRAY: size, reserved, and a unique pointer to (size + 1) & ~1 unique pointers
  // to ORPC_EXTENTs, each a GUID, a size and (size + 7) & ~7 bytes of data.
  const uint32_t size = r.u32();
  (void)r.u32();  // reserved
  if (r.u32() == 0) return;
  const uint32_t slots = r.count(4, "ORPC_EXTENT_ARRAY");
  if (slots < size) {
    ndr::malformed("ORPC_EXTENT_ARRAY holds fewer extents than its size says");
  }
  std::vector<bool> present(slots);
  for (uint32_t i = 0; i < slots; ++i) present[i] = r.u32() != 0;
  for (uint32_t i = 0; i < slots; ++i) {
    if (!present[i]) continue;
    const uint32_t conformance = r.count(1, "ORPC_EXTENT data");
    (void)r.uuid();
    const uint32_t length = r.u32();
    if (length > conformance) ndr::malformed("ORPC_EXTENT size exceeds its data");
    (void)r.take(conformance);
    r.align(4);
  }
}

void write_interface_pointer(ndr::Writer& w, std::span<const uint8_t> objref) {
  w.align(4);
  w.u32(static_cast<uint32_t>(objref.size()));
  w.u32(static_cast<uint32_t>(objref.size()));
  w.bytes(objref);
}

std::span<const uint8_t> read_interface_pointer(ndr::Reader& r) {
  r.align(4);
  const uint32_t conformance = r.count(1, "MInterfacePointer");
  const uint32_t length = r.u32();
  if (length != conformance) ndr::malformed("MInterfacePointer length disagrees with its array");
  auto data = r.take(length);
  // What follows is 4-aligned; nothing may follow (the pointer ends a type serialization whose
  // length does not count the padding).
  if (r.left() != 0) r.align(4);
  return data;
}

std::optional<std::span<const uint8_t>> read_unique_interface_pointer(ndr::Reader& r) {
  r.align(4);
  if (r.u32() == 0) return std::nullopt;
  return read_interface_pointer(r);
}

std::vector<StringBinding> string_bindings(std::span<const uint16_t> entries,
                                           uint16_t security_offset) {
  if (security_offset > entries.size()) {
    ndr::malformed("DUALSTRINGARRAY security offset past its entries");
  }
  std::vector<StringBinding> out;
  std::size_t i = 0;
  const std::size_t end = security_offset;
  while (i < end) {
    const uint16_t tower = entries[i++];
    if (tower == 0) break;  // the empty string ending the string bindings
    StringBinding b;
    b.tower_id = tower;
    bool terminated = false;
    while (i < end) {
      const uint16_t c = entries[i++];
      if (c == 0) {
        terminated = true;
        break;
      }
      // UTF-16 to UTF-8; network addresses are ASCII in practice, surrogates become '?'.
      if (c < 0x80) {
        b.address += static_cast<char>(c);
      } else if (c < 0x800) {
        b.address += static_cast<char>(0xc0 | c >> 6);
        b.address += static_cast<char>(0x80 | (c & 0x3f));
      } else if (c >= 0xd800 && c < 0xe000) {
        b.address += '?';
      } else {
        b.address += static_cast<char>(0xe0 | c >> 12);
        b.address += static_cast<char>(0x80 | ((c >> 6) & 0x3f));
        b.address += static_cast<char>(0x80 | (c & 0x3f));
      }
    }
    if (!terminated) ndr::malformed("DUALSTRINGARRAY string binding not terminated");
    out.push_back(std::move(b));
  }
  return out;
}

std::vector<StringBinding> read_packed_dual_string_array(ndr::Reader& r) {
  const uint16_t n = r.u16();
  const uint16_t security_offset = r.u16();
  auto raw = r.take(std::size_t{n} * 2);
  std::vector<uint16_t> entries(n);
  for (std::size_t i = 0; i < n; ++i) {
    entries[i] = static_cast<uint16_t>(raw[2 * i] | raw[2 * i + 1] << 8);
  }
  return string_bindings(entries, security_offset);
}

uint32_t read_hresult(ndr::Reader& r) {
  r.align(4);
  return r.u32();
}

}  // namespace orpc

std::optional<uint16_t> StringBinding::port() const {
  const auto open = address.rfind('[');
  if (open == std::string::npos || address.empty() || address.back() != ']') return std::nullopt;
  const std::string_view digits(address.data() + open + 1, address.size() - open - 2);
  if (digits.empty()) return std::nullopt;
  uint32_t v = 0;
  const auto [p, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), v);
  if (ec != std::errc() || p != digits.data() + digits.size() || v > 0xffff) return std::nullopt;
  return static_cast<uint16_t>(v);
}

std::string StringBinding::host() const {
  const auto open = address.find('[');
  return open == std::string::npos ? address : address.substr(0, open);
}

ObjRef decode_objref(std::span<const uint8_t> data) {
  ndr::Reader r(data, "OBJREF");
  if (r.u32() != orpc::kObjrefSignature) ndr::malformed("OBJREF signature is not MEOW");
  const uint32_t flags = r.u32();
  ObjRef o;
  o.iid = r.uuid();
  auto std_objref = [&] {
    (void)r.u32();  // STDOBJREF flags (SORF_NOPING and friends)
    o.public_refs = r.u32();
    o.oxid = r.u64();
    o.oid = r.u64();
    o.ipid = r.uuid();
  };
  switch (flags) {
    case 1:
      o.kind = ObjRef::Kind::standard;
      std_objref();
      o.bindings = orpc::read_packed_dual_string_array(r);
      break;
    case 2:
      o.kind = ObjRef::Kind::handler;
      std_objref();
      o.clsid = r.uuid();
      o.bindings = orpc::read_packed_dual_string_array(r);
      break;
    case 4: {
      o.kind = ObjRef::Kind::custom;
      o.clsid = r.uuid();
      (void)r.u32();  // cbExtension, ignored on receipt
      (void)r.u32();  // the size field, which implementations fill differently
      auto rest = r.take(r.left());
      o.object_data.assign(rest.begin(), rest.end());
      break;
    }
    case 8:
      o.kind = ObjRef::Kind::extended;
      std_objref();
      (void)r.u32();  // Signature1
      o.bindings = orpc::read_packed_dual_string_array(r);
      // nElms, Signature2 and the DATAELEMENTs carry nothing a client of WMI needs.
      break;
    default:
      ndr::malformed("OBJREF flags " + std::to_string(flags) + " name no known kind");
  }
  return o;
}

}  // namespace outpost::lib::dcom
