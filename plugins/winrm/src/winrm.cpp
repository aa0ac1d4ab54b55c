// The winrm poller plugin: Windows servers over WS-Management (WinRM), with nothing installed on
// them. Settings, WQL profiles (plugins/lib/wql, shared with the wmi plugin), event log
// bookmarks and each target's parameters live here; the protocol runs in driver.cpp on the
// shared poller runtime.
#include <sys/stat.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <map>
#include <mutex>
#include <outpost/sdk.hpp>
#include <outpost_lib/async_poller.hpp>
#include <set>

#include "driver.hpp"

namespace {

namespace fs = std::filesystem;
namespace wql = outpost::lib::wql;
using outpost::Error;
using outpost::winrm::Auth;
using outpost::winrm::Task;
using outpost::winrm::WinrmJob;

constexpr int64_t kSecond = 1'000'000'000;

class WinrmPoller final : public outpost::Poller {
 public:
  WinrmPoller(outpost::Host host, const outpost::Config& cfg)
      : host_(host),
        driver_(host),
        planner_(host, cfg, "winrm", wql::builtin_profile_dir()),
        rt_(host, driver_, outpost::lib::async_poller_options(cfg, "winrm", 64)) {
    driver_.attach(rt_);
    driver_.set_bookmarks(&planner_.bookmarks());
    const double ot = cfg.get_seconds("operation_timeout", 30);
    if (ot <= 0 || ot > 3600) throw Error(OUTPOST_E_CONFIG, "operation_timeout must be 0-3600 s");
    operation_timeout_s_ = ot;
    const int64_t mx = cfg.get_int("max_elements", 200);
    if (mx < 1 || mx > 100000) throw Error(OUTPOST_E_CONFIG, "max_elements must be 1-100000");
    max_elements_ = static_cast<uint32_t>(mx);
  }
  ~WinrmPoller() override {
    try {
      stop();
    } catch (...) {
    }
  }
  WinrmPoller(const WinrmPoller&) = delete;
  WinrmPoller& operator=(const WinrmPoller&) = delete;

  static std::vector<outpost_field> config_fields() {
    using outpost::field;
    std::vector<outpost_field> f = wql::Planner::config_fields();
    for (auto& x : std::vector<outpost_field>{
             field("operation_timeout", OUTPOST_FIELD_DURATION,
                   "WS-Management OperationTimeout of each request", "30s"),
             field("max_elements", OUTPOST_FIELD_INT, "Instances asked for per Enumerate/Pull",
                   "200"),
         })
      f.push_back(x);
    for (auto& x : outpost::lib::async_poller_fields("64")) f.push_back(x);
    return f;
  }

  static std::vector<outpost_field> target_fields() {
    using outpost::field;
    std::vector<outpost_field> f = {
        field("transport", OUTPOST_FIELD_STRING,
              "http (5985; NTLM with message encryption) or https (5986; TLS)", "http"),
        field("port", OUTPOST_FIELD_INT, "TCP port; default 5985 for http, 5986 for https"),
        field("auth", OUTPOST_FIELD_STRING,
              "ntlm, kerberos (user@REALM; the KDC from krb5.conf), or basic (https only: a local "
              "account)",
              "ntlm"),
        field("path", OUTPOST_FIELD_STRING, "URL path of the WS-Management service", "/wsman"),
        field("spn", OUTPOST_FIELD_STRING,
              "Kerberos service principal, when not HTTP/<address> (e.g. HTTP/srv.corp.example)"),
        field("tls_verify", OUTPOST_FIELD_BOOL, "Verify the server's certificate and name (https)",
              "true"),
        field("tls_ca_file", OUTPOST_FIELD_STRING,
              "PEM file of the CAs to trust instead of the system's"),
        field("tls_server_name", OUTPOST_FIELD_STRING,
              "Name the certificate must carry (and SNI), when the address is not it"),
    };
    for (auto& x : wql::Planner::target_fields(true)) f.push_back(x);
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
  std::unique_ptr<WinrmJob> make_job(const outpost::Target& t) {
    const outpost::Config p = t.params();
    auto j = std::make_unique<WinrmJob>();
    auto& s = j->s;
    s.device = std::string(t.device());
    s.address = outpost::lib::Address::host_of(t.address());
    j->host = s.address;
    const std::string transport = p.get("transport", "http");
    if (transport != "http" && transport != "https")
      throw Error(OUTPOST_E_CONFIG, "transport must be http or https, not '" + transport + "'");
    s.https = transport == "https";
    const int64_t port = p.get_int("port", s.https ? 5986 : 5985);
    if (port < 1 || port > 65535) throw Error(OUTPOST_E_CONFIG, "port out of range 1-65535");
    s.port = static_cast<uint16_t>(port);
    const std::string auth = p.get("auth", "ntlm");
    if (auth == "ntlm")
      s.auth = Auth::ntlm;
    else if (auth == "basic")
      s.auth = Auth::basic;
    else if (auth == "kerberos")
      s.auth = Auth::kerberos;
    else
      throw Error(OUTPOST_E_CONFIG, "auth must be ntlm, kerberos or basic, not '" + auth + "'");
    if (s.auth == Auth::basic && !s.https)
      throw Error(OUTPOST_E_CONFIG,
                  "auth basic sends the password in clear: only with transport https");
    wql::Account acct = planner_.account(p);
    s.user = std::move(acct.user);
    s.domain = std::move(acct.domain);
    s.password = std::move(acct.password);
    s.path = p.get("path", "/wsman");
    if (s.path.empty() || s.path.front() != '/')
      throw Error(OUTPOST_E_CONFIG, "path must start with /");
    s.tls_verify = p.get_bool("tls_verify", true);
    s.tls_ca_file = p.get("tls_ca_file");
    s.tls_server_name = p.get("tls_server_name");
    if (s.https) {
      driver_.tls_context(s.tls_ca_file);  // a bad CA file is the target's config error
      if (!s.tls_verify)
        planner_.warn_once(
            s.device, "winrm: " + s.device + ": tls_verify is off: any certificate is accepted");
    }
    s.operation_timeout_s = operation_timeout_s_;
    s.max_elements = max_elements_;
    s.max_events = planner_.max_events();
    j->base = t.labels();
    if (s.auth == Auth::kerberos) kerberos_login(*j, p);

    wql::Plan plan = planner_.plan(p, s.device, true);
    j->tasks = std::move(plan.tasks);
    j->profiles = std::move(plan.profiles);
    s.query_events = plan.query_events;
    return j;
  }

  // "user@corp.example" -> user@CORP.EXAMPLE; "CORP\user" or "user" take the realm from
  // domain. A ticket-granting ticket per principal is kept until it nearly expires.
  void kerberos_login(WinrmJob& j, const outpost::Config& p) {
    std::string user = j.s.user, realm;
    if (const std::size_t bs = user.find('\\'); bs != std::string::npos) user = user.substr(bs + 1);
    if (const std::size_t at = user.rfind('@'); at != std::string::npos) {
      realm = user.substr(at + 1);
      user.resize(at);
    } else {
      realm = j.s.domain;
    }
    if (realm.empty())
      throw Error(OUTPOST_E_CONFIG, "auth kerberos needs user@REALM or domain (the DNS domain)");
    for (auto& c : realm) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    const std::string principal = user + "@" + realm;
    std::string spn = p.get("spn");
    if (spn.empty())
      spn = "HTTP/" + (j.s.tls_server_name.empty() ? j.s.address : j.s.tls_server_name);
    const std::size_t slash = spn.find('/');
    if (slash == std::string::npos || slash == 0 || slash + 1 == spn.size())
      throw Error(OUTPOST_E_CONFIG, "spn must look like HTTP/host");
    j.krb_service = spn.substr(0, slash) + "@" + spn.substr(slash + 1);
    const std::string key =
        principal + "\n" + std::to_string(std::hash<std::string>{}(j.s.password));
    try {
      std::shared_ptr<outpost::lib::gss::Credential> cred;
      {
        std::lock_guard g(krb_mu_);
        // A login that just failed is not tried again for every server of the poll: a wrong
        // password would lock the account, an unreachable KDC cost its timeout per server.
        if (auto f = krb_failed_.find(key);
            f != krb_failed_.end() && host_.monotonic_ns() < f->second.until_ns)
          throw Error(f->second.status, f->second.why + " (not tried again before " +
                                            std::to_string(kLoginRetryNs / kSecond) + " s)");
        auto it = krb_creds_.find(key);
        if (it != krb_creds_.end() && it->second->lifetime_left() > 300) cred = it->second;
      }
      if (!cred) {
        try {
          cred = outpost::lib::gss::Credential::acquire(principal, j.s.password);  // blocks
        } catch (const outpost::lib::gss::Error& e) {
          std::lock_guard g(krb_mu_);
          krb_failed_[key] = {host_.monotonic_ns() + kLoginRetryNs, e.status(), e.what()};
          throw;
        }
        std::lock_guard g(krb_mu_);
        krb_creds_[key] = cred;
        krb_failed_.erase(key);
      }
      j.krb_cred = cred;
      j.krb = std::make_unique<outpost::lib::gss::Context>(cred, j.krb_service);
      j.krb_token = j.krb->initial_token();  // blocks unless the service ticket is cached
    } catch (const outpost::lib::gss::Error& e) {
      throw Error(e.status(), e.what());
    }
  }

  outpost::Host host_;
  double operation_timeout_s_ = 30;
  uint32_t max_elements_ = 200;
  outpost::winrm::Driver driver_;  // before rt_, which drives it
  wql::Planner planner_;

  std::mutex krb_mu_;
  std::map<std::string, std::shared_ptr<outpost::lib::gss::Credential>> krb_creds_;
  struct LoginFailure {
    int64_t until_ns;
    outpost_status status;
    std::string why;
  };
  std::map<std::string, LoginFailure> krb_failed_;
  static constexpr int64_t kLoginRetryNs = 60 * kSecond;

  outpost::lib::AsyncPoller rt_;
};

}  // namespace

OUTPOST_PLUGIN(WinrmPoller, "winrm", "1.0.0",
               "Windows servers over WinRM (WS-Management): WQL profiles, event logs, services, "
               "remote commands; NTLM with message encryption, or TLS")
