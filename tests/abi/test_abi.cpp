// Layout goldens of ABI 1.0 on LP64. A change here breaks every plugin built before it: grow
// structs only at their end, in a minor release, and add the new offsets below.
#include <catch2/catch.hpp>
#include <outpost/plugin.h>

#include <cstddef>

extern "C" size_t outpost_abi_c_layout(size_t* out, size_t cap);

TEST_CASE("ABI 1.0 layout goldens (LP64)") {
  static_assert(sizeof(void*) == 8, "goldens are for LP64");
  const std::size_t expected[] = {
      16, 32,         // str, kv
      56, 40,         // metric, metric.time_ns
      80, 64,         // event, event.attributes
      104, 88,        // flow, flow.bytes
      64, 56,         // batch, batch.flow_count
      72, 40,         // target, poll_request
      56, 80, 72,     // datagram, host_api, host_api.reply
      56,             // field
      176, 104, 168,  // descriptor, .create, .flush
  };
  const std::size_t cpp[] = {
      sizeof(outpost_str), sizeof(outpost_kv), sizeof(outpost_metric), offsetof(outpost_metric, time_ns),
      sizeof(outpost_event), offsetof(outpost_event, attributes), sizeof(outpost_flow),
      offsetof(outpost_flow, bytes), sizeof(outpost_batch), offsetof(outpost_batch, flow_count),
      sizeof(outpost_target), sizeof(outpost_poll_request), sizeof(outpost_datagram),
      sizeof(outpost_host_api), offsetof(outpost_host_api, reply), sizeof(outpost_field),
      sizeof(outpost_plugin_descriptor), offsetof(outpost_plugin_descriptor, create),
      offsetof(outpost_plugin_descriptor, flush),
  };
  std::size_t c[32] = {};
  const std::size_t n = outpost_abi_c_layout(c, 32);
  REQUIRE(n == sizeof(expected) / sizeof(expected[0]));
  for (std::size_t i = 0; i < n; ++i) {
    INFO("entry " << i);
    CHECK(cpp[i] == expected[i]);
    CHECK(c[i] == expected[i]);
  }
  CHECK(OUTPOST_ABI_VERSION == 0x10001u);
  CHECK(OUTPOST_STATUS_CLASS(OUTPOST_E_TIMEOUT) == OUTPOST_CLASS_RETRY);
  CHECK(OUTPOST_STATUS_CLASS(OUTPOST_E_AUTH) == OUTPOST_CLASS_OPERATOR);
  CHECK(OUTPOST_STATUS_CLASS(OUTPOST_E_INTERNAL) == OUTPOST_CLASS_BUG);
}

TEST_CASE("ABI 1.1: outpost_flow.exporter_family took reserved0's place; 0 means the flow's family") {
  CHECK(offsetof(outpost_flow, exporter_family) == 84);
  CHECK(sizeof(outpost_flow) == 104);
  outpost_flow f{};
  f.family = 6;
  CHECK(outpost_flow_exporter_family(&f) == 6);  // as a 1.0 producer writes it
  f.exporter_family = 4;
  CHECK(outpost_flow_exporter_family(&f) == 4);
  f.exporter_family = 9;  // not a family: the 1.0 reading
  CHECK(outpost_flow_exporter_family(&f) == 6);
}

TEST_CASE("OUTPOST_HAS sees only members inside the producer's struct_size") {
  outpost_host_api api{};
  api.struct_size = static_cast<uint32_t>(offsetof(outpost_host_api, complete));
  CHECK(OUTPOST_HAS(&api, outpost_host_api, monotonic_ns));
  CHECK_FALSE(OUTPOST_HAS(&api, outpost_host_api, complete));
  CHECK_FALSE(OUTPOST_HAS(&api, outpost_host_api, reply));
}
