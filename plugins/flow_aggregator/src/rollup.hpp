// Per-interval traffic rollups of flow records: totals per exporter and interface, top talkers,
// top conversations, protocols and applications, with top-N plus an "other" bucket so memory
// and output stay bounded whatever the traffic. Duplicate flows (the same flow reported at
// several observation points) are counted once.
#pragma once

#include <outpost/plugin.h>

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "flat_map.hpp"

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
  void add(const Volume& o) {
    bytes += o.bytes;
    packets += o.packets;
    flows += o.flows;
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
uint16_t service_port(uint16_t a, uint16_t b);

class Rollup {
 public:
  explicit Rollup(RollupOptions o) : opt_(o) {}
  void add(const outpost_flow& f);
  // The interval's summary; resets the state for the next interval.
  std::vector<SummaryRow> take();
  uint64_t duplicates() const { return duplicates_; }
  uint64_t flows() const { return flows_; }

 private:
  // Table keys: no padding bytes, since FlatMap hashes and compares them bytewise.
  // A 5-tuple as five words, written whole (no byte stores for the hash to read back): the
  // source and destination addresses (IPv4 in the first 4 bytes, the rest zero), then
  // protocol, family and ports.
  struct TupleKey {
    uint64_t w[5] = {0, 0, 0, 0, 0};
    Addr src() const;
    Addr dst() const;
    uint8_t proto() const { return static_cast<uint8_t>(w[4]); }
    uint16_t sport() const { return static_cast<uint16_t>(w[4] >> 16); }
    uint16_t dport() const { return static_cast<uint16_t>(w[4] >> 32); }
  };
  struct ConvKey {
    Addr src, dst;
  };
  struct IfKey {
    uint32_t ifindex = 0;
    Addr exporter;
    uint8_t out = 0;
    uint8_t pad[2] = {0, 0};
  };
  // One 5-tuple's traffic at its first observation point (an exporter's ingress interface)
  // this interval, and the egress interface it was seen leaving by.
  struct TupleEntry {
    uint64_t exporter[2] = {0, 0};  // the record's 16 exporter bytes
    uint32_t in_if = 0, out_if = 0;
    uint8_t exporter_family = 0;
    Volume volume;
  };

  template <typename Map, typename Key>
  Volume* slot(Map& m, const Key& k, Volume& other);
  // Counts into every table at once: records the tuple table cannot take, and the tuple
  // table's entries when an interval ends.
  void add_direct(const Addr& exp, const Addr& src, const Addr& dst, uint32_t in_if,
                  uint32_t out_if, uint8_t proto, uint16_t sport, uint16_t dport, const Volume& v);

  RollupOptions opt_;
  FlatMap<Addr, Volume> exporters_;
  FlatMap<IfKey, Volume> interfaces_;
  FlatMap<Addr, Volume> talkers_;
  FlatMap<ConvKey, Volume> conversations_;
  std::array<Volume, 256> protocols_{};
  FlatMap<uint32_t, Volume> applications_;  // protocol << 16 | port
  // The hot path: a record costs one lookup here; the other tables are filled from this one
  // when the interval ends (plus directly, for what this table cannot hold).
  FlatMap<TupleKey, TupleEntry> tuples_;
  Volume other_talkers_, other_conversations_, other_interfaces_, other_apps_;
  uint64_t duplicates_ = 0, flows_ = 0, dup_interval_ = 0, overflow_ = 0;
};

}  // namespace outpost::flows
