#include "chunk.hpp"

#include <bit>
#include <cstring>

namespace outpost::store {
namespace {

uint64_t zigzag(int64_t v) {
  return (static_cast<uint64_t>(v) << 1) ^ static_cast<uint64_t>(v >> 63);
}
int64_t unzigzag(uint64_t v) { return static_cast<int64_t>(v >> 1) ^ -static_cast<int64_t>(v & 1); }

void put_varint(std::vector<uint8_t>& out, uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<uint8_t>(v | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<uint8_t>(v));
}

bool get_varint(std::string_view& in, uint64_t& v) {
  v = 0;
  for (int shift = 0; shift < 64; shift += 7) {
    if (in.empty()) return false;
    const auto b = static_cast<uint8_t>(in.front());
    in.remove_prefix(1);
    v |= uint64_t{b & 0x7Fu} << shift;
    if ((b & 0x80) == 0) return shift < 63 || b <= 1;
  }
  return false;
}

uint64_t bits_of(double d) { return std::bit_cast<uint64_t>(d); }

// Delta-of-delta buckets: a prefix of 1s ended by a 0 (the last has none) and a signed payload.
constexpr int kBucketBits[] = {0, 16, 26, 40};

bool fits(int64_t v, int n) {
  const int64_t lim = int64_t{1} << (n - 1);
  return v >= -lim && v < lim;
}

class BitReader {
 public:
  explicit BitReader(std::string_view in) : in_(in) {}
  bool bit(uint64_t& out) { return read(1, out); }
  bool read(int n, uint64_t& out) {
    out = 0;
    for (int i = 0; i < n; ++i) {
      if (pos_ >= in_.size() * 8) return false;
      const auto byte = static_cast<uint8_t>(in_[pos_ >> 3]);
      out = (out << 1) | ((byte >> (7 - (pos_ & 7))) & 1u);
      ++pos_;
    }
    return true;
  }
  // Everything read but the padding of the last byte, which must be zero.
  bool at_end() const {
    if ((pos_ + 7) / 8 != in_.size()) return false;
    if ((pos_ & 7) == 0) return true;
    const auto byte = static_cast<uint8_t>(in_.back());
    return (byte & ((1u << (8 - (pos_ & 7))) - 1)) == 0;
  }

 private:
  std::string_view in_;
  std::size_t pos_ = 0;
};

}  // namespace

void ChunkWriter::bits(uint64_t v, int n) {
  // MSB first; flushed a byte at a time.
  for (int i = n - 1; i >= 0; --i) {
    acc_ = (acc_ << 1) | ((v >> i) & 1u);
    if (++acc_bits_ == 8) {
      out_.push_back(static_cast<uint8_t>(acc_));
      acc_ = 0;
      acc_bits_ = 0;
    }
  }
}

void ChunkWriter::add(int64_t t, const double* values) {
  if (count_ == 0) {
    first_t_ = prev_t_ = t;
    prev_delta_ = 0;
    for (int c = 0; c < columns_; ++c) {
      prev_v_[c] = bits_of(values[c]);
      have_window_[c] = false;
      if (c > 0) {  // the first point's columns also say "equal to the one before"
        const bool same = prev_v_[c] == prev_v_[c - 1];
        bits(same ? 1 : 0, 1);
        if (same) continue;
      }
      bits(prev_v_[c], 64);
    }
    ++count_;
    return;
  }
  if (shared_ == kNotShared) add_time(t);
  for (int c = 0; c < columns_; ++c) {
    const uint64_t v = bits_of(values[c]);
    if (c > 0) {  // equal to the column before it, in this point?
      const bool same = v == bits_of(values[c - 1]);
      bits(same ? 1 : 0, 1);
      if (same) {
        prev_v_[c] = v;
        continue;
      }
    }
    const uint64_t x = v ^ prev_v_[c];
    prev_v_[c] = v;
    if (x == 0) {
      bits(0, 1);
      continue;
    }
    const int lead = std::min(std::countl_zero(x), 63);
    const int trail = std::countr_zero(x);
    if (have_window_[c] && lead >= lead_[c] && trail >= trail_[c]) {
      bits(0b10, 2);
      bits(x >> trail_[c], 64 - lead_[c] - trail_[c]);
    } else {
      const int len = 64 - lead - trail;
      bits(0b11, 2);
      bits(static_cast<uint64_t>(lead), 6);
      bits(static_cast<uint64_t>(len - 1), 6);
      bits(x >> trail, len);
      lead_[c] = lead;
      trail_[c] = trail;
      have_window_[c] = true;
    }
  }
  ++count_;
}

void ChunkWriter::add_time(int64_t t) {
  const auto delta =
      static_cast<int64_t>(static_cast<uint64_t>(t) - static_cast<uint64_t>(prev_t_));
  const auto dod =
      static_cast<int64_t>(static_cast<uint64_t>(delta) - static_cast<uint64_t>(prev_delta_));
  if (dod == 0) {
    bits(0, 1);
  } else {
    int b = 1;
    while (b < 4 && !fits(dod, kBucketBits[b])) ++b;
    if (b < 4) {
      bits((uint64_t{1} << (b + 1)) - 2, b + 1);  // b ones, then a zero
      bits(static_cast<uint64_t>(dod), kBucketBits[b]);
    } else {
      bits(0xF, 4);
      bits(static_cast<uint64_t>(dod), 64);
    }
  }
  prev_delta_ = delta;
  prev_t_ = t;
}

std::string ChunkWriter::finish() {
  std::vector<uint8_t> head;
  const bool shared = shared_ != kNotShared && count_ > 0;
  put_varint(head, uint64_t{count_} << 1 | (shared ? 1u : 0u));
  if (shared)
    put_varint(head, shared_);
  else if (count_ > 0)
    put_varint(head, zigzag(static_cast<int64_t>(static_cast<uint64_t>(first_t_) -
                                                 static_cast<uint64_t>(base_))));
  if (acc_bits_ > 0) bits(0, 8 - acc_bits_);
  std::string s(head.begin(), head.end());
  s.append(out_.begin(), out_.end());
  out_.clear();
  count_ = 0;
  return s;
}

bool peek_chunk(std::string_view in, ChunkHead& head) {
  uint64_t first = 0;
  if (!get_varint(in, first)) return false;
  head.count = first >> 1;
  head.shared_ref = kNotShared;
  if ((first & 1) == 0) return true;
  uint64_t ref = 0;
  if (!get_varint(in, ref) || ref >= kNotShared) return false;
  head.shared_ref = static_cast<uint32_t>(ref);
  return true;
}

bool decode_chunk(std::string_view in, int columns, int64_t base, std::vector<int64_t>& times,
                  std::vector<double>& values, const std::vector<int64_t>* shared_times) {
  times.clear();
  values.clear();
  if (columns < 0 || columns > kMaxColumns) return false;
  uint64_t head = 0;
  if (!get_varint(in, head)) return false;
  const uint64_t count = head >> 1;
  const bool shared = (head & 1) != 0;
  if (count == 0) return !shared && in.empty();
  // Every point after the first takes at least a bit: a count beyond that is a lie.
  if (count > in.size() * 8 + 1) return false;
  uint64_t first = 0;
  if (!get_varint(in, first)) return false;
  if (shared) {
    if (shared_times == nullptr || shared_times->size() != count || columns == 0) return false;
    times = *shared_times;
  } else {
    times.reserve(count);
  }
  values.reserve(count * static_cast<std::size_t>(columns));
  BitReader r(in);
  uint64_t t = static_cast<uint64_t>(base) + static_cast<uint64_t>(unzigzag(first));
  uint64_t delta = 0;
  uint64_t prev[kMaxColumns] = {};
  int lead[kMaxColumns] = {}, trail[kMaxColumns] = {};
  bool window[kMaxColumns] = {};
  for (uint64_t i = 0; i < count; ++i) {
    if (i == 0) {
      for (int c = 0; c < columns; ++c) {
        uint64_t same = 0;
        if (c > 0 && !r.bit(same)) return false;
        if (same == 1)
          prev[c] = prev[c - 1];
        else if (!r.read(64, prev[c]))
          return false;
      }
    } else {
      uint64_t b = 0;
      if (!shared) {
        int ones = 0;
        while (ones < 4) {
          if (!r.bit(b)) return false;
          if (b == 0) break;
          ++ones;
        }
        uint64_t dod = 0;
        if (ones > 0) {
          const int n = ones < 4 ? kBucketBits[ones] : 64;
          if (!r.read(n, dod)) return false;
          if (n < 64 && (dod >> (n - 1)) != 0) dod |= ~uint64_t{0} << n;  // sign-extend
        }
        delta += dod;
        t += delta;
      }
      for (int c = 0; c < columns; ++c) {
        if (c > 0) {
          if (!r.bit(b)) return false;
          if (b == 1) {  // equal to the column before it
            prev[c] = prev[c - 1];
            continue;
          }
        }
        if (!r.bit(b)) return false;
        if (b == 0) continue;
        if (!r.bit(b)) return false;
        uint64_t x = 0;
        if (b == 0) {
          if (!window[c]) return false;
          if (!r.read(64 - lead[c] - trail[c], x)) return false;
          x <<= trail[c];
        } else {
          uint64_t l = 0, len = 0;
          if (!r.read(6, l) || !r.read(6, len)) return false;
          ++len;
          if (l + len > 64) return false;
          if (!r.read(static_cast<int>(len), x)) return false;
          lead[c] = static_cast<int>(l);
          trail[c] = static_cast<int>(64 - l - len);
          x <<= trail[c];
          window[c] = true;
        }
        prev[c] ^= x;
      }
    }
    if (!shared) times.push_back(static_cast<int64_t>(t));
    for (int c = 0; c < columns; ++c) values.push_back(std::bit_cast<double>(prev[c]));
  }
  return r.at_end();
}

}  // namespace outpost::store
