// bench/spool/run.sh: the spool's ingest and catch-up rates beside SQLite WAL doing the same job.
#include <sqlite3.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "spool/record.hpp"
#include "spool/spool.hpp"

using namespace outpost::core;
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

constexpr int kPerRecord = 50;

std::vector<Batch> make_records(int n) {
  std::vector<Batch> out;
  out.reserve(static_cast<std::size_t>(n));
  for (int r = 0; r < n; ++r) {
    Batch b;
    b.origin = "snmp";
    const std::string dev = "dev-" + std::to_string(r % 1000);
    for (int i = 0; i < kPerRecord; ++i)
      b.add_metric(
          i % 2 ? "ifHCInOctets" : "ifHCOutOctets",
          {{"device", dev}, {"address", "127.20.3.7"}, {"ifName", "eth" + std::to_string(i / 2)}},
          1e9 + r * 1000.0 + i, 1'700'000'000'000'000'000 + int64_t{r} * 1'000'000'000,
          OUTPOST_METRIC_COUNTER);
    out.push_back(std::move(b));
  }
  return out;
}

double secs(Clock::time_point a) { return std::chrono::duration<double>(Clock::now() - a).count(); }

void check(int rc, sqlite3* db, const char* what) {
  if (rc != SQLITE_OK && rc != SQLITE_DONE && rc != SQLITE_ROW) {
    std::fprintf(stderr, "sqlite %s: %s\n", what, sqlite3_errmsg(db));
    std::exit(1);
  }
}

}  // namespace

int main(int argc, char** argv) {
  const long items = argc > 1 ? std::atol(argv[1]) : 2'000'000;
  const int records = static_cast<int>(items / kPerRecord);
  const fs::path dir = fs::temp_directory_path() / ("bench-spool-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  const auto batches = make_records(records);
  std::printf("%d records of %d metrics (%ld items)\n", records, kPerRecord,
              static_cast<long>(records) * kPerRecord);

  // --- the spool ---
  double sp_in = 0, sp_out = 0;
  uint64_t disk = 0;
  {
    SpoolOptions o;
    o.dir = (dir / "spool").string();
    o.max_source_bytes = 64ull << 30;
    std::string why;
    auto s = Spool::open(o, why);
    if (!s) {
      std::fprintf(stderr, "spool: %s\n", why.c_str());
      return 1;
    }
    s->start([](const outpost_batch&, const outpost_write_info&, int64_t&) {
      return OUTPOST_E_UNAVAILABLE;  // down while ingesting: everything stays on disk
    });
    const auto t0 = Clock::now();
    for (const Batch& b : batches) s->append({&b});
    s->sync();
    sp_in = secs(t0);
    disk = s->stats().disk_bytes;
    s->stop();
    s.reset();
    auto r = Spool::open(o, why);
    uint64_t seen = 0;
    const auto t1 = Clock::now();
    r->start([&](const outpost_batch& b, const outpost_write_info&, int64_t&) {
      seen += b.metric_count;
      return OUTPOST_OK;
    });
    r->wait_idle(600);
    sp_out = secs(t1);
    r->stop();
    if (seen != static_cast<uint64_t>(records) * kPerRecord) {
      std::fprintf(stderr, "spool: read back %llu items\n", static_cast<unsigned long long>(seen));
      return 1;
    }
  }

  // --- SQLite WAL ---
  double sq_in = 0, sq_out = 0;
  {
    sqlite3* db = nullptr;
    const std::string path = (dir / "spool.db").string();
    check(sqlite3_open(path.c_str(), &db), db, "open");
    check(sqlite3_exec(db,
                       "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
                       "CREATE TABLE spool(stream TEXT, seq INTEGER, time INTEGER, items INTEGER,"
                       " payload BLOB, PRIMARY KEY(stream, seq)) WITHOUT ROWID;",
                       nullptr, nullptr, nullptr),
          db, "schema");
    sqlite3_stmt* ins = nullptr;
    check(sqlite3_prepare_v2(db, "INSERT INTO spool VALUES(?,?,?,?,?)", -1, &ins, nullptr), db,
          "prepare");
    std::string payload;
    const auto t0 = Clock::now();
    auto last_sync = Clock::now();
    for (int r = 0; r < records; ++r) {
      spool::encode_payload({&batches[static_cast<std::size_t>(r)]}, payload);
      sqlite3_bind_text(ins, 1, "snmp", 4, SQLITE_STATIC);
      sqlite3_bind_int64(ins, 2, r + 1);
      sqlite3_bind_int64(ins, 3, 0);
      sqlite3_bind_int64(ins, 4, kPerRecord);
      sqlite3_bind_blob(ins, 5, payload.data(), static_cast<int>(payload.size()), SQLITE_STATIC);
      check(sqlite3_step(ins), db, "insert");
      sqlite3_reset(ins);
      if (secs(last_sync) >= 1.0) {  // the same once-a-second durability as the spool
        check(sqlite3_wal_checkpoint_v2(db, nullptr, SQLITE_CHECKPOINT_PASSIVE, nullptr, nullptr),
              db, "checkpoint");
        last_sync = Clock::now();
      }
    }
    check(sqlite3_exec(db, "PRAGMA wal_checkpoint(FULL)", nullptr, nullptr, nullptr), db, "ckpt");
    sq_in = secs(t0);
    sqlite3_finalize(ins);
    sqlite3_stmt* sel = nullptr;
    sqlite3_stmt* del = nullptr;
    check(sqlite3_prepare_v2(db,
                             "SELECT seq, payload FROM spool WHERE stream='snmp' AND seq>? "
                             "ORDER BY seq LIMIT ?",
                             -1, &sel, nullptr),
          db, "prepare");
    check(sqlite3_prepare_v2(db, "DELETE FROM spool WHERE stream='snmp' AND seq<=?", -1, &del,
                             nullptr),
          db, "prepare");
    uint64_t seen = 0;
    int64_t after = 0;
    const auto t1 = Clock::now();
    for (;;) {
      sqlite3_bind_int64(sel, 1, after);
      sqlite3_bind_int64(sel, 2, 20000 / kPerRecord);
      int n = 0;
      while (sqlite3_step(sel) == SQLITE_ROW) {
        after = sqlite3_column_int64(sel, 0);
        const auto* p = static_cast<const char*>(sqlite3_column_blob(sel, 1));
        Batch b;
        std::string why;
        if (spool::decode_payload(
                std::string_view(p, static_cast<std::size_t>(sqlite3_column_bytes(sel, 1))), b,
                why))
          seen += b.metrics().size();
        ++n;
      }
      sqlite3_reset(sel);
      if (n == 0) break;
      check(sqlite3_exec(db, "BEGIN", nullptr, nullptr, nullptr), db, "begin");
      sqlite3_bind_int64(del, 1, after);
      check(sqlite3_step(del), db, "delete");
      sqlite3_reset(del);
      check(sqlite3_exec(db, "COMMIT", nullptr, nullptr, nullptr), db, "commit");
    }
    sq_out = secs(t1);
    sqlite3_finalize(sel);
    sqlite3_finalize(del);
    sqlite3_close(db);
    if (seen != static_cast<uint64_t>(records) * kPerRecord) {
      std::fprintf(stderr, "sqlite: read back %llu items\n", static_cast<unsigned long long>(seen));
      return 1;
    }
  }
  fs::remove_all(dir);
  const double n = static_cast<double>(records) * kPerRecord;
  std::printf("spool on disk: %.1f bytes per item\n", static_cast<double>(disk) / n);
  std::printf("ingest: spool %.0f items/s (%.2f s), sqlite WAL %.0f items/s (%.2f s)\n", n / sp_in,
              sp_in, n / sq_in, sq_in);
  std::printf("catch-up: spool %.0f items/s (%.2f s), sqlite WAL %.0f items/s (%.2f s)\n",
              n / sp_out, sp_out, n / sq_out, sq_out);
  std::printf("RESULT spool_catchup outpost=%.0f sqlite_wal=%.0f ratio=%.2f items/s\n", n / sp_out,
              n / sq_out, sq_out / sp_out);
  std::printf("RESULT spool_ingest outpost=%.0f sqlite_wal=%.0f ratio=%.2f items/s\n", n / sp_in,
              n / sq_in, sq_in / sp_in);
  return 0;
}
