#include "util/log.hpp"

#include <atomic>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <mutex>

namespace outpost::core {
namespace {
std::atomic<unsigned> g_level{static_cast<unsigned>(LogLevel::info)};
std::mutex g_mu;

const char* level_name(LogLevel l) {
  switch (l) {
    case LogLevel::debug:
      return "DEBUG";
    case LogLevel::info:
      return "INFO";
    case LogLevel::warn:
      return "WARN";
    case LogLevel::error:
      return "ERROR";
  }
  return "?";
}
}  // namespace

void set_log_level(LogLevel level) { g_level = static_cast<unsigned>(level); }
bool log_enabled(LogLevel level) { return static_cast<unsigned>(level) >= g_level.load(); }

bool parse_log_level(std::string_view text, LogLevel& out) {
  if (text == "debug")
    out = LogLevel::debug;
  else if (text == "info")
    out = LogLevel::info;
  else if (text == "warn" || text == "warning")
    out = LogLevel::warn;
  else if (text == "error")
    out = LogLevel::error;
  else
    return false;
  return true;
}

void log_line(LogLevel level, std::string_view message) {
  const auto now = std::chrono::system_clock::now();
  const std::time_t t = std::chrono::system_clock::to_time_t(now);
  const auto ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
  std::tm tm{};
  gmtime_r(&t, &tm);
  char ts[32];
  std::strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%S", &tm);
  std::lock_guard g(g_mu);
  std::fprintf(stderr, "%s.%03dZ %-5s %.*s\n", ts, static_cast<int>(ms), level_name(level),
               static_cast<int>(message.size()), message.data());
}

}  // namespace outpost::core
