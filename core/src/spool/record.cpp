#include "spool/record.hpp"

#include <array>
#include <cstring>

namespace outpost::core::spool {
namespace {

constexpr char kSegmentMagic[8] = {'O', 'P', 'S', 'P', 'O', 'O', 'L', '1'};
constexpr uint32_t kPayloadVersion = 1;
constexpr std::size_t kMetricBytes = 40, kEventBytes = 48, kKvBytes = 16;
static_assert(sizeof(outpost_flow) == 104, "outpost_flow is part of the spool's format");

// Slicing-by-8 tables for CRC-32C (reflected polynomial 0x82F63B78).
struct Tables {
  std::array<std::array<uint32_t, 256>, 8> t{};
  Tables() {
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
      t[0][i] = c;
    }
    for (uint32_t i = 0; i < 256; ++i)
      for (std::size_t k = 1; k < 8; ++k) t[k][i] = (t[k - 1][i] >> 8) ^ t[0][t[k - 1][i] & 0xFF];
  }
};
const Tables& tables() {
  static const Tables t;
  return t;
}

void put_ref(std::string& out, StrRef r, uint32_t base) {
  put<uint32_t>(out, r.off + base);
  put<uint32_t>(out, r.len);
}

}  // namespace

uint32_t crc32c(const void* data, std::size_t len, uint32_t crc) {
  const auto& t = tables().t;
  const auto* p = static_cast<const unsigned char*>(data);
  crc = ~crc;
  while (len >= 8) {
    uint32_t lo;
    uint32_t hi;
    std::memcpy(&lo, p, 4);
    std::memcpy(&hi, p + 4, 4);
    lo ^= crc;
    crc = t[7][lo & 0xFF] ^ t[6][(lo >> 8) & 0xFF] ^ t[5][(lo >> 16) & 0xFF] ^ t[4][lo >> 24] ^
          t[3][hi & 0xFF] ^ t[2][(hi >> 8) & 0xFF] ^ t[1][(hi >> 16) & 0xFF] ^ t[0][hi >> 24];
    p += 8;
    len -= 8;
  }
  while (len-- > 0) crc = (crc >> 8) ^ t[0][(crc ^ *p++) & 0xFF];
  return ~crc;
}

std::string segment_header(uint64_t first_seq) {
  std::string h(kSegmentMagic, sizeof kSegmentMagic);
  put<uint32_t>(h, 1);
  put<uint32_t>(h, kSegmentHeaderSize);
  put<uint64_t>(h, first_seq);
  put<uint32_t>(h, crc32c(h.data(), h.size()));
  put<uint32_t>(h, 0);
  return h;
}

bool parse_segment_header(std::string_view b, uint64_t& first_seq) {
  if (b.size() < kSegmentHeaderSize || std::memcmp(b.data(), kSegmentMagic, 8) != 0) return false;
  if (get<uint32_t>(b.data() + 8) != 1 || get<uint32_t>(b.data() + 12) != kSegmentHeaderSize)
    return false;
  if (get<uint32_t>(b.data() + 24) != crc32c(b.data(), 24)) return false;
  first_seq = get<uint64_t>(b.data() + 16);
  return true;
}

void append_record(std::string& out, uint64_t seq, int64_t time_ns, uint32_t items,
                   std::string_view payload) {
  const std::size_t at = out.size();
  put<uint32_t>(out, 0);
  put<uint32_t>(out, static_cast<uint32_t>(payload.size()));
  put<uint64_t>(out, seq);
  put<int64_t>(out, time_ns);
  put<uint32_t>(out, items);
  put<uint32_t>(out, 0);
  out.append(payload);
  const uint32_t crc = crc32c(out.data() + at + 4, out.size() - at - 4);
  std::memcpy(out.data() + at, &crc, 4);
}

RecordHeader parse_record_header(std::string_view b) {
  RecordHeader h;
  h.crc = get<uint32_t>(b.data());
  h.size = get<uint32_t>(b.data() + 4);
  h.seq = get<uint64_t>(b.data() + 8);
  h.time_ns = get<int64_t>(b.data() + 16);
  h.items = get<uint32_t>(b.data() + 24);
  return h;
}

bool record_crc_ok(std::string_view record) {
  if (record.size() < kRecordHeaderSize) return false;
  return get<uint32_t>(record.data()) == crc32c(record.data() + 4, record.size() - 4);
}

void encode_payload(const std::vector<const Batch*>& batches, std::string& out) {
  uint32_t nm = 0, ne = 0, nf = 0, nk = 0, na = 0;
  for (const Batch* b : batches) {
    nm += static_cast<uint32_t>(b->metrics().size());
    ne += static_cast<uint32_t>(b->events().size());
    nf += static_cast<uint32_t>(b->flows().size());
    nk += static_cast<uint32_t>(b->kvs().size());
    na += static_cast<uint32_t>(b->arena().size());
  }
  out.clear();
  out.reserve(24 + nm * kMetricBytes + ne * kEventBytes + nk * kKvBytes +
              nf * sizeof(outpost_flow) + na);
  put<uint32_t>(out, kPayloadVersion);
  put<uint32_t>(out, nm);
  put<uint32_t>(out, ne);
  put<uint32_t>(out, nf);
  put<uint32_t>(out, nk);
  put<uint32_t>(out, na);
  // Each batch's offsets move by the arena bytes and label entries of the batches before it.
  uint32_t arena_base = 0, kv_base = 0;
  for (const Batch* b : batches) {
    for (const MetricRec& m : b->metrics()) {
      put_ref(out, m.name, arena_base);
      put<uint32_t>(out, m.label_begin + kv_base);
      put<uint32_t>(out, m.label_count);
      put<double>(out, m.value);
      put<int64_t>(out, m.time_ns);
      put<uint32_t>(out, m.type);
      put<uint32_t>(out, 0);
    }
    arena_base += static_cast<uint32_t>(b->arena().size());
    kv_base += static_cast<uint32_t>(b->kvs().size());
  }
  arena_base = kv_base = 0;
  for (const Batch* b : batches) {
    for (const EventRec& e : b->events()) {
      put<int64_t>(out, e.time_ns);
      put<uint32_t>(out, e.severity);
      put_ref(out, e.source, arena_base);
      put_ref(out, e.kind, arena_base);
      put_ref(out, e.message, arena_base);
      put<uint32_t>(out, e.attr_begin + kv_base);
      put<uint32_t>(out, e.attr_count);
      put<uint32_t>(out, 0);
    }
    arena_base += static_cast<uint32_t>(b->arena().size());
    kv_base += static_cast<uint32_t>(b->kvs().size());
  }
  arena_base = 0;
  for (const Batch* b : batches) {
    for (const KvRec& kv : b->kvs()) {
      put_ref(out, kv.key, arena_base);
      put_ref(out, kv.value, arena_base);
    }
    arena_base += static_cast<uint32_t>(b->arena().size());
  }
  for (const Batch* b : batches)
    out.append(reinterpret_cast<const char*>(b->flows().data()),
               b->flows().size() * sizeof(outpost_flow));
  for (const Batch* b : batches) out.append(b->arena());
}

bool decode_payload(std::string_view p, Batch& out, std::string& why) {
  if (p.size() < 24) {
    why = "payload shorter than its header";
    return false;
  }
  if (get<uint32_t>(p.data()) != kPayloadVersion) {
    why = "unknown payload version " + std::to_string(get<uint32_t>(p.data()));
    return false;
  }
  const uint64_t nm = get<uint32_t>(p.data() + 4), ne = get<uint32_t>(p.data() + 8),
                 nf = get<uint32_t>(p.data() + 12), nk = get<uint32_t>(p.data() + 16),
                 na = get<uint32_t>(p.data() + 20);
  const uint64_t need =
      24 + nm * kMetricBytes + ne * kEventBytes + nk * kKvBytes + nf * sizeof(outpost_flow) + na;
  if (need != p.size()) {
    why = "payload size " + std::to_string(p.size()) + " does not match its counts (" +
          std::to_string(need) + ")";
    return false;
  }
  const char* c = p.data() + 24;
  auto ref = [&](const char* at, StrRef& r) {
    r.off = get<uint32_t>(at);
    r.len = get<uint32_t>(at + 4);
    return uint64_t{r.off} + r.len <= na;
  };
  auto range_ok = [&](uint32_t begin, uint32_t count) { return uint64_t{begin} + count <= nk; };
  std::vector<MetricRec> metrics(nm);
  for (auto& m : metrics) {
    if (!ref(c, m.name) ||
        !range_ok(m.label_begin = get<uint32_t>(c + 8), m.label_count = get<uint32_t>(c + 12))) {
      why = "a metric refers outside the payload";
      return false;
    }
    m.value = get<double>(c + 16);
    m.time_ns = get<int64_t>(c + 24);
    m.type = get<uint32_t>(c + 32);
    c += kMetricBytes;
  }
  std::vector<EventRec> events(ne);
  for (auto& e : events) {
    e.time_ns = get<int64_t>(c);
    e.severity = get<uint32_t>(c + 8);
    if (!ref(c + 12, e.source) || !ref(c + 20, e.kind) || !ref(c + 28, e.message) ||
        !range_ok(e.attr_begin = get<uint32_t>(c + 36), e.attr_count = get<uint32_t>(c + 40))) {
      why = "an event refers outside the payload";
      return false;
    }
    c += kEventBytes;
  }
  std::vector<KvRec> kvs(nk);
  for (auto& kv : kvs) {
    if (!ref(c, kv.key) || !ref(c + 8, kv.value)) {
      why = "a label refers outside the payload";
      return false;
    }
    c += kKvBytes;
  }
  std::vector<outpost_flow> flows(nf);
  if (nf > 0) std::memcpy(flows.data(), c, nf * sizeof(outpost_flow));
  c += nf * sizeof(outpost_flow);
  std::string arena(c, na);
  out = Batch::from_parts(std::move(arena), std::move(kvs), std::move(metrics), std::move(events),
                          std::move(flows));
  return true;
}

}  // namespace outpost::core::spool
