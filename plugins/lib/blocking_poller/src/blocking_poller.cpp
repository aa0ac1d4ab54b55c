#include "outpost_lib/blocking_poller.hpp"

#include <algorithm>
#include <chrono>

namespace outpost::lib {

std::size_t blocking_poller_threads(const outpost::Config& cfg, int64_t default_threads) {
  const int64_t n = cfg.get_int("max_concurrent", default_threads);
  if (n < 1 || n > 1024) throw outpost::Error(OUTPOST_E_CONFIG, "max_concurrent must be 1-1024");
  return static_cast<std::size_t>(n);
}

BlockingPoller::BlockingPoller(outpost::Host host, std::string name, std::size_t threads)
    : host_(host), name_(std::move(name)), threads_(std::max<std::size_t>(threads, 1)) {}

BlockingPoller::~BlockingPoller() { stop(); }

void BlockingPoller::start() {
  std::lock_guard g(mu_);
  if (started_) return;
  started_ = true;
  stopping_ = false;
  for (std::size_t i = 0; i < threads_; ++i) workers_.emplace_back([this] { worker(); });
  watchdog_ = std::thread([this] { watchdog(); });
}

void BlockingPoller::stop() {
  {
    std::lock_guard g(mu_);
    if (!started_) {
      // Never started: what was submitted is still answered, once.
      for (auto& it : queue_) finish_locked(*it, OUTPOST_E_UNAVAILABLE, name_ + " plugin stopped");
      queue_.clear();
      return;
    }
    stopping_ = true;
    for (auto& it : queue_) finish_locked(*it, OUTPOST_E_UNAVAILABLE, name_ + " plugin stopped");
    queue_.clear();
    for (auto& it : running_)
      finish_locked(*it, OUTPOST_E_UNAVAILABLE, name_ + " plugin stopped while polling");
  }
  work_cv_.notify_all();
  watch_cv_.notify_all();
  for (auto& t : workers_) t.join();
  workers_.clear();
  if (watchdog_.joinable()) watchdog_.join();
  std::lock_guard g(mu_);
  running_.clear();
  started_ = false;
}

void BlockingPoller::submit(const outpost::PollRequest& req,
                            const std::function<Work(const outpost::Target&)>& make) {
  std::vector<std::shared_ptr<Item>> items;
  for (std::size_t i = 0; i < req.size(); ++i) {
    const outpost::Target t = req[i];
    try {
      auto item = std::make_shared<Item>();
      item->poll_id = req.id();
      item->target_id = t.id();
      item->deadline_ns = req.deadline_ns();
      item->work = make(t);
      items.push_back(std::move(item));
    } catch (const outpost::Error& e) {
      host_.complete(req.id(), t.id(), e.status(), e.what());
    }
  }
  {
    std::lock_guard g(mu_);
    for (auto& it : items) {
      if (stopping_)
        finish_locked(*it, OUTPOST_E_UNAVAILABLE, name_ + " plugin stopped");
      else
        queue_.push_back(std::move(it));
    }
  }
  work_cv_.notify_all();
  watch_cv_.notify_all();
}

void BlockingPoller::finish_locked(Item& item, outpost_status status, const std::string& detail) {
  if (item.done) return;
  item.done = true;
  host_.complete(item.poll_id, item.target_id, status, detail);
}

void BlockingPoller::worker() {
  std::unique_lock lk(mu_);
  for (;;) {
    work_cv_.wait(lk, [this] { return stopping_ || !queue_.empty(); });
    if (stopping_) return;
    std::shared_ptr<Item> item = std::move(queue_.front());
    queue_.pop_front();
    if (host_.monotonic_ns() >= item->deadline_ns) {
      finish_locked(*item, OUTPOST_E_TIMEOUT,
                    "not started before the poll's deadline: more targets than " +
                        std::to_string(threads_) + " workers can poll in time");
      continue;
    }
    running_.push_back(item);
    watch_cv_.notify_all();
    lk.unlock();
    BlockingOutcome out;
    try {
      out = item->work(item->deadline_ns);
    } catch (const outpost::Error& e) {
      out.status = e.status();
      out.detail = e.what();
    } catch (const std::exception& e) {
      out.status = OUTPOST_E_INTERNAL;
      out.detail = name_ + ": " + e.what();
    }
    lk.lock();
    running_.erase(std::find(running_.begin(), running_.end(), item));
    if (!item->done) {  // not cut off by the watchdog or stop: the result counts
      if (!out.metrics.empty() || !out.events.empty()) host_.emit(out.metrics, out.events);
      finish_locked(*item, out.status, out.detail);
    }
  }
}

void BlockingPoller::watchdog() {
  std::unique_lock lk(mu_);
  while (!stopping_) {
    int64_t next = INT64_MAX;
    const int64_t now = host_.monotonic_ns();
    for (auto& it : running_) {
      if (it->done) continue;
      if (now >= it->deadline_ns)
        finish_locked(*it, OUTPOST_E_TIMEOUT, "no answer before the poll's deadline");
      else
        next = std::min(next, it->deadline_ns);
    }
    for (auto& it : queue_) {
      if (it->done) continue;
      if (now >= it->deadline_ns)
        finish_locked(*it, OUTPOST_E_TIMEOUT,
                      "not started before the poll's deadline: more targets than " +
                          std::to_string(threads_) + " workers can poll in time");
      else
        next = std::min(next, it->deadline_ns);
    }
    std::erase_if(queue_, [](const auto& it) { return it->done; });
    const auto wait =
        next == INT64_MAX
            ? std::chrono::milliseconds(1000)
            : std::chrono::milliseconds(std::clamp<int64_t>((next - now) / 1'000'000 + 1, 1, 1000));
    watch_cv_.wait_for(lk, wait);
  }
}

}  // namespace outpost::lib
