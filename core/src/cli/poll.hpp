// `outpost poll`: one poll of a few targets through one poller plugin, loaded and configured as
// `outpost run` would (same loader, same field-table validation, same credential references),
// with everything the plugin emits and every target's outcome printed instead of stored. Like
// `telegraf --test`: the quickest way to see what a plugin makes of a device.
#pragma once

#include <outpost/plugin.h>

#include <cstdint>
#include <iosfwd>
#include <string>
#include <utility>
#include <vector>

#include "pipeline/batch.hpp"

namespace outpost::core::cli {

using KeyValues = std::vector<std::pair<std::string, std::string>>;

struct PollSpec {
  std::string plugin;       // an instance of the config's plugins section, or a plugin name
  std::string config_path;  // optional: plugin settings, credentials, engine.plugin_dirs
  std::vector<std::string> plugin_dirs;
  KeyValues set;     // plugin settings, over the config's (a list setting: repeat the key)
  KeyValues params;  // the monitor's parameters (a list parameter: repeat the key)
  std::vector<std::string> targets;  // addresses; each is also the device name
  double timeout_s = 0;              // the poll deadline; 0 = engine.scheduler.default_timeout
};

struct TargetOutcome {
  std::string address;
  bool completed = false;  // by the plugin; else timed out at the deadline
  outpost_status status = OUTPOST_E_TIMEOUT;
  std::string detail;
  double seconds = 0;  // from the poll to the completion
};

struct PollOutcome {
  std::string instance, plugin;
  std::vector<Batch> batches;  // everything the plugin emitted, in order
  std::vector<TargetOutcome> targets;
  uint64_t late = 0;  // completions after the deadline, ignored
};

// Loads, validates, polls once and stops the plugin. Returns 0 with `out` filled, or 2 after
// printing usage or configuration errors to `err` (check-config's format).
int poll_once(const PollSpec& spec, PollOutcome& out, std::ostream& err);

// 0 when every target completed OK, 2 when one was refused as misconfigured (CONFIG), else 1.
int exit_status(const PollOutcome& out);

// A readable table: metrics, events, then the targets' outcomes.
void print_table(const PollOutcome& out, std::ostream& os);
// JSON lines: metrics and events as the file sink writes them, then {"type":"target"...}.
void print_json(const PollOutcome& out, std::ostream& os, bool metrics = true);

// "ok", "timeout", "auth"... as the engine's self-metrics name them.

// The commands: `outpost poll ...`, and `outpost NAME ...` for a plugin that offers a
// subcommand (-1 when no plugin named NAME does); argv starts after the command's name.
int cmd_poll(int argc, char** argv);
int cmd_plugin(const std::string& name, int argc, char** argv);

}  // namespace outpost::core::cli
