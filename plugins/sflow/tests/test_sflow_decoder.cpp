// Decoder unit tests: datagrams written by sflow_vectors.py (struct.pack per the sFlow v5 spec,
// sampled packets built by scapy), hand-built hostile datagrams, and every truncation and many
// corruptions of valid ones (ASan/UBSan builds catch any read past the buffer).
#include <arpa/inet.h>
#include <sys/socket.h>

#include <catch2/catch.hpp>
#include <cstdio>
#include <map>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "sflow_decoder.hpp"
#include "sflow_test_data.hpp"

using namespace outpost::sflow;
using namespace sflow_test;

namespace {

constexpr int64_t kTime = 1700000000000000000;

std::string addr_text(const uint8_t* a, uint8_t family) {
  char buf[INET6_ADDRSTRLEN] = {};
  ::inet_ntop(family == 4 ? AF_INET : AF_INET6, a, buf, sizeof buf);
  return buf;
}

// The decoded datagram as key=value pairs, the vocabulary of sflow_vectors.py's expectations.
std::map<std::string, std::string> describe(const Result& r, const Output& o) {
  std::map<std::string, std::string> m;
  auto put = [&](const std::string& k, auto v) { m[k] = std::to_string(v); };
  m["drop"] = std::string(drop_name(r.drop));
  if (r.header.agent.family != 0)
    m["agent"] = addr_text(r.header.agent.addr.data(), r.header.agent.family);
  put("sub_agent", r.header.agent.sub_agent);
  put("seq", r.header.sequence);
  put("flows", o.flows.size());
  put("counters", o.counters.size());
  for (std::size_t i = 0; i < o.flows.size(); ++i) {
    const auto& f = o.flows[i];
    const std::string p = "f" + std::to_string(i) + ".";
    put(p + "family", f.family);
    m[p + "src"] = addr_text(f.src_addr, f.family);
    m[p + "dst"] = addr_text(f.dst_addr, f.family);
    m[p + "exporter"] = addr_text(f.exporter_addr, outpost_flow_exporter_family(&f));
    put(p + "sport", f.src_port);
    put(p + "dport", f.dst_port);
    put(p + "proto", f.protocol);
    put(p + "flags", f.tcp_flags);
    put(p + "tos", f.tos);
    put(p + "bytes", f.bytes);
    put(p + "packets", f.packets);
    put(p + "rate", f.sampling_rate);
    put(p + "in", f.input_if);
    put(p + "out", f.output_if);
    put(p + "time", f.start_ns);
  }
  for (std::size_t i = 0; i < o.counters.size(); ++i) {
    const auto& c = o.counters[i];
    const std::string p = "c" + std::to_string(i) + ".";
    put(p + "ifindex", c.if_index);
    put(p + "speed", c.if_speed);
    put(p + "status", c.if_status);
    put(p + "in_octets", c.in_octets);
    put(p + "in_ucast", c.in_ucast_pkts);
    put(p + "in_errors", c.in_errors);
    put(p + "out_octets", c.out_octets);
    put(p + "out_discards", c.out_discards);
  }
  for (std::size_t i = 0; i < kSkipKinds; ++i)
    put("skip." + std::string(skip_name(static_cast<Skip>(i))), o.skipped[i]);
  return m;
}

std::vector<uint8_t> unhex(const std::string& h) {
  std::vector<uint8_t> out;
  for (std::size_t i = 0; i + 1 < h.size(); i += 2)
    out.push_back(static_cast<uint8_t>(std::stoi(h.substr(i, 2), nullptr, 16)));
  return out;
}

struct Case {
  std::string name;
  std::vector<uint8_t> data;
  std::map<std::string, std::string> expect;
};

std::vector<Case> load_cases() {
  const std::string cmd =
      "/usr/bin/python3 " OUTPOST_TEST_SOURCE_DIR "/plugins/sflow/tests/sflow_vectors.py";
  FILE* p = ::popen(cmd.c_str(), "r");
  REQUIRE(p != nullptr);
  std::string all;
  char buf[65536];
  std::size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) all.append(buf, n);
  REQUIRE(::pclose(p) == 0);
  std::vector<Case> cases;
  std::istringstream lines(all);
  std::string line;
  while (std::getline(lines, line)) {
    std::istringstream cols(line);
    std::string name, hex, expect;
    std::getline(cols, name, '\t');
    std::getline(cols, hex, '\t');
    std::getline(cols, expect);
    Case c{name, unhex(hex), {}};
    std::istringstream kv(expect);
    std::string item;
    while (kv >> item) {
      const auto eq = item.find('=');
      c.expect[item.substr(0, eq)] = item.substr(eq + 1);
    }
    cases.push_back(std::move(c));
  }
  return cases;
}

}  // namespace

TEST_CASE("sflow decoder: datagrams built from the spec with scapy packets") {
  const auto cases = load_cases();
  REQUIRE(cases.size() >= 28);
  for (const auto& c : cases) {
    Output out;
    const Result r = decode(c.data, kTime, out);
    const auto got = describe(r, out);
    for (const auto& [k, v] : c.expect) {
      INFO(c.name << ": " << k);
      auto it = got.find(k);
      REQUIRE(it != got.end());
      // Expectations may be decimal numbers or text; compare numbers numerically.
      const bool numeric = !v.empty() && v.find_first_not_of("0123456789") == std::string::npos;
      if (numeric)
        CHECK(std::stoull(it->second) == std::stoull(v));
      else
        CHECK(it->second == v);
    }
    if (r.drop != Drop::none) {  // all or nothing
      CHECK(out.flows.empty());
      CHECK(out.counters.empty());
    }
  }
}

TEST_CASE("sflow decoder: a drop leaves earlier output untouched") {
  Output out;
  REQUIRE(decode(one_flow_datagram(1), kTime, out).drop == Drop::none);
  REQUIRE(out.flows.size() == 1);
  auto bad = one_flow_datagram(2);
  bad.resize(bad.size() - 10);
  CHECK(decode(bad, kTime, out).drop == Drop::bad_sample_length);
  CHECK(out.flows.size() == 1);
  CHECK(out.flows[0].src_port == 12345);
  CHECK(out.flows[0].tcp_flags == 0x02);
  CHECK(out.flows[0].bytes == 58 * 10);
}

TEST_CASE("sflow decoder: every truncation and random corruption is safe") {
  const auto good = one_flow_datagram(7);
  for (std::size_t n = 0; n < good.size(); ++n) {
    Output out;
    const std::vector<uint8_t> cut(good.begin(), good.begin() + static_cast<std::ptrdiff_t>(n));
    const Result r = decode(cut, kTime, out);
    INFO(n);
    // Cutting into the sampled frame only shortens the header: the record length then no
    // longer fits, so every strict prefix must be refused.
    CHECK(r.drop != Drop::none);
    CHECK(out.flows.empty());
  }
  std::mt19937 rng(1234);
  for (int i = 0; i < 20000; ++i) {
    auto d = good;
    const int flips = 1 + static_cast<int>(rng() % 4);
    for (int k = 0; k < flips; ++k) d[rng() % d.size()] = static_cast<uint8_t>(rng());
    Output out;
    const Result r = decode(d, kTime, out);
    if (r.drop == Drop::none) {
      for (const auto& f : out.flows) {
        CHECK((f.family == 4 || f.family == 6));
        CHECK(f.sampling_rate != 0);
        CHECK(f.packets == f.sampling_rate);
      }
    } else {
      CHECK(out.flows.empty());
    }
  }
}

TEST_CASE("sflow decoder: Ethernet parsing stops at the sampled bytes") {
  auto f = tcp_frame();
  for (std::size_t n = 0; n <= f.size(); ++n) {
    outpost_flow fl{};
    const bool ok = parse_ethernet(std::span<const uint8_t>(f.data(), n), fl);
    CHECK(ok == (n >= 34));
    if (n >= 34 + 4) CHECK(fl.dst_port == 80);
    if (n < 34 + 4) CHECK(fl.dst_port == 0);
    if (n < 34 + 14) CHECK(fl.tcp_flags == 0);
  }
  // A frame that is all VLAN tags ends without reading past its end.
  std::vector<uint8_t> tags(14 + 4 * 50, 0);
  for (std::size_t off = 12; off + 2 <= tags.size(); off += 4)
    tags[off] = 0x81, tags[off + 1] = 0x00;
  outpost_flow fl{};
  CHECK_FALSE(parse_ethernet(tags, fl));
}

TEST_CASE("sflow sequence tracker: gaps, duplicates, late datagrams, restarts, wrap") {
  SequenceTracker t(2);
  Header h;
  h.agent.family = 4;
  h.agent.addr[0] = 10;
  auto at = [&](uint32_t seq, uint32_t up) {
    h.sequence = seq;
    h.uptime_ms = up;
    return t.update(h);
  };
  CHECK(at(100, 50000) == 0);
  CHECK(at(101, 50010) == 0);
  CHECK(at(105, 50020) == 3);  // 102..104 missing
  CHECK(at(105, 50020) == 0);  // duplicate
  CHECK(at(103, 50015) == 0);  // late
  CHECK(at(106, 50030) == 0);
  CHECK(at(1, 20) == 0);  // restart: sequence and uptime reset
  CHECK(at(3, 40) == 1);
  Header other = h;
  other.agent.sub_agent = 1;  // sub-agents count on their own
  other.sequence = 0xFFFFFFFE;
  CHECK(t.update(other) == 0);
  other.sequence = 1;  // wraps past 0xFFFFFFFF and 0
  CHECK(t.update(other) == 2);
  Header third = h;
  third.agent.addr[0] = 11;  // beyond max_agents: not tracked
  third.sequence = 1;
  CHECK(t.update(third) == 0);
  third.sequence = 10;
  CHECK(t.update(third) == 0);
  CHECK(t.agents() == 2);
}
