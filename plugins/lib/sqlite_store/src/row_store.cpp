#include "sqlite_store/row_store.hpp"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <jsonl/jsonl.hpp>

namespace outpost::sqlite_store {
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

}  // namespace

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

Statement::Statement(sqlite3* db, const char* sql) : db_(db) {
  const int rc = sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, &stmt_, nullptr);
  if (rc != SQLITE_OK)
    throw Error(status_of(rc, false), std::string("prepare: ") + sqlite3_errmsg(db));
}

bool Statement::step() {
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

std::string Statement::column_text(int c) const {
  const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(stmt_, c));
  return p != nullptr ? std::string(p, static_cast<std::size_t>(sqlite3_column_bytes(stmt_, c)))
                      : std::string();
}

Statement& Statement::check(int rc) {
  if (rc != SQLITE_OK)
    throw Error(status_of(rc, false), std::string("bind: ") + sqlite3_errmsg(db_));
  return *this;
}

RowStore::RowStore(outpost::Host host, Options options) : host_(host), o_(std::move(options)) {
  if (o_.path.empty()) throw Error(OUTPOST_E_CONFIG, "path: must not be empty");
  std::error_code ec;
  if (o_.read_only && !std::filesystem::exists(o_.path, ec))
    throw Error(OUTPOST_E_NOT_FOUND,
                "no local store at " + o_.path + " (has the engine run with this sink?)");
  try {
    if (o_.read_only)
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

RowStore::~RowStore() { close(); }

void RowStore::write(const outpost_batch& b, const SampleFn& on_sample) {
  if (o_.read_only) throw Error(OUTPOST_E_UNSUPPORTED, "local store: opened only to be read");
  if (b.metric_count + b.event_count + b.flow_count == 0) return;
  const int64_t now = host_.now_ns();
  exec("BEGIN IMMEDIATE");
  try {
    insert_metrics(b, now, on_sample);
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

void RowStore::read(const outpost::ReadRequest& q, outpost::Rows& rows) {
  read_with(
      q, rows,
      [this](const outpost::ReadRequest& r, uint64_t n, outpost::Rows& out) {
        return read_series(r, n, out);
      },
      [this](const outpost::ReadRequest& r, uint64_t n, outpost::Rows& out) {
        return read_samples(r, n, out);
      });
}

void RowStore::read_with(const outpost::ReadRequest& q, outpost::Rows& rows, const ReadFn& series,
                         const ReadFn& samples) {
  const uint64_t limit = q.limit == 0 ? kDefaultReadLimit : q.limit;
  switch (q.what) {
    case OUTPOST_READ_SERIES:
      series(q, limit, rows);
      break;
    case OUTPOST_READ_SAMPLES:
      samples(q, limit, rows);
      break;
    case OUTPOST_READ_EVENTS:
      read_events(q, limit, rows);
      break;
    case OUTPOST_READ_SUMMARY: {
      // The series asked for, then the latest events whatever the match.
      if (!series(q, limit, rows)) break;
      outpost::ReadRequest recent = q;
      recent.match = {};
      read_events(recent, std::min(limit, kSummaryEvents), rows);
      break;
    }
    default:
      throw Error(OUTPOST_E_UNSUPPORTED, "no read of kind " + std::to_string(q.what));
  }
}

void RowStore::labels_column(outpost::Row& row, const char* name, const std::string& json) {
  outpost::Labels labels;
  if (json.empty() || outpost::jsonl::parse_object(json, labels))
    row.labels(name, std::move(labels));
  else
    row.text(name, json);
}

bool RowStore::read_series(const outpost::ReadRequest& q, uint64_t limit, outpost::Rows& rows) {
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

bool RowStore::read_samples(const outpost::ReadRequest& q, uint64_t limit, outpost::Rows& rows) {
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

bool RowStore::read_events(const outpost::ReadRequest& q, uint64_t limit, outpost::Rows& rows) {
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
void RowStore::open_read_only() {
  const int rc =
      sqlite3_open_v2(o_.path.c_str(), &db_, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, nullptr);
  if (rc != SQLITE_OK) fail_create(rc, "cannot open " + o_.path);
  sqlite3_extended_result_codes(db_, 1);
  sqlite3_busy_timeout(db_, kReadBusyTimeoutMs);
  std::string version;
  try {
    version = meta_schema_version();
  } catch (const Error& e) {
    throw Error(OUTPOST_E_CONFIG, o_.path + " is not an Outpost local store: " + e.what());
  }
  if (version != kSchemaVersion)
    throw Error(OUTPOST_E_CONFIG, o_.path + " has schema version '" + version +
                                      "', this plugin reads " + kSchemaVersion);
}

void RowStore::open() {
  const std::filesystem::path p(o_.path);
  if (p.has_parent_path()) {
    std::error_code ec;
    std::filesystem::create_directories(p.parent_path(), ec);
    if (ec)
      throw Error(OUTPOST_E_CONFIG, "cannot create directory for " + o_.path + ": " + ec.message());
  }
  const int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;
  int rc = sqlite3_open_v2(o_.path.c_str(), &db_, flags, nullptr);
  if (rc != SQLITE_OK) fail_create(rc, "cannot open " + o_.path);
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
  if (rc != SQLITE_OK) fail_create(rc, "cannot use " + o_.path);
  if (mode != "wal")
    host_.log(OUTPOST_LOG_WARN,
              "sqlite: WAL unavailable for " + o_.path + ", journal mode " + mode);
  rc = sqlite3_exec(db_, "PRAGMA synchronous=NORMAL", nullptr, nullptr, nullptr);
  if (rc == SQLITE_OK) rc = sqlite3_exec(db_, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr);
  if (rc == SQLITE_OK) rc = sqlite3_exec(db_, kSchema, nullptr, nullptr, nullptr);
  if (rc != SQLITE_OK) fail_create(rc, "cannot create the schema in " + o_.path);
  const std::string version = meta_schema_version();
  if (!version.empty() && version != kSchemaVersion)
    throw Error(OUTPOST_E_CONFIG, o_.path + " has schema version " + version +
                                      ", this plugin writes " + kSchemaVersion);
  if (version.empty())
    rc = sqlite3_exec(db_, "INSERT INTO meta(key, value) VALUES('schema_version', '1')", nullptr,
                      nullptr, nullptr);
  if (rc == SQLITE_OK) rc = sqlite3_exec(db_, "COMMIT", nullptr, nullptr, nullptr);
  if (rc != SQLITE_OK) fail_create(rc, "cannot create the schema in " + o_.path);

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

std::string RowStore::meta_schema_version() {
  Statement get(db_, "SELECT value FROM meta WHERE key='schema_version'");
  std::string out;
  if (get.step()) {
    out = get.column_text(0);
    get.done();
  }
  return out;
}

void RowStore::fail_create(int rc, const std::string& what) {
  const std::string msg = what + ": " + (db_ != nullptr ? sqlite3_errmsg(db_) : sqlite3_errstr(rc));
  throw Error(status_of(rc, true), msg);
}

void RowStore::close() {
  // Statements first: sqlite3_close refuses while any is unfinalised.
  select_series_ = Statement();
  insert_series_ = Statement();
  insert_sample_ = Statement();
  insert_event_ = Statement();
  insert_flow_ = Statement();
  if (db_ != nullptr) sqlite3_close(db_);
  db_ = nullptr;
}

void RowStore::exec_on(sqlite3* db, const char* sql) {
  const int rc = sqlite3_exec(db, sql, nullptr, nullptr, nullptr);
  if (rc != SQLITE_OK)
    throw Error(status_of(rc, false), std::string(sql) + ": " + sqlite3_errmsg(db));
}

void RowStore::rollback() noexcept {
  if (sqlite3_get_autocommit(db_) == 0) sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
  // Ids handed out inside the rolled-back transaction no longer exist.
  for (const auto& k : new_series_) series_cache_.erase(k);
  new_series_.clear();
}

int64_t RowStore::series_id(std::string_view name, const std::string& labels, uint32_t type) {
  // Labels JSON holds no raw NUL, so this key is unambiguous.
  key_.assign(labels).push_back('\0');
  key_.append(name);
  if (auto it = series_cache_.find(key_); it != series_cache_.end()) return it->second;
  // Full: start again. Cleared before this key is cached (and noted as new), so that a rollback
  // still forgets every id it undoes.
  if (series_cache_.size() >= kSeriesCacheMax) {
    series_cache_.clear();
    new_series_.clear();
  }
  int64_t id = 0;
  if (select_series_.bind(1, name).bind(2, std::string_view(labels)).step()) {
    id = select_series_.column_int(0);
    select_series_.done();
  } else {
    insert_series_.bind(1, name).bind(2, std::string_view(labels)).bind(3, int64_t{type}).run();
    id = sqlite3_last_insert_rowid(db_);
    new_series_.push_back(key_);
  }
  series_cache_.emplace(key_, id);
  return id;
}

void RowStore::insert_metrics(const outpost_batch& b, int64_t now, const SampleFn& on_sample) {
  std::string labels;
  for (std::size_t i = 0; i < b.metric_count; ++i) {
    const auto& m = outpost::element(b.metrics, b.metric_size, i);
    // value is NOT NULL and SQLite stores NaN as NULL: a NaN sample carries nothing anyway.
    if (std::isnan(m.value)) {
      if (!warned_nan_) host_.log(OUTPOST_LOG_WARN, "local store: dropping NaN samples");
      warned_nan_ = true;
      continue;
    }
    labels.clear();
    outpost::jsonl::append_object(labels, m.labels, m.label_count);
    const int64_t id = series_id(outpost::view(m.name), labels, m.type);
    const int64_t t = m.time_ns != 0 ? m.time_ns : now;
    if (o_.sample_rows)
      insert_sample_.bind(1, id).bind(2, t).bind(3, m.value).run();
    else if (on_sample)
      on_sample(id, t, m.value);
  }
}

void RowStore::insert_events(const outpost_batch& b, int64_t now) {
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

void RowStore::insert_flows(const outpost_batch& b, int64_t now) {
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

int64_t RowStore::query_int(const char* sql) {
  Statement s(db_, sql);
  int64_t v = 0;
  if (s.step()) {
    v = s.column_int(0);
    s.done();
  }
  return v;
}

void RowStore::delete_oldest(const char* sql, int64_t n) {
  if (n <= 0) return;
  Statement s(db_, sql);
  s.bind(1, n).run();
}

// Retention and the row bound, at most once a minute: both scan, which per batch would cost
// more than the inserts.
void RowStore::maintain(int64_t now) noexcept {
  const int64_t mono = host_.monotonic_ns();
  if (last_maintenance_ && mono - *last_maintenance_ < kMaintenanceIntervalNs) return;
  last_maintenance_ = mono;  // also on failure, so a stuck database is not rescanned per batch
  try {
    exec("BEGIN IMMEDIATE");
    if (o_.retention_ns > 0) {
      const int64_t cutoff = now - o_.retention_ns;
      // The IN over series lets the (series_id, time_ns) index seek per series instead of
      // scanning every sample.
      Statement(db_,
                "DELETE FROM samples WHERE series_id IN (SELECT id FROM series) AND time_ns < ?1")
          .bind(1, cutoff)
          .run();
      Statement(db_, "DELETE FROM events WHERE time_ns < ?1").bind(1, cutoff).run();
      Statement(db_, "DELETE FROM flows WHERE time_ns < ?1").bind(1, cutoff).run();
    }
    if (o_.max_rows > 0) trim();
    if (o_.sample_rows) {
      Statement(db_,
                "DELETE FROM series WHERE NOT EXISTS "
                "(SELECT 1 FROM samples WHERE samples.series_id = series.id)")
          .run();
      if (sqlite3_changes(db_) > 0) series_cache_.clear();
    }
    exec("COMMIT");
  } catch (const std::exception& e) {
    rollback();
    host_.report_error(OUTPOST_E_UNAVAILABLE, std::string("local store retention: ") + e.what());
  }
}

// Each table gives up its oldest rows in proportion to its share of the excess, so neither
// samples nor events can starve the other out of the bound.
void RowStore::trim() {
  const int64_t samples = query_int("SELECT count(*) FROM samples");
  const int64_t events = query_int("SELECT count(*) FROM events");
  const int64_t total = samples + events;
  if (total > o_.max_rows) {
    const int64_t excess = total - o_.max_rows;
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
      flows - o_.max_rows);
}

}  // namespace outpost::sqlite_store
