#include "snmp/profile.hpp"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <fstream>
#include <functional>
#include <set>
#include <sstream>
#include <stdexcept>

namespace outpost::snmp {

const char* kind_name(Kind k) noexcept {
  switch (k) {
    case Kind::kAuto:
      return "auto";
    case Kind::kGauge:
      return "gauge";
    case Kind::kCounter:
      return "counter";
    case Kind::kLabel:
      return "label";
    case Kind::kCount:
      return "count";
  }
  return "auto";
}

namespace {

// An error at a place in the document; the caller prefixes the file.
struct ParseError : std::runtime_error {
  ParseError(const YAML::Mark& m, const std::string& what)
      : std::runtime_error(std::to_string(m.line + 1) + ":" + std::to_string(m.column + 1) + ": " +
                           what) {}
};

bool valid_name(std::string_view s) {
  if (s.empty() || s.size() > 128) return false;
  if (!std::isalpha(static_cast<unsigned char>(s[0])) && s[0] != '_') return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_';
  });
}

bool valid_profile_name(std::string_view s) {
  if (s.empty() || s.size() > 128) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.';
  });
}

void check_keys(const YAML::Node& n, std::initializer_list<std::string_view> allowed,
                const char* what) {
  if (!n.IsMap()) throw ParseError(n.Mark(), std::string(what) + " must be a mapping");
  for (const auto& kv : n) {
    const auto key = kv.first.as<std::string>();
    if (std::find(allowed.begin(), allowed.end(), key) == allowed.end()) {
      std::string list;
      for (auto a : allowed) list += (list.empty() ? "" : ", ") + std::string(a);
      throw ParseError(kv.first.Mark(),
                       "unknown key '" + key + "' in " + what + " (expected " + list + ")");
    }
  }
}

std::string scalar(const YAML::Node& n, const char* what) {
  if (!n.IsScalar()) throw ParseError(n.Mark(), std::string(what) + " must be a scalar");
  return n.as<std::string>();
}

std::vector<std::string> scalar_list(const YAML::Node& n, const char* what) {
  std::vector<std::string> out;
  if (!n || n.IsNull()) return out;
  if (n.IsScalar()) return {n.as<std::string>()};
  if (!n.IsSequence()) throw ParseError(n.Mark(), std::string(what) + " must be a list");
  for (const auto& e : n) out.push_back(scalar(e, what));
  return out;
}

Oid oid_of(const YAML::Node& n) {
  const auto text = scalar(n, "oid");
  auto o = parse_oid(text);
  if (!o) throw ParseError(n.Mark(), "not a numeric OID: '" + text + "'");
  return *o;
}

double number_of(const YAML::Node& n, const char* what) {
  const auto text = scalar(n, what);
  try {
    std::size_t used = 0;
    const double d = std::stod(text, &used);
    if (used == text.size()) return d;
  } catch (const std::exception&) {
  }
  throw ParseError(n.Mark(), std::string(what) + " must be a number, not '" + text + "'");
}

int64_t int_of(const YAML::Node& n, const char* what, int64_t lo, int64_t hi) {
  const double d = number_of(n, what);
  if (d != static_cast<double>(static_cast<int64_t>(d)) || d < static_cast<double>(lo) ||
      d > static_cast<double>(hi))
    throw ParseError(n.Mark(), std::string(what) + " must be an integer from " +
                                   std::to_string(lo) + " to " + std::to_string(hi));
  return static_cast<int64_t>(d);
}

Kind kind_of(const YAML::Node& n, bool column) {
  const auto t = scalar(n, "type");
  if (t == "gauge") return Kind::kGauge;
  if (t == "counter") return Kind::kCounter;
  if (t == "label") return Kind::kLabel;
  if (t == "auto") return Kind::kAuto;
  if (t == "count" && column) return Kind::kCount;
  throw ParseError(n.Mark(), "type must be gauge, counter, label" +
                                 std::string(column ? ", count" : "") + " or auto, not '" + t +
                                 "'");
}

ObjectDef object_of(const YAML::Node& n, bool column, bool allow_fallback) {
  check_keys(n, {"name", "oid", "type", "scale", "scale_by", "map", "fallback"}, "an object");
  ObjectDef o;
  if (!n["name"]) throw ParseError(n.Mark(), "an object needs a name");
  o.name = scalar(n["name"], "name");
  if (!valid_name(o.name))
    throw ParseError(
        n["name"].Mark(),
        "name '" + o.name + "' must be letters, digits and _ (a metric or label name)");
  if (!n["oid"]) throw ParseError(n.Mark(), "object '" + o.name + "' needs an oid");
  o.oid = oid_of(n["oid"]);
  if (n["type"]) o.kind = kind_of(n["type"], column);
  if (n["scale"]) o.scale = number_of(n["scale"], "scale");
  if (n["scale_by"]) {
    if (!column) throw ParseError(n["scale_by"].Mark(), "scale_by is for table columns");
    o.scale_by = scalar(n["scale_by"], "scale_by");
  }
  if (const auto m = n["map"]) {
    if (!m.IsMap()) throw ParseError(m.Mark(), "map must be a mapping of raw value to value");
    for (const auto& kv : m)
      o.map.emplace_back(scalar(kv.first, "map key"), scalar(kv.second, "map value"));
  }
  if (const auto f = n["fallback"]) {
    if (!allow_fallback) throw ParseError(f.Mark(), "fallback is for table metrics");
    auto fb = object_of(f, true, false);
    if (fb.kind == Kind::kLabel || fb.kind == Kind::kCount)
      throw ParseError(f.Mark(), "a fallback is a gauge or counter");
    o.fallback = std::make_shared<const ObjectDef>(std::move(fb));
  }
  return o;
}

TableDef table_of(const YAML::Node& n) {
  check_keys(n, {"name", "index", "labels", "metrics", "max_repetitions", "max_rows"}, "a table");
  TableDef t;
  if (!n["name"]) throw ParseError(n.Mark(), "a table needs a name");
  t.name = scalar(n["name"], "name");
  if (!valid_name(t.name)) throw ParseError(n["name"].Mark(), "bad table name '" + t.name + "'");
  if (n["index"]) {
    t.index = scalar(n["index"], "index");
    if (!valid_name(t.index))
      throw ParseError(n["index"].Mark(), "bad index label '" + t.index + "'");
  }
  auto list = [&](const char* key, std::vector<ObjectDef>& out, bool labels) {
    const auto l = n[key];
    if (!l || l.IsNull()) return;
    if (!l.IsSequence()) throw ParseError(l.Mark(), std::string(key) + " must be a list");
    for (const auto& e : l) {
      ObjectDef o = object_of(e, true, !labels);
      if (labels) {
        if (o.kind != Kind::kAuto && o.kind != Kind::kLabel)
          throw ParseError(e.Mark(), "a label column has no type other than label");
        o.kind = Kind::kLabel;
      } else if (o.kind == Kind::kLabel) {
        throw ParseError(e.Mark(), "put label columns under labels:");
      }
      out.push_back(std::move(o));
    }
  };
  list("labels", t.labels, true);
  list("metrics", t.metrics, false);
  if (t.labels.empty() && t.metrics.empty())
    throw ParseError(n.Mark(), "table '" + t.name + "' has no labels and no metrics");
  if (n["max_repetitions"])
    t.max_repetitions = static_cast<int>(int_of(n["max_repetitions"], "max_repetitions", 1, 1000));
  if (n["max_rows"])
    t.max_rows = static_cast<std::size_t>(int_of(n["max_rows"], "max_rows", 1, 10'000'000));
  std::set<std::string> names;
  for (const auto* l : {&t.labels, &t.metrics})
    for (const auto& o : *l)
      if (!names.insert(o.name).second)
        throw ParseError(n.Mark(), "table '" + t.name + "' names '" + o.name + "' twice");
  return t;
}

Profile profile_of(const YAML::Node& doc, const std::string& default_name) {
  if (!doc.IsMap()) throw ParseError(doc.Mark(), "a profile must be a mapping");
  check_keys(doc, {"name", "description", "sysobjectid", "include", "scalars", "tables"},
             "a profile");
  Profile p;
  p.name = doc["name"] ? scalar(doc["name"], "name") : default_name;
  if (!valid_profile_name(p.name))
    throw ParseError(doc.Mark(), "profile name '" + p.name + "' must be letters, digits, _ - .");
  if (doc["description"]) p.description = scalar(doc["description"], "description");
  for (const auto& s : scalar_list(doc["sysobjectid"], "sysobjectid")) {
    auto o = parse_oid(s);
    if (!o) throw ParseError(doc["sysobjectid"].Mark(), "not a numeric OID: '" + s + "'");
    p.sysobjectid.push_back(*o);
  }
  p.include = scalar_list(doc["include"], "include");
  if (const auto s = doc["scalars"]; s && !s.IsNull()) {
    if (!s.IsSequence()) throw ParseError(s.Mark(), "scalars must be a list");
    for (const auto& e : s) {
      ObjectDef o = object_of(e, false, false);
      if (o.kind == Kind::kCount) throw ParseError(e.Mark(), "count is for table columns");
      p.scalars.push_back(std::move(o));
    }
  }
  if (const auto t = doc["tables"]; t && !t.IsNull()) {
    if (!t.IsSequence()) throw ParseError(t.Mark(), "tables must be a list");
    for (const auto& e : t) p.tables.push_back(table_of(e));
  }
  return p;
}

// Later definitions replace earlier ones of the same name, keeping the first one's position,
// so a profile can include another and redefine one of its objects.
void merge_objects(std::vector<ObjectDef>& into, const std::vector<ObjectDef>& from) {
  for (const auto& o : from) {
    auto it = std::find_if(into.begin(), into.end(),
                           [&](const ObjectDef& x) { return x.name == o.name; });
    if (it != into.end())
      *it = o;
    else
      into.push_back(o);
  }
}

void merge_into(Plan& plan, const Profile& p) {
  merge_objects(plan.scalars, p.scalars);
  for (const auto& t : p.tables) {
    auto it = std::find_if(plan.tables.begin(), plan.tables.end(),
                           [&](const TableDef& x) { return x.name == t.name; });
    if (it == plan.tables.end()) {
      plan.tables.push_back(t);
      continue;
    }
    merge_objects(it->labels, t.labels);
    merge_objects(it->metrics, t.metrics);
    if (!t.index.empty()) it->index = t.index;
    if (t.max_repetitions != 0) it->max_repetitions = t.max_repetitions;
    if (t.max_rows != 0) it->max_rows = t.max_rows;
  }
}

}  // namespace

void ProfileSet::add(std::string_view yaml, const std::string& source,
                     std::vector<std::string>& errors) {
  try {
    const YAML::Node doc = YAML::Load(std::string(yaml));
    if (!doc || doc.IsNull()) {
      errors.push_back(source + ": empty profile");
      return;
    }
    Profile p = profile_of(doc, std::filesystem::path(source).stem().string());
    p.source = source;
    std::string name = p.name;
    profiles_.insert_or_assign(std::move(name), std::move(p));
  } catch (const ParseError& e) {
    errors.push_back(source + ":" + e.what());
  } catch (const YAML::Exception& e) {
    errors.push_back(source + ":" + std::to_string(e.mark.line + 1) + ":" +
                     std::to_string(e.mark.column + 1) + ": " + e.msg);
  }
}

void ProfileSet::finish(std::vector<std::string>& errors) {
  plans_.clear();
  std::set<std::string> bad;
  for (const auto& entry : profiles_) {
    const std::string& name = entry.first;  // not a structured binding: lambdas below use it
    const Profile& p = entry.second;
    auto plan = std::make_shared<Plan>();
    plan->name = name;
    std::vector<std::string> stack;
    std::function<bool(const Profile&)> add = [&](const Profile& q) {
      if (std::find(stack.begin(), stack.end(), q.name) != stack.end()) {
        errors.push_back(p.source + ": profile '" + name + "': include cycle through '" + q.name +
                         "'");
        return false;
      }
      stack.push_back(q.name);
      for (const auto& inc : q.include) {
        const Profile* r = find(inc);
        if (r == nullptr) {
          errors.push_back(q.source + ": profile '" + q.name + "' includes unknown profile '" +
                           inc + "'");
          return false;
        }
        if (!add(*r)) return false;
      }
      stack.pop_back();
      merge_into(*plan, q);
      return true;
    };
    if (!add(p)) {
      bad.insert(name);
      continue;
    }
    // A scale_by can name a column an included profile defines; check on the merged table.
    auto has_column = [](const TableDef& t, const std::string& c) {
      auto same = [&](const ObjectDef& o) { return o.name == c; };
      return std::any_of(t.labels.begin(), t.labels.end(), same) ||
             std::any_of(t.metrics.begin(), t.metrics.end(), same);
    };
    for (const auto& t : plan->tables)
      for (const auto& m : t.metrics)
        if (!m.scale_by.empty() && !has_column(t, m.scale_by)) {
          errors.push_back(p.source + ": scale_by '" + m.scale_by + "' is not a column of " +
                           t.name);
          bad.insert(name);
        }
    for (auto& t : plan->tables)
      if (t.index.empty()) t.index = "index";
    if (!bad.count(name)) plans_.emplace(name, std::move(plan));
  }
  for (const auto& b : bad) profiles_.erase(b);
}

ProfileSet ProfileSet::load(const std::vector<std::filesystem::path>& dirs,
                            std::vector<std::string>& errors) {
  namespace fs = std::filesystem;
  ProfileSet set;
  for (const auto& dir : dirs) {
    std::error_code ec;
    if (!fs::is_directory(dir, ec)) continue;
    std::vector<fs::path> files;
    for (const auto& e : fs::directory_iterator(dir, ec)) {
      const auto ext = e.path().extension();
      if ((ext == ".yaml" || ext == ".yml") && e.is_regular_file(ec)) files.push_back(e.path());
    }
    std::sort(files.begin(), files.end());  // a stable order: the same result on every machine
    for (const auto& f : files) {
      std::ifstream in(f);
      if (!in) {
        errors.push_back(f.string() + ": cannot read");
        continue;
      }
      std::stringstream ss;
      ss << in.rdbuf();
      set.add(ss.str(), f.string(), errors);
    }
  }
  set.finish(errors);
  return set;
}

const Profile* ProfileSet::find(std::string_view name) const {
  auto it = profiles_.find(name);
  return it == profiles_.end() ? nullptr : &it->second;
}

const Profile* ProfileSet::match(const Oid& sysobjectid) const {
  const Profile* best = nullptr;
  std::size_t best_len = 0;
  for (const auto& [name, p] : profiles_)
    for (const auto& prefix : p.sysobjectid)
      if (starts_with(sysobjectid, prefix) && (best == nullptr || prefix.size() > best_len)) {
        best = &p;
        best_len = prefix.size();
      }
  return best;
}

std::shared_ptr<const Plan> ProfileSet::plan(std::string_view names) const {
  if (auto it = plans_.find(names); it != plans_.end()) return it->second;
  if (names.find(',') == std::string_view::npos) return nullptr;
  auto plan = std::make_shared<Plan>();
  plan->name = std::string(names);
  std::size_t pos = 0;
  while (pos <= names.size()) {
    std::size_t end = names.find(',', pos);
    if (end == std::string_view::npos) end = names.size();
    std::string_view n = names.substr(pos, end - pos);
    while (!n.empty() && n.front() == ' ') n.remove_prefix(1);
    while (!n.empty() && n.back() == ' ') n.remove_suffix(1);
    auto it = plans_.find(n);
    if (it == plans_.end()) return nullptr;
    Profile as_profile;
    as_profile.scalars = it->second->scalars;
    as_profile.tables = it->second->tables;
    merge_into(*plan, as_profile);
    pos = end + 1;
  }
  return plan;
}

std::vector<std::string> ProfileSet::names() const {
  std::vector<std::string> out;
  for (const auto& [n, p] : profiles_) out.push_back(n);
  return out;
}

}  // namespace outpost::snmp
