// Outpost C++ plugin SDK: header-only, compiled into each plugin. Nothing C++ crosses the ABI:
// every hook below is a noexcept trampoline that turns exceptions into a status plus a
// report_error detail.
//
//   class MyMonitor : public outpost::Poller {
//    public:
//     MyMonitor(outpost::Host host, const outpost::Config& cfg);
//     void poll(const outpost::PollRequest& req) override;
//   };
//   OUTPOST_PLUGIN(MyMonitor, "my_monitor", "1.0.0", "What it checks")
//
// Optional static members of the class: `static std::vector<outpost_field> config_fields()` and
// `static std::vector<outpost_field> target_fields()`; `static constexpr uint32_t flags`.
#pragma once

#include <outpost/plugin.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <new>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

namespace outpost {

inline outpost_str to_c(std::string_view s) noexcept { return outpost_str{s.data(), s.size()}; }
inline std::string_view view(outpost_str s) noexcept {
  return s.ptr == nullptr ? std::string_view{} : std::string_view{s.ptr, s.len};
}

// Thrown inside a plugin to end a hook with a given status; any other exception becomes
// OUTPOST_E_INTERNAL.
class Error : public std::runtime_error {
 public:
  Error(outpost_status status, const std::string& what)
      : std::runtime_error(what), status_(status) {}
  outpost_status status() const noexcept { return status_; }

 private:
  outpost_status status_;
};

using Labels = std::vector<std::pair<std::string, std::string>>;

// Owned data a C++ plugin builds; converted to the C structs only at emit time.
struct Metric {
  std::string name;
  Labels labels;
  double value = 0;
  int64_t time_ns = 0;
  uint32_t type = OUTPOST_METRIC_GAUGE;
};

struct Event {
  std::string kind;
  std::string source;
  std::string message;
  uint32_t severity = OUTPOST_SEV_INFO;
  Labels attributes;
  int64_t time_ns = 0;
};

// Parses "250ms", "2s", "1.5m", "1h", "7d" or a bare number of seconds. nullopt when invalid.
inline std::optional<double> parse_duration_seconds(std::string_view s) {
  if (s.empty()) return std::nullopt;
  std::size_t i = 0;
  while (i < s.size() && (std::isdigit(static_cast<unsigned char>(s[i])) || s[i] == '.')) ++i;
  if (i == 0) return std::nullopt;
  const std::string num(s.substr(0, i));
  char* end = nullptr;
  const double v = std::strtod(num.c_str(), &end);
  if (end != num.c_str() + num.size() || v < 0) return std::nullopt;
  const std::string_view unit = s.substr(i);
  if (unit.empty() || unit == "s") return v;
  if (unit == "ms") return v / 1000.0;
  if (unit == "us") return v / 1e6;
  if (unit == "m") return v * 60.0;
  if (unit == "h") return v * 3600.0;
  if (unit == "d") return v * 86400.0;
  return std::nullopt;
}

// A read-only view of key/value settings (a plugin's config or a target's parameters). The
// host has already checked keys and types against the plugin's field table.
class Config {
 public:
  Config() = default;
  Config(const outpost_kv* kv, std::size_t n) : kv_(kv), n_(n) {}

  std::optional<std::string_view> find(std::string_view key) const noexcept {
    for (std::size_t i = 0; i < n_; ++i)
      if (view(kv_[i].key) == key) return view(kv_[i].value);
    return std::nullopt;
  }
  bool has(std::string_view key) const noexcept { return find(key).has_value(); }
  std::string get(std::string_view key, std::string_view dflt = {}) const {
    auto v = find(key);
    return std::string(v ? *v : dflt);
  }
  int64_t get_int(std::string_view key, int64_t dflt) const {
    auto v = find(key);
    if (!v) return dflt;
    int64_t out = 0;
    auto [p, ec] = std::from_chars(v->data(), v->data() + v->size(), out);
    if (ec != std::errc{} || p != v->data() + v->size())
      throw Error(OUTPOST_E_CONFIG, std::string(key) + ": not an integer: " + std::string(*v));
    return out;
  }
  double get_double(std::string_view key, double dflt) const {
    auto v = find(key);
    if (!v) return dflt;
    const std::string s(*v);
    char* end = nullptr;
    const double d = std::strtod(s.c_str(), &end);
    if (end != s.c_str() + s.size())
      throw Error(OUTPOST_E_CONFIG, std::string(key) + ": not a number: " + s);
    return d;
  }
  bool get_bool(std::string_view key, bool dflt) const {
    auto v = find(key);
    if (!v) return dflt;
    if (*v == "true" || *v == "yes" || *v == "1" || *v == "on") return true;
    if (*v == "false" || *v == "no" || *v == "0" || *v == "off") return false;
    throw Error(OUTPOST_E_CONFIG, std::string(key) + ": not a boolean: " + std::string(*v));
  }
  double get_seconds(std::string_view key, double dflt) const {
    auto v = find(key);
    if (!v) return dflt;
    auto d = parse_duration_seconds(*v);
    if (!d)
      throw Error(OUTPOST_E_CONFIG, std::string(key) + ": not a duration: " + std::string(*v));
    return *d;
  }
  // A list is passed as key.0, key.1, ...
  std::vector<std::string> get_list(std::string_view key) const {
    std::vector<std::string> out;
    for (std::size_t i = 0;; ++i) {
      auto v = find(std::string(key) + "." + std::to_string(i));
      if (!v) break;
      out.emplace_back(*v);
    }
    return out;
  }
  std::size_t size() const noexcept { return n_; }
  const outpost_kv* data() const noexcept { return kv_; }

 private:
  const outpost_kv* kv_ = nullptr;
  std::size_t n_ = 0;
};

// The labels of a target as the host builds them (ABI 1.2): device, address when set, then the
// device's tags, a tag named device or address left out.
inline Labels target_labels(std::string_view device, std::string_view address,
                            const outpost_kv* tags, std::size_t tag_count) {
  Labels out{{"device", std::string(device)}};
  if (!address.empty()) out.emplace_back("address", std::string(address));
  for (std::size_t i = 0; i < tag_count; ++i) {
    const std::string_view k = view(tags[i].key);
    if (k != "device" && k != "address")
      out.emplace_back(std::string(k), std::string(view(tags[i].value)));
  }
  return out;
}

// A polled target, borrowed for the duration of poll(). Copy what an asynchronous poll keeps.
class Target {
 public:
  explicit Target(const outpost_target* t, std::size_t target_size = sizeof(outpost_target))
      : t_(t), size_(target_size) {}
  uint64_t id() const noexcept { return t_->id; }
  std::string_view device() const noexcept { return view(t_->device); }
  std::string_view address() const noexcept { return view(t_->address); }
  Config params() const noexcept { return Config(t_->params, t_->param_count); }
  Labels tags() const {
    Labels out;
    for (std::size_t i = 0; i < t_->tag_count; ++i)
      out.emplace_back(std::string(view(t_->tags[i].key)), std::string(view(t_->tags[i].value)));
    return out;
  }
  // The labels for this target's metrics: the host's (device, address, tags), then the plugin's
  // own, which win over a tag of the same name.
  Labels labels(const Labels& own = {}) const {
    Labels out;
    const bool from_host =
        size_ >= offsetof(outpost_target, label_count) + sizeof(std::size_t) && t_->label_count > 0;
    if (from_host) {
      for (std::size_t i = 0; i < t_->label_count; ++i)
        out.emplace_back(std::string(view(t_->labels[i].key)),
                         std::string(view(t_->labels[i].value)));
    } else {  // a request built by hand (tests): the same rule, here
      out = target_labels(device(), address(), t_->tags, t_->tag_count);
    }
    if (!own.empty())
      std::erase_if(out, [&](const auto& l) {
        return std::any_of(own.begin(), own.end(),
                           [&](const auto& o) { return o.first == l.first; });
      });
    out.insert(out.end(), own.begin(), own.end());
    return out;
  }

 private:
  const outpost_target* t_;
  std::size_t size_;
};

class PollRequest {
 public:
  explicit PollRequest(const outpost_poll_request* r) : r_(r) {}
  uint64_t id() const noexcept { return r_->poll_id; }
  int64_t deadline_ns() const noexcept { return r_->deadline_ns; }
  std::size_t size() const noexcept { return r_->target_count; }
  Target operator[](std::size_t i) const noexcept {
    auto* base = reinterpret_cast<const char*>(r_->targets);
    return Target(reinterpret_cast<const outpost_target*>(base + i * r_->target_size),
                  r_->target_size);
  }

 private:
  const outpost_poll_request* r_;
};

// The plugin's handle on the host. Cheap to copy; valid until destroy.
class Host {
 public:
  Host() = default;
  Host(const outpost_host_api* api, outpost_host* host) : api_(api), host_(host) {}

  const outpost_host_api* api() const noexcept { return api_; }
  outpost_host* raw() const noexcept { return host_; }

  outpost_status emit(std::span<const Metric> metrics, std::span<const Event> events = {},
                      std::span<const outpost_flow> flows = {}) const {
    std::vector<outpost_kv> kv;
    std::size_t n_kv = 0;
    for (const auto& m : metrics) n_kv += m.labels.size();
    for (const auto& e : events) n_kv += e.attributes.size();
    kv.reserve(n_kv);
    auto add_labels = [&kv](const Labels& l) {
      const outpost_kv* first = kv.data() + kv.size();
      for (const auto& [k, v] : l) kv.push_back(outpost_kv{to_c(k), to_c(v)});
      return first;
    };
    std::vector<outpost_metric> cm;
    cm.reserve(metrics.size());
    for (const auto& m : metrics) {
      const outpost_kv* labels = add_labels(m.labels);
      cm.push_back(
          outpost_metric{to_c(m.name), labels, m.labels.size(), m.value, m.time_ns, m.type, 0});
    }
    std::vector<outpost_event> ce;
    ce.reserve(events.size());
    for (const auto& e : events) {
      const outpost_kv* attrs = add_labels(e.attributes);
      ce.push_back(outpost_event{e.time_ns, e.severity, 0, to_c(e.source), to_c(e.kind),
                                 to_c(e.message), attrs, e.attributes.size()});
    }
    outpost_batch b = outpost_batch_make();
    b.metrics = cm.data();
    b.metric_count = cm.size();
    b.events = ce.data();
    b.event_count = ce.size();
    b.flows = flows.data();
    b.flow_count = flows.size();
    return api_->emit(host_, &b);
  }
  outpost_status emit(const Metric& m) const { return emit(std::span<const Metric>(&m, 1)); }
  outpost_status emit(const Event& e) const { return emit({}, std::span<const Event>(&e, 1)); }

  bool log_enabled(uint32_t level) const noexcept { return api_->log_enabled(host_, level) != 0; }
  void log(uint32_t level, std::string_view msg) const noexcept {
    api_->log(host_, level, to_c(msg));
  }
  void report_error(outpost_status s, std::string_view detail) const noexcept {
    api_->report_error(host_, s, to_c(detail));
  }
  int64_t now_ns() const noexcept { return api_->now_ns(host_); }
  int64_t monotonic_ns() const noexcept { return api_->monotonic_ns(host_); }
  void complete(uint64_t poll_id, uint64_t target_id, outpost_status s,
                std::string_view detail = {}) const noexcept {
    api_->complete(host_, poll_id, target_id, s, to_c(detail));
  }
  // Resolves a credential reference; throws Error(OUTPOST_E_NOT_FOUND/...) when it cannot.
  std::string secret(std::string_view ref) const {
    std::string buf(256, '\0');
    for (int i = 0; i < 2; ++i) {
      std::size_t len = 0;
      const outpost_status s = api_->get_secret(host_, to_c(ref), buf.data(), buf.size(), &len);
      if (s != OUTPOST_OK) throw Error(s, "secret '" + std::string(ref) + "' unavailable");
      if (len <= buf.size()) {
        buf.resize(len);
        return buf;
      }
      buf.assign(len, '\0');
    }
    throw Error(OUTPOST_E_INTERNAL, "secret changed size while read");
  }
  outpost_status reply(uint64_t socket_id, const outpost_sockaddr& to,
                       std::span<const uint8_t> data) const noexcept {
    return api_->reply(host_, socket_id, &to, data.data(), data.size());
  }
  // How often a listener looks whether its counters are due, for a stats interval: a tenth of
  // it, 10 ms to 1 s, so counters of a burst go out at most 10 % late.
  static std::chrono::nanoseconds stats_timer_period(int64_t stats_interval_ns) noexcept {
    return std::chrono::nanoseconds(
        std::clamp<int64_t>(stats_interval_ns / 10, 10'000'000, 1'000'000'000));
  }
  // A periodic call of the plugin's on_timer(id) on its own hook thread, between start and
  // stop; 0 cancels. OUTPOST_E_UNSUPPORTED from a host older than ABI 1.2.
  outpost_status set_timer(uint64_t id, std::chrono::nanoseconds period) const noexcept {
    if (!OUTPOST_HAS(api_, outpost_host_api, set_timer) || api_->set_timer == nullptr)
      return OUTPOST_E_UNSUPPORTED;
    return api_->set_timer(host_, id, static_cast<int64_t>(period.count()));
  }
  // What the host created this instance for (ABI 1.3): OUTPOST_PURPOSE_RUN, or
  // OUTPOST_PURPOSE_READ when it will only call read (then leave the destination as it is).
  // RUN from a host older than 1.3.
  uint32_t purpose() const noexcept {
    if (!OUTPOST_HAS(api_, outpost_host_api, purpose) || api_->purpose == nullptr)
      return OUTPOST_PURPOSE_RUN;
    return api_->purpose(host_);
  }
  bool read_only() const noexcept { return purpose() == OUTPOST_PURPOSE_READ; }
  // The destination asked for a pause (ABI 1.4; ignored by an older host): call before throwing
  // a retry-class Error from write or write_spooled.
  void retry_after(std::chrono::nanoseconds delay) const noexcept {
    if (OUTPOST_HAS(api_, outpost_host_api, retry_after) && api_->retry_after != nullptr)
      api_->retry_after(host_, static_cast<int64_t>(delay.count()));
  }

 private:
  const outpost_host_api* api_ = nullptr;
  outpost_host* host_ = nullptr;
};

// What a plugin's subcommand (`outpost NAME ARGS...`) asks of the host (ABI 1.2): one poll of
// the plugin whose events of print_kind are the command's output, or, when run_poll is false,
// only text and an exit status (help, usage errors). A poller offers one with a static member
// `static CommandPlan command(std::span<const std::string_view> args)`.
struct CommandPlan {
  bool run_poll = false;
  int exit_code = 0;
  std::string text;  // printed first: stdout when exit_code is 0, else stderr
  Labels params;     // the poll's monitor parameters (a list: the key repeated)
  std::vector<std::string> targets;
  std::string print_kind;
  double timeout_s = 0;  // 0: the engine's default; the host's --timeout wins
  static CommandPlan usage(std::string text, int exit_code) {
    CommandPlan p;
    p.text = std::move(text);
    p.exit_code = exit_code;
    return p;
  }
};

// A read of what a sink stored (ABI 1.3): outpost_read_request, borrowed for the read.
struct ReadRequest {
  uint32_t what = OUTPOST_READ_SUMMARY;  // OUTPOST_READ_*
  std::string_view name;                 // series, samples: this metric name exactly; empty: any
  std::string_view match;                // a text the row contains (see plugin.h); empty: any
  int64_t since_ns = 0;                  // data at or after (Unix epoch ns); 0: no bound
  int64_t until_ns = 0;                  // data before; 0: no bound
  uint64_t limit = 0;                    // rows of each kind; 0: the sink's own bound
};

// One row of a read's answer, built column by column (the columns plugin.h lists for its kind
// first). The row owns its values.
class Row {
 public:
  explicit Row(uint32_t kind) : kind_(kind) {}
  uint32_t kind() const noexcept { return kind_; }
  Row& text(std::string_view name, std::string_view v) {
    return add(name, OUTPOST_VALUE_TEXT).set_text(v);
  }
  Row& integer(std::string_view name, int64_t v) { return add(name, OUTPOST_VALUE_INT).set_i(v); }
  Row& real(std::string_view name, double v) {
    cols_.push_back(Column{std::string(name), OUTPOST_VALUE_DOUBLE, 0, v, {}, {}});
    return *this;
  }
  Row& time(std::string_view name, int64_t ns) { return add(name, OUTPOST_VALUE_TIME).set_i(ns); }
  Row& severity(std::string_view name, uint32_t s) {
    return add(name, OUTPOST_VALUE_SEVERITY).set_i(int64_t{s});
  }
  Row& labels(std::string_view name, Labels v) {
    add(name, OUTPOST_VALUE_LABELS);
    cols_.back().labels = std::move(v);
    return *this;
  }
  Row& null(std::string_view name) { return add(name, OUTPOST_VALUE_NULL); }

 private:
  friend class Rows;
  struct Column {
    std::string name;
    uint32_t type = OUTPOST_VALUE_NULL;
    int64_t i = 0;
    double d = 0;
    std::string text;
    Labels labels;
  };
  Row& add(std::string_view name, uint32_t type) {
    cols_.push_back(Column{std::string(name), type, 0, 0, {}, {}});
    return *this;
  }
  Row& set_text(std::string_view v) {
    cols_.back().text = std::string(v);
    return *this;
  }
  Row& set_i(int64_t v) {
    cols_.back().i = v;
    return *this;
  }
  uint32_t kind_;
  std::vector<Column> cols_;
};

// Where a read's rows go: the host's receiver, called from inside read only.
class Rows {
 public:
  Rows(outpost_read_row_fn fn, void* context) noexcept : fn_(fn), context_(context) {}
  // Hands one row to the host, which copies it. False once the host wants no more rows: then
  // read should return (the SDK returns the host's status for it).
  bool add(const Row& row) {
    if (status_ != OUTPOST_OK) return false;
    kvs_.resize(row.cols_.size());
    columns_.clear();
    for (std::size_t k = 0; k < row.cols_.size(); ++k) {
      const Row::Column& c = row.cols_[k];
      kvs_[k].clear();
      for (const auto& [key, value] : c.labels)
        kvs_[k].push_back(outpost_kv{to_c(key), to_c(value)});
      outpost_column oc{};
      oc.name = to_c(c.name);
      oc.type = c.type;
      oc.i = c.i;
      oc.d = c.d;
      oc.text = to_c(c.text);
      oc.labels = kvs_[k].data();
      oc.label_count = kvs_[k].size();
      columns_.push_back(oc);
    }
    outpost_read_row r{};
    r.struct_size = sizeof(outpost_read_row);
    r.column_size = sizeof(outpost_column);
    r.kind = row.kind();
    r.columns = columns_.data();
    r.column_count = columns_.size();
    status_ = fn_(context_, &r);
    ++sent_;
    return status_ == OUTPOST_OK;
  }
  // OUTPOST_OK, or what the host answered when it wanted no more rows.
  outpost_status status() const noexcept { return status_; }
  std::size_t sent() const noexcept { return sent_; }

 private:
  outpost_read_row_fn fn_;
  void* context_;
  outpost_status status_ = OUTPOST_OK;
  std::size_t sent_ = 0;
  std::vector<std::vector<outpost_kv>> kvs_;
  std::vector<outpost_column> columns_;
};

// Bases. A plugin class derives from one or more; the kinds mask follows from them.
class Plugin {
 public:
  virtual ~Plugin() = default;
  virtual void start() {}
  virtual void stop() {}
  // A timer set with Host::set_timer is due. Never concurrent with another hook.
  virtual void on_timer(uint64_t /*id*/) {}
};
class Poller : public virtual Plugin {
 public:
  // Report every target through host.complete(), now or later from any thread.
  virtual void poll(const PollRequest& request) = 0;
};
class Listener : public virtual Plugin {
 public:
  virtual void receive(std::span<const outpost_datagram> datagrams) = 0;
};
class Processor : public virtual Plugin {
 public:
  virtual void process(const outpost_batch& batch) = 0;
};
// Where a spooled batch comes from (ABI 1.4, outpost_write_info), borrowed for the call.
struct SpoolRange {
  std::string_view stream;
  uint64_t first_seq = 0;
  uint64_t last_seq = 0;
};
struct SpoolInfo {
  std::string_view spool_id;
  std::vector<SpoolRange> ranges;
  uint32_t attempt = 1;
  int64_t oldest_ns = 0;
};

class Sink : public virtual Plugin {
 public:
  virtual void write(const outpost_batch& batch) = 0;
  // ABI 1.4: a batch out of the sink's disk spool, offered again with the same info until it is
  // accepted (see outpost_write_info). A sink that overrides this publicly offers the hook; the
  // host then calls it instead of write for spooled batches.
  virtual void write_spooled(const outpost_batch& batch, const SpoolInfo& /*info*/) {
    write(batch);
  }
  virtual void flush() {}
  // ABI 1.3: answer a read of what the sink stored, row by row through rows.add(). A sink that
  // overrides this publicly (and has no other member named read) offers the read hook; the others
  // do not, and a host tells its user so. Serialised with write; may run without start when the
  // host's purpose is OUTPOST_PURPOSE_READ. Throw Error(OUTPOST_E_UNSUPPORTED, ...) for a
  // request the sink cannot answer.
  virtual void read(const ReadRequest& /*request*/, Rows& /*rows*/) {
    throw Error(OUTPOST_E_UNSUPPORTED, "this sink cannot be read");
  }
};

// Element access for batches whose element size travels with them.
template <typename T>
inline const T& element(const T* base, uint32_t elem_size, std::size_t i) noexcept {
  return *reinterpret_cast<const T*>(reinterpret_cast<const char*>(base) + i * elem_size);
}

inline outpost_field field(const char* name, uint32_t type, const char* description,
                           const char* dflt = "", uint32_t flags = 0) {
  std::string_view n(name), d(description), v(dflt);
  return outpost_field{to_c(n), type, flags, to_c(v), to_c(d)};
}

namespace detail {

struct Instance {
  Host host;
  Plugin* plugin;
};

template <typename F>
outpost_status guarded(const Host& host, F&& f) noexcept {
  try {
    f();
    return OUTPOST_OK;
  } catch (const Error& e) {
    host.report_error(e.status(), e.what());
    return e.status();
  } catch (const std::bad_alloc&) {
    host.report_error(OUTPOST_E_INTERNAL, "out of memory");
    return OUTPOST_E_INTERNAL;
  } catch (const std::exception& e) {
    host.report_error(OUTPOST_E_INTERNAL, e.what());
    return OUTPOST_E_INTERNAL;
  } catch (...) {
    host.report_error(OUTPOST_E_INTERNAL, "unknown exception");
    return OUTPOST_E_INTERNAL;
  }
}

inline Instance* self(outpost_instance* i) noexcept { return reinterpret_cast<Instance*>(i); }

template <typename T>
concept HasConfigFields = requires {
  T::config_fields();
};
template <typename T>
concept HasTargetFields = requires {
  T::target_fields();
};
template <typename T>
concept HasFlags = requires {
  T::flags;
};
template <typename T>
concept HasCommand = requires(std::span<const std::string_view> a) {
  { T::command(a) } -> std::same_as<CommandPlan>;
};

// A sink that overrides Sink::read offers the read hook (ABI 1.3).
template <typename T>
concept OverridesRead = std::is_base_of_v<Sink, T> && requires {
  &T::read;
} && !std::is_same_v<decltype(&T::read), void (Sink::*)(const ReadRequest&, Rows&)>;

// A sink that overrides Sink::write_spooled offers that hook (ABI 1.4).
template <typename T>
concept OverridesWriteSpooled = std::is_base_of_v<Sink, T> && requires {
  &T::write_spooled;
} && !std::is_same_v<decltype(&T::write_spooled),
                     void (Sink::*)(const outpost_batch&, const SpoolInfo&)>;

template <typename T>
struct Trampolines {
  static outpost_status create(const outpost_host_api* api, outpost_host* h, const outpost_kv* kv,
                               std::size_t n, outpost_instance** out) noexcept {
    if (api == nullptr || out == nullptr) return OUTPOST_E_INVALID_ARGUMENT;
    Host host(api, h);
    *out = nullptr;
    return guarded(host, [&] {
      auto* inst = new Instance{host, nullptr};
      try {
        inst->plugin = new T(host, Config(kv, n));
      } catch (...) {
        delete inst;
        throw;
      }
      *out = reinterpret_cast<outpost_instance*>(inst);
    });
  }
  static void destroy(outpost_instance* i) noexcept {
    if (i == nullptr) return;
    Instance* inst = self(i);
    guarded(inst->host, [&] { delete inst->plugin; });
    delete inst;
  }
  static outpost_status start(outpost_instance* i) noexcept {
    return guarded(self(i)->host, [&] { self(i)->plugin->start(); });
  }
  static outpost_status stop(outpost_instance* i) noexcept {
    return guarded(self(i)->host, [&] { self(i)->plugin->stop(); });
  }
  static outpost_status poll(outpost_instance* i, const outpost_poll_request* r) noexcept {
    return guarded(self(i)->host,
                   [&] { dynamic_cast<Poller*>(self(i)->plugin)->poll(PollRequest(r)); });
  }
  static outpost_status receive(outpost_instance* i, const outpost_datagram* d, std::size_t n,
                                std::size_t dsize) noexcept {
    return guarded(self(i)->host, [&] {
      if (dsize == sizeof(outpost_datagram)) {
        dynamic_cast<Listener*>(self(i)->plugin)->receive(std::span(d, n));
      } else {  // another layout: copy what both know into our own
        std::vector<outpost_datagram> v(n);
        const std::size_t c = dsize < sizeof(outpost_datagram) ? dsize : sizeof(outpost_datagram);
        for (std::size_t k = 0; k < n; ++k)
          std::memcpy(&v[k], reinterpret_cast<const char*>(d) + k * dsize, c);
        dynamic_cast<Listener*>(self(i)->plugin)->receive(std::span(v));
      }
    });
  }
  static outpost_status process(outpost_instance* i, const outpost_batch* b) noexcept {
    return guarded(self(i)->host, [&] { dynamic_cast<Processor*>(self(i)->plugin)->process(*b); });
  }
  static outpost_status write(outpost_instance* i, const outpost_batch* b) noexcept {
    return guarded(self(i)->host, [&] { dynamic_cast<Sink*>(self(i)->plugin)->write(*b); });
  }
  static outpost_status write_spooled(outpost_instance* i, const outpost_batch* b,
                                      const outpost_write_info* w) noexcept {
    if (b == nullptr || w == nullptr || !OUTPOST_HAS(w, outpost_write_info, oldest_ns) ||
        (w->range_count > 0 &&
         (w->ranges == nullptr || w->range_size < sizeof(outpost_spool_range))))
      return OUTPOST_E_INVALID_ARGUMENT;
    return guarded(self(i)->host, [&] {
      SpoolInfo info;
      info.spool_id = view(w->spool_id);
      info.attempt = w->attempt;
      info.oldest_ns = w->oldest_ns;
      info.ranges.reserve(w->range_count);
      for (std::size_t k = 0; k < w->range_count; ++k) {
        const auto& r = element(w->ranges, w->range_size, k);
        info.ranges.push_back(SpoolRange{view(r.stream), r.first_seq, r.last_seq});
      }
      dynamic_cast<Sink*>(self(i)->plugin)->write_spooled(*b, info);
    });
  }
  static outpost_status flush(outpost_instance* i) noexcept {
    return guarded(self(i)->host, [&] { dynamic_cast<Sink*>(self(i)->plugin)->flush(); });
  }
  static outpost_status command(const outpost_str* args, std::size_t n,
                                outpost_command_plan* out) noexcept {
    if constexpr (HasCommand<T>) {
      if (out == nullptr || (n > 0 && args == nullptr)) return OUTPOST_E_INVALID_ARGUMENT;
      try {
        // Kept until the next call, as the ABI promises the host.
        static thread_local CommandPlan plan;
        static thread_local std::vector<outpost_kv> kv;
        static thread_local std::vector<outpost_str> targets;
        std::vector<std::string_view> a;
        for (std::size_t i = 0; i < n; ++i) a.push_back(view(args[i]));
        plan = T::command(a);
        kv.clear();
        for (const auto& [k, v] : plan.params) kv.push_back(outpost_kv{to_c(k), to_c(v)});
        targets.clear();
        for (const auto& t : plan.targets) targets.push_back(to_c(t));
        out->exit_code = plan.exit_code;
        out->run_poll = plan.run_poll ? 1u : 0u;
        out->text = to_c(plan.text);
        out->params = kv.data();
        out->param_count = kv.size();
        out->targets = targets.data();
        out->target_count = targets.size();
        out->print_kind = to_c(plan.print_kind);
        out->timeout_ns = static_cast<int64_t>(plan.timeout_s * 1e9);
        return OUTPOST_OK;
      } catch (const Error& e) {
        return e.status();
      } catch (...) {
        return OUTPOST_E_INTERNAL;
      }
    } else {
      (void)args, (void)n, (void)out;
      return OUTPOST_E_UNSUPPORTED;
    }
  }
  static outpost_status read(outpost_instance* i, const outpost_read_request* r,
                             outpost_read_row_fn fn, void* context) noexcept {
    if (r == nullptr || fn == nullptr || !OUTPOST_HAS(r, outpost_read_request, limit))
      return OUTPOST_E_INVALID_ARGUMENT;
    Rows rows(fn, context);
    const outpost_status s = guarded(self(i)->host, [&] {
      ReadRequest q;
      q.what = r->what;
      q.name = view(r->name);
      q.match = view(r->match);
      q.since_ns = r->since_ns;
      q.until_ns = r->until_ns;
      q.limit = r->limit;
      dynamic_cast<Sink*>(self(i)->plugin)->read(q, rows);
    });
    return s != OUTPOST_OK ? s : rows.status();
  }
  static outpost_status timer(outpost_instance* i, uint64_t id) noexcept {
    return guarded(self(i)->host, [&] { self(i)->plugin->on_timer(id); });
  }

  static const outpost_plugin_descriptor* descriptor(const char* name, const char* version,
                                                     const char* description) {
    static const std::vector<outpost_field> cfg = [] {
      if constexpr (HasConfigFields<T>)
        return std::vector<outpost_field>(T::config_fields());
      else
        return std::vector<outpost_field>{};
    }();
    static const std::vector<outpost_field> tgt = [] {
      if constexpr (HasTargetFields<T>)
        return std::vector<outpost_field>(T::target_fields());
      else
        return std::vector<outpost_field>{};
    }();
    static const outpost_plugin_descriptor d = [&] {
      outpost_plugin_descriptor x{};
      x.magic = OUTPOST_PLUGIN_MAGIC;
      x.abi_version = OUTPOST_ABI_VERSION;
      x.struct_size = sizeof(outpost_plugin_descriptor);
      x.name = to_c(name);
      x.version = to_c(version);
      x.description = to_c(description);
      x.config_fields = cfg.data();
      x.config_field_count = cfg.size();
      x.target_fields = tgt.data();
      x.target_field_count = tgt.size();
      if constexpr (HasFlags<T>) x.flags = T::flags;
      x.create = &create;
      x.destroy = &destroy;
      x.start = &start;
      x.stop = &stop;
      x.timer = &timer;
      if constexpr (std::is_base_of_v<Poller, T>) {
        x.kinds |= OUTPOST_KIND_POLLER;
        x.poll = &poll;
        if constexpr (HasCommand<T>) x.command = &command;
      }
      if constexpr (std::is_base_of_v<Listener, T>) {
        x.kinds |= OUTPOST_KIND_LISTENER;
        x.receive = &receive;
      }
      if constexpr (std::is_base_of_v<Processor, T>) {
        x.kinds |= OUTPOST_KIND_PROCESSOR;
        x.process = &process;
      }
      if constexpr (std::is_base_of_v<Sink, T>) {
        x.kinds |= OUTPOST_KIND_SINK;
        x.write = &write;
        x.flush = &flush;
        if constexpr (OverridesRead<T>) x.read = &read;
        if constexpr (OverridesWriteSpooled<T>) x.write_spooled = &write_spooled;
      }
      return x;
    }();
    return &d;
  }
};

}  // namespace detail
}  // namespace outpost

// Defines the plugin's one exported symbol. Use once per plugin library.
#define OUTPOST_PLUGIN(Class, name, version, description)                                   \
  extern "C" OUTPOST_EXPORT const outpost_plugin_descriptor* outpost_plugin_entry(          \
      uint32_t host_abi_version) {                                                          \
    if (OUTPOST_ABI_MAJOR_OF(host_abi_version) != OUTPOST_ABI_MAJOR) return nullptr;        \
    try {                                                                                   \
      return ::outpost::detail::Trampolines<Class>::descriptor(name, version, description); \
    } catch (...) {                                                                         \
      return nullptr;                                                                       \
    }                                                                                       \
  }
