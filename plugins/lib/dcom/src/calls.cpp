// The ORPC calls of a WQL query (MS-WMI 3.1.4): NTLMLogin, ExecQuery, ExecMethod, Next, and
// IRemUnknown::RemRelease (MS-DCOM 3.1.1.5.6.1.3). Requests start with ORPCTHIS, responses with
// ORPCTHAT and end with the method's HRESULT.
#include <limits>
#include <string>

#include "orpc.hpp"

namespace outpost::lib::dcom {

namespace {

// The UTF-16LE code units of UTF-8 text (invalid sequences become U+FFFD).
std::u16string utf16(std::string_view s) {
  std::u16string out;
  for (std::size_t i = 0; i < s.size();) {
    const auto c = static_cast<uint8_t>(s[i]);
    uint32_t cp = 0xfffd;
    std::size_t len = 1;
    if (c < 0x80) {
      cp = c;
    } else if ((c & 0xe0) == 0xc0 && i + 1 < s.size()) {
      cp = (c & 0x1fu) << 6 | (static_cast<uint8_t>(s[i + 1]) & 0x3fu);
      len = 2;
    } else if ((c & 0xf0) == 0xe0 && i + 2 < s.size()) {
      cp = (c & 0x0fu) << 12 | (static_cast<uint8_t>(s[i + 1]) & 0x3fu) << 6 |
           (static_cast<uint8_t>(s[i + 2]) & 0x3fu);
      len = 3;
    } else if ((c & 0xf8) == 0xf0 && i + 3 < s.size()) {
      cp = (c & 0x07u) << 18 | (static_cast<uint8_t>(s[i + 1]) & 0x3fu) << 12 |
           (static_cast<uint8_t>(s[i + 2]) & 0x3fu) << 6 | (static_cast<uint8_t>(s[i + 3]) & 0x3fu);
      len = 4;
    }
    if (cp >= 0x10000) {
      cp -= 0x10000;
      out += static_cast<char16_t>(0xd800 + (cp >> 10));
      out += static_cast<char16_t>(0xdc00 + (cp & 0x3ff));
    } else {
      out += static_cast<char16_t>(cp);
    }
    i += len;
  }
  return out;
}

// A BSTR (MS-OAUT 2.2.23.2): a unique pointer to a FLAGGED_WORD_BLOB, whose conformance, byte
// count and character count all describe the text without a terminating NUL.
void write_bstr(ndr::Writer& w, std::string_view text) {
  const auto chars = utf16(text);
  w.align(4);
  w.pointer();
  w.u32(static_cast<uint32_t>(chars.size()));
  w.u32(static_cast<uint32_t>(chars.size() * 2));
  w.u32(static_cast<uint32_t>(chars.size()));
  for (char16_t c : chars) w.u16(c);
  w.align(4);
}

// A [unique, string] wchar_t*: conformance, offset 0 and length all count the terminating NUL.
void write_lpwstr(ndr::Writer& w, std::string_view text) {
  const auto chars = utf16(text);
  const auto n = static_cast<uint32_t>(chars.size() + 1);
  w.align(4);
  w.pointer();
  w.u32(n);
  w.u32(0);
  w.u32(n);
  for (char16_t c : chars) w.u16(c);
  w.u16(0);
  w.align(4);
}

ndr::Writer request(const Uuid& causality) {
  ndr::Writer w;
  orpc::write_orpcthis(w, causality);
  return w;
}

ObjRef interface_objref(std::span<const uint8_t> data, std::string_view call) {
  ObjRef o = decode_objref(data);
  if (o.kind == ObjRef::Kind::custom) {
    ndr::malformed(std::string(call) + " returned a by-value object, not an interface");
  }
  return o;
}

void expect_end(const ndr::Reader& r) {
  // The stub ends with the HRESULT; what follows can only be padding of the PDU body.
  if (r.left() >= 16) ndr::malformed(std::string(r.what) + " carries data after its HRESULT");
}

}  // namespace

std::vector<uint8_t> ntlm_login(const Uuid& causality, std::string_view wmi_namespace) {
  auto w = request(causality);
  write_lpwstr(w, wmi_namespace);
  w.null();  // wszPreferredLocale
  w.u32(0);  // lFlags
  w.null();  // pCtx
  return std::move(w.out);
}

std::vector<uint8_t> exec_query(const Uuid& causality, std::string_view wql, int32_t flags) {
  auto w = request(causality);
  write_bstr(w, "WQL");
  write_bstr(w, wql);
  w.u32(static_cast<uint32_t>(flags));
  w.null();  // pCtx
  return std::move(w.out);
}

std::vector<uint8_t> exec_method(const Uuid& causality, std::string_view object_path,
                                 std::string_view method) {
  auto w = request(causality);
  write_bstr(w, object_path);
  write_bstr(w, method);
  w.u32(0);     // lFlags
  w.null();     // pCtx
  w.null();     // pInParams
  w.pointer();  // ppOutParams: present, so the server fills it ...
  w.null();     // ... and *ppOutParams NULL on the way in
  w.null();     // ppCallResult: not wanted (the call is synchronous)
  return std::move(w.out);
}

std::vector<uint8_t> enum_next(const Uuid& causality, int32_t timeout_ms, uint32_t count) {
  auto w = request(causality);
  w.u32(static_cast<uint32_t>(timeout_ms));
  w.u32(count);
  return std::move(w.out);
}

std::vector<uint8_t> rem_release(const Uuid& causality, std::span<const Release> refs) {
  if (refs.size() > std::numeric_limits<uint16_t>::max()) {
    throw Error(Status::invalid, 0, "RemRelease of more than 65535 references");
  }
  auto w = request(causality);
  w.u16(static_cast<uint16_t>(refs.size()));
  w.align(4);
  w.u32(static_cast<uint32_t>(refs.size()));
  for (const auto& ref : refs) {
    w.uuid(ref.ipid);
    w.u32(ref.public_refs);
    w.u32(0);  // cPrivateRefs
  }
  return std::move(w.out);
}

ObjRef decode_interface_result(std::span<const uint8_t> stub, std::string_view call) {
  ndr::Reader r(stub, "interface result");
  orpc::read_orpcthat(r);
  const auto ptr = orpc::read_unique_interface_pointer(r);
  const uint32_t hr = orpc::read_hresult(r);
  expect_end(r);
  check(hr, call);
  if (!ptr) ndr::malformed(std::string(call) + " succeeded without an interface pointer");
  return interface_objref(*ptr, call);
}

std::optional<ObjRef> decode_exec_method(std::span<const uint8_t> stub) {
  ndr::Reader r(stub, "ExecMethod response");
  orpc::read_orpcthat(r);
  std::optional<std::span<const uint8_t>> out_params;
  if (r.u32() != 0) out_params = orpc::read_unique_interface_pointer(r);
  r.align(4);
  if (r.u32() != 0) (void)orpc::read_unique_interface_pointer(r);  // ppCallResult
  const uint32_t hr = orpc::read_hresult(r);
  expect_end(r);
  check(hr, "ExecMethod");
  if (!out_params) return std::nullopt;
  ObjRef o = decode_objref(*out_params);
  if (o.kind != ObjRef::Kind::custom) {
    ndr::malformed("ExecMethod out-parameters are not an object by value");
  }
  return o;
}

NextResult decode_enum_next(std::span<const uint8_t> stub, uint32_t asked) {
  ndr::Reader r(stub, "Next response");
  orpc::read_orpcthat(r);
  // apObjects: [size_is(uCount), length_is(*puReturned)], a conformant varying array of unique
  // interface pointers, then puReturned.
  const uint32_t max = r.u32();
  const uint32_t offset = r.u32();
  const uint32_t actual = r.count(4, "apObjects");
  if (offset != 0 || actual > max) ndr::malformed("Next apObjects bounds are inconsistent");
  if (actual > asked) {
    ndr::malformed("Next returned " + std::to_string(actual) + " objects where " +
                   std::to_string(asked) + " were asked");
  }
  std::vector<bool> present(actual);
  for (uint32_t i = 0; i < actual; ++i) present[i] = r.u32() != 0;
  NextResult out;
  for (uint32_t i = 0; i < actual; ++i) {
    if (!present[i]) ndr::malformed("Next returned a NULL object");
    ObjRef o = decode_objref(orpc::read_interface_pointer(r));
    if (o.kind != ObjRef::Kind::custom) ndr::malformed("Next returned an object not by value");
    out.objects.push_back(std::move(o));
  }
  r.align(4);
  const uint32_t returned = r.u32();
  out.hresult = orpc::read_hresult(r);
  expect_end(r);
  check(out.hresult, "IEnumWbemClassObject::Next");
  if (returned != actual) ndr::malformed("Next puReturned disagrees with the objects it sent");
  return out;
}

void decode_rem_release(std::span<const uint8_t> stub) {
  ndr::Reader r(stub, "RemRelease response");
  orpc::read_orpcthat(r);
  const uint32_t hr = orpc::read_hresult(r);
  expect_end(r);
  check(hr, "RemRelease");
}

}  // namespace outpost::lib::dcom
