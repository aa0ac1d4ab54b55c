// The sflow plugin as the engine loads it (the .so, through FakeHost): batches of datagrams in,
// flows and metrics out in one emit per receive call, drops counted by reason, sequence gaps.
#include <catch2/catch.hpp>
#include <chrono>
#include <outpost/testing.hpp>
#include <string>
#include <vector>

#include "sflow_test_data.hpp"

using outpost::testing::FakeHost;
using namespace sflow_test;

namespace {

const outpost_plugin_descriptor* plugin() {
  static const outpost_plugin_descriptor* d =
      outpost::testing::open_plugin(OUTPOST_TEST_PLUGIN_DIR "/outpost_sflow.so");
  return d;
}

void feed(FakeHost& h, const std::vector<std::vector<uint8_t>>& dgrams,
          int64_t t = 1700000000000000000) {
  std::vector<outpost_datagram> v;
  for (const auto& d : dgrams) {
    outpost_datagram x{};
    x.data = d.data();
    x.len = d.size();
    x.source.family = 4;
    x.source.addr[0] = 192, x.source.addr[1] = 0, x.source.addr[2] = 2, x.source.addr[3] = 99;
    x.source.port = 40000;
    x.recv_time_ns = t;
    v.push_back(x);
  }
  REQUIRE(h.descriptor()->receive(h.instance(), v.data(), v.size(), sizeof(outpost_datagram)) ==
          OUTPOST_OK);
}

double value(const FakeHost& h, const std::string& name,
             const std::map<std::string, std::string>& l = {}) {
  const auto m = h.find(name, l);
  return m.empty() ? -1 : m.back().value;
}

}  // namespace

TEST_CASE("sflow plugin: descriptor and settings") {
  const auto* d = plugin();
  REQUIRE(d != nullptr);
  CHECK(outpost::testing::str(d->name) == "sflow");
  CHECK((d->kinds & OUTPOST_KIND_LISTENER) != 0);
  std::vector<std::string> names;
  for (std::size_t i = 0; i < d->config_field_count; ++i)
    names.push_back(outpost::testing::str(d->config_fields[i].name));
  CHECK(names ==
        std::vector<std::string>{"emit_flows", "emit_counters", "stats_interval", "max_agents"});
  FakeHost h(d);
  CHECK(h.create({{"max_agents", "0"}}) == OUTPOST_E_CONFIG);
}

TEST_CASE("sflow plugin: flows, interface counters, drops and losses") {
  FakeHost h(plugin());
  REQUIRE(h.create({{"stats_interval", "0"}}) == OUTPOST_OK);
  REQUIRE(h.start() == OUTPOST_OK);
  auto truncated = one_flow_datagram(3);
  truncated.resize(20);
  // seq 1, 2, then 5: two datagrams lost; a truncated one and a non-sFlow one dropped.
  feed(h, {one_flow_datagram(1),
           one_flow_datagram(2),
           truncated,
           {1, 2, 3, 4, 5, 6, 7, 8},
           one_flow_datagram(5),
           counter_datagram(6, 17, 5000000000ull)});
  const auto flows = h.flows();
  REQUIRE(flows.size() == 3);
  for (const auto& f : flows) {
    CHECK(f.family == 4);
    CHECK(f.exporter_addr[0] == 127);  // the agent, not the UDP source 192.0.2.99
    CHECK(f.packets == 10);
    CHECK(f.bytes == 580);
    CHECK(f.sampling_rate == 10);
    CHECK(f.start_ns == 1700000000000000000);
    CHECK(f.input_if == 1);
    CHECK(f.output_if == 2);
  }
  const std::map<std::string, std::string> ifl{{"agent", "127.0.0.1"}, {"ifindex", "17"}};
  CHECK(value(h, "sflow_if_in_octets", ifl) == 5000000000.0);
  CHECK(h.find("sflow_if_in_octets", ifl).back().type == OUTPOST_METRIC_COUNTER);
  CHECK(value(h, "sflow_if_out_ucast_pkts", ifl) == 20);
  CHECK(value(h, "sflow_if_speed", ifl) == 1000000000.0);
  CHECK(h.find("sflow_if_speed", ifl).back().type == OUTPOST_METRIC_GAUGE);
  CHECK(value(h, "sflow_if_oper_status", ifl) == 1);
  CHECK(value(h, "sflow_dropped_total", {{"reason", "truncated"}}) == 1);
  CHECK(value(h, "sflow_dropped_total", {{"reason", "bad_version"}}) == 1);
  CHECK(value(h, "sflow_lost_datagrams", {{"agent", "127.0.0.1"}, {"sub_agent", "0"}}) == 2);
  CHECK(value(h, "sflow_datagrams_total") == 4);
  CHECK(value(h, "sflow_flows_total") == 3);
  CHECK(h.errors().empty());
}

TEST_CASE("sflow plugin: one emit per receive call; switches") {
  FakeHost h(plugin());
  REQUIRE(h.create({{"emit_counters", "false"}, {"stats_interval", "1h"}}) == OUTPOST_OK);
  std::vector<std::vector<uint8_t>> batch;
  for (uint32_t s = 1; s <= 64; ++s) batch.push_back(one_flow_datagram(s));
  batch.push_back(counter_datagram(65, 3, 1));
  feed(h, batch);
  CHECK(h.flows().size() == 64);
  CHECK(h.find("sflow_if_in_octets").empty());
  // Own counters: once with the first batch, then not before the interval, then at stop.
  CHECK(value(h, "sflow_datagrams_total") == 65);
  h.clear();
  feed(h, {one_flow_datagram(70)});
  CHECK(h.flows().size() == 1);
  CHECK(h.find("sflow_datagrams_total").empty());
  REQUIRE(h.stop() == OUTPOST_OK);
  CHECK(value(h, "sflow_datagrams_total") == 66);
  CHECK(value(h, "sflow_lost_datagrams", {{"agent", "127.0.0.1"}}) == 4);
}

TEST_CASE("sflow plugin: its counters leave on time while no datagram comes") {
  FakeHost h(plugin());
  REQUIRE(h.create({{"stats_interval", "10s"}}) == OUTPOST_OK);
  REQUIRE(h.start() == OUTPOST_OK);
  REQUIRE(h.timers().size() == 1);
  CHECK(h.timers().begin()->second == 1'000'000'000);  // a tenth of the interval
  feed(h, {one_flow_datagram(1)});
  CHECK(value(h, "sflow_datagrams_total") == 1);  // the first batch reports
  feed(h, {one_flow_datagram(2)});
  h.clear();
  h.advance_clock(std::chrono::seconds(5));
  h.fire_timers();
  CHECK(h.find("sflow_datagrams_total").empty());  // not yet due
  h.advance_clock(std::chrono::seconds(6));
  h.fire_timers();
  CHECK(value(h, "sflow_datagrams_total") == 2);  // the second datagram, with no traffic since
  h.clear();
  h.advance_clock(std::chrono::seconds(11));
  h.fire_timers();
  CHECK(h.find("sflow_datagrams_total").empty());  // nothing changed: nothing to say
  REQUIRE(h.stop() == OUTPOST_OK);
  CHECK(h.fire_timers() == 0);  // no timer after stop
  CHECK(h.violations().empty());
}

TEST_CASE("sflow plugin: counters an agent marks unknown (all ones) are left out") {
  FakeHost h(plugin());
  REQUIRE(h.create({{"stats_interval", "0"}}) == OUTPOST_OK);
  feed(h, {ovs_counter_datagram(1, 8, false), ovs_counter_datagram(2, 9, true)});
  const std::map<std::string, std::string> a{{"agent", "127.0.0.1"}, {"ifindex", "8"}};
  const std::map<std::string, std::string> b{{"agent", "127.0.0.1"}, {"ifindex", "9"}};
  CHECK(value(h, "sflow_if_in_octets", a) == 4242);
  CHECK(value(h, "sflow_if_in_ucast_pkts", a) == 31);
  CHECK(value(h, "sflow_if_in_multicast_pkts", a) == 2);
  CHECK(value(h, "sflow_if_in_discards", a) == 0);
  CHECK(value(h, "sflow_if_out_octets", a) == 5151);
  CHECK(value(h, "sflow_if_out_ucast_pkts", a) == 47);
  CHECK(value(h, "sflow_if_speed", a) == 10000000000.0);
  for (const char* n : {"sflow_if_in_broadcast_pkts", "sflow_if_in_unknown_protos",
                        "sflow_if_out_multicast_pkts", "sflow_if_out_broadcast_pkts"}) {
    INFO(n);
    CHECK(h.find(n).empty());
  }
  // The 64-bit octet counter's unknown value (2^64-1) likewise; the rest of its record stays.
  CHECK(h.find("sflow_if_out_octets", b).empty());
  CHECK(value(h, "sflow_if_in_octets", b) == 4242);
  CHECK(value(h, "sflow_if_out_ucast_pkts", b) == 47);
}
