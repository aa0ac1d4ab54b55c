// The --out file's lines: every decoded item as one JSON object, exactly (a double's bits go
// along with its shortest decimal form, so NaN payloads and -0.0 survive).
#pragma once

#include <outpost_lib/uplink_wire.hpp>
#include <string>

namespace outpost::receiver {

void append_items(std::string& out, const lib::wire::Result& r);

}  // namespace outpost::receiver
