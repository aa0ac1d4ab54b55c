// Per-interval traffic rollups of flow records: totals per exporter and interface, top talkers,
// top conversations, protocols and applications, with top-N plus an "other" bucket so memory
// and output stay bounded whatever the traffic. Duplicate flows (the same flow reported at
// several observation points) are counted once.
#pragma once

#include <outpost/plugin.h>

#include <array>
#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

namespace outpost::flows {

struct Addr {
  std::array<uint8_t, 16> bytes{};
  uint8_t family = 0;
  bool operator==(const Addr&) const = default;
};

struct Volume {
  uint64_t bytes = 0, packets = 0, flows = 0;
  void add(const outpost_flow& f) {
    bytes += f.bytes;
    packets += f.packets;
    flows += 1;
  }
};

struct RollupOptions {
  std::size_t top_n = 20;
  std::size_t max_keys = 100000;  // distinct keys per table; beyond, straight into "other"
  bool dedup = true;
};

// One labelled value of a summary, ready to become a metric.
struct SummaryRow {
  std::string name;
  std::vector<std::pair<std::string, std::string>> labels;
  double value = 0;
};

std::string addr_text(const Addr& a);
Addr src_of(const outpost_flow& f);
Addr dst_of(const outpost_flow& f);
Addr exporter_of(const outpost_flow& f);
// The service port of a flow: the well-known side (the lower port, when one is below 1024).
uint16_t service_port(const outpost_flow& f);

class Rollup {
 public:
  explicit Rollup(RollupOptions o) : opt_(o) {}
  void add(const outpost_flow& f);
  // The interval's summary; resets the state for the next interval.
  std::vector<SummaryRow> take();
  uint64_t duplicates() const { return duplicates_; }
  uint64_t flows() const { return flows_; }

 private:
  struct AddrHash {
    std::size_t operator()(const Addr& a) const noexcept;
  };
  struct PairHash {
    std::size_t operator()(const std::pair<Addr, Addr>& p) const noexcept;
  };
  struct TupleKey {
    Addr src, dst;
    uint16_t sport = 0, dport = 0;
    uint8_t proto = 0;
    bool operator==(const TupleKey&) const = default;
  };
  struct TupleHash {
    std::size_t operator()(const TupleKey& k) const noexcept;
  };
  struct IfKey {
    Addr exporter;
    uint32_t ifindex = 0;
    bool out = false;
    bool operator==(const IfKey&) const = default;
  };
  struct IfHash {
    std::size_t operator()(const IfKey& k) const noexcept;
  };
  struct Point {  // an observation point: an exporter's interface
    Addr exporter;
    uint32_t ifindex = 0;
    bool operator==(const Point&) const = default;
  };

  template <typename Map, typename Key>
  Volume* slot(Map& m, const Key& k, Volume& other);

  RollupOptions opt_;
  std::unordered_map<Addr, Volume, AddrHash> exporters_;
  std::unordered_map<IfKey, Volume, IfHash> interfaces_;
  std::unordered_map<Addr, Volume, AddrHash> talkers_;
  std::unordered_map<std::pair<Addr, Addr>, Volume, PairHash> conversations_;
  std::unordered_map<uint32_t, Volume> protocols_;     // protocol
  std::unordered_map<uint32_t, Volume> applications_;  // protocol << 16 | port
  std::unordered_map<TupleKey, Point, TupleHash> seen_;
  Volume other_talkers_, other_conversations_, other_interfaces_, other_apps_;
  uint64_t duplicates_ = 0, flows_ = 0, dup_interval_ = 0, overflow_ = 0;
};

}  // namespace outpost::flows
