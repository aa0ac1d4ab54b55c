// A bounded BER reader and a small writer for SNMP messages (RFC 3416 / X.690 as SNMP uses it):
// one-byte tags, definite lengths only, nothing read past the buffer it was given, and every
// malformation a distinct status rather than an exception. No SNMP library underneath, so it
// builds and fuzzes anywhere and keeps packet paths out of net-snmp's process-wide state.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "snmp/oid.hpp"

namespace outpost::snmp::ber {

// The tags SNMP uses (universal, application and context-specific constructed PDUs).
namespace tag {
constexpr uint8_t kInteger = 0x02;
constexpr uint8_t kOctetString = 0x04;
constexpr uint8_t kNull = 0x05;
constexpr uint8_t kObjectId = 0x06;
constexpr uint8_t kSequence = 0x30;
constexpr uint8_t kIpAddress = 0x40;
constexpr uint8_t kCounter32 = 0x41;
constexpr uint8_t kGauge32 = 0x42;
constexpr uint8_t kTimeTicks = 0x43;
constexpr uint8_t kOpaque = 0x44;
constexpr uint8_t kNsapAddress = 0x45;
constexpr uint8_t kCounter64 = 0x46;
constexpr uint8_t kUInteger32 = 0x47;
constexpr uint8_t kNoSuchObject = 0x80;
constexpr uint8_t kNoSuchInstance = 0x81;
constexpr uint8_t kEndOfMibView = 0x82;
constexpr uint8_t kGetRequest = 0xA0;
constexpr uint8_t kGetNextRequest = 0xA1;
constexpr uint8_t kResponse = 0xA2;
constexpr uint8_t kSetRequest = 0xA3;
constexpr uint8_t kTrapV1 = 0xA4;
constexpr uint8_t kGetBulkRequest = 0xA5;
constexpr uint8_t kInformRequest = 0xA6;
constexpr uint8_t kTrapV2 = 0xA7;
constexpr uint8_t kReport = 0xA8;
}  // namespace tag

enum class Status : uint8_t {
  kOk,
  kTruncated,      // a length or value runs past the end of its enclosing buffer
  kBadLength,      // indefinite, longer than 4 length bytes, or zero where a value is needed
  kBadTag,         // the high-tag-number form, which SNMP never uses
  kUnexpectedTag,  // a well-formed TLV of the wrong type at this place
  kBadInteger,     // empty, too long for its type, or out of its type's range
  kBadOid,         // empty, truncated sub-identifier, over 32 bits, or over 128 arcs
  kTrailing,       // bytes after the last expected element
};
constexpr std::size_t kStatusCount = 8;
// "truncated", "bad_length", ... as a metric label.
std::string_view status_name(Status s) noexcept;

// One tag-length-value. Offsets are absolute: counted from the start of the outermost buffer
// (a reader made with enter() keeps its parent's origin), so a caller can patch or hash the
// original bytes at a field's position (SNMPv3's msgAuthenticationParameters).
struct Tlv {
  uint8_t tag = 0;
  std::size_t offset = 0;        // of the tag byte
  std::size_t value_offset = 0;  // of the first value byte
  std::span<const uint8_t> value;
  std::size_t size() const noexcept { return value_offset - offset + value.size(); }
};

class Reader {
 public:
  Reader() = default;
  explicit Reader(std::span<const uint8_t> data, std::size_t origin = 0) noexcept
      : data_(data), origin_(origin) {}

  bool at_end() const noexcept { return pos_ >= data_.size(); }
  std::size_t remaining() const noexcept { return data_.size() - pos_; }
  // Absolute offset of the next byte.
  std::size_t offset() const noexcept { return origin_ + pos_; }

  Status next(Tlv& out) noexcept;
  // next(), then kUnexpectedTag unless the tag is `expected`.
  Status expect(uint8_t expected, Tlv& out) noexcept;
  // A reader over a constructed TLV's value (or an OCTET STRING that holds BER, as SNMPv3's
  // msgSecurityParameters does), with absolute offsets.
  static Reader enter(const Tlv& t) noexcept { return Reader(t.value, t.value_offset); }

  // Typed reads of the next element.
  Status read_int(int64_t& out) noexcept;  // INTEGER, at most 64 bits
  Status read_octets(std::span<const uint8_t>& out, Tlv* tlv = nullptr) noexcept;
  Status read_oid(Oid& out);
  Status read_null() noexcept;

 private:
  std::span<const uint8_t> data_;
  std::size_t pos_ = 0;
  std::size_t origin_ = 0;
};

// Value decoders of one TLV's bytes.
Status decode_int(std::span<const uint8_t> v, int64_t& out) noexcept;
// Unsigned application types: big-endian magnitude of at most `bytes` bytes, one more when the
// first is a zero sign byte. A Counter32 sent as four bytes with the top bit set (a common agent
// bug) reads as the unsigned value it meant.
Status decode_unsigned(std::span<const uint8_t> v, unsigned bytes, uint64_t& out) noexcept;
Status decode_oid(std::span<const uint8_t> v, Oid& out);
// Any varbind value. Counter64 keeps its exact decimal in Value::text as well (a double holds
// only 53 bits); IpAddress renders as dotted quad; Opaque, NsapAddress and unknown tags become
// kOther with the bytes in hex.
Status decode_value(const Tlv& t, Value& out);
// Bytes as lowercase hex without separators (engine IDs, opaque values).
std::string hex(std::span<const uint8_t> v);

// ---- writer ---------------------------------------------------------------------------------
// Builds content first and wraps it: SNMP answers are small, so the copies cost nothing, and
// offsets of the finished message are found again with the reader.
void put_length(std::vector<uint8_t>& out, std::size_t len);
void put_tlv(std::vector<uint8_t>& out, uint8_t t, std::span<const uint8_t> content);
void put_int(std::vector<uint8_t>& out, int64_t v, uint8_t t = tag::kInteger);
void put_unsigned(std::vector<uint8_t>& out, uint64_t v, uint8_t t);
void put_octets(std::vector<uint8_t>& out, std::span<const uint8_t> v,
                uint8_t t = tag::kOctetString);
void put_octets(std::vector<uint8_t>& out, std::string_view v);
void put_oid(std::vector<uint8_t>& out, const Oid& oid);  // needs at least 2 arcs, first <= 2
void put_null(std::vector<uint8_t>& out);

}  // namespace outpost::snmp::ber
