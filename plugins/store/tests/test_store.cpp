#include <fcntl.h>
#include <sqlite3.h>
#include <sys/file.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <outpost/testing.hpp>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "../../../sdk/jsonl/testing/sink_testing.hpp"
#include "block.hpp"
#include "chunk.hpp"
#include "store.hpp"

using namespace sink_testing;
using namespace outpost::store;
using outpost::testing::ReadSpec;
namespace fs = std::filesystem;

namespace {

const outpost_plugin_descriptor* plugin() {
  static const auto* d = outpost::testing::open_plugin(OUTPOST_TEST_PLUGIN_DIR "/outpost_store.so");
  return d;
}

constexpr int64_t kSec = 1'000'000'000;
constexpr int64_t kMin = 60 * kSec;
constexpr int64_t kHour = 60 * kMin;

uint64_t bits(double d) {
  uint64_t u;
  std::memcpy(&u, &d, 8);
  return u;
}

// A chunk decodes to exactly what was added, bit for bit.
void round_trip(int columns, int64_t base, const std::vector<int64_t>& t,
                const std::vector<double>& v) {
  ChunkWriter w(columns, base);
  for (std::size_t i = 0; i < t.size(); ++i) w.add(t[i], &v[i * columns]);
  const std::string bytes = w.finish();
  std::vector<int64_t> times;
  std::vector<double> values;
  REQUIRE(decode_chunk(bytes, columns, base, times, values));
  REQUIRE(times == t);
  REQUIRE(values.size() == v.size());
  for (std::size_t i = 0; i < v.size(); ++i) REQUIRE(bits(values[i]) == bits(v[i]));
}

outpost::Host host_of(outpost::testing::FakeHost& h) {
  return outpost::Host(h.api(), reinterpret_cast<outpost_host*>(&h));
}

struct Point {
  uint32_t s;
  int64_t t;
  double v;
  bool operator<(const Point& o) const {
    return s != o.s ? s < o.s : t != o.t ? t < o.t : bits(v) < bits(o.v);
  }
  bool operator==(const Point& o) const { return s == o.s && t == o.t && bits(v) == bits(o.v); }
};

std::vector<Point> scan_all(const Store& st, int64_t since = INT64_MIN, int64_t until = INT64_MAX) {
  std::vector<Point> out;
  st.scan(
      {}, true, since, until, UINT64_MAX,
      [&](uint32_t s, int64_t t, double v) {
        out.push_back({s, t, v});
      },
      [&](uint32_t, int64_t, const double*) { FAIL("rollup point where raw was expected"); });
  std::sort(out.begin(), out.end());
  return out;
}

// What the store tests share: a directory, a host, and a window of an hour that closed hours ago.
struct Closed {
  TempDir dir;
  outpost::testing::FakeHost fake{plugin()};
  int64_t now = fake.api()->now_ns(nullptr);
  int64_t w0 = now / kHour * kHour - 3 * kHour;
  StoreOptions o = [this] {
    StoreOptions x;
    x.dir = dir / "blocks";
    x.window_ns = kHour;
    return x;
  }();
};

outpost_status write(outpost::testing::FakeHost& host, const BatchBuilder& b) {
  const outpost_batch batch = b.batch();
  return plugin()->write(host.instance(), &batch);
}

}  // namespace

TEST_CASE("store chunk: round trips times and values bit for bit") {
  std::mt19937_64 rng(42);
  SECTION("a poll every minute with jitter; counters and gauges") {
    std::vector<int64_t> t;
    std::vector<double> v;
    int64_t now = 1'700'000'000 * kSec;
    double counter = 1e9;
    for (int i = 0; i < 500; ++i) {
      now += kMin + static_cast<int64_t>(rng() % 50'000'000) - 25'000'000;
      counter += static_cast<double>(rng() % 100'000);
      t.push_back(now);
      v.push_back(i % 2 == 0 ? counter : 1.0);
    }
    round_trip(1, 1'700'000'000 * kSec, t, v);
  }
  SECTION("odd values, repeated and backward times, extreme deltas") {
    const std::vector<int64_t> t = {0, 0, -5, INT64_MAX, INT64_MIN, 7, 7, 1, 1'000'000'000'000};
    const std::vector<double> v = {std::nan(""),
                                   -0.0,
                                   0.0,
                                   std::numeric_limits<double>::infinity(),
                                   -std::numeric_limits<double>::infinity(),
                                   1e-310,
                                   -1.5e300,
                                   std::numeric_limits<double>::max(),
                                   3.25};
    round_trip(1, 0, t, v);
    round_trip(1, INT64_MIN, t, v);
  }
  SECTION("five columns, some equal to the one before") {
    std::vector<int64_t> t;
    std::vector<double> v;
    for (int i = 0; i < 100; ++i) {
      t.push_back(i * 300 * kSec);
      for (int c = 0; c < 5; ++c)
        v.push_back(c > 0 && rng() % 2 == 0 ? v.back()
                                            : static_cast<double>(rng() % 1000) / (c + 1));
    }
    round_trip(5, 0, t, v);
  }
  SECTION("times shared with a time list") {
    std::vector<int64_t> t;
    std::vector<double> v;
    for (int i = 0; i < 60; ++i) {
      t.push_back(1000 + i * kMin + static_cast<int64_t>(rng() % 10'000'000));
      v.push_back(static_cast<double>(rng() % 7));
    }
    ChunkWriter lw(0, 1000), vw(1, 1000, 3);
    for (std::size_t i = 0; i < t.size(); ++i) {
      lw.add(t[i], nullptr);
      vw.add(t[i], &v[i]);
    }
    const std::string list = lw.finish(), values = vw.finish();
    std::vector<int64_t> lt, times;
    std::vector<double> none, vals;
    REQUIRE(decode_chunk(list, 0, 1000, lt, none));
    CHECK(lt == t);
    ChunkHead head;
    REQUIRE(peek_chunk(values, head));
    CHECK(head.count == 60);
    CHECK(head.shared_ref == 3);
    CHECK_FALSE(decode_chunk(values, 1, 1000, times, vals));  // the list is required
    REQUIRE(decode_chunk(values, 1, 1000, times, vals, &lt));
    CHECK(times == t);
    CHECK(vals == v);
    lt.pop_back();
    CHECK_FALSE(decode_chunk(values, 1, 1000, times, vals, &lt));
  }
  SECTION("a single point, and none") {
    round_trip(1, 100, {123}, {4.5});
    round_trip(1, 100, {}, {});
  }
}

TEST_CASE("store chunk: garbage is refused, never a crash") {
  std::mt19937_64 rng(7);
  std::vector<int64_t> times;
  std::vector<double> values;
  ChunkWriter w(1, 0);
  for (int i = 0; i < 50; ++i) {
    const double d = i * 1.5;
    w.add(i * kMin, &d);
  }
  const std::string good = w.finish();
  REQUIRE(decode_chunk(good, 1, 0, times, values));
  CHECK_FALSE(decode_chunk(good.substr(0, good.size() - 1), 1, 0, times, values));
  CHECK_FALSE(decode_chunk(good + "x", 1, 0, times, values));
  CHECK_FALSE(decode_chunk(good, 2, 0, times, values));
  CHECK_FALSE(decode_chunk(std::string("\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", 11), 1, 0,
                           times, values));
  for (int i = 0; i < 2000; ++i) {
    std::string junk = good;
    junk[rng() % junk.size()] ^= static_cast<char>(1 << (rng() % 8));
    decode_chunk(junk, 1, 0, times, values);  // any answer, but an answer
  }
}

TEST_CASE("store block: written, found, and damage detected") {
  TempDir dir;
  const std::string path = dir / "b.blk";
  BlockWriter w(path, BlockMeta{Kind::raw, 3600 * kSec, kHour, 9, 1});
  for (uint32_t s = 1; s <= 1000; s += 3) w.add(s, s, std::string(s % 17, static_cast<char>(s)));
  CHECK_THROWS(w.add(1, 1, "x"));  // out of order
  w.commit();
  CHECK_FALSE(fs::exists(path + ".tmp"));
  std::string err;
  auto b = Block::open(path, err);
  REQUIRE(b != nullptr);
  CHECK(b->meta().seq == 9);
  CHECK(b->meta().window_start == 3600 * kSec);
  CHECK(b->verify_index());
  CHECK(b->size() == 334);
  CHECK(b->find(2) == b->size());
  const std::size_t i = b->find(301);
  REQUIRE(i < b->size());
  std::string_view bytes;
  REQUIRE(b->chunk(b->entry(i), bytes));
  CHECK(bytes == std::string(301 % 17, static_cast<char>(301)));
  b.reset();
  // A flipped byte in a chunk fails that chunk's check; in the header, the open.
  {
    std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(64 + 5);
    f.put('\x55');
  }
  b = Block::open(path, err);
  REQUIRE(b != nullptr);
  int bad = 0;
  for (std::size_t k = 0; k < b->size(); ++k) bad += b->chunk(b->entry(k), bytes) ? 0 : 1;
  CHECK(bad == 1);
  {
    std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(20);
    f.put('\x55');
  }
  CHECK(Block::open(path, err) == nullptr);
  CHECK(err.find("checksum") != std::string::npos);
  std::ofstream(dir / "short.blk") << "OPSTBLK1";
  CHECK(Block::open(dir / "short.blk", err) == nullptr);
}

TEST_CASE("store: heads, compaction, late samples and retention keep every sample once") {
  TempDir dir;
  outpost::testing::FakeHost fake(plugin());
  const int64_t now = fake.api()->now_ns(nullptr);
  const int64_t w0 = now / kHour * kHour - 5 * kHour;  // five hours back: closed windows
  StoreOptions o;
  o.dir = dir / "blocks";
  o.window_ns = kHour;
  o.rollup_ns = 5 * kMin;
  o.raw_retention_ns = 24 * kHour;
  o.retention_ns = 48 * kHour;
  std::vector<Point> expected;
  std::mt19937_64 rng(3);
  {
    Store st(host_of(fake), o);
    // Three windows, 50 series, a sample a minute; flushed in several heads per window.
    for (int m = 0; m < 180; ++m) {
      for (uint32_t s = 1; s <= 50; ++s) {
        const int64_t t = w0 + m * kMin + static_cast<int64_t>(rng() % kSec);
        const double v = s * 1000.0 + m;
        st.add(s, t, v, now);
        expected.push_back({s, t, v});
      }
      if (m % 7 == 0) st.flush();
    }
    st.flush();
    std::sort(expected.begin(), expected.end());
    CHECK(scan_all(st) == expected);  // from heads alone
    st.compact_now();
    const Listing l = st.list();
    REQUIRE(l.size() == 3);
    for (const auto& [w, wf] : l) {
      CHECK(wf.raw.seq != 0);
      CHECK(wf.rollup.seq == wf.raw.seq);
      CHECK(wf.heads.empty());
    }
    CHECK(scan_all(st) == expected);  // from raw blocks
    // A late sample for a closed window lands in a head above the raw block, then is merged.
    st.add(7, w0 + 30 * kMin + 1, -1.0, now);
    expected.push_back({7, w0 + 30 * kMin + 1, -1.0});
    std::sort(expected.begin(), expected.end());
    st.flush();
    CHECK(scan_all(st) == expected);
    st.compact_now();
    CHECK(scan_all(st) == expected);
    CHECK(st.list().at(w0).heads.empty());
    CHECK(st.stats().corrupt == 0);
    // A range and a subset of series.
    std::vector<Point> part;
    st.scan(
        {3, 9}, false, w0 + kHour, w0 + 2 * kHour, UINT64_MAX,
        [&](uint32_t s, int64_t t, double v) {
          part.push_back({s, t, v});
        },
        [](uint32_t, int64_t, const double*) {});
    std::sort(part.begin(), part.end());
    std::vector<Point> want;
    for (const auto& p : expected)
      if ((p.s == 3 || p.s == 9) && p.t >= w0 + kHour && p.t < w0 + 2 * kHour) want.push_back(p);
    CHECK(part == want);
    int64_t t = 0;
    double v = 0;
    REQUIRE(st.latest(9, t, v));
    CHECK(v == 9000.0 + 179);
    CHECK_FALSE(st.latest(999, t, v));
    // Too old and too far ahead are counted, not kept.
    st.add(1, now - 25 * kHour, 1, now);
    st.add(1, now + 2 * kHour, 1, now);
    CHECK(st.stats().dropped_old == 1);
    CHECK(st.stats().dropped_future == 1);
  }
  {
    // Reopened with a raw retention that ends a minute after the oldest window: that window
    // keeps only its rollups.
    o.raw_retention_ns = now - (w0 + kHour) - kMin;
    Store st(host_of(fake), o);
    st.compact_now();
    const Listing l = st.list();
    CHECK(l.at(w0).raw.seq == 0);
    CHECK(l.at(w0).rollup.seq != 0);
    CHECK(l.at(w0 + kHour).raw.seq != 0);
    std::map<int64_t, std::vector<double>> rollups;  // series 5's buckets in the first window
    std::vector<Point> raw;
    st.scan(
        {5}, false, INT64_MIN, INT64_MAX, UINT64_MAX,
        [&](uint32_t s, int64_t t, double v) {
          raw.push_back({s, t, v});
        },
        [&](uint32_t, int64_t b, const double* v) { rollups[b].assign(v, v + 5); });
    CHECK(raw.size() == 120);
    REQUIRE(rollups.size() == 12);
    for (const auto& [b, r] : rollups) {
      const double m0 = static_cast<double>((b - w0) / kMin);  // the bucket's first minute
      CHECK(r[0] == 5000 + m0);
      CHECK(r[1] == 5000 + m0 + 4);
      CHECK(r[2] == 5000 + m0 + 4);
      CHECK(r[3] == 5 * 5000 + 5 * m0 + 10);
      CHECK(r[4] == 5);
    }
    // A budget that holds the rollups but not the raw blocks deletes every raw block.
    o.max_bytes = 1;
    for (const auto& [w, wf] : l) o.max_bytes += wf.rollup.bytes;
  }
  {
    Store st(host_of(fake), o);
    st.compact_now();
    for (const auto& [w, wf] : st.list()) {
      CHECK(wf.raw.seq == 0);
      CHECK(wf.rollup.seq != 0);
    }
    CHECK(st.stats().evicted_files >= 2);
    int64_t t = 0;
    double v = 0;
    REQUIRE(st.latest(9, t, v));  // from the newest rollup's last
    CHECK(v == 9000.0 + 179);
  }
}

TEST_CASE("store: a damaged head is set aside, the rest kept; a second engine is refused") {
  Closed c;  // a store directory, and a closed hour-long window three hours back
  auto& [dir, fake, now, w0, o] = c;
  {
    // Another engine (its own open of the lock file, as another process has) holds the store.
    fs::create_directories(o.dir);
    const int fd = ::open((o.dir + "/lock").c_str(), O_RDWR | O_CREAT, 0644);
    REQUIRE(fd >= 0);
    REQUIRE(::flock(fd, LOCK_EX | LOCK_NB) == 0);
    CHECK_THROWS_AS(Store(host_of(fake), o), outpost::Error);
    ::close(fd);
  }
  Store st(host_of(fake), o);
  {
    Store again(host_of(fake), o);  // a reload's new instance, in the same process: shares it
  }
  st.add(1, w0 + kMin, 1.0, now);
  st.flush();
  st.add(2, w0 + 2 * kMin, 2.0, now);
  st.flush();
  const Listing l = st.list();
  REQUIRE(l.at(w0).heads.size() == 2);
  {
    std::fstream f(l.at(w0).heads[0].path, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(3);
    f.put('?');
  }
  std::ofstream(o.dir + "/h-notanumber-zz.blk") << "junk";  // not a store file name: ignored
  st.compact_now();
  CHECK(st.stats().corrupt == 1);
  CHECK(fs::exists(o.dir + "/quarantine"));
  CHECK(scan_all(st) == std::vector<Point>{{2, w0 + 2 * kMin, 2.0}});
}

TEST_CASE("store sink: writes, reads back series, samples and events, also read-only") {
  TempDir dir;
  const std::string path = dir / "store";
  const int64_t t = now_ns();
  {
    outpost::testing::FakeHost host(plugin());
    REQUIRE(host.create({{"path", path}, {"max_bytes", "2GiB"}}) == OUTPOST_OK);
    REQUIRE(host.start() == OUTPOST_OK);
    for (int i = 0; i < 3; ++i) {
      BatchBuilder b;
      b.metric("ifHCInOctets", {{"device", "r1"}, {"ifName", "ge-0/0/1"}}, 1e9 + i * 1234.0,
               t - (3 - i) * kMin, OUTPOST_METRIC_COUNTER)
          .metric("up", {{"device", "r1"}}, 1, t - (3 - i) * kMin);
      if (i == 0) b.event("r1", "availability", "up again", OUTPOST_SEV_NOTICE, {}, t);
      REQUIRE(write(host, b) == OUTPOST_OK);
    }
    REQUIRE(host.flush() == OUTPOST_OK);
    // Read while the writer is open, through the plugin.
    const auto series = host.read(ReadSpec{OUTPOST_READ_SERIES});
    REQUIRE(series.size() == 2);
    CHECK(series[0].text("name") == "ifHCInOctets");
    CHECK(series[0].find("last")->d == 1e9 + 2 * 1234.0);
    CHECK(series[0].find("last_time_ns")->i == t - kMin);
    REQUIRE(host.stop() == OUTPOST_OK);
    CHECK(host.errors().empty());
  }
  outpost::testing::FakeHost reader(plugin());
  reader.set_purpose(OUTPOST_PURPOSE_READ);
  REQUIRE(reader.create({{"path", path}}) == OUTPOST_OK);
  auto samples = reader.read(ReadSpec{OUTPOST_READ_SAMPLES, "ifHCInOctets"});
  REQUIRE(samples.size() == 3);
  CHECK(samples[0].find("time_ns")->i == t - kMin);  // newest first
  CHECK(samples[2].find("value")->d == 1e9);
  samples = reader.read(ReadSpec{OUTPOST_READ_SAMPLES, "", "r1", 0, 0, 2});
  CHECK(samples.size() == 2);
  samples = reader.read(ReadSpec{OUTPOST_READ_SAMPLES, "", "nothing-matches"});
  CHECK(samples.empty());
  const auto events = reader.read(ReadSpec{OUTPOST_READ_EVENTS});
  REQUIRE(events.size() == 1);
  CHECK(events[0].text("message") == "up again");
  CHECK(reader.violations().empty());
}

TEST_CASE("store sink: --match finds series through the text index and above it") {
  TempDir dir;
  const std::string path = dir / "store";
  const int64_t t = now_ns();
  outpost::testing::FakeHost host(plugin());
  REQUIRE(host.create({{"path", path}}) == OUTPOST_OK);
  REQUIRE(host.start() == OUTPOST_OK);
  BatchBuilder b;
  for (int d = 0; d < 30; ++d) b.metric("up", {{"device", "dev-" + std::to_string(d)}}, d, t);
  REQUIRE(write(host, b) == OUTPOST_OK);
  // The indexing thread takes the catalog in the background; wait for it (bounded).
  auto indexed = [&] {
    sqlite3* db = nullptr;
    sqlite3_open_v2((path + "/catalog.db").c_str(), &db, SQLITE_OPEN_READONLY, nullptr);
    sqlite3_stmt* s = nullptr;
    sqlite3_prepare_v2(db, "SELECT value FROM meta WHERE key = 'text_indexed_id'", -1, &s, nullptr);
    const int64_t v = sqlite3_step(s) == SQLITE_ROW ? sqlite3_column_int64(s, 0) : 0;
    sqlite3_finalize(s);
    sqlite3_close(db);
    return v;
  };
  for (int i = 0; i < 200 && indexed() < 30; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  REQUIRE(indexed() == 30);
  BatchBuilder late;  // created after the index caught up: found by the scan above it
  late.metric("up", {{"device", "dev-77"}}, 77, t);
  REQUIRE(write(host, late) == OUTPOST_OK);
  REQUIRE(host.flush() == OUTPOST_OK);
  auto series = host.read(ReadSpec{OUTPOST_READ_SERIES, "", "\"dev-7\""});
  REQUIRE(series.size() == 1);
  CHECK(series[0].find("last")->d == 7);
  series = host.read(ReadSpec{OUTPOST_READ_SERIES, "up", "dev-7"});
  CHECK(series.size() == 2);  // dev-7 and dev-77: a substring, as without the index
  const auto samples = host.read(ReadSpec{OUTPOST_READ_SAMPLES, "", "\"dev-77\""});
  REQUIRE(samples.size() == 1);
  CHECK(samples[0].find("value")->d == 77);
  CHECK(host.read(ReadSpec{OUTPOST_READ_SERIES, "", "dev-1"}).size() == 11);  // 1, 10-19
  REQUIRE(host.stop() == OUTPOST_OK);
}

TEST_CASE("store sink: bad settings fail create with a reason") {
  TempDir dir;
  const std::vector<std::vector<std::pair<std::string, std::string>>> bad = {
      {{"path", ""}},
      {{"path", dir / "a"}, {"max_bytes", "12 parsecs"}},
      {{"path", dir / "b"}, {"window", "7m"}, {"rollup", "5m"}},
      {{"path", dir / "c"}, {"raw_retention", "10m"}},
      {{"path", dir / "d"}, {"retention", "1h"}},
      {{"path", dir / "e"}, {"rollup", "0s"}},
  };
  for (const auto& cfg : bad) {
    outpost::testing::FakeHost host(plugin());
    INFO(cfg.back().first << "=" << cfg.back().second);
    CHECK(host.create(cfg) == OUTPOST_E_CONFIG);
    CHECK(host.errors().size() == 1);
  }
}

TEST_CASE("store: series polled together share one time list in the raw block") {
  Closed c;  // a store directory, and a closed hour-long window three hours back
  auto& [dir, fake, now, w0, o] = c;
  Store st(host_of(fake), o);
  std::vector<Point> expected;
  for (int m = 0; m < 60; ++m) {
    const int64_t t = w0 + m * kMin + m * 1234567;  // a device's poll time, shared
    for (uint32_t s = 1; s <= 20; ++s) {
      st.add(s, t, s * 1.5 + m, now);
      expected.push_back({s, t, s * 1.5 + m});
    }
    st.add(100, t + 1, m, now);  // another device: its own times
    expected.push_back({100, t + 1, static_cast<double>(m)});
  }
  st.flush();
  st.compact_now();
  std::sort(expected.begin(), expected.end());
  CHECK(scan_all(st) == expected);
  std::string err;
  auto b = Block::open(st.list().at(w0).raw.path, err);
  REQUIRE(b != nullptr);
  std::size_t lists = 0;
  for (std::size_t i = 0; i < b->size(); ++i) lists += b->entry(i).series >= kTimesBase ? 1 : 0;
  CHECK(lists == 2);
  CHECK(b->size() == 23);
}

TEST_CASE("store: a damaged late head leaves the window's raw block as it was") {
  Closed c;  // a store directory, and a closed hour-long window three hours back
  auto& [dir, fake, now, w0, o] = c;
  Store st(host_of(fake), o);
  std::vector<Point> expected;
  for (int m = 0; m < 10; ++m) {
    st.add(1, w0 + m * kMin, m, now);
    expected.push_back({1, w0 + m * kMin, static_cast<double>(m)});
  }
  st.flush();
  st.compact_now();
  REQUIRE(scan_all(st) == expected);
  st.add(1, w0 + 30 * kMin, 99, now);  // late, and its head gets damaged
  st.flush();
  const std::string head = st.list().at(w0).heads.at(0).path;
  {
    std::fstream f(head, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(3);
    f.put('?');
  }
  st.compact_now();
  st.compact_now();  // and the pass after, which removes stale files
  CHECK(st.stats().corrupt == 1);
  CHECK(scan_all(st) == expected);
}

TEST_CASE("store: a late sample for a window whose raw block went keeps the window's rollups") {
  Closed c;  // a store directory, and a closed hour-long window three hours back
  auto& [dir, fake, now, w0, o] = c;
  o.rollup_ns = 5 * kMin;
  {
    Store st(host_of(fake), o);
    for (int m = 0; m < 60; ++m) st.add(1, w0 + m * kMin, m, now);
    st.flush();
    st.compact_now();
  }
  o.max_bytes = 1;  // the raw block goes for the budget, then the rollup is kept below it
  for (const auto& [w, wf] : Store(host_of(fake), o).list()) o.max_bytes += wf.rollup.bytes;
  Store st(host_of(fake), o);
  st.compact_now();
  REQUIRE(st.list().at(w0).raw.seq == 0);
  auto rollups = [&] {
    std::vector<std::pair<int64_t, double>> out;  // (bucket, count)
    st.scan(
        {1}, false, INT64_MIN, INT64_MAX, UINT64_MAX,
        [&](uint32_t, int64_t, double) { FAIL("raw point"); },
        [&](uint32_t, int64_t b, const double* v) { out.emplace_back(b, v[4]); });
    std::sort(out.begin(), out.end());
    return out;
  };
  const auto before = rollups();
  REQUIRE(before.size() == 12);
  st.add(1, w0 + 7 * kMin + 1, 1000, now);
  st.flush();
  CHECK(rollups() == before);  // the late head does not hide the rollups
  st.compact_now();
  CHECK(rollups() == before);  // nor replace them
  CHECK(st.stats().dropped_old == 1);
  CHECK(st.list().at(w0).heads.empty());
}
