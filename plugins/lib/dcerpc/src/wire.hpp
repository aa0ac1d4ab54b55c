// The PDU codec's and the endpoint mapper's NDR: the shared reader and writer, failing with
// this library's Error.
#pragma once

#include <outpost_lib/dcerpc.hpp>
#include <outpost_lib/dcerpc_ndr.hpp>
#include <string>

namespace outpost::lib::dcerpc::wire {

[[noreturn]] inline void malformed(const std::string& what) {
  throw Error(Status::protocol, 0, "malformed DCE/RPC data: " + what);
}

using Writer = ndr::Writer;

struct Cursor : ndr::Reader {
  Cursor(std::span<const uint8_t> data, std::size_t start, const char* name)
      : ndr::Reader(data, start, name, &outpost::lib::dcerpc::wire::malformed) {}
};

}  // namespace outpost::lib::dcerpc::wire
