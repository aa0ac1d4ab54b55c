// The management channel's bundles: signing and verification, and a strict parser that refuses
// every truncation and every flipped bit with a reason, never a crash.
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <filesystem>
#include <string>

#include "config/config.hpp"
#include "management/bundle.hpp"
#include "management/signing.hpp"

using namespace outpost::core;
using namespace outpost::core::mgmt;
namespace fs = std::filesystem;

namespace {

struct TempDir {
  fs::path path;
  TempDir() {
    std::string t = (fs::temp_directory_path() / "outpost-bundle-XXXXXX").string();
    REQUIRE(mkdtemp(t.data()) != nullptr);
    path = t;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

struct Keys {
  TempDir dir;
  PrivateKey priv;
  PublicKey pub;
  explicit Keys(const std::string& name = "k") {
    std::string id, why;
    const std::string prefix = (dir.path / name).string();
    REQUIRE(generate_key_files(prefix, id, why));
    REQUIRE(load_private_key(prefix + ".key", priv, why));
    REQUIRE(load_public_key(prefix + ".pub", pub, why));
    REQUIRE(pub.id == id);
  }
};

Manifest config_manifest(uint64_t serial) {
  Manifest m;
  m.kind = BundleKind::config;
  m.serial = serial;
  m.created = 1700000000;
  return m;
}

std::string signed_bundle(const Keys& k, const Manifest& m, const std::string& payload) {
  std::string out, why;
  REQUIRE(make_bundle(k.priv, m, payload, out, why));
  return out;
}

// A bundle around any manifest text (signature zeros): for the parser's own checks.
std::string raw_bundle(const std::string& manifest, const std::string& payload) {
  std::string out(kBundleMagic);
  auto be = [&](uint64_t v, int n) {
    for (int i = n - 1; i >= 0; --i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
  };
  be(kBundleFormat, 2);
  be(0, 2);
  be(manifest.size(), 4);
  be(payload.size(), 8);
  return out + manifest + payload + std::string(kSignatureSize, '\0');
}

const std::string kSha(64, 'a');
const std::string kKeyId(16, 'b');

std::string parse_error(const std::string& bytes) {
  Bundle b;
  std::string why;
  CHECK_FALSE(parse_bundle(bytes, b, why));
  return why;
}

}  // namespace

TEST_CASE("a signed bundle opens with its key and carries its manifest and payload") {
  Keys k;
  const std::string yaml = "engine: {id: remote}\n";
  const std::string bytes = signed_bundle(k, config_manifest(7), yaml);
  Bundle b;
  std::string why;
  REQUIRE(open_bundle(bytes, {k.pub}, b, why) == Refusal::none);
  CHECK(b.manifest.kind == BundleKind::config);
  CHECK(b.manifest.serial == 7);
  CHECK(b.manifest.created == 1700000000);
  CHECK(b.manifest.key_id == k.pub.id);
  CHECK(b.manifest.payload_sha256 == sha256_hex(yaml));
  CHECK(b.payload == yaml);
  CHECK(bytes.size() == kHeaderSize + b.manifest_text.size() + yaml.size() + kSignatureSize);
}

TEST_CASE("a plugin bundle names its plugin and version") {
  Keys k;
  Manifest m;
  m.kind = BundleKind::plugin;
  m.name = "tcp";
  m.version = "2.1.0";
  m.serial = 3;
  const std::string bytes = signed_bundle(k, m,
                                          std::string("\x7f"
                                                      "ELF",
                                                      4));
  Bundle b;
  std::string why;
  REQUIRE(open_bundle(bytes, {k.pub}, b, why) == Refusal::none);
  CHECK(b.manifest.name == "tcp");
  CHECK(b.manifest.version == "2.1.0");
}

TEST_CASE("a bundle signed by a key that is not trusted is refused as bad_signature") {
  Keys signer("a"), trusted("b");
  const std::string bytes = signed_bundle(signer, config_manifest(1), "{}\n");
  Bundle b;
  std::string why;
  CHECK(open_bundle(bytes, {trusted.pub}, b, why) == Refusal::bad_signature);
  CHECK(why == "signed with key " + signer.pub.id + ", which is not a trusted key");
  CHECK(open_bundle(bytes, {trusted.pub, signer.pub}, b, why) == Refusal::none);
}

TEST_CASE("every truncation of a bundle is refused as corrupt") {
  Keys k;
  const std::string bytes = signed_bundle(k, config_manifest(1), "engine: {id: x}\n");
  for (std::size_t len = 0; len < bytes.size(); ++len) {
    Bundle b;
    std::string why;
    INFO("length " << len);
    CHECK(open_bundle(bytes.substr(0, len), {k.pub}, b, why) == Refusal::corrupt);
    CHECK_FALSE(why.empty());
  }
  CHECK(parse_error(bytes.substr(0, 10)) == "truncated: 10 bytes is shorter than any bundle");
  CHECK(parse_error(bytes.substr(0, bytes.size() - 1)).rfind("truncated: ", 0) == 0);
  CHECK(parse_error(bytes + "x").rfind("trailing bytes: ", 0) == 0);
}

TEST_CASE("every flipped bit of a bundle is refused") {
  Keys k;
  const std::string bytes = signed_bundle(k, config_manifest(1), "engine: {id: x}\n");
  for (std::size_t i = 0; i < bytes.size(); ++i)
    for (int bit = 0; bit < 8; ++bit) {
      std::string bad = bytes;
      bad[i] = static_cast<char>(bad[i] ^ (1 << bit));
      Bundle b;
      std::string why;
      const Refusal r = open_bundle(bad, {k.pub}, b, why);
      INFO("byte " << i << " bit " << bit << ": " << why);
      CHECK((r == Refusal::bad_signature || r == Refusal::corrupt));
    }
}

TEST_CASE("a tampered payload fails the signature") {
  Keys k;
  std::string bytes = signed_bundle(k, config_manifest(1), "engine: {id: x}\n");
  bytes[bytes.size() - kSignatureSize - 3] = 'y';
  Bundle b;
  std::string why;
  CHECK(open_bundle(bytes, {k.pub}, b, why) == Refusal::bad_signature);
  CHECK(why.rfind("the signature does not verify with key " + k.pub.id, 0) == 0);
}

TEST_CASE("the manifest parser is strict") {
  const std::string base =
      "kind=config\nserial=1\ncreated=5\npayload_sha256=" + kSha + "\nkey_id=" + kKeyId + "\n";
  Bundle b;
  std::string why;
  CHECK(parse_bundle(raw_bundle(base, "x"), b, why));
  CHECK(parse_error(raw_bundle(base + "color=blue\n", "x")) == "unknown manifest key 'color'");
  CHECK(parse_error(raw_bundle(base + "serial=2\n", "x")) == "manifest key 'serial' appears twice");
  CHECK(parse_error(raw_bundle("kind=config\n", "x")) ==
        "the manifest lacks one of kind, serial, created, payload_sha256, key_id");
  CHECK(parse_error(raw_bundle(base + "name=tcp\n", "x")) ==
        "a config bundle's manifest has no name or version");
  CHECK(parse_error(raw_bundle("kind=plugin\nname=tcp\nserial=1\ncreated=5\npayload_sha256=" +
                                   kSha + "\nkey_id=" + kKeyId + "\n",
                               "x")) == "a plugin bundle's manifest needs name and version");
  CHECK(parse_error(raw_bundle("kind=plugin\nname=../x\n", "x")) ==
        "manifest name: expected a plugin name ([a-z0-9_], 1 to 64 characters)");
  CHECK(parse_error(raw_bundle("kind=config\nserial=01\n", "x")) ==
        "manifest serial: expected a positive integer");
  CHECK(parse_error(raw_bundle("kind=config\nserial=0\n", "x")) ==
        "manifest serial: expected a positive integer");
  CHECK(parse_error(raw_bundle("kind=config\nserial=99999999999999999999\n", "x")) ==
        "manifest serial: expected a positive integer");
  CHECK(parse_error(raw_bundle("kind=firmware\n", "x")) ==
        "manifest kind: expected config or plugin");
  CHECK(parse_error(raw_bundle("kind=config", "x")) == "the manifest does not end with a newline");
  CHECK(parse_error(raw_bundle("kind=config\n\n", "x")) ==
        "manifest line 2 is not key=value in printable ASCII");
  CHECK(parse_error(raw_bundle("kind=con\tfig\n", "x")) ==
        "manifest line 1 is not key=value in printable ASCII");
  CHECK(parse_error(raw_bundle("payload_sha256=ABC\n", "x")) ==
        "manifest payload_sha256: expected 64 lowercase hex digits");
}

TEST_CASE("the header's lengths are bounded before anything is read") {
  std::string big = raw_bundle("kind=config\n", "");
  big[16] = '\x7f';  // payload length far beyond the limit
  CHECK(parse_error(big).rfind("payload length ", 0) == 0);
  std::string no_manifest = raw_bundle("", "x");
  CHECK(parse_error(no_manifest) == "manifest length 0 is out of bounds");
  std::string magic = raw_bundle("kind=config\n", "x");
  magic[0] = 'X';
  CHECK(parse_error(magic) == "not a bundle (bad magic)");
  std::string format = raw_bundle("kind=config\n", "x");
  format[9] = 2;
  CHECK(parse_error(format) == "bundle format 2 is not supported (this engine reads 1)");
  const std::string config_payload(kMaxConfigPayload + 1, 'x');
  CHECK(
      parse_error(raw_bundle(
          "kind=config\nserial=1\ncreated=5\npayload_sha256=" + kSha + "\nkey_id=" + kKeyId + "\n",
          config_payload)) == "a configuration payload of 4194305 bytes is too large");
}

TEST_CASE("keygen writes a private key only its owner reads, and never over another") {
  TempDir dir;
  const std::string prefix = (dir.path / "mgmt").string();
  std::string id, why;
  REQUIRE(generate_key_files(prefix, id, why));
  CHECK(id.size() == 16);
  struct stat st {};
  REQUIRE(stat((prefix + ".key").c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  CHECK_FALSE(generate_key_files(prefix, id, why));
  CHECK(why.find("File exists") != std::string::npos);
  PublicKey pub;
  CHECK_FALSE(load_public_key(prefix + ".key", pub, why));
  CHECK(why == prefix + ".key: not a PEM public key");
}

TEST_CASE("the management section is read and checked like every other") {
  auto r = parse_config_text(
      "management:\n  url: https://mgmt.example/outpost\n  interval: 2m\n  public_keys: [a.pub]\n"
      "  ca_file: ca.pem\n  state_dir: /var/lib/outpost/mgmt\n",
      "m.yaml");
  REQUIRE(r.config);
  const auto& m = r.config->management;
  CHECK(m.enabled);
  CHECK(m.url == "https://mgmt.example/outpost");
  CHECK(m.interval_s == 120);
  CHECK(m.public_keys == std::vector<std::string>{"a.pub"});
  CHECK(m.ca_file == "ca.pem");
  CHECK(m.proxy.empty());

  auto bad = parse_config_text(
      "management:\n  url: http://plain\n  public_keys: []\n  proxies: x\n", "m.yaml");
  REQUIRE_FALSE(bad.config);
  std::vector<std::string> errors;
  for (const auto& e : bad.errors) errors.push_back(e.str());
  CHECK(errors == std::vector<std::string>{
                      "m.yaml:4:3: management.proxies: unknown key (expected one of: ca_file, "
                      "client_cert, client_key, interval, proxy, public_keys, state_dir, url)",
                      "m.yaml:2:8: management.url: expected an https:// URL, got 'http://plain'",
                      "m.yaml:3:16: management.public_keys: expected a list of at least one "
                      "public key file"});
}
