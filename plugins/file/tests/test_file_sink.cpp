#include <catch2/catch.hpp>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <outpost/testing.hpp>
#include <string>
#include <vector>

#include "../../../sdk/jsonl/testing/sink_testing.hpp"

using namespace sink_testing;
namespace fs = std::filesystem;

namespace {

const outpost_plugin_descriptor* plugin() {
  static const auto* d = outpost::testing::open_plugin(OUTPOST_TEST_PLUGIN_DIR "/outpost_file.so");
  return d;
}

outpost_status write(outpost::testing::FakeHost& host, const BatchBuilder& b) {
  const outpost_batch batch = b.batch();
  return plugin()->write(host.instance(), &batch);
}

std::vector<std::string> lines(const std::string& path) {
  std::ifstream in(path);
  std::vector<std::string> out;
  for (std::string l; std::getline(in, l);) out.push_back(l);
  return out;
}

// Python's json module is the independent parser: every line must load as one object. Prints
// `expr` evaluated for each object o.
std::string python_each(const std::string& path, const std::string& expr) {
  const std::string code =
      "import json,sys\n"
      "for l in open(sys.argv[1], encoding='utf-8'):\n"
      "    assert l.endswith('\\n')\n"
      "    o = json.loads(l)\n"
      "    print(" +
      expr + ")\n";
  auto [status, out] = run("python3 -c " + quote(code) + " " + quote(path));
  REQUIRE(status == 0);
  return out;
}

}  // namespace

TEST_CASE("file: writes one JSON object a line that an independent parser reads back") {
  if (!have_python()) {
    WARN("python3 not found: skipped");
    return;
  }
  TempDir dir;
  const std::string path = dir / "logs/out.jsonl";
  const int64_t t = 1'700'000'000'123'456'789;
  {
    outpost::testing::FakeHost host(plugin());
    REQUIRE(host.create({{"path", path}}) == OUTPOST_OK);
    BatchBuilder b;
    b.metric("rtt_ms", {{"device", "lo"}, {"address", "127.0.0.1"}}, 0.25, t)
        .metric("bytes", {}, 1e21, t, OUTPOST_METRIC_COUNTER)
        .metric("nan", {{"k", "v"}}, std::nan(""), t)
        .metric("inf", {}, -HUGE_VAL, t)
        .metric("stamped", {}, 1, 0)
        .event("gw", "syslog", "quote\" backslash\\ nl\n tab\t ctl\x01\x1f del\x7f é \xff\xfe end",
               OUTPOST_SEV_ERROR, {{"z", "1"}, {"a", "\xe2\x82"}}, t)
        .flow(flow_v4({10, 0, 0, 1}, {10, 0, 0, 2}, 1234, 80, t));
    REQUIRE(write(host, b) == OUTPOST_OK);
    REQUIRE(plugin()->flush(host.instance()) == OUTPOST_OK);
    REQUIRE(host.errors().empty());
  }
  CHECK(python_each(path, "o['type'], o.get('name'), o.get('value'), o.get('kind')") ==
        "metric rtt_ms 0.25 gauge\n"
        "metric bytes 1e+21 counter\n"
        "metric nan None gauge\n"
        "metric inf None gauge\n"
        "metric stamped 1 gauge\n"
        "event None None syslog\n"
        "flow None None None\n");
  const auto l = lines(path);
  REQUIRE(l.size() == 7);
  CHECK(l[0] ==
        R"({"type":"metric","name":"rtt_ms","labels":{"address":"127.0.0.1","device":"lo"},)"
        R"("value":0.25,"time_ns":1700000000123456789,"kind":"gauge"})");
  // Python re-encodes what it parsed: control characters, quotes and backslashes survived the
  // round trip and invalid UTF-8 became U+FFFD.
  CHECK(
      python_each(path,
                  "json.dumps([o['message'], o['attributes'], o['severity']]) "
                  "if o['type'] == 'event' else ''")
          .find(
              R"(["quote\" backslash\\ nl\n tab\t ctl\u0001\u001f del\u007f \u00e9 \ufffd\ufffd end", {"a": "\ufffd\ufffd", "z": "1"}, 3])") !=
      std::string::npos);
  CHECK(python_each(path,
                    "o.get('src'), o.get('dst'), o.get('exporter'), o.get('src_port'), "
                    "o.get('dst_port'), o.get('protocol'), o.get('bytes'), o.get('end_ns')")
            .find("10.0.0.1 10.0.0.2 192.0.2.1 1234 80 6 1500 1700000000123456789") !=
        std::string::npos);
  // time_ns 0 is stamped with the current time.
  const auto stamped = python_each(path, "o['time_ns'] if o.get('name') == 'stamped' else 0");
  int64_t latest = 0;
  for (std::size_t pos = 0; pos < stamped.size();) {
    const std::size_t nl = stamped.find('\n', pos);
    latest = std::max(latest, static_cast<int64_t>(std::stoll(stamped.substr(pos, nl - pos))));
    pos = nl + 1;
  }
  CHECK(std::llabs(latest - now_ns()) < int64_t{60'000'000'000});
}

TEST_CASE("file: appends to an existing file") {
  TempDir dir;
  const std::string path = dir / "a.jsonl";
  for (int round = 0; round < 2; ++round) {
    outpost::testing::FakeHost host(plugin());
    REQUIRE(host.create({{"path", path}}) == OUTPOST_OK);
    BatchBuilder b;
    b.metric("m", {}, round, 1);
    REQUIRE(write(host, b) == OUTPOST_OK);
  }
  CHECK(lines(path).size() == 2);
}

TEST_CASE("file: rotates at max_size and keeps max_files") {
  TempDir dir;
  const std::string path = dir / "r.jsonl";
  outpost::testing::FakeHost host(plugin());
  REQUIRE(host.create({{"path", path}, {"max_size", "1000"}, {"max_files", "2"}}) == OUTPOST_OK);
  int next = 0;
  for (int batch = 0; batch < 10; ++batch) {
    BatchBuilder b;
    for (int i = 0; i < 7; ++i, ++next)
      b.metric("metric", {{"seq", std::to_string(next)}}, next, 1);
    REQUIRE(write(host, b) == OUTPOST_OK);
  }
  REQUIRE(fs::exists(path));
  REQUIRE(fs::exists(path + ".1"));
  REQUIRE(fs::exists(path + ".2"));
  CHECK(!fs::exists(path + ".3"));
  // Files split only between lines, each within the bound, and hold the newest lines in order.
  std::vector<std::string> all;
  for (const std::string& f : {path + ".2", path + ".1", path}) {
    CHECK(fs::file_size(f) <= 1000);
    for (const auto& l : lines(f)) all.push_back(l);
  }
  REQUIRE(!all.empty());
  for (std::size_t i = 0; i < all.size(); ++i) {
    const std::string seq =
        std::to_string(next - static_cast<int>(all.size()) + static_cast<int>(i));
    CHECK(all[i].find("\"seq\":\"" + seq + "\"") != std::string::npos);
  }
  if (have_python()) {
    for (const std::string& f : {path + ".2", path + ".1", path}) python_each(f, "o['type']");
  }
}

TEST_CASE("file: a file moved away is recreated") {
  TempDir dir;
  const std::string path = dir / "m.jsonl";
  outpost::testing::FakeHost host(plugin());
  REQUIRE(host.create({{"path", path}}) == OUTPOST_OK);
  BatchBuilder b;
  b.metric("m", {}, 1, 1);
  REQUIRE(write(host, b) == OUTPOST_OK);
  fs::rename(path, path + ".old");
  REQUIRE(write(host, b) == OUTPOST_OK);
  CHECK(lines(path).size() == 1);
  CHECK(lines(path + ".old").size() == 1);
}

TEST_CASE("file: a full disk asks for a retry") {
  outpost::testing::FakeHost host(plugin());
  REQUIRE(host.create({{"path", "/dev/full"}, {"max_size", "10"}}) == OUTPOST_OK);
  BatchBuilder b;
  b.metric("m", {}, 1, 1).metric("m", {}, 2, 1);
  CHECK(write(host, b) == OUTPOST_E_UNAVAILABLE);
  CHECK(fs::exists("/dev/full"));  // a device is never rotated
  CHECK(!fs::exists("/dev/full.1"));
}

TEST_CASE("file: bad settings fail create") {
  TempDir dir;
  const std::string plain = dir / "plain";
  std::ofstream(plain) << "x";
  const std::vector<std::vector<std::pair<std::string, std::string>>> bad = {
      {},
      {{"path", ""}},
      {{"path", plain + "/sub/x.jsonl"}},
      {{"path", dir.path().string()}},
      {{"path", "/proc/outpost-nope/x.jsonl"}},
      {{"path", dir / "ok"}, {"max_size", "-1"}},
      {{"path", dir / "ok"}, {"max_files", "many"}},
  };
  for (const auto& cfg : bad) {
    outpost::testing::FakeHost host(plugin());
    CHECK(host.create(cfg) == OUTPOST_E_CONFIG);
    CHECK(host.instance() == nullptr);
  }
}
