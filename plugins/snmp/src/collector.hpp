// What one poll of one device reads, as a state machine free of any SNMP library: it says which
// request to send next, takes the decoded answer, and finally turns what it read into metrics.
// The I/O side (snmp.cpp) only moves PDUs, so this logic is testable and fuzzable on its own.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <outpost/sdk.hpp>
#include <string>
#include <vector>

#include "snmp/oid.hpp"
#include "snmp/profile.hpp"

namespace outpost::snmp {

enum class PduType : uint8_t { kGet, kGetNext, kGetBulk };

struct Request {
  PduType type = PduType::kGet;
  std::vector<Oid> oids;
  int repetitions = 0;  // GetBulk max-repetitions
};

struct Response {
  long error_status = 0;  // SNMP error-status (0 = noError)
  long error_index = 0;   // 1-based varbind the error is about
  std::vector<VarBind> varbinds;
};

struct CollectorOptions {
  int version = 2;                    // 1 (GETNEXT walks, noSuchName errors), 2 (v2c) or 3
  int repetitions = 10;               // GetBulk max-repetitions
  std::size_t max_oids = 16;          // varbinds per GET, columns per walk request
  std::size_t max_rows = 10000;       // per table column, unless the profile says otherwise
  std::size_t max_varbinds = 200000;  // per poll of one device: a bound on memory
};

// An object that could not be read, as operators see it: name, OID and why.
struct ObjectError {
  std::string object;
  std::string oid;
  std::string error;  // noSuchObject, noSuchInstance, noSuchName, genErr, tooBig, truncated, ...
};

const char* error_status_name(long status) noexcept;

extern const Oid kSysUpTime;    // 1.3.6.1.2.1.1.3.0
extern const Oid kSysObjectId;  // 1.3.6.1.2.1.1.2.0

// What the I/O side (snmp.cpp) drives through one device's poll, one request at a time: the
// profile Collector below, or a diagnostic get/walk of chosen OIDs (probe.hpp).
class Reader {
 public:
  virtual ~Reader() = default;
  // The request to send now; nullopt when the poll is complete.
  virtual std::optional<Request> next() = 0;
  // The answer to the request next() returned last.
  virtual void on_response(const Response& r) = 0;
  // No answer to it.
  virtual void on_timeout() = 0;
  // A reason the poll cannot go on; empty when none.
  virtual const std::string& failure() const = 0;
  // Where a timeout struck, for its detail ("walking ifTable").
  virtual std::string activity() const = 0;
  virtual std::size_t responses() const = 0;
  virtual std::size_t varbinds() const = 0;
  // True once any varbind that is not an exception came back.
  virtual bool got_data() const = 0;
};

class Collector final : public Reader {
 public:
  // profile: explicit profile names ("a" or "a,b"); empty selects by sysObjectID, falling back
  // to default_profile. guess: the plan this device had last time, whose scalars ride along
  // with the first request (may be null).
  Collector(CollectorOptions opts, std::shared_ptr<const ProfileSet> profiles, std::string profile,
            std::string default_profile, std::shared_ptr<const Plan> guess);

  std::optional<Request> next() override;
  void on_response(const Response& r) override;
  // Once the agent has answered something, the objects asked are counted as timed out (an
  // agent that stalls on one table); a silent agent is the device's failure.
  void on_timeout() override;

  bool done() const noexcept { return phase_ == Phase::kDone; }
  // An unknown profile, or none matching.
  const std::string& failure() const noexcept override { return failure_; }
  // "reading sysUpTime and sysObjectID", "walking ifTable".
  std::string activity() const override;

  std::shared_ptr<const Plan> plan() const noexcept { return plan_; }
  std::optional<double> uptime_ticks() const;
  std::string sysobjectid() const;
  std::vector<ObjectError> errors() const;
  std::size_t responses() const noexcept override { return responses_; }
  std::size_t varbinds() const noexcept override { return varbinds_; }
  bool got_data() const noexcept override { return got_data_; }

  // Metrics for what was read: snmp_info, snmp_uptime_seconds, every scalar and table metric.
  // base: device, address and tags.
  void build(const Labels& base, std::vector<Metric>& out) const;

 private:
  enum class Phase : uint8_t { kSystem, kScalars, kTables, kDone };

  struct Column {
    const ObjectDef* def = nullptr;
    Oid pos;               // last OID seen; starts at the column's OID
    std::size_t slot = 0;  // position in a row's values
    std::size_t rows = 0;
    bool done = false;
  };
  struct Table {
    const TableDef* def = nullptr;
    std::vector<Column> columns;
    std::vector<const ObjectDef*>
        slots;  // every column def, labels first, then metrics, then fallbacks
    std::map<Oid, std::vector<std::optional<Value>>> rows;  // index → value per slot
    bool fallbacks_added = false;
    std::size_t slot_of(const std::string& name) const;
  };

  void choose_plan();
  void start_table();
  bool add_fallbacks(Table& t);
  void on_get(const Response& r);
  void on_walk(const Response& r);
  void record(const std::string& object, const Oid& oid, std::string error);
  std::string name_of_scalar(const Oid& oid) const;

  CollectorOptions opts_;
  std::shared_ptr<const ProfileSet> profiles_;
  std::string profile_, default_profile_;
  std::shared_ptr<const Plan> plan_;
  std::shared_ptr<const Plan> guess_;
  Phase phase_ = Phase::kSystem;
  std::string failure_;

  std::map<Oid, Value> scalars_;      // every scalar read, by OID
  std::vector<Oid> pending_;          // scalars still to GET
  std::vector<Oid> inflight_;         // the OIDs of the last GET
  std::vector<Oid> tried_;            // scalars asked once, answered or failed
  std::vector<std::size_t> walking_;  // columns of the last walk request
  std::size_t table_index_ = 0;
  std::vector<Table> tables_;
  int repetitions_ = 10;
  std::size_t width_ = 16;  // current max_oids, halved on tooBig

  std::vector<ObjectError> errors_;
  std::size_t responses_ = 0, varbinds_ = 0;
  bool got_data_ = false;
};

}  // namespace outpost::snmp
