// The receiver's side: header checks (duplicate, epoch) before any decompression, then the
// columns decoded into a staging area, then applied at once. Every count and index read from
// the body is checked before it is used; memory is bounded by Limits.
#include <algorithm>
#include <array>
#include <cstdio>
#include <map>
#include <outpost_lib/uplink_wire.hpp>
#include <tuple>
#include <unordered_map>

#include "wire_io.hpp"

namespace outpost::lib::wire {

using namespace detail;

namespace {

using Pairs = std::vector<std::pair<std::string, std::string>>;

struct SeriesDef {
  std::string name;
  Pairs labels;
  uint32_t type = 0;
};

std::size_t size_of(const SeriesDef& d) {
  std::size_t n = sizeof(SeriesDef) + d.name.size() + sizeof(uint64_t) + 1;
  for (const auto& [k, v] : d.labels) n += sizeof(d.labels[0]) + k.size() + v.size();
  return n;
}

struct Epoch {
  uint64_t id = 0;
  std::vector<SeriesDef> defs;
  std::vector<uint64_t> last;     // bits of each series' last value
  std::vector<uint8_t> has_last;  // 0 until a value arrived
  uint64_t batches = 0;
  std::size_t bytes = 0;
  uint64_t used = 0;
};

struct Spool {
  std::map<std::string, uint64_t, std::less<>> high_water;
  std::vector<Epoch> epochs;
  uint64_t used = 0;
};

constexpr const char* kColumnNames[kColumnCount] = {
    "strings",     "series definitions", "metric ids",  "metric times", "metric tags",
    "metric ints", "metric doubles",     "event times", "event fields", "flow times",
    "flow small",  "flow addresses",     "flow numbers"};

std::string hex64(uint64_t v) {
  char b[17];
  std::snprintf(b, sizeof b, "%016llx", static_cast<unsigned long long>(v));
  return b;
}

// What a body would change, built completely before anything is applied.
struct Staging {
  std::vector<SeriesDef> defs;
  std::size_t def_bytes = 0;
  std::unordered_map<uint64_t, uint64_t> last;  // id -> bits, for every series given a value
};

}  // namespace

struct Decoder::State {
  Limits limits;
  std::unordered_map<std::string, Spool> spools;
  uint64_t tick = 0;
  std::size_t series = 0;
  std::size_t bytes = 0;
  std::size_t epochs = 0;
  uint64_t epochs_evicted = 0;
  uint64_t spools_evicted = 0;

  void drop_epoch(Spool& sp, std::size_t i) {
    series -= sp.epochs[i].defs.size();
    bytes -= sp.epochs[i].bytes;
    --epochs;
    ++epochs_evicted;
    sp.epochs.erase(sp.epochs.begin() + static_cast<std::ptrdiff_t>(i));
  }
  // The least recently used epoch anywhere but `keep_epoch` of `keep`; false when none is left.
  bool evict_oldest(const Spool& keep, uint64_t keep_epoch) {
    Spool* best_sp = nullptr;
    std::size_t best_i = 0;
    for (auto& [id, sp] : spools) {
      for (std::size_t i = 0; i < sp.epochs.size(); ++i) {
        if (&sp == &keep && sp.epochs[i].id == keep_epoch) continue;
        if (best_sp == nullptr || sp.epochs[i].used < best_sp->epochs[best_i].used) {
          best_sp = &sp;
          best_i = i;
        }
      }
    }
    if (best_sp == nullptr) return false;
    drop_epoch(*best_sp, best_i);
    return true;
  }
  void evict_spool_for(const std::string& keep) {
    auto victim = spools.end();
    for (auto it = spools.begin(); it != spools.end(); ++it) {
      if (it->first != keep && (victim == spools.end() || it->second.used < victim->second.used))
        victim = it;
    }
    if (victim == spools.end()) return;
    while (!victim->second.epochs.empty()) drop_epoch(victim->second, 0);
    spools.erase(victim);
    ++spools_evicted;
  }

  void check_ranges(const Header& h, const Spool* sp, Result& res) const;
  void decode_columns(const std::string& raw, const Header& h, const Epoch* ep, Staging& st,
                      Result& res) const;
  void apply(const Header& h, Staging& st, bool new_epoch);
};

// Sets res.status to duplicate when every range was accepted before; throws Malformed when only
// some were, or when a range straddles a high-water mark.
void Decoder::State::check_ranges(const Header& h, const Spool* sp, Result& res) const {
  if (h.ranges.empty()) return;
  std::size_t seen = 0, fresh_streams = 0;
  for (const auto& r : h.ranges) {
    const uint64_t* hw = nullptr;
    if (sp != nullptr) {
      const auto it = sp->high_water.find(r.stream);
      if (it != sp->high_water.end()) hw = &it->second;
    }
    if (hw == nullptr) {
      ++fresh_streams;
    } else if (*hw >= r.last_seq) {
      ++seen;
    } else if (*hw >= r.first_seq) {
      throw Malformed("ranges: stream '" + r.stream + "' records " + std::to_string(r.first_seq) +
                      ".." + std::to_string(r.last_seq) + " overlap those accepted up to " +
                      std::to_string(*hw) + " (a sender re-offers whole batches only)");
    }
  }
  if (seen == h.ranges.size()) {
    res.status = Status::duplicate;
    return;
  }
  if (seen > 0) {
    throw Malformed("ranges: " + std::to_string(seen) + " of " + std::to_string(h.ranges.size()) +
                    " streams were accepted before and the others not (a sender re-offers whole "
                    "batches only)");
  }
  const std::size_t streams = (sp ? sp->high_water.size() : 0) + fresh_streams;
  if (streams > limits.max_streams_per_spool) {
    throw Malformed("ranges: spool would have " + std::to_string(streams) +
                    " streams, over the limit " + std::to_string(limits.max_streams_per_spool));
  }
}

void Decoder::State::decode_columns(const std::string& raw, const Header& h, const Epoch* ep,
                                    Staging& st, Result& res) const {
  const auto* base = reinterpret_cast<const uint8_t*>(raw.data());
  Reader payload(base, raw.size(), "columns");
  std::array<Reader, kColumnCount> c;
  for (std::size_t i = 0; i < kColumnCount; ++i) {
    const auto len = static_cast<std::size_t>(payload.bounded(payload.left(), "column length"));
    c[i] = Reader(payload.pos(), len, kColumnNames[i]);
    payload.bytes(len);
  }
  if (!payload.done()) payload.fail("bytes after the last column");

  Reader& sr = c[kStrings];
  const auto string_count = sr.bounded(sr.left(), "string count");
  std::vector<std::string_view> strings;
  strings.reserve(static_cast<std::size_t>(string_count));
  for (uint64_t i = 0; i < string_count; ++i) strings.push_back(sr.string(sr.left(), "length"));
  auto str = [&strings](Reader& r) {
    const uint64_t i = r.varint();
    if (i >= strings.size()) {
      r.fail("string index " + std::to_string(i) + " out of range (" +
             std::to_string(strings.size()) + " strings)");
    }
    return strings[static_cast<std::size_t>(i)];
  };

  const std::size_t base_series = ep ? ep->defs.size() : 0;
  if (h.new_series + base_series > limits.max_series) {
    throw Malformed("series definitions: the epoch would hold " +
                    std::to_string(h.new_series + base_series) + " series, over the limit " +
                    std::to_string(limits.max_series));
  }
  Reader& dr = c[kSeriesDefs];
  st.defs.reserve(static_cast<std::size_t>(h.new_series));
  for (uint64_t i = 0; i < h.new_series; ++i) {
    SeriesDef d;
    d.name = str(dr);
    d.type = static_cast<uint32_t>(dr.bounded(UINT32_MAX, "type"));
    const auto labels = dr.bounded(dr.left() / 2, "label count");
    d.labels.reserve(static_cast<std::size_t>(labels));
    for (uint64_t k = 0; k < labels; ++k) {
      std::string key(str(dr));
      d.labels.emplace_back(std::move(key), std::string(str(dr)));
    }
    st.def_bytes += size_of(d);
    if (st.def_bytes + (ep ? ep->bytes : 0) > limits.max_dictionary_bytes) {
      dr.fail("definitions over the dictionary limit of " +
              std::to_string(limits.max_dictionary_bytes) + " bytes");
    }
    st.defs.push_back(std::move(d));
  }

  const uint64_t total = base_series + st.defs.size();
  std::size_t out_bytes = 0;
  auto account = [&](std::size_t n, Reader& r) {
    out_bytes += n;
    if (out_bytes > limits.max_decoded_bytes) {
      r.fail("decoded items over the limit of " + std::to_string(limits.max_decoded_bytes) +
             " bytes");
    }
  };
  res.metrics.reserve(static_cast<std::size_t>(h.metric_count));
  uint64_t prev_id = ~uint64_t{0};
  uint64_t prev_time = 0;
  for (uint64_t i = 0; i < h.metric_count; ++i) {
    const uint64_t id = prev_id + 1 + unzigzag(c[kMetricIds].varint());
    if (id >= total) {
      c[kMetricIds].fail("series id " + std::to_string(id) + " out of range (" +
                         std::to_string(total) + " series in the epoch)");
    }
    prev_id = id;
    prev_time += unzigzag(c[kMetricTimes].varint());

    bool has_prev = false;
    uint64_t prev_bits = 0;
    if (auto it = st.last.find(id); it != st.last.end()) {
      has_prev = true;
      prev_bits = it->second;
    } else if (id < base_series && ep->has_last[id]) {
      has_prev = true;
      prev_bits = ep->last[id];
    }
    double value = 0;
    const uint8_t tag = c[kMetricTags].u8();
    if (tag == kInt) {
      value = static_cast<double>(static_cast<int64_t>(unzigzag(c[kMetricInts].varint())));
    } else if (tag == kIntDelta) {
      const auto delta = static_cast<int64_t>(unzigzag(c[kMetricInts].varint()));
      Wide was = 0;
      if (!has_prev || !integral(double_of(prev_bits), was)) {
        c[kMetricInts].fail("series " + std::to_string(id) +
                            ": a difference to a previous value that is not an integer");
      }
      const Wide now = was + delta;
      if (!in_domain(now)) c[kMetricInts].fail("series " + std::to_string(id) + ": out of range");
      value = static_cast<double>(now);
    } else if (tag == kXor) {
      value = double_of(c[kMetricDoubles].u64le() ^ (has_prev ? prev_bits : 0));
    } else if (tag == kSame) {
      if (!has_prev) c[kMetricTags].fail("series " + std::to_string(id) + ": no previous value");
      value = double_of(prev_bits);
    } else if (tag > kDecimal && tag <= kDecimalLast) {
      const auto n = static_cast<int64_t>(unzigzag(c[kMetricInts].varint()));
      value = static_cast<double>(n) / kPow10[tag - kDecimal];
    } else {
      c[kMetricTags].fail("unknown value tag " + std::to_string(tag));
    }
    st.last[id] = bits_of(value);

    const SeriesDef& d = id < base_series ? ep->defs[static_cast<std::size_t>(id)]
                                          : st.defs[static_cast<std::size_t>(id - base_series)];
    account(sizeof(Metric) + size_of(d), c[kMetricIds]);
    res.metrics.push_back(Metric{d.name, d.labels, value, static_cast<int64_t>(prev_time), d.type});
  }

  res.events.reserve(static_cast<std::size_t>(h.event_count));
  prev_time = 0;
  Reader& ef = c[kEventFields];
  for (uint64_t i = 0; i < h.event_count; ++i) {
    prev_time += unzigzag(c[kEventTimes].varint());
    Event e;
    e.time_ns = static_cast<int64_t>(prev_time);
    e.severity = static_cast<uint32_t>(ef.bounded(UINT32_MAX, "severity"));
    e.source = str(ef);
    e.kind = str(ef);
    e.message = str(ef);
    const auto attrs = ef.bounded(ef.left() / 2, "attribute count");
    std::size_t n = sizeof(Event) + e.source.size() + e.kind.size() + e.message.size();
    e.attributes.reserve(static_cast<std::size_t>(attrs));
    for (uint64_t k = 0; k < attrs; ++k) {
      std::string key(str(ef));
      e.attributes.emplace_back(std::move(key), std::string(str(ef)));
      n += sizeof(e.attributes[0]) + e.attributes.back().first.size() +
           e.attributes.back().second.size();
    }
    account(n, ef);
    res.events.push_back(std::move(e));
  }

  res.flows.reserve(static_cast<std::size_t>(h.flow_count));
  prev_time = 0;
  for (uint64_t i = 0; i < h.flow_count; ++i) {
    outpost_flow f{};
    prev_time += unzigzag(c[kFlowTimes].varint());
    f.start_ns = static_cast<int64_t>(prev_time);
    f.end_ns = static_cast<int64_t>(prev_time + unzigzag(c[kFlowTimes].varint()));
    Reader& sm = c[kFlowSmall];
    const uint8_t layout = sm.u8();
    if (layout > (kShortSrc | kShortDst | kShortExporter))
      sm.fail("unknown address layout " + std::to_string(layout));
    f.family = sm.u8();
    f.exporter_family = sm.u8();
    f.protocol = sm.u8();
    f.tcp_flags = sm.u8();
    f.tos = sm.u8();
    Reader& ad = c[kFlowAddrs];
    ad.copy(f.src_addr, layout & kShortSrc ? 4 : 16);
    ad.copy(f.dst_addr, layout & kShortDst ? 4 : 16);
    ad.copy(f.exporter_addr, layout & kShortExporter ? 4 : 16);
    Reader& nu = c[kFlowNums];
    f.src_port = static_cast<uint16_t>(nu.bounded(UINT16_MAX, "port"));
    f.dst_port = static_cast<uint16_t>(nu.bounded(UINT16_MAX, "port"));
    f.input_if = static_cast<uint32_t>(nu.bounded(UINT32_MAX, "interface"));
    f.output_if = static_cast<uint32_t>(nu.bounded(UINT32_MAX, "interface"));
    f.sampling_rate = static_cast<uint32_t>(nu.bounded(UINT32_MAX, "sampling rate"));
    f.bytes = nu.varint();
    f.packets = nu.varint();
    res.flows.push_back(f);
  }

  for (std::size_t i = 0; i < kColumnCount; ++i) {
    if (!c[i].done()) {
      c[i].fail(std::to_string(c[i].left()) + " bytes left over (counts inconsistent)");
    }
  }
}

void Decoder::State::apply(const Header& h, Staging& st, bool new_epoch) {
  ++tick;
  auto [spit, fresh_spool] = spools.try_emplace(h.spool_id);
  if (fresh_spool && spools.size() > limits.max_spools) evict_spool_for(h.spool_id);
  Spool& sp = spools.at(h.spool_id);
  sp.used = tick;
  if (new_epoch) {
    while (sp.epochs.size() >= std::max<std::size_t>(limits.max_epochs_per_spool, 1)) {
      std::size_t oldest = 0;
      for (std::size_t i = 1; i < sp.epochs.size(); ++i)
        if (sp.epochs[i].used < sp.epochs[oldest].used) oldest = i;
      drop_epoch(sp, oldest);
    }
    sp.epochs.push_back(Epoch{});
    sp.epochs.back().id = h.epoch;
    ++epochs;
  }
  while ((series + st.defs.size() > limits.max_series ||
          bytes + st.def_bytes > limits.max_dictionary_bytes) &&
         evict_oldest(sp, h.epoch)) {
  }
  Epoch* ep = nullptr;
  for (auto& e : sp.epochs)
    if (e.id == h.epoch) ep = &e;
  ep->used = tick;
  ep->defs.reserve(ep->defs.size() + st.defs.size());
  for (auto& d : st.defs) {
    ep->defs.push_back(std::move(d));
    ep->last.push_back(0);
    ep->has_last.push_back(0);
  }
  series += st.defs.size();
  ep->bytes += st.def_bytes;
  bytes += st.def_bytes;
  for (const auto& [id, bits] : st.last) {
    ep->last[static_cast<std::size_t>(id)] = bits;
    ep->has_last[static_cast<std::size_t>(id)] = 1;
  }
  ++ep->batches;
  for (const auto& r : h.ranges) sp.high_water[r.stream] = r.last_seq;
}

Decoder::Decoder(Limits limits) : state_(std::make_unique<State>()) { state_->limits = limits; }
Decoder::~Decoder() = default;

Result Decoder::decode(std::span<const uint8_t> body) {
  State& s = *state_;
  Result res;
  try {
    Header& h = res.header;
    std::string error;
    if (!parse_header(body, h, error)) throw Malformed(error);
    const auto spit = s.spools.find(h.spool_id);
    const Spool* sp = spit == s.spools.end() ? nullptr : &spit->second;
    s.check_ranges(h, sp, res);
    if (res.status == Status::duplicate) return res;

    const Epoch* ep = nullptr;
    if (sp != nullptr) {
      for (const auto& e : sp->epochs)
        if (e.id == h.epoch) ep = &e;
    }
    if (ep == nullptr && (h.base_series != 0 || h.base_batches != 0)) {
      res.status = Status::unknown_epoch;
      res.error = "epoch " + hex64(h.epoch) + " is not known here (the sender starts a new one)";
      return res;
    }
    if (ep != nullptr && (ep->defs.size() != h.base_series || ep->batches != h.base_batches)) {
      res.status = Status::unknown_epoch;
      res.error = "epoch " + hex64(h.epoch) + " holds " + std::to_string(ep->defs.size()) +
                  " series after " + std::to_string(ep->batches) + " bodies here, the sender has " +
                  std::to_string(h.base_series) + " after " + std::to_string(h.base_batches);
      return res;
    }

    std::string raw;
    if (!decompress_frame(body, h, s.limits.max_raw_bytes, raw, error)) throw Malformed(error);
    Staging st;
    s.decode_columns(raw, h, ep, st, res);
    s.apply(h, st, ep == nullptr);
    res.status = Status::ok;
  } catch (const Malformed& e) {
    res.status = Status::malformed;
    res.error = e.what();
  } catch (const std::bad_alloc&) {
    res.status = Status::malformed;
    res.error = "out of memory decoding the body";
  }
  if (res.status != Status::ok) {
    res.metrics = {};
    res.events = {};
    res.flows = {};
  }
  return res;
}

std::vector<HighWater> Decoder::high_water() const {
  std::vector<HighWater> out;
  for (const auto& [id, sp] : state_->spools)
    for (const auto& [stream, seq] : sp.high_water) out.push_back(HighWater{id, stream, seq});
  std::sort(out.begin(), out.end(), [](const HighWater& a, const HighWater& b) {
    return std::tie(a.spool_id, a.stream) < std::tie(b.spool_id, b.stream);
  });
  return out;
}

void Decoder::restore_high_water(const std::vector<HighWater>& marks) {
  for (const auto& m : marks) {
    Spool& sp = state_->spools[m.spool_id];
    auto& hw = sp.high_water[m.stream];
    hw = std::max(hw, m.last_seq);
  }
}

DecoderStats Decoder::stats() const {
  const State& s = *state_;
  return DecoderStats{s.spools.size(), s.epochs,         s.series,
                      s.bytes,         s.epochs_evicted, s.spools_evicted};
}

}  // namespace outpost::lib::wire
