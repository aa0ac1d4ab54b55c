#include "cli/bundle.hpp"

#include <charconv>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "management/bundle.hpp"
#include "management/signing.hpp"
#include "management/state.hpp"

namespace outpost::core::cli {
namespace {

using Options = std::multimap<std::string, std::string>;

// --name VALUE pairs out of argv (each option in `known` takes a value); the rest positional.
bool parse(const char* cmd, int argc, char** argv, const std::vector<std::string>& known,
           Options& opts, std::vector<std::string>& positional) {
  for (int i = 0; i < argc; ++i) {
    const std::string o = argv[i];
    if (o == "-h" || o == "--help") return false;  // the caller prints its usage
    if (o.rfind("--", 0) != 0) {
      positional.push_back(o);
      continue;
    }
    bool ok = false;
    for (const auto& k : known) ok = ok || k == o;
    if (!ok) {
      std::fprintf(stderr, "outpost %s: unknown option %s\n", cmd, o.c_str());
      return false;
    }
    if (i + 1 >= argc) {
      std::fprintf(stderr, "outpost %s: %s needs a value\n", cmd, o.c_str());
      return false;
    }
    opts.emplace(o, argv[++i]);
  }
  return true;
}

std::string one(const Options& o, const std::string& key) {
  auto it = o.find(key);
  return it == o.end() ? std::string() : it->second;
}

bool read_whole(const std::string& path, std::string& out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  std::stringstream ss;
  ss << in.rdbuf();
  out = ss.str();
  return true;
}

}  // namespace

int cmd_keygen(int argc, char** argv) {
  Options o;
  std::vector<std::string> pos;
  if (!parse("keygen", argc, argv, {"--out"}, o, pos) || one(o, "--out").empty() || !pos.empty()) {
    std::fprintf(stderr,
                 "usage: outpost keygen --out PREFIX   (writes PREFIX.key and PREFIX.pub)\n");
    return 2;
  }
  const std::string prefix = one(o, "--out");
  std::string id, why;
  if (!mgmt::generate_key_files(prefix, id, why)) {
    std::fprintf(stderr, "outpost keygen: %s\n", why.c_str());
    return 1;
  }
  std::printf(
      "key %s: private key %s.key (mode 0600: keep it off the engines), public key %s.pub\n",
      id.c_str(), prefix.c_str(), prefix.c_str());
  return 0;
}

int cmd_sign(int argc, char** argv) {
  static const char* usage =
      "usage: outpost sign --key PREFIX.key --kind config|plugin [--name NAME --version VERSION]\n"
      "                    --serial N [--created UNIX_SECONDS] --out BUNDLE FILE\n";
  Options o;
  std::vector<std::string> pos;
  if (!parse("sign", argc, argv,
             {"--key", "--kind", "--name", "--version", "--serial", "--created", "--out"}, o,
             pos) ||
      pos.size() != 1 || one(o, "--key").empty() || one(o, "--out").empty() ||
      one(o, "--serial").empty()) {
    std::fputs(usage, stderr);
    return 2;
  }
  auto fail = [](const std::string& msg) {
    std::fprintf(stderr, "outpost sign: %s\n", msg.c_str());
    return 1;
  };
  mgmt::Manifest m;
  const std::string kind = one(o, "--kind");
  if (kind == "config") {
    m.kind = mgmt::BundleKind::config;
    if (!one(o, "--name").empty() || !one(o, "--version").empty())
      return fail("--name and --version are for plugin bundles");
  } else if (kind == "plugin") {
    m.kind = mgmt::BundleKind::plugin;
    m.name = one(o, "--name");
    m.version = one(o, "--version");
    if (!mgmt::valid_plugin_name(m.name))
      return fail("--name: expected the plugin's name ([a-z0-9_], 1 to 64 characters)");
    if (m.version.empty()) return fail("--version: the version the plugin's descriptor reports");
  } else {
    std::fputs(usage, stderr);
    return 2;
  }
  auto number = [](const std::string& s, uint64_t& v) {
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    return !s.empty() && ec == std::errc{} && p == s.data() + s.size();
  };
  if (!number(one(o, "--serial"), m.serial) || m.serial == 0)
    return fail("--serial: expected a positive integer, larger than every earlier bundle's");
  uint64_t created = static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::seconds>(
                                               std::chrono::system_clock::now().time_since_epoch())
                                               .count());
  if (!one(o, "--created").empty() && !number(one(o, "--created"), created))
    return fail("--created: expected unix seconds");
  m.created = static_cast<int64_t>(created);
  std::string payload;
  if (!read_whole(pos[0], payload)) return fail(pos[0] + ": cannot read the file");
  if (m.kind == mgmt::BundleKind::config) {
    // What the engine would refuse before looking at plugins is refused here already.
    auto r = parse_config_text(payload, pos[0]);
    for (const auto& e : r.errors) std::fprintf(stderr, "%s\n", e.str().c_str());
    if (!r.config) return fail(pos[0] + ": not a valid configuration");
    if (r.config->management.enabled)
      return fail(pos[0] + ": a remote configuration cannot carry a management section");
  }
  mgmt::PrivateKey key;
  std::string why, bundle;
  if (!mgmt::load_private_key(one(o, "--key"), key, why)) return fail(why);
  if (!mgmt::make_bundle(key, m, payload, bundle, why)) return fail(why);
  if (!mgmt::write_file_atomic(one(o, "--out"), bundle, why)) return fail(why);
  std::printf("%s: %s bundle%s%s serial %llu, %zu payload bytes, signed with key %s\n",
              one(o, "--out").c_str(), kind.c_str(), m.name.empty() ? "" : " ", m.name.c_str(),
              static_cast<unsigned long long>(m.serial), payload.size(), key.pub.id.c_str());
  return 0;
}

int cmd_verify(int argc, char** argv) {
  Options o;
  std::vector<std::string> pos;
  if (!parse("verify", argc, argv, {"--pub"}, o, pos) || pos.size() != 1 || !o.count("--pub")) {
    std::fprintf(stderr, "usage: outpost verify --pub PREFIX.pub [--pub ...] BUNDLE\n");
    return 2;
  }
  std::vector<mgmt::PublicKey> keys;
  std::string why;
  for (auto [it, end] = o.equal_range("--pub"); it != end; ++it) {
    mgmt::PublicKey k;
    if (!mgmt::load_public_key(it->second, k, why)) {
      std::fprintf(stderr, "outpost verify: %s\n", why.c_str());
      return 1;
    }
    keys.push_back(k);
  }
  std::string bytes;
  if (!read_whole(pos[0], bytes)) {
    std::fprintf(stderr, "outpost verify: %s: cannot read the file\n", pos[0].c_str());
    return 1;
  }
  mgmt::Bundle b;
  const mgmt::Refusal r = mgmt::open_bundle(bytes, keys, b, why);
  if (r != mgmt::Refusal::none) {
    std::fprintf(stderr, "outpost verify: %s: %s: %s\n", pos[0].c_str(), mgmt::refusal_name(r),
                 why.c_str());
    return 1;
  }
  const auto& m = b.manifest;
  std::printf("%s: ok: %s bundle%s%s%s%s serial %llu created %lld, %zu payload bytes, key %s\n",
              pos[0].c_str(), mgmt::kind_name(m.kind), m.name.empty() ? "" : " ", m.name.c_str(),
              m.version.empty() ? "" : " ", m.version.c_str(),
              static_cast<unsigned long long>(m.serial), static_cast<long long>(m.created),
              b.payload.size(), m.key_id.c_str());
  return 0;
}

}  // namespace outpost::core::cli
