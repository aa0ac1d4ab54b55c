// remote_write: the engine's metrics to any store that takes Prometheus remote write 1.0
// (Prometheus, VictoriaMetrics, Mimir, Thanos receive, ...). Batches come out of the core's disk
// spool (OUTPOST_FLAG_SPOOL); each becomes one or more snappy-compressed protobuf WriteRequests
// (outpost_lib/prom_write.hpp) POSTed with libcurl. Events and flows are not metrics: counted,
// not sent.
#include <curl/curl.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <outpost/sdk.hpp>
#include <outpost_lib/prom_write.hpp>
#include <string>
#include <vector>

namespace {

using outpost::Error;
namespace rw = outpost::lib::promrw;

struct CurlOnce {
  CurlOnce() { curl_global_init(CURL_GLOBAL_DEFAULT); }
};

bool starts_with(const std::string& s, std::string_view p) { return s.rfind(p, 0) == 0; }

// Seconds a Retry-After header asks for (delay-seconds or HTTP-date), capped at an hour;
// 0 when there is none or it cannot be read.
int64_t retry_after_seconds(std::string v, int64_t now_s) {
  v.erase(0, v.find_first_not_of(" \t"));
  v.erase(v.find_last_not_of(" \t\r\n") + 1);
  if (v.empty()) return 0;
  if (v.find_first_not_of("0123456789") == std::string::npos)
    return v.size() > 5 ? 3600 : std::min<int64_t>(std::stoll(v), 3600);
  const time_t at = curl_getdate(v.c_str(), nullptr);
  return at < 0 ? 0 : std::clamp<int64_t>(static_cast<int64_t>(at) - now_s, 0, 3600);
}

// external_labels come as a list of name=value strings.
outpost::Labels parse_external(const std::vector<std::string>& items) {
  outpost::Labels out;
  for (const auto& item : items) {
    const auto eq = item.find('=');
    if (eq == std::string::npos || eq == 0 || eq + 1 == item.size())
      throw Error(OUTPOST_E_CONFIG, "external_labels: expected name=value, got '" + item + "'");
    out.emplace_back(item.substr(0, eq), item.substr(eq + 1));
  }
  return out;
}

class RemoteWrite final : public outpost::Sink {
 public:
  static constexpr uint32_t flags = OUTPOST_FLAG_SPOOL;

  RemoteWrite(outpost::Host host, const outpost::Config& cfg)
      : host_(host),
        encoder_(parse_external(cfg.get_list("external_labels")),
                 static_cast<std::size_t>(
                     std::max<int64_t>(1, cfg.get_int("max_samples_per_request", 2000)))) {
    static CurlOnce once;
    url_ = cfg.get("url");
    if (!starts_with(url_, "https://") && !starts_with(url_, "http://"))
      throw Error(OUTPOST_E_CONFIG, "url: must be http://... or https://... (got '" + url_ + "')");
    if (cfg.get_int("max_samples_per_request", 2000) < 1)
      throw Error(OUTPOST_E_CONFIG, "max_samples_per_request: at least 1");
    timeout_ms_ = static_cast<long>(cfg.get_seconds("timeout", 30) * 1000);
    connect_timeout_ms_ = static_cast<long>(cfg.get_seconds("connect_timeout", 10) * 1000);
    if (timeout_ms_ <= 0 || connect_timeout_ms_ <= 0)
      throw Error(OUTPOST_E_CONFIG, "timeout and connect_timeout must be positive");
    ca_file_ = cfg.get("ca_file");
    client_cert_ = cfg.get("client_cert");
    client_key_ = cfg.get("client_key");
    if (client_cert_.empty() != client_key_.empty())
      throw Error(OUTPOST_E_CONFIG, "client_cert and client_key go together");
    if (!cfg.get("bearer_token").empty()) bearer_ = host_.secret(cfg.get("bearer_token"));
    basic_user_ = cfg.get("basic_auth_user");
    if (!cfg.get("basic_auth_password").empty())
      basic_password_ = host_.secret(cfg.get("basic_auth_password"));
    if (!bearer_.empty() && !basic_user_.empty())
      throw Error(OUTPOST_E_CONFIG, "bearer_token and basic_auth_user exclude each other");
    if (basic_user_.empty() != basic_password_.empty())
      throw Error(OUTPOST_E_CONFIG, "basic_auth_user and basic_auth_password go together");
    proxy_ = cfg.get("proxy");
    stats_interval_s_ = cfg.get_seconds("stats_interval", 60);
    curl_ = curl_easy_init();
    if (curl_ == nullptr) throw Error(OUTPOST_E_INTERNAL, "curl_easy_init failed");
  }
  RemoteWrite(const RemoteWrite&) = delete;
  RemoteWrite& operator=(const RemoteWrite&) = delete;
  ~RemoteWrite() override { curl_easy_cleanup(curl_); }

  static std::vector<outpost_field> config_fields() {
    using outpost::field;
    return {
        field("url", OUTPOST_FIELD_STRING,
              "the store's remote write endpoint, e.g. http://127.0.0.1:8428/api/v1/write "
              "(VictoriaMetrics) or https://prom.example.net/api/v1/write (Prometheus)",
              "", OUTPOST_FIELD_REQUIRED),
        field("ca_file", OUTPOST_FIELD_STRING,
              "PEM file of the CA(s) trusted for an https url; default: the system's trust store"),
        field("client_cert", OUTPOST_FIELD_STRING, "PEM client certificate (mutual TLS)"),
        field("client_key", OUTPOST_FIELD_STRING, "PEM private key of client_cert"),
        field("bearer_token", OUTPOST_FIELD_SECRET,
              "credential reference of a bearer token sent as Authorization"),
        field("basic_auth_user", OUTPOST_FIELD_STRING, "user name for HTTP basic authentication"),
        field("basic_auth_password", OUTPOST_FIELD_SECRET,
              "credential reference of the basic authentication password"),
        field("proxy", OUTPOST_FIELD_STRING,
              "an explicit proxy URL; without it the connection is direct and proxy environment "
              "variables are ignored"),
        field("timeout", OUTPOST_FIELD_DURATION, "time a request may take in all", "30s"),
        field("connect_timeout", OUTPOST_FIELD_DURATION, "time to connect (TCP and TLS)", "10s"),
        field("external_labels", OUTPOST_FIELD_LIST,
              "name=value labels added to every series that lacks a label of that name"),
        field("max_samples_per_request", OUTPOST_FIELD_INT,
              "samples per WriteRequest at most; a larger batch is split", "2000"),
        field("stats_interval", OUTPOST_FIELD_DURATION,
              "time between the sink's own metrics; 0: none", "60s"),
    };
  }

  void start() override {
    if (stats_interval_s_ > 0)
      host_.set_timer(1, std::chrono::nanoseconds(static_cast<int64_t>(stats_interval_s_ * 1e9)));
  }
  void stop() override { emit_stats(); }
  void on_timer(uint64_t) override { emit_stats(); }

  void write(const outpost_batch& b) override { send(b); }
  void write_spooled(const outpost_batch& b, const outpost::SpoolInfo& info) override {
    if (info.attempt > 1) stats_.retries++;
    send(b);
  }

 private:
  struct Reply {
    long code = 0;
    CURLcode curl = CURLE_OK;
    std::string text;  // curl's error, or the start of the answer's body
    std::string retry_after;
  };

  // All requests of a batch or none: a failure fails the batch, which the spool sends again
  // whole; the store takes the repeated samples of the requests that had gone through as
  // duplicates of the same value.
  void send(const outpost_batch& b) {
    rw::EncodeStats es;
    const std::vector<std::string> bodies = encoder_.encode(b, es);
    for (const std::string& raw : bodies) {
      const std::string body = rw::snappy_compress(raw);
      const Reply r = post(body);
      if (r.curl != CURLE_OK || r.code < 200 || r.code > 299) fail(r);
      stats_.body_bytes += body.size();
    }
    stats_.batches++;
    stats_.samples += es.samples;
    stats_.events_ignored += es.events_ignored;
    stats_.flows_ignored += es.flows_ignored;
    stats_.labels_collided += es.labels_collided;
    stats_.labels_empty += es.labels_empty;
    if (failing_) {
      host_.log(OUTPOST_LOG_INFO, "remote_write: " + url_ + " takes samples again");
      failing_ = false;
    }
  }

  static size_t on_body(char* p, size_t sz, size_t n, void* ud) {
    auto* r = static_cast<Reply*>(ud);
    if (r->text.size() < 512) r->text.append(p, std::min<size_t>(sz * n, 512 - r->text.size()));
    return sz * n;
  }
  static size_t on_header(char* p, size_t sz, size_t n, void* ud) {
    constexpr std::string_view name = "retry-after:";
    const std::string_view line(p, sz * n);
    if (line.size() > name.size() &&
        std::equal(name.begin(), name.end(), line.begin(),
                   [](char a, char b) { return a == std::tolower(static_cast<unsigned char>(b)); }))
      static_cast<Reply*>(ud)->retry_after = std::string(line.substr(name.size()));
    return sz * n;
  }

  Reply post(const std::string& body) {
    Reply r;
    char err[CURL_ERROR_SIZE] = {};
    CURL* c = curl_;
    curl_easy_reset(c);
    curl_easy_setopt(c, CURLOPT_URL, url_.c_str());
    curl_easy_setopt(c, CURLOPT_POST, 1L);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body.data());
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout_ms_);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, connect_timeout_ms_);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, err);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, &RemoteWrite::on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &r);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, &RemoteWrite::on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &r);
    curl_easy_setopt(c, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
    curl_easy_setopt(c, CURLOPT_SSLVERSION, CURL_SSLVERSION_TLSv1_2);
    // An empty proxy string turns off libcurl's reading of http_proxy and friends.
    curl_easy_setopt(c, CURLOPT_PROXY, proxy_.c_str());
    if (!ca_file_.empty()) {
      curl_easy_setopt(c, CURLOPT_CAINFO, ca_file_.c_str());
      curl_easy_setopt(c, CURLOPT_CAPATH, nullptr);
    }
    if (!client_cert_.empty()) {
      curl_easy_setopt(c, CURLOPT_SSLCERT, client_cert_.c_str());
      curl_easy_setopt(c, CURLOPT_SSLKEY, client_key_.c_str());
    }
    if (!basic_user_.empty()) {
      curl_easy_setopt(c, CURLOPT_HTTPAUTH, CURLAUTH_BASIC);
      curl_easy_setopt(c, CURLOPT_USERNAME, basic_user_.c_str());
      curl_easy_setopt(c, CURLOPT_PASSWORD, basic_password_.c_str());
    }
    curl_slist* h = nullptr;
    h = curl_slist_append(h, "Content-Encoding: snappy");
    h = curl_slist_append(h, "Content-Type: application/x-protobuf");
    h = curl_slist_append(h, "X-Prometheus-Remote-Write-Version: 0.1.0");
    h = curl_slist_append(h, "User-Agent: outpost-remote-write");
    h = curl_slist_append(h, "Expect:");
    if (!bearer_.empty()) h = curl_slist_append(h, ("Authorization: Bearer " + bearer_).c_str());
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    const auto t0 = std::chrono::steady_clock::now();
    r.curl = curl_easy_perform(c);
    stats_.seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    stats_.requests++;
    curl_slist_free_all(h);
    if (r.curl == CURLE_OK)
      curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r.code);
    else
      r.text = err[0] != 0 ? err : curl_easy_strerror(r.curl);
    return r;
  }

  static bool tls_trust_failure(CURLcode c) {
    return c == CURLE_PEER_FAILED_VERIFICATION || c == CURLE_SSL_CACERT_BADFILE ||
           c == CURLE_SSL_CERTPROBLEM || c == CURLE_SSL_ISSUER_ERROR ||
           c == CURLE_SSL_CRL_BADFILE || c == CURLE_SSL_PINNEDPUBKEYNOTMATCH;
  }

  // The status tells the spool what to do: retry (unavailable, busy, timeout), keep and wait
  // for the operator (auth), or drop the batch (invalid argument).
  [[noreturn]] void fail(const Reply& r) {
    stats_.failures++;
    outpost_status st = OUTPOST_E_UNAVAILABLE;
    std::string what;
    if (r.curl != CURLE_OK) {
      what = r.text;
      if (tls_trust_failure(r.curl)) {
        st = OUTPOST_E_AUTH;
        what = "TLS: " + r.text;
      } else if (r.curl == CURLE_OPERATION_TIMEDOUT) {
        st = OUTPOST_E_TIMEOUT;
      }
    } else if (r.code == 429 || r.code == 503) {
      st = OUTPOST_E_BUSY;
      const int64_t wait = retry_after_seconds(r.retry_after, host_.now_ns() / 1'000'000'000);
      if (wait > 0) host_.retry_after(std::chrono::seconds(wait));
      what = "HTTP " + std::to_string(r.code) +
             (wait > 0 ? " (Retry-After " + std::to_string(wait) + " s)" : std::string());
    } else if (r.code == 401 || r.code == 403) {
      st = OUTPOST_E_AUTH;
      what = "HTTP " + std::to_string(r.code) + ": credentials refused";
    } else if (r.code == 400) {
      st = OUTPOST_E_INVALID_ARGUMENT;
      stats_.dropped++;
      what = "HTTP 400, batch dropped: " + r.text.substr(0, 200);
    } else {
      what = "HTTP " + std::to_string(r.code);
    }
    // Said once when the state changes, not on every retry.
    if (!failing_ || st != last_status_) {
      host_.report_error(st, "remote_write " + url_ + ": " + what);
      failing_ = true;
      last_status_ = st;
    }
    throw Error(st, what);
  }

  void emit_stats() {
    if (stats_interval_s_ <= 0) return;
    const int64_t t = host_.now_ns();
    auto counter = [&](const char* name, double v) {
      return outpost::Metric{name, {}, v, t, OUTPOST_METRIC_COUNTER};
    };
    auto d = [](uint64_t v) { return static_cast<double>(v); };
    const std::vector<outpost::Metric> ms = {
        counter("outpost_remote_write_requests_total", d(stats_.requests)),
        counter("outpost_remote_write_batches_total", d(stats_.batches)),
        counter("outpost_remote_write_samples_total", d(stats_.samples)),
        counter("outpost_remote_write_failures_total", d(stats_.failures)),
        counter("outpost_remote_write_retries_total", d(stats_.retries)),
        counter("outpost_remote_write_dropped_batches_total", d(stats_.dropped)),
        counter("outpost_remote_write_body_bytes_total", d(stats_.body_bytes)),
        counter("outpost_remote_write_request_seconds_sum", stats_.seconds),
        counter("outpost_remote_write_events_ignored_total", d(stats_.events_ignored)),
        counter("outpost_remote_write_flows_ignored_total", d(stats_.flows_ignored)),
        counter("outpost_remote_write_labels_collided_total", d(stats_.labels_collided)),
        counter("outpost_remote_write_labels_empty_total", d(stats_.labels_empty)),
    };
    host_.emit(ms);
  }

  struct Stats {
    uint64_t requests = 0, batches = 0, samples = 0, failures = 0, retries = 0, dropped = 0;
    uint64_t body_bytes = 0, events_ignored = 0, flows_ignored = 0, labels_collided = 0;
    uint64_t labels_empty = 0;
    double seconds = 0;
  };

  outpost::Host host_;
  rw::Encoder encoder_;
  std::string url_, ca_file_, client_cert_, client_key_, bearer_, basic_user_, basic_password_;
  std::string proxy_;
  long timeout_ms_ = 30000, connect_timeout_ms_ = 10000;
  double stats_interval_s_ = 60;
  CURL* curl_ = nullptr;
  bool failing_ = false;
  outpost_status last_status_ = OUTPOST_OK;
  Stats stats_;
};

}  // namespace

OUTPOST_PLUGIN(RemoteWrite, "remote_write", "1.0.0",
               "metrics to a Prometheus-compatible store by remote write 1.0 (protobuf + snappy "
               "over HTTP(S)), behind the disk spool")
