// WS-Management (DMTF DSP0226, Microsoft's MS-WSMV profile of it) as WinRM speaks it: the SOAP
// envelopes of WS-Enumeration over WQL, method invocation and the remote shell, the parser of
// what a server answers (instances, enumeration contexts, shell streams, faults with their
// class), and the multipart/encrypted body of WinRM's message encryption (MS-WSMV 2.2.9.1).
// No transport and no authentication here: the winrm plugin drives HTTP and NTLM/Kerberos.
#pragma once

#include <outpost/plugin.h>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <outpost_lib/wql.hpp>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace outpost::lib::wsman {

// A server's answer that is not WS-Management, or a request that cannot be written.
struct Error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

inline constexpr std::string_view kWmiRoot = "http://schemas.microsoft.com/wbem/wsman/1/wmi/";
inline constexpr std::string_view kShellUri =
    "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/cmd";

// "root/cimv2" + "*" -> http://schemas.microsoft.com/wbem/wsman/1/wmi/root/cimv2/*
std::string wmi_resource_uri(std::string_view wmi_namespace, std::string_view class_name);

// ---- requests ----------------------------------------------------------------------------------

struct Header {
  std::string to;            // the endpoint URL, e.g. http://win1:5985/wsman
  std::string resource_uri;  // what the action applies to
  std::string action;        // the WS-Addressing action URI
  std::string message_id;    // "uuid:..."; empty: a fresh random one
  std::vector<std::pair<std::string, std::string>> selectors;  // w:SelectorSet
  std::vector<std::pair<std::string, std::string>> options;    // w:OptionSet (shell options)
  uint32_t max_envelope_size = 512000;
  double operation_timeout_s = 60;
  std::string locale = "en-US";
};

std::string new_message_id();  // uuid:<random v4>

namespace action {
inline constexpr std::string_view enumerate =
    "http://schemas.xmlsoap.org/ws/2004/09/enumeration/Enumerate";
inline constexpr std::string_view pull = "http://schemas.xmlsoap.org/ws/2004/09/enumeration/Pull";
inline constexpr std::string_view release =
    "http://schemas.xmlsoap.org/ws/2004/09/enumeration/Release";
inline constexpr std::string_view create = "http://schemas.xmlsoap.org/ws/2004/09/transfer/Create";
inline constexpr std::string_view remove = "http://schemas.xmlsoap.org/ws/2004/09/transfer/Delete";
inline constexpr std::string_view command =
    "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/Command";
inline constexpr std::string_view receive =
    "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/Receive";
inline constexpr std::string_view signal =
    "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/Signal";
}  // namespace action

// The whole envelope: the header, then `body` (already XML, may be empty) inside s:Body.
std::string envelope(const Header& h, std::string_view body);

// n:Enumerate with a WQL filter (optimized: the first items come in the answer itself).
std::string enumerate_body(std::string_view wql, uint32_t max_elements);
std::string pull_body(std::string_view context, uint32_t max_elements);
std::string release_body(std::string_view context);
// <p:METHOD_INPUT xmlns:p="RESOURCE_URI"><p:Name>value</p:Name>...</p:METHOD_INPUT>
std::string invoke_body(std::string_view resource_uri, std::string_view method,
                        const std::vector<std::pair<std::string, std::string>>& args);
// The remote shell (cmd): create, one command, receive its output, terminate it.
std::string shell_create_body();
std::string shell_command_body(std::string_view command, const std::vector<std::string>& args);
std::string shell_receive_body(std::string_view command_id);
std::string shell_signal_body(std::string_view command_id);  // terminate

// ---- answers ---------------------------------------------------------------------------------

// One WMI instance (or a projection of one: class_name is then XmlFragment), shared with the
// wmi plugin through plugins/lib/wql.
using Instance = outpost::lib::wql::Instance;
using Property = outpost::lib::wql::Property;

struct Fault {
  std::string code;         // s:Code/s:Value local name: Sender, Receiver
  std::string subcode;      // s:Subcode/s:Value local name: AccessDenied, QuotaLimit, ...
  std::string reason;       // s:Reason/s:Text
  uint32_t wsman_code = 0;  // the WSManFault detail's Code (a Win32 or WinRM error number)
  std::string message;      // the WSManFault detail's Message text
  // What the engine does about it. Retry class: OUTPOST_E_BUSY for quota and throttling,
  // OUTPOST_E_TIMEOUT for an operation that timed out, OUTPOST_E_UNAVAILABLE for anything not
  // known to be the operator's. Operator class: OUTPOST_E_AUTH for access denied,
  // OUTPOST_E_NOT_FOUND for a class, namespace or selector the server does not have,
  // OUTPOST_E_CONFIG for a query or option it refuses.
  outpost_status status() const;
  std::string text() const;  // one line for a detail: "AccessDenied (5): Access is denied."
};

struct ShellOutput {
  std::string stdout_data, stderr_data;  // decoded from the base64 streams
  bool done = false;                     // CommandState Done
  std::optional<int64_t> exit_code;
};

struct Response {
  std::string action;  // a:Action
  std::string relates_to;
  std::optional<Fault> fault;
  // Enumerate/Pull
  std::vector<Instance> items;
  std::string context;  // the enumeration context for the next Pull; empty when none
  bool end_of_sequence = false;
  // Invoke: the METHOD_OUTPUT element as an instance (ReturnValue and out parameters)
  std::optional<Instance> output;
  // Shell
  std::string shell_id, command_id;
  ShellOutput shell;
};

struct ParseLimits {
  std::size_t max_items = 100000;
  std::size_t max_properties = 4096;  // per instance
  std::size_t max_depth = 64;
};

// Parses a SOAP 1.2 answer. Throws Error when it is not XML or not a SOAP envelope; a DOCTYPE
// (entity tricks) is refused.
Response parse(std::string_view xml, const ParseLimits& limits = {});

// ---- message encryption (MS-WSMV 2.2.9.1.1) -------------------------------------------------

// The protocol names of the Content-Type; NTLM and Kerberos through SPNEGO use the first.
inline constexpr std::string_view kSpnegoEncrypted = "application/HTTP-SPNEGO-session-encrypted";
inline constexpr std::string_view kKerberosEncrypted =
    "application/HTTP-Kerberos-session-encrypted";

// The Content-Type header of an encrypted body.
std::string encrypted_content_type(std::string_view protocol);
// The body: `sealed` is what the security layer made of the SOAP text (for NTLM: the 4-byte
// little-endian signature length, the signature, the sealed bytes); `original_length` is the
// SOAP text's length.
std::string encrypted_body(std::string_view protocol, std::size_t original_length,
                           std::string_view sealed);
struct EncryptedPart {
  std::size_t original_length = 0;
  std::string_view sealed;  // a view into the body
};
// Reads an encrypted body back. Throws Error on anything malformed.
EncryptedPart parse_encrypted_body(std::string_view body, std::string_view protocol);

// NTLM's sealed form: [uint32 LE 16][16-byte signature][sealed message] <-> its parts.
std::string ntlm_sealed(std::string_view signature, std::string_view sealed_message);
std::pair<std::string_view, std::string_view> split_ntlm_sealed(std::string_view sealed);
// Kerberos' sealed form is the same with the GSS wrap header in place of the signature (its
// length varies with the cipher; at most 1024 bytes are accepted).
std::pair<std::string_view, std::string_view> split_sealed(std::string_view sealed);

std::string base64_encode(std::string_view bytes);
std::optional<std::string> base64_decode(std::string_view text);  // nullopt when malformed
std::string xml_escape(std::string_view text);

}  // namespace outpost::lib::wsman
