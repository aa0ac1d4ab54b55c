// DCOM and WMI stubs without a network: every request stub parsed by impacket's NDRCALL classes
// (tests/impacket_dcom.py under /usr/bin/python3) to the values we put in, every response
// decoder fed the stubs impacket's structures build, and hostile stubs (truncated, counts and
// pointers running past the end, an enumerator returning more than asked) refused as
// Error(protocol).
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <outpost_lib/dcom.hpp>
#include <outpost_test/tool.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "ndr.hpp"

namespace dcom = outpost::lib::dcom;
using dcom::Uuid;
using Bytes = std::vector<uint8_t>;

namespace {

const Uuid kCausality = Uuid::parse("0badc0de-1234-5678-9abc-def012345678");
const Uuid kIpidLogin = Uuid::parse("00001234-5678-9abc-def0-123456789abc");
const Uuid kIpidRemUnknown = Uuid::parse("0000abcd-0001-0002-0304-050607080910");
const Uuid kIpidServices = Uuid::parse("00005678-1111-2222-3333-444455556666");
const Uuid kIpidEnum = Uuid::parse("00009999-aaaa-bbbb-cccc-ddddeeeeffff");

using outpost::test::hex;
using outpost::test::unhex;

// ---- impacket, the independent encoder/decoder.

const std::string kPeer = OUTPOST_TEST_SOURCE_DIR "/plugins/lib/dcom/tests/impacket_dcom.py";

// Runs the peer; its output lines "name rest..." by name. impacket is a test dependency
// (scripts/deps): without it the cross-checks fail rather than pass vacuously.
std::map<std::string, std::string> impacket(const std::string& args,
                                            const std::string& input = "") {
  return outpost::test::lines_by_name(
      outpost::test::run_tool("/usr/bin/python3 " + kPeer + " " + args, input));
}

bool has_field(const std::string& fields, const std::string& f) {
  return (" " + fields + " ").find(" " + f + " ") != std::string::npos;
}

// impacket's response stubs, built once.
const std::map<std::string, Bytes>& responses() {
  static const std::map<std::string, Bytes> built = [] {
    std::map<std::string, Bytes> m;
    for (const auto& [name, h] : impacket("build")) m[name] = unhex(h);
    return m;
  }();
  return built;
}

const Bytes& response(const std::string& name) {
  const auto& r = responses();
  const auto it = r.find(name);
  REQUIRE(it != r.end());
  return it->second;
}

template <typename F>
dcom::Status status_of(F&& f) {
  try {
    f();
  } catch (const dcom::Error& e) {
    return e.status;
  }
  FAIL("no Error thrown");
  return dcom::Status::failed;
}

template <typename F>
uint32_t hresult_of(F&& f) {
  try {
    f();
  } catch (const dcom::Error& e) {
    return e.hresult;
  }
  FAIL("no Error thrown");
  return 0;
}

const std::string kOrpcThis =
    "version=5.7 orpc_flags=0 reserved1=0 cid=0badc0de-1234-5678-9abc-def012345678 "
    "extensions=null";

// ORPCTHIS as every request carries it, and impacket writing back the same stub (but for the
// values of padding bytes) from what it parsed: nothing of ours was left unread.
void check_orpcthis(const std::string& fields) {
  std::istringstream s(kOrpcThis);
  for (std::string f; s >> f;) CHECK(has_field(fields, f));
  CHECK(has_field(fields, "reserialized=1"));
}

// The decoders of every response stub, by the name impacket gives it.
void decode_any(const std::string& name, std::span<const uint8_t> stub) {
  if (name.starts_with("rci")) {
    (void)dcom::decode_remote_create_instance(stub);
  } else if (name.starts_with("ntlm_login") || name.starts_with("exec_query")) {
    (void)dcom::decode_interface_result(stub, name);
  } else if (name.starts_with("next")) {
    (void)dcom::decode_enum_next(stub, 10);
  } else if (name.starts_with("exec_method")) {
    (void)dcom::decode_exec_method(stub);
  } else if (name.starts_with("rem_release")) {
    dcom::decode_rem_release(stub);
  } else {
    (void)dcom::decode_objref(stub);
  }
}

}  // namespace

TEST_CASE("request stubs parse with impacket's NDRCALL classes to the values put in") {
  const Uuid clsid = dcom::clsid_wbem_level1_login();
  const Uuid iid = dcom::iid_iwbem_level1_login();
  const std::vector<dcom::Release> refs = {{kIpidServices, 5}, {kIpidEnum, 1}};
  const std::string query = "SELECT Name, State FROM Win32_Service WHERE Name='Spooler'";
  std::string input;
  input += "rci " + hex(dcom::remote_create_instance(kCausality, clsid, iid)) + "\n";
  input += "ntlm_login " + hex(dcom::ntlm_login(kCausality, "//./root/cimv2")) + "\n";
  input += "exec_query " + hex(dcom::exec_query(kCausality, query)) + "\n";
  input += "exec_query_flags " + hex(dcom::exec_query(kCausality, "SELECT * FROM A", 0)) + "\n";
  input += "exec_method " +
           hex(dcom::exec_method(kCausality, "Win32_Service.Name=\"Spooler\"", "StartService")) +
           "\n";
  input += "next " + hex(dcom::enum_next(kCausality, dcom::kWbemInfinite, 10)) + "\n";
  input += "rem_release " + hex(dcom::rem_release(kCausality, refs)) + "\n";
  const auto out = impacket("parse", input);
  REQUIRE(out.size() == 7);

  SECTION("RemoteCreateInstance and its ActivationPropertiesIn") {
    const auto& f = out.at("rci");
    INFO(f);
    check_orpcthis(f);
    CHECK(f.find("private_header_ok=0") == std::string::npos);
    CHECK(f.find("private_header_ok=1") != std::string::npos);
    for (const char* want : {
             "unkouter=null",
             "cnt_ok=1",
             "signature=574f454d",
             "objref_flags=4",
             "objref_iid=000001a2-0000-0000-c000-000000000046",
             "objref_clsid=00000338-0000-0000-c000-000000000046",
             "cbExtension=0",
             "destCtx=2",
             "cIfs=4",
             "pdwReserved=null",
             "clsids=000001ab-0000-0000-c000-000000000046,000001a5-0000-0000-c000-000000000046,"
             "000001a4-0000-0000-c000-000000000046,000001aa-0000-0000-c000-000000000046",
             "sizes=88,40,32,48",
             "classId=8bc3f05e-d86b-11d0-a075-00c04fb68820",
             "actvflags=0",
             "fIsSurrogate=0",
             "cIID=1",
             "iids=f309ad18-d86a-11d0-a075-00c04fb68820",
             "thisSize=88",
             "clientCOMVersion=5.7",
             "clientctx=null",
             "protoctx=null",
             "machineName=null",
             "processId=0",
             "ClientImpLevel=2",
             "protseqs=7",
             "ts_header=01100800cccccccc",
             "props_len_ok=1",
             "header_private_ok=1",
             // The header is 152 bytes; the BLOB's size counts it and the properties, and the
             // BLOB is that and its own dwSize and dwReserved.
             "headerSize=152",
             "totalSize=360",
             "dwSize=360",
             "blob_len=368",
         }) {
      CHECK(has_field(f, want));
    }
  }
  SECTION("NTLMLogin") {
    const auto& f = out.at("ntlm_login");
    INFO(f);
    check_orpcthis(f);
    CHECK(has_field(f, std::string("namespace=//./root/cimv2") + '\0'));
    CHECK(has_field(f, "locale=null"));
    CHECK(has_field(f, "lFlags=0"));
    CHECK(has_field(f, "pCtx=null"));
  }
  SECTION("ExecQuery") {
    const auto& f = out.at("exec_query");
    INFO(f);
    check_orpcthis(f);
    CHECK(has_field(f, "language=WQL"));
    CHECK(has_field(f, "query=SELECT_Name,_State_FROM_Win32_Service_WHERE_Name='Spooler'"));
    CHECK(has_field(f, "lFlags=48"));
    CHECK(has_field(f, "pCtx=null"));
    CHECK(has_field(out.at("exec_query_flags"), "query=SELECT_*_FROM_A"));
    CHECK(has_field(out.at("exec_query_flags"), "lFlags=0"));
  }
  SECTION("ExecMethod asks for the out-parameters and not the call result") {
    const auto& f = out.at("exec_method");
    INFO(f);
    check_orpcthis(f);
    CHECK(has_field(f, "path=Win32_Service.Name=\"Spooler\""));
    CHECK(has_field(f, "method=StartService"));
    CHECK(has_field(f, "lFlags=0"));
    CHECK(has_field(f, "pCtx=null"));
    CHECK(has_field(f, "pInParams=null"));
    CHECK(has_field(f, "ppOutParams=set"));
    CHECK(has_field(f, "outParams=null"));
    CHECK(has_field(f, "ppCallResult=null"));
  }
  SECTION("Next") {
    const auto& f = out.at("next");
    INFO(f);
    check_orpcthis(f);
    CHECK(has_field(f, "lTimeout=4294967295"));
    CHECK(has_field(f, "uCount=10"));
  }
  SECTION("RemRelease") {
    const auto& f = out.at("rem_release");
    INFO(f);
    check_orpcthis(f);
    CHECK(has_field(f, "count=2"));
    CHECK(has_field(f,
                    "refs=00005678-1111-2222-3333-444455556666/5/0,"
                    "00009999-aaaa-bbbb-cccc-ddddeeeeffff/1/0"));
  }
}

TEST_CASE("RemoteCreateInstance answers built by impacket decode") {
  for (const char* name : {"rci", "rci_ext"}) {
    INFO(name);
    const auto a = dcom::decode_remote_create_instance(response(name));
    CHECK(a.oxid == 0x1122334455667788u);
    CHECK(a.remunknown_ipid == kIpidRemUnknown);
    CHECK(a.authn_hint == 5);
    CHECK(a.com_major == 5);
    CHECK(a.com_minor == 7);
    REQUIRE(a.bindings.size() == 2);
    CHECK(a.bindings[0].tower_id == dcom::kTowerTcp);
    CHECK(a.bindings[0].address == "WIN-TARGET[49667]");
    CHECK(a.bindings[0].host() == "WIN-TARGET");
    CHECK(a.bindings[0].port() == 49667);
    CHECK(a.bindings[1].address == "192.0.2.10[49667]");
    CHECK(a.object.kind == dcom::ObjRef::Kind::standard);
    CHECK(a.object.iid == dcom::iid_iwbem_level1_login());
    CHECK(a.object.ipid == kIpidLogin);
    CHECK(a.object.oxid == 0x1122334455667788u);
    CHECK(a.object.oid == 0x0102030405060708u);
    CHECK(a.object.public_refs == 5);
    REQUIRE(a.object.bindings.size() == 2);
    CHECK(a.object.bindings[1].port() == 49667);
  }
  SECTION("a failing call HRESULT") {
    const auto& stub = response("rci_denied");
    CHECK(status_of([&] { dcom::decode_remote_create_instance(stub); }) == dcom::Status::denied);
    CHECK(hresult_of([&] { dcom::decode_remote_create_instance(stub); }) == 0x80070005);
  }
  SECTION("a failing interface result inside PropsOutInfo") {
    const auto& stub = response("rci_classnotreg");
    CHECK(status_of([&] { dcom::decode_remote_create_instance(stub); }) == dcom::Status::not_found);
    CHECK(hresult_of([&] { dcom::decode_remote_create_instance(stub); }) == 0x80040154);
  }
}

constexpr std::string_view kUnalignedActivation =
    "00000000000000000df20000e0010000e00100004d454f5704000000a301000000000000c000000000000046"
    "3903000000000000c00000000000004600000000b8010000a80100000000000001100800cccccccc60000000"
    "cccccccca80100007000000000000000020000000200000000000000000000000000000000000000fd0e0000"
    "2c6f000000000000020000003903000000000000c000000000000046b601000000000000c000000000000046"
    "02000000c00000007800000001100800ccccccccae000000cccccccc01000000d9c400008c860000ff060000"
    "0100000018ad09f36ad8d011a07500c04fb68820010000000000000001000000f4df00007200000072000000"
    "4d454f570100000018ad09f36ad8d011a07500c04fb688200000000005000000a74d92668ed45fcb2bdc9d3c"
    "c67481cd98d3b9373b973abb79be0f8384d4d4021700130007003100320037002e0030002e0030002e003100"
    "5b00330035003800380039005d00000000000a00ffff00000000000001100800cccccccc62000000cccccccc"
    "000000007ed70000a74d92668ed45fcb6a090000fac96a0621f17b88d1fc6db6135cce370600000005000700"
    "170000001700130007003100320037002e0030002e0030002e0031005b00340033003100310033005d000000"
    "00000a00ffff0000000000000000000000000000";

TEST_CASE("an activation whose interface pointer ends its property unaligned decodes") {
  // The PropsOutInfo's type serialization counts the OBJREF's 114 octets and not the two of
  // padding after them (the wmi test peer, on impacket's structures, sends this).
  const auto a = dcom::decode_remote_create_instance(unhex(kUnalignedActivation));
  CHECK(a.object.iid == dcom::iid_iwbem_level1_login());
  REQUIRE(a.bindings.size() == 1);
  CHECK(a.bindings[0].tower_id == dcom::kTowerTcp);
  CHECK(a.bindings[0].port() == std::optional<uint16_t>(43113));
  CHECK(a.com_major == 5);
  CHECK(a.com_minor == 7);
}

TEST_CASE("NTLMLogin and ExecQuery answers built by impacket decode") {
  for (const char* name : {"ntlm_login", "ntlm_login_ext"}) {
    INFO(name);
    const auto o = dcom::decode_interface_result(response(name), "NTLMLogin");
    CHECK(o.kind == dcom::ObjRef::Kind::standard);
    CHECK(o.iid == dcom::iid_iwbem_services());
    CHECK(o.ipid == kIpidServices);
    CHECK(o.oxid == 0x1122334455667788u);
    CHECK(o.oid == 0x99);
  }
  const auto e = dcom::decode_interface_result(response("exec_query"), "ExecQuery");
  CHECK(e.iid == dcom::iid_ienum_wbem_class_object());
  CHECK(e.ipid == kIpidEnum);

  CHECK(status_of([] { dcom::decode_interface_result(response("ntlm_login_denied"), "x"); }) ==
        dcom::Status::denied);
  CHECK(status_of([] { dcom::decode_interface_result(response("ntlm_login_nonamespace"), "x"); }) ==
        dcom::Status::not_found);
  try {
    dcom::decode_interface_result(response("exec_query_invalid"), "ExecQuery");
    FAIL("no Error");
  } catch (const dcom::Error& err) {
    CHECK(err.status == dcom::Status::invalid);
    CHECK(err.hresult == 0x80041017);
    CHECK(std::string(err.what()) == "ExecQuery failed: 0x80041017 WBEM_E_INVALID_QUERY");
  }
  // A by-value object where an interface is expected.
  CHECK(status_of([] { dcom::decode_interface_result(response("next_3"), "x"); }) ==
        dcom::Status::protocol);
}

TEST_CASE("Next answers built by impacket decode") {
  const auto three = dcom::decode_enum_next(response("next_3"), 10);
  CHECK(three.hresult == 0);
  REQUIRE(three.objects.size() == 3);
  for (std::size_t i = 0; i < 3; ++i) {
    const auto& o = three.objects[i];
    CHECK(o.kind == dcom::ObjRef::Kind::custom);
    CHECK(o.clsid == dcom::clsid_wbem_class_object());
    CHECK(o.iid == Uuid::parse("dc12a681-737f-11cf-884d-00aa004b2e24"));
    // The fake EncodingUnit: signature, length, then length bytes of (i + 1).
    REQUIRE(o.object_data.size() == 8 + 6 + i);
    CHECK(hex(std::span(o.object_data).first(4)) == "78563412");
    CHECK(o.object_data[4] == 6 + i);
    CHECK(o.object_data.back() == i + 1);
  }
  for (const char* name : {"next_2_false", "next_2_false_ext"}) {
    const auto two = dcom::decode_enum_next(response(name), 2);
    CHECK(two.hresult == dcom::kWbemSFalse);
    CHECK(two.objects.size() == 2);
  }
  const auto none = dcom::decode_enum_next(response("next_0_false"), 1);
  CHECK(none.hresult == dcom::kWbemSFalse);
  CHECK(none.objects.empty());
  CHECK(dcom::decode_enum_next(response("next_0_timedout"), 1).hresult == dcom::kWbemSTimedOut);
  CHECK(hresult_of([] { dcom::decode_enum_next(response("next_failed"), 1); }) == 0x80041001);

  SECTION("more objects than asked") {
    CHECK(status_of([] { dcom::decode_enum_next(response("next_3"), 2); }) ==
          dcom::Status::protocol);
  }
  SECTION("puReturned disagreeing with the array") {
    Bytes stub = response("next_3");
    // puReturned sits before the final HRESULT.
    stub[stub.size() - 8] = 2;
    CHECK(status_of([&] { dcom::decode_enum_next(stub, 10); }) == dcom::Status::protocol);
  }
  SECTION("an actual count above the maximum") {
    Bytes stub = response("next_3");
    stub[8] = 2;  // maximum count 2, actual 3
    CHECK(status_of([&] { dcom::decode_enum_next(stub, 10); }) == dcom::Status::protocol);
  }
}

TEST_CASE("ExecMethod and RemRelease answers built by impacket decode") {
  const auto out = dcom::decode_exec_method(response("exec_method"));
  REQUIRE(out.has_value());
  CHECK(out->kind == dcom::ObjRef::Kind::custom);
  CHECK(out->clsid == dcom::clsid_wbem_class_object());
  CHECK(out->object_data.size() == 8 + 12);
  CHECK(!dcom::decode_exec_method(response("exec_method_none")).has_value());
  CHECK(status_of([] { dcom::decode_exec_method(response("exec_method_invalid")); }) ==
        dcom::Status::invalid);
  dcom::decode_rem_release(response("rem_release"));
  CHECK(status_of([] { dcom::decode_rem_release(response("rem_release_failed")); }) ==
        dcom::Status::invalid);
}

TEST_CASE("OBJREFs and string bindings") {
  const auto s = dcom::decode_objref(response("standard_objref"));
  CHECK(s.kind == dcom::ObjRef::Kind::standard);
  CHECK(s.public_refs == 7);
  CHECK(s.oxid == 0x42);
  CHECK(s.oid == 0x43);
  REQUIRE(s.bindings.size() == 2);
  CHECK(s.bindings[0].address == "WIN-TARGET[49667]");

  const auto c = dcom::decode_objref(response("custom_objref"));
  CHECK(c.kind == dcom::ObjRef::Kind::custom);
  CHECK(c.object_data.size() == 16);

  Bytes bad = response("custom_objref");
  bad[0] = 'X';
  CHECK(status_of([&] { dcom::decode_objref(bad); }) == dcom::Status::protocol);
  bad = response("custom_objref");
  bad[4] = 3;  // no such OBJREF kind
  CHECK(status_of([&] { dcom::decode_objref(bad); }) == dcom::Status::protocol);
  bad = response("standard_objref");
  bad[64] = 0xff;  // wNumEntries past the end
  bad[65] = 0xff;
  CHECK(status_of([&] { dcom::decode_objref(bad); }) == dcom::Status::protocol);
  bad = response("standard_objref");
  bad[66] = 0xff;  // wSecurityOffset past the entries
  CHECK(status_of([&] { dcom::decode_objref(bad); }) == dcom::Status::protocol);

  dcom::StringBinding b{7, "host[135]"};
  CHECK(b.port() == 135);
  CHECK(b.host() == "host");
  for (const char* no_port : {"host", "host[]", "host[x1]", "host[70000]", "host[1", "h[1]x"}) {
    INFO(no_port);
    CHECK(!dcom::StringBinding{7, no_port}.port().has_value());
  }
}

TEST_CASE("OBJREF handler, extended, and an empty DUALSTRINGARRAY") {
  // The header and STDOBJREF shared by the three.
  auto start = [](uint32_t flags) {
    dcom::ndr::Writer w;
    w.u32(0x574f454d);
    w.u32(flags);
    w.uuid(dcom::iid_iwbem_services());
    w.u32(0x1000);  // SORF_NOPING
    w.u32(3);
    w.u64(0x0807060504030201u);
    w.u64(0x1112131415161718u);
    w.uuid(kIpidServices);
    return w;
  };
  auto bindings = [](dcom::ndr::Writer& w) {
    // "a[1]" over TCP, the end of the string bindings, one security binding, its end.
    const uint16_t entries[] = {7, 'a', '[', '1', ']', 0, 0, 10, 0xffff, 0, 0};
    w.u16(11);
    w.u16(7);
    for (uint16_t e : entries) w.u16(e);
  };
  auto h = start(2);
  h.uuid(dcom::clsid_wbem_class_object());
  bindings(h);
  const auto handler = dcom::decode_objref(h.out);
  CHECK(handler.kind == dcom::ObjRef::Kind::handler);
  CHECK(handler.clsid == dcom::clsid_wbem_class_object());
  CHECK(handler.ipid == kIpidServices);
  CHECK(handler.public_refs == 3);
  CHECK(handler.oxid == 0x0807060504030201u);
  REQUIRE(handler.bindings.size() == 1);
  CHECK(handler.bindings[0].port() == 1);

  auto e = start(8);
  e.u32(0x4e535956);  // Signature1
  bindings(e);
  e.u32(0);  // nElms
  e.u32(0x4e535956);
  const auto extended = dcom::decode_objref(e.out);
  CHECK(extended.kind == dcom::ObjRef::Kind::extended);
  CHECK(extended.oid == 0x1112131415161718u);
  REQUIRE(extended.bindings.size() == 1);
  CHECK(extended.bindings[0].address == "a[1]");

  // Activation answers may carry an OBJREF with no string bindings at all.
  auto s = start(1);
  s.u16(0);
  s.u16(0);
  const auto empty = dcom::decode_objref(s.out);
  CHECK(empty.kind == dcom::ObjRef::Kind::standard);
  CHECK(empty.bindings.empty());

  // A string binding running into the security bindings without its terminating NUL.
  auto u = start(1);
  const uint16_t unterminated[] = {7, 'a', 'b', 10, 0xffff, 0, 0};
  u.u16(7);
  u.u16(3);
  for (uint16_t v : unterminated) u.u16(v);
  CHECK(status_of([&] { dcom::decode_objref(u.out); }) == dcom::Status::protocol);
}

TEST_CASE("ORPCTHAT extents: NULL slots, and counts past the end") {
  // ORPCTHAT with one extent in an array of two slots (the second NULL), as Windows sends its
  // error information, then a RemRelease HRESULT.
  dcom::ndr::Writer w;
  w.u32(0);     // flags
  w.pointer();  // extensions
  w.u32(1);     // size
  w.u32(0);     // reserved
  w.pointer();  // extent
  w.u32(2);     // slots
  w.pointer();  // slot 0
  w.null();     // slot 1
  w.u32(8);     // data conformance
  w.uuid(Uuid::parse("0000031c-0000-0000-c000-000000000046"));
  w.u32(5);  // size
  for (int i = 0; i < 8; ++i) w.u8(0xee);
  w.u32(0);  // S_OK
  dcom::decode_rem_release(w.out);

  auto patched = [&](std::size_t at, uint32_t v) {
    Bytes b = w.out;
    for (std::size_t i = 0; i < 4; ++i) b[at + i] = static_cast<uint8_t>(v >> (8 * i));
    return b;
  };
  for (uint32_t huge : {0x40000000u, 0xffffffffu, 100u}) {
    INFO(huge);
    CHECK(status_of([&] { dcom::decode_rem_release(patched(20, huge)); }) ==
          dcom::Status::protocol);  // slots
    CHECK(status_of([&] { dcom::decode_rem_release(patched(32, huge)); }) ==
          dcom::Status::protocol);  // data conformance
  }
  // size larger than the slots, and an extent size larger than its data.
  CHECK(status_of([&] { dcom::decode_rem_release(patched(8, 3)); }) == dcom::Status::protocol);
  CHECK(status_of([&] { dcom::decode_rem_release(patched(52, 9)); }) == dcom::Status::protocol);
}

TEST_CASE("every truncated response stub is Error(protocol)") {
  for (const auto& entry : responses()) {
    const std::string& name = entry.first;
    const Bytes& stub = entry.second;
    for (std::size_t n = 0; n < stub.size(); ++n) {
      // An OBJREF_CUSTOM's object data is whatever follows its 48-byte header (nothing says
      // its length), so a bare one cut there or later is still well-formed.
      if (name == "custom_objref" && n >= 48) continue;
      INFO(name << " cut to " << n);
      const auto cut = std::span(stub).first(n);
      CHECK(status_of([&] { decode_any(name, cut); }) == dcom::Status::protocol);
    }
  }
}

TEST_CASE("huge conformant counts and lengths are Error(protocol), not allocations") {
  // Each 4-byte word of a stub replaced in turn by a huge count: never a crash or a bad_alloc;
  // where the word was a count the decoder refuses it.
  std::size_t refused = 0;
  for (const char* name : {"rci", "rci_ext", "next_3", "exec_method", "ntlm_login_ext"}) {
    const auto& stub = response(name);
    for (std::size_t at = 0; at + 4 <= stub.size(); at += 4) {
      for (uint32_t v : {0xffffffffu, 0x7ffffff0u, 0x00010001u}) {
        Bytes b = stub;
        for (std::size_t i = 0; i < 4; ++i) b[at + i] = static_cast<uint8_t>(v >> (8 * i));
        try {
          decode_any(name, b);
        } catch (const dcom::Error& e) {
          if (e.status == dcom::Status::protocol) ++refused;
        }
      }
    }
  }
  CHECK(refused > 100);
}

TEST_CASE("activation properties hostile to their own headers") {
  const Bytes& good = response("rci");
  // Locate the CustomHeader's cIfs: after ORPCTHAT (8), the pointer (4), MInterfacePointer
  // counts (8), the OBJREF_CUSTOM header (48), the BLOB's dwSize/dwReserved (8), the type
  // serialization headers (16) and totalSize, headerSize, dwReserved, destCtx (16).
  constexpr std::size_t kCifs = 8 + 4 + 8 + 48 + 8 + 16 + 16;
  REQUIRE(good[kCifs] == 2);
  for (uint32_t v : {0u, 11u, 3u, 0xffffffffu}) {
    Bytes b = good;
    b[kCifs] = static_cast<uint8_t>(v);
    b[kCifs + 3] = static_cast<uint8_t>(v >> 24);
    INFO(v);
    CHECK(status_of([&] { dcom::decode_remote_create_instance(b); }) == dcom::Status::protocol);
  }
  // headerSize past the BLOB.
  Bytes b = good;
  b[kCifs - 12] = 0xff;
  b[kCifs - 11] = 0xff;
  CHECK(status_of([&] { dcom::decode_remote_create_instance(b); }) == dcom::Status::protocol);
  // A type serialization that claims big-endian data.
  b = good;
  b[kCifs - 16 - 16 + 1] = 0x00;
  CHECK(status_of([&] { dcom::decode_remote_create_instance(b); }) == dcom::Status::protocol);
  // Not an ActivationPropertiesOut: the CLSID of the OBJREF_CUSTOM changed.
  b = good;
  b[8 + 4 + 8 + 24] ^= 1;
  CHECK(status_of([&] { dcom::decode_remote_create_instance(b); }) == dcom::Status::protocol);
}

TEST_CASE("HRESULT names, classes and check") {
  CHECK(dcom::hresult_name(0x80041010) == "WBEM_E_INVALID_CLASS");
  CHECK(dcom::hresult_name(0x80070005) == "E_ACCESSDENIED");
  CHECK(dcom::hresult_name(0x12345678).empty());
  CHECK(dcom::classify(0x80041003) == dcom::Status::denied);
  CHECK(dcom::classify(0x8004100e) == dcom::Status::not_found);
  CHECK(dcom::classify(0x80041008) == dcom::Status::invalid);
  CHECK(dcom::classify(0x8001010a) == dcom::Status::busy);
  CHECK(dcom::classify(0x80043001) == dcom::Status::busy);
  CHECK(dcom::classify(0x80041001) == dcom::Status::failed);
  CHECK(dcom::classify(0x8badf00d) == dcom::Status::failed);
  dcom::check(0, "x");
  dcom::check(dcom::kWbemSFalse, "x");
  dcom::check(dcom::kWbemSTimedOut, "x");
  CHECK(hresult_of([] { dcom::check(0x8badf00d, "Call"); }) == 0x8badf00d);
  CHECK(dcom::status_name(dcom::Status::not_found) == "not_found");
  CHECK(dcom::syntax(dcom::iid_iwbem_services()).major == 0);
  CHECK(dcom::iid_irem_unknown2().to_string() == "00000143-0000-0000-c000-000000000046");
}
