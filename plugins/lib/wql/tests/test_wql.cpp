// WQL profiles, instance values and event log bookmarks. Reference times come from Python's
// datetime (an independent calendar), not from this code.
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <outpost_lib/wql.hpp>

namespace wql = outpost::lib::wql;
namespace fs = std::filesystem;

namespace {

wql::Instance inst(std::vector<std::pair<std::string, std::string>> props) {
  wql::Instance i;
  i.class_name = "X";
  for (auto& [k, v] : props) i.properties.push_back(wql::Property{k, {v}, false});
  return i;
}

std::string label(const outpost::Labels& l, const std::string& k) {
  for (const auto& [a, b] : l)
    if (a == k) return b;
  return "<none>";
}

}  // namespace

TEST_CASE("wql: datetimes in both forms") {
  CHECK(wql::parse_datetime("20261205183000.000000+000") == 1796495400LL * 1'000'000'000);
  CHECK(wql::parse_datetime("20261205183000.500000+060") == 1796491800500000000LL);
  CHECK(wql::parse_datetime("2026-12-05T18:30:00Z") == 1796495400LL * 1'000'000'000);
  CHECK(wql::parse_datetime("2026-12-05T18:30:00.5+01:00") == 1796491800500000000LL);
  CHECK(wql::parse_datetime("2026-12-05T18:30:00") == 1796495400LL * 1'000'000'000);
  CHECK_FALSE(wql::parse_datetime("16010101000000.000000+000"));  // "never", out of range
  CHECK_FALSE(wql::parse_datetime("2026-13-05T18:30:00Z"));
  CHECK_FALSE(wql::parse_datetime("20261205183000.000000*000"));
  CHECK_FALSE(wql::parse_datetime("yesterday"));
  CHECK(wql::cim_datetime(1796491800500000000LL) == "20261205173000.500000+000");
  CHECK(wql::quote("it's \\ here") == "'it\\'s \\\\ here'");
}

TEST_CASE("wql: the shipped profiles load") {
  std::vector<std::string> errors;
  const auto set = wql::ProfileSet::load(
      {fs::path(OUTPOST_TEST_SOURCE_DIR) / "plugins/lib/wql/profiles"}, errors);
  for (const auto& e : errors) FAIL(e);
  for (const char* n : {"windows-os", "windows-disk", "windows-network", "windows-services",
                        "windows-processes", "windows-eventlog", "mssql"})
    CHECK(set.find(n) != nullptr);
  REQUIRE(set.find("windows-eventlog")->queries.at(0).eventlog);
}

TEST_CASE("wql: broken profiles say where") {
  auto err = [](const std::string& y) {
    try {
      wql::ProfileSet::parse(y, "p.yaml");
    } catch (const outpost::Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  CHECK(err("name: x\nqueries:\n  - name: a\n    wql: SELECT A FROM B\n    metrics:\n      - "
            "{name: m, property: A, colour: red}\n")
            .find("p.yaml: line 6, column 32: unknown key 'colour' in metric") == 0);
  CHECK(err("name: x\nqueries:\n  - name: a\n    wql: SELECT A FROM B\n").find("needs metrics") !=
        std::string::npos);
  CHECK(err("name: x\nqueries:\n  - name: a\n    eventlog: {logs: [\"Sys'tem\"]}\n")
            .find("plain text") != std::string::npos);
  CHECK(err("name: [\n").find("p.yaml: line") == 0);
  CHECK(err("name: x\nqueries:\n  - name: a\n    wql: S\n    metrics: [{name: m, property: "
            "'A B'}]\n")
            .find("WMI property name") != std::string::npos);
}

TEST_CASE("wql: a profile file broken by an edit keeps its last good version") {
  const fs::path dir = fs::temp_directory_path() / ("wql-edit-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  auto write = [&](const std::string& text) { std::ofstream(dir / "mine.yaml") << text; };
  write(
      "name: mine\nqueries:\n  - name: a\n    wql: SELECT A FROM B\n    metrics: [{name: m, "
      "property: A}]\n");
  std::vector<std::string> errors;
  const auto first = wql::ProfileSet::load({dir}, errors);
  REQUIRE(errors.empty());
  REQUIRE(first.find("mine") != nullptr);
  write("name: mine\nqueries: [\n");
  const auto second = wql::ProfileSet::load({dir}, errors, &first);
  REQUIRE(errors.size() == 1);
  CHECK(errors[0].find("last good version of mine is kept") != std::string::npos);
  REQUIRE(second.find("mine") != nullptr);
  CHECK(second.find("mine")->queries.at(0).wql == "SELECT A FROM B");
  errors.clear();
  const auto third = wql::ProfileSet::load({dir}, errors);  // no previous set: left out
  CHECK(errors.size() == 1);
  CHECK(third.find("mine") == nullptr);
  fs::remove_all(dir);
}

TEST_CASE("wql: instances become metrics: labels, scale, maps, ages, skips") {
  const auto p = wql::ProfileSet::parse(R"(name: t
queries:
  - name: q
    wql: SELECT Name, State, Free, Boot FROM Win32_X
    labels: {Name: service, Missing: other}
    metrics:
      - {name: up, property: State, map: {running: 1}, default: 0}
      - {name: free_bytes, property: Free, scale: 1024, type: counter}
      - {name: uptime, property: Boot, age: true}
)",
                                        "t.yaml");
  const int64_t now = 1796495400LL * 1'000'000'000;
  std::vector<wql::Instance> items = {
      inst({{"Name", "Spooler"},
            {"State", "Running"},
            {"Free", "10"},
            {"Boot", "20261205173000.000000+000"}}),
      inst({{"Name", "W32Time"}, {"State", "Stopped"}, {"Free", "n/a"}})};
  std::size_t skipped = 0;
  const auto m = wql::to_metrics(p.queries[0], items, {{"device", "win1"}}, now, &skipped);
  REQUIRE(m.size() == 4);
  CHECK(m[0].name == "up");
  CHECK(m[0].value == 1);
  CHECK(label(m[0].labels, "service") == "Spooler");
  CHECK(label(m[0].labels, "other") == "");
  CHECK(label(m[0].labels, "device") == "win1");
  CHECK(m[1].value == 10240);
  CHECK(m[1].type == OUTPOST_METRIC_COUNTER);
  CHECK(m[2].value == 3600);
  CHECK(m[3].name == "up");
  CHECK(m[3].value == 0);
  CHECK(skipped == 2);  // Free "n/a", Boot missing
}

TEST_CASE("wql: event log entries in order, each once, the rest deferred") {
  wql::EventLogSpec spec;
  spec.logs = {"System"};
  spec.max_level = wql::Level::warning;
  spec.exclude_ids = {7036};
  CHECK(wql::eventlog_wql(spec, "System", 41, 0, 100) ==
        "SELECT RecordNumber, Logfile, EventCode, EventIdentifier, EventType, SourceName, "
        "TimeGenerated, ComputerName, Message, CategoryString, User FROM Win32_NTLogEvent WHERE "
        "Logfile = 'System' AND RecordNumber > 41 AND RecordNumber <= 141 AND (EventType = 1 OR "
        "EventType = 2 OR EventType = 5)");
  CHECK(
      wql::eventlog_probe_wql("System", 141) ==
      "SELECT RecordNumber FROM Win32_NTLogEvent WHERE Logfile = 'System' AND RecordNumber = 141");
  CHECK(wql::cim_datetime(-1'500'000'000) == "19691231235958.500000+000");
  CHECK(wql::eventlog_wql(spec, "System", std::nullopt, 1796491800500000000LL)
            .find("TimeGenerated >= '20261205173000.500000+000'") != std::string::npos);
  auto ev = [](int rec, int type, int code) {
    return inst({{"RecordNumber", std::to_string(rec)},
                 {"EventType", std::to_string(type)},
                 {"EventCode", std::to_string(code)},
                 {"Logfile", "System"},
                 {"SourceName", "Disk"},
                 {"Message", "msg " + std::to_string(rec) + "\r\n"},
                 {"TimeGenerated", "20261205173000.000000+000"}});
  };
  // Newest first, as Windows enumerates; 44 repeats; 40 is not after the bookmark; 45 is
  // information (the server should not have sent it); 46 excluded by id.
  std::vector<wql::Instance> items = {ev(47, 1, 11), ev(46, 2, 7036), ev(45, 3, 1), ev(44, 2, 51),
                                      ev(44, 2, 51), ev(43, 1, 7),    ev(42, 2, 9), ev(40, 1, 1)};
  auto r = wql::to_events(spec, items, 41, {{"device", "win1"}}, "win1", 4);
  REQUIRE(r.events.size() == 3);  // 42, 43, 44; 45 filtered; 46, 47 deferred
  CHECK(r.new_bookmark == 45u);
  CHECK(r.deferred == 2);
  CHECK(r.filtered == 1);
  CHECK(label(r.events[0].attributes, "record") == "42");
  CHECK(r.events[0].severity == OUTPOST_SEV_WARNING);
  CHECK(r.events[1].severity == OUTPOST_SEV_ERROR);
  CHECK(r.events[0].message == "msg 42");
  CHECK(r.events[0].kind == "windows.eventlog");
  CHECK(r.events[0].time_ns == 1796491800LL * 1'000'000'000);
  auto r2 = wql::to_events(spec, items, 45, {}, "win1", 4);
  REQUIRE(r2.events.size() == 1);  // 46 filtered by id, 47 reported
  CHECK(r2.new_bookmark == 47u);
}

TEST_CASE("wql: bookmarks survive a restart") {
  const fs::path dir = fs::temp_directory_path() / ("wql-test-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  {
    wql::Bookmarks b(dir / "state" / "bookmarks");
    CHECK_FALSE(b.get("win1", "System"));
    b.set("win1", "System", 42);
    b.set("win1", "System", 40);  // never back
    b.set("win1", "Application", 7);
    b.save();
  }
  wql::Bookmarks again(dir / "state" / "bookmarks");
  CHECK(again.get("win1", "System") == 42u);
  CHECK(again.get("win1", "Application") == 7u);
  CHECK_FALSE(again.get("win2", "System"));
  fs::remove_all(dir);
}
