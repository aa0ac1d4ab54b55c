// Template persistence: the decoder's templates, options-derived sampling rates and init times
// as a line-based text file, so a restart does not wait for every exporter's next template.
// Unknown or malformed lines are skipped and counted, never trusted.
#include <algorithm>
#include <charconv>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "decoder.hpp"

namespace outpost::netflow {

namespace {
constexpr std::string_view kMagic = "outpost-netflow-state 1";

void put_key(std::string& s, const Decoder::DomainKey& k) {
  static const char* hex = "0123456789abcdef";
  s += std::to_string(k.exporter.family);
  s += ' ';
  for (uint8_t b : k.exporter.addr) {
    s += hex[b >> 4];
    s += hex[b & 15];
  }
  s += ' ' + std::to_string(k.version) + ' ' + std::to_string(k.domain);
}

// Splits a line into space-separated tokens.
std::vector<std::string_view> tokens(std::string_view line) {
  std::vector<std::string_view> out;
  std::size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && line[i] == ' ') ++i;
    const std::size_t b = i;
    while (i < line.size() && line[i] != ' ') ++i;
    if (i > b) out.push_back(line.substr(b, i - b));
  }
  return out;
}

template <typename T>
bool num(std::string_view s, T& v) {
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  return ec == std::errc{} && p == s.data() + s.size();
}

int hexval(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

bool get_key(const std::vector<std::string_view>& t, Decoder::DomainKey& k) {
  if (t.size() < 5) return false;
  unsigned fam = 0;
  if (!num(t[1], fam) || (fam != 4 && fam != 6) || t[2].size() != 32) return false;
  k.exporter.family = static_cast<uint8_t>(fam);
  for (std::size_t i = 0; i < 16; ++i) {
    const int hi = hexval(t[2][2 * i]), lo = hexval(t[2][2 * i + 1]);
    if (hi < 0 || lo < 0) return false;
    k.exporter.addr[i] = static_cast<uint8_t>(hi * 16 + lo);
  }
  return num(t[3], k.version) && (k.version == 9 || k.version == 10) && num(t[4], k.domain);
}

// "a:b" pairs.
template <typename A, typename B>
bool pair_of(std::string_view s, A& a, B& b) {
  const auto c = s.find(':');
  return c != std::string_view::npos && num(s.substr(0, c), a) && num(s.substr(c + 1), b);
}
}  // namespace

std::string Decoder::save() const {
  std::string s(kMagic);
  s += '\n';
  for (const auto& key : lru_) {
    const Template& t = templates_.at(key).tpl;
    s += "T ";
    put_key(s, key.domain);
    s += ' ' + std::to_string(key.id) + ' ' + (t.options ? "1" : "0") + ' ' +
         std::to_string(t.scope_count) + ' ' + std::to_string(t.fields.size());
    for (const auto& f : t.fields)
      s +=
          ' ' + std::to_string(f.id) + ':' + std::to_string(f.length) + ':' + std::to_string(f.pen);
    s += '\n';
  }
  for (const auto& [key, d] : domains_) {
    s += "D ";
    put_key(s, key);
    s += ' ' + std::to_string(d.default_rate) + ' ' + std::to_string(d.system_init_ms) + ' ' +
         std::to_string(d.sampler_rates.size());
    for (const auto& [id, rate] : d.sampler_rates)
      s += ' ' + std::to_string(id) + ':' + std::to_string(rate);
    s += '\n';
  }
  return s;
}

std::size_t Decoder::load(std::string_view text, std::size_t* bad_out) {
  std::size_t loaded = 0, bad = 0;
  bool first = true;
  while (!text.empty()) {
    const auto nl = text.find('\n');
    const std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view{} : text.substr(nl + 1);
    if (first) {
      first = false;
      if (line != kMagic) {  // another format or garbage: trust none of it
        ++bad;
        break;
      }
      continue;
    }
    if (line.empty()) continue;
    const auto t = tokens(line);
    DomainKey key;
    if (t.empty() || !get_key(t, key)) {
      ++bad;
      continue;
    }
    if (t[0] == "T" && t.size() >= 9) {
      uint16_t id = 0, scope = 0;
      unsigned opt = 0;
      std::size_t n = 0;
      if (!num(t[5], id) || id < 256 || !num(t[6], opt) || opt > 1 || !num(t[7], scope) ||
          !num(t[8], n) || n != t.size() - 9) {
        ++bad;
        continue;
      }
      Template tpl;
      tpl.options = opt == 1;
      tpl.scope_count = scope;
      tpl.fields.resize(n);
      bool ok = true;
      for (std::size_t i = 0; i < n && ok; ++i) {
        const auto s = t[9 + i];
        const auto c1 = s.find(':');
        const auto c2 = c1 == std::string_view::npos ? c1 : s.find(':', c1 + 1);
        ok = c2 != std::string_view::npos && num(s.substr(0, c1), tpl.fields[i].id) &&
             num(s.substr(c1 + 1, c2 - c1 - 1), tpl.fields[i].length) &&
             num(s.substr(c2 + 1), tpl.fields[i].pen);
      }
      if (!ok || !finish_template(key.version, tpl)) {
        ++bad;
        continue;
      }
      learn(TemplateKey{key, id}, std::move(tpl));
      ++loaded;
    } else if (t[0] == "D" && t.size() >= 8) {
      DomainState d;
      std::size_t n = 0;
      if (!num(t[5], d.default_rate) || !num(t[6], d.system_init_ms) || !num(t[7], n) ||
          n != t.size() - 8 || n > kMaxSamplers) {
        ++bad;
        continue;
      }
      bool ok = true;
      for (std::size_t i = 0; i < n && ok; ++i) {
        uint64_t id = 0;
        uint32_t rate = 0;
        ok = pair_of(t[8 + i], id, rate);
        if (ok) d.sampler_rates[id] = rate;
      }
      if (!ok) {
        ++bad;
        continue;
      }
      domain_state(key) = std::move(d);
    } else {
      ++bad;
    }
  }
  totals_.templates_received -= std::min<uint64_t>(totals_.templates_received, loaded);
  if (bad_out) *bad_out = bad;
  return loaded;
}

}  // namespace outpost::netflow
