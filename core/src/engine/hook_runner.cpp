#include "engine/hook_runner.hpp"

#include <chrono>

namespace outpost::core {

struct HookRunner::State {
  std::mutex mu;
  std::condition_variable cv;
  std::condition_variable idle_cv;
  std::deque<std::function<void()>> jobs;
  std::size_t max_queue = 64;
  bool quit = false;
  bool running = false;
  std::chrono::steady_clock::time_point started{};
};

HookRunner::HookRunner(std::size_t max_queue) : state_(std::make_shared<State>()) {
  state_->max_queue = max_queue;
  thread_ = std::thread([s = state_] {
    std::unique_lock lk(s->mu);
    for (;;) {
      s->cv.wait(lk, [&] { return s->quit || !s->jobs.empty(); });
      if (s->jobs.empty()) break;  // quit and drained
      auto job = std::move(s->jobs.front());
      s->jobs.pop_front();
      s->running = true;
      s->started = std::chrono::steady_clock::now();
      lk.unlock();
      job();
      lk.lock();
      s->running = false;
      s->idle_cv.notify_all();
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

bool HookRunner::stuck(double seconds) const {
  std::lock_guard g(state_->mu);
  return state_->running &&
         std::chrono::steady_clock::now() - state_->started > std::chrono::duration<double>(seconds);
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
  if (idle) thread_.join();
  else thread_.detach();
}

}  // namespace outpost::core
