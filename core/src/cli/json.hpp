// The core's own JSON lines writer, for `outpost poll --json`, `outpost snmp ... --json` and
// `outpost query --json`: the same encoding as the file sink's (plugins/file/README.md: keys in a
// fixed order, canonical label objects, shortest round-trip numbers, invalid UTF-8 as U+FFFD),
// written here so the core links no plugin library. tests/unit/test_json.cpp holds it to the
// sinks' encoder byte for byte.
#pragma once

#include <outpost/plugin.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace outpost::core::json {

// s as a quoted JSON string.
void append_string(std::string& out, std::string_view s);
// Shortest round-trip form; NaN and infinities become null.
void append_number(std::string& out, double v);
void append_number(std::string& out, int64_t v);
void append_number(std::string& out, uint64_t v);
// A canonical object: keys sorted bytewise, a repeated key keeps its last value.
void append_object(std::string& out, const outpost_kv* kv, std::size_t n);
// An object of the pairs in their order.
void append_pairs(std::string& out, const std::vector<std::pair<std::string, std::string>>& kv);

// "192.0.2.1" / "2001:db8::1"; empty when the family is neither 4 nor 6.
std::string format_address(const uint8_t (&addr)[16], uint8_t family);

// One complete line each, '\n' included, as the file sink writes it. A zero time_ns is now_ns.
void append_metric(std::string& out, const outpost_metric& m, int64_t now_ns);
void append_event(std::string& out, const outpost_event& e, int64_t now_ns);
void append_flow(std::string& out, const outpost_flow& f);

}  // namespace outpost::core::json
