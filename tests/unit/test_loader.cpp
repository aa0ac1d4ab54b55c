#include <catch2/catch.hpp>

#include "loader/loader.hpp"
#include "test_plugins.hpp"

using namespace outpost::core;

namespace {
std::string lib(const std::string& name) {
  return std::string(OUTPOST_TEST_PLUGINS_DIR) + "/outpost_" + name + ".so";
}

std::string refusal_of(const std::string& name) {
  PluginRegistry r;
  CHECK_FALSE(r.load_file(lib(name)));
  REQUIRE(r.refusals().size() == 1);
  CHECK(r.refusals()[0].path == lib(name));
  return r.refusals()[0].reason;
}
}  // namespace

TEST_CASE("a well-formed plugin loads with its descriptor") {
  PluginRegistry r;
  REQUIRE(r.load_file(lib("good")));
  const LoadedPlugin* p = r.find("good");
  REQUIRE(p);
  CHECK(p->desc.kinds == OUTPOST_KIND_POLLER);
  CHECK(abi_string(p->plugin_abi) == "1.4");
  CHECK(p->desc.target_field_count == 2);
  REQUIRE(r.load_file(lib("older_minor")));  // built against ABI 1.0
  CHECK(abi_string(r.find("older_minor")->plugin_abi) == "1.0");
}

TEST_CASE("the loader refuses each broken plugin with one precise reason") {
  CHECK(refusal_of("bad_magic") == "bad magic 0xdeadbeef (expected 0x4f555450)");
  CHECK(refusal_of("bad_major") ==
        "plugin ABI 2.0 is incompatible with host ABI 1.4 (major differs)");
  CHECK(refusal_of("newer_minor") ==
        "plugin ABI 1.99 is newer than host ABI 1.4 (update the engine)");
  CHECK(refusal_of("small_struct").find("descriptor struct_size 16 is smaller than ABI 1.0's") ==
        0);
  CHECK(refusal_of("name_mismatch") ==
        "descriptor name 'somebody_else' differs from the file's name 'name_mismatch'");
  CHECK(refusal_of("kind_mismatch") == "declares kind sink but has no write hook");
  CHECK(refusal_of("null_entry") == "entry returned no descriptor for host ABI 1.4");
  CHECK(refusal_of("no_symbol") == "no exported symbol outpost_plugin_entry");
  CHECK(refusal_of("does_not_exist") == "no such file");
}

TEST_CASE("loading a directory keeps the good plugins and reports every bad one") {
  PluginRegistry r;
  r.load_dirs({OUTPOST_TEST_PLUGINS_DIR});
  CHECK(r.find("good"));
  CHECK(r.find("hang"));
  CHECK(r.find("throws_sdk"));
  CHECK(r.find("throws_raw"));
  CHECK_FALSE(r.find("bad_magic"));
  CHECK(r.refusals().size() == 8);
}

TEST_CASE("ABI 1.3: a read hook belongs to a sink") {
  outpost_plugin_descriptor d{};
  d.magic = OUTPOST_PLUGIN_MAGIC;
  d.abi_version = OUTPOST_ABI_VERSION;
  d.struct_size = sizeof d;
  d.name = {"r", 1};
  d.kinds = OUTPOST_KIND_POLLER;
  d.create = [](const outpost_host_api*, outpost_host*, const outpost_kv*, size_t,
                outpost_instance**) -> outpost_status { return OUTPOST_OK; };
  d.destroy = [](outpost_instance*) {};
  d.poll = [](outpost_instance*, const outpost_poll_request*) -> outpost_status {
    return OUTPOST_OK;
  };
  d.read = [](outpost_instance*, const outpost_read_request*, outpost_read_row_fn,
              void*) -> outpost_status { return OUTPOST_OK; };
  CHECK(check_descriptor(&d, "r") == "has a read hook but does not declare kind sink");
  d.kinds |= OUTPOST_KIND_SINK;
  d.write = [](outpost_instance*, const outpost_batch*) -> outpost_status { return OUTPOST_OK; };
  CHECK(check_descriptor(&d, "r").empty());
  // A 1.2 descriptor ends before read: whatever lies beyond its size is not looked at.
  d.kinds = OUTPOST_KIND_POLLER;
  d.write = nullptr;
  d.struct_size = static_cast<uint32_t>(offsetof(outpost_plugin_descriptor, read));
  CHECK(check_descriptor(&d, "r").empty());
}
