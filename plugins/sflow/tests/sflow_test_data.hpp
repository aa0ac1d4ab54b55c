// Hand-built sFlow datagrams shared by the decoder and plugin tests.
#pragma once

#include <cstdint>
#include <vector>

namespace sflow_test {

// A minimal XDR writer for the hand-built cases.
struct Xdr {
  std::vector<uint8_t> b;
  Xdr& u32(uint32_t v) {
    for (int s = 24; s >= 0; s -= 8) b.push_back(static_cast<uint8_t>(v >> s));
    return *this;
  }
  Xdr& raw(const std::vector<uint8_t>& v) {
    b.insert(b.end(), v.begin(), v.end());
    return *this;
  }
};

inline std::vector<uint8_t> tcp_frame() {
  std::vector<uint8_t> f(14 + 20 + 20, 0);
  f[12] = 0x08;
  f[14] = 0x45;
  f[14 + 9] = 6;
  f[14 + 12] = 10, f[14 + 15] = 1;
  f[14 + 16] = 10, f[14 + 19] = 2;
  f[34] = 0x30, f[35] = 0x39;  // 12345
  f[36] = 0x00, f[37] = 0x50;  // 80
  f[34 + 13] = 0x02;           // SYN
  return f;
}

inline std::vector<uint8_t> one_flow_datagram(uint32_t seq) {
  const auto frame = tcp_frame();
  Xdr rec;
  rec.u32(1)
      .u32(static_cast<uint32_t>(frame.size()) + 4)
      .u32(4)
      .u32(static_cast<uint32_t>(frame.size()))
      .raw(frame)
      .raw({0, 0});  // XDR pad
  Xdr sample;
  sample.u32(seq)
      .u32(1)
      .u32(10)
      .u32(100)
      .u32(0)
      .u32(1)
      .u32(2)
      .u32(1)
      .u32(1)
      .u32(static_cast<uint32_t>(rec.b.size()))
      .raw(rec.b);
  Xdr d;
  d.u32(5)
      .u32(1)
      .u32(0x7F000001)
      .u32(0)
      .u32(seq)
      .u32(seq * 1000)
      .u32(1)
      .u32(1)
      .u32(static_cast<uint32_t>(sample.b.size()))
      .raw(sample.b);
  return d.b;
}

// One counter sample with generic interface counters of ifindex.
inline std::vector<uint8_t> counter_datagram(uint32_t seq, uint32_t ifindex, uint64_t in_octets) {
  Xdr c;
  c.u32(ifindex).u32(6).u32(0).u32(1000000000).u32(1).u32(3);
  c.u32(static_cast<uint32_t>(in_octets >> 32)).u32(static_cast<uint32_t>(in_octets));
  for (int i = 0; i < 6; ++i) c.u32(static_cast<uint32_t>(10 + i));
  c.u32(0).u32(777);
  for (int i = 0; i < 7; ++i) c.u32(static_cast<uint32_t>(20 + i));
  Xdr sample;
  sample.u32(seq).u32(ifindex).u32(1).u32(1).u32(static_cast<uint32_t>(c.b.size())).raw(c.b);
  Xdr d;
  d.u32(5)
      .u32(1)
      .u32(0x7F000001)
      .u32(0)
      .u32(seq)
      .u32(seq * 1000)
      .u32(1)
      .u32(2)
      .u32(static_cast<uint32_t>(sample.b.size()))
      .raw(sample.b);
  return d.b;
}

// A counter sample as Open vSwitch writes one: the counters it does not keep (in broadcast, in
// unknown protocols, out multicast, out broadcast) set to all ones; with unknown_octets the
// 64-bit out octets too.
inline std::vector<uint8_t> ovs_counter_datagram(uint32_t seq, uint32_t ifindex,
                                                 bool unknown_octets) {
  constexpr uint32_t kUnknown = 0xFFFFFFFF;
  Xdr c;
  c.u32(ifindex).u32(6).u32(2).u32(0x540BE400).u32(1).u32(3);  // 10 Gbit/s, full duplex, up
  c.u32(0).u32(4242);                                          // in octets
  c.u32(31).u32(2).u32(kUnknown).u32(0).u32(0).u32(kUnknown);  // ucast mcast bcast disc err unk
  if (unknown_octets)
    c.u32(kUnknown).u32(kUnknown);
  else
    c.u32(0).u32(5151);                                        // out octets
  c.u32(47).u32(kUnknown).u32(kUnknown).u32(0).u32(0).u32(0);  // ucast mcast bcast disc err promisc
  Xdr sample;
  sample.u32(seq).u32(ifindex).u32(1).u32(1).u32(static_cast<uint32_t>(c.b.size())).raw(c.b);
  Xdr d;
  d.u32(5)
      .u32(1)
      .u32(0x7F000001)
      .u32(0)
      .u32(seq)
      .u32(seq * 1000)
      .u32(1)
      .u32(2)
      .u32(static_cast<uint32_t>(sample.b.size()))
      .raw(sample.b);
  return d.b;
}

}  // namespace sflow_test
