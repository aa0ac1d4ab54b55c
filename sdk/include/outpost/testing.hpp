// A fake host for plugin tests: it hands a plugin a real outpost_host_api table and records
// everything the plugin emits, reports, logs and completes. Works with any plugin, C or C++,
// either linked in (pass its descriptor) or opened from a shared library (FakeHost::open).
//
// It is as strict as the engine, so a plugin that passes here behaves in the engine: emits
// before create returned or after stop returned are refused (OUTPOST_E_UNAVAILABLE), and
// they, repeated completions, completions of targets a poll did not have, and completions
// after stop are recorded as violations(). Its hook calls (create, start, stop, poll, receive,
// process, write, flush, read, fire_timers) are serialised as the engine serialises them, and
// timers fire only when a test calls fire_timers(), between start and stop: no test waits on a
// clock. set_purpose(OUTPOST_PURPOSE_READ) before create makes the instance one `outpost query`
// would create: then start, stop and the kinds' hooks other than read are violations.
#pragma once

#include <dlfcn.h>
#include <outpost/plugin.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <map>
#include <mutex>
#include <outpost/sdk.hpp>
#include <set>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace outpost::testing {

using outpost::Labels;
using outpost::target_labels;

inline std::string str(outpost_str s) { return s.ptr ? std::string(s.ptr, s.len) : std::string(); }

struct RecordedMetric {
  std::string name;
  std::map<std::string, std::string> labels;
  double value = 0;
  int64_t time_ns = 0;
  uint32_t type = 0;
};
struct RecordedEvent {
  std::string source, kind, message;
  uint32_t severity = 0;
  std::map<std::string, std::string> attributes;
};
// A column of a row a sink's read answered (ABI 1.3): the member its type names holds it.
struct RecordedValue {
  uint32_t type = OUTPOST_VALUE_NULL;
  int64_t i = 0;
  double d = 0;
  std::string text;
  std::map<std::string, std::string> labels;
};
struct RecordedRow {
  uint32_t kind = 0;
  std::vector<std::pair<std::string, RecordedValue>> columns;  // in the sink's order
  // The column named `name`, or nullptr.
  const RecordedValue* find(std::string_view name) const {
    for (const auto& [n, v] : columns)
      if (n == name) return &v;
    return nullptr;
  }
  std::string text(std::string_view name) const {
    const RecordedValue* v = find(name);
    return v ? v->text : std::string();
  }
  int64_t integer(std::string_view name) const {
    const RecordedValue* v = find(name);
    return v ? v->i : 0;
  }
  double real(std::string_view name) const {
    const RecordedValue* v = find(name);
    return v ? v->d : 0;
  }
  std::map<std::string, std::string> labels(std::string_view name) const {
    const RecordedValue* v = find(name);
    return v ? v->labels : std::map<std::string, std::string>{};
  }
};
// What a test asks a sink's read for (ABI 1.3); read() turns it into outpost_read_request.
struct ReadSpec {
  ReadSpec(uint32_t what_ = OUTPOST_READ_SUMMARY, std::string name_ = {}, std::string match_ = {},
           int64_t since = 0, int64_t until = 0, uint64_t limit_ = 0)
      : what(what_),
        name(std::move(name_)),
        match(std::move(match_)),
        since_ns(since),
        until_ns(until),
        limit(limit_) {}
  uint32_t what;
  std::string name, match;
  int64_t since_ns, until_ns;
  uint64_t limit;
};

struct RecordedCompletion {
  uint64_t poll_id = 0, target_id = 0;
  outpost_status status = 0;
  std::string detail;
};

// Loads a plugin library the way the engine does (one symbol) and keeps it loaded.
inline const outpost_plugin_descriptor* open_plugin(const std::string& path) {
  void* h = ::dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (h == nullptr) throw std::runtime_error(std::string("dlopen: ") + ::dlerror());
  auto fn = reinterpret_cast<outpost_plugin_entry_fn>(::dlsym(h, OUTPOST_ENTRY_SYMBOL));
  if (fn == nullptr) throw std::runtime_error("no " OUTPOST_ENTRY_SYMBOL " in " + path);
  return fn(OUTPOST_ABI_VERSION);
}

class FakeHost {
 public:
  explicit FakeHost(const outpost_plugin_descriptor* d) : desc_(d) {
    api_.struct_size = sizeof(api_);
    api_.abi_version = OUTPOST_ABI_VERSION;
    api_.emit = &FakeHost::emit_cb;
    api_.log_enabled = [](outpost_host*, uint32_t) -> int { return 1; };
    api_.log = &FakeHost::log_cb;
    api_.report_error = &FakeHost::error_cb;
    api_.get_secret = &FakeHost::secret_cb;
    api_.now_ns = [](outpost_host*) -> int64_t {
      return std::chrono::duration_cast<std::chrono::nanoseconds>(
                 std::chrono::system_clock::now().time_since_epoch())
          .count();
    };
    api_.monotonic_ns = [](outpost_host* h) -> int64_t {
      return mono() + self(h)->skew_ns_.load();
    };
    api_.complete = &FakeHost::complete_cb;
    api_.reply = &FakeHost::reply_cb;
    api_.set_timer = &FakeHost::set_timer_cb;
    api_.purpose = [](outpost_host* h) -> uint32_t { return self(h)->purpose_.load(); };
  }
  ~FakeHost() { destroy(); }
  FakeHost(const FakeHost&) = delete;
  FakeHost& operator=(const FakeHost&) = delete;

  // Like the engine's, this monotonic clock starts near 0 (at the first FakeHost), so a plugin
  // that takes 0 for "long ago" fails here, not only on a machine booted minutes ago.
  static int64_t mono() {
    static const auto origin = std::chrono::steady_clock::now();
    return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() -
                                                                origin)
        .count();
  }

  const outpost_plugin_descriptor* descriptor() const { return desc_; }
  const outpost_host_api* api() const { return &api_; }
  outpost_instance* instance() const { return inst_; }
  void set_secret(std::string ref, std::string value) {
    secrets_[std::move(ref)] = std::move(value);
  }
  // What host_api->purpose answers (ABI 1.3); set it before create.
  void set_purpose(uint32_t purpose) { purpose_ = purpose; }

  outpost_status create(const std::vector<std::pair<std::string, std::string>>& config = {}) {
    std::vector<outpost_kv> kv;
    for (const auto& [k, v] : config) kv.push_back({{k.data(), k.size()}, {v.data(), v.size()}});
    std::lock_guard h(hook_mu_);
    const outpost_status s =
        desc_->create(&api_, reinterpret_cast<outpost_host*>(this), kv.data(), kv.size(), &inst_);
    std::lock_guard g(mu_);
    phase_ = s == OUTPOST_OK ? Phase::created : Phase::none;
    return s;
  }
  outpost_status start() {
    read_only_violation("start");
    std::lock_guard h(hook_mu_);
    const outpost_status s = desc_->start ? desc_->start(inst_) : OUTPOST_OK;
    std::lock_guard g(mu_);
    if (s == OUTPOST_OK) phase_ = Phase::started;
    return s;
  }
  outpost_status stop() {
    read_only_violation("stop");
    {
      std::lock_guard g(mu_);
      if (phase_ == Phase::none || phase_ == Phase::stopped) return OUTPOST_OK;
      phase_ = Phase::stopping;
    }
    std::lock_guard h(hook_mu_);
    const outpost_status s = desc_->stop ? desc_->stop(inst_) : OUTPOST_OK;
    std::lock_guard g(mu_);
    phase_ = Phase::stopped;
    return s;
  }
  void destroy() {
    std::lock_guard h(hook_mu_);
    if (inst_ != nullptr) desc_->destroy(inst_);
    inst_ = nullptr;
    std::lock_guard g(mu_);
    phase_ = Phase::none;
  }

  // The kinds' hooks, serialised as the engine does.
  outpost_status receive(const std::vector<outpost_datagram>& d) {
    std::lock_guard h(hook_mu_);
    return desc_->receive(inst_, d.data(), d.size(), sizeof(outpost_datagram));
  }
  outpost_status process(const outpost_batch& b) {
    std::lock_guard h(hook_mu_);
    return desc_->process(inst_, &b);
  }
  outpost_status write(const outpost_batch& b) {
    read_only_violation("write");
    std::lock_guard h(hook_mu_);
    return desc_->write(inst_, &b);
  }
  // The sink's read hook (ABI 1.3): the rows it answered, copied as the host copies them.
  // OUTPOST_E_UNSUPPORTED when the descriptor has no read hook. A row callback after read
  // returned, or a row of an unknown kind, is a violation.
  outpost_status read(const ReadSpec& spec, std::vector<RecordedRow>& rows) {
    if (!OUTPOST_HAS(desc_, outpost_plugin_descriptor, read) || desc_->read == nullptr)
      return OUTPOST_E_UNSUPPORTED;
    outpost_read_request r{};
    r.struct_size = sizeof(r);
    r.what = spec.what;
    r.name = {spec.name.data(), spec.name.size()};
    r.match = {spec.match.data(), spec.match.size()};
    r.since_ns = spec.since_ns;
    r.until_ns = spec.until_ns;
    r.limit = spec.limit;
    struct Context {
      FakeHost* host;
      std::vector<RecordedRow>* rows;
    } ctx{this, &rows};
    std::lock_guard h(hook_mu_);
    in_read_ = true;
    const outpost_status s = desc_->read(
        inst_, &r,
        [](void* c, const outpost_read_row* row) -> outpost_status {
          auto* cx = static_cast<Context*>(c);
          return cx->host->row_cb(*cx->rows, row);
        },
        &ctx);
    in_read_ = false;
    return s;
  }
  // The same, with the rows returned; a failed read is a test failure's business: status in
  // *status when given.
  std::vector<RecordedRow> read(const ReadSpec& spec, outpost_status* status = nullptr) {
    std::vector<RecordedRow> rows;
    const outpost_status s = read(spec, rows);
    if (status != nullptr) *status = s;
    return rows;
  }
  outpost_status flush() {
    std::lock_guard h(hook_mu_);
    return desc_->flush ? desc_->flush(inst_) : OUTPOST_OK;
  }
  // Moves this host's monotonic clock forward (what the plugin sees, not mono()): with
  // fire_timers(), a test of "after N seconds" runs without waiting.
  void advance_clock(std::chrono::nanoseconds by) { skew_ns_ += by.count(); }

  // Fires every timer the plugin set, once each, as if its period had passed; only between
  // start and stop, as the engine does. Returns how many fired.
  std::size_t fire_timers() {
    std::lock_guard h(hook_mu_);
    std::vector<uint64_t> ids;
    {
      std::lock_guard g(mu_);
      if (phase_ != Phase::started) return 0;
      for (const auto& [id, period] : timers_) ids.push_back(id);
    }
    for (uint64_t id : ids) desc_->timer(inst_, id);
    return ids.size();
  }
  // Timers set now: id -> period (ns).
  std::map<uint64_t, int64_t> timers() const {
    std::lock_guard g(mu_);
    return timers_;
  }

  struct TargetSpec {
    std::string device, address;
    std::vector<std::pair<std::string, std::string>> params;
  };
  // Polls the targets (ids 1..n) and waits until each completed or timeout_ms passed.
  outpost_status poll(const std::vector<TargetSpec>& targets, int timeout_ms) {
    read_only_violation("poll");
    const outpost_status s = start_poll(targets, timeout_ms);
    std::unique_lock lk(mu_);
    cv_.wait_until(lk,
                   std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms + 2000),
                   [&] { return count_locked(poll_id_) >= targets.size(); });
    return s;
  }
  // The same without waiting: the poll hook returns, the targets complete later (or at stop).
  outpost_status start_poll(const std::vector<TargetSpec>& targets, int timeout_ms) {
    std::vector<std::vector<outpost_kv>> kvs, labels;
    std::vector<Labels> label_strings;  // what labels point into
    std::vector<outpost_target> ts;
    kvs.reserve(targets.size());
    labels.reserve(targets.size());
    label_strings.reserve(targets.size());
    for (std::size_t i = 0; i < targets.size(); ++i) {
      auto& kv = kvs.emplace_back();
      for (const auto& [k, v] : targets[i].params)
        kv.push_back({{k.data(), k.size()}, {v.data(), v.size()}});
      outpost_target t{};
      t.id = i + 1;
      t.device = {targets[i].device.data(), targets[i].device.size()};
      t.address = {targets[i].address.data(), targets[i].address.size()};
      t.params = kv.data();
      t.param_count = kv.size();
      // As the engine builds them (no tags here).
      const auto& owned = label_strings.emplace_back(
          target_labels(targets[i].device, targets[i].address, nullptr, 0));
      auto& l = labels.emplace_back();
      for (const auto& [k, v] : owned) l.push_back({{k.data(), k.size()}, {v.data(), v.size()}});
      t.labels = l.data();
      t.label_count = l.size();
      ts.push_back(t);
    }
    outpost_poll_request r{};
    r.struct_size = sizeof(r);
    r.target_size = sizeof(outpost_target);
    r.poll_id = ++poll_id_;
    r.deadline_ns = mono() + skew_ns_.load() + int64_t{timeout_ms} * 1000000;  // the plugin's clock
    r.targets = ts.data();
    r.target_count = ts.size();
    {
      std::lock_guard g(mu_);
      poll_sizes_[r.poll_id] = ts.size();
    }
    std::lock_guard h(hook_mu_);
    return desc_->poll(inst_, &r);
  }
  uint64_t last_poll_id() const { return poll_id_; }

  // What the engine would have refused or flagged (see the top of this file); a conforming
  // plugin leaves this empty.
  std::vector<std::string> violations() const {
    std::lock_guard g(mu_);
    return violations_;
  }
  // Targets of polls made through poll() that were never completed: "poll P target T".
  std::vector<std::string> missing_completions() const {
    std::lock_guard g(mu_);
    std::vector<std::string> out;
    for (const auto& [pid, n] : poll_sizes_)
      for (uint64_t t = 1; t <= n; ++t)
        if (!completed_.count({pid, t}))
          out.push_back("poll " + std::to_string(pid) + " target " + std::to_string(t));
    return out;
  }

  // Thread-safe snapshots.
  std::vector<RecordedMetric> metrics() const {
    std::lock_guard g(mu_);
    return metrics_;
  }
  std::vector<RecordedEvent> events() const {
    std::lock_guard g(mu_);
    return events_;
  }
  std::vector<RecordedCompletion> completions() const {
    std::lock_guard g(mu_);
    return completions_;
  }
  std::vector<std::pair<outpost_status, std::string>> errors() const {
    std::lock_guard g(mu_);
    return errors_;
  }
  std::vector<std::string> logs() const {
    std::lock_guard g(mu_);
    return logs_;
  }
  std::vector<outpost_flow> flows() const {
    std::lock_guard g(mu_);
    return flows_;
  }
  std::vector<std::vector<uint8_t>> replies() const {
    std::lock_guard g(mu_);
    return replies_;
  }
  void clear() {
    std::lock_guard g(mu_);
    metrics_.clear();
    events_.clear();
    completions_.clear();
    errors_.clear();
    logs_.clear();
    per_poll_.clear();
    flows_.clear();
    violations_.clear();
  }
  // Metrics named `name` whose labels include every given pair.
  std::vector<RecordedMetric> find(std::string_view name,
                                   const std::map<std::string, std::string>& labels = {}) const {
    std::vector<RecordedMetric> out;
    for (const auto& m : metrics()) {
      if (m.name != name) continue;
      bool ok = true;
      for (const auto& [k, v] : labels) {
        auto it = m.labels.find(k);
        if (it == m.labels.end() || it->second != v) ok = false;
      }
      if (ok) out.push_back(m);
    }
    return out;
  }

 private:
  static FakeHost* self(outpost_host* h) { return reinterpret_cast<FakeHost*>(h); }
  // An instance created only to be read gets no other hook (plugin.h, OUTPOST_PURPOSE_READ).
  void read_only_violation(const char* hook) {
    if (purpose_.load() != OUTPOST_PURPOSE_READ) return;
    std::lock_guard g(mu_);
    violations_.push_back(std::string(hook) + " called on an instance created only to be read");
  }
  outpost_status row_cb(std::vector<RecordedRow>& rows, const outpost_read_row* row) {
    if (!in_read_ || row == nullptr || row->kind < OUTPOST_READ_SERIES ||
        row->kind > OUTPOST_READ_EVENTS || row->column_size < sizeof(outpost_column)) {
      std::lock_guard g(mu_);
      violations_.push_back(!in_read_ ? "a row sent outside read" : "a malformed row");
      return OUTPOST_E_INVALID_ARGUMENT;
    }
    RecordedRow r;
    r.kind = row->kind;
    for (std::size_t k = 0; k < row->column_count; ++k) {
      const auto& c = *reinterpret_cast<const outpost_column*>(
          reinterpret_cast<const char*>(row->columns) + k * row->column_size);
      RecordedValue v;
      v.type = c.type;
      v.i = c.i;
      v.d = c.d;
      v.text = str(c.text);
      for (std::size_t l = 0; l < c.label_count; ++l)
        v.labels[str(c.labels[l].key)] = str(c.labels[l].value);
      r.columns.emplace_back(str(c.name), std::move(v));
    }
    rows.push_back(std::move(r));
    return OUTPOST_OK;
  }
  std::size_t count_locked(uint64_t poll_id) const {
    auto it = per_poll_.find(poll_id);
    return it == per_poll_.end() ? 0 : it->second;
  }

  static outpost_status emit_cb(outpost_host* h, const outpost_batch* b) {
    FakeHost* me = self(h);
    std::lock_guard g(me->mu_);
    if (me->phase_ == Phase::none || me->phase_ == Phase::stopped) {
      me->violations_.push_back(me->phase_ == Phase::none ? "emit before create returned"
                                                          : "emit after stop returned");
      return OUTPOST_E_UNAVAILABLE;
    }
    for (std::size_t i = 0; i < b->metric_count; ++i) {
      auto& m = *reinterpret_cast<const outpost_metric*>(reinterpret_cast<const char*>(b->metrics) +
                                                         i * b->metric_size);
      RecordedMetric r{str(m.name), {}, m.value, m.time_ns, m.type};
      for (std::size_t k = 0; k < m.label_count; ++k)
        r.labels[str(m.labels[k].key)] = str(m.labels[k].value);
      me->metrics_.push_back(std::move(r));
    }
    for (std::size_t i = 0; i < b->event_count; ++i) {
      auto& e = *reinterpret_cast<const outpost_event*>(reinterpret_cast<const char*>(b->events) +
                                                        i * b->event_size);
      RecordedEvent r{str(e.source), str(e.kind), str(e.message), e.severity, {}};
      for (std::size_t k = 0; k < e.attribute_count; ++k)
        r.attributes[str(e.attributes[k].key)] = str(e.attributes[k].value);
      me->events_.push_back(std::move(r));
    }
    for (std::size_t i = 0; i < b->flow_count; ++i) {
      outpost_flow f{};
      std::memcpy(&f, reinterpret_cast<const char*>(b->flows) + i * b->flow_size,
                  b->flow_size < sizeof(f) ? b->flow_size : sizeof(f));
      me->flows_.push_back(f);
    }
    return OUTPOST_OK;
  }
  static void log_cb(outpost_host* h, uint32_t, outpost_str m) {
    std::lock_guard g(self(h)->mu_);
    self(h)->logs_.push_back(str(m));
  }
  static void error_cb(outpost_host* h, outpost_status s, outpost_str d) {
    std::lock_guard g(self(h)->mu_);
    self(h)->errors_.emplace_back(s, str(d));
  }
  static outpost_status secret_cb(outpost_host* h, outpost_str ref, char* buf, size_t cap,
                                  size_t* len) {
    auto it = self(h)->secrets_.find(str(ref));
    if (it == self(h)->secrets_.end()) return OUTPOST_E_NOT_FOUND;
    *len = it->second.size();
    std::memcpy(buf, it->second.data(), it->second.size() < cap ? it->second.size() : cap);
    return OUTPOST_OK;
  }
  static void complete_cb(outpost_host* h, uint64_t poll_id, uint64_t target_id, outpost_status s,
                          outpost_str d) {
    FakeHost* me = self(h);
    {
      std::lock_guard g(me->mu_);
      const std::string what =
          "poll " + std::to_string(poll_id) + " target " + std::to_string(target_id);
      if (me->phase_ == Phase::stopped || me->phase_ == Phase::none) {
        me->violations_.push_back(what + " completed after stop returned");
        return;
      }
      if (!me->completed_.insert({poll_id, target_id}).second) {
        me->violations_.push_back(what + " completed twice");
        return;
      }
      auto size = me->poll_sizes_.find(poll_id);
      if (size != me->poll_sizes_.end() && (target_id == 0 || target_id > size->second)) {
        me->violations_.push_back(what + " completed, but the poll had no such target");
        return;
      }
      me->completions_.push_back({poll_id, target_id, s, str(d)});
      me->per_poll_[poll_id]++;
    }
    me->cv_.notify_all();
  }
  static outpost_status set_timer_cb(outpost_host* h, uint64_t id, int64_t period_ns) {
    FakeHost* me = self(h);
    if (!OUTPOST_HAS(me->desc_, outpost_plugin_descriptor, timer) || me->desc_->timer == nullptr)
      return OUTPOST_E_UNSUPPORTED;
    if (period_ns < 0) return OUTPOST_E_INVALID_ARGUMENT;
    std::lock_guard g(me->mu_);
    if (me->phase_ == Phase::stopping || me->phase_ == Phase::stopped) return OUTPOST_E_UNAVAILABLE;
    if (period_ns == 0)
      me->timers_.erase(id);
    else
      me->timers_[id] = period_ns;
    return OUTPOST_OK;
  }
  static outpost_status reply_cb(outpost_host* h, uint64_t, const outpost_sockaddr*,
                                 const uint8_t* d, size_t n) {
    std::lock_guard g(self(h)->mu_);
    self(h)->replies_.emplace_back(d, d + n);
    return OUTPOST_OK;
  }

  enum class Phase { none, created, started, stopping, stopped };

  const outpost_plugin_descriptor* desc_;
  outpost_host_api api_{};
  std::recursive_mutex hook_mu_;  // recursive: a test may call a hook from a hook's callback
  Phase phase_ = Phase::none;     // under mu_
  std::atomic<int64_t> skew_ns_{0};
  std::atomic<uint32_t> purpose_{OUTPOST_PURPOSE_RUN};
  bool in_read_ = false;  // under hook_mu_
  std::map<uint64_t, int64_t> timers_;
  std::map<uint64_t, std::size_t> poll_sizes_;
  std::set<std::pair<uint64_t, uint64_t>> completed_;
  std::vector<std::string> violations_;
  outpost_instance* inst_ = nullptr;
  uint64_t poll_id_ = 0;
  std::map<std::string, std::string> secrets_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<RecordedMetric> metrics_;
  std::vector<RecordedEvent> events_;
  std::vector<RecordedCompletion> completions_;
  std::map<uint64_t, std::size_t> per_poll_;
  std::vector<std::pair<outpost_status, std::string>> errors_;
  std::vector<std::string> logs_;
  std::vector<outpost_flow> flows_;
  std::vector<std::vector<uint8_t>> replies_;
};

}  // namespace outpost::testing
