// Shared by the netflow fuzzers. An input is a sequence of datagrams, each behind a 2-byte
// big-endian length (the last one takes what is left), all from two exporters into one Decoder
// with small limits, so templates, held data, eviction and expiry meet across datagrams. Each
// datagram's version field is forced to the target's version. At the end the saved state must
// load back to the same text.
#pragma once

#include <cstdlib>
#include <vector>

#include "decoder.hpp"

namespace outpost::netflow::fuzz {

inline void run(const uint8_t* data, std::size_t size, uint16_t version) {
  Limits l;
  l.max_templates = 8;
  l.max_pending = 4;
  l.max_pending_bytes = 4096;
  l.pending_max_age_ns = 3'000'000'000;
  Decoder d(l);
  Exporter a, b;
  a.family = 4;
  a.addr[0] = 192;
  b.family = 6;
  b.addr[0] = 0x20;
  std::vector<outpost_flow> out;
  std::size_t pos = 0, i = 0;
  while (pos < size) {
    std::size_t len = size - pos;
    if (len >= 2) {
      const std::size_t want = (std::size_t{data[pos]} << 8) | data[pos + 1];
      pos += 2;
      len = std::min(want, size - pos);
    } else {
      pos += len;  // a lone byte: an empty datagram
      len = 0;
    }
    std::vector<uint8_t> dgram(data + pos, data + pos + len);  // exact size: ASan sees overreads
    pos += len;
    if (dgram.size() >= 2) {
      dgram[0] = static_cast<uint8_t>(version >> 8);
      dgram[1] = static_cast<uint8_t>(version);
    }
    out.clear();
    d.decode(dgram, i % 2 ? b : a, static_cast<int64_t>(i) * 1'000'000'000, out);
    ++i;
  }
  const std::string saved = d.save();
  Decoder e(l);
  std::size_t bad = 0;
  e.load(saved, &bad);
  if (bad != 0 || e.save() != saved) std::abort();
}

}  // namespace outpost::netflow::fuzz
