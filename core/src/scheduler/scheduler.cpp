#include "scheduler/scheduler.hpp"

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <outpost/sdk.hpp>
#include <queue>
#include <set>
#include <thread>

#include "engine/instance.hpp"
#include "util/log.hpp"
#include "util/status.hpp"

namespace outpost::core {
using Clock = MonoClock;

namespace {
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
    int64_t deadline_ns = 0;  // the deadline on the host's monotonic scale, for the plugin
  };
  // A plugin's completion, or (all) a failed poll hook: every open target of the poll fails.
  struct Completion {
    std::string instance;
    uint64_t poll_id = 0, target_id = 0;
    outpost_status status = OUTPOST_OK;
    std::string detail;
    bool all = false;
  };
  using HeapItem = std::pair<Clock::time_point, std::size_t>;

  SchedulerOptions opt;
  std::shared_ptr<const TimeSource> clock;
  EmitFn emit;
  mutable std::mutex mu;
  std::condition_variable wake;  // a completion was queued, or stop()
  std::shared_ptr<TaskTable> table = std::make_shared<TaskTable>();
  std::vector<Runtime> rt;
  std::priority_queue<HeapItem, std::vector<HeapItem>, std::greater<>> heap;
  std::map<uint64_t, std::shared_ptr<Poll>> polls;
  std::set<std::pair<Clock::time_point, uint64_t>> deadlines;  // of the open polls
  std::vector<Completion> completions;                         // queued for run_due()
  std::map<std::string, InstancePollStats> stats;
  std::size_t in_flight = 0;
  uint64_t next_poll_id = 1;
  bool running = false;
  bool holding = false;  // dispatch held back by a congested pipeline, since held_since
  Clock::time_point held_since;
  double held_s = 0;
  std::thread thread;

  // The scheduler's thread (real clocks only).
  void loop() {
    for (;;) {
      const Clock::time_point next = run_due();
      std::unique_lock lk(mu);
      const auto woken = [this] { return !running || !completions.empty(); };
      if (next == Clock::time_point::max())
        wake.wait(lk, woken);
      else
        wake.wait_until(lk, next, woken);
      if (!running) return;
    }
  }

  Clock::time_point run_due() {
    Batch events;
    Clock::time_point next;
    {
      std::lock_guard g(mu);
      if (!running) return Clock::time_point::max();
      const Clock::time_point now = clock->mono();
      std::vector<Completion> queued;
      queued.swap(completions);
      for (const Completion& c : queued) {
        if (c.all)
          fail_remaining_locked(c.poll_id, c.status, c.detail, events);
        else
          on_complete_locked(c, events);
      }
      while (!deadlines.empty() && deadlines.begin()->first <= now) {
        const uint64_t id = deadlines.begin()->second;
        deadlines.erase(deadlines.begin());
        fail_remaining_locked(id, OUTPOST_E_TIMEOUT, "no answer before the deadline", events);
      }
      dispatch_due_locked(now, events);
      next = next_wake_locked(now);
    }
    if (!events.empty()) emit(std::move(events));
    return next;
  }

  Clock::time_point next_wake_locked(Clock::time_point now) const {
    Clock::time_point next = Clock::time_point::max();
    if (holding)
      next = now + kHoldRetry;
    else if (!heap.empty() && in_flight < opt.max_in_flight)
      next = heap.top().first;
    if (!deadlines.empty()) next = std::min(next, deadlines.begin()->first);
    return next;
  }

  void dispatch_due_locked(Clock::time_point now, Batch& events) {
    const auto due = [&] {
      return !heap.empty() && heap.top().first <= now + kCoalesce && in_flight < opt.max_in_flight;
    };
    if (due() && opt.congested && opt.congested()) {
      if (!holding) held_since = now;
      holding = true;
      return;
    }
    if (holding) {
      held_s += std::chrono::duration<double>(now - held_since).count();
      holding = false;
    }
    std::map<std::pair<PluginInstance*, double>, std::vector<std::size_t>> groups;
    while (due()) {
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
                        now, events);
      }
    }
  }

  void dispatch_locked(PluginInstance* inst, double timeout_s, std::vector<std::size_t> idxs,
                       Clock::time_point now, Batch& events) {
    auto p = std::make_shared<Poll>();
    p->id = next_poll_id++;
    p->inst = inst;
    p->table = table;
    p->tasks = std::move(idxs);
    p->done.assign(p->tasks.size(), false);
    p->remaining = p->tasks.size();
    p->start = now;
    p->deadline = now + secs(timeout_s);
    // Plugins compare it with host_api->monotonic_ns, the real clock, whatever ours is.
    p->deadline_ns = host_mono_ns() +
                     std::chrono::duration_cast<std::chrono::nanoseconds>(secs(timeout_s)).count();
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
    deadlines.insert({p->deadline, p->id});
    const bool queued = inst->post([this, p] {
      outpost_poll_request r{};
      r.struct_size = sizeof r;
      r.target_size = sizeof(outpost_target);
      r.poll_id = p->id;
      r.deadline_ns = p->deadline_ns;
      r.targets = p->targets.data();
      r.target_count = p->targets.size();
      const outpost_status st = p->inst->call_poll(r);
      if (st != OUTPOST_OK) {
        Completion c;
        c.poll_id = p->id;
        c.status = st;
        c.detail = "poll hook failed";
        c.all = true;
        queue(std::move(c));
      }
    });
    if (!queued) {
      stats[inst->name()].busy += p->tasks.size();
      fail_remaining_locked(p->id, OUTPOST_E_BUSY,
                            "plugin instance busy: an earlier poll has not returned", events);
    }
  }

  // Completions are handled by run_due(): the plugin's thread only queues them.
  void queue(Completion c) {
    std::lock_guard g(mu);
    if (!running) {
      if (!c.all) stats[c.instance].late++;
      return;
    }
    completions.push_back(std::move(c));
    wake.notify_one();
  }

  void fail_remaining_locked(uint64_t poll_id, outpost_status st, const std::string& detail,
                             Batch& events) {
    auto it = polls.find(poll_id);
    if (it == polls.end()) return;
    auto p = it->second;
    for (std::size_t i = 0; i < p->tasks.size(); ++i)
      if (!p->done[i]) finish_target_locked(*p, i, st, detail, events);
    finish_poll_locked(*p);
  }

  void on_complete_locked(const Completion& c, Batch& events) {
    auto it = polls.find(c.poll_id);
    if (it == polls.end() || it->second->inst->name() != c.instance || c.target_id == 0 ||
        c.target_id > it->second->tasks.size() || it->second->done[c.target_id - 1]) {
      stats[c.instance].late++;
      return;
    }
    auto p = it->second;
    finish_target_locked(*p, c.target_id - 1, c.status, c.detail, events);
    if (p->remaining == 0) finish_poll_locked(*p);
  }

  void finish_poll_locked(const Poll& p) {
    deadlines.erase({p.deadline, p.id});
    polls.erase(p.id);
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
    s.duration_sum_s += std::chrono::duration<double>(clock->mono() - p.start).count();
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
      r.status.last_ok_ns = clock->wall_ns();
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
          clock->wall_ns(),
          {{"monitor", p.inst->name()}, {"address", spec.address}, {"status", status_name(st)}});
    }
    reschedule_locked(idx);
  }

  void reschedule_locked(std::size_t idx) {
    Runtime& r = rt[idx];
    r.in_flight = false;
    --in_flight;
    if (!running) return;
    const auto now = clock->mono();
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
  impl_->clock = options.clock ? options.clock : std::make_shared<RealTime>();
  impl_->opt = std::move(options);
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
  const auto now = m.clock->mono();
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
  if (!m.opt.clock) m.thread = std::thread([&m] { m.loop(); });
}

void Scheduler::stop() {
  Impl& m = *impl_;
  {
    std::lock_guard g(m.mu);
    if (!m.running) return;
    m.running = false;
    if (m.holding) {
      m.held_s += std::chrono::duration<double>(m.clock->mono() - m.held_since).count();
      m.holding = false;
    }
    for (const auto& c : m.completions)
      if (!c.all) m.stats[c.instance].late++;
    m.completions.clear();
    m.polls.clear();
    m.deadlines.clear();
    m.wake.notify_all();
  }
  if (m.thread.joinable()) m.thread.join();
}

MonoClock::time_point Scheduler::run_due() { return impl_->run_due(); }

void Scheduler::complete(const std::string& instance, uint64_t poll_id, uint64_t target_id,
                         outpost_status status, std::string_view detail) {
  Impl::Completion c;
  c.instance = instance;
  c.poll_id = poll_id;
  c.target_id = target_id;
  c.status = status;
  c.detail = detail;
  impl_->queue(std::move(c));
}

SchedulerStats Scheduler::stats() const {
  std::lock_guard g(impl_->mu);
  SchedulerStats s;
  s.in_flight = impl_->in_flight;
  s.held_s = impl_->held_s;
  if (impl_->holding)
    s.held_s += std::chrono::duration<double>(impl_->clock->mono() - impl_->held_since).count();
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
