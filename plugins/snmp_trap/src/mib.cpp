#include "mib.hpp"

#include <charconv>

namespace outpost::snmp_trap {

MibMap::MibMap() { nodes_.emplace_back(); }  // the root

void MibMap::add(const Oid& oid, Node node, bool replace) {
  if (oid.empty() || node.label.empty()) return;
  uint32_t at = 0;
  for (const uint32_t arc : oid) {
    const uint64_t key = (uint64_t{at} << 32) | arc;
    auto it = children_.find(key);
    if (it == children_.end()) {
      nodes_.emplace_back();
      it = children_.emplace(key, static_cast<uint32_t>(nodes_.size() - 1)).first;
    }
    at = it->second;
  }
  std::string full = node.module.empty() ? node.label : node.module + "::" + node.label;
  if (nodes_[at].named >= 0) {
    if (!replace) return;
    const auto idx = static_cast<uint32_t>(nodes_[at].named);
    auto& slot = names_[idx];
    by_name_.erase(slot.second.module.empty() ? slot.second.label
                                              : slot.second.module + "::" + slot.second.label);
    if (auto l = by_label_.find(slot.second.label); l != by_label_.end() && l->second == idx)
      by_label_.erase(l);
    slot.second = std::move(node);
    by_name_[full] = static_cast<uint32_t>(nodes_[at].named);
    by_label_.emplace(slot.second.label, static_cast<uint32_t>(nodes_[at].named));
    return;
  }
  const auto idx = static_cast<uint32_t>(names_.size());
  names_.emplace_back(oid, std::move(node));
  nodes_[at].named = static_cast<int32_t>(idx);
  by_name_[full] = idx;
  by_label_.emplace(names_.back().second.label, idx);
}

const MibMap::Node* MibMap::lookup(const Oid& oid, std::size_t* matched) const {
  uint32_t at = 0;
  const Node* best = nullptr;
  std::size_t depth = 0;
  for (std::size_t i = 0; i < oid.size(); ++i) {
    auto it = children_.find((uint64_t{at} << 32) | oid[i]);
    if (it == children_.end()) break;
    at = it->second;
    if (nodes_[at].named >= 0) {
      best = &names_[static_cast<std::size_t>(nodes_[at].named)].second;
      depth = i + 1;
    }
  }
  if (matched != nullptr) *matched = depth;
  return best;
}

std::string MibMap::spell(const Node* node, std::size_t matched, const Oid& oid, bool module) {
  if (node == nullptr) return outpost::snmp::to_string(oid);
  std::string s = module && !node->module.empty() ? node->module + "::" + node->label : node->label;
  for (std::size_t i = matched; i < oid.size(); ++i) {
    s += '.';
    s += std::to_string(oid[i]);
  }
  return s;
}

std::string MibMap::name(const Oid& oid) const {
  std::size_t n = 0;
  const Node* node = lookup(oid, &n);
  return spell(node, n, oid, true);
}

std::string MibMap::short_name(const Oid& oid) const {
  std::size_t n = 0;
  const Node* node = lookup(oid, &n);
  return spell(node, n, oid, false);
}

std::optional<Oid> MibMap::resolve(std::string_view text) const {
  if (text.empty()) return std::nullopt;
  if (auto numeric = outpost::snmp::parse_oid(text)) return numeric;
  // Split "MODULE::label.1.2" into the name and its numeric suffix.
  const std::size_t sep = text.find("::");
  const std::size_t label_start = sep == std::string_view::npos ? 0 : sep + 2;
  const std::size_t dot = text.find('.', label_start);
  const std::string_view base = text.substr(0, dot);
  Oid out;
  if (sep == std::string_view::npos) {
    auto it = by_label_.find(std::string(base));
    if (it == by_label_.end()) return std::nullopt;
    out = names_[it->second].first;
  } else {
    auto it = by_name_.find(std::string(base));
    if (it == by_name_.end()) return std::nullopt;
    out = names_[it->second].first;
  }
  if (dot != std::string_view::npos) {
    auto rest = outpost::snmp::parse_oid(text.substr(dot + 1));
    if (!rest) return std::nullopt;
    out.insert(out.end(), rest->begin(), rest->end());
  }
  return out;
}

void add_builtin_names(MibMap& map) {
  struct Entry {
    const char* oid;
    const char* module;
    const char* label;
    std::vector<std::pair<int64_t, std::string>> enums;
  };
  // RFC 3418 (SNMPv2-MIB), RFC 2863 (IF-MIB), RFC 3584 (SNMP-COMMUNITY-MIB).
  const std::vector<std::pair<int64_t, std::string>> admin = {
      {1, "up"}, {2, "down"}, {3, "testing"}};
  const std::vector<std::pair<int64_t, std::string>> oper = {
      {1, "up"},      {2, "down"},       {3, "testing"},       {4, "unknown"},
      {5, "dormant"}, {6, "notPresent"}, {7, "lowerLayerDown"}};
  const Entry entries[] = {
      {"1.3.6.1.2.1.1.1", "SNMPv2-MIB", "sysDescr", {}},
      {"1.3.6.1.2.1.1.2", "SNMPv2-MIB", "sysObjectID", {}},
      {"1.3.6.1.2.1.1.3", "SNMPv2-MIB", "sysUpTime", {}},
      {"1.3.6.1.2.1.1.4", "SNMPv2-MIB", "sysContact", {}},
      {"1.3.6.1.2.1.1.5", "SNMPv2-MIB", "sysName", {}},
      {"1.3.6.1.2.1.1.6", "SNMPv2-MIB", "sysLocation", {}},
      {"1.3.6.1.6.3.1.1.4.1", "SNMPv2-MIB", "snmpTrapOID", {}},
      {"1.3.6.1.6.3.1.1.4.3", "SNMPv2-MIB", "snmpTrapEnterprise", {}},
      {"1.3.6.1.6.3.1.1.5.1", "SNMPv2-MIB", "coldStart", {}},
      {"1.3.6.1.6.3.1.1.5.2", "SNMPv2-MIB", "warmStart", {}},
      {"1.3.6.1.6.3.1.1.5.5", "SNMPv2-MIB", "authenticationFailure", {}},
      {"1.3.6.1.6.3.1.1.5.3", "IF-MIB", "linkDown", {}},
      {"1.3.6.1.6.3.1.1.5.4", "IF-MIB", "linkUp", {}},
      {"1.3.6.1.2.1.2.2.1.1", "IF-MIB", "ifIndex", {}},
      {"1.3.6.1.2.1.2.2.1.2", "IF-MIB", "ifDescr", {}},
      {"1.3.6.1.2.1.2.2.1.3", "IF-MIB", "ifType", {}},
      {"1.3.6.1.2.1.2.2.1.7", "IF-MIB", "ifAdminStatus", admin},
      {"1.3.6.1.2.1.2.2.1.8", "IF-MIB", "ifOperStatus", oper},
      {"1.3.6.1.2.1.31.1.1.1.1", "IF-MIB", "ifName", {}},
      {"1.3.6.1.2.1.31.1.1.1.18", "IF-MIB", "ifAlias", {}},
      {"1.3.6.1.6.3.18.1.3", "SNMP-COMMUNITY-MIB", "snmpTrapAddress", {}},
      {"1.3.6.1.6.3.18.1.4", "SNMP-COMMUNITY-MIB", "snmpTrapCommunity", {}},
  };
  for (const auto& e : entries)
    map.add(*outpost::snmp::parse_oid(e.oid), MibMap::Node{e.module, e.label, e.enums}, false);
}

}  // namespace outpost::snmp_trap
