// A small open-addressing hash map for the rollup's hot path: keys and values inline in one
// array (linear probing, power-of-two capacity, at most half full), so a lookup is one hash and
// usually one cache line, not a node chase. Keys are trivially copyable structs compared
// bytewise; no erase (a rollup table only grows within an interval and is cleared at its end).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <iterator>
#include <type_traits>
#include <utility>
#include <vector>

namespace outpost::flows {

// Mixes 64-bit words into a hash (multiply-xorshift; good enough for keys an exporter chooses,
// and max_keys bounds what a hostile one can do to probe lengths' memory).
inline uint64_t mix64(uint64_t x) {
  x ^= x >> 32;
  x *= 0xd6e8feb86659fd93ull;
  x ^= x >> 32;
  x *= 0xd6e8feb86659fd93ull;
  x ^= x >> 32;
  return x;
}

// Multilinear over the key's 64-bit words (independent multiplies, so a 40-byte key costs
// about what one word does), then mixed.
template <typename Key>
uint64_t hash_key(const Key& k) {
  static_assert(std::is_trivially_copyable_v<Key>);
  static constexpr uint64_t kMul[] = {0x9e3779b97f4a7c15ull, 0xc2b2ae3d27d4eb4full,
                                      0x165667b19e3779f9ull, 0xd6e8feb86659fd93ull,
                                      0xff51afd7ed558ccdull, 0xc4ceb9fe1a85ec53ull};
  constexpr std::size_t words = (sizeof(Key) + 7) / 8;
  static_assert(words <= std::size(kMul), "a longer key needs more multipliers");
  uint64_t w[words] = {};
  std::memcpy(w, &k, sizeof(Key));
  uint64_t h = sizeof(Key);
  for (std::size_t i = 0; i < words; ++i) h += (w[i] ^ kMul[(i + 1) % std::size(kMul)]) * kMul[i];
  return mix64(h);
}

template <typename Key, typename Value>
class FlatMap {
  static_assert(std::is_trivially_copyable_v<Key>, "keys are compared and hashed bytewise");
  static_assert(std::has_unique_object_representations_v<Key>, "keys must have no padding bytes");

 public:
  struct Slot {
    Key key;
    Value value;
  };

  std::size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }

  Value* find(const Key& k) {
    if (size_ == 0) return nullptr;
    for (std::size_t i = hash_key(k) & mask_;; i = (i + 1) & mask_) {
      if (!used_[i]) return nullptr;
      if (std::memcmp(&slots_[i].key, &k, sizeof(Key)) == 0) return &slots_[i].value;
    }
  }

  // The value for k, inserted default-constructed when absent. Pointers stay valid until the
  // next insertion.
  Value& operator[](const Key& k) {
    if ((size_ + 1) * 2 > used_.size()) grow();
    std::size_t i = hash_key(k) & mask_;
    for (;; i = (i + 1) & mask_) {
      if (!used_[i]) break;
      if (std::memcmp(&slots_[i].key, &k, sizeof(Key)) == 0) return slots_[i].value;
    }
    used_[i] = 1;
    slots_[i].key = k;
    slots_[i].value = Value{};
    ++size_;
    return slots_[i].value;
  }

  void clear() {
    // Keeps the capacity for the next interval unless it was far larger than needed.
    if (used_.size() > 1024 && size_ * 8 < used_.size()) {
      used_.clear();
      slots_.clear();
      mask_ = 0;
    } else {
      std::fill(used_.begin(), used_.end(), 0);
    }
    size_ = 0;
  }

  template <typename Fn>
  void for_each(Fn&& fn) const {
    for (std::size_t i = 0; i < used_.size(); ++i)
      if (used_[i]) fn(slots_[i].key, slots_[i].value);
  }

 private:
  void grow() {
    const std::size_t cap = used_.empty() ? 16 : used_.size() * 2;
    std::vector<Slot> old_slots(cap);
    std::vector<uint8_t> old_used(cap, 0);
    old_slots.swap(slots_);
    old_used.swap(used_);
    mask_ = cap - 1;
    size_ = 0;
    for (std::size_t i = 0; i < old_used.size(); ++i)
      if (old_used[i]) (*this)[old_slots[i].key] = old_slots[i].value;
  }

  std::vector<Slot> slots_;
  std::vector<uint8_t> used_;
  std::size_t mask_ = 0;
  std::size_t size_ = 0;
};

}  // namespace outpost::flows
