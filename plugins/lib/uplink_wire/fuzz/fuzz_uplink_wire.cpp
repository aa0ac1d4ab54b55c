// libFuzzer target: the decoder against hostile bodies, after a valid first body made an epoch
// with a few series. The first byte picks how the rest is used:
//   0: the whole body, as received;
//   1: the columns of a second body of that epoch, wrapped in a valid header and zstd frame by
//      this harness, so the column parser sees the input and not only the frame's checksum;
//   2: (position, xor) pairs applied to a valid second body.
// Traps when a body that is not ok changed the decoder's state or (other than a duplicate, a
// re-offer acknowledged as such) came without its reason, or an ok one broke a bound.
#include <zstd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <outpost_lib/uplink_wire.hpp>
#include <string>

using namespace outpost::lib::wire;

namespace {

struct Bodies {
  std::string first, second;
  Header second_header;
};

const Bodies& bodies() {
  static const Bodies b = [] {
    Bodies out;
    Encoder enc("fuzz");
    outpost::SpoolInfo info;
    info.spool_id = "spool";
    const outpost_kv labels[2] = {{{"device", 6}, {"router", 6}}, {{"ifName", 6}, {"eth0", 4}}};
    outpost_metric m[4] = {{{"ifHCInOctets", 12}, labels, 2, 1e12, 1'700'000'000'000'000'000, 1, 0},
                           {{"rtt_ms", 6}, labels, 1, 0.25, 1'700'000'000'000'000'000, 0, 0},
                           {{"up", 2}, labels, 1, 1, 1'700'000'000'000'000'000, 0, 0},
                           {{"x", 1}, nullptr, 0, -0.0, 0, 0, 0}};
    outpost_event e{1, 4, 0, {"gw", 2}, {"availability", 12}, {"down", 4}, labels, 2};
    outpost_flow f{};
    f.family = 4;
    f.bytes = 1500;
    outpost_batch b = outpost_batch_make();
    b.metrics = m;
    b.metric_count = 4;
    b.events = &e;
    b.event_count = 1;
    b.flows = &f;
    b.flow_count = 1;
    info.ranges = {{"snmp", 1, 4}};
    out.first = enc.encode(b, info);
    enc.commit();
    m[0].value = 1.5e12;
    m[1].value = 0.5;
    info.ranges = {{"snmp", 5, 8}};
    out.second = enc.encode(b, info);
    std::string error;
    if (!parse_header(bytes_of(out.second), out.second_header, error)) std::abort();
    return out;
  }();
  return b;
}

Limits limits() {
  Limits l;
  l.max_raw_bytes = 4u << 20;
  l.max_series = 100'000;
  l.max_dictionary_bytes = 64u << 20;
  l.max_decoded_bytes = 64u << 20;
  return l;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const Bodies& b = bodies();
  Decoder dec(limits());
  if (dec.decode(bytes_of(b.first)).status != Status::ok) std::abort();
  const DecoderStats before = dec.stats();
  const auto marks = dec.high_water();

  std::string body;
  const uint8_t mode = data[0] % 3;
  const std::string_view rest(reinterpret_cast<const char*>(data + 1), size - 1);
  if (mode == 0) {
    body = rest;
  } else if (mode == 1) {
    Header h = b.second_header;
    // Counts from the input's first bytes, the columns from the rest.
    const std::string_view counts = rest.substr(0, std::min<std::size_t>(4, rest.size()));
    const std::string_view columns = rest.substr(counts.size());
    auto count = [&](std::size_t i) { return i < counts.size() ? uint8_t(counts[i]) % 16u : 0u; };
    h.new_series = count(0);
    h.metric_count = count(1);
    h.event_count = count(2);
    h.flow_count = count(3);
    h.raw_size = columns.size();
    write_header(h, body);
    std::string frame(ZSTD_compressBound(columns.size()), '\0');
    frame.resize(ZSTD_compress(frame.data(), frame.size(), columns.data(), columns.size(), 1));
    body += frame;
  } else {
    body = b.second;
    for (std::size_t i = 0; i + 1 < rest.size(); i += 2) {
      body[static_cast<uint8_t>(rest[i]) % body.size()] ^= rest[i + 1];
    }
  }

  const Result r = dec.decode(bytes_of(body));
  const DecoderStats after = dec.stats();
  if (r.status != Status::ok) {
    if (after.series != before.series || after.epochs != before.epochs ||
        dec.high_water() != marks || !r.metrics.empty() ||
        (r.error.empty() && r.status != Status::duplicate))
      __builtin_trap();
  } else {
    if (r.metrics.size() != r.header.metric_count || r.events.size() != r.header.event_count ||
        r.flows.size() != r.header.flow_count || after.series > limits().max_series)
      __builtin_trap();
  }
  return 0;
}
