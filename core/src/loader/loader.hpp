// Finds plugin libraries, opens each with Boost.DLL, looks up its one entry symbol and checks
// its descriptor. A refused plugin is one log line naming the file and the failed check; the
// rest load. Libraries are never unloaded.
#pragma once

#include <outpost/plugin.h>

#include <map>
#include <string>
#include <vector>

namespace outpost::core {

struct LoadedPlugin {
  std::string name;
  std::string path;
  outpost_plugin_descriptor desc{};  // the plugin's descriptor, copied into a zeroed host struct
  uint32_t plugin_abi = 0;
};

struct LoadRefusal {
  std::string path;
  std::string reason;
};

class PluginRegistry {
 public:
  // Loads every outpost_<name>.so in the directories; the first of a name wins.
  void load_dirs(const std::vector<std::string>& dirs);
  // Loads one library; returns false and records a refusal when it is not acceptable.
  bool load_file(const std::string& path);
  // Puts a plugin opened by open_plugin in place of the one of its name (a plugin update): what
  // is created from now on is of this version; instances already running keep theirs.
  void replace(const LoadedPlugin& plugin);

  const LoadedPlugin* find(const std::string& name) const;
  const std::map<std::string, LoadedPlugin>& plugins() const { return plugins_; }
  const std::vector<LoadRefusal>& refusals() const { return refusals_; }

 private:
  std::map<std::string, LoadedPlugin> plugins_;
  std::vector<LoadRefusal> refusals_;
};

// Opens one library as plugin `name` and checks its descriptor, without registering it. False
// with the reason when it is not acceptable. Once opened, the library stays loaded.
bool open_plugin(const std::string& path, const std::string& name, LoadedPlugin& out,
                 std::string& why);

// Checks a descriptor as returned by a plugin built as `manifest_name`. Empty when acceptable.
std::string check_descriptor(const outpost_plugin_descriptor* d, const std::string& manifest_name);

// Where plugins are looked for when the config names none: $OUTPOST_PLUGIN_PATH (colon
// separated), <exe dir>/plugins, <exe dir>/../lib/outpost/plugins.
std::vector<std::string> default_plugin_dirs();

std::string kinds_string(uint32_t kinds);
std::string abi_string(uint32_t abi);

}  // namespace outpost::core
