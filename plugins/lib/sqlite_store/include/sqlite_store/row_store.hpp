// The SQLite side of Outpost's local stores. RowStore keeps a series catalog, events and flows
// (and, for the sqlite sink, one row per sample) in one SQLite database in WAL mode, so that
// `outpost query` reads while the engine writes. Its schema is documented in the sqlite sink's
// README; change it only together with kSchemaVersion.
#pragma once

#include <sqlite3.h>

#include <climits>
#include <cstdint>
#include <functional>
#include <optional>
#include <outpost/sdk.hpp>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace outpost::sqlite_store {

// What an SQLite result code means for the host: conditions that may pass by themselves ask for a
// retry; at create anything else means the path or file is wrong.
outpost_status status_of(int rc, bool at_create);

// A prepared statement that throws outpost::Error on failure.
class Statement {
 public:
  Statement() = default;
  Statement(sqlite3* db, const char* sql);
  ~Statement() { sqlite3_finalize(stmt_); }
  Statement(const Statement&) = delete;
  Statement(Statement&& o) noexcept { *this = std::move(o); }
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
  bool step();
  void run() {
    if (step()) done();
  }
  int64_t column_int(int c) const { return sqlite3_column_int64(stmt_, c); }
  double column_double(int c) const { return sqlite3_column_double(stmt_, c); }
  std::string column_text(int c) const;
  void done() {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
  }

 private:
  Statement& check(int rc);
  sqlite3* db_ = nullptr;
  sqlite3_stmt* stmt_ = nullptr;
};

struct Options {
  std::string path;
  int64_t retention_ns = 0;  // 0 keeps everything
  int64_t max_rows = 0;      // bound on samples+events rows (and on flows); 0 is unbounded
  bool read_only = false;    // created for OUTPOST_PURPOSE_READ: nothing created or changed
  // false: samples are the caller's (write's on_sample); no samples rows, and series are kept
  // until the caller drops them.
  bool sample_rows = true;
};

class RowStore {
 public:
  // Called for every sample of a written batch, inside its transaction, with its series' id.
  using SampleFn = std::function<void(int64_t series_id, int64_t time_ns, double value)>;

  RowStore(outpost::Host host, Options options);  // throws outpost::Error
  ~RowStore();
  RowStore(const RowStore&) = delete;
  RowStore& operator=(const RowStore&) = delete;

  // One transaction for the batch; after its commit nothing throws (a retry would store the
  // batch twice). Retention and the row bound run at most once a minute, after the commit.
  void write(const outpost_batch& b, const SampleFn& on_sample = {});

  // Series, samples and events as plugin.h describes their rows (samples rows only).
  void read(const outpost::ReadRequest& q, outpost::Rows& rows);
  // The same dispatch (events, a summary's recent events, the default limit) with the series and
  // samples of another store; each answers false once the host wants no more rows.
  using ReadFn = std::function<bool(const outpost::ReadRequest&, uint64_t, outpost::Rows&)>;
  void read_with(const outpost::ReadRequest& q, outpost::Rows& rows, const ReadFn& series,
                 const ReadFn& samples);
  bool read_events(const outpost::ReadRequest& q, uint64_t limit, outpost::Rows& rows);

  // Labels as stored; a value that is not a JSON object is passed on as text.
  static void labels_column(outpost::Row& row, const char* name, const std::string& json);
  static int64_t since(const outpost::ReadRequest& q) {
    return q.since_ns != 0 ? q.since_ns : INT64_MIN;
  }
  static int64_t until(const outpost::ReadRequest& q) {
    return q.until_ns != 0 ? q.until_ns : INT64_MAX;
  }
  static int64_t limit_of(uint64_t limit) {
    return limit > uint64_t{INT64_MAX} ? INT64_MAX : static_cast<int64_t>(limit);
  }

  sqlite3* db() const noexcept { return db_; }
  void exec(const char* sql) { exec_on(db_, sql); }
  // sqlite3_exec that throws outpost::Error, on any connection.
  static void exec_on(sqlite3* db, const char* sql);
  // Forgets cached series ids (after the caller deleted series rows).
  void forget_series() { series_cache_.clear(); }
  const std::string& path() const noexcept { return o_.path; }

 private:
  void open_read_only();
  void open();
  std::string meta_schema_version();
  [[noreturn]] void fail_create(int rc, const std::string& what);
  void close();
  void rollback() noexcept;
  int64_t series_id(std::string_view name, const std::string& labels, uint32_t type);
  void insert_metrics(const outpost_batch& b, int64_t now, const SampleFn& on_sample);
  void insert_events(const outpost_batch& b, int64_t now);
  void insert_flows(const outpost_batch& b, int64_t now);
  int64_t query_int(const char* sql);
  void delete_oldest(const char* sql, int64_t n);
  void maintain(int64_t now) noexcept;
  void trim();
  bool read_series(const outpost::ReadRequest& q, uint64_t limit, outpost::Rows& rows);
  bool read_samples(const outpost::ReadRequest& q, uint64_t limit, outpost::Rows& rows);

  outpost::Host host_;
  Options o_;
  sqlite3* db_ = nullptr;
  Statement select_series_, insert_series_, insert_sample_, insert_event_, insert_flow_;
  std::unordered_map<std::string, int64_t> series_cache_;
  std::vector<std::string> new_series_;  // cached in the open transaction
  std::string key_;
  std::optional<int64_t> last_maintenance_;
  bool warned_nan_ = false;
};

}  // namespace outpost::sqlite_store
