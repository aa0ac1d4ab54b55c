#include <algorithm>
#include <array>
#include <bit>
#include <charconv>
#include <cstring>
#include <outpost_lib/wmio.hpp>

namespace outpost::lib::wmio {
namespace {

constexpr uint32_t kSignature = 0x12345678;
constexpr uint8_t kFlagClass = 0x01, kFlagInstance = 0x02, kFlagDecoration = 0x04;
constexpr uint32_t kNoValue = 0xFFFFFFFF;
constexpr uint32_t kDictionaryBit = 0x80000000;

// DictionaryReference (2.2.80): a HeapStringRef with the high bit set names one of these.
constexpr std::array<std::string_view, 11> kDictionary = {
    "\"",       "key",     "",         "read",  "write",  "volatile",
    "provider", "dynamic", "cimwin32", "DWORD", "CIMTYPE"};

std::string fold(std::string_view s) {
  std::string out(s);
  for (char& c : out)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return out;
}

// A bounded little-endian reader over one block.
class Reader {
 public:
  Reader(std::span<const uint8_t> data, const char* what) : d_(data), what_(what) {}
  std::size_t pos() const { return pos_; }
  std::size_t left() const { return d_.size() - pos_; }
  std::span<const uint8_t> rest() const { return d_.subspan(pos_); }
  std::span<const uint8_t> take(std::size_t n) {
    need(n);
    auto s = d_.subspan(pos_, n);
    pos_ += n;
    return s;
  }
  void skip(std::size_t n) { (void)take(n); }
  uint8_t u8() { return take(1)[0]; }
  uint16_t u16() {
    auto s = take(2);
    return static_cast<uint16_t>(s[0] | (s[1] << 8));
  }
  uint32_t u32() {
    auto s = take(4);
    return static_cast<uint32_t>(s[0]) | (static_cast<uint32_t>(s[1]) << 8) |
           (static_cast<uint32_t>(s[2]) << 16) | (static_cast<uint32_t>(s[3]) << 24);
  }

 private:
  void need(std::size_t n) const {
    if (n > left()) throw Error(std::string("truncated ") + what_);
  }
  std::span<const uint8_t> d_;
  std::size_t pos_ = 0;
  const char* what_;
};

uint64_t le(std::span<const uint8_t> s) {
  uint64_t v = 0;
  for (std::size_t i = s.size(); i-- > 0;) v = (v << 8) | s[i];
  return v;
}

void put_utf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

// A Heap (2.2.66): offsets count from the first octet after HeapLength.
struct Heap {
  std::span<const uint8_t> bytes;

  // Encoded-String (2.2.78): flag 0, 8-bit characters (the low byte of UTF-16: Latin-1); flag 1,
  // UTF-16LE; both end with a null character.
  std::string string_at(uint32_t ref) const {
    if (ref & kDictionaryBit) {
      const uint32_t i = ref & ~kDictionaryBit;
      if (i >= kDictionary.size()) throw Error("unknown dictionary reference");
      return std::string(kDictionary[i]);
    }
    if (ref >= bytes.size()) throw Error("string reference past the heap");
    const uint8_t flag = bytes[ref];
    std::string out;
    if (flag == 0) {
      const uint8_t* b = bytes.data() + ref + 1;
      const uint8_t* e = bytes.data() + bytes.size();
      const uint8_t* z =
          static_cast<const uint8_t*>(std::memchr(b, 0, static_cast<std::size_t>(e - b)));
      if (z == nullptr) throw Error("unterminated string in the heap");
      out.reserve(static_cast<std::size_t>(z - b));
      for (const uint8_t* p = b; p < z; ++p) {
        if (*p < 0x80) {
          out += static_cast<char>(*p);
        } else {
          put_utf8(out, *p);
        }
      }
      return out;
    }
    if (flag != 1) throw Error("string with an unknown encoding flag");
    std::size_t i = ref + 1;
    for (;;) {
      if (i + 2 > bytes.size()) throw Error("unterminated string in the heap");
      uint32_t u = static_cast<uint32_t>(bytes[i] | (bytes[i + 1] << 8));
      i += 2;
      if (u == 0) break;
      if (u >= 0xD800 && u < 0xDC00 && i + 2 <= bytes.size()) {
        const uint32_t lo = static_cast<uint32_t>(bytes[i] | (bytes[i + 1] << 8));
        if (lo >= 0xDC00 && lo < 0xE000) {
          i += 2;
          u = 0x10000 + ((u - 0xD800) << 10) + (lo - 0xDC00);
        }
      }
      if (u >= 0xD800 && u < 0xE000) u = 0xFFFD;  // a lone surrogate
      put_utf8(out, u);
    }
    return out;
  }
  Reader at(uint32_t ref, const char* what) const {
    if (ref >= bytes.size()) throw Error(std::string(what) + " reference past the heap");
    return Reader(bytes.subspan(ref), what);
  }
};

Heap read_heap(Reader& r) {
  const uint32_t len = r.u32();
  if ((len & kDictionaryBit) == 0) throw Error("heap length without its high bit");
  return Heap{r.take(len & ~kDictionaryBit)};
}

// The octets of the Encoded-String at the reader's position (flag, characters, terminator).
std::span<const uint8_t> take_encoded_string(Reader& r) {
  const auto rest = r.rest();
  if (rest.empty()) throw Error("truncated string");
  std::size_t n = 1;
  if (rest[0] == 0) {
    while (n < rest.size() && rest[n] != 0) ++n;
    n += 1;
  } else {
    while (n + 1 < rest.size() && (rest[n] != 0 || rest[n + 1] != 0)) n += 2;
    n += 2;
  }
  if (n > rest.size()) throw Error("unterminated string");
  return r.take(n);
}

void skip_decoration(Reader& r) {  // DecServerName DecNamespaceName
  (void)take_encoded_string(r);
  (void)take_encoded_string(r);
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
    case kCimSint32:
    case kCimUint32:
    case kCimReal32:
    case kCimString:
    case kCimDatetime:
    case kCimReference:
    case kCimObject:
      return 4;
    case kCimSint64:
    case kCimUint64:
    case kCimReal64:
      return 8;
    default:
      throw Error("property of an unknown CIM type");
  }
}

template <typename T>
std::string number(T v) {
  char buf[64];
  const auto res = std::to_chars(buf, buf + sizeof buf, v);
  return std::string(buf, res.ptr);
}

struct Decoder {
  const Limits& limits;
  std::size_t* spent;  // text produced so far by this decode, nested objects included
  std::size_t depth = 0;
  std::string last_class;  // of the last object_block

  // Heap references may point many values at one long string: the text they make is bounded.
  void charge(std::size_t n) {
    *spent += n + sizeof(std::string);
    if (*spent > limits.max_text_bytes) throw Error("values longer in all than the limit");
  }

  std::vector<wql::Instance> object_block(std::span<const uint8_t> block, ClassCache& cache,
                                          std::string_view class_id = {});
  std::shared_ptr<const ClassDef> class_part(Reader& r, ClassCache* cache);
  void skip_class_part(Reader& r);
  void skip_methods_part(Reader& r);
  wql::Instance instance_part(Reader& r, const ClassDef& cls);
  void value(std::string& out, uint32_t base, std::span<const uint8_t> inline_value,
             const Heap& heap);
  void values(std::vector<std::string>& out, uint32_t type, std::span<const uint8_t> inline_value,
              const Heap& heap);
  std::string embedded(uint32_t ref, const Heap& heap);
};

void Decoder::value(std::string& out, uint32_t base, std::span<const uint8_t> v, const Heap& heap) {
  const uint64_t raw = le(v);
  switch (base) {
    case kCimSint8:
      out = number(static_cast<int8_t>(raw));
      return;
    case kCimUint8:
      out = number(static_cast<uint8_t>(raw));
      return;
    case kCimSint16:
      out = number(static_cast<int16_t>(raw));
      return;
    case kCimUint16:
      out = number(static_cast<uint16_t>(raw));
      return;
    case kCimSint32:
      out = number(static_cast<int32_t>(raw));
      return;
    case kCimUint32:
      out = number(static_cast<uint32_t>(raw));
      return;
    case kCimSint64:
      out = number(static_cast<int64_t>(raw));
      return;
    case kCimUint64:
      out = number(raw);
      return;
    case kCimReal32:
      out = number(std::bit_cast<float>(static_cast<uint32_t>(raw)));
      return;
    case kCimReal64:
      out = number(std::bit_cast<double>(raw));
      return;
    case kCimBoolean:
      out = raw != 0 ? "true" : "false";
      return;
    case kCimChar16: {
      uint32_t u = static_cast<uint16_t>(raw);
      if (u >= 0xD800 && u < 0xE000) u = 0xFFFD;
      out.clear();
      put_utf8(out, u);
      return;
    }
    case kCimString:
    case kCimDatetime:
    case kCimReference:
      out = heap.string_at(static_cast<uint32_t>(raw));
      return;
    case kCimObject:
      out = embedded(static_cast<uint32_t>(raw), heap);
      return;
    default:
      throw Error("value of an unknown CIM type");
  }
}

void Decoder::values(std::vector<std::string>& out, uint32_t type,
                     std::span<const uint8_t> inline_value, const Heap& heap) {
  if ((type & kCimArray) == 0) {
    out.emplace_back();
    value(out.back(), type, inline_value, heap);
    charge(out.back().size());
    return;
  }
  // Encoded-Array (2.2.79): ArrayCount, then the elements as they would sit in a ValueTable.
  const uint32_t base = type & ~kCimArray;
  Reader a = heap.at(static_cast<uint32_t>(le(inline_value)), "array");
  const uint32_t count = a.u32();
  const std::size_t size = value_size(base);
  if (count > limits.max_array_items) throw Error("array longer than the limit");
  if (static_cast<uint64_t>(count) * size > a.left()) throw Error("array past the heap");
  out.reserve(count);
  for (uint32_t i = 0; i < count; ++i) {
    out.emplace_back();
    value(out.back(), base, a.take(size), heap);
    charge(out.back().size());
  }
}

// An embedded object: ObjectEncodingLength, then an ObjectBlock, in the heap.
std::string Decoder::embedded(uint32_t ref, const Heap& heap) {
  Reader r = heap.at(ref, "embedded object");
  const uint32_t len = r.u32();
  if (len > r.left()) throw Error("embedded object past the heap");
  if (depth + 1 > limits.max_depth) throw Error("objects nested deeper than the limit");
  Decoder inner{limits, spent, depth + 1, {}};
  ClassCache scratch(4);
  auto items = inner.object_block(r.take(len), scratch);
  return "<object " + (items.empty() ? inner.last_class : items.front().class_name) + ">";
}

void Decoder::skip_methods_part(Reader& r) {
  const uint32_t len = r.u32();
  if (len < 4) throw Error("methods part shorter than its length field");
  r.skip(len - 4);
}

void Decoder::skip_class_part(Reader& r) {
  Reader peek(r.rest(), "class part");
  const uint32_t len = peek.u32();
  if (len < 4) throw Error("class part shorter than its length field");
  r.skip(len);
}

// ClassPart (2.2.15): ClassHeader DerivationList ClassQualifierSet PropertyLookupTable NdTable
// ValueTable ClassHeap, all within ClassHeader's EncodingLength.
std::shared_ptr<const ClassDef> Decoder::class_part(Reader& outer, ClassCache* cache) {
  Reader peek(outer.rest(), "class part");
  const uint32_t total = peek.u32();
  if (total < 13) throw Error("class part shorter than its header");
  const std::span<const uint8_t> bytes = outer.take(total);
  if (cache != nullptr) {
    if (auto known = cache->find_encoding(bytes)) return known;
  }
  Reader r(bytes, "class part");
  r.skip(4);
  r.skip(1);  // ReservedOctet
  const uint32_t name_ref = r.u32();
  const uint32_t nd_value_length = r.u32();

  auto cls = std::make_shared<ClassDef>();
  cls->nd_value_length = nd_value_length;

  // DerivationList: EncodingLength, then (Encoded-String, its length) per superclass.
  const uint32_t deriv_len = r.u32();
  if (deriv_len < 4) throw Error("derivation list shorter than its length field");
  Reader d(r.take(deriv_len - 4), "derivation list");
  std::vector<std::span<const uint8_t>> supers;
  while (d.left() > 0) {
    supers.push_back(take_encoded_string(d));
    d.skip(4);  // the string's length
    if (supers.size() > 256) throw Error("derivation list longer than the limit");
  }

  const uint32_t qual_len = r.u32();  // ClassQualifierSet: only skipped
  if (qual_len < 4) throw Error("qualifier set shorter than its length field");
  r.skip(qual_len - 4);

  const uint32_t count = r.u32();
  if (count > limits.max_properties) throw Error("class with more properties than the limit");
  if (static_cast<uint64_t>(count) * 8 > r.left()) throw Error("truncated property lookup table");
  auto lookup = r.take(static_cast<std::size_t>(count) * 8);
  const std::size_t nd_len = (static_cast<std::size_t>(count) * 2 + 7) / 8;
  if (nd_value_length < nd_len) throw Error("value table shorter than its NdTable");
  auto nd_value = r.take(nd_value_length);
  const Heap heap = read_heap(r);

  cls->name = name_ref == kNoValue ? std::string() : heap.string_at(name_ref);
  for (auto s : supers) {
    Heap h{s};
    cls->superclasses.push_back(h.string_at(0));
  }

  struct Raw {
    uint16_t order;
    PropertyDef def;
  };
  std::vector<Raw> props;
  props.reserve(count);
  const auto nd = nd_value.first(nd_len);
  const auto table = nd_value.subspan(nd_len);
  for (uint32_t i = 0; i < count; ++i) {
    Reader l(lookup.subspan(static_cast<std::size_t>(i) * 8, 8), "property lookup");
    const uint32_t name = l.u32();
    const uint32_t info_ref = l.u32();
    Reader info = heap.at(info_ref, "property info");
    Raw p;
    p.def.name = heap.string_at(name);
    p.def.type = info.u32() & ~kCimInherited;
    p.order = info.u16();
    p.def.value_offset = info.u32();
    (void)value_size(p.def.type & ~kCimArray);  // an unknown type fails here
    if (static_cast<uint64_t>(p.def.value_offset) + value_size(p.def.type) > table.size())
      throw Error("property value past the value table");
    props.push_back(std::move(p));
  }
  std::sort(props.begin(), props.end(),
            [](const Raw& a, const Raw& b) { return a.order < b.order; });
  for (std::size_t i = 0; i < props.size(); ++i) {
    if (props[i].order != i) throw Error("property declaration order with gaps or repeats");
  }
  cls->properties.reserve(props.size());
  for (std::size_t i = 0; i < props.size(); ++i) {
    PropertyDef& p = props[i].def;
    const unsigned bits = (nd[i / 4] >> ((i % 4) * 2)) & 3u;
    p.default_null = (bits & 1u) != 0;
    if (!p.default_null) {
      const auto v = table.subspan(p.value_offset, value_size(p.type));
      // NoValue in a HeapRef slot: the class gives no default after all.
      if (value_size(p.type) == 4 && le(v) == kNoValue &&
          ((p.type & kCimArray) || p.type == kCimString || p.type == kCimDatetime ||
           p.type == kCimReference || p.type == kCimObject)) {
        p.default_null = true;
      } else {
        values(p.default_values, p.type, v, heap);
      }
    }
    cls->properties.push_back(std::move(p));
  }
  cls->encoding.assign(bytes.begin(), bytes.end());
  return cls;
}

// The instance's own part (2.2.53 after CurrentClass): EncodingLength InstanceFlags
// InstanceClassName NdTable InstanceData InstanceQualifierSet InstanceHeap.
wql::Instance Decoder::instance_part(Reader& outer, const ClassDef& cls) {
  Reader peek(outer.rest(), "instance");
  const uint32_t total = peek.u32();
  if (total < 9) throw Error("instance shorter than its header");
  Reader r(outer.take(total), "instance");
  r.skip(4);
  r.skip(1);  // InstanceFlags
  const uint32_t name_ref = r.u32();
  const std::size_t count = cls.properties.size();
  const std::size_t nd_len = (count * 2 + 7) / 8;
  auto nd_value = r.take(cls.nd_value_length);
  const uint32_t qual_len = r.u32();
  if (qual_len < 4) throw Error("qualifier set shorter than its length field");
  r.skip(qual_len - 4);
  const uint8_t prop_quals = r.u8();
  if (prop_quals == 2) {  // one QualifierSet per property
    for (std::size_t i = 0; i < count; ++i) {
      const uint32_t n = r.u32();
      if (n < 4) throw Error("qualifier set shorter than its length field");
      r.skip(n - 4);
    }
  } else if (prop_quals != 1) {
    throw Error("instance property qualifier flag neither 1 nor 2");
  }
  const Heap heap = read_heap(r);

  wql::Instance inst;
  inst.class_name = name_ref == kNoValue ? cls.name : heap.string_at(name_ref);
  if (inst.class_name.empty()) inst.class_name = cls.name;
  inst.properties.resize(count);
  const auto nd = nd_value.first(nd_len);
  const auto table = nd_value.subspan(nd_len);
  for (std::size_t i = 0; i < count; ++i) {
    const PropertyDef& def = cls.properties[i];
    wql::Property& p = inst.properties[i];
    p.name = def.name;
    const unsigned bits = (nd[i / 4] >> ((i % 4) * 2)) & 3u;
    if (bits & 1u) {
      p.null = true;
    } else if (bits & 2u) {  // the class default
      p.values = def.default_values;
      for (const auto& v : p.values) charge(v.size());
      p.null = def.default_null;
    } else {
      const std::size_t size = value_size(def.type);
      if (static_cast<uint64_t>(def.value_offset) + size > table.size())
        throw Error("property value past the value table");
      values(p.values, def.type, table.subspan(def.value_offset, size), heap);
    }
  }
  return inst;
}

// ObjectBlock (2.2.5): ObjectFlags [Decoration] Encoding.
std::vector<wql::Instance> Decoder::object_block(std::span<const uint8_t> block, ClassCache& cache,
                                                 std::string_view class_id) {
  if (block.size() > limits.max_object_bytes) throw Error("object larger than the limit");
  Reader r(block, "object block");
  const uint8_t flags = r.u8();
  const bool is_class = (flags & kFlagClass) != 0, is_instance = (flags & kFlagInstance) != 0;
  if (is_class == is_instance) throw Error("object neither class nor instance");
  if (flags & kFlagDecoration) skip_decoration(r);
  if (is_class) {  // ClassType: ParentClass CurrentClass, each ClassPart MethodsPart
    skip_class_part(r);
    skip_methods_part(r);
    auto cls = class_part(r, &cache);
    skip_methods_part(r);
    last_class = cls->name;
    cache.put(std::move(cls), class_id);
    return {};
  }
  auto cls = class_part(r, &cache);
  std::vector<wql::Instance> out;
  out.push_back(instance_part(r, *cls));
  last_class = out.back().class_name;
  cache.put(std::move(cls), class_id);
  return out;
}

}  // namespace

std::shared_ptr<const ClassDef> ClassCache::find(std::string_view name) const {
  auto it = classes_.find(fold(name));
  return it == classes_.end() ? nullptr : it->second;
}

std::shared_ptr<const ClassDef> ClassCache::find_encoding(std::span<const uint8_t> enc) const {
  if (last_ && last_->encoding.size() == enc.size() &&
      std::equal(enc.begin(), enc.end(), last_->encoding.begin()))
    return last_;
  return nullptr;
}

void ClassCache::put(std::shared_ptr<const ClassDef> cls, std::string_view class_id) {
  if (!cls) return;
  for (std::string_view k : {std::string_view(cls->name), class_id}) {
    if (k.empty()) continue;
    std::string key = fold(k);
    auto it = classes_.find(key);
    if (it != classes_.end()) {
      it->second = cls;
      continue;
    }
    if (classes_.size() >= max_) classes_.clear();
    classes_.emplace(std::move(key), cls);
  }
  last_ = std::move(cls);
}

std::vector<wql::Instance> decode(std::span<const uint8_t> unit, ClassCache& cache,
                                  const Limits& limits) {
  Reader r(unit, "encoding unit");
  if (r.u32() != kSignature) throw Error("encoding unit without the signature 0x12345678");
  const uint32_t len = r.u32();
  if (len > limits.max_object_bytes) throw Error("object larger than the limit");
  // MS-WMIO 3's own example states a length larger than the octets that follow: the blocks
  // inside carry their own lengths, which are what is checked.
  std::size_t spent = 0;
  Decoder d{limits, &spent, 0, {}};
  return d.object_block(r.take(std::min<std::size_t>(len, r.left())), cache);
}

std::vector<wql::Instance> decode_object_block(std::span<const uint8_t> block, ClassCache& cache,
                                               std::string_view class_id, const Limits& limits) {
  std::size_t spent = 0;
  Decoder d{limits, &spent, 0, {}};
  return d.object_block(block, cache, class_id);
}

std::vector<wql::Instance> decode_instance_noclass(std::span<const uint8_t> object,
                                                   ClassCache& cache, std::string_view class_id,
                                                   const Limits& limits) {
  if (object.size() > limits.max_object_bytes) throw Error("object larger than the limit");
  const auto cls = cache.find(class_id);
  if (!cls) throw Error("instance of a class not seen before");
  Reader r(object, "instance");
  const uint8_t flags = r.u8();
  if ((flags & kFlagClass) || !(flags & kFlagInstance))
    throw Error("instance without class part that is not an instance");
  if (flags & kFlagDecoration) skip_decoration(r);
  std::size_t spent = 0;
  Decoder d{limits, &spent, 0, {}};
  std::vector<wql::Instance> out;
  out.push_back(d.instance_part(r, *cls));
  return out;
}

}  // namespace outpost::lib::wmio
