#include "config/config.hpp"

#include <yaml-cpp/yaml.h>

#include <charconv>
#include <fstream>
#include <outpost/sdk.hpp>
#include <set>
#include <sstream>

namespace outpost::core {

std::string ConfigError::str() const {
  std::string out = where.file;
  if (where.line > 0) out += ":" + std::to_string(where.line) + ":" + std::to_string(where.column);
  out += ": ";
  if (!path.empty()) out += path + ": ";
  return out + message;
}

bool InstanceSpec::operator==(const InstanceSpec& o) const {
  if (name != o.name || plugin != o.plugin || settings.size() != o.settings.size() ||
      !(spool == o.spool))
    return false;
  for (std::size_t i = 0; i < settings.size(); ++i)
    if (settings[i].key != o.settings[i].key || settings[i].value != o.settings[i].value)
      return false;
  return true;
}

const InstanceSpec* Config::find_plugin(const std::string& name) const {
  for (const auto& p : plugins)
    if (p.name == name) return &p;
  return nullptr;
}

namespace {

class Reader {
 public:
  Reader(std::string source, std::vector<ConfigError>& errors)
      : source_(std::move(source)), errors_(errors) {}

  Location at(const YAML::Node& n) const {
    const YAML::Mark m = n.Mark();
    if (m.is_null()) return Location{source_, 0, 0};
    return Location{source_, m.line + 1, m.column + 1};
  }
  void error(const YAML::Node& n, const std::string& path, const std::string& msg) {
    errors_.push_back(ConfigError{at(n), path, msg});
  }

  // Reports keys of a map that are not in `allowed`. Returns false when n is not a map.
  bool expect_map(const YAML::Node& n, const std::string& path) {
    if (n.IsMap()) return true;
    if (n.IsNull()) return false;
    error(n, path, "expected a mapping");
    return false;
  }
  void check_keys(const YAML::Node& n, const std::string& path,
                  const std::set<std::string>& allowed) {
    for (auto it = n.begin(); it != n.end(); ++it) {
      const std::string key = it->first.as<std::string>("");
      if (!allowed.count(key)) {
        std::string known;
        for (const auto& a : allowed) known += (known.empty() ? "" : ", ") + a;
        error(it->first, join(path, key), "unknown key (expected one of: " + known + ")");
      }
    }
  }
  static std::string join(const std::string& path, const std::string& key) {
    return path.empty() ? key : path + "." + key;
  }

  bool scalar(const YAML::Node& n, const std::string& path, std::string& out) {
    if (!n.IsScalar()) {
      error(n, path, "expected a scalar value");
      return false;
    }
    out = n.Scalar();
    return true;
  }
  void string_key(const YAML::Node& map, const char* key, const std::string& path,
                  std::string& out) {
    if (const YAML::Node n = map[key]) scalar(n, join(path, key), out);
  }
  void duration_key(const YAML::Node& map, const char* key, const std::string& path, double& out,
                    bool positive = true) {
    const YAML::Node n = map[key];
    std::string s;
    if (!n || !scalar(n, join(path, key), s)) return;
    auto d = parse_duration_seconds(s);
    if (!d || (positive && *d <= 0)) {
      error(n, join(path, key), "not a valid duration: '" + s + "' (e.g. 500ms, 10s, 5m)");
      return;
    }
    out = *d;
  }
  void size_key(const YAML::Node& map, const char* key, const std::string& path, std::size_t& out) {
    const YAML::Node n = map[key];
    std::string s;
    if (!n || !scalar(n, join(path, key), s)) return;
    std::size_t v = 0;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc{} || p != s.data() + s.size() || v == 0) {
      error(n, join(path, key), "expected a positive integer, got '" + s + "'");
      return;
    }
    out = v;
  }
  void fraction_key(const YAML::Node& map, const char* key, const std::string& path, double& out) {
    const YAML::Node n = map[key];
    std::string s;
    if (!n || !scalar(n, join(path, key), s)) return;
    char* end = nullptr;
    const double v = std::strtod(s.c_str(), &end);
    if (end != s.c_str() + s.size() || v < 0 || v > 1) {
      error(n, join(path, key), "expected a number between 0 and 1, got '" + s + "'");
      return;
    }
    out = v;
  }

  // Flattens a plugin's settings (or a monitor's parameters) into dotted keys.
  void flatten(const YAML::Node& n, const std::string& key, const std::string& path, Settings& out,
               const Location& key_where) {
    if (n.IsScalar()) {
      out.push_back(Setting{key, n.Scalar(), at(n), key_where});
    } else if (n.IsNull()) {
      out.push_back(Setting{key, "", key_where, key_where});
    } else if (n.IsSequence()) {
      std::size_t i = 0;
      for (const auto& item : n) {
        const std::string k = key + "." + std::to_string(i);
        flatten(item, k, path + "[" + std::to_string(i) + "]", out, key_where);
        ++i;
      }
    } else if (n.IsMap()) {
      for (auto it = n.begin(); it != n.end(); ++it) {
        const std::string sub = it->first.as<std::string>("");
        flatten(it->second, key.empty() ? sub : key + "." + sub, join(path, sub), out,
                at(it->first));
      }
    }
  }

  void engine(const YAML::Node& n, EngineSpec& e) {
    const std::string p = "engine";
    if (!expect_map(n, p)) return;
    check_keys(n, p,
               {"id", "data_dir", "plugin_dirs", "log_level", "summary_interval",
                "self_metrics_interval", "pipeline", "scheduler"});
    string_key(n, "id", p, e.id);
    string_key(n, "data_dir", p, e.data_dir);
    if (const YAML::Node dirs = n["plugin_dirs"]) {
      if (!dirs.IsSequence())
        error(dirs, p + ".plugin_dirs", "expected a list of directories");
      else
        for (const auto& d : dirs) {
          std::string s;
          if (scalar(d, p + ".plugin_dirs", s)) e.plugin_dirs.push_back(s);
        }
    }
    if (const YAML::Node l = n["log_level"]) {
      std::string s;
      LogLevelCheck(l, s, e);
    }
    duration_key(n, "summary_interval", p, e.summary_interval_s, false);
    duration_key(n, "self_metrics_interval", p, e.self_metrics_interval_s);
    if (const YAML::Node pl = n["pipeline"]; pl && expect_map(pl, p + ".pipeline")) {
      const std::string pp = p + ".pipeline";
      check_keys(pl, pp, {"queue_capacity", "batch_size", "flush_interval", "raw_flows"});
      if (const YAML::Node rf = pl["raw_flows"]) {
        std::string v;
        if (scalar(rf, pp + ".raw_flows", v)) {
          if (v == "true" || v == "yes" || v == "on")
            e.raw_flows = true;
          else if (v == "false" || v == "no" || v == "off")
            e.raw_flows = false;
          else
            error(rf, pp + ".raw_flows", "expected true or false, got '" + v + "'");
        }
      }
      size_key(pl, "queue_capacity", pp, e.queue_capacity);
      size_key(pl, "batch_size", pp, e.batch_size);
      duration_key(pl, "flush_interval", pp, e.flush_interval_s);
    }
    if (const YAML::Node s = n["scheduler"]; s && expect_map(s, p + ".scheduler")) {
      const std::string sp = p + ".scheduler";
      check_keys(
          s, sp,
          {"max_in_flight", "max_batch_targets", "jitter", "default_interval", "default_timeout"});
      size_key(s, "max_in_flight", sp, e.max_in_flight);
      size_key(s, "max_batch_targets", sp, e.max_batch_targets);
      fraction_key(s, "jitter", sp, e.jitter);
      duration_key(s, "default_interval", sp, e.default_interval_s);
      duration_key(s, "default_timeout", sp, e.default_timeout_s);
      e.default_timeout_set = static_cast<bool>(s["default_timeout"]);
    }
  }

  void LogLevelCheck(const YAML::Node& l, std::string& s, EngineSpec& e) {
    if (!scalar(l, "engine.log_level", s)) return;
    if (s != "debug" && s != "info" && s != "warn" && s != "error") {
      error(l, "engine.log_level", "expected debug, info, warn or error, got '" + s + "'");
      return;
    }
    e.log_level = s;
  }

  bool bool_value(const YAML::Node& n, const std::string& path, bool& out) {
    std::string v;
    if (!scalar(n, path, v)) return false;
    if (v == "true" || v == "yes" || v == "on") {
      out = true;
    } else if (v == "false" || v == "no" || v == "off") {
      out = false;
    } else {
      error(n, path, "expected true or false, got '" + v + "'");
      return false;
    }
    return true;
  }
  // A size in bytes: 1048576, 512KiB, 64MiB, 2GiB (also KB/MB/GB as powers of 1000).
  void bytes_key(const YAML::Node& map, const char* key, const std::string& path, uint64_t& out) {
    const YAML::Node n = map[key];
    std::string s;
    if (!n || !scalar(n, join(path, key), s)) return;
    uint64_t v = 0;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    const std::string unit(p, static_cast<std::size_t>(s.data() + s.size() - p));
    static const std::map<std::string, uint64_t> units = {{"", 1},
                                                          {"B", 1},
                                                          {"KiB", 1ull << 10},
                                                          {"MiB", 1ull << 20},
                                                          {"GiB", 1ull << 30},
                                                          {"TiB", 1ull << 40},
                                                          {"KB", 1000},
                                                          {"MB", 1000000},
                                                          {"GB", 1000000000}};
    const auto u = units.find(unit);
    if (ec != std::errc{} || u == units.end() || v == 0 || v > (UINT64_MAX / u->second)) {
      error(n, join(path, key), "expected a size such as 512MiB or 2GiB, got '" + s + "'");
      return;
    }
    out = v * u->second;
  }
  void spool(const YAML::Node& n, const std::string& path, SpoolSpec& out) {
    if (n.IsScalar()) {
      bool on = false;
      if (bool_value(n, path, on)) out.enabled = on;
      return;
    }
    if (!expect_map(n, path)) return;
    check_keys(n, path,
               {"enabled", "dir", "max_source_bytes", "segment_bytes", "sync_interval",
                "batch_items", "batch_bytes", "max_delay", "backoff_initial", "backoff_max"});
    out.enabled = true;
    if (const YAML::Node e = n["enabled"]) {
      bool on = true;
      if (bool_value(e, join(path, "enabled"), on)) out.enabled = on;
    }
    string_key(n, "dir", path, out.dir);
    bytes_key(n, "max_source_bytes", path, out.max_source_bytes);
    bytes_key(n, "segment_bytes", path, out.segment_bytes);
    duration_key(n, "sync_interval", path, out.sync_interval_s);
    size_key(n, "batch_items", path, out.batch_items);
    bytes_key(n, "batch_bytes", path, out.batch_bytes);
    duration_key(n, "max_delay", path, out.max_delay_s, false);
    duration_key(n, "backoff_initial", path, out.backoff_initial_s);
    duration_key(n, "backoff_max", path, out.backoff_max_s);
  }

  void instances(const YAML::Node& n, const std::string& section, std::vector<InstanceSpec>& out,
                 bool plugin_required) {
    if (!expect_map(n, section)) return;
    for (auto it = n.begin(); it != n.end(); ++it) {
      InstanceSpec spec;
      spec.name = it->first.as<std::string>("");
      spec.path = join(section, spec.name);
      spec.where = at(it->first);
      spec.plugin = spec.name;
      const YAML::Node body = it->second;
      if (!body.IsNull() && !body.IsMap()) {
        error(body, spec.path, "expected a mapping of settings");
        continue;
      }
      bool has_plugin = false;
      if (body.IsMap()) {
        for (auto kv = body.begin(); kv != body.end(); ++kv) {
          const std::string key = kv->first.as<std::string>("");
          if (key == "plugin") {
            has_plugin = scalar(kv->second, join(spec.path, "plugin"), spec.plugin);
            continue;
          }
          if (key == "spool" && section == "sinks") {
            spool(kv->second, join(spec.path, "spool"), spec.spool);
            continue;
          }
          flatten(kv->second, key, join(spec.path, key), spec.settings, at(kv->first));
        }
      }
      if (plugin_required && !has_plugin) {
        error(it->first, spec.path,
              "missing key 'plugin' (which " +
                  std::string(section == "sinks" ? "sink" : "processor") + " plugin to use)");
        continue;
      }
      out.push_back(std::move(spec));
    }
  }

  void inventory(const YAML::Node& n, Config& cfg) {
    if (!expect_map(n, "inventory")) return;
    check_keys(n, "inventory", {"devices"});
    const YAML::Node devs = n["devices"];
    if (!devs) return;
    if (!devs.IsSequence()) {
      error(devs, "inventory.devices", "expected a list of devices");
      return;
    }
    std::set<std::string> names;
    std::size_t i = 0;
    for (const auto& d : devs) {
      const std::string p = "inventory.devices[" + std::to_string(i++) + "]";
      if (!d.IsMap()) {
        error(d, p, "expected a mapping (name, address, tags, monitors)");
        continue;
      }
      check_keys(d, p, {"name", "address", "tags", "monitors"});
      DeviceSpec dev;
      dev.where = at(d);
      string_key(d, "name", p, dev.name);
      string_key(d, "address", p, dev.address);
      if (dev.name.empty() && dev.address.empty()) {
        error(d, p, "a device needs a name or an address");
        continue;
      }
      if (dev.name.empty()) dev.name = dev.address;
      if (dev.address.empty()) dev.address = dev.name;
      if (!names.insert(dev.name).second)
        error(d["name"] ? d["name"] : d, p + ".name", "duplicate device name '" + dev.name + "'");
      if (const YAML::Node tags = d["tags"]; tags && expect_map(tags, p + ".tags")) {
        for (auto t = tags.begin(); t != tags.end(); ++t) {
          std::string v;
          const std::string k = t->first.as<std::string>("");
          if (scalar(t->second, join(p + ".tags", k), v)) dev.tags.emplace_back(k, v);
        }
      }
      if (const YAML::Node mons = d["monitors"]) {
        if (!mons.IsSequence()) {
          error(mons, p + ".monitors", "expected a list of monitors");
        } else {
          std::size_t j = 0;
          for (const auto& m : mons)
            monitor(m, p + ".monitors[" + std::to_string(j++) + "]", cfg, dev);
        }
      }
      cfg.devices.push_back(std::move(dev));
    }
  }

  void monitor(const YAML::Node& m, const std::string& p, const Config& cfg, DeviceSpec& dev) {
    if (!m.IsMap()) {
      error(m, p, "expected a mapping with at least 'plugin'");
      return;
    }
    MonitorSpec mon;
    mon.where = at(m);
    mon.path = p;
    mon.interval_s = cfg.engine.default_interval_s;
    bool timeout_set = false;
    for (auto kv = m.begin(); kv != m.end(); ++kv) {
      const std::string key = kv->first.as<std::string>("");
      if (key == "plugin") {
        scalar(kv->second, join(p, "plugin"), mon.instance);
      } else if (key == "interval") {
        duration_key(m, "interval", p, mon.interval_s);
      } else if (key == "timeout") {
        duration_key(m, "timeout", p, mon.timeout_s);
        timeout_set = true;
      } else {
        flatten(kv->second, key, join(p, key), mon.params, at(kv->first));
      }
    }
    if (mon.instance.empty()) {
      error(m, p, "missing key 'plugin' (which poller runs this monitor)");
      return;
    }
    // A timeout longer than the interval would let polls of one target overlap.
    if (!timeout_set) mon.timeout_s = cfg.engine.monitor_timeout_s(mon.interval_s);
    if (timeout_set && mon.timeout_s > mon.interval_s)
      error(m["timeout"], join(p, "timeout"), "timeout is longer than the interval");
    dev.monitors.push_back(std::move(mon));
  }

  void credentials(const YAML::Node& n, Config& cfg) {
    if (!expect_map(n, "credentials")) return;
    for (auto it = n.begin(); it != n.end(); ++it) {
      std::string v;
      const std::string k = it->first.as<std::string>("");
      if (scalar(it->second, "credentials." + k, v)) cfg.credentials[k] = v;
    }
  }

  void top(const YAML::Node& root, Config& cfg) {
    if (root.IsNull()) return;
    if (!root.IsMap()) {
      error(root, "", "the configuration must be a mapping");
      return;
    }
    check_keys(root, "",
               {"engine", "inventory", "credentials", "plugins", "sinks", "listeners", "processors",
                "management"});
    // engine first: its defaults apply to monitors.
    if (const YAML::Node e = root["engine"]) engine(e, cfg.engine);
    if (const YAML::Node c = root["credentials"]) credentials(c, cfg);
    if (const YAML::Node p = root["plugins"]) instances(p, "plugins", cfg.plugins, false);
    if (const YAML::Node s = root["sinks"]) instances(s, "sinks", cfg.sinks, true);
    if (const YAML::Node s = root["processors"]) instances(s, "processors", cfg.processors, true);
    if (const YAML::Node i = root["inventory"]) inventory(i, cfg);
    if (const YAML::Node l = root["listeners"]) listeners(l, cfg);
    if (const YAML::Node m = root["management"]) management(m, cfg.management);
  }

  void management(const YAML::Node& n, ManagementSpec& m) {
    const std::string p = "management";
    if (!expect_map(n, p)) return;
    check_keys(n, p,
               {"url", "interval", "public_keys", "ca_file", "client_cert", "client_key", "proxy",
                "state_dir"});
    m.enabled = true;
    m.where = at(n);
    string_key(n, "url", p, m.url);
    if (!n["url"])
      error(n, p, "missing key 'url' (the https base URL bundles are fetched from)");
    else if (m.url.rfind("https://", 0) != 0 || m.url.size() <= 8)
      error(n["url"], p + ".url", "expected an https:// URL, got '" + m.url + "'");
    duration_key(n, "interval", p, m.interval_s);
    const YAML::Node keys = n["public_keys"];
    if (!keys || (keys.IsSequence() && keys.size() == 0))
      error(keys ? keys : n, p + ".public_keys", "expected a list of at least one public key file");
    else if (!keys.IsSequence())
      error(keys, p + ".public_keys", "expected a list of public key files (PEM)");
    else
      for (const auto& k : keys) {
        std::string s;
        if (scalar(k, p + ".public_keys", s)) m.public_keys.push_back(s);
      }
    string_key(n, "ca_file", p, m.ca_file);
    string_key(n, "client_cert", p, m.client_cert);
    string_key(n, "client_key", p, m.client_key);
    if (m.client_cert.empty() != m.client_key.empty())
      error(n, p, "client_cert and client_key go together");
    string_key(n, "proxy", p, m.proxy);
    string_key(n, "state_dir", p, m.state_dir);
  }

  void listeners(const YAML::Node& n, Config& cfg) {
    if (!n.IsSequence()) {
      error(n, "listeners", "expected a list of listeners");
      return;
    }
    std::size_t i = 0;
    for (const auto& l : n) {
      const std::string p = "listeners[" + std::to_string(i++) + "]";
      if (!l.IsMap()) {
        error(l, p, "expected a mapping (plugin, udp)");
        continue;
      }
      check_keys(l, p, {"plugin", "udp", "recv_buffer", "batch"});
      ListenerSpec spec;
      spec.where = at(l);
      spec.path = p;
      string_key(l, "plugin", p, spec.instance);
      if (spec.instance.empty()) {
        error(l, p, "missing key 'plugin' (which listener plugin gets the datagrams)");
        continue;
      }
      std::string addr;
      string_key(l, "udp", p, addr);
      if (addr.empty()) {
        error(l, p, "missing key 'udp' (address:port to bind, e.g. 0.0.0.0:2055 or [::]:162)");
        continue;
      }
      if (!split_host_port(addr, spec.host, spec.port)) {
        error(l["udp"], p + ".udp", "expected address:port, got '" + addr + "'");
        continue;
      }
      size_key(l, "recv_buffer", p, spec.recv_buffer);
      size_key(l, "batch", p, spec.batch);
      cfg.listeners.push_back(std::move(spec));
    }
  }

  static bool split_host_port(const std::string& s, std::string& host, uint16_t& port) {
    std::string h, ps;
    if (!s.empty() && s[0] == '[') {
      const auto close = s.find(']');
      if (close == std::string::npos || close + 1 >= s.size() || s[close + 1] != ':') return false;
      h = s.substr(1, close - 1);
      ps = s.substr(close + 2);
    } else {
      const auto colon = s.rfind(':');
      if (colon == std::string::npos || s.find(':') != colon) return false;
      h = s.substr(0, colon);
      ps = s.substr(colon + 1);
    }
    unsigned v = 0;
    auto [ptr, ec] = std::from_chars(ps.data(), ps.data() + ps.size(), v);
    if (ec != std::errc{} || ptr != ps.data() + ps.size() || v > 65535 || h.empty()) return false;
    host = h;
    port = static_cast<uint16_t>(v);
    return true;
  }

 private:
  std::string source_;
  std::vector<ConfigError>& errors_;
};

bool valid_value(uint32_t type, const std::string& v) {
  switch (type) {
    case OUTPOST_FIELD_INT: {
      int64_t x = 0;
      auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), x);
      return ec == std::errc{} && p == v.data() + v.size();
    }
    case OUTPOST_FIELD_DOUBLE: {
      char* end = nullptr;
      std::strtod(v.c_str(), &end);
      return !v.empty() && end == v.c_str() + v.size();
    }
    case OUTPOST_FIELD_BOOL:
      return v == "true" || v == "false" || v == "yes" || v == "no" || v == "on" || v == "off" ||
             v == "1" || v == "0";
    case OUTPOST_FIELD_DURATION:
      return parse_duration_seconds(v).has_value();
    default:
      return true;
  }
}

const char* type_name(uint32_t type) {
  switch (type) {
    case OUTPOST_FIELD_INT:
      return "an integer";
    case OUTPOST_FIELD_DOUBLE:
      return "a number";
    case OUTPOST_FIELD_BOOL:
      return "a boolean";
    case OUTPOST_FIELD_DURATION:
      return "a duration (e.g. 500ms, 10s)";
    case OUTPOST_FIELD_LIST:
      return "a list";
    default:
      return "a string";
  }
}

}  // namespace

namespace {
// For "name.N.member": the length of "name" (the first ".<digits>." splits it).
std::optional<std::size_t> list_item_of_map(const std::string& key) {
  for (std::size_t dot = key.find('.'); dot != std::string::npos; dot = key.find('.', dot + 1)) {
    const std::size_t end = key.find('.', dot + 1);
    if (end == std::string::npos || end == dot + 1 || end + 1 >= key.size()) continue;
    if (key.find_first_not_of("0123456789", dot + 1) == end) return dot;
  }
  return std::nullopt;
}
}  // namespace

void validate_settings(const Settings& settings, const outpost_field* fields, std::size_t count,
                       const std::string& path, const Location& where,
                       std::vector<ConfigError>& errors) {
  auto find = [&](std::string_view name) -> const outpost_field* {
    for (std::size_t i = 0; i < count; ++i)
      if (view(fields[i].name) == name) return &fields[i];
    return nullptr;
  };
  std::set<std::string> seen;
  for (const auto& s : settings) {
    const outpost_field* f = find(s.key);
    std::string base = s.key;
    if (f == nullptr) {
      // key.N is an item of a list field; key.N.member a member of a map in a list (a list of
      // users, of rules), whose members the plugin checks.
      const auto dot = s.key.rfind('.');
      std::optional<std::size_t> len;
      if (dot != std::string::npos && dot + 1 < s.key.size() &&
          s.key.find_first_not_of("0123456789", dot + 1) == std::string::npos)
        len = dot;
      else
        len = list_item_of_map(s.key);
      if (len) {
        base = s.key.substr(0, *len);
        f = find(base);
        if (f != nullptr && f->type != OUTPOST_FIELD_LIST) {
          errors.push_back({s.where, path + "." + base,
                            std::string("expected ") + type_name(f->type) + ", got a list"});
          continue;
        }
      }
    } else if (f->type == OUTPOST_FIELD_LIST) {
      errors.push_back({s.where, path + "." + s.key, "expected a list"});
      continue;
    }
    if (f == nullptr) {
      std::string known;
      for (std::size_t i = 0; i < count; ++i)
        known += (i ? ", " : "") + std::string(view(fields[i].name));
      errors.push_back(
          {s.key_where, path + "." + s.key,
           "unknown key" + (known.empty() ? std::string(" (this plugin takes no settings here)")
                                          : " (expected one of: " + known + ")")});
      continue;
    }
    seen.insert(base);
    if (f->type != OUTPOST_FIELD_LIST && !valid_value(f->type, s.value))
      errors.push_back({s.where, path + "." + s.key,
                        std::string("expected ") + type_name(f->type) + ", got '" + s.value + "'"});
  }
  for (std::size_t i = 0; i < count; ++i) {
    if ((fields[i].flags & OUTPOST_FIELD_REQUIRED) &&
        !seen.count(std::string(view(fields[i].name))))
      errors.push_back(
          {where, path, "missing required key '" + std::string(view(fields[i].name)) + "'"});
  }
}

outpost_status resolve_secret(const std::map<std::string, std::string>& credentials,
                              std::string_view ref, std::string& out) {
  std::string r(ref);
  const auto named = credentials.find(r);
  if (named != credentials.end()) r = named->second;
  if (r.rfind("${env:", 0) == 0 && r.back() == '}') {
    const char* v = std::getenv(r.substr(6, r.size() - 7).c_str());
    if (v == nullptr) return OUTPOST_E_NOT_FOUND;
    out = v;
    return OUTPOST_OK;
  }
  if (r.rfind("${file:", 0) == 0 && r.back() == '}') {
    std::ifstream in(r.substr(7, r.size() - 8));
    if (!in) return OUTPOST_E_NOT_FOUND;
    std::stringstream ss;
    ss << in.rdbuf();
    out = ss.str();
    while (!out.empty() && (out.back() == '\n' || out.back() == '\r')) out.pop_back();
    return OUTPOST_OK;
  }
  if (named == credentials.end()) return OUTPOST_E_NOT_FOUND;
  out = r;
  return OUTPOST_OK;
}

std::string expand_vars(const std::string& value, const EngineSpec& engine) {
  std::string out = value;
  auto replace = [&out](const std::string& var, const std::string& with) {
    for (std::size_t pos = out.find(var); pos != std::string::npos;
         pos = out.find(var, pos + with.size()))
      out.replace(pos, var.size(), with);
  };
  replace("${data_dir}", engine.data_dir);
  replace("${engine_id}", engine.id);
  return out;
}

ParseResult parse_config_text(const std::string& text, const std::string& source) {
  ParseResult r;
  Config cfg;
  cfg.source = source;
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::ParserException& e) {
    r.errors.push_back(
        ConfigError{Location{source, e.mark.line + 1, e.mark.column + 1}, "", e.msg});
    return r;
  }
  try {
    Reader reader(source, r.errors);
    reader.top(root, cfg);
  } catch (const YAML::Exception& e) {
    r.errors.push_back(
        ConfigError{Location{source, e.mark.line + 1, e.mark.column + 1}, "", e.msg});
  }
  if (r.errors.empty()) r.config = std::move(cfg);
  return r;
}

ParseResult parse_config_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) {
    ParseResult r;
    r.errors.push_back(ConfigError{Location{path, 0, 0}, "", "cannot open the file"});
    return r;
  }
  std::stringstream ss;
  ss << in.rdbuf();
  return parse_config_text(ss.str(), path);
}

}  // namespace outpost::core
