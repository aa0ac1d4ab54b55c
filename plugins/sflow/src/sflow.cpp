// sflow: a listener for sFlow v5 datagrams on sockets the core owns (UDP/2056 by convention).
// Decoding is sflow_decoder.cpp's pure function; this file keeps the state that spans datagrams
// (sequence numbers per agent, drop and skip counters) and turns results into batches.
#include <arpa/inet.h>
#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <limits>
#include <map>
#include <outpost/sdk.hpp>
#include <string>

#include "sflow_decoder.hpp"

namespace outpost::sflow {
namespace {

std::string agent_text(const Agent& a) {
  char buf[INET6_ADDRSTRLEN] = {};
  ::inet_ntop(a.family == 4 ? AF_INET : AF_INET6, a.addr.data(), buf, sizeof buf);
  return buf;
}

class SflowListener : public Listener {
 public:
  SflowListener(Host host, const Config& cfg)
      : host_(host),
        emit_flows_(cfg.get_bool("emit_flows", true)),
        emit_counters_(cfg.get_bool("emit_counters", true)),
        stats_interval_ns_(static_cast<int64_t>(cfg.get_seconds("stats_interval", 10) * 1e9)),
        tracker_(static_cast<std::size_t>(cfg.get_int("max_agents", 4096))) {
    if (cfg.get_int("max_agents", 4096) < 1)
      throw Error(OUTPOST_E_CONFIG, "max_agents: must be at least 1");
  }

  static std::vector<outpost_field> config_fields() {
    return {
        field("emit_flows", OUTPOST_FIELD_BOOL, "One flow record per flow sample", "true"),
        field("emit_counters", OUTPOST_FIELD_BOOL,
              "Interface counters (sflow_if_*) from counter samples", "true"),
        field("stats_interval", OUTPOST_FIELD_DURATION,
              "How often the plugin's own counters (drops, lost datagrams) are emitted; 0 = with "
              "every batch that changed them",
              "10s"),
        field("max_agents", OUTPOST_FIELD_INT,
              "Agents (address, sub-agent) whose sequence numbers are tracked for loss", "4096"),
    };
  }

  void receive(std::span<const outpost_datagram> datagrams) override {
    out_.flows.clear();
    out_.counters.clear();
    metrics_.clear();
    for (const auto& d : datagrams) {
      const std::size_t c0 = out_.counters.size();
      const Result r = decode(std::span<const uint8_t>(d.data, d.len), d.recv_time_ns, out_);
      if (r.drop != Drop::none) {
        ++drops_[static_cast<std::size_t>(r.drop)];
        changed_ = true;
        continue;
      }
      ++datagrams_;
      changed_ = true;
      if (const uint64_t lost = tracker_.update(r.header); lost != 0)
        lost_[{agent_text(r.header.agent), r.header.agent.sub_agent}] += lost;
      if (emit_counters_)
        for (std::size_t i = c0; i < out_.counters.size(); ++i)
          add_if_metrics(r.header.agent, out_.counters[i], d.recv_time_ns);
    }
    flows_total_ += out_.flows.size();
    const int64_t now = host_.monotonic_ns();
    if (changed_ && now - last_stats_ns_ >= stats_interval_ns_) add_stats(now);
    if (!emit_flows_) out_.flows.clear();
    if (!metrics_.empty() || !out_.flows.empty())
      host_.emit(metrics_, {}, std::span<const outpost_flow>(out_.flows));
  }

  void start() override {
    host_.set_timer(kTickTimer, Host::stats_timer_period(stats_interval_ns_));
  }

  // Counters while no datagram comes.
  void on_timer(uint64_t) override {
    if (host_.monotonic_ns() - last_stats_ns_ >= stats_interval_ns_) report();
  }

  void stop() override { report(); }  // the last counts, so a short run still reports them

 private:
  void add(std::string name, Labels labels, double v, uint32_t type, int64_t t = 0) {
    metrics_.push_back(Metric{std::move(name), std::move(labels), v, t, type});
  }

  void add_if_metrics(const Agent& a, const IfCounters& c, int64_t t) {
    const Labels l{{"agent", agent_text(a)}, {"ifindex", std::to_string(c.if_index)}};
    // A counter the agent does not keep is sent as all ones (-1): Open vSwitch does so for
    // ifInBroadcastPkts, ifInUnknownProtos, ifOutMulticastPkts and ifOutBroadcastPkts. It is
    // left out rather than stored as a counter stuck at 2^32-1.
    auto counter = [&](const char* n, auto v) {
      if (v != std::numeric_limits<decltype(v)>::max())
        add(n, l, static_cast<double>(v), OUTPOST_METRIC_COUNTER, t);
    };
    counter("sflow_if_in_octets", c.in_octets);
    counter("sflow_if_in_ucast_pkts", c.in_ucast_pkts);
    counter("sflow_if_in_multicast_pkts", c.in_multicast_pkts);
    counter("sflow_if_in_broadcast_pkts", c.in_broadcast_pkts);
    counter("sflow_if_in_discards", c.in_discards);
    counter("sflow_if_in_errors", c.in_errors);
    counter("sflow_if_in_unknown_protos", c.in_unknown_protos);
    counter("sflow_if_out_octets", c.out_octets);
    counter("sflow_if_out_ucast_pkts", c.out_ucast_pkts);
    counter("sflow_if_out_multicast_pkts", c.out_multicast_pkts);
    counter("sflow_if_out_broadcast_pkts", c.out_broadcast_pkts);
    counter("sflow_if_out_discards", c.out_discards);
    counter("sflow_if_out_errors", c.out_errors);
    add("sflow_if_speed", l, static_cast<double>(c.if_speed), OUTPOST_METRIC_GAUGE, t);
    // 1 = up, 0 = not up (ifStatus bit 1 and bit 0).
    add("sflow_if_oper_status", l, (c.if_status >> 1) & 1u, OUTPOST_METRIC_GAUGE, t);
    add("sflow_if_admin_status", l, c.if_status & 1u, OUTPOST_METRIC_GAUGE, t);
  }

  void report() {
    if (!changed_) return;
    metrics_.clear();
    add_stats(host_.monotonic_ns());
    host_.emit(metrics_);
  }

  void add_stats(int64_t now) {
    last_stats_ns_ = now;
    changed_ = false;
    add("sflow_datagrams_total", {}, static_cast<double>(datagrams_), OUTPOST_METRIC_COUNTER);
    add("sflow_flows_total", {}, static_cast<double>(flows_total_), OUTPOST_METRIC_COUNTER);
    for (std::size_t i = 1; i < kDropReasons; ++i)
      if (drops_[i] != 0)
        add("sflow_dropped_total", {{"reason", std::string(drop_name(static_cast<Drop>(i)))}},
            static_cast<double>(drops_[i]), OUTPOST_METRIC_COUNTER);
    for (std::size_t i = 0; i < kSkipKinds; ++i)
      if (out_.skipped[i] != 0)
        add("sflow_skipped_total", {{"what", std::string(skip_name(static_cast<Skip>(i)))}},
            static_cast<double>(out_.skipped[i]), OUTPOST_METRIC_COUNTER);
    for (const auto& [k, n] : lost_)
      add("sflow_lost_datagrams", {{"agent", k.first}, {"sub_agent", std::to_string(k.second)}},
          static_cast<double>(n), OUTPOST_METRIC_COUNTER);
  }

  Host host_;
  bool emit_flows_, emit_counters_;
  int64_t stats_interval_ns_;
  static constexpr uint64_t kTickTimer = 1;
  int64_t last_stats_ns_ = INT64_MIN / 2;
  bool changed_ = false;
  SequenceTracker tracker_;
  Output out_;  // reused: skipped[] accumulates over the plugin's life
  std::vector<Metric> metrics_;
  std::array<uint64_t, kDropReasons> drops_{};
  uint64_t datagrams_ = 0, flows_total_ = 0;
  std::map<std::pair<std::string, uint32_t>, uint64_t> lost_;  // bounded by max_agents
};

}  // namespace
}  // namespace outpost::sflow

OUTPOST_PLUGIN(
    outpost::sflow::SflowListener, "sflow", "1.0.0",
    "sFlow v5 listener: flow samples to flow records, counter samples to interface metrics")
