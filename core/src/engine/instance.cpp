#include "engine/instance.hpp"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <exception>
#include <utility>

#include "util/clock.hpp"
#include "util/log.hpp"

namespace outpost::core {
namespace {

constexpr double kCreateTimeout = 10.0;
constexpr double kStopTimeout = 3.0;

std::string_view sv(outpost_str s) {
  return s.ptr ? std::string_view(s.ptr, s.len) : std::string_view();
}

int64_t wall_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

outpost_status api_emit(outpost_host* h, const outpost_batch* b) {
  PluginInstance* p = PluginInstance::from(h);
  if (p == nullptr || b == nullptr) return OUTPOST_E_INVALID_ARGUMENT;
  if (!p->accepting()) {
    p->note_emit(false, b->metric_count + b->event_count + b->flow_count);
    return OUTPOST_E_UNAVAILABLE;
  }
  return p->services().emit(*p, *b);
}
int api_log_enabled(outpost_host*, uint32_t level) {
  return log_enabled(static_cast<LogLevel>(level)) ? 1 : 0;
}
void api_log(outpost_host* h, uint32_t level, outpost_str msg) {
  PluginInstance* p = PluginInstance::from(h);
  LogLevel l = level >= 40   ? LogLevel::error
               : level >= 30 ? LogLevel::warn
               : level >= 20 ? LogLevel::info
                             : LogLevel::debug;
  logf(l, "[{}] {}", p ? p->name() : "?", sv(msg));
}
void api_report_error(outpost_host* h, outpost_status s, outpost_str detail) {
  PluginInstance* p = PluginInstance::from(h);
  if (p == nullptr) return;
  p->note_error(s);
  if (p->services().reported(*p, s, sv(detail))) return;
  logf(LogLevel::warn, "[{}] error {:#x}: {}", p->name(), s, sv(detail));
}
outpost_status api_get_secret(outpost_host* h, outpost_str ref, char* buf, size_t cap,
                              size_t* len) {
  PluginInstance* p = PluginInstance::from(h);
  if (p == nullptr || len == nullptr) return OUTPOST_E_INVALID_ARGUMENT;
  std::string value;
  const outpost_status s = p->services().secret(sv(ref), value);
  if (s != OUTPOST_OK) return s;
  *len = value.size();
  if (buf != nullptr && cap > 0) std::memcpy(buf, value.data(), std::min(cap, value.size()));
  return OUTPOST_OK;
}
int64_t api_now(outpost_host*) { return wall_ns(); }
int64_t api_mono(outpost_host*) { return host_mono_ns(); }
void api_complete(outpost_host* h, uint64_t poll_id, uint64_t target_id, outpost_status s,
                  outpost_str detail) {
  PluginInstance* p = PluginInstance::from(h);
  if (p != nullptr) p->services().complete(*p, poll_id, target_id, s, sv(detail));
}
outpost_status api_reply(outpost_host* h, uint64_t socket_id, const outpost_sockaddr* to,
                         const uint8_t* data, size_t len) {
  PluginInstance* p = PluginInstance::from(h);
  if (p == nullptr || to == nullptr || (data == nullptr && len > 0))
    return OUTPOST_E_INVALID_ARGUMENT;
  return p->services().reply(socket_id, *to, data, len);
}

outpost_status api_set_timer(outpost_host* h, uint64_t timer_id, int64_t period_ns) {
  PluginInstance* p = PluginInstance::from(h);
  if (p == nullptr || period_ns < 0) return OUTPOST_E_INVALID_ARGUMENT;
  return p->set_timer(timer_id, period_ns);
}

uint32_t api_purpose(outpost_host* h) {
  PluginInstance* p = PluginInstance::from(h);
  return p == nullptr ? OUTPOST_PURPOSE_RUN : p->purpose();
}

void api_retry_after(outpost_host* h, int64_t delay_ns) {
  PluginInstance* p = PluginInstance::from(h);
  if (p != nullptr && delay_ns > 0) p->note_retry_after(delay_ns);
}

const outpost_host_api kApi = {
    sizeof(outpost_host_api),
    OUTPOST_ABI_VERSION,
    api_emit,
    api_log_enabled,
    api_log,
    api_report_error,
    api_get_secret,
    api_now,
    api_mono,
    api_complete,
    api_reply,
    api_set_timer,
    api_purpose,
    api_retry_after,
};

// A timer more often than this would only burn the instance's thread.
constexpr int64_t kMinTimerPeriodNs = 1'000'000;

}  // namespace

const outpost_host_api* host_api_table() { return &kApi; }

PluginInstance* PluginInstance::from(outpost_host* h) {
  return h == nullptr ? nullptr : reinterpret_cast<HostHandle*>(h)->self;
}

PluginInstance::PluginInstance(HostServices& services, const LoadedPlugin& plugin,
                               InstanceSpec spec, uint32_t purpose)
    : services_(services), plugin_(plugin), spec_(std::move(spec)), purpose_(purpose) {}

PluginInstance::~PluginInstance() {
  stop();
  destroy();
  runner_.shutdown(abandoned_ ? 0.0 : 5.0);
}

void PluginInstance::dispose(PluginInstance* p) {
  if (p == nullptr) return;
  p->stop();
  p->destroy();
  if (p->abandoned_) {
    p->runner_.shutdown(0.0);
    logf(LogLevel::warn, "[{}] a hook never returned: the instance stays in memory", p->name());
    return;
  }
  delete p;
}

template <typename F>
outpost_status PluginInstance::guard(const char* hook, F&& f) {
  // The SDK catches exceptions at the boundary; this catches plugins that do not use it.
  try {
    return f();
  } catch (const std::exception& e) {
    logf(LogLevel::error, "[{}] {} hook threw: {}", name(), hook, e.what());
  } catch (...) {
    logf(LogLevel::error, "[{}] {} hook threw an unknown exception", name(), hook);
  }
  note_error(OUTPOST_E_INTERNAL);
  return OUTPOST_E_INTERNAL;
}

template <typename F>
outpost_status PluginInstance::serialised(const char* hook, F&& f) {
  if (plugin_.desc.flags & OUTPOST_FLAG_CONCURRENT_HOOKS) return guard(hook, std::forward<F>(f));
  std::lock_guard g(hook_mu_);
  return guard(hook, std::forward<F>(f));
}

bool PluginInstance::create(const EngineSpec& engine, std::string& why) {
  std::vector<std::string> values;
  values.reserve(spec_.settings.size());
  for (const auto& s : spec_.settings) values.push_back(expand_vars(s.value, engine));
  std::vector<outpost_kv> kv;
  for (std::size_t i = 0; i < spec_.settings.size(); ++i)
    kv.push_back(outpost_kv{{spec_.settings[i].key.data(), spec_.settings[i].key.size()},
                            {values[i].data(), values[i].size()}});
  outpost_status st = OUTPOST_E_INTERNAL;
  const bool finished = runner_.run_sync(
      [&] {
        st = serialised("create", [&] {
          return plugin_.desc.create(host_api_table(), reinterpret_cast<outpost_host*>(&host_),
                                     kv.data(), kv.size(), &handle_);
        });
      },
      kCreateTimeout);
  if (!finished) {
    abandoned_ = true;
    why = "create did not return within 10 s";
    return false;
  }
  if (st != OUTPOST_OK || handle_ == nullptr) {
    handle_ = nullptr;
    why = "create failed with status " + fmt::format("{:#x}", st);
    return false;
  }
  // An instance created only to be read emits nothing and is never started or stopped.
  accepting_ = purpose_ == OUTPOST_PURPOSE_RUN;
  return true;
}

bool PluginInstance::start(std::string& why) {
  if (handle_ == nullptr) {
    why = "not created";
    return false;
  }
  if (plugin_.desc.start == nullptr) {
    runner_.arm_periodic(true);
    return true;
  }
  outpost_status st = OUTPOST_E_INTERNAL;
  if (!runner_.run_sync(
          [&] { st = serialised("start", [&] { return plugin_.desc.start(handle_); }); },
          kCreateTimeout)) {
    abandoned_ = true;
    why = "start did not return within 10 s";
    return false;
  }
  if (st != OUTPOST_OK) {
    why = fmt::format("start failed with status {:#x}", st);
    return false;
  }
  runner_.arm_periodic(true);
  return true;
}

void PluginInstance::stop() {
  if (handle_ == nullptr || abandoned_) {
    accepting_ = false;
    return;
  }
  if (!accepting_.load()) return;  // stopped already, or never created
  {
    std::lock_guard g(mu_);
    stopped_ = true;
  }
  runner_.arm_periodic(false);  // a timer running now ends before stop runs
  // Emits during stop are accepted (a processor's last summary, a listener's final counters);
  // after stop returns, none are.
  if (plugin_.desc.stop != nullptr) {
    if (!runner_.run_sync([&] { serialised("stop", [&] { return plugin_.desc.stop(handle_); }); },
                          kStopTimeout)) {
      logf(LogLevel::error, "[{}] stop did not return within 10 s; instance abandoned", name());
      abandoned_ = true;
    }
  }
  accepting_ = false;
}

void PluginInstance::destroy() {
  if (handle_ == nullptr) return;
  if (abandoned_ || runner_.stuck(1.0)) {
    logf(LogLevel::warn, "[{}] a hook is still running; not destroyed", name());
    abandoned_ = true;
    return;
  }
  outpost_instance* h = handle_;
  handle_ = nullptr;
  if (!runner_.run_sync(
          [&] {
            serialised("destroy", [&] {
              plugin_.desc.destroy(h);
              return OUTPOST_OK;
            });
          },
          kStopTimeout))
    abandoned_ = true;
}

outpost_status PluginInstance::call_poll(const outpost_poll_request& req) {
  if (handle_ == nullptr) return OUTPOST_E_UNAVAILABLE;
  return serialised("poll", [&] { return plugin_.desc.poll(handle_, &req); });
}

bool PluginInstance::can_write_spooled() const {
  return OUTPOST_HAS(&plugin_.desc, outpost_plugin_descriptor, write_spooled) &&
         plugin_.desc.write_spooled != nullptr;
}
outpost_status PluginInstance::call_write_spooled(const outpost_batch& batch,
                                                  const outpost_write_info& info) {
  if (!can_write_spooled()) return call_write(batch);
  return serialised("write", [&] { return plugin_.desc.write_spooled(handle_, &batch, &info); });
}
void PluginInstance::note_retry_after(int64_t delay_ns) {
  std::lock_guard lock(mu_);
  retry_after_ns_ = std::max(retry_after_ns_, delay_ns);
}
int64_t PluginInstance::take_retry_after() {
  std::lock_guard lock(mu_);
  return std::exchange(retry_after_ns_, 0);
}
outpost_status PluginInstance::call_write(const outpost_batch& batch) {
  if (handle_ == nullptr) return OUTPOST_E_UNAVAILABLE;
  return serialised("write", [&] { return plugin_.desc.write(handle_, &batch); });
}

outpost_status PluginInstance::call_receive(const outpost_datagram* d, std::size_t n) {
  if (handle_ == nullptr || plugin_.desc.receive == nullptr) return OUTPOST_E_UNAVAILABLE;
  return serialised("receive",
                    [&] { return plugin_.desc.receive(handle_, d, n, sizeof(outpost_datagram)); });
}

outpost_status PluginInstance::call_process(const outpost_batch& batch) {
  if (handle_ == nullptr || plugin_.desc.process == nullptr) return OUTPOST_E_UNAVAILABLE;
  // Called from the pipeline's thread and from every listener emitting flows.
  return serialised("process", [&] { return plugin_.desc.process(handle_, &batch); });
}

outpost_status PluginInstance::call_flush() {
  if (handle_ == nullptr || plugin_.desc.flush == nullptr) return OUTPOST_OK;
  return serialised("flush", [&] { return plugin_.desc.flush(handle_); });
}

bool PluginInstance::can_read() const {
  return OUTPOST_HAS(&plugin_.desc, outpost_plugin_descriptor, read) &&
         plugin_.desc.read != nullptr;
}

outpost_status PluginInstance::call_read(const outpost_read_request& req, outpost_read_row_fn row,
                                         void* context) {
  if (handle_ == nullptr) return OUTPOST_E_UNAVAILABLE;
  if (!can_read()) return OUTPOST_E_UNSUPPORTED;
  return serialised("read", [&] { return plugin_.desc.read(handle_, &req, row, context); });
}

outpost_status PluginInstance::set_timer(uint64_t timer_id, int64_t period_ns) {
  if (!OUTPOST_HAS(&plugin_.desc, outpost_plugin_descriptor, timer) ||
      plugin_.desc.timer == nullptr)
    return OUTPOST_E_UNSUPPORTED;
  {
    std::lock_guard g(mu_);
    if (stopped_) return OUTPOST_E_UNAVAILABLE;
  }
  const int64_t period = period_ns == 0 ? 0 : std::max(period_ns, kMinTimerPeriodNs);
  runner_.set_periodic(timer_id, std::chrono::nanoseconds(period),
                       [this, timer_id] { call_timer(timer_id); });
  return OUTPOST_OK;
}

outpost_status PluginInstance::call_timer(uint64_t timer_id) {
  if (handle_ == nullptr) return OUTPOST_E_UNAVAILABLE;
  return serialised("timer", [&] { return plugin_.desc.timer(handle_, timer_id); });
}

void PluginInstance::note_error(outpost_status s) {
  std::lock_guard g(mu_);
  stats_.errors[s]++;
}

void PluginInstance::note_emit(bool accepted, std::size_t items) {
  std::lock_guard g(mu_);
  if (accepted)
    stats_.emitted += items;
  else
    stats_.emits_refused++;
}

InstanceStats PluginInstance::stats() const {
  std::lock_guard g(mu_);
  return stats_;
}

}  // namespace outpost::core
