// libFuzzer target: one sFlow datagram through decode(), plus the same bytes as a sampled
// Ethernet frame and a bare IP packet. Traps on results the plugin would misreport.
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "sflow_decoder.hpp"

using namespace outpost::sflow;

namespace {
volatile uint64_t sink;  // keeps the reads below from being optimised away
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::span<const uint8_t> in(data, size);
  Output out;
  out.flows.push_back(outpost_flow{});  // output from an earlier datagram must survive a drop
  const Result r = decode(in, 1, out);
  uint64_t sum = 0;
  if (r.drop != Drop::none) {
    if (out.flows.size() != 1 || !out.counters.empty()) std::abort();
  } else {
    // Each flow sample and counter record needs far more than 8 bytes of datagram.
    if ((out.flows.size() - 1) * 8 > size || out.counters.size() * 88 > size) std::abort();
    for (std::size_t i = 1; i < out.flows.size(); ++i) {
      const auto& f = out.flows[i];
      if ((f.family != 4 && f.family != 6) || f.sampling_rate == 0 ||
          f.packets != f.sampling_rate || f.start_ns != 1)
        std::abort();
      sum += f.bytes + f.src_port + f.dst_port + f.protocol;
    }
    for (const auto& c : out.counters) sum += c.in_octets + c.if_index;
  }
  outpost_flow f{};
  if (parse_ethernet(in, f)) sum += f.src_port + f.tos;
  outpost_flow g{};
  if (parse_ip(in, g)) sum += g.dst_port + g.tcp_flags;
  sink = sum;
  return 0;
}
