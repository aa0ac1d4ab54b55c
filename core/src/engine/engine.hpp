// The engine: builds plugin instances, sinks, the pipeline and the scheduler from a validated
// configuration, serves the host API, and applies reloads.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "config/validate.hpp"
#include "engine/instance.hpp"
#include "listeners/udp_listener.hpp"
#include "loader/loader.hpp"
#include "pipeline/pipeline.hpp"
#include "scheduler/scheduler.hpp"
#include "spool/spool.hpp"

namespace outpost::core {

class SpooledSink;

class Engine : public HostServices {
 public:
  explicit Engine(const PluginRegistry& registry);
  ~Engine() override;

  // Validates, creates and starts everything. False (with errors logged) when nothing runs.
  bool start(const Config& cfg);
  // Validates `next` first; on any error keeps the running configuration and returns false.
  bool reload(const Config& next);
  // Stops polling, stops plugins (no emit after), drains the pipeline into the sinks.
  void stop();

  // Runs until SIGINT/SIGTERM (or run_for_s > 0 elapsed); SIGHUP calls `reread` and reloads.
  void run(double run_for_s, const std::function<ParseResult()>& reread);
  // Any thread: runs `fn` on run()'s thread, where reloads happen. False when run() is not
  // running; `fn` is dropped unrun when run() returns first.
  bool post(std::function<void()> fn);
  // A plugin update: new instances of `next` for every instance of that plugin, created and
  // started before anything running changes; then those instances take over (their listener
  // sockets and scheduled monitors too) and the old ones stop. Other plugins' instances are not
  // touched. On any failure the running instances stay and `why` says what failed.
  bool swap_plugin(const LoadedPlugin& next, std::string& why);
  // More self-metrics, added to every self_metrics() batch (the management channel's).
  void set_metrics_hook(std::function<void(Batch&, int64_t)> hook);

  Batch self_metrics() const;
  std::string summary_line() const;
  PipelineStats pipeline_stats() const;
  // Sink name -> its spool's counters, for the sinks that have one.
  std::map<std::string, SpoolStats> spool_stats() const;
  // Waits until every spooled sink has sent what was spooled so far (tests, `run --drain`).
  bool wait_spools_idle(double timeout_s);
  SchedulerStats scheduler_stats() const;
  std::vector<TargetStatus> targets() const;
  const Config& config() const { return cfg_; }

  // HostServices
  outpost_status emit(PluginInstance& from, const outpost_batch& batch) override;
  void complete(PluginInstance& from, uint64_t poll_id, uint64_t target_id, outpost_status status,
                std::string_view detail) override;
  outpost_status secret(std::string_view ref, std::string& out) override;
  outpost_status reply(uint64_t socket_id, const outpost_sockaddr& to, const uint8_t* data,
                       std::size_t len) override;

  // Hands datagrams to a listener instance as one of its sockets would (replay mode).
  outpost_status feed(const std::string& instance, const outpost_datagram* datagrams,
                      std::size_t count);

  // Bound listener sockets, e.g. to learn the port of a listener configured with port 0.
  std::vector<std::pair<std::string, uint16_t>> listener_ports() const;
  std::vector<std::pair<std::string, ListenerStats>> listener_stats() const;

 private:
  using InstanceMap = std::map<std::string, std::shared_ptr<PluginInstance>>;
  enum class Role { source, sink, processor };
  bool build_instances(const std::vector<InstanceSpec>& specs, InstanceMap& keep, InstanceMap& out,
                       Role role);
  std::vector<TaskSpec> build_tasks(const Config& cfg, const InstanceMap& pollers) const;
  void install_sinks();
  void open_listeners();
  void keep_listeners(const InstanceMap& next);
  void close_listeners();

  const PluginRegistry& registry_;
  Config cfg_;
  InstanceMap sources_;  // every instance that is not a sink or processor: pollers and listeners
  mutable std::mutex listeners_mu_;  // see open_listeners()
  std::vector<std::unique_ptr<UdpListener>> listeners_;
  uint64_t next_socket_id_ = 1;
  InstanceMap sinks_;
  std::map<std::string, std::shared_ptr<SpooledSink>> spools_;  // by sink name
  InstanceMap processors_;
  std::unique_ptr<Pipeline> pipeline_;
  std::unique_ptr<Scheduler> scheduler_;
  bool running_ = false;
  std::mutex post_mu_;
  std::function<void(std::function<void()>)> poster_;  // set while run() runs
  std::function<void(Batch&, int64_t)> metrics_hook_;
};

}  // namespace outpost::core
