// A diagnostic read of chosen OIDs instead of a profile: a GET of every `get` OID, then a walk
// of every `walk` subtree, the way net-snmp's snmpget and snmpbulkwalk read them. Every varbind
// the agent answered is kept in the order asked, exceptions and per-OID errors included, so an
// operator sees what the agent tells Outpost's own sessions and credentials. Free of any SNMP
// library, like the Collector.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "collector.hpp"

namespace outpost::snmp {

struct ProbeItem {
  Oid oid;            // the varbind's OID; for an error, the OID asked or the walk's root
  Value value;        // as the agent sent it (noSuchObject... included); kNull with an error
  std::string error;  // why there is no value: noSuchName, genErr, tooBig, timeout, ...
  std::string walk;   // the root of the walk it came from, dotted; empty for a get
};

class Probe final : public Reader {
 public:
  Probe(CollectorOptions opts, std::vector<Oid> gets, std::vector<Oid> walks);

  std::optional<Request> next() override;
  void on_response(const Response& r) override;
  // Once the agent has answered something, what was being read is marked as timed out.
  void on_timeout() override;
  const std::string& failure() const noexcept override { return failure_; }
  std::string activity() const override;
  std::size_t responses() const noexcept override { return responses_; }
  std::size_t varbinds() const noexcept override { return varbinds_; }
  bool got_data() const noexcept override { return got_data_; }

  // What was read so far: the gets in the order asked, then each walk in order.
  std::vector<ProbeItem> items() const;

 private:
  enum class Phase : uint8_t { kGets, kWalks, kDone };

  void on_get(const Response& r);
  void on_walk(const Response& r);
  void on_root_get(const Response& r);
  void walk_item(Oid oid, Value value, std::string error);
  void start_walk();

  CollectorOptions opts_;
  std::vector<Oid> gets_, walks_;
  Phase phase_ = Phase::kGets;
  std::string failure_;  // stays empty: bad OIDs are refused before a probe exists

  std::vector<std::size_t> pending_;                 // gets not asked yet
  std::vector<std::size_t> inflight_;                // gets of the last GET
  std::vector<std::optional<ProbeItem>> get_items_;  // one per get, once read
  std::size_t width_ = 16;

  std::size_t walk_ = 0;  // the walk in progress
  Oid pos_;               // the last OID it reached
  std::size_t found_ = 0;
  bool walk_done_ = false;
  bool root_get_ = false;  // asking the root itself: the subtree held nothing (as snmpwalk does)
  bool root_asked_ = false;
  int repetitions_ = 10;
  std::vector<ProbeItem> walk_items_;

  std::size_t responses_ = 0, varbinds_ = 0;
  bool got_data_ = false;
};

// A value as net-snmp's tools print it, so the two can be compared line by line: `type` is
// their tag ("STRING", "Hex-STRING", "INTEGER", "Counter64", "Timeticks", "OID", "IpAddress",
// "Gauge32", "NULL"; "noSuchObject", "noSuchInstance", "endOfMibView"; "error" for a per-OID
// error), `value` the plain value (text unquoted, hex bytes, ticks, dotted OID), `line` the
// whole line: `.1.3.6.1.2.1.1.5.0 = STRING: "name"`.
struct Rendered {
  std::string type;
  std::string value;
  std::string line;
};
Rendered render(const ProbeItem& item);

}  // namespace outpost::snmp
