// otlp: metrics and events to any OpenTelemetry receiver with OTLP/HTTP binary protobuf
// (POST <endpoint>/v1/metrics and /v1/logs), behind the core's disk spool (OUTPOST_FLAG_SPOOL).
// Requests are encoded by hand (otlp_encode.hpp); flows have no OTLP signal and are counted only.
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <outpost/sdk.hpp>
#include <outpost_lib/http_client.hpp>
#include <string>
#include <vector>

#include "otlp_encode.hpp"

namespace {

using outpost::Error;
namespace http = outpost::lib::http;
constexpr const char* kVersion = "1.0.0";
constexpr http::Fields kHttpFields{"bearer_token", "10s", "10s", "60s"};

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

class Otlp final : public http::StatsSink {
 public:
  static constexpr uint32_t flags = OUTPOST_FLAG_SPOOL;

  Otlp(outpost::Host host, const outpost::Config& cfg)
      : http::StatsSink(host, http::stats_interval_seconds(cfg, kHttpFields)),
        host_(host),
        endpoint_(endpoint_of(cfg)),
        client_(options(host, cfg)),
        reporter_("otlp " + endpoint_) {
    const std::string compression = cfg.get("compression", "gzip");
    if (compression != "gzip" && compression != "none")
      throw Error(OUTPOST_E_CONFIG, "compression: none or gzip (got '" + compression + "')");
    gzip_ = compression == "gzip";

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
  }

  static std::vector<outpost_field> config_fields() {
    using outpost::field;
    std::vector<outpost_field> fields = {
        field("endpoint", OUTPOST_FIELD_STRING,
              "the receiver's base URL, http(s)://host:port; /v1/metrics and /v1/logs are "
              "appended",
              "", OUTPOST_FIELD_REQUIRED),
        field("compression", OUTPOST_FIELD_STRING, "request body encoding: gzip or none", "gzip"),
        field("engine_id", OUTPOST_FIELD_STRING,
              "this engine's id, sent as the resource attribute service.instance.id"),
        field("resource_attributes", OUTPOST_FIELD_LIST,
              "more resource attributes, 'key=value' (a key given here replaces the plugin's)"),
    };
    return http::with_config_fields(std::move(fields), kHttpFields);
  }

  // Without a spool (spool: false) a batch is sent once; failures are the host's to count.
  void write(const outpost_batch& b) override {
    metrics_sent_for_.clear();
    send(b, {});
  }

  void write_spooled(const outpost_batch& b, const outpost::SpoolInfo& info) override {
    const std::string id = http::batch_id(info);
    if (info.attempt > 1) stats_.retries++;
    send(b, id);
  }

 private:
  // OTLP/HTTP retries 429, 502, 503 and 504 only; any other refusal drops the request.
  inline static const http::Policy kPolicy{{}, {429, 502, 503, 504}, true};

  static std::string endpoint_of(const outpost::Config& cfg) {
    std::string e = cfg.get("endpoint");
    while (!e.empty() && e.back() == '/') e.pop_back();
    http::check_url("endpoint", e, true);
    return e;
  }
  static http::Options options(const outpost::Host& host, const outpost::Config& cfg) {
    http::Options o = http::read_options(cfg, host, kHttpFields);
    o.user_agent = std::string("outpost-otlp/") + kVersion;
    o.max_answer_bytes = 65536;  // an ExportPartialSuccess with its message
    return o;
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
    reporter_.delivered(host_);
  }

  void post(const char* path, const std::string& proto, std::size_t items, uint64_t& rejected) {
    const std::string body = gzip_ ? gzip(proto) : proto;
    std::vector<std::string> headers = {"Content-Type: application/x-protobuf"};
    if (gzip_) headers.emplace_back("Content-Encoding: gzip");
    const http::Response r = client_.post(endpoint_ + path, body, headers);
    stats_.requests++;
    if (r.ok()) {
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
    http::Verdict v = http::classify(r, host_.now_ns() / 1'000'000'000, kPolicy);
    stats_.failures++;
    if (v.outcome == http::Outcome::rejected) stats_.dropped++;
    v.what = std::string(path) + ": " + v.what;
    reporter_.fail(host_, v);
  }

  void emit_stats() override {
    if (stats_interval_s() <= 0) return;
    const int64_t t = host_.now_ns();
    // Labelled with the destination: two otlp sinks' counters are two series.
    const outpost::Labels labels = {{"endpoint", endpoint_}};
    auto c = [&](const char* name, uint64_t v) {
      return outpost::Metric{name, labels, static_cast<double>(v), t, OUTPOST_METRIC_COUNTER};
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
  std::string endpoint_;
  http::Client client_;
  http::Reporter reporter_;
  outpost::otlp::Resource resource_;
  bool gzip_ = true;
  std::string metrics_sent_for_;
  Stats stats_;
};

}  // namespace

OUTPOST_PLUGIN(Otlp, "otlp", "1.0.0",
               "metrics and events to an OpenTelemetry receiver with OTLP/HTTP protobuf, behind "
               "the disk spool")
