// libFuzzer target: configuration text (from files, reloads, and later the management channel)
// must give errors, never a crash or a hang.
#include <cstddef>
#include <cstdint>
#include <string>

#include "config/config.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  auto r = outpost::core::parse_config_text(text, "fuzz.yaml");
  if (r.config) {
    static const outpost_field fields[] = {
        {{"port", 4}, OUTPOST_FIELD_INT, OUTPOST_FIELD_REQUIRED, {"", 0}, {"", 0}},
        {{"hosts", 5}, OUTPOST_FIELD_LIST, 0, {"", 0}, {"", 0}},
        {{"timeout", 7}, OUTPOST_FIELD_DURATION, 0, {"", 0}, {"", 0}},
    };
    std::vector<outpost::core::ConfigError> errors;
    for (const auto& d : r.config->devices)
      for (const auto& m : d.monitors)
        outpost::core::validate_settings(m.params, fields, 3, m.path, m.where, errors);
    for (const auto& p : r.config->plugins)
      (void)outpost::core::expand_vars(p.name, r.config->engine);
  }
  return 0;
}
