// The notification receiver: one datagram in, at most one event and one reply out, every refusal
// counted by reason. v1 Trap-PDUs (converted to the v2 form per RFC 3584 3.1, v1 fields kept),
// v2c traps and informs (acknowledged), v3 traps and informs under USM (RFC 3414): engine IDs of
// trap senders learned, this engine authoritative for informs (discovery and time-window
// reports). No engine, no sockets, no net-snmp: the plugin, the unit tests and the fuzzer drive
// it the same way.
#pragma once

#include <outpost/plugin.h>

#include <cstdint>
#include <deque>
#include <list>
#include <memory>
#include <outpost/sdk.hpp>
#include <span>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "message.hpp"
#include "mib.hpp"
#include "rules.hpp"
#include "usm.hpp"

namespace outpost::snmp_trap {

enum class Drop : uint8_t {
  kNone,
  // BER, one per ber::Status
  kTruncated,
  kBadLength,
  kBadTag,
  kUnexpectedTag,
  kBadInteger,
  kBadOid,
  kTrailing,
  // SNMP
  kBadVersion,
  kBadField,
  kBadCommunity,
  kNotANotification,
  kMissingTrapOid,
  kUnknownSecurityModel,
  kBadFlags,
  // USM (RFC 3414 usmStats*)
  kUnknownEngineId,
  kUnknownUser,
  kUnsupportedSecLevel,
  kWrongDigest,
  kNotInTimeWindow,
  kDecryptionError,
};
constexpr std::size_t kDropCount = 21;
const char* drop_name(Drop d) noexcept;

// The reports this engine sends (RFC 3414 usmStats objects).
enum class Report : uint8_t {
  kUnsupportedSecLevel,
  kNotInTimeWindow,
  kUnknownUser,
  kUnknownEngineId,
  kWrongDigest,
  kDecryptionError,
};
constexpr std::size_t kReportCount = 6;
const char* report_name(Report r) noexcept;

struct User {
  std::string name;
  AuthProto auth = AuthProto::kNone;
  PrivProto priv = PrivProto::kNone;
  Key auth_ku;  // password-to-key results, computed once
  Key priv_ku;
  Bytes engine_id;  // empty: any engine (learned)
  int level() const noexcept {
    return auth == AuthProto::kNone ? 0 : priv == PrivProto::kNone ? 1 : 2;
  }
};

struct Settings {
  std::vector<std::string> communities;  // empty: any
  std::vector<User> users;
  std::vector<Rule> rules;
  std::shared_ptr<const MibMap> mibs;    // null: numeric only
  uint32_t severity = OUTPOST_SEV_INFO;  // of plain "trap" events
  std::size_t max_varbinds = 128;        // kept per trap; the rest counted in varbinds_omitted
  std::size_t max_value_length = 1024;   // bytes of one attribute value
  std::size_t max_engines = 10000;       // learned engine IDs kept (least recently used go)
  double max_reports_per_second = 100;   // 0: no limit
};

// This engine's identity as the authoritative engine of informs (RFC 3414 2.2).
struct OwnEngine {
  Bytes engine_id;
  int64_t boots = 1;
  int64_t start_mono_ns = 0;  // engineTime counts from here
};

struct Outcome {
  Drop drop = Drop::kNone;
  bool has_event = false;
  outpost::Event event;
  std::vector<uint8_t> reply;  // send to the datagram's source when not empty
  bool ack = false;            // reply is an inform's Response
  bool duplicate = false;      // an inform seen already: acknowledged again, no event
  bool has_report = false;
  Report report = Report::kUnknownEngineId;
  bool report_suppressed = false;  // rate limit
};

struct Counters {
  uint64_t datagrams = 0;
  uint64_t received[3][2] = {};  // [v1, v2c, v3][trap, inform]
  uint64_t dropped[kDropCount] = {};
  uint64_t acknowledged[3] = {};
  uint64_t reports[kReportCount] = {};
  uint64_t reports_suppressed = 0;
  uint64_t duplicates = 0;
  uint64_t engines_learned = 0;
  std::vector<uint64_t> alerts;  // per rule
};

class Receiver {
 public:
  Receiver(Settings settings, OwnEngine own);

  // A new start: this engine's ID, boots and clock (keys localized to the old ID go).
  void set_own(OwnEngine own);

  // One datagram. wall_ns stamps the event; mono_ns drives engine time and caches.
  void handle(std::span<const uint8_t> data, const outpost_sockaddr& from, int64_t wall_ns,
              int64_t mono_ns, Outcome& out);

  const Counters& counters() const noexcept { return counters_; }
  const Settings& settings() const noexcept { return settings_; }
  const OwnEngine& own() const noexcept { return own_; }
  std::size_t engines() const noexcept { return engines_.size(); }
  // engineTime now (RFC 3414 2.2.2), in seconds since start.
  int64_t engine_time(int64_t mono_ns) const noexcept;

 private:
  struct LocalKeys {
    Key auth;
    Key priv;
    bool has_priv = false;
  };
  struct EngineEntry {
    bool timed = false;  // boots/time learned from an authenticated message
    int64_t boots = 0;
    int64_t time = 0;
    int64_t mono_ns = 0;
    std::vector<std::unique_ptr<LocalKeys>> keys;  // per user
    std::list<std::string>::iterator lru;
  };

  void handle_community(const Message& m, const outpost_sockaddr& from, int64_t wall_ns,
                        int64_t mono_ns, Outcome& out);
  // An SNMPv3 message, along RFC 3412 7.2 and RFC 3414 3.2; each step below is one function.
  void handle_v3(std::span<const uint8_t> data, const Message& m, const outpost_sockaddr& from,
                 int64_t wall_ns, int64_t mono_ns, Outcome& out);
  struct Authenticated {
    const User* user = nullptr;
    std::size_t index = 0;
    LocalKeys* keys = nullptr;  // the keys that verified the MAC (authenticated levels)
  };
  int64_t plain_request_id(const Message& m) const;
  Authenticated authenticate(std::span<const uint8_t> data, const Message& m, int level,
                             LocalKeys& scratch, Drop& failure);
  bool timely(const Message& m, bool own, int64_t mono_ns);
  Drop open_scoped_pdu(const Message& m, int level, const Authenticated& a, LocalKeys*& keys,
                       LocalKeys& scratch, ScopedPdu& sp, std::vector<uint8_t>& plain);
  void learn_sender(const Message& m, std::size_t user_index, LocalKeys*& keys, LocalKeys& scratch,
                    int64_t mono_ns);
  void acknowledge_inform(const Message& m, const ScopedPdu& sp, const User& user,
                          const LocalKeys* keys, const outpost_sockaddr& from, int64_t mono_ns,
                          Outcome& out);

  // Keys of user u for engine_id: from the cache, or computed (priv only when asked).
  LocalKeys* keys_for(std::size_t u, std::span<const uint8_t> engine_id, bool need_priv,
                      LocalKeys& scratch);
  EngineEntry& learn(std::span<const uint8_t> engine_id, int64_t mono_ns);
  EngineEntry* find_engine(std::span<const uint8_t> engine_id);

  void report(const Message& m, Report r, int64_t request_id, const User* auth_user,
              const LocalKeys* keys, int64_t mono_ns, Outcome& out);
  bool take_report_token(int64_t mono_ns);
  // The inform's varbinds back in a Response, v3 style.
  std::vector<uint8_t> v3_response(const Message& m, const ScopedPdu& sp, const Pdu& pdu,
                                   const User& user, const LocalKeys& keys, int64_t mono_ns);
  bool seen_inform(const std::string& key, int64_t mono_ns);

  struct Security {
    int version = 0;  // 0 v1, 1 v2c, 2 v3
    std::string community;
    const User* user = nullptr;
    std::span<const uint8_t> engine_id;
    std::span<const uint8_t> context_engine_id;
    std::span<const uint8_t> context_name;
    uint8_t flags = 0;
  };
  // Builds the event (and counts it); false when the PDU carries no snmpTrapOID.
  bool notify(const Security& sec, const Pdu& pdu, const outpost_sockaddr& from, int64_t wall_ns,
              Outcome& out);

  Settings settings_;
  OwnEngine own_;
  Counters counters_;
  std::unique_ptr<MibMap> empty_mibs_;
  std::vector<std::unique_ptr<LocalKeys>> own_keys_;  // per user, for our engine ID
  std::unordered_map<std::string, EngineEntry> engines_;
  std::list<std::string> lru_;  // front: most recently used
  uint64_t salt_ = 0;
  double report_tokens_ = 0;
  int64_t report_refill_ns_ = 0;
  std::deque<std::pair<std::string, int64_t>> recent_informs_;
  std::unordered_set<std::string> recent_set_;
  Pdu pdu_;                    // reused between datagrams
  std::vector<uint8_t> work_;  // authentication copy / plaintext
};

}  // namespace outpost::snmp_trap
