// libFuzzer target: the icmp poller parses every packet its ICMP sockets read, from anyone.
// First byte: bit 0 IPv6, bit 1 raw socket (else ping socket), bit 2 read truncated; the rest is
// the packet. A fixed cookie is enough: libFuzzer's comparison tracing finds it.
#include <sys/socket.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "icmp_packet.hpp"

using namespace outpost::icmp;

namespace {

constexpr uint32_t kCookie = 0x4F505354;
volatile unsigned sink;  // keeps the reads below from being optimised away

// Sums the bytes a result points at, so ASan catches a pointer past the input; traps on a result
// the poller would misread.
unsigned check(const Parsed& r, int family, const uint8_t* p, std::size_t n) {
  unsigned sum = r.key + r.type + r.code;
  if (r.kind == Kind::error) {
    const std::size_t want = family == AF_INET ? 4 : 16;
    if (r.orig_dst != nullptr) {
      if (r.orig_dst < p || r.orig_dst_len != want ||
          static_cast<std::size_t>(r.orig_dst - p) + want > n)
        std::abort();
      for (std::size_t i = 0; i < r.orig_dst_len; ++i) sum += r.orig_dst[i];
    }
  } else if (r.orig_dst != nullptr || r.error != ErrorKind::none) {
    std::abort();
  }
  if (r.kind == Kind::echo_reply && !r.has_token) std::abort();
  return sum;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const int family = (data[0] & 1) != 0 ? AF_INET6 : AF_INET;
  const bool raw = (data[0] & 2) != 0, truncated = (data[0] & 4) != 0;
  const uint8_t* p = data + 1;
  const std::size_t n = size - 1;
  const Parsed r = parse_icmp(family, raw, p, n, truncated, kCookie);
  if (r.kind == Kind::error && r.orig_dst == nullptr)
    std::abort();  // raw errors quote their IP header
  unsigned sum = check(r, family, p, n);
  // The ping-socket error queue hands over the quoted request alone.
  const Parsed q = parse_quoted(family, raw, p, n, kCookie);
  if (q.orig_dst != nullptr || q.error != ErrorKind::none) std::abort();
  sum += check(q, family, p, n);
  sink = sum;
  return 0;
}
