#include <arpa/inet.h>

#include <catch2/catch.hpp>
#include <map>
#include <outpost/testing.hpp>

#include "rollup.hpp"

using namespace outpost::flows;

namespace {
outpost_flow flow(const char* src, const char* dst, uint16_t sp, uint16_t dp, uint8_t proto,
                  uint64_t bytes, const char* exporter = "192.0.2.1", uint32_t in_if = 1) {
  outpost_flow f{};
  f.family = 4;
  ::inet_pton(AF_INET, src, f.src_addr);
  ::inet_pton(AF_INET, dst, f.dst_addr);
  ::inet_pton(AF_INET, exporter, f.exporter_addr);
  f.src_port = sp;
  f.dst_port = dp;
  f.protocol = proto;
  f.bytes = bytes;
  f.packets = bytes / 100 + 1;
  f.input_if = in_if;
  f.output_if = 2;
  return f;
}

double sum(const std::vector<SummaryRow>& rows, const std::string& name,
           const std::map<std::string, std::string>& labels = {}) {
  double s = 0;
  for (const auto& r : rows) {
    if (r.name != name) continue;
    bool ok = true;
    for (const auto& [k, v] : labels) {
      bool found = false;
      for (const auto& [rk, rv] : r.labels) found = found || (rk == k && rv == v);
      ok = ok && found;
    }
    if (ok) s += r.value;
  }
  return s;
}
}  // namespace

TEST_CASE("top-N plus other adds up to the total; memory stays bounded") {
  Rollup r({3, 100000, true});
  uint64_t total = 0;
  for (int i = 1; i <= 50; ++i) {
    const std::string src = "10.0.0." + std::to_string(i);
    r.add(flow(src.c_str(), "10.1.0.1", static_cast<uint16_t>(40000 + i), 443, 6,
               static_cast<uint64_t>(i) * 1000));
    total += static_cast<uint64_t>(i) * 1000;
  }
  const auto rows = r.take();
  CHECK(sum(rows, "flow_exporter_bytes") == Approx(total));
  CHECK(sum(rows, "flow_top_talker_bytes") == Approx(total));
  CHECK(sum(rows, "flow_top_talker_bytes", {{"src", "10.0.0.50"}}) == 50000);
  CHECK(sum(rows, "flow_top_talker_bytes", {{"src", "10.0.0.1"}}) == 0);  // not in the top 3
  CHECK(sum(rows, "flow_top_talker_bytes", {{"src", "other"}}) ==
        Approx(total - 50000 - 49000 - 48000));
  CHECK(sum(rows, "flow_application_bytes", {{"protocol", "6"}, {"port", "443"}}) == Approx(total));
  CHECK(sum(rows, "flow_protocol_bytes", {{"protocol", "6"}}) == Approx(total));
  CHECK(sum(rows, "flow_interface_bytes", {{"ifindex", "1"}, {"direction", "in"}}) ==
        Approx(total));
  CHECK(r.take().size() == 2);  // reset: only the duplicate and overflow counters

  Rollup small({5, 100, true});
  for (int i = 0; i < 1000; ++i) {
    const std::string src = "10." + std::to_string(i / 250) + "." + std::to_string(i % 250) + ".1";
    small.add(flow(src.c_str(), "10.9.9.9", 1234, 80, 17, 10));
  }
  const auto rows2 = small.take();
  CHECK(sum(rows2, "flow_top_talker_bytes") == 10000);  // nothing lost past max_keys
  CHECK(sum(rows2, "flow_rollup_overflow") > 0);
  CHECK(rows2.size() < 40);
}

TEST_CASE("a flow seen by two exporters, or at two interfaces, is counted once") {
  Rollup r({10, 100000, true});
  r.add(flow("10.0.0.1", "10.0.0.2", 1000, 80, 6, 5000, "192.0.2.1", 1));
  r.add(
      flow("10.0.0.1", "10.0.0.2", 1000, 80, 6, 5000, "192.0.2.2", 7));  // next router on the path
  r.add(flow("10.0.0.1", "10.0.0.2", 1000, 80, 6, 5000, "192.0.2.1", 3));  // egress of the first
  r.add(flow("10.0.0.1", "10.0.0.2", 1000, 80, 6, 700, "192.0.2.1", 1));   // same point: more data
  r.add(
      flow("10.0.0.2", "10.0.0.1", 80, 1000, 6, 900, "192.0.2.2", 7));  // the reply is its own flow
  const auto rows = r.take();
  CHECK(sum(rows, "flow_top_talker_bytes") == 5000 + 700 + 900);
  CHECK(sum(rows, "flow_duplicates") == 2);
  CHECK(r.duplicates() == 2);

  Rollup off({10, 100000, false});
  off.add(flow("10.0.0.1", "10.0.0.2", 1000, 80, 6, 5000, "192.0.2.1", 1));
  off.add(flow("10.0.0.1", "10.0.0.2", 1000, 80, 6, 5000, "192.0.2.2", 7));
  CHECK(sum(off.take(), "flow_top_talker_bytes") == 10000);
}

TEST_CASE("the plugin consumes flows and emits summaries, the last one on stop") {
  const auto* d =
      outpost::testing::open_plugin(OUTPOST_TEST_PLUGIN_DIR "/outpost_flow_aggregator.so");
  REQUIRE(d);
  CHECK((d->kinds & OUTPOST_KIND_PROCESSOR));
  CHECK((d->flags & OUTPOST_FLAG_CONSUMES_FLOWS));
  outpost::testing::FakeHost h(d);
  REQUIRE(h.create({{"interval", "1h"}, {"top_n", "2"}}) == OUTPOST_OK);
  REQUIRE(h.start() == OUTPOST_OK);
  std::vector<outpost_flow> fs = {flow("10.0.0.1", "10.0.0.9", 40001, 53, 17, 100),
                                  flow("10.0.0.2", "10.0.0.9", 40002, 53, 17, 200),
                                  flow("10.0.0.3", "10.0.0.9", 40003, 53, 17, 300)};
  outpost_batch b = outpost_batch_make();
  b.flows = fs.data();
  b.flow_count = fs.size();
  REQUIRE(d->process(h.instance(), &b) == OUTPOST_OK);
  CHECK(h.metrics().empty());  // nothing before the interval ends
  REQUIRE(h.stop() == OUTPOST_OK);
  CHECK(h.find("flow_exporter_bytes", {{"exporter", "192.0.2.1"}}).at(0).value == 600);
  CHECK(h.find("flow_top_talker_bytes", {{"src", "other"}}).at(0).value == 100);
  CHECK(h.find("flow_application_bytes", {{"port", "53"}}).at(0).value == 600);
  outpost::testing::FakeHost bad(d);
  CHECK(bad.create({{"top_n", "0"}}) == OUTPOST_E_CONFIG);
}

TEST_CASE("summaries equal a record-by-record count, whatever the tuple table holds") {
  // Many records over a few hundred 5-tuples, repeated, some at another egress interface; no
  // duplicates (one exporter, one ingress per tuple), so every record counts. A plain map over
  // the records is the reference, for a tuple table big enough for all (max_keys 100000) and
  // one that overflows (max_keys 100: most records then take the direct path).
  std::vector<outpost_flow> records;
  std::map<std::string, double> talkers, ifaces, apps;
  double total = 0;
  uint32_t seed = 12345;
  auto next = [&seed] { return seed = seed * 1103515245u + 12345u; };
  for (int i = 0; i < 20000; ++i) {
    const uint32_t t = next() % 300;
    const std::string src = "10.0." + std::to_string(t % 7) + "." + std::to_string(t % 250);
    outpost_flow f =
        flow(src.c_str(), "10.9.0.1", static_cast<uint16_t>(1024 + t), t % 3 ? 443 : 53,
             t % 3 ? 6 : 17, 40 + next() % 1500, "192.0.2.1", 1 + t % 4);
    f.output_if = 10 + next() % 3;  // the same tuple leaves by more than one interface
    records.push_back(f);
    total += static_cast<double>(f.bytes);
    talkers[src] += static_cast<double>(f.bytes);
    ifaces[std::to_string(f.input_if) + "/in"] += static_cast<double>(f.bytes);
    ifaces[std::to_string(f.output_if) + "/out"] += static_cast<double>(f.bytes);
    apps[std::to_string(f.protocol) + "/" + std::to_string(service_port(f))] +=
        static_cast<double>(f.bytes);
  }
  for (const std::size_t keys : {std::size_t{100000}, std::size_t{100}}) {
    Rollup r({10000, keys, true});
    for (const auto& f : records) r.add(f);
    const auto rows = r.take();
    CHECK(sum(rows, "flow_exporter_bytes") == Approx(total));
    CHECK(sum(rows, "flow_exporter_flows") == Approx(20000));
    CHECK(sum(rows, "flow_duplicates") == 0);
    if (keys == 100) {
      CHECK(sum(rows, "flow_top_talker_bytes") == Approx(total));  // capped tables: other
      continue;
    }
    for (const auto& [src, bytes] : talkers)
      CHECK(sum(rows, "flow_top_talker_bytes", {{"src", src}}) == Approx(bytes));
    for (const auto& [key, bytes] : ifaces) {
      const auto slash = key.find('/');
      CHECK(sum(rows, "flow_interface_bytes",
                {{"ifindex", key.substr(0, slash)}, {"direction", key.substr(slash + 1)}}) ==
            Approx(bytes));
    }
    for (const auto& [key, bytes] : apps) {
      const auto slash = key.find('/');
      CHECK(sum(rows, "flow_application_bytes",
                {{"protocol", key.substr(0, slash)}, {"port", key.substr(slash + 1)}}) ==
            Approx(bytes));
    }
  }
}
