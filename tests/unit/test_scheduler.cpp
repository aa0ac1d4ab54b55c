// The scheduler and engine with real (test) plugins: isolation of hung and failing plugins,
// deadlines, availability events and reloads.
#include <catch2/catch.hpp>

#include <chrono>
#include <filesystem>
#include <thread>

#include "engine/engine.hpp"
#include "test_plugins.hpp"

using namespace outpost::core;
namespace fs = std::filesystem;

namespace {
Config parse(const std::string& yaml) {
  auto r = parse_config_text(yaml, "t.yaml");
  INFO((r.errors.empty() ? "" : r.errors[0].str()));
  REQUIRE(r.config);
  return *r.config;
}

const PluginRegistry& registry() {
  static PluginRegistry r = [] {
    PluginRegistry x;
    x.load_dirs({OUTPOST_TEST_PLUGINS_DIR});
    return x;
  }();
  return r;
}

std::string data_dir() {
  auto d = fs::temp_directory_path() / ("outpost-sched-" + std::to_string(::getpid()));
  fs::create_directories(d);
  return d.string();
}

const TargetStatus* find(const std::vector<TargetStatus>& ts, const std::string& dev, const std::string& inst) {
  for (const auto& t : ts)
    if (t.device == dev && t.instance == inst) return &t;
  return nullptr;
}
}  // namespace

TEST_CASE("a hung plugin and a plugin that throws do not hold up the others") {
  const std::string yaml = R"(
engine:
  data_dir: )" + data_dir() + R"(
  summary_interval: 0
  scheduler: {jitter: 0}
inventory:
  devices:
    - name: a
      address: 127.0.0.1
      monitors:
        - {plugin: good, interval: 100ms, timeout: 100ms, value: 3}
        - {plugin: hang, interval: 200ms, timeout: 150ms}
        - {plugin: throws_sdk, interval: 100ms}
        - {plugin: throws_raw, interval: 100ms}
    - name: b
      address: 127.0.0.2
      monitors:
        - {plugin: good, interval: 100ms, timeout: 100ms}
)";
  Engine engine(registry());
  REQUIRE(engine.start(parse(yaml)));  // the throwing instances fail alone
  std::this_thread::sleep_for(std::chrono::milliseconds(1200));
  const auto ts = engine.targets();
  REQUIRE(ts.size() == 3);  // the two throwing instances have no targets
  const TargetStatus* good_a = find(ts, "a", "good");
  const TargetStatus* good_b = find(ts, "b", "good");
  const TargetStatus* hang_a = find(ts, "a", "hang");
  REQUIRE(good_a);
  REQUIRE(good_b);
  REQUIRE(hang_a);
  CHECK(good_a->ok);
  CHECK(good_b->ok);
  CHECK(hang_a->polled);
  CHECK_FALSE(hang_a->ok);
  CHECK(hang_a->last_status == OUTPOST_E_TIMEOUT);
  const auto ss = engine.scheduler_stats();
  CHECK(ss.instances.at("good").results.at(OUTPOST_OK) >= 10);  // ~12 rounds x 2 targets
  CHECK(ss.instances.at("hang").results.at(OUTPOST_E_TIMEOUT) >= 3);
  const auto ps = engine.pipeline_stats();
  CHECK(ps.accepted >= 10);  // test_polled metrics and availability events
  engine.stop();
  CHECK(engine.pipeline_stats().dropped.empty());
}

TEST_CASE("a configuration with errors is refused before anything starts") {
  Engine engine(registry());
  CHECK_FALSE(engine.start(parse(R"(
engine: {data_dir: )" + data_dir() + R"(}
inventory:
  devices:
    - {name: a, monitors: [{plugin: good, valu: 1}]}
)")));
  auto errors = validate_config(parse(R"(
inventory:
  devices:
    - {name: a, monitors: [{plugin: nosuch}, {plugin: good, value: x}]}
sinks:
  out: {plugin: good}
)"), registry());
  REQUIRE(errors.size() == 3);
  CHECK(errors[0].str().find("t.yaml:4:28: inventory.devices[0].monitors[0].plugin: no plugin named 'nosuch'") == 0);
  CHECK(errors[1].str().find("sinks.out: plugin 'good' is a poller, not a sink") != std::string::npos);
  CHECK(errors[2].str() == "t.yaml:4:68: inventory.devices[0].monitors[1].value: expected an integer, got 'x'");
}

TEST_CASE("a bad reload keeps the running configuration; a good one replaces it") {
  Engine engine(registry());
  REQUIRE(engine.start(parse(R"(
engine: {data_dir: )" + data_dir() + R"(, summary_interval: 0}
inventory:
  devices:
    - {name: a, monitors: [{plugin: good, interval: 100ms}]}
)")));
  CHECK_FALSE(engine.reload(parse("inventory:\n  devices:\n    - {name: z, monitors: [{plugin: nosuch}]}\n")));
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  auto ts = engine.targets();
  REQUIRE(ts.size() == 1);
  CHECK(ts[0].device == "a");
  CHECK(ts[0].ok);
  REQUIRE(engine.reload(parse(R"(
inventory:
  devices:
    - {name: b, monitors: [{plugin: good, interval: 100ms}]}
    - {name: c, monitors: [{plugin: good, interval: 100ms}]}
)")));
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  ts = engine.targets();
  REQUIRE(ts.size() == 2);
  CHECK(ts[0].device == "b");
  CHECK(ts[1].ok);
  engine.stop();
}
