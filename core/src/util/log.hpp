#pragma once

#include <fmt/core.h>

#include <string_view>
#include <utility>

namespace outpost::core {

enum class LogLevel : unsigned { debug = 10, info = 20, warn = 30, error = 40 };

void set_log_level(LogLevel level);
bool log_enabled(LogLevel level);
bool parse_log_level(std::string_view text, LogLevel& out);
// One line to stderr, timestamped; thread-safe.
void log_line(LogLevel level, std::string_view message);

template <typename... Args>
void logf(LogLevel level, fmt::format_string<Args...> format, Args&&... args) {
  if (log_enabled(level)) log_line(level, fmt::format(format, std::forward<Args>(args)...));
}

}  // namespace outpost::core
