// UTF-8 to UTF-16LE, and the uppercasing NTOWFv2 applies to the user name.
#include "internal.hpp"
#include "outpost_lib/ntlm.hpp"

namespace outpost::lib::ntlm {
namespace {

std::vector<char32_t> decode_utf8(std::string_view s) {
  std::vector<char32_t> out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size();) {
    const auto b0 = static_cast<uint8_t>(s[i]);
    std::size_t n = 0;
    char32_t cp = 0, min = 0;
    if (b0 < 0x80) {
      n = 1, cp = b0;
    } else if ((b0 & 0xE0) == 0xC0) {
      n = 2, cp = b0 & 0x1Fu, min = 0x80;
    } else if ((b0 & 0xF0) == 0xE0) {
      n = 3, cp = b0 & 0x0Fu, min = 0x800;
    } else if ((b0 & 0xF8) == 0xF0) {
      n = 4, cp = b0 & 0x07u, min = 0x10000;
    } else {
      throw Error("ntlm: a credential is not valid UTF-8");
    }
    if (i + n > s.size()) throw Error("ntlm: a credential is not valid UTF-8");
    for (std::size_t k = 1; k < n; ++k) {
      const auto b = static_cast<uint8_t>(s[i + k]);
      if ((b & 0xC0) != 0x80) throw Error("ntlm: a credential is not valid UTF-8");
      cp = (cp << 6) | (b & 0x3Fu);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
      throw Error("ntlm: a credential is not valid UTF-8");
    out.push_back(cp);
    i += n;
  }
  return out;
}

// Windows uppercases per UTF-16 code unit with a fixed table (RtlUpcaseUnicodeChar); these are
// the ranges user names are written in. Code points outside them are left as they are.
char32_t upcase(char32_t c) {
  if (c >= 'a' && c <= 'z') return c - 0x20;
  if (c < 0x80) return c;
  if ((c >= 0xE0 && c <= 0xFE && c != 0xF7)) return c - 0x20;
  if (c == 0xFF) return 0x178;
  if (c >= 0x100 && c <= 0x17F) {
    // Latin Extended-A pairs an uppercase letter with the lowercase one after it, except in
    // 0x139-0x148 and 0x179-0x17E, where the pairs start on odd code points.
    const bool odd_start = (c >= 0x139 && c <= 0x148) || (c >= 0x179 && c <= 0x17E);
    if (c == 0x131 || c == 0x138 || c == 0x149 || c == 0x17F) return c;
    if (odd_start) return (c % 2 == 0) ? c - 1 : c;
    return (c % 2 == 1) ? c - 1 : c;
  }
  if (c >= 0x3B1 && c <= 0x3CB && c != 0x3C2) return c - 0x20;  // Greek
  if (c >= 0x430 && c <= 0x44F) return c - 0x20;                // Cyrillic
  if (c >= 0x450 && c <= 0x45F) return c - 0x50;
  return c;
}

std::vector<uint8_t> encode(const std::vector<char32_t>& cps) {
  std::vector<uint8_t> out;
  out.reserve(cps.size() * 2);
  for (char32_t c : cps) {
    if (c >= 0x10000) {
      const char32_t v = c - 0x10000;
      detail::put16(out, static_cast<uint16_t>(0xD800 + (v >> 10)));
      detail::put16(out, static_cast<uint16_t>(0xDC00 + (v & 0x3FF)));
    } else {
      detail::put16(out, static_cast<uint16_t>(c));
    }
  }
  return out;
}

}  // namespace

std::vector<uint8_t> utf16le(std::string_view utf8) { return encode(decode_utf8(utf8)); }

std::vector<uint8_t> utf16le_upper(std::string_view utf8) {
  auto cps = decode_utf8(utf8);
  for (auto& c : cps) c = upcase(c);
  return encode(cps);
}

}  // namespace outpost::lib::ntlm
