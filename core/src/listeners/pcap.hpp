// Reads UDP datagrams out of a classic libpcap capture (not pcapng), for `outpost replay`:
// Ethernet (with VLAN tags), raw IP, Linux cooked (v1, v2) and BSD loopback link types; IPv4
// and IPv6. Hostile input is expected: anything malformed is counted and skipped.
#pragma once

#include <outpost/plugin.h>

#include <cstdint>
#include <functional>
#include <span>
#include <string>

namespace outpost::core {

struct PcapDatagram {
  std::span<const uint8_t> payload;  // borrowed from the capture buffer
  outpost_sockaddr source{};
  outpost_sockaddr destination{};
  int64_t time_ns = 0;
};

struct PcapStats {
  uint64_t records = 0;
  uint64_t udp = 0;
  uint64_t not_udp = 0;    // other protocols, fragments after the first
  uint64_t malformed = 0;  // truncated or inconsistent headers
};

// Calls `on_datagram` for each UDP datagram. Returns false with `error` set when the file is not
// a pcap capture this reader understands (a truncated last record only stops the walk).
bool read_pcap(std::span<const uint8_t> capture,
               const std::function<void(const PcapDatagram&)>& on_datagram, PcapStats& stats,
               std::string& error);

}  // namespace outpost::core
