// The body's uncompressed header and its zstd frame: the part of the format a receiver reads
// before it decides anything (duplicate, unknown epoch) and the one decompression it allows.
#include <zstd.h>

#include <outpost_lib/uplink_wire.hpp>
#include <set>

#include "wire_io.hpp"

namespace outpost::lib::wire {

using namespace detail;

std::string_view status_name(Status s) {
  switch (s) {
    case Status::ok:
      return "ok";
    case Status::duplicate:
      return "duplicate";
    case Status::unknown_epoch:
      return "unknown_epoch";
    case Status::malformed:
      return "malformed";
  }
  return "?";
}

void write_header(const Header& h, std::string& out) {
  out.append(kMagic, 4);
  out += static_cast<char>(h.version);
  out += static_cast<char>(h.flags);
  put_u64le(out, h.epoch);
  put_varint(out, h.base_series);
  put_varint(out, h.base_batches);
  put_bytes(out, h.spool_id);
  put_bytes(out, h.engine);
  put_varint(out, h.ranges.size());
  for (const auto& r : h.ranges) {
    put_bytes(out, r.stream);
    put_varint(out, r.first_seq);
    put_varint(out, r.last_seq);
  }
  put_varint(out, h.new_series);
  put_varint(out, h.metric_count);
  put_varint(out, h.event_count);
  put_varint(out, h.flow_count);
  put_varint(out, h.raw_size);
}

namespace {

void read_header(std::span<const uint8_t> body, Header& h) {
  Reader r(body.data(), body.size(), "header");
  if (body.size() > kMaxBodyBytes) r.fail("body over " + std::to_string(kMaxBodyBytes) + " bytes");
  if (r.bytes(4) != std::string_view(kMagic, 4)) r.fail("bad magic (not an Outpost batch)");
  h.version = r.u8();
  if (h.version != kFormatVersion) {
    r.fail("format version " + std::to_string(h.version) + " not supported (this receiver reads " +
           std::to_string(kFormatVersion) + ")");
  }
  h.flags = r.u8();
  if (h.flags != 0) r.fail("unknown flags " + std::to_string(h.flags));
  h.epoch = r.u64le();
  h.base_series = r.varint();
  h.base_batches = r.varint();
  h.spool_id = r.string(kMaxIdLength, "spool id length");
  h.engine = r.string(kMaxIdLength, "engine name length");
  const auto ranges = r.bounded(kMaxRanges, "range count");
  if (ranges > 0 && h.spool_id.empty()) r.fail("ranges without a spool id");
  std::set<std::string_view> streams;
  h.ranges.resize(static_cast<std::size_t>(ranges));
  for (auto& range : h.ranges) {
    range.stream = r.string(kMaxIdLength, "stream name length");
    range.first_seq = r.varint();
    range.last_seq = r.varint();
    if (range.first_seq > range.last_seq) {
      r.fail("range of stream '" + range.stream + "' ends before it starts");
    }
  }
  for (const auto& range : h.ranges) {
    if (!streams.insert(range.stream).second) r.fail("stream '" + range.stream + "' twice");
  }
  h.new_series = r.varint();
  h.metric_count = r.varint();
  h.event_count = r.varint();
  h.flow_count = r.varint();
  h.raw_size = r.bounded(kMaxRawBytes, "decompressed size");
  // Every series definition and every item takes at least one byte of the columns.
  const uint64_t items = h.new_series + h.metric_count + h.event_count + h.flow_count;
  if (h.new_series > h.raw_size || h.metric_count > h.raw_size || h.event_count > h.raw_size ||
      h.flow_count > h.raw_size || items > h.raw_size) {
    r.fail("counts larger than the decompressed size allows");
  }
  if (r.done()) r.fail("truncated: no zstd frame");
  h.frame_offset = static_cast<std::size_t>(r.pos() - body.data());
}

}  // namespace

bool parse_header(std::span<const uint8_t> body, Header& out, std::string& error) {
  try {
    read_header(body, out);
    return true;
  } catch (const Malformed& e) {
    error = e.what();
    return false;
  }
}

bool decompress_frame(std::span<const uint8_t> body, const Header& header, std::size_t max_raw,
                      std::string& raw, std::string& error) {
  if (header.frame_offset == 0 || header.frame_offset > body.size()) {
    error = "frame: no frame";
    return false;
  }
  const auto frame = body.subspan(header.frame_offset);
  const unsigned long long content = ZSTD_getFrameContentSize(frame.data(), frame.size());
  if (content == ZSTD_CONTENTSIZE_ERROR) {
    error = "frame: not a zstd frame";
    return false;
  }
  if (content == ZSTD_CONTENTSIZE_UNKNOWN || content != header.raw_size) {
    error = "frame: content size differs from the header's decompressed size";
    return false;
  }
  if (header.raw_size > max_raw) {
    error = "frame: decompressed size " + std::to_string(header.raw_size) + " over the limit " +
            std::to_string(max_raw);
    return false;
  }
  const std::size_t compressed = ZSTD_findFrameCompressedSize(frame.data(), frame.size());
  if (ZSTD_isError(compressed)) {
    error = std::string("frame: ") + ZSTD_getErrorName(compressed);
    return false;
  }
  if (compressed != frame.size()) {
    error = "frame: bytes after the zstd frame";
    return false;
  }
  raw.resize(static_cast<std::size_t>(header.raw_size));
  const std::size_t n = ZSTD_decompress(raw.data(), raw.size(), frame.data(), frame.size());
  if (ZSTD_isError(n)) {
    error = std::string("frame: ") + ZSTD_getErrorName(n);
    raw.clear();
    return false;
  }
  if (n != raw.size()) {
    error = "frame: decompressed to fewer bytes than declared";
    raw.clear();
    return false;
  }
  return true;
}

}  // namespace outpost::lib::wire
