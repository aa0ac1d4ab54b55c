// uplink: everything the engine collects, to a cloud or the user's own receiver, over one
// outbound HTTPS connection (libcurl + OpenSSL). Batches come out of the core's disk spool
// (OUTPOST_FLAG_SPOOL) with ids that stay the same across retries and restarts; the body is the
// wire format of docs/uplink-wire-format.md (outpost_lib/uplink_wire.hpp).
#include <curl/curl.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <outpost/sdk.hpp>
#include <outpost_lib/retry_after.hpp>
#include <outpost_lib/uplink_wire.hpp>
#include <random>
#include <string>
#include <vector>

namespace {

using outpost::Error;

struct CurlGlobal {
  CurlGlobal() { curl_global_init(CURL_GLOBAL_DEFAULT); }
};

std::string hostname() {
  char b[256] = {};
  if (::gethostname(b, sizeof b - 1) != 0) return "outpost";
  return b;
}

int level_of(const outpost::Config& cfg) {
  const int64_t level = cfg.get_int("compression_level", 3);
  if (level < 1 || level > 19) throw Error(OUTPOST_E_CONFIG, "compression_level: 1..19");
  return static_cast<int>(level);
}

class Uplink final : public outpost::Sink {
 public:
  static constexpr uint32_t flags = OUTPOST_FLAG_SPOOL;

  Uplink(outpost::Host host, const outpost::Config& cfg)
      : host_(host),
        encoder_(cfg.get("engine").empty() ? hostname() : cfg.get("engine"), level_of(cfg)) {
    static CurlGlobal global;
    url_ = cfg.get("url");
    const bool allow_http = cfg.get_bool("allow_http", false);
    if (url_.rfind("https://", 0) != 0 && !(allow_http && url_.rfind("http://", 0) == 0))
      throw Error(OUTPOST_E_CONFIG, "url: must be https://... (got '" + url_ + "')");
    timeout_ms_ = static_cast<long>(cfg.get_double("timeout", 30) * 1000);
    connect_timeout_ms_ = static_cast<long>(cfg.get_double("connect_timeout", 10) * 1000);
    if (timeout_ms_ <= 0 || connect_timeout_ms_ <= 0)
      throw Error(OUTPOST_E_CONFIG, "timeout and connect_timeout must be positive");
    ca_file_ = cfg.get("ca_file");
    pinned_key_ = cfg.get("pinned_public_key");
    client_cert_ = cfg.get("client_cert");
    client_key_ = cfg.get("client_key");
    if (client_cert_.empty() != client_key_.empty())
      throw Error(OUTPOST_E_CONFIG, "client_cert and client_key go together");
    if (!cfg.get("client_key_password").empty())
      key_password_ = host_.secret(cfg.get("client_key_password"));
    if (!cfg.get("token").empty()) token_ = host_.secret(cfg.get("token"));
    proxy_ = cfg.get("proxy");
    stats_interval_s_ = cfg.get_double("stats_interval", 60);
    curl_ = curl_easy_init();
    if (curl_ == nullptr) throw Error(OUTPOST_E_INTERNAL, "curl_easy_init failed");
    std::random_device rd;
    char b[40];
    std::snprintf(b, sizeof b, "direct-%08x%08x", rd(), rd());
    direct_id_ = b;
  }
  ~Uplink() override {
    if (curl_ != nullptr) curl_easy_cleanup(curl_);
  }

  static std::vector<outpost_field> config_fields() {
    using outpost::field;
    return {
        field("url", OUTPOST_FIELD_STRING,
              "the receiver's batch endpoint, https://host[:port]/path (e.g. "
              "https://cloud.example.net/v1/batches)",
              "", OUTPOST_FIELD_REQUIRED),
        field("ca_file", OUTPOST_FIELD_STRING,
              "PEM file of the only CA(s) trusted for the receiver (pinned); default: the system's "
              "trust store"),
        field("pinned_public_key", OUTPOST_FIELD_STRING,
              "sha256//BASE64 of the receiver's public key, checked on top of the chain"),
        field("client_cert", OUTPOST_FIELD_STRING, "PEM client certificate (mutual TLS)"),
        field("client_key", OUTPOST_FIELD_STRING, "PEM private key of client_cert"),
        field("client_key_password", OUTPOST_FIELD_STRING,
              "credential reference of client_key's passphrase"),
        field("token", OUTPOST_FIELD_STRING,
              "credential reference of a bearer token sent as Authorization"),
        field("proxy", OUTPOST_FIELD_STRING,
              "an explicit proxy URL; without it the connection is direct and proxy environment "
              "variables are ignored"),
        field("timeout", OUTPOST_FIELD_DOUBLE, "seconds a request may take in all", "30"),
        field("connect_timeout", OUTPOST_FIELD_DOUBLE, "seconds to connect (TCP and TLS)", "10"),
        field("compression_level", OUTPOST_FIELD_INT, "zstd level, 1..19", "3"),
        field("engine", OUTPOST_FIELD_STRING, "this engine's name in batches; default: hostname"),
        field("allow_http", OUTPOST_FIELD_BOOL, "accept an http:// url (tests only)", "false"),
        field("stats_interval", OUTPOST_FIELD_DOUBLE,
              "seconds between the uplink's own metrics; 0: none", "60"),
    };
  }

  void start() override {
    if (stats_interval_s_ > 0)
      host_.set_timer(1, std::chrono::nanoseconds(static_cast<int64_t>(stats_interval_s_ * 1e9)));
  }
  void stop() override { emit_stats(); }
  void on_timer(uint64_t) override { emit_stats(); }

  // Without a spool (spool: false): a batch is sent once with an id of this process's own.
  void write(const outpost_batch& b) override {
    outpost::SpoolInfo info;
    info.spool_id = direct_id_;
    ++direct_seq_;
    info.ranges.push_back(outpost::SpoolRange{"direct", direct_seq_, direct_seq_});
    write_spooled(b, info);
  }

  void write_spooled(const outpost_batch& b, const outpost::SpoolInfo& info) override {
    if (b.metric_count + b.event_count + b.flow_count == 0) return;  // nothing to send
    std::string batch_id(info.spool_id);
    for (const auto& r : info.ranges)
      batch_id += "/" + std::string(r.stream) + ":" + std::to_string(r.first_seq) + "-" +
                  std::to_string(r.last_seq);
    if (info.attempt > 1) stats_.retries++;
    for (int round = 0; round < 2; ++round) {
      std::string body = encoder_.encode(b, info);
      const Response r = post(body, batch_id);
      if (r.code >= 200 && r.code < 300) {
        encoder_.commit();
        stats_.batches_ok++;
        stats_.body_bytes += body.size();
        stats_.items += b.metric_count + b.event_count + b.flow_count;
        if (failing_) {
          host_.log(OUTPOST_LOG_INFO, "uplink: " + url_ + " takes batches again");
          failing_ = false;
        }
        return;
      }
      encoder_.rollback();
      if (r.code == 409 && round == 0) {  // the receiver lost our series dictionary
        encoder_.reset();
        stats_.resets++;
        continue;
      }
      fail(r);
    }
    fail(Response{409, CURLE_OK, "the receiver refused the dictionary twice", {}});
  }

 private:
  struct Response {
    long code = 0;
    CURLcode curl = CURLE_OK;
    std::string error;
    std::string retry_after;
  };

  static size_t on_body(char* p, size_t sz, size_t n, void* ud) {
    auto* s = static_cast<std::string*>(ud);
    if (s->size() < 4096) s->append(p, std::min<size_t>(sz * n, 4096 - s->size()));
    return sz * n;
  }
  static size_t on_header(char* p, size_t sz, size_t n, void* ud) {
    auto* r = static_cast<Response*>(ud);
    std::string_view h(p, sz * n);
    constexpr std::string_view key = "retry-after:";
    if (h.size() > key.size()) {
      std::string lower(h.substr(0, key.size()));
      for (auto& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      if (lower == key) {
        std::string v(h.substr(key.size()));
        v.erase(0, v.find_first_not_of(" \t"));
        v.erase(v.find_last_not_of(" \t\r\n") + 1);
        r->retry_after = v;
      }
    }
    return sz * n;
  }

  Response post(const std::string& body, const std::string& batch_id) {
    Response r;
    std::string answer;
    char errbuf[CURL_ERROR_SIZE] = {};
    curl_easy_reset(curl_);
    curl_easy_setopt(curl_, CURLOPT_URL, url_.c_str());
    curl_easy_setopt(curl_, CURLOPT_POST, 1L);
    curl_easy_setopt(curl_, CURLOPT_POSTFIELDS, body.data());
    curl_easy_setopt(curl_, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
    curl_easy_setopt(curl_, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl_, CURLOPT_TIMEOUT_MS, timeout_ms_);
    curl_easy_setopt(curl_, CURLOPT_CONNECTTIMEOUT_MS, connect_timeout_ms_);
    curl_easy_setopt(curl_, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(curl_, CURLOPT_WRITEFUNCTION, &Uplink::on_body);
    curl_easy_setopt(curl_, CURLOPT_WRITEDATA, &answer);
    curl_easy_setopt(curl_, CURLOPT_HEADERFUNCTION, &Uplink::on_header);
    curl_easy_setopt(curl_, CURLOPT_HEADERDATA, &r);
    curl_easy_setopt(curl_, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(curl_, CURLOPT_SSL_VERIFYHOST, 2L);
    curl_easy_setopt(curl_, CURLOPT_SSLVERSION, CURL_SSLVERSION_TLSv1_2);
    curl_easy_setopt(curl_, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(curl_, CURLOPT_ACCEPT_ENCODING, nullptr);
    // Direct unless a proxy is configured: "" makes libcurl ignore http(s)_proxy and friends.
    curl_easy_setopt(curl_, CURLOPT_PROXY, proxy_.c_str());
    if (!ca_file_.empty()) {
      curl_easy_setopt(curl_, CURLOPT_CAINFO, ca_file_.c_str());
      curl_easy_setopt(curl_, CURLOPT_CAPATH, nullptr);
    }
    if (!pinned_key_.empty()) curl_easy_setopt(curl_, CURLOPT_PINNEDPUBLICKEY, pinned_key_.c_str());
    if (!client_cert_.empty()) {
      curl_easy_setopt(curl_, CURLOPT_SSLCERT, client_cert_.c_str());
      curl_easy_setopt(curl_, CURLOPT_SSLKEY, client_key_.c_str());
      if (!key_password_.empty()) curl_easy_setopt(curl_, CURLOPT_KEYPASSWD, key_password_.c_str());
    }
    struct curl_slist* headers = nullptr;
    headers = curl_slist_append(headers, "Content-Type: application/vnd.outpost.batch");
    headers = curl_slist_append(headers, ("X-Outpost-Batch: " + batch_id).c_str());
    headers = curl_slist_append(headers, "Expect:");
    if (!token_.empty())
      headers = curl_slist_append(headers, ("Authorization: Bearer " + token_).c_str());
    curl_easy_setopt(curl_, CURLOPT_HTTPHEADER, headers);
    const auto t0 = std::chrono::steady_clock::now();
    r.curl = curl_easy_perform(curl_);
    stats_.latency_sum_s +=
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    stats_.requests++;
    curl_slist_free_all(headers);
    curl_off_t up = 0;
    long req = 0, hdr = 0;
    curl_easy_getinfo(curl_, CURLINFO_SIZE_UPLOAD_T, &up);
    curl_easy_getinfo(curl_, CURLINFO_REQUEST_SIZE, &req);
    curl_easy_getinfo(curl_, CURLINFO_HEADER_SIZE, &hdr);
    stats_.http_bytes_out += static_cast<uint64_t>(up) + static_cast<uint64_t>(req);
    stats_.http_bytes_in += static_cast<uint64_t>(hdr) + answer.size();
    if (r.curl == CURLE_OK) {
      curl_easy_getinfo(curl_, CURLINFO_RESPONSE_CODE, &r.code);
      r.error = answer;
    } else {
      r.error = errbuf[0] != 0 ? errbuf : curl_easy_strerror(r.curl);
    }
    return r;
  }

  [[noreturn]] void fail(const Response& r) {
    stats_.failures++;
    outpost_status st = OUTPOST_E_UNAVAILABLE;
    std::string what;
    if (r.curl != CURLE_OK) {
      switch (r.curl) {
        case CURLE_PEER_FAILED_VERIFICATION:
        case CURLE_SSL_CACERT_BADFILE:
        case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
        case CURLE_SSL_CERTPROBLEM:
        case CURLE_SSL_ISSUER_ERROR:
        case CURLE_SSL_CRL_BADFILE:
          st = OUTPOST_E_AUTH;  // the operator must fix a certificate: data waits in the spool
          what = "TLS: " + r.error;
          break;
        case CURLE_OPERATION_TIMEDOUT:
          st = OUTPOST_E_TIMEOUT;
          what = r.error;
          break;
        default:
          what = r.error;
      }
    } else if (r.code == 429 || r.code == 503) {
      st = OUTPOST_E_BUSY;
      const int64_t wait_s =
          outpost::lib::retry_after_seconds(r.retry_after, host_.now_ns() / 1'000'000'000);
      if (wait_s > 0) host_.retry_after(std::chrono::seconds(wait_s));
      what = "HTTP " + std::to_string(r.code) +
             (wait_s > 0 ? ", Retry-After " + std::to_string(wait_s) + " s" : std::string());
    } else if (r.code == 401 || r.code == 403) {
      st = OUTPOST_E_AUTH;
      what = "HTTP " + std::to_string(r.code) + " (credentials refused)";
    } else if (r.code == 400 || r.code == 413 || r.code == 422) {
      st = OUTPOST_E_INVALID_ARGUMENT;  // the batch itself is refused: dropped, counted
      what = "HTTP " + std::to_string(r.code) + ": " + r.error.substr(0, 200);
    } else {
      what = "HTTP " + std::to_string(r.code);
    }
    // One clear message when the state changes, not one per retry.
    if (!failing_ || st != last_failure_) {
      host_.report_error(st, "uplink " + url_ + ": " + what);
      failing_ = true;
      last_failure_ = st;
    }
    throw Error(st, what);
  }

  void emit_stats() {
    if (stats_interval_s_ <= 0) return;
    const int64_t t = host_.now_ns();
    auto m = [&](const char* name, double v, uint32_t type) {
      return outpost::Metric{name, {}, v, t, type};
    };
    const std::vector<outpost::Metric> ms = {
        m("outpost_uplink_requests_total", static_cast<double>(stats_.requests),
          OUTPOST_METRIC_COUNTER),
        m("outpost_uplink_batches_total", static_cast<double>(stats_.batches_ok),
          OUTPOST_METRIC_COUNTER),
        m("outpost_uplink_failures_total", static_cast<double>(stats_.failures),
          OUTPOST_METRIC_COUNTER),
        m("outpost_uplink_retries_total", static_cast<double>(stats_.retries),
          OUTPOST_METRIC_COUNTER),
        m("outpost_uplink_items_total", static_cast<double>(stats_.items), OUTPOST_METRIC_COUNTER),
        m("outpost_uplink_body_bytes_total", static_cast<double>(stats_.body_bytes),
          OUTPOST_METRIC_COUNTER),
        m("outpost_uplink_http_bytes_sent_total", static_cast<double>(stats_.http_bytes_out),
          OUTPOST_METRIC_COUNTER),
        m("outpost_uplink_http_bytes_received_total", static_cast<double>(stats_.http_bytes_in),
          OUTPOST_METRIC_COUNTER),
        m("outpost_uplink_request_seconds_sum", stats_.latency_sum_s, OUTPOST_METRIC_COUNTER),
        m("outpost_uplink_dictionary_resets_total", static_cast<double>(stats_.resets),
          OUTPOST_METRIC_COUNTER),
    };
    host_.emit(ms);
  }

  struct Stats {
    uint64_t requests = 0, batches_ok = 0, failures = 0, retries = 0, items = 0, resets = 0;
    uint64_t body_bytes = 0, http_bytes_out = 0, http_bytes_in = 0;
    double latency_sum_s = 0;
  };

  outpost::Host host_;
  outpost::lib::wire::Encoder encoder_;
  std::string url_, ca_file_, pinned_key_, client_cert_, client_key_, key_password_, token_, proxy_;
  long timeout_ms_ = 30000, connect_timeout_ms_ = 10000;
  double stats_interval_s_ = 60;
  CURL* curl_ = nullptr;
  std::string direct_id_;
  uint64_t direct_seq_ = 0;
  bool failing_ = false;
  outpost_status last_failure_ = OUTPOST_OK;
  Stats stats_;
};

}  // namespace

OUTPOST_PLUGIN(Uplink, "uplink", "1.0.0",
               "everything collected, over one outbound HTTPS connection, batched and compressed, "
               "behind the disk spool")
