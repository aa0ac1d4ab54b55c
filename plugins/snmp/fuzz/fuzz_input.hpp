// What the snmp fuzzers share: the input read as a stream of choices (0 once it runs out), and
// varbind values made from it.
#pragma once

#include <cstddef>
#include <cstdint>

#include "snmp/oid.hpp"

namespace outpost::snmp::fuzz {

struct Input {
  const uint8_t* p;
  size_t n;
  bool empty() const { return n == 0; }
  uint8_t byte() {
    if (n == 0) return 0;
    --n;
    return *p++;
  }
};

// Any value type, a number of the given magnitude and up to 7 bytes of text.
inline Value value_of(Input& in, double magnitude) {
  Value v;
  v.type = static_cast<Value::Type>(in.byte() % 14);
  v.number = static_cast<double>(in.byte()) * (in.byte() % 2 ? -magnitude : magnitude);
  const size_t len = in.byte() % 8;
  for (size_t i = 0; i < len; ++i) v.text += static_cast<char>(in.byte());
  return v;
}

// The agent has nothing more: every GET is answered, every walk ends. Traps when called more
// than 1000 times in a row (the poll or probe must not go on forever).
template <typename Request, typename Response>
void answer_exhausted(const Request& req, Response& r, size_t& calls) {
  if (++calls > 1000) __builtin_trap();
  for (const auto& oid : req.oids) {
    typename decltype(r.varbinds)::value_type vb{oid, {}};
    vb.value.type =
        req.type == decltype(req.type)::kGet ? Value::Type::kInteger : Value::Type::kEndOfMibView;
    r.varbinds.push_back(vb);
  }
}

}  // namespace outpost::snmp::fuzz
