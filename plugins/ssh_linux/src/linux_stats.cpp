#include "linux_stats.hpp"

#include <charconv>
#include <cstdio>
#include <map>
#include <sstream>
#include <stdexcept>

namespace outpost::ssh_linux {

namespace {

std::vector<std::string> words(std::string_view line) {
  std::vector<std::string> out;
  std::size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && (line[i] == ' ' || line[i] == '\t')) ++i;
    std::size_t j = i;
    while (j < line.size() && line[j] != ' ' && line[j] != '\t') ++j;
    if (j > i) out.emplace_back(line.substr(i, j - i));
    i = j;
  }
  return out;
}

bool number(std::string_view s, double& v) {
  if (s.empty()) return false;
  const auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  return ec == std::errc() && p == s.data() + s.size();
}

// The output cut into its sections, each a list of lines.
std::map<std::string, std::vector<std::string>> sections(std::string_view out) {
  std::map<std::string, std::vector<std::string>> m;
  std::vector<std::string>* cur = nullptr;
  std::size_t at = 0;
  while (at < out.size()) {
    auto nl = out.find('\n', at);
    if (nl == std::string_view::npos) nl = out.size();
    std::string_view line = out.substr(at, nl - at);
    at = nl + 1;
    if (line.size() > 2 && line.substr(0, 2) == "@@") {
      cur = &m[std::string(line.substr(2))];
      continue;
    }
    if (cur != nullptr) cur->emplace_back(line);
  }
  return m;
}

struct CpuTimes {
  double busy = 0, total = 0;
};
std::map<std::string, CpuTimes> cpu_times(const std::vector<std::string>& stat) {
  std::map<std::string, CpuTimes> out;
  for (const auto& l : stat) {
    auto w = words(l);
    if (w.size() < 5 || w[0].rfind("cpu", 0) != 0) continue;
    CpuTimes t;
    for (std::size_t i = 1; i < w.size() && i <= 8; ++i) {  // user..steal
      double v = 0;
      if (!number(w[i], v)) continue;
      t.total += v;
      if (i != 4 && i != 5) t.busy += v;  // idle and iowait are not busy
    }
    out[w[0]] = t;
  }
  return out;
}

}  // namespace

std::string collect_script(double interval_s) {
  char sleep[32];
  std::snprintf(sleep, sizeof sleep, "%.3f", interval_s);
  return std::string(
             "LC_ALL=C; export LC_ALL; "
             "echo @@stat1; cat /proc/stat; "
             "echo @@uptime; cat /proc/uptime; "
             "echo @@loadavg; cat /proc/loadavg; "
             "echo @@meminfo; cat /proc/meminfo; "
             "echo @@netdev; cat /proc/net/dev; "
             "echo @@ifaces; for i in /sys/class/net/*; do "
             "echo \"${i##*/} $(cat $i/operstate 2>/dev/null || echo unknown) "
             "$(cat $i/speed 2>/dev/null || echo -1)\"; done; "
             "echo @@diskstats; cat /proc/diskstats; "
             "echo @@df; df -P -k -x tmpfs -x devtmpfs -x squashfs -x overlay 2>/dev/null; "
             "echo @@procs; set -- /proc/[0-9]*; echo $#; "
             "sleep ") +
         sleep +
         "; "
         "echo @@stat2; cat /proc/stat; "
         "echo @@end";
}

Parsed parse(std::string_view output, const outpost::Labels& base, int64_t now_ns) {
  auto sec = sections(output);
  if (!sec.count("end"))
    throw std::runtime_error("the host's answer was cut short (no end marker): not a POSIX shell?");
  Parsed p;
  auto add = [&](std::string name, double v, outpost::Labels extra = {},
                 uint32_t type = OUTPOST_METRIC_GAUGE) {
    outpost::Labels l = base;
    for (auto& e : extra) l.push_back(std::move(e));
    p.metrics.push_back({std::move(name), std::move(l), v, now_ns, type});
  };
  double v = 0;
  if (!sec["uptime"].empty()) {
    auto w = words(sec["uptime"][0]);
    if (!w.empty() && number(w[0], v)) add("hrSystemUptime", v);
  }
  if (!sec["procs"].empty() && number(sec["procs"][0], v)) add("hrSystemProcesses", v);
  if (!sec["loadavg"].empty()) {
    auto w = words(sec["loadavg"][0]);
    const char* names[] = {"Load-1", "Load-5", "Load-15"};
    for (std::size_t i = 0; i < 3 && i < w.size(); ++i)
      if (number(w[i], v)) add("laLoad", v, {{"laNames", names[i]}});
  }
  std::map<std::string, double> mem;
  for (const auto& l : sec["meminfo"]) {
    auto w = words(l);
    if (w.size() >= 2 && !w[0].empty() && w[0].back() == ':' && number(w[1], v))
      mem[w[0].substr(0, w[0].size() - 1)] = v * 1024;
  }
  if (mem.count("MemTotal")) {
    add("hrMemorySize", mem["MemTotal"]);
    const outpost::Labels ram = {{"hrStorageDescr", "Physical memory"}, {"hrStorageType", "ram"}};
    add("hrStorageSizeBytes", mem["MemTotal"], ram);
    add("hrStorageUsedBytes", mem["MemTotal"] - mem["MemFree"], ram);
    if (mem.count("MemAvailable")) add("memAvailReal", mem["MemAvailable"]);
  }
  if (mem.count("SwapTotal")) {
    const outpost::Labels swap = {{"hrStorageDescr", "Swap space"},
                                  {"hrStorageType", "virtualMemory"}};
    add("hrStorageSizeBytes", mem["SwapTotal"], swap);
    add("hrStorageUsedBytes", mem["SwapTotal"] - mem["SwapFree"], swap);
  }
  // df -P -k: Filesystem 1024-blocks Used Available Capacity Mounted-on (mount may hold blanks).
  for (std::size_t i = 1; i < sec["df"].size(); ++i) {
    auto w = words(sec["df"][i]);
    double size = 0, used = 0;
    if (w.size() < 6 || !number(w[1], size) || !number(w[2], used)) continue;
    std::string mount = w[5];
    for (std::size_t k = 6; k < w.size(); ++k) mount += " " + w[k];
    const outpost::Labels fs = {{"hrStorageDescr", mount}, {"hrStorageType", "fixedDisk"}};
    add("hrStorageSizeBytes", size * 1024, fs);
    add("hrStorageUsedBytes", used * 1024, fs);
    ++p.filesystems;
  }
  // CPUs: busy share of the interval, per CPU (hrProcessorLoad) and all together.
  const auto t1 = cpu_times(sec["stat1"]), t2 = cpu_times(sec["stat2"]);
  for (const auto& [cpu, b] : t2) {
    auto a = t1.find(cpu);
    if (a == t1.end()) continue;
    const double total = b.total - a->second.total, busy = b.busy - a->second.busy;
    const double pct = total > 0 ? 100.0 * busy / total : 0.0;
    if (cpu == "cpu") {
      add("ssCpuBusyPercent", pct);
    } else {
      add("hrProcessorLoad", pct, {{"hrDeviceDescr", cpu}});
      ++p.cpus;
    }
  }
  // Interfaces: /proc/net/dev counters, /sys operstate and speed.
  std::map<std::string, std::pair<std::string, double>> ifstate;
  for (const auto& l : sec["ifaces"]) {
    auto w = words(l);
    if (w.size() >= 3 && number(w[2], v)) ifstate[w[0]] = {w[1], v};
  }
  for (const auto& l : sec["netdev"]) {
    const auto colon = l.find(':');
    if (colon == std::string::npos) continue;
    auto name = words(l.substr(0, colon));
    auto w = words(l.substr(colon + 1));
    if (name.size() != 1 || w.size() < 16) continue;
    const outpost::Labels lab = {{"ifDescr", name[0]}, {"ifName", name[0]}};
    const std::pair<const char*, int> counters[] = {
        {"ifHCInOctets", 0},  {"ifHCInUcastPkts", 1},  {"ifInErrors", 2},   {"ifInDiscards", 3},
        {"ifHCOutOctets", 8}, {"ifHCOutUcastPkts", 9}, {"ifOutErrors", 10}, {"ifOutDiscards", 11}};
    for (const auto& [metric, col] : counters)
      if (number(w[static_cast<std::size_t>(col)], v)) add(metric, v, lab, OUTPOST_METRIC_COUNTER);
    if (auto s = ifstate.find(name[0]); s != ifstate.end()) {
      // IF-MIB ifOperStatus: 1 up, 2 down, 3 testing, 4 unknown, 5 dormant, 6 notPresent,
      // 7 lowerLayerDown.
      static const std::map<std::string, double> kOper = {
          {"up", 1},      {"down", 2},       {"testing", 3},       {"unknown", 4},
          {"dormant", 5}, {"notpresent", 6}, {"lowerlayerdown", 7}};
      auto o = kOper.find(s->second.first);
      add("ifOperStatus", o == kOper.end() ? 4 : o->second, lab);
      if (s->second.second >= 0) add("ifHighSpeed", s->second.second, lab);  // Mbit/s
    }
    ++p.interfaces;
  }
  // Block devices that did anything (UCD-DISKIO-MIB names; sectors are 512 octets).
  for (const auto& l : sec["diskstats"]) {
    auto w = words(l);
    double reads = 0, rsect = 0, writes = 0, wsect = 0;
    if (w.size() < 10 || !number(w[3], reads) || !number(w[5], rsect) || !number(w[7], writes) ||
        !number(w[9], wsect))
      continue;
    if (reads == 0 && writes == 0) continue;
    const outpost::Labels lab = {{"diskIODevice", w[2]}};
    add("diskIONRead", rsect * 512, lab, OUTPOST_METRIC_COUNTER);
    add("diskIONWritten", wsect * 512, lab, OUTPOST_METRIC_COUNTER);
    add("diskIOReads", reads, lab, OUTPOST_METRIC_COUNTER);
    add("diskIOWrites", writes, lab, OUTPOST_METRIC_COUNTER);
    ++p.disks;
  }
  return p;
}

}  // namespace outpost::ssh_linux
