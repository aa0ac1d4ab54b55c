#include "loader/loader.hpp"

#include <algorithm>
#include <boost/dll/shared_library.hpp>
#include <cstring>
#include <filesystem>
#include <memory>
#include <mutex>

#include "util/log.hpp"

namespace outpost::core {
namespace fs = std::filesystem;

namespace {
// The oldest descriptor layout this host accepts: ABI 1.0 ends with the flush hook.
constexpr std::size_t kMinDescriptorSize =
    offsetof(outpost_plugin_descriptor, flush) + sizeof(outpost_plugin_descriptor::flush);

// Plugins stay loaded for the life of the process: code of a plugin may still be on a stack
// (a hung hook, a thread it started), and Boost.DLL offers no safe unload.
std::vector<std::unique_ptr<boost::dll::shared_library>>& keep_loaded() {
  static auto* libs = new std::vector<std::unique_ptr<boost::dll::shared_library>>();
  return *libs;
}
std::mutex g_keep_mu;

std::string sv(outpost_str s) { return s.ptr ? std::string(s.ptr, s.len) : std::string(); }
}  // namespace

std::string abi_string(uint32_t abi) {
  return std::to_string(OUTPOST_ABI_MAJOR_OF(abi)) + "." +
         std::to_string(OUTPOST_ABI_MINOR_OF(abi));
}

std::string kinds_string(uint32_t kinds) {
  std::string out;
  auto add = [&](uint32_t bit, const char* n) {
    if (kinds & bit) out += (out.empty() ? "" : ",") + std::string(n);
  };
  add(OUTPOST_KIND_POLLER, "poller");
  add(OUTPOST_KIND_LISTENER, "listener");
  add(OUTPOST_KIND_PROCESSOR, "processor");
  add(OUTPOST_KIND_SINK, "sink");
  return out.empty() ? "none" : out;
}

std::string check_descriptor(const outpost_plugin_descriptor* d, const std::string& manifest_name) {
  if (d == nullptr)
    return "entry returned no descriptor for host ABI " + abi_string(OUTPOST_ABI_VERSION);
  if (d->magic != OUTPOST_PLUGIN_MAGIC) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "bad magic 0x%08x (expected 0x%08x)", d->magic,
                  OUTPOST_PLUGIN_MAGIC);
    return buf;
  }
  const uint32_t major = OUTPOST_ABI_MAJOR_OF(d->abi_version);
  const uint32_t minor = OUTPOST_ABI_MINOR_OF(d->abi_version);
  if (major != OUTPOST_ABI_MAJOR)
    return "plugin ABI " + abi_string(d->abi_version) + " is incompatible with host ABI " +
           abi_string(OUTPOST_ABI_VERSION) + " (major differs)";
  if (minor > OUTPOST_ABI_MINOR)
    return "plugin ABI " + abi_string(d->abi_version) + " is newer than host ABI " +
           abi_string(OUTPOST_ABI_VERSION) + " (update the engine)";
  if (d->struct_size < kMinDescriptorSize)
    return "descriptor struct_size " + std::to_string(d->struct_size) +
           " is smaller than ABI 1.0's " + std::to_string(kMinDescriptorSize);
  const std::string name = sv(d->name);
  if (name != manifest_name)
    return "descriptor name '" + name + "' differs from the file's name '" + manifest_name + "'";
  if (d->kinds == 0 || (d->kinds & ~0xFu) != 0)
    return "invalid kinds mask " + std::to_string(d->kinds);
  if (d->create == nullptr || d->destroy == nullptr) return "missing create or destroy hook";
  // A monitor's plugin, interval and timeout belong to the core; a plugin cannot take them.
  for (std::size_t i = 0; d->target_fields != nullptr && i < d->target_field_count; ++i) {
    const std::string f = sv(d->target_fields[i].name);
    if (f == "plugin" || f == "interval" || f == "timeout")
      return "declares monitor parameter '" + f + "', which is the core's";
  }
  struct HookCheck {
    uint32_t kind;
    bool present;
    const char* hook;
  };
  const HookCheck checks[] = {{OUTPOST_KIND_POLLER, d->poll != nullptr, "poll"},
                              {OUTPOST_KIND_LISTENER, d->receive != nullptr, "receive"},
                              {OUTPOST_KIND_PROCESSOR, d->process != nullptr, "process"},
                              {OUTPOST_KIND_SINK, d->write != nullptr, "write"}};
  for (const auto& c : checks) {
    const bool declared = (d->kinds & c.kind) != 0;
    if (declared && !c.present)
      return std::string("declares kind ") + kinds_string(c.kind) + " but has no " + c.hook +
             " hook";
    if (!declared && c.present)
      return std::string("has a ") + c.hook + " hook but does not declare kind " +
             kinds_string(c.kind);
  }
  // A subcommand is one poll of the plugin itself (ABI 1.2).
  if (OUTPOST_HAS(d, outpost_plugin_descriptor, command) && d->command != nullptr &&
      !(d->kinds & OUTPOST_KIND_POLLER))
    return "has a command hook but does not declare kind poller";
  // Reads are of what a sink stored (ABI 1.3).
  if (OUTPOST_HAS(d, outpost_plugin_descriptor, read) && d->read != nullptr &&
      !(d->kinds & OUTPOST_KIND_SINK))
    return "has a read hook but does not declare kind sink";
  return {};
}

bool PluginRegistry::load_file(const std::string& path) {
  const std::string file = fs::path(path).filename().string();
  std::string manifest = file;
  if (manifest.rfind("outpost_", 0) == 0) manifest = manifest.substr(8);
  if (const auto dot = manifest.find('.'); dot != std::string::npos) manifest.resize(dot);

  auto refuse = [&](const std::string& why) {
    logf(LogLevel::warn, "plugin {}: refused: {}", path, why);
    refusals_.push_back({path, why});
    return false;
  };
  if (plugins_.count(manifest))
    return refuse("a plugin named '" + manifest + "' is already loaded from " +
                  plugins_[manifest].path);
  LoadedPlugin p;
  std::string why;
  if (!open_plugin(path, manifest, p, why)) return refuse(why);
  plugins_[manifest] = p;
  return true;
}

bool open_plugin(const std::string& path, const std::string& name, LoadedPlugin& out,
                 std::string& why) {
  std::error_code fs_ec;
  if (!fs::is_regular_file(path, fs_ec)) {
    why = "no such file";
    return false;
  }
  auto lib = std::make_unique<boost::dll::shared_library>();
  boost::dll::fs::error_code ec;
  lib->load(fs::path(path), boost::dll::load_mode::rtld_now | boost::dll::load_mode::rtld_local,
            ec);
  if (ec) {
    why = "cannot open: " + ec.message();
    return false;
  }
  if (!lib->has(OUTPOST_ENTRY_SYMBOL)) {
    why = "no exported symbol " OUTPOST_ENTRY_SYMBOL;
    return false;
  }
  auto entry = reinterpret_cast<outpost_plugin_entry_fn>(lib->get<void()>(OUTPOST_ENTRY_SYMBOL));
  const outpost_plugin_descriptor* d = nullptr;
  try {
    d = entry(OUTPOST_ABI_VERSION);
  } catch (...) {
    why = "entry threw an exception";
    return false;
  }
  if (why = check_descriptor(d, name); !why.empty()) return false;

  out = LoadedPlugin{};
  out.name = name;
  out.path = fs::absolute(path).lexically_normal().string();
  out.plugin_abi = d->abi_version;
  std::memcpy(&out.desc, d, std::min<std::size_t>(d->struct_size, sizeof(out.desc)));
  std::lock_guard g(g_keep_mu);
  keep_loaded().push_back(std::move(lib));
  return true;
}

void PluginRegistry::replace(const LoadedPlugin& plugin) { plugins_[plugin.name] = plugin; }

void PluginRegistry::load_dirs(const std::vector<std::string>& dirs) {
  for (const auto& dir : dirs) {
    std::error_code ec;
    if (!fs::is_directory(dir, ec)) continue;
    std::vector<fs::path> files;
    for (const auto& e : fs::directory_iterator(dir, ec)) {
      const std::string n = e.path().filename().string();
      if (n.rfind("outpost_", 0) == 0 && e.path().extension() == ".so") files.push_back(e.path());
    }
    std::sort(files.begin(), files.end());
    for (const auto& f : files) {
      std::string manifest = f.stem().string().substr(8);
      if (plugins_.count(manifest)) continue;  // an earlier directory wins
      load_file(f.string());
    }
  }
}

const LoadedPlugin* PluginRegistry::find(const std::string& name) const {
  auto it = plugins_.find(name);
  return it == plugins_.end() ? nullptr : &it->second;
}

std::vector<std::string> default_plugin_dirs() {
  std::vector<std::string> dirs;
  if (const char* env = std::getenv("OUTPOST_PLUGIN_PATH")) {
    std::string s(env);
    std::size_t start = 0;
    while (start <= s.size()) {
      const auto colon = s.find(':', start);
      const std::string part =
          s.substr(start, colon == std::string::npos ? std::string::npos : colon - start);
      if (!part.empty()) dirs.push_back(part);
      if (colon == std::string::npos) break;
      start = colon + 1;
    }
  }
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    dirs.push_back((exe.parent_path() / "plugins").string());
    dirs.push_back((exe.parent_path().parent_path() / "lib" / "outpost" / "plugins").string());
  }
  return dirs;
}

}  // namespace outpost::core
