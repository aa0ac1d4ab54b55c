// The local store at scale: DEVICES devices of 160 series each (40 interfaces: in/out octets
// counters, errors, oper status), one poll a minute with jitter, written through the store sink
// plugin in the pipeline's batches; beside it the same rows inserted straight into SQLite with
// an index on (series, time), the floor of a row-per-sample store. Then: compaction time, disk
// bytes per sample, and the latency of `outpost query`'s read of one series over a day.
//
//   bench_store PLUGIN_DIR [DEVICES] [MINUTES]
#include <sqlite3.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <outpost/testing.hpp>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "store.hpp"

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

constexpr int kIfs = 40;
constexpr int kPerDevice = kIfs * 4;
constexpr std::size_t kBatch = 5000;  // the pipeline's default batch size
constexpr int64_t kMin = 60'000'000'000;
constexpr int64_t kHour = 60 * kMin;

double cpu_seconds() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
         static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

uint64_t dir_bytes(const fs::path& p, const std::string& prefix = "") {
  uint64_t n = 0;
  std::error_code ec;
  for (const auto& e : fs::recursive_directory_iterator(p, ec))
    if (e.is_regular_file() && e.path().filename().string().rfind(prefix, 0) == 0)
      n += e.file_size();
  return n;
}

// The fleet's samples, poll by poll: a device's series share its poll time (the host stamps a
// poll's emit), a minute apart with up to 10 ms of jitter.
class Fleet {
 public:
  Fleet(int devices, int64_t start) : start_(start), rng_(1) {
    const char* names[4] = {"ifHCInOctets", "ifHCOutOctets", "ifInErrors", "ifOperStatus"};
    for (int d = 0; d < devices; ++d) devices_.push_back("dev-" + std::to_string(d));
    for (int i = 0; i < kIfs; ++i) ifs_.push_back(std::to_string(i + 1));
    for (const char* n : names) names_.emplace_back(n);
    counters_.assign(static_cast<std::size_t>(devices) * kPerDevice, 1e9);
    labels_.resize(kBatch * 2);
    metrics_.resize(kBatch);
  }
  std::size_t devices() const { return devices_.size(); }
  // Fills up to kBatch metrics of minute m from device d onwards; returns the next device.
  std::size_t fill(int m, std::size_t d, std::size_t& n) {
    n = 0;
    while (d < devices_.size() && n + kPerDevice <= kBatch) {
      const int64_t t = start_ + m * kMin + static_cast<int64_t>(rng_() % 10'000'000);
      for (int k = 0; k < kPerDevice; ++k) {
        const int metric = k % 4, ifi = k / 4;
        double& c = counters_[d * kPerDevice + static_cast<std::size_t>(k)];
        if (metric < 2)
          c += static_cast<double>(rng_() % 5'000'000);
        else if (metric == 2)
          c = (rng_() % 50 == 0) ? c + 1 : c;
        double v = metric == 3 ? (rng_() % 1000 == 0 ? 2.0 : 1.0) : c;
        if (metric == 2) v = c - 1e9;
        labels_[2 * n] = {{"device", 6}, {devices_[d].data(), devices_[d].size()}};
        labels_[2 * n + 1] = {{"ifIndex", 7},
                              {ifs_[static_cast<std::size_t>(ifi)].data(),
                               ifs_[static_cast<std::size_t>(ifi)].size()}};
        const std::string& nm = names_[static_cast<std::size_t>(metric)];
        metrics_[n] = {{nm.data(), nm.size()},
                       &labels_[2 * n],
                       2,
                       v,
                       t,
                       metric < 3 ? OUTPOST_METRIC_COUNTER : OUTPOST_METRIC_GAUGE,
                       0};
        ++n;
      }
      ++d;
    }
    return d;
  }
  const outpost_metric* metrics() const { return metrics_.data(); }

 private:
  int64_t start_;
  std::mt19937_64 rng_;
  std::vector<std::string> devices_, ifs_, names_;
  std::vector<double> counters_;
  std::vector<outpost_kv> labels_;
  std::vector<outpost_metric> metrics_;
};

// The first poll creates every series; the rest is the steady state.
struct Ingest {
  double secs = 0, cpu = 0;
  uint64_t samples = 0;
  double first_secs = 0, first_cpu = 0;
  uint64_t first_samples = 0;
  double rate() const { return static_cast<double>(samples - first_samples) / (secs - first_secs); }
  double cpu_per_million() const {
    return (cpu - first_cpu) * 1e6 / static_cast<double>(samples - first_samples);
  }
};

Ingest ingest_store(outpost::testing::FakeHost& host, Fleet& fleet, int minutes) {
  Ingest r;
  const double c0 = cpu_seconds();
  const auto t0 = Clock::now();
  for (int m = 0; m < minutes; ++m) {
    std::size_t d = 0;
    while (d < fleet.devices()) {
      std::size_t n = 0;
      d = fleet.fill(m, d, n);
      outpost_batch b = outpost_batch_make();
      b.metrics = fleet.metrics();
      b.metric_count = n;
      if (host.write(b) != OUTPOST_OK) {
        std::fprintf(stderr, "store write failed\n");
        std::exit(1);
      }
      r.samples += n;
    }
    if (m == 0) {
      r.first_secs = std::chrono::duration<double>(Clock::now() - t0).count();
      r.first_cpu = cpu_seconds() - c0;
      r.first_samples = r.samples;
    }
  }
  host.flush();
  r.secs = std::chrono::duration<double>(Clock::now() - t0).count();
  r.cpu = cpu_seconds() - c0;
  return r;
}

// Rows into SQLite: series catalog and one row per sample, indexed by (series, time).
Ingest ingest_sqlite(const std::string& path, Fleet& fleet, int minutes) {
  Ingest r;
  sqlite3* db = nullptr;
  sqlite3_open(path.c_str(), &db);
  sqlite3_exec(db,
               "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
               "CREATE TABLE series(id INTEGER PRIMARY KEY, name TEXT, labels TEXT,"
               " UNIQUE(name, labels));"
               "CREATE TABLE samples(series_id INTEGER, time_ns INTEGER, value REAL);"
               "CREATE INDEX samples_series_time ON samples(series_id, time_ns);",
               nullptr, nullptr, nullptr);
  sqlite3_stmt *find = nullptr, *ins_series = nullptr, *ins = nullptr;
  sqlite3_prepare_v2(db, "SELECT id FROM series WHERE name=?1 AND labels=?2", -1, &find, nullptr);
  sqlite3_prepare_v2(db, "INSERT INTO series(name, labels) VALUES(?1, ?2)", -1, &ins_series,
                     nullptr);
  sqlite3_prepare_v2(db, "INSERT INTO samples VALUES(?1, ?2, ?3)", -1, &ins, nullptr);
  const double c0 = cpu_seconds();
  const auto t0 = Clock::now();
  std::string labels;
  for (int m = 0; m < minutes; ++m) {
    std::size_t d = 0;
    while (d < fleet.devices()) {
      std::size_t n = 0;
      d = fleet.fill(m, d, n);
      sqlite3_exec(db, "BEGIN", nullptr, nullptr, nullptr);
      for (std::size_t i = 0; i < n; ++i) {
        const outpost_metric& mt = fleet.metrics()[i];
        labels.assign(mt.labels[0].value.ptr, mt.labels[0].value.len).push_back(',');
        labels.append(mt.labels[1].value.ptr, mt.labels[1].value.len);
        sqlite3_bind_text(find, 1, mt.name.ptr, static_cast<int>(mt.name.len), SQLITE_STATIC);
        sqlite3_bind_text(find, 2, labels.data(), static_cast<int>(labels.size()), SQLITE_STATIC);
        sqlite3_int64 id = 0;
        if (sqlite3_step(find) == SQLITE_ROW) {
          id = sqlite3_column_int64(find, 0);
        } else {
          sqlite3_bind_text(ins_series, 1, mt.name.ptr, static_cast<int>(mt.name.len),
                            SQLITE_STATIC);
          sqlite3_bind_text(ins_series, 2, labels.data(), static_cast<int>(labels.size()),
                            SQLITE_STATIC);
          sqlite3_step(ins_series);
          sqlite3_reset(ins_series);
          id = sqlite3_last_insert_rowid(db);
        }
        sqlite3_reset(find);
        sqlite3_bind_int64(ins, 1, id);
        sqlite3_bind_int64(ins, 2, mt.time_ns);
        sqlite3_bind_double(ins, 3, mt.value);
        sqlite3_step(ins);
        sqlite3_reset(ins);
      }
      sqlite3_exec(db, "COMMIT", nullptr, nullptr, nullptr);
      r.samples += n;
    }
    if (m == 0) {
      r.first_secs = std::chrono::duration<double>(Clock::now() - t0).count();
      r.first_cpu = cpu_seconds() - c0;
      r.first_samples = r.samples;
    }
  }
  r.secs = std::chrono::duration<double>(Clock::now() - t0).count();
  r.cpu = cpu_seconds() - c0;
  sqlite3_finalize(find);
  sqlite3_finalize(ins_series);
  sqlite3_finalize(ins);
  sqlite3_exec(db, "PRAGMA wal_checkpoint(TRUNCATE)", nullptr, nullptr, nullptr);
  sqlite3_close(db);
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: bench_store PLUGIN_DIR [DEVICES] [MINUTES]\n");
    return 2;
  }
  std::setvbuf(stdout, nullptr, _IOLBF, 0);  // progress shows as it comes, also into a file
  const std::string plugin = std::string(argv[1]) + "/outpost_store.so";
  const int devices = argc > 2 ? std::atoi(argv[2]) : 10000;
  const int minutes = argc > 3 ? std::atoi(argv[3]) : 10;
  if (devices < 1 || minutes < 2) {
    std::fprintf(stderr, "bench_store: at least 1 device and 2 minutes\n");
    return 2;
  }
  const fs::path tmp =
      fs::temp_directory_path() / ("outpost-bench-store-" + std::to_string(::getpid()));
  fs::create_directories(tmp);
  const outpost_plugin_descriptor* d = outpost::testing::open_plugin(plugin);
  const auto now = std::chrono::duration_cast<std::chrono::nanoseconds>(
                       std::chrono::system_clock::now().time_since_epoch())
                       .count();
  // Whole windows three hours back, so that they are closed and compacted at once.
  const int64_t start = now / kHour * kHour - 3 * kHour;
  const uint64_t series = static_cast<uint64_t>(devices) * kPerDevice;
  std::printf("fleet: %d devices, %llu series, %d polls a series (one a minute)\n", devices,
              static_cast<unsigned long long>(series), minutes);

  // 1. Ingest through the plugin.
  const std::string path = (tmp / "store").string();
  Ingest st;
  {
    outpost::testing::FakeHost host(d);
    if (host.create({{"path", path}}) != OUTPOST_OK) {
      std::fprintf(stderr, "cannot create the store sink\n");
      return 1;
    }
    Fleet fleet(devices, start);
    st = ingest_store(host, fleet, minutes);
  }
  std::printf("store sink, first poll (creates the series): %.2f s, %.2f CPU-s\n", st.first_secs,
              st.first_cpu);
  std::printf("store sink ingest, later polls: %10.0f samples/s, %.2f CPU-s per million\n",
              st.rate(), st.cpu_per_million());
  const uint64_t head_bytes = dir_bytes(path + "/blocks", "h-");
  const uint64_t catalog_bytes = dir_bytes(path, "catalog");

  // 2. Compaction of what was written: heads into raw and rollup blocks.
  outpost::testing::FakeHost logs(d);
  const outpost::Host h(logs.api(), reinterpret_cast<outpost_host*>(&logs));
  outpost::store::StoreOptions so;
  so.dir = path + "/blocks";
  double compact_secs = 0, compact_cpu = 0;
  {
    outpost::store::Store blocks(h, so);
    const double c0 = cpu_seconds();
    const auto t0 = Clock::now();
    blocks.compact_now();
    compact_secs = std::chrono::duration<double>(Clock::now() - t0).count();
    compact_cpu = cpu_seconds() - c0;
  }
  const uint64_t raw_bytes = dir_bytes(path + "/blocks", "r-");
  const uint64_t rollup_bytes = dir_bytes(path + "/blocks", "u-");
  const double raw_per_sample = static_cast<double>(raw_bytes) / static_cast<double>(st.samples);
  const double buckets = static_cast<double>(series) * std::ceil(minutes / 5.0);
  const double rollup_per_bucket = static_cast<double>(rollup_bytes) / buckets;
  std::printf("compaction:             %10.2f s (%.2f CPU-s) for %llu samples\n", compact_secs,
              compact_cpu, static_cast<unsigned long long>(st.samples));
  std::printf(
      "disk: heads %.2f B/sample, raw blocks %.2f B/sample, rollups %.2f B per 5-min "
      "bucket, catalog %.0f B/series\n",
      static_cast<double>(head_bytes) / static_cast<double>(st.samples), raw_per_sample,
      rollup_per_bucket, static_cast<double>(catalog_bytes) / static_cast<double>(series));
  for (const int n : {10, 1000, 10000}) {
    const double s = n * kPerDevice;
    const double raw_day = s * 1440 * raw_per_sample;
    const double rollups_week = s * 288 * 7 * rollup_per_bucket;
    std::printf("budget at %5d devices: 24 h raw %.2f GB + 7 d rollups %.2f GB = %.2f GB\n", n,
                raw_day / 1e9, rollups_week / 1e9, (raw_day + rollups_week) / 1e9);
  }

  // 3. The catalog's text index, filled in the background by a started sink (as in the engine).
  {
    outpost::testing::FakeHost host(d);
    if (host.create({{"path", path}}) != OUTPOST_OK || host.start() != OUTPOST_OK) return 1;
    const auto t0 = Clock::now();
    sqlite3* db = nullptr;
    sqlite3_open_v2((path + "/catalog.db").c_str(), &db, SQLITE_OPEN_READONLY, nullptr);
    sqlite3_busy_timeout(db, 5000);
    for (;;) {
      sqlite3_stmt* q = nullptr;
      sqlite3_prepare_v2(db, "SELECT value FROM meta WHERE key = 'text_indexed_id'", -1, &q,
                         nullptr);
      const auto v = sqlite3_step(q) == SQLITE_ROW ? sqlite3_column_int64(q, 0) : 0;
      sqlite3_finalize(q);
      if (static_cast<uint64_t>(v) >= series) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
    sqlite3_close(db);
    std::printf("text index of %llu series, in the background: %.1f s\n",
                static_cast<unsigned long long>(series),
                std::chrono::duration<double>(Clock::now() - t0).count());
    host.stop();
  }

  // 4. `outpost query` of one series over a day, read-only, as the CLI opens it.
  std::vector<double> ms;
  {
    outpost::testing::FakeHost reader(d);
    reader.set_purpose(OUTPOST_PURPOSE_READ);
    if (reader.create({{"path", path}}) != OUTPOST_OK) return 1;
    for (int i = 0; i < 21; ++i) {
      const std::string dev = "\"dev-" + std::to_string((i * 7919) % devices) + "\"";
      const auto t0 = Clock::now();
      auto rows = reader.read(outpost::testing::ReadSpec{OUTPOST_READ_SAMPLES, "ifHCInOctets",
                                                         dev + ",\"ifIndex\":\"7\"",
                                                         now - 24 * kHour, 0, 100000});
      ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
      if (rows.size() != static_cast<std::size_t>(minutes)) {
        std::fprintf(stderr, "query: %zu samples, expected %d\n", rows.size(), minutes);
        return 1;
      }
    }
  }
  std::sort(ms.begin(), ms.end());
  std::printf("query one series over a day: median %.2f ms, max %.2f ms\n", ms[ms.size() / 2],
              ms.back());

  // 5. The peer: the same rows into SQLite.
  // The peer's steady state shows within minutes; STORE_BENCH_PEER_MINUTES bounds its run.
  const char* pm = std::getenv("STORE_BENCH_PEER_MINUTES");
  const int peer_minutes = pm != nullptr ? std::max(2, std::min(minutes, std::atoi(pm))) : minutes;
  Fleet fleet(devices, start);
  const Ingest sq = ingest_sqlite((tmp / "direct.db").string(), fleet, peer_minutes);
  const uint64_t sq_bytes = dir_bytes(tmp, "direct.db");
  std::printf("sqlite, first poll (creates the series): %.2f s, %.2f CPU-s\n", sq.first_secs,
              sq.first_cpu);
  std::printf(
      "sqlite inserts, later polls: %10.0f samples/s, %.2f CPU-s per million, %.2f B/sample\n",
      sq.rate(), sq.cpu_per_million(),
      static_cast<double>(sq_bytes) / static_cast<double>(sq.samples));
  fs::remove_all(tmp);
  const double a = st.rate(), b = sq.rate();  // steady state
  std::printf("RESULT store_ingest outpost=%.0f sqlite=%.0f ratio=%.2f samples/s\n", a, b, a / b);
  return 0;
}
