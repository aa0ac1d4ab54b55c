#include "rules.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <stdexcept>

namespace outpost::snmp_trap {
namespace {

// Longest text a regex looks at: std::regex recurses per character, and a varbind may hold
// 64 KiB.
constexpr std::size_t kMaxRegexInput = 1024;

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

}  // namespace

Pairs parse_pairs(std::string_view spec) {
  Pairs out;
  std::size_t i = 0;
  const std::size_t n = spec.size();
  bool first = true;
  while (true) {
    while (i < n && is_space(spec[i])) ++i;
    if (i >= n) break;
    std::string key;
    while (i < n && !is_space(spec[i]) && spec[i] != '=') key += spec[i++];
    if (i >= n || spec[i] != '=') {
      if (first && !key.empty()) {  // a bare first word: the name
        out.emplace_back("name", key);
        first = false;
        continue;
      }
      throw std::invalid_argument("expected key=value, got '" + key + "'");
    }
    ++i;  // '='
    std::string value;
    if (i < n && (spec[i] == '\'' || spec[i] == '"')) {
      const char q = spec[i++];
      bool closed = false;
      while (i < n) {
        char c = spec[i++];
        if (c == q) {
          closed = true;
          break;
        }
        if (c == '\\' && q == '"' && i < n) c = spec[i++];
        value += c;
      }
      if (!closed) throw std::invalid_argument("unterminated quote in the value of '" + key + "'");
      if (i < n && !is_space(spec[i]))
        throw std::invalid_argument("expected a space after the quoted value of '" + key + "'");
    } else {
      while (i < n && !is_space(spec[i])) value += spec[i++];
    }
    if (key.empty()) throw std::invalid_argument("a value without a key: '=" + value + "'");
    out.emplace_back(std::move(key), std::move(value));
    first = false;
  }
  return out;
}

bool Cidr::contains(const uint8_t* a, uint8_t fam) const noexcept {
  uint8_t mapped[4];
  if (fam == 6 && family == 4) {
    // An IPv4 sender on a dual-stack socket arrives as ::ffff:a.b.c.d.
    static const uint8_t prefix96[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF};
    if (!std::equal(prefix96, prefix96 + 12, a)) return false;
    std::copy(a + 12, a + 16, mapped);
    a = mapped;
    fam = 4;
  }
  if (fam != family) return false;
  unsigned bits = prefix;
  for (std::size_t i = 0; bits > 0; ++i) {
    const unsigned take = std::min(bits, 8u);
    const auto mask = static_cast<uint8_t>(0xFF << (8 - take));
    if ((a[i] & mask) != (addr[i] & mask)) return false;
    bits -= take;
  }
  return true;
}

std::optional<Cidr> parse_cidr(std::string_view text) {
  Cidr c;
  std::string host(text);
  const auto slash = text.find('/');
  if (slash != std::string_view::npos) host = std::string(text.substr(0, slash));
  if (::inet_pton(AF_INET, host.c_str(), c.addr.data()) == 1) {
    c.family = 4;
    c.prefix = 32;
  } else if (::inet_pton(AF_INET6, host.c_str(), c.addr.data()) == 1) {
    c.family = 6;
    c.prefix = 128;
  } else {
    return std::nullopt;
  }
  if (slash != std::string_view::npos) {
    const std::string_view p = text.substr(slash + 1);
    unsigned v = 0;
    auto [ptr, ec] = std::from_chars(p.data(), p.data() + p.size(), v);
    if (ec != std::errc{} || ptr != p.data() + p.size() || p.empty() || v > c.prefix)
      return std::nullopt;
    c.prefix = v;
  }
  return c;
}

std::optional<uint32_t> parse_severity(std::string_view s) {
  std::string l;
  for (const char c : s) l += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (l == "emerg" || l == "emergency") return 0;
  if (l == "alert") return 1;
  if (l == "crit" || l == "critical") return 2;
  if (l == "err" || l == "error") return 3;
  if (l == "warning" || l == "warn") return 4;
  if (l == "notice") return 5;
  if (l == "info" || l == "information") return 6;
  if (l == "debug") return 7;
  return std::nullopt;
}

Rule make_rule(const Pairs& pairs, const MibMap& mibs) {
  Rule r;
  auto oid_of = [&mibs](const std::string& what, const std::string& v) {
    auto o = mibs.resolve(v);
    if (!o)
      throw std::invalid_argument(what + " '" + v +
                                  "' is neither a numeric OID nor a name of the loaded MIBs");
    return *o;
  };
  for (const auto& [k, v] : pairs) {
    if (k == "name") {
      r.name = v;
    } else if (k == "oid" || k == "trap") {
      r.trap_oids.push_back(oid_of("oid", v));
    } else if (k == "source") {
      auto c = parse_cidr(v);
      if (!c) throw std::invalid_argument("source '" + v + "' is not an address or CIDR");
      r.sources.push_back(*c);
    } else if (k == "varbind") {
      Rule::VarbindCond c;
      c.prefix = oid_of("varbind", v);
      c.spelled = v;
      r.varbinds.push_back(std::move(c));
    } else if (k == "equals" || k == "regex") {
      if (r.varbinds.empty() || r.varbinds.back().op != Rule::VarbindCond::Op::kPresent)
        throw std::invalid_argument("'" + k + "' must follow its own 'varbind'");
      auto& c = r.varbinds.back();
      c.value = v;
      if (k == "equals") {
        c.op = Rule::VarbindCond::Op::kEquals;
      } else {
        c.op = Rule::VarbindCond::Op::kRegex;
        try {
          c.re = std::regex(v, std::regex::ECMAScript | std::regex::optimize);
        } catch (const std::regex_error& e) {
          throw std::invalid_argument("regex '" + v + "': " + e.what());
        }
      }
    } else if (k == "severity") {
      auto s = parse_severity(v);
      if (!s)
        throw std::invalid_argument(
            "severity '" + v +
            "': expected emerg, alert, crit, err, warning, notice, info or debug");
      r.severity = *s;
    } else if (k == "message") {
      r.message = v;
    } else {
      throw std::invalid_argument(
          "unknown key '" + k +
          "' (expected name, oid, source, varbind, equals, regex, severity, message)");
    }
  }
  if (r.name.empty()) throw std::invalid_argument("a rule needs a name");
  return r;
}

bool Rule::matches(const TrapView& t) const {
  if (!trap_oids.empty()) {
    bool any = false;
    for (const auto& p : trap_oids)
      if (t.trap_oid != nullptr && outpost::snmp::starts_with(*t.trap_oid, p)) any = true;
    if (!any) return false;
  }
  if (!sources.empty()) {
    bool any = false;
    for (const auto& c : sources)
      if (t.sender != nullptr && c.contains(t.sender, t.family)) any = true;
    if (!any) return false;
  }
  for (const auto& c : varbinds) {
    bool any = false;
    for (const auto& vb : t.varbinds) {
      if (vb.oid == nullptr || !outpost::snmp::starts_with(*vb.oid, c.prefix)) continue;
      switch (c.op) {
        case VarbindCond::Op::kPresent:
          any = true;
          break;
        case VarbindCond::Op::kEquals:
          any = vb.text == c.value || (!vb.alt.empty() && vb.alt == c.value);
          break;
        case VarbindCond::Op::kRegex: {
          auto search = [&c](const std::string& s) {
            return std::regex_search(
                s.begin(),
                s.begin() + static_cast<std::ptrdiff_t>(std::min(s.size(), kMaxRegexInput)), c.re);
          };
          any = search(vb.text) || (!vb.alt.empty() && search(vb.alt));
          break;
        }
      }
      if (any) break;
    }
    if (!any) return false;
  }
  return true;
}

std::string Rule::render(const TrapView& t) const {
  if (message.empty()) return t.summary;
  std::string out;
  std::size_t i = 0;
  while (i < message.size()) {
    const char c = message[i];
    if (c != '{') {
      out += c;
      ++i;
      continue;
    }
    const std::size_t close = message.find('}', i + 1);
    if (close == std::string::npos) {
      out.append(message, i, std::string::npos);
      break;
    }
    const std::string key = message.substr(i + 1, close - i - 1);
    i = close + 1;
    if (key == "trap")
      out += t.trap_name;
    else if (key == "trap_oid")
      out += t.trap_oid ? outpost::snmp::to_string(*t.trap_oid) : "";
    else if (key == "source")
      out += t.source;
    else if (key == "rule")
      out += name;
    else if (key == "summary")
      out += t.summary;
    else if (auto f = t.fields.find(key); f != t.fields.end())
      out += f->second;
    else {
      // A varbind by label, full name or numeric OID (prefix).
      const auto numeric = outpost::snmp::parse_oid(key);
      for (const auto& vb : t.varbinds) {
        if (vb.label == key || vb.name == key ||
            (numeric && vb.oid != nullptr && outpost::snmp::starts_with(*vb.oid, *numeric))) {
          out += vb.text;
          break;
        }
      }
    }
  }
  return out;
}

}  // namespace outpost::snmp_trap
