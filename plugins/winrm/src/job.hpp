// One target's poll over WinRM: the settings make_job() read, the work (tasks) and, while it
// runs, the connection, the authentication and the task in flight.
#pragma once

#include <openssl/ssl.h>

#include <memory>
#include <optional>
#include <outpost/sdk.hpp>
#include <outpost_lib/async_poller.hpp>
#include <outpost_lib/gss.hpp>
#include <outpost_lib/http1.hpp>
#include <outpost_lib/ntlm.hpp>
#include <outpost_lib/wql.hpp>
#include <outpost_lib/wql_plan.hpp>
#include <outpost_lib/wsman.hpp>
#include <string>
#include <vector>

namespace outpost::winrm {

namespace wql = outpost::lib::wql;
namespace wsman = outpost::lib::wsman;

enum class Auth { ntlm, basic, kerberos };

using Task = wql::Task;

struct Settings {
  std::string device, address;
  uint16_t port = 5985;
  bool https = false;
  Auth auth = Auth::ntlm;
  std::string user, domain, password;
  std::string path = "/wsman";
  bool tls_verify = true;
  std::string tls_ca_file;
  std::string tls_server_name;  // SNI and the name the certificate must carry
  double operation_timeout_s = 30;
  uint32_t max_envelope_size = 512000;
  uint32_t max_elements = 200;
  std::size_t max_events = 1000;
  int64_t eventlog_since_ns = 0;  // a log read the first time starts here
  bool query_events = false;      // ad hoc query: every instance becomes an event
};

struct WinrmJob final : outpost::lib::PollJob {
  Settings s;
  outpost::Labels base;
  std::shared_ptr<const wql::ProfileSet> profiles;  // keeps Task::query alive
  std::vector<Task> tasks;

  // ---- while it runs ----
  enum class Phase { connecting, tls, writing, reading } phase = Phase::connecting;
  int fd = -1;
  SSL* ssl = nullptr;
  std::size_t addr_index = 0;
  std::string out;  // bytes of the request still to send from out_at
  std::size_t out_at = 0;
  outpost::lib::http1::ResponseParser parser;
  std::string tls_end_point_hash;  // the server certificate's hash, for channel bindings

  enum class AuthStage {
    none,
    negotiate_sent,
    authenticate_sent,
    done
  } auth_stage = AuthStage::none;
  std::unique_ptr<outpost::lib::ntlm::Client> ntlm;
  // Kerberos: the credential (shared across polls) and this connection's context, whose first
  // token make_job() obtained on the poll thread (the KDC exchange blocks).
  std::shared_ptr<outpost::lib::gss::Credential> krb_cred;
  std::string krb_service;  // "HTTP@host"
  std::unique_ptr<outpost::lib::gss::Context> krb;
  std::vector<uint8_t> krb_token;
  std::optional<outpost::lib::ntlm::Session> session;
  bool encrypt = false;               // NTLM over HTTP: every body sealed (MS-WSMV 2.2.9.1)
  std::string pending_authorization;  // NTLM's third leg rides on the first SOAP request

  std::size_t task_at = 0;
  enum class Step {
    enumerate,
    pull,
    invoke,
    shell_create,
    shell_command,
    shell_receive,
    shell_signal,
    shell_delete
  } step = Step::enumerate;
  std::string soap;  // the envelope in flight
  std::string context, shell_id, command_id;
  wsman::ShellOutput shell;
  std::vector<wql::Instance> items;
  int restart_phase = 0;      // restart: 0 stop, 1 start
  std::string service_state;  // restart: the state last seen while waiting for the stop
  bool probing = false;       // eventlog: asking whether the window's last record exists
  // A shell task that failed still deletes its shell first; the failure waits here.
  outpost_status shell_failure = OUTPOST_OK;
  std::string shell_failure_why;

  // ---- outcome ----
  int requests = 0;
  wql::Outcome outcome;
  int64_t connected_ns = 0;

  ~WinrmJob() override {
    if (ssl != nullptr) SSL_free(ssl);
  }
};

}  // namespace outpost::winrm
