// One association (C706 12.4 with MS-RPCE 3.3): bind or alter_context to a presentation
// context, the three-leg NTLM handshake (bind, bind_ack, rpc_auth_3), and calls whose
// fragments are signed (packet integrity) or sealed (packet privacy) one by one.
#include <algorithm>
#include <cstdio>
#include <outpost_lib/dcerpc.hpp>

#include "wire.hpp"

namespace outpost::lib::dcerpc {

namespace {

constexpr std::size_t kRequestHeader = 24, kResponseHeader = 24;
constexpr std::size_t kAuthPadAlignment = 16;  // what Windows and Samba pad stubs to

std::string hex32(uint32_t v) {
  char b[16];
  std::snprintf(b, sizeof b, "0x%08x", v);
  return b;
}

std::string syntax_text(const SyntaxId& s) {
  return s.uuid.to_string() + " v" + std::to_string(s.major) + "." + std::to_string(s.minor);
}

[[noreturn]] void usage(const std::string& what) {
  throw Error(Status::protocol, 0, "DCE/RPC client misuse: " + what);
}

Error fault_error(uint32_t status, const std::string& during) {
  const auto name = fault_name(status);
  return Error(classify_fault(status), status,
               "the server answered " + during + " with a fault: " + hex32(status) +
                   (name.empty() ? "" : " (" + std::string(name) + ")"));
}

Error nak_error(uint16_t reason) {
  // C706 p_reject_reason_t, with MS-RPCE's 8 and 9.
  static constexpr std::string_view kReasons[] = {"reason not specified",
                                                  "temporary congestion",
                                                  "local limit exceeded",
                                                  "called presentation address unknown",
                                                  "protocol version not supported",
                                                  "default context not supported",
                                                  "user data not readable",
                                                  "no presentation service access point",
                                                  "authentication type not recognized",
                                                  "invalid checksum"};
  Status s = Status::protocol;
  if (reason == 1 || reason == 2 || reason == 7) s = Status::unavailable;
  if (reason == 8 || reason == 9) s = Status::auth_refused;
  const std::string text = reason < std::size(kReasons) ? std::string(kReasons[reason])
                                                        : "reason " + std::to_string(reason);
  return Error(s, reason, "the server refused the bind (bind_nak): " + text);
}

bool verifies(AuthLevel l) { return l == AuthLevel::integrity || l == AuthLevel::privacy; }

}  // namespace

Association::Association(AuthLevel level, std::optional<ntlm::Credentials> credentials,
                         AssociationOptions options)
    : level_(level), opts_(std::move(options)) {
  if (level != AuthLevel::none && level != AuthLevel::connect && !verifies(level)) {
    usage("unknown authentication level");
  }
  if ((level == AuthLevel::none) != !credentials) {
    usage("credentials go with an authentication level above none, and only with one");
  }
  if (opts_.max_xmit_frag < 1024 || opts_.max_recv_frag < 1024) {
    usage("fragment sizes below 1024");
  }
  if (credentials) {
    ntlm::ClientOptions o;
    o.workstation = opts_.workstation;
    o.sign = true;
    o.seal = level == AuthLevel::privacy;
    o.client_challenge = opts_.ntlm_client_challenge;
    o.exported_session_key = opts_.ntlm_exported_session_key;
    o.timestamp = opts_.ntlm_timestamp;
    try {
      ntlm_ = std::make_unique<ntlm::Client>(std::move(*credentials), std::move(o));
    } catch (const ntlm::Error& e) {
      throw Error(Status::auth_refused, 0, std::string("NTLM: ") + e.what());
    }
  }
}

Association::Association(Association&&) noexcept = default;
Association& Association::operator=(Association&&) noexcept = default;
Association::~Association() = default;

std::vector<uint8_t> Association::bind(const SyntaxId& abstract_syntax) {
  if (state_ != State::idle) usage("bind() twice on one association");
  Pdu pdu;
  pdu.type = PduType::bind;
  pdu.call_id = call_id_ = next_call_++;
  pdu.body = Bind{opts_.max_xmit_frag,
                  opts_.max_recv_frag,
                  0,
                  {ContextElement{0, abstract_syntax, {ndr_syntax()}}}};
  if (ntlm_) {
    pdu.auth = AuthVerifier{kAuthTypeNtlm, static_cast<uint8_t>(level_), 0, opts_.auth_context_id,
                            ntlm_->negotiate()};
  }
  pending_ = abstract_syntax;
  state_ = State::binding;
  return encode(pdu);
}

uint16_t Association::take_context(const BindAck& ack, PduType type) {
  const std::string what = type == PduType::bind_ack ? "bind" : "alter_context";
  if (ack.results.size() != 1) {
    throw Error(Status::protocol, 0,
                "the " + what + " answer has " + std::to_string(ack.results.size()) +
                    " context results for 1 context");
  }
  const auto& r = ack.results[0];
  if (r.result != 0) {
    const std::string reason = r.reason == 1   ? "abstract syntax not supported"
                               : r.reason == 2 ? "proposed transfer syntaxes not supported"
                                               : "reason " + std::to_string(r.reason);
    throw Error(
        r.reason == 2 ? Status::protocol : Status::unavailable, r.reason,
        "the server rejected interface " + syntax_text(*pending_) + " on " + what + ": " + reason);
  }
  if (r.transfer_syntax != ndr_syntax()) {
    throw Error(Status::protocol, 0, "the server accepted a transfer syntax other than NDR");
  }
  contexts_.push_back(*pending_);
  pending_.reset();
  return static_cast<uint16_t>(contexts_.size() - 1);
}

std::vector<uint8_t> Association::on_bind_ack(std::span<const uint8_t> bytes) {
  if (state_ != State::binding) usage("on_bind_ack() without a bind");
  state_ = State::broken;  // until everything below passed
  Pdu pdu = decode(bytes);
  if (pdu.type == PduType::bind_nak) throw nak_error(std::get<BindNak>(pdu.body).reason);
  if (pdu.type == PduType::fault) throw fault_error(std::get<Fault>(pdu.body).status, "the bind");
  if (pdu.type != PduType::bind_ack) {
    throw Error(Status::protocol, 0,
                "expected bind_ack, got PDU type " + std::to_string(static_cast<int>(pdu.type)));
  }
  if (pdu.call_id != call_id_) throw Error(Status::protocol, 0, "bind_ack for another call id");
  const auto& ack = std::get<BindAck>(pdu.body);
  current_ = take_context(ack, PduType::bind_ack);
  xmit_ = std::min(opts_.max_xmit_frag, ack.max_recv_frag);
  if (xmit_ < 1024) {
    throw Error(Status::protocol, 0,
                "the server receives fragments of " + std::to_string(xmit_) + " bytes only");
  }
  assoc_group_ = ack.assoc_group_id;
  secondary_ = ack.secondary_address;
  std::vector<uint8_t> out;
  if (ntlm_) {
    if (!pdu.auth || pdu.auth->type != kAuthTypeNtlm) {
      throw Error(Status::auth_refused, 0,
                  "the server answered the bind without an NTLM challenge");
    }
    Pdu auth3;
    auth3.type = PduType::auth3;
    auth3.call_id = call_id_;
    auth3.body = Auth3{};
    try {
      auth3.auth = AuthVerifier{kAuthTypeNtlm, static_cast<uint8_t>(level_), 0,
                                opts_.auth_context_id, ntlm_->authenticate(pdu.auth->value)};
      session_ = std::make_unique<ntlm::Session>(ntlm_->session());
    } catch (const ntlm::Error& e) {
      throw Error(Status::auth_refused, 0, std::string("NTLM challenge refused: ") + e.what());
    }
    out = encode(auth3);
    auth3_sent_ = true;
  }
  state_ = State::ready;
  return out;
}

std::vector<uint8_t> Association::alter_context(const SyntaxId& abstract_syntax) {
  if (state_ != State::ready) usage("alter_context() needs a bound association with no call");
  if (contexts_.size() >= 0xffff) usage("too many presentation contexts");
  Pdu pdu;
  pdu.type = PduType::alter_context;
  pdu.call_id = call_id_ = next_call_++;
  // The security context of the bind goes on for the new presentation context: no verifier.
  pdu.body = Bind{
      opts_.max_xmit_frag,
      opts_.max_recv_frag,
      assoc_group_,
      {ContextElement{static_cast<uint16_t>(contexts_.size()), abstract_syntax, {ndr_syntax()}}}};
  pending_ = abstract_syntax;
  state_ = State::altering;
  return encode(pdu);
}

void Association::on_alter_context_resp(std::span<const uint8_t> bytes) {
  if (state_ != State::altering) usage("on_alter_context_resp() without an alter_context");
  state_ = State::broken;
  Pdu pdu = decode(bytes);
  if (pdu.call_id != call_id_) throw Error(Status::protocol, 0, "answer for another call id");
  if (pdu.type == PduType::fault) {
    state_ = State::ready;
    pending_.reset();
    throw fault_error(std::get<Fault>(pdu.body).status, "the alter_context");
  }
  if (pdu.type == PduType::bind_nak) throw nak_error(std::get<BindNak>(pdu.body).reason);
  if (pdu.type != PduType::alter_context_resp) {
    throw Error(
        Status::protocol, 0,
        "expected alter_context_resp, got PDU type " + std::to_string(static_cast<int>(pdu.type)));
  }
  try {
    current_ = take_context(std::get<BindAck>(pdu.body), PduType::alter_context);
  } catch (const Error& e) {
    if (e.status == Status::unavailable) {  // the association itself is fine
      state_ = State::ready;
      pending_.reset();
    }
    throw;
  }
  state_ = State::ready;
}

std::optional<uint16_t> Association::context_id(const SyntaxId& abstract_syntax) const {
  for (std::size_t i = 0; i < contexts_.size(); ++i) {
    if (contexts_[i] == abstract_syntax) return static_cast<uint16_t>(i);
  }
  return std::nullopt;
}

std::vector<uint8_t> Association::encode_call(Pdu& pdu) {
  if (!verifies(level_)) return encode(pdu);
  const std::size_t pad =
      (kAuthPadAlignment - pdu.stub.size() % kAuthPadAlignment) % kAuthPadAlignment;
  pdu.stub.resize(pdu.stub.size() + pad, 0);
  pdu.auth = AuthVerifier{kAuthTypeNtlm, static_cast<uint8_t>(level_), static_cast<uint8_t>(pad),
                          opts_.auth_context_id, std::vector<uint8_t>(kNtlmSignatureSize, 0)};
  std::vector<uint8_t> out = encode(pdu);
  const std::span<uint8_t> all(out);
  const auto signed_part = all.first(out.size() - kNtlmSignatureSize);
  const std::size_t stub_at = out.size() - kNtlmSignatureSize - kSecTrailerSize - pdu.stub.size();
  std::array<uint8_t, 16> sig{};
  if (level_ == AuthLevel::privacy) {
    sig = session_->seal(all.subspan(stub_at, pdu.stub.size()), signed_part);
  } else {
    sig = session_->sign(signed_part);
  }
  std::copy(sig.begin(), sig.end(), all.last(kNtlmSignatureSize).begin());
  return out;
}

std::vector<std::vector<uint8_t>> Association::request(uint16_t opnum,
                                                       std::span<const uint8_t> stub,
                                                       std::optional<Uuid> object,
                                                       std::optional<uint16_t> context_id) {
  if (state_ != State::ready) usage("request() needs a bound association with no call");
  const uint16_t ctx = context_id.value_or(current_);
  if (ctx >= contexts_.size()) usage("request() on a presentation context never accepted");
  const std::size_t header = kRequestHeader + (object ? 16 : 0);
  const std::size_t overhead =
      header + (verifies(level_) ? kSecTrailerSize + kNtlmSignatureSize : 0);
  // Whole multiples of the pad alignment, so that only the last fragment is padded.
  const std::size_t chunk = (xmit_ - overhead) / kAuthPadAlignment * kAuthPadAlignment;
  call_id_ = next_call_++;
  std::vector<std::vector<uint8_t>> fragments;
  std::size_t at = 0;
  do {
    const std::size_t n = std::min(chunk, stub.size() - at);
    Pdu pdu;
    pdu.type = PduType::request;
    pdu.call_id = call_id_;
    pdu.flags =
        static_cast<uint8_t>((at == 0 ? kFirstFrag : 0) | (at + n == stub.size() ? kLastFrag : 0));
    pdu.body = Request{static_cast<uint32_t>(stub.size() - at), ctx, opnum, object};
    pdu.stub.assign(stub.begin() + static_cast<std::ptrdiff_t>(at),
                    stub.begin() + static_cast<std::ptrdiff_t>(at + n));
    fragments.push_back(encode_call(pdu));
    at += n;
  } while (at < stub.size());
  assembling_.clear();
  in_response_ = false;
  state_ = State::call;
  return fragments;
}

std::optional<std::vector<uint8_t>> Association::on_response(std::span<const uint8_t> bytes) {
  if (state_ != State::call) usage("on_response() with no call outstanding");
  state_ = State::broken;
  Pdu pdu = decode(bytes);
  if (pdu.type == PduType::fault && (pdu.call_id == call_id_ || pdu.call_id == 0)) {
    const uint32_t status = std::get<Fault>(pdu.body).status;
    if (auth3_sent_ && !answered_since_auth3_ &&
        (status == kNcaProtoError || status == kRpcAccessDenied || status == kRpcSecPkgError)) {
      // AUTH3 has no answer of its own: a server that did not accept it refuses the first call
      // instead (Samba: nca_s_proto_error and a hang-up; Windows: access denied).
      throw Error(Status::auth_refused, status,
                  "the server refused the first call after NTLM AUTH3 with fault " + hex32(status) +
                      " (" + std::string(fault_name(status)) + "): credentials refused");
    }
    answered_since_auth3_ = true;
    // A fault about the call leaves the association usable; one about its security does not.
    const Status cls = classify_fault(status);
    if (cls == Status::fault || cls == Status::unavailable) state_ = State::ready;
    throw fault_error(status, "call " + std::to_string(call_id_));
  }
  if (pdu.type != PduType::response) {
    throw Error(Status::protocol, 0,
                "expected a response, got PDU type " + std::to_string(static_cast<int>(pdu.type)));
  }
  if (pdu.call_id != call_id_) {
    throw Error(Status::protocol, 0,
                "response for call " + std::to_string(pdu.call_id) + ", expected " +
                    std::to_string(call_id_));
  }
  const bool first = (pdu.flags & kFirstFrag) != 0;
  if (first == in_response_) {
    throw Error(Status::protocol, 0, first ? "a second first fragment" : "a fragment out of order");
  }
  in_response_ = true;
  std::size_t pad = 0;
  if (verifies(level_)) {
    if (!pdu.auth || pdu.auth->type != kAuthTypeNtlm ||
        pdu.auth->level != static_cast<uint8_t>(level_) ||
        pdu.auth->value.size() != kNtlmSignatureSize) {
      throw Error(Status::integrity, 0, "a response without the NTLM verifier of its level");
    }
    std::vector<uint8_t> raw(bytes.begin(), bytes.end());
    const std::span<uint8_t> all(raw);
    const auto signed_part = all.first(raw.size() - kNtlmSignatureSize);
    const auto signature = all.last(kNtlmSignatureSize);
    const auto body = all.subspan(kResponseHeader, pdu.stub.size());
    const bool ok = level_ == AuthLevel::privacy ? session_->unseal(body, signed_part, signature)
                                                 : session_->verify(signed_part, signature);
    if (!ok) {
      throw Error(Status::integrity, 0,
                  "the signature of a response does not verify (tampered, or out of step)");
    }
    pdu.stub.assign(body.begin(), body.end());
    pad = pdu.auth->pad_length;
  } else if (pdu.auth) {
    pad = pdu.auth->pad_length;
  }
  if (assembling_.size() + pdu.stub.size() - pad > opts_.max_response) {
    throw Error(Status::protocol, 0,
                "a response above " + std::to_string(opts_.max_response) + " bytes");
  }
  assembling_.insert(assembling_.end(), pdu.stub.begin(),
                     pdu.stub.end() - static_cast<std::ptrdiff_t>(pad));
  if (!(pdu.flags & kLastFrag)) {
    state_ = State::call;
    return std::nullopt;
  }
  answered_since_auth3_ = true;
  state_ = State::ready;
  in_response_ = false;
  return std::move(assembling_);
}

Error Association::closed() const {
  switch (state_) {
    case State::binding:
      return Error(Status::unavailable, 0, "the server closed the connection during the bind");
    case State::call:
      if (auth3_sent_ && !answered_since_auth3_) {
        return Error(Status::auth_refused, 0,
                     "the server closed the connection after NTLM AUTH3 without answering the "
                     "first call: credentials refused");
      }
      return Error(Status::unavailable, 0, "the server closed the connection during a call");
    default:
      return Error(Status::unavailable, 0, "the server closed the connection");
  }
}

}  // namespace outpost::lib::dcerpc
