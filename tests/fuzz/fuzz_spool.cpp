// libFuzzer target: the spool reads segment files back after a crash, a full disk or a bad
// sector. Any bytes as a segment: the scan stops at the first record that fails a check, and
// every record it passes decodes or is refused, never read past.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "spool/record.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace outpost::core;
  // Half the runs behind a valid segment header, so the record walk is reached.
  std::string bytes;
  if (size > 0 && (data[0] & 1)) bytes = spool::segment_header(7);
  bytes.append(reinterpret_cast<const char*>(data), size);
  uint64_t first = 0;
  bool ok = false;
  std::size_t items = 0;
  const std::size_t good =
      spool::scan_segment(bytes, first, ok, [&](const spool::RecordHeader& h, std::size_t off) {
        const std::string_view payload =
            std::string_view(bytes).substr(off + spool::kRecordHeaderSize, h.size);
        Batch b;
        std::string why;
        if (spool::decode_payload(payload, b, why)) {
          items += b.items();
          for (const auto& m : b.metrics()) items += b.str(m.name).size();
          for (const auto& kv : b.kvs()) items += b.str(kv.key).size() + b.str(kv.value).size();
          for (const auto& e : b.events()) items += b.str(e.message).size();
        }
      });
  // The payload decoder on the raw input too.
  Batch b;
  std::string why;
  if (spool::decode_payload(std::string_view(reinterpret_cast<const char*>(data), size), b, why))
    items += b.items();
  return good > bytes.size() || items == SIZE_MAX ? 1 : 0;
}
