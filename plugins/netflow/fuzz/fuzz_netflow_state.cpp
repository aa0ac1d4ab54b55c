// libFuzzer: the template state file is read back at start; a damaged or hostile file must be
// refused line by line, and what loads must save and load again unchanged.
#include <cstdlib>
#include <string>
#include <string_view>

#include "decoder.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace outpost::netflow;
  Limits l;
  l.max_templates = 16;
  Decoder d(l);
  d.load(std::string_view(reinterpret_cast<const char*>(data), size));
  const std::string saved = d.save();
  Decoder e(l);
  std::size_t bad = 0;
  e.load(saved, &bad);
  if (bad != 0 || e.save() != saved) std::abort();
  return 0;
}
