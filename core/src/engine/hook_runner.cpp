#include "engine/hook_runner.hpp"

#include <chrono>
#include <map>

namespace outpost::core {

using Clock = std::chrono::steady_clock;

struct HookRunner::State {
  struct Periodic {
    Clock::duration period{};
    Clock::time_point due{};
    uint64_t generation = 0;  // a replaced job's firing does not reschedule the new one
    std::shared_ptr<std::function<void()>> job;
  };
  std::mutex mu;
  std::condition_variable cv;
  std::condition_variable idle_cv;
  std::deque<std::function<void()>> jobs;
  std::size_t max_queue = 64;
  bool quit = false;
  bool running = false;
  std::chrono::steady_clock::time_point started{};
  std::map<uint64_t, Periodic> periodic;
  uint64_t generations = 0;
  bool armed = false;

  // The periodic job due first, or periodic.end().
  std::map<uint64_t, Periodic>::iterator next_periodic() {
    auto best = periodic.end();
    if (!armed) return best;
    for (auto it = periodic.begin(); it != periodic.end(); ++it)
      if (best == periodic.end() || it->second.due < best->second.due) best = it;
    return best;
  }

  void run_unlocked(std::unique_lock<std::mutex>& lk, const std::function<void()>& job) {
    running = true;
    started = Clock::now();
    lk.unlock();
    job();
    lk.lock();
    running = false;
    idle_cv.notify_all();
  }
};

HookRunner::HookRunner(std::size_t max_queue) : state_(std::make_shared<State>()) {
  state_->max_queue = max_queue;
  thread_ = std::thread([s = state_] {
    std::unique_lock lk(s->mu);
    for (;;) {
      const auto p = s->next_periodic();
      const auto now = Clock::now();
      if (p != s->periodic.end() && p->second.due <= now && !s->quit) {
        const uint64_t id = p->first, generation = p->second.generation;
        const auto job = p->second.job;
        s->run_unlocked(lk, *job);
        auto again = s->periodic.find(id);
        if (again != s->periodic.end() && again->second.generation == generation) {
          auto& q = again->second;
          q.due += q.period;
          if (q.due <= Clock::now()) q.due = Clock::now() + q.period;  // skip missed firings
        }
        continue;
      }
      if (!s->jobs.empty()) {
        auto job = std::move(s->jobs.front());
        s->jobs.pop_front();
        s->run_unlocked(lk, job);
        continue;
      }
      if (s->quit) break;  // quit and drained
      if (p != s->periodic.end()) {
        const auto due = p->second.due;  // a copy: the entry may go while this waits
        s->cv.wait_until(lk, due);
      } else {
        s->cv.wait(lk);
      }
    }
    s->idle_cv.notify_all();
  });
}

HookRunner::~HookRunner() { shutdown(5.0); }

bool HookRunner::post(std::function<void()> job) {
  {
    std::lock_guard g(state_->mu);
    if (state_->quit || state_->jobs.size() >= state_->max_queue) return false;
    state_->jobs.push_back(std::move(job));
  }
  state_->cv.notify_one();
  return true;
}

bool HookRunner::run_sync(std::function<void()> job, double timeout_s) {
  auto done = std::make_shared<std::pair<std::mutex, std::condition_variable>>();
  auto flag = std::make_shared<bool>(false);
  const bool queued = post([job = std::move(job), done, flag] {
    job();
    std::lock_guard g(done->first);
    *flag = true;
    done->second.notify_all();
  });
  if (!queued) return false;
  std::unique_lock lk(done->first);
  return done->second.wait_for(lk, std::chrono::duration<double>(timeout_s), [&] { return *flag; });
}

void HookRunner::set_periodic(uint64_t id, std::chrono::nanoseconds period,
                              std::function<void()> job) {
  {
    std::lock_guard g(state_->mu);
    if (period.count() <= 0) {
      state_->periodic.erase(id);
    } else {
      auto& p = state_->periodic[id];
      p.period = std::chrono::duration_cast<Clock::duration>(period);
      p.due = Clock::now() + p.period;
      p.generation = ++state_->generations;
      p.job = std::make_shared<std::function<void()>>(std::move(job));
    }
  }
  state_->cv.notify_one();
}

void HookRunner::arm_periodic(bool armed) {
  {
    std::lock_guard g(state_->mu);
    state_->armed = armed;
  }
  state_->cv.notify_one();
}

bool HookRunner::stuck(double seconds) const {
  std::lock_guard g(state_->mu);
  return state_->running && std::chrono::steady_clock::now() - state_->started >
                                std::chrono::duration<double>(seconds);
}

void HookRunner::shutdown(double grace_s) {
  if (!thread_.joinable()) return;
  bool idle = false;
  {
    std::unique_lock lk(state_->mu);
    state_->quit = true;
    state_->cv.notify_all();
    idle = state_->idle_cv.wait_for(lk, std::chrono::duration<double>(grace_s),
                                    [&] { return !state_->running && state_->jobs.empty(); });
    if (!idle) state_->jobs.clear();  // the stuck job keeps the thread; drop what waits behind it
  }
  if (idle)
    thread_.join();
  else
    thread_.detach();
}

}  // namespace outpost::core
