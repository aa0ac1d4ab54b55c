// The input as a block file (opened, every entry's chunk checked and decoded) and as a bare chunk.
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "block.hpp"
#include "chunk.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace outpost::store;
  static const std::string path = "/tmp/fuzz_store_block." + std::to_string(::getpid()) + ".blk";
  std::vector<int64_t> times;
  std::vector<double> values;
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  if (size > 0) decode_chunk(bytes.substr(1), 1 + data[0] % kMaxColumns, 0, times, values);
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (f == nullptr) return 0;
  std::fwrite(data, 1, size, f);
  std::fclose(f);
  std::string err;
  if (auto b = Block::open(path, err)) {
    b->verify_index();
    const int cols = static_cast<int>(b->meta().columns);
    for (std::size_t i = 0; i < b->size() && i < 10000; ++i) {
      const Entry e = b->entry(i);
      std::string_view chunk;
      if (b->chunk(e, chunk)) decode_chunk(chunk, cols, b->meta().window_start, times, values);
      b->find(e.series);
    }
  }
  ::unlink(path.c_str());
  return 0;
}
