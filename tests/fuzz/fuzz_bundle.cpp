// libFuzzer target: a management bundle comes from the network before anything about it is
// trusted, so its parser must give a reason, never a crash, a hang or a read out of bounds.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "management/bundle.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace outpost::core::mgmt;
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  Bundle b;
  std::string why;
  if (!parse_bundle(bytes, b, why)) {
    if (why.empty()) std::abort();  // every refusal has a reason
    return 0;
  }
  if (b.signed_bytes.size() + kSignatureSize != size) std::abort();
  // What parses, written again by the writer, parses to the same manifest.
  const std::string again =
      bundle_signed_part(b.manifest, b.payload) + std::string(kSignatureSize, '\0');
  Bundle c;
  if (!parse_bundle(again, c, why) || c.payload != b.payload ||
      manifest_text(c.manifest) != manifest_text(b.manifest))
    std::abort();
  return 0;
}
