// The netflow decoder on datagrams built by scapy (tests/vectors.py) and by hand (hostile
// cases), then the plugin through FakeHost: counters, held data, sampling, and templates that
// survive a restart through state_dir. The real exporter (softflowd) is in softflowd.sh.
#include <arpa/inet.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <outpost/testing.hpp>
#include <random>
#include <string>

#include "decoder.hpp"

using namespace outpost::netflow;
using outpost::testing::FakeHost;
namespace fs = std::filesystem;

namespace {

constexpr int64_t kT0 = 1700000000;  // export time of every vector
constexpr int64_t kNs = 1'000'000'000;
constexpr int64_t kMs = 1'000'000;

const std::map<std::string, std::vector<uint8_t>>& vectors() {
  static const auto v = [] {
    std::map<std::string, std::vector<uint8_t>> out;
    FILE* p = ::popen("/usr/bin/python3 " NETFLOW_TEST_DIR "/vectors.py 2>/dev/null", "r");
    REQUIRE(p != nullptr);
    std::string text;
    char buf[4096];
    while (std::fgets(buf, sizeof buf, p)) text += buf;
    REQUIRE(::pclose(p) == 0);
    std::size_t pos = 0;
    while (pos < text.size()) {
      const auto nl = text.find('\n', pos);
      const std::string line = text.substr(pos, nl - pos);
      pos = nl == std::string::npos ? text.size() : nl + 1;
      const auto sp = line.find(' ');
      if (sp == std::string::npos) continue;
      std::vector<uint8_t> bytes;
      for (std::size_t i = sp + 1; i + 1 < line.size(); i += 2)
        bytes.push_back(static_cast<uint8_t>(std::stoi(line.substr(i, 2), nullptr, 16)));
      out[line.substr(0, sp)] = bytes;
    }
    return out;
  }();
  return v;
}
const std::vector<uint8_t>& vec(const std::string& name) {
  auto it = vectors().find(name);
  if (it == vectors().end()) FAIL("no vector " << name << " (is python3-scapy installed?)");
  return it->second;
}

Exporter exporter(const char* ip) {
  outpost_sockaddr s{};
  if (::inet_pton(AF_INET, ip, s.addr) == 1)
    s.family = 4;
  else if (::inet_pton(AF_INET6, ip, s.addr) == 1)
    s.family = 6;
  return Exporter::from(s);
}
const Exporter kRouter = exporter("192.0.2.254");

std::string addr(const uint8_t* a, uint8_t family) {
  char buf[INET6_ADDRSTRLEN] = {};
  ::inet_ntop(family == 6 ? AF_INET6 : AF_INET, a, buf, sizeof buf);
  return buf;
}
std::string src(const outpost_flow& f) { return addr(f.src_addr, f.family); }
std::string dst(const outpost_flow& f) { return addr(f.dst_addr, f.family); }

uint64_t dropped(const Decoder& d, Drop r) {
  return d.totals().dropped[static_cast<std::size_t>(r)];
}
uint64_t total_dropped(const Decoder& d) {
  uint64_t n = 0;
  for (auto v : d.totals().dropped) n += v;
  return n;
}

std::vector<outpost_flow> decode(Decoder& d, const std::vector<uint8_t>& b,
                                 const Exporter& e = kRouter, int64_t now = 0) {
  std::vector<outpost_flow> out;
  d.decode(b, e, now, out);
  return out;
}

// Builders for hand-made datagrams.
struct Bytes {
  std::vector<uint8_t> b;
  Bytes& u8(unsigned v) {
    b.push_back(static_cast<uint8_t>(v));
    return *this;
  }
  Bytes& u16(unsigned v) { return u8(v >> 8).u8(v); }
  Bytes& u32(uint32_t v) { return u16(v >> 16).u16(v & 0xFFFF); }
  Bytes& raw(const std::vector<uint8_t>& v) {
    b.insert(b.end(), v.begin(), v.end());
    return *this;
  }
};
Bytes v9_header(uint32_t source = 1) {
  return std::move(Bytes{}.u16(9).u16(1).u32(100000).u32(kT0).u32(0).u32(source));
}
Bytes ipfix_header(uint16_t length, uint32_t domain = 1) {
  return std::move(Bytes{}.u16(10).u16(length).u32(kT0).u32(0).u32(domain));
}

}  // namespace

// ---- NetFlow v5 -------------------------------------------------------------------------------

TEST_CASE("v5: every field, times from the header's uptime and clock") {
  Decoder d;
  const auto f = decode(d, vec("v5_two"));
  REQUIRE(f.size() == 2);
  CHECK(f[0].family == 4);
  CHECK(src(f[0]) == "10.0.0.1");
  CHECK(dst(f[0]) == "10.0.0.2");
  CHECK(addr(f[0].exporter_addr, 4) == "192.0.2.254");
  CHECK(f[0].input_if == 3);
  CHECK(f[0].output_if == 4);
  CHECK(f[0].packets == 10);
  CHECK(f[0].bytes == 1500);
  CHECK(f[0].src_port == 1234);
  CHECK(f[0].dst_port == 80);
  CHECK(f[0].tcp_flags == 0x1b);
  CHECK(f[0].protocol == 6);
  CHECK(f[0].tos == 0x10);
  CHECK(f[0].sampling_rate == 1);
  // export at T0 + 0.5 s with uptime 100 s; the flow ran from uptime 90 s to 99 s
  CHECK(f[0].start_ns == kT0 * kNs + 500 * kMs - 10 * kNs);
  CHECK(f[0].end_ns == kT0 * kNs + 500 * kMs - 1 * kNs);
  CHECK(src(f[1]) == "192.0.2.1");
  CHECK(f[1].protocol == 17);
  CHECK(f[1].dst_port == 5353);
  CHECK(f[1].start_ns == f[1].end_ns);
  CHECK(total_dropped(d) == 0);
}

TEST_CASE("v5: the header's sampling interval scales bytes and packets") {
  Decoder d;
  const auto f = decode(d, vec("v5_sampled"));
  REQUIRE(f.size() == 1);
  CHECK(f[0].sampling_rate == 100);
  CHECK(f[0].packets == 200);
  CHECK(f[0].bytes == 20000);
}

// ---- NetFlow v9 -------------------------------------------------------------------------------

TEST_CASE("v9: template and data in one datagram") {
  Decoder d;
  const auto f = decode(d, vec("v9_tpl_data"));
  REQUIRE(f.size() == 2);
  CHECK(src(f[0]) == "10.0.0.1");
  CHECK(dst(f[0]) == "10.0.0.2");
  CHECK(f[0].bytes == 1500);
  CHECK(f[0].packets == 10);
  CHECK(f[0].src_port == 1234);
  CHECK(f[0].dst_port == 80);
  CHECK(f[0].protocol == 6);
  CHECK(f[0].tcp_flags == 0x1b);
  CHECK(f[0].tos == 0x10);
  CHECK(f[0].input_if == 3);
  CHECK(f[0].output_if == 4);
  CHECK(f[0].start_ns == (kT0 - 10) * kNs);
  CHECK(f[0].end_ns == (kT0 - 1) * kNs);
  CHECK(src(f[1]) == "10.0.0.5");
  CHECK(f[1].protocol == 17);
  CHECK(f[1].end_ns == kT0 * kNs - 100 * kMs);
  CHECK(d.template_count() == 1);
  CHECK(total_dropped(d) == 0);
  // the template stays: data alone decodes now
  CHECK(decode(d, vec("v9_data_only")).size() == 2);
}

TEST_CASE("v9: a flow that started before the uptime wrapped") {
  Decoder d;
  const auto f = decode(d, vec("v9_wrap"));
  REQUIRE(f.size() == 1);
  CHECK(f[0].start_ns == (kT0 - 10) * kNs);
  CHECK(f[0].end_ns == kT0 * kNs);
}

TEST_CASE("v9: IPv6 addresses; an IPv4 exporter appears v4-mapped in a v6 record") {
  Decoder d;
  const auto f = decode(d, vec("v9_v6"));
  REQUIRE(f.size() == 1);
  CHECK(f[0].family == 6);
  CHECK(src(f[0]) == "2001:db8::1");
  CHECK(dst(f[0]) == "2001:db8::2");
  CHECK(f[0].src_port == 5000);
  CHECK(f[0].dst_port == 6000);
  CHECK(f[0].bytes == 150);
  CHECK(f[0].exporter_family == 4);  // an IPv4 exporter of an IPv6 flow (ABI 1.1)
  CHECK(addr(f[0].exporter_addr, 4) == "192.0.2.254");
  const auto g = decode(d, vec("v9_v6"), exporter("2001:db8::fe"));
  REQUIRE(g.size() == 1);
  CHECK(g[0].exporter_family == 6);
  CHECK(addr(g[0].exporter_addr, 6) == "2001:db8::fe");
}

TEST_CASE("v9: data before its template is held, and decoded when the template comes") {
  Decoder d;
  CHECK(decode(d, vec("v9_data_only"), kRouter, 0).empty());
  CHECK(d.pending_count() == 1);
  SECTION("the template arrives in time") {
    const auto f = decode(d, vec("v9_tpl_only"), kRouter, 5 * kNs);
    REQUIRE(f.size() == 2);
    CHECK(src(f[0]) == "10.0.0.1");
    CHECK(f[0].start_ns == (kT0 - 10) * kNs);  // the held datagram's own header times
    CHECK(d.pending_count() == 0);
    CHECK(d.totals().released_sets == 1);
    CHECK(total_dropped(d) == 0);
  }
  SECTION("a template from another exporter does not release it") {
    CHECK(decode(d, vec("v9_tpl_only"), exporter("192.0.2.253"), 1).empty());
    CHECK(d.pending_count() == 1);
  }
  SECTION("too late: counted as no_template") {
    CHECK(decode(d, vec("v9_tpl_only"), kRouter, 31 * kNs).empty());
    CHECK(dropped(d, Drop::no_template) == 1);
    CHECK(d.pending_count() == 0);
  }
  SECTION("drop_pending at stop counts what is left") {
    d.drop_pending();
    CHECK(dropped(d, Drop::no_template) == 1);
  }
}

TEST_CASE("v9: the held queue is bounded") {
  Limits l;
  l.max_pending = 3;
  Decoder d(l);
  for (int i = 0; i < 5; ++i) decode(d, vec("v9_data_only"));
  CHECK(d.pending_count() == 3);
  CHECK(dropped(d, Drop::pending_full) == 2);
  CHECK(decode(d, vec("v9_tpl_only")).size() == 6);
  Limits none;
  none.max_pending = 0;
  Decoder z(none);
  decode(z, vec("v9_data_only"));
  CHECK(z.pending_count() == 0);
  CHECK(dropped(z, Drop::pending_full) == 1);
}

TEST_CASE("v9 options: the sampling interval scales that exporter and source id only") {
  Decoder d;
  const auto f = decode(d, vec("v9_sampling"));  // source id 8: options, template, data
  REQUIRE(f.size() == 2);
  CHECK(f[0].sampling_rate == 10);
  CHECK(f[0].bytes == 15000);
  CHECK(f[0].packets == 100);
  CHECK(d.totals().option_records == 1);
  // options first, data in a later datagram (source id 9)
  CHECK(decode(d, vec("v9_sampling_options_only")).empty());
  const auto g = decode(d, vec("v9_sampling_data_only"));
  REQUIRE(g.size() == 2);
  CHECK(g[1].sampling_rate == 10);
  CHECK(g[1].bytes == 3000);
  // source id 7, and source id 9 of another exporter: unsampled
  const auto h = decode(d, vec("v9_tpl_data"));
  REQUIRE(h.size() == 2);
  CHECK(h[0].sampling_rate == 1);
  const auto k = decode(d, vec("v9_sampling_data_only"), exporter("192.0.2.1"));
  REQUIRE(k.size() == 2);
  CHECK(k[0].sampling_rate == 1);
  CHECK(k[0].bytes == 1500);
}

TEST_CASE("v9 options: per-sampler rates (FLOW_SAMPLER_ID / RANDOM_INTERVAL)") {
  Limits l;
  l.default_sampling_rate = 7;  // for a record whose sampler was never announced
  Decoder d(l);
  const auto f = decode(d, vec("v9_samplers"));
  REQUIRE(f.size() == 3);
  CHECK(src(f[0]) == "10.0.1.1");
  CHECK(f[0].sampling_rate == 100);
  CHECK(f[0].bytes == 10000);
  CHECK(f[1].sampling_rate == 1000);
  CHECK(f[1].packets == 1000);
  CHECK(f[2].sampling_rate == 7);
  CHECK(d.totals().option_records == 2);
}

// ---- IPFIX ------------------------------------------------------------------------------------

TEST_CASE("IPFIX: template and data, absolute millisecond times, 8-byte counters") {
  Decoder d;
  const auto f = decode(d, vec("ipfix_basic"));
  REQUIRE(f.size() == 1);
  CHECK(src(f[0]) == "10.1.0.1");
  CHECK(dst(f[0]) == "10.1.0.2");
  CHECK(f[0].src_port == 40000);
  CHECK(f[0].dst_port == 443);
  CHECK(f[0].protocol == 6);
  CHECK(f[0].tcp_flags == 0x18);  // 2-byte tcpControlBits: the classic flags are the low byte
  CHECK(f[0].bytes == 123456);
  CHECK(f[0].packets == 100);
  CHECK(f[0].start_ns == kT0 * kNs - 2500 * kMs);
  CHECK(f[0].end_ns == kT0 * kNs - 1250 * kMs);
  CHECK(f[0].input_if == 7);
  CHECK(f[0].output_if == 8);
  CHECK(total_dropped(d) == 0);
}

TEST_CASE("IPFIX: template withdrawal") {
  Decoder d;
  decode(d, vec("ipfix_basic"));
  CHECK(d.template_count() == 1);
  decode(d, vec("ipfix_withdraw"));
  CHECK(d.template_count() == 0);
  CHECK(d.totals().templates_withdrawn == 1);
  CHECK(decode(d, vec("ipfix_data_only")).empty());
  CHECK(d.pending_count() == 1);
}

TEST_CASE("IPFIX: variable-length and unknown enterprise fields are skipped by their length") {
  Decoder d;
  const auto f = decode(d, vec("ipfix_varlen"));
  REQUIRE(f.size() == 2);
  CHECK(src(f[0]) == "10.2.0.1");
  CHECK(f[0].bytes == 1000);
  CHECK(f[0].packets == 10);
  CHECK(src(f[1]) == "10.2.0.3");  // after a 300-byte field in the 3-byte length form
  CHECK(f[1].bytes == 2000);
  CHECK(f[1].packets == 20);
  CHECK(total_dropped(d) == 0);
  Decoder t;
  CHECK(decode(t, vec("ipfix_varlen_truncated")).size() == 1);
  CHECK(dropped(t, Drop::truncated_record) == 1);
}

TEST_CASE(
    "IPFIX options: systemInitTimeMilliseconds dates uptime fields; interval/space sampling") {
  Decoder d;
  const auto f = decode(d, vec("ipfix_options"));
  REQUIRE(f.size() == 1);
  CHECK(f[0].start_ns == (kT0 - 100 + 5) * kNs);
  CHECK(f[0].end_ns == (kT0 - 100 + 6) * kNs);
  CHECK(f[0].sampling_rate == 10);  // 1 packet selected, 9 skipped
  CHECK(f[0].bytes == 7000);
  CHECK(f[0].packets == 70);
}

TEST_CASE("IPFIX: a biflow (RFC 5103) becomes two flows") {
  Decoder d;
  const auto f = decode(d, vec("ipfix_biflow"));
  REQUIRE(f.size() == 2);
  CHECK(src(f[0]) == "10.4.0.1");
  CHECK(f[0].dst_port == 80);
  CHECK(f[0].bytes == 1000);
  CHECK(src(f[1]) == "10.4.0.2");
  CHECK(dst(f[1]) == "10.4.0.1");
  CHECK(f[1].src_port == 80);
  CHECK(f[1].dst_port == 40000);
  CHECK(f[1].bytes == 500);
  CHECK(f[1].packets == 5);
}

TEST_CASE("IPFIX: IPv6 with times as microsecond deltas to the export time") {
  Decoder d;
  const auto f = decode(d, vec("ipfix_v6_deltas"));
  REQUIRE(f.size() == 1);
  CHECK(f[0].family == 6);
  CHECK(src(f[0]) == "2001:db8::1");
  CHECK(f[0].protocol == 58);
  CHECK(f[0].start_ns == (kT0 - 3) * kNs);
  CHECK(f[0].end_ns == (kT0 - 1) * kNs);
}

// ---- template cache and state file ------------------------------------------------------------

TEST_CASE("templates are keyed by exporter, version and domain; the cache is bounded (LRU)") {
  Limits l;
  l.max_templates = 2;
  Decoder d(l);
  decode(d, vec("v9_tpl_only"), exporter("192.0.2.1"));
  decode(d, vec("v9_tpl_only"), exporter("192.0.2.2"));
  CHECK(d.template_count() == 2);
  CHECK(decode(d, vec("v9_data_only"), exporter("192.0.2.1")).size() == 2);  // .1 is now recent
  decode(d, vec("v9_tpl_only"), exporter("192.0.2.3"));                      // evicts .2
  CHECK(d.template_count() == 2);
  CHECK(d.totals().templates_evicted == 1);
  CHECK(decode(d, vec("v9_data_only"), exporter("192.0.2.1")).size() == 2);
  CHECK(decode(d, vec("v9_data_only"), exporter("192.0.2.2")).empty());
  CHECK(decode(d, vec("v9_data_only"), exporter("192.0.2.3")).size() == 2);
}

TEST_CASE("state: save then load keeps templates, sampling and init times; garbage is refused") {
  Decoder a;
  decode(a, vec("v9_sampling"));
  decode(a, vec("ipfix_options"));
  decode(a, vec("ipfix_varlen"), exporter("2001:db8::9"));
  const std::string text = a.save();
  Decoder b;
  std::size_t bad = 99;
  CHECK(b.load(text, &bad) == a.template_count());
  CHECK(bad == 0);
  CHECK(b.save() == text);
  // data alone after the "restart", decoded with the sampling learned before
  auto v = vec("v9_data_only");
  v[19] = 8;  // from source id 8, whose options a saw
  const auto h = decode(b, v);
  REQUIRE(h.size() == 2);
  CHECK(h[0].sampling_rate == 10);
  CHECK(h[0].bytes == 15000);
  auto ip = vec("ipfix_options");  // keep only the data set (the last 4 + 24 bytes)
  std::vector<uint8_t> only(ip.begin(), ip.begin() + 16);
  const std::size_t tail = 4 + 24;
  only.insert(only.end(), ip.end() - static_cast<long>(tail), ip.end());
  only[2] = 0;
  only[3] = static_cast<uint8_t>(only.size());
  const auto k = decode(b, only);
  REQUIRE(k.size() == 1);
  CHECK(k[0].start_ns == (kT0 - 95) * kNs);
  CHECK(k[0].sampling_rate == 10);

  std::size_t bad2 = 0;
  Decoder e;
  CHECK(e.load("something else\nT 4 00 9 1 256 0 0 1 8:4:0\n", &bad2) == 0);
  CHECK(bad2 == 1);
  std::string broken =
      "outpost-netflow-state 1\n"
      "T 4 c0000201000000000000000000000000 9 1 256 0 0 2 8:4:0\n"   // count off
      "T 4 c0000201000000000000000000000000 9 1 12 0 0 1 8:4:0\n"    // id < 256
      "T 4 c0000201000000000000000000000000 9 1 256 0 0 1 8:0:0\n"   // empty record
      "T 5 c0000201000000000000000000000000 9 1 256 0 0 1 8:4:0\n"   // family
      "T 4 zz000201000000000000000000000000 9 1 256 0 0 1 8:4:0\n"   // hex
      "D 4 c0000201000000000000000000000000 9 1 10 -1 1 5\n"         // pair
      "T 4 c0000201000000000000000000000000 9 1 256 0 0 1 8:4:0\n";  // good
  CHECK(e.load(broken, &bad2) == 1);
  CHECK(bad2 == 6);
}

// ---- hostile input ----------------------------------------------------------------------------

TEST_CASE("hostile: every truncation of every vector is dropped or decoded, never overread") {
  for (const auto& [name, bytes] : vectors()) {
    INFO(name);
    for (std::size_t n = 0; n < bytes.size(); ++n) {
      Decoder d;
      std::vector<uint8_t> cut(bytes.begin(),
                               bytes.begin() + static_cast<long>(n));  // exact size for ASan
      std::vector<outpost_flow> out;
      d.decode(cut, kRouter, 0, out);
      CHECK(out.size() <= 3);
    }
  }
}

TEST_CASE("hostile: hand-built malformed datagrams are counted by reason") {
  Decoder d;
  std::vector<outpost_flow> out;
  auto feed = [&](const std::vector<uint8_t>& b) { return d.decode(b, kRouter, 0, out); };
  feed({0x00});
  CHECK(dropped(d, Drop::short_packet) == 1);
  feed({0x00, 0x07, 0, 0});
  CHECK(dropped(d, Drop::bad_version) == 1);
  feed(Bytes{}.u16(5).u16(30).raw(std::vector<uint8_t>(20 + 96, 0)).b);  // claims 30 records, has 2
  CHECK(dropped(d, Drop::bad_length) == 1);
  feed(Bytes{}.u16(9).u16(1).u32(1).b);  // shorter than a v9 header
  CHECK(dropped(d, Drop::short_packet) == 2);

  SECTION("sets: zero length, short length, past the end, reserved id") {
    feed(v9_header().u16(256).u16(0).u32(0).b);
    CHECK(dropped(d, Drop::bad_set) == 1);
    feed(v9_header().u16(256).u16(2).u32(0).b);
    CHECK(dropped(d, Drop::bad_set) == 2);
    feed(v9_header().u16(256).u16(400).u32(0).b);
    CHECK(dropped(d, Drop::bad_set) == 3);
    feed(v9_header().u16(5).u16(8).u32(0).b);
    CHECK(dropped(d, Drop::reserved_set) == 1);
    feed(v9_header().u16(256).u16(4).b);  // empty data set: nothing, not even held
    CHECK(d.pending_count() == 0);
    feed(v9_header().u16(0).u16(4).u8(0).u8(0).b);  // empty template set and 2 bytes of padding
    CHECK(total_dropped(d) == 3 + 1 + 1 + 1 + 2);
  }
  SECTION("templates: absurd count, empty records, low ids, bad options lengths") {
    feed(v9_header().u16(0).u16(12).u16(256).u16(60000).u16(8).u16(4).b);
    CHECK(dropped(d, Drop::bad_template) == 1);
    feed(v9_header().u16(0).u16(16).u16(256).u16(2).u16(8).u16(0).u16(12).u16(0).b);
    CHECK(dropped(d, Drop::bad_template) == 2);
    feed(v9_header().u16(0).u16(12).u16(12).u16(1).u16(8).u16(4).b);
    CHECK(dropped(d, Drop::bad_template) == 3);
    feed(v9_header()
             .u16(0)
             .u16(20)
             .u16(256)
             .u16(3)
             .u16(1)
             .u16(30000)
             .u16(2)
             .u16(30000)
             .u16(4)
             .u16(30000)
             .b);
    CHECK(dropped(d, Drop::bad_template) == 4);  // a record longer than any set
    feed(v9_header().u16(1).u16(14).u16(300).u16(3).u16(4).u16(34).u16(4).b);
    CHECK(dropped(d, Drop::bad_template) == 5);  // scope length not a multiple of 4
    feed(
        ipfix_header(16 + 18).u16(3).u16(18).u16(400).u16(2).u16(0).u16(8).u16(4).u16(34).u16(4).b);
    CHECK(dropped(d, Drop::bad_template) == 6);  // IPFIX options without a scope
    feed(ipfix_header(16 + 12).u16(2).u16(12).u16(400).u16(1).u16(0x8000 | 8).u16(4).b);
    CHECK(dropped(d, Drop::bad_template) == 7);  // enterprise bit but no room for the number
    CHECK(d.template_count() == 0);
    // a bad record whose extent is known does not spoil the next one in the set
    feed(v9_header().u16(0).u16(20).u16(12).u16(1).u16(8).u16(4).u16(256).u16(1).u16(8).u16(4).b);
    CHECK(d.template_count() == 1);
  }
  SECTION("IPFIX message length against the datagram") {
    feed(ipfix_header(200).u32(0).b);
    CHECK(dropped(d, Drop::bad_length) == 2);
    feed(ipfix_header(8).u32(0).b);
    CHECK(dropped(d, Drop::bad_length) == 3);
    // bytes after the message are not read as sets
    feed(ipfix_header(16).u16(256).u16(0).b);
    CHECK(dropped(d, Drop::bad_set) == 0);
  }
  SECTION("a one-byte record template cannot make a data set loop") {
    feed(v9_header().u16(0).u16(12).u16(256).u16(1).u16(4).u16(1).b);
    Bytes b = v9_header().u16(256).u16(4 + 4000);
    b.raw(std::vector<uint8_t>(4000, 6));
    out.clear();
    feed(b.b);
    CHECK(out.size() == 4000);
    CHECK(out[0].protocol == 6);
  }
}

TEST_CASE("hostile: random mutations of every vector, one decoder, bounded state") {
  Limits l;
  l.max_templates = 16;
  l.max_pending = 8;
  l.max_pending_bytes = 4096;
  Decoder d(l);
  std::mt19937 rng(12345);
  std::vector<std::vector<uint8_t>> seeds;
  for (const auto& [n, b] : vectors()) seeds.push_back(b);
  std::vector<outpost_flow> out;
  for (int i = 0; i < 20000; ++i) {
    auto b = seeds[rng() % seeds.size()];
    const int edits = 1 + static_cast<int>(rng() % 4);
    for (int e = 0; e < edits && !b.empty(); ++e) {
      const std::size_t at = rng() % b.size();
      switch (rng() % 4) {
        case 0:
          b[at] = static_cast<uint8_t>(rng());
          break;
        case 1:
          b[at] ^= static_cast<uint8_t>(1u << (rng() % 8));
          break;
        case 2:
          b.resize(at);
          break;
        default:
          b.insert(b.begin() + static_cast<long>(at), static_cast<uint8_t>(rng()));
          break;
      }
    }
    out.clear();
    const auto ex = exporter(i % 3 == 0 ? "192.0.2.1" : "192.0.2.2");
    d.decode(b, ex, int64_t{i} * kMs, out);
    REQUIRE(d.template_count() <= 16);
    REQUIRE(d.pending_count() <= 8);
  }
  Decoder e;
  std::size_t bad = 0;
  e.load(d.save(), &bad);
  CHECK(bad == 0);
  CHECK(e.save() == d.save());
}

// ---- the plugin, through FakeHost ------------------------------------------------------------

namespace {
const outpost_plugin_descriptor* plugin() {
  static const auto* d =
      outpost::testing::open_plugin(std::string(OUTPOST_TEST_PLUGIN_DIR) + "/outpost_netflow.so");
  return d;
}

outpost_status receive(FakeHost& h, const std::vector<std::vector<uint8_t>>& packets,
                       const char* from = "192.0.2.254") {
  std::vector<outpost_datagram> d(packets.size());
  for (std::size_t i = 0; i < packets.size(); ++i) {
    d[i].data = packets[i].data();
    d[i].len = packets[i].size();
    d[i].source.family = 4;
    ::inet_pton(AF_INET, from, d[i].source.addr);
    d[i].source.port = 40000;
  }
  return plugin()->receive(h.instance(), d.data(), d.size(), sizeof(outpost_datagram));
}

double last_value(const FakeHost& h, const std::string& name,
                  const std::map<std::string, std::string>& labels = {}) {
  const auto m = h.find(name, labels);
  return m.empty() ? -1 : m.back().value;
}

struct TempDir {
  fs::path path = fs::temp_directory_path() / ("netflow-test-" + std::to_string(::getpid()));
  TempDir() { fs::remove_all(path); }
  ~TempDir() { fs::remove_all(path); }
};
}  // namespace

TEST_CASE("plugin: flows and counters through the host; bad settings are refused") {
  REQUIRE(plugin() != nullptr);
  FakeHost h(plugin());
  REQUIRE(h.create({{"stats_interval", "0"}}) == OUTPOST_OK);
  REQUIRE(h.start() == OUTPOST_OK);
  REQUIRE(receive(h, {vec("v5_two"), vec("v9_tpl_data"), {0x00, 0x07, 1, 2}, vec("ipfix_basic")}) ==
          OUTPOST_OK);
  const auto flows = h.flows();
  CHECK(flows.size() == 5);
  CHECK(last_value(h, "netflow_packets_total", {{"exporter", "192.0.2.254"}, {"version", "5"}}) ==
        1);
  CHECK(last_value(h, "netflow_records_total", {{"exporter", "192.0.2.254"}, {"version", "9"}}) ==
        2);
  CHECK(last_value(h, "netflow_records_total", {{"exporter", "192.0.2.254"}, {"version", "10"}}) ==
        1);
  CHECK(last_value(h, "netflow_packets_total",
                   {{"exporter", "192.0.2.254"}, {"version", "other"}}) == 1);
  CHECK(last_value(h, "netflow_dropped_total", {{"reason", "bad_version"}}) == 1);
  CHECK(last_value(h, "netflow_dropped_total", {{"reason", "no_template"}}) == 0);
  CHECK(last_value(h, "netflow_templates") == 2);
  REQUIRE(receive(h, {vec("v9_data_only")}, "192.0.2.1") == OUTPOST_OK);  // no template from .1
  CHECK(last_value(h, "netflow_pending_sets") == 1);
  REQUIRE(h.stop() == OUTPOST_OK);
  CHECK(last_value(h, "netflow_dropped_total", {{"reason", "no_template"}}) == 1);
  CHECK(h.errors().empty());

  for (auto [k, v] :
       std::vector<std::pair<std::string, std::string>>{{"max_templates", "0"},
                                                        {"max_pending", "-1"},
                                                        {"default_sampling_rate", "0"},
                                                        {"pending_max_age", "2d"},
                                                        {"stats_interval", "2d"},
                                                        {"max_templates", "lots"},
                                                        {"stats_interval", "soon"}}) {
    FakeHost bad(plugin());
    INFO(k << "=" << v);
    CHECK(bad.create({{k, v}}) == OUTPOST_E_CONFIG);
    CHECK_FALSE(bad.errors().empty());
  }
}

TEST_CASE("plugin: counters wait for stats_interval, flows do not") {
  FakeHost h(plugin());
  REQUIRE(h.create({{"stats_interval", "1h"}}) == OUTPOST_OK);
  REQUIRE(h.start() == OUTPOST_OK);
  REQUIRE(receive(h, {vec("v5_two")}) == OUTPOST_OK);  // the first batch always reports
  REQUIRE(receive(h, {vec("v5_two")}) == OUTPOST_OK);
  CHECK(h.flows().size() == 4);
  CHECK(h.find("netflow_packets_total").size() == 1);
  h.stop();
  CHECK(last_value(h, "netflow_packets_total") == 2);
}

TEST_CASE("plugin: while no datagram comes, held sets still age out and counters still go out") {
  FakeHost h(plugin());
  REQUIRE(h.create({{"stats_interval", "100ms"}, {"pending_max_age", "200ms"}}) == OUTPOST_OK);
  REQUIRE(h.start() == OUTPOST_OK);
  REQUIRE(receive(h, {vec("v9_data_only")}) == OUTPOST_OK);
  CHECK(last_value(h, "netflow_pending_sets") == 1);
  REQUIRE(h.timers().size() == 1);
  CHECK(h.timers().begin()->second == 10'000'000);  // a tenth of the interval, at least 10 ms
  h.advance_clock(std::chrono::milliseconds(100));
  h.fire_timers();  // counters are due, the held set is not yet too old
  CHECK(last_value(h, "netflow_pending_sets") == 1);
  CHECK(last_value(h, "netflow_dropped_total", {{"reason", "no_template"}}) != 1);
  h.advance_clock(std::chrono::milliseconds(150));
  h.fire_timers();
  CHECK(last_value(h, "netflow_dropped_total", {{"reason", "no_template"}}) == 1);
  CHECK(last_value(h, "netflow_pending_sets") == 0);
  h.stop();
}

TEST_CASE("plugin: templates survive a restart through state_dir") {
  TempDir dir;
  const std::vector<std::pair<std::string, std::string>> cfg = {
      {"state_dir", (dir.path / "nf").string()}, {"stats_interval", "0"}};
  {
    FakeHost h(plugin());
    REQUIRE(h.create(cfg) == OUTPOST_OK);
    REQUIRE(h.start() == OUTPOST_OK);
    REQUIRE(receive(h, {vec("v9_tpl_only"), vec("ipfix_basic"), vec("v9_sampling_options_only")}) ==
            OUTPOST_OK);
    REQUIRE(h.stop() == OUTPOST_OK);
    CHECK(h.errors().empty());
  }
  REQUIRE(fs::exists(dir.path / "nf" / "netflow-state.txt"));
  FakeHost h(plugin());
  REQUIRE(h.create(cfg) == OUTPOST_OK);
  REQUIRE(h.start() == OUTPOST_OK);
  REQUIRE(receive(h, {vec("v9_data_only"), vec("ipfix_data_only"), vec("v9_sampling_data_only")}) ==
          OUTPOST_OK);
  const auto f = h.flows();
  REQUIRE(f.size() == 5);
  CHECK(f[0].bytes == 1500);
  CHECK(f[2].bytes == 123456);
  CHECK(f[3].sampling_rate == 10);  // the sampling announced before the restart
  CHECK(last_value(h, "netflow_pending_sets") == 0);
  bool logged = false;
  for (const auto& l : h.logs()) logged |= l.find("3 templates loaded") != std::string::npos;
  CHECK(logged);
  h.stop();

  SECTION("without state_dir nothing is kept") {
    FakeHost n(plugin());
    REQUIRE(n.create({{"stats_interval", "0"}}) == OUTPOST_OK);
    REQUIRE(n.start() == OUTPOST_OK);
    REQUIRE(receive(n, {vec("v9_data_only")}) == OUTPOST_OK);
    CHECK(n.flows().empty());
    n.stop();
  }
  SECTION("an unwritable state_dir is reported, stop still succeeds") {
    std::ofstream(dir.path / "file") << "x";
    FakeHost n(plugin());
    REQUIRE(n.create({{"state_dir", (dir.path / "file" / "sub").string()}}) == OUTPOST_OK);
    REQUIRE(n.start() == OUTPOST_OK);
    CHECK(n.stop() == OUTPOST_OK);
    REQUIRE(n.errors().size() == 1);
    CHECK(n.errors()[0].first == OUTPOST_E_UNAVAILABLE);
  }
}
