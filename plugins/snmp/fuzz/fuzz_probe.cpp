// The diagnostic get/walk against an agent that answers anything: error statuses, varbind OIDs
// near the asked ones or anywhere, any value types. Whatever comes, the probe must end, and end
// soon once the agent has nothing more; every item it keeps must render.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "fuzz_input.hpp"
#include "probe.hpp"

namespace {

using namespace outpost::snmp;

using fuzz::Input;
Value value_of(Input& in) { return fuzz::value_of(in, 1e9); }

Oid oid_of(Input& in) {
  Oid o = {1, 3, 6, 1};
  const size_t len = in.byte() % 6;
  for (size_t i = 0; i < len; ++i) o.push_back(in.byte() % 8);
  return o;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Input in{data, size};
  CollectorOptions o;
  o.version = in.byte() % 2 == 0 ? 2 : 1;
  o.repetitions = 1 + in.byte() % 12;
  o.max_oids = 1 + in.byte() % 6;
  o.max_varbinds = 1 + static_cast<size_t>(in.byte()) * 4;
  std::vector<Oid> gets, walks;
  for (size_t i = in.byte() % 5; i > 0; --i) gets.push_back(oid_of(in));
  for (size_t i = in.byte() % 4; i > 0; --i) walks.push_back(oid_of(in));
  Probe p(o, gets, walks);
  size_t after_input = 0;
  for (size_t step = 0; step < 100000; ++step) {
    auto req = p.next();
    if (!req) break;
    (void)p.activity();
    Response r;
    if (in.empty()) {
      fuzz::answer_exhausted(*req, r, after_input);
    } else {
      const uint8_t e = in.byte();
      if (e % 7 == 0) {
        r.error_status = e % 19;
        r.error_index = in.byte() % 6;
      }
      if (e % 11 == 0) {
        p.on_timeout();
        break;
      }
      const size_t count = in.byte() % 24;
      for (size_t i = 0; i < count; ++i) {
        VarBind vb;
        const uint8_t how = in.byte();
        if (!req->oids.empty() && how % 4 != 0) {
          vb.oid = req->oids[i % req->oids.size()];
          const size_t extra = how % 3;
          for (size_t k = 0; k < extra; ++k) vb.oid.push_back(in.byte());
          if (how % 5 == 0 && !vb.oid.empty()) vb.oid.back() = 0;
        } else {
          vb.oid = oid_of(in);
        }
        vb.value = value_of(in);
        r.varbinds.push_back(std::move(vb));
      }
    }
    p.on_response(r);
  }
  for (const auto& item : p.items()) {
    const Rendered r = render(item);
    if (r.line.empty() || r.type.empty()) __builtin_trap();
  }
  return 0;
}
