// A DCE/RPC client over TCP (ncacn_ip_tcp): the connection-oriented protocol of C706 chapter 12
// with the Microsoft extensions of MS-RPCE, NTLM authentication (auth type 10) at the connect,
// packet integrity and packet privacy levels, and the endpoint mapper's ept_map. The transport
// of the wmi plugin (DCOM). Sans-I/O: the caller moves the bytes; every function here is bytes
// in, bytes out, and every malformed input is an Error, never a crash.
//
// One call at a time per association (no concurrent multiplexing), little-endian ASCII IEEE
// data representation only (what every Windows and Samba server sends).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <outpost_lib/ntlm.hpp>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace outpost::lib::dcerpc {

// How an engine should read a failure.
enum class Status : uint8_t {
  protocol,      // malformed or unexpected PDU, or a fault saying the peer did not follow us
  auth_refused,  // credentials or authentication level refused (bind_nak, access denied)
  integrity,     // a signature that does not verify: tampering or a broken session; drop it
  unavailable,   // interface or endpoint not served there, or the server is too busy
  fault,         // the call itself failed on the server; `code` says why
};
std::string_view status_name(Status s);

// Thrown for everything that goes wrong; what() holds no secret and no peer bytes beyond
// numbers, so it is safe to log. `code` is the fault status, the bind_nak or provider reject
// reason, or the ept_map status; 0 when there is none.
struct Error : std::runtime_error {
  Error(Status s, uint32_t c, const std::string& what)
      : std::runtime_error(what), status(s), code(c) {}
  Status status;
  uint32_t code;
};

// Name of an nca_s_* / rpc_s_* / Win32 status a fault or the endpoint mapper can carry, e.g.
// 0x1c010003 -> "nca_s_unk_if", 0x5 -> "rpc_s_access_denied"; "" when unknown.
std::string_view fault_name(uint32_t status);
// The Status an engine should see for a fault status.
Status classify_fault(uint32_t status);

inline constexpr uint32_t kNcaUnknownInterface = 0x1c010003;
inline constexpr uint32_t kNcaOpRangeError = 0x1c010002;
inline constexpr uint32_t kNcaProtoError = 0x1c01000b;
inline constexpr uint32_t kNcaServerTooBusy = 0x1c010014;
inline constexpr uint32_t kNcaInvalidChecksum = 0x1c00001f;
inline constexpr uint32_t kNcaUnsupportedAuthnLevel = 0x1c00001d;
inline constexpr uint32_t kRpcAccessDenied = 0x00000005;
inline constexpr uint32_t kRpcSecPkgError = 0x00000721;
inline constexpr uint32_t kEptNotRegistered = 0x16c9a0d6;

struct Uuid {
  std::array<uint8_t, 16> bytes{};  // in text order (time_low big-endian first)

  // "12345778-1234-abcd-ef00-0123456789ac", case-insensitive; throws Error otherwise.
  static Uuid parse(std::string_view text);
  std::string to_string() const;  // lower case
  // NDR form: time_low, time_mid, time_hi_and_version little-endian, the rest as is.
  std::array<uint8_t, 16> to_wire() const;
  static Uuid from_wire(std::span<const uint8_t, 16> wire);
  friend bool operator==(const Uuid&, const Uuid&) = default;
};

struct SyntaxId {
  Uuid uuid;
  uint16_t major = 0, minor = 0;
  friend bool operator==(const SyntaxId&, const SyntaxId&) = default;
};
// NDR 8a885d04-1ceb-11c9-9fe8-08002b104860 version 2.0.
SyntaxId ndr_syntax();

// ---- PDUs (C706 12.6, MS-RPCE 2.2.2)

enum class PduType : uint8_t {
  request = 0,
  response = 2,
  fault = 3,
  bind = 11,
  bind_ack = 12,
  bind_nak = 13,
  alter_context = 14,
  alter_context_resp = 15,
  auth3 = 16,
  shutdown = 17,
  co_cancel = 18,
  orphaned = 19,
};
inline constexpr uint8_t kFirstFrag = 0x01;
inline constexpr uint8_t kLastFrag = 0x02;
inline constexpr uint8_t kObjectUuid = 0x80;
inline constexpr std::size_t kHeaderSize = 16;
inline constexpr std::size_t kSecTrailerSize = 8;
inline constexpr std::size_t kNtlmSignatureSize = 16;

enum class AuthLevel : uint8_t { none = 1, connect = 2, integrity = 5, privacy = 6 };
inline constexpr uint8_t kAuthTypeNtlm = 10;  // RPC_C_AUTHN_WINNT

// sec_trailer (MS-RPCE 2.2.2.11) and the auth_value that follows it.
struct AuthVerifier {
  uint8_t type = kAuthTypeNtlm;
  uint8_t level = 0;
  uint8_t pad_length = 0;  // how many bytes at the end of the body are padding
  uint32_t context_id = 0;
  std::vector<uint8_t> value;
};

struct ContextElement {
  uint16_t context_id = 0;
  SyntaxId abstract_syntax;
  std::vector<SyntaxId> transfer_syntaxes;
};
struct Bind {  // also alter_context
  uint16_t max_xmit_frag = 0, max_recv_frag = 0;
  uint32_t assoc_group_id = 0;
  std::vector<ContextElement> contexts;
};
enum class ContextResultCode : uint16_t {
  acceptance = 0,
  user_rejection = 1,
  provider_rejection = 2
};
struct ContextResult {
  uint16_t result = 0;  // ContextResultCode
  uint16_t reason = 0;  // 1: abstract syntax, 2: transfer syntaxes not supported
  SyntaxId transfer_syntax;
};
struct BindAck {  // also alter_context_resp
  uint16_t max_xmit_frag = 0, max_recv_frag = 0;
  uint32_t assoc_group_id = 0;
  std::string secondary_address;  // the port as text, without its NUL; empty in alter_context_resp
  std::vector<ContextResult> results;
};
struct BindNak {
  uint16_t reason = 0;  // C706 p_reject_reason_t; MS-RPCE adds 8..9
  std::vector<std::array<uint8_t, 2>> versions;
};
struct Request {
  uint32_t alloc_hint = 0;
  uint16_t context_id = 0, opnum = 0;
  std::optional<Uuid> object;  // sets kObjectUuid
};
struct Response {
  uint32_t alloc_hint = 0;
  uint16_t context_id = 0;
  uint8_t cancel_count = 0;
};
struct Fault {
  uint32_t alloc_hint = 0;
  uint16_t context_id = 0;
  uint8_t cancel_count = 0;
  uint32_t status = 0;
};
struct Auth3 {};
struct Other {};  // shutdown, co_cancel, orphaned: header only

struct Pdu {
  PduType type = PduType::request;
  uint8_t flags = kFirstFrag | kLastFrag;
  uint32_t call_id = 0;
  std::variant<Other, Bind, BindAck, BindNak, Request, Response, Fault, Auth3> body;
  // request, response, fault: the stub (encrypted at privacy) including the auth padding.
  std::vector<uint8_t> stub;
  std::optional<AuthVerifier> auth;
};
// frag_length and auth_length are computed. Throws Error when the PDU would exceed 65535 bytes
// or the body does not match the type.
std::vector<uint8_t> encode(const Pdu& pdu);
// One complete PDU; throws Error (Status::protocol) on anything malformed: version other than
// 5.0, non-little-endian data representation, frag_length not the size given, auth_length or
// pad length beyond the PDU, truncated bodies, counts that run past the end.
Pdu decode(std::span<const uint8_t> bytes);

// Cuts PDUs out of a TCP byte stream by their frag_length.
class Reader {
 public:
  explicit Reader(std::size_t max_fragment = 65535) : max_(max_fragment) {}
  void feed(std::span<const uint8_t> bytes);
  // The next whole PDU, or nullopt until more bytes come. Throws Error when the header is not
  // DCE/RPC 5.0 or frag_length is below the header size or above the maximum: the stream can
  // not be resynchronised, drop the connection.
  std::optional<std::vector<uint8_t>> next();
  std::size_t buffered() const { return buf_.size() - at_; }

 private:
  std::vector<uint8_t> buf_;
  std::size_t at_ = 0, max_;
};

// ---- One association: one TCP connection, its presentation contexts, its security context.

struct AssociationOptions {
  uint16_t max_xmit_frag = 5840, max_recv_frag = 5840;
  uint32_t auth_context_id = 0;
  std::size_t max_response = 16u << 20;  // bound on a reassembled response stub
  std::string workstation;               // NTLM workstation name; may be empty
  // For tests only: fixed NTLM randomness (see ntlm::ClientOptions).
  std::optional<std::array<uint8_t, 8>> ntlm_client_challenge;
  std::optional<std::array<uint8_t, 16>> ntlm_exported_session_key;
  std::optional<uint64_t> ntlm_timestamp;
};

class Association {
 public:
  // Without credentials the level must be AuthLevel::none; with them, any other level. Throws
  // Error otherwise.
  Association(AuthLevel level, std::optional<ntlm::Credentials> credentials,
              AssociationOptions options = {});
  Association(Association&&) noexcept;
  Association& operator=(Association&&) noexcept;
  ~Association();

  // The bind PDU for presentation context 0 (with the NTLM NEGOTIATE when authenticating).
  std::vector<uint8_t> bind(const SyntaxId& abstract_syntax);
  // From the server's bind_ack: the bytes to send next (AUTH3 with NTLM, empty without), after
  // which requests may go. Throws Error for a bind_nak (auth_refused when the reason is about
  // authentication, unavailable when busy), a rejected context (unavailable: abstract syntax
  // not supported), a refused NTLM challenge (auth_refused), anything else (protocol).
  std::vector<uint8_t> on_bind_ack(std::span<const uint8_t> pdu);
  // A second (third...) interface on the same connection and security context: the
  // alter_context PDU; on_alter_context_resp() makes it the current context.
  std::vector<uint8_t> alter_context(const SyntaxId& abstract_syntax);
  void on_alter_context_resp(std::span<const uint8_t> pdu);

  // The fragments of one call on `context_id` (default: the context bound last), each at most
  // the negotiated max_xmit_frag, signed or sealed per the level. Throws Error if the
  // association is not bound or a call is outstanding.
  std::vector<std::vector<uint8_t>> request(uint16_t opnum, std::span<const uint8_t> stub,
                                            std::optional<Uuid> object = std::nullopt,
                                            std::optional<uint16_t> context_id = std::nullopt);
  // One PDU of the answer: the whole stub (verified and decrypted) once the last fragment came,
  // nullopt before. A fault throws Error with its status (classify_fault), except that
  // nca_s_proto_error, access denied or sec_pkg_error on the first call after AUTH3 is
  // auth_refused (AUTH3 has no answer: that is how servers refuse credentials). A bad signature
  // throws Status::integrity and the association is unusable from then on.
  std::optional<std::vector<uint8_t>> on_response(std::span<const uint8_t> pdu);
  // The Error to report when the server closed the connection now: after AUTH3 with no answer
  // to the first call that is auth_refused (Samba and Windows hang up on bad credentials).
  Error closed() const;

  bool bound() const { return state_ == State::ready || state_ == State::call; }
  std::optional<uint16_t> context_id(const SyntaxId& abstract_syntax) const;
  uint16_t max_xmit_frag() const { return xmit_; }
  uint32_t assoc_group_id() const { return assoc_group_; }
  std::string_view secondary_address() const { return secondary_; }

 private:
  enum class State : uint8_t { idle, binding, altering, ready, call, broken };
  std::vector<uint8_t> encode_call(Pdu& pdu);
  uint16_t take_context(const BindAck& ack, PduType type);

  AuthLevel level_;
  AssociationOptions opts_;
  std::unique_ptr<ntlm::Client> ntlm_;
  std::unique_ptr<ntlm::Session> session_;
  State state_ = State::idle;
  uint32_t next_call_ = 1, call_id_ = 0, assoc_group_ = 0;
  uint16_t xmit_ = 0, current_ = 0;
  std::string secondary_;
  std::vector<SyntaxId> contexts_;  // index = presentation context id; accepted ones only
  std::optional<SyntaxId> pending_;
  bool auth3_sent_ = false, answered_since_auth3_ = false;
  std::vector<uint8_t> assembling_;
  bool in_response_ = false;
};

// ---- The endpoint mapper (C706 appendix O, MS-RPCE 2.2.1.2.5), at 135/tcp.

// e1af8308-5d1f-11c9-91a4-08002b14a0fa v3.0.
SyntaxId epmapper_syntax();
inline constexpr uint16_t kEptMapOpnum = 3;
// The protocol tower of ncacn_ip_tcp for `iface`: interface, NDR, RPC connection-oriented
// (0x0b), TCP port (0x07, 0), IP (0x09, 0.0.0.0).
std::vector<uint8_t> tcp_tower(const SyntaxId& iface);
// The ept_map request stub (object nil, a zero entry handle, max_towers towers).
std::vector<uint8_t> ept_map_request(const SyntaxId& iface, uint32_t max_towers = 4);
// The TCP ports in the towers of an ept_map response stub. Throws Error(unavailable,
// kEptNotRegistered) when the interface is not registered, Error(protocol) when malformed.
std::vector<uint16_t> ept_map_ports(std::span<const uint8_t> response_stub);

}  // namespace outpost::lib::dcerpc
