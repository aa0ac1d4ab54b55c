// NetFlow v5, NetFlow v9 (and cFlow, the same on the wire) and IPFIX decoding, without the
// engine: bytes and a source address in, outpost_flow records and counters out. v9 and IPFIX
// need state across datagrams (templates, sampling announced in options data, data held until
// its template arrives); that state lives in a Decoder and nowhere else, so the plugin, the
// unit tests and the fuzzers drive exactly the same code.
//
// Every length and count on the wire is checked before it is used; malformed input is counted
// by reason and skipped, never trusted. Memory is bounded by Limits.
#pragma once

#include <outpost/plugin.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <list>
#include <map>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace outpost::netflow {

// Why something was dropped. The unit differs by reason (see drop_unit()).
enum class Drop : uint8_t {
  short_packet,      // datagram shorter than its version's header
  bad_version,       // not 5, 9 or 10
  bad_length,        // header's count/length disagrees with the datagram
  bad_set,           // set length < 4 or past the end: the rest of the datagram is skipped
  reserved_set,      // set id reserved by the RFC
  bad_template,      // invalid (options) template record: the rest of its set is skipped
  truncated_record,  // a variable-length record runs past its set: the rest of the set
  no_template,       // data set whose template never came (held too long, or at stop)
  pending_full,      // data set held for its template pushed out by newer ones
  count_
};
inline constexpr std::size_t kDropReasons = static_cast<std::size_t>(Drop::count_);
std::string_view drop_name(Drop d);
std::string_view drop_unit(Drop d);  // "datagram", "set" or "template"

struct Limits {
  std::size_t max_templates = 4096;  // over every exporter; least recently used go first
  std::size_t max_pending = 1024;    // data sets held for a template not seen yet
  std::size_t max_pending_bytes = 8u << 20;
  int64_t pending_max_age_ns = 30'000'000'000;
  uint32_t default_sampling_rate = 1;  // when the exporter announces none
};

// Where a datagram came from: the address keys the template cache.
struct Exporter {
  std::array<uint8_t, 16> addr{};
  uint8_t family = 0;  // 4 or 6
  static Exporter from(const outpost_sockaddr& s);
  auto operator<=>(const Exporter&) const = default;
};

struct PacketResult {
  uint16_t version = 0;   // from the header; 0 when shorter than 2 bytes
  bool accepted = false;  // the header was valid (sets may still have been skipped)
  uint64_t records = 0;   // flow records appended to `out` (including held ones released now)
};

struct Totals {
  std::array<uint64_t, kDropReasons> dropped{};
  uint64_t templates_received = 0;  // template records accepted (refreshes too)
  uint64_t templates_withdrawn = 0;
  uint64_t templates_evicted = 0;
  uint64_t state_changes = 0;  // templates or sampling changed: a saved state is stale
  uint64_t option_records = 0;
  uint64_t held_sets = 0;      // data sets held for their template
  uint64_t released_sets = 0;  // ... and decoded later
};

// NetFlow v5 needs no state. Appends the records of one datagram to `out`.
PacketResult decode_v5(std::span<const uint8_t> data, const Exporter& from,
                       uint32_t default_sampling_rate, std::vector<outpost_flow>& out,
                       Totals& totals);

class Decoder {
 public:
  explicit Decoder(Limits limits = {});

  // Decodes one export datagram (any version). now_ns is any monotonic clock: it ages the data
  // sets held for a template. Throws only std::bad_alloc.
  PacketResult decode(std::span<const uint8_t> data, const Exporter& from, int64_t now_ns,
                      std::vector<outpost_flow>& out);
  // Drops held data sets older than the limit (decode() does it too).
  void expire(int64_t now_ns);
  // Drops every held data set, counted as no_template (at stop).
  void drop_pending();

  const Totals& totals() const noexcept { return totals_; }
  std::size_t template_count() const noexcept { return templates_.size(); }
  std::size_t pending_count() const noexcept { return pending_.size(); }
  const Limits& limits() const noexcept { return limits_; }

  // Templates and per-domain state (sampling, system init time) as text, least recently used
  // first; load() accepts what save() wrote and skips lines it cannot trust. Returns the number
  // of templates loaded, and counts rejected lines in *bad.
  std::string save() const;
  std::size_t load(std::string_view text, std::size_t* bad = nullptr);

  struct DomainKey {
    Exporter exporter;
    uint16_t version = 0;  // 9 or 10: separate id spaces
    uint32_t domain = 0;   // v9 source id / IPFIX observation domain
    auto operator<=>(const DomainKey&) const = default;
  };
  struct FieldSpec {
    uint16_t id = 0;
    uint16_t length = 0;  // 0xFFFF: IPFIX variable length
    uint32_t pen = 0;     // enterprise number, 0 for IANA
    bool operator==(const FieldSpec&) const = default;
  };
  struct Template {
    std::vector<FieldSpec> fields;
    uint16_t scope_count = 0;
    bool options = false;
    uint32_t min_length = 0;  // a record takes at least this many bytes (> 0)
    bool variable = false;
    // Fixed-length templates: the fields the decoder reads, at their offsets in a record (the
    // rest are skipped without a look). Derived from `fields`.
    struct Op {
      uint16_t offset = 0, length = 0;
      uint8_t code = 0;  // what the decoder does with it
      bool operator==(const Op&) const = default;
    };
    std::vector<Op> ops;
    bool operator==(const Template&) const = default;
  };

  // What options records told of an observation domain.
  struct DomainState {
    uint32_t default_rate = 0;                   // 0: none announced
    std::map<uint64_t, uint32_t> sampler_rates;  // sampler / selector id -> rate
    int64_t system_init_ms = -1;                 // IPFIX systemInitTimeMilliseconds
    bool operator==(const DomainState&) const = default;
  };

 private:
  struct TemplateKey {
    DomainKey domain;
    uint16_t id = 0;
    auto operator<=>(const TemplateKey&) const = default;
  };
  struct KeyHash {
    std::size_t operator()(const TemplateKey& k) const noexcept;
  };
  // What a data set needs from its message header.
  struct Context {
    DomainKey key;
    uint32_t sys_uptime_ms = 0;  // v9
    int64_t export_ns = 0;
  };
  struct Pending {
    Context ctx;
    uint16_t template_id = 0;
    std::vector<uint8_t> body;
    int64_t arrived_ns = 0;
  };
  using Lru = std::list<TemplateKey>;
  struct Entry {
    Template tpl;
    Lru::iterator lru;
  };

  PacketResult decode_v9(std::span<const uint8_t> data, const Exporter& from,
                         std::vector<outpost_flow>& out);
  PacketResult decode_ipfix(std::span<const uint8_t> data, const Exporter& from,
                            std::vector<outpost_flow>& out);
  // Walks the sets of a v9/IPFIX message body; returns records emitted.
  uint64_t walk_sets(std::span<const uint8_t> body, const Context& ctx,
                     std::vector<outpost_flow>& out);
  uint64_t parse_templates(std::span<const uint8_t> set, const Context& ctx, bool options,
                           std::vector<outpost_flow>& out);
  uint64_t decode_data(std::span<const uint8_t> set, const Context& ctx, const Template& tpl,
                       std::vector<outpost_flow>& out);
  void learn(const TemplateKey& key, Template tpl);
  void withdraw(const DomainKey& domain, uint16_t id, bool all, bool options);
  uint64_t release_pending(const TemplateKey& key, std::vector<outpost_flow>& out);
  void hold(const Context& ctx, uint16_t id, std::span<const uint8_t> body, int64_t now_ns);
  DomainState& domain_state(const DomainKey& key);
  const DomainState* find_domain(const DomainKey& key) const;

  Limits limits_;
  Totals totals_;
  std::unordered_map<TemplateKey, Entry, KeyHash> templates_;
  Lru lru_;  // front: least recently used
  std::map<DomainKey, DomainState> domains_;
  std::deque<Pending> pending_;
  std::size_t pending_bytes_ = 0;
  int64_t now_ns_ = 0;
};

// Checks a template as it would arrive on the wire (version 9 or 10). Used by the wire parser
// and by load(); fills min_length and variable.
bool finish_template(uint16_t version, Decoder::Template& tpl);

// Sampler rates kept per observation domain (the rest are ignored).
inline constexpr std::size_t kMaxSamplers = 1024;

}  // namespace outpost::netflow
