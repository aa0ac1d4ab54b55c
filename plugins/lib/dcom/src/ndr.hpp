// The DCOM stubs' NDR: dcerpc's shared reader and writer, failing with this library's Error.
#pragma once

#include <cstddef>
#include <cstdint>
#include <outpost_lib/dcerpc_ndr.hpp>
#include <outpost_lib/dcom.hpp>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace outpost::lib::dcom::ndr {

[[noreturn]] inline void malformed(const std::string& what) {
  throw Error(Status::protocol, 0, "malformed DCOM data: " + what);
}

using Writer = dcerpc::ndr::Writer;

struct Reader : dcerpc::ndr::Reader {
  Reader(std::span<const uint8_t> data, const char* name)
      : dcerpc::ndr::Reader(data, 0, name, &outpost::lib::dcom::ndr::malformed) {}
};

}  // namespace outpost::lib::dcom::ndr
