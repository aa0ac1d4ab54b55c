// What tests that cross-check against an independent tool (impacket, net-snmp, tshark...) share:
// bytes to and from hex, and running the tool with an input and reading its answer.
#pragma once

#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <span>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace outpost::test {

// "0a1B 2c" -> {0x0a, 0x1b, 0x2c}: whitespace is ignored; anything else not hex throws.
inline std::vector<uint8_t> unhex(std::string_view text) {
  std::vector<uint8_t> out;
  int hi = -1;
  for (char c : text) {
    int v;
    if (c >= '0' && c <= '9')
      v = c - '0';
    else if (c >= 'a' && c <= 'f')
      v = c - 'a' + 10;
    else if (c >= 'A' && c <= 'F')
      v = c - 'A' + 10;
    else if (c == ' ' || c == '\n' || c == '\t')
      continue;
    else
      throw std::invalid_argument("unhex: not a hex digit");
    if (hi < 0) {
      hi = v;
    } else {
      out.push_back(static_cast<uint8_t>(hi << 4 | v));
      hi = -1;
    }
  }
  if (hi >= 0) throw std::invalid_argument("unhex: odd number of digits");
  return out;
}

inline std::string hex(std::span<const uint8_t> bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string s;
  s.reserve(bytes.size() * 2);
  for (uint8_t b : bytes) {
    s += kDigits[b >> 4];
    s += kDigits[b & 15];
  }
  return s;
}

// Runs `command` through the shell with `input` on its standard input; its standard output.
// Throws when it cannot run or exits other than 0, so a missing tool fails the test.
inline std::string run_tool(const std::string& command, const std::string& input = "") {
  char path[] = "/tmp/outpost-tool-input.XXXXXX";
  const int fd = ::mkstemp(path);
  if (fd < 0) throw std::runtime_error("run_tool: mkstemp failed");
  ::close(fd);
  std::ofstream(path) << input;
  FILE* p = ::popen((command + " < " + path).c_str(), "r");
  if (p == nullptr) {
    std::remove(path);
    throw std::runtime_error("run_tool: cannot run " + command);
  }
  std::string out;
  char buf[4096];
  std::size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  const int rc = ::pclose(p);
  std::remove(path);
  if (rc != 0) throw std::runtime_error("run_tool: " + command + " failed: " + out);
  return out;
}

// A tool's answer of lines "name rest...", by name.
inline std::map<std::string, std::string> lines_by_name(const std::string& out) {
  std::map<std::string, std::string> m;
  std::istringstream s(out);
  for (std::string line; std::getline(s, line);) {
    const auto sp = line.find(' ');
    m[line.substr(0, sp)] = sp == std::string::npos ? "" : line.substr(sp + 1);
  }
  return m;
}

}  // namespace outpost::test
