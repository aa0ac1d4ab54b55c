// A profile file as a user may write it: loading it must end in a profile or an error message.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "snmp/profile.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace outpost::snmp;
  const std::string text(reinterpret_cast<const char*>(data), size);
  ProfileSet set;
  std::vector<std::string> errors;
  set.add("name: base\nscalars: [{name: a, oid: 1.3.6.1.2.1.1.5.0, type: label}]\n", "base.yaml",
          errors);
  set.add(text, "fuzz.yaml", errors);
  set.finish(errors);
  for (const auto& n : set.names()) {
    auto plan = set.plan(n);
    if (plan) (void)set.plan(n + ",base");
  }
  if (auto oid = parse_oid(text)) (void)set.match(*oid);
  return 0;
}
