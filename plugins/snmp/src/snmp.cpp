// The snmp poller plugin: settings, device profiles (re-read when their files change) and each
// target's SNMP parameters. Polling itself runs on the shared poller runtime
// (plugins/lib/async_poller) with one net-snmp session per device (session.hpp); what a poll
// read becomes metrics in device.hpp (a Collector of profile objects, collector.hpp) or events
// (a diagnostic get/walk, probe.hpp); net-snmp's process-wide state is library.hpp's.
#include <dlfcn.h>
#include <sys/stat.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <mutex>
#include <outpost/sdk.hpp>
#include <outpost_lib/async_poller.hpp>

#include "cli.hpp"
#include "collector.hpp"
#include "library.hpp"
#include "probe.hpp"
#include "session.hpp"
#include "snmp/oid.hpp"
#include "snmp/profile.hpp"

namespace {

namespace fs = std::filesystem;
namespace netsnmp = outpost::snmp::netsnmp;
using outpost::Error;
using outpost::snmp::SessionDriver;
using outpost::snmp::SnmpJob;
using outpost::snmp::V3;

constexpr int64_t kSecond = 1'000'000'000;
constexpr double kMaxSeconds = 86400.0;

// The plugin directory of this very library, found through one of its own addresses.
fs::path plugin_dir() {
  Dl_info info{};
  if (::dladdr(reinterpret_cast<const void*>(&plugin_dir), &info) == 0 || info.dli_fname == nullptr)
    return {};
  std::error_code ec;
  fs::path p = fs::weakly_canonical(fs::path(info.dli_fname), ec);
  return (ec ? fs::path(info.dli_fname) : p).parent_path();
}

class SnmpPoller final : public outpost::Poller {
 public:
  SnmpPoller(outpost::Host host, const outpost::Config& cfg)
      : host_(host), driver_(host, driver_settings(cfg)), rt_(host, driver_, runtime_options(cfg)) {
    driver_.attach(rt_);
    auto int_in = [&](const char* k, int64_t d, int64_t lo, int64_t hi) {
      const int64_t v = cfg.get_int(k, d);
      if (v < lo || v > hi)
        throw Error(OUTPOST_E_CONFIG, std::string(k) + " must be between " + std::to_string(lo) +
                                          " and " + std::to_string(hi));
      return v;
    };
    retries_ = static_cast<int>(int_in("retries", 2, 0, 10));
    max_repetitions_ = static_cast<int>(int_in("max_repetitions", 10, 1, 1000));
    max_oids_ = static_cast<std::size_t>(int_in("max_oids_per_request", 16, 2, 128));
    max_rows_ = static_cast<std::size_t>(int_in("max_rows", 10000, 1, 10'000'000));
    const double t = cfg.get_seconds("request_timeout", 1.0);
    if (t <= 0) throw Error(OUTPOST_E_CONFIG, "request_timeout must be positive");
    request_timeout_ns_ = static_cast<int64_t>(std::min(t, kMaxSeconds) * 1e9);
    if (cfg.get_bool("builtin_profiles", true)) {
      const fs::path d = plugin_dir();
      if (!d.empty()) profile_dirs_.push_back(d / "snmp-profiles");
    }
    for (auto& d : cfg.get_list("profile_dirs")) profile_dirs_.emplace_back(d);
    netsnmp::init_library();
    netsnmp::add_log_host(this, host_);
    reload_profiles(true);
  }
  ~SnmpPoller() override {
    try {
      stop();
    } catch (...) {  // a destructor must not throw
    }
    netsnmp::remove_log_host(this);
  }
  SnmpPoller(const SnmpPoller&) = delete;
  SnmpPoller& operator=(const SnmpPoller&) = delete;

  // `outpost snmp get|walk ...` (cli.cpp).
  static outpost::CommandPlan command(std::span<const std::string_view> args) {
    return outpost::snmp::command(args);
  }

  static std::vector<outpost_field> config_fields() {
    using outpost::field;
    std::vector<outpost_field> fields = {
        field("profile_dirs", OUTPOST_FIELD_LIST,
              "Directories of device profile YAML files, read after the shipped ones; a profile "
              "of the same name replaces a shipped one. Files are re-read when they change"),
        field("builtin_profiles", OUTPOST_FIELD_BOOL,
              "Load the profiles shipped beside the plugin (<plugin dir>/snmp-profiles)", "true"),
        field("default_profile", OUTPOST_FIELD_STRING,
              "Profile of devices whose sysObjectID no profile claims", "generic"),
        field("request_timeout", OUTPOST_FIELD_DURATION,
              "Least wait for an answer before a retry; a device measured slower gets longer "
              "(its smoothed response time plus four deviations, doubled per unanswered retry)",
              "1s"),
        field("max_request_timeout", OUTPOST_FIELD_DURATION,
              "Most an adaptive wait grows to (the poll deadline bounds every wait)", "10s"),
        field("retries", OUTPOST_FIELD_INT, "Retries of an unanswered request", "2"),
        field("max_repetitions", OUTPOST_FIELD_INT, "GETBULK max-repetitions of table walks", "10"),
        field("max_oids_per_request", OUTPOST_FIELD_INT,
              "Varbinds per GET and columns per walk request", "16"),
        field("max_rows", OUTPOST_FIELD_INT, "Rows read per table column at most", "10000"),
    };
    // max_concurrent (devices polled at once, one UDP socket each), dns_servers, ...
    for (auto& f : outpost::lib::async_poller_fields("512")) fields.push_back(f);
    return fields;
  }
  static std::vector<outpost_field> target_fields() {
    using outpost::field;
    return {
        field("version", OUTPOST_FIELD_STRING, "SNMP version: 1, 2c or 3", "2c"),
        field("port", OUTPOST_FIELD_INT, "Agent UDP port", "161"),
        field("community", OUTPOST_FIELD_STRING, "v1/v2c community, literally"),
        field("community_ref", OUTPOST_FIELD_SECRET, "v1/v2c community, a credential reference"),
        field("user", OUTPOST_FIELD_STRING, "v3 user (securityName)"),
        field("security_level", OUTPOST_FIELD_STRING,
              "v3 noAuthNoPriv, authNoPriv or authPriv; default: from the passwords given"),
        field("auth_protocol", OUTPOST_FIELD_STRING,
              "v3 MD5, SHA, SHA-224, SHA-256, SHA-384 or SHA-512", "SHA"),
        field("auth_password", OUTPOST_FIELD_STRING, "v3 authentication password, literally"),
        field("auth_password_ref", OUTPOST_FIELD_SECRET, "v3 authentication password, a reference"),
        field("priv_protocol", OUTPOST_FIELD_STRING,
              "v3 DES, AES (AES-128), AES-192, AES-256 (or -C variants)", "AES"),
        field("priv_password", OUTPOST_FIELD_STRING, "v3 privacy password, literally"),
        field("priv_password_ref", OUTPOST_FIELD_SECRET, "v3 privacy password, a reference"),
        field("context", OUTPOST_FIELD_STRING, "v3 context name"),
        field("profile", OUTPOST_FIELD_STRING,
              "Profile name(s), comma-separated; default: chosen by sysObjectID"),
        field("retries", OUTPOST_FIELD_INT, "Retries of an unanswered request (plugin's default)"),
        field("request_timeout", OUTPOST_FIELD_DURATION, "Wait for one answer (plugin's default)"),
        field("max_repetitions", OUTPOST_FIELD_INT, "GETBULK max-repetitions (plugin's default)"),
        field("get", OUTPOST_FIELD_LIST,
              "Diagnostics: numeric OIDs to GET instead of the profile; every varbind answered "
              "becomes an snmp.varbind event"),
        field("walk", OUTPOST_FIELD_LIST,
              "Diagnostics: numeric OIDs whose subtrees are walked (GETBULK, v1 GETNEXT) instead "
              "of the profile; every varbind answered becomes an snmp.varbind event"),
    };
  }

  void start() override { rt_.start(); }
  void stop() override { rt_.stop(); }

  void poll(const outpost::PollRequest& req) override {
    reload_profiles(false);
    std::shared_ptr<const outpost::snmp::ProfileSet> profiles;
    {
      std::lock_guard g(profiles_mu_);
      profiles = profiles_;
    }
    std::vector<std::unique_ptr<outpost::lib::PollJob>> jobs;
    jobs.reserve(req.size());
    for (std::size_t i = 0; i < req.size(); ++i) {
      const outpost::Target t = req[i];
      try {
        jobs.push_back(make_job(t, req.id(), profiles));
      } catch (const Error& e) {
        host_.complete(req.id(), t.id(), e.status(), e.what());
      }
    }
    rt_.submit(std::move(jobs), req.deadline_ns());
  }

 private:
  static SessionDriver::Settings driver_settings(const outpost::Config& cfg) {
    SessionDriver::Settings s;
    s.default_profile = cfg.get("default_profile", "generic");
    const double m = cfg.get_seconds("max_request_timeout", 10.0);
    if (m <= 0) throw Error(OUTPOST_E_CONFIG, "max_request_timeout must be positive");
    s.max_request_timeout_ns = static_cast<int64_t>(std::min(m, kMaxSeconds) * 1e9);
    return s;
  }
  static outpost::lib::AsyncPollerOptions runtime_options(const outpost::Config& cfg) {
    auto o = outpost::lib::async_poller_options(cfg, "snmp", 512);
    o.socktype = SOCK_DGRAM;
    return o;
  }

  // ---- profiles ------------------------------------------------------------------------------

  // What the profile directories hold: names, sizes and times of their YAML files.
  std::string profile_signature() const {
    std::string sig;
    for (const auto& d : profile_dirs_) {
      std::error_code ec;
      std::vector<std::string> parts;
      for (const auto& e : fs::directory_iterator(d, ec)) {
        const auto ext = e.path().extension();
        if (ext != ".yaml" && ext != ".yml") continue;
        struct stat st {};
        if (::stat(e.path().c_str(), &st) != 0) continue;
        parts.push_back(e.path().string() + ":" + std::to_string(st.st_size) + ":" +
                        std::to_string(st.st_mtim.tv_sec) + "." +
                        std::to_string(st.st_mtim.tv_nsec));
      }
      std::sort(parts.begin(), parts.end());
      sig += d.string() + "{";
      for (auto& p : parts) sig += p + ";";
      sig += "}";
    }
    return sig;
  }

  // Re-reads the profiles when a file changed (checked at most once a second). A broken file
  // is reported and left out; the others still serve.
  void reload_profiles(bool first) {
    const int64_t now = host_.monotonic_ns();
    std::lock_guard g(profiles_mu_);
    if (!first && now - profiles_checked_ns_ < kSecond) return;
    profiles_checked_ns_ = now;
    std::string sig = profile_signature();
    if (!first && sig == profiles_sig_) return;
    std::vector<std::string> errors;
    auto set = std::make_shared<outpost::snmp::ProfileSet>(
        outpost::snmp::ProfileSet::load(profile_dirs_, errors));
    for (const auto& e : errors) host_.report_error(OUTPOST_E_CONFIG, "snmp profile " + e);
    if (host_.log_enabled(OUTPOST_LOG_INFO)) {
      std::string names;
      for (const auto& n : set->names()) names += (names.empty() ? "" : ", ") + n;
      host_.log(OUTPOST_LOG_INFO,
                "snmp: " + std::to_string(set->size()) + " profiles loaded: " + names);
    }
    profiles_ = std::move(set);
    profiles_sig_ = std::move(sig);
  }

  // ---- targets -------------------------------------------------------------------------------

  std::string secret_or_literal(const outpost::Config& p, const std::string& name) const {
    if (auto ref = p.find(name + "_ref"); ref && !ref->empty()) {
      try {
        return host_.secret(*ref);
      } catch (const Error& e) {
        throw Error(e.status() == OUTPOST_E_NOT_FOUND ? OUTPOST_E_CONFIG : e.status(),
                    name + "_ref: credential '" + std::string(*ref) + "' not found");
      }
    }
    return p.get(name);
  }

  std::unique_ptr<SnmpJob> make_job(
      const outpost::Target& t, uint64_t poll_id,
      std::shared_ptr<const outpost::snmp::ProfileSet> profiles) const {
    const outpost::Config p = t.params();
    auto j = std::make_unique<SnmpJob>();
    j->poll_id = poll_id;
    j->target_id = t.id();
    j->device = std::string(t.device());
    j->address = std::string(t.address());
    j->host = outpost::lib::Address::host_of(j->address);
    try {
      const std::string version = p.get("version", "2c");
      if (version == "1" || version == "v1")
        j->version = 1;
      else if (version == "2c" || version == "2" || version == "v2c")
        j->version = 2;
      else if (version == "3" || version == "v3")
        j->version = 3;
      else
        throw Error(OUTPOST_E_CONFIG, "version must be 1, 2c or 3, not '" + version + "'");
      const int64_t port = p.get_int("port", 161);
      if (port < 1 || port > 65535) throw Error(OUTPOST_E_CONFIG, "port out of range 1-65535");
      j->port = static_cast<uint16_t>(port);
      const int64_t retries = p.get_int("retries", retries_);
      if (retries < 0 || retries > 10) throw Error(OUTPOST_E_CONFIG, "retries must be 0-10");
      j->retries = static_cast<int>(retries);
      const double rt =
          p.get_seconds("request_timeout", static_cast<double>(request_timeout_ns_) / 1e9);
      if (rt <= 0) throw Error(OUTPOST_E_CONFIG, "request_timeout must be positive");
      j->request_timeout_ns = static_cast<int64_t>(std::min(rt, kMaxSeconds) * 1e9);
      const int64_t reps = p.get_int("max_repetitions", max_repetitions_);
      if (reps < 1 || reps > 1000) throw Error(OUTPOST_E_CONFIG, "max_repetitions must be 1-1000");
      j->copts.version = j->version;
      j->copts.repetitions = static_cast<int>(reps);
      j->copts.max_oids = max_oids_;
      j->copts.max_rows = max_rows_;
      j->profile = p.get("profile");
      if (!j->profile.empty() && profiles && !profiles->plan(j->profile))
        throw Error(OUTPOST_E_CONFIG, "unknown profile '" + j->profile + "'");
      for (const char* key : {"get", "walk"})
        for (const auto& text : p.get_list(key)) {
          auto o = outpost::snmp::parse_oid(text);
          if (!o || o->size() < 2)
            throw Error(OUTPOST_E_CONFIG, std::string(key) + ": not a numeric OID: '" + text + "'");
          (key[0] == 'g' ? j->gets : j->walks).push_back(std::move(*o));
        }
      if (!j->profile.empty() && (!j->gets.empty() || !j->walks.empty()))
        throw Error(OUTPOST_E_CONFIG, "get and walk replace the profile: give one or the other");
      if (j->version != 3) {
        j->community = secret_or_literal(p, "community");
        if (j->community.empty())
          throw Error(OUTPOST_E_CONFIG, "community or community_ref is required for SNMPv" +
                                            std::string(j->version == 1 ? "1" : "2c"));
      } else {
        make_v3(p, j->v3);
      }
    } catch (const Error& e) {
      if (OUTPOST_STATUS_CLASS(e.status()) == OUTPOST_CLASS_OPERATOR) throw;
      throw Error(OUTPOST_E_CONFIG, e.what());
    }
    j->profiles = std::move(profiles);
    j->key = j->device + "|" + j->host + ":" + std::to_string(j->port);
    j->base = t.labels();
    return j;
  }

  void make_v3(const outpost::Config& p, V3& v3) const {
    v3.user = p.get("user");
    if (v3.user.empty()) throw Error(OUTPOST_E_CONFIG, "user is required for SNMPv3");
    v3.context = p.get("context");
    const std::string auth_pass = secret_or_literal(p, "auth_password");
    const std::string priv_pass = secret_or_literal(p, "priv_password");
    std::string level = p.get("security_level");
    if (level.empty())
      level = !priv_pass.empty() ? "authPriv" : !auth_pass.empty() ? "authNoPriv" : "noAuthNoPriv";
    std::string lower = level;
    for (auto& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (lower == "noauthnopriv")
      v3.level = SNMP_SEC_LEVEL_NOAUTH;
    else if (lower == "authnopriv")
      v3.level = SNMP_SEC_LEVEL_AUTHNOPRIV;
    else if (lower == "authpriv")
      v3.level = SNMP_SEC_LEVEL_AUTHPRIV;
    else
      throw Error(
          OUTPOST_E_CONFIG,
          "security_level must be noAuthNoPriv, authNoPriv or authPriv, not '" + level + "'");
    v3.fingerprint = std::to_string(v3.level);
    if (v3.level == SNMP_SEC_LEVEL_NOAUTH) return;
    const std::string ap = p.get("auth_protocol", "SHA");
    const int at = usm_lookup_auth_type(ap.c_str());
    size_t len = 0;
    const oid* aoid = at < 0 ? nullptr : sc_get_auth_oid(at, &len);
    if (aoid == nullptr)
      throw Error(OUTPOST_E_CONFIG, "auth_protocol '" + ap + "' is not supported by this net-snmp");
    v3.auth_proto = aoid;
    v3.auth_proto_len = len;
    if (auth_pass.empty())
      throw Error(OUTPOST_E_CONFIG, "auth_password or auth_password_ref is required for " + level);
    v3.auth_key = netsnmp::localizable_key(aoid, len, auth_pass, "auth_password");
    v3.fingerprint += "|" + ap + "|" + std::to_string(std::hash<std::string>{}(v3.auth_key));
    if (v3.level != SNMP_SEC_LEVEL_AUTHPRIV) return;
    const std::string pp = p.get("priv_protocol", "AES");
    const int pt = usm_lookup_priv_type(pp.c_str());
    size_t plen = 0;
    const oid* poid = pt < 0 ? nullptr : sc_get_priv_oid(pt, &plen);
    if (poid == nullptr)
      throw Error(OUTPOST_E_CONFIG, "priv_protocol '" + pp + "' is not supported by this net-snmp");
    v3.priv_proto = poid;
    v3.priv_proto_len = plen;
    if (priv_pass.empty())
      throw Error(OUTPOST_E_CONFIG, "priv_password or priv_password_ref is required for authPriv");
    // The privacy key is derived with the authentication hash (RFC 3414 / 3826).
    v3.priv_key = netsnmp::localizable_key(aoid, len, priv_pass, "priv_password");
    v3.fingerprint += "|" + pp + "|" + std::to_string(std::hash<std::string>{}(v3.priv_key));
  }

  outpost::Host host_;
  int retries_ = 2;
  int max_repetitions_ = 10;
  std::size_t max_oids_ = 16;
  std::size_t max_rows_ = 10000;
  int64_t request_timeout_ns_ = kSecond;
  std::vector<fs::path> profile_dirs_;

  std::mutex profiles_mu_;
  std::shared_ptr<const outpost::snmp::ProfileSet> profiles_;
  std::string profiles_sig_;
  int64_t profiles_checked_ns_ = 0;

  SessionDriver driver_;  // before rt_, which drives it
  outpost::lib::AsyncPoller rt_;
};

}  // namespace

OUTPOST_PLUGIN(SnmpPoller, "snmp", "1.0.0",
               "SNMP v1/v2c/v3 polling of device profiles (IF-MIB, HOST-RESOURCES-MIB, vendors)")
