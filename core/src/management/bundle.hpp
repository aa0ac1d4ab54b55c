// The management channel's bundle: one file holding a manifest, a payload (a YAML configuration
// or a plugin library) and an Ed25519 signature over everything before it. The parser is free of
// the engine and of any crypto, strict and bounded, and driven alike by the channel, `outpost
// verify`, the tests and the fuzzer. The layout is in docs/management.md.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace outpost::core::mgmt {

inline constexpr std::string_view kBundleMagic = "OPBUNDLE";
inline constexpr uint16_t kBundleFormat = 1;
inline constexpr std::size_t kHeaderSize = 24;  // magic, format, reserved, two lengths
inline constexpr std::size_t kSignatureSize = 64;
inline constexpr std::size_t kMaxManifest = 4096;
inline constexpr std::size_t kMaxConfigPayload = 4u << 20;
inline constexpr std::size_t kMaxPluginPayload = 64u << 20;
inline constexpr std::size_t kMaxBundle =
    kHeaderSize + kMaxManifest + kMaxPluginPayload + kSignatureSize;

enum class BundleKind { config, plugin };
const char* kind_name(BundleKind k);

struct Manifest {
  BundleKind kind = BundleKind::config;
  std::string name;            // plugin bundles: the plugin's name
  std::string version;         // plugin bundles: the version its descriptor must report
  uint64_t serial = 0;         // increases with every bundle of the same kind (and plugin)
  int64_t created = 0;         // unix seconds, informational
  std::string payload_sha256;  // 64 lowercase hex digits
  std::string key_id;          // 16 lowercase hex digits: which public key verifies it
};

// A parsed bundle. The views point into the bytes handed to parse_bundle.
struct Bundle {
  Manifest manifest;
  std::string_view manifest_text;
  std::string_view payload;
  std::string_view signed_bytes;  // header + manifest + payload
  std::array<uint8_t, kSignatureSize> signature{};
};

// Strict: every length checked against the limits and the file's size, every manifest line a
// known key once, with a well-formed value. False with one sentence in `why` on any problem.
bool parse_bundle(std::string_view bytes, Bundle& out, std::string& why);

// The manifest as it is stored in a bundle ("key=value" lines, fixed order).
std::string manifest_text(const Manifest& m);
// Header + manifest + payload: the bytes a signature covers. Append the signature to finish.
std::string bundle_signed_part(const Manifest& m, std::string_view payload);

// A plugin name as the loader accepts one in a file name: [a-z0-9_], 1 to 64 characters.
bool valid_plugin_name(std::string_view name);

}  // namespace outpost::core::mgmt
