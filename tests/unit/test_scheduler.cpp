// The scheduler and engine with real (test) plugins: isolation of hung and failing plugins,
// deadlines, availability events and reloads.
#include <algorithm>
#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <filesystem>
#include <functional>
#include <mutex>
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

const TargetStatus* find(const std::vector<TargetStatus>& ts, const std::string& dev,
                         const std::string& inst) {
  for (const auto& t : ts)
    if (t.device == dev && t.instance == inst) return &t;
  return nullptr;
}
}  // namespace

TEST_CASE("a hung plugin and a plugin that throws do not hold up the others") {
  const std::string yaml = R"(
engine:
  data_dir: )" + data_dir() +
                           R"(
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
engine: {data_dir: )" + data_dir() +
                                 R"(}
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
)"),
                                registry());
  REQUIRE(errors.size() == 3);
  CHECK(errors[0].str().find(
            "t.yaml:4:28: inventory.devices[0].monitors[0].plugin: no plugin named 'nosuch'") == 0);
  CHECK(errors[1].str().find("sinks.out: plugin 'good' is a poller, not a sink") !=
        std::string::npos);
  CHECK(errors[2].str() ==
        "t.yaml:4:68: inventory.devices[0].monitors[1].value: expected an integer, got 'x'");
}

TEST_CASE("a bad reload keeps the running configuration; a good one replaces it") {
  Engine engine(registry());
  REQUIRE(engine.start(parse(R"(
engine: {data_dir: )" + data_dir() +
                             R"(, summary_interval: 0}
inventory:
  devices:
    - {name: a, monitors: [{plugin: good, interval: 100ms}]}
)")));
  CHECK_FALSE(engine.reload(
      parse("inventory:\n  devices:\n    - {name: z, monitors: [{plugin: nosuch}]}\n")));
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

// ---- the scheduler alone, around one instance of the "good" test plugin ----------------------

namespace {
// A host for one instance: completions go to the scheduler, events are kept.
struct SchedHarness : HostServices {
  explicit SchedHarness(std::function<bool()> congested = {}, double jitter = 0) {
    InstanceSpec spec;
    spec.name = spec.plugin = "good";
    inst = std::make_unique<PluginInstance>(*this, *registry().find("good"), spec);
    std::string why;
    REQUIRE(inst->create(EngineSpec{}, why));
    REQUIRE(inst->start(why));
    SchedulerOptions o;
    o.jitter = jitter;
    o.congested = std::move(congested);
    sched = std::make_unique<Scheduler>(o, [this](Batch&& b) {
      std::lock_guard g(mu);
      BatchView v;
      std::vector<const Batch*> one{&b};
      v.build(one, true);
      const outpost_batch c = v.c_batch();
      for (std::size_t i = 0; i < c.event_count; ++i)
        events.push_back(std::string(c.events[i].source.ptr, c.events[i].source.len));
    });
  }
  ~SchedHarness() override {
    sched->stop();
    inst->stop();
  }
  TaskSpec task(const std::string& device, int status = 0, double interval_s = 0.05) {
    TaskSpec t;
    t.instance = inst.get();
    t.device = device;
    t.address = "127.0.0.1";
    if (status != 0) t.params = {{"status", std::to_string(status)}};
    t.interval_s = interval_s;
    t.timeout_s = 1;
    return t;
  }
  outpost_status emit(PluginInstance&, const outpost_batch&) override { return OUTPOST_OK; }
  void complete(PluginInstance& from, uint64_t poll_id, uint64_t target_id, outpost_status s,
                std::string_view detail) override {
    sched->complete(from.name(), poll_id, target_id, s, detail);
  }
  outpost_status secret(std::string_view, std::string&) override { return OUTPOST_E_NOT_FOUND; }
  outpost_status reply(uint64_t, const outpost_sockaddr&, const uint8_t*, std::size_t) override {
    return OUTPOST_E_UNSUPPORTED;
  }
  std::size_t events_of(const std::string& device) {
    std::lock_guard g(mu);
    return static_cast<std::size_t>(std::count(events.begin(), events.end(), device));
  }
  uint64_t results(outpost_status s) {
    const auto st = sched->stats();
    auto it = st.instances.find("good");
    if (it == st.instances.end()) return 0;
    auto r = it->second.results.find(s);
    return r == it->second.results.end() ? 0 : r->second;
  }

  std::unique_ptr<PluginInstance> inst;
  std::unique_ptr<Scheduler> sched;
  std::mutex mu;
  std::vector<std::string> events;
};

// Waits for a condition (a bound only stops a broken test; nothing is timed).
template <typename F>
bool eventually(F&& f) {
  for (int i = 0; i < 1000; ++i) {
    if (f()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return f();
}
}  // namespace

TEST_CASE("scheduler: a target the plugin had no capacity for is skipped, not a failed device") {
  SchedHarness h;
  h.sched->set_tasks({h.task("skipped", OUTPOST_E_OVERLOADED), h.task("busy", OUTPOST_E_BUSY),
                      h.task("down", OUTPOST_E_UNAVAILABLE)});
  h.sched->start();
  REQUIRE(eventually(
      [&] { return h.results(OUTPOST_E_OVERLOADED) >= 3 && h.results(OUTPOST_E_BUSY) >= 3; }));
  h.sched->stop();
  const auto ts = h.sched->targets();
  REQUIRE(ts.size() == 3);
  CHECK_FALSE(ts[0].polled);  // never a verdict on the device
  CHECK(ts[0].skipped >= 3);
  CHECK_FALSE(ts[1].polled);
  CHECK(ts[2].polled);
  CHECK_FALSE(ts[2].ok);
  CHECK(h.events_of("skipped") == 0);
  CHECK(h.events_of("busy") == 0);
  CHECK(h.events_of("down") == 1);  // the one real failure, announced once
  const auto st = h.sched->stats().instances.at("good");
  CHECK(st.skipped == st.results.at(OUTPOST_E_OVERLOADED) + st.results.at(OUTPOST_E_BUSY));
  CHECK(st.targets_failing == 1);
}

TEST_CASE("scheduler: while the pipeline is congested nothing is dispatched; then polls run late") {
  std::atomic<bool> congested{true};
  SchedHarness h([&] { return congested.load(); });
  h.sched->set_tasks({h.task("a"), h.task("b")});
  h.sched->start();
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // six intervals
  CHECK(h.sched->stats().instances.at("good").polls == 0);
  CHECK(h.sched->stats().held_s > 0);
  congested = false;
  REQUIRE(eventually([&] { return h.results(OUTPOST_OK) >= 4; }));
  const auto st = h.sched->stats();
  CHECK(st.instances.at("good").delayed >= 2);  // both first polls ran late, and say so
  CHECK(st.instances.at("good").delay_sum_s > 0.2);
  CHECK(h.events_of("a") == 0);  // late is not down
}

TEST_CASE("scheduler: a reload keeps what did not change: availability, counters, phase") {
  SchedHarness h;
  h.sched->set_tasks({h.task("down", OUTPOST_E_UNAVAILABLE), h.task("up")});
  h.sched->start();
  REQUIRE(eventually(
      [&] { return h.results(OUTPOST_OK) >= 3 && h.results(OUTPOST_E_UNAVAILABLE) >= 3; }));
  h.sched->stop();
  CHECK(h.events_of("down") == 1);
  const uint64_t ok_before = h.results(OUTPOST_OK);
  for (int reload = 0; reload < 3; ++reload) {
    h.sched->set_tasks({h.task("down", OUTPOST_E_UNAVAILABLE), h.task("up"), h.task("new")});
    const uint64_t counted = h.results(OUTPOST_OK);
    CHECK(counted >= ok_before);  // counters carry on, not restart at 0
    h.sched->start();
    REQUIRE(eventually([&] { return h.results(OUTPOST_OK) >= counted + 3; }));
    h.sched->stop();
  }
  CHECK(h.events_of("down") == 1);  // still failing: not announced again after each reload
  const auto ts = h.sched->targets();
  REQUIRE(ts.size() == 3);
  CHECK(ts[0].consecutive_failures >= 6);
  CHECK(ts[2].polled);
}

TEST_CASE("scheduler: each task has a fixed phase, and a fleet's phases spread evenly") {
  TaskSpec t;
  t.device = "core-router";
  t.address = "10.0.0.1";
  const double p = task_phase(task_key(t));
  CHECK(p >= 0);
  CHECK(p < 1);
  CHECK(task_phase(task_key(t)) == p);  // the same every cycle, reload and restart
  t.params = {{"port", "22"}};
  CHECK(task_phase(task_key(t)) != p);  // another monitor of the device: its own phase
  int deciles[10] = {};
  for (int i = 0; i < 10000; ++i) {
    TaskSpec d;
    d.device = "dev-" + std::to_string(i);
    d.address = "10.1." + std::to_string(i / 256) + "." + std::to_string(i % 256);
    deciles[static_cast<int>(task_phase(task_key(d)) * 10)]++;
  }
  for (int n : deciles) {
    CHECK(n > 900);  // 1,000 expected in each tenth of the interval
    CHECK(n < 1100);
  }
}

TEST_CASE("scheduler: a reload that shortens an interval does not wait out the old one") {
  SchedHarness h;
  h.sched->set_tasks({h.task("a", 0, 3600)});
  h.sched->start();
  REQUIRE(eventually([&] { return h.results(OUTPOST_OK) >= 1; }));  // next one due in an hour
  h.sched->stop();
  h.sched->set_tasks({h.task("a", 0, 0.05)});
  h.sched->start();
  CHECK(eventually([&] { return h.results(OUTPOST_OK) >= 3; }));
  h.sched->stop();
}
