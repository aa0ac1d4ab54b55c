// Arbitrary bytes as the response stubs a DCOM server sends: an Error, never a crash, never
// unbounded memory. The first byte picks the decoder (and, for Next, how many objects were
// asked for).
#include <cstddef>
#include <cstdint>
#include <outpost_lib/dcom.hpp>
#include <span>

namespace dcom = outpost::lib::dcom;

namespace {

// Touches what a caller reads of an OBJREF, so that the fuzzer sees it used.
std::size_t use(const dcom::ObjRef& o) {
  std::size_t n = o.object_data.size();
  for (const auto& b : o.bindings) n += b.host().size() + b.port().value_or(0);
  return n;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::span<const uint8_t> in(data + 1, size - 1);
  volatile std::size_t sink = 0;
  try {
    switch (data[0] % 6) {
      case 0: {
        const auto a = dcom::decode_remote_create_instance(in);
        sink = use(a.object) + a.bindings.size();
        break;
      }
      case 1:
        sink = use(dcom::decode_interface_result(in, "NTLMLogin"));
        break;
      case 2:
        if (const auto o = dcom::decode_exec_method(in)) sink = use(*o);
        break;
      case 3: {
        const auto r = dcom::decode_enum_next(in, data[0] / 6);
        for (const auto& o : r.objects) sink = sink + use(o);
        break;
      }
      case 4:
        dcom::decode_rem_release(in);
        break;
      default:
        sink = use(dcom::decode_objref(in));
        break;
    }
  } catch (const dcom::Error&) {
  }
  (void)sink;
  return 0;
}
