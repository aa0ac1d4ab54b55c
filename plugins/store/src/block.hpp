// A block file: the chunks of many series for one window of time, written once and never
// changed (files are replaced by rename, deleted by unlink, so a reader's open file stays valid).
//   header (64 bytes) | chunks | index: one entry per series, ascending ids
// Integers are little-endian. The header carries a CRC-32 of itself and one of the index; every
// index entry one of its chunk. See README.md, "The local store".
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace outpost::store {

enum class Kind : uint32_t { head = 1, raw = 2, rollup = 3 };

// Ids from here up are not series but a raw block's time lists (kTimesBase + ref, see chunk.hpp),
// after every series in the index.
constexpr uint32_t kTimesBase = 0xF0000000u;

struct BlockMeta {
  Kind kind = Kind::head;
  int64_t window_start = 0;  // Unix ns; chunks' times are coded relative to it
  int64_t window_ns = 0;
  uint64_t seq = 0;  // the store's sequence number of the file (see store.hpp)
  uint32_t columns = 1;
};

struct Entry {
  uint32_t series = 0;
  uint32_t count = 0;  // points in the chunk
  uint64_t offset = 0;
  uint64_t length = 0;
  uint32_t crc = 0;
};

class BlockWriter {
 public:
  // Writes to path + ".tmp"; commit() makes it path.
  BlockWriter(std::string path, const BlockMeta& meta);
  ~BlockWriter();
  BlockWriter(const BlockWriter&) = delete;
  BlockWriter& operator=(const BlockWriter&) = delete;
  // Series in ascending order, each once.
  void add(uint32_t series, uint32_t count, std::string_view chunk);
  std::size_t series() const noexcept { return index_.size(); }
  // Index, header, fdatasync, rename; returns the file's size. Throws std::runtime_error.
  uint64_t commit();

 private:
  std::string path_, tmp_;
  BlockMeta meta_;
  std::FILE* f_ = nullptr;
  uint64_t offset_ = 0;
  std::vector<Entry> index_;
  bool committed_ = false;
};

class Block {
 public:
  // nullptr with a reason when the file cannot be opened or is not a block; errno_out is the
  // open's errno (ENOENT: the file was deleted since it was listed).
  static std::unique_ptr<Block> open(const std::string& path, std::string& error,
                                     int* errno_out = nullptr);
  ~Block();
  Block(const Block&) = delete;
  Block& operator=(const Block&) = delete;

  const BlockMeta& meta() const noexcept { return meta_; }
  std::size_t size() const noexcept { return count_; }
  Entry entry(std::size_t i) const;
  // Index of the series' entry, or size() when absent.
  std::size_t find(uint32_t series) const;
  // The chunk's bytes, checked against its CRC; false when damaged.
  bool chunk(const Entry& e, std::string_view& out) const;
  // The whole index checked against the header's CRC (compaction reads every entry anyway).
  bool verify_index() const;
  uint64_t file_size() const noexcept { return size_; }

 private:
  Block() = default;
  const uint8_t* base_ = nullptr;
  uint64_t size_ = 0;
  uint64_t index_offset_ = 0;
  uint32_t index_crc_ = 0;
  std::size_t count_ = 0;
  BlockMeta meta_;
};

uint32_t crc32_of(std::string_view bytes);

}  // namespace outpost::store
