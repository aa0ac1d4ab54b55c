// sqlite: the embedded default local store. Its schema is documented in README.md and known only
// here: `outpost query` reads the store through this plugin's read hook (ABI 1.3). Change the
// schema only together with schema_version.
#include <sqlite3.h>

#include <algorithm>
#include <climits>
#include <cmath>
#include <filesystem>
#include <jsonl/jsonl.hpp>
#include <optional>
#include <outpost/sdk.hpp>
#include <string>
#include <unordered_map>
#include <vector>

namespace {

using outpost::Error;

constexpr const char* kSchemaVersion = "1";
constexpr int64_t kMaintenanceIntervalNs = 60'000'000'000;
// A reader (`outpost query`) may hold the WAL briefly; waiting longer would stall the pipeline,
// so after this the batch goes back to the host for a retry.
constexpr int kBusyTimeoutMs = 500;
// Bounds the memory of a store with runaway label cardinality; a miss costs one SELECT.
constexpr std::size_t kSeriesCacheMax = 1'000'000;
// A reader waits longer for the writer's transaction than the writer waits for a reader.
constexpr int kReadBusyTimeoutMs = 2000;
// Rows of each kind a read answers when the request sets no limit.
constexpr uint64_t kDefaultReadLimit = 1000;
// A summary's recent events.
constexpr uint64_t kSummaryEvents = 20;

constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS series(id INTEGER PRIMARY KEY, name TEXT NOT NULL, labels TEXT NOT NULL,
  type INTEGER NOT NULL, UNIQUE(name, labels));
CREATE TABLE IF NOT EXISTS samples(series_id INTEGER NOT NULL, time_ns INTEGER NOT NULL,
  value REAL NOT NULL);
CREATE INDEX IF NOT EXISTS samples_series_time ON samples(series_id, time_ns);
CREATE TABLE IF NOT EXISTS events(id INTEGER PRIMARY KEY, time_ns INTEGER NOT NULL,
  severity INTEGER NOT NULL, source TEXT, kind TEXT, message TEXT, attributes TEXT);
CREATE INDEX IF NOT EXISTS events_time ON events(time_ns);
CREATE TABLE IF NOT EXISTS flows(time_ns INTEGER, start_ns INTEGER, end_ns INTEGER, exporter TEXT,
  src TEXT, dst TEXT, src_port INTEGER, dst_port INTEGER, protocol INTEGER, bytes INTEGER,
  packets INTEGER, input_if INTEGER, output_if INTEGER);
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT);
)sql";

// Conditions that may pass by themselves ask the host to retry the batch; at create anything
// else means the path or file is wrong.
outpost_status status_of(int rc, bool at_create) {
  switch (rc & 0xFF) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
    case SQLITE_FULL:
    case SQLITE_IOERR:
    case SQLITE_NOMEM:
    case SQLITE_PROTOCOL:
      return OUTPOST_E_UNAVAILABLE;
    case SQLITE_CANTOPEN:
    case SQLITE_READONLY:
      return at_create ? OUTPOST_E_CONFIG : OUTPOST_E_UNAVAILABLE;
    default:
      return at_create ? OUTPOST_E_CONFIG : OUTPOST_E_INTERNAL;
  }
}

class Statement {
 public:
  Statement() = default;
  Statement(sqlite3* db, const char* sql) : db_(db) {
    const int rc = sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, &stmt_, nullptr);
    if (rc != SQLITE_OK)
      throw Error(status_of(rc, false), std::string("prepare: ") + sqlite3_errmsg(db));
  }
  ~Statement() { sqlite3_finalize(stmt_); }
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;
  Statement& operator=(Statement&& o) noexcept {
    std::swap(db_, o.db_);
    std::swap(stmt_, o.stmt_);
    return *this;
  }

  Statement& bind(int i, int64_t v) { return check(sqlite3_bind_int64(stmt_, i, v)); }
  Statement& bind(int i, uint64_t v) {
    // SQLite integers are signed 64-bit; a counter past that saturates rather than wraps.
    return bind(i, v > uint64_t{INT64_MAX} ? INT64_MAX : static_cast<int64_t>(v));
  }
  Statement& bind(int i, double v) { return check(sqlite3_bind_double(stmt_, i, v)); }
  Statement& bind(int i, std::string_view v) {
    return check(sqlite3_bind_text64(stmt_, i, v.data() != nullptr ? v.data() : "", v.size(),
                                     SQLITE_TRANSIENT, SQLITE_UTF8));
  }
  // An empty text binds NULL: used for addresses of an unknown family.
  Statement& bind_text_or_null(int i, const std::string& v) {
    return v.empty() ? check(sqlite3_bind_null(stmt_, i)) : bind(i, std::string_view(v));
  }

  // Steps once; true when a row is available. Call done() when finished with the row.
  bool step() {
    const int rc = sqlite3_step(stmt_);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) {
      done();
      return false;
    }
    const std::string msg = sqlite3_errmsg(db_);
    done();
    throw Error(status_of(rc, false), msg);
  }
  void run() {
    if (step()) done();
  }
  int64_t column_int(int c) const { return sqlite3_column_int64(stmt_, c); }
  double column_double(int c) const { return sqlite3_column_double(stmt_, c); }
  std::string column_text(int c) const {
    const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(stmt_, c));
    return p != nullptr ? std::string(p, static_cast<std::size_t>(sqlite3_column_bytes(stmt_, c)))
                        : std::string();
  }
  void done() {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
  }

 private:
  Statement& check(int rc) {
    if (rc != SQLITE_OK)
      throw Error(status_of(rc, false), std::string("bind: ") + sqlite3_errmsg(db_));
    return *this;
  }
  sqlite3* db_ = nullptr;
  sqlite3_stmt* stmt_ = nullptr;
};

class SqliteSink final : public outpost::Sink {
 public:
  SqliteSink(outpost::Host host, const outpost::Config& cfg) : host_(host) {
    path_ = cfg.get("path", "outpost.db");
    const double retention_s = cfg.get_seconds("retention", 7 * 86400.0);
    const int64_t max_rows = cfg.get_int("max_rows", 5'000'000);
    if (path_.empty()) throw Error(OUTPOST_E_CONFIG, "path: must not be empty");
    if (max_rows < 0) throw Error(OUTPOST_E_CONFIG, "max_rows: must be 0 (unbounded) or more");
    if (retention_s > 1e9) throw Error(OUTPOST_E_CONFIG, "retention: too long (31 years at most)");
    retention_ns_ = static_cast<int64_t>(std::llround(retention_s * 1e9));
    max_rows_ = max_rows;
    read_only_ = host_.read_only();
    std::error_code ec;
    if (read_only_ && !std::filesystem::exists(path_, ec))
      throw Error(OUTPOST_E_NOT_FOUND,
                  "no local store at " + path_ + " (has the engine run with the sqlite sink?)");
    try {
      if (read_only_)
        open_read_only();
      else
        open();
    } catch (const Error& e) {
      close();
      // Whatever is not worth a retry at create is the operator's to fix: path, file, schema.
      if (OUTPOST_STATUS_CLASS(e.status()) == OUTPOST_CLASS_RETRY) throw;
      throw Error(OUTPOST_E_CONFIG, e.what());
    } catch (...) {
      close();
      throw;
    }
  }
  ~SqliteSink() override { close(); }

  static std::vector<outpost_field> config_fields() {
    using outpost::field;
    return {
        field("path", OUTPOST_FIELD_STRING, "database file; relative to the working directory",
              "outpost.db"),
        field("retention", OUTPOST_FIELD_DURATION,
              "samples, events and flows older than this are deleted; 0 keeps them", "7d"),
        field("max_rows", OUTPOST_FIELD_INT,
              "bound on samples+events rows (and separately on flows), oldest deleted first; "
              "0 is unbounded",
              "5000000"),
    };
  }

  void write(const outpost_batch& b) override {
    if (read_only_) throw Error(OUTPOST_E_UNSUPPORTED, "sqlite: opened only to be read");
    if (b.metric_count + b.event_count + b.flow_count == 0) return;
    const int64_t now = host_.now_ns();
    exec("BEGIN IMMEDIATE");
    try {
      insert_metrics(b, now);
      insert_events(b, now);
      insert_flows(b, now);
      exec("COMMIT");
    } catch (...) {
      rollback();
      throw;
    }
    new_series_.clear();
    // After the commit nothing may throw: a retry would store the batch twice.
    maintain(now);
  }

  // Series, samples and events as plugin.h describes their rows; labels and attributes are
  // parsed back from their canonical JSON.
  void read(const outpost::ReadRequest& q, outpost::Rows& rows) override {
    const uint64_t limit = q.limit == 0 ? kDefaultReadLimit : q.limit;
    switch (q.what) {
      case OUTPOST_READ_SERIES:
        read_series(q, limit, rows);
        break;
      case OUTPOST_READ_SAMPLES:
        read_samples(q, limit, rows);
        break;
      case OUTPOST_READ_EVENTS:
        read_events(q, limit, rows);
        break;
      case OUTPOST_READ_SUMMARY: {
        // The series asked for, then the latest events whatever the match.
        if (!read_series(q, limit, rows)) break;
        outpost::ReadRequest recent = q;
        recent.match = {};
        read_events(recent, std::min(limit, kSummaryEvents), rows);
        break;
      }
      default:
        throw Error(OUTPOST_E_UNSUPPORTED, "sqlite: no read of kind " + std::to_string(q.what));
    }
  }

 private:
  // The bounds of a request as SQL parameters: 0 is no bound.
  static int64_t since(const outpost::ReadRequest& q) {
    return q.since_ns != 0 ? q.since_ns : INT64_MIN;
  }
  static int64_t until(const outpost::ReadRequest& q) {
    return q.until_ns != 0 ? q.until_ns : INT64_MAX;
  }
  static int64_t limit_of(uint64_t limit) {
    return limit > uint64_t{INT64_MAX} ? INT64_MAX : static_cast<int64_t>(limit);
  }

  // Labels as stored; a value that is not a JSON object (only a foreign writer makes one) is
  // passed on as text rather than failing the whole read.
  static void labels_column(outpost::Row& row, const char* name, const std::string& json) {
    outpost::Labels labels;
    if (json.empty() || outpost::jsonl::parse_object(json, labels))
      row.labels(name, std::move(labels));
    else
      row.text(name, json);
  }

  bool read_series(const outpost::ReadRequest& q, uint64_t limit, outpost::Rows& rows) {
    // With max() the bare x.value comes from the newest sample (SQLite's documented rule).
    Statement s(db_,
                "SELECT s.name, s.labels, x.value, MAX(x.time_ns), COUNT(*) "
                "FROM series s JOIN samples x ON x.series_id = s.id "
                "WHERE (?1 = '' OR s.name = ?1) "
                "AND (?2 = '' OR instr(s.name, ?2) > 0 OR instr(s.labels, ?2) > 0) "
                "AND x.time_ns >= ?3 AND x.time_ns < ?4 "
                "GROUP BY s.id ORDER BY s.name, s.labels LIMIT ?5");
    s.bind(1, q.name).bind(2, q.match).bind(3, since(q)).bind(4, until(q));
    s.bind(5, limit_of(limit));
    while (s.step()) {
      outpost::Row row(OUTPOST_READ_SERIES);
      row.text("name", s.column_text(0));
      labels_column(row, "labels", s.column_text(1));
      row.real("last", s.column_double(2))
          .time("last_time_ns", s.column_int(3))
          .integer("samples", s.column_int(4));
      if (!rows.add(row)) {
        s.done();
        return false;
      }
    }
    return true;
  }

  bool read_samples(const outpost::ReadRequest& q, uint64_t limit, outpost::Rows& rows) {
    Statement s(db_,
                "SELECT x.time_ns, s.name, s.labels, x.value "
                "FROM samples x JOIN series s ON s.id = x.series_id "
                "WHERE (?1 = '' OR s.name = ?1) "
                "AND (?2 = '' OR instr(s.name, ?2) > 0 OR instr(s.labels, ?2) > 0) "
                "AND x.time_ns >= ?3 AND x.time_ns < ?4 "
                "ORDER BY x.time_ns DESC LIMIT ?5");
    s.bind(1, q.name).bind(2, q.match).bind(3, since(q)).bind(4, until(q));
    s.bind(5, limit_of(limit));
    while (s.step()) {
      outpost::Row row(OUTPOST_READ_SAMPLES);
      row.time("time_ns", s.column_int(0)).text("name", s.column_text(1));
      labels_column(row, "labels", s.column_text(2));
      row.real("value", s.column_double(3));
      if (!rows.add(row)) {
        s.done();
        return false;
      }
    }
    return true;
  }

  bool read_events(const outpost::ReadRequest& q, uint64_t limit, outpost::Rows& rows) {
    Statement s(db_,
                "SELECT time_ns, severity, kind, source, message, attributes FROM events "
                "WHERE time_ns >= ?1 AND time_ns < ?2 AND (?3 = '' OR instr(kind, ?3) > 0 "
                "OR instr(source, ?3) > 0 OR instr(message, ?3) > 0 "
                "OR instr(attributes, ?3) > 0) "
                "ORDER BY time_ns DESC, id DESC LIMIT ?4");
    s.bind(1, since(q)).bind(2, until(q)).bind(3, q.match).bind(4, limit_of(limit));
    while (s.step()) {
      outpost::Row row(OUTPOST_READ_EVENTS);
      row.time("time_ns", s.column_int(0))
          .severity("severity", static_cast<uint32_t>(s.column_int(1)))
          .text("kind", s.column_text(2))
          .text("source", s.column_text(3))
          .text("message", s.column_text(4));
      labels_column(row, "attributes", s.column_text(5));
      if (!rows.add(row)) {
        s.done();
        return false;
      }
    }
    return true;
  }

  // For OUTPOST_PURPOSE_READ: the store as it is, read-only; nothing created or changed.
  void open_read_only() {
    const int rc =
        sqlite3_open_v2(path_.c_str(), &db_, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, nullptr);
    if (rc != SQLITE_OK) fail_create(rc, "cannot open " + path_);
    sqlite3_extended_result_codes(db_, 1);
    sqlite3_busy_timeout(db_, kReadBusyTimeoutMs);
    std::string version;
    try {
      version = meta_schema_version();
    } catch (const Error& e) {
      throw Error(OUTPOST_E_CONFIG, path_ + " is not a store of the sqlite sink: " + e.what());
    }
    if (version != kSchemaVersion)
      throw Error(OUTPOST_E_CONFIG, path_ + " has schema version '" + version +
                                        "', this plugin reads " + kSchemaVersion);
  }

  void open() {
    const std::filesystem::path p(path_);
    if (p.has_parent_path()) {
      std::error_code ec;
      std::filesystem::create_directories(p.parent_path(), ec);
      if (ec)
        throw Error(OUTPOST_E_CONFIG, "cannot create directory for " + path_ + ": " + ec.message());
    }
    const int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;
    int rc = sqlite3_open_v2(path_.c_str(), &db_, flags, nullptr);
    if (rc != SQLITE_OK) fail_create(rc, "cannot open " + path_);
    sqlite3_extended_result_codes(db_, 1);
    sqlite3_busy_timeout(db_, kBusyTimeoutMs);
    // WAL lets `outpost query` read while we write; NORMAL loses at most the last commits on
    // power loss, never consistency.
    std::string mode;
    rc = sqlite3_exec(
        db_, "PRAGMA journal_mode=WAL",
        [](void* out, int, char** v, char**) {
          if (v[0] != nullptr) *static_cast<std::string*>(out) = v[0];
          return 0;
        },
        &mode, nullptr);
    if (rc != SQLITE_OK) fail_create(rc, "cannot use " + path_);
    if (mode != "wal")
      host_.log(OUTPOST_LOG_WARN,
                "sqlite: WAL unavailable for " + path_ + ", journal mode " + mode);
    rc = sqlite3_exec(db_, "PRAGMA synchronous=NORMAL", nullptr, nullptr, nullptr);
    if (rc == SQLITE_OK) rc = sqlite3_exec(db_, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr);
    if (rc == SQLITE_OK) rc = sqlite3_exec(db_, kSchema, nullptr, nullptr, nullptr);
    if (rc != SQLITE_OK) fail_create(rc, "cannot create the schema in " + path_);
    const std::string version = meta_schema_version();
    if (!version.empty() && version != kSchemaVersion)
      throw Error(OUTPOST_E_CONFIG, path_ + " has schema version " + version +
                                        ", this plugin writes " + kSchemaVersion);
    if (version.empty())
      rc = sqlite3_exec(db_, "INSERT INTO meta(key, value) VALUES('schema_version', '1')", nullptr,
                        nullptr, nullptr);
    if (rc == SQLITE_OK) rc = sqlite3_exec(db_, "COMMIT", nullptr, nullptr, nullptr);
    if (rc != SQLITE_OK) fail_create(rc, "cannot create the schema in " + path_);

    select_series_ = Statement(db_, "SELECT id FROM series WHERE name=?1 AND labels=?2");
    insert_series_ = Statement(db_, "INSERT INTO series(name, labels, type) VALUES(?1, ?2, ?3)");
    insert_sample_ =
        Statement(db_, "INSERT INTO samples(series_id, time_ns, value) VALUES(?1, ?2, ?3)");
    insert_event_ =
        Statement(db_,
                  "INSERT INTO events(time_ns, severity, source, kind, message, attributes) "
                  "VALUES(?1, ?2, ?3, ?4, ?5, ?6)");
    insert_flow_ = Statement(
        db_,
        "INSERT INTO flows(time_ns, start_ns, end_ns, exporter, src, dst, src_port, dst_port, "
        "protocol, bytes, packets, input_if, output_if) "
        "VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)");
  }

  std::string meta_schema_version() {
    Statement get(db_, "SELECT value FROM meta WHERE key='schema_version'");
    std::string out;
    if (get.step()) {
      out = get.column_text(0);
      get.done();
    }
    return out;
  }

  [[noreturn]] void fail_create(int rc, const std::string& what) {
    const std::string msg =
        what + ": " + (db_ != nullptr ? sqlite3_errmsg(db_) : sqlite3_errstr(rc));
    throw Error(status_of(rc, true), msg);
  }

  void close() {
    // Statements first: sqlite3_close refuses while any is unfinalised.
    select_series_ = Statement();
    insert_series_ = Statement();
    insert_sample_ = Statement();
    insert_event_ = Statement();
    insert_flow_ = Statement();
    if (db_ != nullptr) sqlite3_close(db_);
    db_ = nullptr;
  }

  void exec(const char* sql) {
    const int rc = sqlite3_exec(db_, sql, nullptr, nullptr, nullptr);
    if (rc != SQLITE_OK)
      throw Error(status_of(rc, false), std::string(sql) + ": " + sqlite3_errmsg(db_));
  }

  void rollback() noexcept {
    if (sqlite3_get_autocommit(db_) == 0) sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
    // Ids handed out inside the rolled-back transaction no longer exist.
    for (const auto& k : new_series_) series_cache_.erase(k);
    new_series_.clear();
  }

  int64_t series_id(std::string_view name, const std::string& labels, uint32_t type) {
    // Labels JSON holds no raw NUL, so this key is unambiguous.
    key_.assign(labels).push_back('\0');
    key_.append(name);
    if (auto it = series_cache_.find(key_); it != series_cache_.end()) return it->second;
    int64_t id = 0;
    if (select_series_.bind(1, name).bind(2, std::string_view(labels)).step()) {
      id = select_series_.column_int(0);
      select_series_.done();
    } else {
      insert_series_.bind(1, name).bind(2, std::string_view(labels)).bind(3, int64_t{type}).run();
      id = sqlite3_last_insert_rowid(db_);
      new_series_.push_back(key_);
    }
    if (series_cache_.size() >= kSeriesCacheMax) {
      series_cache_.clear();
      new_series_.clear();
    }
    series_cache_.emplace(key_, id);
    return id;
  }

  void insert_metrics(const outpost_batch& b, int64_t now) {
    std::string labels;
    for (std::size_t i = 0; i < b.metric_count; ++i) {
      const auto& m = outpost::element(b.metrics, b.metric_size, i);
      // value is NOT NULL and SQLite stores NaN as NULL: a NaN sample carries nothing anyway.
      if (std::isnan(m.value)) {
        if (!warned_nan_) host_.log(OUTPOST_LOG_WARN, "sqlite: dropping NaN samples");
        warned_nan_ = true;
        continue;
      }
      labels.clear();
      outpost::jsonl::append_object(labels, m.labels, m.label_count);
      const int64_t id = series_id(outpost::view(m.name), labels, m.type);
      insert_sample_.bind(1, id).bind(2, m.time_ns != 0 ? m.time_ns : now).bind(3, m.value).run();
    }
  }

  void insert_events(const outpost_batch& b, int64_t now) {
    std::string attrs;
    for (std::size_t i = 0; i < b.event_count; ++i) {
      const auto& e = outpost::element(b.events, b.event_size, i);
      attrs.clear();
      outpost::jsonl::append_object(attrs, e.attributes, e.attribute_count);
      insert_event_.bind(1, e.time_ns != 0 ? e.time_ns : now)
          .bind(2, int64_t{e.severity})
          .bind(3, outpost::view(e.source))
          .bind(4, outpost::view(e.kind))
          .bind(5, outpost::view(e.message))
          .bind(6, std::string_view(attrs))
          .run();
    }
  }

  void insert_flows(const outpost_batch& b, int64_t now) {
    using outpost::jsonl::format_address;
    for (std::size_t i = 0; i < b.flow_count; ++i) {
      const auto& f = outpost::element(b.flows, b.flow_size, i);
      // A flow is dated by its end, the moment it was complete; retention uses this column.
      const int64_t t = f.end_ns != 0 ? f.end_ns : f.start_ns != 0 ? f.start_ns : now;
      insert_flow_.bind(1, t)
          .bind(2, f.start_ns)
          .bind(3, f.end_ns)
          .bind_text_or_null(4, format_address(f.exporter_addr, outpost_flow_exporter_family(&f)))
          .bind_text_or_null(5, format_address(f.src_addr, f.family))
          .bind_text_or_null(6, format_address(f.dst_addr, f.family))
          .bind(7, int64_t{f.src_port})
          .bind(8, int64_t{f.dst_port})
          .bind(9, int64_t{f.protocol})
          .bind(10, f.bytes)
          .bind(11, f.packets)
          .bind(12, int64_t{f.input_if})
          .bind(13, int64_t{f.output_if})
          .run();
    }
  }

  int64_t query_int(const char* sql) {
    Statement s(db_, sql);
    int64_t v = 0;
    if (s.step()) {
      v = s.column_int(0);
      s.done();
    }
    return v;
  }

  void delete_oldest(const char* sql, int64_t n) {
    if (n <= 0) return;
    Statement s(db_, sql);
    s.bind(1, n).run();
  }

  // Retention and the row bound, at most once a minute: both scan, which per batch would cost
  // more than the inserts.
  void maintain(int64_t now) noexcept {
    const int64_t mono = host_.monotonic_ns();
    if (last_maintenance_ && mono - *last_maintenance_ < kMaintenanceIntervalNs) return;
    last_maintenance_ = mono;  // also on failure, so a stuck database is not rescanned per batch
    try {
      exec("BEGIN IMMEDIATE");
      if (retention_ns_ > 0) {
        const int64_t cutoff = now - retention_ns_;
        // The IN over series lets the (series_id, time_ns) index seek per series instead of
        // scanning every sample.
        Statement(db_,
                  "DELETE FROM samples WHERE series_id IN (SELECT id FROM series) AND time_ns < ?1")
            .bind(1, cutoff)
            .run();
        Statement(db_, "DELETE FROM events WHERE time_ns < ?1").bind(1, cutoff).run();
        Statement(db_, "DELETE FROM flows WHERE time_ns < ?1").bind(1, cutoff).run();
      }
      if (max_rows_ > 0) trim();
      Statement(db_,
                "DELETE FROM series WHERE NOT EXISTS "
                "(SELECT 1 FROM samples WHERE samples.series_id = series.id)")
          .run();
      if (sqlite3_changes(db_) > 0) series_cache_.clear();
      exec("COMMIT");
    } catch (const std::exception& e) {
      rollback();
      host_.report_error(OUTPOST_E_UNAVAILABLE, std::string("sqlite retention: ") + e.what());
    }
  }

  // Each table gives up its oldest rows in proportion to its share of the excess, so neither
  // samples nor events can starve the other out of the bound.
  void trim() {
    const int64_t samples = query_int("SELECT count(*) FROM samples");
    const int64_t events = query_int("SELECT count(*) FROM events");
    const int64_t total = samples + events;
    if (total > max_rows_) {
      const int64_t excess = total - max_rows_;
      const auto from_samples = static_cast<int64_t>(
          static_cast<double>(excess) * static_cast<double>(samples) / static_cast<double>(total));
      delete_oldest(
          "DELETE FROM samples WHERE rowid IN "
          "(SELECT rowid FROM samples ORDER BY rowid LIMIT ?1)",
          from_samples);
      delete_oldest(
          "DELETE FROM events WHERE id IN "
          "(SELECT id FROM events ORDER BY time_ns, id LIMIT ?1)",
          excess - from_samples);
    }
    const int64_t flows = query_int("SELECT count(*) FROM flows");
    delete_oldest(
        "DELETE FROM flows WHERE rowid IN (SELECT rowid FROM flows ORDER BY rowid LIMIT ?1)",
        flows - max_rows_);
  }

  outpost::Host host_;
  std::string path_;
  int64_t retention_ns_ = 0;
  int64_t max_rows_ = 0;
  sqlite3* db_ = nullptr;
  Statement select_series_, insert_series_, insert_sample_, insert_event_, insert_flow_;
  std::unordered_map<std::string, int64_t> series_cache_;
  std::vector<std::string> new_series_;  // cached in the open transaction
  std::string key_;
  std::optional<int64_t> last_maintenance_;
  bool warned_nan_ = false;
  bool read_only_ = false;  // created for OUTPOST_PURPOSE_READ
};

}  // namespace

OUTPOST_PLUGIN(SqliteSink, "sqlite", "1.0.0",
               "Embedded local store: metrics, events and flows in an SQLite database")
