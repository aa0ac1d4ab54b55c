// Reading the server's CHALLENGE_MESSAGE (MS-NLMP 2.2.1.2). Everything in it is untrusted:
// each field is checked against the message's bounds before it is read.
#include <cstring>

#include "internal.hpp"
#include "outpost_lib/ntlm.hpp"

namespace outpost::lib::ntlm {
namespace {

constexpr uint8_t kSignature[8] = {'N', 'T', 'L', 'M', 'S', 'S', 'P', 0};
// Up to TargetInfoFields; the Version after it is optional and unused.
constexpr std::size_t kHeaderSize = 48;
// A target info list holds a handful of names; a bound keeps a hostile one from costing much.
constexpr std::size_t kMaxAvPairs = 64;

// A payload field: Len, MaxLen, Offset. MaxLen is ignored as the specification says.
std::span<const uint8_t> field(std::span<const uint8_t> msg, std::size_t at, const char* what) {
  const uint16_t len = detail::get16(msg, at);
  const uint32_t offset = detail::get32(msg, at + 4);
  if (len == 0) return {};
  if (offset < kHeaderSize || static_cast<uint64_t>(offset) + len > msg.size())
    throw Error(std::string("ntlm: CHALLENGE_MESSAGE ") + what + " is out of bounds");
  return msg.subspan(offset, len);
}

std::vector<AvPair> parse_av_pairs(std::span<const uint8_t> b) {
  std::vector<AvPair> pairs;
  std::size_t at = 0;
  for (;;) {
    if (at + 4 > b.size()) throw Error("ntlm: CHALLENGE_MESSAGE target info is truncated");
    const uint16_t id = detail::get16(b, at);
    const uint16_t len = detail::get16(b, at + 2);
    at += 4;
    if (len > b.size() - at) throw Error("ntlm: CHALLENGE_MESSAGE target info is truncated");
    if (id == kAvEol) return pairs;  // anything after MsvAvEOL is padding
    if (pairs.size() == kMaxAvPairs)
      throw Error("ntlm: CHALLENGE_MESSAGE target info has too many AV pairs");
    pairs.push_back({id,
                     {b.begin() + static_cast<std::ptrdiff_t>(at),
                      b.begin() + static_cast<std::ptrdiff_t>(at + len)}});
    at += len;
  }
}

}  // namespace

Challenge parse_challenge(std::span<const uint8_t> msg) {
  if (msg.size() < 12 || std::memcmp(msg.data(), kSignature, 8) != 0)
    throw Error("ntlm: not an NTLMSSP message");
  if (detail::get32(msg, 8) != 2) throw Error("ntlm: not a CHALLENGE_MESSAGE");
  if (msg.size() < kHeaderSize) throw Error("ntlm: CHALLENGE_MESSAGE is truncated");
  Challenge c;
  c.flags = detail::get32(msg, 20);
  std::memcpy(c.server_challenge.data(), msg.data() + 24, 8);
  const auto name = field(msg, 12, "target name");
  c.target_name.assign(name.begin(), name.end());
  const auto info = field(msg, 40, "target info");
  if (info.empty()) throw Error("ntlm: CHALLENGE_MESSAGE has no target info (NTLMv2 needs it)");
  c.target_info = parse_av_pairs(info);
  for (const auto& p : c.target_info) {
    if (p.id != kAvTimestamp) continue;
    if (p.value.size() != 8) throw Error("ntlm: CHALLENGE_MESSAGE timestamp is not 8 bytes");
    uint64_t t = 0;
    for (int i = 7; i >= 0; --i) t = (t << 8) | p.value[static_cast<std::size_t>(i)];
    c.timestamp = t;
  }
  return c;
}

}  // namespace outpost::lib::ntlm
