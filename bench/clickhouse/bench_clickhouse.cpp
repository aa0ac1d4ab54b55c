// Flow rows for the clickhouse benchmark (bench/clickhouse/run.sh), the same rows both ways:
//   bench_clickhouse dump ROWS FILE           the rows as RowBinary, for clickhouse-client
//   bench_clickhouse sink ROWS BATCH URL DB   the rows through the clickhouse sink plugin, loaded
//                                             and driven as the engine drives a spooled sink
//                                             (write_spooled, BATCH flows a batch; the spool's
//                                             default is 20,000 items), into DB.flows
// sink prints "rows=N seconds=S cpu_seconds=C" (this process's CPU: the plugin's encoding and
// HTTP), after checking every batch was taken.
#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <outpost/testing.hpp>
#include <string>
#include <vector>

#include "row_binary.hpp"

namespace {

// Row i of the benchmark: 1,000 exporters' worth of varied traffic over one hour of yesterday.
outpost_flow flow(uint64_t i, int64_t base_ns) {
  outpost_flow f{};
  const uint32_t h = static_cast<uint32_t>(i * 2654435761u);
  f.end_ns = base_ns + static_cast<int64_t>(i % 3'600'000) * 1'000'000;
  f.start_ns = f.end_ns - static_cast<int64_t>(h % 60'000) * 1'000'000;
  const uint8_t src[4] = {10, static_cast<uint8_t>(h >> 8), static_cast<uint8_t>(h >> 16),
                          static_cast<uint8_t>(i)};
  const uint8_t dst[4] = {172, 16, static_cast<uint8_t>(h >> 24), static_cast<uint8_t>(h)};
  const uint8_t exp[4] = {192, 0, static_cast<uint8_t>(i % 4), static_cast<uint8_t>(i % 250)};
  std::memcpy(f.src_addr, src, 4);
  std::memcpy(f.dst_addr, dst, 4);
  std::memcpy(f.exporter_addr, exp, 4);
  f.family = 4;
  f.exporter_family = 4;
  f.protocol = (h & 3) == 0 ? 17 : 6;
  f.tcp_flags = f.protocol == 6 ? 0x1b : 0;
  f.src_port = static_cast<uint16_t>(1024 + h % 60000);
  f.dst_port = static_cast<uint16_t>((h & 1) != 0 ? 443 : 53);
  f.input_if = h % 48;
  f.output_if = (h >> 6) % 48;
  f.sampling_rate = 1;
  f.packets = 1 + h % 100;
  f.bytes = f.packets * (40 + h % 1400);
  return f;
}

int64_t base_ns() {  // yesterday at 00:00 UTC: same rows for both sides within a run
  const int64_t now_s = std::chrono::duration_cast<std::chrono::seconds>(
                            std::chrono::system_clock::now().time_since_epoch())
                            .count();
  return (now_s / 86400 - 1) * 86400 * 1'000'000'000;
}

double cpu_seconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

int dump(uint64_t rows, const char* path) {
  const int64_t base = base_ns();
  std::ofstream out(path, std::ios::binary);
  outpost::clickhouse::EncodedRows enc;
  for (uint64_t i = 0; i < rows; ++i) {
    outpost::clickhouse::append_flow(enc, flow(i, base), 0, 0);
    if (enc.body.size() > (8u << 20)) {
      out.write(enc.body.data(), static_cast<std::streamsize>(enc.body.size()));
      enc.clear();
    }
  }
  out.write(enc.body.data(), static_cast<std::streamsize>(enc.body.size()));
  return out.good() ? 0 : 1;
}

int sink(uint64_t rows, uint64_t batch, const std::string& url, const std::string& db) {
  const int64_t base = base_ns();
  const auto* d = outpost::testing::open_plugin(BENCH_PLUGIN_DIR "/outpost_clickhouse.so");
  outpost::testing::FakeHost host(d);
  if (host.create({{"url", url}, {"database", db}, {"stats_interval", "0"}}) != OUTPOST_OK ||
      host.start() != OUTPOST_OK) {
    for (const auto& [st, e] : host.errors()) std::fprintf(stderr, "%#x %s\n", st, e.c_str());
    return 1;
  }
  // The batches are made before the clock starts: the engine hands the sink batches it has.
  std::vector<std::vector<outpost_flow>> batches;
  for (uint64_t i = 0; i < rows; i += batch) {
    std::vector<outpost_flow> b;
    for (uint64_t k = i; k < std::min(rows, i + batch); ++k) b.push_back(flow(k, base));
    batches.push_back(std::move(b));
  }
  const std::string stream = "bench", spool_id = "bench-spool";
  const double cpu0 = cpu_seconds();
  const auto t0 = std::chrono::steady_clock::now();
  uint64_t seq = 0;
  for (const auto& flows : batches) {
    outpost_batch b = outpost_batch_make();
    b.flows = flows.data();
    b.flow_count = flows.size();
    outpost_spool_range range{{stream.data(), stream.size()}, seq + 1, seq + flows.size()};
    seq += flows.size();
    outpost_write_info info{};
    info.struct_size = sizeof info;
    info.range_size = sizeof range;
    info.spool_id = {spool_id.data(), spool_id.size()};
    info.ranges = &range;
    info.range_count = 1;
    info.attempt = 1;
    const outpost_status st = d->write_spooled(host.instance(), &b, &info);
    if (st != OUTPOST_OK) {
      for (const auto& [s, e] : host.errors()) std::fprintf(stderr, "%#x %s\n", s, e.c_str());
      return 1;
    }
  }
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const double cpu = cpu_seconds() - cpu0;
  host.stop();
  std::printf("rows=%llu seconds=%.3f cpu_seconds=%.3f\n", static_cast<unsigned long long>(rows),
              secs, cpu);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 4 && std::strcmp(argv[1], "dump") == 0)
    return dump(std::strtoull(argv[2], nullptr, 10), argv[3]);
  if (argc == 6 && std::strcmp(argv[1], "sink") == 0)
    return sink(std::strtoull(argv[2], nullptr, 10), std::strtoull(argv[3], nullptr, 10), argv[4],
                argv[5]);
  std::fprintf(stderr, "usage: bench_clickhouse dump ROWS FILE | sink ROWS BATCH URL DB\n");
  return 2;
}
