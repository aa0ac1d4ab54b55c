#include "rollup.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <cstring>
#include <functional>

namespace outpost::flows {
namespace {
Addr make(const uint8_t* b, uint8_t family) {
  Addr a;
  a.family = family;
  std::memcpy(a.bytes.data(), b, family == 4 ? 4 : 16);
  return a;
}
}  // namespace

std::string addr_text(const Addr& a) {
  char buf[INET6_ADDRSTRLEN] = {};
  if (a.family == 4)
    ::inet_ntop(AF_INET, a.bytes.data(), buf, sizeof buf);
  else if (a.family == 6)
    ::inet_ntop(AF_INET6, a.bytes.data(), buf, sizeof buf);
  else
    return "unknown";
  return buf;
}
Addr src_of(const outpost_flow& f) { return make(f.src_addr, f.family); }
Addr dst_of(const outpost_flow& f) { return make(f.dst_addr, f.family); }
Addr exporter_of(const outpost_flow& f) {
  return make(f.exporter_addr, outpost_flow_exporter_family(&f));
}
uint16_t service_port(uint16_t a, uint16_t b) {
  const uint16_t lo = std::min(a, b), hi = std::max(a, b);
  return lo != 0 ? lo : hi;
}
uint16_t service_port(const outpost_flow& f) { return service_port(f.src_port, f.dst_port); }

template <typename Map, typename Key>
Volume* Rollup::slot(Map& m, const Key& k, Volume& other) {
  if (Volume* v = m.find(k)) return v;
  if (m.size() >= opt_.max_keys) {
    ++overflow_;
    return &other;
  }
  return &m[k];
}

void Rollup::add_direct(const Addr& exp, const Addr& src, const Addr& dst, uint32_t in_if,
                        uint32_t out_if, uint8_t proto, uint16_t sport, uint16_t dport,
                        const Volume& v) {
  exporters_[exp].add(v);
  IfKey in{};
  in.ifindex = in_if;
  in.exporter = exp;
  IfKey out = in;
  out.ifindex = out_if;
  out.out = 1;
  slot(interfaces_, in, other_interfaces_)->add(v);
  slot(interfaces_, out, other_interfaces_)->add(v);
  slot(talkers_, src, other_talkers_)->add(v);
  slot(conversations_, ConvKey{src, dst}, other_conversations_)->add(v);
  protocols_[proto].add(v);
  slot(applications_, (uint32_t{proto} << 16) | service_port(sport, dport), other_apps_)->add(v);
}

namespace {
uint64_t word(const uint8_t* p) {
  uint64_t w;
  std::memcpy(&w, p, 8);
  return w;
}
uint32_t word32(const uint8_t* p) {
  uint32_t w;
  std::memcpy(&w, p, 4);
  return w;
}
Addr addr_of(const uint64_t* w, uint8_t family) {
  Addr a;
  a.family = family;
  std::memcpy(a.bytes.data(), w, family == 4 ? 4 : 16);
  return a;
}
}  // namespace

Addr Rollup::TupleKey::src() const { return addr_of(w, static_cast<uint8_t>(w[4] >> 8)); }
Addr Rollup::TupleKey::dst() const { return addr_of(w + 2, static_cast<uint8_t>(w[4] >> 8)); }

void Rollup::add(const outpost_flow& f) {
  ++flows_;
  TupleKey key;
  if (f.family == 4) {
    key.w[0] = word32(f.src_addr);
    key.w[2] = word32(f.dst_addr);
  } else {
    key.w[0] = word(f.src_addr);
    key.w[1] = word(f.src_addr + 8);
    key.w[2] = word(f.dst_addr);
    key.w[3] = word(f.dst_addr + 8);
  }
  key.w[4] = uint64_t{f.protocol} | uint64_t{f.family} << 8 | uint64_t{f.src_port} << 16 |
             uint64_t{f.dst_port} << 32;
  const uint64_t e0 = word(f.exporter_addr), e1 = word(f.exporter_addr + 8);
  const uint8_t efam = outpost_flow_exporter_family(&f);
  Volume v;
  v.add(f);
  if (TupleEntry* e = tuples_.find(key)) {
    const bool same_point = e->exporter[0] == e0 && e->exporter[1] == e1 &&
                            e->exporter_family == efam && e->in_if == f.input_if;
    if (same_point && e->out_if == f.output_if) {
      e->volume.add(v);
      return;
    }
    // A flow is counted at the first observation point (exporter, ingress interface) that
    // reports its 5-tuple in this interval; the same tuple from another point is a duplicate.
    if (opt_.dedup && !same_point) {
      ++duplicates_;
      ++dup_interval_;
      return;
    }
    // The same point with another egress interface, or another point without dedup.
  } else if (tuples_.size() < opt_.max_keys) {
    TupleEntry& n = tuples_[key];
    n.exporter[0] = e0;
    n.exporter[1] = e1;
    n.exporter_family = efam;
    n.in_if = f.input_if;
    n.out_if = f.output_if;
    n.volume = v;
    return;
  }
  add_direct(exporter_of(f), key.src(), key.dst(), f.input_if, f.output_if, f.protocol, f.src_port,
             f.dst_port, v);
}

namespace {
template <typename Key, typename LabelFn>
void top(const FlatMap<Key, Volume>& m, const Volume& other_in, std::size_t n,
         const std::string& name, LabelFn labels, std::vector<SummaryRow>& out) {
  std::vector<std::pair<Key, Volume>> v;
  v.reserve(m.size());
  m.for_each([&](const Key& k, const Volume& val) { v.emplace_back(k, val); });
  const std::size_t keep = std::min(n, v.size());
  std::partial_sort(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(keep), v.end(),
                    [](const auto& a, const auto& b) { return a.second.bytes > b.second.bytes; });
  Volume other = other_in;
  for (std::size_t i = 0; i < v.size(); ++i) {
    if (i < keep) {
      out.push_back({name, labels(v[i].first), static_cast<double>(v[i].second.bytes)});
    } else {
      other.bytes += v[i].second.bytes;
      other.flows += v[i].second.flows;
    }
  }
  if (other.bytes > 0 || other.flows > 0) {
    auto l = labels(Key{});
    for (auto& [k, val] : l) val = "other";
    out.push_back({name, l, static_cast<double>(other.bytes)});
  }
}
}  // namespace

std::vector<SummaryRow> Rollup::take() {
  tuples_.for_each([&](const TupleKey& k, const TupleEntry& e) {
    add_direct(make(reinterpret_cast<const uint8_t*>(e.exporter), e.exporter_family), k.src(),
               k.dst(), e.in_if, e.out_if, k.proto(), k.sport(), k.dport(), e.volume);
  });
  std::vector<SummaryRow> out;
  exporters_.for_each([&](const Addr& exp, const Volume& v) {
    const std::string e = addr_text(exp);
    out.push_back({"flow_exporter_bytes", {{"exporter", e}}, static_cast<double>(v.bytes)});
    out.push_back({"flow_exporter_packets", {{"exporter", e}}, static_cast<double>(v.packets)});
    out.push_back({"flow_exporter_flows", {{"exporter", e}}, static_cast<double>(v.flows)});
  });
  interfaces_.for_each([&](const IfKey& k, const Volume& v) {
    out.push_back({"flow_interface_bytes",
                   {{"exporter", addr_text(k.exporter)},
                    {"ifindex", std::to_string(k.ifindex)},
                    {"direction", k.out ? "out" : "in"}},
                   static_cast<double>(v.bytes)});
  });
  if (other_interfaces_.bytes > 0)
    out.push_back({"flow_interface_bytes",
                   {{"exporter", "other"}, {"ifindex", "other"}, {"direction", "other"}},
                   static_cast<double>(other_interfaces_.bytes)});
  top(
      talkers_, other_talkers_, opt_.top_n, "flow_top_talker_bytes",
      [](const Addr& a) {
        return std::vector<std::pair<std::string, std::string>>{{"src", addr_text(a)}};
      },
      out);
  top(
      conversations_, other_conversations_, opt_.top_n, "flow_top_conversation_bytes",
      [](const ConvKey& p) {
        return std::vector<std::pair<std::string, std::string>>{{"src", addr_text(p.src)},
                                                                {"dst", addr_text(p.dst)}};
      },
      out);
  for (std::size_t p = 0; p < protocols_.size(); ++p)
    if (protocols_[p].flows > 0)
      out.push_back({"flow_protocol_bytes",
                     {{"protocol", std::to_string(p)}},
                     static_cast<double>(protocols_[p].bytes)});
  top(
      applications_, other_apps_, opt_.top_n, "flow_application_bytes",
      [](uint32_t k) {
        return std::vector<std::pair<std::string, std::string>>{
            {"protocol", std::to_string(k >> 16)}, {"port", std::to_string(k & 0xFFFF)}};
      },
      out);
  out.push_back({"flow_duplicates", {}, static_cast<double>(dup_interval_)});
  out.push_back({"flow_rollup_overflow", {}, static_cast<double>(overflow_)});
  exporters_.clear();
  interfaces_.clear();
  talkers_.clear();
  conversations_.clear();
  protocols_.fill(Volume{});
  applications_.clear();
  tuples_.clear();
  other_talkers_ = other_conversations_ = other_interfaces_ = other_apps_ = Volume{};
  dup_interval_ = overflow_ = 0;
  return out;
}

}  // namespace outpost::flows
