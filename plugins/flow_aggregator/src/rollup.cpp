#include "rollup.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <cstring>
#include <functional>

namespace outpost::flows {
namespace {
std::size_t hash_bytes(const uint8_t* p, std::size_t n, std::size_t seed) {
  std::size_t h = seed ^ 1469598103934665603ull;
  for (std::size_t i = 0; i < n; ++i) h = (h ^ p[i]) * 1099511628211ull;
  return h;
}
Addr make(const uint8_t* b, uint8_t family) {
  Addr a;
  a.family = family;
  std::memcpy(a.bytes.data(), b, family == 4 ? 4 : 16);
  return a;
}
}  // namespace

std::size_t Rollup::AddrHash::operator()(const Addr& a) const noexcept {
  return hash_bytes(a.bytes.data(), a.family == 4 ? 4 : 16, a.family);
}
std::size_t Rollup::PairHash::operator()(const std::pair<Addr, Addr>& p) const noexcept {
  return AddrHash{}(p.first) * 31 + AddrHash{}(p.second);
}
std::size_t Rollup::IfHash::operator()(const IfKey& k) const noexcept {
  return AddrHash{}(k.exporter) * 31 + (std::size_t{k.ifindex} << 1) + (k.out ? 1 : 0);
}
std::size_t Rollup::TupleHash::operator()(const TupleKey& k) const noexcept {
  return (AddrHash{}(k.src) * 31 + AddrHash{}(k.dst)) ^ (std::size_t{k.sport} << 24) ^
         (std::size_t{k.dport} << 8) ^ k.proto;
}

std::string addr_text(const Addr& a) {
  char buf[INET6_ADDRSTRLEN] = {};
  if (a.family == 4) ::inet_ntop(AF_INET, a.bytes.data(), buf, sizeof buf);
  else if (a.family == 6) ::inet_ntop(AF_INET6, a.bytes.data(), buf, sizeof buf);
  else return "unknown";
  return buf;
}
Addr src_of(const outpost_flow& f) { return make(f.src_addr, f.family); }
Addr dst_of(const outpost_flow& f) { return make(f.dst_addr, f.family); }
Addr exporter_of(const outpost_flow& f) {
  // The exporter's family is not carried; an IPv4 exporter leaves bytes 4..15 zero.
  bool v4 = true;
  for (int i = 4; i < 16; ++i) v4 = v4 && f.exporter_addr[i] == 0;
  return make(f.exporter_addr, v4 ? 4 : 6);
}
uint16_t service_port(const outpost_flow& f) {
  const uint16_t lo = std::min(f.src_port, f.dst_port), hi = std::max(f.src_port, f.dst_port);
  return lo != 0 ? lo : hi;
}

template <typename Map, typename Key>
Volume* Rollup::slot(Map& m, const Key& k, Volume& other) {
  auto it = m.find(k);
  if (it != m.end()) return &it->second;
  if (m.size() >= opt_.max_keys) {
    ++overflow_;
    return &other;
  }
  return &m[k];
}

void Rollup::add(const outpost_flow& f) {
  ++flows_;
  const Addr exp = exporter_of(f);
  if (opt_.dedup) {
    // A flow is counted at the first observation point (exporter, ingress interface) that
    // reports its 5-tuple in this interval; the same tuple from another point is a duplicate.
    const TupleKey key{src_of(f), dst_of(f), f.src_port, f.dst_port, f.protocol};
    const Point here{exp, f.input_if};
    auto it = seen_.find(key);
    if (it != seen_.end() && !(it->second == here)) {
      ++duplicates_;
      ++dup_interval_;
      return;
    }
    if (it == seen_.end() && seen_.size() < opt_.max_keys) seen_.emplace(key, here);
  }
  exporters_[exp].add(f);
  slot(interfaces_, IfKey{exp, f.input_if, false}, other_interfaces_)->add(f);
  slot(interfaces_, IfKey{exp, f.output_if, true}, other_interfaces_)->add(f);
  slot(talkers_, src_of(f), other_talkers_)->add(f);
  slot(conversations_, std::make_pair(src_of(f), dst_of(f)), other_conversations_)->add(f);
  protocols_[f.protocol].add(f);
  slot(applications_, (uint32_t{f.protocol} << 16) | service_port(f), other_apps_)->add(f);
}

namespace {
template <typename Map, typename LabelFn>
void top(const Map& m, const Volume& other_in, std::size_t n, const std::string& name, LabelFn labels,
         std::vector<SummaryRow>& out) {
  std::vector<const typename Map::value_type*> v;
  v.reserve(m.size());
  for (const auto& kv : m) v.push_back(&kv);
  const std::size_t keep = std::min(n, v.size());
  std::partial_sort(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(keep), v.end(),
                    [](auto* a, auto* b) { return a->second.bytes > b->second.bytes; });
  Volume other = other_in;
  for (std::size_t i = 0; i < v.size(); ++i) {
    if (i < keep) {
      auto l = labels(v[i]->first);
      out.push_back({name, l, static_cast<double>(v[i]->second.bytes)});
    } else {
      other.bytes += v[i]->second.bytes;
      other.flows += v[i]->second.flows;
    }
  }
  if (other.bytes > 0 || other.flows > 0) {
    auto l = labels(typename Map::key_type{});
    for (auto& [k, val] : l) val = "other";
    out.push_back({name, l, static_cast<double>(other.bytes)});
  }
}
}  // namespace

std::vector<SummaryRow> Rollup::take() {
  std::vector<SummaryRow> out;
  for (const auto& [exp, v] : exporters_) {
    const std::string e = addr_text(exp);
    out.push_back({"flow_exporter_bytes", {{"exporter", e}}, static_cast<double>(v.bytes)});
    out.push_back({"flow_exporter_packets", {{"exporter", e}}, static_cast<double>(v.packets)});
    out.push_back({"flow_exporter_flows", {{"exporter", e}}, static_cast<double>(v.flows)});
  }
  for (const auto& [k, v] : interfaces_)
    out.push_back({"flow_interface_bytes",
                   {{"exporter", addr_text(k.exporter)}, {"ifindex", std::to_string(k.ifindex)}, {"direction", k.out ? "out" : "in"}},
                   static_cast<double>(v.bytes)});
  if (other_interfaces_.bytes > 0)
    out.push_back({"flow_interface_bytes", {{"exporter", "other"}, {"ifindex", "other"}, {"direction", "other"}},
                   static_cast<double>(other_interfaces_.bytes)});
  top(talkers_, other_talkers_, opt_.top_n, "flow_top_talker_bytes",
      [](const Addr& a) { return std::vector<std::pair<std::string, std::string>>{{"src", addr_text(a)}}; }, out);
  top(conversations_, other_conversations_, opt_.top_n, "flow_top_conversation_bytes",
      [](const std::pair<Addr, Addr>& p) {
        return std::vector<std::pair<std::string, std::string>>{{"src", addr_text(p.first)}, {"dst", addr_text(p.second)}};
      },
      out);
  for (const auto& [p, v] : protocols_)
    out.push_back({"flow_protocol_bytes", {{"protocol", std::to_string(p)}}, static_cast<double>(v.bytes)});
  top(applications_, other_apps_, opt_.top_n, "flow_application_bytes",
      [](uint32_t k) {
        return std::vector<std::pair<std::string, std::string>>{{"protocol", std::to_string(k >> 16)},
                                                                {"port", std::to_string(k & 0xFFFF)}};
      },
      out);
  out.push_back({"flow_duplicates", {}, static_cast<double>(dup_interval_)});
  out.push_back({"flow_rollup_overflow", {}, static_cast<double>(overflow_)});
  exporters_.clear();
  interfaces_.clear();
  talkers_.clear();
  conversations_.clear();
  protocols_.clear();
  applications_.clear();
  seen_.clear();
  other_talkers_ = other_conversations_ = other_interfaces_ = other_apps_ = Volume{};
  dup_interval_ = overflow_ = 0;
  return out;
}

}  // namespace outpost::flows
