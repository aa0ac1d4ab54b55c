// The disk spool: nothing acknowledged is lost, nothing is offered twice except the batch in
// flight at a crash (and then with the same ranges), damage is cut off and counted, quotas evict
// the oldest and count it.
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "spool/record.hpp"
#include "spool/spool.hpp"

using namespace outpost::core;
namespace fs = std::filesystem;

namespace {

struct TempDir {
  fs::path path;
  TempDir() {
    path = fs::temp_directory_path() /
           ("outpost-spool-test-" + std::to_string(::getpid()) + "-" + std::to_string(counter()++));
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~TempDir() { fs::remove_all(path); }
  static int& counter() {
    static int c = 0;
    return c;
  }
};

// A batch from one source: n metrics named after the source with a value each.
Batch make_batch(const std::string& origin, int first_value, int n) {
  Batch b;
  b.origin = origin;
  for (int i = 0; i < n; ++i)
    b.add_metric("m_" + origin, {{"source", origin}, {"i", std::to_string(first_value + i)}},
                 first_value + i, 1'700'000'000'000'000'000 + i, OUTPOST_METRIC_GAUGE);
  return b;
}

void append(Spool& s, const std::string& origin, int first_value, int n) {
  Batch b = make_batch(origin, first_value, n);
  REQUIRE(s.append({&b}) == OUTPOST_OK);
}

struct Offer {
  std::vector<std::tuple<std::string, uint64_t, uint64_t>> ranges;
  uint32_t attempt = 0;
  std::string spool_id;
  std::map<std::string, std::vector<int>> values;  // per source, in order
  bool ok = false;                                 // what the destination answered
};

// A destination: records what it is offered, answers what the test says.
struct Destination {
  std::mutex mu;
  std::vector<Offer> offers;
  std::function<outpost_status(const Offer&)> answer = [](const Offer&) { return OUTPOST_OK; };
  int64_t retry_after_ns = 0;

  Spool::WriteFn fn() {
    return [this](const outpost_batch& b, const outpost_write_info& info, int64_t& retry_after) {
      Offer o;
      for (std::size_t i = 0; i < info.range_count; ++i)
        o.ranges.emplace_back(std::string(info.ranges[i].stream.ptr, info.ranges[i].stream.len),
                              info.ranges[i].first_seq, info.ranges[i].last_seq);
      o.attempt = info.attempt;
      o.spool_id.assign(info.spool_id.ptr, info.spool_id.len);
      for (std::size_t i = 0; i < b.metric_count; ++i) {
        const outpost_metric& m = b.metrics[i];
        const std::string source(m.labels[0].value.ptr, m.labels[0].value.len);
        o.values[source].push_back(static_cast<int>(m.value));
      }
      const outpost_status st = answer(o);
      o.ok = st == OUTPOST_OK;
      std::lock_guard g(mu);
      offers.push_back(o);
      retry_after = retry_after_ns;
      return st;
    };
  }
  std::size_t count() {
    std::lock_guard g(mu);
    return offers.size();
  }
  // Values accepted (answered OK), per source, in order.
  std::map<std::string, std::vector<int>> accepted() {
    std::lock_guard g(mu);
    std::map<std::string, std::vector<int>> out;
    for (const auto& o : offers) {
      if (!o.ok) continue;
      for (const auto& [src, v] : o.values) out[src].insert(out[src].end(), v.begin(), v.end());
    }
    return out;
  }
};

SpoolOptions fast(const fs::path& dir) {
  SpoolOptions o;
  o.dir = dir.string();
  o.sync_interval_s = 0.01;
  o.max_delay_s = 0.01;
  o.backoff_initial_s = 0.01;
  o.backoff_max_s = 0.05;
  o.operator_backoff_s = 0.05;
  return o;
}

std::vector<int> iota(int from, int n) {
  std::vector<int> v;
  for (int i = 0; i < n; ++i) v.push_back(from + i);
  return v;
}

fs::path only_segment(const fs::path& dir, const std::string& stream) {
  std::vector<fs::path> segs;
  for (const auto& e : fs::directory_iterator(dir / "streams" / stream)) segs.push_back(e.path());
  REQUIRE(segs.size() == 1);
  return segs[0];
}

}  // namespace

TEST_CASE("spool: everything appended reaches the destination, in order per source") {
  TempDir t;
  std::string why;
  auto s = Spool::open(fast(t.path), why);
  REQUIRE(s);
  Destination d;
  s->start(d.fn());
  for (int k = 0; k < 20; ++k) {
    append(*s, "snmp", k * 10, 10);
    append(*s, "icmp", 1000 + k * 3, 3);
  }
  REQUIRE(s->wait_idle(30));
  auto got = d.accepted();
  CHECK(got["snmp"] == iota(0, 200));
  CHECK(got["icmp"] == iota(1000, 60));
  const SpoolStats st = s->stats();
  CHECK(st.sent_items == 260);
  CHECK(st.pending_items == 0);
  CHECK(st.evicted_items == 0);
  // Ranges of a stream follow each other without gaps or overlaps.
  std::map<std::string, uint64_t> next;
  for (const auto& o : d.offers)
    for (const auto& [stream, first, last] : o.ranges) {
      if (next.count(stream)) CHECK(first == next[stream]);
      CHECK(last >= first);
      next[stream] = last + 1;
    }
  CHECK(next["snmp"] == 21);
  CHECK(next["icmp"] == 21);
  s->stop();
  // Acknowledged segments are gone (all but a stream's open one).
  for (const auto& e : fs::directory_iterator(t.path / "streams"))
    CHECK(std::distance(fs::directory_iterator(e.path()), fs::directory_iterator()) <= 1);
}

TEST_CASE("spool: a failing destination gets the same batch again until it takes it") {
  TempDir t;
  std::string why;
  auto s = Spool::open(fast(t.path), why);
  REQUIRE(s);
  Destination d;
  std::atomic<int> failures{3};
  d.answer = [&](const Offer& o) {
    return o.attempt <= 3 && failures.load() > 0 ? OUTPOST_E_UNAVAILABLE : OUTPOST_OK;
  };
  append(*s, "snmp", 0, 5);
  s->sync();
  s->start(d.fn());
  REQUIRE(s->wait_idle(30));
  REQUIRE(d.offers.size() == 4);
  for (std::size_t i = 0; i < 4; ++i) {
    CHECK(d.offers[i].attempt == i + 1);
    CHECK(d.offers[i].ranges == d.offers[0].ranges);
    CHECK(d.offers[i].values == d.offers[0].values);
  }
  CHECK(s->stats().retries == 3);
  CHECK(d.accepted()["snmp"] == iota(0, 5));
}

TEST_CASE("spool: after a restart the batch in flight comes again with the same ranges") {
  TempDir t;
  std::string why;
  Offer first_offer;
  std::string id;
  {
    auto s = Spool::open(fast(t.path), why);
    REQUIRE(s);
    id = s->id();
    Destination d;
    // The destination stores the batch, but its answer never arrives (a crash, a lost reply).
    d.answer = [](const Offer&) { return OUTPOST_E_TIMEOUT; };
    append(*s, "snmp", 0, 7);
    append(*s, "engine", 500, 2);
    s->start(d.fn());
    for (int i = 0; i < 500 && d.count() == 0; ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    s->stop();
    REQUIRE(!d.offers.empty());
    first_offer = d.offers[0];
    append(*s, "snmp", 7, 3);  // more after the batch was taken: not part of it
    s->sync();
  }
  auto s = Spool::open(fast(t.path), why);
  REQUIRE(s);
  CHECK(s->id() == id);
  CHECK(s->stats().pending_items == 12);
  Destination d;
  s->start(d.fn());
  REQUIRE(s->wait_idle(30));
  REQUIRE(!d.offers.empty());
  CHECK(d.offers[0].ranges == first_offer.ranges);
  CHECK(d.offers[0].values == first_offer.values);
  CHECK(d.offers[0].spool_id == id);
  auto got = d.accepted();
  CHECK(got["snmp"] == iota(0, 10));
  CHECK(got["engine"] == iota(500, 2));
}

TEST_CASE("spool: acknowledged data is not offered again after a restart") {
  TempDir t;
  std::string why;
  {
    auto s = Spool::open(fast(t.path), why);
    Destination d;
    s->start(d.fn());
    append(*s, "a", 0, 4);
    REQUIRE(s->wait_idle(30));
    s->stop();
  }
  auto s = Spool::open(fast(t.path), why);
  CHECK(s->stats().pending_items == 0);
  Destination d;
  s->start(d.fn());
  append(*s, "a", 4, 2);
  REQUIRE(s->wait_idle(30));
  REQUIRE(d.offers.size() == 1);
  CHECK(std::get<1>(d.offers[0].ranges[0]) == 2);  // sequence numbers go on
  CHECK(d.accepted()["a"] == iota(4, 2));
}

TEST_CASE("spool: a torn last record is cut off at every byte, everything before it kept") {
  TempDir t;
  std::string why;
  const fs::path golden = t.path / "golden";
  constexpr int kRecords = 4;
  {
    auto s = Spool::open(fast(golden), why);
    REQUIRE(s);
    for (int r = 0; r < kRecords; ++r) append(*s, "snmp", r * 3, 3);
    s->stop();
  }
  const fs::path seg = only_segment(golden, "snmp");
  const auto full = fs::file_size(seg);
  std::string bytes;
  {
    std::ifstream in(seg, std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(in), {});
  }
  // Where the last record starts.
  std::size_t last_start = 0;
  uint64_t first = 0;
  bool ok = false;
  spool::scan_segment(bytes, first, ok,
                      [&](const spool::RecordHeader&, std::size_t off) { last_start = off; });
  REQUIRE(ok);
  REQUIRE(last_start > spool::kSegmentHeaderSize);
  for (std::size_t cut = last_start; cut < full; ++cut) {
    const fs::path dir = t.path / ("cut-" + std::to_string(cut));
    fs::copy(golden, dir, fs::copy_options::recursive);
    fs::resize_file(dir / "streams" / "snmp" / seg.filename(), cut);
    auto s = Spool::open(fast(dir), why);
    REQUIRE(s);
    const SpoolStats st = s->stats();
    CHECK(st.pending_items == (kRecords - 1) * 3);
    CHECK(st.corrupt_records == (cut > last_start ? 1u : 0u));
    Destination d;
    s->start(d.fn());
    REQUIRE(s->wait_idle(30));
    CHECK(d.accepted()["snmp"] == iota(0, (kRecords - 1) * 3));
    // It goes on with the next sequence number, and a restart finds nothing damaged.
    append(*s, "snmp", 100, 1);
    REQUIRE(s->wait_idle(30));
    s->stop();
    s.reset();
    auto again = Spool::open(fast(dir), why);
    CHECK(again->stats().corrupt_records == 0);
    CHECK(again->stats().pending_items == 0);
    again.reset();
    fs::remove_all(dir);
  }
}

TEST_CASE("spool: a corrupt record ends its segment; the rest is set aside, later segments kept") {
  TempDir t;
  std::string why;
  SpoolOptions o = fast(t.path);
  o.segment_bytes = 1;  // the floor, 64 KiB: all six records in one segment
  o.max_source_bytes = 1ull << 30;
  {
    auto s = Spool::open(o, why);
    for (int r = 0; r < 6; ++r) append(*s, "x", r * 10, 10);
    s->stop();
  }
  fs::path seg = only_segment(t.path, "x");
  // Flip a byte inside the third record's payload.
  std::string bytes;
  {
    std::ifstream in(seg, std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(in), {});
  }
  std::vector<std::size_t> starts;
  uint64_t first = 0;
  bool ok = false;
  spool::scan_segment(bytes, first, ok,
                      [&](const spool::RecordHeader&, std::size_t off) { starts.push_back(off); });
  REQUIRE(starts.size() == 6);
  bytes[starts[2] + spool::kRecordHeaderSize + 5] ^= 0x40;
  {
    std::ofstream out(seg, std::ios::binary | std::ios::trunc);
    out << bytes;
  }
  auto s = Spool::open(o, why);
  REQUIRE(s);
  CHECK(s->stats().corrupt_records == 1);
  CHECK(s->stats().pending_items == 20);
  CHECK(std::distance(fs::directory_iterator(t.path / "quarantine"), fs::directory_iterator()) ==
        1);
  Destination d;
  s->start(d.fn());
  append(*s, "x", 60, 10);  // a new segment after the damaged one
  REQUIRE(s->wait_idle(30));
  std::vector<int> want = iota(0, 20);
  for (int v : iota(60, 10)) want.push_back(v);
  CHECK(d.accepted()["x"] == want);
}

TEST_CASE("spool: a garbage cursor or segment never stops the spool from opening") {
  TempDir t;
  std::string why;
  {
    auto s = Spool::open(fast(t.path), why);
    append(*s, "x", 0, 3);
    s->stop();
  }
  {
    std::ofstream(t.path / "cursor", std::ios::binary) << "not a cursor at all";
    std::ofstream(t.path / "streams" / "x" / "00000000000000000099.seg", std::ios::binary)
        << "garbage garbage garbage garbage garbage";
  }
  auto s = Spool::open(fast(t.path), why);
  REQUIRE(s);
  CHECK(s->stats().corrupt_records == 2);
  Destination d;
  s->start(d.fn());
  REQUIRE(s->wait_idle(30));
  CHECK(d.accepted()["x"] == iota(0, 3));
}

TEST_CASE("spool: past its quota a source loses its oldest data, counted; other sources keep") {
  TempDir t;
  std::string why;
  SpoolOptions o = fast(t.path);
  o.max_source_bytes = 256 << 10;  // segments of 64 KiB
  auto s = Spool::open(o, why);
  REQUIRE(s);
  Destination d;
  std::atomic<bool> down{true};
  d.answer = [&](const Offer&) { return down ? OUTPOST_E_UNAVAILABLE : OUTPOST_OK; };
  s->start(d.fn());
  append(*s, "quiet", 0, 5);
  constexpr int kRecords = 400, kPer = 20;
  for (int r = 0; r < kRecords; ++r) append(*s, "flood", r * kPer, kPer);
  SpoolStats st = s->stats();
  CHECK(st.evicted_items > 0);
  CHECK(st.evicted_segments > 0);
  CHECK(st.disk_bytes <= o.max_source_bytes + (64 << 10) + 4096);
  down = false;
  REQUIRE(s->wait_idle(60));
  st = s->stats();
  auto got = d.accepted();
  CHECK(got["quiet"] == iota(0, 5));
  // What arrived of the flood is in order and ends with the newest; with what was evicted it is
  // everything that was appended, exactly.
  const auto& flood = got["flood"];
  REQUIRE(!flood.empty());
  CHECK(flood.back() == kRecords * kPer - 1);
  for (std::size_t i = 1; i < flood.size(); ++i) CHECK(flood[i] > flood[i - 1]);
  CHECK(st.sent_items + st.evicted_items == 5u + kRecords * kPer);
  CHECK(flood.size() + 5 == st.sent_items);
}

TEST_CASE("spool: a batch the destination refuses for good is dropped and counted") {
  TempDir t;
  std::string why;
  auto s = Spool::open(fast(t.path), why);
  Destination d;
  d.answer = [](const Offer& o) {
    return o.values.count("bad") ? OUTPOST_E_INVALID_ARGUMENT : OUTPOST_OK;
  };
  s->start(d.fn());
  append(*s, "bad", 0, 4);
  REQUIRE(s->wait_idle(30));
  append(*s, "good", 0, 3);
  REQUIRE(s->wait_idle(30));
  CHECK(s->stats().rejected_items == 4);
  CHECK(d.accepted()["good"] == iota(0, 3));
}

TEST_CASE("spool: Retry-After holds the next attempt back at least that long") {
  TempDir t;
  std::string why;
  auto s = Spool::open(fast(t.path), why);
  Destination d;
  d.retry_after_ns = 300'000'000;
  std::vector<std::chrono::steady_clock::time_point> when;
  d.answer = [&](const Offer& o) { return o.attempt == 1 ? OUTPOST_E_BUSY : OUTPOST_OK; };
  auto inner = d.fn();
  s->start([&](const outpost_batch& b, const outpost_write_info& i, int64_t& ra) {
    when.push_back(std::chrono::steady_clock::now());
    return inner(b, i, ra);
  });
  append(*s, "x", 0, 1);
  REQUIRE(s->wait_idle(30));
  REQUIRE(when.size() == 2);
  CHECK(when[1] - when[0] >= std::chrono::milliseconds(300));
}

TEST_CASE("spool: records round-trip every kind of item exactly") {
  Batch a;
  a.origin = "src";
  a.add_metric("cpu", {{"device", "r1"}, {"core", "0"}}, 0.25, 11, OUTPOST_METRIC_GAUGE);
  a.add_event("r1", "syslog", "link down", 4, 12, {{"if", "ge-0/0/1"}});
  outpost_flow f{};
  f.start_ns = 1;
  f.end_ns = 2;
  f.family = 6;
  f.src_addr[15] = 1;
  f.bytes = 1ull << 40;
  f.packets = 3;
  f.src_port = 443;
  a.add_flow(f);
  Batch b;
  b.add_metric("mem", {}, -1e300, 13, OUTPOST_METRIC_COUNTER);
  std::string payload;
  spool::encode_payload({&a, &b}, payload);
  Batch out;
  std::string why;
  REQUIRE(spool::decode_payload(payload, out, why));
  REQUIRE(out.metrics().size() == 2);
  CHECK(out.str(out.metrics()[0].name) == "cpu");
  CHECK(out.metrics()[0].label_count == 2);
  CHECK(out.str(out.kvs()[out.metrics()[0].label_begin + 1].value) == "0");
  CHECK(out.str(out.metrics()[1].name) == "mem");
  CHECK(out.metrics()[1].value == -1e300);
  CHECK(out.metrics()[1].type == OUTPOST_METRIC_COUNTER);
  REQUIRE(out.events().size() == 1);
  CHECK(out.str(out.events()[0].message) == "link down");
  CHECK(out.str(out.kvs()[out.events()[0].attr_begin].value) == "ge-0/0/1");
  REQUIRE(out.flows().size() == 1);
  CHECK(out.flows()[0].bytes == (1ull << 40));
  CHECK(out.flows()[0].src_port == 443);
  // Every truncation and every flipped byte is refused, never read past.
  for (std::size_t n = 0; n < payload.size(); ++n) {
    Batch x;
    CHECK_FALSE(spool::decode_payload(std::string_view(payload).substr(0, n), x, why));
  }
}

TEST_CASE("spool: a second process (or object) cannot open a spool that is open") {
  TempDir t;
  std::string why;
  auto a = Spool::open(fast(t.path), why);
  REQUIRE(a);
  auto b = Spool::open(fast(t.path), why);
  CHECK_FALSE(b);
  CHECK(why.find("in use") != std::string::npos);
  a.reset();
  auto c = Spool::open(fast(t.path), why);
  CHECK(c);
}
