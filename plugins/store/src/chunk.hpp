// A chunk: one series' points of one block, compressed in one bit stream. Times are
// delta-of-delta coded (in ns, in buckets of 0, 16, 26, 40 and 64 bits); each value column is
// XOR-coded against its own previous value (the scheme of Facebook's Gorilla paper; the first
// point's values as they are), and in a chunk of several columns each column after the first
// starts with a bit saying "equal to the column before it in this point" (a counter's max and
// last, a constant gauge's min and max).
//   varint (count << 1 | shared) | inline: zigzag varint (first time - base) | shared: varint ref
//   | bits...
// A shared chunk has no time bits: its times are the block's time list `ref` (many series polled
// together share their times; see block.hpp). A time list is a chunk of zero columns.
// Raw chunks have one value column; rollup chunks five (min, max, last, sum, count).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace outpost::store {

constexpr int kMaxColumns = 5;
constexpr uint32_t kNotShared = UINT32_MAX;

class ChunkWriter {
 public:
  // shared_ref: the block's time list this chunk's times are (then add() codes no time bits),
  // or kNotShared.
  ChunkWriter(int columns, int64_t base, uint32_t shared_ref = kNotShared)
      : columns_(columns), base_(base), shared_(shared_ref) {}
  // Points in the order they are read back; times may repeat or go backwards (coded as they are).
  void add(int64_t t, const double* values);
  uint32_t count() const noexcept { return count_; }
  // The chunk's bytes; the writer is empty afterwards, for the same columns, base and sharing.
  std::string finish();
  void share(uint32_t ref) noexcept { shared_ = ref; }

 private:
  void bits(uint64_t v, int n);
  void add_time(int64_t t);
  int columns_;
  int64_t base_;
  uint32_t shared_;
  uint32_t count_ = 0;
  int64_t first_t_ = 0, prev_t_ = 0, prev_delta_ = 0;
  uint64_t prev_v_[kMaxColumns] = {};
  int lead_[kMaxColumns] = {}, trail_[kMaxColumns] = {};
  bool have_window_[kMaxColumns] = {};
  std::vector<uint8_t> out_;
  uint64_t acc_ = 0;
  int acc_bits_ = 0;
};

struct ChunkHead {
  uint64_t count = 0;
  uint32_t shared_ref = kNotShared;
};
// The count and sharing of a chunk; false when it does not start like one.
bool peek_chunk(std::string_view bytes, ChunkHead& head);

// Decodes a chunk into times and values (values[i * columns + c]); false when the bytes are not a
// chunk of these columns (short, overlong or trailing garbage), with the outputs undefined. A
// shared chunk takes its times from shared_times (false without it or when the counts differ).
bool decode_chunk(std::string_view bytes, int columns, int64_t base, std::vector<int64_t>& times,
                  std::vector<double>& values, const std::vector<int64_t>* shared_times = nullptr);

}  // namespace outpost::store
