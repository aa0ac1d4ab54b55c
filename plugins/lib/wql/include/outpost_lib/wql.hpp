// What the Windows pollers (winrm over WS-Management, wmi over DCOM) share: WMI instances as
// both transports deliver them, the WQL profiles that say what to query and what the answers
// become (metrics, labels, events), and the event log reader's bookmarks. A profile is a YAML
// file; the shipped ones sit in <plugin dir>/wql-profiles, users add theirs in profile_dirs.
//
//   name: windows-os
//   description: CPU, memory, uptime
//   queries:
//     - name: cpu
//       namespace: root/cimv2                      # the default
//       wql: SELECT Name, PercentProcessorTime FROM Win32_PerfFormattedData_PerfOS_Processor
//       labels: {Name: cpu}                        # property -> label
//       metrics:
//         - {name: windows_cpu_time_percent, property: PercentProcessorTime}
//         - {name: windows_service_running, property: State, map: {Running: 1}, default: 0}
//         - {name: windows_memory_free_bytes, property: FreePhysicalMemory, scale: 1024}
//         - {name: windows_uptime_seconds, property: LastBootUpTime, age: true}
//     - name: eventlog
//       eventlog: {logs: [System, Application], max_level: warning}
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <outpost/sdk.hpp>
#include <string>
#include <string_view>
#include <vector>

namespace outpost::lib::wql {

// ---- instances -------------------------------------------------------------------------------

// One property of a WMI instance, as text (WS-Management and MS-WMIO values both become text:
// numbers in decimal, booleans true/false, datetimes in either CIM form). Several values: an
// array; no value and null: NULL.
struct Property {
  std::string name;
  std::vector<std::string> values;
  bool null = false;
  const std::string* value() const { return values.empty() ? nullptr : &values.front(); }
};
struct Instance {
  std::string class_name;
  std::vector<Property> properties;
  const Property* find(std::string_view name) const;  // case-insensitive, as WQL names are
  const std::string* value(std::string_view name) const {
    const Property* p = find(name);
    return p == nullptr ? nullptr : p->value();
  }
};

// A CIM datetime, "20261205183000.000000+060" (DMTF, minutes east of UTC) or the xs:dateTime
// WS-Management renders ("2026-12-05T18:30:00Z", "2026-12-05T18:30:00.5+01:00"), as Unix ns.
std::optional<int64_t> parse_datetime(std::string_view text);
// Unix ns -> "20261205183000.000000+000", what WQL compares datetimes with.
std::string cim_datetime(int64_t unix_ns);
// A WQL string literal: 'it''s' is not WQL; quotes and backslashes are escaped with backslash.
std::string quote(std::string_view text);

// ---- profiles --------------------------------------------------------------------------------

struct MetricSpec {
  std::string name;
  std::string property;
  double scale = 1;
  uint32_t type = OUTPOST_METRIC_GAUGE;
  std::vector<std::pair<std::string, double>> map;  // text value -> number (case-insensitive)
  std::optional<double> map_default;                // a value the map does not list
  bool age = false;  // a datetime property: seconds from it to the poll's time (uptime)
};

// Win32_NTLogEvent's EventType: 1 error (critical entries too), 2 warning, 3 information,
// 4 audit success, 5 audit failure. A level keeps entries this severe or more; audit failures
// count as errors, audit successes as information.
enum class Level : int { error = 1, warning = 2, information = 3 };

struct EventLogSpec {
  std::vector<std::string> logs;      // Logfile names: System, Application, ...
  Level max_level = Level::warning;   // entries this severe or more
  std::vector<std::string> sources;   // SourceName; empty: all
  std::vector<uint32_t> event_ids;    // EventCode; empty: all
  std::vector<uint32_t> exclude_ids;  // EventCode never reported
};

struct Query {
  std::string name;
  std::string wmi_namespace = "root/cimv2";
  std::string wql;
  std::vector<std::pair<std::string, std::string>> labels;  // property -> label name
  std::vector<MetricSpec> metrics;
  std::optional<EventLogSpec> eventlog;  // set: this query reads event logs (wql is built)
  bool optional = false;  // a class the server may not have (MS SQL): NOT_FOUND is no failure
};

struct Profile {
  std::string name, description;
  std::vector<Query> queries;
  std::string source;  // the file it came from
};

class ProfileSet {
 public:
  // Every *.yaml in the directories, later ones replacing a profile of the same name. A broken
  // file is reported in `errors` ("file: line L, column C: why"); the profiles `previous` had
  // from it (its last good version) are kept, else it is left out.
  static ProfileSet load(const std::vector<std::filesystem::path>& dirs,
                         std::vector<std::string>& errors, const ProfileSet* previous = nullptr);
  static Profile parse(std::string_view yaml_text, const std::string& source);  // throws Error
  const Profile* find(std::string_view name) const;
  std::vector<std::string> names() const;
  std::size_t size() const { return profiles_.size(); }

 private:
  std::map<std::string, Profile, std::less<>> profiles_;
};

// The metrics a query's answer becomes. `base` are the target's labels; `now_ns` the poll time.
// Values that are not numbers (and not mapped) are skipped and counted in `skipped`.
std::vector<outpost::Metric> to_metrics(const Query& q, const std::vector<Instance>& items,
                                        const outpost::Labels& base, int64_t now_ns,
                                        std::size_t* skipped = nullptr);

// ---- event logs ------------------------------------------------------------------------------

// Per device and reader (a profile's query and its log), the highest RecordNumber already
// reported. Kept in a file under the plugin's state directory (one line each, replaced
// atomically and synced), so nothing is read twice or skipped across restarts.
class Bookmarks {
 public:
  explicit Bookmarks(std::filesystem::path file);  // empty path: memory only
  std::optional<uint64_t> get(std::string_view device, std::string_view log) const;
  // Moves a bookmark forward (never back: two readers racing cannot re-read what was reported).
  void set(std::string_view device, std::string_view log, uint64_t record);
  // Writes the file when a bookmark moved since the last save; throws
  // Error(OUTPOST_E_PERMISSION) when it cannot be written. Blocking: not on an I/O thread.
  void save();

 private:
  std::filesystem::path file_;
  mutable std::mutex mu_;
  std::map<std::string, uint64_t, std::less<>> marks_;  // "device\tlog"
  bool dirty_ = false;
};

// The WQL that reads one log's new entries: the window of `window` records after the bookmark
// (record numbers are dense within a log, so a backlog is worked off a window per poll), or
// everything since `since_ns` on a log read the first time.
std::string eventlog_wql(const EventLogSpec& spec, std::string_view log,
                         std::optional<uint64_t> after_record, int64_t since_ns,
                         uint64_t window = 1000);
// Whether record `record` exists (Logfile and RecordNumber are the class's keys): a window
// whose last record exists is complete, and the bookmark may pass entries the level filter
// left out.
std::string eventlog_probe_wql(std::string_view log, uint64_t record);

struct EventLogResult {
  std::vector<outpost::Event> events;
  std::optional<uint64_t> new_bookmark;  // the highest RecordNumber taken
  std::size_t filtered = 0, deferred = 0;
};
// Turns entries of one log into events, lowest RecordNumber first, at most `max_events`; the
// rest are left for the next poll (the bookmark stops before them: nothing is skipped).
EventLogResult to_events(const EventLogSpec& spec, std::vector<Instance> items,
                         std::optional<uint64_t> after_record, const outpost::Labels& base,
                         std::string_view source, std::size_t max_events);

}  // namespace outpost::lib::wql
