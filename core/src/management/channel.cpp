#include "management/channel.hpp"

#include <chrono>
#include <filesystem>
#include <future>
#include <random>
#include <set>

#include "config/validate.hpp"
#include "engine/engine.hpp"
#include "util/log.hpp"
#include "version.hpp"

namespace outpost::core::mgmt {
namespace fs = std::filesystem;

namespace {

int64_t unix_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string plugin_bundle(const std::string& name) { return "plugin/" + name; }

std::string version_of(const LoadedPlugin& p) {
  return std::string(p.desc.version.ptr, p.desc.version.len);
}

// The plugins a configuration runs instances of: the ones worth asking updates for.
std::set<std::string> plugins_in_use(const Config& cfg) {
  std::set<std::string> names;
  for (const auto& s : poller_specs(cfg)) names.insert(s.plugin);
  for (const auto& s : cfg.sinks) names.insert(s.plugin);
  for (const auto& s : cfg.processors) names.insert(s.plugin);
  return names;
}

}  // namespace

Channel::Channel(ManagementSpec spec, const std::string& data_dir, PluginRegistry& registry)
    : spec_(std::move(spec)), registry_(registry) {
  state_path_ =
      spec_.state_dir.empty() ? (fs::path(data_dir) / "management").string() : spec_.state_dir;
  while (!spec_.url.empty() && spec_.url.back() == '/') spec_.url.pop_back();
}

Channel::~Channel() { stop(); }

std::string Channel::state_key(const std::string& bundle, const char* what) const {
  return bundle + "." + what;
}

bool Channel::restore(Config& cfg) {
  for (const auto& path : spec_.public_keys) {
    PublicKey k;
    std::string why;
    if (!load_public_key(path, k, why)) {
      logf(LogLevel::error, "management.public_keys: {}", why);
      return false;
    }
    keys_.push_back(k);
  }
  std::string why;
  if (!state_.open(state_path_, why)) {
    logf(LogLevel::error, "management.state_dir: {}", why);
    return false;
  }
  for (const auto& n : {spec_.ca_file, spec_.client_cert, spec_.client_key}) {
    std::error_code ec;
    if (!n.empty() && !fs::is_regular_file(n, ec)) {
      logf(LogLevel::error, "management: {}: no such file", n);
      return false;
    }
  }
  // Plugin versions applied earlier, then the configuration that may use them.
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(state_.path("plugins"), ec))
    if (e.path().extension() == ".bundle") restore_plugin(e.path().stem().string());

  const auto bytes = state_.read_file("config.bundle");
  if (!bytes) return true;
  Bundle b;
  const std::string where = state_.path("config.bundle");
  if (open_bundle(*bytes, keys_, b, why) != Refusal::none ||
      b.manifest.kind != BundleKind::config) {
    logf(LogLevel::error, "management: {}: {}; starting from {}", where,
         why.empty() ? "not a config bundle" : why, cfg.source);
    return true;
  }
  auto r = parse_config_text(std::string(b.payload),
                             "remote configuration serial " + std::to_string(b.manifest.serial));
  if (r.config) {
    registry_.load_dirs(r.config->engine.plugin_dirs);
    r.errors = validate_config(*r.config, registry_);
  }
  if (!r.errors.empty() || !r.config) {
    logf(LogLevel::error,
         "management: the configuration applied last ({}) no longer validates: {}; starting "
         "from {}",
         where, r.errors.empty() ? "?" : r.errors[0].str(), cfg.source);
    return true;
  }
  r.config->management = cfg.management;
  cfg = *r.config;
  {
    std::lock_guard g(mu_);
    applied_config_ = cfg;
    stats_.serial["config"] = b.manifest.serial;
  }
  logf(LogLevel::info,
       "management: starting from the configuration applied last (serial {}); the local file "
       "sets only the management section",
       b.manifest.serial);
  return true;
}

bool Channel::restore_plugin(const std::string& name) {
  const std::string bundle = plugin_bundle(name);
  const std::string rel_bundle = "plugins/" + name + ".bundle";
  const auto bytes = state_.read_file(rel_bundle);
  Bundle b;
  std::string why;
  LoadedPlugin lp;
  bool ok = bytes && valid_plugin_name(name) &&
            open_bundle(*bytes, keys_, b, why) == Refusal::none &&
            b.manifest.kind == BundleKind::plugin && b.manifest.name == name;
  const std::string rel_lib =
      "plugins/" + name + "/" + std::to_string(b.manifest.serial) + "/outpost_" + name + ".so";
  if (ok) {
    // The unpacked library is the bundle's payload, or is written again from it.
    const auto lib = state_.read_file(rel_lib);
    if (!lib || sha256_hex(*lib) != b.manifest.payload_sha256)
      ok = state_.write_file(rel_lib, b.payload, why);
  }
  ok = ok && open_plugin(state_.path(rel_lib), name, lp, why) &&
       version_of(lp) == b.manifest.version;
  if (!ok) {
    logf(LogLevel::error, "management: {}: cannot restore the plugin update{}{}; using {}",
         state_.path(rel_bundle), why.empty() ? "" : ": ", why,
         registry_.find(name) ? registry_.find(name)->path : "no such plugin");
    return false;
  }
  registry_.replace(lp);
  std::lock_guard g(mu_);
  stats_.serial[bundle] = b.manifest.serial;
  logf(LogLevel::info, "management: plugin {} {} (serial {}) restored from {}", name,
       b.manifest.version, b.manifest.serial, state_.dir());
  return true;
}

void Channel::overlay(Config& cfg) const {
  std::lock_guard g(mu_);
  if (!applied_config_) return;
  ManagementSpec local = cfg.management;
  cfg = *applied_config_;
  cfg.management = local;
}

void Channel::start(Engine& engine) {
  engine_ = &engine;
  engine.set_metrics_hook([this](Batch& b, int64_t t) { add_metrics(b, t); });
  HttpsOptions o;
  o.ca_file = spec_.ca_file;
  o.client_cert = spec_.client_cert;
  o.client_key = spec_.client_key;
  o.proxy = spec_.proxy;
  o.user_agent = std::string("outpost/") + version();
  http_ = std::make_unique<HttpsClient>(o, &stopping_);
  stopping_ = false;
  thread_ = std::thread([this] { loop(); });
  logf(LogLevel::info, "management: polling {} every {}s (+-10%), state in {}", spec_.url,
       spec_.interval_s, state_.dir());
}

void Channel::stop() {
  {
    std::lock_guard g(wait_mu_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void Channel::loop() {
  std::mt19937_64 rng(std::random_device{}());
  // The first poll comes soon after start, the rest about one interval apart, each off by up to
  // 10% so a fleet of engines started together does not poll together.
  std::uniform_real_distribution<double> first(0.0, 0.1), next(0.9, 1.1);
  double delay = spec_.interval_s * first(rng);
  while (true) {
    {
      std::unique_lock lk(wait_mu_);
      if (wake_.wait_for(lk, std::chrono::duration<double>(delay),
                         [this] { return stopping_.load(); }))
        return;
    }
    poll_round();
    delay = spec_.interval_s * next(rng);
  }
}

bool Channel::on_engine(const std::function<void()>& fn) {
  auto done = std::make_shared<std::promise<void>>();
  auto result = done->get_future();
  if (!engine_->post([fn, done] {
        fn();
        done->set_value();
      })) {
    engine_gone_ = true;
    return false;
  }
  // Ready when fn ran; broken when the engine's loop ended first and dropped it unrun.
  try {
    result.get();
    return true;
  } catch (const std::future_error&) {
    engine_gone_ = true;
    return false;
  }
}

void Channel::note_fetch_error(const std::string& url, const std::string& error) {
  std::lock_guard g(mu_);
  const std::string e = url + ": " + error;
  if (e == last_error_) {
    logf(LogLevel::debug, "management: GET {} (still failing)", e);
    return;
  }
  last_error_ = e;
  logf(LogLevel::error, "management: GET {}; the running configuration and plugins stay", e);
}

void Channel::poll_round() {
  std::set<std::string> plugins;
  bool have_names = on_engine([&] { plugins = plugins_in_use(engine_->config()); });
  if (!have_names || stopping_) return;
  struct Want {
    std::string bundle, plugin, url;
  };
  std::vector<Want> wants{{"config", "", spec_.url + "/config.bundle"}};
  for (const auto& p : plugins)
    if (valid_plugin_name(p))
      wants.push_back({plugin_bundle(p), p, spec_.url + "/plugins/" + p + ".bundle"});
  bool all_ok = true;
  for (const auto& w : wants) {
    if (stopping_) return;
    const std::size_t limit = w.plugin.empty()
                                  ? kHeaderSize + kMaxManifest + kMaxConfigPayload + kSignatureSize
                                  : kMaxBundle;
    const FetchResult r = http_->get(w.url, state_.get(state_key(w.bundle, "etag")), limit);
    {
      std::lock_guard g(mu_);
      stats_.bytes_in += r.bytes_in;
      stats_.bytes_out += r.bytes_out;
    }
    if (stopping_) return;
    if (r.status == FetchResult::Status::error) {
      all_ok = false;
      note_fetch_error(w.url, r.error);
      break;  // the next URLs would most likely fail alike
    }
    handle(w.bundle, w.plugin, r);
  }
  std::lock_guard g(mu_);
  (all_ok ? stats_.polls_ok : stats_.polls_failed)++;
  stats_.last_ok = all_ok;
  stats_.last_poll_s = unix_now();
  if (all_ok && !last_error_.empty()) {
    logf(LogLevel::info, "management: {} answers again", spec_.url);
    last_error_.clear();
  }
}

void Channel::handle(const std::string& bundle, const std::string& plugin, const FetchResult& r) {
  if (r.status == FetchResult::Status::not_modified) {
    std::lock_guard g(mu_);
    stats_.not_modified++;
    logf(LogLevel::debug, "management: {}: not modified", bundle);
    return;
  }
  if (r.status == FetchResult::Status::not_found) {
    logf(LogLevel::debug, "management: {}: nothing published", bundle);
    return;
  }
  std::string why;
  Bundle b;
  Refusal refusal = open_bundle(r.body, keys_, b, why);
  const BundleKind want = plugin.empty() ? BundleKind::config : BundleKind::plugin;
  if (refusal == Refusal::none && (b.manifest.kind != want || b.manifest.name != plugin)) {
    refusal = Refusal::corrupt;
    why = "the manifest is for " + std::string(kind_name(b.manifest.kind)) +
          (b.manifest.name.empty() ? "" : " " + b.manifest.name) + ", fetched as " + bundle;
  }
  const uint64_t last = state_.get_u64(state_key(bundle, "serial"));
  bool unchanged = false;
  if (refusal == Refusal::none && b.manifest.serial <= last) {
    unchanged = b.manifest.serial == last &&
                b.manifest.payload_sha256 == state_.get(state_key(bundle, "sha256"));
    if (!unchanged) {
      refusal = Refusal::old_serial;
      why = "serial " + std::to_string(b.manifest.serial) + " is not newer than serial " +
            std::to_string(last) + ", applied already (a replayed or rolled-back bundle)";
    }
  }
  engine_gone_ = false;
  if (refusal == Refusal::none && !unchanged)
    refusal =
        want == BundleKind::config ? apply_config(b, r.body, why) : apply_plugin(b, r.body, why);
  if (engine_gone_) return;  // undecided: fetched again after a restart
  // Decided either way: the ETag is kept, so a refused bundle is not fetched again until it
  // changes on the server.
  state_.set(state_key(bundle, "etag"), r.etag);
  if (refusal == Refusal::none && !unchanged) {
    state_.set(state_key(bundle, "serial"), std::to_string(b.manifest.serial));
    state_.set(state_key(bundle, "sha256"), b.manifest.payload_sha256);
  }
  std::string save_why;
  if (!state_.save(save_why)) logf(LogLevel::warn, "management: {}", save_why);
  if (unchanged) {
    logf(LogLevel::debug, "management: {} serial {} is applied already", bundle, last);
    return;
  }
  if (refusal != Refusal::none) {
    count_refusal(bundle, refusal);
    logf(LogLevel::error, "management: refused {}{}: {}: {}; {}", bundle,
         b.manifest.serial ? " serial " + std::to_string(b.manifest.serial) : std::string(),
         refusal_name(refusal), why,
         plugin.empty() ? "the running configuration stays"
                        : "the running version of " + plugin + " stays");
    return;
  }
  std::lock_guard g(mu_);
  stats_.serial[bundle] = b.manifest.serial;
  stats_.applied[bundle]++;
}

Refusal Channel::apply_config(const Bundle& b, std::string_view bytes, std::string& why) {
  auto r = parse_config_text(std::string(b.payload),
                             "remote configuration serial " + std::to_string(b.manifest.serial));
  if (!r.config) {
    for (std::size_t i = 0; i < r.errors.size() && i < 5; ++i)
      logf(LogLevel::error, "{}", r.errors[i].str());
    why = std::to_string(r.errors.size()) +
          " error(s) in the configuration, the first: " + r.errors[0].str();
    return Refusal::invalid_config;
  }
  if (r.config->management.enabled) {
    why = "a remote configuration cannot carry a management section (only the local file sets it)";
    return Refusal::invalid_config;
  }
  Config next = *r.config;
  next.management = spec_;
  bool applied = false;
  if (!on_engine([&] { applied = engine_->reload(next); })) {
    why = "the engine is stopping";
    return Refusal::invalid_config;
  }
  if (!applied) {
    why = "the configuration does not validate (the errors are above)";
    return Refusal::invalid_config;
  }
  if (!state_.write_file("config.bundle", bytes, why))
    logf(LogLevel::warn, "management: applied, but not kept for a restart: {}", why);
  {
    std::lock_guard g(mu_);
    applied_config_ = next;
  }
  logf(LogLevel::info, "management: applied configuration serial {}", b.manifest.serial);
  return Refusal::none;
}

Refusal Channel::apply_plugin(const Bundle& b, std::string_view bytes, std::string& why) {
  const std::string& name = b.manifest.name;
  const std::string dir = "plugins/" + name + "/" + std::to_string(b.manifest.serial);
  const std::string rel_lib = dir + "/outpost_" + name + ".so";
  std::error_code ec;
  auto discard = [&] { fs::remove_all(state_.path(dir), ec); };
  if (!state_.write_file(rel_lib, b.payload, why)) return Refusal::load_failed;
  LoadedPlugin lp;
  if (!open_plugin(state_.path(rel_lib), name, lp, why)) {
    why = "the library does not load: " + why;
    discard();
    return Refusal::load_failed;
  }
  if (version_of(lp) != b.manifest.version) {
    why = "the library reports version " + version_of(lp) + " where the manifest says " +
          b.manifest.version;
    discard();
    return Refusal::load_failed;
  }
  bool swapped = false;
  if (!on_engine([&] {
        swapped = engine_->swap_plugin(lp, why);
        if (swapped) registry_.replace(lp);
      })) {
    why = "the engine is stopping";
    discard();
    return Refusal::load_failed;
  }
  if (!swapped) {
    why = "rolled back: " + why;
    discard();
    return Refusal::load_failed;
  }
  if (!state_.write_file("plugins/" + name + ".bundle", bytes, why))
    logf(LogLevel::warn, "management: applied, but not kept for a restart: {}", why);
  // Older unpacked versions go (a library still mapped stays usable after its file is gone).
  for (const auto& e : fs::directory_iterator(state_.path("plugins/" + name), ec))
    if (e.path().filename() != std::to_string(b.manifest.serial)) fs::remove_all(e.path(), ec);
  logf(LogLevel::info, "management: plugin {} updated to {} (serial {})", name, b.manifest.version,
       b.manifest.serial);
  return Refusal::none;
}

void Channel::count_refusal(const std::string& bundle, Refusal r) {
  std::lock_guard g(mu_);
  stats_.refusals[{bundle, refusal_name(r)}]++;
}

void Channel::add_metrics(Batch& b, int64_t t) const {
  std::lock_guard g(mu_);
  const auto counter = OUTPOST_METRIC_COUNTER;
  const auto gauge = OUTPOST_METRIC_GAUGE;
  b.add_metric("outpost_management_polls_total", {{"result", "ok"}},
               static_cast<double>(stats_.polls_ok), t, counter);
  b.add_metric("outpost_management_polls_total", {{"result", "failed"}},
               static_cast<double>(stats_.polls_failed), t, counter);
  b.add_metric("outpost_management_last_poll_ok", {}, stats_.last_ok ? 1.0 : 0.0, t, gauge);
  b.add_metric("outpost_management_last_poll_time_seconds", {},
               static_cast<double>(stats_.last_poll_s), t, gauge);
  b.add_metric("outpost_management_not_modified_total", {},
               static_cast<double>(stats_.not_modified), t, counter);
  b.add_metric("outpost_management_received_bytes_total", {}, static_cast<double>(stats_.bytes_in),
               t, counter);
  b.add_metric("outpost_management_sent_bytes_total", {}, static_cast<double>(stats_.bytes_out), t,
               counter);
  for (const auto& [bundle, serial] : stats_.serial)
    b.add_metric("outpost_management_applied_serial", {{"bundle", bundle}},
                 static_cast<double>(serial), t, gauge);
  for (const auto& [bundle, n] : stats_.applied)
    b.add_metric("outpost_management_applied_total", {{"bundle", bundle}}, static_cast<double>(n),
                 t, counter);
  for (const auto& [key, n] : stats_.refusals)
    b.add_metric("outpost_management_refusals_total",
                 {{"bundle", key.first}, {"reason", key.second}}, static_cast<double>(n), t,
                 counter);
}

}  // namespace outpost::core::mgmt
