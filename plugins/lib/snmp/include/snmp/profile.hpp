// Device profiles: YAML files that say which scalars and tables to read from a device and how
// to turn them into metrics and labels, selected by sysObjectID prefix. Format: see
// plugins/snmp/README.md ("Profiles").
#pragma once

#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "snmp/oid.hpp"

namespace outpost::snmp {

enum class Kind : uint8_t {
  kAuto,  // counter for Counter32/Counter64 values, gauge otherwise
  kGauge,
  kCounter,
  kLabel,  // scalars: a label of snmp_info; columns: a label of the row's metrics
  kCount,  // columns: the number of rows that have this column, one metric per table
};

const char* kind_name(Kind k) noexcept;

struct ObjectDef {
  std::string name;  // metric snmp_<name>, or the label's name
  Oid oid;           // scalars: the instance (…​.0); columns: the column, without index
  Kind kind = Kind::kAuto;
  double scale = 1.0;
  std::string scale_by;  // columns: multiply by this column of the same row (allocation units)
  // Raw text → mapped text: label values renamed, or strings (HA states) turned into numbers.
  std::vector<std::pair<std::string, std::string>> map;
  // Columns: read only for rows that lack this column, emitted under its own name (the 32-bit
  // counter behind a 64-bit one on agents without ifXTable, or on SNMPv1).
  std::shared_ptr<const ObjectDef> fallback;

  const std::string* mapped(const std::string& raw) const {
    for (const auto& [k, v] : map)
      if (k == raw) return &v;
    return nullptr;
  }
};

struct TableDef {
  std::string name;
  std::string index;  // the label carrying the row's index (dotted sub-ids); "index" if unset
  std::vector<ObjectDef> labels;
  std::vector<ObjectDef> metrics;
  int max_repetitions = 0;   // 0: the device's setting
  std::size_t max_rows = 0;  // 0: the plugin's setting
};

struct Profile {
  std::string name;
  std::string description;
  std::string source;  // file it came from
  std::vector<Oid> sysobjectid;
  std::vector<std::string> include;
  std::vector<ObjectDef> scalars;
  std::vector<TableDef> tables;
};

// A profile with everything it includes, flattened: what one device poll reads.
struct Plan {
  std::string name;  // the selected profile names, comma-joined
  std::vector<ObjectDef> scalars;
  std::vector<TableDef> tables;
};

class ProfileSet {
 public:
  // Reads every *.yaml and *.yml file of the directories in order (a missing directory is
  // skipped); a profile of the same name in a later file replaces the earlier one. A file with
  // an error is left out and the error, as "file:line:column: message", added to errors.
  static ProfileSet load(const std::vector<std::filesystem::path>& dirs,
                         std::vector<std::string>& errors);
  // One profile document; the name defaults to source's stem. Errors as above.
  void add(std::string_view yaml, const std::string& source, std::vector<std::string>& errors);
  // Resolves includes once every file is read; profiles with unknown includes or cycles are
  // dropped with an error.
  void finish(std::vector<std::string>& errors);

  const Profile* find(std::string_view name) const;
  // The profile whose sysobjectid prefix matches longest; nullptr when none does.
  const Profile* match(const Oid& sysobjectid) const;
  // The flattened plan of one profile, or of several ("a,b"); nullptr for an unknown name.
  std::shared_ptr<const Plan> plan(std::string_view names) const;
  std::vector<std::string> names() const;
  std::size_t size() const noexcept { return profiles_.size(); }

 private:
  std::map<std::string, Profile, std::less<>> profiles_;
  std::map<std::string, std::shared_ptr<const Plan>, std::less<>> plans_;
};

}  // namespace outpost::snmp
