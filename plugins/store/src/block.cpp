#include "block.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <bit>
#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace outpost::store {
namespace {

static_assert(std::endian::native == std::endian::little, "block files are little-endian");

constexpr char kMagic[8] = {'O', 'P', 'S', 'T', 'B', 'L', 'K', '1'};
constexpr uint32_t kVersion = 1;
constexpr std::size_t kHeaderSize = 64;
constexpr std::size_t kEntrySize = 20;

template <typename T>
void put(uint8_t* p, T v) {
  std::memcpy(p, &v, sizeof v);
}
template <typename T>
T get(const uint8_t* p) {
  T v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

}  // namespace

uint32_t crc32_of(std::string_view bytes) {
  uLong crc = crc32(0L, Z_NULL, 0);
  // zlib takes uInt lengths.
  while (!bytes.empty()) {
    const auto n = static_cast<uInt>(std::min<std::size_t>(bytes.size(), 1u << 30));
    crc = crc32(crc, reinterpret_cast<const Bytef*>(bytes.data()), n);
    bytes.remove_prefix(n);
  }
  return static_cast<uint32_t>(crc);
}

BlockWriter::BlockWriter(std::string path, const BlockMeta& meta)
    : path_(std::move(path)), tmp_(path_ + ".tmp"), meta_(meta) {
  f_ = std::fopen(tmp_.c_str(), "wb");
  if (f_ == nullptr)
    throw std::runtime_error("cannot create " + tmp_ + ": " + std::strerror(errno));
  uint8_t zero[kHeaderSize] = {};
  if (std::fwrite(zero, 1, sizeof zero, f_) != sizeof zero) {
    const std::string why = std::strerror(errno);
    std::fclose(f_);  // the destructor does not run for a constructor that throws
    f_ = nullptr;
    ::unlink(tmp_.c_str());
    throw std::runtime_error("cannot write " + tmp_ + ": " + why);
  }
  offset_ = kHeaderSize;
}

BlockWriter::~BlockWriter() {
  if (f_ != nullptr) std::fclose(f_);
  if (!committed_) ::unlink(tmp_.c_str());
}

void BlockWriter::add(uint32_t series, uint32_t count, std::string_view chunk) {
  if (!index_.empty() && series <= index_.back().series)
    throw std::logic_error("block: series out of order");
  if (!chunk.empty() && std::fwrite(chunk.data(), 1, chunk.size(), f_) != chunk.size())
    throw std::runtime_error("cannot write " + tmp_ + ": " + std::strerror(errno));
  index_.push_back(Entry{series, count, offset_, chunk.size(), crc32_of(chunk)});
  offset_ += chunk.size();
}

uint64_t BlockWriter::commit() {
  std::vector<uint8_t> idx(index_.size() * kEntrySize);
  for (std::size_t i = 0; i < index_.size(); ++i) {
    uint8_t* p = idx.data() + i * kEntrySize;
    put(p, index_[i].series);
    put(p + 4, index_[i].count);
    put(p + 8, index_[i].offset);
    put(p + 16, index_[i].crc);
  }
  const uint64_t index_offset = offset_;
  if (!idx.empty() && std::fwrite(idx.data(), 1, idx.size(), f_) != idx.size())
    throw std::runtime_error("cannot write " + tmp_ + ": " + std::strerror(errno));
  uint8_t h[kHeaderSize] = {};
  std::memcpy(h, kMagic, 8);
  put(h + 8, kVersion);
  put(h + 12, static_cast<uint32_t>(meta_.kind));
  put(h + 16, meta_.window_start);
  put(h + 24, meta_.window_ns);
  put(h + 32, meta_.seq);
  put(h + 40, static_cast<uint32_t>(index_.size()));
  put(h + 44, meta_.columns);
  put(h + 48, index_offset);
  put(h + 56, crc32_of({reinterpret_cast<const char*>(idx.data()), idx.size()}));
  put(h + 60, crc32_of({reinterpret_cast<const char*>(h), 60}));
  if (std::fseek(f_, 0, SEEK_SET) != 0 || std::fwrite(h, 1, sizeof h, f_) != sizeof h ||
      std::fflush(f_) != 0 || ::fdatasync(fileno(f_)) != 0)
    throw std::runtime_error("cannot write " + tmp_ + ": " + std::strerror(errno));
  std::fclose(f_);
  f_ = nullptr;
  if (std::rename(tmp_.c_str(), path_.c_str()) != 0)
    throw std::runtime_error("cannot rename " + tmp_ + ": " + std::strerror(errno));
  committed_ = true;
  return index_offset + idx.size();
}

std::unique_ptr<Block> Block::open(const std::string& path, std::string& error, int* errno_out) {
  if (errno_out != nullptr) *errno_out = 0;
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno_out != nullptr) *errno_out = errno;
    error = path + ": " + std::strerror(errno);
    return nullptr;
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0 || st.st_size < static_cast<off_t>(kHeaderSize)) {
    ::close(fd);
    error = path + ": too short for a block";
    return nullptr;
  }
  void* m = ::mmap(nullptr, static_cast<std::size_t>(st.st_size), PROT_READ, MAP_SHARED, fd, 0);
  ::close(fd);
  if (m == MAP_FAILED) {
    error = path + ": mmap: " + std::strerror(errno);
    return nullptr;
  }
  std::unique_ptr<Block> b(new Block());
  b->base_ = static_cast<const uint8_t*>(m);
  b->size_ = static_cast<uint64_t>(st.st_size);
  const uint8_t* h = b->base_;
  auto fail = [&](const char* why) {
    error = path + ": " + why;
    return nullptr;
  };
  if (std::memcmp(h, kMagic, 8) != 0) return fail("not a block file");
  if (get<uint32_t>(h + 60) != crc32_of({reinterpret_cast<const char*>(h), 60}))
    return fail("header checksum mismatch");
  if (get<uint32_t>(h + 8) != kVersion) return fail("unknown block version");
  b->meta_.kind = static_cast<Kind>(get<uint32_t>(h + 12));
  b->meta_.window_start = get<int64_t>(h + 16);
  b->meta_.window_ns = get<int64_t>(h + 24);
  b->meta_.seq = get<uint64_t>(h + 32);
  b->count_ = get<uint32_t>(h + 40);
  b->meta_.columns = get<uint32_t>(h + 44);
  b->index_offset_ = get<uint64_t>(h + 48);
  b->index_crc_ = get<uint32_t>(h + 56);
  if (b->index_offset_ < kHeaderSize || b->index_offset_ > b->size_ ||
      (b->size_ - b->index_offset_) / kEntrySize < b->count_ ||
      b->size_ - b->index_offset_ != b->count_ * kEntrySize)
    return fail("index out of bounds");
  return b;
}

Block::~Block() {
  if (base_ != nullptr) ::munmap(const_cast<uint8_t*>(base_), static_cast<std::size_t>(size_));
}

Entry Block::entry(std::size_t i) const {
  const uint8_t* p = base_ + index_offset_ + i * kEntrySize;
  Entry e;
  e.series = get<uint32_t>(p);
  e.count = get<uint32_t>(p + 4);
  e.offset = get<uint64_t>(p + 8);
  e.crc = get<uint32_t>(p + 16);
  const uint64_t end = i + 1 < count_ ? get<uint64_t>(p + kEntrySize + 8) : index_offset_;
  e.length = end >= e.offset ? end - e.offset : ~uint64_t{0};  // a bad offset fails chunk()
  return e;
}

std::size_t Block::find(uint32_t series) const {
  std::size_t lo = 0, hi = count_;
  while (lo < hi) {
    const std::size_t mid = lo + (hi - lo) / 2;
    const uint32_t s = get<uint32_t>(base_ + index_offset_ + mid * kEntrySize);
    if (s < series)
      lo = mid + 1;
    else
      hi = mid;
  }
  if (lo < count_ && get<uint32_t>(base_ + index_offset_ + lo * kEntrySize) == series) return lo;
  return count_;
}

bool Block::chunk(const Entry& e, std::string_view& out) const {
  if (e.offset < kHeaderSize || e.offset > index_offset_ || e.length > index_offset_ - e.offset)
    return false;
  out = std::string_view(reinterpret_cast<const char*>(base_ + e.offset), e.length);
  return crc32_of(out) == e.crc;
}

bool Block::verify_index() const {
  return crc32_of({reinterpret_cast<const char*>(base_ + index_offset_), count_ * kEntrySize}) ==
         index_crc_;
}

}  // namespace outpost::store
