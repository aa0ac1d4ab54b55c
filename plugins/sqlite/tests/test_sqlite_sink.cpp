#include <sqlite3.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <outpost/testing.hpp>
#include <string>
#include <vector>

#include "../../../sdk/jsonl/testing/sink_testing.hpp"

using namespace sink_testing;

namespace {

const outpost_plugin_descriptor* plugin() {
  static const auto* d =
      outpost::testing::open_plugin(OUTPOST_TEST_PLUGIN_DIR "/outpost_sqlite.so");
  return d;
}

// An independent reader: the sqlite3 C API on its own connection.
class Reader {
 public:
  explicit Reader(const std::string& path) {
    REQUIRE(sqlite3_open_v2(path.c_str(), &db_, SQLITE_OPEN_READWRITE, nullptr) == SQLITE_OK);
    sqlite3_busy_timeout(db_, 2000);
  }
  ~Reader() { sqlite3_close(db_); }
  Reader(const Reader&) = delete;
  Reader& operator=(const Reader&) = delete;

  // Every row as strings ("NULL" for NULL), columns joined by '|'.
  std::vector<std::string> rows(const std::string& sql) {
    sqlite3_stmt* s = nullptr;
    REQUIRE(sqlite3_prepare_v2(db_, sql.c_str(), -1, &s, nullptr) == SQLITE_OK);
    std::vector<std::string> out;
    while (sqlite3_step(s) == SQLITE_ROW) {
      std::string row;
      for (int c = 0; c < sqlite3_column_count(s); ++c) {
        if (c > 0) row += '|';
        const auto* t = reinterpret_cast<const char*>(sqlite3_column_text(s, c));
        row += t != nullptr ? t : "NULL";
      }
      out.push_back(row);
    }
    sqlite3_finalize(s);
    return out;
  }
  std::string one(const std::string& sql) {
    auto r = rows(sql);
    REQUIRE(r.size() == 1);
    return r[0];
  }
  int64_t count(const std::string& table) {
    return std::stoll(one("SELECT count(*) FROM " + table));
  }
  sqlite3* raw() const { return db_; }

 private:
  sqlite3* db_ = nullptr;
};

outpost_status write(outpost::testing::FakeHost& host, const BatchBuilder& b) {
  const outpost_batch batch = b.batch();
  return plugin()->write(host.instance(), &batch);
}

}  // namespace

TEST_CASE("sqlite: descriptor declares a sink with its config keys") {
  const auto* d = plugin();
  REQUIRE(d != nullptr);
  CHECK((d->kinds & OUTPOST_KIND_SINK) != 0);
  std::vector<std::string> keys;
  for (std::size_t i = 0; i < d->config_field_count; ++i)
    keys.push_back(outpost::testing::str(d->config_fields[i].name));
  CHECK(keys == std::vector<std::string>{"path", "retention", "max_rows"});
}

TEST_CASE("sqlite: stores metrics, events and flows in the documented schema") {
  TempDir dir;
  const std::string db = dir / "sub/dir/outpost.db";  // parent directories are created
  const int64_t t = now_ns();
  {
    outpost::testing::FakeHost host(plugin());
    REQUIRE(host.create({{"path", db}}) == OUTPOST_OK);
    BatchBuilder b;
    b.metric("rtt_ms", {{"device", "lo"}, {"address", "127.0.0.1"}}, 0.25, t)
        .metric("up", {{"device", "lo"}}, 1, t + 1, OUTPOST_METRIC_COUNTER)
        .metric("stamped", {}, 7, 0)
        .metric("weird", {{"q\"uote", "back\\slash\nnl\x01"}, {"é", "\xff"}}, -1.5e300, t)
        .event("gw", "availability", "down: \"timeout\"", OUTPOST_SEV_WARNING,
               {{"z", "1"}, {"a", "2"}}, t)
        .event("gw", "syslog", "stamped", OUTPOST_SEV_INFO)
        .flow(flow_v4({10, 0, 0, 1}, {10, 0, 0, 2}, 1234, 80, t));
    outpost_flow f6{};
    f6.family = 6;
    f6.src_addr[15] = 1;  // ::1
    f6.dst_addr[0] = 0x20;
    f6.dst_addr[1] = 0x01;
    f6.dst_addr[2] = 0x0d;
    f6.dst_addr[3] = 0xb8;
    f6.dst_addr[15] = 2;  // 2001:db8::2
    f6.end_ns = t;
    f6.bytes = UINT64_MAX;  // beyond SQLite's signed range: saturates
    b.flow(f6);
    REQUIRE(write(host, b) == OUTPOST_OK);
    REQUIRE(host.errors().empty());
  }  // destroyed: the database is closed

  Reader r(db);
  CHECK(r.one("PRAGMA journal_mode") == "wal");
  CHECK(r.one("SELECT value FROM meta WHERE key='schema_version'") == "1");
  CHECK(r.rows("SELECT name, labels, type FROM series ORDER BY name") ==
        std::vector<std::string>{
            R"(rtt_ms|{"address":"127.0.0.1","device":"lo"}|0)",
            R"(stamped|{}|0)",
            R"(up|{"device":"lo"}|1)",
            R"(weird|{"q\"uote":"back\\slash\nnl\u0001","é":"\ufffd"}|0)",
        });
  CHECK(r.one("SELECT s.time_ns, s.value FROM samples s JOIN series x ON x.id = s.series_id "
              "WHERE x.name='rtt_ms'") == std::to_string(t) + "|0.25");
  CHECK(
      r.one(
          "SELECT value FROM samples s JOIN series x ON x.id = s.series_id WHERE x.name='weird'") ==
      "-1.5e+300");
  // time_ns 0 is stamped with the current time.
  const int64_t stamped = std::stoll(r.one(
      "SELECT time_ns FROM samples s JOIN series x ON x.id = s.series_id WHERE x.name='stamped'"));
  CHECK(std::llabs(stamped - now_ns()) < int64_t{60'000'000'000});
  CHECK(
      r.rows("SELECT time_ns, severity, source, kind, message, attributes FROM events ORDER BY id")
          .at(0) == std::to_string(t) + R"(|4|gw|availability|down: "timeout"|{"a":"2","z":"1"})");
  CHECK(std::stoll(r.one("SELECT time_ns FROM events WHERE message='stamped'")) > t - 1);
  CHECK(
      r.rows("SELECT time_ns, start_ns, end_ns, exporter, src, dst, src_port, dst_port, protocol, "
             "bytes, packets, input_if, output_if FROM flows ORDER BY rowid") ==
      std::vector<std::string>{
          std::to_string(t) + "|" + std::to_string(t - 1'000'000'000) + "|" + std::to_string(t) +
              "|192.0.2.1|10.0.0.1|10.0.0.2|1234|80|6|1500|3|1|2",
          std::to_string(t) + "|0|" + std::to_string(t) +
              "|::|::1|2001:db8::2|0|0|0|9223372036854775807|0|0|0",
      });
  // The indexes `outpost query` relies on.
  CHECK(
      r.rows(
          "SELECT name FROM sqlite_master WHERE type='index' AND sql IS NOT NULL ORDER BY name") ==
      std::vector<std::string>{"events_time", "samples_series_time"});
}

TEST_CASE("sqlite: label order does not matter, within and across instances") {
  TempDir dir;
  const std::string db = dir / "o.db";
  const int64_t t = now_ns();
  for (int round = 0; round < 2; ++round) {
    outpost::testing::FakeHost host(plugin());
    REQUIRE(host.create({{"path", db}}) == OUTPOST_OK);
    BatchBuilder b;
    b.metric("m", {{"a", "1"}, {"b", "2"}, {"c", "3"}}, 1, t)
        .metric("m", {{"c", "3"}, {"a", "1"}, {"b", "2"}}, 2, t + 1)
        .metric("m", {{"b", "2"}, {"c", "3"}, {"a", "1"}}, 3, t + 2)
        .metric("m", {{"a", "1"}, {"b", "2"}}, 4, t + 3);  // a different set: its own series
    REQUIRE(write(host, b) == OUTPOST_OK);
    BatchBuilder again;  // from the cache this time
    again.metric("m", {{"b", "2"}, {"a", "1"}, {"c", "3"}}, 5, t + 4);
    REQUIRE(write(host, again) == OUTPOST_OK);
  }
  Reader r(db);
  CHECK(r.count("series") == 2);
  CHECK(r.rows("SELECT labels, count(*) FROM samples JOIN series ON id = series_id GROUP BY id "
               "ORDER BY labels") ==
        std::vector<std::string>{R"({"a":"1","b":"2","c":"3"}|8)", R"({"a":"1","b":"2"}|2)"});
}

TEST_CASE("sqlite: retention deletes old samples, events and flows") {
  TempDir dir;
  const std::string db = dir / "r.db";
  const int64_t t = now_ns();
  const int64_t old = t - int64_t{3} * 3600 * 1'000'000'000;  // 3 h ago, retention is 1 h
  {
    // Written with a long retention so the old rows survive the first maintenance pass.
    outpost::testing::FakeHost host(plugin());
    REQUIRE(host.create({{"path", db}, {"retention", "7d"}}) == OUTPOST_OK);
    BatchBuilder b;
    b.metric("m", {{"k", "new"}}, 1, t)
        .metric("m", {{"k", "old"}}, 2, old)
        .metric("m", {{"k", "new"}}, 3, old)
        .event("s", "k", "old", OUTPOST_SEV_INFO, {}, old)
        .event("s", "k", "new", OUTPOST_SEV_INFO, {}, t)
        .flow(flow_v4({1, 1, 1, 1}, {2, 2, 2, 2}, 1, 2, old))
        .flow(flow_v4({1, 1, 1, 1}, {2, 2, 2, 2}, 1, 2, t));
    REQUIRE(write(host, b) == OUTPOST_OK);
  }
  {
    Reader r(db);
    CHECK(r.count("samples") == 3);
    CHECK(r.count("events") == 2);
    CHECK(r.count("flows") == 2);
  }
  {
    outpost::testing::FakeHost host(plugin());
    REQUIRE(host.create({{"path", db}, {"retention", "1h"}}) == OUTPOST_OK);
    BatchBuilder b;  // the first write of an instance runs maintenance after its commit
    b.metric("m", {{"k", "new"}}, 4, t + 1);
    REQUIRE(write(host, b) == OUTPOST_OK);
    CHECK(host.errors().empty());
    // The series cache must survive the deletion of the now empty series.
    BatchBuilder c;
    c.metric("m", {{"k", "old"}}, 5, t + 2);
    REQUIRE(write(host, c) == OUTPOST_OK);
  }
  Reader r(db);
  CHECK(
      r.rows("SELECT labels, value FROM samples JOIN series ON id = series_id ORDER BY time_ns") ==
      std::vector<std::string>{R"({"k":"new"}|1.0)", R"({"k":"new"}|4.0)", R"({"k":"old"}|5.0)"});
  CHECK(r.rows("SELECT message FROM events") == std::vector<std::string>{"new"});
  CHECK(r.rows("SELECT time_ns FROM flows") == std::vector<std::string>{std::to_string(t)});
}

TEST_CASE("sqlite: max_rows trims the oldest rows") {
  TempDir dir;
  const std::string db = dir / "m.db";
  const int64_t t = now_ns();
  {
    outpost::testing::FakeHost host(plugin());
    REQUIRE(host.create({{"path", db}, {"max_rows", "0"}}) == OUTPOST_OK);
    BatchBuilder b;
    for (int i = 0; i < 150; ++i) b.metric("m", {{"i", std::to_string(i % 3)}}, i, t + i);
    for (int i = 0; i < 50; ++i) b.event("s", "k", std::to_string(i), OUTPOST_SEV_INFO, {}, t + i);
    for (int i = 0; i < 30; ++i) b.flow(flow_v4({1, 1, 1, 1}, {2, 2, 2, 2}, 1, 2, t + i));
    REQUIRE(write(host, b) == OUTPOST_OK);
  }
  {
    Reader r(db);
    CHECK(r.count("samples") + r.count("events") == 200);
  }
  {
    outpost::testing::FakeHost host(plugin());
    REQUIRE(host.create({{"path", db}, {"max_rows", "100"}}) == OUTPOST_OK);
    BatchBuilder b;
    b.metric("m", {{"i", "0"}}, 1000, t + 1000);
    REQUIRE(write(host, b) == OUTPOST_OK);
    CHECK(host.errors().empty());
  }
  Reader r(db);
  // 201 rows, 101 over: samples give up their share (75), events the rest (26); the newest stay.
  CHECK(r.count("samples") + r.count("events") == 100);
  CHECK(r.count("samples") == 76);
  CHECK(r.one("SELECT min(value), max(value) FROM samples") == "75.0|1000.0");
  CHECK(r.one("SELECT min(CAST(message AS INTEGER)) FROM events") == "26");
  CHECK(r.count("flows") == 30);  // under the bound on its own
}

TEST_CASE("sqlite: a busy database asks for a retry and recovers") {
  TempDir dir;
  const std::string db = dir / "b.db";
  outpost::testing::FakeHost host(plugin());
  REQUIRE(host.create({{"path", db}}) == OUTPOST_OK);
  Reader other(db);
  REQUIRE(sqlite3_exec(other.raw(), "BEGIN IMMEDIATE", nullptr, nullptr, nullptr) == SQLITE_OK);
  BatchBuilder b;
  b.metric("m", {{"k", "v"}}, 1, now_ns());
  CHECK(write(host, b) == OUTPOST_E_UNAVAILABLE);
  REQUIRE(!host.errors().empty());
  CHECK(host.errors().back().first == OUTPOST_E_UNAVAILABLE);
  REQUIRE(sqlite3_exec(other.raw(), "COMMIT", nullptr, nullptr, nullptr) == SQLITE_OK);
  CHECK(write(host, b) == OUTPOST_OK);
  CHECK(other.count("samples") == 1);
  CHECK(other.count("series") == 1);
}

TEST_CASE("sqlite: NaN samples are dropped, infinities kept") {
  TempDir dir;
  const std::string db = dir / "n.db";
  const int64_t t = now_ns();
  {
    outpost::testing::FakeHost host(plugin());
    REQUIRE(host.create({{"path", db}}) == OUTPOST_OK);
    BatchBuilder b;
    b.metric("nan", {}, std::nan(""), t).metric("inf", {}, HUGE_VAL, t).metric("ok", {}, 1, t);
    REQUIRE(write(host, b) == OUTPOST_OK);
  }
  Reader r(db);
  CHECK(r.count("samples") == 2);
}

TEST_CASE("sqlite: unusable paths and settings fail create without a crash") {
  TempDir dir;
  const std::string file = dir / "plain";
  std::ofstream(file) << "not a directory";
  const std::string not_db = dir / "text.db";
  std::ofstream(not_db) << std::string(4096, 'x');

  const std::vector<std::vector<std::pair<std::string, std::string>>> bad = {
      {{"path", file + "/sub/x.db"}},         // parent is a file
      {{"path", "/proc/outpost-nope/x.db"}},  // directory cannot be created
      {{"path", dir.path().string()}},        // a directory, not a file
      {{"path", not_db}},                     // not an SQLite database
      {{"path", dir / "ok.db"}, {"retention", "soon"}},
      {{"path", dir / "ok.db"}, {"max_rows", "-1"}},
      {{"path", ""}},
  };
  for (const auto& cfg : bad) {
    INFO(cfg[0].second << (cfg.size() > 1 ? " " + cfg[1].first : std::string()));
    outpost::testing::FakeHost host(plugin());
    const outpost_status s = host.create(cfg);
    CHECK((s == OUTPOST_E_CONFIG || s == OUTPOST_E_UNAVAILABLE));
    CHECK(host.instance() == nullptr);
    CHECK(host.errors().size() == 1);
  }
}

TEST_CASE("sqlite: refuses a database of another schema version") {
  TempDir dir;
  const std::string db = dir / "v.db";
  {
    outpost::testing::FakeHost host(plugin());
    REQUIRE(host.create({{"path", db}}) == OUTPOST_OK);
  }
  {
    outpost::testing::FakeHost host(plugin());  // reopening the same version is fine
    REQUIRE(host.create({{"path", db}}) == OUTPOST_OK);
  }
  {
    Reader r(db);
    REQUIRE(sqlite3_exec(r.raw(), "UPDATE meta SET value='2' WHERE key='schema_version'", nullptr,
                         nullptr, nullptr) == SQLITE_OK);
  }
  outpost::testing::FakeHost host(plugin());
  CHECK(host.create({{"path", db}}) == OUTPOST_E_CONFIG);
  REQUIRE(host.errors().size() == 1);
  CHECK(host.errors()[0].second.find("schema version 2") != std::string::npos);
}

TEST_CASE("sqlite: write throughput (informational, no assertion)") {
  TempDir dir;
  outpost::testing::FakeHost host(plugin());
  REQUIRE(host.create({{"path", dir / "t.db"}}) == OUTPOST_OK);
  const int64_t t = now_ns();
  constexpr int kBatches = 20, kPerBatch = 1000;
  const auto start = std::chrono::steady_clock::now();
  for (int n = 0; n < kBatches; ++n) {
    BatchBuilder b;
    for (int i = 0; i < kPerBatch; ++i)
      b.metric("rtt", {{"device", "d" + std::to_string(i % 200)}, {"site", "lab"}}, i, t + n);
    REQUIRE(write(host, b) == OUTPOST_OK);
  }
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  WARN("sqlite sink: " << static_cast<int>(kBatches * kPerBatch / s) << " samples/s");
}

namespace {
using outpost::testing::ReadSpec;
using outpost::testing::RecordedRow;

std::vector<std::string> names_of(const std::vector<RecordedRow>& rows, const char* column) {
  std::vector<std::string> out;
  for (const auto& r : rows) out.push_back(r.text(column));
  return out;
}
std::vector<double> values_of(const std::vector<RecordedRow>& rows, const char* column) {
  std::vector<double> out;
  for (const auto& r : rows) out.push_back(r.real(column));
  return out;
}
}  // namespace

TEST_CASE("sqlite: read gives back series, samples and events by name, match, time and limit") {
  TempDir dir;
  const std::string db = dir / "r.db";
  const int64_t s = 1'000'000'000, t = now_ns();
  outpost::testing::FakeHost host(plugin());
  REQUIRE(host.create({{"path", db}}) == OUTPOST_OK);
  BatchBuilder b;
  b.metric("rtt", {{"site", "lab"}, {"device", "gw"}}, 1, t - 3 * s)
      .metric("rtt", {{"device", "gw"}, {"site", "lab"}}, 2, t - 2 * s)
      .metric("rtt", {{"device", "gw"}, {"site", "lab"}}, 3, t - 1 * s)
      .metric("rtt", {{"device", "sw"}}, 5, t - 2 * s - s / 2)
      .metric("up", {{"device", "gw"}}, 1, t - 1 * s, OUTPOST_METRIC_COUNTER)
      .metric("weird", {{"q\"uote", "back\\slash\nnl\x01"}, {"\xc3\xa9", "\xff"}}, 7, t - 3 * s)
      .event("gw", "availability", "gw down", OUTPOST_SEV_WARNING, {{"monitor", "icmp"}}, t - 3 * s)
      .event("sw", "syslog", "link flap", OUTPOST_SEV_ERROR, {{"port", "ge-0/0/1"}}, t - 2 * s)
      .event("gw", "availability", "gw up", OUTPOST_SEV_INFO, {}, t - 1 * s);
  REQUIRE(write(host, b) == OUTPOST_OK);

  SECTION("series: one row each, columns as plugin.h lists them") {
    const auto rows = host.read(ReadSpec{OUTPOST_READ_SERIES});
    REQUIRE(rows.size() == 4);
    CHECK(names_of(rows, "name") == std::vector<std::string>{"rtt", "rtt", "up", "weird"});
    const RecordedRow& gw = rows[0];
    CHECK(gw.kind == OUTPOST_READ_SERIES);
    std::vector<std::string> columns;
    for (const auto& [n, v] : gw.columns) columns.push_back(n);
    CHECK(columns == std::vector<std::string>{"name", "labels", "last", "last_time_ns", "samples"});
    CHECK(gw.find("labels")->type == OUTPOST_VALUE_LABELS);
    CHECK(gw.labels("labels") ==
          std::map<std::string, std::string>{{"device", "gw"}, {"site", "lab"}});
    CHECK(gw.real("last") == 3);
    CHECK(gw.find("last_time_ns")->type == OUTPOST_VALUE_TIME);
    CHECK(gw.integer("last_time_ns") == t - s);
    CHECK(gw.integer("samples") == 3);
    // The label JSON is parsed back to the very bytes written (invalid UTF-8 became U+FFFD).
    CHECK(rows[3].labels("labels") ==
          std::map<std::string, std::string>{{"q\"uote", "back\\slash\nnl\x01"},
                                             {"\xc3\xa9", "\xef\xbf\xbd"}});
  }
  SECTION("series: by name, by match in labels, in a time range") {
    CHECK(host.read(ReadSpec{OUTPOST_READ_SERIES, "rtt"}).size() == 2);
    CHECK(host.read(ReadSpec{OUTPOST_READ_SERIES, "rt"}).empty());  // a name is exact
    const auto sw = host.read(ReadSpec{OUTPOST_READ_SERIES, "", "\"sw\""});
    REQUIRE(sw.size() == 1);
    CHECK(sw[0].real("last") == 5);
    CHECK(host.read(ReadSpec{OUTPOST_READ_SERIES, "", "wei"}).size() == 1);  // or in the name
    const auto recent = host.read(ReadSpec{OUTPOST_READ_SERIES, "rtt", "", t - s - s / 2});
    REQUIRE(recent.size() == 1);
    CHECK(recent[0].integer("samples") == 1);
    const auto early = host.read(ReadSpec{OUTPOST_READ_SERIES, "rtt", "gw", 0, t - s - s / 2});
    REQUIRE(early.size() == 1);
    CHECK(early[0].real("last") == 2);  // the newest inside the range
    CHECK(early[0].integer("samples") == 2);
  }
  SECTION("samples: newest first, filtered, limited") {
    const auto all = host.read(ReadSpec{OUTPOST_READ_SAMPLES, "rtt"});
    CHECK(values_of(all, "value") == std::vector<double>{3, 2, 5, 1});
    REQUIRE(!all.empty());
    CHECK(all[0].kind == OUTPOST_READ_SAMPLES);
    CHECK(all[0].integer("time_ns") == t - s);
    CHECK(values_of(host.read(ReadSpec{OUTPOST_READ_SAMPLES, "rtt", "\"gw\"", 0, 0, 2}), "value") ==
          std::vector<double>{3, 2});
    CHECK(names_of(host.read(ReadSpec{OUTPOST_READ_SAMPLES, "", "", t - s - s / 2}), "name") ==
          std::vector<std::string>{"rtt", "up"});
    CHECK(host.read(ReadSpec{OUTPOST_READ_SAMPLES, "", "", 0, t - 2 * s - s / 2}).size() == 2);
  }
  SECTION("events: newest first; the match finds message, source, kind or attributes") {
    const auto all = host.read(ReadSpec{OUTPOST_READ_EVENTS});
    CHECK(names_of(all, "message") == std::vector<std::string>{"gw up", "link flap", "gw down"});
    REQUIRE(all.size() == 3);
    CHECK(all[1].find("severity")->type == OUTPOST_VALUE_SEVERITY);
    CHECK(all[1].integer("severity") == OUTPOST_SEV_ERROR);
    CHECK(all[1].text("kind") == "syslog");
    CHECK(all[1].text("source") == "sw");
    CHECK(all[1].labels("attributes") == std::map<std::string, std::string>{{"port", "ge-0/0/1"}});
    CHECK(host.read(ReadSpec{OUTPOST_READ_EVENTS, "", "down"}).size() == 1);
    CHECK(host.read(ReadSpec{OUTPOST_READ_EVENTS, "", "ge-0/0"}).size() == 1);
    CHECK(host.read(ReadSpec{OUTPOST_READ_EVENTS, "", "availability"}).size() == 2);
    CHECK(host.read(ReadSpec{OUTPOST_READ_EVENTS, "", "", t - 2 * s}).size() == 2);
    CHECK(host.read(ReadSpec{OUTPOST_READ_EVENTS, "", "", 0, 0, 1}).size() == 1);
  }
  SECTION("summary: the series, then the recent events") {
    const auto rows = host.read(ReadSpec{OUTPOST_READ_SUMMARY, "", "rtt"});
    REQUIRE(rows.size() == 2 + 3);
    CHECK(rows[1].kind == OUTPOST_READ_SERIES);
    CHECK(rows[2].kind == OUTPOST_READ_EVENTS);
  }
  SECTION("a kind of read the sink does not know") {
    outpost_status st = OUTPOST_OK;
    CHECK(host.read(ReadSpec{99}, &st).empty());
    CHECK(st == OUTPOST_E_UNSUPPORTED);
  }
  CHECK(host.violations().empty());
}

TEST_CASE("sqlite: an instance created only to read opens the store as it is") {
  TempDir dir;
  const std::string db = dir / "sub/ro.db";
  {
    outpost::testing::FakeHost reader(plugin());
    reader.set_purpose(OUTPOST_PURPOSE_READ);
    CHECK(reader.create({{"path", db}}) == OUTPOST_E_NOT_FOUND);
    REQUIRE(reader.errors().size() == 1);
    CHECK(reader.errors()[0].second.find("no local store at " + db) != std::string::npos);
    CHECK_FALSE(std::filesystem::exists(dir / "sub"));  // nothing created
  }
  outpost::testing::FakeHost writer(plugin());
  REQUIRE(writer.create({{"path", db}}) == OUTPOST_OK);
  BatchBuilder b;
  b.metric("up", {{"device", "gw"}}, 1, now_ns());
  REQUIRE(write(writer, b) == OUTPOST_OK);
  {
    outpost::testing::FakeHost reader(plugin());  // while the writer has it open
    reader.set_purpose(OUTPOST_PURPOSE_READ);
    REQUIRE(reader.create({{"path", db}}) == OUTPOST_OK);
    const auto rows = reader.read(ReadSpec{OUTPOST_READ_SAMPLES});
    REQUIRE(rows.size() == 1);
    CHECK(rows[0].text("name") == "up");
    CHECK(reader.violations().empty());
  }
  const std::string text = dir / "text.db";
  std::ofstream(text) << std::string(4096, 'x');
  const std::string empty_db = dir / "empty.db";
  {
    sqlite3* raw = nullptr;  // an SQLite database, but not a store of this plugin
    REQUIRE(sqlite3_open(empty_db.c_str(), &raw) == SQLITE_OK);
    REQUIRE(sqlite3_exec(raw, "CREATE TABLE t(x)", nullptr, nullptr, nullptr) == SQLITE_OK);
    sqlite3_close(raw);
  }
  for (const auto& path : {text, empty_db}) {
    INFO(path);
    outpost::testing::FakeHost reader(plugin());
    reader.set_purpose(OUTPOST_PURPOSE_READ);
    CHECK(reader.create({{"path", path}}) == OUTPOST_E_CONFIG);
    CHECK(reader.errors().size() == 1);
  }
}
