// clickhouse: flow records and flow_aggregator's rollups into ClickHouse tables over its HTTP
// interface, one RowBinary INSERT per table and batch, behind the core's disk spool
// (OUTPOST_FLAG_SPOOL). Every row carries its batch's key, so a batch offered again (after a
// failure whose outcome was not known, or a restart) is looked for first and not inserted twice.
// Other metrics and events are counted and ignored: ClickHouse here is a flow store.
#include <cctype>
#include <chrono>
#include <optional>
#include <outpost/sdk.hpp>
#include <outpost_lib/http_client.hpp>
#include <random>
#include <string>
#include <vector>

#include "row_binary.hpp"
#include "schema.hpp"

namespace outpost::clickhouse {
namespace {

namespace http = outpost::lib::http;

// The shared settings' defaults; stats_interval (the sink's own counters) is declared there too.
constexpr http::Fields kHttpFields{"bearer_token", "30s", "10s", "60s"};

// The http_client settings a ClickHouse user has a use for: the server authenticates by its own
// user and password (sent as X-ClickHouse-User and X-ClickHouse-Key), not a bearer token or
// basic authentication.
bool shared_field_wanted(const outpost_field& f) {
  const std::string_view name = view(f.name);
  return name != "bearer_token" && name != "basic_auth_user" && name != "basic_auth_password";
}

std::string url_encode(std::string_view text) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(text.size() * 3);
  for (const char ch : text) {
    const auto u = static_cast<unsigned char>(ch);
    if (std::isalnum(u) != 0 || ch == '-' || ch == '.' || ch == '_' || ch == '~') {
      out += ch;
    } else {
      out += '%';
      out += kHex[u >> 4];
      out += kHex[u & 15];
    }
  }
  return out;
}

// ClickHouse's own exception codes (ErrorCodes.cpp), as the answer's body begins: "Code: N".
bool is_auth_code(int c) {
  switch (c) {
    case 164:  // READONLY
    case 192:  // UNKNOWN_USER
    case 193:  // WRONG_PASSWORD
    case 194:  // REQUIRED_PASSWORD
    case 195:  // IP_ADDRESS_NOT_ALLOWED
    case 291:  // DATABASE_ACCESS_DENIED
    case 497:  // ACCESS_DENIED
    case 516:  // AUTHENTICATION_FAILED
      return true;
    default:
      return false;
  }
}
// The rows do not fit the table, or the table not the rows: sending them again cannot help.
bool is_schema_code(int c) {
  switch (c) {
    case 6:    // CANNOT_PARSE_TEXT
    case 8:    // THERE_IS_NO_COLUMN
    case 10:   // NOT_FOUND_COLUMN_IN_BLOCK
    case 16:   // NO_SUCH_COLUMN_IN_TABLE
    case 20:   // NUMBER_OF_COLUMNS_DOESNT_MATCH
    case 26:   // CANNOT_PARSE_QUOTED_STRING
    case 27:   // CANNOT_PARSE_INPUT_ASSERTION_FAILED
    case 33:   // CANNOT_READ_ALL_DATA
    case 38:   // CANNOT_PARSE_DATE
    case 41:   // CANNOT_PARSE_DATETIME
    case 47:   // UNKNOWN_IDENTIFIER
    case 53:   // TYPE_MISMATCH
    case 62:   // SYNTAX_ERROR
    case 69:   // ARGUMENT_OUT_OF_BOUND
    case 70:   // CANNOT_CONVERT_TYPE
    case 72:   // CANNOT_PARSE_NUMBER
    case 117:  // INCORRECT_DATA
    case 130:  // CANNOT_READ_ARRAY_FROM_TEXT
    case 131:  // TOO_LARGE_STRING_SIZE
      return true;
    default:
      return false;
  }
}
bool is_missing_code(int c) { return c == 60 || c == 81; }  // UNKNOWN_TABLE, UNKNOWN_DATABASE

int exception_code(const http::Response& r) {
  const std::string_view body = r.body;
  const auto at = body.find("Code: ");
  if (at == std::string_view::npos || at > 64) return 0;
  const std::string_view text = body.substr(at + 6);
  int code = 0;
  for (const char c : text) {
    if (c < '0' || c > '9' || code > 100000) break;
    code = code * 10 + (c - '0');
  }
  return code;
}

// The first line of the server's message, short enough for a log line.
std::string server_says(const http::Response& r) {
  std::string s = r.body.substr(0, r.body.find('\n'));
  if (s.size() > 300) s = s.substr(0, 300) + "...";
  return s;
}

struct Table {
  std::string name;
  TableKind kind;
  bool checked = false;  // exists and fits the rows (looked at since the last trouble)
};

class ClickHouseSink final : public http::StatsSink {
 public:
  static constexpr uint32_t flags = OUTPOST_FLAG_SPOOL;

  ClickHouseSink(Host host, const Config& cfg)
      : http::StatsSink(host, http::stats_interval_seconds(cfg, kHttpFields)),
        host_(host),
        flows_{cfg.get("flows_table", "flows"), TableKind::flows},
        rollups_{cfg.get("rollups_table", "flow_rollups"), TableKind::rollups},
        http_(http_options(cfg, host)),
        reporter_("clickhouse " + cfg.get("url", "http://127.0.0.1:8123")) {
    url_ = cfg.get("url", "http://127.0.0.1:8123");
    if (url_.rfind("http://", 0) != 0 && url_.rfind("https://", 0) != 0)
      throw Error(OUTPOST_E_CONFIG, "url: must be http://... or https://... (got '" + url_ + "')");
    while (!url_.empty() && url_.back() == '/') url_.pop_back();
    database_ = cfg.get("database", "default");
    for (const auto& [key, name] : {std::pair{"database", database_},
                                    {"flows_table", flows_.name},
                                    {"rollups_table", rollups_.name}})
      if (!valid_identifier(name))
        throw Error(OUTPOST_E_CONFIG,
                    std::string(key) + ": '" + name + "' is not a plain name (letters, digits, _)");
    if (flows_.name == rollups_.name)
      throw Error(OUTPOST_E_CONFIG, "flows_table and rollups_table must differ");
    rollup_prefix_ = cfg.get("rollup_prefix", "flow_");
    create_tables_ = cfg.get_bool("create_tables", true);
    ttl_days_ = cfg.get_int("ttl_days", 0);
    if (ttl_days_ < 0 || ttl_days_ > 36500) throw Error(OUTPOST_E_CONFIG, "ttl_days: 0..36500");
    std::random_device rd;
    direct_id_ = "direct-" + std::to_string(rd()) + "-" + std::to_string(rd());
  }

  static std::vector<outpost_field> config_fields() {
    std::vector<outpost_field> own = {
        field("url", OUTPOST_FIELD_STRING,
              "ClickHouse's HTTP interface, http(s)://host:port (8123 plain, 8443 TLS)",
              "http://127.0.0.1:8123"),
        field("database", OUTPOST_FIELD_STRING, "database of both tables", "default"),
        field("flows_table", OUTPOST_FIELD_STRING, "table of raw flow records", "flows"),
        field("rollups_table", OUTPOST_FIELD_STRING, "table of flow_aggregator's summaries",
              "flow_rollups"),
        field("rollup_prefix", OUTPOST_FIELD_STRING,
              "metrics whose name starts with this are rollups; other metrics are ignored",
              "flow_"),
        field("user", OUTPOST_FIELD_STRING, "ClickHouse user", "default"),
        field("password", OUTPOST_FIELD_SECRET, "credential reference of the user's password"),
        field("create_tables", OUTPOST_FIELD_BOOL,
              "create the database and tables when missing (CREATE ... IF NOT EXISTS)", "true"),
        field("ttl_days", OUTPOST_FIELD_INT,
              "with create_tables: rows older than this many days are removed by the server "
              "(needs ClickHouse 19.6 or later); 0: kept",
              "0"),
    };
    for (const auto& f : http::config_fields(kHttpFields))
      if (shared_field_wanted(f)) own.push_back(f);
    return own;
  }

  // Without a spool (spool: false): each batch once, under an identity of this process's own.
  void write(const outpost_batch& b) override {
    SpoolInfo info;
    info.spool_id = direct_id_;
    ++direct_seq_;
    info.ranges.push_back(SpoolRange{"direct", direct_seq_, direct_seq_});
    write_spooled(b, info);
  }

  void write_spooled(const outpost_batch& b, const SpoolInfo& info) override {
    const uint64_t key = batch_key(http::batch_id(info));
    const uint32_t now_s = datetime_of(host_.now_ns());
    flow_rows_.clear();
    rollup_rows_.clear();
    for (std::size_t i = 0; i < b.flow_count; ++i)
      append_flow(flow_rows_, element(b.flows, b.flow_size, i), key, now_s);
    uint64_t ignored_metrics = 0;
    for (std::size_t i = 0; i < b.metric_count; ++i) {
      const outpost_metric& m = element(b.metrics, b.metric_size, i);
      if (view(m.name).starts_with(rollup_prefix_))
        append_rollup(rollup_rows_, m, key, now_s);
      else
        ++ignored_metrics;
    }
    // Counted once per batch, not once per offer.
    if (info.attempt <= 1) {
      stats_.ignored_metrics += ignored_metrics;
      stats_.ignored_events += b.event_count;
    }
    if (flow_rows_.rows + rollup_rows_.rows == 0) return;
    if (info.attempt > 1) stats_.retries++;
    // A batch may already be there: offered again after a failure, or the first one after a
    // restart (the previous process may have been stopped while the server took it).
    const bool maybe_repeat = info.attempt > 1 || !written_;
    try {
      std::optional<Error> rejected;
      for (auto [table, rows] : {std::pair{&flows_, &flow_rows_}, {&rollups_, &rollup_rows_}}) {
        if (rows->rows == 0) continue;
        try {
          ensure_table(*table);
          if (maybe_repeat && already_there(*table, *rows, key)) {
            stats_.repeats_skipped++;
            continue;
          }
          insert(*table, *rows);
        } catch (const Error& e) {
          if (e.status() != OUTPOST_E_INVALID_ARGUMENT) throw;
          stats_.rejected_rows += rows->rows;
          if (!rejected) rejected = e;  // the other table may still take its rows
        }
      }
      if (rejected) {
        stats_.rejected_batches++;
        throw *rejected;
      }
    } catch (const Error&) {
      stats_.failures++;
      throw;
    }
    written_ = true;
    stats_.batches++;
    reporter_.delivered(host_);
  }

 private:
  static http::Options http_options(const Config& cfg, const Host& host) {
    http::Options o = http::read_options(cfg, host, kHttpFields);
    o.headers.push_back("X-ClickHouse-User: " + cfg.get("user", "default"));
    if (!cfg.get("password").empty())
      o.headers.push_back("X-ClickHouse-Key: " + host.secret(cfg.get("password")));
    o.max_answer_bytes = 64 * 1024;  // enough for the schema queries' answers
    return o;
  }

  // One request; its failure thrown as an Error of the class the spool acts on.
  http::Response request(const std::string& params, std::string_view body, std::string_view what) {
    http::Response r = http_.post(url_ + "/?" + params, body);
    stats_.request_seconds += r.seconds;
    stats_.requests++;
    stats_.bytes_sent += r.bytes_sent;
    if (r.ok()) return r;
    http::Verdict v = verdict(r);
    v.what = std::string(what) + ": " + v.what;
    reporter_.fail(host_, v);
  }

  // http_client's classes, refined by ClickHouse's exception code: a server error about the
  // rows or the table is no reason to send them again, one about credentials is the operator's.
  http::Verdict verdict(const http::Response& r) {
    http::Verdict v = http::classify(r, host_.now_ns() / 1'000'000'000);
    if (r.transport != http::Transport::ok) return v;
    const int code = exception_code(r);
    const std::string said = "HTTP " + std::to_string(r.status) + ": " + server_says(r);
    if (r.status == 401 || r.status == 403 || is_auth_code(code)) {
      v = {http::Outcome::operator_action, OUTPOST_E_AUTH, said, 0};
    } else if (is_missing_code(code)) {  // created again on the next offer, or the operator's
      v = create_tables_
              ? http::Verdict{http::Outcome::retry, OUTPOST_E_UNAVAILABLE, said, 0}
              : http::Verdict{http::Outcome::operator_action, OUTPOST_E_NOT_FOUND, said, 0};
    } else if (r.status == 400 || is_schema_code(code)) {
      v = {http::Outcome::rejected, OUTPOST_E_INVALID_ARGUMENT, said, 0};
    } else {
      v.what += ": " + server_says(r);
    }
    return v;
  }

  std::string select(const std::string& sql, std::string_view what) {
    return request("", sql + " FORMAT TabSeparated", what).body;
  }

  void ensure_server() {
    if (server_checked_) return;
    const std::string text = select("SELECT version()", "version");
    const auto v = parse_version(text);
    version_ = v.value_or(ServerVersion{});
    version_text_ = text.substr(0, text.find('\n'));
    if (create_tables_ && ttl_days_ > 0 && !version_.has_table_ttl())
      throw Error(OUTPOST_E_CONFIG,
                  "ttl_days needs ClickHouse 19.6 or later; " + url_ + " runs " + version_text_);
    if (create_tables_ && database_ != "default")
      request("", "CREATE DATABASE IF NOT EXISTS " + database_, "create database");
    server_checked_ = true;
    host_.log(OUTPOST_LOG_INFO, "clickhouse: " + url_ + " runs ClickHouse " + version_text_);
  }

  // The table exists and has every column the rows need, with the same types.
  void ensure_table(Table& t) {
    if (t.checked) return;
    ensure_server();
    if (create_tables_)
      request("", create_table_sql(database_, t.name, t.kind, ttl_days_), "create table " + t.name);
    const std::string text = select("SELECT name, type FROM system.columns WHERE database = '" +
                                        database_ + "' AND table = '" + t.name + "'",
                                    "columns of " + t.name);
    std::vector<std::pair<std::string, std::string>> cols;
    std::size_t at = 0;
    while (at < text.size()) {
      const auto nl = text.find('\n', at);
      const std::string line = text.substr(at, nl == std::string::npos ? nl : nl - at);
      at = nl == std::string::npos ? text.size() : nl + 1;
      const auto tab = line.find('\t');
      if (tab != std::string::npos) cols.emplace_back(line.substr(0, tab), line.substr(tab + 1));
    }
    const std::string full = database_ + "." + t.name;
    if (cols.empty())
      throw Error(OUTPOST_E_NOT_FOUND, "clickhouse " + url_ + ": no table " + full +
                                           " (create it, or set create_tables)");
    const auto mismatches = schema_mismatches(t.kind, cols);
    if (!mismatches.empty()) {
      std::string what;
      for (const auto& m : mismatches) what += (what.empty() ? "" : "; ") + m;
      throw Error(OUTPOST_E_INVALID_ARGUMENT,
                  "clickhouse " + url_ + ": table " + full + " does not fit the rows: " + what);
    }
    t.checked = true;
  }

  bool already_there(const Table& t, const EncodedRows& rows, uint64_t key) {
    const std::string text =
        select("SELECT count() FROM " + database_ + "." + t.name + " WHERE time >= toDateTime(" +
                   std::to_string(rows.min_time) + ") AND time <= toDateTime(" +
                   std::to_string(rows.max_time) + ") AND batch = " + std::to_string(key),
               "looking for a repeated batch in " + t.name);
    const uint64_t found = std::strtoull(text.c_str(), nullptr, 10);
    if (found > 0 && found != rows.rows)
      host_.log(OUTPOST_LOG_WARN, "clickhouse: " + t.name + " holds " + std::to_string(found) +
                                      " of a repeated batch's " + std::to_string(rows.rows) +
                                      " rows; the batch is not inserted again");
    return found > 0;
  }

  void insert(Table& t, const EncodedRows& rows) {
    const std::string sql =
        "INSERT INTO " + database_ + "." + t.name + " " + column_list(t.kind) + " FORMAT RowBinary";
    try {
      request("query=" + url_encode(sql), rows.body, "insert into " + t.name);
    } catch (const Error&) {
      t.checked = false;  // looked at again before the next insert: it may have been changed
      throw;
    }
    (t.kind == TableKind::flows ? stats_.flow_rows : stats_.rollup_rows) += rows.rows;
  }

  void emit_stats() override {
    if (stats_interval_s() <= 0) return;
    const int64_t t = host_.now_ns();
    auto m = [&](const char* name, uint64_t v, Labels labels = {}) {
      return Metric{name, std::move(labels), static_cast<double>(v), t, OUTPOST_METRIC_COUNTER};
    };
    std::vector<Metric> ms = {
        m("outpost_clickhouse_rows_total", stats_.flow_rows, {{"table", flows_.name}}),
        m("outpost_clickhouse_rows_total", stats_.rollup_rows, {{"table", rollups_.name}}),
        m("outpost_clickhouse_batches_total", stats_.batches),
        m("outpost_clickhouse_requests_total", stats_.requests),
        m("outpost_clickhouse_failures_total", stats_.failures),
        m("outpost_clickhouse_retries_total", stats_.retries),
        m("outpost_clickhouse_repeats_skipped_total", stats_.repeats_skipped),
        m("outpost_clickhouse_rejected_batches_total", stats_.rejected_batches),
        m("outpost_clickhouse_rejected_rows_total", stats_.rejected_rows),
        m("outpost_clickhouse_ignored_total", stats_.ignored_metrics, {{"kind", "metric"}}),
        m("outpost_clickhouse_ignored_total", stats_.ignored_events, {{"kind", "event"}}),
        m("outpost_clickhouse_bytes_sent_total", stats_.bytes_sent),
    };
    ms.push_back(Metric{"outpost_clickhouse_request_seconds_sum",
                        {},
                        stats_.request_seconds,
                        t,
                        OUTPOST_METRIC_COUNTER});
    host_.emit(ms);
  }

  struct Stats {
    uint64_t flow_rows = 0, rollup_rows = 0, batches = 0, requests = 0, failures = 0, retries = 0;
    uint64_t repeats_skipped = 0, rejected_batches = 0, rejected_rows = 0;
    uint64_t ignored_metrics = 0, ignored_events = 0, bytes_sent = 0;
    double request_seconds = 0;
  };

  Host host_;
  Table flows_, rollups_;
  http::Client http_;
  http::Reporter reporter_;
  std::string url_, database_, rollup_prefix_, version_text_;
  bool create_tables_ = true;
  int64_t ttl_days_ = 0;
  bool server_checked_ = false;
  ServerVersion version_;
  bool written_ = false;  // a batch went in since this instance was created
  EncodedRows flow_rows_, rollup_rows_;
  std::string direct_id_;
  uint64_t direct_seq_ = 0;
  Stats stats_;
};

}  // namespace
}  // namespace outpost::clickhouse

OUTPOST_PLUGIN(outpost::clickhouse::ClickHouseSink, "clickhouse", "0.1.0",
               "flow records and flow rollups into ClickHouse over its HTTP interface, batched "
               "RowBinary inserts behind the disk spool")
