// SNMP message layouts a notification receiver reads and writes, on the shared BER reader:
// the v1/v2c community message (RFC 1157, RFC 1901), the v3 message with its USM security
// parameters (RFC 3412 6, RFC 3414 2.4), the scoped PDU, and the PDUs (RFC 3416 3, and RFC
// 1157's Trap-PDU). Parsing only points into the caller's buffer; nothing here decrypts or
// authenticates (receiver.cpp does, with usm.hpp).
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <vector>

#include "snmp/ber.hpp"
#include "snmp/oid.hpp"

namespace outpost::snmp_trap {

namespace ber = outpost::snmp::ber;
using outpost::snmp::Oid;

constexpr int64_t kVersion1 = 0;
constexpr int64_t kVersion2c = 1;
constexpr int64_t kVersion3 = 3;

constexpr uint8_t kFlagAuth = 0x01;
constexpr uint8_t kFlagPriv = 0x02;
constexpr uint8_t kFlagReportable = 0x04;
constexpr int64_t kSecurityModelUsm = 3;

// What a parse error is, beyond the BER status: the structure was valid BER but not SNMP.
enum class Shape : uint8_t {
  kOk,
  kBer,         // see the ber::Status
  kBadVersion,  // msgVersion not 0, 1 or 3
  kBadField,    // a field out of its range (msgID, msgMaxSize, msgFlags size, engine ID or user
                // name size, request-id, generic-trap, agent-addr size)
};

struct Message {
  int64_t version = -1;
  // v1, v2c
  std::span<const uint8_t> community;
  // v3 (RFC 3412 6; RFC 3414 2.4)
  int64_t msg_id = 0;
  int64_t max_size = 0;
  uint8_t flags = 0;
  int64_t security_model = 0;
  std::span<const uint8_t> engine_id;
  int64_t engine_boots = 0;
  int64_t engine_time = 0;
  std::span<const uint8_t> user;
  std::span<const uint8_t> auth_params;
  std::size_t auth_params_offset = 0;  // absolute, in the datagram
  std::span<const uint8_t> priv_params;
  std::span<const uint8_t> encrypted;   // msgData when kFlagPriv
  std::span<const uint8_t> scoped_pdu;  // msgData's SEQUENCE (whole TLV) otherwise
  // v1, v2c: the PDU (whole TLV)
  std::span<const uint8_t> pdu;
};

struct ParseResult {
  Shape shape = Shape::kOk;
  ber::Status ber = ber::Status::kOk;
  bool ok() const noexcept { return shape == Shape::kOk; }
};

ParseResult parse_message(std::span<const uint8_t> data, Message& out);

struct ScopedPdu {
  std::span<const uint8_t> context_engine_id;
  std::span<const uint8_t> context_name;
  std::span<const uint8_t> pdu;  // whole TLV
};
// A decrypted scoped PDU may carry padding after its SEQUENCE (DES did); allow_trailing says
// whether to tolerate it.
ParseResult parse_scoped_pdu(std::span<const uint8_t> data, ScopedPdu& out, bool allow_trailing);

using outpost::snmp::VarBind;

struct Pdu {
  uint8_t type = 0;
  int64_t request_id = 0;
  int64_t error_status = 0;
  int64_t error_index = 0;
  std::span<const uint8_t> varbind_list;  // the SEQUENCE OF's value, echoed in responses
  std::size_t varbind_count = 0;          // all of them, also those past max_varbinds
  std::vector<VarBind> varbinds;          // the first max_varbinds
  // RFC 1157 Trap-PDU
  Oid enterprise;
  std::array<uint8_t, 4> agent_addr{};
  int64_t generic_trap = 0;
  int64_t specific_trap = 0;
  uint32_t time_stamp = 0;
};

// Any PDU type (the caller decides what it accepts); request-id must fit Integer32.
ParseResult parse_pdu(std::span<const uint8_t> data, Pdu& out, std::size_t max_varbinds);

// ---- encoders ---------------------------------------------------------------------------------

// A PDU of the RFC 3416 shape with a ready-made varbind list (the SEQUENCE OF's value).
std::vector<uint8_t> encode_pdu(uint8_t type, int64_t request_id, int64_t error_status,
                                int64_t error_index, std::span<const uint8_t> varbind_list);
// One varbind, appended to a varbind list's value.
void append_varbind_counter32(std::vector<uint8_t>& list, const Oid& oid, uint32_t value);
std::vector<uint8_t> encode_community_message(int64_t version, std::span<const uint8_t> community,
                                              std::span<const uint8_t> pdu);
std::vector<uint8_t> encode_scoped_pdu(std::span<const uint8_t> context_engine_id,
                                       std::span<const uint8_t> context_name,
                                       std::span<const uint8_t> pdu);

struct V3Header {
  int64_t msg_id = 0;
  int64_t max_size = 65507;
  uint8_t flags = 0;
  std::span<const uint8_t> engine_id;
  int64_t engine_boots = 0;
  int64_t engine_time = 0;
  std::span<const uint8_t> user;
  std::size_t auth_size = 0;  // zeros to fill in by the caller at auth_params_offset
  std::span<const uint8_t> priv_params;
};
// msg_data is the scoped PDU's SEQUENCE, or the ciphertext (wrapped here in an OCTET STRING when
// kFlagPriv is set). *auth_offset receives the absolute offset of the zeroed MAC.
std::vector<uint8_t> encode_v3(const V3Header& h, std::span<const uint8_t> msg_data,
                               std::size_t* auth_offset);

}  // namespace outpost::snmp_trap
