#include "sflow_decoder.hpp"

#include <cstring>

namespace outpost::sflow {
namespace {

// A bounds-checked XDR cursor: every read says whether the bytes were there.
class Reader {
 public:
  Reader() = default;
  explicit Reader(std::span<const uint8_t> s) : p_(s.data()), n_(s.size()) {}
  std::size_t left() const noexcept { return n_; }
  bool u32(uint32_t& v) noexcept {
    if (n_ < 4) return false;
    v = (uint32_t{p_[0]} << 24) | (uint32_t{p_[1]} << 16) | (uint32_t{p_[2]} << 8) | p_[3];
    advance(4);
    return true;
  }
  bool u64(uint64_t& v) noexcept {
    uint32_t hi = 0, lo = 0;
    if (n_ < 8) return false;
    u32(hi);
    u32(lo);
    v = (uint64_t{hi} << 32) | lo;
    return true;
  }
  bool bytes(std::size_t len, const uint8_t*& out) noexcept {
    if (len > n_) return false;
    out = p_;
    advance(len);
    return true;
  }
  bool skip(std::size_t len) noexcept {
    const uint8_t* ignored = nullptr;
    return bytes(len, ignored);
  }
  // An XDR opaque<> of len bytes as its own reader; its padding to 4 is skipped when present
  // (an exporter that leaves the last pad out loses nothing).
  bool opaque(std::size_t len, Reader& out) noexcept {
    const uint8_t* p = nullptr;
    if (!bytes(len, p)) return false;
    out = Reader(std::span<const uint8_t>(p, len));
    skip(std::min<std::size_t>((4 - len % 4) % 4, n_));
    return true;
  }

 private:
  void advance(std::size_t k) noexcept {
    p_ += k;
    n_ -= k;
  }
  const uint8_t* p_ = nullptr;
  std::size_t n_ = 0;
};

uint16_t be16(const uint8_t* p) noexcept { return static_cast<uint16_t>((p[0] << 8) | p[1]); }

constexpr uint32_t kUnknownIf = 0x3FFFFFFF;  // compact interface: "unknown"

// sFlow interface encoding: top two bits a format, ifIndex only when the format is 0.
uint32_t if_index(uint32_t format, uint32_t value) noexcept {
  return format == 0 && value != kUnknownIf ? value : 0;
}

void parse_l4(uint8_t proto, const uint8_t* p, std::size_t n, outpost_flow& f) {
  switch (proto) {
    case 6:  // TCP
      if (n >= 4) f.src_port = be16(p), f.dst_port = be16(p + 2);
      if (n >= 14) f.tcp_flags = p[13];
      break;
    case 17:
    case 132:
    case 136:  // UDP, SCTP, UDP-Lite
      if (n >= 4) f.src_port = be16(p), f.dst_port = be16(p + 2);
      break;
    case 1:
    case 58:  // ICMP, ICMPv6: type and code in dst_port, as NetFlow exporters do
      if (n >= 2) f.dst_port = static_cast<uint16_t>((p[0] << 8) | p[1]);
      break;
    default:
      break;
  }
}

bool parse_ipv4(const uint8_t* p, std::size_t n, outpost_flow& f) {
  if (n < 20 || (p[0] >> 4) != 4) return false;
  const std::size_t ihl = std::size_t{p[0] & 0x0Fu} * 4;
  if (ihl < 20) return false;
  f.family = 4;
  f.tos = p[1];
  f.protocol = p[9];
  std::memcpy(f.src_addr, p + 12, 4);
  std::memcpy(f.dst_addr, p + 16, 4);
  const bool later_fragment = (be16(p + 6) & 0x1FFF) != 0;  // no L4 header in it
  if (!later_fragment && ihl <= n) parse_l4(f.protocol, p + ihl, n - ihl, f);
  return true;
}

bool parse_ipv6(const uint8_t* p, std::size_t n, outpost_flow& f) {
  if (n < 40 || (p[0] >> 4) != 6) return false;
  f.family = 6;
  f.tos = static_cast<uint8_t>((be16(p) >> 4) & 0xFF);  // traffic class
  std::memcpy(f.src_addr, p + 8, 16);
  std::memcpy(f.dst_addr, p + 24, 16);
  uint8_t next = p[6];
  std::size_t off = 40;
  // Extension headers each advance at least 8 bytes, so the walk ends with the sampled bytes;
  // the cap only guards against pathological chains inside a jumbo header sample.
  for (int hops = 0; hops < 32; ++hops) {
    switch (next) {
      case 0:
      case 43:
      case 60:
      case 135:
      case 139:
      case 140: {  // hop-by-hop, routing, dst opts, ...
        if (off + 2 > n) {
          f.protocol = next;
          return true;
        }
        const uint8_t nh = p[off];
        off += (std::size_t{p[off + 1]} + 1) * 8;
        next = nh;
        continue;
      }
      case 51: {  // AH counts in 4-byte units, minus 2
        if (off + 2 > n) {
          f.protocol = next;
          return true;
        }
        const uint8_t nh = p[off];
        off += (std::size_t{p[off + 1]} + 2) * 4;
        next = nh;
        continue;
      }
      case 44: {  // fragment: a later fragment carries no L4 header
        if (off + 8 > n) {
          f.protocol = next;
          return true;
        }
        const uint8_t nh = p[off];
        const bool later = (be16(p + off + 2) & 0xFFF8) != 0;
        off += 8;
        next = nh;
        if (later) {
          f.protocol = next;
          return true;
        }
        continue;
      }
      default:
        break;
    }
    break;
  }
  f.protocol = next;
  if (off <= n) parse_l4(next, p + off, n - off, f);
  return true;
}

// Flow sample (0,1) or expanded flow sample (0,3).
Drop flow_sample(Reader r, bool expanded, const Header& h, int64_t time_ns, Output& out,
                 std::array<uint64_t, kSkipKinds>& skipped) {
  uint32_t seq = 0, src = 0, rate = 0, pool = 0, drops = 0, in = 0, outp = 0, in_fmt = 0,
           out_fmt = 0, nrec = 0;
  bool ok = r.u32(seq) && r.u32(src) && (!expanded || r.u32(src)) && r.u32(rate) && r.u32(pool) &&
            r.u32(drops);
  if (expanded) {
    ok = ok && r.u32(in_fmt) && r.u32(in) && r.u32(out_fmt) && r.u32(outp);
  } else if (ok && r.u32(in) && r.u32(outp)) {
    in_fmt = in >> 30, in &= kUnknownIf;
    out_fmt = outp >> 30, outp &= kUnknownIf;
  } else {
    ok = false;
  }
  if (!ok || !r.u32(nrec)) return Drop::bad_sample;
  if (rate == 0) return Drop::bad_sampling_rate;
  if (nrec > r.left() / 8) return Drop::too_many_records;

  outpost_flow f{};
  bool have_header = false, have_ip = false;
  uint64_t header_len = 0, eth_len = 0, ip_len = 0;
  std::array<uint64_t, kSkipKinds> local{};
  for (uint32_t i = 0; i < nrec; ++i) {
    uint32_t fmt = 0, len = 0;
    Reader rec;
    if (!r.u32(fmt) || !r.u32(len)) return Drop::bad_record_length;
    if (!r.opaque(len, rec)) return Drop::bad_record_length;
    const uint32_t enterprise = fmt >> 12, format = fmt & 0xFFF;
    if (enterprise != 0 || format < 1 || format > 4) {
      ++local[static_cast<std::size_t>(Skip::ignored_flow_record)];
      continue;
    }
    if (format == 1) {  // raw packet header
      uint32_t proto = 0, frame_len = 0, stripped = 0, hlen = 0;
      const uint8_t* hdr = nullptr;
      if (!rec.u32(proto) || !rec.u32(frame_len) || !rec.u32(stripped) || !rec.u32(hlen) ||
          !rec.bytes(hlen, hdr))
        return Drop::bad_record;
      if (have_header) continue;  // one packet per sample; a second header adds nothing
      outpost_flow g{};
      const std::span<const uint8_t> bytes(hdr, hlen);
      bool parsed = false;
      if (proto == 1)
        parsed = parse_ethernet(bytes, g);
      else if (proto == 11 || proto == 12)
        parsed = parse_ip(bytes, g);
      else {
        ++local[static_cast<std::size_t>(Skip::header_protocol)];
        continue;
      }
      if (!parsed) {
        ++local[static_cast<std::size_t>(Skip::not_ip)];
        continue;
      }
      f = g;
      header_len = frame_len;
      have_header = true;
    } else if (format == 2) {  // sampled Ethernet frame: its length, for a sampled IP record
      uint32_t len32 = 0;
      if (!rec.u32(len32) || !rec.skip(8 + 8 + 4)) return Drop::bad_record;
      eth_len = len32;
    } else if (format == 3) {  // sampled IPv4
      uint32_t l = 0, proto = 0, sp = 0, dp = 0, flags = 0, tos = 0;
      const uint8_t *s = nullptr, *d = nullptr;
      if (!rec.u32(l) || !rec.u32(proto) || !rec.bytes(4, s) || !rec.bytes(4, d) || !rec.u32(sp) ||
          !rec.u32(dp) || !rec.u32(flags) || !rec.u32(tos))
        return Drop::bad_record;
      if (have_header || have_ip) continue;
      outpost_flow g{};
      g.family = 4;
      std::memcpy(g.src_addr, s, 4);
      std::memcpy(g.dst_addr, d, 4);
      g.protocol = static_cast<uint8_t>(proto), g.src_port = static_cast<uint16_t>(sp);
      g.dst_port = static_cast<uint16_t>(dp), g.tcp_flags = static_cast<uint8_t>(flags);
      g.tos = static_cast<uint8_t>(tos);
      f = g, ip_len = l, have_ip = true;
    } else {  // sampled IPv6
      uint32_t l = 0, proto = 0, sp = 0, dp = 0, flags = 0, prio = 0;
      const uint8_t *s = nullptr, *d = nullptr;
      if (!rec.u32(l) || !rec.u32(proto) || !rec.bytes(16, s) || !rec.bytes(16, d) ||
          !rec.u32(sp) || !rec.u32(dp) || !rec.u32(flags) || !rec.u32(prio))
        return Drop::bad_record;
      if (have_header || have_ip) continue;
      outpost_flow g{};
      g.family = 6;
      std::memcpy(g.src_addr, s, 16);
      std::memcpy(g.dst_addr, d, 16);
      g.protocol = static_cast<uint8_t>(proto), g.src_port = static_cast<uint16_t>(sp);
      g.dst_port = static_cast<uint16_t>(dp), g.tcp_flags = static_cast<uint8_t>(flags);
      g.tos = static_cast<uint8_t>(prio);
      f = g, ip_len = l, have_ip = true;
    }
  }
  for (std::size_t k = 0; k < kSkipKinds; ++k) skipped[k] += local[k];
  if (!have_header && !have_ip) {
    if (local[static_cast<std::size_t>(Skip::not_ip)] == 0 &&
        local[static_cast<std::size_t>(Skip::header_protocol)] == 0)
      ++skipped[static_cast<std::size_t>(Skip::no_packet_record)];
    return Drop::none;
  }
  // Frame length as the agent saw it (for Ethernet it includes the FCS, per the spec); a sampled
  // IP record alone only knows the IP length, unless a sampled Ethernet record came with it.
  const uint64_t frame = have_header ? header_len : eth_len != 0 ? eth_len : ip_len;
  f.start_ns = f.end_ns = time_ns;
  std::memcpy(f.exporter_addr, h.agent.addr.data(), 16);  // IPv4: first 4 bytes, rest zero
  f.exporter_family = h.agent.family;
  f.input_if = if_index(in_fmt, in);
  f.output_if = if_index(out_fmt, outp);
  f.sampling_rate = rate;
  f.packets = rate;
  f.bytes = frame * rate;
  out.flows.push_back(f);
  return Drop::none;
}

// Counter sample (0,2) or expanded counter sample (0,4).
Drop counter_sample(Reader r, bool expanded, Output& out,
                    std::array<uint64_t, kSkipKinds>& skipped) {
  uint32_t seq = 0, src = 0, nrec = 0;
  if (!r.u32(seq) || !r.u32(src) || (expanded && !r.u32(src)) || !r.u32(nrec))
    return Drop::bad_sample;
  if (nrec > r.left() / 8) return Drop::too_many_records;
  for (uint32_t i = 0; i < nrec; ++i) {
    uint32_t fmt = 0, len = 0;
    Reader rec;
    if (!r.u32(fmt) || !r.u32(len) || !r.opaque(len, rec)) return Drop::bad_record_length;
    if (fmt != 1) {  // (enterprise 0, format 1) only
      ++skipped[static_cast<std::size_t>(Skip::ignored_counter_record)];
      continue;
    }
    IfCounters c;
    c.sequence = seq;
    if (!rec.u32(c.if_index) || !rec.u32(c.if_type) || !rec.u64(c.if_speed) ||
        !rec.u32(c.if_direction) || !rec.u32(c.if_status) || !rec.u64(c.in_octets) ||
        !rec.u32(c.in_ucast_pkts) || !rec.u32(c.in_multicast_pkts) ||
        !rec.u32(c.in_broadcast_pkts) || !rec.u32(c.in_discards) || !rec.u32(c.in_errors) ||
        !rec.u32(c.in_unknown_protos) || !rec.u64(c.out_octets) || !rec.u32(c.out_ucast_pkts) ||
        !rec.u32(c.out_multicast_pkts) || !rec.u32(c.out_broadcast_pkts) ||
        !rec.u32(c.out_discards) || !rec.u32(c.out_errors) || !rec.u32(c.promiscuous_mode))
      return Drop::bad_record;
    out.counters.push_back(c);
  }
  return Drop::none;
}

}  // namespace

std::string_view drop_name(Drop d) noexcept {
  static constexpr std::array<std::string_view, kDropReasons> names{"none",
                                                                    "truncated",
                                                                    "bad_version",
                                                                    "bad_agent_address",
                                                                    "too_many_samples",
                                                                    "bad_sample_length",
                                                                    "bad_sample",
                                                                    "too_many_records",
                                                                    "bad_record_length",
                                                                    "bad_record",
                                                                    "bad_sampling_rate"};
  const auto i = static_cast<std::size_t>(d);
  return i < names.size() ? names[i] : "unknown";
}

std::string_view skip_name(Skip s) noexcept {
  static constexpr std::array<std::string_view, kSkipKinds> names{
      "unknown_sample", "ignored_flow_record", "ignored_counter_record",
      "not_ip",         "header_protocol",     "no_packet_record"};
  const auto i = static_cast<std::size_t>(s);
  return i < names.size() ? names[i] : "unknown";
}

bool parse_ip(std::span<const uint8_t> packet, outpost_flow& f) {
  if (packet.empty()) return false;
  const uint8_t v = packet[0] >> 4;
  if (v == 4) return parse_ipv4(packet.data(), packet.size(), f);
  if (v == 6) return parse_ipv6(packet.data(), packet.size(), f);
  return false;
}

bool parse_ethernet(std::span<const uint8_t> frame, outpost_flow& f) {
  const uint8_t* p = frame.data();
  const std::size_t n = frame.size();
  if (n < 14) return false;
  uint16_t type = be16(p + 12);
  std::size_t off = 14;
  // 802.1Q, 802.1ad (QinQ) and the old 0x9100 outer tag; each tag is 4 bytes, so this ends.
  while ((type == 0x8100 || type == 0x88A8 || type == 0x9100) && off + 4 <= n) {
    type = be16(p + off + 2);
    off += 4;
  }
  if (type == 0x0800) return parse_ipv4(p + off, n - off, f);
  if (type == 0x86DD) return parse_ipv6(p + off, n - off, f);
  return false;
}

Result decode(std::span<const uint8_t> datagram, int64_t time_ns, Output& out) {
  Result res;
  Reader r(datagram);
  Header& h = res.header;
  uint32_t version = 0, addr_type = 0;
  if (!r.u32(version)) return {Drop::truncated, h};
  if (version != 5) return {Drop::bad_version, h};
  if (!r.u32(addr_type)) return {Drop::truncated, h};
  const uint8_t* a = nullptr;
  if (addr_type == 1)
    h.agent.family = 4;
  else if (addr_type == 2)
    h.agent.family = 6;
  else
    return {Drop::bad_agent_address, h};
  const std::size_t alen = addr_type == 1 ? 4 : 16;
  if (!r.bytes(alen, a) || !r.u32(h.agent.sub_agent) || !r.u32(h.sequence) || !r.u32(h.uptime_ms) ||
      !r.u32(h.sample_count))
    return {Drop::truncated, h};
  std::memcpy(h.agent.addr.data(), a, alen);
  if (h.sample_count > r.left() / 8) return {Drop::too_many_samples, h};

  const std::size_t flows0 = out.flows.size(), counters0 = out.counters.size();
  std::array<uint64_t, kSkipKinds> skipped{};
  auto fail = [&](Drop d) {
    out.flows.resize(flows0);
    out.counters.resize(counters0);
    return Result{d, h};
  };
  for (uint32_t i = 0; i < h.sample_count; ++i) {
    uint32_t fmt = 0, len = 0;
    Reader s;
    if (!r.u32(fmt) || !r.u32(len) || !r.opaque(len, s)) return fail(Drop::bad_sample_length);
    Drop d = Drop::none;
    switch (fmt) {  // enterprise 0 in the top 20 bits
      case 1:
        d = flow_sample(s, false, h, time_ns, out, skipped);
        break;
      case 2:
        d = counter_sample(s, false, out, skipped);
        break;
      case 3:
        d = flow_sample(s, true, h, time_ns, out, skipped);
        break;
      case 4:
        d = counter_sample(s, true, out, skipped);
        break;
      default:
        ++skipped[static_cast<std::size_t>(Skip::unknown_sample)];
        break;
    }
    if (d != Drop::none) return fail(d);
  }
  for (std::size_t k = 0; k < kSkipKinds; ++k) out.skipped[k] += skipped[k];
  return res;
}

uint64_t SequenceTracker::update(const Header& h) {
  auto it = last_.find(h.agent);
  if (it == last_.end()) {
    if (last_.size() < max_agents_) last_.emplace(h.agent, State{h.sequence, h.uptime_ms});
    return 0;
  }
  State& s = it->second;
  const uint32_t diff = h.sequence - s.sequence;  // modulo 2^32: a wrap is a step forward
  if (diff == 0) return 0;                        // duplicate
  if (diff >= 0x80000000u) {
    // Backwards: far back, or with the uptime clearly reset, the agent restarted and counts
    // from 1 again; a little back is a late datagram, already counted missing (an estimate).
    const uint32_t back = s.sequence - h.sequence;
    if (back > 1024 || uint64_t{h.uptime_ms} + 10000 < s.uptime_ms)
      s = State{h.sequence, h.uptime_ms};
    return 0;
  }
  s = State{h.sequence, h.uptime_ms};
  return diff - 1;
}

}  // namespace outpost::sflow
