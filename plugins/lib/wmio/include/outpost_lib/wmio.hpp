// WMI objects as DCOM carries them (MS-WMIO), decoded into the WMI instances both Windows
// pollers share (wql::Instance). IEnumWbemClassObject::Next hands out OBJREF_CUSTOM blobs whose
// object data is an EncodingUnit (signature 0x12345678, length, ObjectBlock); the smart
// enumerator's ObjectArray (MS-WMI 2.2.14) carries bare ObjectBlocks and, after the first
// instance of a class, instances without their class part (EncodingUnitInstanceNoClass), which
// are decoded against the class kept in a ClassCache.
//
// Values become text: integers in decimal, reals in their shortest round-trip form, booleans
// true/false, strings (8-bit or UTF-16 on the wire) in UTF-8, datetimes and references as the
// strings they are, char16 as one UTF-8 character, arrays as several values, an embedded object
// as "<object CLASS>". A property that is NULL is `null`; one the instance leaves at its class
// default takes the class's default value.
//
// The bytes come from the network: every offset, count and length is checked against the block
// that holds it and against Limits; a malformed object throws Error and nothing else.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <outpost_lib/wql.hpp>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace outpost::lib::wmio {

// What went wrong, in one sentence safe to log (no bytes of the object are quoted).
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct Limits {
  std::size_t max_object_bytes = 64u << 20;  // one encoding unit
  std::size_t max_properties = 4096;         // of one class
  std::size_t max_array_items = 1u << 20;    // of one array value
  std::size_t max_depth = 8;                 // embedded objects within embedded objects
  std::size_t max_classes = 1024;            // kept by one ClassCache
  std::size_t max_text_bytes = 64u << 20;    // all values of one object, as text
};

// CimType (MS-WMIO 2.2.82); an array type is the base type | kCimArray.
enum CimType : uint32_t {
  kCimSint16 = 2,
  kCimSint32 = 3,
  kCimReal32 = 4,
  kCimReal64 = 5,
  kCimString = 8,
  kCimBoolean = 11,
  kCimObject = 13,
  kCimSint8 = 16,
  kCimUint8 = 17,
  kCimUint16 = 18,
  kCimUint32 = 19,
  kCimSint64 = 20,
  kCimUint64 = 21,
  kCimDatetime = 101,
  kCimReference = 102,
  kCimChar16 = 103,
};
inline constexpr uint32_t kCimArray = 0x2000;
inline constexpr uint32_t kCimInherited = 0x4000;  // in PropertyType: declared by a superclass

// A property of a decoded class, in declaration order.
struct PropertyDef {
  std::string name;
  uint32_t type = 0;                        // CimType with kCimArray, without kCimInherited
  uint32_t value_offset = 0;                // into the ValueTable
  bool default_null = true;                 // the class gives no default value
  std::vector<std::string> default_values;  // the class default, as text
};

struct ClassDef {
  std::string name;
  std::vector<std::string> superclasses;  // DerivationList: nearest first
  std::vector<PropertyDef> properties;    // declaration order
  uint32_t nd_value_length = 0;           // NdTable + ValueTable, octets
  std::vector<uint8_t> encoding;          // the ClassPart as received (to spot a repeat cheaply)
};

// The classes seen in one enumeration (or one connection to one namespace), by name, case
// folded as WMI compares names. At most Limits::max_classes; a full cache starts over.
class ClassCache {
 public:
  explicit ClassCache(std::size_t max_classes = Limits{}.max_classes) : max_(max_classes) {}
  std::shared_ptr<const ClassDef> find(std::string_view name) const;
  // Under its name and, when given, under `class_id` too (the smart enumerator's classID).
  void put(std::shared_ptr<const ClassDef> cls, std::string_view class_id = {});
  std::size_t size() const { return classes_.size(); }
  void clear() { classes_.clear(), last_.reset(); }
  // The class whose ClassPart is byte for byte `encoding`, if the cache holds it.
  std::shared_ptr<const ClassDef> find_encoding(std::span<const uint8_t> encoding) const;

 private:
  std::size_t max_;
  std::map<std::string, std::shared_ptr<const ClassDef>, std::less<>> classes_;
  std::shared_ptr<const ClassDef> last_;
};

// An EncodingUnit (MS-WMIO 2.2.1): the object data of an OBJREF_CUSTOM. An instance gives one
// Instance; a class gives none and goes into the cache (as does every instance's class).
std::vector<wql::Instance> decode(std::span<const uint8_t> encoding_unit, ClassCache& cache,
                                  const Limits& limits = {});
// An EncodingUnitObjectBlock (2.2.2): the ObjectData of WBEMOBJECT_CLASS / WBEMOBJECT_INSTANCE
// (MS-WMI 2.2.14.2-3). Its class is also kept under `class_id` (the packet's classID as text).
std::vector<wql::Instance> decode_object_block(std::span<const uint8_t> object_block,
                                               ClassCache& cache, std::string_view class_id = {},
                                               const Limits& limits = {});
// An EncodingUnitInstanceNoClass (2.2.3): the ObjectData of WBEMOBJECT_INSTANCE_NOCLASS, which
// omits the class part. Its class is the one kept under `class_id` (or that class name) by an
// earlier object of the enumeration; none: Error.
std::vector<wql::Instance> decode_instance_noclass(std::span<const uint8_t> object,
                                                   ClassCache& cache, std::string_view class_id,
                                                   const Limits& limits = {});

}  // namespace outpost::lib::wmio
