#include "decoder.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstring>
#include <limits>
#include <optional>

namespace outpost::netflow {
namespace {

constexpr uint16_t kVariable = 0xFFFF;
constexpr uint32_t kReversePen = 29305;  // RFC 5103 biflow reverse elements
constexpr int64_t kNs = 1'000'000'000;
constexpr int64_t kNtpToUnix = 2'208'988'800;  // seconds from 1900 to 1970

uint16_t rd16(const uint8_t* p) { return static_cast<uint16_t>((p[0] << 8) | p[1]); }
uint32_t rd32(const uint8_t* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | p[3];
}
// Reduced-size encoding (RFC 7011 6.2): an unsigned of 1 to 8 bytes.
uint64_t rd_uint(const uint8_t* p, std::size_t n) {
  switch (n) {  // the common sizes without a loop
    case 1:
      return p[0];
    case 2:
      return rd16(p);
    case 4:
      return rd32(p);
    case 8:
      return (uint64_t{rd32(p)} << 32) | rd32(p + 4);
    default:
      break;
  }
  uint64_t v = 0;
  for (std::size_t i = 0; i < n; ++i) v = (v << 8) | p[i];
  return v;
}

int64_t sat_add(int64_t a, int64_t b) {
  int64_t r;
  if (__builtin_add_overflow(a, b, &r))
    return b > 0 ? std::numeric_limits<int64_t>::max() : std::numeric_limits<int64_t>::min();
  return r;
}
int64_t sat_mul(int64_t a, int64_t b) {
  int64_t r;
  if (__builtin_mul_overflow(a, b, &r))
    return (a < 0) != (b < 0) ? std::numeric_limits<int64_t>::min()
                              : std::numeric_limits<int64_t>::max();
  return r;
}
uint64_t sat_mul_u(uint64_t a, uint64_t b) {
  uint64_t r;
  if (__builtin_mul_overflow(a, b, &r)) return std::numeric_limits<uint64_t>::max();
  return r;
}
int64_t clamp_i64(uint64_t v) {
  return v > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())
             ? std::numeric_limits<int64_t>::max()
             : static_cast<int64_t>(v);
}
// NTP timestamp (dateTimeMicroseconds/Nanoseconds, RFC 7011 6.1.9-10) to Unix ns.
int64_t ntp_to_ns(uint64_t v) {
  const auto secs = static_cast<int64_t>(v >> 32) - kNtpToUnix;
  const auto frac = static_cast<int64_t>(((v & 0xFFFFFFFFu) * uint64_t{1'000'000'000}) >> 32);
  return secs * kNs + frac;
}
// Relative time in sysUptime ms against the header: modular, so uptime wrap-around works.
int64_t uptime_to_ns(int64_t export_ns, uint32_t header_uptime_ms, uint32_t t_ms) {
  const auto back = static_cast<int32_t>(header_uptime_ms - t_ms);
  return sat_add(export_ns, -int64_t{back} * 1'000'000);
}
// IPFIX flowStart/EndSysUpTime count ms from systemInitTimeMilliseconds in 32 bits: they wrap
// after 49.7 days of uptime, and an exporter reading old packets (softflowd -r) even reports
// flows from before its own start. Of init + t + k * 2^32 the one nearest the export is meant.
int64_t init_uptime_to_ns(int64_t init_ms, uint32_t t, int64_t export_ns) {
  constexpr int64_t kWrap = int64_t{1} << 32;
  const int64_t base = sat_add(init_ms, t);
  const int64_t diff = sat_add(export_ns / 1'000'000, -base);
  if (diff > std::numeric_limits<int64_t>::max() / 2 ||
      diff < std::numeric_limits<int64_t>::min() / 2)
    return sat_mul(base, 1'000'000);  // nonsense init time: no correction
  int64_t k = (diff + kWrap / 2) / kWrap;
  if ((diff + kWrap / 2) % kWrap < 0) --k;  // floor
  return sat_mul(sat_add(base, sat_mul(k, kWrap)), 1'000'000);
}
bool all_zero(std::span<const uint8_t> s) {
  return std::all_of(s.begin(), s.end(), [](uint8_t b) { return b == 0; });
}

// The fields of one data record, before they become an outpost_flow.
struct Record {
  uint8_t src[16]{}, dst[16]{};
  uint8_t addr_family = 0;  // 6 wins over 4 when a template carries both
  uint8_t ip_version = 0;
  uint8_t proto = 0, flags = 0, tos = 0;
  uint8_t rev_flags = 0, rev_tos = 0;
  bool reverse = false;
  bool has_icmp = false, has_dport = false;
  uint16_t sport = 0, dport = 0, icmp = 0;
  uint32_t in_if = 0, out_if = 0;
  uint64_t bytes = 0, packets = 0;
  uint64_t rev_bytes = 0, rev_packets = 0;
  std::optional<int64_t> abs_start, abs_end;
  std::optional<uint32_t> up_first, up_last;
  std::optional<uint64_t> delta_start_us, delta_end_us;
  std::optional<int64_t> sys_init_ms;
  std::optional<uint64_t> sampler;
  uint64_t interval = 0, random_interval = 0, pkt_interval = 0, pkt_space = 0, size = 0,
           population = 0;
  double probability = 0;

  // The record's own sampling rate, 0 when it announces none.
  uint32_t rate() const {
    double r = 0;
    if (interval > 0)
      r = static_cast<double>(interval);
    else if (random_interval > 0)
      r = static_cast<double>(random_interval);
    else if (pkt_interval > 0)
      r = static_cast<double>(pkt_interval + pkt_space) / static_cast<double>(pkt_interval);
    else if (size > 0 && population > 0)
      r = static_cast<double>(population) / static_cast<double>(size);
    else if (probability > 0 && probability <= 1)
      r = 1.0 / probability;
    if (!(r >= 1)) return 0;
    if (r >= 4294967295.0) return 0xFFFFFFFFu;
    return static_cast<uint32_t>(std::lround(r));
  }
};

// What the decoder does with a field, decided once per template (Template::codes/ops) so a
// record costs one dense switch per field it reads and nothing for the fields it skips.
enum Code : uint8_t {
  c_skip = 0,
  c_src4,
  c_dst4,
  c_src6,
  c_dst6,
  c_probability,
  c_bytes,
  c_packets,
  c_proto,
  c_tos,
  c_flags,
  c_sport,
  c_dport,
  c_icmp,
  c_icmp_type,
  c_icmp_code,
  c_in_if,
  c_out_if,
  c_ip_version,
  c_up_last,
  c_up_first,
  c_start_s,
  c_end_s,
  c_start_ms,
  c_end_ms,
  c_start_ntp,
  c_end_ntp,
  c_delta_start,
  c_delta_end,
  c_sys_init,
  c_interval,
  c_random_interval,
  c_pkt_interval,
  c_pkt_space,
  c_size,
  c_population,
  c_sampler,
  c_rev_bytes,
  c_rev_packets,
  c_rev_tos,
  c_rev_flags,
};

// Fields that say the same thing: a template carrying several uses the best-ranked (the first
// of equal rank): deltas over totals over v9 OUT_ counters, generic over per-protocol ports,
// logical over physical interfaces.
struct Ranked {
  Code code;
  int rank;
};

// Field ids are the NetFlow v9 numbers, which IPFIX (RFC 7012, IANA) kept below 128.
Ranked classify(uint16_t id, std::size_t n, bool reverse) {
  if (reverse) {  // RFC 5103 biflow reverse elements
    if (n == 0 || n > 8) return {c_skip, 0};
    switch (id) {
      case 1:
      case 85:
        return {c_rev_bytes, 0};
      case 2:
      case 86:
        return {c_rev_packets, 0};
      case 5:
        return {c_rev_tos, 0};
      case 6:
        return {c_rev_flags, 0};
      default:
        return {c_skip, 0};
    }
  }
  switch (id) {  // addresses: fixed sizes, anything else is ignored
    case 8:
      return {n == 4 ? c_src4 : c_skip, 0};
    case 12:
      return {n == 4 ? c_dst4 : c_skip, 0};
    case 27:
      return {n == 16 ? c_src6 : c_skip, 0};
    case 28:
      return {n == 16 ? c_dst6 : c_skip, 0};
    case 311:
      return {n == 8 ? c_probability : c_skip, 0};  // samplingProbability, float64
    default:
      break;
  }
  if (n == 0 || n > 8) return {c_skip, 0};
  switch (id) {
    case 1:
      return {c_bytes, 3};  // octetDeltaCount
    case 85:
      return {c_bytes, 2};  // octetTotalCount
    case 23:
      return {c_bytes, 1};  // v9 OUT_BYTES
    case 2:
      return {c_packets, 3};
    case 86:
      return {c_packets, 2};
    case 24:
      return {c_packets, 1};
    case 4:
      return {c_proto, 0};
    case 5:
      return {c_tos, 0};
    case 6:
      return {c_flags, 0};  // 2-byte in IPFIX: low 8 bits
    case 7:
      return {c_sport, 2};
    case 180:
    case 182:
      return {c_sport, 1};  // udp/tcpSourcePort
    case 11:
      return {c_dport, 2};
    case 181:
    case 183:
      return {c_dport, 1};
    case 32:
    case 139:
      return {c_icmp, 0};  // type*256+code
    case 176:
    case 178:
      return {c_icmp_type, 0};
    case 177:
    case 179:
      return {c_icmp_code, 0};
    case 10:
      return {c_in_if, 2};
    case 252:
      return {c_in_if, 1};  // ingressPhysicalInterface
    case 14:
      return {c_out_if, 2};
    case 253:
      return {c_out_if, 1};
    case 60:
      return {c_ip_version, 0};
    case 21:
      return {c_up_last, 0};  // flowEndSysUpTime (ms)
    case 22:
      return {c_up_first, 0};
    case 150:
      return {c_start_s, 0};  // seconds
    case 151:
      return {c_end_s, 0};
    case 152:
      return {c_start_ms, 0};
    case 153:
      return {c_end_ms, 0};
    case 154:
    case 156:
      return {n == 8 ? c_start_ntp : c_skip, 0};  // micro/nano: NTP format
    case 155:
    case 157:
      return {n == 8 ? c_end_ntp : c_skip, 0};
    case 158:
      return {c_delta_start, 0};
    case 159:
      return {c_delta_end, 0};
    case 160:
      return {c_sys_init, 0};
    case 34:
      return {c_interval, 0};  // samplingInterval
    case 50:
      return {c_random_interval, 0};  // samplerRandomInterval
    case 305:
      return {c_pkt_interval, 0};
    case 306:
      return {c_pkt_space, 0};
    case 309:
      return {c_size, 0};
    case 310:
      return {c_population, 0};
    case 48:
    case 302:
      return {c_sampler, 0};  // samplerId / selectorId
    default:
      return {c_skip, 0};
  }
}

void apply(Record& r, uint8_t code, const uint8_t* v, std::size_t n) {
  // One dispatch per field: the value is read first (classify() allowed 16 bytes for addresses
  // only, and 1 to 8 for everything else).
  const uint64_t x = n <= 8 ? rd_uint(v, n) : 0;
  switch (code) {
    case c_src4:
      std::memcpy(r.src, v, 4);
      if (r.addr_family == 0) r.addr_family = 4;
      break;
    case c_dst4:
      std::memcpy(r.dst, v, 4);
      if (r.addr_family == 0) r.addr_family = 4;
      break;
    case c_src6:
      std::memcpy(r.src, v, 16);
      r.addr_family = 6;
      break;
    case c_dst6:
      std::memcpy(r.dst, v, 16);
      r.addr_family = 6;
      break;
    case c_probability: {
      double d;
      std::memcpy(&d, &x, sizeof d);
      if (std::isfinite(d)) r.probability = d;
      break;
    }
    case c_bytes:
      r.bytes = x;
      break;
    case c_packets:
      r.packets = x;
      break;
    case c_proto:
      r.proto = static_cast<uint8_t>(x);
      break;
    case c_tos:
      r.tos = static_cast<uint8_t>(x);
      break;
    case c_flags:
      r.flags = static_cast<uint8_t>(x);
      break;
    case c_sport:
      r.sport = static_cast<uint16_t>(x);
      break;
    case c_dport:
      r.dport = static_cast<uint16_t>(x);
      r.has_dport = true;
      break;
    case c_icmp:
      r.icmp = static_cast<uint16_t>(x);
      r.has_icmp = true;
      break;
    case c_icmp_type:
      r.icmp = static_cast<uint16_t>(((x & 0xFF) << 8) | (r.icmp & 0xFF));
      r.has_icmp = true;
      break;
    case c_icmp_code:
      r.icmp = static_cast<uint16_t>((r.icmp & 0xFF00) | (x & 0xFF));
      r.has_icmp = true;
      break;
    case c_in_if:
      r.in_if = static_cast<uint32_t>(x);
      break;
    case c_out_if:
      r.out_if = static_cast<uint32_t>(x);
      break;
    case c_ip_version:
      r.ip_version = static_cast<uint8_t>(x);
      break;
    case c_up_last:
      r.up_last = static_cast<uint32_t>(x);
      break;
    case c_up_first:
      r.up_first = static_cast<uint32_t>(x);
      break;
    case c_start_s:
      r.abs_start = static_cast<int64_t>(x & 0xFFFFFFFFu) * kNs;
      break;
    case c_end_s:
      r.abs_end = static_cast<int64_t>(x & 0xFFFFFFFFu) * kNs;
      break;
    case c_start_ms:
      r.abs_start = sat_mul(clamp_i64(x), 1'000'000);
      break;
    case c_end_ms:
      r.abs_end = sat_mul(clamp_i64(x), 1'000'000);
      break;
    case c_start_ntp:
      r.abs_start = ntp_to_ns(x);
      break;
    case c_end_ntp:
      r.abs_end = ntp_to_ns(x);
      break;
    case c_delta_start:
      r.delta_start_us = x;
      break;
    case c_delta_end:
      r.delta_end_us = x;
      break;
    case c_sys_init:
      r.sys_init_ms = clamp_i64(x);
      break;
    case c_interval:
      r.interval = x;
      break;
    case c_random_interval:
      r.random_interval = x;
      break;
    case c_pkt_interval:
      r.pkt_interval = x;
      break;
    case c_pkt_space:
      r.pkt_space = x;
      break;
    case c_size:
      r.size = x;
      break;
    case c_population:
      r.population = x;
      break;
    case c_sampler:
      r.sampler = x;
      break;
    case c_rev_bytes:
      r.rev_bytes = x;
      r.reverse = true;
      break;
    case c_rev_packets:
      r.rev_packets = x;
      r.reverse = true;
      break;
    case c_rev_tos:
      r.rev_tos = static_cast<uint8_t>(x);
      break;
    case c_rev_flags:
      r.rev_flags = static_cast<uint8_t>(x);
      break;
    default:
      break;
  }
}

void set_exporter(outpost_flow& f, const Exporter& from) {
  std::memcpy(f.exporter_addr, from.addr.data(), 16);
  f.exporter_family = from.family;
}

}  // namespace

std::string_view drop_name(Drop d) {
  switch (d) {
    case Drop::short_packet:
      return "short_packet";
    case Drop::bad_version:
      return "bad_version";
    case Drop::bad_length:
      return "bad_length";
    case Drop::bad_set:
      return "bad_set";
    case Drop::reserved_set:
      return "reserved_set";
    case Drop::bad_template:
      return "bad_template";
    case Drop::truncated_record:
      return "truncated_record";
    case Drop::no_template:
      return "no_template";
    case Drop::pending_full:
      return "pending_full";
    case Drop::count_:
      break;
  }
  return "?";
}

std::string_view drop_unit(Drop d) {
  switch (d) {
    case Drop::short_packet:
    case Drop::bad_version:
    case Drop::bad_length:
      return "datagram";
    case Drop::bad_template:
      return "template";
    default:
      return "set";
  }
}

Exporter Exporter::from(const outpost_sockaddr& s) {
  Exporter e;
  e.family = s.family;
  if (s.family == 4)
    std::memcpy(e.addr.data(), s.addr, 4);
  else
    std::memcpy(e.addr.data(), s.addr, 16);
  return e;
}

bool finish_template(uint16_t version, Decoder::Template& tpl) {
  if (tpl.fields.empty() || tpl.fields.size() > 0xFFFF) return false;
  if (tpl.scope_count > tpl.fields.size()) return false;
  if (version == 10 && tpl.options && tpl.scope_count == 0) return false;  // RFC 7011 3.4.2.2
  uint32_t min = 0;
  bool variable = false;
  for (const auto& f : tpl.fields) {
    if (version == 10 && f.length == kVariable) {
      variable = true;
      min += 1;
    } else {
      min += f.length;
    }
    if (version != 10 && f.pen != 0) return false;
  }
  // A record must take room (else a data set never ends) and fit in one set.
  if (min == 0 || min > 0xFFFFu - 4) return false;
  tpl.min_length = min;
  tpl.variable = variable;
  // The plan of a fixed-length template: the fields read, with their offsets and codes.
  // Variable-length templates classify each field per record (decode_data).
  tpl.ops.clear();
  if (variable) return true;
  std::vector<uint8_t> codes(tpl.fields.size(), c_skip);
  std::array<int, 256> best_rank{};
  std::array<std::size_t, 256> best_field{};
  best_rank.fill(-1);
  for (std::size_t i = 0; i < tpl.fields.size(); ++i) {
    const auto& f = tpl.fields[i];
    // v9 scope fields are scope types (System, Interface...), not field ids.
    if (version != 10 && tpl.options && i < tpl.scope_count) continue;
    if (f.pen != 0 && f.pen != kReversePen) continue;  // enterprise fields we do not know
    const Ranked c = classify(f.id, f.length, f.pen == kReversePen);
    if (c.code == c_skip) continue;
    if (c.rank > best_rank[c.code]) {
      if (best_rank[c.code] >= 0) codes[best_field[c.code]] = c_skip;
      best_rank[c.code] = c.rank;
      best_field[c.code] = i;
      codes[i] = c.code;
    } else if (c.rank == 0) {
      codes[i] = c.code;  // unranked: every occurrence applies, in order
    }
  }
  uint32_t offset = 0;
  for (std::size_t i = 0; i < tpl.fields.size(); ++i) {
    if (codes[i] != c_skip)
      tpl.ops.push_back({static_cast<uint16_t>(offset), tpl.fields[i].length, codes[i]});
    offset += tpl.fields[i].length;
  }
  return true;
}

PacketResult decode_v5(std::span<const uint8_t> data, const Exporter& from,
                       uint32_t default_sampling_rate, std::vector<outpost_flow>& out,
                       Totals& totals) {
  PacketResult res;
  res.version = 5;
  constexpr std::size_t kHeader = 24, kRecord = 48;
  if (data.size() < kHeader) {
    totals.dropped[static_cast<std::size_t>(Drop::short_packet)]++;
    return res;
  }
  const uint8_t* h = data.data();
  const std::size_t count = rd16(h + 2);
  if (kHeader + count * kRecord > data.size()) {
    totals.dropped[static_cast<std::size_t>(Drop::bad_length)]++;
    return res;
  }
  res.accepted = true;
  const uint32_t uptime = rd32(h + 4);
  const int64_t export_ns = int64_t{rd32(h + 8)} * kNs + rd32(h + 12);
  const uint32_t interval = rd16(h + 22) & 0x3FFFu;  // top 2 bits: sampling mode
  uint32_t rate = interval != 0 ? interval : default_sampling_rate;
  if (rate == 0) rate = 1;
  for (std::size_t i = 0; i < count; ++i) {
    const uint8_t* r = h + kHeader + i * kRecord;
    outpost_flow f{};
    f.family = 4;
    std::memcpy(f.src_addr, r, 4);
    std::memcpy(f.dst_addr, r + 4, 4);
    set_exporter(f, from);
    f.input_if = rd16(r + 12);
    f.output_if = rd16(r + 14);
    f.packets = sat_mul_u(rd32(r + 16), rate);
    f.bytes = sat_mul_u(rd32(r + 20), rate);
    f.start_ns = uptime_to_ns(export_ns, uptime, rd32(r + 24));
    f.end_ns = uptime_to_ns(export_ns, uptime, rd32(r + 28));
    f.src_port = rd16(r + 32);
    f.dst_port = rd16(r + 34);
    f.tcp_flags = r[37];
    f.protocol = r[38];
    f.tos = r[39];
    f.sampling_rate = rate;
    out.push_back(f);
  }
  res.records = count;
  return res;
}

std::size_t Decoder::KeyHash::operator()(const TemplateKey& k) const noexcept {
  uint64_t h = 1469598103934665603ull;  // FNV-1a over the key's bytes
  auto mix = [&h](uint64_t v) {
    for (int i = 0; i < 8; ++i) {
      h ^= (v >> (i * 8)) & 0xFF;
      h *= 1099511628211ull;
    }
  };
  uint64_t a = 0, b = 0;
  std::memcpy(&a, k.domain.exporter.addr.data(), 8);
  std::memcpy(&b, k.domain.exporter.addr.data() + 8, 8);
  mix(a);
  mix(b);
  mix((uint64_t{k.domain.exporter.family} << 56) | (uint64_t{k.domain.version} << 40) |
      (uint64_t{k.id} << 32) | k.domain.domain);
  return static_cast<std::size_t>(h);
}

Decoder::Decoder(Limits limits) : limits_(limits) {}

PacketResult Decoder::decode(std::span<const uint8_t> data, const Exporter& from, int64_t now_ns,
                             std::vector<outpost_flow>& out) {
  now_ns_ = now_ns;
  expire(now_ns);
  if (data.size() < 2) {
    totals_.dropped[static_cast<std::size_t>(Drop::short_packet)]++;
    return {};
  }
  switch (rd16(data.data())) {
    case 5:
      return decode_v5(data, from, limits_.default_sampling_rate, out, totals_);
    case 9:
      return decode_v9(data, from, out);
    case 10:
      return decode_ipfix(data, from, out);
    default:
      break;
  }
  totals_.dropped[static_cast<std::size_t>(Drop::bad_version)]++;
  PacketResult r;
  r.version = rd16(data.data());
  return r;
}

PacketResult Decoder::decode_v9(std::span<const uint8_t> data, const Exporter& from,
                                std::vector<outpost_flow>& out) {
  PacketResult res;
  res.version = 9;
  constexpr std::size_t kHeader = 20;
  if (data.size() < kHeader) {
    totals_.dropped[static_cast<std::size_t>(Drop::short_packet)]++;
    return res;
  }
  const uint8_t* h = data.data();
  Context ctx;
  ctx.key = DomainKey{from, 9, rd32(h + 16)};
  ctx.sys_uptime_ms = rd32(h + 4);
  ctx.export_ns = int64_t{rd32(h + 8)} * kNs;
  res.accepted = true;  // the count field is not trusted: exporters disagree on what it counts
  res.records = walk_sets(data.subspan(kHeader), ctx, out);
  return res;
}

PacketResult Decoder::decode_ipfix(std::span<const uint8_t> data, const Exporter& from,
                                   std::vector<outpost_flow>& out) {
  PacketResult res;
  res.version = 10;
  constexpr std::size_t kHeader = 16;
  if (data.size() < kHeader) {
    totals_.dropped[static_cast<std::size_t>(Drop::short_packet)]++;
    return res;
  }
  const uint8_t* h = data.data();
  const std::size_t length = rd16(h + 2);
  if (length < kHeader || length > data.size()) {
    totals_.dropped[static_cast<std::size_t>(Drop::bad_length)]++;
    return res;
  }
  Context ctx;
  ctx.key = DomainKey{from, 10, rd32(h + 12)};
  ctx.export_ns = int64_t{rd32(h + 4)} * kNs;
  res.accepted = true;
  res.records = walk_sets(data.subspan(kHeader, length - kHeader), ctx, out);
  return res;
}

uint64_t Decoder::walk_sets(std::span<const uint8_t> body, const Context& ctx,
                            std::vector<outpost_flow>& out) {
  const bool v9 = ctx.key.version == 9;
  uint64_t records = 0;
  std::size_t pos = 0;
  while (body.size() - pos >= 4) {
    const uint16_t id = rd16(body.data() + pos);
    const std::size_t len = rd16(body.data() + pos + 2);
    if (len < 4 || len > body.size() - pos) {
      if (v9 && all_zero(body.subspan(pos))) break;  // generous padding after the last flowset
      totals_.dropped[static_cast<std::size_t>(Drop::bad_set)]++;
      break;
    }
    const auto set = body.subspan(pos + 4, len - 4);
    pos += len;
    if (id == (v9 ? 0 : 2)) {
      records += parse_templates(set, ctx, false, out);
    } else if (id == (v9 ? 1 : 3)) {
      records += parse_templates(set, ctx, true, out);
    } else if (id < 256) {
      totals_.dropped[static_cast<std::size_t>(Drop::reserved_set)]++;
    } else if (auto it = templates_.find(TemplateKey{ctx.key, id}); it != templates_.end()) {
      lru_.splice(lru_.end(), lru_, it->second.lru);
      records += decode_data(set, ctx, it->second.tpl, out);
    } else if (!set.empty()) {
      hold(ctx, id, set, now_ns_);
    }
  }
  return records;
}

uint64_t Decoder::parse_templates(std::span<const uint8_t> set, const Context& ctx, bool options,
                                  std::vector<outpost_flow>& out) {
  const uint16_t version = ctx.key.version;
  const bool ipfix = version == 10;
  uint64_t records = 0;
  std::size_t pos = 0;
  auto bad = [this] { totals_.dropped[static_cast<std::size_t>(Drop::bad_template)]++; };
  // Reads one field specifier; false when it does not fit.
  auto field = [&](Decoder::FieldSpec& f) {
    if (set.size() - pos < 4) return false;
    const uint16_t type = rd16(set.data() + pos);
    f.length = rd16(set.data() + pos + 2);
    pos += 4;
    f.id = ipfix ? static_cast<uint16_t>(type & 0x7FFF) : type;
    f.pen = 0;
    if (ipfix && (type & 0x8000)) {
      if (set.size() - pos < 4) return false;
      f.pen = rd32(set.data() + pos);
      pos += 4;
    }
    return true;
  };
  const std::size_t header = options ? 6 : 4;
  while (set.size() - pos >= 4) {
    const auto rest = set.subspan(pos);
    if (all_zero(rest)) break;  // padding
    const uint16_t tid = rd16(set.data() + pos);
    Template tpl;
    tpl.options = options;
    std::size_t nfields = 0;
    if (ipfix) {
      nfields = rd16(set.data() + pos + 2);
      if (nfields == 0) {  // withdrawal (RFC 7011 8.1): 4 bytes, also in options sets
        pos += 4;
        if (tid == (options ? 3 : 2))
          withdraw(ctx.key, 0, true, options);
        else if (tid >= 256)
          withdraw(ctx.key, tid, false, options);
        else
          bad();
        continue;
      }
      if (options) {
        if (rest.size() < header) break;  // padding
        tpl.scope_count = rd16(set.data() + pos + 4);
        if (tpl.scope_count == 0 || tpl.scope_count > nfields) {
          bad();
          return records;
        }
      }
      pos += header;
    } else if (options) {
      if (rest.size() < header) break;
      const std::size_t scope_len = rd16(set.data() + pos + 2);
      const std::size_t option_len = rd16(set.data() + pos + 4);
      if (scope_len % 4 != 0 || option_len % 4 != 0 || scope_len + option_len == 0 ||
          scope_len + option_len > rest.size() - header) {
        bad();
        return records;
      }
      nfields = (scope_len + option_len) / 4;
      tpl.scope_count = static_cast<uint16_t>(scope_len / 4);
      pos += header;
    } else {
      nfields = rd16(set.data() + pos + 2);
      pos += header;
      if (nfields == 0) {
        bad();
        return records;
      }  // v9 has no withdrawal
    }
    // Each field takes 4 bytes at least: an absurd count fails here, before any allocation.
    if (nfields > (set.size() - pos) / 4) {
      bad();
      return records;
    }
    tpl.fields.resize(nfields);
    for (auto& f : tpl.fields)
      if (!field(f)) {
        bad();
        return records;
      }
    if (tid < 256 || !finish_template(version, tpl)) {
      bad();  // its extent is known: the next record may still be good
      continue;
    }
    const TemplateKey key{ctx.key, tid};
    learn(key, std::move(tpl));
    records += release_pending(key, out);
  }
  return records;
}

void Decoder::learn(const TemplateKey& key, Template tpl) {
  totals_.templates_received++;
  if (auto it = templates_.find(key); it != templates_.end()) {
    if (!(it->second.tpl == tpl)) totals_.state_changes++;
    it->second.tpl = std::move(tpl);
    lru_.splice(lru_.end(), lru_, it->second.lru);
    return;
  }
  while (!templates_.empty() &&
         templates_.size() >= std::max<std::size_t>(1, limits_.max_templates)) {
    templates_.erase(lru_.front());
    lru_.pop_front();
    totals_.templates_evicted++;
  }
  totals_.state_changes++;
  lru_.push_back(key);
  templates_.emplace(key, Entry{std::move(tpl), std::prev(lru_.end())});
}

void Decoder::withdraw(const DomainKey& domain, uint16_t id, bool all, bool options) {
  for (auto it = lru_.begin(); it != lru_.end();) {
    auto t = templates_.find(*it);
    const bool match =
        it->domain == domain && (all ? t->second.tpl.options == options : it->id == id);
    if (match) {
      templates_.erase(t);
      it = lru_.erase(it);
      totals_.templates_withdrawn++;
      totals_.state_changes++;
    } else {
      ++it;
    }
  }
}

Decoder::DomainState& Decoder::domain_state(const DomainKey& key) {
  auto it = domains_.find(key);
  if (it != domains_.end()) return it->second;
  // Bounded like the templates: spoofed sources cannot grow this without limit.
  if (domains_.size() >= std::max<std::size_t>(1, limits_.max_templates))
    domains_.erase(domains_.begin());
  return domains_[key];
}

const Decoder::DomainState* Decoder::find_domain(const DomainKey& key) const {
  auto it = domains_.find(key);
  return it == domains_.end() ? nullptr : &it->second;
}

namespace {

// Reads one record at `pos` into r, advancing pos; false when the set ends inside it.
bool read_record(std::span<const uint8_t> set, std::size_t& pos, const Decoder::Template& tpl,
                 Record& r) {
  if (!tpl.variable) {  // every offset known: read only what the plan reads
    const uint8_t* rec = set.data() + pos;
    for (const auto& op : tpl.ops) apply(r, op.code, rec + op.offset, op.length);
    pos += tpl.min_length;
    return true;
  }
  std::array<int8_t, 256> rank;
  rank.fill(-1);
  for (const auto& f : tpl.fields) {
    std::size_t len = f.length;
    if (f.length == kVariable) {  // RFC 7011 7: 1 byte, or 255 and 2 bytes
      if (pos >= set.size()) return false;
      len = set[pos++];
      if (len == 255) {
        if (set.size() - pos < 2) return false;
        len = rd16(set.data() + pos);
        pos += 2;
      }
    }
    if (set.size() - pos < len) return false;
    // Enterprise fields we do not know are skipped by their length.
    if (f.pen == 0 || f.pen == kReversePen) {
      const Ranked c = classify(f.id, len, f.pen == kReversePen);
      if (c.code != c_skip && (c.rank == 0 || c.rank > rank[c.code])) {
        rank[c.code] = static_cast<int8_t>(c.rank);
        apply(r, c.code, set.data() + pos, len);
      }
    }
    pos += len;
  }
  return true;
}

// The rate a data record was sampled at: its sampler's, its own, the exporter's, the
// configured default, else unsampled.
uint32_t sampling_rate(const Record& r, const Decoder::DomainState* ds, uint32_t configured) {
  uint32_t rate = 0;
  if (r.sampler && ds) {
    auto it = ds->sampler_rates.find(*r.sampler);
    if (it != ds->sampler_rates.end()) rate = it->second;
  }
  if (rate == 0) rate = r.rate();
  if (rate == 0 && ds) rate = ds->default_rate;
  if (rate == 0) rate = configured;
  return rate == 0 ? 1 : rate;
}

// Start and end: absolute fields first, then sysUptime-relative, then deltas to the export time.
std::pair<int64_t, int64_t> flow_times(const Record& r, int64_t export_ns, uint32_t sys_uptime_ms,
                                       bool ipfix, const Decoder::DomainState* ds) {
  std::optional<int64_t> init = r.sys_init_ms;
  if (!init && ds && ds->system_init_ms >= 0) init = ds->system_init_ms;
  auto uptime = [&](uint32_t t) -> std::optional<int64_t> {
    if (!ipfix) return uptime_to_ns(export_ns, sys_uptime_ms, t);
    if (init) return init_uptime_to_ns(*init, t, export_ns);
    return std::nullopt;
  };
  std::optional<int64_t> start = r.abs_start, end = r.abs_end;
  if (!start && r.up_first) start = uptime(*r.up_first);
  if (!end && r.up_last) end = uptime(*r.up_last);
  if (!start && r.delta_start_us)
    start = sat_add(export_ns, -sat_mul(clamp_i64(*r.delta_start_us), 1000));
  if (!end && r.delta_end_us) end = sat_add(export_ns, -sat_mul(clamp_i64(*r.delta_end_us), 1000));
  if (!end && !start && r.up_first && r.up_last) {  // IPFIX uptimes without an init time
    end = export_ns;
    start =
        sat_add(export_ns, -int64_t{static_cast<int32_t>(*r.up_last - *r.up_first)} * 1'000'000);
  }
  if (!end) end = start ? *start : export_ns;
  if (!start) start = *end;
  return {*start, *end};
}

// The flow record (and the reverse half of an RFC 5103 biflow) for a data record; how many.
uint64_t emit_flows(const Record& r, uint32_t rate, std::pair<int64_t, int64_t> times,
                    const Exporter& exporter, std::vector<outpost_flow>& out) {
  outpost_flow f{};
  f.family = r.addr_family != 0 ? r.addr_family
                                : (r.ip_version == 4 || r.ip_version == 6 ? r.ip_version : 0);
  std::memcpy(f.src_addr, r.src, 16);
  std::memcpy(f.dst_addr, r.dst, 16);
  if (f.family == 4) {  // a template with both families: keep only what the ABI reads
    std::memset(f.src_addr + 4, 0, 12);
    std::memset(f.dst_addr + 4, 0, 12);
  }
  set_exporter(f, exporter);
  f.start_ns = times.first;
  f.end_ns = times.second;
  f.protocol = r.proto;
  f.tcp_flags = r.flags;
  f.tos = r.tos;
  f.src_port = r.sport;
  f.dst_port = r.dport;
  // ICMP type/code go where readers look (dst_port), also when a template carries a zero
  // L4_DST_PORT beside ICMP_TYPE (nfreplay does).
  if (r.has_icmp && (!r.has_dport || r.dport == 0) &&
      (r.proto == 1 || r.proto == 58 || r.proto == 0))
    f.dst_port = r.icmp;
  f.input_if = r.in_if;
  f.output_if = r.out_if;
  f.sampling_rate = rate;
  f.bytes = sat_mul_u(r.bytes, rate);
  f.packets = sat_mul_u(r.packets, rate);
  uint64_t n = 0;
  // A biflow with traffic one way only has an empty forward half: no record for it.
  if (!r.reverse || r.bytes != 0 || r.packets != 0) {
    out.push_back(f);
    ++n;
  }
  if (r.reverse && (r.rev_bytes != 0 || r.rev_packets != 0)) {  // the other way
    outpost_flow b = f;
    std::memcpy(b.src_addr, f.dst_addr, 16);
    std::memcpy(b.dst_addr, f.src_addr, 16);
    b.src_port = f.dst_port;
    b.dst_port = f.src_port;
    b.input_if = f.output_if;
    b.output_if = f.input_if;
    b.tcp_flags = r.rev_flags;
    b.tos = r.rev_tos;
    b.bytes = sat_mul_u(r.rev_bytes, rate);
    b.packets = sat_mul_u(r.rev_packets, rate);
    out.push_back(b);
    ++n;
  }
  return n;
}

}  // namespace

uint64_t Decoder::decode_data(std::span<const uint8_t> set, const Context& ctx, const Template& tpl,
                              std::vector<outpost_flow>& out) {
  const bool ipfix = ctx.key.version == 10;
  uint64_t records = 0;
  std::size_t pos = 0;
  const DomainState* ds = tpl.options ? nullptr : find_domain(ctx.key);
  while (set.size() - pos >= tpl.min_length) {
    Record r;
    if (!read_record(set, pos, tpl, r)) {
      totals_.dropped[static_cast<std::size_t>(Drop::truncated_record)]++;
      break;
    }
    if (tpl.options) {  // the exporter's sampling and init time (kept across restarts)
      totals_.option_records++;
      const uint32_t rate = r.rate();
      if (rate == 0 && !r.sys_init_ms) continue;
      DomainState& d = domain_state(ctx.key);
      const DomainState before = d;
      if (r.sys_init_ms) d.system_init_ms = *r.sys_init_ms;
      if (rate != 0) {
        if (!r.sampler)
          d.default_rate = rate;
        else if (d.sampler_rates.size() < kMaxSamplers || d.sampler_rates.count(*r.sampler))
          d.sampler_rates[*r.sampler] = rate;
      }
      if (!(before == d)) totals_.state_changes++;
      continue;
    }
    const uint32_t rate = sampling_rate(r, ds, limits_.default_sampling_rate);
    records += emit_flows(r, rate, flow_times(r, ctx.export_ns, ctx.sys_uptime_ms, ipfix, ds),
                          ctx.key.exporter, out);
  }
  return records;
}

void Decoder::hold(const Context& ctx, uint16_t id, std::span<const uint8_t> body, int64_t now_ns) {
  if (limits_.max_pending == 0 || body.size() > limits_.max_pending_bytes) {
    totals_.dropped[static_cast<std::size_t>(Drop::pending_full)]++;
    return;
  }
  while (!pending_.empty() && (pending_.size() >= limits_.max_pending ||
                               pending_bytes_ + body.size() > limits_.max_pending_bytes)) {
    pending_bytes_ -= pending_.front().body.size();
    pending_.pop_front();
    totals_.dropped[static_cast<std::size_t>(Drop::pending_full)]++;
  }
  pending_.push_back(Pending{ctx, id, std::vector<uint8_t>(body.begin(), body.end()), now_ns});
  pending_bytes_ += body.size();
  totals_.held_sets++;
}

uint64_t Decoder::release_pending(const TemplateKey& key, std::vector<outpost_flow>& out) {
  if (pending_.empty()) return 0;
  uint64_t records = 0;
  std::deque<Pending> keep;
  for (auto& p : pending_) {
    if (p.template_id == key.id && p.ctx.key == key.domain) {
      // Looked up each time: decoding options data never touches the template map.
      auto it = templates_.find(key);
      if (it != templates_.end()) records += decode_data(p.body, p.ctx, it->second.tpl, out);
      pending_bytes_ -= p.body.size();
      totals_.released_sets++;
    } else {
      keep.push_back(std::move(p));
    }
  }
  pending_.swap(keep);
  return records;
}

void Decoder::expire(int64_t now_ns) {
  while (!pending_.empty() && now_ns - pending_.front().arrived_ns > limits_.pending_max_age_ns) {
    pending_bytes_ -= pending_.front().body.size();
    pending_.pop_front();
    totals_.dropped[static_cast<std::size_t>(Drop::no_template)]++;
  }
}

void Decoder::drop_pending() {
  totals_.dropped[static_cast<std::size_t>(Drop::no_template)] += pending_.size();
  pending_.clear();
  pending_bytes_ = 0;
}

}  // namespace outpost::netflow
