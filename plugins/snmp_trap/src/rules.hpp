// Trap rules: which traps become alerts. A rule matches on the trap OID (prefix, by number or
// MIB name), the sender's address (CIDR) and varbind values (equals / regex); the first rule
// that matches turns the trap into an "alert" event with the rule's severity and message.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <optional>
#include <regex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "mib.hpp"
#include "snmp/oid.hpp"

namespace outpost::snmp_trap {

using Pairs = std::vector<std::pair<std::string, std::string>>;

// "name key=value key='quoted value' key=\"with \\\" escapes\"" -> pairs in order. A first bare
// word becomes ("name", word). Throws std::invalid_argument on an unterminated quote or a token
// without '='.
Pairs parse_pairs(std::string_view spec);

struct Cidr {
  std::array<uint8_t, 16> addr{};  // IPv4 in the first 4 bytes
  uint8_t family = 4;
  unsigned prefix = 32;
  bool contains(const uint8_t* a, uint8_t fam) const noexcept;
};
// "10.0.0.0/8", "2001:db8::/32", "192.0.2.7" (a host). nullopt when invalid.
std::optional<Cidr> parse_cidr(std::string_view text);

// One varbind of a trap as rules and templates see it.
struct VarbindView {
  const outpost::snmp::Oid* oid = nullptr;
  std::string name;   // "IF-MIB::ifOperStatus.2" or numeric
  std::string label;  // "ifOperStatus" ("" without a MIB name)
  std::string text;   // readable value: "down" (an enum label), "eth0", "IF-MIB::linkDown"
  std::string alt;    // the raw spelling when it differs: "2", "1.3.6.1.6.3.1.1.5.3"
};

struct TrapView {
  const outpost::snmp::Oid* trap_oid = nullptr;
  std::string trap_name;
  const uint8_t* sender = nullptr;  // 4 or 16 bytes
  uint8_t family = 4;
  std::string source;  // sender address as text
  std::string summary;
  std::map<std::string, std::string, std::less<>> fields;  // community, user, version, ...
  std::vector<VarbindView> varbinds;
};

struct Rule {
  struct VarbindCond {
    outpost::snmp::Oid prefix;
    std::string spelled;  // as written, for messages
    enum class Op : uint8_t { kPresent, kEquals, kRegex } op = Op::kPresent;
    std::string value;
    std::regex re;
  };
  std::string name;
  std::vector<outpost::snmp::Oid> trap_oids;  // any of them (prefixes); empty: every trap
  std::vector<Cidr> sources;                  // any of them; empty: every sender
  std::vector<VarbindCond> varbinds;          // all of them
  uint32_t severity = 4;                      // OUTPOST_SEV_WARNING
  std::string message;                        // template; empty: the trap's summary

  bool matches(const TrapView& t) const;
  // {trap}, {trap_oid}, {source}, {rule}, {summary}, {community}, {user}, ... any field of the
  // view, and {<varbind>}: a varbind's label ("ifIndex"), full name or numeric OID.
  std::string render(const TrapView& t) const;
};

// Builds a rule from its pairs (name, oid, source, varbind, equals, regex, severity, message);
// names are resolved with the MIB map. Throws std::invalid_argument with a readable reason.
Rule make_rule(const Pairs& pairs, const MibMap& mibs);

// "emerg" .. "debug" (syslog names, also "warn", "err", "crit", "critical", "error",
// "emergency", "information") to OUTPOST_SEV_*.
std::optional<uint32_t> parse_severity(std::string_view s);

}  // namespace outpost::snmp_trap
