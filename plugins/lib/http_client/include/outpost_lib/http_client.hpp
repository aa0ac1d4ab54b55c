#pragma once
// One HTTP(S) POST client for the sinks that send batches to a receiver (uplink, otlp,
// remote_write, ...): the settings they share, the libcurl setup, and what an answer means for
// the disk spool (send again, wait for the operator, or drop). libcurl stays out of this header.
#include <chrono>
#include <cstdint>
#include <memory>
#include <outpost/sdk.hpp>
#include <string>
#include <string_view>
#include <vector>

namespace outpost::lib::http {

// How the client reaches the receiver and proves itself. Secrets are resolved already.
struct Options {
  std::string ca_file;              // PEM CA(s), the only ones trusted; empty: the system's store
  std::string pinned_public_key;    // "sha256//BASE64", checked on top of the chain
  std::string client_cert;          // PEM client certificate (mutual TLS); with client_key
  std::string client_key;           // PEM private key of client_cert
  std::string client_key_password;  // passphrase of client_key
  std::string proxy;                // explicit proxy URL; empty: direct, proxy env vars ignored
  std::string bearer_token;         // "Authorization: Bearer ..."; excludes basic_user
  std::string basic_user;           // HTTP basic authentication, with basic_password
  std::string basic_password;
  std::chrono::milliseconds timeout{30000};          // a whole request
  std::chrono::milliseconds connect_timeout{10000};  // TCP and TLS
  std::vector<std::string> headers;                  // "Name: value", sent with every request
  std::string user_agent = "outpost";
  std::size_t max_answer_bytes = 4096;  // the start of an answer's body kept in Response::body
};

// The settings every sink built on this client offers under the same names: ca_file,
// pinned_public_key, client_cert, client_key, client_key_password, proxy, the bearer token,
// basic_auth_user, basic_auth_password, headers, timeout, connect_timeout. Every pointer is a
// string literal (outpost_field borrows it for the plugin's lifetime).
struct Fields {
  const char* bearer_token = "bearer_token";  // the uplink's is "token"
  const char* timeout = "30s";                // defaults, as outpost_field texts
  const char* connect_timeout = "10s";
  // The default of a stats_interval setting (the sink's own counters, StatsSink); nullptr: the
  // sink declares no such setting here.
  const char* stats_interval = nullptr;
};
std::vector<outpost_field> config_fields(const Fields& f = {});
// A sink's own fields followed by those.
std::vector<outpost_field> with_config_fields(std::vector<outpost_field> own, const Fields& f = {});

// Reads those settings (credential references resolved through host.secret, ${secret:NAME} and
// ${env:VAR} in a header's value too); every mistake is Error(OUTPOST_E_CONFIG) naming the key.
Options read_options(const outpost::Config& cfg, const outpost::Host& host, const Fields& f = {});

// Throws Error(OUTPOST_E_CONFIG) unless url starts with https://, or with http:// when
// allow_http; key names the setting in the message.
void check_url(std::string_view key, std::string_view url, bool allow_http);

// Why no HTTP answer came.
enum class Transport {
  ok,       // an answer came (any status)
  tls,      // the receiver's certificate or key not trusted, or our certificate file unusable
  timeout,  // no answer within the timeouts
  failed,   // anything else: refused, reset, name not resolved, proxy unreachable
};

struct Response {
  Transport transport = Transport::ok;
  long status = 0;              // the HTTP status when transport is ok
  std::string error;            // libcurl's words when transport is not ok
  std::string body;             // the answer's body, at most Options::max_answer_bytes of it
  std::string retry_after;      // the Retry-After header as sent, trimmed; "" when none
  double seconds = 0;           // the request's wall time
  uint64_t bytes_sent = 0;      // request line, headers and body
  uint64_t bytes_received = 0;  // headers and body
  bool ok() const noexcept { return transport == Transport::ok && status >= 200 && status < 300; }
};

class Client {
 public:
  explicit Client(Options options);  // throws Error(OUTPOST_E_INTERNAL) when libcurl fails
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // POSTs body to url with Options::headers and these, on a kept-alive connection; blocks for
  // up to Options::timeout. Never throws for what the network or the receiver does.
  Response post(const std::string& url, std::string_view body,
                const std::vector<std::string>& headers = {});

  const Options& options() const noexcept;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// What a sink does with an answer.
enum class Outcome {
  ok,               // delivered
  retry,            // the receiver is away, busy or failing: the spool sends the batch again
  operator_action,  // TLS trust or credentials refused (401, 403): kept until someone fixes it
  rejected,         // the receiver refuses this request for good (400, 413): dropped and counted
};

// Which statuses mean what, beside 2xx (ok) and 401/403 (operator_action).
struct Policy {
  std::vector<long> rejected{400, 413};  // dropped
  std::vector<long> busy{429, 503};      // retried, after the answer's Retry-After if any
  bool reject_unlisted = false;          // any other status dropped too (OTLP); else retried
};

struct Verdict {
  Outcome outcome = Outcome::ok;
  // OUTPOST_OK; retry: OUTPOST_E_UNAVAILABLE, _BUSY or _TIMEOUT; operator_action: OUTPOST_E_AUTH;
  // rejected: OUTPOST_E_INVALID_ARGUMENT.
  outpost_status status = OUTPOST_OK;
  std::string what;           // one line: "HTTP 503, Retry-After 5 s", "TLS: ...", ...
  int64_t retry_after_s = 0;  // for busy statuses: the Retry-After read (http_retry), at most 1 h
};

// now_s: Unix seconds (host.now_ns() / 1e9), for a Retry-After given as an HTTP date.
Verdict classify(const Response& r, int64_t now_s, const Policy& policy = {});

// What every sink built on this client shares beside the HTTP exchange.

// The id of a spooled batch, the same on every attempt and across restarts:
// "<spool_id>/<stream>:<first>-<last>[/...]".
std::string batch_id(const outpost::SpoolInfo& info);

// Asks the host for the timer (id 1) that drives a sink's own counters every interval_s
// seconds; none when interval_s <= 0. Call from start().
void start_stats_timer(const outpost::Host& host, double interval_s);

// The stats_interval setting (Fields::stats_interval) in seconds; 0: no own counters.
double stats_interval_seconds(const outpost::Config& cfg, const Fields& f);

// The lifecycle of a sink with its own counters: they are emitted every stats interval (timer
// id 1) and once more at stop. Derive from this instead of outpost::Sink and write emit_stats.
class StatsSink : public outpost::Sink {
 public:
  void start() override { start_stats_timer(stats_host_, stats_interval_s_); }
  void stop() override { emit_stats(); }
  void on_timer(uint64_t) override { emit_stats(); }

 protected:
  StatsSink(outpost::Host host, double stats_interval_s)
      : stats_host_(host), stats_interval_s_(stats_interval_s) {}
  virtual void emit_stats() = 0;
  double stats_interval_s() const noexcept { return stats_interval_s_; }

 private:
  outpost::Host stats_host_;
  double stats_interval_s_;
};

// A sink's failures said once when the state changes, not once per retry, and its recovery once.
class Reporter {
 public:
  // where: the start of every message, e.g. "remote_write http://host:8428/api/v1/write".
  explicit Reporter(std::string where) : where_(std::move(where)) {}

  // Reports v (if its status differs from the last one reported), hands a Retry-After to the
  // host, and throws Error(v.status, v.what). Call only for a verdict that is not ok.
  [[noreturn]] void fail(const outpost::Host& host, const Verdict& v);
  // After a delivery: logs "<where> takes requests again" once after a failure.
  void delivered(const outpost::Host& host);
  bool failing() const noexcept { return failing_; }

 private:
  std::string where_;
  bool failing_ = false;
  outpost_status last_ = OUTPOST_OK;
};

}  // namespace outpost::lib::http
