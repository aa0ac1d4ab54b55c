// JSON lines encoding shared by the sinks and the command line's --json output. One record per
// line, keys in a fixed order, label and attribute objects in canonical form (keys sorted bytewise,
// a repeated key keeps its last value) so equal label sets always encode to the same bytes.
#pragma once

#include <outpost/plugin.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace outpost::jsonl {

// Appends s as a quoted JSON string. Invalid UTF-8 becomes U+FFFD so the output always parses.
void append_string(std::string& out, std::string_view s);
// Appends v as a JSON number in its shortest round-trip form; NaN and infinities become null.
void append_number(std::string& out, double v);
void append_number(std::string& out, int64_t v);
void append_number(std::string& out, uint64_t v);

// The pairs sorted by key, a repeated key keeping its last occurrence.
std::vector<const outpost_kv*> sorted_pairs(const outpost_kv* kv, std::size_t n);
// Appends the pairs as a canonical JSON object.
void append_object(std::string& out, const outpost_kv* kv, std::size_t n);
std::string canonical_object(const outpost_kv* kv, std::size_t n);
// Appends the pairs as an object in their own order (for rows whose order means something).
void append_pairs(std::string& out, const std::vector<std::pair<std::string, std::string>>& kv);
// Reads back an object of string values, as append_object writes them (any such JSON object, in
// fact), into its pairs in order. False when s is not one.
bool parse_object(std::string_view s, std::vector<std::pair<std::string, std::string>>& out);

// "192.0.2.1" / "2001:db8::1"; empty when the family is neither 4 nor 6.
std::string format_address(const uint8_t (&addr)[16], uint8_t family);

// Each appends one complete line, '\n' included. A zero time_ns is replaced by now_ns.
void append_metric(std::string& out, const outpost_metric& m, int64_t now_ns);
void append_event(std::string& out, const outpost_event& e, int64_t now_ns);
void append_flow(std::string& out, const outpost_flow& f);

}  // namespace outpost::jsonl
