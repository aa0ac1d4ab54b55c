// Builds MS-WMIO encodings from a description, as a Windows server lays them out (class name at
// heap offset 0, ValueTable in declaration order, arrays with their elements after the count,
// the strings of a string array right after its references). For the tests and the benchmark:
// never linked into a plugin.
#pragma once

#include <cstdint>
#include <optional>
#include <outpost_lib/wmio.hpp>
#include <string>
#include <vector>

namespace outpost::lib::wmio::testing {

struct PropertyDesc {
  std::string name;
  uint32_t type = kCimString;  // CimType, | kCimArray for an array
  // The class default, as text (several for an array); none: the class gives no default.
  std::optional<std::vector<std::string>> class_default;
  bool inherited = false;  // declared by a superclass (kCimInherited in PropertyType)
};

struct ClassDesc {
  std::string name;
  std::vector<std::string> superclasses;  // nearest first
  std::vector<PropertyDesc> properties;   // declaration order
};

// One property's value in an instance. Text as the decoder renders it: decimal integers,
// reals, true/false, UTF-8 strings, one character for char16. For CIM object values, `objects`
// holds ObjectBlocks (from encode_object_block) instead.
struct ValueDesc {
  bool null = false;
  bool use_default = false;  // NdTable "default" bit: the class default applies
  std::vector<std::string> values;
  std::vector<std::vector<uint8_t>> objects;
};

struct EncodeOptions {
  bool decoration = true;
  std::string server = "WINHOST";
  std::string wmi_namespace = "ROOT\\cimv2";
  bool force_utf16 = false;  // every string as UTF-16, even those 8 bits can hold
};

// ObjectBlocks (no signature): an instance with its class part, a class (ParentClass left empty),
// and an instance without class part (EncodingUnitInstanceNoClass).
std::vector<uint8_t> encode_object_block(const ClassDesc& cls, const std::vector<ValueDesc>& values,
                                         const EncodeOptions& opt = {});
std::vector<uint8_t> encode_class_block(const ClassDesc& cls, const EncodeOptions& opt = {});
std::vector<uint8_t> encode_instance_noclass(const ClassDesc& cls,
                                             const std::vector<ValueDesc>& values,
                                             const EncodeOptions& opt = {});
// An EncodingUnit: signature, ObjectEncodingLength, the block.
std::vector<uint8_t> encoding_unit(const std::vector<uint8_t>& object_block);

// A class shaped like Win32_Process (its 45 properties: strings, uint32/uint64, datetimes) plus
// one property of every other CIM type and arrays, and values for its instance number `n`:
// some NULL, some 8-bit and some UTF-16 strings, an embedded object. Shared by the tests and
// the benchmark. Without `real_scalars` the real32 and real64 scalars are left out (impacket
// 0.10.0 cannot decode an instance that has one).
ClassDesc process_like_class(bool real_scalars = true);
std::vector<ValueDesc> process_like_values(uint32_t n, bool real_scalars = true);

}  // namespace outpost::lib::wmio::testing
