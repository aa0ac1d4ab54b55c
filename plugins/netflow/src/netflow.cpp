// NetFlow v5 / v9 / IPFIX collector: a listener plugin. The core owns the UDP sockets and hands
// datagrams over in batches; all protocol work is in decoder.cpp. This file adds what needs the
// engine: configuration, per-exporter counters as metrics, and the template state file that lets
// a restarted engine decode v9/IPFIX data at once instead of waiting for the next template
// refresh (up to 30 minutes on some routers).
#include <arpa/inet.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <outpost/sdk.hpp>
#include <sstream>
#include <system_error>

#include "decoder.hpp"

namespace outpost::netflow {
namespace {

constexpr std::size_t kMaxExporterLabels = 1024;  // beyond: exporter="other"
constexpr std::size_t kEmitChunk = 8192;
constexpr const char* kStateFile = "netflow-state.txt";

std::string address_text(const Exporter& e) {
  char buf[INET6_ADDRSTRLEN] = {};
  if (e.family == 4)
    ::inet_ntop(AF_INET, e.addr.data(), buf, sizeof buf);
  else if (e.family == 6)
    ::inet_ntop(AF_INET6, e.addr.data(), buf, sizeof buf);
  else
    return "other";
  return buf;
}

int64_t to_ns(double seconds) { return static_cast<int64_t>(seconds * 1e9); }

}  // namespace

class NetflowListener final : public Listener {
 public:
  NetflowListener(Host host, const Config& cfg) : host_(host) {
    const int64_t max_templates = cfg.get_int("max_templates", 4096);
    const int64_t max_pending = cfg.get_int("max_pending", 1024);
    const int64_t rate = cfg.get_int("default_sampling_rate", 1);
    const double age = cfg.get_seconds("pending_max_age", 30);
    const double stats = cfg.get_seconds("stats_interval", 10);
    if (max_templates < 1 || max_templates > 1'000'000)
      throw Error(OUTPOST_E_CONFIG, "max_templates must be 1 to 1000000");
    if (max_pending < 0 || max_pending > 1'000'000)
      throw Error(OUTPOST_E_CONFIG, "max_pending must be 0 to 1000000");
    if (rate < 1 || rate > 0xFFFFFFFFll)
      throw Error(OUTPOST_E_CONFIG, "default_sampling_rate must be 1 or more");
    if (age > 86400) throw Error(OUTPOST_E_CONFIG, "pending_max_age must be at most 1d");
    if (stats > 86400) throw Error(OUTPOST_E_CONFIG, "stats_interval must be at most 1d");
    limits_.max_templates = static_cast<std::size_t>(max_templates);
    limits_.max_pending = static_cast<std::size_t>(max_pending);
    limits_.default_sampling_rate = static_cast<uint32_t>(rate);
    limits_.pending_max_age_ns = to_ns(age);
    stats_interval_ns_ = to_ns(stats);
    state_dir_ = cfg.get("state_dir");
    decoder_ = std::make_unique<Decoder>(limits_);
  }
  NetflowListener(const NetflowListener&) = delete;
  NetflowListener& operator=(const NetflowListener&) = delete;

  static std::vector<outpost_field> config_fields() {
    using outpost::field;
    return {
        field("state_dir", OUTPOST_FIELD_STRING,
              "Directory for the template state file (netflow-state.txt), written at stop and "
              "read at start; empty: templates are not kept across restarts"),
        field("max_templates", OUTPOST_FIELD_INT,
              "Templates kept over all exporters; the least recently used go first", "4096"),
        field("max_pending", OUTPOST_FIELD_INT,
              "v9/IPFIX data sets held while their template has not arrived; 0 drops them", "1024"),
        field("pending_max_age", OUTPOST_FIELD_DURATION,
              "How long a data set waits for its template before it is dropped", "30s"),
        field("default_sampling_rate", OUTPOST_FIELD_INT,
              "Sampling rate applied when an exporter announces none (1 = unsampled)", "1"),
        field("stats_interval", OUTPOST_FIELD_DURATION,
              "Counters (netflow_*) are emitted this often while anything changes (and with the "
              "next batch of flows); 0 = with every batch",
              "10s"),
    };
  }

  void start() override {
    load_state();
    host_.set_timer(kTickTimer, Host::stats_timer_period(stats_interval_ns_));
  }

  void stop() override {
    decoder_->drop_pending();  // a template arriving after the restart could not find them
    save_state();
    host_.emit(metrics());
    last_stats_ns_ = host_.monotonic_ns();
  }

  void receive(std::span<const outpost_datagram> datagrams) override {
    const int64_t now = host_.monotonic_ns();
    flows_.clear();
    for (const auto& d : datagrams) {
      const Exporter from = Exporter::from(d.source);
      const std::size_t before = flows_.size();
      const PacketResult r = decoder_->decode(std::span(d.data, d.len), from, now, flows_);
      auto& c = counters_for(from, r.version);
      c.packets++;
      c.records += flows_.size() - before;
    }
    ++activity_;
    std::vector<Metric> m;
    if (now - last_stats_ns_ >= stats_interval_ns_) m = report(now);
    std::size_t i = 0;
    do {  // metrics ride with the first chunk of flows
      const std::size_t n = std::min(kEmitChunk, flows_.size() - i);
      if (n == 0 && m.empty()) break;
      host_.emit(i == 0 ? std::span<const Metric>(m) : std::span<const Metric>(), {},
                 std::span<const outpost_flow>(flows_.data() + i, n));
      i += n;
    } while (i < flows_.size());
  }

 private:
  // Counters while no datagram comes, held sets aged out, the state file kept fresh.
  void on_timer(uint64_t) override {
    const int64_t now = host_.monotonic_ns();
    const std::size_t held = decoder_->pending_count();
    decoder_->expire(now);
    if (decoder_->pending_count() != held) ++activity_;
    if (activity_ == reported_activity_ || now - last_stats_ns_ < stats_interval_ns_) return;
    const auto m = report(now);
    host_.emit(m);
  }

  // Metrics to emit now; saves the state file too when it changed (a crash then loses less).
  std::vector<Metric> report(int64_t now) {
    last_stats_ns_ = now;
    reported_activity_ = activity_;
    if (decoder_->totals().state_changes != saved_changes_) save_state();
    return metrics();
  }

  void load_state() {
    if (state_dir_.empty()) return;
    const auto path = std::filesystem::path(state_dir_) / kStateFile;
    std::ifstream in(path, std::ios::binary);
    if (!in) return;  // first start
    std::stringstream ss;
    ss << in.rdbuf();
    std::size_t bad = 0;
    const std::size_t n = decoder_->load(ss.str(), &bad);
    saved_changes_ = decoder_->totals().state_changes;
    std::string msg = "netflow: " + std::to_string(n) + " templates loaded from " + path.string();
    if (bad) msg += " (" + std::to_string(bad) + " lines skipped)";
    host_.log(bad ? OUTPOST_LOG_WARN : OUTPOST_LOG_INFO, msg);
  }

  struct Counts {
    uint64_t packets = 0, records = 0;
  };
  struct CountKey {
    Exporter exporter;
    uint16_t version = 0;
    auto operator<=>(const CountKey&) const = default;
  };

  Counts& counters_for(const Exporter& e, uint16_t version) {
    if (version != 5 && version != 9 && version != 10) version = 0;
    CountKey k{e, version};
    auto it = counts_.find(k);
    if (it != counts_.end()) return it->second;
    if (counts_.size() >= kMaxExporterLabels) k.exporter = Exporter{};  // "other"
    return counts_[k];
  }

  std::vector<Metric> metrics() const {
    std::vector<Metric> out;
    for (const auto& [k, c] : counts_) {
      const std::string ex = address_text(k.exporter);
      const std::string ver = k.version == 0 ? "other" : std::to_string(k.version);
      out.push_back({"netflow_packets_total",
                     {{"exporter", ex}, {"version", ver}},
                     static_cast<double>(c.packets),
                     0,
                     OUTPOST_METRIC_COUNTER});
      out.push_back({"netflow_records_total",
                     {{"exporter", ex}, {"version", ver}},
                     static_cast<double>(c.records),
                     0,
                     OUTPOST_METRIC_COUNTER});
    }
    const Totals& t = decoder_->totals();
    for (std::size_t i = 0; i < kDropReasons; ++i) {
      const auto d = static_cast<Drop>(i);
      out.push_back({"netflow_dropped_total",
                     {{"reason", std::string(drop_name(d))}, {"unit", std::string(drop_unit(d))}},
                     static_cast<double>(t.dropped[i]),
                     0,
                     OUTPOST_METRIC_COUNTER});
    }
    auto counter = [&out](const char* name, uint64_t v) {
      out.push_back({name, {}, static_cast<double>(v), 0, OUTPOST_METRIC_COUNTER});
    };
    out.push_back({"netflow_templates",
                   {},
                   static_cast<double>(decoder_->template_count()),
                   0,
                   OUTPOST_METRIC_GAUGE});
    out.push_back({"netflow_pending_sets",
                   {},
                   static_cast<double>(decoder_->pending_count()),
                   0,
                   OUTPOST_METRIC_GAUGE});
    counter("netflow_templates_received_total", t.templates_received);
    counter("netflow_templates_withdrawn_total", t.templates_withdrawn);
    counter("netflow_templates_evicted_total", t.templates_evicted);
    counter("netflow_option_records_total", t.option_records);
    counter("netflow_held_sets_total", t.held_sets);
    counter("netflow_released_sets_total", t.released_sets);
    return out;
  }

  // Written to a temporary file and renamed, so a crash mid-write leaves the old state.
  void save_state() {
    if (state_dir_.empty()) return;
    const auto dir = std::filesystem::path(state_dir_);
    const auto path = dir / kStateFile;
    const auto tmp = dir / (std::string(kStateFile) + ".tmp");
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    {
      std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
      const std::string text = decoder_->save();
      out.write(text.data(), static_cast<std::streamsize>(text.size()));
      if (!out.flush()) ec = std::make_error_code(std::errc::io_error);
    }
    if (!ec) std::filesystem::rename(tmp, path, ec);
    if (ec) {
      if (!save_failing_)  // once per failing spell: the timer retries every stats_interval
        host_.report_error(OUTPOST_E_UNAVAILABLE,
                           "netflow: cannot write " + path.string() + ": " + ec.message());
      save_failing_ = true;
      return;
    }
    save_failing_ = false;
    saved_changes_ = decoder_->totals().state_changes;
  }

  Host host_;
  Limits limits_;
  std::string state_dir_;
  int64_t stats_interval_ns_ = 0;
  std::unique_ptr<Decoder> decoder_;
  std::map<CountKey, Counts> counts_;
  std::vector<outpost_flow> flows_;
  int64_t last_stats_ns_ = INT64_MIN / 2;  // never: the first batch reports
  uint64_t saved_changes_ = 0;
  uint64_t activity_ = 0, reported_activity_ = 0;
  bool save_failing_ = false;
  static constexpr uint64_t kTickTimer = 1;
};

}  // namespace outpost::netflow

OUTPOST_PLUGIN(outpost::netflow::NetflowListener, "netflow", "1.0.0",
               "NetFlow v5/v9, IPFIX and cFlow collector (templates, options, sampling)")
