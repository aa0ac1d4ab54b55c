#include "library.hpp"

#include <cctype>
#include <clocale>
#include <cstring>
#include <string_view>
#include <utility>
#include <vector>

namespace outpost::snmp::netsnmp {
namespace {

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
      throw outpost::Error(OUTPOST_E_CONFIG, std::string(what) + " must have at least " +
                                                 std::to_string(USM_LENGTH_P_MIN) + " characters");
    u_char ku[USM_AUTH_KU_LEN];
    size_t ku_len = sizeof ku;
    if (generate_Ku(proto, static_cast<u_int>(proto_len),
                    reinterpret_cast<const u_char*>(password.data()), password.size(), ku,
                    &ku_len) != SNMPERR_SUCCESS)
      throw outpost::Error(OUTPOST_E_CONFIG, std::string("cannot derive a key from ") + what);
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

}  // namespace

std::recursive_mutex& lib_mutex() {
  static std::recursive_mutex m;
  return m;
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

void add_log_host(const void* owner, outpost::Host host) {
  auto& lt = log_targets();
  std::lock_guard g(lt.mu);
  lt.hosts.emplace_back(owner, host);
}

void remove_log_host(const void* owner) {
  auto& lt = log_targets();
  std::lock_guard g(lt.mu);
  std::erase_if(lt.hosts, [owner](const auto& h) { return h.first == owner; });
}

std::string localizable_key(const oid* proto, std::size_t proto_len, const std::string& password,
                            const char* what) {
  static KeyCache cache;
  return cache.get(proto, proto_len, password, what);
}

std::map<std::string, UsmClaim>& usm_claims() {
  static std::map<std::string, UsmClaim> m;
  return m;
}

std::string errno_text(int err) {
  char buf[128];
  std::string s = ::strerror_r(err, buf, sizeof buf);  // GNU variant: returns char*
  if (!s.empty()) s[0] = static_cast<char>(std::tolower(static_cast<unsigned char>(s[0])));
  return s;
}

}  // namespace outpost::snmp::netsnmp
