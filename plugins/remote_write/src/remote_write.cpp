// remote_write: the engine's metrics to any store that takes Prometheus remote write 1.0
// (Prometheus, VictoriaMetrics, Mimir, Thanos receive, ...). Batches come out of the core's disk
// spool (OUTPOST_FLAG_SPOOL); each becomes one or more snappy-compressed protobuf WriteRequests
// (outpost_lib/prom_write.hpp) POSTed by the shared HTTP client (outpost_lib/http_client.hpp).
// Events and flows are not metrics: counted, not sent.
#include <algorithm>
#include <chrono>
#include <outpost/sdk.hpp>
#include <outpost_lib/http_client.hpp>
#include <outpost_lib/prom_write.hpp>
#include <string>
#include <vector>

namespace {

using outpost::Error;
namespace rw = outpost::lib::promrw;
namespace http = outpost::lib::http;
constexpr http::Fields kHttpFields{"bearer_token", "30s", "10s", "60s"};

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

class RemoteWrite final : public http::StatsSink {
 public:
  static constexpr uint32_t flags = OUTPOST_FLAG_SPOOL;

  RemoteWrite(outpost::Host host, const outpost::Config& cfg)
      : http::StatsSink(host, http::stats_interval_seconds(cfg, kHttpFields)),
        host_(host),
        encoder_(parse_external(cfg.get_list("external_labels")), max_samples(cfg)),
        url_(cfg.get("url")),
        client_(options(host, cfg)),
        reporter_("remote_write " + url_) {}

  static std::vector<outpost_field> config_fields() {
    using outpost::field;
    std::vector<outpost_field> fields = {
        field("url", OUTPOST_FIELD_STRING,
              "the store's remote write endpoint, e.g. http://127.0.0.1:8428/api/v1/write "
              "(VictoriaMetrics) or https://prom.example.net/api/v1/write (Prometheus)",
              "", OUTPOST_FIELD_REQUIRED),
        field("external_labels", OUTPOST_FIELD_LIST,
              "name=value labels added to every series that lacks a label of that name"),
        field("max_samples_per_request", OUTPOST_FIELD_INT,
              "samples per WriteRequest at most; a larger batch is split", "2000"),
    };
    return http::with_config_fields(std::move(fields), kHttpFields);
  }

  void write(const outpost_batch& b) override {
    resume_ = {};
    send(b, {});
  }
  void write_spooled(const outpost_batch& b, const outpost::SpoolInfo& info) override {
    if (info.attempt > 1) stats_.retries++;
    const std::string id = http::batch_id(info);
    send(b, id);
  }

 private:
  static std::size_t max_samples(const outpost::Config& cfg) {
    const int64_t n = cfg.get_int("max_samples_per_request", 2000);
    if (n < 1) throw Error(OUTPOST_E_CONFIG, "max_samples_per_request: at least 1");
    return static_cast<std::size_t>(n);
  }
  static http::Options options(const outpost::Host& host, const outpost::Config& cfg) {
    http::check_url("url", cfg.get("url"), true);
    http::Options o = http::read_options(cfg, host, kHttpFields);
    o.user_agent = "outpost-remote-write";
    return o;
  }

  // A batch larger than max_samples_per_request is several requests. When one fails the spool
  // offers the same batch again (same id, same items); the requests the store took already are
  // not sent again (the encoding is deterministic), so a retry repeats no sample.
  void send(const outpost_batch& b, const std::string& id) {
    rw::EncodeStats es;
    const std::vector<std::string> bodies = encoder_.encode(b, es);
    std::size_t i = (!id.empty() && resume_.id == id) ? resume_.done : 0;
    resume_ = {id, i};
    for (; i < bodies.size(); ++i) {
      const std::string body = rw::snappy_compress(bodies[i]);
      const http::Response r =
          client_.post(url_, body,
                       {"Content-Encoding: snappy", "Content-Type: application/x-protobuf",
                        "X-Prometheus-Remote-Write-Version: 0.1.0"});
      stats_.requests++;
      stats_.seconds += r.seconds;
      if (!r.ok()) fail(http::classify(r, host_.now_ns() / 1'000'000'000));
      stats_.body_bytes += body.size();
      resume_.done = i + 1;
    }
    resume_ = {};
    stats_.batches++;
    stats_.samples += es.samples;
    stats_.events_ignored += es.events_ignored;
    stats_.flows_ignored += es.flows_ignored;
    stats_.labels_collided += es.labels_collided;
    stats_.labels_empty += es.labels_empty;
    reporter_.delivered(host_);
  }

  // The verdict tells the spool what to do: retry (unavailable, busy, timeout), keep and wait
  // for the operator (auth), or drop the batch (invalid argument).
  [[noreturn]] void fail(const http::Verdict& v) {
    stats_.failures++;
    if (v.outcome == http::Outcome::rejected) stats_.dropped++;
    reporter_.fail(host_, v);
  }

  void emit_stats() override {
    if (stats_interval_s() <= 0) return;
    const int64_t t = host_.now_ns();
    // Labelled with the destination: two remote_write sinks' counters are two series.
    const outpost::Labels labels = {{"url", url_}};
    auto counter = [&](const char* name, double v) {
      return outpost::Metric{name, labels, v, t, OUTPOST_METRIC_COUNTER};
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
  std::string url_;
  http::Client client_;
  http::Reporter reporter_;
  struct Resume {
    std::string id;        // the spooled batch last tried
    std::size_t done = 0;  // its requests the store took
  } resume_;
  Stats stats_;
};

}  // namespace

OUTPOST_PLUGIN(RemoteWrite, "remote_write", "1.0.0",
               "metrics to a Prometheus-compatible store by remote write 1.0 (protobuf + snappy "
               "over HTTP(S)), behind the disk spool")
