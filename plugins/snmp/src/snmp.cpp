// SNMP poller on net-snmp's single-session API. Every device of a poll gets its own session
// (one UDP socket); one I/O thread per plugin instance multiplexes all of them with epoll and
// drives each through a Collector (collector.hpp): GET of the scalars, GETBULK/GETNEXT walks
// of the tables; or, for a monitor with `get`/`walk` OIDs, through a Probe (probe.hpp) that
// reports every varbind as an event. Nothing here blocks: host names go to resolver threads,
// SNMPv3 engine ID discovery is sent asynchronously instead of net-snmp's synchronous probe,
// and timeouts come from snmp_sess_select_info2 into a timer heap.
#include <arpa/inet.h>
#include <dlfcn.h>
#include <netdb.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <clocale>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <filesystem>
#include <functional>
#include <map>
#include <mutex>
#include <outpost/sdk.hpp>
#include <queue>
#include <thread>
#include <unordered_map>

#include "cli.hpp"
#include "collector.hpp"
#include "probe.hpp"
#include "snmp/oid.hpp"
#include "snmp/profile.hpp"

// net-snmp last, its configuration header first: its headers define many macros (even
// max_repetitions, as errindex).
// clang-format off
#include <net-snmp/net-snmp-config.h>
#include <net-snmp/net-snmp-includes.h>
#include <net-snmp/library/large_fd_set.h>
// clang-format on

namespace {

namespace fs = std::filesystem;
using outpost::Error;
using outpost::snmp::Collector;
using outpost::snmp::CollectorOptions;
using outpost::snmp::PduType;
using outpost::snmp::Probe;
using outpost::snmp::Value;

constexpr int64_t kMs = 1'000'000;
constexpr int64_t kSecond = 1'000'000'000;
constexpr double kMaxSeconds = 86400.0;

std::string errno_text(int err) {
  char buf[128];
  std::string s = ::strerror_r(err, buf, sizeof buf);  // GNU variant: returns char*
  if (!s.empty()) s[0] = static_cast<char>(std::tolower(static_cast<unsigned char>(s[0])));
  return s;
}

std::string format_seconds(int64_t ns) {
  const int64_t ms = (ns + kMs / 2) / kMs;
  if (ms % 1000 == 0) return std::to_string(ms / 1000) + "s";
  if (ms < 1000) return std::to_string(ms) + "ms";
  return outpost::snmp::format_number(static_cast<double>(ms) / 1000.0) + "s";
}

// ---- net-snmp: one library per process ----------------------------------------------------
//
// net-snmp keeps process-wide state (the USM user list, the engine time cache, request ids),
// so every call into it, from any instance's I/O thread, holds this lock.
std::mutex& lib_mutex() {
  static std::mutex m;
  return m;
}

// net-snmp's own log lines (init chatter, malformed packets) go to the hosts' debug log rather
// than to stderr.
struct LogTargets {
  std::mutex mu;
  std::vector<std::pair<const void*, outpost::Host>> hosts;
};
LogTargets& log_targets() {
  static LogTargets t;
  return t;
}

int on_library_log(int, int, void* server, void*) {
  const auto* m = static_cast<const snmp_log_message*>(server);
  if (m == nullptr || m->msg == nullptr) return 0;
  std::string_view text(m->msg);
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.remove_suffix(1);
  auto& t = log_targets();
  std::lock_guard g(t.mu);
  if (!t.hosts.empty() && t.hosts.front().second.log_enabled(OUTPOST_LOG_DEBUG))
    t.hosts.front().second.log(OUTPOST_LOG_DEBUG, "net-snmp: " + std::string(text));
  return 0;
}

void init_library() {
  static std::once_flag once;
  std::call_once(once, [] {
    std::lock_guard g(lib_mutex());
    snmp_register_callback(SNMP_CALLBACK_LIBRARY, SNMP_CALLBACK_LOGGING, &on_library_log, nullptr);
    netsnmp_register_loghandler(NETSNMP_LOGHANDLER_CALLBACK, LOG_DEBUG);
    // No snmp.conf, no persistent state, no MIB files: profiles use numeric OIDs, and the
    // machine's net-snmp configuration must not change what the engine does.
    netsnmp_ds_set_boolean(NETSNMP_DS_LIBRARY_ID, NETSNMP_DS_LIB_DONT_READ_CONFIGS, 1);
    netsnmp_ds_set_boolean(NETSNMP_DS_LIBRARY_ID, NETSNMP_DS_LIB_DISABLE_PERSISTENT_LOAD, 1);
    netsnmp_ds_set_boolean(NETSNMP_DS_LIBRARY_ID, NETSNMP_DS_LIB_DISABLE_PERSISTENT_SAVE, 1);
    netsnmp_ds_set_boolean(NETSNMP_DS_LIBRARY_ID, NETSNMP_DS_LIB_DONT_PERSIST_STATE, 1);
    netsnmp_ds_set_boolean(NETSNMP_DS_LIBRARY_ID, NETSNMP_DS_LIB_NO_TOKEN_WARNINGS, 1);
    netsnmp_ds_set_string(NETSNMP_DS_LIBRARY_ID, NETSNMP_DS_LIB_MIBDIRS,
                          "/nonexistent/outpost-no-mibs");
    // init_snmp sets LC_CTYPE from the environment; the host's locale is not ours to change.
    const char* cur = std::setlocale(LC_CTYPE, nullptr);
    const std::string saved = cur != nullptr ? cur : "C";
    init_snmp("outpost");
    std::setlocale(LC_CTYPE, saved.c_str());
  });
}

// Password-to-key (RFC 3414 A.2) hashes a megabyte; done once per protocol and password, not
// per device and poll.
class KeyCache {
 public:
  std::string get(const oid* proto, std::size_t proto_len, const std::string& password,
                  const char* what) {
    std::string id(reinterpret_cast<const char*>(proto), proto_len * sizeof(oid));
    id += '\0';
    id += password;
    {
      std::lock_guard g(mu_);
      if (auto it = keys_.find(id); it != keys_.end()) return it->second;
    }
    if (password.size() < USM_LENGTH_P_MIN)
      throw Error(OUTPOST_E_CONFIG, std::string(what) + " must have at least " +
                                        std::to_string(USM_LENGTH_P_MIN) + " characters");
    u_char ku[USM_AUTH_KU_LEN];
    size_t ku_len = sizeof ku;
    if (generate_Ku(proto, static_cast<u_int>(proto_len),
                    reinterpret_cast<const u_char*>(password.data()), password.size(), ku,
                    &ku_len) != SNMPERR_SUCCESS)
      throw Error(OUTPOST_E_CONFIG, std::string("cannot derive a key from ") + what);
    std::string key(reinterpret_cast<const char*>(ku), ku_len);
    std::lock_guard g(mu_);
    if (keys_.size() > 4096) keys_.clear();  // bounded: only changed credentials add entries
    keys_.emplace(std::move(id), key);
    return key;
  }

 private:
  std::mutex mu_;
  std::map<std::string, std::string> keys_;
};

KeyCache& key_cache() {
  static KeyCache c;
  return c;
}

// net-snmp's USM user list is keyed by (engine ID, user name) alone, so two monitors of the same
// engine and user with different passwords would share one set of keys. Each (engine, user) is
// therefore claimed with the fingerprint of its keys; a poll with other keys waits until the
// holders are done, then replaces the list's entry. Guarded by lib_mutex().
struct UsmClaim {
  std::string fingerprint;
  int holders = 0;
};
std::map<std::string, UsmClaim>& usm_claims() {
  static std::map<std::string, UsmClaim> m;
  return m;
}

// ---- values ----------------------------------------------------------------------------------

Value decode(const netsnmp_variable_list* v) {
  Value out;
  switch (v->type) {
    case ASN_INTEGER:
      out.type = Value::Type::kInteger;
      out.number = static_cast<double>(*v->val.integer);
      break;
    case ASN_GAUGE:  // == ASN_UNSIGNED
    case ASN_UINTEGER:
      out.type = Value::Type::kUnsigned;
      out.number = static_cast<double>(static_cast<unsigned long>(*v->val.integer) & 0xFFFFFFFFul);
      break;
    case ASN_COUNTER:
      out.type = Value::Type::kCounter32;
      out.number = static_cast<double>(static_cast<unsigned long>(*v->val.integer) & 0xFFFFFFFFul);
      break;
    case ASN_TIMETICKS:
      out.type = Value::Type::kTimeTicks;
      out.number = static_cast<double>(static_cast<unsigned long>(*v->val.integer) & 0xFFFFFFFFul);
      break;
    case ASN_COUNTER64:
#ifdef NETSNMP_WITH_OPAQUE_SPECIAL_TYPES
    case ASN_OPAQUE_COUNTER64:
    case ASN_OPAQUE_U64:
#endif
    {
      const uint64_t u = (static_cast<uint64_t>(v->val.counter64->high) << 32) |
                         (v->val.counter64->low & 0xFFFFFFFFul);
      out.type = Value::Type::kCounter64;
      out.number = static_cast<double>(u);
      out.text = std::to_string(u);  // exact, for diagnostics; metrics use the number
      break;
    }
#ifdef NETSNMP_WITH_OPAQUE_SPECIAL_TYPES
    case ASN_OPAQUE_I64:
      out.type = Value::Type::kInteger;
      out.number = static_cast<double>(
          static_cast<int64_t>((static_cast<uint64_t>(v->val.counter64->high) << 32) |
                               (v->val.counter64->low & 0xFFFFFFFFul)));
      break;
    case ASN_OPAQUE_FLOAT:
      out.type = Value::Type::kFloat;
      out.number = static_cast<double>(*v->val.floatVal);
      break;
    case ASN_OPAQUE_DOUBLE:
      out.type = Value::Type::kFloat;
      out.number = *v->val.doubleVal;
      break;
#endif
    case ASN_OCTET_STR:
      out.type = Value::Type::kOctets;
      if (v->val.string != nullptr)
        out.text.assign(reinterpret_cast<const char*>(v->val.string), v->val_len);
      break;
    case ASN_IPADDRESS:
      out.type = Value::Type::kIpAddress;
      if (v->val_len == 4 && v->val.string != nullptr) {
        char buf[INET_ADDRSTRLEN];
        ::inet_ntop(AF_INET, v->val.string, buf, sizeof buf);
        out.text = buf;
      }
      break;
    case ASN_OBJECT_ID: {
      out.type = Value::Type::kOid;
      outpost::snmp::Oid o;
      const std::size_t n = v->val_len / sizeof(oid);
      for (std::size_t i = 0; i < n; ++i) o.push_back(static_cast<uint32_t>(v->val.objid[i]));
      out.text = outpost::snmp::to_string(o);
      break;
    }
    case ASN_NULL:
      out.type = Value::Type::kNull;
      break;
    case SNMP_NOSUCHOBJECT:
      out.type = Value::Type::kNoSuchObject;
      break;
    case SNMP_NOSUCHINSTANCE:
      out.type = Value::Type::kNoSuchInstance;
      break;
    case SNMP_ENDOFMIBVIEW:
      out.type = Value::Type::kEndOfMibView;
      break;
    default:
      out.type = Value::Type::kOther;
      if (v->val.string != nullptr)
        out.text.assign(reinterpret_cast<const char*>(v->val.string), v->val_len);
      break;
  }
  return out;
}

outpost::snmp::Response decode(const netsnmp_pdu* pdu) {
  outpost::snmp::Response r;
  r.error_status = pdu->errstat;
  r.error_index = pdu->errindex;
  for (const netsnmp_variable_list* v = pdu->variables; v != nullptr; v = v->next_variable) {
    outpost::snmp::VarBind vb;
    vb.oid.reserve(v->name_length);
    for (std::size_t i = 0; i < v->name_length; ++i)
      vb.oid.push_back(static_cast<uint32_t>(v->name[i]));
    vb.value = decode(v);
    r.varbinds.push_back(std::move(vb));
  }
  return r;
}

// ---- configuration ---------------------------------------------------------------------------

struct V3 {
  std::string user, context;
  int level = SNMP_SEC_LEVEL_NOAUTH;
  const oid* auth_proto = nullptr;
  std::size_t auth_proto_len = 0;
  const oid* priv_proto = nullptr;
  std::size_t priv_proto_len = 0;
  std::string auth_key, priv_key;  // Ku, from the passwords
  std::string fingerprint;
};

// The plugin directory of this very library, found through one of its own addresses.
fs::path plugin_dir() {
  Dl_info info{};
  if (::dladdr(reinterpret_cast<const void*>(&plugin_dir), &info) == 0 || info.dli_fname == nullptr)
    return {};
  std::error_code ec;
  fs::path p = fs::weakly_canonical(fs::path(info.dli_fname), ec);
  return (ec ? fs::path(info.dli_fname) : p).parent_path();
}

std::string strip_brackets(std::string_view a) {
  if (a.size() >= 2 && a.front() == '[' && a.back() == ']') a = a.substr(1, a.size() - 2);
  return std::string(a);
}

// "udp:192.0.2.1:161" / "udp6:[2001:db8::1]:161" from a numeric address; empty if not numeric.
std::string numeric_peer(const std::string& host, uint16_t port) {
  in_addr a4{};
  in6_addr a6{};
  if (::inet_pton(AF_INET, host.c_str(), &a4) == 1)
    return "udp:" + host + ":" + std::to_string(port);
  if (::inet_pton(AF_INET6, host.c_str(), &a6) == 1)
    return "udp6:[" + host + "]:" + std::to_string(port);
  return {};
}

// ---- per device, per poll --------------------------------------------------------------------

enum class Phase : uint8_t { kResolving, kWaiting, kDiscovering, kClaiming, kPolling, kDiagnosing };
enum class Event : uint8_t { kNone, kResponse, kReport, kTimeout, kSecError, kSendFailed };

struct Job {
  uint64_t poll_id = 0, target_id = 0;
  int64_t deadline_ns = 0;
  std::string device, address, host, key;
  uint16_t port = 161;
  outpost::Labels base;
  int version = 2;  // 1, 2 (2c) or 3
  std::string community;
  V3 v3;
  int retries = 2;
  int64_t request_timeout_ns = kSecond;
  CollectorOptions copts;
  std::string profile;
  std::shared_ptr<const outpost::snmp::ProfileSet> profiles;
  std::vector<outpost::snmp::Oid> gets, walks;  // diagnostics: these instead of a profile

  Phase phase = Phase::kResolving;
  std::string peer;  // net-snmp transport address
  void* sess = nullptr;
  int fd = -1;
  bool closing = false;
  std::unique_ptr<Collector> collector;     // a profile poll
  std::unique_ptr<Probe> probe;             // or a diagnostic get/walk
  outpost::snmp::Reader* reader = nullptr;  // whichever of the two runs
  std::string claim;                        // USM claim key while held
  long reqid = 0;                           // the outstanding request; 0 ignores callbacks
  Event event = Event::kNone;
  outpost::snmp::Response response;
  int report = 0;  // SNMPERR_* of a v3 report
  std::string report_engine;
  bool authenticated = false;
  int64_t started_ns = 0, timer_at = INT64_MAX, queued_ns = 0;
  std::string timeout_detail;  // kept while diagnosing a v3 timeout
};

struct DeviceState {
  double uptime_ticks = -1;
  int64_t seen_mono_ns = 0;
  std::string plan;  // profile name(s) it had last time
  double restarts = 0;
  std::map<std::tuple<std::string, std::string, std::string>, double> object_errors;
};

struct Completion {
  uint64_t poll_id, target_id;
  outpost_status status;
  std::string detail;
};

class SnmpPoller final : public outpost::Poller {
 public:
  SnmpPoller(outpost::Host host, const outpost::Config& cfg) : host_(host) {
    auto int_in = [&](const char* k, int64_t d, int64_t lo, int64_t hi) {
      const int64_t v = cfg.get_int(k, d);
      if (v < lo || v > hi)
        throw Error(OUTPOST_E_CONFIG, std::string(k) + " must be between " + std::to_string(lo) +
                                          " and " + std::to_string(hi));
      return v;
    };
    max_concurrent_ = static_cast<std::size_t>(int_in("max_concurrent", 512, 1, 100000));
    retries_ = static_cast<int>(int_in("retries", 2, 0, 10));
    max_repetitions_ = static_cast<int>(int_in("max_repetitions", 10, 1, 1000));
    max_oids_ = static_cast<std::size_t>(int_in("max_oids_per_request", 16, 2, 128));
    max_rows_ = static_cast<std::size_t>(int_in("max_rows", 10000, 1, 10'000'000));
    resolver_threads_ = static_cast<int>(int_in("resolver_threads", 2, 1, 64));
    const double t = cfg.get_seconds("request_timeout", 1.0);
    if (t <= 0) throw Error(OUTPOST_E_CONFIG, "request_timeout must be positive");
    request_timeout_ns_ = static_cast<int64_t>(std::min(t, kMaxSeconds) * 1e9);
    default_profile_ = cfg.get("default_profile", "generic");
    if (cfg.get_bool("builtin_profiles", true)) {
      const fs::path d = plugin_dir();
      if (!d.empty()) profile_dirs_.push_back(d / "snmp-profiles");
    }
    for (auto& d : cfg.get_list("profile_dirs")) profile_dirs_.emplace_back(d);
    init_library();
    {
      auto& lt = log_targets();
      std::lock_guard g(lt.mu);
      lt.hosts.emplace_back(this, host_);
    }
    reload_profiles(true);
  }
  ~SnmpPoller() override {
    try {
      stop();
    } catch (...) {  // a destructor must not throw
    }
    auto& lt = log_targets();
    std::lock_guard g(lt.mu);
    std::erase_if(lt.hosts, [this](const auto& h) { return h.first == this; });
  }
  SnmpPoller(const SnmpPoller&) = delete;
  SnmpPoller& operator=(const SnmpPoller&) = delete;

  // `outpost snmp get|walk ...` (cli.cpp).
  static outpost::CommandPlan command(std::span<const std::string_view> args) {
    return outpost::snmp::command(args);
  }

  static std::vector<outpost_field> config_fields() {
    using outpost::field;
    return {
        field("profile_dirs", OUTPOST_FIELD_LIST,
              "Directories of device profile YAML files, read after the shipped ones; a profile "
              "of the same name replaces a shipped one. Files are re-read when they change"),
        field("builtin_profiles", OUTPOST_FIELD_BOOL,
              "Load the profiles shipped beside the plugin (<plugin dir>/snmp-profiles)", "true"),
        field("default_profile", OUTPOST_FIELD_STRING,
              "Profile of devices whose sysObjectID no profile claims", "generic"),
        field("max_concurrent", OUTPOST_FIELD_INT,
              "Devices polled at once (one UDP socket each); more wait for a free slot", "512"),
        field("request_timeout", OUTPOST_FIELD_DURATION,
              "Wait for one answer before a retry (the poll deadline bounds it)", "1s"),
        field("retries", OUTPOST_FIELD_INT, "Retries of an unanswered request", "2"),
        field("max_repetitions", OUTPOST_FIELD_INT, "GETBULK max-repetitions of table walks", "10"),
        field("max_oids_per_request", OUTPOST_FIELD_INT,
              "Varbinds per GET and columns per walk request", "16"),
        field("max_rows", OUTPOST_FIELD_INT, "Rows read per table column at most", "10000"),
        field("resolver_threads", OUTPOST_FIELD_INT, "Threads resolving device host names", "2"),
    };
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

  void start() override {
    {
      std::lock_guard g(mu_);
      if (running_) return;
    }
    Fd ep(::epoll_create1(EPOLL_CLOEXEC));
    if (ep.fd < 0) throw Error(OUTPOST_E_INTERNAL, "epoll_create1: " + errno_text(errno));
    Fd ev(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
    if (ev.fd < 0) throw Error(OUTPOST_E_INTERNAL, "eventfd: " + errno_text(errno));
    epoll_event e{};
    e.events = EPOLLIN;
    e.data.u64 = 0;  // job numbers start at 1
    if (::epoll_ctl(ep.fd, EPOLL_CTL_ADD, ev.fd, &e) != 0)
      throw Error(OUTPOST_E_INTERNAL, "epoll_ctl: " + errno_text(errno));
    {
      std::lock_guard g(mu_);
      epoll_ = std::move(ep);
      wake_ = std::move(ev);
      stopping_ = false;
      running_ = true;
    }
    try {
      io_ = std::thread([this] { io_loop(); });
      for (int i = 0; i < resolver_threads_; ++i)
        resolvers_.emplace_back([this] { resolver_loop(); });
    } catch (...) {
      stop();
      throw;
    }
  }

  void stop() override {
    {
      std::lock_guard g(mu_);
      if (!running_) return;
      running_ = false;
      stopping_ = true;
      wake();
    }
    cv_dns_.notify_all();
    if (io_.joinable()) io_.join();
    for (auto& t : resolvers_)
      if (t.joinable()) t.join();
    resolvers_.clear();
    epoll_ = Fd();
    wake_ = Fd();
  }

  void poll(const outpost::PollRequest& req) override {
    reload_profiles(false);
    std::shared_ptr<const outpost::snmp::ProfileSet> profiles;
    {
      std::lock_guard g(profiles_mu_);
      profiles = profiles_;
    }
    const int64_t now = host_.monotonic_ns();
    // Report a little before the deadline so a completion racing it is not counted late.
    const int64_t margin = std::clamp((req.deadline_ns() - now) / 20, 5 * kMs, 250 * kMs);
    std::vector<std::unique_ptr<Job>> jobs;
    jobs.reserve(req.size());
    for (std::size_t i = 0; i < req.size(); ++i) {
      const outpost::Target t = req[i];
      try {
        jobs.push_back(make_job(t, req.id(), req.deadline_ns() - margin, profiles));
      } catch (const Error& e) {
        host_.complete(req.id(), t.id(), e.status(), e.what());
      }
    }
    {
      std::lock_guard g(mu_);
      if (running_) {
        for (auto& j : jobs) incoming_.push_back(std::move(j));
        wake();
        return;
      }
    }
    for (const auto& j : jobs)
      host_.complete(j->poll_id, j->target_id, OUTPOST_E_UNAVAILABLE, "snmp plugin not started");
  }

 private:
  struct Fd {
    int fd = -1;
    Fd() = default;
    explicit Fd(int f) : fd(f) {}
    Fd(Fd&& o) noexcept : fd(std::exchange(o.fd, -1)) {}
    Fd& operator=(Fd&& o) noexcept {
      if (this != &o) {
        if (fd >= 0) ::close(fd);
        fd = std::exchange(o.fd, -1);
      }
      return *this;
    }
    Fd(const Fd&) = delete;
    Fd& operator=(const Fd&) = delete;
    ~Fd() {
      if (fd >= 0) ::close(fd);
    }
  };

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

  std::unique_ptr<Job> make_job(const outpost::Target& t, uint64_t poll_id, int64_t deadline_ns,
                                std::shared_ptr<const outpost::snmp::ProfileSet> profiles) const {
    const outpost::Config p = t.params();
    auto j = std::make_unique<Job>();
    j->poll_id = poll_id;
    j->target_id = t.id();
    j->deadline_ns = deadline_ns;
    j->device = std::string(t.device());
    j->address = std::string(t.address());
    j->host = strip_brackets(j->address);
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
    v3.auth_key = key_cache().get(aoid, len, auth_pass, "auth_password");
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
    v3.priv_key = key_cache().get(aoid, len, priv_pass, "priv_password");
    v3.fingerprint += "|" + pp + "|" + std::to_string(std::hash<std::string>{}(v3.priv_key));
  }

  void wake() const noexcept {
    const uint64_t one = 1;
    if (wake_.fd >= 0) [[maybe_unused]]
      auto n = ::write(wake_.fd, &one, sizeof one);
  }

  // ---- resolver threads ----------------------------------------------------------------------

  void resolver_loop() {
    std::unique_lock lk(mu_);
    for (;;) {
      cv_dns_.wait(lk, [this] { return stopping_ || !dns_queue_.empty(); });
      if (stopping_) return;
      std::string h = std::move(dns_queue_.front());
      dns_queue_.pop_front();
      lk.unlock();
      addrinfo hints{};
      hints.ai_family = AF_UNSPEC;
      hints.ai_socktype = SOCK_DGRAM;
      addrinfo* res = nullptr;
      const int rc = ::getaddrinfo(h.c_str(), nullptr, &hints, &res);
      std::string ip, err;
      if (rc != 0) {
        err = ::gai_strerror(rc);
      } else {
        for (addrinfo* ai = res; ai != nullptr && ip.empty(); ai = ai->ai_next) {
          char buf[INET6_ADDRSTRLEN];
          if (ai->ai_family == AF_INET)
            ip = ::inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(ai->ai_addr)->sin_addr, buf,
                             sizeof buf);
          else if (ai->ai_family == AF_INET6)
            ip = ::inet_ntop(AF_INET6, &reinterpret_cast<sockaddr_in6*>(ai->ai_addr)->sin6_addr,
                             buf, sizeof buf);
        }
        ::freeaddrinfo(res);
        if (ip.empty()) err = "no IPv4 or IPv6 address";
      }
      lk.lock();
      dns_results_.push_back({std::move(h), std::move(ip), std::move(err)});
      wake();
    }
  }

  // ---- the I/O thread ------------------------------------------------------------------------

  void io_loop() {
    std::vector<epoll_event> events(512);
    netsnmp_large_fd_set_init(&fdset_, 1024);
    bool stopping = false;
    while (!stopping) {
      try {
        const int n =
            ::epoll_wait(epoll_.fd, events.data(), static_cast<int>(events.size()), wait_ms());
        std::vector<uint64_t> readable;
        for (int i = 0; i < n; ++i) {
          const auto& e = events[static_cast<std::size_t>(i)];
          if (e.data.u64 == 0) {
            uint64_t v = 0;
            [[maybe_unused]] auto r = ::read(wake_.fd, &v, sizeof v);
          } else {
            readable.push_back(e.data.u64);
          }
        }
        stopping = take_incoming();
        {
          std::lock_guard lib(lib_mutex());
          for (uint64_t seq : readable) read_job(seq);
          fire_timers();
          retry_claims();
          admit();
        }
        flush();
        prune_devices();
      } catch (const std::exception& e) {
        // Most likely out of memory; keep serving rather than leave targets unreported.
        host_.report_error(OUTPOST_E_INTERNAL, std::string("snmp I/O loop: ") + e.what());
      }
    }
    {
      std::lock_guard lib(lib_mutex());
      std::vector<uint64_t> all;
      for (auto& [seq, j] : jobs_) all.push_back(seq);
      for (uint64_t seq : all)
        if (auto it = jobs_.find(seq); it != jobs_.end())
          finish(seq, *it->second, OUTPOST_E_UNAVAILABLE, "snmp plugin stopped");
    }
    {
      std::lock_guard g(mu_);
      for (auto& j : incoming_)
        completions_.push_back(
            {j->poll_id, j->target_id, OUTPOST_E_UNAVAILABLE, "snmp plugin stopped"});
      incoming_.clear();
      dns_queue_.clear();
      dns_results_.clear();
    }
    waiting_.clear();
    parked_.clear();
    pending_dns_.clear();
    timers_ = {};
    active_ = 0;
    netsnmp_large_fd_set_cleanup(&fdset_);
    try {
      flush();
    } catch (...) {
      host_.report_error(OUTPOST_E_INTERNAL, "snmp: could not report targets at stop");
    }
  }

  // Devices not polled for a day (removed from the inventory, renamed) are forgotten.
  void prune_devices() {
    const int64_t now = host_.monotonic_ns();
    if (now - pruned_ns_ < 60 * kSecond) return;
    pruned_ns_ = now;
    std::erase_if(devices_,
                  [&](const auto& d) { return now - d.second.seen_mono_ns > 86400 * kSecond; });
  }

  int wait_ms() {
    int64_t cap = parked_.empty() ? 60'000 : 20;  // parked v3 polls look again soon
    while (!timers_.empty()) {
      auto [at, seq] = timers_.top();
      auto it = jobs_.find(seq);
      if (it == jobs_.end() || it->second->timer_at != at) {
        timers_.pop();
        continue;
      }
      const int64_t left = at - host_.monotonic_ns();
      if (left <= 0) return 0;
      cap = std::min(cap, (left + kMs - 1) / kMs);
      break;
    }
    return static_cast<int>(cap);
  }

  bool take_incoming() {
    std::vector<std::unique_ptr<Job>> in;
    std::vector<Resolved> res;
    bool stopping = false;
    {
      std::lock_guard g(mu_);
      in.swap(incoming_);
      res.swap(dns_results_);
      stopping = stopping_;
    }
    std::vector<std::string> lookups;
    for (auto& j : in) {
      const uint64_t seq = next_seq_++;
      Job& job = *j;
      jobs_.emplace(seq, std::move(j));
      job.started_ns = host_.monotonic_ns();
      set_timer(seq, job);
      std::string peer = numeric_peer(job.host, job.port);
      if (!peer.empty()) {
        job.peer = std::move(peer);
        queue(seq, job);
      } else {
        auto& waiters = pending_dns_[job.host];
        if (waiters.empty()) lookups.push_back(job.host);
        waiters.push_back(seq);
      }
    }
    if (!lookups.empty()) {
      {
        std::lock_guard g(mu_);
        for (auto& h : lookups) dns_queue_.push_back(std::move(h));
      }
      cv_dns_.notify_all();
    }
    for (auto& r : res) {
      auto node = pending_dns_.extract(r.host);
      if (node.empty()) continue;
      for (uint64_t seq : node.mapped()) {
        auto it = jobs_.find(seq);
        if (it == jobs_.end() || it->second->phase != Phase::kResolving) continue;
        Job& job = *it->second;
        if (!r.error.empty()) {
          std::lock_guard lib(lib_mutex());
          finish(seq, job, OUTPOST_E_NOT_FOUND, "cannot resolve '" + job.host + "': " + r.error);
          continue;
        }
        job.peer = numeric_peer(r.ip, job.port);
        queue(seq, job);
      }
    }
    return stopping;
  }

  void queue(uint64_t seq, Job& j) {
    j.phase = Phase::kWaiting;
    j.queued_ns = host_.monotonic_ns();
    waiting_.push_back(seq);
  }

  // ---- timers: the device's deadline and net-snmp's retransmissions, whichever is first ----

  void set_timer(uint64_t seq, Job& j) {
    int64_t at = j.deadline_ns;
    if (j.sess != nullptr && j.reqid != 0) {
      int numfds = 0, block = 1;
      timeval tv{};
      snmp_sess_select_info2_flags(j.sess, &numfds, &fdset_, &tv, &block, NETSNMP_SELECT_NOALARMS);
      if (j.fd >= 0) netsnmp_large_fd_clr(j.fd, &fdset_);
      // net-snmp compares expiry with "<": a millisecond late is never early.
      if (block == 0)
        at = std::min(at, host_.monotonic_ns() + tv.tv_sec * kSecond + tv.tv_usec * 1000 + kMs);
    }
    if (at != j.timer_at) {
      j.timer_at = at;
      timers_.emplace(at, seq);
    }
  }

  void fire_timers() {
    const int64_t now = host_.monotonic_ns();
    std::vector<uint64_t> due;
    while (!timers_.empty() && timers_.top().first <= now) {
      auto [at, seq] = timers_.top();
      timers_.pop();
      auto it = jobs_.find(seq);
      if (it == jobs_.end() || it->second->timer_at != at) continue;
      due.push_back(seq);
    }
    for (uint64_t seq : due) {
      auto it = jobs_.find(seq);
      if (it == jobs_.end()) continue;
      Job& j = *it->second;
      j.timer_at = INT64_MAX;
      if (now >= j.deadline_ns) {
        deadline(seq, j);
        continue;
      }
      if (j.sess != nullptr) {
        snmp_sess_timeout(j.sess);  // retransmits, or calls back with TIMED_OUT
        handle(seq);
      }
      if (auto again = jobs_.find(seq); again != jobs_.end()) set_timer(seq, *again->second);
    }
  }

  void deadline(uint64_t seq, Job& j) {
    switch (j.phase) {
      case Phase::kResolving:
        return finish(seq, j, OUTPOST_E_TIMEOUT, "resolving '" + j.host + "' timed out");
      case Phase::kWaiting:  // never attempted: says nothing about the device
        return finish(seq, j, OUTPOST_E_OVERLOADED,
                      saturated_ns_ >= j.queued_ns
                          ? "no session slot free before the deadline (max_concurrent " +
                                std::to_string(max_concurrent_) + ")"
                          : std::string("deadline reached before polling"));
      case Phase::kDiscovering:
        return finish(seq, j, OUTPOST_E_TIMEOUT,
                      "no answer to SNMPv3 engine discovery from " + j.peer);
      case Phase::kClaiming:
        return finish(seq, j, OUTPOST_E_TIMEOUT,
                      "waited for another poll of the same SNMPv3 engine and user to finish");
      case Phase::kDiagnosing:
        return finish(seq, j, OUTPOST_E_TIMEOUT, j.timeout_detail);
      case Phase::kPolling:
        return finish(seq, j, OUTPOST_E_TIMEOUT,
                      "deadline reached " +
                          (j.reader != nullptr ? j.reader->activity() : std::string()) + " after " +
                          std::to_string(j.reader != nullptr ? j.reader->responses() : 0) +
                          " responses");
    }
  }

  // ---- sessions ------------------------------------------------------------------------------

  void admit() {
    while (active_ < max_concurrent_ && !waiting_.empty()) {
      const uint64_t seq = waiting_.front();
      waiting_.pop_front();
      auto it = jobs_.find(seq);
      if (it == jobs_.end() || it->second->phase != Phase::kWaiting) continue;
      if (!open(seq, *it->second)) {
        waiting_.push_front(seq);
        saturated_ns_ = host_.monotonic_ns();
        return;
      }
    }
    if (!waiting_.empty()) saturated_ns_ = host_.monotonic_ns();
  }

  // Opens the device's session and sends its first request. False only when descriptors ran
  // out while others are open: the caller retries later.
  bool open(uint64_t seq, Job& j) {
    netsnmp_session s;
    snmp_sess_init(&s);
    std::string peer = j.peer;
    s.peername = peer.data();
    s.retries = j.retries;
    s.timeout = j.request_timeout_ns / 1000;
    // Never net-snmp's blocking engine ID probe: discovery is one of our asynchronous requests.
    s.flags |= SNMP_FLAGS_DONT_PROBE;
    std::string user = j.v3.user, context = j.v3.context;
    if (j.version == 3) {
      s.version = SNMP_VERSION_3;
      s.securityModel = SNMP_SEC_MODEL_USM;
      s.securityName = user.data();
      s.securityNameLen = user.size();
      s.securityLevel = j.v3.level;
      if (!context.empty()) {
        s.contextName = context.data();
        s.contextNameLen = context.size();
      }
      if (j.v3.level != SNMP_SEC_LEVEL_NOAUTH) {
        s.securityAuthProto = const_cast<oid*>(j.v3.auth_proto);
        s.securityAuthProtoLen = j.v3.auth_proto_len;
        s.securityAuthKeyLen = std::min(j.v3.auth_key.size(), sizeof s.securityAuthKey);
        std::memcpy(s.securityAuthKey, j.v3.auth_key.data(), s.securityAuthKeyLen);
      }
      if (j.v3.level == SNMP_SEC_LEVEL_AUTHPRIV) {
        s.securityPrivProto = const_cast<oid*>(j.v3.priv_proto);
        s.securityPrivProtoLen = j.v3.priv_proto_len;
        s.securityPrivKeyLen = std::min(j.v3.priv_key.size(), sizeof s.securityPrivKey);
        std::memcpy(s.securityPrivKey, j.v3.priv_key.data(), s.securityPrivKeyLen);
      }
    } else {
      s.version = j.version == 1 ? SNMP_VERSION_1 : SNMP_VERSION_2c;
      s.community = reinterpret_cast<u_char*>(j.community.data());
      s.community_len = j.community.size();
    }
    errno = 0;
    void* sess = snmp_sess_open(&s);
    const int err = errno;
    if (sess == nullptr) {
      if ((err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM) && active_ > 0)
        return false;
      finish(seq, j, OUTPOST_E_UNAVAILABLE,
             "cannot open an SNMP session to " + j.peer + ": " +
                 (err != 0 ? errno_text(err) : std::string(snmp_api_errstring(s.s_snmp_errno))));
      return true;
    }
    ++active_;
    j.sess = sess;
    netsnmp_session* sp = snmp_sess_session(sess);
    sp->flags |= SNMP_FLAGS_DONT_PROBE;  // opening cleared it
    netsnmp_transport* tr = snmp_sess_transport(sess);
    j.fd = tr != nullptr ? tr->sock : -1;
    if (j.fd >= 0) {
      epoll_event e{};
      e.events = EPOLLIN;
      e.data.u64 = seq;
      if (::epoll_ctl(epoll_.fd, EPOLL_CTL_ADD, j.fd, &e) != 0) {
        finish(seq, j, OUTPOST_E_INTERNAL, "epoll_ctl: " + errno_text(errno));
        return true;
      }
    }
    if (j.version == 3) {
      discover(seq, j);
      return true;
    }
    start_polling(seq, j);
    return true;
  }

  static void set_engine(netsnmp_session* sp, const std::string& id) {
    auto dup = [&](u_char*& p, size_t& len) {
      SNMP_FREE(p);
      p = static_cast<u_char*>(std::malloc(id.size()));
      if (p != nullptr) std::memcpy(p, id.data(), id.size());
      len = p != nullptr ? id.size() : 0;
    };
    dup(sp->securityEngineID, sp->securityEngineIDLen);
    dup(sp->contextEngineID, sp->contextEngineIDLen);
  }

  // SNMPv3 engine ID discovery (RFC 3414 4): an unauthenticated empty GET answered by a
  // usmStatsUnknownEngineIDs report that carries the agent's engine ID. Done on every poll, as
  // net-snmp's tools do: with a remembered engine ID, an agent that came back with a new one
  // (reinstalled, or no persistent storage) answers with a report net-snmp cannot parse (it
  // names our user under an engine ID we have no user for), which would look like a dead agent.
  void discover(uint64_t seq, Job& j) {
    j.phase = Phase::kDiscovering;
    netsnmp_pdu* pdu = snmp_pdu_create(SNMP_MSG_GET);
    pdu->version = SNMP_VERSION_3;
    pdu->securityName = strdup("");
    pdu->securityNameLen = 0;
    pdu->securityLevel = SNMP_SEC_LEVEL_NOAUTH;
    pdu->securityModel = SNMP_SEC_MODEL_USM;
    send(seq, j, pdu);
  }

  // Makes this device's user the USM list's entry for (engine, user), or parks the poll while
  // another poll holds that entry with other keys.
  void claim(uint64_t seq, Job& j) {
    netsnmp_session* sp = snmp_sess_session(j.sess);
    std::string key(reinterpret_cast<const char*>(sp->securityEngineID), sp->securityEngineIDLen);
    key += '\0';
    key += j.v3.user;
    auto& claims = usm_claims();
    auto it = claims.find(key);
    if (it != claims.end() && it->second.holders > 0 &&
        it->second.fingerprint != j.v3.fingerprint) {
      j.phase = Phase::kClaiming;
      parked_.push_back(seq);
      return;
    }
    if (it == claims.end() || it->second.fingerprint != j.v3.fingerprint) {
      if (usmUser* u =
              usm_get_user(sp->securityEngineID, sp->securityEngineIDLen, j.v3.user.data())) {
        usm_remove_user(u);
        usm_free_user(u);
      }
      claims[key].fingerprint = j.v3.fingerprint;
    }
    ++claims[key].holders;
    j.claim = std::move(key);
    sp->flags &= ~SNMP_FLAGS_USER_CREATED;
    if (usm_create_user_from_session(sp) != SNMPERR_SUCCESS)
      return finish(seq, j, OUTPOST_E_CONFIG, "cannot set up SNMPv3 user '" + j.v3.user + "'");
    start_polling(seq, j);
  }

  void release_claim(Job& j) {
    if (j.claim.empty()) return;
    auto& claims = usm_claims();
    if (auto it = claims.find(j.claim); it != claims.end() && it->second.holders > 0)
      --it->second.holders;
    j.claim.clear();
  }

  void retry_claims() {
    if (parked_.empty()) return;
    std::vector<uint64_t> parked;
    parked.swap(parked_);
    for (uint64_t seq : parked)
      if (auto it = jobs_.find(seq); it != jobs_.end() && it->second->phase == Phase::kClaiming)
        claim(seq, *it->second);
  }

  void start_polling(uint64_t seq, Job& j) {
    j.phase = Phase::kPolling;
    if (!j.gets.empty() || !j.walks.empty()) {
      j.probe = std::make_unique<Probe>(j.copts, j.gets, j.walks);
      j.reader = j.probe.get();
    } else {
      std::shared_ptr<const outpost::snmp::Plan> guess;
      if (auto it = devices_.find(j.key); it != devices_.end() && j.profiles)
        guess = j.profiles->plan(it->second.plan);
      j.collector =
          std::make_unique<Collector>(j.copts, j.profiles, j.profile, default_profile_, guess);
      j.reader = j.collector.get();
    }
    send_next(seq, j);
  }

  void send_next(uint64_t seq, Job& j) {
    std::optional<outpost::snmp::Request> req = j.reader->next();
    if (!req) {
      if (!j.reader->failure().empty())
        return finish(seq, j, OUTPOST_E_CONFIG, j.reader->failure());
      return finish(seq, j, OUTPOST_OK, {});
    }
    const int type = req->type == PduType::kGet       ? SNMP_MSG_GET
                     : req->type == PduType::kGetNext ? SNMP_MSG_GETNEXT
                                                      : SNMP_MSG_GETBULK;
    netsnmp_pdu* pdu = snmp_pdu_create(type);
    if (type == SNMP_MSG_GETBULK) {
      pdu->non_repeaters = 0;
      pdu->max_repetitions = req->repetitions;
    }
    std::vector<oid> name;
    for (const auto& o : req->oids) {
      name.assign(o.begin(), o.end());
      snmp_add_null_var(pdu, name.data(), name.size());
    }
    send(seq, j, pdu);
  }

  // Sends with a per-attempt timeout that lets every retry end before the deadline.
  void send(uint64_t seq, Job& j, netsnmp_pdu* pdu) {
    netsnmp_session* sp = snmp_sess_session(j.sess);
    const int64_t left = j.deadline_ns - host_.monotonic_ns();
    const int64_t attempt = std::clamp(left / (j.retries + 1), 10 * kMs, j.request_timeout_ns);
    sp->timeout = attempt / 1000;
    const long reqid = pdu->reqid;
    j.reqid = 0;  // a failure reported synchronously is handled from the return value
    j.event = Event::kNone;
    if (snmp_sess_async_send(j.sess, pdu, &SnmpPoller::on_pdu, &j) == 0) {
      const int se = sp->s_snmp_errno, sys = sp->s_errno;
      snmp_free_pdu(pdu);
      if (is_security_error(se))
        return finish(seq, j, OUTPOST_E_AUTH, std::string("SNMPv3: ") + snmp_api_errstring(se));
      return finish(seq, j, OUTPOST_E_UNAVAILABLE,
                    "send to " + j.peer + " failed: " +
                        (sys != 0 ? errno_text(sys) : std::string(snmp_api_errstring(se))));
    }
    j.reqid = reqid;
    set_timer(seq, j);
  }

  static bool is_security_error(int e) {
    switch (e) {
      case SNMPERR_BAD_SEC_LEVEL:
      case SNMPERR_UNKNOWN_USER_NAME:
      case SNMPERR_UNSUPPORTED_SEC_LEVEL:
      case SNMPERR_AUTHENTICATION_FAILURE:
      case SNMPERR_USM_GENERICERROR:
      case SNMPERR_USM_UNKNOWNSECURITYNAME:
      case SNMPERR_USM_UNSUPPORTEDSECURITYLEVEL:
      case SNMPERR_USM_ENCRYPTIONERROR:
      case SNMPERR_USM_AUTHENTICATIONFAILURE:
      case SNMPERR_DECRYPTION_ERR:
      case SNMPERR_KT_NOT_AVAILABLE:
        return true;
      default:
        return false;
    }
  }

  // net-snmp's callback: runs inside snmp_sess_read2/timeout/close. It only records what
  // happened; handle() acts on it once net-snmp is done with the packet.
  // A session has one request outstanding at a time, so anything for it is about that request;
  // reqid is not compared because an SNMPv3 report about a message the agent could not
  // authenticate carries no usable request-id (net-snmp matched it by msgID).
  static int on_pdu(int op, netsnmp_session*, int, netsnmp_pdu* pdu, void* magic) {
    auto* j = static_cast<Job*>(magic);
    if (j == nullptr || j->closing || j->reqid == 0) return 1;
    try {
      switch (op) {
        case NETSNMP_CALLBACK_OP_RECEIVED_MESSAGE:
          if (pdu != nullptr && pdu->command == SNMP_MSG_REPORT) {
            const int type = snmpv3_get_report_type(pdu);
            // notInTimeWindow: net-snmp has learnt the agent's time and resends by itself.
            if (type == SNMPERR_NOT_IN_TIME_WINDOW) return 1;
            j->event = Event::kReport;
            j->report = type;
            if (pdu->securityEngineID != nullptr && pdu->securityEngineIDLen > 0)
              j->report_engine.assign(reinterpret_cast<const char*>(pdu->securityEngineID),
                                      pdu->securityEngineIDLen);
          } else if (pdu != nullptr) {
            j->event = Event::kResponse;
            j->response = decode(pdu);
          }
          break;
        case NETSNMP_CALLBACK_OP_TIMED_OUT:
          j->event = Event::kTimeout;
          break;
        case NETSNMP_CALLBACK_OP_SEC_ERROR:
          j->event = Event::kSecError;
          j->report = pdu != nullptr ? snmpv3_get_report_type(pdu) : 0;
          break;
        case NETSNMP_CALLBACK_OP_SEND_FAILED:
          j->event = Event::kSendFailed;
          break;
        default:
          return 1;
      }
    } catch (...) {
      j->event = Event::kSendFailed;  // out of memory decoding: report rather than unwind into C
    }
    j->reqid = 0;  // one outcome per request: later calls for it are ignored
    return 1;
  }

  void read_job(uint64_t seq) {
    auto it = jobs_.find(seq);
    if (it == jobs_.end()) return;
    Job& j = *it->second;
    if (j.sess == nullptr || j.fd < 0) return;
    netsnmp_large_fd_setfd(j.fd, &fdset_);
    snmp_sess_read2(j.sess, &fdset_);
    netsnmp_large_fd_clr(j.fd, &fdset_);
    handle(seq);
    if (auto again = jobs_.find(seq); again != jobs_.end()) set_timer(seq, *again->second);
  }

  // Acts on what the callback recorded.
  void handle(uint64_t seq) {
    auto it = jobs_.find(seq);
    if (it == jobs_.end()) return;
    Job& j = *it->second;
    const Event ev = std::exchange(j.event, Event::kNone);
    switch (ev) {
      case Event::kNone:
        return;
      case Event::kResponse:
        if (j.phase == Phase::kDiscovering) {
          // An agent that answers the empty probe with a response still tells its engine ID.
          netsnmp_session* sp = snmp_sess_session(j.sess);
          if (sp->securityEngineIDLen == 0)
            return finish(seq, j, OUTPOST_E_UNAVAILABLE,
                          "SNMPv3 engine discovery got no engine ID");
          return claim(seq, j);
        }
        if (j.phase == Phase::kDiagnosing)
          return finish(
              seq, j, OUTPOST_E_AUTH,
              "wrong SNMPv3 privacy password or protocol for user '" + j.v3.user +
                  "': the agent accepts its authentication but ignores encrypted requests");
        j.authenticated = true;
        j.reader->on_response(j.response);
        j.response = {};
        return send_next(seq, j);
      case Event::kReport:
      case Event::kSecError:
        return on_report(seq, j, ev);
      case Event::kTimeout:
        return on_timeout(seq, j);
      case Event::kSendFailed: {
        const netsnmp_session* sp = snmp_sess_session(j.sess);
        return finish(seq, j, OUTPOST_E_UNAVAILABLE,
                      "send to " + j.peer + " failed: " +
                          (sp->s_errno != 0 ? errno_text(sp->s_errno)
                                            : std::string(snmp_api_errstring(sp->s_snmp_errno))));
      }
    }
  }

  void on_report(uint64_t seq, Job& j, Event ev) {
    const int type = j.report;
    if (j.phase == Phase::kDiscovering) {
      netsnmp_session* sp = snmp_sess_session(j.sess);
      if (sp->securityEngineIDLen == 0 && !j.report_engine.empty()) set_engine(sp, j.report_engine);
      if (sp->securityEngineIDLen == 0)
        return finish(seq, j, OUTPOST_E_UNAVAILABLE, "SNMPv3 engine discovery got no engine ID");
      return claim(seq, j);
    }
    if (j.phase == Phase::kDiagnosing) {
      if (type == SNMPERR_AUTHENTICATION_FAILURE)
        return finish(seq, j, OUTPOST_E_AUTH,
                      "wrong SNMPv3 authentication password or protocol for user '" + j.v3.user +
                          "' (usmStatsWrongDigests)");
      return finish(seq, j, OUTPOST_E_AUTH,
                    "wrong SNMPv3 privacy password or protocol for user '" + j.v3.user +
                        "': the agent accepts its authentication but ignores encrypted requests");
    }
    switch (type) {
      case SNMPERR_UNKNOWN_USER_NAME:
        return finish(
            seq, j, OUTPOST_E_AUTH,
            "SNMPv3 user '" + j.v3.user + "' unknown to the agent (usmStatsUnknownUserNames)");
      case SNMPERR_AUTHENTICATION_FAILURE:
        return finish(seq, j, OUTPOST_E_AUTH,
                      "wrong SNMPv3 authentication password or protocol for user '" + j.v3.user +
                          "' (usmStatsWrongDigests)");
      case SNMPERR_UNSUPPORTED_SEC_LEVEL:
        return finish(seq, j, OUTPOST_E_AUTH,
                      "security level not allowed for SNMPv3 user '" + j.v3.user +
                          "' (usmStatsUnsupportedSecLevels)");
      case SNMPERR_DECRYPTION_ERR:
        return finish(seq, j, OUTPOST_E_AUTH,
                      "the agent cannot decrypt our requests: wrong SNMPv3 privacy password or "
                      "protocol for user '" +
                          j.v3.user + "' (usmStatsDecryptionErrors)");
      case SNMPERR_NOT_IN_TIME_WINDOW:
        return finish(
            seq, j, OUTPOST_E_UNAVAILABLE,
            "SNMPv3 messages stay outside the agent's time window (usmStatsNotInTimeWindows)");
      case SNMPERR_UNKNOWN_ENG_ID:
        return finish(
            seq, j, OUTPOST_E_UNAVAILABLE,
            "the agent's SNMPv3 engine ID changed during the poll (usmStatsUnknownEngineIDs)");
      default:
        if (ev == Event::kSecError || type != 0)
          return finish(
              seq, j, OUTPOST_E_AUTH,
              std::string("SNMPv3 security error: ") +
                  snmp_api_errstring(type != 0 ? type : snmp_sess_session(j.sess)->s_snmp_errno));
        return finish(seq, j, OUTPOST_E_UNAVAILABLE, "unexpected report from the agent");
    }
  }

  void on_timeout(uint64_t seq, Job& j) {
    const std::string attempts =
        std::to_string(j.retries + 1) + " attempt" + (j.retries == 0 ? "" : "s");
    if (j.phase == Phase::kDiscovering)
      return finish(seq, j, OUTPOST_E_TIMEOUT,
                    "no answer to SNMPv3 engine discovery from " + j.peer + " after " + attempts);
    if (j.phase == Phase::kDiagnosing) return finish(seq, j, OUTPOST_E_TIMEOUT, j.timeout_detail);
    std::string detail =
        "no response from " + j.peer + " after " + attempts + " " + j.reader->activity();
    if (j.version != 3 && j.reader->responses() == 0)
      detail += " (agent down, or a wrong community)";
    // An SNMPv3 agent silently drops requests it cannot decrypt; asking the same user without
    // privacy tells a wrong privacy password from a dead agent.
    if (j.version == 3 && j.v3.level == SNMP_SEC_LEVEL_AUTHPRIV && !j.authenticated &&
        j.deadline_ns - host_.monotonic_ns() > 20 * kMs) {
      j.phase = Phase::kDiagnosing;
      j.timeout_detail = std::move(detail);
      netsnmp_pdu* pdu = snmp_pdu_create(SNMP_MSG_GET);
      pdu->securityLevel = SNMP_SEC_LEVEL_AUTHNOPRIV;
      std::vector<oid> name(outpost::snmp::kSysUpTime.begin(), outpost::snmp::kSysUpTime.end());
      snmp_add_null_var(pdu, name.data(), name.size());
      return send(seq, j, pdu);
    }
    finish(seq, j, OUTPOST_E_TIMEOUT, detail);
  }

  // ---- outcome -------------------------------------------------------------------------------

  // Closes the session, builds the device's metrics and records its completion. Runs with the
  // library lock held.
  void finish(uint64_t seq, Job& j, outpost_status status, std::string detail) {
    const int64_t now = host_.monotonic_ns();
    if (j.sess != nullptr) {
      j.closing = true;
      snmp_sess_close(j.sess);  // also closes the socket, which leaves the epoll set
      j.sess = nullptr;
      j.fd = -1;
      --active_;
    }
    release_claim(j);
    if (status == OUTPOST_E_TIMEOUT && j.reader != nullptr && j.phase == Phase::kPolling)
      j.reader->on_timeout();
    if (status != OUTPOST_E_CONFIG) status = emit_device(j, status, detail, now);
    completions_.push_back({j.poll_id, j.target_id, status, std::move(detail)});
    jobs_.erase(seq);
  }

  // The device's metrics and events; returns the final status (an agent that answered but has
  // none of the profile's objects is NOT_FOUND) and fills in the detail of a success.
  outpost_status emit_device(Job& j, outpost_status status, std::string& detail, int64_t now) {
    if (!j.gets.empty() || !j.walks.empty()) return emit_probe(j, status, detail, now);
    if (status == OUTPOST_OK && j.collector && !j.collector->got_data())
      status = OUTPOST_E_NOT_FOUND;
    auto gauge = [&](const char* name, double v) {
      metrics_.push_back(outpost::Metric{name, j.base, v, 0, OUTPOST_METRIC_GAUGE});
    };
    gauge("snmp_up", status == OUTPOST_OK ? 1.0 : 0.0);
    gauge("snmp_poll_seconds", static_cast<double>(now - j.started_ns) / 1e9);
    if (!j.collector) return status;
    const Collector& c = *j.collector;
    gauge("snmp_poll_responses", static_cast<double>(c.responses()));
    gauge("snmp_poll_varbinds", static_cast<double>(c.varbinds()));
    if (c.got_data()) c.build(j.base, metrics_);

    DeviceState& st = devices_[j.key];
    if (auto up = c.uptime_ticks()) {
      // sysUpTime only goes back when the agent restarted, or when its 32 bits of hundredths
      // wrapped after 497 days, which is not a restart.
      if (st.uptime_ticks >= 0 && *up < st.uptime_ticks) {
        const double expected = st.uptime_ticks + static_cast<double>(now - st.seen_mono_ns) / 1e7;
        const bool wrapped = expected >= 4294967296.0 - 100 * 3600;
        if (!wrapped) {
          st.restarts += 1;
          outpost::Event e;
          e.kind = "snmp";
          e.source = j.device;
          e.severity = OUTPOST_SEV_NOTICE;
          e.message = "agent restarted: sysUpTime went from " +
                      format_seconds(static_cast<int64_t>(st.uptime_ticks * 1e7)) + " to " +
                      format_seconds(static_cast<int64_t>(*up * 1e7)) +
                      "; counters started again from zero";
          e.attributes = {{"address", j.address}, {"reason", "restart"}};
          events_.push_back(std::move(e));
        }
      }
      st.uptime_ticks = *up;
    }
    st.seen_mono_ns = now;
    if (c.plan()) st.plan = c.plan()->name;
    metrics_.push_back(
        outpost::Metric{"snmp_restarts_total", j.base, st.restarts, 0, OUTPOST_METRIC_COUNTER});

    const auto errors = c.errors();
    for (const auto& e : errors) st.object_errors[{e.object, e.oid, e.error}] += 1;
    for (const auto& [k, n] : st.object_errors) {
      outpost::Labels l = j.base;
      l.emplace_back("object", std::get<0>(k));
      l.emplace_back("oid", std::get<1>(k));
      l.emplace_back("error", std::get<2>(k));
      metrics_.push_back(
          outpost::Metric{"snmp_object_errors_total", std::move(l), n, 0, OUTPOST_METRIC_COUNTER});
    }
    if (status == OUTPOST_OK) {
      std::string d = "profile " + (c.plan() ? c.plan()->name : std::string("?")) + ", " +
                      std::to_string(c.varbinds()) + " varbinds in " +
                      std::to_string(c.responses()) + " responses";
      if (!errors.empty()) {
        d += "; " + std::to_string(errors.size()) + " object" + (errors.size() == 1 ? "" : "s") +
             " unread:";
        for (std::size_t i = 0; i < errors.size() && i < 5; ++i)
          d += " " + errors[i].object + " (" + errors[i].error + ")";
        if (errors.size() > 5) d += " ...";
      }
      detail = std::move(d);
    } else if (status == OUTPOST_E_NOT_FOUND && detail.empty()) {
      detail = "the agent answered but has none of profile " +
               (c.plan() ? c.plan()->name : std::string("?")) + "'s objects";
    }
    return status;
  }

  // A diagnostic get/walk: every varbind as an event whose message is the line net-snmp's tools
  // would print for it, the poll's own gauges, no device state (restarts, object errors).
  outpost_status emit_probe(Job& j, outpost_status status, std::string& detail, int64_t now) {
    if (status == OUTPOST_OK && j.probe && !j.probe->got_data()) status = OUTPOST_E_NOT_FOUND;
    auto gauge = [&](const char* name, double v) {
      metrics_.push_back(outpost::Metric{name, j.base, v, 0, OUTPOST_METRIC_GAUGE});
    };
    gauge("snmp_up", status == OUTPOST_OK ? 1.0 : 0.0);
    gauge("snmp_poll_seconds", static_cast<double>(now - j.started_ns) / 1e9);
    if (!j.probe) return status;
    const Probe& p = *j.probe;
    gauge("snmp_poll_responses", static_cast<double>(p.responses()));
    gauge("snmp_poll_varbinds", static_cast<double>(p.varbinds()));
    std::size_t missing = 0;
    std::string first_missing;
    for (const auto& item : p.items()) {
      const outpost::snmp::Rendered r = outpost::snmp::render(item);
      const bool value = item.error.empty() && !item.value.is_exception();
      if (!value && missing++ == 0) first_missing = r.line.substr(1);
      outpost::Event e;
      e.kind = "snmp.varbind";
      e.source = j.device;
      e.severity = value ? OUTPOST_SEV_INFO : OUTPOST_SEV_WARNING;
      e.message = r.line;
      e.attributes = {{"address", j.address},
                      {"oid", outpost::snmp::to_string(item.oid)},
                      {"type", r.type},
                      {"value", r.value}};
      if (!item.walk.empty()) e.attributes.emplace_back("walk", item.walk);
      events_.push_back(std::move(e));
    }
    if ((status == OUTPOST_OK || status == OUTPOST_E_NOT_FOUND) && detail.empty()) {
      detail = std::to_string(p.varbinds()) + " varbind" + (p.varbinds() == 1 ? "" : "s") + " in " +
               std::to_string(p.responses()) + " response" + (p.responses() == 1 ? "" : "s");
      if (missing > 0)
        detail += "; " + std::to_string(missing) + " without a value: " + first_missing +
                  (missing > 1 ? " ..." : "");
      if (status == OUTPOST_E_NOT_FOUND) detail = "the agent answered but gave no value: " + detail;
    }
    return status;
  }

  void flush() {
    if (!metrics_.empty() || !events_.empty()) {
      std::vector<outpost::Metric> m;
      std::vector<outpost::Event> e;
      m.swap(metrics_);
      e.swap(events_);
      host_.emit(m, e);  // a BUSY answer is the host's back-pressure, counted there
    }
    std::vector<Completion> done;
    done.swap(completions_);
    for (const auto& c : done) host_.complete(c.poll_id, c.target_id, c.status, c.detail);
  }

  struct Resolved {
    std::string host, ip, error;
  };

  outpost::Host host_;
  std::size_t max_concurrent_ = 512;
  int retries_ = 2;
  int max_repetitions_ = 10;
  std::size_t max_oids_ = 16;
  std::size_t max_rows_ = 10000;
  int resolver_threads_ = 2;
  int64_t request_timeout_ns_ = kSecond;
  std::string default_profile_;
  std::vector<fs::path> profile_dirs_;

  std::mutex profiles_mu_;
  std::shared_ptr<const outpost::snmp::ProfileSet> profiles_;
  std::string profiles_sig_;
  int64_t profiles_checked_ns_ = 0;

  // Shared with poll() and the resolver threads.
  mutable std::mutex mu_;
  std::condition_variable cv_dns_;
  bool running_ = false;
  bool stopping_ = false;
  std::vector<std::unique_ptr<Job>> incoming_;
  std::deque<std::string> dns_queue_;
  std::vector<Resolved> dns_results_;
  Fd epoll_, wake_;
  std::thread io_;
  std::vector<std::thread> resolvers_;

  // Owned by the I/O thread.
  std::unordered_map<uint64_t, std::unique_ptr<Job>> jobs_;
  std::deque<uint64_t> waiting_;
  std::vector<uint64_t> parked_;
  std::unordered_map<std::string, std::vector<uint64_t>> pending_dns_;
  std::priority_queue<std::pair<int64_t, uint64_t>, std::vector<std::pair<int64_t, uint64_t>>,
                      std::greater<>>
      timers_;
  std::unordered_map<std::string, DeviceState> devices_;
  netsnmp_large_fd_set fdset_{};
  uint64_t next_seq_ = 1;
  std::size_t active_ = 0;
  int64_t saturated_ns_ = INT64_MIN;
  int64_t pruned_ns_ = 0;
  std::vector<outpost::Metric> metrics_;
  std::vector<outpost::Event> events_;
  std::vector<Completion> completions_;
};

}  // namespace

OUTPOST_PLUGIN(SnmpPoller, "snmp", "1.0.0",
               "SNMP v1/v2c/v3 polling of device profiles (IF-MIB, HOST-RESOURCES-MIB, vendors)")
