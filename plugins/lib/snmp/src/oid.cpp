#include "snmp/oid.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <limits>

namespace outpost::snmp {

std::optional<Oid> parse_oid(std::string_view text) {
  if (!text.empty() && text.front() == '.') text.remove_prefix(1);
  if (text.empty()) return std::nullopt;
  Oid out;
  const char* p = text.data();
  const char* end = text.data() + text.size();
  while (p < end) {
    uint32_t v = 0;
    auto [next, ec] = std::from_chars(p, end, v);
    if (ec != std::errc{} || next == p) return std::nullopt;
    out.push_back(v);
    p = next;
    if (p == end) break;
    if (*p != '.' || p + 1 == end) return std::nullopt;
    ++p;
  }
  // RFC 2578: at most 128 sub-identifiers.
  if (out.size() > 128) return std::nullopt;
  return out;
}

std::string to_string(const Oid& oid) {
  std::string s;
  s.reserve(oid.size() * 4);
  for (std::size_t i = 0; i < oid.size(); ++i) {
    if (i != 0) s += '.';
    s += std::to_string(oid[i]);
  }
  return s;
}

bool starts_with(const Oid& oid, const Oid& prefix) {
  return oid.size() >= prefix.size() && std::equal(prefix.begin(), prefix.end(), oid.begin());
}

std::string suffix(const Oid& oid, const Oid& prefix) {
  std::string s;
  for (std::size_t i = prefix.size(); i < oid.size(); ++i) {
    if (i != prefix.size()) s += '.';
    s += std::to_string(oid[i]);
  }
  return s;
}

std::string format_number(double v) {
  if (std::isfinite(v) && std::fabs(v) < 9.007199254740992e15 && v == std::floor(v))
    return std::to_string(static_cast<int64_t>(v));
  char buf[64];
  auto [p, ec] = std::to_chars(buf, buf + sizeof buf, v);
  return ec == std::errc{} ? std::string(buf, p) : std::string("nan");
}

std::optional<double> Value::as_number() const {
  switch (type) {
    case Type::kInteger:
    case Type::kUnsigned:
    case Type::kCounter32:
    case Type::kCounter64:
    case Type::kTimeTicks:
    case Type::kFloat:
      return number;
    case Type::kOctets: {
      std::string_view s = text;
      while (!s.empty() && (s.back() == '\0' || s.back() == ' ' || s.back() == '\n'))
        s.remove_suffix(1);
      while (!s.empty() && s.front() == ' ') s.remove_prefix(1);
      if (s.empty()) return std::nullopt;
      double d = 0;
      auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), d);
      if (ec != std::errc{} || p != s.data() + s.size() || !std::isfinite(d)) return std::nullopt;
      return d;
    }
    default:
      return std::nullopt;
  }
}

namespace {
bool printable(std::string_view s) {
  for (const char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if ((c < 0x20 && c != '\t' && c != '\n' && c != '\r') || c == 0x7f) return false;
  }
  // Bytes >= 0x80 pass: UTF-8 text (ifAlias in other languages) is common, and a binary value
  // that happens to avoid every control byte is rare.
  return true;
}
}  // namespace

std::string Value::as_label() const {
  if (type != Type::kOctets) {
    if (auto n = as_number()) return format_number(*n);
    return text;
  }
  std::string_view s = text;
  while (!s.empty() && s.back() == '\0') s.remove_suffix(1);
  if (printable(s)) return std::string(s);
  static const char* hex = "0123456789abcdef";
  std::string out;
  out.reserve(text.size() * 3);
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (i != 0) out += ':';
    const auto c = static_cast<unsigned char>(text[i]);
    out += hex[c >> 4];
    out += hex[c & 0xF];
  }
  return out;
}

const char* type_name(Value::Type t) noexcept {
  switch (t) {
    case Value::Type::kInteger:
      return "integer";
    case Value::Type::kUnsigned:
      return "gauge32";
    case Value::Type::kCounter32:
      return "counter32";
    case Value::Type::kCounter64:
      return "counter64";
    case Value::Type::kTimeTicks:
      return "timeticks";
    case Value::Type::kOctets:
      return "octets";
    case Value::Type::kOid:
      return "oid";
    case Value::Type::kIpAddress:
      return "ipaddress";
    case Value::Type::kFloat:
      return "float";
    case Value::Type::kNull:
      return "null";
    case Value::Type::kNoSuchObject:
      return "noSuchObject";
    case Value::Type::kNoSuchInstance:
      return "noSuchInstance";
    case Value::Type::kEndOfMibView:
      return "endOfMibView";
    case Value::Type::kOther:
      return "other";
  }
  return "other";
}

}  // namespace outpost::snmp
