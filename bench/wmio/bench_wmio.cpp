// The Outpost side of bench/wmio/run.sh.
//   bench_wmio gen N FILE       N EncodingUnits of Win32_Process-like instances (62 properties:
//                               strings 8-bit and UTF-16, uint32/uint64, datetimes, arrays,
//                               NULLs, an embedded object; no real32/real64 scalar, which
//                               impacket cannot decode), each as a 4-octet length + the unit.
//   bench_wmio decode FILE [fresh]
//                               decodes every unit, again and again for at least 2 s, with one
//                               ClassCache as one enumeration would (fresh: a new ClassCache for
//                               every object, so no class part is recognised as seen before);
//                               prints one line:
//   outpost objects=<n> values=<property values per pass> wall_s=<s> cpu_s=<user+sys s>
#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <outpost_lib/wmio.hpp>
#include <string>
#include <vector>

#include "wmio_encoder.hpp"

namespace wmio = outpost::lib::wmio;

namespace {

double cpu_seconds() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
         static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

int gen(std::size_t n, const char* file) {
  const auto cls = wmio::testing::process_like_class(false);
  std::ofstream out(file, std::ios::binary);
  for (std::size_t i = 0; i < n; ++i) {
    wmio::testing::EncodeOptions o;
    o.force_utf16 = i % 4 == 2;
    const auto unit = wmio::testing::encoding_unit(wmio::testing::encode_object_block(
        cls, wmio::testing::process_like_values(static_cast<uint32_t>(i), false), o));
    const auto len = static_cast<uint32_t>(unit.size());
    const char l[4] = {static_cast<char>(len), static_cast<char>(len >> 8),
                       static_cast<char>(len >> 16), static_cast<char>(len >> 24)};
    out.write(l, 4);
    out.write(reinterpret_cast<const char*>(unit.data()), static_cast<std::streamsize>(len));
  }
  return out ? 0 : 1;
}

int decode(const char* file, bool fresh) {
  std::ifstream in(file, std::ios::binary);
  const std::vector<uint8_t> data((std::istreambuf_iterator<char>(in)), {});
  std::vector<std::span<const uint8_t>> units;
  for (std::size_t at = 0; at + 4 <= data.size();) {
    const uint32_t len =
        static_cast<uint32_t>(data[at]) | (static_cast<uint32_t>(data[at + 1]) << 8) |
        (static_cast<uint32_t>(data[at + 2]) << 16) | (static_cast<uint32_t>(data[at + 3]) << 24);
    units.emplace_back(data.data() + at + 4, len);
    at += 4 + len;
  }
  std::size_t objects = 0, values = 0, passes = 0;
  const auto t0 = std::chrono::steady_clock::now();
  const double c0 = cpu_seconds();
  double wall = 0;
  do {
    wmio::ClassCache cache;
    for (const auto& u : units) {
      if (fresh) cache.clear();
      const auto items = wmio::decode(u, cache);
      for (const auto& i : items) {
        ++objects;
        if (passes == 0)
          for (const auto& p : i.properties) values += p.values.size();
      }
    }
    ++passes;
    wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  } while (wall < 2.0);
  const double cpu = cpu_seconds() - c0;
  std::printf("outpost objects=%zu values=%zu wall_s=%.6f cpu_s=%.6f\n", objects, values, wall,
              cpu);
  return objects == units.size() * passes ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    if (argc == 4 && std::strcmp(argv[1], "gen") == 0)
      return gen(std::strtoul(argv[2], nullptr, 10), argv[3]);
    if ((argc == 3 || argc == 4) && std::strcmp(argv[1], "decode") == 0)
      return decode(argv[2], argc == 4 && std::strcmp(argv[3], "fresh") == 0);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_wmio: %s\n", e.what());
    return 1;
  }
  std::fprintf(stderr, "usage: bench_wmio gen N FILE | bench_wmio decode FILE [fresh]\n");
  return 2;
}
