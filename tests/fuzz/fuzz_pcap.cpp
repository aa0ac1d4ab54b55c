// libFuzzer target: the pcap reader behind `outpost replay` takes any file a user points it at.
#include <cstddef>
#include <cstdint>
#include <string>

#include "listeners/pcap.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  outpost::core::PcapStats st;
  std::string error;
  std::size_t bytes = 0;
  outpost::core::read_pcap(
      std::span<const uint8_t>(data, size),
      [&](const outpost::core::PcapDatagram& d) {
        // Touch every byte handed out: ASan catches a span past the input.
        for (uint8_t b : d.payload) bytes += b;
      },
      st, error);
  return bytes == 0xFFFFFFFFFFFFull ? 1 : 0;
}
