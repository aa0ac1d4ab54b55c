// Plugins whose C++ code throws: "throws_sdk" goes through the SDK's trampolines (which turn the
// exception into a status), "throws_raw" lets it reach the host's boundary guard.
#include <outpost/sdk.hpp>
#include <stdexcept>

#ifdef VARIANT_THROWS_SDK
namespace {
class Thrower : public outpost::Poller {
 public:
  Thrower(outpost::Host, const outpost::Config&) {
    throw std::runtime_error("refusing to be created");
  }
  void poll(const outpost::PollRequest&) override {}
};
}  // namespace
OUTPOST_PLUGIN(Thrower, "throws_sdk", "0.0.1", "throws in create, through the SDK")
#else
namespace {
outpost_status raw_create(const outpost_host_api*, outpost_host*, const outpost_kv*, size_t,
                          outpost_instance**) {
  throw std::runtime_error("thrown straight at the host");
}
void raw_destroy(outpost_instance*) {}
outpost_status raw_poll(outpost_instance*, const outpost_poll_request*) { return OUTPOST_OK; }
}  // namespace
extern "C" OUTPOST_EXPORT const outpost_plugin_descriptor* outpost_plugin_entry(uint32_t) {
  static const outpost_plugin_descriptor d = [] {
    outpost_plugin_descriptor x{};
    x.magic = OUTPOST_PLUGIN_MAGIC;
    x.abi_version = OUTPOST_ABI_VERSION;
    x.struct_size = sizeof x;
    x.kinds = OUTPOST_KIND_POLLER;
    x.name = outpost::to_c("throws_raw");
    x.version = outpost::to_c("0.0.1");
    x.description = outpost::to_c("throws in create without the SDK");
    x.create = raw_create;
    x.destroy = raw_destroy;
    x.poll = raw_poll;
    return x;
  }();
  return &d;
}
#endif
