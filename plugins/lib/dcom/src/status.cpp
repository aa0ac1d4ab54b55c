// HRESULT names and classes (MS-ERREF 2.1, MS-WMI 2.2.11), and the well-known GUIDs of DCOM and
// WMI (MS-DCOM 1.9, MS-WMI 1.9).
#include <outpost_lib/dcom.hpp>

namespace outpost::lib::dcom {

namespace {

struct Named {
  uint32_t hr;
  std::string_view name;
  Status status;
};

constexpr Named kHresults[] = {
    {0x80004001, "E_NOTIMPL", Status::failed},
    {0x80004002, "E_NOINTERFACE", Status::not_found},
    {0x80004005, "E_FAIL", Status::failed},
    {0x8000ffff, "E_UNEXPECTED", Status::failed},
    {0x80070005, "E_ACCESSDENIED", Status::denied},
    {0x8007000e, "E_OUTOFMEMORY", Status::busy},
    {0x80070057, "E_INVALIDARG", Status::invalid},
    {0x80010108, "RPC_E_DISCONNECTED", Status::failed},
    {0x8001010a, "RPC_E_SERVERCALL_RETRYLATER", Status::busy},
    {0x80010114, "RPC_E_INVALID_OBJECT", Status::not_found},
    {0x80040154, "REGDB_E_CLASSNOTREG", Status::not_found},
    {0x80080005, "CO_E_SERVER_EXEC_FAILURE", Status::failed},
    {0x80041001, "WBEM_E_FAILED", Status::failed},
    {0x80041002, "WBEM_E_NOT_FOUND", Status::not_found},
    {0x80041003, "WBEM_E_ACCESS_DENIED", Status::denied},
    {0x80041004, "WBEM_E_PROVIDER_FAILURE", Status::failed},
    {0x80041005, "WBEM_E_TYPE_MISMATCH", Status::invalid},
    {0x80041006, "WBEM_E_OUT_OF_MEMORY", Status::busy},
    {0x80041008, "WBEM_E_INVALID_PARAMETER", Status::invalid},
    {0x8004100c, "WBEM_E_NOT_SUPPORTED", Status::invalid},
    {0x8004100e, "WBEM_E_INVALID_NAMESPACE", Status::not_found},
    {0x80041010, "WBEM_E_INVALID_CLASS", Status::not_found},
    {0x80041011, "WBEM_E_PROVIDER_NOT_FOUND", Status::not_found},
    {0x80041013, "WBEM_E_PROVIDER_LOAD_FAILURE", Status::failed},
    {0x80041017, "WBEM_E_INVALID_QUERY", Status::invalid},
    {0x80041018, "WBEM_E_INVALID_QUERY_TYPE", Status::invalid},
    {0x80041032, "WBEM_E_CALL_CANCELLED", Status::failed},
    {0x80041033, "WBEM_E_SHUTTING_DOWN", Status::busy},
    {0x8004103a, "WBEM_E_INVALID_OBJECT_PATH", Status::invalid},
    {0x80041045, "WBEM_E_SERVER_TOO_BUSY", Status::busy},
    {0x8004102e, "WBEM_E_INVALID_METHOD", Status::invalid},
    {0x8004102f, "WBEM_E_INVALID_METHOD_PARAMETERS", Status::invalid},
    {0x8004106c, "WBEM_E_QUOTA_VIOLATION", Status::busy},
    {0x80043001, "WBEM_E_TIMED_OUT", Status::busy},
    {0x00000001, "WBEM_S_FALSE", Status::failed},
    {0x00040004, "WBEM_S_TIMEDOUT", Status::failed},
};

}  // namespace

std::string_view status_name(Status s) {
  switch (s) {
    case Status::protocol:
      return "protocol";
    case Status::denied:
      return "denied";
    case Status::not_found:
      return "not_found";
    case Status::invalid:
      return "invalid";
    case Status::busy:
      return "busy";
    case Status::failed:
      return "failed";
  }
  return "unknown";
}

std::string_view hresult_name(uint32_t hr) {
  if (hr == 0) return "S_OK";
  for (const auto& n : kHresults) {
    if (n.hr == hr) return n.name;
  }
  return "";
}

Status classify(uint32_t hr) {
  for (const auto& n : kHresults) {
    if (n.hr == hr) return n.status;
  }
  return Status::failed;
}

void check(uint32_t hr, std::string_view call) {
  if ((hr & 0x80000000u) == 0) return;
  static constexpr char kHex[] = "0123456789abcdef";
  std::string text = "0x";
  for (int i = 28; i >= 0; i -= 4) text += kHex[(hr >> i) & 15];
  const auto name = hresult_name(hr);
  if (!name.empty()) text += " " + std::string(name);
  throw Error(classify(hr), hr, std::string(call) + " failed: " + text);
}

Uuid iid_iunknown() { return Uuid::parse("00000000-0000-0000-c000-000000000046"); }
Uuid iid_irem_unknown() { return Uuid::parse("00000131-0000-0000-c000-000000000046"); }
Uuid iid_irem_unknown2() { return Uuid::parse("00000143-0000-0000-c000-000000000046"); }
Uuid iid_iremote_scm_activator() { return Uuid::parse("000001a0-0000-0000-c000-000000000046"); }
Uuid iid_iobject_exporter() { return Uuid::parse("99fcfec4-5260-101b-bbcb-00aa0021347a"); }
Uuid clsid_wbem_level1_login() { return Uuid::parse("8bc3f05e-d86b-11d0-a075-00c04fb68820"); }
Uuid iid_iwbem_level1_login() { return Uuid::parse("f309ad18-d86a-11d0-a075-00c04fb68820"); }
Uuid iid_iwbem_services() { return Uuid::parse("9556dc99-828c-11cf-a37e-00aa003240c7"); }
Uuid iid_ienum_wbem_class_object() { return Uuid::parse("027947e1-d731-11ce-a357-000000000001"); }
Uuid clsid_wbem_class_object() { return Uuid::parse("4590f812-1d3a-11d0-891f-00aa004b2e24"); }

dcerpc::SyntaxId syntax(const Uuid& iid) { return {iid, 0, 0}; }

}  // namespace outpost::lib::dcom
