// `outpost NAME ARGS...` for a plugin that offers a subcommand (ABI 1.2): the plugin turns its
// arguments into one poll of itself (outpost_command_plan), the host runs it as `outpost poll`
// does and prints the events the plugin names. Protocol knowledge (net-snmp's options for
// `outpost snmp get|walk`, later the SSH family's `outpost config` and `outpost lg`) lives in
// the plugin; the host knows only the options every subcommand shares.
#include <fmt/core.h>

#include <cstdio>
#include <iostream>
#include <outpost/sdk.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "cli/poll.hpp"
#include "config/config.hpp"
#include "loader/loader.hpp"
#include "util/log.hpp"
#include "util/status.hpp"

namespace outpost::core::cli {
namespace {

std::string sv(outpost_str s) { return s.ptr ? std::string(s.ptr, s.len) : std::string(); }

// The subcommand's plugin: from --plugin-dir, the configuration's engine.plugin_dirs and the
// default places, as `outpost poll` finds it.
const LoadedPlugin* find_plugin(PluginRegistry& reg, const std::string& name,
                                const PollSpec& spec) {
  std::vector<std::string> dirs = spec.plugin_dirs;
  if (!spec.config_path.empty())
    if (auto r = parse_config_file(spec.config_path); r.config)
      dirs.insert(dirs.end(), r.config->engine.plugin_dirs.begin(),
                  r.config->engine.plugin_dirs.end());
  for (auto& d : default_plugin_dirs()) dirs.push_back(d);
  reg.load_dirs(dirs);
  return reg.find(name);
}

}  // namespace

int cmd_plugin(const std::string& name, int argc, char** argv) {
  PollSpec spec;
  spec.plugin = name;
  bool json = false;
  std::string log_level = "warn";
  std::vector<std::string> args;
  auto usage_error = [&](const std::string& msg) {
    std::fprintf(stderr, "outpost %s: %s\n", name.c_str(), msg.c_str());
    return 2;
  };
  // The options every subcommand shares are the host's; the rest is the plugin's to read.
  for (int i = 0; i < argc; ++i) {
    const std::string o = argv[i];
    if (o == "--json") {
      json = true;
      continue;
    }
    if (o == "--timeout" || o == "--config" || o == "--plugin-dir" || o == "--log-level") {
      if (i + 1 >= argc) return usage_error(o + " needs a value");
      const std::string v = argv[++i];
      if (o == "--timeout") {
        const auto d = parse_duration_seconds(v);
        if (!d || *d <= 0) return usage_error("--timeout: not a positive duration: " + v);
        spec.timeout_s = *d;
      } else if (o == "--config") {
        spec.config_path = v;
      } else if (o == "--plugin-dir") {
        spec.plugin_dirs.push_back(v);
      } else {
        log_level = v;
      }
      continue;
    }
    args.push_back(o);
  }
  LogLevel lvl;
  if (!parse_log_level(log_level, lvl))
    return usage_error("--log-level: expected debug, info, warn or error");
  set_log_level(lvl);

  PluginRegistry reg;
  const LoadedPlugin* p = find_plugin(reg, name, spec);
  if (p == nullptr || !OUTPOST_HAS(&p->desc, outpost_plugin_descriptor, command) ||
      p->desc.command == nullptr)
    return -1;  // not a plugin's subcommand: the caller says "unknown command"

  std::vector<outpost_str> cargs;
  for (const auto& a : args) cargs.push_back(outpost_str{a.data(), a.size()});
  outpost_command_plan plan{};
  plan.struct_size = sizeof plan;
  const outpost_status st = p->desc.command(cargs.data(), cargs.size(), &plan);
  if (st != OUTPOST_OK)
    return usage_error(fmt::format("the plugin's command failed ({})", status_name(st)));
  const std::string text = sv(plan.text);
  if (!plan.run_poll) {
    std::fputs(text.c_str(), plan.exit_code == 0 ? stdout : stderr);
    return plan.exit_code;
  }
  if (!text.empty()) std::fputs(text.c_str(), stdout);
  for (std::size_t i = 0; i < plan.param_count; ++i)
    spec.params.emplace_back(sv(plan.params[i].key), sv(plan.params[i].value));
  for (std::size_t i = 0; i < plan.target_count; ++i) spec.targets.push_back(sv(plan.targets[i]));
  if (spec.timeout_s <= 0 && plan.timeout_ns > 0)
    spec.timeout_s = static_cast<double>(plan.timeout_ns) / 1e9;
  const std::string kind = sv(plan.print_kind);

  PollOutcome out;
  if (const int rc = poll_once(spec, out, std::cerr); rc != 0) return rc;
  if (json) {
    print_json(out, std::cout, false);
  } else {
    for (const auto& b : out.batches)
      for (const auto& e : b.events())
        if (b.str(e.kind) == kind) std::cout << b.str(e.message) << "\n";
  }
  std::cout.flush();
  for (const auto& t : out.targets)
    if (t.status != OUTPOST_OK)
      std::cerr << fmt::format("outpost {}: {}: {}: {}\n", name, t.address, status_name(t.status),
                               t.detail);
  return exit_status(out);
}

}  // namespace outpost::core::cli
