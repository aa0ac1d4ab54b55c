/* The ABI header must compile as C11 and give C the same layout as C++: the C++ test compares
 * these with its own offsetof values. */
#include <outpost/plugin.h>
#include <stddef.h>

size_t outpost_abi_c_layout(size_t* out, size_t cap);

size_t outpost_abi_c_layout(size_t* out, size_t cap) {
  const size_t v[] = {
      sizeof(outpost_str),          sizeof(outpost_kv),
      sizeof(outpost_metric),       offsetof(outpost_metric, time_ns),
      sizeof(outpost_event),        offsetof(outpost_event, attributes),
      sizeof(outpost_flow),         offsetof(outpost_flow, bytes),
      sizeof(outpost_batch),        offsetof(outpost_batch, flow_count),
      sizeof(outpost_target),       sizeof(outpost_poll_request),
      sizeof(outpost_datagram),     sizeof(outpost_host_api),
      offsetof(outpost_host_api, reply), sizeof(outpost_field),
      sizeof(outpost_plugin_descriptor), offsetof(outpost_plugin_descriptor, create),
      offsetof(outpost_plugin_descriptor, flush),
  };
  size_t n = sizeof v / sizeof v[0];
  for (size_t i = 0; i < n && i < cap; ++i) out[i] = v[i];
  return n;
}
