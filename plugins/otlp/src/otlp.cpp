// otlp: metrics and events to any OpenTelemetry receiver with OTLP/HTTP binary protobuf
// (POST <endpoint>/v1/metrics and /v1/logs), behind the core's disk spool (OUTPOST_FLAG_SPOOL).
// Requests are encoded by hand (otlp_encode.hpp); flows have no OTLP signal and are counted only.
#include <curl/curl.h>
#include <strings.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <outpost/sdk.hpp>
#include <outpost_lib/retry_after.hpp>
#include <string>
#include <vector>

#include "otlp_encode.hpp"

namespace {

using outpost::Error;
constexpr const char* kVersion = "1.0.0";

struct CurlGlobal {
  CurlGlobal() { curl_global_init(CURL_GLOBAL_DEFAULT); }
};

std::string local_hostname() {
  char b[256] = {};
  if (::gethostname(b, sizeof b - 1) != 0) return "unknown";
  return b;
}

std::string trim(std::string s) {
  s.erase(0, s.find_first_not_of(" \t"));
  s.erase(s.find_last_not_of(" \t\r\n") + 1);
  return s;
}

// A gzip member (RFC 1952) of the whole body.
std::string gzip(const std::string& in) {
  z_stream z{};
  if (deflateInit2(&z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
    throw Error(OUTPOST_E_INTERNAL, "zlib: deflateInit2 failed");
  std::string out(deflateBound(&z, static_cast<uLong>(in.size())) + 32, '\0');
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  z.avail_in = static_cast<uInt>(in.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  const int rc = deflate(&z, Z_FINISH);
  out.resize(z.total_out);
  deflateEnd(&z);
  if (rc != Z_STREAM_END) throw Error(OUTPOST_E_INTERNAL, "zlib: deflate did not finish");
  return out;
}

class Otlp final : public outpost::Sink {
 public:
  static constexpr uint32_t flags = OUTPOST_FLAG_SPOOL;

  Otlp(outpost::Host host, const outpost::Config& cfg) : host_(host) {
    static CurlGlobal global;
    endpoint_ = cfg.get("endpoint");
    while (!endpoint_.empty() && endpoint_.back() == '/') endpoint_.pop_back();
    if (endpoint_.rfind("https://", 0) != 0 && endpoint_.rfind("http://", 0) != 0)
      throw Error(OUTPOST_E_CONFIG,
                  "endpoint: must be http(s)://host:port (got '" + endpoint_ + "')");
    const std::string compression = cfg.get("compression", "gzip");
    if (compression != "gzip" && compression != "none")
      throw Error(OUTPOST_E_CONFIG, "compression: none or gzip (got '" + compression + "')");
    gzip_ = compression == "gzip";
    timeout_ms_ = static_cast<long>(cfg.get_seconds("timeout", 10) * 1000);
    if (timeout_ms_ <= 0) throw Error(OUTPOST_E_CONFIG, "timeout must be positive");
    ca_file_ = cfg.get("ca_file");
    client_cert_ = cfg.get("client_cert");
    client_key_ = cfg.get("client_key");
    if (client_cert_.empty() != client_key_.empty())
      throw Error(OUTPOST_E_CONFIG, "client_cert and client_key go together");
    proxy_ = cfg.get("proxy");
    stats_interval_s_ = cfg.get_seconds("stats_interval", 60);
    for (const auto& h : cfg.get_list("headers")) headers_.push_back(header(h));

    resource_.scope_version = kVersion;
    resource_.attributes = {{"service.name", "outpost"}, {"host.name", local_hostname()}};
    if (!cfg.get("engine_id").empty())
      resource_.attributes.emplace_back("service.instance.id", cfg.get("engine_id"));
    for (const auto& a : cfg.get_list("resource_attributes")) {
      const auto eq = a.find('=');
      if (eq == std::string::npos || eq == 0)
        throw Error(OUTPOST_E_CONFIG,
                    "resource_attributes: 'key=value' expected (got '" + a + "')");
      const std::string key = trim(a.substr(0, eq));
      auto same = [&](const auto& kv) { return kv.first == key; };
      resource_.attributes.erase(
          std::remove_if(resource_.attributes.begin(), resource_.attributes.end(), same),
          resource_.attributes.end());
      resource_.attributes.emplace_back(key, trim(a.substr(eq + 1)));
    }
    curl_ = curl_easy_init();
    if (curl_ == nullptr) throw Error(OUTPOST_E_INTERNAL, "curl_easy_init failed");
  }
  ~Otlp() override {
    if (curl_ != nullptr) curl_easy_cleanup(curl_);
  }

  static std::vector<outpost_field> config_fields() {
    using outpost::field;
    return {
        field("endpoint", OUTPOST_FIELD_STRING,
              "the receiver's base URL, http(s)://host:port; /v1/metrics and /v1/logs are "
              "appended",
              "", OUTPOST_FIELD_REQUIRED),
        field("compression", OUTPOST_FIELD_STRING, "request body encoding: gzip or none", "gzip"),
        field("ca_file", OUTPOST_FIELD_STRING,
              "PEM file of the CA(s) trusted for an https endpoint; default: the system's store"),
        field("client_cert", OUTPOST_FIELD_STRING, "PEM client certificate (mutual TLS)"),
        field("client_key", OUTPOST_FIELD_STRING, "PEM private key of client_cert"),
        field("headers", OUTPOST_FIELD_LIST,
              "extra request headers, 'Name: value'; ${secret:NAME} in a value is replaced by the "
              "credential NAME, ${env:VAR} by the environment variable"),
        field("proxy", OUTPOST_FIELD_STRING,
              "an explicit proxy URL; without it the connection is direct and proxy environment "
              "variables are ignored"),
        field("timeout", OUTPOST_FIELD_DURATION, "how long one request may take", "10s"),
        field("engine_id", OUTPOST_FIELD_STRING,
              "this engine's id, sent as the resource attribute service.instance.id"),
        field("resource_attributes", OUTPOST_FIELD_LIST,
              "more resource attributes, 'key=value' (a key given here replaces the plugin's)"),
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

  // Without a spool (spool: false) a batch is sent once; failures are the host's to count.
  void write(const outpost_batch& b) override {
    metrics_sent_for_.clear();
    send(b, {});
  }

  void write_spooled(const outpost_batch& b, const outpost::SpoolInfo& info) override {
    std::string id(info.spool_id);
    for (const auto& r : info.ranges)
      id += "/" + std::string(r.stream) + ":" + std::to_string(r.first_seq) + "-" +
            std::to_string(r.last_seq);
    if (info.attempt > 1) stats_.retries++;
    send(b, id);
  }

 private:
  struct Response {
    long code = 0;
    CURLcode curl = CURLE_OK;
    std::string error, body, retry_after;
  };

  // A configured header with its ${secret:...} and ${env:...} references resolved now, so a
  // missing credential is a configuration error at start and not a failure per request.
  std::string header(const std::string& h) {
    const auto colon = h.find(':');
    if (colon == std::string::npos || colon == 0)
      throw Error(OUTPOST_E_CONFIG, "headers: 'Name: value' expected (got '" + h + "')");
    std::string value = trim(h.substr(colon + 1)), out;
    for (std::size_t i = 0; i < value.size();) {
      const auto open = value.find("${", i);
      if (open == std::string::npos) {
        out += value.substr(i);
        break;
      }
      const auto close = value.find('}', open);
      if (close == std::string::npos)
        throw Error(OUTPOST_E_CONFIG, "headers: unterminated ${ in '" + h + "'");
      out += value.substr(i, open - i);
      const std::string ref = value.substr(open + 2, close - open - 2);
      if (ref.rfind("secret:", 0) == 0)
        out += host_.secret(ref.substr(7));
      else if (ref.rfind("env:", 0) == 0)
        out += host_.secret("${" + ref + "}");
      else
        throw Error(OUTPOST_E_CONFIG, "headers: ${" + ref + "}: ${secret:NAME} or ${env:VAR}");
      i = close + 1;
    }
    return trim(h.substr(0, colon)) + ": " + out;
  }

  // Metrics, then events, of one batch. When the metrics went through but the logs must be
  // retried, the retry of the same spooled batch (same id) does not send the metrics again.
  void send(const outpost_batch& b, const std::string& id) {
    const int64_t now = host_.now_ns();
    if (id.empty() || metrics_sent_for_ != id) {
      const auto m = outpost::otlp::encode_metrics(resource_, b, now);
      if (!m.body.empty()) {
        post("/v1/metrics", m.body, m.items, stats_.rejected_points);
        stats_.points += m.items;
      }
      metrics_sent_for_ = id;
    }
    const auto l = outpost::otlp::encode_logs(resource_, b, now);
    if (!l.body.empty()) {
      post("/v1/logs", l.body, l.items, stats_.rejected_logs);
      stats_.log_records += l.items;
    }
    metrics_sent_for_.clear();
    stats_.flows_not_sent += b.flow_count;
    if (failing_) {
      host_.log(OUTPOST_LOG_INFO, "otlp: " + endpoint_ + " takes requests again");
      failing_ = false;
    }
  }

  void post(const char* path, const std::string& proto, std::size_t items, uint64_t& rejected) {
    const std::string body = gzip_ ? gzip(proto) : proto;
    const Response r = perform(endpoint_ + path, body);
    if (r.curl == CURLE_OK && r.code >= 200 && r.code < 300) {
      stats_.requests_ok++;
      stats_.body_bytes += body.size();
      const auto partial = outpost::otlp::decode_partial_success(r.body);
      if (partial.rejected > 0 || !partial.message.empty()) {
        rejected += static_cast<uint64_t>(std::max<int64_t>(partial.rejected, 0));
        host_.log(OUTPOST_LOG_WARN, "otlp " + endpoint_ + path + ": the receiver rejected " +
                                        std::to_string(partial.rejected) + " of " +
                                        std::to_string(items) + ": " + partial.message);
      }
      return;
    }
    fail(path, r);
  }

  static size_t on_body(char* p, size_t sz, size_t n, void* ud) {
    auto* s = static_cast<std::string*>(ud);
    if (s->size() < 65536) s->append(p, std::min<size_t>(sz * n, 65536 - s->size()));
    return sz * n;
  }
  static size_t on_header(char* p, size_t sz, size_t n, void* ud) {
    const std::string h(p, sz * n);
    constexpr std::string_view kKey = "retry-after:";
    if (h.size() > kKey.size() && strncasecmp(h.c_str(), kKey.data(), kKey.size()) == 0)
      static_cast<Response*>(ud)->retry_after = trim(h.substr(kKey.size()));
    return sz * n;
  }

  Response perform(const std::string& url, const std::string& body) {
    Response r;
    char errbuf[CURL_ERROR_SIZE] = {};
    curl_easy_reset(curl_);
    curl_easy_setopt(curl_, CURLOPT_URL, url.c_str());
    curl_easy_setopt(curl_, CURLOPT_POST, 1L);
    curl_easy_setopt(curl_, CURLOPT_POSTFIELDS, body.data());
    curl_easy_setopt(curl_, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
    curl_easy_setopt(curl_, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl_, CURLOPT_TIMEOUT_MS, timeout_ms_);
    curl_easy_setopt(curl_, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(curl_, CURLOPT_WRITEFUNCTION, &Otlp::on_body);
    curl_easy_setopt(curl_, CURLOPT_WRITEDATA, &r.body);
    curl_easy_setopt(curl_, CURLOPT_HEADERFUNCTION, &Otlp::on_header);
    curl_easy_setopt(curl_, CURLOPT_HEADERDATA, &r);
    curl_easy_setopt(curl_, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(curl_, CURLOPT_SSL_VERIFYHOST, 2L);
    curl_easy_setopt(curl_, CURLOPT_TCP_KEEPALIVE, 1L);
    // "" makes libcurl ignore http_proxy, https_proxy and the like: a proxy only when configured.
    curl_easy_setopt(curl_, CURLOPT_PROXY, proxy_.c_str());
    if (!ca_file_.empty()) curl_easy_setopt(curl_, CURLOPT_CAINFO, ca_file_.c_str());
    if (!client_cert_.empty()) {
      curl_easy_setopt(curl_, CURLOPT_SSLCERT, client_cert_.c_str());
      curl_easy_setopt(curl_, CURLOPT_SSLKEY, client_key_.c_str());
    }
    struct curl_slist* hs = nullptr;
    hs = curl_slist_append(hs, "Content-Type: application/x-protobuf");
    if (gzip_) hs = curl_slist_append(hs, "Content-Encoding: gzip");
    hs = curl_slist_append(hs, "Expect:");
    for (const auto& h : headers_) hs = curl_slist_append(hs, h.c_str());
    curl_easy_setopt(curl_, CURLOPT_HTTPHEADER, hs);
    r.curl = curl_easy_perform(curl_);
    curl_slist_free_all(hs);
    stats_.requests++;
    if (r.curl == CURLE_OK)
      curl_easy_getinfo(curl_, CURLINFO_RESPONSE_CODE, &r.code);
    else
      r.error = errbuf[0] != 0 ? errbuf : curl_easy_strerror(r.curl);
    return r;
  }

  // The OTLP/HTTP answer classes: 429/502/503/504 and transport failures are retried (the batch
  // stays in the spool), TLS and 401/403 wait for the operator (kept), any other status means
  // the request itself is refused (dropped, counted by the host).
  [[noreturn]] void fail(const char* path, const Response& r) {
    stats_.failures++;
    outpost_status st = OUTPOST_E_UNAVAILABLE;
    std::string what;
    if (r.curl != CURLE_OK) {
      what = r.error;
      switch (r.curl) {
        case CURLE_PEER_FAILED_VERIFICATION:
        case CURLE_SSL_CACERT_BADFILE:
        case CURLE_SSL_CERTPROBLEM:
        case CURLE_SSL_ISSUER_ERROR:
        case CURLE_SSL_CONNECT_ERROR:
          st = OUTPOST_E_AUTH;
          what = "TLS: " + r.error;
          break;
        case CURLE_OPERATION_TIMEDOUT:
          st = OUTPOST_E_TIMEOUT;
          break;
        default:
          break;
      }
    } else if (r.code == 429 || r.code == 502 || r.code == 503 || r.code == 504) {
      st = OUTPOST_E_BUSY;
      const int64_t wait_s =
          outpost::lib::retry_after_seconds(r.retry_after, host_.now_ns() / 1'000'000'000);
      if (wait_s > 0) host_.retry_after(std::chrono::seconds(wait_s));
      what = "HTTP " + std::to_string(r.code) +
             (wait_s > 0 ? ", Retry-After " + std::to_string(wait_s) + " s" : std::string());
    } else if (r.code == 401 || r.code == 403) {
      st = OUTPOST_E_AUTH;
      what = "HTTP " + std::to_string(r.code) + " (credentials refused)";
    } else {
      st = OUTPOST_E_INVALID_ARGUMENT;
      stats_.dropped++;
      what = "HTTP " + std::to_string(r.code) + ", the request is dropped";
    }
    if (!failing_ || st != last_failure_) {
      host_.report_error(st, "otlp " + endpoint_ + path + ": " + what);
      failing_ = true;
      last_failure_ = st;
    }
    throw Error(st, what);
  }

  void emit_stats() {
    if (stats_interval_s_ <= 0) return;
    const int64_t t = host_.now_ns();
    auto c = [&](const char* name, uint64_t v) {
      return outpost::Metric{name, {}, static_cast<double>(v), t, OUTPOST_METRIC_COUNTER};
    };
    const std::vector<outpost::Metric> ms = {
        c("outpost_otlp_requests_total", stats_.requests),
        c("outpost_otlp_requests_ok_total", stats_.requests_ok),
        c("outpost_otlp_failures_total", stats_.failures),
        c("outpost_otlp_retries_total", stats_.retries),
        c("outpost_otlp_dropped_requests_total", stats_.dropped),
        c("outpost_otlp_data_points_total", stats_.points),
        c("outpost_otlp_log_records_total", stats_.log_records),
        c("outpost_otlp_rejected_data_points_total", stats_.rejected_points),
        c("outpost_otlp_rejected_log_records_total", stats_.rejected_logs),
        c("outpost_otlp_flows_not_sent_total", stats_.flows_not_sent),
        c("outpost_otlp_body_bytes_total", stats_.body_bytes),
    };
    host_.emit(ms);
  }

  struct Stats {
    uint64_t requests = 0, requests_ok = 0, failures = 0, retries = 0, dropped = 0;
    uint64_t points = 0, log_records = 0, rejected_points = 0, rejected_logs = 0;
    uint64_t flows_not_sent = 0, body_bytes = 0;
  };

  outpost::Host host_;
  outpost::otlp::Resource resource_;
  std::string endpoint_, ca_file_, client_cert_, client_key_, proxy_;
  std::vector<std::string> headers_;
  bool gzip_ = true;
  long timeout_ms_ = 10000;
  double stats_interval_s_ = 60;
  CURL* curl_ = nullptr;
  std::string metrics_sent_for_;
  bool failing_ = false;
  outpost_status last_failure_ = OUTPOST_OK;
  Stats stats_;
};

}  // namespace

OUTPOST_PLUGIN(Otlp, "otlp", "1.0.0",
               "metrics and events to an OpenTelemetry receiver with OTLP/HTTP protobuf, behind "
               "the disk spool")
