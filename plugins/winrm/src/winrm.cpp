// The winrm poller plugin: Windows servers over WS-Management (WinRM), with nothing installed on
// them. Settings, WQL profiles (plugins/lib/wql, shared with the wmi plugin), event log
// bookmarks and each target's parameters live here; the protocol runs in driver.cpp on the
// shared poller runtime.
#include <dlfcn.h>
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

fs::path plugin_dir() {
  Dl_info info{};
  if (::dladdr(reinterpret_cast<const void*>(&plugin_dir), &info) == 0 || info.dli_fname == nullptr)
    return {};
  std::error_code ec;
  fs::path p = fs::weakly_canonical(fs::path(info.dli_fname), ec);
  return (ec ? fs::path(info.dli_fname) : p).parent_path();
}

std::vector<std::string> split_names(const std::string& s) {
  std::vector<std::string> out;
  std::size_t at = 0;
  while (at <= s.size()) {
    std::size_t comma = s.find(',', at);
    if (comma == std::string::npos) comma = s.size();
    std::string n = s.substr(at, comma - at);
    n.erase(0, n.find_first_not_of(" \t"));
    n.erase(n.find_last_not_of(" \t") + 1);
    if (!n.empty()) out.push_back(n);
    at = comma + 1;
  }
  return out;
}

class WinrmPoller final : public outpost::Poller {
 public:
  WinrmPoller(outpost::Host host, const outpost::Config& cfg)
      : host_(host),
        driver_(host),
        rt_(host, driver_, outpost::lib::async_poller_options(cfg, "winrm", 64)) {
    driver_.attach(rt_);
    if (cfg.get_bool("builtin_profiles", true)) {
      const fs::path d = plugin_dir();
      if (!d.empty()) profile_dirs_.push_back(d / "wql-profiles");
    }
    for (auto& d : cfg.get_list("profile_dirs")) profile_dirs_.emplace_back(d);
    default_profiles_ = cfg.get("default_profiles", kDefaultProfiles);
    const std::string state = cfg.get("state_dir");
    bookmarks_ = std::make_unique<wql::Bookmarks>(
        state.empty() ? fs::path() : fs::path(state) / "eventlog-bookmarks");
    driver_.set_bookmarks(bookmarks_.get());
    const double lookback = cfg.get_seconds("eventlog_lookback", 3600);
    if (lookback > 36500.0 * 86400)
      throw Error(OUTPOST_E_CONFIG, "eventlog_lookback must be at most 36500d");
    lookback_ns_ = static_cast<int64_t>(lookback * 1e9);
    const int64_t me = cfg.get_int("max_events_per_poll", 1000);
    if (me < 1 || me > 1'000'000)
      throw Error(OUTPOST_E_CONFIG, "max_events_per_poll must be 1-1000000");
    max_events_ = static_cast<std::size_t>(me);
    const double ot = cfg.get_seconds("operation_timeout", 30);
    if (ot <= 0 || ot > 3600) throw Error(OUTPOST_E_CONFIG, "operation_timeout must be 0-3600 s");
    operation_timeout_s_ = ot;
    const int64_t mx = cfg.get_int("max_elements", 200);
    if (mx < 1 || mx > 100000) throw Error(OUTPOST_E_CONFIG, "max_elements must be 1-100000");
    max_elements_ = static_cast<uint32_t>(mx);
    reload_profiles(true);
    for (const auto& n : split_names(default_profiles_))
      if (profiles_->find(n) == nullptr)
        throw Error(OUTPOST_E_CONFIG, "default_profiles: no profile named '" + n + "'");
  }
  ~WinrmPoller() override {
    try {
      stop();
    } catch (...) {
    }
  }
  WinrmPoller(const WinrmPoller&) = delete;
  WinrmPoller& operator=(const WinrmPoller&) = delete;

  static constexpr const char* kDefaultProfiles =
      "windows-os,windows-disk,windows-network,windows-services,windows-eventlog";

  static std::vector<outpost_field> config_fields() {
    using outpost::field;
    std::vector<outpost_field> f = {
        field("profile_dirs", OUTPOST_FIELD_LIST,
              "Directories of WQL profile YAML files, read after the shipped ones; a profile of "
              "the same name replaces a shipped one. Re-read when they change"),
        field("builtin_profiles", OUTPOST_FIELD_BOOL,
              "Load the profiles shipped beside the plugin (<plugin dir>/wql-profiles)", "true"),
        field("default_profiles", OUTPOST_FIELD_STRING,
              "Profiles of targets that name none (comma-separated)", kDefaultProfiles),
        field("state_dir", OUTPOST_FIELD_STRING,
              "Where the event log bookmarks are kept across restarts (e.g. "
              "${data_dir}/winrm); empty: in memory only"),
        field("eventlog_lookback", OUTPOST_FIELD_DURATION,
              "How far back the first read of a log goes, when it has no bookmark yet", "1h"),
        field("max_events_per_poll", OUTPOST_FIELD_INT,
              "Event log entries reported per log and poll; the rest come next poll", "1000"),
        field("operation_timeout", OUTPOST_FIELD_DURATION,
              "WS-Management OperationTimeout of each request", "30s"),
        field("max_elements", OUTPOST_FIELD_INT, "Instances asked for per Enumerate/Pull", "200"),
    };
    for (auto& x : outpost::lib::async_poller_fields("64")) f.push_back(x);
    return f;
  }

  static std::vector<outpost_field> target_fields() {
    using outpost::field;
    return {
        field("transport", OUTPOST_FIELD_STRING,
              "http (5985; NTLM with message encryption) or https (5986; TLS)", "http"),
        field("port", OUTPOST_FIELD_INT, "TCP port; default 5985 for http, 5986 for https"),
        field("auth", OUTPOST_FIELD_STRING,
              "ntlm, kerberos (user@REALM; the KDC from krb5.conf), or basic (https only: a local "
              "account)",
              "ntlm"),
        field("user", OUTPOST_FIELD_STRING, "Account: user, DOMAIN\\user or user@domain"),
        field("domain", OUTPOST_FIELD_STRING, "NTLM domain, when user does not name it"),
        field("password", OUTPOST_FIELD_STRING, "Password, literally (prefer password_ref)"),
        field("password_ref", OUTPOST_FIELD_SECRET, "Password, a credential reference"),
        field("path", OUTPOST_FIELD_STRING, "URL path of the WS-Management service", "/wsman"),
        field("spn", OUTPOST_FIELD_STRING,
              "Kerberos service principal, when not HTTP/<address> (e.g. HTTP/srv.corp.example)"),
        field("tls_verify", OUTPOST_FIELD_BOOL, "Verify the server's certificate and name (https)",
              "true"),
        field("tls_ca_file", OUTPOST_FIELD_STRING,
              "PEM file of the CAs to trust instead of the system's"),
        field("tls_server_name", OUTPOST_FIELD_STRING,
              "Name the certificate must carry (and SNI), when the address is not it"),
        field("profile", OUTPOST_FIELD_STRING,
              "WQL profiles, comma-separated; default: the plugin's"),
        field("query", OUTPOST_FIELD_STRING,
              "A WQL query instead of the profiles: every instance becomes a windows.wmi_instance "
              "event"),
        field("namespace", OUTPOST_FIELD_STRING, "WMI namespace of query", "root/cimv2"),
        field("service", OUTPOST_FIELD_STRING,
              "A service (its Name) to control, with service_action"),
        field("service_action", OUTPOST_FIELD_STRING,
              "start, stop or restart the service; audited as a windows.service_control event"),
        field("command", OUTPOST_FIELD_STRING,
              "A command line run in a remote cmd shell: its output becomes a windows.command "
              "event"),
    };
  }

  void start() override { rt_.start(); }
  void stop() override {
    rt_.stop();
    save_bookmarks();
  }

  void poll(const outpost::PollRequest& req) override {
    save_bookmarks();  // what the last polls moved; here, not on the I/O thread
    reload_profiles(false);
    std::shared_ptr<const wql::ProfileSet> profiles;
    {
      std::lock_guard g(profiles_mu_);
      profiles = profiles_;
    }
    std::vector<std::unique_ptr<outpost::lib::PollJob>> jobs;
    for (std::size_t i = 0; i < req.size(); ++i) {
      const outpost::Target t = req[i];
      try {
        jobs.push_back(make_job(t, req.id(), profiles));
      } catch (const Error& e) {
        host_.complete(req.id(), t.id(), e.status(), e.what());
      }
    }
    rt_.submit(std::move(jobs), req.deadline_ns());
  }

 private:
  std::string profile_signature() const {
    std::string sig;
    for (const auto& d : profile_dirs_) {
      std::error_code ec;
      std::vector<std::string> parts;
      for (const auto& e : fs::directory_iterator(d, ec)) {
        struct stat st {};
        if (::stat(e.path().c_str(), &st) != 0) continue;
        parts.push_back(e.path().string() + ":" + std::to_string(st.st_size) + ":" +
                        std::to_string(st.st_mtim.tv_sec) + "." +
                        std::to_string(st.st_mtim.tv_nsec));
      }
      std::sort(parts.begin(), parts.end());
      sig += d.string() + "{";
      for (auto& p : parts) sig += p + ";";
      sig += "}";
    }
    return sig;
  }

  void reload_profiles(bool first) {
    const int64_t now = host_.monotonic_ns();
    std::lock_guard g(profiles_mu_);
    if (!first && now - profiles_checked_ns_ < kSecond) return;
    profiles_checked_ns_ = now;
    std::string sig = profile_signature();
    if (!first && sig == profiles_sig_) return;
    std::vector<std::string> errors;
    auto set = std::make_shared<wql::ProfileSet>(wql::ProfileSet::load(profile_dirs_, errors));
    for (const auto& e : errors) host_.report_error(OUTPOST_E_CONFIG, "winrm profile " + e);
    profiles_ = std::move(set);
    profiles_sig_ = std::move(sig);
  }

  void save_bookmarks() {
    try {
      bookmarks_->save();
    } catch (const Error& e) {
      host_.report_error(e.status(), std::string("winrm: event log bookmarks: ") + e.what());
    }
  }

  std::string secret_or_literal(const outpost::Config& p, const std::string& name) const {
    if (auto ref = p.find(name + "_ref"); ref && !ref->empty()) {
      try {
        return host_.secret(*ref);
      } catch (const Error& e) {
        throw Error(e.status() == OUTPOST_E_NOT_FOUND ? OUTPOST_E_CONFIG : e.status(),
                    name + "_ref: credential '" + std::string(*ref) + "' not found");
      }
    }
    return p.get(name);
  }

  std::unique_ptr<WinrmJob> make_job(const outpost::Target& t, uint64_t poll_id,
                                     std::shared_ptr<const wql::ProfileSet> profiles) {
    const outpost::Config p = t.params();
    auto j = std::make_unique<WinrmJob>();
    j->poll_id = poll_id;
    j->target_id = t.id();
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
    s.user = p.get("user");
    s.domain = p.get("domain");
    s.password = secret_or_literal(p, "password");
    if (s.user.empty()) throw Error(OUTPOST_E_CONFIG, "user is required");
    for (const auto& [what, text] : {std::pair{"user", &s.user}, std::pair{"domain", &s.domain},
                                     std::pair{"password", &s.password}}) {
      try {
        (void)outpost::lib::ntlm::utf16le(*text);
      } catch (const outpost::lib::ntlm::Error&) {
        throw Error(OUTPOST_E_CONFIG, std::string(what) + " is not valid UTF-8");
      }
    }
    s.path = p.get("path", "/wsman");
    if (s.path.empty() || s.path.front() != '/')
      throw Error(OUTPOST_E_CONFIG, "path must start with /");
    s.tls_verify = p.get_bool("tls_verify", true);
    s.tls_ca_file = p.get("tls_ca_file");
    s.tls_server_name = p.get("tls_server_name");
    if (s.https) {
      driver_.tls_context(s.tls_ca_file);  // a bad CA file is the target's config error
      if (!s.tls_verify)
        warn_once(s.device,
                  "winrm: " + s.device + ": tls_verify is off: any certificate is accepted");
    }
    s.operation_timeout_s = operation_timeout_s_;
    s.max_elements = max_elements_;
    s.max_events = max_events_;
    j->base = t.labels();
    j->profiles = profiles;
    if (s.auth == Auth::kerberos) kerberos_login(*j, p);

    const std::string service = p.get("service"), action = p.get("service_action");
    const std::string command = p.get("command"), query = p.get("query");
    if (service.empty() != action.empty())
      throw Error(OUTPOST_E_CONFIG, "service and service_action go together");
    if (!action.empty()) {
      if (action != "start" && action != "stop" && action != "restart")
        throw Error(OUTPOST_E_CONFIG, "service_action must be start, stop or restart");
      Task task;
      task.kind = Task::Kind::invoke;
      task.name = "service " + service;
      task.class_name = "Win32_Service";
      task.method = action == "start"  ? "StartService"
                    : action == "stop" ? "StopService"
                                       : "restart";
      task.action = action;
      task.selectors = {{"Name", service}};
      j->tasks.push_back(std::move(task));
    }
    if (!command.empty()) {
      Task task;
      task.kind = Task::Kind::command;
      task.name = "command";
      task.command = command;
      j->tasks.push_back(std::move(task));
    }
    if (!query.empty()) {
      Task task;
      task.name = "query";
      task.wql = query;
      task.wmi_namespace = p.get("namespace", "root/cimv2");
      s.query_events = true;
      j->tasks.push_back(std::move(task));
    }
    if (!j->tasks.empty()) {
      if (p.has("profile"))
        throw Error(OUTPOST_E_CONFIG, "profile does not go with query, command or service_action");
      return j;
    }
    const int64_t since = std::max<int64_t>(host_.now_ns() - lookback_ns_, 0);
    for (const auto& name : split_names(p.get("profile", default_profiles_))) {
      const wql::Profile* prof = profiles->find(name);
      if (prof == nullptr) throw Error(OUTPOST_E_CONFIG, "unknown profile '" + name + "'");
      for (const auto& q : prof->queries) {
        if (q.eventlog) {
          for (const auto& log : q.eventlog->logs) {
            Task task;
            task.kind = Task::Kind::eventlog;
            task.name = name + "/" + q.name + "/" + log;
            task.query = &q;
            task.wmi_namespace = q.wmi_namespace;
            task.log = log;
            task.bookmark_key = task.name;
            task.after_record = bookmarks_->get(s.device, task.bookmark_key);
            if (task.after_record) task.window_end = *task.after_record + max_events_;
            task.wql = wql::eventlog_wql(*q.eventlog, log, task.after_record, since, max_events_);
            j->tasks.push_back(std::move(task));
          }
          continue;
        }
        Task task;
        task.name = name + "/" + q.name;
        task.query = &q;
        task.wmi_namespace = q.wmi_namespace;
        task.wql = q.wql;
        j->tasks.push_back(std::move(task));
      }
    }
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
        auto it = krb_creds_.find(key);
        if (it != krb_creds_.end() && it->second->lifetime_left() > 300) cred = it->second;
      }
      if (!cred) {
        cred = outpost::lib::gss::Credential::acquire(principal, j.s.password);  // blocks: the KDC
        std::lock_guard g(krb_mu_);
        krb_creds_[key] = cred;
      }
      j.krb_cred = cred;
      j.krb = std::make_unique<outpost::lib::gss::Context>(cred, j.krb_service);
      j.krb_token = j.krb->initial_token();  // blocks unless the service ticket is cached
    } catch (const outpost::lib::gss::Error& e) {
      throw Error(e.status(), e.what());
    }
  }

  void warn_once(const std::string& key, const std::string& text) {
    std::lock_guard g(warned_mu_);
    if (warned_.insert(key).second) host_.log(OUTPOST_LOG_WARN, text);
  }

  outpost::Host host_;
  std::vector<fs::path> profile_dirs_;
  std::string default_profiles_;
  std::unique_ptr<wql::Bookmarks> bookmarks_;
  int64_t lookback_ns_ = 3600 * kSecond;
  std::size_t max_events_ = 1000;
  double operation_timeout_s_ = 30;
  uint32_t max_elements_ = 200;

  std::mutex profiles_mu_;
  std::shared_ptr<const wql::ProfileSet> profiles_;
  std::string profiles_sig_;
  int64_t profiles_checked_ns_ = 0;

  std::mutex krb_mu_;
  std::map<std::string, std::shared_ptr<outpost::lib::gss::Credential>> krb_creds_;

  std::mutex warned_mu_;
  std::set<std::string> warned_;

  outpost::winrm::Driver driver_;  // before rt_, which drives it
  outpost::lib::AsyncPoller rt_;
};

}  // namespace

OUTPOST_PLUGIN(WinrmPoller, "winrm", "1.0.0",
               "Windows servers over WinRM (WS-Management): WQL profiles, event logs, services, "
               "remote commands; NTLM with message encryption, or TLS")
