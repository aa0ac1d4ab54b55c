// The uplink's wire format (docs/uplink-wire-format.md): what the uplink sink sends over HTTPS
// and what a receiver makes of it. Free of the engine and of any transport: batches in, bodies
// out (Encoder); bodies in, items and a status out (Decoder). The plugin, the reference
// receiver (tools/receiver), the tests and the fuzzer all drive this one code.
//
// A body is a small uncompressed header (who sends, which spool records it holds, which
// dictionary epoch it builds on) followed by one zstd frame of columns. A series (name, labels,
// type) is described once per epoch and then named by its number; timestamps and integral
// values are delta-coded. The dictionary and each series' last value live on both sides, so a
// sender commits a body only once the receiver took it (commit), forgets it otherwise
// (rollback), and starts a new epoch when the receiver no longer knows its own (reset).
#pragma once

#include <outpost/plugin.h>

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <outpost/sdk.hpp>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace outpost::lib::wire {

inline constexpr uint8_t kFormatVersion = 1;
inline constexpr std::string_view kContentType = "application/vnd.outpost.batch";
// Hard limits of format version 1; a body beyond them is malformed.
inline constexpr std::size_t kMaxIdLength = 255;         // spool id, engine name, stream name
inline constexpr std::size_t kMaxRanges = 1024;          // streams of one body
inline constexpr std::size_t kMaxRawBytes = 64u << 20;   // decompressed columns
inline constexpr std::size_t kMaxBodyBytes = 64u << 20;  // the whole body on the wire

struct Range {
  std::string stream;
  uint64_t first_seq = 0;
  uint64_t last_seq = 0;
  bool operator==(const Range&) const = default;
};

// The uncompressed part of a body, readable without decompressing anything.
struct Header {
  uint8_t version = kFormatVersion;
  uint8_t flags = 0;  // none defined in version 1; a receiver refuses any set bit
  uint64_t epoch = 0;
  uint64_t base_series = 0;   // series the sender believes the receiver holds in epoch
  uint64_t base_batches = 0;  // bodies of this epoch the sender believes the receiver applied
  std::string spool_id;       // empty: the body is not de-duplicated
  std::string engine;
  std::vector<Range> ranges;
  uint64_t new_series = 0;  // series defined by this body: ids base_series ...
  uint64_t metric_count = 0;
  uint64_t event_count = 0;
  uint64_t flow_count = 0;
  uint64_t raw_size = 0;         // bytes of the columns once decompressed
  std::size_t frame_offset = 0;  // where the zstd frame starts (filled by parse_header)
  bool operator==(const Header&) const = default;
};

// Appends the header's bytes (everything before the frame) to out.
void write_header(const Header& h, std::string& out);
// Reads a body's header; false with a one-sentence reason in error when it is malformed.
bool parse_header(std::span<const uint8_t> body, Header& out, std::string& error);
// Decompresses the body's frame into raw, at most max_raw bytes (and exactly header.raw_size);
// false with a reason in error otherwise.
bool decompress_frame(std::span<const uint8_t> body, const Header& header, std::size_t max_raw,
                      std::string& raw, std::string& error);

inline std::span<const uint8_t> bytes_of(std::string_view s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

// ---- sender ----------------------------------------------------------------------------------

struct EncoderStats {
  uint64_t epoch = 0;
  std::size_t series_known = 0;    // committed: the receiver holds them
  std::size_t series_pending = 0;  // defined by the last body, not committed yet
  uint64_t batches_committed = 0;  // in this epoch
  std::size_t raw_bytes = 0;       // the last body's columns before zstd
  std::size_t body_bytes = 0;      // the last body as sent (header + frame)
  uint64_t resets = 0;
};

// One per uplink instance; not thread-safe. Every encode starts from the committed state: a
// body neither committed nor rolled back is rolled back by the next encode.
class Encoder {
 public:
  explicit Encoder(std::string engine_name, int zstd_level = 3);
  ~Encoder();
  Encoder(const Encoder&) = delete;
  Encoder& operator=(const Encoder&) = delete;

  // Encodes one batch (elements read with the sizes the batch carries). Series new in this
  // epoch are pending until commit(). Throws std::length_error when the columns would pass
  // kMaxRawBytes: split the batch.
  std::string encode(const outpost_batch& batch, const outpost::SpoolInfo& info);
  // The receiver applied the last body (2xx, also a 2xx that says duplicate).
  void commit();
  // The last body was not applied (send failed, 4xx/5xx other than 409): its series will be
  // defined again and its values delta-coded against what the receiver still holds.
  void rollback();
  // The receiver does not know our epoch or holds another count (409): new epoch, no series.
  void reset();

  const EncoderStats& stats() const { return stats_; }

 private:
  struct State;
  std::unique_ptr<State> state_;
  EncoderStats stats_;
};

// ---- receiver --------------------------------------------------------------------------------

enum class Status : uint8_t { ok, duplicate, unknown_epoch, malformed };
std::string_view status_name(Status s);

struct Metric {
  std::string name;
  std::vector<std::pair<std::string, std::string>> labels;  // in the order the sender had them
  double value = 0;
  int64_t time_ns = 0;
  uint32_t type = OUTPOST_METRIC_GAUGE;
};

struct Event {
  int64_t time_ns = 0;
  uint32_t severity = 0;
  std::string source;
  std::string kind;
  std::string message;
  std::vector<std::pair<std::string, std::string>> attributes;
};

struct Result {
  Status status = Status::malformed;
  std::string error;  // why, when not ok
  Header header;      // as far as it was read
  std::vector<Metric> metrics;
  std::vector<Event> events;
  std::vector<outpost_flow> flows;  // reserved members zero
};

struct Limits {
  std::size_t max_raw_bytes = kMaxRawBytes;
  std::size_t max_epochs_per_spool = 4;           // the oldest one goes first
  std::size_t max_series = 2'000'000;             // over every epoch of every spool
  std::size_t max_dictionary_bytes = 512u << 20;  // names and labels of those series
  std::size_t max_spools = 10'000;                // the least recently used spool is forgotten
  std::size_t max_streams_per_spool = 4096;
  // What one body may decode to (names and labels are copied into every metric): bounds the
  // amplification of a small body that names a long series many times.
  std::size_t max_decoded_bytes = 256u << 20;
};

struct DecoderStats {
  std::size_t spools = 0;
  std::size_t epochs = 0;
  std::size_t series = 0;
  std::size_t dictionary_bytes = 0;
  uint64_t epochs_evicted = 0;
  uint64_t spools_evicted = 0;
};

struct HighWater {
  std::string spool_id;
  std::string stream;
  uint64_t last_seq = 0;
  bool operator==(const HighWater&) const = default;
};

// Keeps, per spool id, the dictionaries of its recent epochs and, per stream, the highest
// last_seq accepted. decode() applies a body all or nothing: anything but ok changes nothing.
// Not thread-safe.
class Decoder {
 public:
  explicit Decoder(Limits limits = {});
  ~Decoder();
  Decoder(const Decoder&) = delete;
  Decoder& operator=(const Decoder&) = delete;

  Result decode(std::span<const uint8_t> body);

  // The de-duplication state, to persist it across restarts (dictionaries are not kept: after a
  // restart the sender gets unknown_epoch and describes its series again).
  std::vector<HighWater> high_water() const;
  void restore_high_water(const std::vector<HighWater>& marks);

  DecoderStats stats() const;

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace outpost::lib::wire
