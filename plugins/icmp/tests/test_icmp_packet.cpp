// Unit tests of the icmp plugin's packet parser, on packets built by hand: no sockets, no root.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <catch2/catch.hpp>
#include <cstring>
#include <vector>

#include "icmp_packet.hpp"

namespace {

using namespace outpost::icmp;
using Bytes = std::vector<uint8_t>;

constexpr uint32_t kCookie = 0xC0FFEE11, kKey = 0x12345678;

void put16(Bytes& b, std::size_t at, uint32_t v) {
  b[at] = static_cast<uint8_t>(v >> 8);
  b[at + 1] = static_cast<uint8_t>(v);
}
void put32(Bytes& b, std::size_t at, uint32_t v) {
  put16(b, at, v >> 16);
  put16(b, at + 2, v & 0xFFFFu);
}
Bytes cat(Bytes a, const Bytes& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

// An echo message as the poller sends it: key in identifier+sequence, then cookie and key.
// `size` below 16 cuts it short.
Bytes echo(uint8_t type, uint32_t key = kKey, uint32_t cookie = kCookie, std::size_t size = 24) {
  Bytes b(24, 0x5A);
  b[0] = type;
  b[1] = 0;
  put16(b, 2, 0);
  put32(b, 4, key);
  put32(b, 8, cookie);
  put32(b, 12, key);
  b.resize(size);
  return b;
}

// An ICMP error message around `quoted`; the IPv4 checksum covers all of it.
Bytes icmp_error(int family, uint8_t type, uint8_t code, const Bytes& quoted) {
  Bytes b = cat(Bytes{type, code, 0, 0, 0, 0, 0, 0}, quoted);
  if (family == AF_INET) put16(b, 2, internet_checksum(b.data(), b.size()));
  return b;
}

Bytes ip4(uint8_t proto, const char* src, const char* dst) {
  Bytes h(20, 0);
  h[0] = 0x45;
  h[8] = 64;
  h[9] = proto;
  ::inet_pton(AF_INET, src, &h[12]);
  ::inet_pton(AF_INET, dst, &h[16]);
  return h;
}

Bytes ip6(uint8_t next, const char* src, const char* dst) {
  Bytes h(40, 0);
  h[0] = 0x60;
  h[6] = next;
  h[7] = 64;
  ::inet_pton(AF_INET6, src, &h[8]);
  ::inet_pton(AF_INET6, dst, &h[24]);
  return h;
}

// Sets the checksum of the ICMP message at `at` to match its bytes.
void resum(Bytes& b, std::size_t at) {
  put16(b, at + 2, 0);
  put16(b, at + 2, internet_checksum(&b[at], b.size() - at));
}

Bytes v4_reply() {
  Bytes e = echo(kEchoReply4);
  resum(e, 0);
  return e;
}

// What a raw IPv4 socket reads when router 10.0.0.1 says our probe to 192.0.2.7 ran out of TTL.
Bytes v4_time_exceeded(const Bytes& quoted_echo, uint8_t quoted_proto = IPPROTO_ICMP) {
  return cat(ip4(IPPROTO_ICMP, "10.0.0.1", "10.0.0.2"),
             icmp_error(AF_INET, kTimeExceeded4, 0,
                        cat(ip4(quoted_proto, "10.0.0.2", "192.0.2.7"), quoted_echo)));
}

Parsed parse(int family, bool raw, const Bytes& b, bool truncated = false) {
  return parse_icmp(family, raw, b.data(), b.size(), truncated, kCookie);
}

}  // namespace

TEST_CASE("icmp packet: IPv4 echo replies, raw and ping socket", "[icmp][packet]") {
  const Bytes raw = cat(ip4(IPPROTO_ICMP, "192.0.2.7", "10.0.0.2"), v4_reply());
  Parsed r = parse(AF_INET, true, raw);
  CHECK(r.kind == Kind::echo_reply);
  CHECK(r.key == kKey);
  CHECK(r.has_token);
  CHECK(r.type == kEchoReply4);
  CHECK(r.orig_dst == nullptr);

  Bytes opts = raw;  // an IP header with options: the ICMP message starts after IHL words
  opts[0] = 0x46;
  opts.insert(opts.begin() + 20, {1, 1, 1, 1});
  CHECK(parse(AF_INET, true, opts).kind == Kind::echo_reply);

  Bytes bad = raw;
  bad.back() ^= 1;
  CHECK(parse(AF_INET, true, bad).kind == Kind::malformed);         // checksum
  CHECK(parse(AF_INET, true, bad, true).kind == Kind::echo_reply);  // cut short: not summed
  CHECK(parse(AF_INET, true, v4_reply()).kind == Kind::malformed);  // no IP header

  Bytes other =
      cat(ip4(IPPROTO_ICMP, "192.0.2.7", "10.0.0.2"), echo(kEchoReply4, kKey, kCookie + 1));
  resum(other, 20);
  CHECK(parse(AF_INET, true, other).kind == Kind::foreign);  // another pinger's cookie

  Bytes mixed = raw;  // identifier+sequence disagree with the key in the payload
  mixed[25] ^= 1;
  resum(mixed, 20);
  CHECK(parse(AF_INET, true, mixed).kind == Kind::malformed);

  // A ping socket: no IP header, the kernel's identifier, our sequence.
  Bytes dgram = echo(kEchoReply4);
  put16(dgram, 4, 0xBEEF);
  r = parse(AF_INET, false, dgram);
  CHECK(r.kind == Kind::echo_reply);
  CHECK(r.key == kKey);
  dgram[7] ^= 1;
  CHECK(parse(AF_INET, false, dgram).kind == Kind::malformed);
  CHECK(parse(AF_INET, false, echo(kEchoReply4, kKey, kCookie, kHeader + kToken - 1)).kind ==
        Kind::malformed);
  CHECK(parse(AF_INET, false, echo(kEchoRequest4)).kind == Kind::foreign);
}

TEST_CASE("icmp packet: IPv4 time exceeded quoting our request", "[icmp][packet]") {
  const Bytes full = v4_time_exceeded(echo(kEchoRequest4));
  Parsed r = parse(AF_INET, true, full);
  REQUIRE(r.kind == Kind::error);
  CHECK(r.error == ErrorKind::ttl_exceeded);
  CHECK(r.type == kTimeExceeded4);
  CHECK(r.code == 0);
  CHECK(r.key == kKey);
  CHECK(r.has_token);
  REQUIRE(r.orig_dst_len == 4);
  CHECK(r.orig_dst == full.data() + 20 + 8 + 16);
  in_addr want{};
  ::inet_pton(AF_INET, "192.0.2.7", &want);
  CHECK(std::memcmp(r.orig_dst, &want, 4) == 0);

  // Every cut of the read: short headers are malformed; 8 quoted bytes match without the token.
  for (std::size_t len = 0; len < full.size(); ++len) {
    const Bytes cut(full.begin(), full.begin() + static_cast<std::ptrdiff_t>(len));
    INFO("length " << len);
    r = parse(AF_INET, true, cut, true);
    if (len < 56) {
      CHECK(r.kind == Kind::malformed);
    } else if (len < 64) {
      CHECK(r.kind == Kind::error);
      CHECK(!r.has_token);
      CHECK(r.key == kKey);
    } else {
      CHECK(r.kind == Kind::error);
      CHECK(r.has_token);
    }
  }
  // A router quoting only 8 bytes: raw sockets match on identifier+sequence, ping sockets cannot.
  const Bytes short8 = v4_time_exceeded(echo(kEchoRequest4, kKey, kCookie, 8));
  r = parse(AF_INET, true, short8);
  CHECK(r.kind == Kind::error);
  CHECK(!r.has_token);
  CHECK(parse(AF_INET, false, Bytes(short8.begin() + 20, short8.end())).kind == Kind::malformed);

  CHECK(parse(AF_INET, true, v4_time_exceeded(echo(kEchoRequest4, kKey, kCookie + 1))).kind ==
        Kind::foreign);
  Bytes split = echo(kEchoRequest4);  // the payload's key differs from identifier+sequence
  put32(split, 12, kKey + 1);
  CHECK(parse(AF_INET, true, v4_time_exceeded(split)).kind == Kind::foreign);
  CHECK(parse(AF_INET, true, v4_time_exceeded(echo(kEchoRequest4), IPPROTO_UDP)).kind ==
        Kind::foreign);
  CHECK(parse(AF_INET, true, v4_time_exceeded(echo(kEchoReply4))).kind == Kind::foreign);

  // Ping socket: the key comes from the payload, whatever identifier the kernel chose.
  Bytes mine = echo(kEchoRequest4);
  put16(mine, 4, 0xBEEF);
  const Bytes dgram = v4_time_exceeded(mine);
  r = parse(AF_INET, false, Bytes(dgram.begin() + 20, dgram.end()));
  CHECK(r.kind == Kind::error);
  CHECK(r.key == kKey);
}

TEST_CASE("icmp packet: IPv6 replies and unreachables", "[icmp][packet]") {
  Parsed r = parse(AF_INET6, true, echo(kEchoReply6));
  CHECK(r.kind == Kind::echo_reply);
  CHECK(r.key == kKey);

  const Bytes unreach =
      icmp_error(AF_INET6, kUnreach6, 3,
                 cat(ip6(IPPROTO_ICMPV6, "2001:db8::2", "2001:db8::7"), echo(kEchoRequest6)));
  r = parse(AF_INET6, true, unreach);
  REQUIRE(r.kind == Kind::error);
  CHECK(r.error == ErrorKind::unreachable);
  CHECK(r.code == 3);
  REQUIRE(r.orig_dst_len == 16);
  in6_addr want{};
  ::inet_pton(AF_INET6, "2001:db8::7", &want);
  CHECK(std::memcmp(r.orig_dst, &want, 16) == 0);

  CHECK(parse(AF_INET6, true, Bytes(unreach.begin(), unreach.begin() + 47)).kind ==
        Kind::malformed);
  CHECK(parse(AF_INET6, true,
              icmp_error(AF_INET6, kUnreach6, 3,
                         cat(ip6(IPPROTO_UDP, "2001:db8::2", "2001:db8::7"), echo(kEchoRequest6))))
            .kind == Kind::foreign);
  CHECK(parse(AF_INET6, true, echo(kEchoRequest6)).kind == Kind::foreign);  // not a type we read
}

TEST_CASE("icmp packet: error-queue payloads and error types", "[icmp][packet]") {
  const Bytes req = echo(kEchoRequest6);
  Parsed r = parse_quoted(AF_INET6, false, req.data(), req.size(), kCookie);
  CHECK(r.kind == Kind::error);
  CHECK(r.key == kKey);
  CHECK(r.orig_dst == nullptr);
  CHECK(parse_quoted(AF_INET6, false, req.data(), 7, kCookie).kind == Kind::malformed);
  CHECK(parse_quoted(AF_INET, false, req.data(), req.size(), kCookie).kind == Kind::foreign);

  CHECK(error_kind(AF_INET, kTimeExceeded4) == ErrorKind::ttl_exceeded);
  CHECK(error_kind(AF_INET, kUnreach4) == ErrorKind::unreachable);
  CHECK(error_kind(AF_INET6, kTimeExceeded6) == ErrorKind::ttl_exceeded);
  CHECK(error_kind(AF_INET6, kUnreach6) == ErrorKind::unreachable);
  CHECK(error_kind(AF_INET6, 2) == ErrorKind::none);  // packet too big
  CHECK(error_kind(AF_INET, kEchoReply4) == ErrorKind::none);
}
