#include "store/query.hpp"

#include <fmt/core.h>
#include <sqlite3.h>

#include <cmath>
#include <ctime>
#include <filesystem>
#include <memory>

namespace outpost::core {
namespace {

struct DbCloser {
  void operator()(sqlite3* db) const { sqlite3_close(db); }
};
struct StmtCloser {
  void operator()(sqlite3_stmt* s) const { sqlite3_finalize(s); }
};
using Db = std::unique_ptr<sqlite3, DbCloser>;
using Stmt = std::unique_ptr<sqlite3_stmt, StmtCloser>;

std::string text(sqlite3_stmt* s, int col) {
  const auto* p = sqlite3_column_text(s, col);
  return p ? std::string(reinterpret_cast<const char*>(p),
                         static_cast<std::size_t>(sqlite3_column_bytes(s, col)))
           : std::string();
}

std::string fmt_time(int64_t ns) {
  const std::time_t t = static_cast<std::time_t>(ns / 1000000000);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  return fmt::format("{}.{:03d}Z", buf, static_cast<int>((ns / 1000000) % 1000));
}

std::string fmt_value(double v) {
  if (std::isnan(v)) return "NaN";
  if (v == std::floor(v) && std::fabs(v) < 1e15) return fmt::format("{:.0f}", v);
  return fmt::format("{:.6g}", v);
}

std::string json_escape(const std::string& s) {
  std::string o;
  for (char c : s) {
    if (c == '"' || c == '\\')
      o += '\\', o += c;
    else if (static_cast<unsigned char>(c) < 0x20)
      o += fmt::format("\\u{:04x}", static_cast<int>(c));
    else
      o += c;
  }
  return o;
}

Stmt prepare(sqlite3* db, const std::string& sql, std::ostream& err) {
  sqlite3_stmt* s = nullptr;
  if (sqlite3_prepare_v2(db, sql.c_str(), -1, &s, nullptr) != SQLITE_OK) {
    err << "query failed: " << sqlite3_errmsg(db) << "\n";
    return nullptr;
  }
  return Stmt(s);
}

int series(sqlite3* db, const QueryOptions& o, std::ostream& out, std::ostream& err) {
  Stmt s = prepare(
      db,
      "SELECT s.name, s.labels, s.type, COUNT(x.time_ns), MAX(x.time_ns), "
      " (SELECT value FROM samples y WHERE y.series_id = s.id ORDER BY y.time_ns DESC LIMIT 1) "
      "FROM series s JOIN samples x ON x.series_id = s.id "
      "WHERE (?1 = '' OR instr(s.name || s.labels, ?1) > 0) AND x.time_ns >= ?2 "
      "GROUP BY s.id ORDER BY s.name, s.labels LIMIT ?3",
      err);
  if (!s) return 2;
  sqlite3_bind_text(s.get(), 1, o.match.c_str(), -1, SQLITE_TRANSIENT);
  sqlite3_bind_int64(s.get(), 2, o.since_ns);
  sqlite3_bind_int(s.get(), 3, o.limit);
  int n = 0;
  while (sqlite3_step(s.get()) == SQLITE_ROW) {
    const std::string name = text(s.get(), 0), labels = text(s.get(), 1);
    const int64_t count = sqlite3_column_int64(s.get(), 3), last = sqlite3_column_int64(s.get(), 4);
    const double value = sqlite3_column_double(s.get(), 5);
    if (o.json)
      out << fmt::format(
          "{{\"name\":\"{}\",\"labels\":{},\"samples\":{},\"last_time_ns\":{},\"last\":{}}}\n",
          json_escape(name), labels.empty() ? "{}" : labels, count, last,
          std::isfinite(value) ? fmt::format("{}", value) : "null");
    else
      out << fmt::format("{}{}  last={}  at={}  samples={}\n", name, labels, fmt_value(value),
                         fmt_time(last), count);
    ++n;
  }
  if (!o.json) out << fmt::format("({} series)\n", n);
  return 0;
}

int samples(sqlite3* db, const QueryOptions& o, std::ostream& out, std::ostream& err) {
  Stmt s = prepare(
      db,
      "SELECT s.name, s.labels, x.time_ns, x.value FROM samples x JOIN series s ON s.id = "
      "x.series_id "
      "WHERE (?1 = '' OR s.name = ?1) AND (?2 = '' OR instr(s.labels, ?2) > 0) AND x.time_ns >= ?3 "
      "ORDER BY x.time_ns DESC LIMIT ?4",
      err);
  if (!s) return 2;
  sqlite3_bind_text(s.get(), 1, o.name.c_str(), -1, SQLITE_TRANSIENT);
  sqlite3_bind_text(s.get(), 2, o.match.c_str(), -1, SQLITE_TRANSIENT);
  sqlite3_bind_int64(s.get(), 3, o.since_ns);
  sqlite3_bind_int(s.get(), 4, o.limit);
  while (sqlite3_step(s.get()) == SQLITE_ROW) {
    const double v = sqlite3_column_double(s.get(), 3);
    if (o.json)
      out << fmt::format("{{\"name\":\"{}\",\"labels\":{},\"time_ns\":{},\"value\":{}}}\n",
                         json_escape(text(s.get(), 0)), text(s.get(), 1),
                         sqlite3_column_int64(s.get(), 2),
                         std::isfinite(v) ? fmt::format("{}", v) : "null");
    else
      out << fmt::format("{}  {}{}  {}\n", fmt_time(sqlite3_column_int64(s.get(), 2)),
                         text(s.get(), 0), text(s.get(), 1), fmt_value(v));
  }
  return 0;
}

int events(sqlite3* db, const QueryOptions& o, std::ostream& out, std::ostream& err) {
  Stmt s = prepare(db,
                   "SELECT time_ns, severity, source, kind, message, attributes FROM events "
                   "WHERE time_ns >= ?1 AND (?2 = '' OR instr(source || kind || message, ?2) > 0) "
                   "ORDER BY time_ns DESC, id DESC LIMIT ?3",
                   err);
  if (!s) return 2;
  sqlite3_bind_int64(s.get(), 1, o.since_ns);
  sqlite3_bind_text(s.get(), 2, o.match.c_str(), -1, SQLITE_TRANSIENT);
  sqlite3_bind_int(s.get(), 3, o.limit);
  static const char* kSev[] = {"emerg",   "alert",  "crit", "error",
                               "warning", "notice", "info", "debug"};
  int n = 0;
  while (sqlite3_step(s.get()) == SQLITE_ROW) {
    const int sev = sqlite3_column_int(s.get(), 1);
    const std::string sevs = sev >= 0 && sev < 8 ? kSev[sev] : std::to_string(sev);
    if (o.json)
      out << fmt::format(
          "{{\"time_ns\":{},\"severity\":{},\"source\":\"{}\",\"kind\":\"{}\",\"message\":\"{}\","
          "\"attributes\":{}}}\n",
          sqlite3_column_int64(s.get(), 0), sev, json_escape(text(s.get(), 2)),
          json_escape(text(s.get(), 3)), json_escape(text(s.get(), 4)),
          text(s.get(), 5).empty() ? "{}" : text(s.get(), 5));
    else
      out << fmt::format("{}  {:<7}  {}  {}  {}\n", fmt_time(sqlite3_column_int64(s.get(), 0)),
                         sevs, text(s.get(), 3), text(s.get(), 2), text(s.get(), 4));
    ++n;
  }
  if (!o.json) out << fmt::format("({} events)\n", n);
  return 0;
}

}  // namespace

int run_query(const QueryOptions& o, std::ostream& out, std::ostream& err) {
  std::error_code ec;
  if (!std::filesystem::exists(o.db_path, ec)) {
    err << "no local store at " << o.db_path << " (has the engine run with the sqlite sink?)\n";
    return 1;
  }
  sqlite3* raw = nullptr;
  if (sqlite3_open_v2(o.db_path.c_str(), &raw, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK) {
    err << "cannot open " << o.db_path << ": " << (raw ? sqlite3_errmsg(raw) : "out of memory")
        << "\n";
    sqlite3_close(raw);
    return 1;
  }
  Db db(raw);
  sqlite3_busy_timeout(db.get(), 2000);
  if (o.what == "series") return series(db.get(), o, out, err);
  if (o.what == "samples") return samples(db.get(), o, out, err);
  if (o.what == "events") return events(db.get(), o, out, err);
  if (o.what == "summary") {
    if (!o.json) out << "== series ==\n";
    int rc = series(db.get(), o, out, err);
    if (rc != 0) return rc;
    if (!o.json) out << "== recent events ==\n";
    QueryOptions e = o;
    e.match.clear();
    e.limit = std::min(o.limit, 20);
    return events(db.get(), e, out, err);
  }
  err << "unknown query '" << o.what << "' (series, samples, events)\n";
  return 2;
}

}  // namespace outpost::core
