// sFlow version 5 decoder (sflow.org/sflow_version_5.txt): a pure function from the bytes of one
// datagram to flow records, interface counters and, for a datagram it refuses, the reason.
// Every length inside a datagram is treated as hostile: nothing is read past the buffer, and no
// allocation is sized by a count the datagram claims.
#pragma once

#include <outpost/plugin.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <map>
#include <span>
#include <string_view>
#include <tuple>
#include <vector>

namespace outpost::sflow {

// Why a whole datagram was dropped. The decoder is all-or-nothing: a datagram whose structure
// does not add up yields no flows and no counters, since nothing in it can be trusted.
enum class Drop : uint8_t {
  none,
  truncated,          // shorter than the datagram header
  bad_version,        // not version 5
  bad_agent_address,  // address type neither 1 (IPv4) nor 2 (IPv6)
  too_many_samples,   // more samples claimed than the bytes could hold
  bad_sample_length,  // a sample's length runs past the datagram
  bad_sample,         // a sample shorter than its fixed fields
  too_many_records,   // more records claimed than the sample could hold
  bad_record_length,  // a record's length runs past its sample
  bad_record,         // a known record shorter than its fields, or its header past its length
  bad_sampling_rate,  // sampling rate 0
};
inline constexpr std::size_t kDropReasons = 11;
std::string_view drop_name(Drop d) noexcept;

// Parts of a valid datagram that were skipped, not errors: other enterprises' structures, record
// formats we do not use, samples of packets that are not IP.
enum class Skip : uint8_t {
  unknown_sample,          // sample format other than (0,1..4)
  ignored_flow_record,     // flow record we do not use (extended switch/router, vendors, ...)
  ignored_counter_record,  // counter record other than generic interface counters
  not_ip,                  // flow sample whose packet is neither IPv4 nor IPv6 (ARP, LLDP, ...)
  header_protocol,         // raw header of another protocol than Ethernet, IPv4, IPv6
  no_packet_record,        // flow sample without raw header or sampled IPv4/IPv6 record
};
inline constexpr std::size_t kSkipKinds = 6;
std::string_view skip_name(Skip s) noexcept;

struct Agent {
  uint8_t family = 0;  // 4 or 6
  std::array<uint8_t, 16> addr{};
  uint32_t sub_agent = 0;
  auto operator<=>(const Agent&) const = default;
};

// Generic interface counters, counter record (0,1): the IF-MIB values the agent polled.
struct IfCounters {
  uint32_t if_index = 0, if_type = 0;
  uint64_t if_speed = 0;
  uint32_t if_direction = 0, if_status = 0;  // status bit 0: admin up, bit 1: oper up
  uint64_t in_octets = 0;
  uint32_t in_ucast_pkts = 0, in_multicast_pkts = 0, in_broadcast_pkts = 0, in_discards = 0,
           in_errors = 0, in_unknown_protos = 0;
  uint64_t out_octets = 0;
  uint32_t out_ucast_pkts = 0, out_multicast_pkts = 0, out_broadcast_pkts = 0, out_discards = 0,
           out_errors = 0, promiscuous_mode = 0;
  uint32_t sequence = 0;  // of the counter sample it came in
};

struct Header {
  Agent agent;
  uint32_t sequence = 0, uptime_ms = 0, sample_count = 0;
};

// What decode() appends to. Reused across datagrams so a batch of them costs no allocations once
// the vectors have grown.
struct Output {
  std::vector<outpost_flow> flows;
  std::vector<IfCounters> counters;
  std::array<uint64_t, kSkipKinds> skipped{};
};

struct Result {
  Drop drop = Drop::none;
  Header header;
};

// Decodes one datagram received at time_ns: appends one flow per usable flow sample (bytes and
// packets scaled by the sampling rate, exporter = the agent address) and one IfCounters per
// generic interface counter record. On a drop, out is left exactly as it was.
Result decode(std::span<const uint8_t> datagram, int64_t time_ns, Output& out);

// Fills addresses, protocol, ports, TCP flags and TOS of f from a sampled Ethernet frame (802.1Q
// and QinQ tags skipped) or a bare IP packet. False when it carries no IPv4/IPv6 header. The
// frame is a truncated copy (a header sample): fields past its end stay 0.
bool parse_ethernet(std::span<const uint8_t> frame, outpost_flow& f);
bool parse_ip(std::span<const uint8_t> packet, outpost_flow& f);

// Datagram sequence numbers per (agent, sub-agent): an estimate of the datagrams lost on the way.
class SequenceTracker {
 public:
  explicit SequenceTracker(std::size_t max_agents = 4096) : max_agents_(max_agents) {}
  // Returns how many datagrams went missing before this one (0 for the first, a duplicate, a
  // late one, or after an agent restart, which resets the sequence and the uptime).
  uint64_t update(const Header& h);
  std::size_t agents() const noexcept { return last_.size(); }

 private:
  struct State {
    uint32_t sequence, uptime_ms;
  };
  std::size_t max_agents_;
  std::map<Agent, State> last_;
};

}  // namespace outpost::sflow
