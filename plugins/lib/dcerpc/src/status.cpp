// Names and classes of the status codes a fault PDU or the endpoint mapper carries (C706
// appendix E, MS-RPCE 2.2.2.11 and 3.1.1.5.5, and the Win32 codes Windows puts in faults).
#include <outpost_lib/dcerpc.hpp>
#include <utility>

namespace outpost::lib::dcerpc {

namespace {

struct Named {
  uint32_t code;
  std::string_view name;
  Status status;
};

constexpr Named kFaults[] = {
    {0x00000005, "rpc_s_access_denied", Status::auth_refused},
    {0x00000006, "rpc_s_invalid_handle", Status::fault},
    {0x00000057, "rpc_s_invalid_parameter", Status::fault},
    {0x000006a4, "rpc_s_server_unavailable", Status::unavailable},
    {0x000006a5, "rpc_s_server_too_busy", Status::unavailable},
    {0x000006d1, "rpc_s_procnum_out_of_range", Status::protocol},
    {0x000006f7, "rpc_x_bad_stub_data", Status::protocol},
    {kRpcSecPkgError, "rpc_s_sec_pkg_error", Status::auth_refused},
    {0x1c000001, "nca_s_fault_int_div_by_zero", Status::fault},
    {0x1c000002, "nca_s_fault_addr_error", Status::fault},
    {0x1c000006, "nca_s_fault_invalid_tag", Status::protocol},
    {0x1c000007, "nca_s_fault_invalid_bound", Status::protocol},
    {0x1c000008, "nca_s_rpc_version_mismatch", Status::protocol},
    {0x1c000009, "nca_s_unspec_reject", Status::fault},
    {0x1c00000a, "nca_s_bad_actid", Status::protocol},
    {0x1c00000c, "nca_s_manager_not_entered", Status::unavailable},
    {0x1c00000d, "nca_s_fault_cancel", Status::fault},
    {0x1c000012, "nca_s_fault_unspec", Status::fault},
    {0x1c000013, "nca_s_fault_remote_comm_failure", Status::unavailable},
    {0x1c00001a, "nca_s_fault_context_mismatch", Status::protocol},
    {0x1c00001b, "nca_s_fault_remote_no_memory", Status::unavailable},
    {0x1c00001c, "nca_s_invalid_pres_context_id", Status::protocol},
    {kNcaUnsupportedAuthnLevel, "nca_s_unsupported_authn_level", Status::auth_refused},
    {kNcaInvalidChecksum, "nca_s_invalid_checksum", Status::integrity},
    {0x1c000020, "nca_s_invalid_crc", Status::integrity},
    {0x1c000021, "nca_s_fault_user_defined", Status::fault},
    {0x1c000024, "nca_s_fault_object_not_found", Status::unavailable},
    {0x1c010001, "nca_s_comm_failure", Status::unavailable},
    {kNcaOpRangeError, "nca_s_op_rng_error", Status::protocol},
    {kNcaUnknownInterface, "nca_s_unk_if", Status::unavailable},
    {0x1c010006, "nca_s_wrong_boot_time", Status::protocol},
    {kNcaProtoError, "nca_s_proto_error", Status::protocol},
    {0x1c010013, "nca_s_out_args_too_big", Status::fault},
    {kNcaServerTooBusy, "nca_s_server_too_busy", Status::unavailable},
    {0x1c010017, "nca_s_unsupported_type", Status::unavailable},
    {0x16c9a01b, "rpc_s_object_not_found", Status::unavailable},
    {0x16c9a01f, "rpc_s_endpoint_not_found", Status::unavailable},
    {kEptNotRegistered, "ept_s_not_registered", Status::unavailable},
};

const Named* find(uint32_t code) {
  for (const auto& n : kFaults) {
    if (n.code == code) return &n;
  }
  return nullptr;
}

}  // namespace

std::string_view status_name(Status s) {
  switch (s) {
    case Status::protocol:
      return "protocol";
    case Status::auth_refused:
      return "auth_refused";
    case Status::integrity:
      return "integrity";
    case Status::unavailable:
      return "unavailable";
    case Status::fault:
      return "fault";
  }
  return "?";
}

std::string_view fault_name(uint32_t status) {
  const Named* n = find(status);
  return n ? n->name : std::string_view{};
}

Status classify_fault(uint32_t status) {
  const Named* n = find(status);
  return n ? n->status : Status::fault;
}

}  // namespace outpost::lib::dcerpc
