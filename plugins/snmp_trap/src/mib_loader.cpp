// net-snmp's MIB parser keeps one tree per process, which the snmp poller plugin (loaded in the
// same process, with its own private lock) initialises too: init_snmp() there runs
// netsnmp_init_mib() with a MIB directory that does not exist. Whichever plugin comes first,
// this file only adds directories and reads modules on top of whatever tree exists:
//  - netsnmp_init_mib_internals() is a no-op once a tree exists, and sets one up otherwise;
//  - it never calls init_snmp()/netsnmp_init_mib(), whose one-time guards would then skip the
//    poller's own settings (no config files, no persistent state) when the poller comes second;
//    netsnmp_init_mib() seeing our tree later just adds the poller's empty directory.
// The tree is copied into a MibMap and never consulted again, so later changes to it by anyone
// do not matter; and net-snmp is never called on the packet path.
#include "mib_loader.hpp"

#include <algorithm>
#include <map>
#include <mutex>
#include <string_view>

// clang-format off
#include <net-snmp/net-snmp-config.h>
#include <net-snmp/net-snmp-includes.h>
// clang-format on

namespace outpost::snmp_trap {
namespace {

std::mutex& load_mutex() {
  static std::mutex m;
  return m;
}

// net-snmp's warnings and errors while this file parses, instead of on stderr. Installed once
// and left in place: with any handler registered, net-snmp stops falling back to stderr, which
// is what the engine wants anyway (the poller routes its own messages to the host's log).
// Only the thread that is loading collects; what other threads log meanwhile is not ours.
struct Capture {
  bool active = false;
  std::vector<std::string> lines;
};
Capture& capture() {
  thread_local Capture c;
  return c;
}

int on_log(netsnmp_log_handler*, int priority, const char* text) {
  Capture& c = capture();
  if (!c.active || text == nullptr || priority > LOG_WARNING || c.lines.size() >= 20) return 1;
  std::string_view s(text);
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r')) s.remove_suffix(1);
  if (!s.empty()) c.lines.emplace_back(s);
  return 1;
}

void install_log_handler() {
  static bool done = false;
  if (done) return;
  done = true;
  netsnmp_log_handler* h = netsnmp_register_loghandler(NETSNMP_LOGHANDLER_NONE, LOG_DEBUG);
  if (h != nullptr) h->handler = &on_log;
}

std::string module_of(int modid) {
  if (modid < 0) return {};
  char buf[512] = {};
  module_name(modid, buf);
  if (buf[0] == '#') return {};  // "#-1": no module
  return buf;
}

// Copies every named node below the roots (iso, ccitt and joint-iso-ccitt carry no meaning of
// their own and would name every OID) into the map.
std::size_t copy_tree(MibMap& map) {
  std::size_t n = 0;
  struct Item {
    tree* node;
    Oid oid;
  };
  std::vector<Item> stack;
  for (tree* root = get_tree_head(); root != nullptr; root = root->next_peer)
    for (tree* c = root->child_list; c != nullptr; c = c->next_peer)
      stack.push_back(
          {c, Oid{static_cast<uint32_t>(root->subid), static_cast<uint32_t>(c->subid)}});
  while (!stack.empty()) {
    Item it = std::move(stack.back());
    stack.pop_back();
    tree* t = it.node;
    const std::string module = module_of(t->modid);
    if (t->label != nullptr && t->label[0] != '\0' && !module.empty()) {
      MibMap::Node node{module, t->label, {}};
      for (const enum_list* e = t->enums; e != nullptr; e = e->next)
        if (e->label != nullptr) node.enums.emplace_back(e->value, e->label);
      std::reverse(node.enums.begin(), node.enums.end());
      map.add(it.oid, std::move(node), true);
      ++n;
    }
    if (it.oid.size() >= 128) continue;  // RFC 2578's limit; a deeper tree is not a MIB
    for (tree* c = t->child_list; c != nullptr; c = c->next_peer) {
      Oid child = it.oid;
      child.push_back(static_cast<uint32_t>(c->subid));
      stack.push_back({c, std::move(child)});
    }
  }
  return n;
}

}  // namespace

MibLoad load_mibs(const std::vector<std::string>& dirs, const std::vector<std::string>& modules,
                  bool with_builtins) {
  std::lock_guard g(load_mutex());
  static std::map<std::string, MibLoad> cache;
  std::string key = with_builtins ? "b|" : "n|";
  for (const auto& d : dirs) key += d + '\n';
  key += '|';
  for (const auto& m : modules) key += m + '\n';
  if (auto it = cache.find(key); it != cache.end()) return it->second;

  auto map = std::make_shared<MibMap>();
  MibLoad out;
  if (!dirs.empty()) {
    const bool all =
        modules.empty() || std::any_of(modules.begin(), modules.end(),
                                       [](const std::string& m) { return m == "ALL"; });
    install_log_handler();
    capture().active = true;
    capture().lines.clear();
    netsnmp_init_mib_internals();
    for (const auto& d : dirs)
      if (add_mibdir(d.c_str()) < 0)
        out.problems.push_back("MIB directory " + d + ": cannot be read");
    if (all) {
      read_all_mibs();
    } else {
      for (const auto& m : modules) {
        if (which_module(m.c_str()) < 0) {
          out.problems.push_back("MIB module " + m + ": not found in mib_dirs");
          continue;
        }
        netsnmp_read_module(m.c_str());
      }
      adopt_orphans();
    }
    capture().active = false;
    for (auto& l : capture().lines) out.problems.push_back("net-snmp: " + l);
    capture().lines.clear();
    out.objects = copy_tree(*map);
  }
  if (with_builtins) add_builtin_names(*map);
  out.map = std::move(map);
  cache.emplace(key, out);
  return out;
}

}  // namespace outpost::snmp_trap
