// What the poller remembers about a device between polls (its uptime, profile, restarts, object
// errors, response times) and what one poll of it reports: its metrics, events and final
// status. Free of any SNMP library, so it is testable on its own.
#pragma once

#include <cstdint>
#include <map>
#include <outpost/sdk.hpp>
#include <string>
#include <tuple>
#include <vector>

#include "collector.hpp"
#include "probe.hpp"

namespace outpost::snmp {

// RFC 6298's retransmission timer, applied to one agent. Every retransmission carries a fresh
// request-id, so an answer always belongs to the attempt it came for and every answer is a
// valid sample (the ambiguity Karn's rule guards against cannot arise).
class RttEstimator {
 public:
  void sample(int64_t rtt_ns);
  // An attempt went unanswered: the next wait is twice as long, until an answer comes.
  void backoff();
  // How long to wait for the next answer: SRTT + max(10 ms, 4 RTTVAR), doubled per unanswered
  // attempt since the last answer, within [floor_ns, ceiling_ns]; floor_ns before any answer.
  int64_t timeout(int64_t floor_ns, int64_t ceiling_ns) const;
  bool measured() const noexcept { return measured_; }
  int64_t srtt_ns() const noexcept { return srtt_; }

 private:
  int64_t srtt_ = 0, rttvar_ = 0;
  bool measured_ = false;
  int backoffs_ = 0;
};

struct DeviceState {
  double uptime_ticks = -1;
  int64_t uptime_mono_ns = 0;  // when uptime_ticks was read
  int64_t seen_mono_ns = 0;    // when a poll of it last began: devices unseen for a day go
  std::string plan;            // profile name(s) it had last time
  double restarts = 0;
  std::map<std::tuple<std::string, std::string, std::string>, double> object_errors;
  RttEstimator rtt;
};

// Who was polled: the device's name and address, and the labels its metrics start from.
struct Polled {
  const std::string& device;
  const std::string& address;
  const outpost::Labels& base;
};

struct Report {
  std::vector<outpost::Metric> metrics;
  std::vector<outpost::Event> events;
};

// The final status of a poll that ended with `status`: an agent that answered but has none of
// the profile's objects (or, for a get/walk, gave no value) is NOT_FOUND. Fills in the detail
// of a success ("profile generic, 130 varbinds in 4 responses").
outpost_status settle(const Collector* collector, outpost_status status, std::string& detail);
outpost_status settle(const Probe* probe, outpost_status status, std::string& detail);

// A profile poll: snmp_up, snmp_poll_seconds, what was read, restarts (an event when sysUpTime
// went back), object errors and the response time; updates the device's state.
void report(const Collector* collector, const Polled& who, outpost_status status,
            int64_t elapsed_ns, int64_t now_ns, DeviceState& state, Report& out);
// A diagnostic get/walk: the poll's gauges and every varbind as an snmp.varbind event whose
// message is the line net-snmp's tools would print; no device state.
void report(const Probe* probe, const Polled& who, outpost_status status, int64_t elapsed_ns,
            Report& out);

}  // namespace outpost::snmp
