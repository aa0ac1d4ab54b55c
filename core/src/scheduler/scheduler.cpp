#include "scheduler/scheduler.hpp"

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <mutex>
#include <outpost/sdk.hpp>
#include <queue>
#include <thread>

#include "engine/instance.hpp"
#include "util/clock.hpp"
#include "util/log.hpp"
#include "util/status.hpp"

namespace outpost::core {
namespace asio = boost::asio;
using Clock = std::chrono::steady_clock;

namespace {
int64_t wall_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}
Clock::duration secs(double s) {
  return std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(s));
}
// Targets whose due times fall this close together go out in one batch.
constexpr auto kCoalesce = std::chrono::milliseconds(20);
// While the pipeline is congested, dispatch looks again this often.
constexpr auto kHoldRetry = std::chrono::milliseconds(50);
// A target dispatched later than this after its due time counts as delayed.
constexpr auto kLate = std::chrono::milliseconds(250);

}  // namespace

std::string task_key(const TaskSpec& t) {
  std::string k = t.instance != nullptr ? t.instance->name() : std::string();
  for (const auto* part : {&t.device, &t.address}) k.append(1, '\0').append(*part);
  for (const auto& [n, v] : t.params) k.append(1, '\0').append(n).append(1, '=').append(v);
  return k;
}

// FNV-1a of the key, its bits mixed (FNV alone leaves similar keys close), as a fraction.
double task_phase(const std::string& key) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : key) h = (h ^ c) * 1099511628211ull;
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdull;
  h ^= h >> 33;
  return static_cast<double>(h >> 11) / static_cast<double>(uint64_t{1} << 53);
}

// The task table is shared with poll jobs: a hook that is still running after a reload keeps
// the strings it borrowed alive.
struct TaskTable {
  std::vector<TaskSpec> specs;
  std::vector<std::vector<outpost_kv>> params, tags, labels;
  std::vector<Labels> label_strings;  // what labels point into
};

struct Scheduler::Impl {
  struct Runtime {
    Clock::time_point due;
    bool in_flight = false;
    bool carried = false;  // state kept from before a reload: keeps its due time
    std::string key;
    TargetStatus status;
  };
  struct Poll {
    uint64_t id = 0;
    PluginInstance* inst = nullptr;
    std::shared_ptr<const TaskTable> table;
    std::vector<std::size_t> tasks;  // target id = position + 1
    std::vector<outpost_target> targets;
    std::vector<bool> done;
    std::size_t remaining = 0;
    Clock::time_point start, deadline;
    std::unique_ptr<asio::steady_timer> timer;
  };
  using HeapItem = std::pair<Clock::time_point, std::size_t>;

  SchedulerOptions opt;
  EmitFn emit;
  mutable std::mutex mu;
  std::shared_ptr<TaskTable> table = std::make_shared<TaskTable>();
  std::vector<Runtime> rt;
  std::priority_queue<HeapItem, std::vector<HeapItem>, std::greater<>> heap;
  std::map<uint64_t, std::shared_ptr<Poll>> polls;
  std::map<std::string, InstancePollStats> stats;
  std::size_t in_flight = 0;
  uint64_t next_poll_id = 1;
  bool running = false;
  bool holding = false;  // dispatch held back by a congested pipeline, since held_since
  Clock::time_point held_since;
  double held_s = 0;

  asio::io_context io;
  std::unique_ptr<asio::executor_work_guard<asio::io_context::executor_type>> work;
  asio::steady_timer tick_timer{io};
  std::thread thread;

  void arm_locked() {
    if (heap.empty() || in_flight >= opt.max_in_flight) return;
    tick_timer.expires_at(heap.top().first);
    tick_timer.async_wait([this](const boost::system::error_code& ec) {
      if (!ec) tick();
    });
  }

  void tick() {
    std::lock_guard g(mu);
    if (!running) return;
    const auto now = Clock::now();
    if (!heap.empty() && heap.top().first <= now + kCoalesce && opt.congested && opt.congested()) {
      if (!holding) held_since = now;
      holding = true;
      tick_timer.expires_after(kHoldRetry);
      tick_timer.async_wait([this](const boost::system::error_code& ec) {
        if (!ec) tick();
      });
      return;
    }
    if (holding) {
      held_s += std::chrono::duration<double>(now - held_since).count();
      holding = false;
    }
    std::map<std::pair<PluginInstance*, double>, std::vector<std::size_t>> groups;
    while (!heap.empty() && heap.top().first <= now + kCoalesce && in_flight < opt.max_in_flight) {
      const std::size_t idx = heap.top().second;
      heap.pop();
      const TaskSpec& spec = table->specs[idx];
      if (now - rt[idx].due > kLate) {
        auto& st = stats[spec.instance->name()];
        st.delayed++;
        st.delay_sum_s += std::chrono::duration<double>(now - rt[idx].due).count();
      }
      rt[idx].in_flight = true;
      ++in_flight;
      groups[{spec.instance, spec.timeout_s}].push_back(idx);
    }
    for (auto& [key, idxs] : groups) {
      for (std::size_t off = 0; off < idxs.size(); off += opt.max_batch_targets) {
        const std::size_t end = std::min(idxs.size(), off + opt.max_batch_targets);
        dispatch_locked(key.first, key.second,
                        std::vector<std::size_t>(idxs.begin() + static_cast<std::ptrdiff_t>(off),
                                                 idxs.begin() + static_cast<std::ptrdiff_t>(end)),
                        now);
      }
    }
    arm_locked();
  }

  void dispatch_locked(PluginInstance* inst, double timeout_s, std::vector<std::size_t> idxs,
                       Clock::time_point now) {
    auto p = std::make_shared<Poll>();
    p->id = next_poll_id++;
    p->inst = inst;
    p->table = table;
    p->tasks = std::move(idxs);
    p->done.assign(p->tasks.size(), false);
    p->remaining = p->tasks.size();
    p->start = now;
    p->deadline = now + secs(timeout_s);
    p->targets.reserve(p->tasks.size());
    for (std::size_t i = 0; i < p->tasks.size(); ++i) {
      const std::size_t idx = p->tasks[i];
      const TaskSpec& s = table->specs[idx];
      outpost_target t{};
      t.id = i + 1;
      t.device = {s.device.data(), s.device.size()};
      t.address = {s.address.data(), s.address.size()};
      t.params = table->params[idx].data();
      t.param_count = table->params[idx].size();
      t.tags = table->tags[idx].data();
      t.tag_count = table->tags[idx].size();
      t.labels = table->labels[idx].data();
      t.label_count = table->labels[idx].size();
      p->targets.push_back(t);
    }
    stats[inst->name()].polls++;
    polls[p->id] = p;
    p->timer = std::make_unique<asio::steady_timer>(io, p->deadline);
    const uint64_t id = p->id;
    p->timer->async_wait([this, id](const boost::system::error_code& ec) {
      if (!ec) fail_remaining(id, OUTPOST_E_TIMEOUT, "no answer before the deadline");
    });
    const bool queued = inst->post([this, p] {
      outpost_poll_request r{};
      r.struct_size = sizeof r;
      r.target_size = sizeof(outpost_target);
      r.poll_id = p->id;
      r.deadline_ns = host_mono_ns(p->deadline);
      r.targets = p->targets.data();
      r.target_count = p->targets.size();
      const outpost_status st = p->inst->call_poll(r);
      if (st != OUTPOST_OK) {
        const uint64_t pid = p->id;
        asio::post(io, [this, pid, st] { fail_remaining(pid, st, "poll hook failed"); });
      }
    });
    if (!queued) {
      stats[inst->name()].busy += p->tasks.size();
      asio::post(io, [this, id] {
        fail_remaining(id, OUTPOST_E_BUSY,
                       "plugin instance busy: an earlier poll has not returned");
      });
    }
  }

  void fail_remaining(uint64_t poll_id, outpost_status st, const std::string& detail) {
    Batch events;
    {
      std::lock_guard g(mu);
      auto it = polls.find(poll_id);
      if (it == polls.end()) return;
      auto p = it->second;
      for (std::size_t i = 0; i < p->tasks.size(); ++i)
        if (!p->done[i]) finish_target_locked(*p, i, st, detail, events);
      finish_poll_locked(p);
    }
    if (!events.empty()) emit(std::move(events));
  }

  void on_complete(const std::string& instance, uint64_t poll_id, uint64_t target_id,
                   outpost_status st, const std::string& detail) {
    Batch events;
    {
      std::lock_guard g(mu);
      auto it = polls.find(poll_id);
      if (it == polls.end() || it->second->inst->name() != instance || target_id == 0 ||
          target_id > it->second->tasks.size() || it->second->done[target_id - 1]) {
        stats[instance].late++;
        return;
      }
      auto p = it->second;
      finish_target_locked(*p, target_id - 1, st, detail, events);
      if (p->remaining == 0) finish_poll_locked(p);
    }
    if (!events.empty()) emit(std::move(events));
  }

  void finish_poll_locked(const std::shared_ptr<Poll>& p) {
    if (p->timer) p->timer->cancel();
    polls.erase(p->id);
    arm_locked();
  }

  void finish_target_locked(Poll& p, std::size_t pos, outpost_status st, const std::string& detail,
                            Batch& events) {
    p.done[pos] = true;
    --p.remaining;
    const std::size_t idx = p.tasks[pos];
    if (p.table != table) return;  // from before a reload
    Runtime& r = rt[idx];
    const TaskSpec& spec = table->specs[idx];
    auto& s = stats[p.inst->name()];
    s.results[st]++;
    s.duration_sum_s += std::chrono::duration<double>(Clock::now() - p.start).count();
    s.duration_count++;
    if (is_skip_status(st)) {  // the engine or plugin had no capacity: the device said nothing
      s.skipped++;
      r.status.skipped++;
      reschedule_locked(idx);
      return;
    }
    const bool was_polled = r.status.polled, was_ok = r.status.ok;
    r.status.polled = true;
    r.status.ok = st == OUTPOST_OK;
    r.status.last_status = st;
    r.status.last_detail = detail;
    if (st == OUTPOST_OK) {
      r.status.consecutive_failures = 0;
      r.status.last_ok_ns = wall_ns();
    } else {
      r.status.consecutive_failures++;
    }
    // Availability changes are events; the first poll reports only a failure.
    if ((was_polled && was_ok != r.status.ok) || (!was_polled && !r.status.ok)) {
      const std::string msg = r.status.ok
                                  ? fmt::format("{} {} is up again", spec.device, p.inst->name())
                                  : fmt::format("{} {} failed: {} ({})", spec.device,
                                                p.inst->name(), status_name(st), detail);
      events.add_event(
          spec.device, "availability", msg, r.status.ok ? OUTPOST_SEV_NOTICE : OUTPOST_SEV_WARNING,
          wall_ns(),
          {{"monitor", p.inst->name()}, {"address", spec.address}, {"status", status_name(st)}});
    }
    reschedule_locked(idx);
  }

  void reschedule_locked(std::size_t idx) {
    Runtime& r = rt[idx];
    r.in_flight = false;
    --in_flight;
    if (!running) return;
    const auto now = Clock::now();
    const auto interval = secs(table->specs[idx].interval_s);
    r.due += interval;
    if (r.due <= now) {  // missed cycles are skipped, not run back to back
      const auto behind = now - r.due;
      r.due += interval * (behind / interval + 1);
    }
    heap.push({r.due, idx});
  }
};

Scheduler::Scheduler(SchedulerOptions options, EmitFn emit) : impl_(std::make_unique<Impl>()) {
  impl_->opt = options;
  impl_->emit = std::move(emit);
}

Scheduler::~Scheduler() { stop(); }

void Scheduler::set_tasks(std::vector<TaskSpec> tasks) {
  auto t = std::make_shared<TaskTable>();
  t->specs = std::move(tasks);
  for (const auto& s : t->specs) {
    auto& p = t->params.emplace_back();
    for (const auto& [k, v] : s.params) p.push_back({{k.data(), k.size()}, {v.data(), v.size()}});
    auto& g = t->tags.emplace_back();
    for (const auto& [k, v] : s.tags) g.push_back({{k.data(), k.size()}, {v.data(), v.size()}});
  }
  // The targets' labels, built here once for every plugin, by the SDK's one rule.
  t->label_strings.reserve(t->specs.size());
  for (std::size_t i = 0; i < t->specs.size(); ++i) {
    const auto& s = t->specs[i];
    const auto& l = t->label_strings.emplace_back(
        outpost::target_labels(s.device, s.address, t->tags[i].data(), t->tags[i].size()));
    auto& kv = t->labels.emplace_back();
    for (const auto& [k, v] : l) kv.push_back({{k.data(), k.size()}, {v.data(), v.size()}});
  }
  Impl& m = *impl_;
  std::lock_guard g(m.mu);
  std::map<std::string, Impl::Runtime*> before;
  for (auto& r : m.rt) before[r.key] = &r;
  std::vector<Impl::Runtime> next(t->specs.size());
  std::map<std::string, InstancePollStats> stats;
  for (std::size_t i = 0; i < t->specs.size(); ++i) {
    const auto& s = t->specs[i];
    Impl::Runtime& r = next[i];
    r.key = task_key(s);
    if (auto it = before.find(r.key); it != before.end()) {
      r.status = it->second->status;
      // Its phase carries over only at the same interval: one shortened from an hour to ten
      // seconds must not wait out the old hour.
      const std::size_t old_index = static_cast<std::size_t>(it->second - m.rt.data());
      if (m.table->specs[old_index].interval_s == s.interval_s) {
        r.due = it->second->due;
        r.carried = true;
      }
    }
    r.status.instance = s.instance->name();
    r.status.device = s.device;
    r.status.address = s.address;
    auto old = m.stats.find(s.instance->name());
    stats[s.instance->name()] = old != m.stats.end() ? old->second : InstancePollStats{};
  }
  m.table = std::move(t);
  m.rt = std::move(next);
  m.stats = std::move(stats);
}

void Scheduler::start() {
  Impl& m = *impl_;
  std::lock_guard g(m.mu);
  if (m.running) return;
  m.running = true;
  m.in_flight = 0;
  m.heap = {};
  const auto now = Clock::now();
  for (std::size_t i = 0; i < m.rt.size(); ++i) {
    auto& r = m.rt[i];
    if (!r.carried) {
      const double span = m.table->specs[i].interval_s * m.opt.jitter;
      r.due = now + secs(span * task_phase(r.key));
    }
    r.carried = false;
    r.in_flight = false;
    m.heap.push({r.due, i});
  }
  m.io.restart();
  m.work = std::make_unique<asio::executor_work_guard<asio::io_context::executor_type>>(
      m.io.get_executor());
  m.arm_locked();
  m.thread = std::thread([&m] { m.io.run(); });
}

void Scheduler::stop() {
  Impl& m = *impl_;
  {
    std::lock_guard g(m.mu);
    if (!m.running) return;
    m.running = false;
    m.tick_timer.cancel();
    for (auto& [id, p] : m.polls)
      if (p->timer) p->timer->cancel();
    m.polls.clear();
  }
  m.work.reset();
  m.io.stop();
  if (m.thread.joinable()) m.thread.join();
}

void Scheduler::complete(const std::string& instance, uint64_t poll_id, uint64_t target_id,
                         outpost_status status, std::string_view detail) {
  Impl& m = *impl_;
  {
    std::lock_guard g(m.mu);
    if (!m.running) {
      m.stats[instance].late++;
      return;
    }
  }
  // Run on the scheduler's thread: a plugin may complete from inside poll().
  asio::post(m.io, [&m, instance, poll_id, target_id, status, d = std::string(detail)] {
    m.on_complete(instance, poll_id, target_id, status, d);
  });
}

SchedulerStats Scheduler::stats() const {
  std::lock_guard g(impl_->mu);
  SchedulerStats s;
  s.in_flight = impl_->in_flight;
  s.held_s = impl_->held_s;
  if (impl_->holding)
    s.held_s += std::chrono::duration<double>(Clock::now() - impl_->held_since).count();
  s.tasks = impl_->rt.size();
  s.instances = impl_->stats;
  for (auto& [name, st] : s.instances) st.targets = st.targets_ok = st.targets_failing = 0;
  for (const auto& r : impl_->rt) {
    auto& st = s.instances[r.status.instance];
    st.targets++;
    if (r.status.polled) (r.status.ok ? st.targets_ok : st.targets_failing)++;
  }
  return s;
}

std::vector<TargetStatus> Scheduler::targets() const {
  std::lock_guard g(impl_->mu);
  std::vector<TargetStatus> out;
  for (const auto& r : impl_->rt) out.push_back(r.status);
  return out;
}

}  // namespace outpost::core
