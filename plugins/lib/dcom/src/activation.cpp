// IRemoteSCMActivator::RemoteCreateInstance (MS-DCOM 3.1.2.5.2.3.3): the activation properties
// sent (ActivationPropertiesIn, 2.2.22) and those returned (ActivationPropertiesOut). Both are
// an OBJREF_CUSTOM whose object data is an activation BLOB: a CustomHeader naming each property
// by CLSID and size, then the properties, each an NDR type serialization version 1 (MS-RPCE
// 2.2.6) padded to a multiple of 8 bytes.
#include <string>

#include "orpc.hpp"

namespace outpost::lib::dcom {

namespace {

const Uuid kClsidActivationPropertiesIn = Uuid::parse("00000338-0000-0000-c000-000000000046");
const Uuid kClsidActivationPropertiesOut = Uuid::parse("00000339-0000-0000-c000-000000000046");
const Uuid kIidActivationPropertiesIn = Uuid::parse("000001a2-0000-0000-c000-000000000046");
const Uuid kClsidInstantiationInfo = Uuid::parse("000001ab-0000-0000-c000-000000000046");
const Uuid kClsidActivationContextInfo = Uuid::parse("000001a5-0000-0000-c000-000000000046");
const Uuid kClsidServerLocationInfo = Uuid::parse("000001a4-0000-0000-c000-000000000046");
const Uuid kClsidScmRequestInfo = Uuid::parse("000001aa-0000-0000-c000-000000000046");
const Uuid kClsidPropsOutInfo = Uuid::parse("00000339-0000-0000-c000-000000000046");
const Uuid kClsidScmReplyInfo = Uuid::parse("000001b6-0000-0000-c000-000000000046");

constexpr uint32_t kMshctxDifferentMachine = 2;
constexpr uint32_t kClsctxLocalAndRemoteServer = 0x14;
constexpr uint32_t kImpLevelIdentify = 2;
constexpr uint16_t kMaxActivationProperties = 10;  // MAX_ACTPROP_LIMIT

// The type serialization of an NDR stream: common header (version 1, little-endian, length 8,
// filler), private header (the stream's length padded to 8, filler), the stream, the padding.
std::vector<uint8_t> type_serialize(std::vector<uint8_t> body) {
  while (body.size() % 8 != 0) body.push_back(0);
  ndr::Writer w;
  w.u8(1);
  w.u8(0x10);
  w.u16(8);
  w.u32(0xcccccccc);
  w.u32(static_cast<uint32_t>(body.size()));
  w.u32(0);
  w.bytes(body);
  return std::move(w.out);
}

std::vector<uint8_t> instantiation_info(const Uuid& clsid, const Uuid& iid) {
  ndr::Writer w;
  w.uuid(clsid);
  w.u32(kClsctxLocalAndRemoteServer);  // classCtx, ignored on receipt
  w.u32(0);                            // actvflags
  w.u32(0);                            // fIsSurrogate
  w.u32(1);                            // cIID
  w.u32(0);                            // instFlag
  w.pointer();                         // pIID
  const std::size_t this_size = w.out.size();
  w.u32(0);  // thisSize, set below
  w.u16(orpc::kComMajor);
  w.u16(orpc::kComMinor);
  w.u32(1);  // pIID's conformance
  w.uuid(iid);
  auto ts = type_serialize(std::move(w.out));
  // thisSize is the size of this property as marshaled, headers and padding included.
  ndr::Writer patch{std::move(ts)};
  patch.put_u32(16 + this_size, static_cast<uint32_t>(patch.out.size()));
  return std::move(patch.out);
}

std::vector<uint8_t> activation_context_info() {
  ndr::Writer w;
  w.u32(0);  // clientOK
  w.u32(0);  // bReserved1
  w.u32(0);  // dwReserved1
  w.u32(0);  // dwReserved2
  w.null();  // pIFDClientCtx
  w.null();  // pIFDPrototypeCtx
  return type_serialize(std::move(w.out));
}

std::vector<uint8_t> location_info() {
  ndr::Writer w;
  w.null();  // machineName: this machine
  w.u32(0);  // processId
  w.u32(0);  // apartmentId
  w.u32(0);  // contextId
  return type_serialize(std::move(w.out));
}

std::vector<uint8_t> scm_request_info() {
  ndr::Writer w;
  w.null();     // pdwReserved
  w.pointer();  // remoteRequest
  w.u32(kImpLevelIdentify);
  w.u16(1);  // cRequestedProtseqs
  w.align(4);
  w.pointer();  // pRequestedProtseqs
  w.u32(1);
  w.u16(kTowerTcp);
  return type_serialize(std::move(w.out));
}

// The NDR stream inside one type serialization, with its headers checked.
ndr::Reader serialized(std::span<const uint8_t> data, const char* what) {
  ndr::Reader r(data, what);
  if (r.u8() != 1 || r.u8() != 0x10 || r.u16() != 8) {
    ndr::malformed(std::string(what) + " is not a little-endian type serialization version 1");
  }
  (void)r.u32();  // filler
  const uint32_t length = r.u32();
  (void)r.u32();  // filler
  if (length > r.left()) ndr::malformed(std::string(what) + " serialization runs past its end");
  return ndr::Reader(data.subspan(16, length), what);
}

struct PropsOut {
  uint32_t hresult = 0;
  std::optional<std::span<const uint8_t>> objref;
};

PropsOut props_out(std::span<const uint8_t> data) {
  auto r = serialized(data, "PropsOutInfo");
  const uint32_t interfaces = r.u32();
  const bool has_iids = r.u32() != 0;
  const bool has_results = r.u32() != 0;
  const bool has_pointers = r.u32() != 0;
  if (interfaces == 0) ndr::malformed("PropsOutInfo holds no interface");
  if (has_iids) {
    if (r.count(16, "PropsOutInfo piid") != interfaces) {
      ndr::malformed("PropsOutInfo piid count disagrees with cIfs");
    }
    (void)r.take(std::size_t{interfaces} * 16);
  }
  PropsOut out;
  if (has_results) {
    if (r.count(4, "PropsOutInfo phresults") != interfaces) {
      ndr::malformed("PropsOutInfo phresults count disagrees with cIfs");
    }
    out.hresult = r.u32();
    (void)r.take((std::size_t{interfaces} - 1) * 4);
  }
  if (has_pointers) {
    if (r.count(4, "PropsOutInfo ppIntfData") != interfaces) {
      ndr::malformed("PropsOutInfo ppIntfData count disagrees with cIfs");
    }
    std::vector<bool> present(interfaces);
    for (uint32_t i = 0; i < interfaces; ++i) present[i] = r.u32() != 0;
    for (uint32_t i = 0; i < interfaces; ++i) {
      if (!present[i]) continue;
      auto data_i = orpc::read_interface_pointer(r);
      if (i == 0) out.objref = data_i;
    }
  }
  return out;
}

void scm_reply(std::span<const uint8_t> data, Activation& a) {
  auto r = serialized(data, "ScmReplyInfoData");
  (void)r.u32();  // pdwReserved
  if (r.u32() == 0) ndr::malformed("ScmReplyInfoData without its remote reply");
  r.align(8);
  a.oxid = r.u64();
  const bool has_bindings = r.u32() != 0;
  a.remunknown_ipid = r.uuid();
  a.authn_hint = r.u32();
  a.com_major = r.u16();
  a.com_minor = r.u16();
  if (!has_bindings) ndr::malformed("ScmReplyInfoData without the OXID's bindings");
  r.align(4);
  const uint32_t conformance = r.count(2, "DUALSTRINGARRAY");
  const uint16_t entries = r.u16();
  const uint16_t security_offset = r.u16();
  if (conformance != entries) ndr::malformed("DUALSTRINGARRAY count disagrees with its array");
  auto raw = r.take(std::size_t{entries} * 2);
  std::vector<uint16_t> units(entries);
  for (std::size_t i = 0; i < entries; ++i) {
    units[i] = static_cast<uint16_t>(raw[2 * i] | raw[2 * i + 1] << 8);
  }
  a.bindings = orpc::string_bindings(units, security_offset);
}

}  // namespace

std::vector<uint8_t> remote_create_instance(const Uuid& causality, const Uuid& clsid,
                                            const Uuid& iid) {
  const std::vector<std::pair<Uuid, std::vector<uint8_t>>> properties = {
      {kClsidInstantiationInfo, instantiation_info(clsid, iid)},
      {kClsidActivationContextInfo, activation_context_info()},
      {kClsidServerLocationInfo, location_info()},
      {kClsidScmRequestInfo, scm_request_info()},
  };
  const auto count = static_cast<uint32_t>(properties.size());
  ndr::Writer h;
  h.u32(0);  // totalSize, set below
  h.u32(0);  // headerSize, set below
  h.u32(0);  // dwReserved
  h.u32(kMshctxDifferentMachine);
  h.u32(count);
  h.uuid(Uuid{});  // classInfoClsid
  h.pointer();     // pclsid
  h.pointer();     // pSizes
  h.null();        // pdwReserved
  h.u32(count);
  for (const auto& p : properties) h.uuid(p.first);
  h.u32(count);
  uint32_t total = 0;
  for (const auto& p : properties) {
    h.u32(static_cast<uint32_t>(p.second.size()));
    total += static_cast<uint32_t>(p.second.size());
  }
  ndr::Writer header{type_serialize(std::move(h.out))};
  const auto header_size = static_cast<uint32_t>(header.out.size());
  total += header_size;
  header.put_u32(16, total);
  header.put_u32(20, header_size);

  ndr::Writer blob;
  blob.u32(total);  // dwSize
  blob.u32(0);      // dwReserved
  blob.bytes(header.out);
  for (const auto& p : properties) blob.bytes(p.second);

  ndr::Writer objref;
  objref.u32(orpc::kObjrefSignature);
  objref.u32(4);  // OBJREF_CUSTOM
  objref.uuid(kIidActivationPropertiesIn);
  objref.uuid(kClsidActivationPropertiesIn);
  objref.u32(0);  // cbExtension
  objref.u32(static_cast<uint32_t>(blob.out.size() + 8));
  objref.bytes(blob.out);

  ndr::Writer w;
  orpc::write_orpcthis(w, causality);
  w.null();     // pUnkOuter
  w.pointer();  // pActProperties
  orpc::write_interface_pointer(w, objref.out);
  return std::move(w.out);
}

Activation decode_remote_create_instance(std::span<const uint8_t> stub) {
  ndr::Reader r(stub, "RemoteCreateInstance response");
  orpc::read_orpcthat(r);
  const auto props = orpc::read_unique_interface_pointer(r);
  const uint32_t hr = orpc::read_hresult(r);
  if (r.left() >= 16) ndr::malformed("RemoteCreateInstance response carries data after its end");
  check(hr, "RemoteCreateInstance");
  if (!props) ndr::malformed("RemoteCreateInstance succeeded without activation properties");

  const ObjRef outer = decode_objref(*props);
  if (outer.kind != ObjRef::Kind::custom || outer.clsid != kClsidActivationPropertiesOut) {
    ndr::malformed("RemoteCreateInstance answer is not an ActivationPropertiesOut");
  }
  const std::span<const uint8_t> blob = outer.object_data;
  ndr::Reader b(blob, "activation properties");
  const uint32_t size = b.u32();
  (void)b.u32();  // dwReserved
  if (size > b.left()) ndr::malformed("activation properties BLOB runs past its end");
  const auto body = blob.subspan(8, size);

  auto h = serialized(body, "CustomHeader");
  (void)h.u32();  // totalSize
  const uint32_t header_size = h.u32();
  (void)h.u32();  // dwReserved
  (void)h.u32();  // destCtx
  const uint32_t count = h.u32();
  (void)h.uuid();  // classInfoClsid
  const bool has_clsids = h.u32() != 0;
  const bool has_sizes = h.u32() != 0;
  const bool has_reserved = h.u32() != 0;
  if (count == 0 || count > kMaxActivationProperties || !has_clsids || !has_sizes) {
    ndr::malformed("CustomHeader does not list its properties");
  }
  if (h.count(16, "CustomHeader pclsid") != count) {
    ndr::malformed("CustomHeader pclsid count disagrees with cIfs");
  }
  std::vector<Uuid> clsids(count);
  for (auto& c : clsids) c = h.uuid();
  if (h.count(4, "CustomHeader pSizes") != count) {
    ndr::malformed("CustomHeader pSizes count disagrees with cIfs");
  }
  std::vector<uint32_t> sizes(count);
  for (auto& s : sizes) s = h.u32();
  if (has_reserved) (void)h.u32();
  if (header_size > body.size()) ndr::malformed("CustomHeader headerSize past the BLOB");

  Activation a;
  bool got_props = false, got_scm = false;
  PropsOut po;
  std::size_t at = header_size;
  for (uint32_t i = 0; i < count; ++i) {
    if (sizes[i] > body.size() - at) ndr::malformed("activation property runs past the BLOB");
    const auto prop = body.subspan(at, sizes[i]);
    at += sizes[i];
    if (clsids[i] == kClsidPropsOutInfo) {
      po = props_out(prop);
      got_props = true;
    } else if (clsids[i] == kClsidScmReplyInfo) {
      scm_reply(prop, a);
      got_scm = true;
    }
  }
  if (!got_props || !got_scm) {
    ndr::malformed("ActivationPropertiesOut lacks PropsOutInfo or ScmReplyInfo");
  }
  check(po.hresult, "RemoteCreateInstance (interface)");
  if (!po.objref) ndr::malformed("ActivationPropertiesOut holds no interface pointer");
  a.object = decode_objref(*po.objref);
  if (a.object.kind == ObjRef::Kind::custom) {
    ndr::malformed("activated interface came back by value");
  }
  return a;
}

}  // namespace outpost::lib::dcom
