#include "probe.hpp"

#include <algorithm>
#include <cstdio>

namespace outpost::snmp {

namespace {

constexpr long kTooBig = 1;
constexpr long kNoSuchName = 2;

std::string list_oids(const std::vector<Oid>& all, const std::vector<std::size_t>& which) {
  if (which.empty()) return {};
  std::string s = to_string(all[which.front()]);
  if (which.size() > 1) s += " and " + std::to_string(which.size() - 1) + " more";
  return s;
}

// The bytes as text when every one is printable ASCII or white space (as net-snmp decides
// between STRING and Hex-STRING), else nullopt.
bool ascii_text(const std::string& s) {
  for (const char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    const bool space = c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
    if (!space && (c < 0x20 || c > 0x7e)) return false;
  }
  return true;
}

std::string hex_bytes(const std::string& s) {
  static const char* digits = "0123456789ABCDEF";
  std::string out;
  out.reserve(s.size() * 3);
  for (const char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if (!out.empty()) out += ' ';
    out += digits[c >> 4];
    out += digits[c & 0xF];
  }
  return out;
}

std::string quoted(const std::string& s) {
  std::string out = "\"";
  for (const char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

std::string integer_text(const Value& v) {
  if (!v.text.empty()) return v.text;  // exact (Counter64 beyond 2^53)
  return format_number(v.number);
}

// Hundredths of a second as uptime: "(150) 0:00:01.50", "(8640000) 1 day, 0:00:00.00".
std::string ticks_text(double number) {
  const uint64_t t = number > 0 && number < 1.8e19 ? static_cast<uint64_t>(number) : 0;
  const uint64_t secs = t / 100, days = secs / 86400;
  char clock[64];
  std::snprintf(clock, sizeof clock, "%u:%02u:%02u.%02u", static_cast<unsigned>(secs / 3600 % 24),
                static_cast<unsigned>(secs / 60 % 60), static_cast<unsigned>(secs % 60),
                static_cast<unsigned>(t % 100));
  std::string out = "(" + std::to_string(t) + ") ";
  if (days > 0) out += std::to_string(days) + (days == 1 ? " day, " : " days, ");
  return out + clock;
}

}  // namespace

Probe::Probe(CollectorOptions opts, std::vector<Oid> gets, std::vector<Oid> walks)
    : opts_(opts), gets_(std::move(gets)), walks_(std::move(walks)) {
  width_ = std::max<std::size_t>(1, opts_.max_oids);
  repetitions_ = std::max(1, opts_.repetitions);
  get_items_.resize(gets_.size());
  for (std::size_t i = 0; i < gets_.size(); ++i) pending_.push_back(i);
  if (gets_.empty()) {
    phase_ = Phase::kWalks;
    start_walk();
  }
}

void Probe::start_walk() {
  if (walk_ >= walks_.size()) {
    phase_ = Phase::kDone;
    return;
  }
  pos_ = walks_[walk_];
  found_ = 0;
  walk_done_ = root_get_ = root_asked_ = false;
}

std::optional<Request> Probe::next() {
  for (;;) {
    switch (phase_) {
      case Phase::kDone:
        return std::nullopt;
      case Phase::kGets: {
        if (!inflight_.empty()) {
          Request r;
          r.type = PduType::kGet;
          for (auto i : inflight_) r.oids.push_back(gets_[i]);
          return r;
        }
        if (pending_.empty()) {
          phase_ = Phase::kWalks;
          start_walk();
          break;
        }
        const std::size_t n = std::min(width_, pending_.size());
        inflight_.assign(pending_.begin(), pending_.begin() + static_cast<std::ptrdiff_t>(n));
        pending_.erase(pending_.begin(), pending_.begin() + static_cast<std::ptrdiff_t>(n));
        break;
      }
      case Phase::kWalks: {
        if (root_get_) return Request{PduType::kGet, {walks_[walk_]}, 0};
        if (walk_done_) {
          // Nothing under the root: ask for the root itself, which may be a scalar's instance
          // (snmpwalk does the same).
          if (found_ == 0 && !root_asked_) {
            root_get_ = root_asked_ = true;
            break;
          }
          ++walk_;
          start_walk();
          break;
        }
        Request r;
        r.type = opts_.version == 1 ? PduType::kGetNext : PduType::kGetBulk;
        r.oids = {pos_};
        if (r.type == PduType::kGetBulk) r.repetitions = repetitions_;
        return r;
      }
    }
  }
}

void Probe::on_response(const Response& r) {
  ++responses_;
  if (phase_ == Phase::kGets)
    on_get(r);
  else if (phase_ == Phase::kWalks && root_get_)
    on_root_get(r);
  else if (phase_ == Phase::kWalks)
    on_walk(r);
}

void Probe::on_timeout() {
  if (responses_ == 0) return;  // a silent agent is the device's failure, not each OID's
  if (phase_ == Phase::kGets) {
    for (auto i : inflight_) get_items_[i] = ProbeItem{gets_[i], {}, "timeout", {}};
    inflight_.clear();
  } else if (phase_ == Phase::kWalks && walk_ < walks_.size()) {
    walk_item(walks_[walk_], {}, "timeout after " + std::to_string(found_) + " varbinds");
  }
}

std::string Probe::activity() const {
  if (phase_ == Phase::kGets) return "reading " + list_oids(gets_, inflight_);
  if (phase_ == Phase::kWalks && walk_ < walks_.size())
    return "walking " + to_string(walks_[walk_]);
  return "done";
}

std::vector<ProbeItem> Probe::items() const {
  std::vector<ProbeItem> out;
  for (const auto& g : get_items_)
    if (g) out.push_back(*g);
  out.insert(out.end(), walk_items_.begin(), walk_items_.end());
  return out;
}

void Probe::on_get(const Response& r) {
  if (inflight_.empty()) return;
  if (r.error_status != 0) {
    const long idx = r.error_index;
    if (r.error_status == kTooBig && inflight_.size() > 1) {
      // Ask half as many at a time; the other half goes back to the front of the queue.
      const auto half = static_cast<std::ptrdiff_t>(inflight_.size() / 2);
      pending_.insert(pending_.begin(), inflight_.begin() + half, inflight_.end());
      inflight_.erase(inflight_.begin() + half, inflight_.end());
      width_ = inflight_.size();
      return;
    }
    if (idx >= 1 && static_cast<std::size_t>(idx) <= inflight_.size() &&
        r.error_status != kTooBig) {
      // The agent names the one varbind at fault (SNMPv1's noSuchName); the others are asked
      // again without it, as snmpget does.
      const std::size_t bad = inflight_[static_cast<std::size_t>(idx - 1)];
      get_items_[bad] = ProbeItem{gets_[bad], {}, error_status_name(r.error_status), {}};
      inflight_.erase(inflight_.begin() + (idx - 1));
      return;
    }
    for (auto i : inflight_)
      get_items_[i] = ProbeItem{gets_[i], {}, error_status_name(r.error_status), {}};
    inflight_.clear();
    return;
  }
  for (std::size_t k = 0; k < inflight_.size(); ++k) {
    const std::size_t i = inflight_[k];
    if (k >= r.varbinds.size()) {
      get_items_[i] = ProbeItem{gets_[i], {}, "missing from the response", {}};
      continue;
    }
    const VarBind& vb = r.varbinds[k];
    ++varbinds_;
    if (!vb.value.is_exception()) got_data_ = true;
    // The OID the agent answered with, as net-snmp prints it.
    get_items_[i] = ProbeItem{vb.oid, vb.value, {}, {}};
  }
  inflight_.clear();
}

void Probe::walk_item(Oid oid, Value value, std::string error) {
  walk_items_.push_back(
      ProbeItem{std::move(oid), std::move(value), std::move(error), to_string(walks_[walk_])});
  ++found_;
  walk_done_ = true;
}

void Probe::on_walk(const Response& r) {
  const Oid& root = walks_[walk_];
  const bool bulk = opts_.version != 1;
  if (r.error_status != 0) {
    if (!bulk && r.error_status == kNoSuchName) {  // SNMPv1's end of the MIB view
      walk_done_ = true;
    } else if (r.error_status == kTooBig && bulk && repetitions_ > 1) {
      repetitions_ = std::max(1, repetitions_ / 2);
    } else {
      walk_item(root, {}, error_status_name(r.error_status));
    }
    return;
  }
  bool advanced = false;
  for (std::size_t i = 0; i < r.varbinds.size() && !walk_done_; ++i) {
    if (!bulk && i > 0) break;
    const VarBind& vb = r.varbinds[i];
    if (vb.value.type == Value::Type::kEndOfMibView || !starts_with(vb.oid, root) ||
        vb.oid.size() == root.size()) {
      walk_done_ = true;
      break;
    }
    if (!(pos_ < vb.oid)) {
      walk_item(root, {}, "OID not increasing: " + to_string(vb.oid) + " after " + to_string(pos_));
      break;
    }
    pos_ = vb.oid;
    advanced = true;
    ++varbinds_;
    ++found_;
    if (!vb.value.is_exception()) got_data_ = true;
    walk_items_.push_back(ProbeItem{vb.oid, vb.value, {}, to_string(root)});
    if (varbinds_ >= opts_.max_varbinds) {
      walk_item(root, {}, "stopped after " + std::to_string(opts_.max_varbinds) + " varbinds");
      phase_ = Phase::kDone;
      return;
    }
  }
  // An answer that does not move forward would be asked the same question forever.
  if (!advanced) walk_done_ = true;
}

void Probe::on_root_get(const Response& r) {
  root_get_ = false;
  walk_done_ = true;
  const Oid& root = walks_[walk_];
  if (r.error_status != 0) {
    walk_item(root, {}, error_status_name(r.error_status));
    return;
  }
  if (r.varbinds.empty()) {
    walk_item(root, {}, "missing from the response");
    return;
  }
  const VarBind& vb = r.varbinds.front();
  ++varbinds_;
  if (!vb.value.is_exception()) got_data_ = true;
  walk_item(vb.oid, vb.value, {});
}

Rendered render(const ProbeItem& item) {
  Rendered r;
  const std::string head = "." + to_string(item.oid) + " = ";
  if (!item.error.empty()) {
    r.type = "error";
    r.value = item.error;
    r.line = head + "error: " + item.error;
    return r;
  }
  const Value& v = item.value;
  std::string shown;  // what follows "TYPE: " in the line
  switch (v.type) {
    case Value::Type::kInteger:
      r.type = "INTEGER";
      r.value = shown = integer_text(v);
      break;
    case Value::Type::kUnsigned:
      r.type = "Gauge32";
      r.value = shown = integer_text(v);
      break;
    case Value::Type::kCounter32:
      r.type = "Counter32";
      r.value = shown = integer_text(v);
      break;
    case Value::Type::kCounter64:
      r.type = "Counter64";
      r.value = shown = integer_text(v);
      break;
    case Value::Type::kTimeTicks:
      r.type = "Timeticks";
      r.value = format_number(v.number);
      shown = ticks_text(v.number);
      break;
    case Value::Type::kOctets:
      if (v.text.empty()) {
        // net-snmp prints an empty string without its type.
        r.type = "STRING";
        r.line = head + "\"\"";
        return r;
      }
      if (ascii_text(v.text)) {
        r.type = "STRING";
        r.value = v.text;
        shown = quoted(v.text);
      } else {
        r.type = "Hex-STRING";
        r.value = shown = hex_bytes(v.text);
      }
      break;
    case Value::Type::kOid:
      r.type = "OID";
      r.value = v.text;
      shown = "." + v.text;
      break;
    case Value::Type::kIpAddress:
      r.type = "IpAddress";
      r.value = shown = v.text;
      break;
    case Value::Type::kFloat:
      r.type = "Opaque";
      r.value = format_number(v.number);
      shown = "Float: " + r.value;
      break;
    case Value::Type::kOther:
      r.type = "Opaque";
      r.value = shown = hex_bytes(v.text);
      break;
    case Value::Type::kNull:
      r.type = "NULL";
      r.line = head + "NULL";
      return r;
    case Value::Type::kNoSuchObject:
    case Value::Type::kNoSuchInstance:
    case Value::Type::kEndOfMibView:
      r.type = type_name(v.type);
      r.line = head + r.type;
      return r;
  }
  r.line = head + r.type + ": " + shown;
  return r;
}

}  // namespace outpost::snmp
