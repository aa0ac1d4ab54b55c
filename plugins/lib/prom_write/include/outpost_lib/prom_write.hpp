// Prometheus remote write 1.0 bodies from Outpost batches: the protobuf WriteRequest written by
// hand (no protobuf library), names sanitised to what Prometheus accepts, samples grouped per
// series, and snappy's block format around it. Free of any transport: the remote_write sink, the
// unit tests and the benchmark drive this one code.
#pragma once

#include <outpost/plugin.h>

#include <cstddef>
#include <cstdint>
#include <outpost/sdk.hpp>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace outpost::lib::promrw {

inline constexpr std::string_view kContentType = "application/x-protobuf";
inline constexpr std::string_view kContentEncoding = "snappy";
inline constexpr std::string_view kVersionHeader = "0.1.0";
// Any NaN sent is this one (what Prometheus itself stores for NaN); the stale marker
// 0x7ff0000000000002 is never produced.
inline constexpr uint64_t kNaNBits = 0x7ff8000000000001ULL;

// [a-zA-Z_:][a-zA-Z0-9_:]*: every other byte becomes '_', a leading digit gets a '_' before
// it, an empty name becomes "_".
std::string sanitize_metric_name(std::string_view name);
// [a-zA-Z_][a-zA-Z0-9_]*, the same way.
std::string sanitize_label_name(std::string_view name);

struct Sample {
  int64_t time_ms = 0;
  double value = 0;
};

// One series: labels sorted by name, unique, __name__ among them; samples sorted by time.
struct Series {
  Labels labels;
  std::vector<Sample> samples;
};

// The protobuf WriteRequest of these series, samples [first, first + count) of each given by
// the span's pieces (a series split across requests appears in more than one).
struct Piece {
  const Series* series = nullptr;
  std::size_t first = 0;
  std::size_t count = 0;
};
std::string encode_write_request(std::span<const Piece> pieces);

// Snappy block format (not framed), as remote write wants it.
std::string snappy_compress(std::string_view raw);

struct EncodeStats {
  uint64_t samples = 0;          // samples placed in bodies
  uint64_t series = 0;           // distinct series in the batch
  uint64_t events_ignored = 0;   // events are not metrics
  uint64_t flows_ignored = 0;    // nor are flows
  uint64_t labels_collided = 0;  // labels dropped because another took their sanitised name
  uint64_t labels_empty = 0;     // labels with an empty value (absent in Prometheus' model)
};

class Encoder {
 public:
  // external: labels added to every series that has no label of that name (sanitised here);
  // max_samples: samples per request at most (>= 1).
  Encoder(Labels external, std::size_t max_samples);

  // The batch's metrics as series (sorted by labels), then as uncompressed WriteRequest bodies
  // of at most max_samples samples each.
  std::vector<Series> group(const outpost_batch& batch, EncodeStats& stats) const;
  std::vector<std::string> encode(const outpost_batch& batch, EncodeStats& stats) const;

 private:
  Labels external_;
  std::size_t max_samples_;
};

}  // namespace outpost::lib::promrw
