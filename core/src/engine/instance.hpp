// One configured instance of a plugin: its handle, its hook thread, and the host API table
// the plugin sees.
#pragma once

#include <outpost/plugin.h>

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include "config/config.hpp"
#include "engine/hook_runner.hpp"
#include "loader/loader.hpp"

namespace outpost::core {

class PluginInstance;

// What the host API calls reach in the engine.
class HostServices {
 public:
  virtual ~HostServices() = default;
  virtual outpost_status emit(PluginInstance& from, const outpost_batch& batch) = 0;
  virtual void complete(PluginInstance& from, uint64_t poll_id, uint64_t target_id,
                        outpost_status status, std::string_view detail) = 0;
  virtual outpost_status secret(std::string_view ref, std::string& out) = 0;
  virtual outpost_status reply(uint64_t socket_id, const outpost_sockaddr& to, const uint8_t* data,
                               std::size_t len) = 0;
  // A report_error of the instance; true when this host shows it itself (else it is logged).
  virtual bool reported(PluginInstance& /*from*/, outpost_status /*status*/,
                        std::string_view /*detail*/) {
    return false;
  }
};

struct InstanceStats {
  std::map<outpost_status, uint64_t> errors;  // report_error and failed hooks, by status
  uint64_t emitted = 0;                       // items accepted from this instance
  uint64_t emits_refused = 0;                 // emit calls refused (after stop, queue full)
};

class PluginInstance {
 public:
  // purpose: what host_api->purpose answers the plugin (OUTPOST_PURPOSE_*).
  PluginInstance(HostServices& services, const LoadedPlugin& plugin, InstanceSpec spec,
                 uint32_t purpose = OUTPOST_PURPOSE_RUN);
  ~PluginInstance();
  // The owner's way to let an instance go: stopped, destroyed and deleted, unless one of its
  // hooks never returned. The thread still inside that hook would touch the instance when the
  // hook returns, so such an instance is kept in memory on purpose, as its library is.
  static void dispose(PluginInstance* instance);
  PluginInstance(const PluginInstance&) = delete;
  PluginInstance& operator=(const PluginInstance&) = delete;

  // Each returns false (with a reason) when the hook failed, threw or overran its timeout.
  bool create(const EngineSpec& engine, std::string& why);
  bool start(std::string& why);
  void stop();     // no emit is accepted after this returns
  void destroy();  // skipped when a hook of this instance is stuck

  // Runs the poll hook on this instance's thread. False when the instance cannot take it.
  bool post(std::function<void()> job) { return runner_.post(std::move(job)); }
  outpost_status call_poll(const outpost_poll_request& req);
  outpost_status call_write(const outpost_batch& batch);
  // ABI 1.4: a spooled batch through write_spooled, or through write when the sink has no such
  // hook.
  bool can_write_spooled() const;
  outpost_status call_write_spooled(const outpost_batch& batch, const outpost_write_info& info);
  // host_api->retry_after of the last write (the longest asked), and taking it back (0: none).
  void note_retry_after(int64_t delay_ns);
  int64_t take_retry_after();
  // Listener sockets call this from their threads. Every hook of an instance is serialised
  // (one lock, whichever thread calls) unless the plugin declares OUTPOST_FLAG_CONCURRENT_HOOKS;
  // create, start, stop, destroy and poll also run on the instance's own thread.
  outpost_status call_receive(const outpost_datagram* datagrams, std::size_t count);
  outpost_status call_flush();
  // A sink's read hook (ABI 1.3), serialised like write, on the calling thread.
  // OUTPOST_E_UNSUPPORTED when the plugin has none.
  bool can_read() const;
  outpost_status call_read(const outpost_read_request& req, outpost_read_row_fn row, void* context);
  uint32_t purpose() const { return purpose_; }
  // host_api->set_timer: the timer hook runs on the instance's thread from start to stop.
  outpost_status set_timer(uint64_t timer_id, int64_t period_ns);

  const std::string& name() const { return spec_.name; }
  const InstanceSpec& spec() const { return spec_; }
  const LoadedPlugin& plugin() const { return plugin_; }
  bool accepting() const { return accepting_.load(); }
  // Configured under processors: what it emits bypasses processors on its way to the sinks.
  void set_processor(bool p) { processor_ = p; }
  bool processor() const { return processor_; }
  outpost_status call_process(const outpost_batch& batch);
  bool created() const { return handle_ != nullptr; }
  void note_error(outpost_status s);
  void note_emit(bool accepted, std::size_t items);
  InstanceStats stats() const;
  HostServices& services() { return services_; }

  static PluginInstance* from(outpost_host* h);

 private:
  template <typename F>
  outpost_status guard(const char* hook, F&& f);
  // guard() under the instance's hook lock (none when the plugin allows concurrent hooks).
  template <typename F>
  outpost_status serialised(const char* hook, F&& f);
  outpost_status call_timer(uint64_t timer_id);

  struct HostHandle {
    PluginInstance* self;
  };
  HostServices& services_;
  const LoadedPlugin plugin_;
  const InstanceSpec spec_;
  const uint32_t purpose_;
  HostHandle host_{this};
  outpost_instance* handle_ = nullptr;
  std::atomic<bool> accepting_{false};
  bool abandoned_ = false;
  bool processor_ = false;
  HookRunner runner_;
  mutable std::mutex mu_;
  std::mutex hook_mu_;
  bool stopped_ = false;        // under mu_: set_timer refuses from stop on
  int64_t retry_after_ns_ = 0;  // under mu_
  InstanceStats stats_;
};

const outpost_host_api* host_api_table();

}  // namespace outpost::core
