// Numeric OIDs and decoded SNMP values, independent of any SNMP library, so profiles, the
// poller's walk logic and a future trap receiver share one representation.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace outpost::snmp {

using Oid = std::vector<uint32_t>;

// "1.3.6.1.2.1.1.5.0" or ".1.3.6.1..."; nullopt on anything else (names are not resolved: no
// MIB files are read anywhere).
std::optional<Oid> parse_oid(std::string_view text);
std::string to_string(const Oid& oid);
bool starts_with(const Oid& oid, const Oid& prefix);
// The sub-identifiers of oid after prefix, dotted ("" when equal).
std::string suffix(const Oid& oid, const Oid& prefix);

// One decoded value of a varbind.
struct Value {
  enum class Type : uint8_t {
    kInteger,
    kUnsigned,  // Gauge32 / Unsigned32
    kCounter32,
    kCounter64,
    kTimeTicks,
    kOctets,
    kOid,
    kIpAddress,
    kFloat,  // net-snmp's opaque float/double
    kNull,
    kNoSuchObject,
    kNoSuchInstance,
    kEndOfMibView,
    kOther,
  };
  Type type = Type::kNull;
  double number = 0;  // numeric types
  std::string text;   // octets as received; OIDs and addresses rendered as text

  bool is_exception() const noexcept {
    return type == Type::kNoSuchObject || type == Type::kNoSuchInstance ||
           type == Type::kEndOfMibView;
  }
  bool is_counter() const noexcept { return type == Type::kCounter32 || type == Type::kCounter64; }
  // Numbers as they are; octet strings that hold a decimal number ("0.15", as UCD-SNMP's
  // laLoad) parsed; nullopt otherwise.
  std::optional<double> as_number() const;
  // A label value: text when printable (trailing NULs dropped), else colon-separated hex (MAC
  // addresses); numbers in shortest form.
  std::string as_label() const;
};

const char* type_name(Value::Type t) noexcept;

struct VarBind {
  Oid oid;
  Value value;
};

// Shortest decimal text of a number, integers without a fraction ("42", "0.5").
std::string format_number(double v);

}  // namespace outpost::snmp
