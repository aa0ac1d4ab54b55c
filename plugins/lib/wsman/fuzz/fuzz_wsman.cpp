// libFuzzer target: a SOAP answer, the encrypted multipart body and base64, as a server sends
// them. The first byte picks the decoder. Only wsman::Error may come out, and the limits hold.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <outpost_lib/wsman.hpp>
#include <string_view>

namespace ws = outpost::lib::wsman;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  const std::string_view in(reinterpret_cast<const char*>(data + 1), size - 1);
  try {
    switch (data[0] % 3) {
      case 0: {
        ws::ParseLimits lim;
        lim.max_items = 50;
        lim.max_properties = 20;
        lim.max_depth = 16;
        const ws::Response r = ws::parse(in, lim);
        if (r.items.size() > lim.max_items) std::abort();
        for (const auto& i : r.items)
          if (i.properties.size() > lim.max_properties) std::abort();
        if (r.fault) (void)r.fault->text(), (void)r.fault->status();
        break;
      }
      case 1: {
        const auto part = ws::parse_encrypted_body(in, ws::kSpnegoEncrypted);
        if (part.sealed.data() < in.data() ||
            part.sealed.data() + part.sealed.size() > in.data() + in.size())
          std::abort();
        (void)ws::split_ntlm_sealed(part.sealed);
        break;
      }
      default: {
        auto d = ws::base64_decode(in);
        if (d && ws::base64_decode(ws::base64_encode(*d)) != d) std::abort();
        break;
      }
    }
  } catch (const ws::Error&) {
  }
  return 0;
}
