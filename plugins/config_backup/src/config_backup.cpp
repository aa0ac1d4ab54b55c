// The config_backup poller: device configurations pulled over SSH (or Telnet where nothing else
// works) through plugins/lib/cli's vendor drivers, kept in a git repository per engine
// (plugins/lib/confstore: one commit per changed device), a change event carrying the unified
// diff; on request, configuration lines pushed or a chosen version rolled back, each with a
// confirmation step and audited.
#include <algorithm>
#include <chrono>
#include <mutex>
#include <outpost/sdk.hpp>
#include <outpost_lib/blocking_poller.hpp>
#include <outpost_lib/cli.hpp>
#include <outpost_lib/cli_target.hpp>
#include <outpost_lib/confstore.hpp>
#include <set>
#include <span>
#include <string_view>

namespace {

namespace cli = outpost::lib::cli;
namespace confstore = outpost::lib::confstore;
using outpost::Error;
using namespace std::chrono_literals;

// Lines given in one parameter: separated by newlines or by " ; ".
std::vector<std::string> lines_of(std::string_view text) {
  std::vector<std::string> out;
  std::string cur;
  auto flush = [&] {
    const auto b = cur.find_first_not_of(" \t\r");
    if (b != std::string::npos) out.push_back(cur.substr(b, cur.find_last_not_of(" \t\r") - b + 1));
    cur.clear();
  };
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '\n' || (text[i] == ';' && i > 0 && text[i - 1] == ' ')) {
      flush();
      continue;
    }
    cur += text[i];
  }
  flush();
  return out;
}

// What turns the running configuration `now` into `want`, line by line: "no <line>" for a line
// only `now` has, the line for one only `want` has. Comment and blank lines are left alone. Exact
// for flat configurations (FRRouting, Junos "display set", PAN-OS "set" form); nested IOS-style
// blocks are compared line by line too, so a rollback plan is shown before it is confirmed.
std::vector<std::string> rollback_plan(const std::string& now, const std::string& want) {
  auto set_of = [](const std::string& t) {
    std::vector<std::string> v;
    for (auto& l : lines_of(t))
      if (!l.empty() && l[0] != '!' && l[0] != '#' && l != "end" &&
          l.rfind("Current configuration", 0) != 0)
        v.push_back(l);
    return v;
  };
  const auto a = set_of(now), b = set_of(want);
  const std::set<std::string> sa(a.begin(), a.end()), sb(b.begin(), b.end());
  std::vector<std::string> plan;
  for (const auto& l : a)
    if (!sb.count(l)) plan.push_back(l.rfind("no ", 0) == 0 ? l.substr(3) : "no " + l);
  for (const auto& l : b)
    if (!sa.count(l)) plan.push_back(l);
  return plan;
}

std::string joined(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& l : v) s += (s.empty() ? "" : "\n") + l;
  return s;
}

class ConfigBackup final : public outpost::Poller {
 public:
  ConfigBackup(outpost::Host host, const outpost::Config& cfg)
      : host_(host), pool_(host, "config_backup", outpost::lib::blocking_poller_threads(cfg, 8)) {
    keys_ = cli::host_key_policy(cfg, host_, "config_backup");
    const std::string repo = cfg.get("repository");
    if (repo.empty()) throw Error(OUTPOST_E_CONFIG, "repository is required");
    const int64_t md = cfg.get_int("max_diff_bytes", 65536);
    if (md < 1024 || md > (16 << 20))
      throw Error(OUTPOST_E_CONFIG, "max_diff_bytes must be 1024-16777216");
    max_diff_ = static_cast<std::size_t>(md);
    lg_allow_ = cfg.get_list("lg_allow");
    if (lg_allow_.empty()) lg_allow_ = {"show ", "ping ", "traceroute "};
    for (const auto& g : cfg.get_list("lg_allow_group")) {
      const auto eq = g.find('=');
      if (eq == std::string::npos || eq == 0 || eq + 1 == g.size())
        throw Error(OUTPOST_E_CONFIG, "lg_allow_group: '" + g + "' is not GROUP=prefix");
      lg_group_allow_.emplace_back(g.substr(0, eq), g.substr(eq + 1));
    }
    lg_timeout_ =
        std::chrono::milliseconds(static_cast<int64_t>(cfg.get_seconds("lg_timeout", 30) * 1000));
    const int64_t lo = cfg.get_int("lg_max_output", 1 << 20);
    if (lo < 1024 || lo > (64 << 20))
      throw Error(OUTPOST_E_CONFIG, "lg_max_output must be 1024-67108864");
    lg_max_output_ = static_cast<std::size_t>(lo);
    try {
      store_ = std::make_unique<confstore::Store>(confstore::Store::open(
          repo, cfg.get("author_name", "Outpost"), cfg.get("author_email", "outpost@localhost")));
    } catch (const confstore::Error& e) {
      throw Error(OUTPOST_E_CONFIG, std::string("repository: ") + e.what());
    }
  }
  ~ConfigBackup() override { pool_.stop(); }

  static std::vector<outpost_field> config_fields() {
    using outpost::field;
    std::vector<outpost_field> f = cli::host_key_fields();
    for (auto& x : std::vector<outpost_field>{
             field("repository", OUTPOST_FIELD_STRING,
                   "The git repository of the configurations (created when absent), e.g. "
                   "${data_dir}/config-backups",
                   "", OUTPOST_FIELD_REQUIRED),
             field("author_name", OUTPOST_FIELD_STRING, "Author of the commits", "Outpost"),
             field("author_email", OUTPOST_FIELD_STRING, "Author's e-mail", "outpost@localhost"),
             field("max_diff_bytes", OUTPOST_FIELD_INT, "Diff carried by a change event, at most",
                   "65536"),
             field("max_concurrent", OUTPOST_FIELD_INT, "Devices at once (worker threads)", "8"),
             field("lg_allow", OUTPOST_FIELD_LIST,
                   "Looking glass: command prefixes any device may run (default: show, ping, "
                   "traceroute)"),
             field("lg_allow_group", OUTPOST_FIELD_LIST,
                   "Looking glass: GROUP=prefix, a prefix only devices of that group may run"),
             field("lg_timeout", OUTPOST_FIELD_DURATION, "Looking glass: one command, at most",
                   "30s"),
             field("lg_max_output", OUTPOST_FIELD_INT, "Looking glass: output bytes, at most",
                   "1048576"),
         })
      f.push_back(x);
    return f;
  }
  static std::vector<outpost_field> target_fields() {
    using outpost::field;
    std::vector<outpost_field> f = cli::target_fields(true);
    for (auto& x : std::vector<outpost_field>{
             field("driver", OUTPOST_FIELD_STRING,
                   "ios, nxos, eos, junos, panos, vtysh (FRRouting/Quagga) or linux (required to "
                   "connect)"),
             field("push", OUTPOST_FIELD_STRING,
                   "Configuration lines to apply (newline or \" ; \" separated), with confirm"),
             field("rollback", OUTPOST_FIELD_STRING,
                   "A stored version (commit or prefix) to bring the device back to, with confirm"),
             field("confirm", OUTPOST_FIELD_BOOL,
                   "Apply push or rollback; without it they only say what they would send",
                   "false"),
             field("requested_by", OUTPOST_FIELD_STRING,
                   "Who asked, for the audit event and commit", "operator"),
             field("group", OUTPOST_FIELD_STRING,
                   "The device's group, for the looking glass allowlist"),
             field(
                 "op", OUTPOST_FIELD_STRING,
                 "What the subcommands ask: history, show, diff (the repository) or lg (a command "
                 "on the device); empty: a backup"),
             field("version", OUTPOST_FIELD_STRING, "show: the version (default main); diff: from"),
             field("to", OUTPOST_FIELD_STRING, "diff: the newer version (default main)"),
             field("max", OUTPOST_FIELD_INT, "history: at most this many versions", "20"),
             field("command", OUTPOST_FIELD_STRING, "lg: the command to run on the device"),
         })
      f.push_back(x);
    return f;
  }

  static outpost::CommandPlan command(std::span<const std::string_view> args);

  void start() override { pool_.start(); }
  void stop() override { pool_.stop(); }
  void poll(const outpost::PollRequest& req) override {
    pool_.submit(req, [this](const outpost::Target& t) { return make_work(t); });
  }

 private:
  struct Request {
    cli::Options o;
    const cli::Driver* driver = nullptr;
    std::string device;
    outpost::Labels base;
    std::vector<std::string> push;
    std::string rollback, requested_by;
    bool confirm = false;
    std::string op, version, to, command, group;
    std::size_t max = 20;
  };

  outpost::lib::BlockingPoller::Work make_work(const outpost::Target& t) {
    const outpost::Config p = t.params();
    Request r;
    r.device = std::string(t.device());
    if (!confstore::valid_device_name(r.device))
      throw Error(OUTPOST_E_CONFIG,
                  "device name '" + r.device + "' cannot name a file in the store");
    r.op = p.get("op");
    r.base = t.labels();
    r.requested_by = p.get("requested_by", "operator");
    if (r.op == "history" || r.op == "show" || r.op == "diff") {
      r.version = p.get("version");
      r.to = p.get("to", "main");
      const int64_t mx = p.get_int("max", 20);
      r.max = static_cast<std::size_t>(std::clamp<int64_t>(mx, 1, 100000));
      return [this, r](int64_t) { return repository(r); };
    }
    if (!r.op.empty() && r.op != "lg")
      throw Error(OUTPOST_E_CONFIG, "op must be history, show, diff or lg");
    r.command = p.get("command");
    r.group = p.get("group");
    if (r.op == "lg" && r.command.empty()) throw Error(OUTPOST_E_CONFIG, "lg needs a command");
    r.driver = cli::find_driver(p.get("driver"));
    if (r.driver == nullptr)
      throw Error(OUTPOST_E_CONFIG,
                  "driver must be one of ios, nxos, eos, junos, panos, vtysh, linux");
    if (r.driver->show_config.empty() && r.op != "lg")
      throw Error(OUTPOST_E_CONFIG,
                  "driver " + r.driver->name + " has no configuration to back up");
    r.o = cli::target_options(t, host_, true);
    r.push = lines_of(p.get("push"));
    r.rollback = p.get("rollback");
    if (!r.push.empty() && !r.rollback.empty())
      throw Error(OUTPOST_E_CONFIG, "push and rollback do not go together");
    r.confirm = p.get_bool("confirm", false);
    if (r.o.transport == cli::Transport::telnet) warn_once(r.device);
    if (r.op == "lg") return [this, r](int64_t deadline_ns) mutable { return lg(r, deadline_ns); };
    return [this, r](int64_t deadline_ns) mutable { return work(r, deadline_ns); };
  }

  void warn_once(const std::string& device) {
    std::lock_guard g(warned_mu_);
    if (warned_.insert(device).second)
      host_.log(OUTPOST_LOG_WARN, "config_backup: " + device +
                                      " uses Telnet: the login and configuration cross the "
                                      "network in clear text");
  }

  outpost::Event event(const Request& r, std::string kind, uint32_t severity,
                       std::string message) const {
    outpost::Event ev = event_plain(r, std::move(kind), std::move(message));
    ev.severity = severity;
    ev.attributes.emplace_back("driver", r.driver->name);
    return ev;
  }

  outpost::lib::BlockingOutcome work(Request& r, int64_t deadline_ns) {
    outpost::lib::BlockingOutcome out;
    const auto t0 = std::chrono::steady_clock::now();
    const int64_t left_ms = (deadline_ns - host_.monotonic_ns()) / 1'000'000;
    const auto budget = std::chrono::milliseconds(std::max<int64_t>(left_ms, 1));
    r.o.connect_timeout = std::min<std::chrono::milliseconds>(budget, 15s);
    r.o.command_timeout = std::min<std::chrono::milliseconds>(budget, 60s);
    const cli::Driver& d = *r.driver;
    std::string trigger = "scheduled";
    try {
      auto s = cli::Session::open(r.o, keys_, d);
      if (!r.push.empty() || !r.rollback.empty()) {
        std::vector<std::string> lines = r.push;
        std::string what = "push";
        if (!r.rollback.empty()) {
          what = "rollback to " + r.rollback;
          std::optional<std::string> want;
          try {
            want = store_->show(r.device, r.rollback);
          } catch (const confstore::Error& e) {
            out.status = OUTPOST_E_NOT_FOUND;
            out.detail = std::string("rollback: ") + e.what();
            return out;
          }
          if (!want) {
            out.status = OUTPOST_E_NOT_FOUND;
            out.detail =
                "rollback: version " + r.rollback + " holds no configuration of " + r.device;
            return out;
          }
          lines = rollback_plan(cli::normalize_config(d, s->run(d.show_config)), *want);
        }
        auto ev = event(r, "config.push", OUTPOST_SEV_NOTICE, "");
        ev.attributes.emplace_back("action", what);
        ev.attributes.emplace_back("requested_by", r.requested_by);
        ev.attributes.emplace_back("lines", joined(lines));
        if (!r.confirm) {
          ev.severity = OUTPOST_SEV_INFO;
          ev.message = what + " on " + r.device + " not applied (no confirm): would send " +
                       std::to_string(lines.size()) + " lines";
          ev.attributes.emplace_back("applied", "false");
          out.events.push_back(std::move(ev));
          out.detail = "dry run: " + std::to_string(lines.size()) + " lines; confirm to apply";
          return out;
        }
        std::string failures;
        for (const auto& c : d.config_enter) s->run(c);
        for (const auto& l : lines) {
          const std::string o = s->run(l);
          if (s->failed(o)) failures += (failures.empty() ? "" : "; ") + l + ": " + o;
        }
        // A refused line drops the whole change where the device can (a candidate configuration),
        // and nothing is saved.
        for (const auto& c : failures.empty() ? d.config_commit : d.config_abort) {
          const std::string o = s->run(c);
          if (s->failed(o)) failures += (failures.empty() ? "" : "; ") + c + ": " + o;
        }
        for (const auto& c : d.config_exit) s->run(c);
        if (failures.empty())
          for (const auto& c : d.save) s->run(c);
        ev.attributes.emplace_back("applied", "true");
        if (!failures.empty()) {
          ev.severity = OUTPOST_SEV_WARNING;
          ev.attributes.emplace_back("errors", failures.substr(0, 4096));
        }
        ev.message = what + " on " + r.device + " by " + r.requested_by + ": " +
                     std::to_string(lines.size()) + " lines" +
                     (failures.empty() ? "" : ", refused: " + failures.substr(0, 200));
        out.events.push_back(std::move(ev));
        trigger = what + " by " + r.requested_by;
        if (!failures.empty()) {
          out.status = OUTPOST_E_CONFIG;
          out.detail = "the device refused: " + failures.substr(0, 500);
        }
      }
      const std::string raw = s->run(d.show_config);
      if (s->failed(raw)) {
        out.status = OUTPOST_E_UNAVAILABLE;
        out.detail = "'" + d.show_config + "' failed: " + raw.substr(0, 200);
        return out;
      }
      const std::string text = cli::normalize_config(d, raw);
      const auto change = store_->put(r.device, text, trigger, std::chrono::system_clock::now());
      const int64_t now = host_.now_ns();
      const double secs =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      out.metrics.push_back(
          {"config_backup_changed", r.base, change ? 1.0 : 0.0, now, OUTPOST_METRIC_GAUGE});
      out.metrics.push_back({"config_backup_size_bytes", r.base, static_cast<double>(text.size()),
                             now, OUTPOST_METRIC_GAUGE});
      out.metrics.push_back(
          {"config_backup_duration_seconds", r.base, secs, now, OUTPOST_METRIC_GAUGE});
      if (change) {
        auto ev = event(r, "config.change", OUTPOST_SEV_NOTICE,
                        change->previous.empty() ? "first configuration of " + r.device + " stored"
                                                 : "configuration of " + r.device + " changed: +" +
                                                       std::to_string(change->added) + " -" +
                                                       std::to_string(change->removed) + " lines");
        ev.attributes.emplace_back("commit", change->commit);
        ev.attributes.emplace_back("previous", change->previous);
        ev.attributes.emplace_back("added", std::to_string(change->added));
        ev.attributes.emplace_back("removed", std::to_string(change->removed));
        ev.attributes.emplace_back("trigger", trigger);
        ev.attributes.emplace_back("diff", change->diff.size() > max_diff_
                                               ? change->diff.substr(0, max_diff_) +
                                                     "\n[diff cut at " + std::to_string(max_diff_) +
                                                     " bytes]"
                                               : change->diff);
        out.events.push_back(std::move(ev));
      }
      if (out.detail.empty())
        out.detail = change ? "changed: commit " + change->commit.substr(0, 12) : "unchanged";
      if (s->host_key() == cli::HostKey::added) out.detail += "; host key added (first use)";
    } catch (const cli::Error& e) {
      out.status = cli::engine_status(e.status);
      out.detail = e.what();
    } catch (const confstore::Error& e) {
      out.status = OUTPOST_E_UNAVAILABLE;
      out.detail = std::string("repository: ") + e.what();
    }
    return out;
  }

  // `outpost config history|show|diff DEVICE`: the repository alone, no connection.
  outpost::lib::BlockingOutcome repository(const Request& r) {
    outpost::lib::BlockingOutcome out;
    auto text = [&](std::string body) {
      out.events.push_back(event_plain(r, "config.output", std::move(body)));
    };
    try {
      if (r.op == "history") {
        const auto h = store_->history(r.device, r.max);
        if (h.empty()) {
          out.status = OUTPOST_E_NOT_FOUND;
          out.detail = "no stored configuration of " + r.device;
          return out;
        }
        std::string body;
        for (const auto& v : h) {
          const auto t = std::chrono::system_clock::to_time_t(v.time);
          char when[32];
          std::tm tm{};
          ::gmtime_r(&t, &tm);
          std::strftime(when, sizeof when, "%Y-%m-%d %H:%M:%SZ", &tm);
          body += v.commit.substr(0, 12) + "  " + when + "  " + v.message + "\n";
        }
        body.pop_back();
        text(std::move(body));
      } else if (r.op == "show") {
        auto t = store_->show(r.device, r.version.empty() ? "main" : r.version);
        if (!t) {
          out.status = OUTPOST_E_NOT_FOUND;
          out.detail = "no configuration of " + r.device + " at " + r.version;
          return out;
        }
        if (!t->empty() && t->back() == '\n') t->pop_back();
        text(std::move(*t));
      } else {
        if (r.version.empty())
          throw Error(OUTPOST_E_CONFIG, "diff needs the version to start from");
        std::string d = store_->diff(r.device, r.version, r.to);
        if (!d.empty() && d.back() == '\n') d.pop_back();
        text(std::move(d));
      }
    } catch (const confstore::Error& e) {
      out.status = e.status == confstore::Status::not_found ? OUTPOST_E_NOT_FOUND
                   : e.status == confstore::Status::invalid ? OUTPOST_E_CONFIG
                                                            : OUTPOST_E_UNAVAILABLE;
      out.detail = e.what();
    }
    return out;
  }

  // Whether the looking glass may run `cmd` on a device of `group`: an allowed prefix, no second
  // command smuggled in, and pipes only into filters.
  std::string lg_refusal(const std::string& cmd, const std::string& group) const {
    if (cmd.find_first_of(";\n\r`") != std::string::npos || cmd.find("$(") != std::string::npos)
      return "one command only (no ';', newlines or substitutions)";
    bool allowed = false;
    for (const auto& a : lg_allow_) allowed = allowed || cmd.rfind(a, 0) == 0;
    for (const auto& [g, a] : lg_group_allow_)
      allowed = allowed || (g == group && cmd.rfind(a, 0) == 0);
    if (!allowed) return "not on the looking glass allowlist";
    static const char* const kFilters[] = {"include", "exclude", "begin", "section", "match",
                                           "count",   "except",  "last",  "no-more", "display",
                                           "i ",      "in ",     "ex ",   "be ",     "grep"};
    std::size_t bar = cmd.find('|');
    while (bar != std::string::npos) {
      std::size_t at = cmd.find_first_not_of(' ', bar + 1);
      const std::string rest = at == std::string::npos ? "" : cmd.substr(at);
      bool filter = false;
      for (const char* f : kFilters) filter = filter || rest.rfind(f, 0) == 0;
      if (!filter) return "a pipe may only filter the output";
      bar = cmd.find('|', bar + 1);
    }
    return {};
  }

  // `outpost lg DEVICE COMMAND`: one allowed command, bounded in time and size, audited.
  outpost::lib::BlockingOutcome lg(Request& r, int64_t deadline_ns) {
    outpost::lib::BlockingOutcome out;
    auto audit = event_plain(r, "config.lg", "");
    audit.attributes.emplace_back("command", r.command);
    audit.attributes.emplace_back("requested_by", r.requested_by);
    if (!r.group.empty()) audit.attributes.emplace_back("group", r.group);
    if (const std::string why = lg_refusal(r.command, r.group); !why.empty()) {
      audit.severity = OUTPOST_SEV_WARNING;
      audit.message = "looking glass on " + r.device + " refused for " + r.requested_by + ": " +
                      r.command + " (" + why + ")";
      audit.attributes.emplace_back("allowed", "false");
      out.events.push_back(std::move(audit));
      out.status = OUTPOST_E_AUTH;  // not authorised: the allowlist
      out.detail = "'" + r.command + "': " + why;
      return out;
    }
    const int64_t left_ms = (deadline_ns - host_.monotonic_ns()) / 1'000'000;
    const auto budget = std::chrono::milliseconds(std::max<int64_t>(left_ms, 1));
    r.o.connect_timeout = std::min<std::chrono::milliseconds>(budget, 15s);
    r.o.command_timeout = std::min(budget, lg_timeout_);
    r.o.max_output = lg_max_output_;
    audit.attributes.emplace_back("allowed", "true");
    try {
      auto s = cli::Session::open(r.o, keys_, *r.driver);
      std::string result = s->run(r.command);
      if (!result.empty() && result.back() == '\n') result.pop_back();
      audit.message = "looking glass on " + r.device + " by " + r.requested_by + ": " + r.command;
      audit.attributes.emplace_back("output_bytes", std::to_string(result.size()));
      out.events.push_back(std::move(audit));
      out.events.push_back(event_plain(r, "config.output", std::move(result)));
    } catch (const cli::Error& e) {
      audit.severity = OUTPOST_SEV_WARNING;
      audit.message = "looking glass on " + r.device + " by " + r.requested_by + ": " + r.command +
                      " failed: " + e.what();
      out.events.push_back(std::move(audit));
      out.status = cli::engine_status(e.status);
      out.detail = e.what();
    }
    return out;
  }

  outpost::Event event_plain(const Request& r, std::string kind, std::string message) const {
    outpost::Event ev;
    ev.kind = std::move(kind);
    ev.source = r.device;
    ev.severity = OUTPOST_SEV_INFO;
    ev.message = std::move(message);
    ev.attributes = r.base;
    ev.time_ns = host_.now_ns();
    return ev;
  }

  std::vector<std::string> lg_allow_;
  std::vector<std::pair<std::string, std::string>> lg_group_allow_;
  std::chrono::milliseconds lg_timeout_{30'000};
  std::size_t lg_max_output_ = 1 << 20;
  outpost::Host host_;
  cli::HostKeyPolicy keys_;
  std::size_t max_diff_ = 65536;
  std::unique_ptr<confstore::Store> store_;
  std::mutex warned_mu_;
  std::set<std::string> warned_;
  outpost::lib::BlockingPoller pool_;
};

const char* const kUsage = R"(usage: outpost config history DEVICE [--max N]
       outpost config show DEVICE [VERSION]
       outpost config diff DEVICE FROM [TO]
       outpost lg DEVICE COMMAND... --driver D --user U (--password P | --key-file F) [OPTIONS]

The configurations config_backup keeps (its repository, from the configuration file's
config_backup instance: -c FILE), and the looking glass: one allowed read-only command on a
device, bounded in time and output, audited as a config.lg event. VERSION, FROM and TO are
commits, prefixes of them, or git revisions (main, main~1); TO defaults to main.

lg options:
  --driver NAME       ios, nxos, eos, junos, panos, vtysh, linux
  --user NAME         account on the device
  --password P        password, or a reference (${env:NAME}, ${file:PATH})
  --key-file PATH     private key
  --port N            SSH port (22)
  --group NAME        the device's group (lg_allow_group)
  --by NAME           who asks, for the audit event (default: $USER)
)";

}  // namespace

outpost::CommandPlan ConfigBackup::command(std::span<const std::string_view> argv) {
  using outpost::CommandPlan;
  if (argv.empty() || argv[0] == "-h" || argv[0] == "--help")
    return CommandPlan::usage(kUsage, argv.empty() ? 2 : 0);
  const std::string op(argv[0]);
  if (op != "history" && op != "show" && op != "diff" && op != "lg")
    return CommandPlan::usage(
        std::string("outpost config: unknown command '") + op + "'\n" + kUsage, 2);
  CommandPlan plan;
  plan.run_poll = true;
  plan.print_kind = "config.output";
  plan.timeout_s = 120;
  plan.params.emplace_back("op", op);
  std::vector<std::string> pos;
  std::string by;
  for (std::size_t i = 1; i < argv.size(); ++i) {
    const std::string o(argv[i]);
    auto value = [&](const char* key) {
      if (i + 1 >= argv.size()) return false;
      const std::string v(argv[++i]);
      if (std::string_view(key) == "password" && v.rfind("${", 0) == 0)
        plan.params.emplace_back("password_ref", v);
      else
        plan.params.emplace_back(key, v);
      return true;
    };
    bool ok = true;
    if (o == "--max")
      ok = value("max");
    else if (o == "--driver")
      ok = value("driver");
    else if (o == "--user")
      ok = value("user");
    else if (o == "--password")
      ok = value("password");
    else if (o == "--key-file")
      ok = value("key_file");
    else if (o == "--port")
      ok = value("port");
    else if (o == "--transport")
      ok = value("transport");
    else if (o == "--group")
      ok = value("group");
    else if (o == "--by") {
      if (i + 1 >= argv.size())
        ok = false;
      else
        by = std::string(argv[++i]);
    } else if (o.rfind("--", 0) == 0)
      return CommandPlan::usage("outpost config: unknown option " + o + "\n", 2);
    else
      pos.push_back(o);
    if (!ok) return CommandPlan::usage("outpost config: " + o + " needs a value\n", 2);
  }
  if (pos.empty())
    return CommandPlan::usage("outpost config: which device?\n" + std::string(kUsage), 2);
  plan.targets.push_back(pos[0]);
  if (op == "show" && pos.size() > 1) plan.params.emplace_back("version", pos[1]);
  if (op == "diff") {
    if (pos.size() < 2) return CommandPlan::usage("outpost config diff: from which version?\n", 2);
    plan.params.emplace_back("version", pos[1]);
    if (pos.size() > 2) plan.params.emplace_back("to", pos[2]);
  }
  if (op == "lg") {
    if (pos.size() < 2) return CommandPlan::usage("outpost lg: which command?\n", 2);
    std::string c = pos[1];
    for (std::size_t i = 2; i < pos.size(); ++i) c += " " + pos[i];
    plan.params.emplace_back("command", c);
    if (by.empty()) {
      const char* u = std::getenv("USER");
      by = u != nullptr ? u : "operator";
    }
  }
  if (!by.empty()) plan.params.emplace_back("requested_by", by);
  return plan;
}

OUTPOST_PLUGIN(ConfigBackup, "config_backup", "1.0.0",
               "Device configurations over SSH (or Telnet) into git: a commit and a change event "
               "with the diff per changed device; push and rollback with confirmation, audited")
