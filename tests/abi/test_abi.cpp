// Layout goldens on LP64. A change here breaks every plugin built before it: grow structs only
// at their end, in a minor release, and add the new offsets below. The frozen headers of each
// release (sdk/abi/<version>/) are compiled as C too and must agree member by member.
#include <outpost/plugin.h>

#include <catch2/catch.hpp>
#include <cstddef>

extern "C" size_t outpost_abi_c_layout(size_t* out, size_t cap);
extern "C" size_t outpost_abi_c_layout_1_0(size_t* out, size_t cap);
extern "C" size_t outpost_abi_c_layout_1_1(size_t* out, size_t cap);
extern "C" size_t outpost_abi_c_layout_1_2(size_t* out, size_t cap);
extern "C" size_t outpost_abi_c_layout_1_3(size_t* out, size_t cap);
extern "C" size_t outpost_abi_c_layout_1_4(size_t* out, size_t cap);

namespace {
// The order of abi_c11.c: 1.0's entries, then each minor's.
const std::size_t kGolden[] = {
    16,  32,   // str, kv
    56,  40,   // metric, metric.time_ns
    80,  64,   // event, event.attributes
    104, 88,   // flow, flow.bytes
    64,  56,   // batch, batch.flow_count
    64,  40,   // target.tag_count, poll_request
    56,  72,   // datagram, host_api.reply
    56,        // field
    104, 168,  // descriptor.create, .flush
    84,        // 1.1: flow.exporter_family
    80,  176,  // 1.2: host_api.set_timer, descriptor.timer,
    72,  88,   //      target.labels, target (an element: its size travels as target_size)
    184, 88,   //      descriptor.command, command_plan
    88,  192,  // 1.3: host_api.purpose, descriptor.read,
    64,  56,   //      read_request, read_request.limit,
    72,  64,   //      column, column.label_count,
    32,        //      read_row
    96,  200,  // 1.4: host_api.retry_after, descriptor.write_spooled,
    56,  48,   //      write_info, write_info.oldest_ns,
    32,        //      spool_range
};
constexpr std::size_t kEntries10 = 17, kEntries11 = 18, kEntries12 = 24, kEntries13 = 31,
                      kEntries14 = 36;
}  // namespace

TEST_CASE("ABI layout goldens (LP64), in C++ and in C11, for every released header") {
  static_assert(sizeof(void*) == 8, "goldens are for LP64");
  const std::size_t cpp[] = {
      sizeof(outpost_str),
      sizeof(outpost_kv),
      sizeof(outpost_metric),
      offsetof(outpost_metric, time_ns),
      sizeof(outpost_event),
      offsetof(outpost_event, attributes),
      sizeof(outpost_flow),
      offsetof(outpost_flow, bytes),
      sizeof(outpost_batch),
      offsetof(outpost_batch, flow_count),
      offsetof(outpost_target, tag_count),
      sizeof(outpost_poll_request),
      sizeof(outpost_datagram),
      offsetof(outpost_host_api, reply),
      sizeof(outpost_field),
      offsetof(outpost_plugin_descriptor, create),
      offsetof(outpost_plugin_descriptor, flush),
      offsetof(outpost_flow, exporter_family),
      offsetof(outpost_host_api, set_timer),
      offsetof(outpost_plugin_descriptor, timer),
      offsetof(outpost_target, labels),
      sizeof(outpost_target),
      offsetof(outpost_plugin_descriptor, command),
      sizeof(outpost_command_plan),
      offsetof(outpost_host_api, purpose),
      offsetof(outpost_plugin_descriptor, read),
      sizeof(outpost_read_request),
      offsetof(outpost_read_request, limit),
      sizeof(outpost_column),
      offsetof(outpost_column, label_count),
      sizeof(outpost_read_row),
      offsetof(outpost_host_api, retry_after),
      offsetof(outpost_plugin_descriptor, write_spooled),
      sizeof(outpost_write_info),
      offsetof(outpost_write_info, oldest_ns),
      sizeof(outpost_spool_range),
  };
  static_assert(sizeof(cpp) / sizeof(cpp[0]) == kEntries14);
  static_assert(sizeof(kGolden) / sizeof(kGolden[0]) == kEntries14);
  struct Release {
    const char* name;
    size_t (*layout)(size_t*, size_t);
    std::size_t entries;
  };
  const Release releases[] = {
      {"1.0", outpost_abi_c_layout_1_0, kEntries10}, {"1.1", outpost_abi_c_layout_1_1, kEntries11},
      {"1.2", outpost_abi_c_layout_1_2, kEntries12}, {"1.3", outpost_abi_c_layout_1_3, kEntries13},
      {"1.4", outpost_abi_c_layout_1_4, kEntries14}, {"current", outpost_abi_c_layout, kEntries14}};
  for (const auto& r : releases) {
    std::size_t c[40] = {};
    INFO("header " << r.name);
    REQUIRE(r.layout(c, 40) == r.entries);
    for (std::size_t i = 0; i < r.entries; ++i) {
      INFO("entry " << i);
      CHECK(c[i] == kGolden[i]);
      CHECK(cpp[i] == kGolden[i]);
    }
  }
  CHECK(sizeof(outpost_host_api) == 104);
  CHECK(sizeof(outpost_plugin_descriptor) == 208);
  CHECK(OUTPOST_ABI_VERSION == 0x10004u);
  CHECK(OUTPOST_STATUS_CLASS(OUTPOST_E_TIMEOUT) == OUTPOST_CLASS_RETRY);
  CHECK(OUTPOST_STATUS_CLASS(OUTPOST_E_AUTH) == OUTPOST_CLASS_OPERATOR);
  CHECK(OUTPOST_STATUS_CLASS(OUTPOST_E_INTERNAL) == OUTPOST_CLASS_BUG);
}

TEST_CASE(
    "ABI 1.1: outpost_flow.exporter_family took reserved0's place; 0 means the flow's family") {
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
