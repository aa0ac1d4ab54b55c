// What the command line prints without a plugin of its own: `outpost query`'s table and JSON
// lines over rows of any columns (the JSON encoding itself is the SDK's, sdk/jsonl).
#include <catch2/catch.hpp>
#include <cmath>
#include <jsonl/jsonl.hpp>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

#include "cli/query.hpp"

namespace cli = outpost::core::cli;

namespace {
outpost_str s(const std::string& x) { return {x.data(), x.size()}; }
}  // namespace

namespace {
cli::QueryValue text(std::string t) {
  cli::QueryValue v;
  v.type = OUTPOST_VALUE_TEXT;
  v.text = std::move(t);
  return v;
}
cli::QueryValue num(uint32_t type, int64_t i, double d = 0) {
  cli::QueryValue v;
  v.type = type;
  v.i = i;
  v.d = d;
  return v;
}
cli::QueryValue labels(std::vector<std::pair<std::string, std::string>> l) {
  cli::QueryValue v;
  v.type = OUTPOST_VALUE_LABELS;
  v.labels = std::move(l);
  return v;
}
}  // namespace

TEST_CASE("query rows print as JSON lines and as a table, whatever their columns") {
  std::vector<cli::QueryRow> rows;
  rows.push_back({OUTPOST_READ_SERIES,
                  {{"name", text("icmp_up")},
                   {"labels", labels({{"device", "gw"}, {"site", "l\"ab"}})},
                   {"last", num(OUTPOST_VALUE_DOUBLE, 0, 1)},
                   {"last_time_ns", num(OUTPOST_VALUE_TIME, 1'700'000'000'123'000'000)},
                   {"samples", num(OUTPOST_VALUE_INT, 12)}}});
  rows.push_back({OUTPOST_READ_SERIES,
                  {{"name", text("rtt")},
                   {"labels", labels({})},
                   {"last", num(OUTPOST_VALUE_DOUBLE, 0, std::nan(""))},
                   {"last_time_ns", num(OUTPOST_VALUE_TIME, 0)},
                   {"samples", num(OUTPOST_VALUE_NULL, 0)}}});
  rows.push_back({OUTPOST_READ_EVENTS,
                  {{"time_ns", num(OUTPOST_VALUE_TIME, 1'700'000'000'000'000'000)},
                   {"severity", num(OUTPOST_VALUE_SEVERITY, OUTPOST_SEV_WARNING)},
                   {"message", text("down")}}});
  std::ostringstream js;
  cli::print_json(rows, js);
  CHECK(js.str() ==
        "{\"name\":\"icmp_up\",\"labels\":{\"device\":\"gw\",\"site\":\"l\\\"ab\"},\"last\":1,"
        "\"last_time_ns\":1700000000123000000,\"samples\":12}\n"
        "{\"name\":\"rtt\",\"labels\":{},\"last\":null,\"last_time_ns\":0,\"samples\":null}\n"
        "{\"time_ns\":1700000000000000000,\"severity\":4,\"message\":\"down\"}\n");

  std::ostringstream table;
  cli::print_table(rows, OUTPOST_READ_SUMMARY, table);
  CHECK(table.str() ==
        "== series ==\n"
        "NAME                              LAST  LAST_TIME                 SAMPLES\n"
        "icmp_up{device=\"gw\",site=\"l\"ab\"}  1     2023-11-14T22:13:20.123Z  12\n"
        "rtt                               NaN   1970-01-01T00:00:00.000Z  -\n"
        "(2 series)\n"
        "== recent events ==\n"
        "TIME                      SEVERITY  MESSAGE\n"
        "2023-11-14T22:13:20.000Z  warning   down\n"
        "(1 event)\n");

  std::ostringstream none;
  cli::print_table({}, OUTPOST_READ_SAMPLES, none);
  CHECK(none.str() == "(0 samples)\n");
}

TEST_CASE("a row from a plugin is copied whole, whatever its column size") {
  const std::string n = "name", v = "up", lk = "device", lv = "gw";
  const outpost_kv kv{s(lk), s(lv)};
  struct Wider {  // a newer plugin's column, with a member this host does not know
    outpost_column c;
    uint64_t extra;
  } cols[2] = {};
  cols[0].c.name = s(n);
  cols[0].c.type = OUTPOST_VALUE_TEXT;
  cols[0].c.text = s(v);
  cols[1].c.name = s(lk);
  cols[1].c.type = OUTPOST_VALUE_LABELS;
  cols[1].c.labels = &kv;
  cols[1].c.label_count = 1;
  outpost_read_row row{};
  row.struct_size = sizeof row;
  row.column_size = sizeof(Wider);
  row.kind = OUTPOST_READ_SAMPLES;
  row.columns = &cols[0].c;
  row.column_count = 2;
  const cli::QueryRow r = cli::copy_row(row);
  CHECK(r.kind == OUTPOST_READ_SAMPLES);
  REQUIRE(r.columns.size() == 2);
  CHECK(r.columns[0].first == "name");
  CHECK(r.columns[0].second.text == "up");
  CHECK(r.columns[1].second.labels ==
        std::vector<std::pair<std::string, std::string>>{{"device", "gw"}});
}
