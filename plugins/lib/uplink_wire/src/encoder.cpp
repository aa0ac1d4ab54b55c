// The sender's side: batches to bodies, with the epoch's dictionary and each series' last value
// kept as the receiver keeps them, and an undo log for what the last body changed.
#include <zstd.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <outpost_lib/uplink_wire.hpp>
#include <random>
#include <stdexcept>
#include <unordered_map>

#include "wire_io.hpp"

namespace outpost::lib::wire {

using namespace detail;

namespace {

// A batch element as this build knows it: a producer's shorter struct leaves the rest zero.
template <typename T>
T read_element(const T* base, uint32_t elem_size, std::size_t i) {
  T out{};
  std::memcpy(&out, reinterpret_cast<const char*>(base) + i * elem_size,
              std::min<std::size_t>(elem_size, sizeof(T)));
  return out;
}

std::string_view sv(outpost_str s) { return s.len == 0 ? std::string_view{} : view(s); }

uint64_t random_epoch() {
  std::random_device rd;
  uint64_t e = 0;
  while (e == 0) e = (static_cast<uint64_t>(rd()) << 32) ^ rd();
  return e;
}

// What identifies a series: name, type and labels in their order, each length-prefixed.
void series_key(const outpost_metric& m, std::string& key) {
  key.clear();
  put_bytes(key, sv(m.name));
  put_varint(key, m.type);
  for (std::size_t i = 0; i < m.label_count; ++i) {
    put_bytes(key, sv(m.labels[i].key));
    put_bytes(key, sv(m.labels[i].value));
  }
}

// The per-body string table: each distinct string once, referred to by its index.
class Strings {
 public:
  uint64_t index(std::string_view s) {
    auto [it, fresh] = map_.try_emplace(s, static_cast<uint64_t>(list_.size()));
    if (fresh) list_.push_back(s);
    return it->second;
  }
  void write(std::string& out) const {
    put_varint(out, list_.size());
    for (auto s : list_) put_bytes(out, s);
  }

 private:
  std::unordered_map<std::string_view, uint64_t> map_;
  std::vector<std::string_view> list_;
};

bool short_address(const uint8_t (&a)[16]) {
  return std::all_of(a + 4, a + 16, [](uint8_t b) { return b == 0; });
}

// How a value is coded, given the series' previous value: the tag, and in `coded` what goes
// into the ints column (a zigzag varint) or the doubles column (kXor).
uint8_t value_tag(const outpost_metric& m, bool has_prev, uint64_t prev_bits, uint64_t& coded) {
  const uint64_t now_bits = bits_of(m.value);
  if (has_prev && now_bits == prev_bits) return kSame;
  Wide now = 0, was = 0;
  if (integral(m.value, now)) {
    const bool delta_ok = has_prev && integral(double_of(prev_bits), was) &&
                          now - was >= -(Wide{1} << 63) && now - was < (Wide{1} << 63);
    const uint64_t delta =
        delta_ok ? zigzag(static_cast<uint64_t>(static_cast<int64_t>(now - was))) : 0;
    if (now < (Wide{1} << 63)) {
      const uint64_t absolute = zigzag(static_cast<uint64_t>(static_cast<int64_t>(now)));
      // A counter is coded as its increase; a gauge as itself unless its change is shorter.
      if (!delta_ok ||
          (m.type != OUTPOST_METRIC_COUNTER && varint_size(absolute) <= varint_size(delta))) {
        coded = absolute;
        return kInt;
      }
    }
    if (delta_ok) {
      coded = delta;
      return kIntDelta;
    }
  } else if (std::isfinite(m.value) && m.value != 0 && std::fabs(m.value) < 1e6) {
    // A decimal with few digits (a round-trip time, a percentage): n / 10^k, checked exact
    // (-0.0 is not one: n would lose its sign).
    for (int k = 1; k <= 9; ++k) {
      const double n = std::nearbyint(m.value * kPow10[k]);
      if (std::fabs(n) >= 9007199254740992.0) break;
      if (bits_of(n / kPow10[k]) == now_bits) {
        coded = zigzag(static_cast<uint64_t>(static_cast<int64_t>(n)));
        return static_cast<uint8_t>(kDecimal + k);
      }
    }
  }
  coded = now_bits ^ (has_prev ? prev_bits : 0);
  return kXor;
}

}  // namespace

struct Encoder::State {
  struct Last {
    uint64_t bits = 0;
    bool has = false;
  };
  std::string engine;
  int level = 3;
  uint64_t epoch = 0;
  std::unordered_map<std::string, uint32_t> ids;
  std::vector<std::string> keys;                // by id, to forget pending series
  std::vector<Last> last;                       // by id
  std::size_t known = 0;                        // ids below are committed
  uint64_t batches = 0;                         // bodies committed in this epoch
  std::vector<std::pair<uint32_t, Last>> undo;  // last values before the pending body
  bool pending = false;
  std::unique_ptr<ZSTD_CCtx, decltype(&ZSTD_freeCCtx)> cctx{ZSTD_createCCtx(), &ZSTD_freeCCtx};

  void forget_pending() {
    for (auto it = undo.rbegin(); it != undo.rend(); ++it) last[it->first] = it->second;
    undo.clear();
    for (std::size_t id = known; id < keys.size(); ++id) ids.erase(keys[id]);
    keys.resize(known);
    last.resize(known);
    pending = false;
  }
  void set_last(uint32_t id, uint64_t bits) {
    if (id < known) undo.emplace_back(id, last[id]);
    last[id] = Last{bits, true};
  }
};

Encoder::Encoder(std::string engine_name, int zstd_level) : state_(std::make_unique<State>()) {
  if (!state_->cctx) throw std::bad_alloc();
  state_->engine = std::move(engine_name);
  if (state_->engine.size() > kMaxIdLength) state_->engine.resize(kMaxIdLength);
  state_->level = zstd_level;
  state_->epoch = random_epoch();
  stats_.epoch = state_->epoch;
}

Encoder::~Encoder() = default;

std::string Encoder::encode(const outpost_batch& batch, const outpost::SpoolInfo& info) {
  State& s = *state_;
  if (s.pending) s.forget_pending();
  if (info.spool_id.size() > kMaxIdLength || info.ranges.size() > kMaxRanges ||
      std::any_of(info.ranges.begin(), info.ranges.end(),
                  [](const auto& r) { return r.stream.size() > kMaxIdLength; })) {
    throw std::length_error("uplink batch: spool id, stream names or range count over the limits");
  }
  s.pending = true;

  Header h;
  h.epoch = s.epoch;
  h.base_series = s.known;
  h.base_batches = s.batches;
  h.spool_id = std::string(info.spool_id);
  h.engine = s.engine;
  for (const auto& r : info.ranges)
    h.ranges.push_back(Range{std::string(r.stream), r.first_seq, r.last_seq});
  h.metric_count = batch.metric_count;
  h.event_count = batch.event_count;
  h.flow_count = batch.flow_count;

  std::array<std::string, kColumnCount> col;
  Strings strings;
  std::string key;
  uint64_t prev_id = ~uint64_t{0};  // so that a first id 0 codes as 0
  uint64_t prev_time = 0;
  for (std::size_t i = 0; i < batch.metric_count; ++i) {
    const outpost_metric m = read_element(batch.metrics, batch.metric_size, i);
    series_key(m, key);
    auto [it, fresh] = s.ids.try_emplace(key, static_cast<uint32_t>(s.keys.size()));
    const uint32_t id = it->second;
    if (fresh) {
      s.keys.push_back(key);
      s.last.emplace_back();
      ++h.new_series;
      std::string& d = col[kSeriesDefs];
      put_varint(d, strings.index(sv(m.name)));
      put_varint(d, m.type);
      put_varint(d, m.label_count);
      for (std::size_t k = 0; k < m.label_count; ++k) {
        put_varint(d, strings.index(sv(m.labels[k].key)));
        put_varint(d, strings.index(sv(m.labels[k].value)));
      }
    }
    put_varint(col[kMetricIds], zigzag(id - (prev_id + 1)));
    prev_id = id;
    const auto t = static_cast<uint64_t>(m.time_ns);
    put_varint(col[kMetricTimes], zigzag(t - prev_time));
    prev_time = t;

    const State::Last before = s.last[id];
    uint64_t coded = 0;
    const uint8_t tag = value_tag(m, before.has, before.bits, coded);
    col[kMetricTags] += static_cast<char>(tag);
    if (tag == kXor) {
      put_u64le(col[kMetricDoubles], coded);
    } else if (tag != kSame) {
      put_varint(col[kMetricInts], coded);
    }
    s.set_last(id, bits_of(m.value));
  }

  prev_time = 0;
  for (std::size_t i = 0; i < batch.event_count; ++i) {
    const outpost_event e = read_element(batch.events, batch.event_size, i);
    const auto t = static_cast<uint64_t>(e.time_ns);
    put_varint(col[kEventTimes], zigzag(t - prev_time));
    prev_time = t;
    std::string& f = col[kEventFields];
    put_varint(f, e.severity);
    put_varint(f, strings.index(sv(e.source)));
    put_varint(f, strings.index(sv(e.kind)));
    put_varint(f, strings.index(sv(e.message)));
    put_varint(f, e.attribute_count);
    for (std::size_t k = 0; k < e.attribute_count; ++k) {
      put_varint(f, strings.index(sv(e.attributes[k].key)));
      put_varint(f, strings.index(sv(e.attributes[k].value)));
    }
  }

  prev_time = 0;
  for (std::size_t i = 0; i < batch.flow_count; ++i) {
    const outpost_flow fl = read_element(batch.flows, batch.flow_size, i);
    const auto start = static_cast<uint64_t>(fl.start_ns);
    put_varint(col[kFlowTimes], zigzag(start - prev_time));
    put_varint(col[kFlowTimes], zigzag(static_cast<uint64_t>(fl.end_ns) - start));
    prev_time = start;
    uint8_t layout = 0;
    if (short_address(fl.src_addr)) layout |= kShortSrc;
    if (short_address(fl.dst_addr)) layout |= kShortDst;
    if (short_address(fl.exporter_addr)) layout |= kShortExporter;
    const char small[6] = {static_cast<char>(layout),
                           static_cast<char>(fl.family),
                           static_cast<char>(fl.exporter_family),
                           static_cast<char>(fl.protocol),
                           static_cast<char>(fl.tcp_flags),
                           static_cast<char>(fl.tos)};
    col[kFlowSmall].append(small, 6);
    std::string& a = col[kFlowAddrs];
    a.append(reinterpret_cast<const char*>(fl.src_addr), layout & kShortSrc ? 4 : 16);
    a.append(reinterpret_cast<const char*>(fl.dst_addr), layout & kShortDst ? 4 : 16);
    a.append(reinterpret_cast<const char*>(fl.exporter_addr), layout & kShortExporter ? 4 : 16);
    std::string& n = col[kFlowNums];
    for (uint64_t v : {uint64_t{fl.src_port}, uint64_t{fl.dst_port}, uint64_t{fl.input_if},
                       uint64_t{fl.output_if}, uint64_t{fl.sampling_rate}, fl.bytes, fl.packets}) {
      put_varint(n, v);
    }
  }

  std::string table;
  strings.write(table);
  col[kStrings] = std::move(table);
  std::size_t raw_size = 0;
  for (const auto& c : col) raw_size += varint_size(c.size()) + c.size();
  if (raw_size > kMaxRawBytes) {
    s.forget_pending();
    throw std::length_error("uplink batch of " + std::to_string(raw_size) +
                            " bytes before compression is over the format's limit");
  }
  std::string raw;
  raw.reserve(raw_size);
  for (const auto& c : col) put_bytes(raw, c);
  h.raw_size = raw.size();

  std::string body;
  write_header(h, body);
  const std::size_t at = body.size();
  body.resize(at + ZSTD_compressBound(raw.size()));
  ZSTD_CCtx_reset(s.cctx.get(), ZSTD_reset_session_and_parameters);
  ZSTD_CCtx_setParameter(s.cctx.get(), ZSTD_c_compressionLevel, s.level);
  ZSTD_CCtx_setParameter(s.cctx.get(), ZSTD_c_contentSizeFlag, 1);
  // A flipped bit in the frame must not decode to other values: zstd's checksum catches it.
  ZSTD_CCtx_setParameter(s.cctx.get(), ZSTD_c_checksumFlag, 1);
  const std::size_t n =
      ZSTD_compress2(s.cctx.get(), body.data() + at, body.size() - at, raw.data(), raw.size());
  if (ZSTD_isError(n)) {
    s.forget_pending();
    throw std::runtime_error(std::string("zstd: ") + ZSTD_getErrorName(n));
  }
  body.resize(at + n);

  stats_.series_pending = s.keys.size() - s.known;
  stats_.raw_bytes = raw.size();
  stats_.body_bytes = body.size();
  return body;
}

void Encoder::commit() {
  State& s = *state_;
  if (!s.pending) return;
  s.undo.clear();
  s.known = s.keys.size();
  ++s.batches;
  s.pending = false;
  stats_.series_known = s.known;
  stats_.series_pending = 0;
  stats_.batches_committed = s.batches;
}

void Encoder::rollback() {
  if (state_->pending) state_->forget_pending();
  stats_.series_pending = 0;
}

void Encoder::reset() {
  State& s = *state_;
  s.ids.clear();
  s.keys.clear();
  s.last.clear();
  s.undo.clear();
  s.known = 0;
  s.batches = 0;
  s.pending = false;
  s.epoch = random_epoch();
  stats_.epoch = s.epoch;
  stats_.series_known = 0;
  stats_.series_pending = 0;
  stats_.batches_committed = 0;
  ++stats_.resets;
}

}  // namespace outpost::lib::wire
