// A parsed configuration checked against the loaded plugins, before anything starts: every
// instance's plugin exists and is of the right kind, every setting and monitor parameter is one
// the plugin declares, with the type it declares.
#pragma once

#include <vector>

#include "config/config.hpp"
#include "loader/loader.hpp"

namespace outpost::core {

std::vector<ConfigError> validate_config(const Config& cfg, const PluginRegistry& registry);

// The non-sink instances a configuration uses: its plugins section plus instances named only by
// monitors or listeners (an instance of the plugin of that name with default settings).
std::vector<InstanceSpec> poller_specs(const Config& cfg);

}  // namespace outpost::core
