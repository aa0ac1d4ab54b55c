#include "icmp_packet.hpp"

#include <netinet/in.h>
#include <sys/socket.h>

namespace outpost::icmp {
namespace {

uint16_t get16(const uint8_t* p) { return static_cast<uint16_t>((p[0] << 8) | p[1]); }
uint32_t get32(const uint8_t* p) { return (uint32_t{get16(p)} << 16) | get16(p + 2); }

Parsed verdict(Kind k) {
  Parsed r;
  r.kind = k;
  return r;
}

}  // namespace

uint16_t internet_checksum(const uint8_t* p, std::size_t n) {
  uint32_t sum = 0;
  for (std::size_t i = 0; i + 1 < n; i += 2) sum += get16(p + i);
  if (n % 2 != 0) sum += uint32_t{p[n - 1]} << 8;
  while (sum >> 16) sum = (sum & 0xFFFFu) + (sum >> 16);
  return static_cast<uint16_t>(~sum);
}

ErrorKind error_kind(int family, uint8_t type) {
  const bool v4 = family == AF_INET;
  if (type == (v4 ? kTimeExceeded4 : kTimeExceeded6)) return ErrorKind::ttl_exceeded;
  if (type == (v4 ? kUnreach4 : kUnreach6)) return ErrorKind::unreachable;
  return ErrorKind::none;
}

Parsed parse_quoted(int family, bool raw, const uint8_t* orig, std::size_t m, uint32_t cookie) {
  if (m < kHeader) return verdict(Kind::malformed);
  if (orig[0] != (family == AF_INET ? kEchoRequest4 : kEchoRequest6)) return verdict(Kind::foreign);
  Parsed r;
  // Routers may quote only 8 bytes of our packet; the token is checked when it is there.
  r.has_token = m >= kHeader + kToken;
  if (r.has_token && get32(orig + 8) != cookie) return verdict(Kind::foreign);
  r.key = (uint32_t{get16(orig + 4)} << 16) | get16(orig + 6);
  if (!raw) {
    if (!r.has_token) return verdict(Kind::malformed);  // the kernel replaced our identifier
    r.key = get32(orig + 12);
  } else if (r.has_token && get32(orig + 12) != r.key) {
    return verdict(Kind::foreign);
  }
  r.kind = Kind::error;
  return r;
}

Parsed parse_icmp(int family, bool raw, const uint8_t* p, std::size_t n, bool truncated,
                  uint32_t cookie) {
  const bool v4 = family == AF_INET;
  if (v4 && raw) {  // raw IPv4 sockets hand over the IP header too
    if (n < 20 || (p[0] >> 4) != 4) return verdict(Kind::malformed);
    const std::size_t ihl = std::size_t{p[0] & 0x0Fu} * 4;
    if (ihl < 20 || n < ihl) return verdict(Kind::malformed);
    p += ihl;
    n -= ihl;
  }
  if (n < kHeader) return verdict(Kind::malformed);
  // Raw IPv4 sockets see packets before the kernel checks their ICMP checksum (ping and ICMPv6
  // sockets do not); a truncated read cannot be summed.
  if (v4 && raw && !truncated && internet_checksum(p, n) != 0) return verdict(Kind::malformed);
  const uint8_t type = p[0];
  if (type == (v4 ? kEchoReply4 : kEchoReply6)) {
    if (n < kHeader + kToken) return verdict(Kind::malformed);
    if (get32(p + 8) != cookie) return verdict(Kind::foreign);  // another pinger's reply
    Parsed r;
    r.kind = Kind::echo_reply;
    r.has_token = true;
    r.type = type;
    r.code = p[1];
    r.key = get32(p + 12);
    // Raw sockets keep identifier+sequence as we sent them; ping sockets only the sequence.
    const uint32_t seq_id = (uint32_t{get16(p + 4)} << 16) | get16(p + 6);
    if (raw ? seq_id != r.key : get16(p + 6) != (r.key & 0xFFFFu)) return verdict(Kind::malformed);
    return r;
  }
  const ErrorKind ek = error_kind(family, type);
  if (ek == ErrorKind::none) return verdict(Kind::foreign);
  // The error quotes our original packet: its IP header, then our echo request.
  const uint8_t* inner = p + kHeader;
  std::size_t m = n - kHeader;
  const uint8_t* orig_dst = nullptr;
  std::size_t dst_len = 0;
  if (v4) {
    if (m < 20 || (inner[0] >> 4) != 4) return verdict(Kind::malformed);
    const std::size_t ihl = std::size_t{inner[0] & 0x0Fu} * 4;
    if (ihl < 20 || m < ihl) return verdict(Kind::malformed);
    if (inner[9] != IPPROTO_ICMP) return verdict(Kind::foreign);
    orig_dst = inner + 16;
    dst_len = 4;
    inner += ihl;
    m -= ihl;
  } else {
    if (m < 40 || (inner[0] >> 4) != 6) return verdict(Kind::malformed);
    if (inner[6] != IPPROTO_ICMPV6) return verdict(Kind::foreign);
    orig_dst = inner + 24;
    dst_len = 16;
    inner += 40;
    m -= 40;
  }
  Parsed r = parse_quoted(family, raw, inner, m, cookie);
  if (r.kind != Kind::error) return r;
  r.error = ek;
  r.type = type;
  r.code = p[1];
  r.orig_dst = orig_dst;
  r.orig_dst_len = dst_len;
  return r;
}

}  // namespace outpost::icmp
