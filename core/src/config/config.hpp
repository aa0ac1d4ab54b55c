// The engine's configuration model and its YAML reader. Every mistake is reported with file,
// line, column and the key's path; unknown keys are errors.
#pragma once

#include <outpost/plugin.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace outpost::core {

struct Location {
  std::string file;
  int line = 0;  // 1-based; 0 = unknown
  int column = 0;
};

struct ConfigError {
  Location where;
  std::string path;  // key path, e.g. inventory.devices[2].monitors[0].port
  std::string message;
  std::string str() const;
};

// A flattened setting: nested maps become dotted keys, lists become key.0, key.1, ...
struct Setting {
  std::string key;
  std::string value;
  Location where;      // of the value
  Location key_where;  // of the key (unknown-key errors point here)
};
using Settings = std::vector<Setting>;
using Tags = std::vector<std::pair<std::string, std::string>>;

struct MonitorSpec {
  std::string instance;  // plugin instance name
  double interval_s = 0;
  double timeout_s = 0;
  Settings params;
  Location where;
  std::string path;
};

struct DeviceSpec {
  std::string name;
  std::string address;
  Tags tags;
  std::vector<MonitorSpec> monitors;
  Location where;
};

// A sink's disk spool (sinks.<name>.spool): `true`, `false`, or a mapping of these keys. A sink
// whose plugin asks for a spool (OUTPOST_FLAG_SPOOL) has one unless told `false`.
struct SpoolSpec {
  std::optional<bool> enabled;  // unset: as the plugin asks
  std::string dir;              // default ${data_dir}/spool/<sink>
  uint64_t max_source_bytes = 1ull << 30;
  uint64_t segment_bytes = 16ull << 20;
  double sync_interval_s = 1;
  std::size_t batch_items = 20000;
  uint64_t batch_bytes = 16ull << 20;
  double max_delay_s = 5;
  double backoff_initial_s = 1;
  double backoff_max_s = 60;
  bool operator==(const SpoolSpec&) const = default;
};

struct InstanceSpec {
  std::string name;    // instance name: the key in plugins/sinks
  std::string plugin;  // plugin name (defaults to the instance name)
  Settings settings;
  SpoolSpec spool;  // sinks only
  Location where;
  std::string path;
  bool operator==(const InstanceSpec& o) const;
};

// A socket the core binds and owns; its datagrams go to a listener plugin instance in batches.
struct ListenerSpec {
  std::string instance;                // listener plugin instance name
  std::string host;                    // address to bind: 0.0.0.0, ::, 127.0.0.1 ...
  uint16_t port = 0;                   // 0 = any free port (tests)
  std::size_t recv_buffer = 8u << 20;  // SO_RCVBUF bytes
  std::size_t batch = 64;              // datagrams per receive hook call at most
  Location where;
  std::string path;
};

struct EngineSpec {
  std::string id = "outpost";
  std::string data_dir = "outpost-data";
  std::vector<std::string> plugin_dirs;
  std::string log_level = "info";
  double summary_interval_s = 10;  // 0 = no summary line
  double self_metrics_interval_s = 10;
  std::size_t queue_capacity = 100000;  // items waiting for the sinks
  std::size_t batch_size = 2000;        // items per sink write
  double flush_interval_s = 1;
  bool raw_flows = false;  // deliver flow records to sinks even when a processor consumes them
  std::size_t max_in_flight = 20000;  // targets being polled at once, all plugins
  std::size_t max_batch_targets = 5000;
  // Fraction of its interval over which a monitor's targets are spread, each target at a fixed
  // phase (from its device and monitor), so a fleet's polls and their data come evenly.
  double jitter = 1.0;
  double default_interval_s = 60;
  // A monitor's timeout when it names none: this, if the configuration sets it; else half the
  // monitor's interval, at least 10 s (never more than the interval), so a slow device (a
  // distant site, an agent that takes seconds to answer) has time for every request of a poll.
  double default_timeout_s = 10;
  bool default_timeout_set = false;
  double monitor_timeout_s(double interval_s) const {
    const double t = default_timeout_set ? default_timeout_s : std::max(10.0, interval_s / 2);
    return std::min(t, interval_s);
  }
};

// The management channel (docs/management.md): where signed configuration and plugin bundles
// are fetched from and how they are checked. Only a local configuration file sets it.
struct ManagementSpec {
  bool enabled = false;  // the section is present
  std::string url;       // https base URL
  double interval_s = 300;
  std::vector<std::string> public_keys;  // PEM files
  std::string ca_file, client_cert, client_key, proxy;
  std::string state_dir;  // empty: <engine.data_dir>/management
  Location where;
};

struct Config {
  std::string source;  // file name, or "<embedded default>"
  EngineSpec engine;
  ManagementSpec management;
  std::map<std::string, std::string> credentials;  // name -> reference or value
  std::vector<InstanceSpec> plugins;
  std::vector<InstanceSpec> sinks;
  std::vector<InstanceSpec> processors;
  std::vector<DeviceSpec> devices;
  std::vector<ListenerSpec> listeners;

  const InstanceSpec* find_plugin(const std::string& name) const;
};

struct ParseResult {
  std::optional<Config> config;
  std::vector<ConfigError> errors;
};

ParseResult parse_config_text(const std::string& text, const std::string& source);
ParseResult parse_config_file(const std::string& path);

// Checks settings against a plugin's field table: unknown keys, types, required keys.
void validate_settings(const Settings& settings, const outpost_field* fields, std::size_t count,
                       const std::string& path, const Location& where,
                       std::vector<ConfigError>& errors);

// A credential reference as plugins' get_secret sees it: a name from the credentials section
// (whose value may itself be a reference), ${env:NAME} or ${file:PATH} (trailing newlines cut).
outpost_status resolve_secret(const std::map<std::string, std::string>& credentials,
                              std::string_view ref, std::string& out);

// ${data_dir} and ${engine_id} in setting values.
std::string expand_vars(const std::string& value, const EngineSpec& engine);

// The configuration compiled into the binary (examples/default.yaml).
const std::string& embedded_default_config();

}  // namespace outpost::core
