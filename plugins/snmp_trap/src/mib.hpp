// OID names for traps and varbinds: a tree of numeric OIDs to "MODULE::label" (and the labels
// of enumerated INTEGERs), filled once at start from MIB files (mib_loader.cpp, net-snmp's
// parser) and/or a few built-in standard names, then only read on the packet path.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "snmp/oid.hpp"

namespace outpost::snmp_trap {

using outpost::snmp::Oid;

class MibMap {
 public:
  struct Node {
    std::string module;                                  // "IF-MIB"
    std::string label;                                   // "ifOperStatus"
    std::vector<std::pair<int64_t, std::string>> enums;  // {1, "up"}, ...
  };

  MibMap();

  // Names the node at oid; replace says whether an existing name gives way.
  void add(const Oid& oid, Node node, bool replace = true);
  std::size_t size() const noexcept { return names_.size(); }

  // The deepest named node on oid's path and how many arcs of oid it covers (0: none).
  const Node* lookup(const Oid& oid, std::size_t* matched) const;
  // "IF-MIB::ifIndex.2"; numeric ("1.3.6.1.2.1.2.2.1.1.2") when no name covers the OID.
  std::string name(const Oid& oid) const;
  // The same from a lookup's result, with or without the module ("ifIndex.2").
  static std::string spell(const Node* node, std::size_t matched, const Oid& oid, bool module);
  // The label with its instance ("ifIndex.2"), for one-line summaries; numeric without a name.
  std::string short_name(const Oid& oid) const;
  // "MODULE::label", "label" or a numeric OID, each with an optional ".N.N" suffix.
  std::optional<Oid> resolve(std::string_view text) const;

 private:
  struct TrieNode {
    int32_t named = -1;  // index into names_
  };
  std::vector<TrieNode> nodes_;
  std::unordered_map<uint64_t, uint32_t> children_;  // (parent << 32 | arc) -> node
  std::vector<std::pair<Oid, Node>> names_;
  std::unordered_map<std::string, uint32_t> by_name_;   // "MODULE::label" -> names_ index
  std::unordered_map<std::string, uint32_t> by_label_;  // "label" -> the first one added
};

// A few standard names (SNMPv2-MIB, IF-MIB, SNMP-COMMUNITY-MIB) that Debian's free packages do
// not ship as MIB files, so the commonest traps read well without any MIB directory.
void add_builtin_names(MibMap& map);

}  // namespace outpost::snmp_trap
