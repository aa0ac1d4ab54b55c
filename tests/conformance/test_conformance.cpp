// The conformance suite: one test case per plugin the build produced (a failure in one hides
// none of the others), each checking the lifecycle and boundary rules every plugin must follow,
// whatever it does, through the strict FakeHost: pollers (every target completed exactly once,
// before the deadline), listeners (hostile and truncated datagrams), processors and sinks, host
// timers, and for every kind "nothing emitted or completed after stop". A sink with a read hook
// (ABI 1.3) reads back what it wrote in the rows plugin.h describes, and an instance created
// only to be read leaves its destination as it was.
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <cstdio>
#include <deque>
#include <filesystem>
#include <fstream>
#include <map>
#include <outpost/testing.hpp>
#include <random>
#include <set>
#include <thread>

#include "loader/loader.hpp"

namespace fs = std::filesystem;
using outpost::testing::FakeHost;

namespace {
std::vector<fs::path> plugin_files() {
  std::vector<fs::path> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(OUTPOST_TEST_PLUGIN_DIR, ec))
    if (e.path().extension() == ".so") out.push_back(e.path());
  std::sort(out.begin(), out.end());
  return out;
}

std::string run(const std::string& cmd) {
  std::string out;
  FILE* p = ::popen(cmd.c_str(), "r");
  if (!p) return out;
  char buf[512];
  while (std::fgets(buf, sizeof buf, p)) out += buf;
  ::pclose(p);
  return out;
}

using Pairs = std::vector<std::pair<std::string, std::string>>;

// A value of the right type for every required field.
Pairs required(const outpost_field* f, std::size_t n, const fs::path& tmp) {
  Pairs out;
  for (std::size_t i = 0; i < n; ++i) {
    if (!(f[i].flags & OUTPOST_FIELD_REQUIRED)) continue;
    const std::string name(f[i].name.ptr, f[i].name.len);
    switch (f[i].type) {
      case OUTPOST_FIELD_INT:
        out.emplace_back(name, "9");
        break;
      case OUTPOST_FIELD_DOUBLE:
        out.emplace_back(name, "1.5");
        break;
      case OUTPOST_FIELD_BOOL:
        out.emplace_back(name, "true");
        break;
      case OUTPOST_FIELD_DURATION:
        out.emplace_back(name, "1s");
        break;
      case OUTPOST_FIELD_LIST:
        out.emplace_back(name + ".0", "x");
        break;
      default:
        out.emplace_back(name, (tmp / name).string());
        break;
    }
  }
  return out;
}

// A plugin whose required settings need more than a value of the right type (a sink's URL) names
// them in plugins/<name>/tests/conformance.settings, one KEY=VALUE a line, over the generated ones.
void apply_overrides(Pairs& cfg, const std::string& name) {
  std::ifstream in(std::string(OUTPOST_TEST_SOURCE_DIR) + "/plugins/" + name +
                   "/tests/conformance.settings");
  std::string line;
  while (std::getline(in, line)) {
    const auto eq = line.find('=');
    if (line.empty() || line[0] == '#' || eq == std::string::npos) continue;
    const std::string key = line.substr(0, eq);
    std::erase_if(cfg, [&](const auto& kv) { return kv.first == key; });
    cfg.emplace_back(key, line.substr(eq + 1));
  }
}

// Whatever a listener may be sent: nothing, one byte, noise, and the first bytes of the
// protocols the engine's listeners speak (NetFlow v5/v9, IPFIX, sFlow v5, SNMP) cut short.
std::vector<std::vector<uint8_t>> hostile_datagrams() {
  std::mt19937 rng(7);
  std::vector<std::vector<uint8_t>> out{{}, {0x00}, std::vector<uint8_t>(1500, 0xFF)};
  const std::vector<std::vector<uint8_t>> prefixes = {
      {0x00, 0x05}, {0x00, 0x09}, {0x00, 0x0a}, {0x00, 0x00, 0x00, 0x05}, {0x30, 0x82, 0x01, 0x00}};
  for (const auto& p : prefixes)
    for (std::size_t len : {p.size(), p.size() + 16, std::size_t{200}}) {
      std::vector<uint8_t> d = p;
      while (d.size() < len) d.push_back(static_cast<uint8_t>(rng()));
      out.push_back(d);
    }
  return out;
}

// One metric with one label, as a small batch to process or write.
struct SmallBatch {
  outpost_kv label{{"k", 1}, {"v", 1}};
  outpost_metric metric{{"conformance_metric", 18}, &label, 1, 42.0, 0, OUTPOST_METRIC_GAUGE, 0};
  outpost_batch batch = [this] {
    outpost_batch b = outpost_batch_make();
    b.metrics = &metric;
    b.metric_count = 1;
    return b;
  }();
  SmallBatch() = default;
  SmallBatch(const SmallBatch&) = delete;
};

// Every row has its kind's columns (plugin.h), each of its type or NULL.
void check_row(const outpost::testing::RecordedRow& r) {
  using Columns = std::vector<std::pair<const char*, uint32_t>>;
  static const std::map<uint32_t, Columns> kColumns = {{OUTPOST_READ_SERIES,
                                                        {{"name", OUTPOST_VALUE_TEXT},
                                                         {"labels", OUTPOST_VALUE_LABELS},
                                                         {"last", OUTPOST_VALUE_DOUBLE},
                                                         {"last_time_ns", OUTPOST_VALUE_TIME},
                                                         {"samples", OUTPOST_VALUE_INT}}},
                                                       {OUTPOST_READ_SAMPLES,
                                                        {{"time_ns", OUTPOST_VALUE_TIME},
                                                         {"name", OUTPOST_VALUE_TEXT},
                                                         {"labels", OUTPOST_VALUE_LABELS},
                                                         {"value", OUTPOST_VALUE_DOUBLE}}},
                                                       {OUTPOST_READ_EVENTS,
                                                        {{"time_ns", OUTPOST_VALUE_TIME},
                                                         {"severity", OUTPOST_VALUE_SEVERITY},
                                                         {"kind", OUTPOST_VALUE_TEXT},
                                                         {"source", OUTPOST_VALUE_TEXT},
                                                         {"message", OUTPOST_VALUE_TEXT},
                                                         {"attributes", OUTPOST_VALUE_LABELS}}}};
  const auto it = kColumns.find(r.kind);
  REQUIRE(it != kColumns.end());
  for (const auto& [name, type] : it->second) {
    INFO("row kind " << r.kind << ", column " << name);
    const auto* v = r.find(name);
    REQUIRE(v != nullptr);
    CHECK((v->type == type || v->type == OUTPOST_VALUE_NULL));
  }
}

// Gives a plugin's own threads a moment to misbehave after stop: a violation, if any, shows.
void settle() { std::this_thread::sleep_for(std::chrono::milliseconds(100)); }

void conforms(const fs::path& file) {
  const fs::path tmp = fs::temp_directory_path() /
                       ("outpost-conf-" + std::to_string(::getpid()) + "-" + file.stem().string());
  fs::remove_all(tmp);
  fs::create_directories(tmp);
  struct Cwd {  // plugins that default to relative paths write here, not in the build
    fs::path old = fs::current_path(), dir;
    explicit Cwd(fs::path d) : dir(std::move(d)) { fs::current_path(dir); }
    ~Cwd() {
      std::error_code ec;
      fs::current_path(old, ec);
      fs::remove_all(dir, ec);
    }
  } cwd(tmp);
  const std::string name = file.stem().string().substr(8);

  outpost::core::PluginRegistry reg;
  REQUIRE(reg.load_file(file.string()));
  const outpost_plugin_descriptor* d = outpost::testing::open_plugin(file.string());
  REQUIRE(d != nullptr);
  CHECK(std::string(d->name.ptr, d->name.len) == name);

  // Exactly one exported symbol: nothing else of the plugin can clash with the host.
  const std::string syms = run("nm -D --defined-only '" + file.string() + "' | awk '{print $3}'");
  CHECK(syms == "outpost_plugin_entry\n");

  auto cfg = required(d->config_fields, d->config_field_count, tmp);
  apply_overrides(cfg, name);
  SECTION("create and destroy without start") {
    FakeHost h(d);
    REQUIRE(h.create(cfg) == OUTPOST_OK);
    h.destroy();
    CHECK(h.violations().empty());
  }
  SECTION("start and stop twice; timers only between them") {
    FakeHost h(d);
    REQUIRE(h.create(cfg) == OUTPOST_OK);
    for (int round = 0; round < 2; ++round) {
      CHECK(h.start() == OUTPOST_OK);
      h.fire_timers();  // a timer the plugin set runs without trouble
      CHECK(h.stop() == OUTPOST_OK);
      CHECK(h.fire_timers() == 0);
    }
    settle();
    h.destroy();
    for (const auto& v : h.violations()) FAIL_CHECK(v);
  }
  SECTION("bad values for typed settings: a clear refusal (or acceptance), never a crash") {
    for (std::size_t i = 0; i < d->config_field_count; ++i) {
      const auto& f = d->config_fields[i];
      if (f.type == OUTPOST_FIELD_STRING || f.type == OUTPOST_FIELD_SECRET ||
          f.type == OUTPOST_FIELD_LIST)
        continue;
      auto bad = cfg;
      bad.emplace_back(std::string(f.name.ptr, f.name.len), "not-a-value");
      FakeHost h(d);
      const outpost_status s = h.create(bad);
      INFO("field " << std::string(f.name.ptr, f.name.len));
      CHECK((s == OUTPOST_OK || OUTPOST_STATUS_CLASS(s) == OUTPOST_CLASS_OPERATOR));
      if (s != OUTPOST_OK) CHECK_FALSE(h.errors().empty());  // the reason travels with it
    }
  }
  if (d->kinds & OUTPOST_KIND_POLLER) {
    SECTION("poller: every target completed exactly once, before the deadline, none after stop") {
      FakeHost h(d);
      REQUIRE(h.create(cfg) == OUTPOST_OK);
      REQUIRE(h.start() == OUTPOST_OK);
      const auto params = required(d->target_fields, d->target_field_count, tmp);
      const std::vector<FakeHost::TargetSpec> targets = {{"a", "127.0.0.1", params},
                                                         {"b", "127.0.0.2", params},
                                                         {"c", "no-such-host.invalid", params}};
      const auto t0 = std::chrono::steady_clock::now();
      h.poll(targets, 1500);
      const double took =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      std::set<uint64_t> ids;
      for (const auto& c : h.completions()) {
        CHECK(c.poll_id == h.last_poll_id());
        ids.insert(c.target_id);
      }
      CHECK(ids == std::set<uint64_t>{1, 2, 3});
      CHECK(took < 1.5 + 1.0);
      // A second poll cut short by stop: still every target once.
      h.start_poll(targets, 30000);
      CHECK(h.stop() == OUTPOST_OK);
      settle();
      CHECK(h.missing_completions().empty());
      for (const auto& v : h.violations()) FAIL_CHECK(v);
    }
  }
  if (d->kinds & OUTPOST_KIND_LISTENER) {
    SECTION("listener: hostile and truncated datagrams are counted or ignored, never a crash") {
      FakeHost h(d);
      REQUIRE(h.create(cfg) == OUTPOST_OK);
      REQUIRE(h.start() == OUTPOST_OK);
      const auto data = hostile_datagrams();
      std::vector<outpost_datagram> dg;
      for (const auto& x : data) {
        outpost_datagram g{};
        g.data = x.data();
        g.len = x.size();
        g.source.family = 4;
        g.source.addr[0] = 127;
        g.source.addr[3] = 1;
        g.source.port = 40000;
        g.socket_id = 1;
        g.recv_time_ns = 1;
        dg.push_back(g);
      }
      for (const auto& one : dg) h.receive({one});  // one at a time, then all in one batch
      h.receive(dg);
      h.fire_timers();
      CHECK(h.stop() == OUTPOST_OK);
      settle();
      for (const auto& v : h.violations()) FAIL_CHECK(v);
    }
  }
  if (d->kinds & OUTPOST_KIND_PROCESSOR) {
    SECTION("processor: sees batches, emits its summaries no later than its stop") {
      FakeHost h(d);
      REQUIRE(h.create(cfg) == OUTPOST_OK);
      REQUIRE(h.start() == OUTPOST_OK);
      std::vector<outpost_flow> flows(10);
      for (std::size_t i = 0; i < flows.size(); ++i) {
        flows[i].family = 4;
        flows[i].protocol = 6;
        flows[i].src_addr[0] = 10;
        flows[i].src_addr[3] = static_cast<uint8_t>(i);
        flows[i].dst_port = 443;
        flows[i].bytes = 1000;
        flows[i].packets = 2;
        flows[i].sampling_rate = 1;
      }
      SmallBatch small;
      outpost_batch b = small.batch;
      b.flows = flows.data();
      b.flow_count = flows.size();
      CHECK(h.process(b) == OUTPOST_OK);
      const outpost_batch empty = outpost_batch_make();
      CHECK(h.process(empty) == OUTPOST_OK);
      h.fire_timers();
      CHECK(h.stop() == OUTPOST_OK);
      settle();
      for (const auto& v : h.violations()) FAIL_CHECK(v);
    }
  }
  if (d->kinds & OUTPOST_KIND_SINK) {
    SECTION("sink: empty and small batches are fine") {
      FakeHost h(d);
      REQUIRE(h.create(cfg) == OUTPOST_OK);
      REQUIRE(h.start() == OUTPOST_OK);
      // A sink that asks for a spool sends across a network: with nothing listening at its
      // destination (conformance.settings points it at a closed port) it says "retry", fast.
      auto fine = [&](outpost_status st) {
        return st == OUTPOST_OK || ((d->flags & OUTPOST_FLAG_SPOOL) != 0 &&
                                    OUTPOST_STATUS_CLASS(st) == OUTPOST_CLASS_RETRY);
      };
      CHECK(fine(h.write(outpost_batch_make())));
      SmallBatch small;
      CHECK(fine(h.write(small.batch)));
      CHECK(h.flush() == OUTPOST_OK);
      CHECK(h.stop() == OUTPOST_OK);
      for (const auto& v : h.violations()) FAIL_CHECK(v);
    }
  }
  if ((d->kinds & OUTPOST_KIND_SINK) && OUTPOST_HAS(d, outpost_plugin_descriptor, read) &&
      d->read != nullptr) {
    using outpost::testing::ReadSpec;
    SECTION("sink with read: what it wrote reads back, in the rows plugin.h describes") {
      FakeHost h(d);
      REQUIRE(h.create(cfg) == OUTPOST_OK);
      REQUIRE(h.start() == OUTPOST_OK);
      SmallBatch small;
      REQUIRE(h.write(small.batch) == OUTPOST_OK);
      REQUIRE(h.flush() == OUTPOST_OK);
      outpost_status st = OUTPOST_E_INTERNAL;
      const auto series = h.read(ReadSpec{OUTPOST_READ_SERIES}, &st);
      CHECK(st == OUTPOST_OK);
      bool found = false;
      for (const auto& r : series) {
        CHECK(r.kind == OUTPOST_READ_SERIES);
        check_row(r);
        found = found || (r.text("name") == "conformance_metric" && r.real("last") == 42.0 &&
                          r.labels("labels") == std::map<std::string, std::string>{{"k", "v"}});
      }
      CHECK(found);
      CHECK(h.read(ReadSpec{OUTPOST_READ_SERIES, "", "", 0, 0, 1}).size() <= 1);
      for (const uint32_t what :
           {OUTPOST_READ_SUMMARY, OUTPOST_READ_SAMPLES, OUTPOST_READ_EVENTS}) {
        INFO("read " << what);
        const auto rows = h.read(ReadSpec{what}, &st);
        CHECK((st == OUTPOST_OK || st == OUTPOST_E_UNSUPPORTED));
        for (const auto& r : rows) check_row(r);
      }
      CHECK(h.stop() == OUTPOST_OK);
      for (const auto& v : h.violations()) FAIL_CHECK(v);
    }
    SECTION("sink with read: an instance created only to be read changes nothing") {
      auto listing = [&] {
        std::set<std::string> out;
        for (const auto& e : fs::recursive_directory_iterator(tmp)) out.insert(e.path().string());
        return out;
      };
      const auto before = listing();
      FakeHost h(d);
      h.set_purpose(OUTPOST_PURPOSE_READ);
      const outpost_status st = h.create(cfg);
      CHECK((st == OUTPOST_OK || st == OUTPOST_E_NOT_FOUND));
      if (st == OUTPOST_OK) {
        outpost_status rs = OUTPOST_E_INTERNAL;
        for (const auto& r : h.read(ReadSpec{OUTPOST_READ_SUMMARY}, &rs)) check_row(r);
        CHECK((rs == OUTPOST_OK || rs == OUTPOST_E_NOT_FOUND || rs == OUTPOST_E_UNSUPPORTED));
      } else {
        CHECK_FALSE(h.errors().empty());  // the reason travels with it
      }
      h.destroy();
      CHECK(listing() == before);
      for (const auto& v : h.violations()) FAIL_CHECK(v);
    }
  }
}

// One registered test case per plugin file, named after the plugin.
class PluginCase final : public Catch::ITestInvoker {
 public:
  explicit PluginCase(fs::path file) : file_(std::move(file)) {}
  void invoke() const override { conforms(file_); }

 private:
  fs::path file_;
};

const bool kRegistered = [] {
  static std::deque<std::string> names;  // Catch keeps references to the names
  for (const auto& f : plugin_files()) {
    names.push_back("conformance: " + f.stem().string().substr(8));
    Catch::AutoReg(new PluginCase(f), CATCH_INTERNAL_LINEINFO, Catch::StringRef(),
                   Catch::NameAndTags{names.back(), "[conformance]"});
  }
  return true;
}();

}  // namespace

TEST_CASE("the build has plugins to check") { CHECK_FALSE(plugin_files().empty()); }
