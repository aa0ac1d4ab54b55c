// store: the embedded local store. Samples go to compressed per-series block files (store.hpp):
// the latest value of every series, raw samples for raw_retention, rollups (min, max, avg, count,
// last per step) for retention, within max_bytes. The series catalog, events and flows live in an
// SQLite database beside the blocks (plugins/lib/sqlite_store). `outpost query` reads it all.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <map>
#include <outpost/sdk.hpp>
#include <sqlite_store/row_store.hpp>
#include <string>
#include <vector>

#include "store.hpp"

namespace {

using outpost::Error;
using outpost::sqlite_store::RowStore;
using outpost::sqlite_store::Statement;

constexpr uint64_t kFlushTimer = 1;

int64_t ns_of(double seconds) { return static_cast<int64_t>(std::llround(seconds * 1e9)); }

// 20GiB, 512MB, 1000000: binary and decimal units.
uint64_t parse_bytes(const std::string& key, const std::string& text) {
  std::size_t used = 0;
  double n = 0;
  try {
    n = std::stod(text, &used);
  } catch (...) {
    throw Error(OUTPOST_E_CONFIG, key + ": not a size: " + text);
  }
  std::string unit = text.substr(used);
  unit.erase(0, unit.find_first_not_of(' '));
  static const std::pair<const char*, double> kUnits[] = {{"", 1},
                                                          {"B", 1},
                                                          {"KB", 1e3},
                                                          {"MB", 1e6},
                                                          {"GB", 1e9},
                                                          {"TB", 1e12},
                                                          {"KiB", 1024.0},
                                                          {"MiB", 1048576.0},
                                                          {"GiB", 1073741824.0},
                                                          {"TiB", 1099511627776.0}};
  for (const auto& [u, m] : kUnits)
    if (unit == u) {
      if (n < 0 || n * m > 1.8e19) throw Error(OUTPOST_E_CONFIG, key + ": out of range: " + text);
      return static_cast<uint64_t>(n * m);
    }
  throw Error(OUTPOST_E_CONFIG,
              key + ": unknown unit in " + text + " (B, KB, MB, GB, KiB, MiB, GiB)");
}

class StoreSink final : public outpost::Sink {
 public:
  StoreSink(outpost::Host host, const outpost::Config& cfg)
      : host_(host),
        dir_(cfg.get("path", "store")),
        rows_(host, row_options(host, cfg, dir_)),
        blocks_(host, store_options(host, cfg, dir_)) {
    text_index_ = open_text_index();
  }

  static std::vector<outpost_field> config_fields() {
    using outpost::field;
    return {
        field("path", OUTPOST_FIELD_STRING,
              "directory of the store; relative to the working directory", "store"),
        field("raw_retention", OUTPOST_FIELD_DURATION, "raw samples are kept this long", "24h"),
        field("retention", OUTPOST_FIELD_DURATION, "rollups, events and flows are kept this long",
              "7d"),
        field("rollup", OUTPOST_FIELD_DURATION,
              "rollup step: min, max, avg, count and last per series and step", "5m"),
        field("window", OUTPOST_FIELD_DURATION,
              "time one block covers (a whole number of rollup steps)", "2h"),
        field("flush_interval", OUTPOST_FIELD_DURATION,
              "samples are written to disk at least this often (what a crash may lose)", "10s"),
        field("max_bytes", OUTPOST_FIELD_STRING,
              "disk budget of the sample blocks (e.g. 20GiB): the oldest raw blocks, then the "
              "oldest rollups, are deleted past it; 0 is no budget",
              "0"),
        field("max_rows", OUTPOST_FIELD_INT,
              "bound on event rows (and separately on flow rows); 0 is unbounded", "5000000"),
    };
  }

  void start() override {
    // The store's thread also fills the text index, between its compaction passes.
    if (text_index_)
      blocks_.start([this] { return index_step(); });
    else
      blocks_.start();
    host_.set_timer(kFlushTimer, std::chrono::seconds(1));
  }
  void stop() override {
    blocks_.stop();  // joins the thread that uses index_db_
    sqlite3_close(index_db_);
    index_db_ = nullptr;
  }
  ~StoreSink() override { stop(); }
  void on_timer(uint64_t) override { flush_quietly(); }
  void flush() override { blocks_.flush(); }

  void write(const outpost_batch& b) override {
    const int64_t now = host_.now_ns();
    const std::size_t mark = blocks_.mark();
    try {
      rows_.write(b, [&](int64_t id, int64_t t, double v) {
        if (id < 0 || id > int64_t{UINT32_MAX})
          throw Error(OUTPOST_E_INTERNAL, "store: series id out of range");
        blocks_.add(static_cast<uint32_t>(id), t, v, now);
      });
    } catch (...) {
      blocks_.rollback_to(mark);  // the host retries the whole batch
      throw;
    }
    // After the catalog's commit nothing may throw: a retry would store the batch twice.
    flush_quietly();
  }

  // A flush that fails (a full disk) keeps its samples buffered for the next one and says so.
  void flush_quietly() noexcept {
    try {
      blocks_.maybe_flush();
    } catch (const std::exception& e) {
      host_.report_error(OUTPOST_E_UNAVAILABLE, std::string("store: flush: ") + e.what());
    }
  }

  void read(const outpost::ReadRequest& q, outpost::Rows& rows) override {
    rows_.read_with(
        q, rows,
        [this](const outpost::ReadRequest& r, uint64_t n, outpost::Rows& out) {
          return read_series(r, n, out);
        },
        [this](const outpost::ReadRequest& r, uint64_t n, outpost::Rows& out) {
          return read_samples(r, n, out);
        });
  }

 private:
  static outpost::sqlite_store::Options row_options(outpost::Host host, const outpost::Config& cfg,
                                                    const std::string& dir) {
    if (dir.empty()) throw Error(OUTPOST_E_CONFIG, "path: must not be empty");
    outpost::sqlite_store::Options o;
    o.path = dir + "/catalog.db";
    o.retention_ns = ns_of(checked_seconds(cfg, "retention", 7 * 86400.0));
    o.max_rows = cfg.get_int("max_rows", 5'000'000);
    if (o.max_rows < 0) throw Error(OUTPOST_E_CONFIG, "max_rows: must be 0 (unbounded) or more");
    o.read_only = host.read_only();
    o.sample_rows = false;
    return o;
  }

  static double checked_seconds(const outpost::Config& cfg, const char* key, double dflt) {
    const double s = cfg.get_seconds(key, dflt);
    if (s < 0 || s > 1e9)
      throw Error(OUTPOST_E_CONFIG, std::string(key) + ": out of range (0 to 31 years)");
    return s;
  }

  static outpost::store::StoreOptions store_options(outpost::Host host, const outpost::Config& cfg,
                                                    const std::string& dir) {
    outpost::store::StoreOptions o;
    o.dir = dir + "/blocks";
    o.raw_retention_ns = ns_of(checked_seconds(cfg, "raw_retention", 86400.0));
    o.retention_ns = ns_of(checked_seconds(cfg, "retention", 7 * 86400.0));
    o.rollup_ns = ns_of(checked_seconds(cfg, "rollup", 300.0));
    o.window_ns = ns_of(checked_seconds(cfg, "window", 7200.0));
    o.flush_ns = ns_of(checked_seconds(cfg, "flush_interval", 10.0));
    o.max_bytes = parse_bytes("max_bytes", cfg.get("max_bytes", "0"));
    if (o.rollup_ns < 1'000'000'000) throw Error(OUTPOST_E_CONFIG, "rollup: at least 1s");
    if (o.window_ns < o.rollup_ns || o.window_ns % o.rollup_ns != 0)
      throw Error(OUTPOST_E_CONFIG, "window: must be a whole number of rollup steps");
    if (o.raw_retention_ns < o.window_ns)
      throw Error(OUTPOST_E_CONFIG, "raw_retention: at least one window");
    if (o.retention_ns < o.raw_retention_ns)
      throw Error(OUTPOST_E_CONFIG, "retention: at least raw_retention");
    o.read_only = host.read_only();
    return o;
  }

  // A trigram index of every series' name and labels (SQLite FTS5), so that a --match finds its
  // series without reading the whole catalog: at 1.6 million series that read alone takes longer
  // than a query may. Filled from the catalog on the store's thread (an engine's first poll of
  // 10,000 devices creates 1.6 million series, whose trigrams cost a minute of CPU), so a write
  // never waits for it; meta's text_indexed_id says how far it got, and a read scans the series
  // above that.
  bool open_text_index() {
    Statement s(rows_.db(), "SELECT count(*) FROM sqlite_master WHERE name = 'series_text'");
    const bool have = s.step() && s.column_int(0) == 1;
    s.done();
    if (have || host_.read_only()) return have;
    try {
      rows_.exec(
          "CREATE VIRTUAL TABLE IF NOT EXISTS series_text USING fts5(text, content='', "
          "tokenize='trigram case_sensitive 1')");
      return true;
    } catch (const Error& e) {
      host_.log(
          OUTPOST_LOG_WARN,
          std::string("store: no text index of the catalog, matches read it all: ") + e.what());
      return false;
    }
  }

  int64_t text_indexed_id() {
    Statement s(rows_.db(), "SELECT value FROM meta WHERE key = 'text_indexed_id'");
    int64_t id = 0;
    if (s.step()) {
      id = s.column_int(0);
      s.done();
    }
    return id;
  }

  // One step of the text index, on the store's thread, on a connection of its own: the next
  // series above text_indexed_id, in a short transaction (the writer waits at most 500 ms for
  // the catalog, and SQLite does not queue its waiters). True while more are waiting.
  bool index_step() noexcept {
    constexpr int64_t kPerTransaction = 1000;
    if (index_db_ == nullptr) {
      if (sqlite3_open_v2((dir_ + "/catalog.db").c_str(), &index_db_,
                          SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, nullptr) != SQLITE_OK) {
        sqlite3_close(index_db_);
        index_db_ = nullptr;
        return false;
      }
      sqlite3_busy_timeout(index_db_, 5000);
    }
    sqlite3* db = index_db_;
    try {
      RowStore::exec_on(db, "BEGIN IMMEDIATE");
      Statement from(db,
                     "SELECT coalesce((SELECT value FROM meta WHERE key = 'text_indexed_id'), 0)");
      int64_t done = 0;
      if (from.step()) {
        done = from.column_int(0);
        from.done();
      }
      Statement add(db,
                    "INSERT INTO series_text(rowid, text) SELECT id, name || ' ' || labels "
                    "FROM series WHERE id > ?1 ORDER BY id LIMIT ?2");
      add.bind(1, done).bind(2, kPerTransaction).run();
      const int64_t n = sqlite3_changes(db);
      if (n > 0)
        Statement(db,
                  "INSERT OR REPLACE INTO meta(key, value) SELECT 'text_indexed_id', "
                  "max(rowid) FROM series_text")
            .run();
      RowStore::exec_on(db, "COMMIT");
      return n == kPerTransaction;
    } catch (const std::exception& e) {
      sqlite3_exec(db, "ROLLBACK", nullptr, nullptr, nullptr);
      host_.log(OUTPOST_LOG_WARN, std::string("store: text index: ") + e.what());
      return false;
    }
  }

  // The catalog's series the request names: id, name, labels; ordered by id or by name.
  Statement select_series(const outpost::ReadRequest& q, bool by_name) {
    // Trigrams need three characters; the instr() check stays the authority either way.
    std::size_t chars = 0;  // UTF-8 characters: trigrams are of characters, not bytes
    for (const char c : q.match) chars += (static_cast<unsigned char>(c) & 0xC0) != 0x80 ? 1 : 0;
    const bool indexed = text_index_ && chars >= 3;
    std::string sql =
        "SELECT id, name, labels FROM series WHERE (?1 = '' OR name = ?1) "
        "AND (?2 = '' OR instr(name, ?2) > 0 OR instr(labels, ?2) > 0)";
    if (indexed)
      sql +=
          " AND id IN (SELECT rowid FROM series_text WHERE series_text MATCH ?3 "
          "UNION ALL SELECT id FROM series WHERE id > ?4)";
    sql += by_name ? " ORDER BY name, labels" : " ORDER BY id";
    Statement s(rows_.db(), sql.c_str());
    s.bind(1, q.name).bind(2, q.match);
    if (indexed) {
      std::string phrase = "\"";  // an FTS5 string: the text itself, quotes doubled
      for (const char c : q.match) phrase += c == '"' ? std::string("\"\"") : std::string(1, c);
      phrase += '"';
      s.bind(3, std::string_view(phrase)).bind(4, text_indexed_id());
    }
    return s;
  }

  // Ids of the catalog's series the request names, ascending.
  std::vector<uint32_t> matching(const outpost::ReadRequest& q, bool& all) {
    all = q.name.empty() && q.match.empty();
    std::vector<uint32_t> ids;
    if (all) return ids;
    Statement s = select_series(q, false);
    while (s.step()) ids.push_back(static_cast<uint32_t>(s.column_int(0)));
    return ids;
  }

  struct SeriesInfo {
    std::string name, labels;
  };
  SeriesInfo info(uint32_t id) {
    if (auto it = names_.find(id); it != names_.end()) return it->second;
    Statement s(rows_.db(), "SELECT name, labels FROM series WHERE id = ?1");
    s.bind(1, int64_t{id});
    SeriesInfo out;
    if (s.step()) {
      out = {s.column_text(0), s.column_text(1)};
      s.done();
    }
    names_.emplace(id, out);
    return out;
  }

  bool read_series(const outpost::ReadRequest& q, uint64_t limit, outpost::Rows& rows) {
    Statement s = select_series(q, true);
    const auto windows = blocks_.open_windows(INT64_MIN, INT64_MAX);  // once for every series
    uint64_t n = 0;
    while (n < limit && s.step()) {
      int64_t t = 0;
      double v = 0;
      if (!outpost::store::Store::latest(windows, static_cast<uint32_t>(s.column_int(0)), t, v))
        continue;
      if (t < RowStore::since(q) || t >= RowStore::until(q)) continue;
      outpost::Row row(OUTPOST_READ_SERIES);
      row.text("name", s.column_text(1));
      RowStore::labels_column(row, "labels", s.column_text(2));
      row.real("last", v).time("last_time_ns", t).null("samples");  // not counted: a scan
      ++n;
      if (!rows.add(row)) {
        s.done();
        return false;
      }
    }
    s.done();
    return true;
  }

  bool read_samples(const outpost::ReadRequest& q, uint64_t limit, outpost::Rows& rows) {
    bool all = false;
    const std::vector<uint32_t> ids = matching(q, all);
    if (!all && ids.empty()) return true;
    struct Point {
      int64_t t;
      uint32_t series;
      double v[5];
      bool rollup;
    };
    std::vector<Point> points;
    blocks_.scan(
        ids, all, RowStore::since(q), RowStore::until(q), limit,
        [&](uint32_t s, int64_t t, double v) {
          points.push_back(Point{t, s, {v}, false});
        },
        [&](uint32_t s, int64_t t, const double* v) {
          points.push_back(Point{t, s, {v[0], v[1], v[2], v[3], v[4]}, true});
        });
    // Newest first, as the sqlite sink answers.
    std::stable_sort(points.begin(), points.end(), [](const Point& a, const Point& b) {
      return a.t != b.t ? a.t > b.t : a.series < b.series;
    });
    if (points.size() > limit) points.resize(limit);
    for (const Point& p : points) {
      const SeriesInfo si = info(p.series);
      outpost::Row row(OUTPOST_READ_SAMPLES);
      row.time("time_ns", p.t).text("name", si.name);
      RowStore::labels_column(row, "labels", si.labels);
      if (p.rollup) {
        // A rollup point where the raw samples are gone: the step's average, then its spread.
        row.real("value", p.v[4] > 0 ? p.v[3] / p.v[4] : std::nan(""))
            .real("min", p.v[0])
            .real("max", p.v[1])
            .integer("count", static_cast<int64_t>(p.v[4]));
      } else {
        row.real("value", p.v[0]);
      }
      if (!rows.add(row)) return false;
    }
    return true;
  }

  outpost::Host host_;
  std::string dir_;
  RowStore rows_;
  outpost::store::Store blocks_;
  std::map<uint32_t, SeriesInfo> names_;
  bool text_index_ = false;
  sqlite3* index_db_ = nullptr;  // the text index's connection, on the store's thread
};

}  // namespace

OUTPOST_PLUGIN(StoreSink, "store", "1.0.0",
               "Embedded local store: latest values, raw samples and rollups in compressed "
               "per-series blocks; events and flows in SQLite")
