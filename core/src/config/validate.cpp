#include "config/validate.hpp"

#include <map>
#include <set>

namespace outpost::core {

std::vector<InstanceSpec> poller_specs(const Config& cfg) {
  std::vector<InstanceSpec> out = cfg.plugins;
  std::set<std::string> names;
  for (const auto& p : out) names.insert(p.name);
  auto implicit = [&](const std::string& name, const Location& where, const std::string& path) {
    if (!names.insert(name).second) return;
    InstanceSpec s;
    s.name = s.plugin = name;
    s.where = where;
    s.path = path + ".plugin";
    out.push_back(s);
  };
  for (const auto& d : cfg.devices)
    for (const auto& m : d.monitors) implicit(m.instance, m.where, m.path);
  for (const auto& l : cfg.listeners) implicit(l.instance, l.where, l.path);
  return out;
}

std::vector<ConfigError> validate_config(const Config& cfg, const PluginRegistry& registry) {
  std::vector<ConfigError> errors;
  auto known = [&] {
    std::string s;
    for (const auto& [n, p] : registry.plugins()) s += (s.empty() ? "" : ", ") + n;
    return s.empty() ? std::string("none found") : s;
  };
  auto check_instance = [&](const InstanceSpec& spec, uint32_t kind) -> const LoadedPlugin* {
    const LoadedPlugin* p = registry.find(spec.plugin);
    if (p == nullptr) {
      errors.push_back({spec.where, spec.path,
                        "no plugin named '" + spec.plugin + "' (loaded: " + known() + ")"});
      return nullptr;
    }
    if (!(p->desc.kinds & kind)) {
      errors.push_back({spec.where, spec.path,
                        "plugin '" + spec.plugin + "' is a " + kinds_string(p->desc.kinds) +
                            ", not a " + kinds_string(kind)});
      return nullptr;
    }
    validate_settings(spec.settings, p->desc.config_fields, p->desc.config_field_count, spec.path,
                      spec.where, errors);
    return p;
  };
  std::map<std::string, const LoadedPlugin*> instances;
  const uint32_t any_source = OUTPOST_KIND_POLLER | OUTPOST_KIND_LISTENER | OUTPOST_KIND_PROCESSOR;
  for (const auto& spec : poller_specs(cfg))
    instances[spec.name] = check_instance(spec, any_source);
  for (const auto& spec : cfg.sinks) check_instance(spec, OUTPOST_KIND_SINK);
  for (const auto& spec : cfg.processors) check_instance(spec, OUTPOST_KIND_PROCESSOR);
  auto used_as = [&](const std::string& inst, uint32_t kind, const Location& where,
                     const std::string& path) {
    const LoadedPlugin* p = instances[inst];
    if (p == nullptr) return p;  // reported above
    if (!(p->desc.kinds & kind)) {
      errors.push_back({where, path + ".plugin",
                        "plugin instance '" + inst + "' is a " + kinds_string(p->desc.kinds) +
                            ", not a " + kinds_string(kind)});
      return static_cast<const LoadedPlugin*>(nullptr);
    }
    return p;
  };
  for (const auto& d : cfg.devices)
    for (const auto& m : d.monitors)
      if (const LoadedPlugin* p = used_as(m.instance, OUTPOST_KIND_POLLER, m.where, m.path))
        validate_settings(m.params, p->desc.target_fields, p->desc.target_field_count, m.path,
                          m.where, errors);
  for (const auto& l : cfg.listeners) used_as(l.instance, OUTPOST_KIND_LISTENER, l.where, l.path);
  return errors;
}

}  // namespace outpost::core
