#include "collector.hpp"

#include <algorithm>
#include <set>

namespace outpost::snmp {

const Oid kSysUpTime = {1, 3, 6, 1, 2, 1, 1, 3, 0};
const Oid kSysObjectId = {1, 3, 6, 1, 2, 1, 1, 2, 0};

const char* error_status_name(long status) noexcept {
  static const char* const names[] = {"noError",
                                      "tooBig",
                                      "noSuchName",
                                      "badValue",
                                      "readOnly",
                                      "genErr",
                                      "noAccess",
                                      "wrongType",
                                      "wrongLength",
                                      "wrongEncoding",
                                      "wrongValue",
                                      "noCreation",
                                      "inconsistentValue",
                                      "resourceUnavailable",
                                      "commitFailed",
                                      "undoFailed",
                                      "authorizationError",
                                      "notWritable",
                                      "inconsistentName"};
  if (status >= 0 && status < static_cast<long>(std::size(names))) return names[status];
  return "unknown error-status";
}

namespace {

constexpr long kTooBig = 1;
constexpr long kNoSuchName = 2;

void set_label(Labels& labels, const std::string& key, std::string value) {
  for (auto& [k, v] : labels)
    if (k == key) {
      v = std::move(value);
      return;
    }
  labels.emplace_back(key, std::move(value));
}

std::optional<double> numeric(const ObjectDef& def, const Value& v) {
  if (v.is_exception()) return std::nullopt;
  if (!def.map.empty()) {
    if (const std::string* m = def.mapped(v.as_label())) {
      Value mv;
      mv.type = Value::Type::kOctets;
      mv.text = *m;
      return mv.as_number();
    }
  }
  return v.as_number();
}

uint32_t metric_type(const ObjectDef& def, const Value& v) {
  if (def.kind == Kind::kCounter) return OUTPOST_METRIC_COUNTER;
  if (def.kind == Kind::kAuto && v.is_counter()) return OUTPOST_METRIC_COUNTER;
  return OUTPOST_METRIC_GAUGE;
}

std::string label_value(const ObjectDef& def, const Value& v) {
  std::string raw = v.as_label();
  if (const std::string* m = def.mapped(raw)) return *m;
  return raw;
}

}  // namespace

std::size_t Collector::Table::slot_of(const std::string& name) const {
  for (std::size_t i = 0; i < slots.size(); ++i)
    if (slots[i]->name == name) return i;
  return slots.size();
}

Collector::Collector(CollectorOptions opts, std::shared_ptr<const ProfileSet> profiles,
                     std::string profile, std::string default_profile,
                     std::shared_ptr<const Plan> guess)
    : opts_(opts),
      profiles_(std::move(profiles)),
      profile_(std::move(profile)),
      default_profile_(std::move(default_profile)),
      guess_(std::move(guess)) {
  repetitions_ = std::max(1, opts_.repetitions);
  width_ = std::max<std::size_t>(2, opts_.max_oids);
  if (!profile_.empty()) {
    plan_ = profiles_ ? profiles_->plan(profile_) : nullptr;
    if (!plan_) {
      failure_ = "unknown profile '" + profile_ + "'";
      phase_ = Phase::kDone;
      return;
    }
    guess_ = plan_;
  }
  // The first request carries what every poll needs plus, when the profile is known or
  // guessed, its first scalars: one round trip less per poll.
  inflight_ = {kSysUpTime, kSysObjectId};
  if (guess_)
    for (const auto& s : guess_->scalars) {
      if (inflight_.size() >= width_) break;
      if (std::find(inflight_.begin(), inflight_.end(), s.oid) == inflight_.end())
        inflight_.push_back(s.oid);
    }
}

std::string Collector::activity() const {
  switch (phase_) {
    case Phase::kSystem:
      return "reading sysUpTime and sysObjectID";
    case Phase::kScalars:
      return "reading scalars";
    case Phase::kTables:
      if (plan_ && table_index_ < plan_->tables.size())
        return "walking " + plan_->tables[table_index_].name;
      return "walking tables";
    case Phase::kDone:
      return "done";
  }
  return "";
}

std::optional<double> Collector::uptime_ticks() const {
  auto it = scalars_.find(kSysUpTime);
  if (it == scalars_.end()) return std::nullopt;
  return it->second.as_number();
}

std::string Collector::sysobjectid() const {
  auto it = scalars_.find(kSysObjectId);
  return it == scalars_.end() ? std::string() : it->second.text;
}

std::string Collector::name_of_scalar(const Oid& oid) const {
  if (oid == kSysUpTime) return "sysUpTime";
  if (oid == kSysObjectId) return "sysObjectID";
  for (const auto* p : {plan_.get(), guess_.get()})
    if (p != nullptr)
      for (const auto& s : p->scalars)
        if (s.oid == oid) return s.name;
  return to_string(oid);
}

void Collector::record(const std::string& object, const Oid& oid, std::string error) {
  errors_.push_back({object, to_string(oid), std::move(error)});
}

std::optional<Request> Collector::next() {
  for (;;) {
    if (phase_ == Phase::kDone) return std::nullopt;
    if (!inflight_.empty()) return Request{PduType::kGet, inflight_, 0};
    switch (phase_) {
      case Phase::kSystem:
        choose_plan();
        break;
      case Phase::kScalars: {
        if (pending_.empty()) {
          phase_ = Phase::kTables;
          start_table();
          break;
        }
        const std::size_t n = std::min(width_, pending_.size());
        inflight_.assign(pending_.begin(), pending_.begin() + static_cast<std::ptrdiff_t>(n));
        pending_.erase(pending_.begin(), pending_.begin() + static_cast<std::ptrdiff_t>(n));
        break;
      }
      case Phase::kTables: {
        if (table_index_ >= plan_->tables.size()) {
          phase_ = Phase::kDone;
          break;
        }
        Table& t = tables_.back();
        walking_.clear();
        for (std::size_t i = 0; i < t.columns.size() && walking_.size() < width_; ++i)
          if (!t.columns[i].done) walking_.push_back(i);
        if (!walking_.empty()) {
          Request r;
          r.type = opts_.version == 1 ? PduType::kGetNext : PduType::kGetBulk;
          for (auto i : walking_) r.oids.push_back(t.columns[i].pos);
          if (r.type == PduType::kGetBulk)
            r.repetitions = t.def->max_repetitions != 0
                                ? std::min(t.def->max_repetitions, repetitions_ * 8)
                                : repetitions_;
          return r;
        }
        if (!t.fallbacks_added && add_fallbacks(t)) break;
        ++table_index_;
        start_table();
        break;
      }
      case Phase::kDone:
        break;
    }
  }
}

void Collector::choose_plan() {
  if (!plan_) {
    const Profile* p = nullptr;
    const std::string soid = sysobjectid();
    if (auto o = parse_oid(soid); o && profiles_) p = profiles_->match(*o);
    const std::string name = p != nullptr ? p->name : default_profile_;
    plan_ = profiles_ ? profiles_->plan(name) : nullptr;
    if (!plan_) {
      failure_ = "no profile matches sysObjectID " + (soid.empty() ? "(none)" : soid) +
                 " and the default profile '" + name + "' is not loaded";
      phase_ = Phase::kDone;
      return;
    }
  }
  pending_.clear();
  std::set<Oid> asked(tried_.begin(), tried_.end());
  for (const auto& s : plan_->scalars)
    if (asked.insert(s.oid).second) pending_.push_back(s.oid);
  phase_ = Phase::kScalars;
}

void Collector::start_table() {
  if (!plan_ || table_index_ >= plan_->tables.size()) return;
  Table t;
  t.def = &plan_->tables[table_index_];
  for (const auto& l : t.def->labels) t.slots.push_back(&l);
  for (const auto& m : t.def->metrics) t.slots.push_back(&m);
  const std::size_t primary = t.slots.size();
  for (const auto& m : t.def->metrics)
    if (m.fallback) t.slots.push_back(m.fallback.get());
  for (std::size_t s = 0; s < primary; ++s) {
    Column c;
    c.def = t.slots[s];
    c.pos = c.def->oid;
    c.slot = s;
    t.columns.push_back(std::move(c));
  }
  tables_.push_back(std::move(t));
}

bool Collector::add_fallbacks(Table& t) {
  t.fallbacks_added = true;
  bool added = false;
  for (std::size_t s = 0; s < t.slots.size(); ++s) {
    const ObjectDef* def = t.slots[s];
    if (!def->fallback) continue;
    bool needed = t.rows.empty();
    for (const auto& [index, row] : t.rows)
      if (!row[s] || row[s]->is_exception()) {
        needed = true;
        break;
      }
    if (!needed) continue;
    for (std::size_t f = 0; f < t.slots.size(); ++f)
      if (t.slots[f] == def->fallback.get()) {
        Column c;
        c.def = t.slots[f];
        c.pos = c.def->oid;
        c.slot = f;
        t.columns.push_back(std::move(c));
        added = true;
      }
  }
  return added;
}

void Collector::on_response(const Response& r) {
  ++responses_;
  if (phase_ == Phase::kSystem || phase_ == Phase::kScalars)
    on_get(r);
  else if (phase_ == Phase::kTables)
    on_walk(r);
}

void Collector::on_timeout() {
  if (responses_ == 0) return;
  for (const auto& o : inflight_) record(name_of_scalar(o), o, "timeout");
  if (phase_ == Phase::kTables && !tables_.empty())
    for (auto i : walking_) {
      const Column& c = tables_.back().columns[i];
      record(c.def->name, c.def->oid, "timeout");
    }
}

void Collector::on_get(const Response& r) {
  if (inflight_.empty()) return;
  if (r.error_status != 0) {
    const long idx = r.error_index;
    const bool indexed = idx >= 1 && static_cast<std::size_t>(idx) <= inflight_.size();
    if (r.error_status == kTooBig) {
      if (inflight_.size() > 1) {
        // Halve the request; in the first phase the guessed scalars come back with the plan.
        const auto half = static_cast<std::ptrdiff_t>(inflight_.size() / 2);
        std::vector<Oid> rest(inflight_.begin() + half, inflight_.end());
        inflight_.erase(inflight_.begin() + half, inflight_.end());
        if (phase_ == Phase::kScalars) {
          pending_.insert(pending_.begin(), rest.begin(), rest.end());
        } else {
          for (const auto& o : rest)
            if (o == kSysObjectId || o == kSysUpTime) inflight_.push_back(o);
          if (inflight_.size() > 2) inflight_.resize(2);
        }
        width_ = std::max<std::size_t>(2, inflight_.size());
      } else {
        tried_.push_back(inflight_.front());
        record(name_of_scalar(inflight_.front()), inflight_.front(), "tooBig");
        inflight_.clear();
      }
      return;
    }
    if (indexed && (opts_.version == 1 || r.error_status == kNoSuchName)) {
      // SNMPv1 names the one varbind at fault; the others are asked again.
      const Oid bad = inflight_[static_cast<std::size_t>(idx - 1)];
      tried_.push_back(bad);
      record(name_of_scalar(bad), bad, error_status_name(r.error_status));
      inflight_.erase(inflight_.begin() + (idx - 1));
      return;
    }
    for (const auto& o : inflight_) {
      tried_.push_back(o);
      record(name_of_scalar(o), o, error_status_name(r.error_status));
    }
    inflight_.clear();
    return;
  }
  for (std::size_t i = 0; i < inflight_.size(); ++i) {
    const Oid& asked = inflight_[i];
    tried_.push_back(asked);
    if (i >= r.varbinds.size()) {
      record(name_of_scalar(asked), asked, "missing from the response");
      continue;
    }
    // Answers are matched by position: an agent that echoes another OID still answers this one.
    const Value& v = r.varbinds[i].value;
    ++varbinds_;
    if (v.is_exception()) {
      record(name_of_scalar(asked), asked, type_name(v.type));
      continue;
    }
    scalars_[asked] = v;
    got_data_ = true;
  }
  inflight_.clear();
}

void Collector::on_walk(const Response& r) {
  if (walking_.empty() || tables_.empty()) return;
  Table& t = tables_.back();
  auto fail_all = [&](const std::string& err) {
    for (auto i : walking_) {
      Column& c = t.columns[i];
      c.done = true;
      record(c.def->name, c.def->oid, err);
    }
  };
  const bool bulk = opts_.version != 1;
  if (r.error_status != 0) {
    const long idx = r.error_index;
    if (!bulk && r.error_status == kNoSuchName) {
      // SNMPv1's end of the MIB view: the column named by the index is complete.
      if (idx >= 1 && static_cast<std::size_t>(idx) <= walking_.size())
        t.columns[walking_[static_cast<std::size_t>(idx - 1)]].done = true;
      else
        for (auto i : walking_) t.columns[i].done = true;
    } else if (r.error_status == kTooBig) {
      if (bulk && repetitions_ > 1)
        repetitions_ = std::max(1, repetitions_ / 2);
      else if (width_ > 1)
        width_ = std::max<std::size_t>(1, width_ / 2);
      else
        fail_all("tooBig");
    } else {
      fail_all(error_status_name(r.error_status));
    }
    walking_.clear();
    return;
  }
  if (r.varbinds.empty()) {
    fail_all("empty response");
    walking_.clear();
    return;
  }
  const std::size_t n = walking_.size();
  const std::size_t max_rows = t.def->max_rows != 0 ? t.def->max_rows : opts_.max_rows;
  std::vector<bool> advanced(n, false);
  for (std::size_t i = 0; i < r.varbinds.size(); ++i) {
    if (!bulk && i >= n) break;
    const std::size_t k = i % n;
    Column& c = t.columns[walking_[k]];
    if (c.done) continue;
    const VarBind& vb = r.varbinds[i];
    const Oid& base = c.def->oid;
    if (vb.value.type == Value::Type::kEndOfMibView || !starts_with(vb.oid, base) ||
        vb.oid.size() == base.size()) {
      c.done = true;
      continue;
    }
    if (!(c.pos < vb.oid)) {
      c.done = true;
      record(c.def->name, base, "OID not increasing");
      continue;
    }
    c.pos = vb.oid;
    advanced[k] = true;
    ++varbinds_;
    if (vb.value.is_exception()) continue;
    Oid index(vb.oid.begin() + static_cast<std::ptrdiff_t>(base.size()), vb.oid.end());
    auto& row = t.rows[std::move(index)];
    if (row.empty()) row.resize(t.slots.size());
    row[c.slot] = vb.value;
    got_data_ = true;
    if (++c.rows >= max_rows) {
      c.done = true;
      record(c.def->name, base, "truncated at " + std::to_string(max_rows) + " rows");
    }
    if (varbinds_ >= opts_.max_varbinds) {
      for (auto& tb : tables_)
        for (auto& col : tb.columns) col.done = true;
      table_index_ = plan_->tables.size();
      record("*", {}, "stopped after " + std::to_string(opts_.max_varbinds) + " varbinds");
      break;
    }
  }
  // A column the answer did not move forward would be asked the same question forever.
  for (std::size_t k = 0; k < n; ++k)
    if (!advanced[k] && !t.columns[walking_[k]].done) t.columns[walking_[k]].done = true;
  walking_.clear();
}

std::vector<ObjectError> Collector::errors() const { return errors_; }

void Collector::build(const Labels& base, std::vector<Metric>& out) const {
  if (auto up = uptime_ticks())
    out.push_back(Metric{"snmp_uptime_seconds", base, *up / 100.0, 0, OUTPOST_METRIC_GAUGE});
  if (!plan_) return;

  Labels info = base;
  set_label(info, "profile", plan_->name);
  for (const auto& def : plan_->scalars) {
    auto it = scalars_.find(def.oid);
    if (it == scalars_.end()) continue;
    if (def.kind == Kind::kLabel) {
      set_label(info, def.name, label_value(def, it->second));
      continue;
    }
    auto n = numeric(def, it->second);
    if (!n) continue;
    out.push_back(
        Metric{"snmp_" + def.name, base, *n * def.scale, 0, metric_type(def, it->second)});
  }
  out.push_back(Metric{"snmp_info", std::move(info), 1.0, 0, OUTPOST_METRIC_GAUGE});

  for (std::size_t ti = 0; ti < tables_.size(); ++ti) {
    const Table& t = tables_[ti];
    const bool complete = ti < table_index_ || done();
    const std::size_t primary = t.def->labels.size() + t.def->metrics.size();
    for (const auto& [index, row] : t.rows) {
      Labels labels = base;
      set_label(labels, t.def->index, to_string(index));
      for (std::size_t s = 0; s < t.def->labels.size(); ++s)
        if (row[s] && !row[s]->is_exception())
          set_label(labels, t.slots[s]->name, label_value(*t.slots[s], *row[s]));
      for (std::size_t s = t.def->labels.size(); s < primary; ++s) {
        const ObjectDef* def = t.slots[s];
        if (def->kind == Kind::kCount) continue;
        const Value* v = row[s] && !row[s]->is_exception() ? &*row[s] : nullptr;
        if (v == nullptr && def->fallback) {
          const std::size_t f = t.slot_of(def->fallback->name);
          if (f < row.size() && row[f] && !row[f]->is_exception()) {
            v = &*row[f];
            def = def->fallback.get();
          }
        }
        if (v == nullptr) continue;
        auto n = numeric(*def, *v);
        if (!n) continue;
        if (!def->scale_by.empty()) {
          const std::size_t b = t.slot_of(def->scale_by);
          if (b >= row.size() || !row[b]) continue;
          auto m = row[b]->as_number();
          if (!m) continue;
          *n *= *m;
        }
        out.push_back(
            Metric{"snmp_" + def->name, labels, *n * def->scale, 0, metric_type(*def, *v)});
      }
    }
    if (!complete) continue;
    for (std::size_t s = t.def->labels.size(); s < primary; ++s) {
      if (t.slots[s]->kind != Kind::kCount) continue;
      std::size_t count = 0;
      for (const auto& [index, row] : t.rows)
        if (row[s] && !row[s]->is_exception()) ++count;
      out.push_back(Metric{"snmp_" + t.slots[s]->name, base,
                           static_cast<double>(count) * t.slots[s]->scale, 0,
                           OUTPOST_METRIC_GAUGE});
    }
  }
}

}  // namespace outpost::snmp
