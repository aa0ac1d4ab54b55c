// DCOM (MS-DCOM) and the WMI interfaces over it (MS-WMI), as the wmi plugin needs them: the
// activation of WMI's level-1 login object on the object resolver (IRemoteSCMActivator::
// RemoteCreateInstance at 135/tcp), the object references that come back (OBJREF, the OXID's
// string bindings), and the ORPC calls of a WQL query: IWbemLevel1Login::NTLMLogin,
// IWbemServices::ExecQuery and ExecMethod, IEnumWbemClassObject::Next, IRemUnknown::RemRelease.
//
// Sans-I/O and NDR only: each function builds the stub of one request (ORPCTHIS first) or reads
// the stub of one response (ORPCTHAT first); plugins/lib/dcerpc carries the stubs (the object
// UUID of a call is the IPID of the interface it goes to). Every response comes from the network:
// every pointer, count, offset and length is checked; a malformed stub throws Error(protocol).
#pragma once

#include <cstdint>
#include <optional>
#include <outpost_lib/dcerpc.hpp>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace outpost::lib::dcom {

using dcerpc::Uuid;

enum class Status : uint8_t {
  protocol,   // malformed stub or an answer that does not fit the call
  denied,     // E_ACCESSDENIED, WBEM_E_ACCESS_DENIED: the account lacks DCOM/WMI rights
  not_found,  // WBEM_E_INVALID_CLASS, WBEM_E_NOT_FOUND, WBEM_E_INVALID_NAMESPACE
  invalid,    // WBEM_E_INVALID_QUERY, WBEM_E_INVALID_PARAMETER, ...: the request is wrong
  busy,       // WBEM_E_QUOTA_VIOLATION, WBEM_E_TIMED_OUT, RPC_E_SERVERCALL_RETRYLATER, ...
  failed,     // any other failing HRESULT
};
std::string_view status_name(Status s);

struct Error : std::runtime_error {
  Error(Status s, uint32_t hr, const std::string& what)
      : std::runtime_error(what), status(s), hresult(hr) {}
  Status status;
  uint32_t hresult;  // 0 when the error is not an HRESULT
};

// "WBEM_E_INVALID_CLASS" for 0x80041010, "E_ACCESSDENIED" for 0x80070005, ...; "" if unknown.
std::string_view hresult_name(uint32_t hr);
Status classify(uint32_t hr);
// A failing HRESULT (high bit set) as an Error naming the call; success codes pass.
void check(uint32_t hr, std::string_view call);

inline constexpr uint32_t kWbemSFalse = 0x00000001;     // Next: fewer objects than asked
inline constexpr uint32_t kWbemSTimedOut = 0x00040004;  // Next: none ready within lTimeout
inline constexpr int32_t kWbemInfinite = -1;
inline constexpr int32_t kWbemFlagForwardOnly = 0x20;  // ExecQuery flags
inline constexpr int32_t kWbemFlagReturnImmediately = 0x10;

// Interfaces and classes.
Uuid iid_iunknown();                 // 00000000-0000-0000-c000-000000000046
Uuid iid_irem_unknown();             // 00000131-0000-0000-c000-000000000046
Uuid iid_irem_unknown2();            // 00000143-0000-0000-c000-000000000046
Uuid iid_iremote_scm_activator();    // 000001a0-0000-0000-c000-000000000046
Uuid iid_iobject_exporter();         // 99fcfec4-5260-101b-bbcb-00aa0021347a
Uuid clsid_wbem_level1_login();      // 8bc3f05e-d86b-11d0-a075-00c04fb68820
Uuid iid_iwbem_level1_login();       // f309ad18-d86a-11d0-a075-00c04fb68820
Uuid iid_iwbem_services();           // 9556dc99-828c-11cf-a37e-00aa003240c7
Uuid iid_ienum_wbem_class_object();  // 027947e1-d731-11ce-a357-000000000001
Uuid clsid_wbem_class_object();      // 4590f812-1d3a-11d0-891f-00aa004b2e24 (OBJREF_CUSTOM)
// The presentation syntax of an interface (version 0.0, as DCOM binds them).
dcerpc::SyntaxId syntax(const Uuid& iid);

// Opnums (IUnknown's three come first in every DCOM interface).
inline constexpr uint16_t kRemoteCreateInstance = 4;  // IRemoteSCMActivator
inline constexpr uint16_t kRemRelease = 5;            // IRemUnknown
inline constexpr uint16_t kNtlmLogin = 6;             // IWbemLevel1Login
inline constexpr uint16_t kExecQuery = 20;            // IWbemServices
inline constexpr uint16_t kExecMethod = 24;           // IWbemServices
inline constexpr uint16_t kEnumNext = 4;              // IEnumWbemClassObject

// A string binding of a DUALSTRINGARRAY (MS-DCOM 2.2.19): tower id (0x07 ncacn_ip_tcp) and
// network address, "host[port]" or "host".
struct StringBinding {
  uint16_t tower_id = 0;
  std::string address;
  // The port in "host[port]"; nullopt when there is none or it is not a number.
  std::optional<uint16_t> port() const;
  std::string host() const;  // the address without "[port]"
};
inline constexpr uint16_t kTowerTcp = 0x07;

// A decoded OBJREF (MS-DCOM 2.2.18). Standard: the interface's OXID, OID and IPID; custom
// (IWbemClassObject marshals by value): the class and the object data.
struct ObjRef {
  enum class Kind { standard, handler, custom, extended } kind = Kind::standard;
  Uuid iid;
  uint64_t oxid = 0, oid = 0;
  Uuid ipid;
  uint32_t public_refs = 0;
  std::vector<StringBinding> bindings;  // standard/handler: the resolver's string bindings
  Uuid clsid;                           // custom
  std::vector<uint8_t> object_data;     // custom: for IWbemClassObject an MS-WMIO EncodingUnit
};
// An MInterfacePointer's abData.
ObjRef decode_objref(std::span<const uint8_t> data);

// ---- requests: each returns the stub; `causality` is the call's CID (one per logical call
// chain; any random UUID).

// IRemoteSCMActivator::RemoteCreateInstance: CLSID `clsid`, one interface `iid`, ncacn_ip_tcp
// asked for, the server's own machine (no location), impersonation level identify.
std::vector<uint8_t> remote_create_instance(const Uuid& causality, const Uuid& clsid,
                                            const Uuid& iid);
// IWbemLevel1Login::NTLMLogin(namespace, locale NULL, flags 0, context NULL).
std::vector<uint8_t> ntlm_login(const Uuid& causality, std::string_view wmi_namespace);
// IWbemServices::ExecQuery("WQL", wql, flags, NULL).
std::vector<uint8_t> exec_query(const Uuid& causality, std::string_view wql,
                                int32_t flags = kWbemFlagForwardOnly | kWbemFlagReturnImmediately);
// IWbemServices::ExecMethod(object path, method, 0, NULL, in-params NULL, out-params wanted,
// call result not).
std::vector<uint8_t> exec_method(const Uuid& causality, std::string_view object_path,
                                 std::string_view method);
// IEnumWbemClassObject::Next(timeout in ms or kWbemInfinite, count).
std::vector<uint8_t> enum_next(const Uuid& causality, int32_t timeout_ms, uint32_t count);
// IRemUnknown::RemRelease of `public_refs` references to each IPID.
struct Release {
  Uuid ipid;
  uint32_t public_refs = 5;
};
std::vector<uint8_t> rem_release(const Uuid& causality, std::span<const Release> refs);

// ---- responses

struct Activation {
  uint64_t oxid = 0;
  std::vector<StringBinding> bindings;  // where the OXID's object exporter listens
  Uuid remunknown_ipid;                 // its IRemUnknown(2), for RemRelease
  uint32_t authn_hint = 0;              // the level the server expects at least
  uint16_t com_major = 0, com_minor = 0;
  ObjRef object;  // the interface asked for
};
// The RemoteCreateInstance answer. A failing HRESULT (the call's, or the interface's result)
// throws Error with it.
Activation decode_remote_create_instance(std::span<const uint8_t> stub);
// NTLMLogin and ExecQuery: ORPCTHAT, one interface pointer, HRESULT.
ObjRef decode_interface_result(std::span<const uint8_t> stub, std::string_view call);
// ExecMethod: the out-parameters object (an __PARAMETERS instance, OBJREF_CUSTOM), if any.
std::optional<ObjRef> decode_exec_method(std::span<const uint8_t> stub);
// Next: the objects returned (OBJREF_CUSTOM each) and the HRESULT (kWbemSFalse: the end).
// `asked` is the count the request asked for: an answer with more objects is refused.
struct NextResult {
  std::vector<ObjRef> objects;
  uint32_t hresult = 0;
};
NextResult decode_enum_next(std::span<const uint8_t> stub, uint32_t asked);
// RemRelease: the HRESULT checked.
void decode_rem_release(std::span<const uint8_t> stub);

}  // namespace outpost::lib::dcom
