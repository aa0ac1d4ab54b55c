#include "cli/poll.hpp"

#include <fmt/core.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <jsonl/jsonl.hpp>
#include <map>
#include <memory>
#include <mutex>
#include <outpost/sdk.hpp>
#include <sstream>

#include "config/config.hpp"
#include "engine/instance.hpp"
#include "loader/loader.hpp"
#include "util/clock.hpp"
#include "util/log.hpp"
#include "util/status.hpp"

namespace outpost::core::cli {

namespace {

using Clock = std::chrono::steady_clock;

int64_t wall_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// The host side of one poll: collects what the plugin emits and how each target completes.
class PollHost final : public HostServices {
 public:
  PollHost(const Config& cfg, const std::vector<std::string>& targets) : cfg_(cfg) {
    for (const auto& t : targets)
      targets_.push_back(TargetOutcome{t, false, OUTPOST_E_TIMEOUT, {}, 0});
  }

  static constexpr uint64_t kPollId = 1;

  void started(Clock::time_point t) { start_ = t; }

  outpost_status emit(PluginInstance& from, const outpost_batch& batch) override {
    Batch b;
    b.add_c_batch(batch, wall_ns());
    const std::size_t n = b.items();
    {
      std::lock_guard g(mu_);
      batches_.push_back(std::move(b));
    }
    from.note_emit(true, n);
    return OUTPOST_OK;
  }

  void complete(PluginInstance&, uint64_t poll_id, uint64_t target_id, outpost_status status,
                std::string_view detail) override {
    std::lock_guard g(mu_);
    if (closed_ || poll_id != kPollId || target_id == 0 || target_id > targets_.size() ||
        targets_[target_id - 1].completed) {
      ++late_;
      return;
    }
    TargetOutcome& t = targets_[target_id - 1];
    t.completed = true;
    t.status = status;
    t.detail = std::string(detail);
    t.seconds = std::chrono::duration<double>(Clock::now() - start_).count();
    ++done_;
    cv_.notify_all();
  }

  outpost_status secret(std::string_view ref, std::string& out) override {
    return resolve_secret(cfg_.credentials, ref, out);
  }

  outpost_status reply(uint64_t, const outpost_sockaddr&, const uint8_t*, std::size_t) override {
    return OUTPOST_E_UNSUPPORTED;  // no listener sockets here
  }

  // Every target not reported yet gets `status` (the poll hook failed).
  void fail_remaining(outpost_status status, const std::string& detail) {
    std::lock_guard g(mu_);
    if (closed_) return;  // past the deadline: what was open timed out
    for (auto& t : targets_)
      if (!t.completed) {
        t.completed = true;
        t.status = status;
        t.detail = detail;
        t.seconds = std::chrono::duration<double>(Clock::now() - start_).count();
        ++done_;
      }
    cv_.notify_all();
  }

  // Waits for every target or the deadline; what is still open then timed out, and later
  // reports are counted as late, as the scheduler does.
  void wait(Clock::time_point deadline) {
    std::unique_lock lk(mu_);
    cv_.wait_until(lk, deadline, [&] { return done_ == targets_.size(); });
    for (auto& t : targets_)
      if (!t.completed) {
        t.status = OUTPOST_E_TIMEOUT;
        t.detail = "no answer before the deadline";
        t.seconds = std::chrono::duration<double>(deadline - start_).count();
      }
    closed_ = true;
  }

  void take(PollOutcome& out) {
    std::lock_guard g(mu_);
    out.batches = std::move(batches_);
    out.targets = targets_;
    out.late = late_;
  }

 private:
  const Config& cfg_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Batch> batches_;
  std::vector<TargetOutcome> targets_;
  std::size_t done_ = 0;
  uint64_t late_ = 0;
  bool closed_ = false;
  Clock::time_point start_ = Clock::now();
};

const outpost_field* find_field(const outpost_field* fields, std::size_t n, std::string_view name) {
  for (std::size_t i = 0; i < n; ++i)
    if (view(fields[i].name) == name) return &fields[i];
  return nullptr;
}

// Command-line key=value pairs as settings: a key repeated for a list field becomes key.0,
// key.1, ...; a key given again for any other field replaces the earlier value. Each key given
// replaces what `base` had for it (the config file's).
Settings to_settings(Settings base, const KeyValues& given, const outpost_field* fields,
                     std::size_t n, const std::string& origin) {
  std::map<std::string, std::size_t> list_index;
  const Location where{origin, 0, 0};
  for (const auto& given_kv : given) {
    const std::string& key = given_kv.first;
    const std::string& value = given_kv.second;
    const outpost_field* f = find_field(fields, n, key);
    const bool list = f != nullptr && f->type == OUTPOST_FIELD_LIST;
    auto& next = list_index[key];
    if (next == 0)
      std::erase_if(base, [&](const Setting& s) {
        return s.key == key || (s.key.size() > key.size() &&
                                s.key.compare(0, key.size(), key) == 0 && s.key[key.size()] == '.');
      });
    const std::string k = list ? key + "." + std::to_string(next) : key;
    ++next;
    std::erase_if(base, [&](const Setting& s) { return s.key == k; });
    base.push_back(Setting{k, value, where, where});
  }
  return base;
}

std::string plugin_names(const PluginRegistry& reg) {
  std::string s;
  for (const auto& [n, p] : reg.plugins()) s += (s.empty() ? "" : ", ") + n;
  return s.empty() ? std::string("none found") : s;
}

std::string format_value(double v) { return fmt::format("{}", v); }

std::string labels_text(const Batch& b, const MetricRec& m) {
  if (m.label_count == 0) return {};
  std::string s = "{";
  for (uint32_t i = 0; i < m.label_count; ++i) {
    const KvRec& kv = b.kvs()[m.label_begin + i];
    if (i != 0) s += ',';
    s += fmt::format("{}=\"{}\"", b.str(kv.key), b.str(kv.value));
  }
  return s + "}";
}

const char* severity_name(uint32_t s) {
  static const char* names[] = {"emerg",   "alert",  "crit", "error",
                                "warning", "notice", "info", "debug"};
  return s < 8 ? names[s] : "?";
}

}  // namespace

int poll_once(const PollSpec& spec, PollOutcome& out, std::ostream& err) {
  Config cfg;
  cfg.source = "<poll>";
  if (!spec.config_path.empty()) {
    auto r = parse_config_file(spec.config_path);
    if (!r.config) {
      for (const auto& e : r.errors) err << e.str() << "\n";
      return 2;
    }
    cfg = std::move(*r.config);
  }
  if (spec.targets.empty()) {
    err << "outpost poll: no target given\n";
    return 2;
  }
  std::vector<std::string> dirs = spec.plugin_dirs;
  dirs.insert(dirs.end(), cfg.engine.plugin_dirs.begin(), cfg.engine.plugin_dirs.end());
  for (auto& d : default_plugin_dirs()) dirs.push_back(d);
  PluginRegistry reg;
  reg.load_dirs(dirs);

  InstanceSpec inst;
  if (const InstanceSpec* configured = cfg.find_plugin(spec.plugin)) {
    inst = *configured;
  } else {
    inst.name = inst.plugin = spec.plugin;
    inst.path = "plugins." + spec.plugin;
    inst.where = Location{"--plugin", 0, 0};
  }
  out.instance = inst.name;
  out.plugin = inst.plugin;
  std::vector<ConfigError> errors;
  const LoadedPlugin* p = reg.find(inst.plugin);
  if (p == nullptr) {
    errors.push_back({inst.where, inst.path,
                      "no plugin named '" + inst.plugin + "' (loaded: " + plugin_names(reg) + ")"});
  } else if (!(p->desc.kinds & OUTPOST_KIND_POLLER)) {
    errors.push_back(
        {inst.where, inst.path,
         "plugin '" + inst.plugin + "' is a " + kinds_string(p->desc.kinds) + ", not a poller"});
  }
  if (!errors.empty()) {
    for (const auto& e : errors) err << e.str() << "\n";
    return 2;
  }
  const auto& d = p->desc;
  inst.settings = to_settings(std::move(inst.settings), spec.set, d.config_fields,
                              d.config_field_count, "--set");
  const Settings params =
      to_settings({}, spec.params, d.target_fields, d.target_field_count, "--param");
  validate_settings(inst.settings, d.config_fields, d.config_field_count, inst.path, inst.where,
                    errors);
  validate_settings(params, d.target_fields, d.target_field_count, "monitor",
                    Location{"--param", 0, 0}, errors);
  if (!errors.empty()) {
    for (const auto& e : errors) err << e.str() << "\n";
    return 2;
  }
  const double timeout_s = spec.timeout_s > 0 ? spec.timeout_s : cfg.engine.default_timeout_s;

  // What the poll hook borrows lives as long as the job that may outlive a stuck hook.
  struct Request {
    std::vector<std::string> addresses, keys, values;
    std::vector<outpost_kv> params;
    std::vector<std::vector<outpost_kv>> labels;
    std::vector<Labels> label_strings;  // what labels point into
    std::vector<outpost_target> targets;
    outpost_poll_request req{};
  };
  auto rq = std::make_shared<Request>();
  rq->addresses = spec.targets;
  for (const auto& s : params) {
    rq->keys.push_back(s.key);
    rq->values.push_back(expand_vars(s.value, cfg.engine));
  }
  for (std::size_t i = 0; i < rq->keys.size(); ++i)
    rq->params.push_back(outpost_kv{to_c(rq->keys[i]), to_c(rq->values[i])});
  rq->label_strings.reserve(rq->addresses.size());
  for (const auto& a : rq->addresses) {  // the address is also the device's name
    const auto& owned = rq->label_strings.emplace_back(outpost::target_labels(a, a, nullptr, 0));
    auto& kv = rq->labels.emplace_back();
    for (const auto& [k, v] : owned) kv.push_back(outpost_kv{to_c(k), to_c(v)});
  }
  for (std::size_t i = 0; i < rq->addresses.size(); ++i) {
    outpost_target t{};
    t.id = i + 1;
    t.device = t.address = to_c(rq->addresses[i]);
    t.params = rq->params.data();
    t.param_count = rq->params.size();
    t.labels = rq->labels[i].data();
    t.label_count = rq->labels[i].size();
    rq->targets.push_back(t);
  }

  auto host = std::make_shared<PollHost>(cfg, spec.targets);
  auto instance = std::make_unique<PluginInstance>(*host, *p, inst);
  std::string why;
  if (!instance->create(cfg.engine, why) || !instance->start(why)) {
    err << fmt::format("outpost poll: plugin instance '{}' (plugin {}): {}\n", inst.name,
                       inst.plugin, why);
    const auto st = instance->stats();
    return st.errors.count(OUTPOST_E_CONFIG) ? 2 : 1;
  }
  const auto start = Clock::now();
  const auto deadline =
      start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(timeout_s));
  host->started(start);
  rq->req.struct_size = sizeof(outpost_poll_request);
  rq->req.target_size = sizeof(outpost_target);
  rq->req.poll_id = PollHost::kPollId;
  rq->req.deadline_ns = host_mono_ns(deadline);
  rq->req.targets = rq->targets.data();
  rq->req.target_count = rq->targets.size();
  PluginInstance* raw = instance.get();
  const bool queued = instance->post([raw, rq, host] {
    const outpost_status st = raw->call_poll(rq->req);
    if (st != OUTPOST_OK) host->fail_remaining(st, "poll hook failed");
  });
  if (!queued) host->fail_remaining(OUTPOST_E_BUSY, "plugin instance busy");
  host->wait(deadline);
  instance->stop();  // what the plugin emits while stopping is still collected
  host->take(out);
  instance->destroy();
  if (instance->created()) {
    // A hook is stuck in the plugin: its threads may still call the host, so neither is freed
    // in the little time this process has left.
    (void)instance.release();
    (void)new std::shared_ptr<PollHost>(host);
  }
  return 0;
}

int exit_status(const PollOutcome& out) {
  int rc = out.targets.empty() ? 1 : 0;
  for (const auto& t : out.targets) {
    if (t.status == OUTPOST_E_CONFIG) return 2;
    if (t.status != OUTPOST_OK) rc = 1;
  }
  return rc;
}

void print_table(const PollOutcome& out, std::ostream& os) {
  std::size_t metrics = 0, events = 0, flows = 0;
  for (const auto& b : out.batches) {
    metrics += b.metrics().size();
    events += b.events().size();
    flows += b.flows().size();
  }
  if (metrics > 0) {
    std::vector<std::pair<std::string, const MetricRec*>> rows;
    std::size_t width = 0;
    for (const auto& b : out.batches)
      for (const auto& m : b.metrics()) {
        rows.emplace_back(std::string(b.str(m.name)) + labels_text(b, m), &m);
        width = std::max(width, rows.back().first.size());
      }
    width = std::min<std::size_t>(width, 100);
    os << fmt::format("{:<{}}  {:>14}  {}\n", "METRIC", width, "VALUE", "TYPE");
    for (const auto& [name, m] : rows)
      os << fmt::format("{:<{}}  {:>14}  {}\n", name, width, format_value(m->value),
                        m->type == OUTPOST_METRIC_COUNTER ? "counter" : "gauge");
    os << "\n";
  }
  if (events > 0) {
    os << "EVENTS\n";
    for (const auto& b : out.batches)
      for (const auto& e : b.events()) {
        // Attributes the message already shows are left out here (--json has them all).
        const std::string_view message = b.str(e.message);
        std::string attrs;
        for (uint32_t i = 0; i < e.attr_count; ++i) {
          const KvRec& kv = b.kvs()[e.attr_begin + i];
          const std::string_view value = b.str(kv.value);
          if (value.empty() || (value.size() >= 3 && message.find(value) != std::string_view::npos))
            continue;
          attrs += fmt::format("{}{}={}", attrs.empty() ? "" : " ", b.str(kv.key), value);
        }
        os << fmt::format("{:<7}  {}  {}  {}{}\n", severity_name(e.severity), b.str(e.kind),
                          b.str(e.source), b.str(e.message),
                          attrs.empty() ? "" : "  [" + attrs + "]");
      }
    os << "\n";
  }
  if (flows > 0) os << fmt::format("({} flow records)\n\n", flows);
  std::size_t width = 6;
  for (const auto& t : out.targets) width = std::max(width, t.address.size());
  os << fmt::format("{:<{}}  {:<11}  {:>9}  {}\n", "TARGET", width, "STATUS", "SECONDS", "DETAIL");
  for (const auto& t : out.targets)
    os << fmt::format("{:<{}}  {:<11}  {:>9.3f}  {}\n", t.address, width, status_name(t.status),
                      t.seconds, t.detail);
  if (out.late > 0)
    os << fmt::format("({} late completion{} ignored)\n", out.late, out.late == 1 ? "" : "s");
}

void print_json(const PollOutcome& out, std::ostream& os, bool metrics) {
  std::string line;
  for (const auto& b : out.batches) {
    BatchView v;
    v.build({&b});
    const outpost_batch c = v.c_batch();
    for (std::size_t i = 0; metrics && i < c.metric_count; ++i) {
      line.clear();
      jsonl::append_metric(line, c.metrics[i], 0);
      os << line;
    }
    for (std::size_t i = 0; i < c.event_count; ++i) {
      line.clear();
      jsonl::append_event(line, c.events[i], 0);
      os << line;
    }
    for (std::size_t i = 0; i < c.flow_count; ++i) {
      line.clear();
      jsonl::append_flow(line, c.flows[i]);
      os << line;
    }
  }
  for (const auto& t : out.targets) {
    line = "{\"type\":\"target\",\"address\":";
    jsonl::append_string(line, t.address);
    line += ",\"status\":";
    jsonl::append_string(line, status_name(t.status));
    line += ",\"code\":";
    jsonl::append_number(line, int64_t{t.status});
    line += ",\"detail\":";
    jsonl::append_string(line, t.detail);
    line += ",\"seconds\":";
    jsonl::append_number(line, t.seconds);
    line += ",\"completed\":";
    line += t.completed ? "true" : "false";
    line += "}\n";
    os << line;
  }
}

namespace {

const char* kPollUsage = R"(usage: outpost poll --plugin NAME [OPTIONS] TARGET...

One poll of the TARGETs (addresses; each is also the device name) through one poller plugin,
with what it emits and how every target completed printed, nothing stored.

options:
  --plugin NAME          a plugin instance of the config's plugins section, or a plugin name
  -c, --config FILE      take that instance's settings, the credentials and engine.plugin_dirs
  --plugin-dir DIR       look for plugins in DIR first (repeatable)
  --set KEY=VALUE        a plugin setting, over the config's (repeat a list setting's key)
  --param KEY=VALUE      a monitor parameter, as in a monitor (repeat a list parameter's key)
  --timeout DURATION     the poll's deadline (default: engine.scheduler.default_timeout, 10s)
  --json                 JSON lines: metrics and events as the file sink writes them, then
                         one {"type":"target"} line per target
  --log-level LEVEL      debug, info, warn (default) or error, on stderr

exit status: 0 every target OK, 1 a target failed, 2 usage or configuration error
)";

bool split_kv(const std::string& text, const char* opt, std::pair<std::string, std::string>& out) {
  const auto eq = text.find('=');
  if (eq == std::string::npos || eq == 0) {
    std::fprintf(stderr, "outpost poll: %s expects KEY=VALUE, got '%s'\n", opt, text.c_str());
    return false;
  }
  out = {text.substr(0, eq), text.substr(eq + 1)};
  return true;
}

}  // namespace

int cmd_poll(int argc, char** argv) {
  PollSpec spec;
  bool json = false;
  std::string log_level = "warn";
  for (int i = 0; i < argc; ++i) {
    const std::string o = argv[i];
    auto value = [&](std::string& into) {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "outpost poll: %s needs a value\n", o.c_str());
        return false;
      }
      into = argv[++i];
      return true;
    };
    std::string v;
    if (o == "-h" || o == "--help") {
      std::fputs(kPollUsage, stdout);
      return 0;
    } else if (o == "--plugin") {
      if (!value(spec.plugin)) return 2;
    } else if (o == "-c" || o == "--config") {
      if (!value(spec.config_path)) return 2;
    } else if (o == "--plugin-dir") {
      if (!value(v)) return 2;
      spec.plugin_dirs.push_back(v);
    } else if (o == "--set" || o == "--param") {
      std::pair<std::string, std::string> kv;
      if (!value(v) || !split_kv(v, o.c_str(), kv)) return 2;
      (o == "--set" ? spec.set : spec.params).push_back(std::move(kv));
    } else if (o == "--timeout") {
      if (!value(v)) return 2;
      const auto d = parse_duration_seconds(v);
      if (!d || *d <= 0) {
        std::fprintf(stderr, "outpost poll: --timeout: not a positive duration: %s\n", v.c_str());
        return 2;
      }
      spec.timeout_s = *d;
    } else if (o == "--json") {
      json = true;
    } else if (o == "--log-level") {
      if (!value(log_level)) return 2;
    } else if (!o.empty() && o[0] == '-') {
      std::fprintf(stderr, "outpost poll: unknown option %s\n%s", o.c_str(), kPollUsage);
      return 2;
    } else {
      spec.targets.push_back(o);
    }
  }
  if (spec.plugin.empty() || spec.targets.empty()) {
    std::fputs(kPollUsage, stderr);
    return 2;
  }
  LogLevel lvl;
  if (!parse_log_level(log_level, lvl)) {
    std::fprintf(stderr, "outpost poll: --log-level: expected debug, info, warn or error\n");
    return 2;
  }
  set_log_level(lvl);
  PollOutcome out;
  if (const int rc = poll_once(spec, out, std::cerr); rc != 0) return rc;
  if (json)
    print_json(out, std::cout);
  else
    print_table(out, std::cout);
  std::cout.flush();
  return exit_status(out);
}

}  // namespace outpost::core::cli
