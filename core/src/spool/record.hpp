// The spool's on-disk records: what one source handed the pipeline, as one checksummed record of
// an append-only segment file. Nothing here trusts the disk: every length, offset and reference
// is checked before use, and a record that fails a check is reported, never half-read.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "pipeline/batch.hpp"

namespace outpost::core::spool {

// Little-endian integers in and out of the spool's files (the machine's order: x86-64, arm64).
template <typename T>
void put(std::string& out, T v) {
  char b[sizeof(T)];
  std::memcpy(b, &v, sizeof(T));
  out.append(b, sizeof(T));
}
template <typename T>
T get(const char* p) {
  T v;
  std::memcpy(&v, p, sizeof(T));
  return v;
}
// Takes a T off the front of in; false when in is too short.
template <typename T>
bool take(std::string_view& in, T& v) {
  if (in.size() < sizeof(T)) return false;
  std::memcpy(&v, in.data(), sizeof(T));
  in.remove_prefix(sizeof(T));
  return true;
}

// CRC-32C (Castagnoli), the checksum of every record and of the cursor file.
uint32_t crc32c(const void* data, std::size_t len, uint32_t crc = 0);

// A segment file: a 32-byte header, then records back to back.
//   header: magic "OPSPOOL1" (8) | u32 version (1) | u32 header size (32) | u64 first_seq |
//           u32 CRC-32C of the 24 bytes before it | u32 zero
//   record: u32 CRC-32C of everything after it (rest of header + payload) | u32 payload size |
//           u64 seq | i64 time_ns (wall clock, when spooled) | u32 items | u32 zero | payload
// Integers are little-endian. Sequence numbers of a stream only grow; within a segment each
// record's is one more than the one before it.
constexpr std::size_t kSegmentHeaderSize = 32;
constexpr std::size_t kRecordHeaderSize = 32;
constexpr uint32_t kMaxRecordPayload = 256u << 20;

struct RecordHeader {
  uint32_t crc = 0;
  uint32_t size = 0;
  uint64_t seq = 0;
  int64_t time_ns = 0;
  uint32_t items = 0;
};

std::string segment_header(uint64_t first_seq);
// The first_seq of a segment header, or false when it is not one.
bool parse_segment_header(std::string_view bytes, uint64_t& first_seq);

// Appends header + payload of one record to out.
void append_record(std::string& out, uint64_t seq, int64_t time_ns, uint32_t items,
                   std::string_view payload);
// The header at the front of bytes (at least kRecordHeaderSize long); no check of the CRC.
RecordHeader parse_record_header(std::string_view bytes);
// True when the CRC of header + payload (the whole record) is right.
bool record_crc_ok(std::string_view record);

// Walks the records of a segment file's bytes (header included) from its start: calls
// on_record(header, offset) for each record that passes every check (size, bounds, CRC, the next
// sequence number) and returns the offset where the checks stopped: bytes.size() when all of
// it is good. False in ok when the segment header itself is bad (then nothing is good).
template <typename F>
std::size_t scan_segment(std::string_view bytes, uint64_t& first_seq, bool& ok, F&& on_record);

// A record's payload: the batches of one source, merged. Format (little-endian, packed):
//   u32 version (1) | u32 metrics | u32 events | u32 flows | u32 kvs | u32 arena bytes |
//   metrics (40 bytes each: name off,len | label begin,count | f64 value | i64 time | u32 type |
//   u32 0) | events (48 bytes: i64 time | u32 severity | source, kind, message off,len |
//   attr begin,count | u32 0) | kvs (16 bytes: key off,len | value off,len) | flows
//   (outpost_flow as the ABI lays it out, 104 bytes) | arena
void encode_payload(const std::vector<const Batch*>& batches, std::string& out);
// A payload back into a batch; false (and why) when any count, offset or range does not fit.
bool decode_payload(std::string_view payload, Batch& out, std::string& why);

template <typename F>
std::size_t scan_segment(std::string_view bytes, uint64_t& first_seq, bool& ok, F&& on_record) {
  ok = parse_segment_header(bytes, first_seq);
  if (!ok) return 0;
  std::size_t off = kSegmentHeaderSize;
  uint64_t expect = first_seq;
  while (off < bytes.size()) {
    const std::string_view rest = bytes.substr(off);
    if (rest.size() < kRecordHeaderSize) break;
    const RecordHeader h = parse_record_header(rest);
    if (h.size > kMaxRecordPayload || kRecordHeaderSize + uint64_t{h.size} > rest.size() ||
        h.seq != expect || !record_crc_ok(rest.substr(0, kRecordHeaderSize + h.size)))
      break;
    on_record(h, off);
    off += kRecordHeaderSize + h.size;
    ++expect;
  }
  return off;
}

}  // namespace outpost::core::spool
