// The management channel: on its own thread, polls the configured HTTPS endpoint for a signed
// configuration bundle and for signed updates of the plugins the running configuration uses,
// verifies each, and applies it through the engine's own thread (Engine::reload,
// Engine::swap_plugin). A refused bundle leaves everything running as it was; what was applied
// is kept in the state directory, so a restart starts from it. docs/management.md says more.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "config/config.hpp"
#include "loader/loader.hpp"
#include "management/bundle.hpp"
#include "management/https.hpp"
#include "management/signing.hpp"
#include "management/state.hpp"
#include "pipeline/batch.hpp"

namespace outpost::core {
class Engine;
}

namespace outpost::core::mgmt {

class Channel {
 public:
  // `data_dir`: the engine's, under which the state directory goes when none is configured.
  Channel(ManagementSpec spec, const std::string& data_dir, PluginRegistry& registry);
  ~Channel();
  Channel(const Channel&) = delete;
  Channel& operator=(const Channel&) = delete;

  // Before the engine starts: reads the public keys and the state directory, puts the plugin
  // versions applied earlier in the registry and, when the state directory holds an applied
  // configuration that still verifies and validates, puts it in place of `cfg` (keeping cfg's
  // management section). False, with the reason logged, when the channel cannot work.
  bool restore(Config& cfg);
  // What a SIGHUP re-read gives way to: the remote configuration applied last, if any.
  void overlay(Config& cfg) const;

  void start(Engine& engine);
  void stop();  // prompt: a transfer in progress is aborted

  void add_metrics(Batch& b, int64_t time_ns) const;

 private:
  void loop();
  void poll_round();
  void handle(const std::string& bundle, const std::string& plugin, const FetchResult& r);
  Refusal apply_config(const Bundle& b, std::string_view bytes, std::string& why);
  Refusal apply_plugin(const Bundle& b, std::string_view bytes, std::string& why);
  bool restore_plugin(const std::string& name);
  // Runs fn on the engine's thread and waits for it. False when the engine is not running.
  bool on_engine(const std::function<void()>& fn);
  void count_refusal(const std::string& bundle, Refusal r);
  void note_fetch_error(const std::string& url, const std::string& error);
  std::string state_key(const std::string& bundle, const char* what) const;

  ManagementSpec spec_;
  std::string state_path_;
  PluginRegistry& registry_;
  std::vector<PublicKey> keys_;
  StateDir state_;
  Engine* engine_ = nullptr;
  std::unique_ptr<HttpsClient> http_;
  std::thread thread_;
  std::atomic<bool> stopping_{false};
  bool engine_gone_ = false;  // on_engine found the engine's loop ended (the channel's thread)
  std::mutex wait_mu_;
  std::condition_variable wake_;

  mutable std::mutex mu_;  // what follows: read by add_metrics and overlay on other threads
  std::optional<Config> applied_config_;
  std::string last_error_;  // logged once until it changes or a poll succeeds
  struct Stats {
    uint64_t polls_ok = 0, polls_failed = 0, not_modified = 0, bytes_in = 0, bytes_out = 0;
    bool last_ok = false;
    int64_t last_poll_s = 0;
    std::map<std::string, uint64_t> serial;   // by bundle: config, plugin/<name>
    std::map<std::string, uint64_t> applied;  // by bundle
    std::map<std::pair<std::string, std::string>, uint64_t> refusals;  // (bundle, reason)
  } stats_;
};

}  // namespace outpost::core::mgmt
