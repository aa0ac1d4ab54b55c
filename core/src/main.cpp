// The outpost command line: run, check-config, plugins, query, replay, poll, default-config,
// version, and the subcommands plugins offer (outpost snmp get|walk).
#include <fmt/core.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <optional>
#include <outpost/sdk.hpp>
#include <string>
#include <vector>

#include "cli/bundle.hpp"
#include "cli/poll.hpp"
#include "cli/query.hpp"
#include "config/config.hpp"
#include "engine/engine.hpp"
#include "listeners/pcap.hpp"
#include "loader/loader.hpp"
#include "management/channel.hpp"
#include "util/clock.hpp"
#include "util/log.hpp"
#include "version.hpp"

namespace core = outpost::core;

namespace {

const char* kUsage = R"(usage: outpost [COMMAND] [OPTIONS]

commands:
  run                 run the engine (the default command)
  check-config [FILE] check a configuration (the embedded default when no FILE)
  plugins             list the plugins found: name, version, kinds, ABI, path
  query [WHAT]        read what a sink stored (the local store): summary (default), series,
                      samples, events
  replay FILE.pcap    feed the UDP datagrams of a capture to a listener plugin (--plugin)
  poll TARGET...      one poll through a poller plugin, everything it emits printed
                      (outpost poll --help)
  config history|show|diff DEVICE
                      the configurations config_backup keeps (outpost config --help)
  lg DEVICE COMMAND   the looking glass: one allowed command on a device, audited
  PLUGIN ARGS...      a plugin's own subcommand, e.g. snmp get|walk AGENT OID...: OIDs read
                      through the snmp plugin, printed as net-snmp's tools do (outpost snmp
                      --help); shared options --config, --plugin-dir, --json, --timeout,
                      --log-level
  keygen --out PREFIX make a signing key pair for the management channel: PREFIX.key, PREFIX.pub
  sign ... FILE       sign a configuration or plugin into a bundle (outpost sign --help)
  verify --pub PUB BUNDLE
                      check a bundle's signature and integrity (exit 0 when good)
  default-config      print the embedded default configuration
  version             print the version

options:
  -c, --config FILE   configuration file (default: the embedded demo configuration)
  --plugin-dir DIR    look for plugins in DIR first (repeatable)
  --for DURATION      run: stop after DURATION (e.g. 30s)
  --fields            plugins: also list each plugin's settings and monitor parameters
  --sink NAME         query: the config's sink to read (default: the first that can be read)
  --db PATH           query: the local store at PATH (a store sink's directory or a sqlite
                      sink's file), whatever the config says
  --name NAME         query series, samples: metric name
  --match TEXT        query: only names/labels/messages containing TEXT
  --since DURATION    query: only the last DURATION (e.g. 10m)
  --until DURATION    query: only data older than DURATION
  --limit N           query: at most N rows (default 50)
  --json              query: JSON lines
  --plugin NAME       replay: the listener plugin instance (from the config, or the plugin NAME)
  --port N            replay: only datagrams sent to UDP port N
)";

struct Args {
  std::string command = "run";
  std::string config;
  std::vector<std::string> plugin_dirs;
  double run_for = 0;
  bool fields = false;
  std::string plugin;
  int port = -1;
  core::cli::QueryOptions query;
  std::vector<std::string> positional;
};

std::optional<Args> parse_args(int argc, char** argv) {
  Args a;
  int i = 1;
  if (i < argc && argv[i][0] != '-') a.command = argv[i++];
  auto value = [&](const char* opt) -> std::optional<std::string> {
    if (i + 1 >= argc) {
      std::fprintf(stderr, "outpost: %s needs a value\n", opt);
      return std::nullopt;
    }
    return std::string(argv[++i]);
  };
  for (; i < argc; ++i) {
    const std::string o = argv[i];
    std::optional<std::string> v;
    if (o == "-h" || o == "--help") {
      std::fputs(kUsage, stdout);
      std::exit(0);
    } else if (o == "-c" || o == "--config") {
      if (!(v = value("--config"))) return std::nullopt;
      a.config = *v;
    } else if (o == "--plugin-dir") {
      if (!(v = value("--plugin-dir"))) return std::nullopt;
      a.plugin_dirs.push_back(*v);
    } else if (o == "--for" || o == "--since" || o == "--until") {
      if (!(v = value(o.c_str()))) return std::nullopt;
      auto d = outpost::parse_duration_seconds(*v);
      if (!d) {
        std::fprintf(stderr, "outpost: %s: not a duration: %s\n", o.c_str(), v->c_str());
        return std::nullopt;
      }
      if (o == "--for") {
        a.run_for = *d;
      } else {
        const auto now = std::chrono::duration_cast<std::chrono::nanoseconds>(
                             std::chrono::system_clock::now().time_since_epoch())
                             .count();
        (o == "--since" ? a.query.since_ns : a.query.until_ns) =
            now - static_cast<int64_t>(*d * 1e9);
      }
    } else if (o == "--plugin") {
      if (!(v = value("--plugin"))) return std::nullopt;
      a.plugin = *v;
    } else if (o == "--port") {
      if (!(v = value("--port"))) return std::nullopt;
      a.port = std::atoi(v->c_str());
    } else if (o == "--fields") {
      a.fields = true;
    } else if (o == "--sink") {
      if (!(v = value("--sink"))) return std::nullopt;
      a.query.sink = *v;
    } else if (o == "--db") {
      if (!(v = value("--db"))) return std::nullopt;
      a.query.db_path = *v;
    } else if (o == "--name") {
      if (!(v = value("--name"))) return std::nullopt;
      a.query.name = *v;
    } else if (o == "--match") {
      if (!(v = value("--match"))) return std::nullopt;
      a.query.match = *v;
    } else if (o == "--limit") {
      if (!(v = value("--limit"))) return std::nullopt;
      const int limit = std::atoi(v->c_str());
      a.query.limit = static_cast<uint64_t>(std::max(limit, 0));
      if (limit <= 0) {
        std::fprintf(stderr, "outpost: --limit: expected a positive number\n");
        return std::nullopt;
      }
    } else if (o == "--json") {
      a.query.json = true;
    } else if (!o.empty() && o[0] == '-') {
      std::fprintf(stderr, "outpost: unknown option %s\n%s", o.c_str(), kUsage);
      return std::nullopt;
    } else {
      a.positional.push_back(o);
    }
  }
  return a;
}

core::ParseResult load_config(const std::string& path) {
  return path.empty()
             ? core::parse_config_text(core::embedded_default_config(), "<embedded default>")
             : core::parse_config_file(path);
}

std::vector<std::string> plugin_dirs(const Args& a, const core::Config* cfg) {
  std::vector<std::string> dirs = a.plugin_dirs;
  if (cfg) dirs.insert(dirs.end(), cfg->engine.plugin_dirs.begin(), cfg->engine.plugin_dirs.end());
  for (auto& d : core::default_plugin_dirs()) dirs.push_back(d);
  return dirs;
}

int print_errors(const std::vector<core::ConfigError>& errors) {
  for (const auto& e : errors) std::fprintf(stderr, "%s\n", e.str().c_str());
  return 1;
}

int cmd_check(const Args& a) {
  const std::string file = !a.positional.empty() ? a.positional[0] : a.config;
  auto r = load_config(file);
  if (!r.config) return print_errors(r.errors);
  core::PluginRegistry reg;
  reg.load_dirs(plugin_dirs(a, &*r.config));
  auto errors = core::validate_config(*r.config, reg);
  if (!errors.empty()) return print_errors(errors);
  std::size_t monitors = 0;
  for (const auto& d : r.config->devices) monitors += d.monitors.size();
  std::printf("%s: ok (%zu devices, %zu monitors, %zu sinks)\n", r.config->source.c_str(),
              r.config->devices.size(), monitors, r.config->sinks.size());
  return 0;
}

const char* field_type(uint32_t t) {
  static const char* names[] = {"string", "int", "double", "bool", "duration", "secret", "list"};
  return t < 7 ? names[t] : "?";
}

int cmd_plugins(const Args& a) {
  std::optional<core::Config> cfg;
  if (!a.config.empty()) {
    auto r = load_config(a.config);
    if (!r.config) return print_errors(r.errors);
    cfg = r.config;
  }
  core::PluginRegistry reg;
  reg.load_dirs(plugin_dirs(a, cfg ? &*cfg : nullptr));
  std::printf("%-12s %-9s %-16s %-5s %s\n", "NAME", "VERSION", "KINDS", "ABI", "PATH");
  for (const auto& [name, p] : reg.plugins()) {
    std::printf("%-12s %-9.*s %-16s %-5s %s\n", name.c_str(), static_cast<int>(p.desc.version.len),
                p.desc.version.ptr, core::kinds_string(p.desc.kinds).c_str(),
                core::abi_string(p.plugin_abi).c_str(), p.path.c_str());
    if (!a.fields) continue;
    std::printf("    %.*s\n", static_cast<int>(p.desc.description.len), p.desc.description.ptr);
    auto list = [](const char* title, const outpost_field* f, std::size_t n) {
      if (n == 0) return;
      std::printf("    %s:\n", title);
      for (std::size_t i = 0; i < n; ++i)
        std::printf(
            "      %-18.*s %-8s%s %.*s%s%.*s%s\n", static_cast<int>(f[i].name.len), f[i].name.ptr,
            field_type(f[i].type), (f[i].flags & OUTPOST_FIELD_REQUIRED) ? " required" : "",
            static_cast<int>(f[i].description.len), f[i].description.ptr,
            f[i].default_value.len ? " (default: " : "", static_cast<int>(f[i].default_value.len),
            f[i].default_value.ptr, f[i].default_value.len ? ")" : "");
    };
    list("settings", p.desc.config_fields, p.desc.config_field_count);
    list("monitor parameters", p.desc.target_fields, p.desc.target_field_count);
  }
  for (const auto& r : reg.refusals())
    std::printf("refused: %s: %s\n", r.path.c_str(), r.reason.c_str());
  return 0;
}

int cmd_query(Args& a) {
  if (!a.positional.empty()) a.query.what = a.positional[0];
  a.query.config_path = a.config;
  a.query.plugin_dirs = a.plugin_dirs;
  return core::cli::run_query(a.query, std::cout, std::cerr);
}

int cmd_replay(const Args& a) {
  if (a.plugin.empty() || a.positional.size() != 1) {
    std::fprintf(stderr, "usage: outpost replay --plugin NAME [-c CONFIG] [--port N] FILE.pcap\n");
    return 2;
  }
  core::Config cfg;
  if (!a.config.empty()) {
    auto r = load_config(a.config);
    if (!r.config) return print_errors(r.errors);
    cfg = *r.config;
  } else {
    cfg.source = "<replay>";
    cfg.engine.data_dir = (std::filesystem::temp_directory_path() / "outpost-replay").string();
  }
  cfg.devices.clear();  // replay feeds the one listener, nothing else runs
  cfg.listeners.clear();
  cfg.engine.summary_interval_s = 0;
  if (cfg.find_plugin(a.plugin) == nullptr) {
    core::InstanceSpec s;
    s.name = s.plugin = a.plugin;
    s.path = "--plugin";
    cfg.plugins.push_back(s);
  }
  if (cfg.sinks.empty()) {
    core::InstanceSpec s;
    s.name = s.plugin = "stdout";
    s.path = "<replay sink>";
    cfg.sinks.push_back(s);
  }
  std::ifstream in(a.positional[0], std::ios::binary);
  if (!in) {
    std::fprintf(stderr, "outpost: cannot open %s\n", a.positional[0].c_str());
    return 1;
  }
  const std::vector<uint8_t> capture((std::istreambuf_iterator<char>(in)),
                                     std::istreambuf_iterator<char>());
  core::PluginRegistry reg;
  reg.load_dirs(plugin_dirs(a, &cfg));
  core::Engine engine(reg);
  if (!engine.start(cfg)) return 1;
  std::vector<outpost_datagram> batch;
  uint64_t fed = 0, failed = 0;
  auto flush = [&] {
    if (batch.empty()) return;
    if (engine.feed(a.plugin, batch.data(), batch.size()) != OUTPOST_OK) ++failed;
    fed += batch.size();
    batch.clear();
  };
  core::PcapStats st;
  std::string error;
  const bool ok = core::read_pcap(
      capture,
      [&](const core::PcapDatagram& d) {
        if (a.port >= 0 && d.destination.port != a.port) return;
        outpost_datagram dg{};
        dg.data = d.payload.data();
        dg.len = d.payload.size();
        dg.source = d.source;
        dg.recv_time_ns = d.time_ns;
        batch.push_back(dg);
        if (batch.size() == 64) flush();
      },
      st, error);
  flush();
  engine.stop();
  if (!ok) {
    std::fprintf(stderr, "outpost: %s: %s\n", a.positional[0].c_str(), error.c_str());
    return 1;
  }
  std::fprintf(stderr,
               "replayed %llu datagrams into %s (%llu records, %llu UDP, %llu other, %llu "
               "malformed; %llu batches refused)\n",
               static_cast<unsigned long long>(fed), a.plugin.c_str(),
               static_cast<unsigned long long>(st.records), static_cast<unsigned long long>(st.udp),
               static_cast<unsigned long long>(st.not_udp),
               static_cast<unsigned long long>(st.malformed),
               static_cast<unsigned long long>(failed));
  return 0;
}

int cmd_run(const Args& a) {
  auto r = load_config(a.config);
  if (!r.config) return print_errors(r.errors);
  core::LogLevel lvl;
  if (core::parse_log_level(r.config->engine.log_level, lvl)) core::set_log_level(lvl);
  core::logf(core::LogLevel::info, "outpost {} starting with {}", core::version(),
             r.config->source);
  core::PluginRegistry reg;
  reg.load_dirs(plugin_dirs(a, &*r.config));
  for (const auto& [n, p] : reg.plugins())
    core::logf(core::LogLevel::debug, "plugin {} from {}", n, p.path);
  // The management channel may start the engine from the configuration and plugins it applied.
  std::unique_ptr<core::mgmt::Channel> channel;
  if (r.config->management.enabled) {
    channel =
        std::make_unique<core::mgmt::Channel>(r.config->management, r.config->engine.data_dir, reg);
    if (!channel->restore(*r.config)) return 1;
  }
  core::Engine engine(reg);
  if (!engine.start(*r.config)) return 1;
  if (channel) channel->start(engine);
  const std::string path = a.config;
  engine.run(a.run_for, [&path, &channel] {
    auto next = load_config(path);
    if (next.config && channel) channel->overlay(*next.config);
    return next;
  });
  if (channel) channel->stop();
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  core::mono_origin();  // the host's monotonic clock starts here
  // A sink writing to a closed pipe gets EPIPE and reports it; it must not kill the engine.
  std::signal(SIGPIPE, SIG_IGN);
  // These parse their own options (snmp's -c is a community, as in net-snmp's tools).
  if (argc >= 2 && std::strcmp(argv[1], "poll") == 0)
    return core::cli::cmd_poll(argc - 2, argv + 2);
  // `outpost config history|show|diff DEVICE` and `outpost lg DEVICE COMMAND`: the
  // config_backup plugin's subcommand under the names its users know.
  if (argc >= 2 && std::strcmp(argv[1], "config") == 0) {
    const int rc = core::cli::cmd_plugin("config_backup", argc - 2, argv + 2);
    if (rc >= 0) return rc;
  }
  if (argc >= 2 && std::strcmp(argv[1], "lg") == 0) {
    std::vector<char*> args(argv + 1, argv + argc);  // "lg" stays: the subcommand's first word
    const int rc =
        core::cli::cmd_plugin("config_backup", static_cast<int>(args.size()), args.data());
    if (rc >= 0) return rc;
  }
  if (argc >= 2 && std::strcmp(argv[1], "keygen") == 0)
    return core::cli::cmd_keygen(argc - 2, argv + 2);
  if (argc >= 2 && std::strcmp(argv[1], "sign") == 0)
    return core::cli::cmd_sign(argc - 2, argv + 2);
  if (argc >= 2 && std::strcmp(argv[1], "verify") == 0)
    return core::cli::cmd_verify(argc - 2, argv + 2);
  static const char* const kBuiltin[] = {"run",    "check-config",   "plugins", "query",
                                         "replay", "default-config", "version"};
  if (argc >= 2 && argv[1][0] != '-' &&
      std::none_of(std::begin(kBuiltin), std::end(kBuiltin),
                   [&](const char* b) { return std::strcmp(argv[1], b) == 0; })) {
    // A plugin's subcommand, e.g. `outpost snmp get ...`.
    const int rc = core::cli::cmd_plugin(argv[1], argc - 2, argv + 2);
    if (rc >= 0) return rc;
  }
  auto args = parse_args(argc, argv);
  if (!args) return 2;
  const std::string& c = args->command;
  if (c == "run") return cmd_run(*args);
  if (c == "check-config") return cmd_check(*args);
  if (c == "plugins") return cmd_plugins(*args);
  if (c == "query") return cmd_query(*args);
  if (c == "replay") return cmd_replay(*args);
  if (c == "default-config") {
    std::fputs(core::embedded_default_config().c_str(), stdout);
    return 0;
  }
  if (c == "version") {
    std::printf("outpost %s (%s), plugin ABI %s\n", core::version(), core::build_type(),
                core::abi_string(OUTPOST_ABI_VERSION).c_str());
    return 0;
  }
  std::fprintf(stderr, "outpost: unknown command '%s'\n%s", c.c_str(), kUsage);
  return 2;
}
