// libFuzzer: the netflow decoder on version 9 datagrams (see fuzz_common.hpp for the input).
#include "fuzz_common.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  outpost::netflow::fuzz::run(data, size, 9);
  return 0;
}
