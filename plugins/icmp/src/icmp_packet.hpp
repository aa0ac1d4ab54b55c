// Parsing of ICMP / ICMPv6 packets read from the network, apart from the engine: no sockets, no
// state, so the unit tests and the libFuzzer target (../fuzz) can call it as is.
#pragma once

#include <cstddef>
#include <cstdint>

namespace outpost::icmp {

inline constexpr uint8_t kEchoReply4 = 0, kUnreach4 = 3, kEchoRequest4 = 8, kTimeExceeded4 = 11;
inline constexpr uint8_t kUnreach6 = 1, kTimeExceeded6 = 3, kEchoRequest6 = 128, kEchoReply6 = 129;
inline constexpr std::size_t kHeader = 8;
inline constexpr std::size_t kToken = 8;  // cookie + probe key, first in every payload

enum class Kind : uint8_t { echo_reply, error, malformed, foreign };
enum class ErrorKind : uint8_t { none, ttl_exceeded, unreachable };

struct Parsed {
  Kind kind = Kind::malformed;
  uint32_t key = 0;        // the probe's key (echo_reply, error)
  bool has_token = false;  // our cookie was there: an unknown key is late, not foreign
  ErrorKind error = ErrorKind::none;
  uint8_t type = 0, code = 0;         // of the outer ICMP message (echo_reply, error)
  const uint8_t* orig_dst = nullptr;  // errors: destination of the quoted packet, inside the input
  std::size_t orig_dst_len = 0;       // 4 or 16
};

uint16_t internet_checksum(const uint8_t* p, std::size_t n);

// ttl_exceeded or unreachable for those ICMP types of `family`, else none.
ErrorKind error_kind(int family, uint8_t type);

// A packet from an ICMP socket of `family` (AF_INET or AF_INET6). Raw IPv4 sockets deliver the
// IP header too; ping (dgram) sockets overwrite our identifier. `truncated`: the read was cut
// short (MSG_TRUNC), so the checksum cannot be verified. Only echo_reply and error are ours.
Parsed parse_icmp(int family, bool raw, const uint8_t* p, std::size_t n, bool truncated,
                  uint32_t cookie);

// The echo request an ICMP error quotes, from its ICMP header on (for ping sockets: the error
// queue's payload). kind is error when it is one of ours; error/type/code/orig_dst stay unset.
Parsed parse_quoted(int family, bool raw, const uint8_t* orig, std::size_t m, uint32_t cookie);

}  // namespace outpost::icmp
