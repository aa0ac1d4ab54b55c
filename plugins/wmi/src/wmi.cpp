// The wmi poller plugin: Windows servers over WMI/DCOM (DCE/RPC on 135 and the dynamic port the
// activation names), with nothing installed on them. The settings, WQL profiles, event log
// bookmarks and service control are the ones winrm has (plugins/lib/wql); the protocol runs in
// driver.cpp on the shared poller runtime.
#include <outpost/sdk.hpp>
#include <outpost_lib/async_poller.hpp>

#include "driver.hpp"

namespace {

namespace wql = outpost::lib::wql;
using outpost::Error;
using outpost::wmi::WmiJob;

class WmiPoller final : public outpost::Poller {
 public:
  WmiPoller(outpost::Host host, const outpost::Config& cfg)
      : host_(host),
        driver_(host),
        planner_(host, cfg, "wmi", wql::builtin_profile_dir()),
        rt_(host, driver_, outpost::lib::async_poller_options(cfg, "wmi", 64)) {
    driver_.attach(rt_);
    driver_.set_bookmarks(&planner_.bookmarks());
    const double nt = cfg.get_seconds("next_timeout", 30);
    if (nt <= 0 || nt > 3600) throw Error(OUTPOST_E_CONFIG, "next_timeout must be 0-3600 s");
    next_timeout_ms_ = static_cast<int32_t>(nt * 1000);
    const int64_t b = cfg.get_int("batch", 100);
    if (b < 1 || b > 10000) throw Error(OUTPOST_E_CONFIG, "batch must be 1-10000");
    batch_ = static_cast<uint32_t>(b);
  }
  ~WmiPoller() override {
    try {
      stop();
    } catch (...) {
    }
  }
  WmiPoller(const WmiPoller&) = delete;
  WmiPoller& operator=(const WmiPoller&) = delete;

  static std::vector<outpost_field> config_fields() {
    using outpost::field;
    std::vector<outpost_field> f = wql::Planner::config_fields();
    f.push_back(field("next_timeout", OUTPOST_FIELD_DURATION,
                      "How long one IEnumWbemClassObject::Next may wait for objects", "30s"));
    f.push_back(field("batch", OUTPOST_FIELD_INT, "Objects asked for per Next", "100"));
    for (auto& x : outpost::lib::async_poller_fields("64")) f.push_back(x);
    return f;
  }

  static std::vector<outpost_field> target_fields() {
    using outpost::field;
    std::vector<outpost_field> f = {
        field("port", OUTPOST_FIELD_INT,
              "TCP port of the DCOM object resolver (the WMI exporter's own port comes from it)",
              "135"),
        field("auth_level", OUTPOST_FIELD_STRING,
              "privacy (packet privacy: every call sealed) or integrity (signed only); Windows "
              "has refused less than integrity since its 2022-2023 DCOM hardening",
              "privacy"),
    };
    for (auto& x : wql::Planner::target_fields(false)) f.push_back(x);
    return f;
  }

  void start() override { rt_.start(); }
  void stop() override {
    rt_.stop();
    planner_.save_bookmarks();
  }

  void poll(const outpost::PollRequest& req) override {
    planner_.save_bookmarks();  // what the last polls moved; here, not on the I/O thread
    rt_.submit(req, [this](const outpost::Target& t) { return make_job(t); });
  }

 private:
  std::unique_ptr<WmiJob> make_job(const outpost::Target& t) {
    const outpost::Config p = t.params();
    auto j = std::make_unique<WmiJob>();
    auto& s = j->s;
    s.device = std::string(t.device());
    s.address = outpost::lib::Address::host_of(t.address());
    j->host = s.address;
    const int64_t port = p.get_int("port", 135);
    if (port < 1 || port > 65535) throw Error(OUTPOST_E_CONFIG, "port out of range 1-65535");
    s.port = static_cast<uint16_t>(port);
    const std::string level = p.get("auth_level", "privacy");
    if (level == "privacy")
      s.level = outpost::lib::dcerpc::AuthLevel::privacy;
    else if (level == "integrity")
      s.level = outpost::lib::dcerpc::AuthLevel::integrity;
    else
      throw Error(OUTPOST_E_CONFIG, "auth_level must be privacy or integrity, not '" + level + "'");
    s.account = planner_.account(p);
    s.next_timeout_ms = next_timeout_ms_;
    s.batch = batch_;
    s.max_events = planner_.max_events();
    j->base = t.labels();
    wql::Plan plan = planner_.plan(p, s.device, false);
    j->tasks = std::move(plan.tasks);
    j->profiles = std::move(plan.profiles);
    s.query_events = plan.query_events;
    return j;
  }

  outpost::Host host_;
  int32_t next_timeout_ms_ = 30000;
  uint32_t batch_ = 100;
  outpost::wmi::Driver driver_;  // before rt_, which drives it
  wql::Planner planner_;
  outpost::lib::AsyncPoller rt_;
};

}  // namespace

OUTPOST_PLUGIN(WmiPoller, "wmi", "1.0.0",
               "Windows servers over WMI/DCOM: WQL profiles, event logs, services; NTLMv2 with "
               "packet privacy")
