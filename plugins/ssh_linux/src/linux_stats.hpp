// What one SSH exec on a Linux host prints (the script below) turned into metrics under the names
// and labels SNMP's Host Resources, IF-MIB, UCD-SNMP and UCD-DISKIO profiles use where they
// overlap, so a server looks the same whichever way it is polled.
#pragma once

#include <cstdint>
#include <outpost/sdk.hpp>
#include <string>
#include <string_view>
#include <vector>

namespace outpost::ssh_linux {

// The POSIX sh script: sections "@@name" of /proc and /sys files and df, the CPU counters read
// twice `interval_s` apart.
std::string collect_script(double interval_s);

struct Parsed {
  std::vector<outpost::Metric> metrics;
  std::size_t cpus = 0, interfaces = 0, filesystems = 0, disks = 0;
};
// Throws std::runtime_error when the output is not the script's (no @@end: cut short).
Parsed parse(std::string_view output, const outpost::Labels& base, int64_t now_ns);

}  // namespace outpost::ssh_linux
