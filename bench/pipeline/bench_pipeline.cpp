// Pipeline throughput: metrics per second from a plugin-style emit (C batch, deep copy, bounded
// queue, batching) to (a) a null sink and (b) the real sqlite sink plugin; beside it, the same
// rows written straight into SQLite with prepared statements, the floor any store must pay.
//
//   bench_pipeline PLUGIN_DIR [METRICS]
#include <sqlite3.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <outpost/testing.hpp>
#include <string>
#include <unordered_map>
#include <vector>

#include "pipeline/pipeline.hpp"

using namespace outpost::core;
using Clock = std::chrono::steady_clock;
namespace fs = std::filesystem;

namespace {
constexpr int kDevices = 1000;
constexpr int kPerEmit = 100;  // metrics per emit, like one poll batch

struct NullSink : SinkPort {
  std::string n = "null";
  uint64_t seen = 0;
  const std::string& name() const override { return n; }
  outpost_status write(const outpost_batch& b) override {
    seen += b.metric_count;
    return OUTPOST_OK;
  }
  outpost_status flush() override { return OUTPOST_OK; }
};

struct PluginSink : SinkPort {
  explicit PluginSink(outpost::testing::FakeHost& h) : host(h) {}
  outpost::testing::FakeHost& host;
  std::string n = "sqlite";
  const std::string& name() const override { return n; }
  outpost_status write(const outpost_batch& b) override {
    return host.descriptor()->write(host.instance(), &b);
  }
  outpost_status flush() override { return host.descriptor()->flush(host.instance()); }
};

// Emits `total` metrics the way a plugin does and waits until the sinks have them all.
double run_pipeline(SinkPort& sink_ref, std::shared_ptr<SinkPort> sink, long total) {
  PipelineOptions o;
  o.capacity = 1000000;
  o.batch_size = 5000;
  o.flush_interval_s = 0.2;
  Pipeline p(o);
  p.set_sinks({std::move(sink)});
  p.start();
  (void)sink_ref;
  std::vector<std::string> devices;
  for (int d = 0; d < kDevices; ++d) devices.push_back("dev-" + std::to_string(d));
  const std::string ifname = "ifHCInOctets";
  const auto t0 = Clock::now();
  long sent = 0;
  std::vector<outpost_kv> labels(static_cast<std::size_t>(kPerEmit) * 2);
  std::vector<outpost_metric> ms(kPerEmit);
  std::vector<std::string> ifidx;
  for (int i = 0; i < kPerEmit; ++i) ifidx.push_back(std::to_string(i));
  while (sent < total) {
    const std::string& dev = devices[static_cast<std::size_t>((sent / kPerEmit) % kDevices)];
    for (int i = 0; i < kPerEmit; ++i) {
      const auto k = static_cast<std::size_t>(i);
      labels[2 * k] = {{"device", 6}, {dev.data(), dev.size()}};
      labels[2 * k + 1] = {{"ifIndex", 7}, {ifidx[k].data(), ifidx[k].size()}};
      ms[k] = {{ifname.data(), ifname.size()},
               &labels[2 * k],
               2,
               static_cast<double>(sent + i),
               0,
               OUTPOST_METRIC_COUNTER,
               0};
    }
    outpost_batch b = outpost_batch_make();
    b.metrics = ms.data();
    b.metric_count = ms.size();
    Batch owned;
    owned.add_c_batch(b, 1700000000000000000 + sent);
    while (p.submit(std::move(owned)) == OUTPOST_E_BUSY) {  // back-pressure: wait, do not drop
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
      owned = Batch();
      owned.add_c_batch(b, 1700000000000000000 + sent);
    }
    sent += kPerEmit;
  }
  p.stop();
  const double secs = std::chrono::duration<double>(Clock::now() - t0).count();
  const auto st = p.stats();
  if (st.delivered != static_cast<uint64_t>(sent)) {
    std::fprintf(stderr, "lost data: sent %ld delivered %llu\n", sent,
                 static_cast<unsigned long long>(st.delivered));
    std::exit(1);
  }
  return static_cast<double>(total) / secs;
}

// The same rows straight into the same schema, batched in transactions of the same size.
double run_direct(const std::string& path, long total) {
  sqlite3* db = nullptr;
  sqlite3_open(path.c_str(), &db);
  sqlite3_exec(db,
               "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
               "CREATE TABLE series(id INTEGER PRIMARY KEY, name TEXT NOT NULL, labels TEXT NOT "
               "NULL, type INTEGER NOT NULL, UNIQUE(name, labels));"
               "CREATE TABLE samples(series_id INTEGER NOT NULL, time_ns INTEGER NOT NULL, value "
               "REAL NOT NULL);"
               "CREATE INDEX samples_series_time ON samples(series_id, time_ns);",
               nullptr, nullptr, nullptr);
  sqlite3_stmt *ins_series = nullptr, *ins_sample = nullptr;
  sqlite3_prepare_v2(db, "INSERT INTO series(name, labels, type) VALUES(?,?,1)", -1, &ins_series,
                     nullptr);
  sqlite3_prepare_v2(db, "INSERT INTO samples VALUES(?,?,?)", -1, &ins_sample, nullptr);
  std::unordered_map<std::string, sqlite3_int64> ids;
  const auto t0 = Clock::now();
  long done = 0;
  while (done < total) {
    sqlite3_exec(db, "BEGIN", nullptr, nullptr, nullptr);
    for (int i = 0; i < 5000 && done < total; ++i, ++done) {
      const long dev = (done / kPerEmit) % kDevices;
      const std::string labels = "{\"device\":\"dev-" + std::to_string(dev) + "\",\"ifIndex\":\"" +
                                 std::to_string(done % kPerEmit) + "\"}";
      auto it = ids.find(labels);
      if (it == ids.end()) {
        sqlite3_bind_text(ins_series, 1, "ifHCInOctets", -1, SQLITE_STATIC);
        sqlite3_bind_text(ins_series, 2, labels.c_str(), -1, SQLITE_TRANSIENT);
        sqlite3_step(ins_series);
        sqlite3_reset(ins_series);
        it = ids.emplace(labels, sqlite3_last_insert_rowid(db)).first;
      }
      sqlite3_bind_int64(ins_sample, 1, it->second);
      sqlite3_bind_int64(ins_sample, 2, 1700000000000000000 + done);
      sqlite3_bind_double(ins_sample, 3, static_cast<double>(done));
      sqlite3_step(ins_sample);
      sqlite3_reset(ins_sample);
    }
    sqlite3_exec(db, "COMMIT", nullptr, nullptr, nullptr);
  }
  const double secs = std::chrono::duration<double>(Clock::now() - t0).count();
  sqlite3_finalize(ins_series);
  sqlite3_finalize(ins_sample);
  sqlite3_close(db);
  return static_cast<double>(total) / secs;
}
}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: bench_pipeline PLUGIN_DIR [METRICS]\n");
    return 2;
  }
  const std::string plugin = std::string(argv[1]) + "/outpost_sqlite.so";
  const long total = argc > 2 ? std::atol(argv[2]) : 2000000;
  const fs::path tmp = fs::temp_directory_path() / ("outpost-bench-" + std::to_string(::getpid()));
  fs::create_directories(tmp);

  auto null_sink = std::make_shared<NullSink>();
  const double null_rate = run_pipeline(*null_sink, null_sink, total);
  std::printf("pipeline to null sink:    %12.0f metrics/s (%ld metrics)\n", null_rate, total);

  const outpost_plugin_descriptor* d = outpost::testing::open_plugin(plugin);
  outpost::testing::FakeHost host(d);
  if (host.create({{"path", (tmp / "outpost.db").string()}, {"max_rows", "100000000"}}) !=
      OUTPOST_OK) {
    std::fprintf(stderr, "cannot create the sqlite sink\n");
    return 1;
  }
  auto sql_sink = std::make_shared<PluginSink>(host);
  const double sqlite_rate = run_pipeline(*sql_sink, sql_sink, total);
  host.destroy();
  std::printf("pipeline to sqlite sink:  %12.0f metrics/s\n", sqlite_rate);
  const double direct_rate = run_direct((tmp / "direct.db").string(), total);
  std::printf("direct sqlite inserts:    %12.0f metrics/s\n", direct_rate);
  fs::remove_all(tmp);
  std::printf("RESULT pipeline_sqlite outpost=%.0f sqlite_direct=%.0f ratio=%.2f metrics/s\n",
              sqlite_rate, direct_rate, sqlite_rate / direct_rate);
  return 0;
}
