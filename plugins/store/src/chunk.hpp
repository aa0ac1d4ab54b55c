// A chunk: one series' points of one block, compressed. Times are delta-of-delta coded (in ns,
// in buckets of 0, 16, 26, 36 and 64 bits), each value column XOR-coded against its previous
// value (the scheme of Facebook's Gorilla paper), in one bit stream:
//   varint count | zigzag varint (first time - base) | bits...
// A raw chunk has one value column; a rollup chunk five (min, max, sum, count, last).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace outpost::store {

constexpr int kMaxColumns = 5;

class ChunkWriter {
 public:
  ChunkWriter(int columns, int64_t base) : columns_(columns), base_(base) {}
  // Points in the order they are read back; times may repeat or go backwards (coded as they are).
  void add(int64_t t, const double* values);
  uint32_t count() const noexcept { return count_; }
  // The chunk's bytes; the writer is empty afterwards, for the same columns and base.
  std::string finish();

 private:
  void bits(uint64_t v, int n);
  int columns_;
  int64_t base_;
  uint32_t count_ = 0;
  int64_t first_t_ = 0, prev_t_ = 0, prev_delta_ = 0;
  uint64_t prev_v_[kMaxColumns] = {};
  int lead_[kMaxColumns] = {}, trail_[kMaxColumns] = {};
  bool have_window_[kMaxColumns] = {};
  std::vector<uint8_t> out_;
  uint64_t acc_ = 0;
  int acc_bits_ = 0;
};

// Decodes a chunk into times and values (values[i * columns + c]); false when the bytes are not a
// chunk of these columns (short, overlong or trailing garbage), with the outputs undefined.
bool decode_chunk(std::string_view bytes, int columns, int64_t base, std::vector<int64_t>& times,
                  std::vector<double>& values);

}  // namespace outpost::store
