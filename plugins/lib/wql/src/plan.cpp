// The transport-independent half of the Windows pollers: settings, tasks, answers.
#include <dlfcn.h>
#include <sys/stat.h>

#include <algorithm>
#include <outpost_lib/wql_plan.hpp>

namespace outpost::lib::wql {

namespace fs = std::filesystem;
using outpost::Error;

namespace {

constexpr int64_t kSecond = 1'000'000'000;
constexpr const char* kDefaultProfiles =
    "windows-os,windows-disk,windows-network,windows-services,windows-eventlog";

bool valid_utf8(std::string_view s) {
  std::size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    std::size_t n = 0;
    uint32_t cp = 0;
    if (c < 0x80) {
      ++i;
      continue;
    }
    if ((c & 0xE0) == 0xC0) {
      n = 1, cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      n = 2, cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      n = 3, cp = c & 0x07;
    } else {
      return false;
    }
    for (std::size_t k = 1; k <= n; ++k) {
      if (i + k >= s.size()) return false;
      const auto d = static_cast<unsigned char>(s[i + k]);
      if ((d & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (d & 0x3F);
    }
    // Overlong forms, surrogates and what lies beyond U+10FFFF are not UTF-8.
    if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) ||
        (cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF)
      return false;
    i += n + 1;
  }
  return true;
}

}  // namespace

fs::path builtin_profile_dir() {
  // This library is linked into the plugin: the object holding this function is the plugin.
  Dl_info info{};
  if (::dladdr(reinterpret_cast<const void*>(&builtin_profile_dir), &info) == 0 ||
      info.dli_fname == nullptr)
    return {};
  std::error_code ec;
  fs::path p = fs::weakly_canonical(fs::path(info.dli_fname), ec);
  return (ec ? fs::path(info.dli_fname) : p).parent_path() / "wql-profiles";
}

std::vector<std::string> split_names(std::string_view s) {
  std::vector<std::string> out;
  std::size_t at = 0;
  while (at <= s.size()) {
    std::size_t comma = s.find(',', at);
    if (comma == std::string_view::npos) comma = s.size();
    std::string n(s.substr(at, comma - at));
    n.erase(0, n.find_first_not_of(" \t"));
    n.erase(n.find_last_not_of(" \t") + 1);
    if (!n.empty()) out.push_back(n);
    at = comma + 1;
  }
  return out;
}

Planner::Planner(outpost::Host host, const outpost::Config& cfg, std::string plugin,
                 fs::path builtin_dir)
    : host_(host), plugin_(std::move(plugin)) {
  if (cfg.get_bool("builtin_profiles", true) && !builtin_dir.empty())
    dirs_.push_back(std::move(builtin_dir));
  for (auto& d : cfg.get_list("profile_dirs")) dirs_.emplace_back(d);
  default_profiles_ = cfg.get("default_profiles", kDefaultProfiles);
  const std::string state = cfg.get("state_dir");
  bookmarks_ = std::make_unique<Bookmarks>(state.empty() ? fs::path()
                                                         : fs::path(state) / "eventlog-bookmarks");
  const double lookback = cfg.get_seconds("eventlog_lookback", 3600);
  if (lookback < 0 || lookback > 36500.0 * 86400)
    throw Error(OUTPOST_E_CONFIG, "eventlog_lookback must be 0-36500d");
  lookback_ns_ = static_cast<int64_t>(lookback * 1e9);
  const int64_t me = cfg.get_int("max_events_per_poll", 1000);
  if (me < 1 || me > 1'000'000)
    throw Error(OUTPOST_E_CONFIG, "max_events_per_poll must be 1-1000000");
  max_events_ = static_cast<std::size_t>(me);
  reload(true);
  for (const auto& n : split_names(default_profiles_))
    if (profiles_->find(n) == nullptr)
      throw Error(OUTPOST_E_CONFIG, "default_profiles: no profile named '" + n + "'");
}

std::vector<outpost_field> Planner::config_fields() {
  using outpost::field;
  return {
      field("profile_dirs", OUTPOST_FIELD_LIST,
            "Directories of WQL profile YAML files, read after the shipped ones; a profile of "
            "the same name replaces a shipped one. Re-read when they change"),
      field("builtin_profiles", OUTPOST_FIELD_BOOL,
            "Load the profiles shipped beside the plugin (<plugin dir>/wql-profiles)", "true"),
      field("default_profiles", OUTPOST_FIELD_STRING,
            "Profiles of targets that name none (comma-separated)", kDefaultProfiles),
      field("state_dir", OUTPOST_FIELD_STRING,
            "Where the event log bookmarks are kept across restarts (e.g. "
            "${data_dir}/<plugin>); empty: in memory only"),
      field("eventlog_lookback", OUTPOST_FIELD_DURATION,
            "How far back the first read of a log goes, when it has no bookmark yet", "1h"),
      field("max_events_per_poll", OUTPOST_FIELD_INT,
            "Event log entries reported per log and poll; the rest come next poll", "1000"),
  };
}

std::vector<outpost_field> Planner::target_fields(bool commands) {
  using outpost::field;
  std::vector<outpost_field> f = {
      field("user", OUTPOST_FIELD_STRING, "Account: user, DOMAIN\\user or user@domain"),
      field("domain", OUTPOST_FIELD_STRING, "Domain, when user does not name it"),
      field("password", OUTPOST_FIELD_STRING, "Password, literally (prefer password_ref)"),
      field("password_ref", OUTPOST_FIELD_SECRET, "Password, a credential reference"),
      field("profile", OUTPOST_FIELD_STRING,
            "WQL profiles, comma-separated; default: the plugin's"),
      field("query", OUTPOST_FIELD_STRING,
            "A WQL query instead of the profiles: every instance becomes a windows.wmi_instance "
            "event"),
      field("namespace", OUTPOST_FIELD_STRING, "WMI namespace of query", "root/cimv2"),
      field("service", OUTPOST_FIELD_STRING,
            "A service (its Name) to control, with service_action"),
      field("service_action", OUTPOST_FIELD_STRING,
            "start, stop or restart the service; audited as a windows.service_control event"),
  };
  if (commands)
    f.push_back(field("command", OUTPOST_FIELD_STRING,
                      "A command line run in a remote cmd shell: its output becomes a "
                      "windows.command event"));
  return f;
}

std::string Planner::signature() const {
  std::string sig;
  for (const auto& d : dirs_) {
    std::error_code ec;
    std::vector<std::string> parts;
    for (const auto& e : fs::directory_iterator(d, ec)) {
      struct stat st {};
      if (::stat(e.path().c_str(), &st) != 0) continue;
      parts.push_back(e.path().string() + ":" + std::to_string(st.st_size) + ":" +
                      std::to_string(st.st_mtim.tv_sec) + "." + std::to_string(st.st_mtim.tv_nsec));
    }
    std::sort(parts.begin(), parts.end());
    sig += d.string() + "{";
    for (auto& p : parts) sig += p + ";";
    sig += "}";
  }
  return sig;
}

void Planner::reload(bool first) {
  const int64_t now = host_.monotonic_ns();
  std::lock_guard g(mu_);
  if (!first && now - checked_ns_ < kSecond) return;
  checked_ns_ = now;
  std::string sig = signature();
  if (!first && sig == signature_) return;
  std::vector<std::string> errors;
  auto set = std::make_shared<ProfileSet>(ProfileSet::load(dirs_, errors, profiles_.get()));
  for (const auto& e : errors) host_.report_error(OUTPOST_E_CONFIG, plugin_ + " profile " + e);
  profiles_ = std::move(set);
  signature_ = std::move(sig);
}

void Planner::save_bookmarks() {
  try {
    bookmarks_->save();
  } catch (const Error& e) {
    host_.report_error(e.status(), plugin_ + ": event log bookmarks: " + e.what());
  }
}

void Planner::warn_once(const std::string& key, const std::string& text) {
  std::lock_guard g(warned_mu_);
  if (warned_.insert(key).second) host_.log(OUTPOST_LOG_WARN, text);
}

Account Planner::account(const outpost::Config& p) const {
  Account a;
  a.user = p.get("user");
  a.domain = p.get("domain");
  if (auto ref = p.find("password_ref"); ref && !ref->empty()) {
    try {
      a.password = host_.secret(*ref);
    } catch (const Error& e) {
      throw Error(e.status() == OUTPOST_E_NOT_FOUND ? OUTPOST_E_CONFIG : e.status(),
                  "password_ref: credential '" + std::string(*ref) + "' not found");
    }
  } else {
    a.password = p.get("password");
  }
  if (a.user.empty()) throw Error(OUTPOST_E_CONFIG, "user is required");
  for (const auto& [what, text] : {std::pair{"user", &a.user}, std::pair{"domain", &a.domain},
                                   std::pair{"password", &a.password}})
    if (!valid_utf8(*text))
      throw Error(OUTPOST_E_CONFIG, std::string(what) + " is not valid UTF-8");
  return a;
}

Plan Planner::plan(const outpost::Config& p, std::string_view device, bool commands) {
  reload(false);
  Plan out;
  {
    std::lock_guard g(mu_);
    out.profiles = profiles_;
  }
  const std::string service = p.get("service"), action = p.get("service_action");
  const std::string command = p.get("command"), query = p.get("query");
  if (!command.empty() && !commands)
    throw Error(OUTPOST_E_CONFIG, "command: " + plugin_ + " runs no commands (winrm does)");
  if (service.empty() != action.empty())
    throw Error(OUTPOST_E_CONFIG, "service and service_action go together");
  if (!action.empty()) {
    if (action != "start" && action != "stop" && action != "restart")
      throw Error(OUTPOST_E_CONFIG, "service_action must be start, stop or restart");
    Task task;
    task.kind = Task::Kind::invoke;
    task.name = "service " + service;
    task.class_name = "Win32_Service";
    task.method = action == "start" ? "StartService" : action == "stop" ? "StopService" : "restart";
    task.action = action;
    task.selectors = {{"Name", service}};
    out.tasks.push_back(std::move(task));
  }
  if (!command.empty()) {
    Task task;
    task.kind = Task::Kind::command;
    task.name = "command";
    task.command = command;
    out.tasks.push_back(std::move(task));
  }
  if (!query.empty()) {
    Task task;
    task.name = "query";
    task.wql = query;
    task.wmi_namespace = p.get("namespace", "root/cimv2");
    out.query_events = true;
    out.tasks.push_back(std::move(task));
  }
  if (!out.tasks.empty()) {
    if (p.has("profile"))
      throw Error(OUTPOST_E_CONFIG, "profile does not go with query, command or service_action");
    return out;
  }
  const int64_t since = std::max<int64_t>(host_.now_ns() - lookback_ns_, 0);
  for (const auto& name : split_names(p.get("profile", default_profiles_))) {
    const Profile* prof = out.profiles->find(name);
    if (prof == nullptr) throw Error(OUTPOST_E_CONFIG, "unknown profile '" + name + "'");
    for (const auto& q : prof->queries) {
      if (q.eventlog) {
        for (const auto& log : q.eventlog->logs) {
          Task task;
          task.kind = Task::Kind::eventlog;
          task.name = name + "/" + q.name + "/" + log;
          task.query = &q;
          task.wmi_namespace = q.wmi_namespace;
          task.log = log;
          task.bookmark_key = task.name;
          task.after_record = bookmarks_->get(device, task.bookmark_key);
          if (task.after_record) task.window_end = *task.after_record + max_events_;
          task.wql = eventlog_wql(*q.eventlog, log, task.after_record, since, max_events_);
          out.tasks.push_back(std::move(task));
        }
        continue;
      }
      Task task;
      task.name = name + "/" + q.name;
      task.query = &q;
      task.wmi_namespace = q.wmi_namespace;
      task.wql = q.wql;
      out.tasks.push_back(std::move(task));
    }
  }
  return out;
}

// ---- answers

void Outcome::done(const Task& t, outpost_status status, const std::string& why) {
  if (status == OUTPOST_OK) {
    ++ok_;
  } else if (status == OUTPOST_E_NOT_FOUND && t.query != nullptr && t.query->optional) {
    ++absent_;  // e.g. no SQL Server on this host
  } else {
    ++failed_;
    if (first_ == OUTPOST_OK) first_ = status;
    if (failures_.size() < 2000) failures_ += (failures_.empty() ? "" : "; ") + t.name + ": " + why;
  }
}

std::pair<outpost_status, std::string> Outcome::result(std::size_t tasks) const {
  if (failed_ == 0)
    return {OUTPOST_OK, absent_ == 0
                            ? std::string()
                            : std::to_string(absent_) + " optional queries found no class"};
  if (ok_ == 0 && absent_ == 0) return {first_, failures_};
  // The host answered: the device is up, the failed queries are named in the detail.
  return {OUTPOST_OK, std::to_string(failed_) + " of " + std::to_string(tasks) +
                          " queries failed: " + failures_};
}

std::string service_return_text(int64_t code) {
  // Win32_Service method return values.
  static const std::pair<int, const char*> kWords[] = {{0, "success"},
                                                       {1, "not supported"},
                                                       {2, "access denied"},
                                                       {3, "dependent services running"},
                                                       {5, "cannot accept control"},
                                                       {6, "service not active"},
                                                       {7, "request timeout"},
                                                       {8, "unknown failure"},
                                                       {10, "service already running"},
                                                       {14, "service disabled"},
                                                       {15, "service marked for deletion"},
                                                       {24, "service paused"}};
  for (const auto& [c, w] : kWords)
    if (c == code) return w;
  return "return value " + std::to_string(code);
}

outpost::Event service_control_event(const Task& t, std::string_view method, int64_t code,
                                     const outpost::Labels& base, std::string_view device,
                                     std::string_view user, int64_t now_ns) {
  const std::string& service = t.selectors.at(0).second;
  outpost::Event ev;
  ev.kind = "windows.service_control";
  ev.source = std::string(device);
  ev.severity = code == 0 ? OUTPOST_SEV_NOTICE : OUTPOST_SEV_WARNING;
  ev.message = std::string(method) + " " + service + ": " + service_return_text(code);
  ev.attributes = base;
  ev.attributes.emplace_back("service", service);
  ev.attributes.emplace_back("action", t.action);
  ev.attributes.emplace_back("method", std::string(method));
  ev.attributes.emplace_back("return_value", std::to_string(code));
  ev.attributes.emplace_back("user", std::string(user));
  ev.time_ns = now_ns;
  return ev;
}

ServiceStep service_step(const Task& t, bool stopping, int64_t code) {
  if (stopping && (code == 0 || code == 5 || code == 6)) return {true, OUTPOST_OK};  // wait
  if (code == 0 || (code == 10 && t.action != "stop") || (code == 6 && t.action == "stop"))
    return {false, OUTPOST_OK};
  return {false, code == 2 ? OUTPOST_E_AUTH : OUTPOST_E_UNAVAILABLE};
}

std::string service_method(const Task& t, bool restart_started) {
  if (t.method != "restart") return t.method;
  return restart_started ? "StartService" : "StopService";
}

std::string service_state_wql(const Task& t) {
  return "SELECT Name, State FROM Win32_Service WHERE Name = " + quote(t.selectors.at(0).second);
}

std::vector<outpost::Event> instance_events(const std::vector<Instance>& items,
                                            const outpost::Labels& base, std::string_view device,
                                            int64_t now_ns) {
  std::vector<outpost::Event> out;
  out.reserve(items.size());
  for (const auto& inst : items) {
    outpost::Event ev;
    ev.kind = "windows.wmi_instance";
    ev.source = std::string(device);
    ev.message = inst.class_name;
    ev.attributes = base;
    for (const auto& p : inst.properties) {
      std::string v;
      for (std::size_t i = 0; i < p.values.size(); ++i) v += (i ? "," : "") + p.values[i];
      ev.attributes.emplace_back(p.name, p.null ? "NULL" : v);
    }
    ev.time_ns = now_ns;
    out.push_back(std::move(ev));
  }
  return out;
}

bool take_eventlog(outpost::Host host, Bookmarks* marks, const Task& t, std::vector<Instance> items,
                   const outpost::Labels& base, std::string_view device, std::size_t max_events,
                   std::string& why) {
  auto r =
      to_events(*t.query->eventlog, std::move(items), t.after_record, base, device, max_events);
  if (!r.events.empty() && host.emit({}, r.events) != OUTPOST_OK) {
    why = std::to_string(r.events.size()) +
          " event log entries refused by the engine (back-pressure): read again next poll";
    return false;
  }
  if (r.new_bookmark && marks != nullptr) marks->set(device, t.bookmark_key, *r.new_bookmark);
  return true;
}

}  // namespace outpost::lib::wql
