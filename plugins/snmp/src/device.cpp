#include "device.hpp"

#include <algorithm>

namespace outpost::snmp {
namespace {

constexpr int64_t kMs = 1'000'000;

std::string format_seconds(int64_t ns) {
  const int64_t ms = (ns + kMs / 2) / kMs;
  if (ms % 1000 == 0) return std::to_string(ms / 1000) + "s";
  if (ms < 1000) return std::to_string(ms) + "ms";
  return format_number(static_cast<double>(ms) / 1000.0) + "s";
}

void gauge(Report& out, const outpost::Labels& base, const char* name, double v) {
  out.metrics.push_back(outpost::Metric{name, base, v, 0, OUTPOST_METRIC_GAUGE});
}

}  // namespace

void RttEstimator::sample(int64_t rtt_ns) {
  rtt_ns = std::max<int64_t>(rtt_ns, 0);
  if (!measured_) {
    srtt_ = rtt_ns;
    rttvar_ = rtt_ns / 2;
    measured_ = true;
  } else {
    rttvar_ = (3 * rttvar_ + std::abs(srtt_ - rtt_ns)) / 4;
    srtt_ = (7 * srtt_ + rtt_ns) / 8;
  }
  backoffs_ = 0;
}

void RttEstimator::backoff() { backoffs_ = std::min(backoffs_ + 1, 16); }

int64_t RttEstimator::timeout(int64_t floor_ns, int64_t ceiling_ns) const {
  ceiling_ns = std::max(ceiling_ns, floor_ns);
  int64_t t = measured_ ? srtt_ + std::max<int64_t>(10 * kMs, 4 * rttvar_) : floor_ns;
  t = std::clamp(t, floor_ns, ceiling_ns);
  for (int i = 0; i < backoffs_ && t < ceiling_ns; ++i) t *= 2;
  return std::min(t, ceiling_ns);
}

outpost_status settle(const Collector* c, outpost_status status, std::string& detail) {
  if (c == nullptr) return status;
  if (status == OUTPOST_OK && !c->got_data()) status = OUTPOST_E_NOT_FOUND;
  const std::string plan = c->plan() ? c->plan()->name : std::string("?");
  if (status == OUTPOST_OK) {
    const auto errors = c->errors();
    std::string d = "profile " + plan + ", " + std::to_string(c->varbinds()) + " varbinds in " +
                    std::to_string(c->responses()) + " responses";
    if (!errors.empty()) {
      d += "; " + std::to_string(errors.size()) + " object" + (errors.size() == 1 ? "" : "s") +
           " unread:";
      for (std::size_t i = 0; i < errors.size() && i < 5; ++i)
        d += " " + errors[i].object + " (" + errors[i].error + ")";
      if (errors.size() > 5) d += " ...";
    }
    detail = std::move(d);
  } else if (status == OUTPOST_E_NOT_FOUND && detail.empty()) {
    detail = "the agent answered but has none of profile " + plan + "'s objects";
  }
  return status;
}

outpost_status settle(const Probe* p, outpost_status status, std::string& detail) {
  if (p == nullptr) return status;
  if (status == OUTPOST_OK && !p->got_data()) status = OUTPOST_E_NOT_FOUND;
  if ((status == OUTPOST_OK || status == OUTPOST_E_NOT_FOUND) && detail.empty()) {
    std::size_t missing = 0;
    std::string first_missing;
    for (const auto& item : p->items()) {
      if (item.error.empty() && !item.value.is_exception()) continue;
      if (missing++ == 0) first_missing = render(item).line.substr(1);
    }
    detail = std::to_string(p->varbinds()) + " varbind" + (p->varbinds() == 1 ? "" : "s") + " in " +
             std::to_string(p->responses()) + " response" + (p->responses() == 1 ? "" : "s");
    if (missing > 0)
      detail += "; " + std::to_string(missing) + " without a value: " + first_missing +
                (missing > 1 ? " ..." : "");
    if (status == OUTPOST_E_NOT_FOUND) detail = "the agent answered but gave no value: " + detail;
  }
  return status;
}

void report(const Collector* c, const Polled& who, outpost_status status, int64_t elapsed_ns,
            int64_t now, DeviceState& st, Report& out) {
  gauge(out, who.base, "snmp_up", status == OUTPOST_OK ? 1.0 : 0.0);
  gauge(out, who.base, "snmp_poll_seconds", static_cast<double>(elapsed_ns) / 1e9);
  if (st.rtt.measured())
    gauge(out, who.base, "snmp_rtt_seconds", static_cast<double>(st.rtt.srtt_ns()) / 1e9);
  if (c == nullptr) return;
  gauge(out, who.base, "snmp_poll_responses", static_cast<double>(c->responses()));
  gauge(out, who.base, "snmp_poll_varbinds", static_cast<double>(c->varbinds()));
  if (c->got_data()) c->build(who.base, out.metrics);

  if (auto up = c->uptime_ticks()) {
    // sysUpTime only goes back when the agent restarted, or when its 32 bits of hundredths
    // wrapped after 497 days, which is not a restart.
    if (st.uptime_ticks >= 0 && *up < st.uptime_ticks) {
      const double expected = st.uptime_ticks + static_cast<double>(now - st.uptime_mono_ns) / 1e7;
      const bool wrapped = expected >= 4294967296.0 - 100 * 3600;
      if (!wrapped) {
        st.restarts += 1;
        outpost::Event e;
        e.kind = "snmp";
        e.source = who.device;
        e.severity = OUTPOST_SEV_NOTICE;
        e.message = "agent restarted: sysUpTime went from " +
                    format_seconds(static_cast<int64_t>(st.uptime_ticks * 1e7)) + " to " +
                    format_seconds(static_cast<int64_t>(*up * 1e7)) +
                    "; counters started again from zero";
        e.attributes = {{"address", who.address}, {"reason", "restart"}};
        out.events.push_back(std::move(e));
      }
    }
    st.uptime_ticks = *up;
    st.uptime_mono_ns = now;
  }
  if (c->plan()) st.plan = c->plan()->name;
  out.metrics.push_back(
      outpost::Metric{"snmp_restarts_total", who.base, st.restarts, 0, OUTPOST_METRIC_COUNTER});
  for (const auto& e : c->errors()) st.object_errors[{e.object, e.oid, e.error}] += 1;
  for (const auto& [k, n] : st.object_errors) {
    outpost::Labels l = who.base;
    l.emplace_back("object", std::get<0>(k));
    l.emplace_back("oid", std::get<1>(k));
    l.emplace_back("error", std::get<2>(k));
    out.metrics.push_back(
        outpost::Metric{"snmp_object_errors_total", std::move(l), n, 0, OUTPOST_METRIC_COUNTER});
  }
}

void report(const Probe* p, const Polled& who, outpost_status status, int64_t elapsed_ns,
            Report& out) {
  gauge(out, who.base, "snmp_up", status == OUTPOST_OK ? 1.0 : 0.0);
  gauge(out, who.base, "snmp_poll_seconds", static_cast<double>(elapsed_ns) / 1e9);
  if (p == nullptr) return;
  gauge(out, who.base, "snmp_poll_responses", static_cast<double>(p->responses()));
  gauge(out, who.base, "snmp_poll_varbinds", static_cast<double>(p->varbinds()));
  for (const auto& item : p->items()) {
    const Rendered r = render(item);
    const bool value = item.error.empty() && !item.value.is_exception();
    outpost::Event e;
    e.kind = "snmp.varbind";
    e.source = who.device;
    e.severity = value ? OUTPOST_SEV_INFO : OUTPOST_SEV_WARNING;
    e.message = r.line;
    e.attributes = {{"address", who.address},
                    {"oid", to_string(item.oid)},
                    {"type", r.type},
                    {"value", r.value}};
    if (!item.walk.empty()) e.attributes.emplace_back("walk", item.walk);
    out.events.push_back(std::move(e));
  }
}

}  // namespace outpost::snmp
