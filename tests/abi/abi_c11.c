/* The ABI header must compile as C11 and give C the same layout as C++. This file is compiled
 * once per released header (sdk/abi/1.0 ... 1.4) and once against the current one, with
 * OUTPOST_ABI_LAYOUT_FN naming the function; the C++ test checks that every member a release
 * had keeps its offset in every later header. */
#include <outpost/plugin.h>
#include <stddef.h>

size_t OUTPOST_ABI_LAYOUT_FN(size_t* out, size_t cap);

size_t OUTPOST_ABI_LAYOUT_FN(size_t* out, size_t cap) {
  const size_t v[] = {
    /* 1.0 */
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
#if OUTPOST_ABI_MINOR >= 1u
    /* 1.1 */
    offsetof(outpost_flow, exporter_family),
#endif
#if OUTPOST_ABI_MINOR >= 2u
    /* 1.2 */
    offsetof(outpost_host_api, set_timer),
    offsetof(outpost_plugin_descriptor, timer),
    offsetof(outpost_target, labels),
    sizeof(outpost_target),
    offsetof(outpost_plugin_descriptor, command),
    sizeof(outpost_command_plan),
#endif
#if OUTPOST_ABI_MINOR >= 3u
    /* 1.3 */
    offsetof(outpost_host_api, purpose),
    offsetof(outpost_plugin_descriptor, read),
    sizeof(outpost_read_request),
    offsetof(outpost_read_request, limit),
    sizeof(outpost_column),
    offsetof(outpost_column, label_count),
    sizeof(outpost_read_row),
#endif
#if OUTPOST_ABI_MINOR >= 4u
    /* 1.4 */
    offsetof(outpost_host_api, retry_after),
    offsetof(outpost_plugin_descriptor, write_spooled),
    sizeof(outpost_write_info),
    offsetof(outpost_write_info, oldest_ns),
    sizeof(outpost_spool_range),
#endif
  };
  size_t n = sizeof v / sizeof v[0];
  for (size_t i = 0; i < n && i < cap; ++i) out[i] = v[i];
  return n;
}
