// The scheduler and engine with real (test) plugins: isolation of hung and failing plugins,
// deadlines, availability events and reloads. The engine tests run on the real clocks but wait
// only for conditions; the scheduler's own tests run on a ManualClock that moves only when the
// test moves it, so no assertion depends on how fast a thread runs or what time it is.
#include <algorithm>
#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <filesystem>
#include <functional>
#include <future>
#include <map>
#include <mutex>
#include <set>
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

// One directory for the whole run, removed when the test binary exits.
std::string data_dir() {
  struct Dir {
    fs::path path = fs::temp_directory_path() / ("outpost-sched-" + std::to_string(::getpid()));
    Dir() { fs::create_directories(path); }
    ~Dir() {
      std::error_code ec;
      fs::remove_all(path, ec);
    }
  };
  static const Dir dir;
  return dir.path.string();
}

const TargetStatus* find(const std::vector<TargetStatus>& ts, const std::string& dev,
                         const std::string& inst) {
  for (const auto& t : ts)
    if (t.device == dev && t.instance == inst) return &t;
  return nullptr;
}

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
  const auto count = [&](const char* inst, outpost_status st) -> uint64_t {
    const auto ss = engine.scheduler_stats();
    const auto i = ss.instances.find(inst);
    if (i == ss.instances.end()) return 0;
    const auto r = i->second.results.find(st);
    return r == i->second.results.end() ? 0 : r->second;
  };
  // Rounds of both, however fast or slow this machine runs them. Seven timeouts of the hang
  // poll (every 200 ms, 150 ms after dispatch) come 1.35 s or more after its hook began: past
  // the 1 s after which stop() leaves a hook that is still running alone (not destroyed).
  REQUIRE(eventually([&] {
    return count("good", OUTPOST_OK) >= 10 && count("hang", OUTPOST_E_TIMEOUT) >= 7 &&
           engine.pipeline_stats().accepted >= 10;  // test_polled metrics and events
  }));
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
  REQUIRE(eventually([&] {
    const auto t = engine.targets();
    return t.size() == 1 && t[0].polled;
  }));
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
  REQUIRE(eventually([&] {
    const auto t = engine.targets();
    return t.size() == 2 && t[0].polled && t[1].polled;
  }));
  ts = engine.targets();
  REQUIRE(ts.size() == 2);
  CHECK(ts[0].device == "b");
  CHECK(ts[1].ok);
  engine.stop();
}

// ---- the scheduler alone, around one instance of the "good" test plugin, on a ManualClock ----

namespace {
using Clock = MonoClock;
using std::chrono::milliseconds;
using std::chrono::seconds;

// The scheduler's conversion of configured seconds, so expected times match to the nanosecond.
Clock::duration secs(double s) {
  return std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(s));
}
// Targets due this close together go out in one batch (the scheduler's coalescing window).
constexpr auto kCoalesce = milliseconds(20);

// One poll of one target as the plugin saw it, and when (on the test's clock).
struct Call {
  std::string device;
  uint64_t poll_id = 0, target_id = 0;
  outpost_status status = OUTPOST_OK;
  Clock::time_point at;
};

SchedulerOptions options(double jitter = 0) {
  SchedulerOptions o;
  o.jitter = jitter;
  return o;
}

// A host for one instance. The scheduler runs no thread: the test moves the clock and the
// harness makes the scheduler do what is due (settle). The plugin's answers go to the
// scheduler unless the test holds them back (hold) to answer later (answer).
struct SchedHarness : HostServices {
  explicit SchedHarness(SchedulerOptions o = options()) {
    InstanceSpec spec;
    spec.name = spec.plugin = "good";
    inst = std::make_unique<PluginInstance>(*this, *registry().find("good"), spec);
    std::string why;
    REQUIRE(inst->create(EngineSpec{}, why));
    REQUIRE(inst->start(why));
    o.clock = clock;
    sched = std::make_unique<Scheduler>(o, [this](Batch&& b) {
      std::lock_guard g(mu);
      BatchView v;
      std::vector<const Batch*> one{&b};
      v.build(one, true);
      const outpost_batch c = v.c_batch();
      for (std::size_t i = 0; i < c.event_count; ++i)
        events.emplace_back(std::string(c.events[i].source.ptr, c.events[i].source.len),
                            std::string(c.events[i].message.ptr, c.events[i].message.len));
    });
  }
  ~SchedHarness() override {
    sched->stop();
    inst->stop();
  }
  TaskSpec task(const std::string& device, int status = 0, double interval_s = 10,
                double timeout_s = 5) {
    TaskSpec t;
    t.instance = inst.get();
    t.device = device;
    t.address = "127.0.0.1";
    if (status != 0) t.params = {{"status", std::to_string(status)}};
    t.interval_s = interval_s;
    t.timeout_s = timeout_s;
    return t;
  }

  // The plugin emits a test_polled metric labelled with the device, then completes the target.
  outpost_status emit(PluginInstance&, const outpost_batch& b) override {
    std::lock_guard g(mu);
    for (std::size_t i = 0; i < b.metric_count; ++i)
      for (std::size_t k = 0; k < b.metrics[i].label_count; ++k) {
        const outpost_kv& l = b.metrics[i].labels[k];
        if (std::string_view(l.key.ptr, l.key.len) == "device")
          polling.assign(l.value.ptr, l.value.len);
      }
    return OUTPOST_OK;
  }
  void complete(PluginInstance& from, uint64_t poll_id, uint64_t target_id, outpost_status s,
                std::string_view detail) override {
    Call c;
    {
      std::lock_guard g(mu);
      c = Call{polling, poll_id, target_id, s, clock->mono()};
      if (auto o = answers.find(c.device); o != answers.end()) c.status = o->second;
      calls.push_back(c);
      if (held.count(c.device) != 0) {
        outstanding.push_back(c);
        return;
      }
    }
    sched->complete(from.name(), poll_id, target_id, c.status, detail);
  }
  outpost_status secret(std::string_view, std::string&) override { return OUTPOST_E_NOT_FOUND; }
  outpost_status reply(uint64_t, const outpost_sockaddr&, const uint8_t*, std::size_t) override {
    return OUTPOST_E_UNSUPPORTED;
  }

  // What the device answers from now on (instead of its "status" parameter).
  void set_status(const std::string& device, outpost_status s) {
    std::lock_guard g(mu);
    answers[device] = s;
  }
  // The device's answers are kept back until answer().
  void hold(const std::string& device) {
    std::lock_guard g(mu);
    held.insert(device);
  }
  // Hands the device's kept answers to the scheduler now (with status st) and stops holding it.
  std::size_t answer(const std::string& device, outpost_status st = OUTPOST_OK) {
    std::vector<Call> now;
    {
      std::lock_guard g(mu);
      held.erase(device);
      auto it = std::stable_partition(outstanding.begin(), outstanding.end(),
                                      [&](const Call& c) { return c.device != device; });
      now.assign(it, outstanding.end());
      outstanding.erase(it, outstanding.end());
    }
    for (const Call& c : now) sched->complete("good", c.poll_id, c.target_id, st, "");
    return now.size();
  }

  // Returns once every hook queued on the instance so far has run: the instance's jobs run in
  // order on its thread, and the test plugin answers inside poll().
  void drain() {
    auto done = std::make_shared<std::promise<void>>();
    auto f = done->get_future();
    REQUIRE(inst->post([done] { done->set_value(); }));
    REQUIRE(f.wait_for(seconds(60)) == std::future_status::ready);  // only stops a broken test
  }
  // Everything due at the clock's time: dispatch, the plugin's answers, what they make room for.
  // Returns when the scheduler next has something to do.
  Clock::time_point settle() {
    for (;;) {
      const std::size_t before = call_count();
      const Clock::time_point next = sched->run_due();
      // What is due now was done: a wake-up at or before now would make its thread spin.
      REQUIRE(next > clock->mono());
      drain();
      if (call_count() == before) return next;
    }
  }
  // What the scheduler's thread would do until t: it wakes at every time run_due() names.
  void run_until(Clock::time_point t) {
    for (Clock::time_point next = settle(); next <= t; next = settle()) clock->advance_to(next);
    clock->advance_to(t);
    settle();
  }

  std::size_t call_count() {
    std::lock_guard g(mu);
    return calls.size();
  }
  std::vector<Call> calls_of(const std::string& device) {
    std::lock_guard g(mu);
    std::vector<Call> out;
    for (const auto& c : calls)
      if (c.device == device) out.push_back(c);
    return out;
  }
  std::vector<Call> all_calls() {
    std::lock_guard g(mu);
    return calls;
  }
  std::vector<std::string> events_of(const std::string& device) {
    std::lock_guard g(mu);
    std::vector<std::string> out;
    for (const auto& [source, message] : events)
      if (source == device) out.push_back(message);
    return out;
  }
  InstancePollStats stats() {
    const auto st = sched->stats();
    auto it = st.instances.find("good");
    return it == st.instances.end() ? InstancePollStats{} : it->second;
  }
  uint64_t results(outpost_status s) {
    const auto st = stats();
    auto r = st.results.find(s);
    return r == st.results.end() ? 0 : r->second;
  }
  TargetStatus target(const std::string& device) {
    for (const auto& t : sched->targets())
      if (t.device == device) return t;
    FAIL("no target " << device);
    return {};
  }
  Clock::time_point t0() const { return clock->start(); }  // when start() was called
  // Where in its interval a target's runs fall (jitter 1).
  Clock::time_point first_due(const TaskSpec& t) const {
    return t0() + secs(t.interval_s * task_phase(task_key(t)));
  }

  std::shared_ptr<ManualClock> clock = std::make_shared<ManualClock>();
  std::unique_ptr<PluginInstance> inst;
  std::unique_ptr<Scheduler> sched;
  std::mutex mu;
  std::string polling;                            // the device the plugin is polling now
  std::map<std::string, outpost_status> answers;  // set_status
  std::set<std::string> held;
  std::vector<Call> calls, outstanding;
  std::vector<std::pair<std::string, std::string>> events;  // source, message
};
}  // namespace

TEST_CASE("scheduler: no more than max_in_flight targets are out; the rest go as room frees") {
  auto o = options();
  o.max_in_flight = 3;
  SchedHarness h(o);
  std::vector<TaskSpec> tasks;
  for (const char* d : {"a", "b", "c", "d", "e"}) {
    tasks.push_back(h.task(d));
    h.hold(d);
  }
  h.sched->set_tasks(tasks);
  h.sched->start();
  h.settle();
  auto calls = h.all_calls();
  REQUIRE(calls.size() == 3);  // five due, three dispatched
  CHECK(h.sched->stats().in_flight == 3);
  h.run_until(h.t0() + seconds(2));  // nothing more while all three are out
  CHECK(h.call_count() == 3);
  CHECK(h.stats().delayed == 0);

  CHECK(h.answer(calls[0].device) == 1);
  h.settle();
  REQUIRE(h.call_count() == 4);  // the room one answer made, taken at once
  CHECK(h.sched->stats().in_flight == 3);
  CHECK(h.all_calls()[3].at == h.t0() + seconds(2));
  CHECK(h.stats().delayed == 1);  // it went two seconds late, and says so
  CHECK(h.stats().delay_sum_s == Approx(2.0));

  CHECK(h.answer(calls[1].device) == 1);
  h.settle();
  REQUIRE(h.call_count() == 5);
  CHECK(h.stats().delayed == 2);
  CHECK(h.stats().delay_sum_s == Approx(4.0));
  calls = h.all_calls();
  std::set<std::string> devices;
  for (const auto& c : calls) devices.insert(c.device);
  CHECK(devices.size() == 5);  // every target once
  for (const char* d : {"a", "b", "c", "d", "e"}) h.answer(d);
  h.settle();
  CHECK(h.sched->stats().in_flight == 0);
  CHECK(h.results(OUTPOST_OK) == 5);
  CHECK(h.stats().busy == 0);
  CHECK(h.stats().skipped == 0);
}

TEST_CASE("scheduler: an instance's due targets are split into batches of max_batch_targets") {
  auto o = options();
  o.max_batch_targets = 4;
  SchedHarness h(o);
  std::vector<TaskSpec> tasks;
  for (int i = 0; i < 10; ++i) tasks.push_back(h.task("dev-" + std::to_string(i)));
  h.sched->set_tasks(tasks);
  h.sched->start();
  h.settle();
  std::map<uint64_t, std::vector<Call>> polls;
  std::map<std::string, int> seen;
  for (const auto& c : h.all_calls()) {
    polls[c.poll_id].push_back(c);
    seen[c.device]++;
  }
  CHECK(polls.size() == 3);  // 4 + 4 + 2
  CHECK(h.stats().polls == 3);
  for (const auto& [id, cs] : polls) {
    CHECK(cs.size() <= 4);
    for (std::size_t i = 0; i < cs.size(); ++i) CHECK(cs[i].target_id == i + 1);
  }
  REQUIRE(seen.size() == 10);
  for (const auto& [device, n] : seen) CHECK(n == 1);  // every target in exactly one
  CHECK(h.results(OUTPOST_OK) == 10);
}

TEST_CASE("scheduler: a target still out is not polled again; missed cycles are skipped") {
  SchedHarness h(options(1));
  const TaskSpec t = h.task("slow", 0, 10, 60);  // its answers may take longer than a cycle
  const Clock::time_point first = h.first_due(t);
  h.sched->set_tasks({t});
  h.hold("slow");
  h.sched->start();
  h.run_until(first);
  REQUIRE(h.call_count() == 1);
  CHECK(h.all_calls()[0].at == first);

  h.run_until(first + seconds(25));  // two more cycles come while the first poll is out
  CHECK(h.call_count() == 1);        // not dispatched twice
  auto st = h.stats();
  CHECK(st.polls == 1);
  CHECK(st.busy == 0);  // waiting on its own poll is not "busy" or "skipped": nothing counts it
  CHECK(st.skipped == 0);
  CHECK(st.results.empty());

  CHECK(h.answer("slow") == 1);
  // The cycles at +10 s and +20 s are gone; the next is the one at +30 s, on its phase.
  CHECK(h.settle() == first + seconds(30));
  CHECK(h.call_count() == 1);
  h.run_until(first + seconds(30));
  REQUIRE(h.call_count() == 2);
  CHECK(h.all_calls()[1].at == first + seconds(30));

  // The clock jumps ten and a half cycles (a suspended machine): one run, not ten.
  h.clock->advance(seconds(103));
  const Clock::time_point next = h.settle();
  REQUIRE(h.call_count() == 3);
  CHECK(h.all_calls()[2].at == first + seconds(133));
  CHECK(next == first + seconds(140));  // and its phase is kept
  st = h.stats();
  CHECK(st.delayed == 1);  // the run that came 93 s after its due time
  CHECK(st.delay_sum_s == Approx(93.0));
  h.run_until(first + seconds(140));
  REQUIRE(h.call_count() == 4);
  CHECK(h.all_calls()[3].at == first + seconds(140));
  CHECK(h.results(OUTPOST_OK) == 4);
}

TEST_CASE("scheduler: an answer after the deadline is late; the timeout stands") {
  SchedHarness h;
  h.sched->set_tasks({h.task("a", 0, 10, 5)});
  h.sched->start();
  h.settle();
  REQUIRE(h.results(OUTPOST_OK) == 1);
  CHECK(h.target("a").ok);

  h.hold("a");
  h.run_until(h.t0() + seconds(15) - Clock::duration(1));
  REQUIRE(h.call_count() == 2);              // the poll at +10 s is out
  CHECK(h.results(OUTPOST_E_TIMEOUT) == 0);  // not a moment before its deadline
  h.run_until(h.t0() + seconds(15));         // its deadline
  CHECK(h.results(OUTPOST_E_TIMEOUT) == 1);  // timed out once
  CHECK(h.target("a").last_status == OUTPOST_E_TIMEOUT);
  CHECK_FALSE(h.target("a").ok);
  REQUIRE(h.events_of("a").size() == 1);
  CHECK(h.events_of("a")[0].find("failed: ") != std::string::npos);

  h.clock->advance(seconds(1));
  CHECK(h.answer("a", OUTPOST_OK) == 1);  // the answer comes after all
  h.settle();
  CHECK(h.stats().late == 1);
  CHECK(h.results(OUTPOST_E_TIMEOUT) == 1);  // still reported once
  CHECK(h.results(OUTPOST_OK) == 1);         // and the late answer is no result
  CHECK_FALSE(h.target("a").ok);             // nor a change of availability
  CHECK(h.target("a").last_status == OUTPOST_E_TIMEOUT);
  CHECK(h.events_of("a").size() == 1);

  h.run_until(h.t0() + seconds(20));  // the next poll, answered in time
  CHECK(h.target("a").ok);
  CHECK(h.events_of("a").size() == 2);
  CHECK(h.stats().late == 1);
}

TEST_CASE("scheduler: a target runs one interval apart at its phase; a monitor's targets spread") {
  SchedHarness h(options(1));
  const TaskSpec one = h.task("core-router");
  std::vector<TaskSpec> tasks{one};
  for (int i = 0; i < 200; ++i) tasks.push_back(h.task("dev-" + std::to_string(i)));
  h.sched->set_tasks(tasks);
  h.sched->start();
  h.run_until(h.t0() + seconds(35));

  const auto runs = h.calls_of("core-router");
  REQUIRE(runs.size() >= 3);
  const Clock::time_point first = h.first_due(one);
  CHECK(runs[0].at <= first);  // at its phase, or with a batch due a moment before it
  CHECK(first - runs[0].at < kCoalesce);
  for (std::size_t k = 1; k < runs.size(); ++k) {
    const Clock::time_point due = first + seconds(10) * static_cast<int>(k);
    CHECK(runs[k].at <= due);
    CHECK(due - runs[k].at < kCoalesce);
  }

  int quarters[4] = {};
  for (std::size_t i = 1; i < tasks.size(); ++i) {
    const auto cs = h.calls_of(tasks[i].device);
    REQUIRE(cs.size() >= 3);
    const Clock::time_point due = h.first_due(tasks[i]);
    CHECK(cs[0].at <= due);
    CHECK(due - cs[0].at < kCoalesce);
    CHECK(cs[0].at - h.t0() < seconds(10));  // every first run within the first interval
    quarters[(due - h.t0()) * 4 / seconds(10)]++;
  }
  for (int n : quarters) {  // 50 expected in each quarter of the interval
    CHECK(n > 30);
    CHECK(n < 70);
  }
  CHECK(h.stats().delayed == 0);
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

TEST_CASE("scheduler: while the pipeline is congested nothing is dispatched; then polls run late") {
  std::atomic<bool> congested{true};
  auto o = options();
  o.congested = [&] { return congested.load(); };
  SchedHarness h(o);
  h.sched->set_tasks({h.task("a"), h.task("b")});
  h.sched->start();
  h.run_until(h.t0() + seconds(6));
  CHECK(h.call_count() == 0);
  CHECK(h.stats().polls == 0);
  CHECK(h.sched->stats().held_s == Approx(6.0));
  congested = false;
  const Clock::time_point next = h.settle();
  REQUIRE(h.call_count() == 2);  // the held targets, at once
  for (const auto& c : h.all_calls()) CHECK(c.at == h.t0() + seconds(6));
  const auto st = h.stats();
  CHECK(st.delayed == 2);  // both ran late, and say so
  CHECK(st.delay_sum_s == Approx(12.0));
  CHECK(h.results(OUTPOST_OK) == 2);
  CHECK(next == h.t0() + seconds(10));  // their next runs keep their phase
  h.run_until(h.t0() + seconds(7));
  CHECK(h.sched->stats().held_s == Approx(6.0));  // held no longer
  CHECK(h.events_of("a").empty());                // late is not down
}

TEST_CASE("scheduler: availability changes are announced once each way") {
  SchedHarness h;
  h.sched->set_tasks({h.task("a")});
  h.sched->start();
  const std::vector<outpost_status> answers{
      OUTPOST_OK, OUTPOST_OK, OUTPOST_E_UNAVAILABLE, OUTPOST_E_UNAVAILABLE, OUTPOST_E_TIMEOUT,
      OUTPOST_OK, OUTPOST_OK};
  const std::vector<std::size_t> events{0, 0, 1, 1, 1, 2, 2};  // after each poll
  for (std::size_t k = 0; k < answers.size(); ++k) {
    h.set_status("a", answers[k]);
    h.run_until(h.t0() + seconds(10) * static_cast<int>(k));
    REQUIRE(h.call_count() == k + 1);
    CHECK(h.events_of("a").size() == events[k]);
  }
  const auto ev = h.events_of("a");
  REQUIRE(ev.size() == 2);
  CHECK(ev[0].find("a good failed: ") == 0);  // up -> down
  CHECK(ev[1] == "a good is up again");       // down -> up
  CHECK(h.target("a").ok);
  CHECK(h.target("a").consecutive_failures == 0);
}

TEST_CASE("scheduler: a target the plugin had no capacity for is skipped, not a failed device") {
  SchedHarness h;
  h.sched->set_tasks({h.task("skipped", OUTPOST_E_OVERLOADED), h.task("busy", OUTPOST_E_BUSY),
                      h.task("down", OUTPOST_E_UNAVAILABLE)});
  h.sched->start();
  h.run_until(h.t0() + seconds(20));  // three rounds
  CHECK(h.results(OUTPOST_E_OVERLOADED) == 3);
  CHECK(h.results(OUTPOST_E_BUSY) == 3);
  h.sched->stop();
  const auto ts = h.sched->targets();
  REQUIRE(ts.size() == 3);
  CHECK_FALSE(ts[0].polled);  // never a verdict on the device
  CHECK(ts[0].skipped == 3);
  CHECK_FALSE(ts[1].polled);
  CHECK(ts[2].polled);
  CHECK_FALSE(ts[2].ok);
  CHECK(h.events_of("skipped").empty());
  CHECK(h.events_of("busy").empty());
  CHECK(h.events_of("down").size() == 1);  // the one real failure, announced once
  const auto st = h.stats();
  CHECK(st.skipped == 6);
  CHECK(st.skipped == st.results.at(OUTPOST_E_OVERLOADED) + st.results.at(OUTPOST_E_BUSY));
  CHECK(st.targets_failing == 1);
}

TEST_CASE("scheduler: a reload keeps what did not change: availability, counters, phase") {
  SchedHarness h(options(1));
  const TaskSpec up = h.task("up");
  const Clock::time_point phase = h.first_due(up);
  h.sched->set_tasks({h.task("down", OUTPOST_E_UNAVAILABLE), up});
  h.sched->start();
  h.run_until(h.t0() + seconds(30));
  h.sched->stop();
  CHECK(h.events_of("down").size() == 1);
  const uint64_t ok_before = h.results(OUTPOST_OK);
  CHECK(ok_before == 3);
  for (int reload = 1; reload <= 3; ++reload) {
    h.sched->set_tasks({h.task("down", OUTPOST_E_UNAVAILABLE), up, h.task("new")});
    CHECK(h.results(OUTPOST_OK) >= ok_before);  // counters carry on, not restart at 0
    h.sched->start();
    h.run_until(h.t0() + seconds(30) * (reload + 1));
    h.sched->stop();
  }
  CHECK(h.events_of("down").size() == 1);  // still failing: not announced again after a reload
  const auto ts = h.sched->targets();
  REQUIRE(ts.size() == 3);
  CHECK(ts[0].consecutive_failures == 12);  // three cycles a start, four starts
  CHECK(ts[2].polled);
  const auto runs = h.calls_of("up");
  REQUIRE(runs.size() == 12);
  for (std::size_t k = 0; k < runs.size(); ++k)  // on its phase, across the reloads
    CHECK(runs[k].at == phase + seconds(10) * static_cast<int>(k));
}

TEST_CASE("scheduler: a reload that shortens an interval does not wait out the old one") {
  SchedHarness h;
  h.sched->set_tasks({h.task("a", 0, 3600)});
  h.sched->start();
  CHECK(h.settle() == h.t0() + seconds(3600));  // polled; the next one is an hour away
  CHECK(h.call_count() == 1);
  h.sched->stop();
  h.clock->advance(seconds(1));
  h.sched->set_tasks({h.task("a", 0, 10)});
  h.sched->start();
  h.settle();
  CHECK(h.call_count() == 2);  // at once
  h.run_until(h.t0() + seconds(21));
  CHECK(h.call_count() == 4);  // then every ten seconds
  h.sched->stop();
}
