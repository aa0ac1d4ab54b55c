// What the command line prints without a plugin of its own: the core's JSON lines writer (held
// byte for byte to the sinks' encoder, which the core no longer links) and `outpost query`'s
// table and JSON lines over rows of any columns.
#include <catch2/catch.hpp>
#include <cmath>
#include <jsonl/jsonl.hpp>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

#include "cli/json.hpp"
#include "cli/query.hpp"

namespace json = outpost::core::json;
namespace cli = outpost::core::cli;

namespace {
outpost_str s(const std::string& x) { return {x.data(), x.size()}; }
}  // namespace

TEST_CASE("the core's JSON lines are the file sink's, byte for byte") {
  const std::vector<std::string> texts = {"",
                                          "plain",
                                          "q\"uote \\ back",
                                          "ctl \x01\x1f\b\f\n\r\t",
                                          "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80",
                                          "bad \xff \xc0\xaf \xed\xa0\x80 \xe2\x82",
                                          "\x7f"};
  for (const auto& t : texts) {
    std::string a, b;
    json::append_string(a, t);
    outpost::jsonl::append_string(b, t);
    CHECK(a == b);
  }
  for (const double v :
       {0.0, -0.0, 1.0, 0.1, 1e300, -2.5e-300, 123456789.125,
        std::numeric_limits<double>::quiet_NaN(), std::numeric_limits<double>::infinity()}) {
    std::string a, b;
    json::append_number(a, v);
    outpost::jsonl::append_number(b, v);
    CHECK(a == b);
  }
  const std::string k1 = "z", k2 = "a", k3 = "z", v1 = "1", v2 = "2\n", v3 = "last";
  const outpost_kv labels[] = {{s(k1), s(v1)}, {s(k2), s(v2)}, {s(k3), s(v3)}};
  const std::string name = "m\"x";
  for (const uint32_t type : {OUTPOST_METRIC_GAUGE, OUTPOST_METRIC_COUNTER}) {
    const outpost_metric m{s(name), labels, 3, 1.5, 0, type, 0};
    std::string a, b;
    json::append_metric(a, m, 42);
    outpost::jsonl::append_metric(b, m, 42);
    CHECK(a == b);
  }
  const std::string src = "gw", kind = "syslog", msg = "bad \xff";
  const outpost_event e{7, OUTPOST_SEV_ERROR, 0, s(src), s(kind), s(msg), labels, 3};
  std::string a, b;
  json::append_event(a, e, 0);
  outpost::jsonl::append_event(b, e, 0);
  CHECK(a == b);
  outpost_flow f{};
  f.family = 6;
  f.src_addr[15] = 1;
  f.dst_addr[0] = 0x20;
  f.dst_addr[1] = 0x01;
  f.exporter_family = 4;
  f.exporter_addr[0] = 192;
  f.bytes = UINT64_MAX;
  f.packets = 3;
  f.src_port = 65535;
  f.tcp_flags = 0x12;
  f.sampling_rate = 1000;
  for (const uint8_t fam : {uint8_t{6}, uint8_t{4}, uint8_t{0}}) {
    f.family = fam;
    a.clear();
    b.clear();
    json::append_flow(a, f);
    outpost::jsonl::append_flow(b, f);
    CHECK(a == b);
  }
}

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
