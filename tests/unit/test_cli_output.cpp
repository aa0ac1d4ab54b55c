// What the command line prints without a plugin of its own: the core's JSON lines writer, held
// byte for byte to the sinks' encoder, which the core no longer links.
#include <catch2/catch.hpp>
#include <cmath>
#include <jsonl/jsonl.hpp>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

#include "cli/json.hpp"

namespace json = outpost::core::json;

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
