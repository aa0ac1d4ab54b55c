#include "listeners/pcap.hpp"

#include <cstring>

namespace outpost::core {
namespace {

struct Cursor {
  std::span<const uint8_t> d;
  bool swap = false;
  uint32_t u32(std::size_t off) const {
    uint32_t v;
    std::memcpy(&v, d.data() + off, 4);
    return swap ? __builtin_bswap32(v) : v;
  }
};

uint16_t be16(const uint8_t* p) { return static_cast<uint16_t>((p[0] << 8) | p[1]); }

// Parses an IP packet; emits the UDP payload when there is one.
void parse_ip(std::span<const uint8_t> pkt, int64_t t,
              const std::function<void(const PcapDatagram&)>& cb, PcapStats& st) {
  if (pkt.empty()) {
    st.malformed++;
    return;
  }
  const unsigned version = pkt[0] >> 4;
  PcapDatagram dg;
  dg.time_ns = t;
  std::span<const uint8_t> l4;
  if (version == 4) {
    if (pkt.size() < 20) return void(st.malformed++);
    const std::size_t ihl = static_cast<std::size_t>(pkt[0] & 0x0f) * 4;
    const std::size_t total = be16(&pkt[2]);
    if (ihl < 20 || total < ihl || total > pkt.size()) return void(st.malformed++);
    const uint16_t frag = be16(&pkt[6]);
    if ((frag & 0x1fff) != 0 || pkt[9] != 17) return void(st.not_udp++);  // later fragment, not UDP
    dg.source.family = dg.destination.family = 4;
    std::memcpy(dg.source.addr, &pkt[12], 4);
    std::memcpy(dg.destination.addr, &pkt[16], 4);
    l4 = pkt.subspan(ihl, total - ihl);
  } else if (version == 6) {
    if (pkt.size() < 40) return void(st.malformed++);
    const std::size_t plen = be16(&pkt[4]);
    if (40 + plen > pkt.size()) return void(st.malformed++);
    uint8_t next = pkt[6];
    std::size_t off = 40;
    const std::size_t end = 40 + plen;
    // Hop-by-hop, routing and destination options headers may precede UDP.
    while (next == 0 || next == 43 || next == 60) {
      if (off + 8 > end) return void(st.malformed++);
      const std::size_t len = (static_cast<std::size_t>(pkt[off + 1]) + 1) * 8;
      next = pkt[off];
      off += len;
      if (off > end) return void(st.malformed++);
    }
    if (next != 17) return void(st.not_udp++);
    dg.source.family = dg.destination.family = 6;
    std::memcpy(dg.source.addr, &pkt[8], 16);
    std::memcpy(dg.destination.addr, &pkt[24], 16);
    l4 = pkt.subspan(off, end - off);
  } else {
    return void(st.not_udp++);
  }
  if (l4.size() < 8) return void(st.malformed++);
  const std::size_t ulen = be16(&l4[4]);
  if (ulen < 8 || ulen > l4.size()) return void(st.malformed++);
  dg.source.port = be16(&l4[0]);
  dg.destination.port = be16(&l4[2]);
  dg.payload = l4.subspan(8, ulen - 8);
  st.udp++;
  cb(dg);
}

}  // namespace

bool read_pcap(std::span<const uint8_t> capture, const std::function<void(const PcapDatagram&)>& cb,
               PcapStats& st, std::string& error) {
  if (capture.size() < 24) {
    error = "not a pcap file: shorter than its header";
    return false;
  }
  Cursor c{capture};
  uint32_t magic;
  std::memcpy(&magic, capture.data(), 4);
  bool nanos = false;
  if (magic == 0xa1b2c3d4u || magic == 0xa1b23c4du) {
    nanos = magic == 0xa1b23c4du;
  } else if (magic == 0xd4c3b2a1u || magic == 0x4d3cb2a1u) {
    c.swap = true;
    nanos = magic == 0x4d3cb2a1u;
  } else if (magic == 0x0a0d0d0au) {
    error = "pcapng is not supported: convert with 'editcap -F pcap IN OUT'";
    return false;
  } else {
    error = "not a pcap file (bad magic)";
    return false;
  }
  const uint32_t linktype = c.u32(20) & 0x0fffffffu;
  if (linktype != 1 && linktype != 101 && linktype != 12 && linktype != 113 && linktype != 276 &&
      linktype != 0) {
    error = "unsupported link type " + std::to_string(linktype);
    return false;
  }
  std::size_t off = 24;
  while (off + 16 <= capture.size()) {
    const uint64_t sec = c.u32(off), frac = c.u32(off + 4);
    const std::size_t incl = c.u32(off + 8);
    off += 16;
    if (incl > capture.size() - off) {  // truncated last record
      st.malformed++;
      break;
    }
    st.records++;
    std::span<const uint8_t> frame = capture.subspan(off, incl);
    off += incl;
    const int64_t t =
        static_cast<int64_t>(sec) * 1000000000 + static_cast<int64_t>(nanos ? frac : frac * 1000);
    std::size_t l3 = 0;
    uint16_t ethertype = 0;
    switch (linktype) {
      case 1:  // Ethernet, with any number of 802.1Q / 802.1ad tags
        if (frame.size() < 14) {
          st.malformed++;
          continue;
        }
        ethertype = be16(&frame[12]);
        l3 = 14;
        while ((ethertype == 0x8100 || ethertype == 0x88a8) && l3 + 4 <= frame.size()) {
          ethertype = be16(&frame[l3 + 2]);
          l3 += 4;
        }
        if (ethertype != 0x0800 && ethertype != 0x86dd) {
          st.not_udp++;
          continue;
        }
        break;
      case 113:  // Linux cooked v1
        if (frame.size() < 16) {
          st.malformed++;
          continue;
        }
        ethertype = be16(&frame[14]);
        l3 = 16;
        if (ethertype != 0x0800 && ethertype != 0x86dd) {
          st.not_udp++;
          continue;
        }
        break;
      case 276:  // Linux cooked v2
        if (frame.size() < 20) {
          st.malformed++;
          continue;
        }
        ethertype = be16(&frame[0]);
        l3 = 20;
        if (ethertype != 0x0800 && ethertype != 0x86dd) {
          st.not_udp++;
          continue;
        }
        break;
      case 0:  // BSD loopback: 4-byte family in host order of the capturing machine
        if (frame.size() < 4) {
          st.malformed++;
          continue;
        }
        l3 = 4;
        break;
      default:  // raw IP
        l3 = 0;
        break;
    }
    if (l3 > frame.size()) {
      st.malformed++;
      continue;
    }
    parse_ip(frame.subspan(l3), t, cb, st);
  }
  return true;
}

}  // namespace outpost::core
