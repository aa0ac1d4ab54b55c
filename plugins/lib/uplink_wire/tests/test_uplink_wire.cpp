// The uplink wire format: exact round trips, the epoch protocol (commit, rollback, reset),
// de-duplication, hostile bodies, element sizes, the zstd frame as the zstd tool reads it, and
// the size of realistic SNMP traffic.
#include <zstd.h>

#include <bit>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <limits>
#include <outpost_lib/uplink_wire.hpp>
#include <random>

#include "../../../../sdk/jsonl/testing/sink_testing.hpp"

using namespace outpost::lib::wire;
using sink_testing::BatchBuilder;
using sink_testing::Pairs;

namespace {

uint64_t bits(double v) { return std::bit_cast<uint64_t>(v); }
double from_bits(uint64_t b) { return std::bit_cast<double>(b); }

outpost::SpoolInfo spool(std::string_view id, std::vector<outpost::SpoolRange> ranges) {
  outpost::SpoolInfo info;
  info.spool_id = id;
  info.ranges = std::move(ranges);
  return info;
}

struct Series {
  std::string name;
  Pairs labels;
  uint32_t type;
};

// What a batch holds, as the decoder must give it back.
struct Expected {
  std::vector<Metric> metrics;
  std::vector<Event> events;
  std::vector<outpost_flow> flows;
};

void require_equal(const Result& r, const Expected& e) {
  REQUIRE(r.metrics.size() == e.metrics.size());
  for (std::size_t i = 0; i < e.metrics.size(); ++i) {
    const Metric& a = r.metrics[i];
    const Metric& b = e.metrics[i];
    INFO("metric " << i << " " << b.name << " value bits " << std::hex << bits(b.value));
    REQUIRE(a.name == b.name);
    REQUIRE(a.labels == b.labels);
    REQUIRE(a.type == b.type);
    REQUIRE(a.time_ns == b.time_ns);
    REQUIRE(bits(a.value) == bits(b.value));
  }
  REQUIRE(r.events.size() == e.events.size());
  for (std::size_t i = 0; i < e.events.size(); ++i) {
    const Event& a = r.events[i];
    const Event& b = e.events[i];
    REQUIRE(a.time_ns == b.time_ns);
    REQUIRE(a.severity == b.severity);
    REQUIRE(a.source == b.source);
    REQUIRE(a.kind == b.kind);
    REQUIRE(a.message == b.message);
    REQUIRE(a.attributes == b.attributes);
  }
  REQUIRE(r.flows.size() == e.flows.size());
  for (std::size_t i = 0; i < e.flows.size(); ++i) {
    REQUIRE(std::memcmp(&r.flows[i], &e.flows[i], sizeof(outpost_flow)) == 0);
  }
}

// Random batches over a pool of series, with every awkward value a double can hold.
class Generator {
 public:
  explicit Generator(uint64_t seed) : rng_(seed) {
    for (int i = 0; i < 60; ++i) add_series();
  }

  // Fills b and returns what it holds.
  Expected batch(BatchBuilder& b) {
    Expected e;
    if (pick(4) == 0) add_series();
    const std::size_t n = pick(120);
    int64_t t = 1'700'000'000'000'000'000 + static_cast<int64_t>(pick(1'000'000'000));
    for (std::size_t i = 0; i < n; ++i) {
      const std::size_t s = pick(pool_.size());
      if (pick(3) == 0) t += static_cast<int64_t>(pick(5'000'000'000)) - 1'000'000'000;
      const int64_t time = pick(50) == 0 ? 0 : pick(50) == 0 ? -t : t;
      const double v = value_for(s);
      b.metric(pool_[s].name, pool_[s].labels, v, time, pool_[s].type);
      e.metrics.push_back(Metric{pool_[s].name, pool_[s].labels, v, time, pool_[s].type});
    }
    for (std::size_t i = 0, k = pick(6); i < k; ++i) {
      Event ev;
      ev.time_ns = static_cast<int64_t>(rng_());
      ev.severity = static_cast<uint32_t>(pick(8));
      ev.source = text();
      ev.kind = pick(2) ? "availability" : text();
      ev.message = text(200);
      for (std::size_t a = 0, na = pick(4); a < na; ++a) ev.attributes.emplace_back(text(), text());
      b.event(ev.source, ev.kind, ev.message, ev.severity, ev.attributes, ev.time_ns);
      e.events.push_back(ev);
    }
    for (std::size_t i = 0, k = pick(8); i < k; ++i) {
      outpost_flow f{};
      f.start_ns = static_cast<int64_t>(rng_());
      f.end_ns = pick(2) ? f.start_ns + static_cast<int64_t>(pick(1'000'000'000))
                         : static_cast<int64_t>(rng_());
      f.family = pick(3) ? 4 : 6;
      f.exporter_family = static_cast<uint8_t>(pick(3) == 0 ? 0 : pick(2) ? 4 : 6);
      for (auto* a : {f.src_addr, f.dst_addr, f.exporter_addr}) {
        const std::size_t len = f.family == 4 && pick(5) ? 4 : 16;
        for (std::size_t j = 0; j < len; ++j) a[j] = static_cast<uint8_t>(rng_());
      }
      f.protocol = static_cast<uint8_t>(rng_());
      f.tcp_flags = static_cast<uint8_t>(rng_());
      f.tos = static_cast<uint8_t>(rng_());
      f.src_port = static_cast<uint16_t>(rng_());
      f.dst_port = static_cast<uint16_t>(rng_());
      f.input_if = static_cast<uint32_t>(rng_());
      f.output_if = static_cast<uint32_t>(rng_());
      f.sampling_rate = static_cast<uint32_t>(rng_());
      f.bytes = rng_();
      f.packets = rng_() >> pick(64);
      b.flow(f);
      e.flows.push_back(f);
    }
    return e;
  }

 private:
  std::size_t pick(std::size_t n) { return n == 0 ? 0 : static_cast<std::size_t>(rng_() % n); }
  std::string text(std::size_t max = 12) {
    std::string s(pick(max + 1), ' ');
    for (auto& c : s) c = pick(4) ? static_cast<char>('a' + pick(26)) : static_cast<char>(rng_());
    return s;
  }
  void add_series() {
    Series s;
    s.name = pick(3) ? "if_" + text(8) : text(30);
    for (std::size_t i = 0, n = pick(5); i < n; ++i) s.labels.emplace_back(text(), text());
    s.type = pick(2) ? OUTPOST_METRIC_COUNTER : OUTPOST_METRIC_GAUGE;
    pool_.push_back(std::move(s));
    last_.push_back(0);
  }
  double value_for(std::size_t s) {
    double& last = last_[s];
    const double two64 = 18446744073709551616.0;
    switch (pick(16)) {
      case 0:
        return last = from_bits(0x7FF0000000000000ull | (rng_() & 0x000FFFFFFFFFFFFFull) | 1);
      case 1:
        return last = from_bits(0xFFF8000000000000ull | (rng_() & 0xFFFF));
      case 2:
        return last = -0.0;
      case 3:
        return last = pick(2) ? INFINITY : -INFINITY;
      case 4:
        return last = two64 - 2048.0 * static_cast<double>(1 + pick(1000));  // near 2^64
      case 5:
        return last = static_cast<double>(pick(1000));  // a wrapped or restarted counter
      case 6:
        return last = from_bits(rng_());  // any bits at all
      case 7:
        return last = pick(2) ? 9223372036854775808.0 : -9223372036854775808.0;
      case 8:
        return last = static_cast<double>(static_cast<int64_t>(rng_())) / 7.0;
      case 9:
        return last = -static_cast<double>(pick(1'000'000));
      default:  // a counter going up, sometimes down
        if (!std::isfinite(last) || last < 0 || last > 1e18)
          last = static_cast<double>(pick(1 << 20));
        return last += static_cast<double>(pick(3'000'000)) - (pick(10) == 0 ? 4e6 : 0.0);
    }
  }
  std::mt19937_64 rng_;
  std::vector<Series> pool_;
  std::vector<double> last_;
};

struct Snapshot {
  DecoderStats stats;
  std::vector<HighWater> marks;
  bool operator==(const Snapshot& o) const {
    return stats.spools == o.stats.spools && stats.epochs == o.stats.epochs &&
           stats.series == o.stats.series && stats.dictionary_bytes == o.stats.dictionary_bytes &&
           marks == o.marks;
  }
};
Snapshot snapshot(const Decoder& d) { return Snapshot{d.stats(), d.high_water()}; }

Result decode(Decoder& d, const std::string& body) { return d.decode(bytes_of(body)); }

// A body from a header and hand-made columns, for the cases an Encoder never writes.
std::string handmade(Header h, const std::vector<std::string>& columns) {
  std::string raw;
  for (const auto& c : columns) {
    std::string len;
    uint64_t v = c.size();
    while (v >= 0x80) {
      len += static_cast<char>((v & 0x7F) | 0x80);
      v >>= 7;
    }
    len += static_cast<char>(v);
    raw += len + c;
  }
  h.raw_size = raw.size();
  std::string body;
  write_header(h, body);
  std::string frame(ZSTD_compressBound(raw.size()), '\0');
  frame.resize(ZSTD_compress(frame.data(), frame.size(), raw.data(), raw.size(), 3));
  return body + frame;
}

}  // namespace

TEST_CASE("randomized batches round-trip exactly over consecutive bodies of one epoch") {
  for (uint64_t seed : {1u, 2u, 3u, 4u}) {
    Generator gen(seed);
    Encoder enc("engine-" + std::to_string(seed));
    Decoder dec;
    uint64_t seq = 0;
    for (int n = 0; n < 8; ++n) {
      BatchBuilder b;
      const Expected e = gen.batch(b);
      const std::string body = enc.encode(b.batch(), spool("sp", {{"snmp", seq + 1, seq + 10}}));
      seq += 10;
      const Result r = decode(dec, body);
      INFO("seed " << seed << " body " << n << ": " << r.error);
      REQUIRE(r.status == Status::ok);
      REQUIRE(r.header.engine == "engine-" + std::to_string(seed));
      REQUIRE(r.header.epoch == enc.stats().epoch);
      REQUIRE(r.header.ranges == std::vector<Range>{{"snmp", seq - 9, seq}});
      require_equal(r, e);
      enc.commit();
      REQUIRE(enc.stats().series_known == dec.stats().series);
    }
  }
}

TEST_CASE("a series is described once per epoch: later bodies name it by its id") {
  Encoder enc("e");
  Decoder dec;
  BatchBuilder b;
  for (int i = 0; i < 200; ++i)
    b.metric("ifHCInOctets",
             {{"device", "router-with-a-long-name"}, {"ifName", "Gi0/" + std::to_string(i)}},
             1e9 + i, 1'700'000'000'000'000'000, OUTPOST_METRIC_COUNTER);
  const std::string first = enc.encode(b.batch(), spool("", {}));
  REQUIRE(decode(dec, first).status == Status::ok);
  enc.commit();
  const std::string second = enc.encode(b.batch(), spool("", {}));
  const Result r = decode(dec, second);
  REQUIRE(r.status == Status::ok);
  REQUIRE(r.header.new_series == 0);
  REQUIRE(r.header.base_series == 200);
  REQUIRE(second.size() < first.size() / 4);
}

TEST_CASE("rollback forgets the last body: its series are described again") {
  Generator gen(7);
  Encoder enc("e");
  Decoder dec;
  BatchBuilder a;
  const Expected ea = gen.batch(a);
  (void)enc.encode(a.batch(), spool("sp", {{"s", 1, 1}}));  // lost on the way
  REQUIRE(enc.stats().series_pending > 0);
  enc.rollback();
  REQUIRE(enc.stats().series_known == 0);
  REQUIRE(enc.stats().series_pending == 0);
  const std::string again = enc.encode(a.batch(), spool("sp", {{"s", 1, 1}}));
  const Result r = decode(dec, again);
  REQUIRE(r.status == Status::ok);
  require_equal(r, ea);
  enc.commit();

  SECTION("an encode without commit or rollback of the one before rolls it back") {
    BatchBuilder b, c;
    (void)gen.batch(b);
    const Expected ec = gen.batch(c);
    (void)enc.encode(b.batch(), spool("sp", {{"s", 2, 2}}));
    const std::string body = enc.encode(c.batch(), spool("sp", {{"s", 3, 3}}));
    const Result rc = decode(dec, body);
    REQUIRE(rc.status == Status::ok);
    require_equal(rc, ec);
  }
  SECTION("a body applied whose answer was lost comes back a duplicate; commit, then go on") {
    BatchBuilder b, c;
    (void)gen.batch(b);
    const Expected ec = gen.batch(c);
    const std::string body = enc.encode(b.batch(), spool("sp", {{"s", 2, 5}}));
    REQUIRE(decode(dec, body).status == Status::ok);
    enc.rollback();  // the sender never heard the 200
    const std::string resent = enc.encode(b.batch(), spool("sp", {{"s", 2, 5}}));
    REQUIRE(resent == body);
    REQUIRE(decode(dec, resent).status == Status::duplicate);
    enc.commit();
    const Result rc = decode(dec, enc.encode(c.batch(), spool("sp", {{"s", 6, 6}})));
    REQUIRE(rc.status == Status::ok);
    require_equal(rc, ec);
  }
  SECTION("without de-duplication a body applied twice is caught by the batch count") {
    BatchBuilder b, c;
    (void)gen.batch(b);
    const Expected ec = gen.batch(c);
    REQUIRE(decode(dec, enc.encode(b.batch(), spool("sp", {}))).status == Status::ok);
    enc.rollback();
    REQUIRE(decode(dec, enc.encode(b.batch(), spool("sp", {}))).status == Status::unknown_epoch);
    enc.reset();
    const Result rc = decode(dec, enc.encode(c.batch(), spool("sp", {})));
    REQUIRE(rc.status == Status::ok);
    require_equal(rc, ec);
  }
}

TEST_CASE("an epoch the receiver does not know is unknown_epoch; reset starts a new one") {
  Generator gen(11);
  Encoder enc("e");
  Decoder first;
  for (int i = 0; i < 3; ++i) {
    BatchBuilder b;
    (void)gen.batch(b);
    REQUIRE(decode(first, enc.encode(b.batch(), spool("sp", {{"s", 1u + i, 1u + i}}))).status ==
            Status::ok);
    enc.commit();
  }
  Decoder restarted;
  BatchBuilder b;
  const Expected e = gen.batch(b);
  const uint64_t old_epoch = enc.stats().epoch;
  const Result r = decode(restarted, enc.encode(b.batch(), spool("sp", {{"s", 4, 4}})));
  REQUIRE(r.status == Status::unknown_epoch);
  REQUIRE_THAT(r.error, Catch::Contains("not known"));
  REQUIRE(restarted.stats().series == 0);
  REQUIRE(restarted.high_water().empty());
  enc.reset();
  REQUIRE(enc.stats().epoch != old_epoch);
  REQUIRE(enc.stats().series_known == 0);
  const Result again = decode(restarted, enc.encode(b.batch(), spool("sp", {{"s", 4, 4}})));
  REQUIRE(again.status == Status::ok);
  require_equal(again, e);

  SECTION("a count that differs from the receiver's is unknown_epoch too") {
    enc.commit();
    BatchBuilder c;
    (void)gen.batch(c);
    const std::string body = enc.encode(c.batch(), spool("sp", {{"s", 5, 5}}));
    Header h;
    std::string err;
    REQUIRE(parse_header(bytes_of(body), h, err));
    h.base_series += 1;
    std::string forged;
    write_header(h, forged);
    forged += body.substr(h.frame_offset);
    const Result rf = decode(restarted, forged);
    REQUIRE(rf.status == Status::unknown_epoch);
    REQUIRE_THAT(rf.error, Catch::Contains("the sender has"));
  }
}

TEST_CASE("duplicates are told from the header; overlapping ranges are malformed") {
  Generator gen(5);
  Encoder enc("e");
  Decoder dec;
  BatchBuilder b;
  (void)gen.batch(b);
  const std::string body = enc.encode(b.batch(), spool("sp", {{"snmp", 10, 20}, {"icmp", 5, 6}}));
  REQUIRE(decode(dec, body).status == Status::ok);
  enc.commit();
  const Snapshot before = snapshot(dec);
  const Result dup = decode(dec, body);
  REQUIRE(dup.status == Status::duplicate);
  REQUIRE(dup.metrics.empty());
  REQUIRE(snapshot(dec) == before);
  // The header alone decides: a duplicate whose frame is cut off is still a duplicate.
  REQUIRE(decode(dec, body.substr(0, body.size() - 3)).status == Status::duplicate);

  BatchBuilder c;
  (void)gen.batch(c);
  auto try_ranges = [&](std::vector<outpost::SpoolRange> ranges) {
    const Result r = decode(dec, enc.encode(c.batch(), spool("sp", ranges)));
    enc.rollback();
    return r;
  };
  SECTION("a range straddling the high-water mark") {
    const Result r = try_ranges({{"snmp", 15, 30}, {"icmp", 7, 7}});
    REQUIRE(r.status == Status::malformed);
    REQUIRE_THAT(r.error, Catch::Contains("overlap those accepted up to 20"));
    REQUIRE(snapshot(dec) == before);
  }
  SECTION("some streams accepted before, others not") {
    const Result r = try_ranges({{"snmp", 10, 20}, {"icmp", 7, 7}});
    REQUIRE(r.status == Status::malformed);
    REQUIRE_THAT(r.error, Catch::Contains("accepted before and the others not"));
    REQUIRE(snapshot(dec) == before);
  }
  SECTION("a gap (records evicted from the spool) and a new stream are fine") {
    const Result r = try_ranges({{"snmp", 40, 50}, {"tcp", 1, 1}});
    REQUIRE(r.status == Status::ok);
    REQUIRE(dec.high_water() ==
            std::vector<HighWater>{{"sp", "icmp", 6}, {"sp", "snmp", 50}, {"sp", "tcp", 1}});
  }
  SECTION("another spool's sequence numbers are its own") {
    const Result r = try_ranges({{"snmp", 10, 20}});
    REQUIRE(r.status == Status::duplicate);
    const Result other = decode(dec, enc.encode(c.batch(), spool("other", {{"snmp", 10, 20}})));
    REQUIRE(other.status == Status::unknown_epoch);  // same epoch, but unknown under that spool
  }
  SECTION("high-water marks restored after a restart still catch the duplicate") {
    Decoder restarted;
    restarted.restore_high_water(dec.high_water());
    REQUIRE(decode(restarted, body).status == Status::duplicate);
  }
}

TEST_CASE("a body truncated at any byte is malformed and changes nothing") {
  Generator gen(21);
  Encoder enc("e");
  Decoder dec;
  BatchBuilder a, b;
  (void)gen.batch(a);
  REQUIRE(decode(dec, enc.encode(a.batch(), spool("sp", {{"s", 1, 1}}))).status == Status::ok);
  enc.commit();
  const Expected e = gen.batch(b);
  const std::string body = enc.encode(b.batch(), spool("sp", {{"s", 2, 2}}));
  const Snapshot before = snapshot(dec);
  for (std::size_t n = 0; n < body.size(); ++n) {
    const Result r = decode(dec, body.substr(0, n));
    INFO("cut at " << n << " of " << body.size() << ": " << r.error);
    REQUIRE(r.status == Status::malformed);
    REQUIRE_FALSE(r.error.empty());
    REQUIRE(snapshot(dec) == before);
  }
  REQUIRE(decode(dec, body + "x").status == Status::malformed);
  const Result whole = decode(dec, body);
  REQUIRE(whole.status == Status::ok);
  require_equal(whole, e);
}

TEST_CASE("random bit flips never crash and never change state unless the body decodes") {
  Generator gen(33);
  Encoder enc("e");
  BatchBuilder a, b;
  (void)gen.batch(a);
  const std::string first = enc.encode(a.batch(), spool("sp", {{"s", 1, 1}}));
  enc.commit();
  const Expected e = gen.batch(b);
  const std::string body = enc.encode(b.batch(), spool("sp", {{"s", 2, 2}}));
  std::mt19937_64 rng(99);
  std::size_t ok = 0, malformed = 0;
  for (int i = 0; i < 1500; ++i) {
    Decoder dec;
    REQUIRE(decode(dec, first).status == Status::ok);
    const Snapshot before = snapshot(dec);
    std::string bad = body;
    for (std::size_t k = 0, n = 1 + rng() % 3; k < n; ++k)
      bad[rng() % bad.size()] ^= static_cast<char>(1u << (rng() % 8));
    const Result r = decode(dec, bad);
    INFO("flip " << i << ": " << status_name(r.status) << " " << r.error);
    if (r.status == Status::ok) {
      require_equal(r, e);  // a flip in the engine name or the ranges: the items are intact
      ++ok;
    } else {
      REQUIRE(snapshot(dec) == before);
      REQUIRE_FALSE(r.error.empty());
      if (r.status == Status::malformed) ++malformed;
    }
  }
  REQUIRE(malformed > 1000);
}

TEST_CASE("hand-made bodies: each inconsistency has its own reason") {
  Header h;
  h.epoch = 42;
  h.engine = "x";
  std::vector<std::string> cols(13);
  cols[0] = std::string(1, '\0');  // no strings
  Decoder dec;
  auto reason = [&](const std::string& body) {
    const Result r = decode(dec, body);
    REQUIRE(r.status == Status::malformed);
    REQUIRE(dec.stats().series == 0);
    return r.error;
  };
  SECTION("an empty body is fine") { REQUIRE(decode(dec, handmade(h, cols)).status == Status::ok); }
  SECTION("bad magic and version") {
    std::string body = handmade(h, cols);
    body[0] = 'X';
    REQUIRE_THAT(reason(body), Catch::Contains("bad magic"));
    body = handmade(h, cols);
    body[4] = 2;
    REQUIRE_THAT(reason(body), Catch::Contains("format version 2 not supported"));
    body = handmade(h, cols);
    body[5] = 1;
    REQUIRE_THAT(reason(body), Catch::Contains("unknown flags"));
  }
  SECTION("a metric naming a series that is not defined") {
    h.metric_count = 1;
    cols[2] = std::string(1, '\x02');  // id 1, but no series
    cols[3] = std::string(1, '\0');
    cols[4] = std::string(1, '\0');
    cols[5] = std::string(1, '\0');
    REQUIRE_THAT(reason(handmade(h, cols)), Catch::Contains("series id 1 out of range"));
  }
  SECTION("a varint longer than 64 bits") {
    h.metric_count = 1;
    cols[2] = std::string(11, '\xff');
    REQUIRE_THAT(reason(handmade(h, cols)), Catch::Contains("metric ids: varint over 64 bits"));
  }
  SECTION("counts that disagree with the columns") {
    h.event_count = 1;
    REQUIRE_THAT(reason(handmade(h, cols)), Catch::Contains("event times: truncated"));
    h.event_count = 0;
    cols[9] = "ab";
    REQUIRE_THAT(reason(handmade(h, cols)), Catch::Contains("flow times: 2 bytes left over"));
  }
  SECTION("a decompressed size over the limit, whatever the header claims") {
    Decoder small(Limits{.max_raw_bytes = 8});
    const Result r = small.decode(bytes_of(handmade(h, cols)));
    REQUIRE(r.status == Status::malformed);
    REQUIRE_THAT(r.error, Catch::Contains("over the limit 8"));
    std::string body = handmade(h, cols);
    Header hh;
    std::string err;
    REQUIRE(parse_header(bytes_of(body), hh, err));
    hh.raw_size = 1000;
    std::string forged;
    write_header(hh, forged);
    REQUIRE_THAT(reason(forged + body.substr(hh.frame_offset)),
                 Catch::Contains("content size differs"));
    hh.raw_size = kMaxRawBytes + 1;
    forged.clear();
    write_header(hh, forged);
    REQUIRE_THAT(reason(forged + body.substr(hh.frame_offset)),
                 Catch::Contains("decompressed size 67108865 over 67108864"));
  }
  SECTION("a difference to a value that is not an integer") {
    h.new_series = 1;
    h.metric_count = 1;
    cols[0] = std::string("\x01\x01m", 3);
    cols[1] = std::string("\0\0\0", 3);
    cols[2] = std::string(1, '\0');
    cols[3] = std::string(1, '\0');
    cols[4] = std::string(1, '\x01');
    cols[5] = std::string(1, '\x02');
    REQUIRE_THAT(reason(handmade(h, cols)), Catch::Contains("not an integer"));
    cols[4] = std::string(1, '\x03');
    REQUIRE_THAT(reason(handmade(h, cols)), Catch::Contains("series 0: no previous value"));
    cols[4] = std::string(1, '\x0d');
    REQUIRE_THAT(reason(handmade(h, cols)), Catch::Contains("unknown value tag 13"));
  }
}

TEST_CASE("bounded: epochs per spool, series in total") {
  Generator gen(3);
  SECTION("the oldest epoch of a spool goes when a fifth one starts") {
    Decoder dec;
    std::vector<std::unique_ptr<Encoder>> encs;
    for (int i = 0; i < 5; ++i) {
      encs.push_back(std::make_unique<Encoder>("e"));
      BatchBuilder b;
      (void)gen.batch(b);
      REQUIRE(decode(dec, encs.back()->encode(b.batch(), spool("sp", {}))).status == Status::ok);
      encs.back()->commit();
    }
    REQUIRE(dec.stats().epochs == 4);
    REQUIRE(dec.stats().epochs_evicted == 1);
    BatchBuilder b;
    (void)gen.batch(b);
    REQUIRE(decode(dec, encs[0]->encode(b.batch(), spool("sp", {}))).status ==
            Status::unknown_epoch);
    REQUIRE(decode(dec, encs[4]->encode(b.batch(), spool("sp", {}))).status == Status::ok);
  }
  SECTION("a body that would pass the series limit alone is refused; others are evicted") {
    Decoder dec(Limits{.max_series = 100});
    BatchBuilder big, small;
    for (int i = 0; i < 101; ++i) big.metric("m" + std::to_string(i), {}, i);
    for (int i = 0; i < 60; ++i) small.metric("m" + std::to_string(i), {}, i);
    Encoder e1("a"), e2("b");
    const Result r = decode(dec, e1.encode(big.batch(), spool("", {})));
    REQUIRE(r.status == Status::malformed);
    REQUIRE_THAT(r.error, Catch::Contains("101 series, over the limit 100"));
    REQUIRE(decode(dec, e1.encode(small.batch(), spool("", {}))).status == Status::ok);
    e1.commit();
    REQUIRE(decode(dec, e2.encode(small.batch(), spool("b", {}))).status == Status::ok);
    REQUIRE(dec.stats().series == 60);
    REQUIRE(dec.stats().epochs_evicted == 1);
  }
}

TEST_CASE("elements are read with the sizes the batch carries") {
  struct BigMetric {
    outpost_metric m;
    char future[24];
  };
  struct BigEvent {
    outpost_event e;
    char future[8];
  };
  struct BigFlow {
    outpost_flow f;
    char future[40];
  };
  const outpost_kv label{{"k", 1}, {"v", 1}};
  BigMetric ms[2]{};
  ms[0].m = outpost_metric{{"a", 1}, &label, 1, 1.5, 10, OUTPOST_METRIC_GAUGE, 0};
  ms[1].m = outpost_metric{{"b", 1}, nullptr, 0, 7, 20, OUTPOST_METRIC_COUNTER, 0};
  std::memset(ms[0].future, 0x55, sizeof ms[0].future);
  BigEvent es[1]{};
  es[0].e = outpost_event{5, 3, 0, {"s", 1}, {"k", 1}, {"m", 1}, &label, 1};
  BigFlow fs[2]{};
  fs[0].f.family = 4;
  fs[0].f.bytes = 100;
  fs[1].f.family = 6;
  fs[1].f.src_addr[15] = 1;
  fs[1].f.packets = 9;
  outpost_batch b = outpost_batch_make();
  b.metric_size = sizeof(BigMetric);
  b.event_size = sizeof(BigEvent);
  b.flow_size = sizeof(BigFlow);
  b.metrics = &ms[0].m;
  b.metric_count = 2;
  b.events = &es[0].e;
  b.event_count = 1;
  b.flows = &fs[0].f;
  b.flow_count = 2;
  Encoder enc("e");
  Decoder dec;
  const Result r = decode(dec, enc.encode(b, spool("", {})));
  REQUIRE(r.status == Status::ok);
  REQUIRE(r.metrics.size() == 2);
  REQUIRE(r.metrics[1].name == "b");
  REQUIRE(r.metrics[1].value == 7);
  REQUIRE(r.metrics[1].type == OUTPOST_METRIC_COUNTER);
  REQUIRE(r.metrics[0].labels == Pairs{{"k", "v"}});
  REQUIRE(r.events.at(0).message == "m");
  REQUIRE(r.flows.at(1).src_addr[15] == 1);
  REQUIRE(r.flows.at(1).packets == 9);
  REQUIRE(r.flows.at(0).bytes == 100);
}

TEST_CASE("the zstd command-line tool reads the frame as the decoder does") {
  Generator gen(8);
  Encoder enc("e");
  BatchBuilder b;
  (void)gen.batch(b);
  const std::string body = enc.encode(b.batch(), spool("sp", {{"s", 1, 1}}));
  Header h;
  std::string err, raw;
  REQUIRE(parse_header(bytes_of(body), h, err));
  REQUIRE(decompress_frame(bytes_of(body), h, kMaxRawBytes, raw, err));
  sink_testing::TempDir dir;
  std::ofstream(dir / "frame.zst", std::ios::binary) << body.substr(h.frame_offset);
  const auto [status, out] =
      sink_testing::run("zstd -q -d -c " + sink_testing::quote(dir / "frame.zst"));
  REQUIRE(status == 0);
  REQUIRE(out.size() == h.raw_size);
  REQUIRE(out == raw);
}

// 1,000 devices polled every 60 s for 52 SNMP series (8 interfaces' octet, packet and error
// counters, uptime, CPU, memory, temperature) and 3 ICMP ones, sent every 10 s: a sixth of the
// devices in each body. Prints what it costs; asserts only a generous ceiling.
TEST_CASE("size of realistic SNMP traffic", "[size]") {
  constexpr int kDevices = 1000, kCycles = 10, kBodiesPerCycle = 6, kIfs = 8;
  std::mt19937_64 rng(2024);
  struct Device {
    std::string name, address;
    std::vector<double> counters;  // 8 interfaces x 6
    double uptime;
  };
  std::vector<Device> devs(kDevices);
  for (int d = 0; d < kDevices; ++d) {
    devs[d].name = "sw-" + std::to_string(1000 + d) + ".branch" + std::to_string(d % 40);
    devs[d].address = "10." + std::to_string(d / 250) + "." + std::to_string(d % 250) + ".1";
    for (int k = 0; k < kIfs * 6; ++k)
      devs[d].counters.push_back(static_cast<double>(rng() % (uint64_t{1} << 44)));
    devs[d].uptime = static_cast<double>(rng() % 100'000'000);
  }
  const char* kIfMetrics[6] = {"ifHCInOctets",     "ifHCOutOctets", "ifHCInUcastPkts",
                               "ifHCOutUcastPkts", "ifInErrors",    "ifOutErrors"};
  Encoder enc("branch-office-1");
  Decoder dec;
  std::size_t samples = 0, wire = 0, raw = 0, bodies = 0, first_cycle_wire = 0,
              first_cycle_samples = 0;
  const int64_t t0 = 1'700'000'000'000'000'000;
  uint64_t seq = 0;
  for (int cycle = 0; cycle < kCycles; ++cycle) {
    for (int part = 0; part < kBodiesPerCycle; ++part) {
      BatchBuilder b;
      std::size_t n = 0;
      for (int d = part; d < kDevices; d += kBodiesPerCycle) {
        Device& dev = devs[d];
        const int64_t t = t0 + int64_t{cycle} * 60'000'000'000 + int64_t{d} * 60'000'000 +
                          static_cast<int64_t>(rng() % 40'000'000);
        const Pairs dl{{"device", dev.name}, {"address", dev.address}, {"site", "branch"}};
        for (int i = 0; i < kIfs; ++i) {
          Pairs il = dl;
          il.emplace_back("ifName", "GigabitEthernet0/" + std::to_string(i));
          for (int k = 0; k < 6; ++k) {
            double& c = dev.counters[i * 6 + k];
            const uint64_t rate = k < 2 ? 10'000'000 : k < 4 ? 10'000 : 1;  // per second, at most
            if (k < 4 || rng() % 50 == 0) c += static_cast<double>(rng() % (rate * 60 + 1));
            b.metric(kIfMetrics[k], il, c, t, OUTPOST_METRIC_COUNTER);
          }
        }
        dev.uptime += 6000 + static_cast<double>(rng() % 3);
        b.metric("sysUpTime", dl, dev.uptime, t, OUTPOST_METRIC_GAUGE);
        b.metric("cpu_percent", dl, static_cast<double>(rng() % 30), t);
        b.metric("memory_used_bytes", dl, static_cast<double>(400'000'000 + rng() % 4'000'000), t);
        b.metric("temperature_celsius", dl, static_cast<double>(40 + rng() % 5), t);
        const int64_t ti = t + 200'000'000 + static_cast<int64_t>(rng() % 1'000'000);
        b.metric("rtt_ms", dl, 0.2 + static_cast<double>(rng() % 5000) / 1000.0, ti);
        b.metric("loss_ratio", dl, rng() % 100 == 0 ? 0.33 : 0.0, ti);
        b.metric("up", dl, 1, ti);
        n += kIfs * 6 + 7;
      }
      const std::string body =
          enc.encode(b.batch(), spool("0123456789abcdef", {{"snmp", seq + 1, seq + n}}));
      seq += n;
      REQUIRE(decode(dec, body).status == Status::ok);
      enc.commit();
      samples += n;
      wire += body.size();
      raw += enc.stats().raw_bytes;
      ++bodies;
      if (cycle == 0) {
        first_cycle_wire += body.size();
        first_cycle_samples += n;
      }
    }
  }
  const double steady = static_cast<double>(wire - first_cycle_wire) /
                        static_cast<double>(samples - first_cycle_samples);
  // HTTP/1.1 over a kept-alive TLS connection: ~350 bytes of request and response headers per
  // body, TLS records (~30 bytes per 16 KiB), TCP/IP headers and ACKs (~6 %).
  const double per_minute = steady * kDevices * 55 + kBodiesPerCycle * 350.0;
  const double kbps = per_minute * 1.07 * 8 / 60 / 1000;
  std::printf(
      "uplink size: %zu samples in %zu bodies: %.3f bytes/sample on the wire overall (first cycle "
      "with definitions %.2f), %.3f steady; %.2f before zstd; steady %d devices = %.1f Kbps with "
      "HTTP, TLS and TCP overhead\n",
      samples, bodies, static_cast<double>(wire) / static_cast<double>(samples),
      static_cast<double>(first_cycle_wire) / static_cast<double>(first_cycle_samples), steady,
      static_cast<double>(raw) / static_cast<double>(samples), kDevices, kbps);
  REQUIRE(steady < 3.0);
}
