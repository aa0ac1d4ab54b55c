#include "outpost_lib/wql.hpp"

#include <fcntl.h>
#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <sstream>

namespace outpost::lib::wql {

namespace fs = std::filesystem;
using outpost::Error;

namespace {

bool iequal(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

std::optional<int64_t> digits(std::string_view s) {
  int64_t v = 0;
  if (s.empty()) return std::nullopt;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc{} || p != s.data() + s.size()) return std::nullopt;
  return v;
}

// Days from 1970-01-01 to a civil date (proleptic Gregorian).
int64_t days_from_civil(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const auto yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<int64_t>(doe) - 719468;
}

std::optional<int64_t> to_ns(int64_t y, int64_t mo, int64_t d, int64_t h, int64_t mi, int64_t s,
                             int64_t frac_ns, int64_t offset_min) {
  if (y < 1678 || y > 2261 || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || s > 60 ||
      h < 0 || mi < 0 || s < 0)
    return std::nullopt;
  const int64_t days = days_from_civil(y, static_cast<unsigned>(mo), static_cast<unsigned>(d));
  const int64_t secs = days * 86400 + h * 3600 + mi * 60 + s - offset_min * 60;
  return secs * 1'000'000'000 + frac_ns;
}

std::optional<double> number(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  if (s.empty()) return std::nullopt;
  if (iequal(s, "true")) return 1.0;
  if (iequal(s, "false")) return 0.0;
  double v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc{} || p != s.data() + s.size() || !std::isfinite(v)) return std::nullopt;
  return v;
}

std::string where(const YAML::Node& n, const std::string& source) {
  const auto m = n.Mark();
  if (m.is_null()) return source;
  return source + ": line " + std::to_string(m.line + 1) + ", column " +
         std::to_string(m.column + 1);
}

[[noreturn]] void bad(const YAML::Node& n, const std::string& source, const std::string& why) {
  throw Error(OUTPOST_E_CONFIG, where(n, source) + ": " + why);
}

void only_keys(const YAML::Node& n, const std::string& source,
               std::initializer_list<std::string_view> keys, const char* what) {
  if (!n.IsMap()) bad(n, source, std::string(what) + " must be a mapping");
  for (const auto& kv : n) {
    const std::string k = kv.first.as<std::string>();
    if (std::find(keys.begin(), keys.end(), k) == keys.end())
      bad(kv.first, source, "unknown key '" + k + "' in " + what);
  }
}

std::string text(const YAML::Node& n, const std::string& source, const char* what) {
  if (!n.IsScalar()) bad(n, source, std::string(what) + " must be a string");
  return n.as<std::string>();
}

std::vector<std::string> texts(const YAML::Node& n, const std::string& source, const char* what) {
  std::vector<std::string> out;
  if (n.IsScalar()) return {n.as<std::string>()};
  if (!n.IsSequence()) bad(n, source, std::string(what) + " must be a list");
  for (const auto& e : n) out.push_back(text(e, source, what));
  return out;
}

std::vector<uint32_t> ids(const YAML::Node& n, const std::string& source, const char* what) {
  std::vector<uint32_t> out;
  for (const auto& t : texts(n, source, what)) {
    auto v = digits(t);
    if (!v || *v < 0 || *v > UINT32_MAX) bad(n, source, std::string(what) + ": not an event id");
    out.push_back(static_cast<uint32_t>(*v));
  }
  return out;
}

// A WMI class or property name: letters, digits, underscore (keeps built WQL well-formed).
bool identifier(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_';
  });
}

MetricSpec parse_metric(const YAML::Node& n, const std::string& source) {
  only_keys(n, source, {"name", "property", "scale", "type", "map", "default", "age"}, "metric");
  MetricSpec m;
  if (!n["name"] || !n["property"]) bad(n, source, "a metric needs name and property");
  m.name = text(n["name"], source, "name");
  m.property = text(n["property"], source, "property");
  if (!identifier(m.property)) bad(n["property"], source, "property must be a WMI property name");
  if (n["scale"]) {
    auto v = number(text(n["scale"], source, "scale"));
    if (!v) bad(n["scale"], source, "scale must be a number");
    m.scale = *v;
  }
  if (n["type"]) {
    const std::string t = text(n["type"], source, "type");
    if (t == "gauge")
      m.type = OUTPOST_METRIC_GAUGE;
    else if (t == "counter")
      m.type = OUTPOST_METRIC_COUNTER;
    else
      bad(n["type"], source, "type must be gauge or counter");
  }
  if (n["map"]) {
    if (!n["map"].IsMap()) bad(n["map"], source, "map must be a mapping of text to number");
    for (const auto& kv : n["map"]) {
      auto v = number(text(kv.second, source, "map value"));
      if (!v) bad(kv.second, source, "map values must be numbers");
      m.map.emplace_back(kv.first.as<std::string>(), *v);
    }
  }
  if (n["default"]) {
    auto v = number(text(n["default"], source, "default"));
    if (!v) bad(n["default"], source, "default must be a number");
    m.map_default = *v;
  }
  if (n["age"]) m.age = n["age"].as<bool>();
  return m;
}

Query parse_query(const YAML::Node& n, const std::string& source) {
  only_keys(n, source, {"name", "namespace", "wql", "labels", "metrics", "eventlog", "optional"},
            "query");
  Query q;
  if (!n["name"]) bad(n, source, "a query needs a name");
  q.name = text(n["name"], source, "name");
  if (n["namespace"]) q.wmi_namespace = text(n["namespace"], source, "namespace");
  if (n["optional"]) q.optional = n["optional"].as<bool>();
  if (n["eventlog"]) {
    const YAML::Node& e = n["eventlog"];
    only_keys(e, source, {"logs", "max_level", "sources", "event_ids", "exclude_ids"}, "eventlog");
    EventLogSpec spec;
    if (!e["logs"]) bad(e, source, "eventlog needs logs");
    spec.logs = texts(e["logs"], source, "logs");
    for (const auto& l : spec.logs)
      if (l.empty() || l.find_first_of("'\\\"") != std::string::npos)
        bad(e["logs"], source, "a log name must be plain text");
    if (e["max_level"]) {
      const std::string l = text(e["max_level"], source, "max_level");
      if (l == "error")
        spec.max_level = Level::error;
      else if (l == "warning")
        spec.max_level = Level::warning;
      else if (l == "information")
        spec.max_level = Level::information;
      else
        bad(e["max_level"], source, "max_level must be error, warning or information");
    }
    if (e["sources"]) spec.sources = texts(e["sources"], source, "sources");
    if (e["event_ids"]) spec.event_ids = ids(e["event_ids"], source, "event_ids");
    if (e["exclude_ids"]) spec.exclude_ids = ids(e["exclude_ids"], source, "exclude_ids");
    if (n["wql"] || n["metrics"]) bad(n, source, "an eventlog query has no wql or metrics");
    q.eventlog = std::move(spec);
    return q;
  }
  if (!n["wql"]) bad(n, source, "a query needs wql (or eventlog)");
  q.wql = text(n["wql"], source, "wql");
  if (n["labels"]) {
    if (!n["labels"].IsMap()) bad(n["labels"], source, "labels must map properties to labels");
    for (const auto& kv : n["labels"])
      q.labels.emplace_back(kv.first.as<std::string>(), text(kv.second, source, "label"));
  }
  if (n["metrics"]) {
    if (!n["metrics"].IsSequence()) bad(n["metrics"], source, "metrics must be a list");
    for (const auto& m : n["metrics"]) q.metrics.push_back(parse_metric(m, source));
  }
  if (q.metrics.empty()) bad(n, source, "a query needs metrics (or eventlog)");
  return q;
}

}  // namespace

// ---- instances -------------------------------------------------------------------------------

const Property* Instance::find(std::string_view name) const {
  for (const auto& p : properties)
    if (iequal(p.name, name)) return &p;
  return nullptr;
}

std::optional<int64_t> parse_datetime(std::string_view t) {
  // DMTF: yyyymmddHHMMSS.mmmmmmsUUU
  if (t.size() == 25 && t[14] == '.' && (t[21] == '+' || t[21] == '-')) {
    auto f = [&](std::size_t at, std::size_t n) { return digits(t.substr(at, n)); };
    auto y = f(0, 4), mo = f(4, 2), d = f(6, 2), h = f(8, 2), mi = f(10, 2), s = f(12, 2),
         us = f(15, 6), off = f(22, 3);
    if (!y || !mo || !d || !h || !mi || !s || !us || !off) return std::nullopt;
    return to_ns(*y, *mo, *d, *h, *mi, *s, *us * 1000, t[21] == '-' ? -*off : *off);
  }
  // xs:dateTime: yyyy-mm-ddTHH:MM:SS[.fff][Z|+hh:mm|-hh:mm]
  if (t.size() < 19 || t[4] != '-' || t[7] != '-' || t[10] != 'T' || t[13] != ':' || t[16] != ':')
    return std::nullopt;
  auto f = [&](std::size_t at, std::size_t n) { return digits(t.substr(at, n)); };
  auto y = f(0, 4), mo = f(5, 2), d = f(8, 2), h = f(11, 2), mi = f(14, 2), s = f(17, 2);
  if (!y || !mo || !d || !h || !mi || !s) return std::nullopt;
  std::size_t i = 19;
  int64_t frac = 0;
  if (i < t.size() && t[i] == '.') {
    ++i;
    int64_t scale = 100'000'000;
    const std::size_t start = i;
    while (i < t.size() && std::isdigit(static_cast<unsigned char>(t[i]))) {
      frac += (t[i] - '0') * scale;
      scale /= 10;
      ++i;
    }
    if (i == start) return std::nullopt;
  }
  int64_t off = 0;
  if (i < t.size()) {
    if (t[i] == 'Z' && i + 1 == t.size()) {
    } else if ((t[i] == '+' || t[i] == '-') && i + 6 == t.size() && t[i + 3] == ':') {
      auto oh = f(i + 1, 2), om = f(i + 4, 2);
      if (!oh || !om) return std::nullopt;
      off = (*oh * 60 + *om) * (t[i] == '-' ? -1 : 1);
    } else {
      return std::nullopt;
    }
  }
  return to_ns(*y, *mo, *d, *h, *mi, *s, frac, off);
}

std::string cim_datetime(int64_t unix_ns) {
  int64_t whole = unix_ns / 1'000'000'000, frac = unix_ns % 1'000'000'000;
  if (frac < 0) {  // floor, for times before 1970
    frac += 1'000'000'000;
    --whole;
  }
  const time_t secs = static_cast<time_t>(whole);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[96];
  std::snprintf(buf, sizeof buf, "%04d%02d%02d%02d%02d%02d.%06d+000", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<int>(frac / 1000));
  return buf;
}

std::string quote(std::string_view t) {
  std::string out = "'";
  for (char c : t) {
    if (c == '\'' || c == '\\') out += '\\';
    out += c;
  }
  return out + "'";
}

// ---- profiles --------------------------------------------------------------------------------

Profile ProfileSet::parse(std::string_view yaml_text, const std::string& source) {
  YAML::Node root;
  try {
    root = YAML::Load(std::string(yaml_text));
  } catch (const YAML::Exception& e) {
    throw Error(OUTPOST_E_CONFIG, source + ": line " + std::to_string(e.mark.line + 1) +
                                      ", column " + std::to_string(e.mark.column + 1) + ": " +
                                      e.msg);
  }
  try {
    only_keys(root, source, {"name", "description", "queries"}, "profile");
    Profile p;
    if (!root["name"]) bad(root, source, "a profile needs a name");
    p.name = text(root["name"], source, "name");
    if (root["description"]) p.description = text(root["description"], source, "description");
    if (!root["queries"] || !root["queries"].IsSequence())
      bad(root, source, "a profile needs a list of queries");
    for (const auto& q : root["queries"]) p.queries.push_back(parse_query(q, source));
    for (std::size_t i = 0; i < p.queries.size(); ++i)
      for (std::size_t j = 0; j < i; ++j)
        if (p.queries[i].name == p.queries[j].name)
          throw Error(OUTPOST_E_CONFIG, source + ": two queries named " + p.queries[i].name);
    return p;
  } catch (const YAML::Exception& e) {
    throw Error(OUTPOST_E_CONFIG,
                source + ": line " + std::to_string(e.mark.line + 1) + ": " + e.msg);
  }
}

ProfileSet ProfileSet::load(const std::vector<fs::path>& dirs, std::vector<std::string>& errors,
                            const ProfileSet* previous) {
  ProfileSet set;
  for (const auto& d : dirs) {
    std::error_code ec;
    std::vector<fs::path> files;
    for (const auto& e : fs::directory_iterator(d, ec)) {
      const auto ext = e.path().extension();
      if (ext == ".yaml" || ext == ".yml") files.push_back(e.path());
    }
    std::sort(files.begin(), files.end());
    for (const auto& f : files) {
      std::ifstream in(f);
      std::stringstream ss;
      ss << in.rdbuf();
      try {
        Profile p = parse(ss.str(), f.string());
        p.source = f.string();
        std::string name = p.name;
        set.profiles_.insert_or_assign(std::move(name), std::move(p));
      } catch (const Error& e) {
        // A file being edited may be broken for a moment: what it last held stays in use.
        std::string kept;
        if (previous != nullptr)
          for (const auto& [name, p] : previous->profiles_)
            if (p.source == f.string()) {
              set.profiles_.insert_or_assign(name, p);
              kept += (kept.empty() ? "" : ", ") + name;
            }
        errors.emplace_back(
            std::string(e.what()) +
            (kept.empty() ? "" : " (its last good version of " + kept + " is kept)"));
      }
    }
  }
  return set;
}

const Profile* ProfileSet::find(std::string_view name) const {
  auto it = profiles_.find(name);
  return it == profiles_.end() ? nullptr : &it->second;
}

std::vector<std::string> ProfileSet::names() const {
  std::vector<std::string> out;
  for (const auto& [k, v] : profiles_) out.push_back(k);
  return out;
}

std::vector<outpost::Metric> to_metrics(const Query& q, const std::vector<Instance>& items,
                                        const outpost::Labels& base, int64_t now_ns,
                                        std::size_t* skipped) {
  std::vector<outpost::Metric> out;
  for (const auto& inst : items) {
    outpost::Labels labels = base;
    for (const auto& pl : q.labels) {
      const std::string* v = inst.value(pl.first);
      std::erase_if(labels, [&](const auto& l) { return l.first == pl.second; });
      labels.emplace_back(pl.second, v != nullptr ? *v : "");
    }
    for (const auto& m : q.metrics) {
      const std::string* v = inst.value(m.property);
      std::optional<double> value;
      if (v != nullptr) {
        if (m.age) {
          if (auto t = parse_datetime(*v)) value = static_cast<double>(now_ns - *t) / 1e9;
        } else if (!m.map.empty() || m.map_default) {
          for (const auto& [k, num] : m.map)
            if (iequal(k, *v)) value = num;
          if (!value) value = m.map_default;
        } else {
          value = number(*v);
        }
      } else if (m.map_default && inst.find(m.property) != nullptr) {
        value = m.map_default;  // NULL is a value the map does not list
      }
      if (!value) {
        if (skipped != nullptr) ++*skipped;
        continue;
      }
      out.push_back(outpost::Metric{m.name, labels, *value * m.scale, now_ns, m.type});
    }
  }
  return out;
}

// ---- event logs ------------------------------------------------------------------------------

Bookmarks::Bookmarks(fs::path file) : file_(std::move(file)) {
  if (file_.empty()) return;
  std::ifstream in(file_);
  std::string line;
  while (std::getline(in, line)) {
    // device \t log \t record
    const std::size_t b = line.rfind('\t');
    if (b == std::string::npos || b == 0) continue;
    auto v = digits(std::string_view(line).substr(b + 1));
    if (!v || *v < 0) continue;
    marks_[line.substr(0, b)] = static_cast<uint64_t>(*v);
  }
}

std::optional<uint64_t> Bookmarks::get(std::string_view device, std::string_view log) const {
  std::lock_guard g(mu_);
  auto it = marks_.find(std::string(device) + "\t" + std::string(log));
  if (it == marks_.end()) return std::nullopt;
  return it->second;
}

void Bookmarks::set(std::string_view device, std::string_view log, uint64_t record) {
  std::lock_guard g(mu_);
  auto [it, fresh] = marks_.try_emplace(std::string(device) + "\t" + std::string(log), record);
  if (fresh || record > it->second) {
    it->second = record;
    dirty_ = true;
  }
}

void Bookmarks::save() {
  std::lock_guard g(mu_);
  if (file_.empty() || !dirty_) return;
  std::error_code ec;
  fs::create_directories(file_.parent_path(), ec);
  const fs::path tmp = file_.string() + ".tmp";
  std::string text;
  for (const auto& [k, v] : marks_) text += k + '\t' + std::to_string(v) + '\n';
  // Synced before the rename and the directory after it: a power cut leaves the old file or
  // the new one, never an empty one.
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) throw Error(OUTPOST_E_PERMISSION, "cannot write " + tmp.string());
  bool ok = true;
  for (std::size_t at = 0; ok && at < text.size();) {
    const ssize_t n = ::write(fd, text.data() + at, text.size() - at);
    if (n < 0 && errno == EINTR) continue;
    ok = n > 0;
    if (ok) at += static_cast<std::size_t>(n);
  }
  ok = ok && ::fsync(fd) == 0;
  ::close(fd);
  if (!ok) throw Error(OUTPOST_E_PERMISSION, "cannot write " + tmp.string());
  fs::rename(tmp, file_, ec);
  if (ec)
    throw Error(OUTPOST_E_PERMISSION, "cannot replace " + file_.string() + ": " + ec.message());
  const fs::path dir = file_.parent_path().empty() ? fs::path(".") : file_.parent_path();
  const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
  dirty_ = false;
}

std::string eventlog_probe_wql(std::string_view log, uint64_t record) {
  return "SELECT RecordNumber FROM Win32_NTLogEvent WHERE Logfile = " + quote(log) +
         " AND RecordNumber = " + std::to_string(record);
}

std::string eventlog_wql(const EventLogSpec& spec, std::string_view log,
                         std::optional<uint64_t> after_record, int64_t since_ns, uint64_t window) {
  std::string q =
      "SELECT RecordNumber, Logfile, EventCode, EventIdentifier, EventType, SourceName, "
      "TimeGenerated, ComputerName, Message, CategoryString, User FROM Win32_NTLogEvent WHERE "
      "Logfile = " +
      quote(log);
  if (after_record)
    q += " AND RecordNumber > " + std::to_string(*after_record) +
         " AND RecordNumber <= " + std::to_string(*after_record + window);
  else
    q += " AND TimeGenerated >= " + quote(cim_datetime(since_ns));
  switch (spec.max_level) {
    case Level::error:
      q += " AND (EventType = 1 OR EventType = 5)";
      break;
    case Level::warning:
      q += " AND (EventType = 1 OR EventType = 2 OR EventType = 5)";
      break;
    case Level::information:
      break;
  }
  return q;
}

EventLogResult to_events(const EventLogSpec& spec, std::vector<Instance> items,
                         std::optional<uint64_t> after_record, const outpost::Labels& base,
                         std::string_view source, std::size_t max_events) {
  struct Entry {
    uint64_t record;
    Instance* inst;
  };
  std::vector<Entry> entries;
  EventLogResult r;
  for (auto& i : items) {
    const std::string* rn = i.value("RecordNumber");
    auto v = rn != nullptr ? digits(*rn) : std::nullopt;
    if (!v || *v < 0) {
      ++r.filtered;
      continue;
    }
    const auto record = static_cast<uint64_t>(*v);
    if (after_record && record <= *after_record) continue;  // the server ignored the WHERE
    entries.push_back(Entry{record, &i});
  }
  std::sort(entries.begin(), entries.end(),
            [](const Entry& a, const Entry& b) { return a.record < b.record; });
  entries.erase(std::unique(entries.begin(), entries.end(),
                            [](const Entry& a, const Entry& b) { return a.record == b.record; }),
                entries.end());
  if (entries.size() > max_events) {
    r.deferred = entries.size() - max_events;
    entries.resize(max_events);
  }
  auto listed = [](const std::vector<uint32_t>& v, uint32_t id) {
    return std::find(v.begin(), v.end(), id) != v.end();
  };
  for (const auto& e : entries) {
    r.new_bookmark = e.record;
    const Instance& i = *e.inst;
    auto s = [&](const char* name) {
      const std::string* v = i.value(name);
      return v != nullptr ? *v : std::string();
    };
    const auto code = static_cast<uint32_t>(digits(s("EventCode")).value_or(0));
    const int64_t type = digits(s("EventType")).value_or(3);
    if ((!spec.event_ids.empty() && !listed(spec.event_ids, code)) ||
        listed(spec.exclude_ids, code) ||
        (!spec.sources.empty() &&
         std::none_of(spec.sources.begin(), spec.sources.end(),
                      [&](const std::string& x) { return iequal(x, s("SourceName")); })) ||
        (type == 2 && spec.max_level == Level::error) ||
        ((type == 3 || type == 4) && spec.max_level != Level::information)) {
      ++r.filtered;
      continue;
    }
    outpost::Event ev;
    ev.kind = "windows.eventlog";
    ev.source = std::string(source);
    ev.message = s("Message");
    while (!ev.message.empty() && std::isspace(static_cast<unsigned char>(ev.message.back())))
      ev.message.pop_back();
    ev.severity = type == 1 || type == 5 ? OUTPOST_SEV_ERROR
                  : type == 2            ? OUTPOST_SEV_WARNING
                                         : OUTPOST_SEV_INFO;
    ev.attributes = base;
    ev.attributes.emplace_back("log", s("Logfile"));
    ev.attributes.emplace_back("record", std::to_string(e.record));
    ev.attributes.emplace_back("event_id", std::to_string(code));
    ev.attributes.emplace_back("source_name", s("SourceName"));
    static constexpr const char* kTypes[] = {
        "", "error", "warning", "information", "audit_success", "audit_failure"};
    ev.attributes.emplace_back("level", type >= 1 && type <= 5 ? kTypes[type] : "information");
    if (const std::string c = s("CategoryString"); !c.empty())
      ev.attributes.emplace_back("category", c);
    if (const std::string u = s("User"); !u.empty()) ev.attributes.emplace_back("user", u);
    if (const std::string c = s("ComputerName"); !c.empty())
      ev.attributes.emplace_back("computer", c);
    ev.time_ns = parse_datetime(s("TimeGenerated")).value_or(0);
    r.events.push_back(std::move(ev));
  }
  return r;
}

}  // namespace outpost::lib::wql
