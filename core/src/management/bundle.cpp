#include "management/bundle.hpp"

#include <charconv>
#include <cstring>

namespace outpost::core::mgmt {
namespace {

uint64_t read_be(std::string_view b, std::size_t off, std::size_t n) {
  uint64_t v = 0;
  for (std::size_t i = 0; i < n; ++i) v = (v << 8) | static_cast<uint8_t>(b[off + i]);
  return v;
}

void write_be(std::string& out, uint64_t v, std::size_t n) {
  for (std::size_t i = n; i-- > 0;) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

bool is_lower_hex(std::string_view s, std::size_t len) {
  if (s.size() != len) return false;
  for (char c : s)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

// Decimal without sign, leading zeros or overflow.
bool parse_decimal(std::string_view s, uint64_t& out) {
  if (s.empty() || s.size() > 20 || (s.size() > 1 && s[0] == '0')) return false;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc{} && p == s.data() + s.size();
}

bool printable(std::string_view s) {
  for (char c : s)
    if (c < 0x20 || c > 0x7e) return false;
  return true;
}

bool parse_manifest(std::string_view text, Manifest& m, std::string& why) {
  if (text.empty() || text.back() != '\n') {
    why = "the manifest does not end with a newline";
    return false;
  }
  enum : unsigned {
    kKind = 1,
    kName = 2,
    kVersion = 4,
    kSerial = 8,
    kCreated = 16,
    kSha = 32,
    kKeyId = 64
  };
  unsigned seen = 0;
  std::size_t line_no = 0;
  while (!text.empty()) {
    ++line_no;
    const std::size_t nl = text.find('\n');
    const std::string_view line = text.substr(0, nl);
    text.remove_prefix(nl + 1);
    const std::size_t eq = line.find('=');
    if (eq == std::string_view::npos || eq == 0 || !printable(line)) {
      why = "manifest line " + std::to_string(line_no) + " is not key=value in printable ASCII";
      return false;
    }
    const std::string_view key = line.substr(0, eq), value = line.substr(eq + 1);
    auto once = [&](unsigned bit) {
      if (seen & bit) {
        why = "manifest key '" + std::string(key) + "' appears twice";
        return false;
      }
      seen |= bit;
      return true;
    };
    auto bad = [&](const char* expected) {
      why = "manifest " + std::string(key) + ": expected " + expected;
      return false;
    };
    if (key == "kind") {
      if (!once(kKind)) return false;
      if (value == "config")
        m.kind = BundleKind::config;
      else if (value == "plugin")
        m.kind = BundleKind::plugin;
      else
        return bad("config or plugin");
    } else if (key == "name") {
      if (!once(kName)) return false;
      if (!valid_plugin_name(value)) return bad("a plugin name ([a-z0-9_], 1 to 64 characters)");
      m.name = value;
    } else if (key == "version") {
      if (!once(kVersion)) return false;
      if (value.empty() || value.size() > 64) return bad("1 to 64 characters");
      m.version = value;
    } else if (key == "serial") {
      if (!once(kSerial)) return false;
      if (!parse_decimal(value, m.serial) || m.serial == 0) return bad("a positive integer");
    } else if (key == "created") {
      if (!once(kCreated)) return false;
      uint64_t c = 0;
      if (!parse_decimal(value, c) || c > static_cast<uint64_t>(INT64_MAX))
        return bad("unix seconds");
      m.created = static_cast<int64_t>(c);
    } else if (key == "payload_sha256") {
      if (!once(kSha)) return false;
      if (!is_lower_hex(value, 64)) return bad("64 lowercase hex digits");
      m.payload_sha256 = value;
    } else if (key == "key_id") {
      if (!once(kKeyId)) return false;
      if (!is_lower_hex(value, 16)) return bad("16 lowercase hex digits");
      m.key_id = value;
    } else {
      why = "unknown manifest key '" + std::string(key) + "'";
      return false;
    }
  }
  const unsigned common = kKind | kSerial | kCreated | kSha | kKeyId;
  if ((seen & common) != common) {
    why = "the manifest lacks one of kind, serial, created, payload_sha256, key_id";
    return false;
  }
  const bool plugin_keys = (seen & (kName | kVersion)) != 0;
  if (m.kind == BundleKind::plugin && (seen & (kName | kVersion)) != (kName | kVersion)) {
    why = "a plugin bundle's manifest needs name and version";
    return false;
  }
  if (m.kind == BundleKind::config && plugin_keys) {
    why = "a config bundle's manifest has no name or version";
    return false;
  }
  return true;
}

}  // namespace

const char* kind_name(BundleKind k) { return k == BundleKind::plugin ? "plugin" : "config"; }

bool valid_plugin_name(std::string_view name) {
  if (name.empty() || name.size() > 64) return false;
  for (char c : name)
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_')) return false;
  return true;
}

bool parse_bundle(std::string_view bytes, Bundle& out, std::string& why) {
  out = Bundle{};
  if (bytes.size() < kHeaderSize + kSignatureSize) {
    why = "truncated: " + std::to_string(bytes.size()) + " bytes is shorter than any bundle";
    return false;
  }
  if (bytes.size() > kMaxBundle) {
    why = "too large: " + std::to_string(bytes.size()) + " bytes";
    return false;
  }
  if (bytes.substr(0, kBundleMagic.size()) != kBundleMagic) {
    why = "not a bundle (bad magic)";
    return false;
  }
  const uint64_t format = read_be(bytes, 8, 2), reserved = read_be(bytes, 10, 2);
  if (format != kBundleFormat) {
    why = "bundle format " + std::to_string(format) + " is not supported (this engine reads " +
          std::to_string(kBundleFormat) + ")";
    return false;
  }
  if (reserved != 0) {
    why = "reserved header bytes are not zero";
    return false;
  }
  const uint64_t manifest_len = read_be(bytes, 12, 4), payload_len = read_be(bytes, 16, 8);
  if (manifest_len == 0 || manifest_len > kMaxManifest) {
    why = "manifest length " + std::to_string(manifest_len) + " is out of bounds";
    return false;
  }
  if (payload_len > kMaxPluginPayload) {
    why = "payload length " + std::to_string(payload_len) + " is out of bounds";
    return false;
  }
  const uint64_t expected = kHeaderSize + manifest_len + payload_len + kSignatureSize;
  if (bytes.size() != expected) {
    why = (bytes.size() < expected ? "truncated: " : "trailing bytes: ") +
          std::to_string(bytes.size()) + " bytes where the header announces " +
          std::to_string(expected);
    return false;
  }
  out.manifest_text = bytes.substr(kHeaderSize, manifest_len);
  out.payload = bytes.substr(kHeaderSize + manifest_len, payload_len);
  out.signed_bytes = bytes.substr(0, bytes.size() - kSignatureSize);
  std::memcpy(out.signature.data(), bytes.data() + out.signed_bytes.size(), kSignatureSize);
  if (!parse_manifest(out.manifest_text, out.manifest, why)) return false;
  if (out.manifest.kind == BundleKind::config && payload_len > kMaxConfigPayload) {
    why = "a configuration payload of " + std::to_string(payload_len) + " bytes is too large";
    return false;
  }
  return true;
}

std::string manifest_text(const Manifest& m) {
  std::string t = "kind=" + std::string(kind_name(m.kind)) + "\n";
  if (m.kind == BundleKind::plugin) t += "name=" + m.name + "\nversion=" + m.version + "\n";
  t += "serial=" + std::to_string(m.serial) + "\n";
  t += "created=" + std::to_string(m.created) + "\n";
  t += "payload_sha256=" + m.payload_sha256 + "\n";
  t += "key_id=" + m.key_id + "\n";
  return t;
}

std::string bundle_signed_part(const Manifest& m, std::string_view payload) {
  const std::string text = manifest_text(m);
  std::string out(kBundleMagic);
  write_be(out, kBundleFormat, 2);
  write_be(out, 0, 2);
  write_be(out, text.size(), 4);
  write_be(out, payload.size(), 8);
  out += text;
  out += payload;
  return out;
}

}  // namespace outpost::core::mgmt
