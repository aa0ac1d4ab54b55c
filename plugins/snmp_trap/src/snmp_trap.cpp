// SNMP trap and inform receiver: a listener plugin. The core owns the UDP socket (conventionally
// UDP/162) and hands the datagrams over in batches; receiver.cpp does the protocol work. This
// file adds what needs the engine: configuration (communities, v3 users with credentials
// fetched from the host, rules, MIBs), this engine's persistent SNMP engine ID and boot count,
// replies through the core's socket, and the counters as metrics.
#include <algorithm>
#include <charconv>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <outpost/sdk.hpp>
#include <sstream>
#include <system_error>

#include "mib_loader.hpp"
#include "receiver.hpp"
#include "rules.hpp"
#include "usm.hpp"

namespace outpost::snmp_trap {
namespace {

constexpr const char* kStateFile = "snmp_trap-engine.txt";
constexpr int64_t kInt32Max = 2147483647;

int64_t to_ns(double seconds) { return static_cast<int64_t>(seconds * 1e9); }

std::optional<Bytes> parse_hex(std::string_view s) {
  if (s.size() >= 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) s.remove_prefix(2);
  if (s.size() % 2 != 0) return std::nullopt;
  Bytes out;
  for (std::size_t i = 0; i < s.size(); i += 2) {
    uint8_t b = 0;
    auto [p, ec] = std::from_chars(s.data() + i, s.data() + i + 2, b, 16);
    if (ec != std::errc{} || p != s.data() + i + 2) return std::nullopt;
    out.push_back(b);
  }
  return out;
}

// The items of a list setting: "users.0" (one string of key=value words) or, where the
// configuration gives maps, "users.0.name", "users.0.auth", ... -> pairs per item, in order.
std::vector<Pairs> list_items(const Config& cfg, std::string_view list) {
  std::map<std::size_t, Pairs> by_index;
  const std::string prefix = std::string(list) + ".";
  for (std::size_t i = 0; i < cfg.size(); ++i) {
    const std::string_view key = view(cfg.data()[i].key);
    const std::string_view value = view(cfg.data()[i].value);
    if (key.substr(0, prefix.size()) != prefix) continue;
    const std::string_view rest = key.substr(prefix.size());
    const std::size_t dot = rest.find('.');
    std::size_t idx = 0;
    const std::string_view digits = rest.substr(0, dot);
    auto [p, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), idx);
    if (ec != std::errc{} || p != digits.data() + digits.size()) continue;
    Pairs& item = by_index[idx];
    if (dot == std::string_view::npos) {
      try {
        for (auto& kv : parse_pairs(value)) item.push_back(std::move(kv));
      } catch (const std::invalid_argument& e) {
        throw Error(OUTPOST_E_CONFIG,
                    std::string(list) + "[" + std::to_string(idx) + "]: " + e.what());
      }
    } else {
      // A list inside a map ("oid: [a, b]" -> "oid.0", "oid.1") is the key repeated, as in the
      // string form.
      std::string_view member = rest.substr(dot + 1);
      const std::size_t last = member.rfind('.');
      if (last != std::string_view::npos && last + 1 < member.size() &&
          member.find_first_not_of("0123456789", last + 1) == std::string_view::npos)
        member = member.substr(0, last);
      item.emplace_back(std::string(member), std::string(value));
    }
  }
  std::vector<Pairs> out;
  out.reserve(by_index.size());
  for (auto& [i, item] : by_index) out.push_back(std::move(item));
  return out;
}

User make_user(const Pairs& pairs, const Host& host, const std::string& where) {
  User u;
  std::string auth, priv, auth_pw, priv_pw;
  bool has_auth_pw = false, has_priv_pw = false;
  for (const auto& [k, v] : pairs) {
    if (k == "name" || k == "user") {
      u.name = v;
    } else if (k == "auth" || k == "auth_protocol") {
      auth = v;
    } else if (k == "priv" || k == "priv_protocol") {
      priv = v;
    } else if (k == "auth_password") {
      auth_pw = v, has_auth_pw = true;
    } else if (k == "auth_password_ref") {
      auth_pw = host.secret(v), has_auth_pw = true;
    } else if (k == "priv_password") {
      priv_pw = v, has_priv_pw = true;
    } else if (k == "priv_password_ref") {
      priv_pw = host.secret(v), has_priv_pw = true;
    } else if (k == "engine_id") {
      auto id = parse_hex(v);
      if (!id || id->size() < 5 || id->size() > 32)
        throw Error(OUTPOST_E_CONFIG, where + ": engine_id must be 5 to 32 bytes in hex");
      u.engine_id = std::move(*id);
    } else {
      std::string msg = where;
      msg += ": unknown key '";
      msg += k;
      msg +=
          "' (expected name, auth, auth_password, auth_password_ref, priv, priv_password, "
          "priv_password_ref, engine_id)";
      throw Error(OUTPOST_E_CONFIG, msg);
    }
  }
  if (u.name.empty() || u.name.size() > 32)
    throw Error(OUTPOST_E_CONFIG, where + ": a user needs a name of 1 to 32 characters");
  const std::string who = where + " (" + u.name + ")";
  if (!auth.empty() && auth != "none") {
    auto a = parse_auth(auth);
    if (!a)
      throw Error(
          OUTPOST_E_CONFIG,
          who + ": auth '" + auth + "': expected MD5, SHA, SHA-224, SHA-256, SHA-384 or SHA-512");
    u.auth = *a;
  }
  if (!priv.empty() && priv != "none") {
    auto p = parse_priv(priv);
    if (!p) {
      if (priv == "DES" || priv == "des")
        throw Error(
            OUTPOST_E_CONFIG,
            who + ": DES is not supported (OpenSSL 3 keeps it in its legacy provider); use AES");
      throw Error(
          OUTPOST_E_CONFIG,
          who + ": priv '" + priv + "': expected AES, AES-192, AES-256, AES-192-C or AES-256-C");
    }
    if (u.auth == AuthProto::kNone)
      throw Error(OUTPOST_E_CONFIG, who + ": privacy needs authentication (auth)");
    u.priv = *p;
  }
  // RFC 3414 11.2 and net-snmp both want passphrases of at least 8 characters.
  if (u.auth != AuthProto::kNone) {
    if (!has_auth_pw || auth_pw.size() < 8)
      throw Error(OUTPOST_E_CONFIG,
                  who + ": auth_password (or auth_password_ref) of at least 8 characters needed");
    u.auth_ku = password_to_key(u.auth, auth_pw);
  } else if (has_auth_pw) {
    throw Error(OUTPOST_E_CONFIG, who + ": auth_password given without auth");
  }
  if (u.priv != PrivProto::kNone) {
    if (!has_priv_pw || priv_pw.size() < 8)
      throw Error(OUTPOST_E_CONFIG,
                  who + ": priv_password (or priv_password_ref) of at least 8 characters needed");
    u.priv_ku = password_to_key(u.auth, priv_pw);
  } else if (has_priv_pw) {
    throw Error(OUTPOST_E_CONFIG, who + ": priv_password given without priv");
  }
  std::fill(auth_pw.begin(), auth_pw.end(), '\0');
  std::fill(priv_pw.begin(), priv_pw.end(), '\0');
  return u;
}

}  // namespace

class SnmpTrapListener final : public Listener {
 public:
  SnmpTrapListener(Host host, const Config& cfg) : host_(host) {
    Settings s;
    s.communities = cfg.get_list("communities");
    const int64_t max_varbinds = cfg.get_int("max_varbinds", 128);
    const int64_t max_value = cfg.get_int("max_value_length", 1024);
    const int64_t max_engines = cfg.get_int("max_engines", 10000);
    const int64_t max_reports = cfg.get_int("max_reports_per_second", 100);
    const double stats = cfg.get_seconds("stats_interval", 10);
    if (max_varbinds < 1 || max_varbinds > 65535)
      throw Error(OUTPOST_E_CONFIG, "max_varbinds must be 1 to 65535");
    if (max_value < 16 || max_value > 65535)
      throw Error(OUTPOST_E_CONFIG, "max_value_length must be 16 to 65535");
    if (max_engines < 1 || max_engines > 10'000'000)
      throw Error(OUTPOST_E_CONFIG, "max_engines must be 1 to 10000000");
    if (max_reports < 0 || max_reports > 1'000'000)
      throw Error(OUTPOST_E_CONFIG, "max_reports_per_second must be 0 to 1000000");
    if (stats > 86400) throw Error(OUTPOST_E_CONFIG, "stats_interval must be at most 1d");
    s.max_varbinds = static_cast<std::size_t>(max_varbinds);
    s.max_value_length = static_cast<std::size_t>(max_value);
    s.max_engines = static_cast<std::size_t>(max_engines);
    s.max_reports_per_second = static_cast<double>(max_reports);
    stats_interval_ns_ = to_ns(stats);
    const std::string sev = cfg.get("severity", "info");
    const auto severity = parse_severity(sev);
    if (!severity) throw Error(OUTPOST_E_CONFIG, "severity '" + sev + "': expected emerg .. debug");
    s.severity = *severity;

    if (const std::string id = cfg.get("engine_id"); !id.empty()) {
      auto b = parse_hex(id);
      if (!b || b->size() < 5 || b->size() > 32)
        throw Error(OUTPOST_E_CONFIG,
                    "engine_id must be 5 to 32 bytes in hex (RFC 3411 SnmpEngineID)");
      configured_engine_id_ = std::move(*b);
    }
    state_dir_ = cfg.get("state_dir");

    // MIBs first: rules name traps and varbinds by them.
    const auto dirs = cfg.get_list("mib_dirs");
    const auto modules = cfg.get_list("mibs");
    const MibLoad mibs = load_mibs(dirs, modules, cfg.get_bool("builtin_names", true));
    for (const auto& p : mibs.problems) host_.log(OUTPOST_LOG_WARN, "snmp_trap: " + p);
    if (!dirs.empty())
      host_.log(OUTPOST_LOG_INFO, "snmp_trap: " + std::to_string(mibs.objects) +
                                      " named OIDs from " + std::to_string(dirs.size()) +
                                      " MIB director" + (dirs.size() == 1 ? "y" : "ies"));
    s.mibs = mibs.map;

    const auto users = list_items(cfg, "users");
    for (std::size_t i = 0; i < users.size(); ++i)
      s.users.push_back(make_user(users[i], host_, "users[" + std::to_string(i) + "]"));
    const auto rules = list_items(cfg, "rules");
    for (std::size_t i = 0; i < rules.size(); ++i) {
      try {
        s.rules.push_back(make_rule(rules[i], *s.mibs));
      } catch (const std::invalid_argument& e) {
        throw Error(OUTPOST_E_CONFIG, "rules[" + std::to_string(i) + "]: " + e.what());
      }
    }
    receiver_ = std::make_unique<Receiver>(std::move(s), OwnEngine{});
  }
  SnmpTrapListener(const SnmpTrapListener&) = delete;
  SnmpTrapListener& operator=(const SnmpTrapListener&) = delete;

  static std::vector<outpost_field> config_fields() {
    using outpost::field;
    return {
        field("communities", OUTPOST_FIELD_LIST,
              "v1/v2c communities accepted; empty: any (others are dropped as bad_community)"),
        field("users", OUTPOST_FIELD_LIST,
              "SNMPv3 USM users, one string each: 'NAME auth=SHA-256 auth_password_ref=CRED "
              "priv=AES priv_password_ref=CRED [engine_id=HEX]' (see the plugin's README)"),
        field("rules", OUTPOST_FIELD_LIST,
              "Alert rules, one string each: 'name=N oid=OID-or-NAME source=CIDR varbind=OID "
              "equals=V|regex=RE severity=warning message=TEMPLATE'; the first match wins"),
        field("engine_id", OUTPOST_FIELD_STRING,
              "This engine's SNMPv3 engine ID in hex (authoritative for informs); default: "
              "generated once and kept in state_dir"),
        field("state_dir", OUTPOST_FIELD_STRING,
              "Directory of snmp_trap-engine.txt (engine ID and boot count); empty: a new engine "
              "ID at every start"),
        field("mib_dirs", OUTPOST_FIELD_LIST,
              "Directories of MIB files, read with net-snmp's parser at start"),
        field("mibs", OUTPOST_FIELD_LIST,
              "MIB modules to read from mib_dirs; empty or ALL: every one", "ALL"),
        field("builtin_names", OUTPOST_FIELD_BOOL,
              "Name a few standard objects (coldStart, linkDown, ifIndex...) without MIB files",
              "true"),
        field("severity", OUTPOST_FIELD_STRING, "Severity of trap events that no rule matched",
              "info"),
        field("max_varbinds", OUTPOST_FIELD_INT, "Varbinds kept per trap (the rest are counted)",
              "128"),
        field("max_value_length", OUTPOST_FIELD_INT, "Bytes of one varbind value kept", "1024"),
        field("max_engines", OUTPOST_FIELD_INT,
              "SNMPv3 engine IDs learned and kept with their keys and clocks (LRU)", "10000"),
        field("max_reports_per_second", OUTPOST_FIELD_INT,
              "SNMPv3 reports sent at most (discovery, time window, errors); 0 = no limit", "100"),
        field("stats_interval", OUTPOST_FIELD_DURATION,
              "Counters (snmp_trap_*) are emitted this often while anything changes; 0 = with "
              "every batch",
              "10s"),
    };
  }

  void start() override {
    OwnEngine own = load_engine();
    host_.log(OUTPOST_LOG_INFO, "snmp_trap: engine ID " + snmp::ber::hex(own.engine_id) +
                                    ", boots " + std::to_string(own.boots));
    receiver_->set_own(std::move(own));
    host_.set_timer(kTickTimer, Host::stats_timer_period(stats_interval_ns_));
  }

  void stop() override {
    host_.emit(metrics());
    last_stats_ns_ = host_.monotonic_ns();
  }

  void receive(std::span<const outpost_datagram> datagrams) override {
    events_.clear();
    for (const auto& d : datagrams) {
      const int64_t mono = host_.monotonic_ns();
      receiver_->handle(std::span(d.data, d.len), d.source,
                        d.recv_time_ns != 0 ? d.recv_time_ns : host_.now_ns(), mono, outcome_);
      if (!outcome_.reply.empty() &&
          host_.reply(d.socket_id, d.source, outcome_.reply) != OUTPOST_OK)
        ++reply_errors_;
      if (outcome_.has_event) events_.push_back(std::move(outcome_.event));
    }
    ++activity_;
    const int64_t now = host_.monotonic_ns();
    std::vector<Metric> m;
    if (now - last_stats_ns_ >= stats_interval_ns_) {
      m = metrics();
      last_stats_ns_ = now;
      reported_activity_ = activity_;
    }
    if (!events_.empty() || !m.empty()) host_.emit(m, events_);
  }

 private:
  // Counters while no trap comes.
  void on_timer(uint64_t) override {
    const int64_t now = host_.monotonic_ns();
    if (activity_ == reported_activity_ || now - last_stats_ns_ < stats_interval_ns_) return;
    last_stats_ns_ = now;
    reported_activity_ = activity_;
    host_.emit(metrics());
  }

  // engine ID: configured, else the state file's, else new; boots: one more than the state
  // file's for the same engine ID (RFC 3414 2.2.2), written back before any message is seen.
  OwnEngine load_engine() {
    OwnEngine own;
    own.start_mono_ns = host_.monotonic_ns();
    Bytes saved_id;
    int64_t saved_boots = 0;
    const auto dir = std::filesystem::path(state_dir_);
    const auto path = dir / kStateFile;
    if (!state_dir_.empty()) {
      std::ifstream in(path);
      std::string line;
      while (std::getline(in, line)) {
        std::istringstream words(line);
        std::string key, value;
        if (!(words >> key >> value) || key[0] == '#') continue;
        if (key == "engine_id") {
          if (auto b = parse_hex(value); b && b->size() >= 5 && b->size() <= 32) saved_id = *b;
        } else if (key == "boots") {
          int64_t v = 0;
          auto [p, ec] = std::from_chars(value.data(), value.data() + value.size(), v);
          if (ec == std::errc{} && v >= 0) saved_boots = v;
        }
      }
    }
    if (!configured_engine_id_.empty()) {
      own.engine_id = configured_engine_id_;
    } else if (!saved_id.empty()) {
      own.engine_id = saved_id;
    } else if (!generated_id_.empty()) {
      own.engine_id = generated_id_;  // a restart of this instance without a state file
    } else {
      // RFC 3411 SnmpEngineID, format 5 (administratively assigned octets): the high bit, a zero
      // enterprise number (none is registered for Outpost), then 12 random octets.
      own.engine_id = {0x80, 0x00, 0x00, 0x00, 0x05};
      uint8_t r[12];
      random_bytes(r, sizeof r);
      own.engine_id.insert(own.engine_id.end(), r, r + sizeof r);
      generated_id_ = own.engine_id;
    }
    int64_t base = 0;
    if (!saved_id.empty() && own.engine_id == saved_id) base = saved_boots;
    if (own.engine_id == last_id_) base = std::max(base, boots_);  // restarted in this process
    own.boots = std::min<int64_t>(base + 1, kInt32Max);
    last_id_ = own.engine_id;
    boots_ = own.boots;
    if (!state_dir_.empty()) {
      std::error_code ec;
      std::filesystem::create_directories(dir, ec);
      const auto tmp = dir / (std::string(kStateFile) + ".tmp");
      {
        std::ofstream out(tmp, std::ios::trunc);
        out << "# snmp_trap: this engine's SNMPv3 engine ID and boot count (RFC 3414 2.2)\n"
            << "engine_id " << snmp::ber::hex(own.engine_id) << "\nboots " << own.boots << "\n";
        if (!out.flush()) ec = std::make_error_code(std::errc::io_error);
      }
      if (!ec) std::filesystem::rename(tmp, path, ec);
      if (ec)
        host_.report_error(OUTPOST_E_UNAVAILABLE, "snmp_trap: cannot write " + path.string() +
                                                      ": " + ec.message() +
                                                      " (engineBoots will repeat after a restart)");
    }
    return own;
  }

  std::vector<Metric> metrics() const {
    const Counters& c = receiver_->counters();
    std::vector<Metric> out;
    auto counter = [&out](std::string name, Labels labels, uint64_t v) {
      out.push_back(
          {std::move(name), std::move(labels), static_cast<double>(v), 0, OUTPOST_METRIC_COUNTER});
    };
    static const char* versions[] = {"1", "2c", "3"};
    counter("snmp_trap_datagrams_total", {}, c.datagrams);
    for (int v = 0; v < 3; ++v) {
      counter("snmp_trap_received_total", {{"version", versions[v]}, {"pdu", "trap"}},
              c.received[v][0]);
      if (v > 0) {
        counter("snmp_trap_received_total", {{"version", versions[v]}, {"pdu", "inform"}},
                c.received[v][1]);
        counter("snmp_trap_informs_acknowledged_total", {{"version", versions[v]}},
                c.acknowledged[v]);
      }
    }
    for (std::size_t i = 1; i < kDropCount; ++i)
      counter("snmp_trap_dropped_total", {{"reason", drop_name(static_cast<Drop>(i))}},
              c.dropped[i]);
    for (std::size_t i = 0; i < kReportCount; ++i)
      counter("snmp_trap_reports_sent_total", {{"reason", report_name(static_cast<Report>(i))}},
              c.reports[i]);
    counter("snmp_trap_reports_suppressed_total", {}, c.reports_suppressed);
    counter("snmp_trap_duplicate_informs_total", {}, c.duplicates);
    counter("snmp_trap_reply_errors_total", {}, reply_errors_);
    counter("snmp_trap_engines_learned_total", {}, c.engines_learned);
    const auto& rules = receiver_->settings().rules;
    for (std::size_t i = 0; i < rules.size() && i < c.alerts.size(); ++i)
      counter("snmp_trap_alerts_total", {{"rule", rules[i].name}}, c.alerts[i]);
    out.push_back({"snmp_trap_engines",
                   {},
                   static_cast<double>(receiver_->engines()),
                   0,
                   OUTPOST_METRIC_GAUGE});
    out.push_back({"snmp_trap_engine_boots",
                   {},
                   static_cast<double>(receiver_->own().boots),
                   0,
                   OUTPOST_METRIC_GAUGE});
    return out;
  }

  Host host_;
  std::string state_dir_;
  Bytes configured_engine_id_;
  Bytes generated_id_;
  Bytes last_id_;  // of the previous start
  int64_t boots_ = 0;
  int64_t stats_interval_ns_ = 0;
  std::unique_ptr<Receiver> receiver_;
  Outcome outcome_;
  std::vector<Event> events_;
  uint64_t reply_errors_ = 0;
  int64_t last_stats_ns_ = INT64_MIN / 2;  // never: the first batch reports
  uint64_t activity_ = 0, reported_activity_ = 0;
  static constexpr uint64_t kTickTimer = 1;
};

}  // namespace outpost::snmp_trap

OUTPOST_PLUGIN(outpost::snmp_trap::SnmpTrapListener, "snmp_trap", "1.0.0",
               "SNMP trap and inform receiver: v1, v2c, v3 (USM), rules, MIB names")
