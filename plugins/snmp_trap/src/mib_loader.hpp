// Reads MIB modules with net-snmp's parser and copies the tree into a MibMap. The only part of
// the plugin that calls net-snmp, and only at create: the packet path never does.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "mib.hpp"

namespace outpost::snmp_trap {

struct MibLoad {
  std::shared_ptr<const MibMap> map;  // never null
  std::size_t objects = 0;            // named OIDs copied from the parsed modules
  std::vector<std::string> problems;  // modules not found, parser complaints (first few)
};

// dirs: directories to add to net-snmp's search path. modules: names to read, or empty / "ALL"
// for every module found in them. with_builtins: add the standard names of mib.hpp where no
// MIB gives one. Results are cached per argument set for the life of the process.
MibLoad load_mibs(const std::vector<std::string>& dirs, const std::vector<std::string>& modules,
                  bool with_builtins);

}  // namespace outpost::snmp_trap
