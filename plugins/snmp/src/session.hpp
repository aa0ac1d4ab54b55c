// One device's poll over a net-snmp session, as a protocol of the shared poller runtime
// (plugins/lib/async_poller): the runtime resolves names, admits polls under max_concurrent,
// keeps the deadline and completes every target once; this drives the session between: SNMPv3
// engine discovery and USM claims, requests with retries on an adaptive timeout per device
// (device.hpp's RttEstimator), v3 failures told apart, and the device's metrics at the end.
#pragma once

#include <memory>
#include <outpost/sdk.hpp>
#include <outpost_lib/async_poller.hpp>
#include <string>
#include <unordered_map>
#include <vector>

#include "collector.hpp"
#include "device.hpp"
#include "library.hpp"
#include "probe.hpp"

namespace outpost::snmp {

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

// One target of a poll: what to ask (set by the plugin's poll()), then the poll's own state.
struct SnmpJob final : outpost::lib::PollJob {
  enum class Phase : uint8_t { kOpening, kDiscovering, kClaiming, kPolling, kDiagnosing };
  enum class Event : uint8_t { kNone, kResponse, kReport, kTimeout, kSecError, kSendFailed };

  std::string device, address, key;  // key: the device's state across polls
  uint16_t port = 161;
  outpost::Labels base;
  int version = 2;  // 1, 2 (2c) or 3
  std::string community;
  V3 v3;
  int retries = 2;
  int64_t request_timeout_ns = 1'000'000'000;  // the least wait for an answer
  CollectorOptions copts;
  std::string profile;
  std::shared_ptr<const ProfileSet> profiles;
  std::vector<Oid> gets, walks;  // diagnostics: these instead of a profile

  Phase phase = Phase::kOpening;
  bool ended = false;
  std::string peer;  // net-snmp transport address
  void* sess = nullptr;
  int fd = -1;
  bool closing = false;
  DeviceState* state = nullptr;
  std::unique_ptr<Collector> collector;  // a profile poll
  std::unique_ptr<Probe> probe;          // or a diagnostic get/walk
  Reader* reader = nullptr;              // whichever of the two runs
  std::string claim;                     // USM claim key while held
  netsnmp_pdu* request = nullptr;        // what is being asked, resent on a timeout
  int attempt = 0;                       // of it, from 0
  int64_t sent_ns = 0;                   // when this attempt left
  long reqid = 0;                        // the outstanding request; 0 ignores callbacks
  Event event = Event::kNone;
  Response response;
  int report = 0;  // SNMPERR_* of a v3 report
  std::string report_engine;
  bool authenticated = false;
  std::string timeout_detail;  // kept while diagnosing a v3 timeout
};

class SessionDriver final : public outpost::lib::AsyncPoller::Protocol {
 public:
  struct Settings {
    std::string default_profile;
    int64_t max_request_timeout_ns = 10'000'000'000;  // the most an adaptive wait grows to
  };
  SessionDriver(outpost::Host host, Settings settings);
  ~SessionDriver() override;
  SessionDriver(const SessionDriver&) = delete;
  SessionDriver& operator=(const SessionDriver&) = delete;
  void attach(outpost::lib::AsyncPoller& runtime) { rt_ = &runtime; }

  bool begin(outpost::lib::PollJob& job) override;
  void on_io(outpost::lib::PollJob& job, int fd, uint32_t events) override;
  void on_timer(outpost::lib::PollJob& job) override;
  void on_deadline(outpost::lib::PollJob& job) override;
  void on_end(outpost::lib::PollJob& job, outpost_status status, bool stopped) override;

 private:
  bool open(SnmpJob& j);
  void discover(SnmpJob& j);
  void claim(SnmpJob& j);
  void release_claim(SnmpJob& j);
  void start_polling(SnmpJob& j);
  void send_next(SnmpJob& j);
  void send(SnmpJob& j, netsnmp_pdu* pdu);
  void send_attempt(SnmpJob& j);
  void arm(SnmpJob& j);
  void handle(SnmpJob& j);
  void on_report(SnmpJob& j, SnmpJob::Event ev);
  void on_timeout(SnmpJob& j);
  void done(SnmpJob& j, outpost_status status, std::string detail);
  static int on_pdu(int op, netsnmp_session*, int, netsnmp_pdu* pdu, void* magic);

  outpost::Host host_;
  Settings settings_;
  outpost::lib::AsyncPoller* rt_ = nullptr;
  netsnmp_large_fd_set fdset_{};
  std::unordered_map<std::string, DeviceState> devices_;
  int64_t pruned_ns_ = 0;
};

}  // namespace outpost::snmp
