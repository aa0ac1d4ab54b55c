#include "wmio_encoder.hpp"

#include <algorithm>
#include <bit>
#include <charconv>
#include <cstdlib>
#include <stdexcept>

namespace outpost::lib::wmio::testing {
namespace {

using Bytes = std::vector<uint8_t>;

void put(Bytes& b, uint64_t v, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) b.push_back(static_cast<uint8_t>(v >> (8 * i)));
}
void patch32(Bytes& b, std::size_t at, uint32_t v) {
  for (std::size_t i = 0; i < 4; ++i) b[at + i] = static_cast<uint8_t>(v >> (8 * i));
}

std::vector<uint32_t> code_points(const std::string& s) {
  std::vector<uint32_t> out;
  for (std::size_t i = 0; i < s.size();) {
    const auto c = static_cast<uint8_t>(s[i]);
    uint32_t cp = c;
    std::size_t n = 1;
    if (c >= 0xF0) {
      cp = c & 0x07u, n = 4;
    } else if (c >= 0xE0) {
      cp = c & 0x0Fu, n = 3;
    } else if (c >= 0xC0) {
      cp = c & 0x1Fu, n = 2;
    }
    for (std::size_t k = 1; k < n && i + k < s.size(); ++k)
      cp = (cp << 6) | (static_cast<uint8_t>(s[i + k]) & 0x3Fu);
    out.push_back(cp);
    i += n;
  }
  return out;
}

// Encoded-String: 8-bit when every character fits (and UTF-16 is not forced), else UTF-16LE.
void put_string(Bytes& b, const std::string& s, bool force_utf16) {
  const auto cps = code_points(s);
  const bool wide =
      force_utf16 || std::any_of(cps.begin(), cps.end(), [](uint32_t c) { return c > 0xFF; });
  if (!wide) {
    b.push_back(0);
    for (uint32_t c : cps) b.push_back(static_cast<uint8_t>(c));
    b.push_back(0);
    return;
  }
  b.push_back(1);
  for (uint32_t c : cps) {
    if (c >= 0x10000) {
      c -= 0x10000;
      put(b, 0xD800 + (c >> 10), 2);
      put(b, 0xDC00 + (c & 0x3FF), 2);
    } else {
      put(b, c, 2);
    }
  }
  put(b, 0, 2);
}

std::size_t value_size(uint32_t type) {
  if (type & kCimArray) return 4;
  switch (type) {
    case kCimSint8:
    case kCimUint8:
      return 1;
    case kCimSint16:
    case kCimUint16:
    case kCimChar16:
    case kCimBoolean:
      return 2;
    case kCimSint64:
    case kCimUint64:
    case kCimReal64:
      return 8;
    default:
      return 4;
  }
}

const char* type_name(uint32_t base) {
  switch (base) {
    case kCimSint8:
      return "sint8";
    case kCimUint8:
      return "uint8";
    case kCimSint16:
      return "sint16";
    case kCimUint16:
      return "uint16";
    case kCimSint32:
      return "sint32";
    case kCimUint32:
      return "uint32";
    case kCimSint64:
      return "sint64";
    case kCimUint64:
      return "uint64";
    case kCimReal32:
      return "real32";
    case kCimReal64:
      return "real64";
    case kCimBoolean:
      return "boolean";
    case kCimString:
      return "string";
    case kCimDatetime:
      return "datetime";
    case kCimReference:
      return "ref";
    case kCimChar16:
      return "char16";
    case kCimObject:
      return "object";
    default:
      return "unknown";
  }
}

class Builder {
 public:
  explicit Builder(const EncodeOptions& o) : opt_(o) {}
  Bytes heap;

  uint32_t string(const std::string& s) {
    const auto at = static_cast<uint32_t>(heap.size());
    put_string(heap, s, opt_.force_utf16);
    return at;
  }
  uint32_t object(const Bytes& block) {
    const auto at = static_cast<uint32_t>(heap.size());
    put(heap, block.size(), 4);
    heap.insert(heap.end(), block.begin(), block.end());
    return at;
  }

  // One element, inline: numbers and booleans as they are, the rest as heap references.
  void element(Bytes& out, uint32_t base, const std::string& text, const Bytes* obj) {
    switch (base) {
      case kCimSint8:
      case kCimSint16:
      case kCimSint32:
      case kCimSint64: {
        int64_t v = 0;
        std::from_chars(text.data(), text.data() + text.size(), v);
        put(out, static_cast<uint64_t>(v), value_size(base));
        return;
      }
      case kCimUint8:
      case kCimUint16:
      case kCimUint32:
      case kCimUint64: {
        uint64_t v = 0;
        std::from_chars(text.data(), text.data() + text.size(), v);
        put(out, v, value_size(base));
        return;
      }
      case kCimReal32:
        put(out, std::bit_cast<uint32_t>(std::strtof(text.c_str(), nullptr)), 4);
        return;
      case kCimReal64:
        put(out, std::bit_cast<uint64_t>(std::strtod(text.c_str(), nullptr)), 8);
        return;
      case kCimBoolean:
        put(out, text == "true" ? 0xFFFF : 0, 2);
        return;
      case kCimChar16: {
        const auto cps = code_points(text);
        put(out, cps.empty() ? 0 : cps.front(), 2);
        return;
      }
      case kCimObject:
        put(out, object(obj != nullptr ? *obj : Bytes{}), 4);
        return;
      default:
        put(out, string(text), 4);
        return;
    }
  }

  // A property value into a ValueTable slot (arrays: Encoded-Array in the heap).
  void value(Bytes& table, uint32_t type, const std::vector<std::string>& texts,
             const std::vector<Bytes>& objects) {
    if ((type & kCimArray) == 0) {
      const Bytes* obj = objects.empty() ? nullptr : &objects.front();
      element(table, type, texts.empty() ? std::string() : texts.front(), obj);
      return;
    }
    const uint32_t base = type & ~kCimArray;
    const std::size_t count = base == kCimObject ? objects.size() : texts.size();
    const auto at = static_cast<uint32_t>(heap.size());
    put(heap, count, 4);
    if (value_size(base) == 4 && base != kCimSint32 && base != kCimUint32 && base != kCimReal32) {
      // References first, then what they point to, in order (as Windows lays them out).
      const std::size_t refs = heap.size();
      heap.resize(heap.size() + 4 * count);
      for (std::size_t i = 0; i < count; ++i) {
        const uint32_t ref = base == kCimObject ? object(objects[i]) : string(texts[i]);
        patch32(heap, refs + 4 * i, ref);
      }
    } else {
      Bytes items;
      for (const auto& t : texts) element(items, base, t, nullptr);
      heap.insert(heap.end(), items.begin(), items.end());
    }
    put(table, at, 4);
  }

 private:
  const EncodeOptions& opt_;
};

void put_heap(Bytes& out, const Bytes& heap) {
  put(out, heap.size() | 0x80000000u, 4);
  out.insert(out.end(), heap.begin(), heap.end());
}

std::size_t nd_length(std::size_t count) { return (count * 2 + 7) / 8; }

Bytes class_part(const ClassDesc& cls, const EncodeOptions& opt) {
  Builder b(opt);
  const uint32_t name_ref = b.string(cls.name);
  const std::size_t n = cls.properties.size();
  Bytes nd(nd_length(n), 0), table;
  struct Entry {
    std::string name;
    uint32_t name_ref, info_ref;
  };
  std::vector<Entry> entries;
  uint32_t offset = 0;
  std::vector<uint32_t> offsets;
  for (const auto& p : cls.properties) {
    offsets.push_back(offset);
    offset += static_cast<uint32_t>(value_size(p.type));
  }
  for (std::size_t i = 0; i < n; ++i) {
    const auto& p = cls.properties[i];
    const uint32_t pname = b.string(p.name);
    const uint32_t tname =
        b.string(std::string(type_name(p.type & ~kCimArray)) + ((p.type & kCimArray) ? "[]" : ""));
    const auto info = static_cast<uint32_t>(b.heap.size());
    put(b.heap, p.type | (p.inherited ? kCimInherited : 0), 4);
    put(b.heap, i, 2);
    put(b.heap, offsets[i], 4);
    put(b.heap, p.inherited ? 1 : 0, 4);  // ClassOfOrigin
    // PropertyQualifierSet: CIMTYPE (a DictionaryReference) = "uint32" and the like.
    put(b.heap, 4 + 13, 4);
    put(b.heap, 0x8000000Au, 4);
    b.heap.push_back(0x03);
    put(b.heap, kCimString, 4);
    put(b.heap, tname, 4);
    entries.push_back({p.name, pname, info});
    if (p.class_default) {
      b.value(table, p.type, *p.class_default, {});
    } else {
      nd[i / 4] = static_cast<uint8_t>(nd[i / 4] | (1u << ((i % 4) * 2)));
      table.insert(table.end(), value_size(p.type), 0xFF);  // NoValue
    }
  }
  std::sort(entries.begin(), entries.end(), [](const Entry& x, const Entry& y) {
    return std::lexicographical_compare(
        x.name.begin(), x.name.end(), y.name.begin(), y.name.end(),
        [](char a, char c) { return std::tolower(a) < std::tolower(c); });
  });

  Bytes out;
  put(out, 0, 4);  // EncodingLength, patched below
  out.push_back(0);
  put(out, name_ref, 4);
  put(out, nd.size() + table.size(), 4);
  Bytes deriv;
  for (const auto& s : cls.superclasses) {
    Bytes str;
    put_string(str, s, opt.force_utf16);
    deriv.insert(deriv.end(), str.begin(), str.end());
    put(deriv, str.size(), 4);
  }
  put(out, deriv.size() + 4, 4);
  out.insert(out.end(), deriv.begin(), deriv.end());
  // ClassQualifierSet: dynamic = TRUE.
  put(out, 4 + 11, 4);
  put(out, 0x80000007u, 4);
  out.push_back(0);
  put(out, kCimBoolean, 4);
  put(out, 0xFFFF, 2);
  put(out, n, 4);
  for (const auto& e : entries) {
    put(out, e.name_ref, 4);
    put(out, e.info_ref, 4);
  }
  out.insert(out.end(), nd.begin(), nd.end());
  out.insert(out.end(), table.begin(), table.end());
  put_heap(out, b.heap);
  patch32(out, 0, static_cast<uint32_t>(out.size()));
  return out;
}

Bytes empty_class_part() {
  Bytes out;
  put(out, 0x1D, 4);
  out.push_back(0);
  put(out, 0xFFFFFFFFu, 4);
  put(out, 0, 4);
  put(out, 4, 4);  // DerivationList
  put(out, 4, 4);  // ClassQualifierSet
  put(out, 0, 4);  // PropertyCount
  put(out, 0x80000000u, 4);
  return out;
}

void methods_part(Bytes& out) {
  put(out, 12, 4);
  put(out, 0, 2);
  put(out, 0, 2);
  put(out, 0x80000000u, 4);
}

Bytes instance_part(const ClassDesc& cls, const std::vector<ValueDesc>& values,
                    const EncodeOptions& opt) {
  if (values.size() != cls.properties.size()) throw std::invalid_argument("one value per property");
  Builder b(opt);
  const uint32_t name_ref = b.string(cls.name);
  const std::size_t n = cls.properties.size();
  Bytes nd(nd_length(n), 0), table;
  for (std::size_t i = 0; i < n; ++i) {
    const auto& p = cls.properties[i];
    const auto& v = values[i];
    if (v.null || v.use_default) {
      const unsigned bit = v.null ? 1u : 2u;
      nd[i / 4] = static_cast<uint8_t>(nd[i / 4] | (bit << ((i % 4) * 2)));
      table.insert(table.end(), value_size(p.type), 0);
    } else {
      b.value(table, p.type, v.values, v.objects);
    }
  }
  Bytes out;
  put(out, 0, 4);
  out.push_back(0);  // InstanceFlags
  put(out, name_ref, 4);
  out.insert(out.end(), nd.begin(), nd.end());
  out.insert(out.end(), table.begin(), table.end());
  put(out, 4, 4);    // InstanceQualifierSet: none
  out.push_back(1);  // InstPropQualSetFlag: no property qualifiers
  put_heap(out, b.heap);
  patch32(out, 0, static_cast<uint32_t>(out.size()));
  return out;
}

void header(Bytes& out, uint8_t flags, const EncodeOptions& opt) {
  out.push_back(static_cast<uint8_t>(flags | (opt.decoration ? 0x04 : 0)));
  if (opt.decoration) {
    put_string(out, opt.server, false);
    put_string(out, opt.wmi_namespace, false);
  }
}

}  // namespace

std::vector<uint8_t> encode_object_block(const ClassDesc& cls, const std::vector<ValueDesc>& values,
                                         const EncodeOptions& opt) {
  Bytes out;
  header(out, 0x02, opt);
  const Bytes c = class_part(cls, opt);
  out.insert(out.end(), c.begin(), c.end());
  const Bytes i = instance_part(cls, values, opt);
  out.insert(out.end(), i.begin(), i.end());
  return out;
}

std::vector<uint8_t> encode_class_block(const ClassDesc& cls, const EncodeOptions& opt) {
  Bytes out;
  header(out, 0x01, opt);
  const Bytes parent = empty_class_part();
  out.insert(out.end(), parent.begin(), parent.end());
  methods_part(out);
  const Bytes c = class_part(cls, opt);
  out.insert(out.end(), c.begin(), c.end());
  methods_part(out);
  return out;
}

std::vector<uint8_t> encode_instance_noclass(const ClassDesc& cls,
                                             const std::vector<ValueDesc>& values,
                                             const EncodeOptions& opt) {
  Bytes out;
  header(out, 0x02, opt);
  const Bytes i = instance_part(cls, values, opt);
  out.insert(out.end(), i.begin(), i.end());
  return out;
}

std::vector<uint8_t> encoding_unit(const std::vector<uint8_t>& block) {
  Bytes out;
  put(out, 0x12345678u, 4);
  put(out, block.size(), 4);
  out.insert(out.end(), block.begin(), block.end());
  return out;
}

}  // namespace outpost::lib::wmio::testing

namespace outpost::lib::wmio::testing {

ClassDesc process_like_class(bool real_scalars) {
  ClassDesc c;
  c.name = "Win32_Process";
  c.superclasses = {"CIM_Process", "CIM_LogicalElement", "CIM_ManagedSystemElement"};
  const std::pair<const char*, uint32_t> props[] = {
      {"Caption", kCimString},
      {"CommandLine", kCimString},
      {"CreationClassName", kCimString},
      {"CreationDate", kCimDatetime},
      {"CSCreationClassName", kCimString},
      {"CSName", kCimString},
      {"Description", kCimString},
      {"ExecutablePath", kCimString},
      {"ExecutionState", kCimUint16},
      {"Handle", kCimString},
      {"HandleCount", kCimUint32},
      {"InstallDate", kCimDatetime},
      {"KernelModeTime", kCimUint64},
      {"MaximumWorkingSetSize", kCimUint32},
      {"MinimumWorkingSetSize", kCimUint32},
      {"Name", kCimString},
      {"OSCreationClassName", kCimString},
      {"OSName", kCimString},
      {"OtherOperationCount", kCimUint64},
      {"OtherTransferCount", kCimUint64},
      {"PageFaults", kCimUint32},
      {"PageFileUsage", kCimUint32},
      {"ParentProcessId", kCimUint32},
      {"PeakPageFileUsage", kCimUint32},
      {"PeakVirtualSize", kCimUint64},
      {"PeakWorkingSetSize", kCimUint32},
      {"Priority", kCimUint32},
      {"PrivatePageCount", kCimUint64},
      {"ProcessId", kCimUint32},
      {"QuotaNonPagedPoolUsage", kCimUint32},
      {"QuotaPagedPoolUsage", kCimUint32},
      {"QuotaPeakNonPagedPoolUsage", kCimUint32},
      {"QuotaPeakPagedPoolUsage", kCimUint32},
      {"ReadOperationCount", kCimUint64},
      {"ReadTransferCount", kCimUint64},
      {"SessionId", kCimUint32},
      {"Status", kCimString},
      {"TerminationDate", kCimDatetime},
      {"ThreadCount", kCimUint32},
      {"UserModeTime", kCimUint64},
      {"VirtualSize", kCimUint64},
      {"WindowsVersion", kCimString},
      {"WorkingSetSize", kCimUint64},
      {"WriteOperationCount", kCimUint64},
      {"WriteTransferCount", kCimUint64},
      // Beyond Win32_Process: the other CIM types.
      {"XSint8", kCimSint8},
      {"XUint8", kCimUint8},
      {"XSint16", kCimSint16},
      {"XSint32", kCimSint32},
      {"XSint64", kCimSint64},
      {"XReal32", kCimReal32},
      {"XReal64", kCimReal64},
      {"XBoolean", kCimBoolean},
      {"XChar16", kCimChar16},
      {"XReference", kCimReference},
      {"XStrings", kCimString | kCimArray},
      {"XUint32s", kCimUint32 | kCimArray},
      {"XUint64s", kCimUint64 | kCimArray},
      {"XSint16s", kCimSint16 | kCimArray},
      {"XBooleans", kCimBoolean | kCimArray},
      {"XReal64s", kCimReal64 | kCimArray},
      {"XObject", kCimObject},
  };
  for (const auto& [name, type] : props) {
    if (!real_scalars && (type == kCimReal32 || type == kCimReal64)) continue;
    PropertyDesc p;
    p.name = name;
    p.type = type;
    p.inherited = std::string_view(name) == "Caption" || std::string_view(name) == "Name";
    c.properties.push_back(std::move(p));
  }
  return c;
}

std::vector<ValueDesc> process_like_values(uint32_t n, bool real_scalars) {
  const ClassDesc c = process_like_class(real_scalars);
  std::vector<ValueDesc> out(c.properties.size());
  const std::string exe = n % 3 == 0 ? "svchost.exe" : (n % 3 == 1 ? "café.exe" : "процесс.exe");
  const uint64_t big = 0xFFFFFFF0ull * (n + 1) + n;
  for (std::size_t i = 0; i < c.properties.size(); ++i) {
    const auto& p = c.properties[i];
    ValueDesc& v = out[i];
    const std::string& name = p.name;
    if (name == "InstallDate" || name == "TerminationDate" ||
        (name == "CommandLine" && n % 4 == 3) || (name == "ExecutablePath" && n % 5 == 4)) {
      v.null = true;
      continue;
    }
    switch (p.type) {
      case kCimString:
        if (name == "Name" || name == "Caption") {
          v.values = {exe};
        } else if (name == "CommandLine") {
          v.values = {"C:\\Windows\\system32\\" + exe + " -k netsvcs -p -s Schedule " +
                      std::to_string(n)};
        } else if (name == "ExecutablePath") {
          v.values = {"C:\\Windows\\system32\\" + exe};
        } else if (name == "Handle") {
          v.values = {std::to_string(1000 + n)};
        } else {
          v.values = {name + " value " + std::to_string(n % 7)};
        }
        break;
      case kCimDatetime:
        v.values = {"20261205" + std::to_string(100000 + n % 89999).substr(0, 6) + ".123456+060"};
        break;
      case kCimUint16:
        v.values = {std::to_string((n * 7) % 65536)};
        break;
      case kCimUint32:
        v.values = {std::to_string(static_cast<uint32_t>(n * 2654435761u + i))};
        break;
      case kCimUint64:
        v.values = {std::to_string(big + i)};
        break;
      case kCimSint8:
        v.values = {std::to_string(-static_cast<int>(n % 128))};
        break;
      case kCimUint8:
        v.values = {std::to_string(n % 256)};
        break;
      case kCimSint16:
        v.values = {std::to_string(-static_cast<int>(n % 30000))};
        break;
      case kCimSint32:
        v.values = {std::to_string(-static_cast<int64_t>(n) * 1000)};
        break;
      case kCimSint64:
        v.values = {std::to_string(-static_cast<int64_t>(big))};
        break;
      case kCimReal32:
        v.values = {n % 2 ? "0.25" : "1.5e+20"};
        break;
      case kCimReal64:
        v.values = {n % 2 ? "0.1" : "-2.5e-300"};
        break;
      case kCimBoolean:
        v.values = {n % 2 ? "true" : "false"};
        break;
      case kCimChar16:
        v.values = {n % 2 ? "Z" : "€"};
        break;
      case kCimReference:
        v.values = {"\\\\WINHOST\\root\\cimv2:Win32_Process.Handle=\"" + std::to_string(n) + "\""};
        break;
      case kCimString | kCimArray:
        v.values = {"alpha", "βeta", std::to_string(n), ""};
        break;
      case kCimUint32 | kCimArray:
        v.values = {"1", "2", std::to_string(n)};
        break;
      case kCimUint64 | kCimArray:
        v.values = {std::to_string(big), "0"};
        break;
      case kCimSint16 | kCimArray:
        v.values = {"-32768", "32767"};
        break;
      case kCimBoolean | kCimArray:
        v.values = {"true", "false", "true"};
        break;
      case kCimReal64 | kCimArray:
        v.values = {"3.25", "-0.5"};
        break;
      case kCimObject: {
        ClassDesc inner;
        inner.name = "Win32_ProcessStartup";
        inner.properties = {{"ShowWindow", kCimUint16, std::nullopt, false}};
        EncodeOptions o;
        o.decoration = false;
        v.objects = {encode_object_block(inner, {ValueDesc{false, false, {"5"}, {}}}, o)};
        break;
      }
      default:
        v.null = true;
        break;
    }
  }
  return out;
}

}  // namespace outpost::lib::wmio::testing
