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
  CHECK(abi_string(p->plugin_abi) == "1.2");
  CHECK(p->desc.target_field_count == 2);
  REQUIRE(r.load_file(lib("older_minor")));  // built against ABI 1.0
  CHECK(abi_string(r.find("older_minor")->plugin_abi) == "1.0");
}

TEST_CASE("the loader refuses each broken plugin with one precise reason") {
  CHECK(refusal_of("bad_magic") == "bad magic 0xdeadbeef (expected 0x4f555450)");
  CHECK(refusal_of("bad_major") ==
        "plugin ABI 2.0 is incompatible with host ABI 1.2 (major differs)");
  CHECK(refusal_of("newer_minor") ==
        "plugin ABI 1.99 is newer than host ABI 1.2 (update the engine)");
  CHECK(refusal_of("small_struct").find("descriptor struct_size 16 is smaller than ABI 1.0's") ==
        0);
  CHECK(refusal_of("name_mismatch") ==
        "descriptor name 'somebody_else' differs from the file's name 'name_mismatch'");
  CHECK(refusal_of("kind_mismatch") == "declares kind sink but has no write hook");
  CHECK(refusal_of("null_entry") == "entry returned no descriptor for host ABI 1.2");
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
