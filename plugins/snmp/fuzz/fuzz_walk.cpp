// The walk logic against an agent that answers anything: the input decides error statuses,
// varbind OIDs (near the asked ones, or anywhere) and value types. Whatever comes, a poll must
// end, and end soon once the agent says endOfMibView.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "collector.hpp"
#include "fuzz_input.hpp"

namespace {

using namespace outpost::snmp;

std::shared_ptr<const ProfileSet> profiles() {
  static const std::shared_ptr<const ProfileSet> set = [] {
    auto s = std::make_shared<ProfileSet>();
    std::vector<std::string> errors;
    s->add(R"(
name: p
scalars:
  - {name: s1, oid: 1.3.6.1.2.1.1.5.0, type: label}
  - {name: s2, oid: 1.3.6.1.2.1.25.1.6.0, map: {x: 1}}
tables:
  - name: t
    index: i
    labels: [{name: d, oid: 1.3.6.1.2.1.2.2.1.2, map: {a: b}}]
    metrics:
      - {name: hc, oid: 1.3.6.1.2.1.31.1.1.1.6, fallback: {name: lo, oid: 1.3.6.1.2.1.2.2.1.10}}
      - {name: u, oid: 1.3.6.1.2.1.2.2.1.4}
      - {name: sz, oid: 1.3.6.1.2.1.2.2.1.5, scale_by: u, scale: 0.5}
      - {name: n, oid: 1.3.6.1.2.1.2.2.1.1, type: count}
  - name: t2
    max_rows: 5
    max_repetitions: 3
    metrics: [{name: m, oid: 1.3.6.1.2.1.25.3.3.1.2}]
)",
           "p.yaml", errors);
    s->finish(errors);
    return s;
  }();
  return set;
}

using fuzz::Input;
Value value_of(Input& in) { return fuzz::value_of(in, 1); }

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Input in{data, size};
  CollectorOptions o;
  o.version = in.byte() % 2 == 0 ? 2 : 1;
  o.repetitions = 1 + in.byte() % 12;
  o.max_oids = 2 + in.byte() % 6;
  o.max_rows = 1 + in.byte() % 50;
  o.max_varbinds = 1 + static_cast<size_t>(in.byte()) * 4;
  const uint8_t mode = in.byte();
  const std::string profile = mode % 3 == 0 ? "p" : mode % 3 == 1 ? "" : "nope";
  Collector c(o, profiles(), profile, mode % 5 == 0 ? "p" : "missing", nullptr);
  size_t after_input = 0;
  for (size_t step = 0; step < 100000; ++step) {
    auto req = c.next();
    if (!req) break;
    Response r;
    if (in.empty()) {
      fuzz::answer_exhausted(*req, r, after_input);
    } else {
      const uint8_t e = in.byte();
      if (e % 7 == 0) {
        r.error_status = e % 19;
        r.error_index = in.byte() % 6;
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
          const size_t len = in.byte() % 12;
          for (size_t k = 0; k < len; ++k) vb.oid.push_back(in.byte());
        }
        vb.value = value_of(in);
        r.varbinds.push_back(std::move(vb));
      }
    }
    c.on_response(r);
  }
  std::vector<outpost::Metric> out;
  c.build({{"device", "d"}}, out);
  (void)c.errors();
  (void)c.activity();
  return 0;
}
