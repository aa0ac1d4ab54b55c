// uplink: everything the engine collects, to a cloud or the user's own receiver, over one
// outbound HTTPS connection (libcurl + OpenSSL). Batches come out of the core's disk spool
// (OUTPOST_FLAG_SPOOL) with ids that stay the same across retries and restarts; the body is the
// wire format of docs/uplink-wire-format.md (outpost_lib/uplink_wire.hpp).
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <outpost/sdk.hpp>
#include <outpost_lib/http_client.hpp>
#include <outpost_lib/uplink_wire.hpp>
#include <random>
#include <string>
#include <vector>

namespace {

using outpost::Error;
namespace http = outpost::lib::http;

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

class Uplink final : public http::StatsSink {
 public:
  static constexpr uint32_t flags = OUTPOST_FLAG_SPOOL;
  static constexpr http::Fields kHttpFields{"token", "30s", "10s", "60s"};

  Uplink(outpost::Host host, const outpost::Config& cfg)
      : http::StatsSink(host, http::stats_interval_seconds(cfg, kHttpFields)),
        host_(host),
        encoder_(cfg.get("engine").empty() ? hostname() : cfg.get("engine"), level_of(cfg)),
        url_(cfg.get("url")),
        client_(options(host, cfg)),
        reporter_("uplink " + url_) {
    std::random_device rd;
    char b[40];
    std::snprintf(b, sizeof b, "direct-%08x%08x", rd(), rd());
    direct_id_ = b;
  }

  static std::vector<outpost_field> config_fields() {
    using outpost::field;
    std::vector<outpost_field> fields = {
        field("url", OUTPOST_FIELD_STRING,
              "the receiver's batch endpoint, https://host[:port]/path (e.g. "
              "https://cloud.example.net/v1/batches)",
              "", OUTPOST_FIELD_REQUIRED),
        field("compression_level", OUTPOST_FIELD_INT, "zstd level, 1..19", "3"),
        field("engine", OUTPOST_FIELD_STRING, "this engine's name in batches; default: hostname"),
        field("allow_http", OUTPOST_FIELD_BOOL, "accept an http:// url (tests only)", "false"),
    };
    return http::with_config_fields(std::move(fields), kHttpFields);
  }

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
    const std::string id = http::batch_id(info);
    if (info.attempt > 1) stats_.retries++;
    for (int round = 0; round < 2; ++round) {
      std::string body = encoder_.encode(b, info);
      const http::Response r = post(body, id);
      if (r.ok()) {
        encoder_.commit();
        stats_.batches_ok++;
        stats_.body_bytes += body.size();
        stats_.items += b.metric_count + b.event_count + b.flow_count;
        reporter_.delivered(host_);
        return;
      }
      encoder_.rollback();
      if (r.transport == http::Transport::ok && r.status == 409 && round == 0) {
        encoder_.reset();  // the receiver lost our series dictionary
        stats_.resets++;
        continue;
      }
      fail(http::classify(r, host_.now_ns() / 1'000'000'000, kPolicy));
    }
    fail({http::Outcome::retry, OUTPOST_E_UNAVAILABLE,
          "HTTP 409: the receiver refused the dictionary twice", 0});
  }

 private:
  // 422: a body the receiver could read but will not take.
  inline static const http::Policy kPolicy{{400, 413, 422}, {429, 503}, false};

  static http::Options options(const outpost::Host& host, const outpost::Config& cfg) {
    http::check_url("url", cfg.get("url"), cfg.get_bool("allow_http", false));
    http::Options o = http::read_options(cfg, host, kHttpFields);
    o.user_agent = "outpost-uplink";
    return o;
  }

  http::Response post(const std::string& body, const std::string& batch_id) {
    const http::Response r = client_.post(
        url_, body,
        {"Content-Type: application/vnd.outpost.batch", "X-Outpost-Batch: " + batch_id});
    stats_.requests++;
    stats_.latency_sum_s += r.seconds;
    stats_.http_bytes_out += r.bytes_sent;
    stats_.http_bytes_in += r.bytes_received;
    return r;
  }

  [[noreturn]] void fail(const http::Verdict& v) {
    stats_.failures++;
    reporter_.fail(host_, v);
  }

  void emit_stats() override {
    if (stats_interval_s() <= 0) return;
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
  std::string url_;
  http::Client client_;
  http::Reporter reporter_;
  std::string direct_id_;
  uint64_t direct_seq_ = 0;
  Stats stats_;
};

}  // namespace

OUTPOST_PLUGIN(Uplink, "uplink", "1.0.0",
               "everything collected, over one outbound HTTPS connection, batched and compressed, "
               "behind the disk spool")
