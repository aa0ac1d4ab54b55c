// What a poll of a Windows server is, whichever transport carries it (winrm over WS-Management,
// wmi over DCOM): the plugin settings both share (profiles and their reloading, the event log
// bookmarks and windows), how a target's parameters become tasks (profile queries, event logs,
// an ad hoc query, a service to control), the account, and how the answers become metrics,
// events, audit events and the poll's outcome. The transports only move the queries.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <outpost/sdk.hpp>
#include <outpost_lib/wql.hpp>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace outpost::lib::wql {

// One unit of a poll: a profile query, the new entries of one event log, a method of a WMI
// object (service control), or a command (transports that can run one).
struct Task {
  enum class Kind { query, eventlog, invoke, command } kind = Kind::query;
  std::string name;              // "profile/query", for details and labels
  const Query* query = nullptr;  // a profile's; kept alive by Plan::profiles
  std::string wmi_namespace = "root/cimv2";
  std::string wql;
  // eventlog
  std::string log;
  std::string bookmark_key;  // the bookmark's name: profile/query/log
  std::optional<uint64_t> after_record;
  std::optional<uint64_t> window_end;  // the last record of this poll's window
  // invoke: Win32_Service StartService/StopService ("restart": stop, wait, start)
  std::string class_name, method;
  std::vector<std::pair<std::string, std::string>> selectors;  // key property -> value
  std::string action;                                          // start, stop, restart
  // command
  std::string command;
};

// A target's account. The user may be "user", "DOMAIN\user" or "user@domain".
struct Account {
  std::string user, domain, password;
};

struct Plan {
  std::vector<Task> tasks;
  bool query_events = false;  // an ad hoc query: every instance becomes an event
  std::shared_ptr<const ProfileSet> profiles;
};

class Planner {
 public:
  // `plugin` names the plugin in messages; `builtin_dir` holds the shipped profiles.
  Planner(outpost::Host host, const outpost::Config& cfg, std::string plugin,
          std::filesystem::path builtin_dir);

  // profile_dirs, builtin_profiles, default_profiles, state_dir, eventlog_lookback,
  // max_events_per_poll.
  static std::vector<outpost_field> config_fields();
  // user, domain, password(_ref), profile, query, namespace, service, service_action, and
  // command when the transport can run one.
  static std::vector<outpost_field> target_fields(bool commands);

  // The target's tasks; throws outpost::Error(OUTPOST_E_CONFIG) for parameters that do not
  // fit. Re-reads the profile files first when they changed (looked at once a second at most).
  Plan plan(const outpost::Config& params, std::string_view device, bool commands);
  // user (required), domain, password or password_ref; each valid UTF-8.
  Account account(const outpost::Config& params) const;

  Bookmarks& bookmarks() { return *bookmarks_; }
  // Writes what the last polls moved; a failure is reported, not thrown. Not on an I/O thread.
  void save_bookmarks();
  std::size_t max_events() const { return max_events_; }
  void warn_once(const std::string& key, const std::string& text);

 private:
  void reload(bool first);
  std::string signature() const;

  outpost::Host host_;
  std::string plugin_;
  std::vector<std::filesystem::path> dirs_;
  std::string default_profiles_;
  std::unique_ptr<Bookmarks> bookmarks_;
  int64_t lookback_ns_ = 0;
  std::size_t max_events_ = 1000;
  std::mutex mu_;
  std::shared_ptr<const ProfileSet> profiles_;
  std::string signature_;
  int64_t checked_ns_ = 0;
  std::mutex warned_mu_;
  std::set<std::string> warned_;
};

// <the directory of the plugin that links this library>/wql-profiles: the shipped profiles.
std::filesystem::path builtin_profile_dir();

// The names of a comma-separated list, trimmed, empty ones left out.
std::vector<std::string> split_names(std::string_view s);

// ---- answers

// The tasks' results and the poll's outcome: failed queries are named in the detail; a host
// that answered some is up.
class Outcome {
 public:
  void done(const Task& t, outpost_status status, const std::string& why);
  // The job's status and detail, for `tasks` tasks.
  std::pair<outpost_status, std::string> result(std::size_t tasks) const;
  std::size_t failed() const { return failed_; }

 private:
  std::size_t ok_ = 0, failed_ = 0, absent_ = 0;
  outpost_status first_ = OUTPOST_OK;
  std::string failures_;
};

// A Win32_Service method's return value (0 success, 10 already running, ...), in words.
std::string service_return_text(int64_t code);
// The windows.service_control audit event of one method call.
outpost::Event service_control_event(const Task& t, std::string_view method, int64_t code,
                                     const outpost::Labels& base, std::string_view device,
                                     std::string_view user, int64_t now_ns);
// After StartService/StopService returned `code`: done (status says how), or, in the stop half
// of a restart, wait for the service to stop and then start it.
struct ServiceStep {
  bool wait_stopped = false;
  outpost_status status = OUTPOST_OK;
};
ServiceStep service_step(const Task& t, bool stopping, int64_t code);
// The method a service task calls now (a restart: StopService, then StartService).
std::string service_method(const Task& t, bool restart_started);
// The WQL that reads a service's State while a restart waits for it to stop.
std::string service_state_wql(const Task& t);

// An ad hoc query's answer: one windows.wmi_instance event per instance.
std::vector<outpost::Event> instance_events(const std::vector<Instance>& items,
                                            const outpost::Labels& base, std::string_view device,
                                            int64_t now_ns);

// An event log window's entries: emitted to the engine at once (so the bookmark moves only past
// entries the engine took) and the bookmark moved. False with `why` when the engine refused
// them (back-pressure): they are read again next poll.
bool take_eventlog(outpost::Host host, Bookmarks* marks, const Task& t, std::vector<Instance> items,
                   const outpost::Labels& base, std::string_view device, std::size_t max_events,
                   std::string& why);

}  // namespace outpost::lib::wql
