// One conformance test run against every plugin the build produced: the lifecycle and the
// boundary rules every plugin must follow, whatever it does.
#include <catch2/catch.hpp>
#include <outpost/testing.hpp>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <set>
#include <unistd.h>

#include "loader/loader.hpp"

namespace fs = std::filesystem;
using outpost::testing::FakeHost;

namespace {
std::vector<fs::path> plugin_files() {
  std::vector<fs::path> out;
  for (const auto& e : fs::directory_iterator(OUTPOST_TEST_PLUGIN_DIR))
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

// A value of the right type for every required field.
std::vector<std::pair<std::string, std::string>> required(const outpost_field* f, std::size_t n,
                                                          const fs::path& tmp) {
  std::vector<std::pair<std::string, std::string>> out;
  for (std::size_t i = 0; i < n; ++i) {
    if (!(f[i].flags & OUTPOST_FIELD_REQUIRED)) continue;
    const std::string name(f[i].name.ptr, f[i].name.len);
    switch (f[i].type) {
      case OUTPOST_FIELD_INT: out.emplace_back(name, "9"); break;
      case OUTPOST_FIELD_DOUBLE: out.emplace_back(name, "1.5"); break;
      case OUTPOST_FIELD_BOOL: out.emplace_back(name, "true"); break;
      case OUTPOST_FIELD_DURATION: out.emplace_back(name, "1s"); break;
      case OUTPOST_FIELD_LIST: out.emplace_back(name + ".0", "x"); break;
      default: out.emplace_back(name, (tmp / name).string()); break;
    }
  }
  return out;
}
}  // namespace

TEST_CASE("every plugin follows the lifecycle and boundary rules") {
  const auto files = plugin_files();
  REQUIRE(files.size() >= 1);
  const fs::path tmp = fs::temp_directory_path() / ("outpost-conf-" + std::to_string(::getpid()));
  const fs::path work = fs::temp_directory_path() / ("outpost-conf-cwd-" + std::to_string(::getpid()));
  fs::create_directories(work);
  const fs::path old_cwd = fs::current_path();
  fs::current_path(work);  // plugins that default to relative paths write here, not in the build
  for (const auto& file : files) {
    fs::remove_all(tmp);
    fs::create_directories(tmp);
    const std::string name = file.stem().string().substr(8);
    INFO("plugin " << name);

    outpost::core::PluginRegistry reg;
    REQUIRE(reg.load_file(file.string()));
    const outpost_plugin_descriptor* d = outpost::testing::open_plugin(file.string());
    REQUIRE(d != nullptr);
    CHECK(std::string(d->name.ptr, d->name.len) == name);

    // Exactly one exported symbol: nothing else of the plugin can clash with the host.
    const std::string syms = run("nm -D --defined-only '" + file.string() + "' | awk '{print $3}'");
    CHECK(syms == "outpost_plugin_entry\n");

    const auto cfg = required(d->config_fields, d->config_field_count, tmp);
    {  // create and destroy without start
      FakeHost h(d);
      REQUIRE(h.create(cfg) == OUTPOST_OK);
      h.destroy();
    }
    {  // start/stop twice
      FakeHost h(d);
      REQUIRE(h.create(cfg) == OUTPOST_OK);
      CHECK(h.start() == OUTPOST_OK);
      CHECK(h.stop() == OUTPOST_OK);
      CHECK(h.start() == OUTPOST_OK);
      CHECK(h.stop() == OUTPOST_OK);
      h.destroy();
    }
    // Bad values for typed settings: a clear refusal (or acceptance), never a crash.
    for (std::size_t i = 0; i < d->config_field_count; ++i) {
      const auto& f = d->config_fields[i];
      if (f.type == OUTPOST_FIELD_STRING || f.type == OUTPOST_FIELD_SECRET || f.type == OUTPOST_FIELD_LIST) continue;
      auto bad = cfg;
      bad.emplace_back(std::string(f.name.ptr, f.name.len), "not-a-value");
      FakeHost h(d);
      const outpost_status s = h.create(bad);
      INFO("field " << std::string(f.name.ptr, f.name.len));
      CHECK((s == OUTPOST_OK || OUTPOST_STATUS_CLASS(s) == OUTPOST_CLASS_OPERATOR));
      if (s != OUTPOST_OK) CHECK_FALSE(h.errors().empty());  // the reason travels with it
    }
    if (d->kinds & OUTPOST_KIND_POLLER) {  // every target completed once, within the deadline
      FakeHost h(d);
      REQUIRE(h.create(cfg) == OUTPOST_OK);
      REQUIRE(h.start() == OUTPOST_OK);
      const auto params = required(d->target_fields, d->target_field_count, tmp);
      std::vector<FakeHost::TargetSpec> targets = {
          {"a", "127.0.0.1", params}, {"b", "127.0.0.2", params}, {"c", "no-such-host.invalid", params}};
      const auto t0 = std::chrono::steady_clock::now();
      h.poll(targets, 1500);
      const double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      const auto done = h.completions();
      std::set<uint64_t> ids;
      for (const auto& c : done) {
        CHECK(c.poll_id == h.last_poll_id());
        CHECK(ids.insert(c.target_id).second);  // never twice
      }
      CHECK(ids == std::set<uint64_t>{1, 2, 3});
      CHECK(took < 1.5 + 1.0);
      CHECK(h.stop() == OUTPOST_OK);
    }
    if (d->kinds & OUTPOST_KIND_SINK) {  // empty and small batches are fine
      FakeHost h(d);
      REQUIRE(h.create(cfg) == OUTPOST_OK);
      REQUIRE(h.start() == OUTPOST_OK);
      outpost_batch b = outpost_batch_make();
      CHECK(d->write(h.instance(), &b) == OUTPOST_OK);
      outpost_kv label{{"k", 1}, {"v", 1}};
      outpost_metric m{{"conformance_metric", 18}, &label, 1, 42.0, 0, OUTPOST_METRIC_GAUGE, 0};
      b.metrics = &m;
      b.metric_count = 1;
      CHECK(d->write(h.instance(), &b) == OUTPOST_OK);
      if (d->flush) CHECK(d->flush(h.instance()) == OUTPOST_OK);
      CHECK(h.stop() == OUTPOST_OK);
    }
  }
  fs::current_path(old_cwd);
  fs::remove_all(tmp);
  fs::remove_all(work);
}
