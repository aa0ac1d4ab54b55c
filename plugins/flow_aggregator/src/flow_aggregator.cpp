// flow_aggregator: a processor that turns the flow records of every flow plugin into compact
// per-interval traffic summaries (MISSION F2), counting duplicates once (F3). The raw records
// stay out of the sinks unless engine.pipeline.raw_flows is set.
#include <chrono>
#include <mutex>
#include <outpost/sdk.hpp>

#include "rollup.hpp"

namespace outpost::flows {
namespace {

class FlowAggregator : public Processor {
 public:
  // process() takes its own lock: listeners call it from their threads (Pipeline::process_flows),
  // and the interval's timer may fire meanwhile.
  static constexpr uint32_t flags = OUTPOST_FLAG_CONSUMES_FLOWS | OUTPOST_FLAG_CONCURRENT_HOOKS;

  FlowAggregator(Host host, const Config& cfg) : host_(host), rollup_(options(cfg)) {
    interval_s_ = cfg.get_seconds("interval", 60);
    if (interval_s_ < 1) throw Error(OUTPOST_E_CONFIG, "interval: at least 1s");
  }

  static std::vector<outpost_field> config_fields() {
    return {
        field("interval", OUTPOST_FIELD_DURATION, "length of one summary interval", "60s"),
        field("top_n", OUTPOST_FIELD_INT, "entries kept per top list; the rest is 'other'", "20"),
        field("max_keys", OUTPOST_FIELD_INT, "distinct keys per table and interval (memory bound)",
              "100000"),
        field("dedup", OUTPOST_FIELD_BOOL, "count a flow seen at several observation points once",
              "true")};
  }

  void start() override {
    host_.set_timer(kIntervalTimer, std::chrono::duration_cast<std::chrono::nanoseconds>(
                                        std::chrono::duration<double>(interval_s_)));
  }

  void stop() override { flush_summary(); }  // the partial last interval is not lost

  void on_timer(uint64_t) override { flush_summary(); }

  void process(const outpost_batch& b) override {
    if (b.flow_count == 0) return;
    std::lock_guard g(mu_);
    for (std::size_t i = 0; i < b.flow_count; ++i) rollup_.add(element(b.flows, b.flow_size, i));
  }

 private:
  static RollupOptions options(const Config& cfg) {
    RollupOptions o;
    const int64_t top = cfg.get_int("top_n", 20), keys = cfg.get_int("max_keys", 100000);
    if (top < 1 || top > 10000) throw Error(OUTPOST_E_CONFIG, "top_n: 1..10000");
    if (keys < 100) throw Error(OUTPOST_E_CONFIG, "max_keys: at least 100");
    o.top_n = static_cast<std::size_t>(top);
    o.max_keys = static_cast<std::size_t>(keys);
    o.dedup = cfg.get_bool("dedup", true);
    return o;
  }

  void flush_summary() {
    std::vector<SummaryRow> rows;
    uint64_t flows = 0;
    {
      std::lock_guard g(mu_);
      flows = rollup_.flows() - flows_reported_;
      flows_reported_ = rollup_.flows();
      rows = rollup_.take();
    }
    if (flows == 0) return;  // an idle interval says nothing
    const int64_t now = host_.now_ns();
    std::vector<Metric> ms;
    ms.reserve(rows.size());
    for (auto& r : rows)
      ms.push_back(
          Metric{std::move(r.name), std::move(r.labels), r.value, now, OUTPOST_METRIC_GAUGE});
    host_.emit(ms);
  }

  static constexpr uint64_t kIntervalTimer = 1;
  Host host_;
  std::mutex mu_;
  Rollup rollup_;
  double interval_s_ = 60;
  uint64_t flows_reported_ = 0;
};

}  // namespace
}  // namespace outpost::flows

OUTPOST_PLUGIN(outpost::flows::FlowAggregator, "flow_aggregator", "0.1.0",
               "per-interval traffic summaries of flow records: top talkers, conversations, "
               "protocols, applications, exporters and interfaces; duplicates counted once")
