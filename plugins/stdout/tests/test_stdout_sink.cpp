#include <fcntl.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <outpost/testing.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "../../../sdk/jsonl/testing/sink_testing.hpp"

using namespace sink_testing;

namespace {

const outpost_plugin_descriptor* plugin() {
  static const auto* d =
      outpost::testing::open_plugin(OUTPOST_TEST_PLUGIN_DIR "/outpost_stdout.so");
  return d;
}

// Creates an instance with cfg, writes the batch with fd 1 pointing at a file and returns what
// reached it. Nothing may REQUIRE while stdout is redirected: Catch reports there.
std::string capture(const std::vector<std::pair<std::string, std::string>>& cfg,
                    const BatchBuilder& b, const std::string& file) {
  outpost::testing::FakeHost host(plugin());
  REQUIRE(host.create(cfg) == OUTPOST_OK);
  const outpost_batch batch = b.batch();
  std::cout.flush();
  std::fflush(stdout);
  const int saved = ::dup(STDOUT_FILENO);
  const int fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  REQUIRE((saved >= 0 && fd >= 0));
  ::dup2(fd, STDOUT_FILENO);
  const outpost_status s = plugin()->write(host.instance(), &batch);
  ::dup2(saved, STDOUT_FILENO);
  ::close(saved);
  ::close(fd);
  REQUIRE(s == OUTPOST_OK);
  std::ifstream in(file);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

BatchBuilder sample_batch() {
  BatchBuilder b;
  b.metric("rtt_ms", {{"device", "lo"}, {"address", "127.0.0.1"}}, 0.25, 1000)
      .metric("up", {}, 1, 2000, OUTPOST_METRIC_COUNTER)
      .metric("nan", {{"k", "line\nbreak"}}, std::nan(""), 3000)
      .event("gw", "availability", "down \"now\"", OUTPOST_SEV_WARNING, {{"b", "2"}, {"a", "1"}},
             4000)
      .flow(flow_v4({10, 0, 0, 1}, {10, 0, 0, 2}, 1234, 80, 5'000'000'000));
  return b;
}

}  // namespace

TEST_CASE("stdout: JSON lines parse with an independent parser") {
  TempDir dir;
  const std::string out = capture({}, sample_batch(), dir / "out");
  std::ofstream(dir / "copy") << out;
  if (!have_python()) {
    WARN("python3 not found: skipped the parse check");
    CHECK(!out.empty());
    return;
  }
  const std::string code =
      "import json,sys\n"
      "for l in open(sys.argv[1], encoding='utf-8'):\n"
      "    o = json.loads(l)\n"
      "    print(o['type'], o.get('name'), o.get('labels', o.get('attributes')), o.get('value'))\n";
  auto [status, printed] = run("python3 -c " + quote(code) + " " + quote(dir / "copy"));
  REQUIRE(status == 0);
  CHECK(printed ==
        "metric rtt_ms {'address': '127.0.0.1', 'device': 'lo'} 0.25\n"
        "metric up {} 1\n"
        "metric nan {'k': 'line\\nbreak'} None\n"
        "event None {'a': '1', 'b': '2'} None\n"
        "flow None None None\n");
}

TEST_CASE("stdout: the text format is compact and one record a line") {
  TempDir dir;
  CHECK(capture({{"format", "text"}}, sample_batch(), dir / "out") ==
        "rtt_ms{address=127.0.0.1,device=lo} 0.25\n"
        "up 1\n"
        "nan{k=line\\nbreak} NaN\n"
        "event warning gw availability: down \"now\" {a=1,b=2}\n"
        "flow 10.0.0.1:1234 -> 10.0.0.2:80 proto=6 bytes=1500 packets=3\n");
}

TEST_CASE("stdout: metrics, events and flows can be switched off") {
  TempDir dir;
  const std::string out = capture({{"metrics", "false"}, {"flows", "off"}, {"format", "text"}},
                                  sample_batch(), dir / "out");
  CHECK(out == "event warning gw availability: down \"now\" {a=1,b=2}\n");
  CHECK(
      capture({{"events", "false"}, {"metrics", "no"}, {"flows", "0"}}, sample_batch(), dir / "o2")
          .empty());
}

TEST_CASE("stdout: bad settings fail create") {
  for (const auto& cfg : std::vector<std::vector<std::pair<std::string, std::string>>>{
           {{"format", "xml"}}, {{"metrics", "perhaps"}}}) {
    outpost::testing::FakeHost host(plugin());
    CHECK(host.create(cfg) == OUTPOST_E_CONFIG);
    CHECK(host.instance() == nullptr);
  }
}
