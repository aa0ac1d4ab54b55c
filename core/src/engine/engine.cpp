#include "engine/engine.hpp"

#include <algorithm>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "util/log.hpp"

namespace outpost::core {
namespace fs = std::filesystem;

namespace {
int64_t wall_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

class PluginSink final : public SinkPort {
 public:
  explicit PluginSink(std::shared_ptr<PluginInstance> inst) : inst_(std::move(inst)) {}
  const std::string& name() const override { return inst_->name(); }
  outpost_status write(const outpost_batch& b) override { return inst_->call_write(b); }
  outpost_status flush() override { return inst_->call_flush(); }

 private:
  std::shared_ptr<PluginInstance> inst_;
};

}  // namespace

// A sink behind a disk spool: the pipeline appends, the spool's sender writes to the instance
// (write_spooled). Kept across reloads; a reload that replaces the sink's instance rebinds it.
class SpooledSink final : public SinkPort {
 public:
  SpooledSink(std::string name, SpoolSpec spec, std::unique_ptr<Spool> spool)
      : name_(std::move(name)), spec_(std::move(spec)), spool_(std::move(spool)) {}
  const std::string& name() const override { return name_; }
  outpost_status write(const outpost_batch&) override { return OUTPOST_E_UNSUPPORTED; }
  outpost_status flush() override {
    spool_->sync();
    return OUTPOST_OK;
  }
  bool spooled() const override { return true; }
  outpost_status append(const std::vector<const Batch*>& batches) override {
    return spool_->append(batches);
  }
  void bind(const std::shared_ptr<PluginInstance>& inst, bool start) {
    Spool::WriteFn fn = [inst](const outpost_batch& b, const outpost_write_info& info,
                               int64_t& retry_after_ns) {
      inst->take_retry_after();
      const outpost_status st = inst->call_write_spooled(b, info);
      retry_after_ns = inst->take_retry_after();
      return st;
    };
    if (start)
      spool_->start(std::move(fn));
    else
      spool_->set_writer(std::move(fn));
  }
  const SpoolSpec& spec() const { return spec_; }
  Spool& spool() { return *spool_; }

 private:
  std::string name_;
  SpoolSpec spec_;
  std::unique_ptr<Spool> spool_;
};

namespace {

class PluginProcessor final : public ProcessorPort {
 public:
  explicit PluginProcessor(std::shared_ptr<PluginInstance> inst) : inst_(std::move(inst)) {}
  const std::string& name() const override { return inst_->name(); }
  outpost_status process(const outpost_batch& b) override { return inst_->call_process(b); }
  bool consumes_flows() const override {
    return (inst_->plugin().desc.flags & OUTPOST_FLAG_CONSUMES_FLOWS) != 0;
  }

 private:
  std::shared_ptr<PluginInstance> inst_;
};

std::string status_label(outpost_status s) { return fmt::format("{:#x}", s); }
}  // namespace

Engine::Engine(const PluginRegistry& registry) : registry_(registry) {}

Engine::~Engine() { stop(); }

bool Engine::build_instances(const std::vector<InstanceSpec>& specs, InstanceMap& keep,
                             InstanceMap& out, Role role) {
  const char* what = role == Role::sink        ? "sink"
                     : role == Role::processor ? "processor"
                                               : "plugin instance";
  bool all = true;
  for (const auto& spec : specs) {
    if (auto it = keep.find(spec.name); it != keep.end() && it->second->spec() == spec) {
      out[spec.name] = it->second;  // unchanged: keeps running
      continue;
    }
    const LoadedPlugin* p = registry_.find(spec.plugin);
    if (p == nullptr) continue;
    std::shared_ptr<PluginInstance> inst(new PluginInstance(*this, *p, spec),
                                         &PluginInstance::dispose);
    inst->set_processor(role == Role::processor);
    std::string why;
    if (!inst->create(cfg_.engine, why) || !inst->start(why)) {
      logf(LogLevel::error, "{} '{}' (plugin {}): {}", what, spec.name, spec.plugin, why);
      all = false;
      continue;
    }
    logf(LogLevel::info, "{} '{}' started (plugin {} {})", what, spec.name, spec.plugin,
         std::string(p->desc.version.ptr, p->desc.version.len));
    out[spec.name] = std::move(inst);
  }
  return all;
}

std::vector<TaskSpec> Engine::build_tasks(const Config& cfg, const InstanceMap& pollers) const {
  std::vector<TaskSpec> tasks;
  for (const auto& d : cfg.devices)
    for (const auto& m : d.monitors) {
      auto it = pollers.find(m.instance);
      if (it == pollers.end() || !(it->second->plugin().desc.kinds & OUTPOST_KIND_POLLER)) continue;
      TaskSpec t;
      t.instance = it->second.get();
      t.device = d.name;
      t.address = d.address;
      t.tags = d.tags;
      for (const auto& s : m.params) t.params.emplace_back(s.key, expand_vars(s.value, cfg.engine));
      t.interval_s = m.interval_s;
      t.timeout_s = m.timeout_s;
      tasks.push_back(std::move(t));
    }
  return tasks;
}

void Engine::install_sinks() {
  std::vector<std::shared_ptr<SinkPort>> ports;
  std::map<std::string, std::shared_ptr<SpooledSink>> spools;
  for (auto& [n, inst] : sinks_) {
    const SpoolSpec& spec = inst->spec().spool;
    const bool want = spec.enabled.value_or((inst->plugin().desc.flags & OUTPOST_FLAG_SPOOL) != 0);
    if (!want) {
      ports.push_back(std::make_shared<PluginSink>(inst));
      continue;
    }
    if (auto it = spools_.find(n); it != spools_.end()) {  // a reload: the spool stays open
      if (!(it->second->spec() == spec))
        logf(LogLevel::warn, "sink '{}': new spool settings take effect after a restart", n);
      it->second->bind(inst, false);
      ports.push_back(it->second);
      spools[n] = it->second;
      continue;
    }
    SpoolOptions o;
    o.dir = spec.dir.empty() ? (fs::path(cfg_.engine.data_dir) / "spool" / n).string()
                             : expand_vars(spec.dir, cfg_.engine);
    o.max_source_bytes = spec.max_source_bytes;
    o.segment_bytes = spec.segment_bytes;
    o.sync_interval_s = spec.sync_interval_s;
    o.batch_items = spec.batch_items;
    o.batch_bytes = spec.batch_bytes;
    o.max_delay_s = spec.max_delay_s;
    o.backoff_initial_s = spec.backoff_initial_s;
    o.backoff_max_s = spec.backoff_max_s;
    std::string why;
    auto sp = Spool::open(o, why);
    if (!sp) {
      logf(LogLevel::error, "sink '{}': no spool ({}); writing to it directly", n, why);
      ports.push_back(std::make_shared<PluginSink>(inst));
      continue;
    }
    const SpoolStats st = sp->stats();
    logf(LogLevel::info, "sink '{}': spool {} ({} items waiting from {} sources{})", n, o.dir,
         st.pending_items, st.streams,
         st.corrupt_records > 0 ? fmt::format(", {} damaged records set aside", st.corrupt_records)
                                : std::string());
    auto port = std::make_shared<SpooledSink>(n, spec, std::move(sp));
    port->bind(inst, true);
    ports.push_back(port);
    spools[n] = port;
  }
  for (auto& [n, old] : spools_)
    if (spools.count(n) == 0) old->spool().stop();  // what it holds waits on disk
  spools_ = std::move(spools);
  pipeline_->set_sinks(std::move(ports));
  std::vector<std::shared_ptr<ProcessorPort>> procs;
  for (auto& [n, inst] : processors_) procs.push_back(std::make_shared<PluginProcessor>(inst));
  pipeline_->set_processors(std::move(procs));
}

bool Engine::start(const Config& cfg) {
  auto errors = validate_config(cfg, registry_);
  for (const auto& e : errors) logf(LogLevel::error, "{}", e.str());
  if (!errors.empty()) return false;
  cfg_ = cfg;
  LogLevel lvl;
  if (parse_log_level(cfg_.engine.log_level, lvl)) set_log_level(lvl);
  std::error_code ec;
  fs::create_directories(cfg_.engine.data_dir, ec);
  if (ec) {
    logf(LogLevel::error, "engine.data_dir {}: {}", cfg_.engine.data_dir, ec.message());
    return false;
  }
  PipelineOptions po;
  po.capacity = cfg_.engine.queue_capacity;
  po.batch_size = cfg_.engine.batch_size;
  po.flush_interval_s = cfg_.engine.flush_interval_s;
  po.raw_flows = cfg_.engine.raw_flows;
  pipeline_ = std::make_unique<Pipeline>(po);
  InstanceMap none;
  build_instances(cfg_.sinks, none, sinks_, Role::sink);
  build_instances(cfg_.processors, none, processors_, Role::processor);
  install_sinks();
  pipeline_->start();
  build_instances(poller_specs(cfg_), none, sources_, Role::source);
  SchedulerOptions so;
  so.max_in_flight = cfg_.engine.max_in_flight;
  so.max_batch_targets = cfg_.engine.max_batch_targets;
  so.jitter = cfg_.engine.jitter;
  so.congested = [this] { return pipeline_->congested(); };
  scheduler_ =
      std::make_unique<Scheduler>(so, [this](Batch&& b) { pipeline_->submit(std::move(b)); });
  scheduler_->set_tasks(build_tasks(cfg_, sources_));
  scheduler_->start();
  open_listeners();
  running_ = true;
  logf(LogLevel::info,
       "engine '{}' running: {} devices, {} monitors, {} plugin instances, {} sinks; data in {}",
       cfg_.engine.id, cfg_.devices.size(), scheduler_->stats().tasks, sources_.size(),
       sinks_.size(), cfg_.engine.data_dir);
  return true;
}

bool Engine::reload(const Config& next) {
  auto errors = validate_config(next, registry_);
  if (!errors.empty()) {
    for (const auto& e : errors) logf(LogLevel::error, "{}", e.str());
    logf(LogLevel::error, "reload refused: {} error(s); the running configuration stays",
         errors.size());
    return false;
  }
  if (!running_) return start(next);
  scheduler_->stop();
  const Config old = cfg_;
  cfg_ = next;
  cfg_.engine.data_dir = old.engine.data_dir;  // the data directory needs a restart to move
  InstanceMap pollers, sinks, processors;
  build_instances(poller_specs(cfg_), sources_, pollers, Role::source);
  build_instances(cfg_.sinks, sinks_, sinks, Role::sink);
  build_instances(cfg_.processors, processors_, processors, Role::processor);
  // Sockets the new configuration still asks for stay bound (nothing lost, nothing to re-bind
  // after privileges are dropped), handed to the new instance when a reload replaced it; the
  // rest close before their instances stop.
  keep_listeners(pollers);
  for (auto& [n, inst] : sources_)
    if (!pollers.count(n) || pollers[n] != inst) inst->stop();
  sources_.swap(pollers);
  sinks_.swap(sinks);
  processors_.swap(processors);
  install_sinks();
  scheduler_->set_tasks(build_tasks(cfg_, sources_));
  scheduler_->start();
  open_listeners();
  LogLevel lvl;
  if (parse_log_level(cfg_.engine.log_level, lvl)) set_log_level(lvl);
  logf(LogLevel::info, "configuration reloaded from {}: {} monitors", cfg_.source,
       scheduler_->stats().tasks);
  return true;
}

bool Engine::swap_plugin(const LoadedPlugin& next, std::string& why) {
  if (!running_) {
    why = "the engine is not running";
    return false;
  }
  // The running configuration must hold for the new version's settings and parameters.
  PluginRegistry trial = registry_;
  trial.replace(next);
  if (auto errors = validate_config(cfg_, trial); !errors.empty()) {
    why = "the running configuration does not fit version " +
          std::string(next.desc.version.ptr, next.desc.version.len) + ": " + errors[0].str();
    return false;
  }
  struct Taken {
    InstanceMap* map;
    std::shared_ptr<PluginInstance> inst;
  };
  std::vector<Taken> made;
  auto build = [&](InstanceMap& m, Role role) {
    for (auto& [n, old] : m) {
      if (old->plugin().name != next.name) continue;
      std::shared_ptr<PluginInstance> inst(new PluginInstance(*this, next, old->spec()),
                                           &PluginInstance::dispose);
      inst->set_processor(role == Role::processor);
      std::string w;
      if (!inst->create(cfg_.engine, w) || !inst->start(w)) {
        why = "instance '" + n + "': " + w;
        return false;
      }
      made.push_back({&m, std::move(inst)});
    }
    return true;
  };
  if (!build(sources_, Role::source) || !build(sinks_, Role::sink) ||
      !build(processors_, Role::processor))
    return false;  // `made` goes: the new instances stop and are destroyed
  const bool sources =
      std::any_of(made.begin(), made.end(), [&](const Taken& t) { return t.map == &sources_; });
  if (sources) scheduler_->stop();
  {
    std::vector<UdpListener*> bound;
    {
      std::lock_guard g(listeners_mu_);
      for (auto& l : listeners_) bound.push_back(l.get());
    }
    for (const auto& t : made)
      for (UdpListener* l : bound)
        if (l->instance() == (*t.map)[t.inst->name()].get()) l->retarget(t.inst.get());
  }
  // A replaced source stops here (the scheduler is stopped); a replaced sink or processor, as in
  // reload(), when the pipeline lets go of it.
  for (auto& t : made) {
    auto& slot = (*t.map)[t.inst->name()];
    if (t.map == &sources_) slot->stop();
    slot = t.inst;
  }
  install_sinks();
  if (sources) {
    scheduler_->set_tasks(build_tasks(cfg_, sources_));
    scheduler_->start();
  }
  logf(LogLevel::info, "plugin {} {} now serves {} instance(s) (from {})", next.name,
       std::string(next.desc.version.ptr, next.desc.version.len), made.size(), next.path);
  return true;
}

bool Engine::post(std::function<void()> fn) {
  std::lock_guard g(post_mu_);
  if (!poster_) return false;
  poster_(std::move(fn));
  return true;
}

void Engine::set_metrics_hook(std::function<void(Batch&, int64_t)> hook) {
  metrics_hook_ = std::move(hook);
}

void Engine::stop() {
  if (!running_) return;
  running_ = false;
  {
    std::vector<UdpListener*> all;
    {
      std::lock_guard g(listeners_mu_);
      for (auto& l : listeners_) all.push_back(l.get());
    }
    for (UdpListener* l : all) l->stop();  // no datagram reaches a plugin after this
  }
  scheduler_->stop();
  for (auto& [n, inst] : sources_) inst->stop();
  // Processors see everything the sources sent, then emit their last summaries on stop.
  if (!processors_.empty()) {
    pipeline_->drain(10.0);
    for (auto& [n, inst] : processors_) inst->stop();
  }
  // Engine's own last words (self-metrics) go in before the pipeline closes.
  pipeline_->submit(self_metrics());
  close_listeners();
  pipeline_->stop();
  const auto ps = pipeline_->stats();
  uint64_t dropped = 0;
  for (const auto& [r, n] : ps.dropped) dropped += n;
  logf(LogLevel::info, "stopped: {} items accepted, {} delivered to sinks, {} dropped", ps.accepted,
       ps.delivered, dropped);
  for (auto& [n, sp] : spools_) sp->spool().stop();
  for (auto& [n, inst] : sinks_) inst->stop();
  spools_.clear();
  sources_.clear();
  processors_.clear();
  sinks_.clear();
}

std::map<std::string, SpoolStats> Engine::spool_stats() const {
  std::map<std::string, SpoolStats> out;
  for (const auto& [n, sp] : spools_) out[n] = sp->spool().stats();
  return out;
}

bool Engine::wait_spools_idle(double timeout_s) {
  const auto until = std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout_s);
  for (auto& [n, sp] : spools_) {
    const double left =
        std::chrono::duration<double>(until - std::chrono::steady_clock::now()).count();
    if (left <= 0 || !sp->spool().wait_idle(left)) return false;
  }
  return true;
}

outpost_status Engine::emit(PluginInstance& from, const outpost_batch& batch) {
  const uint32_t kinds = from.plugin().desc.kinds;
  const Source source = from.processor()                       ? Source::processor
                        : (kinds & OUTPOST_KIND_LISTENER) != 0 ? Source::listener
                                                               : Source::poller;
  const outpost_status st =
      pipeline_ ? pipeline_->submit(batch, source, wall_ns(), from.name()) : OUTPOST_E_UNAVAILABLE;
  if (st == OUTPOST_E_INVALID_ARGUMENT) from.note_error(st);
  from.note_emit(st == OUTPOST_OK, batch.metric_count + batch.event_count + batch.flow_count);
  return st;
}

void Engine::complete(PluginInstance& from, uint64_t poll_id, uint64_t target_id,
                      outpost_status status, std::string_view detail) {
  if (scheduler_) scheduler_->complete(from.name(), poll_id, target_id, status, detail);
}

outpost_status Engine::secret(std::string_view ref, std::string& out) {
  return resolve_secret(cfg_.credentials, ref, out);
}

// listeners_ is read by reply(), which plugins call from listener threads while a reload runs:
// it changes only under listeners_mu_, and no listener is stopped or retargeted under it (a
// listener thread holds its own dispatch lock while its plugin replies).
void Engine::open_listeners() {
  std::vector<const UdpListener*> bound;
  {
    std::lock_guard g(listeners_mu_);
    for (const auto& l : listeners_) bound.push_back(l.get());
  }
  for (const auto& spec : cfg_.listeners) {
    auto it = sources_.find(spec.instance);
    if (it == sources_.end()) continue;  // its instance failed to start: reported already
    auto same = std::find_if(bound.begin(), bound.end(), [&](const UdpListener* l) {
      return l->same_socket(spec) && l->instance() == it->second.get();
    });
    if (same != bound.end()) {  // kept across a reload
      bound.erase(same);
      continue;
    }
    auto l = std::make_unique<UdpListener>(spec, it->second.get(), next_socket_id_++);
    std::string why;
    if (!l->open(why)) {
      logf(LogLevel::error, "{}: {} ({})", spec.path, why, spec.instance);
      continue;
    }
    l->start();
    logf(LogLevel::info, "listening on {} for '{}'", l->name(), spec.instance);
    std::lock_guard g(listeners_mu_);
    listeners_.push_back(std::move(l));
  }
}

void Engine::keep_listeners(const InstanceMap& next) {
  std::vector<UdpListener*> current, dropped;
  {
    std::lock_guard g(listeners_mu_);
    for (auto& l : listeners_) current.push_back(l.get());
  }
  std::vector<bool> taken(cfg_.listeners.size(), false);
  for (UdpListener* l : current) {
    bool keep = false;
    for (std::size_t i = 0; i < cfg_.listeners.size() && !keep; ++i) {
      const ListenerSpec& spec = cfg_.listeners[i];
      auto inst = next.find(spec.instance);
      if (taken[i] || inst == next.end() || !l->same_socket(spec)) continue;
      if (inst->second->plugin().name != l->instance()->plugin().name) continue;
      l->retarget(inst->second.get());
      taken[i] = keep = true;
    }
    if (!keep) dropped.push_back(l);
  }
  std::vector<std::unique_ptr<UdpListener>> gone;
  {
    std::lock_guard g(listeners_mu_);
    for (auto& l : listeners_)
      if (std::find(dropped.begin(), dropped.end(), l.get()) != dropped.end())
        gone.push_back(std::move(l));
    std::erase(listeners_, nullptr);
  }
  for (auto& l : gone) {
    l->stop();
    logf(LogLevel::info, "closed {} (no longer configured)", l->name());
  }
}

void Engine::close_listeners() {
  std::vector<std::unique_ptr<UdpListener>> gone;
  {
    std::lock_guard g(listeners_mu_);
    gone.swap(listeners_);
  }
  for (auto& l : gone) l->stop();
}

outpost_status Engine::reply(uint64_t socket_id, const outpost_sockaddr& to, const uint8_t* data,
                             std::size_t len) {
  std::lock_guard g(listeners_mu_);
  for (auto& l : listeners_)
    if (l->socket_id() == socket_id) return l->send(to, data, len);
  return OUTPOST_E_NOT_FOUND;
}

outpost_status Engine::feed(const std::string& instance, const outpost_datagram* d, std::size_t n) {
  auto it = sources_.find(instance);
  if (it == sources_.end()) return OUTPOST_E_NOT_FOUND;
  return it->second->call_receive(d, n);
}

std::vector<std::pair<std::string, uint16_t>> Engine::listener_ports() const {
  std::vector<std::pair<std::string, uint16_t>> out;
  std::lock_guard g(listeners_mu_);
  for (const auto& l : listeners_) out.emplace_back(l->instance_name(), l->bound_port());
  return out;
}

std::vector<std::pair<std::string, ListenerStats>> Engine::listener_stats() const {
  std::vector<std::pair<std::string, ListenerStats>> out;
  std::lock_guard g(listeners_mu_);
  for (const auto& l : listeners_) out.emplace_back(l->name(), l->stats());
  return out;
}

PipelineStats Engine::pipeline_stats() const {
  return pipeline_ ? pipeline_->stats() : PipelineStats{};
}
SchedulerStats Engine::scheduler_stats() const {
  return scheduler_ ? scheduler_->stats() : SchedulerStats{};
}
std::vector<TargetStatus> Engine::targets() const {
  return scheduler_ ? scheduler_->targets() : std::vector<TargetStatus>{};
}

Batch Engine::self_metrics() const {
  Batch b;
  const int64_t t = wall_ns();
  const auto ps = pipeline_stats();
  const auto ss = scheduler_stats();
  b.add_metric("outpost_queue_depth", {}, static_cast<double>(ps.depth), t, OUTPOST_METRIC_GAUGE);
  b.add_metric("outpost_queue_capacity", {}, static_cast<double>(ps.capacity), t,
               OUTPOST_METRIC_GAUGE);
  b.add_metric("outpost_pipeline_accepted_total", {}, static_cast<double>(ps.accepted), t,
               OUTPOST_METRIC_COUNTER);
  b.add_metric("outpost_pipeline_delivered_total", {}, static_cast<double>(ps.delivered), t,
               OUTPOST_METRIC_COUNTER);
  for (const auto& [reason, n] : ps.dropped)
    b.add_metric("outpost_pipeline_dropped_total", {{"reason", reason}}, static_cast<double>(n), t,
                 OUTPOST_METRIC_COUNTER);
  for (const auto& [sink, s] : ps.sinks) {
    b.add_metric("outpost_sink_written_total", {{"sink", sink}}, static_cast<double>(s.written), t,
                 OUTPOST_METRIC_COUNTER);
    b.add_metric("outpost_sink_failures_total", {{"sink", sink}}, static_cast<double>(s.failures),
                 t, OUTPOST_METRIC_COUNTER);
  }
  for (const auto& [sink, sp] : spool_stats()) {
    auto gauge = [&](const char* name, double v) {
      b.add_metric(name, {{"sink", sink}}, v, t, OUTPOST_METRIC_GAUGE);
    };
    auto counter = [&](const char* name, double v) {
      b.add_metric(name, {{"sink", sink}}, v, t, OUTPOST_METRIC_COUNTER);
    };
    gauge("outpost_spool_pending_items", static_cast<double>(sp.pending_items));
    gauge("outpost_spool_bytes", static_cast<double>(sp.disk_bytes));
    gauge("outpost_spool_oldest_age_seconds",
          sp.oldest_pending_ns == 0
              ? 0.0
              : std::max(0.0, static_cast<double>(wall_ns() - sp.oldest_pending_ns) / 1e9));
    counter("outpost_spool_appended_items_total", static_cast<double>(sp.appended_items));
    counter("outpost_spool_sent_items_total", static_cast<double>(sp.sent_items));
    counter("outpost_spool_sent_batches_total", static_cast<double>(sp.sent_batches));
    counter("outpost_spool_retries_total", static_cast<double>(sp.retries));
    counter("outpost_spool_rejected_items_total", static_cast<double>(sp.rejected_items));
    counter("outpost_spool_evicted_items_total", static_cast<double>(sp.evicted_items));
    counter("outpost_spool_corrupt_records_total", static_cast<double>(sp.corrupt_records));
  }
  b.add_metric("outpost_targets_in_flight", {}, static_cast<double>(ss.in_flight), t,
               OUTPOST_METRIC_GAUGE);
  b.add_metric("outpost_scheduler_held_seconds_total", {}, ss.held_s, t, OUTPOST_METRIC_COUNTER);
  for (const auto& [inst, s] : ss.instances) {
    for (const auto& [st, n] : s.results)
      b.add_metric("outpost_poll_results_total", {{"plugin", inst}, {"status", status_label(st)}},
                   static_cast<double>(n), t, OUTPOST_METRIC_COUNTER);
    b.add_metric("outpost_poll_duration_seconds_sum", {{"plugin", inst}}, s.duration_sum_s, t,
                 OUTPOST_METRIC_COUNTER);
    b.add_metric("outpost_poll_duration_seconds_count", {{"plugin", inst}},
                 static_cast<double>(s.duration_count), t, OUTPOST_METRIC_COUNTER);
    b.add_metric("outpost_poll_batches_total", {{"plugin", inst}}, static_cast<double>(s.polls), t,
                 OUTPOST_METRIC_COUNTER);
    b.add_metric("outpost_late_completions_total", {{"plugin", inst}}, static_cast<double>(s.late),
                 t, OUTPOST_METRIC_COUNTER);
    b.add_metric("outpost_poll_skipped_total", {{"plugin", inst}}, static_cast<double>(s.skipped),
                 t, OUTPOST_METRIC_COUNTER);
    b.add_metric("outpost_poll_delayed_total", {{"plugin", inst}}, static_cast<double>(s.delayed),
                 t, OUTPOST_METRIC_COUNTER);
    b.add_metric("outpost_poll_delay_seconds_sum", {{"plugin", inst}}, s.delay_sum_s, t,
                 OUTPOST_METRIC_COUNTER);
    b.add_metric("outpost_targets", {{"plugin", inst}, {"state", "ok"}},
                 static_cast<double>(s.targets_ok), t, OUTPOST_METRIC_GAUGE);
    b.add_metric("outpost_targets", {{"plugin", inst}, {"state", "failing"}},
                 static_cast<double>(s.targets_failing), t, OUTPOST_METRIC_GAUGE);
  }
  auto per_instance = [&](const InstanceMap& m) {
    for (const auto& [name, inst] : m) {
      const auto st = inst->stats();
      for (const auto& [code, n] : st.errors)
        b.add_metric("outpost_plugin_errors_total",
                     {{"plugin", name}, {"status", status_label(code)}}, static_cast<double>(n), t,
                     OUTPOST_METRIC_COUNTER);
      b.add_metric("outpost_plugin_emitted_total", {{"plugin", name}},
                   static_cast<double>(st.emitted), t, OUTPOST_METRIC_COUNTER);
    }
  };
  per_instance(sources_);
  per_instance(sinks_);
  per_instance(processors_);
  if (metrics_hook_) metrics_hook_(b, t);
  std::lock_guard lg(listeners_mu_);
  for (const auto& l : listeners_) {
    const auto st = l->stats();
    const std::string name = l->name(), inst = l->instance_name();
    b.add_metric("outpost_listener_datagrams_total", {{"listener", name}, {"plugin", inst}},
                 static_cast<double>(st.datagrams), t, OUTPOST_METRIC_COUNTER);
    b.add_metric("outpost_listener_bytes_total", {{"listener", name}, {"plugin", inst}},
                 static_cast<double>(st.bytes), t, OUTPOST_METRIC_COUNTER);
    b.add_metric("outpost_listener_dropped_total",
                 {{"listener", name}, {"plugin", inst}, {"reason", "socket_overflow"}},
                 static_cast<double>(st.kernel_drops), t, OUTPOST_METRIC_COUNTER);
    b.add_metric("outpost_listener_dropped_total",
                 {{"listener", name}, {"plugin", inst}, {"reason", "truncated"}},
                 static_cast<double>(st.truncated), t, OUTPOST_METRIC_COUNTER);
    b.add_metric("outpost_listener_hook_failures_total", {{"listener", name}, {"plugin", inst}},
                 static_cast<double>(st.hook_failures), t, OUTPOST_METRIC_COUNTER);
  }
  return b;
}

std::string Engine::summary_line() const {
  const auto ss = scheduler_stats();
  const auto ps = pipeline_stats();
  std::size_t ok = 0, failing = 0, total = 0;
  std::string per;
  for (const auto& [inst, s] : ss.instances) {
    ok += s.targets_ok;
    failing += s.targets_failing;
    total += s.targets;
    const double avg_ms =
        s.duration_count ? 1000.0 * s.duration_sum_s / static_cast<double>(s.duration_count) : 0.0;
    per += fmt::format(" | {} {}/{} ok, avg {:.1f} ms", inst, s.targets_ok, s.targets, avg_ms);
  }
  uint64_t dropped = 0;
  for (const auto& [r, n] : ps.dropped) dropped += n;
  return fmt::format("targets {}: {} ok, {} failing{} | queue {} | stored {} | dropped {}", total,
                     ok, failing, per, ps.depth, ps.delivered, dropped);
}

void Engine::run(double run_for_s, const std::function<ParseResult()>& reread) {
  namespace asio = boost::asio;
  asio::io_context io;
  asio::signal_set signals(io, SIGINT, SIGTERM, SIGHUP);
  std::function<void(const boost::system::error_code&, int)> on_signal =
      [&](const boost::system::error_code& ec, int sig) {
        if (ec) return;
        if (sig == SIGHUP) {
          logf(LogLevel::info, "SIGHUP: reloading the configuration");
          ParseResult r = reread();
          if (!r.config) {
            for (const auto& e : r.errors) logf(LogLevel::error, "{}", e.str());
            logf(LogLevel::error, "reload refused: the running configuration stays");
          } else {
            reload(*r.config);
          }
          signals.async_wait(on_signal);
          return;
        }
        logf(LogLevel::info, "signal {}: stopping", sig);
        io.stop();
      };
  signals.async_wait(on_signal);

  auto every = [&io](double seconds, std::function<void()> fn) {
    auto timer = std::make_shared<asio::steady_timer>(io);
    auto period = std::chrono::duration_cast<std::chrono::steady_clock::duration>(
        std::chrono::duration<double>(seconds));
    auto loop = std::make_shared<std::function<void()>>();
    *loop = [timer, period, fn, loop_w = std::weak_ptr<std::function<void()>>(loop)] {
      timer->expires_after(period);
      timer->async_wait([fn, loop_w](const boost::system::error_code& ec) {
        if (ec) return;
        fn();
        if (auto l = loop_w.lock()) (*l)();
      });
    };
    (*loop)();
    return loop;
  };
  std::vector<std::shared_ptr<std::function<void()>>> loops;
  if (cfg_.engine.summary_interval_s > 0)
    loops.push_back(every(cfg_.engine.summary_interval_s, [this] {
      std::printf("%s\n", summary_line().c_str());
      std::fflush(stdout);
    }));
  loops.push_back(
      every(cfg_.engine.self_metrics_interval_s, [this] { pipeline_->submit(self_metrics()); }));
  asio::steady_timer deadline(io);
  if (run_for_s > 0) {
    deadline.expires_after(std::chrono::duration_cast<std::chrono::steady_clock::duration>(
        std::chrono::duration<double>(run_for_s)));
    deadline.async_wait([&](const boost::system::error_code& ec) {
      if (!ec) io.stop();
    });
  }
  {
    std::lock_guard g(post_mu_);
    poster_ = [&io](std::function<void()> fn) { asio::post(io, std::move(fn)); };
  }
  io.run();
  {
    std::lock_guard g(post_mu_);
    poster_ = nullptr;
  }
  if (cfg_.engine.summary_interval_s > 0) {
    std::printf("%s\n", summary_line().c_str());
    std::fflush(stdout);
  }
  stop();
}

}  // namespace outpost::core
