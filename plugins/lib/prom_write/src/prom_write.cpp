#include <snappy.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <map>
#include <outpost_lib/prom_write.hpp>
#include <tuple>

namespace outpost::lib::promrw {

namespace {

bool is_letter(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
bool is_digit(char c) { return c >= '0' && c <= '9'; }

std::string sanitize(std::string_view in, bool colon_ok) {
  std::string out;
  out.reserve(in.size() + 1);
  if (in.empty() || is_digit(in.front())) out.push_back('_');
  for (const char c : in)
    out.push_back(is_letter(c) || is_digit(c) || (colon_ok && c == ':') ? c : '_');
  return out;
}

// ---- protobuf: only what WriteRequest needs (varints, fixed64, length-delimited) ----

constexpr uint8_t kVarint = 0, kFixed64 = 1, kLen = 2;

constexpr std::size_t varint_size(uint64_t v) {
  std::size_t n = 1;
  while (v >= 0x80) {
    v >>= 7;
    ++n;
  }
  return n;
}

void put_varint(std::string& out, uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}

void put_tag(std::string& out, uint32_t field, uint8_t wire) { put_varint(out, field << 3 | wire); }

std::size_t len_field_size(std::size_t payload) { return 1 + varint_size(payload) + payload; }

std::size_t label_size(const std::pair<std::string, std::string>& l) {
  return len_field_size(l.first.size()) + len_field_size(l.second.size());
}

// int64 on the wire is the two's complement as a 64-bit varint.
uint64_t as_varint(int64_t v) { return static_cast<uint64_t>(v); }

std::size_t sample_size(const Sample& s) { return 1 + 8 + 1 + varint_size(as_varint(s.time_ms)); }

void put_string_field(std::string& out, uint32_t field, std::string_view s) {
  put_tag(out, field, kLen);
  put_varint(out, s.size());
  out.append(s);
}

uint64_t value_bits(double v) {
  if (std::isnan(v)) return kNaNBits;
  return std::bit_cast<uint64_t>(v);
}

template <typename T>
T read_element(const T* base, uint32_t elem_size, std::size_t i) {
  T out{};
  std::memcpy(&out, reinterpret_cast<const char*>(base) + i * elem_size,
              std::min<std::size_t>(elem_size, sizeof(T)));
  return out;
}

std::string_view sv(outpost_str s) { return s.len == 0 ? std::string_view{} : view(s); }

}  // namespace

std::string sanitize_metric_name(std::string_view name) { return sanitize(name, true); }
std::string sanitize_label_name(std::string_view name) { return sanitize(name, false); }

namespace {

std::size_t timeseries_size(const Piece& p) {
  std::size_t n = 0;
  for (const auto& l : p.series->labels) n += len_field_size(label_size(l));
  for (std::size_t i = p.first; i < p.first + p.count; ++i)
    n += len_field_size(sample_size(p.series->samples[i]));
  return n;
}

}  // namespace

std::string encode_write_request(std::span<const Piece> pieces) {
  // Sized first and written once: growing a body of a few hundred kB step by step costs more
  // in copies and fresh pages than encoding it.
  std::vector<std::size_t> sizes;
  sizes.reserve(pieces.size());
  std::size_t total = 0;
  for (const Piece& p : pieces) {
    sizes.push_back(timeseries_size(p));
    total += len_field_size(sizes.back());
  }
  std::string out;
  out.reserve(total);
  for (std::size_t k = 0; k < pieces.size(); ++k) {
    const Piece& p = pieces[k];
    const std::size_t ts_size = sizes[k];
    put_tag(out, 1, kLen);  // WriteRequest.timeseries
    put_varint(out, ts_size);
    for (const auto& l : p.series->labels) {
      put_tag(out, 1, kLen);  // TimeSeries.labels
      put_varint(out, label_size(l));
      put_string_field(out, 1, l.first);   // Label.name
      put_string_field(out, 2, l.second);  // Label.value
    }
    for (std::size_t i = p.first; i < p.first + p.count; ++i) {
      const Sample& s = p.series->samples[i];
      put_tag(out, 2, kLen);  // TimeSeries.samples
      put_varint(out, sample_size(s));
      put_tag(out, 1, kFixed64);  // Sample.value, little-endian double
      uint64_t bits = value_bits(s.value);
      for (int b = 0; b < 8; ++b, bits >>= 8) out.push_back(static_cast<char>(bits & 0xff));
      put_tag(out, 2, kVarint);  // Sample.timestamp, ms
      put_varint(out, as_varint(s.time_ms));
    }
  }
  return out;
}

std::string snappy_compress(std::string_view raw) {
  std::string out;
  snappy::Compress(raw.data(), raw.size(), &out);
  return out;
}

Encoder::Encoder(Labels external, std::size_t max_samples)
    : max_samples_(std::max<std::size_t>(1, max_samples)) {
  for (auto& [k, v] : external) {
    std::string name = sanitize_label_name(k);
    if (v.empty() || name == "__name__") continue;
    if (std::none_of(external_.begin(), external_.end(),
                     [&](const auto& e) { return e.first == name; }))
      external_.emplace_back(std::move(name), std::move(v));
  }
}

std::vector<Series> Encoder::group(const outpost_batch& batch, EncodeStats& stats) const {
  stats.events_ignored += batch.event_count;
  stats.flows_ignored += batch.flow_count;
  std::map<Labels, std::vector<Sample>> by_series;
  struct Candidate {
    std::string name;
    std::string_view original;
    std::size_t index;
    std::string_view value;
  };
  std::vector<Candidate> cands;
  for (std::size_t i = 0; i < batch.metric_count; ++i) {
    const outpost_metric m = read_element(batch.metrics, batch.metric_size, i);
    cands.clear();
    cands.push_back({"__name__", {}, 0, {}});  // sorts first among its equals: the name wins
    for (std::size_t j = 0; j < m.label_count; ++j) {
      const std::string_view value = sv(m.labels[j].value);
      if (value.empty()) {
        stats.labels_empty++;
        continue;
      }
      cands.push_back(
          {sanitize_label_name(sv(m.labels[j].key)), sv(m.labels[j].key), j + 1, value});
    }
    // Same sanitised name: the metric name first, then the bytewise smallest original name; of
    // one original name repeated, its last occurrence (as the file sink keeps it).
    std::sort(cands.begin(), cands.end(), [](const Candidate& a, const Candidate& b) {
      if (a.name != b.name) return a.name < b.name;
      if (a.index == 0 || b.index == 0) return a.index == 0 && b.index != 0;
      if (a.original != b.original) return a.original < b.original;
      return a.index > b.index;
    });
    Labels labels;
    labels.reserve(cands.size() + external_.size());
    for (const Candidate& c : cands) {
      if (!labels.empty() && labels.back().first == c.name) {
        stats.labels_collided++;
        continue;
      }
      labels.emplace_back(c.name,
                          c.index == 0 ? sanitize_metric_name(sv(m.name)) : std::string(c.value));
    }
    if (!external_.empty()) {
      for (const auto& e : external_) {
        const auto at =
            std::lower_bound(labels.begin(), labels.end(), e.first,
                             [](const auto& l, const std::string& n) { return l.first < n; });
        if (at == labels.end() || at->first != e.first) labels.insert(at, e);
      }
    }
    // Floor division: a time before 1970 stays in the millisecond it fell in.
    int64_t ms = m.time_ns / 1'000'000;
    if (m.time_ns % 1'000'000 < 0) --ms;
    by_series[std::move(labels)].push_back(Sample{ms, m.value});
  }
  std::vector<Series> out;
  out.reserve(by_series.size());
  while (!by_series.empty()) {
    auto node = by_series.extract(by_series.begin());  // the labels move out, not copied
    std::vector<Sample>& samples = node.mapped();
    std::stable_sort(samples.begin(), samples.end(),
                     [](const Sample& a, const Sample& b) { return a.time_ms < b.time_ms; });
    out.push_back(Series{std::move(node.key()), std::move(samples)});
  }
  stats.series += out.size();
  return out;
}

std::vector<std::string> Encoder::encode(const outpost_batch& batch, EncodeStats& stats) const {
  const std::vector<Series> series = group(batch, stats);
  std::vector<std::string> bodies;
  std::vector<Piece> pieces;
  std::size_t in_request = 0;
  for (const Series& s : series) {
    std::size_t first = 0;
    while (first < s.samples.size()) {
      const std::size_t n = std::min(s.samples.size() - first, max_samples_ - in_request);
      pieces.push_back(Piece{&s, first, n});
      first += n;
      in_request += n;
      stats.samples += n;
      if (in_request == max_samples_) {
        bodies.push_back(encode_write_request(pieces));
        pieces.clear();
        in_request = 0;
      }
    }
  }
  if (!pieces.empty()) bodies.push_back(encode_write_request(pieces));
  return bodies;
}

}  // namespace outpost::lib::promrw
