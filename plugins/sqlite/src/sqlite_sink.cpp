#include <cmath>
// sqlite: every sample, event and flow as a row of an SQLite database, for users who want to
// read their data with SQL. Its schema is documented in README.md and kept by
// plugins/lib/sqlite_store; `outpost query` reads it through the read hook (ABI 1.3).
#include <outpost/sdk.hpp>
#include <sqlite_store/row_store.hpp>

namespace {

using outpost::Error;

class SqliteSink final : public outpost::Sink {
 public:
  SqliteSink(outpost::Host host, const outpost::Config& cfg) : rows_(host, options(host, cfg)) {}

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

  void write(const outpost_batch& b) override { rows_.write(b); }
  void read(const outpost::ReadRequest& q, outpost::Rows& rows) override { rows_.read(q, rows); }

 private:
  static outpost::sqlite_store::Options options(outpost::Host host, const outpost::Config& cfg) {
    outpost::sqlite_store::Options o;
    o.path = cfg.get("path", "outpost.db");
    const double retention_s = cfg.get_seconds("retention", 7 * 86400.0);
    const int64_t max_rows = cfg.get_int("max_rows", 5'000'000);
    if (max_rows < 0) throw Error(OUTPOST_E_CONFIG, "max_rows: must be 0 (unbounded) or more");
    if (retention_s > 1e9) throw Error(OUTPOST_E_CONFIG, "retention: too long (31 years at most)");
    o.retention_ns = static_cast<int64_t>(std::llround(retention_s * 1e9));
    o.max_rows = max_rows;
    o.read_only = host.read_only();
    return o;
  }

  outpost::sqlite_store::RowStore rows_;
};

}  // namespace

OUTPOST_PLUGIN(SqliteSink, "sqlite", "1.0.0",
               "Local store as SQL rows: metrics, events and flows in an SQLite database")
