// The two sides of bench/remote_write/run.sh, over the same samples:
//   bench_remote_write outpost PLUGIN.so URL SERIES STEPS  the remote_write sink, loaded as the
//       engine loads it, is handed batches of 2,000 metrics (the pipeline's default batch size)
//       and sends them to URL; prints the wall and CPU seconds of this process while it sends.
//   bench_remote_write feed URL SERIES STEPS   the same samples as remote write requests of
//       2,000 samples (what a sender of that batch size posts), to vmagent at URL.
// SERIES series (SNMP-like interface counters, CPU and round-trip gauges of SERIES/10 devices),
// each with STEPS samples 10 s apart ending now.
#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <outpost/testing.hpp>
#include <outpost_lib/http_client.hpp>
#include <outpost_lib/prom_write.hpp>
#include <string>
#include <vector>

namespace {

constexpr std::size_t kBatch = 2000;

// Every sample, in the order a poller would emit them: step by step, series by series.
class Samples {
 public:
  Samples(std::size_t series, std::size_t steps) {
    static const char* const kNames[] = {"if_in_octets_total",  "if_out_octets_total",
                                         "if_in_errors_total",  "if_out_discards_total",
                                         "if_in_packets_total", "if_out_packets_total",
                                         "if_oper_status",      "if_speed_bits",
                                         "cpu_load_percent",    "icmp_rtt_seconds"};
    for (std::size_t s = 0; s < series; ++s) {
      const std::size_t dev = s / 10, kind = s % 10;
      keys_.push_back({kNames[kind],
                       {{"device", "dev-" + std::to_string(dev)},
                        {"site", "site-" + std::to_string(dev % 20)},
                        {"if_name", "ge-0/0/" + std::to_string(dev % 48)}},
                       kind < 6 ? OUTPOST_METRIC_COUNTER : OUTPOST_METRIC_GAUGE,
                       {}});
    }
    for (auto& k : keys_)
      for (const auto& [n, v] : k.labels)
        k.kv.push_back({{n.data(), n.size()}, {v.data(), v.size()}});
    const int64_t now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                               std::chrono::system_clock::now().time_since_epoch())
                               .count();
    const int64_t first_ms = now_ms - static_cast<int64_t>(steps) * 10'000;
    metrics_.reserve(series * steps);
    uint64_t x = 88172645463325252ULL;  // xorshift: values that do not compress to nothing
    for (std::size_t t = 0; t < steps; ++t) {
      for (std::size_t s = 0; s < series; ++s) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        const Key& k = keys_[s];
        const double v = k.type == OUTPOST_METRIC_COUNTER
                             ? static_cast<double>(t * 1'000'000 + x % 1'000'000)
                             : static_cast<double>(x % 10'000) / 100.0;
        metrics_.push_back(outpost_metric{{k.name.data(), k.name.size()},
                                          k.kv.data(),
                                          k.kv.size(),
                                          v,
                                          (first_ms + static_cast<int64_t>(t) * 10'000) * 1'000'000,
                                          k.type,
                                          0});
      }
    }
  }
  std::size_t size() const { return metrics_.size(); }
  outpost_batch batch(std::size_t first) const {
    outpost_batch b = outpost_batch_make();
    b.metrics = metrics_.data() + first;
    b.metric_count = std::min(kBatch, metrics_.size() - first);
    return b;
  }

 private:
  struct Key {
    std::string name;
    std::vector<std::pair<std::string, std::string>> labels;
    uint32_t type;
    std::vector<outpost_kv> kv;
  };
  std::vector<Key> keys_;
  std::vector<outpost_metric> metrics_;
};

double cpu_seconds() {
  rusage u{};
  ::getrusage(RUSAGE_SELF, &u);
  auto s = [](const timeval& tv) {
    return static_cast<double>(tv.tv_sec) + static_cast<double>(tv.tv_usec) / 1e6;
  };
  return s(u.ru_utime) + s(u.ru_stime);
}

double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

int run_outpost(const std::string& plugin, const std::string& url, const Samples& samples) {
  const outpost_plugin_descriptor* d = outpost::testing::open_plugin(plugin);
  outpost::testing::FakeHost host(d);
  if (host.create({{"url", url},
                   {"external_labels.0", "relay=outpost"},
                   {"stats_interval", "0s"},
                   {"max_samples_per_request", std::to_string(kBatch)}}) != OUTPOST_OK) {
    std::fprintf(stderr, "bench_remote_write: the sink refused its settings\n");
    return 1;
  }
  host.start();
  const double c0 = cpu_seconds(), t0 = now_s();
  for (std::size_t i = 0; i < samples.size(); i += kBatch) {
    const outpost_status st = host.write(samples.batch(i));
    if (st != OUTPOST_OK) {
      std::fprintf(stderr, "bench_remote_write: write failed (status %d)\n", static_cast<int>(st));
      return 1;
    }
  }
  const double t1 = now_s(), c1 = cpu_seconds();
  host.stop();
  std::printf("samples=%zu seconds=%.3f cpu=%.3f\n", samples.size(), t1 - t0, c1 - c0);
  return 0;
}

int run_feed(const std::string& url, const Samples& samples) {
  namespace rw = outpost::lib::promrw;
  const rw::Encoder encoder({{"relay", "vmagent"}}, kBatch);
  std::vector<std::string> bodies;
  for (std::size_t i = 0; i < samples.size(); i += kBatch) {
    rw::EncodeStats es;
    for (const auto& raw : encoder.encode(samples.batch(i), es))
      bodies.push_back(rw::snappy_compress(raw));
  }
  outpost::lib::http::Client client(outpost::lib::http::Options{});
  const double t0 = now_s();
  for (const auto& body : bodies) {
    const auto r = client.post(url, body,
                               {"Content-Encoding: snappy", "Content-Type: application/x-protobuf",
                                "X-Prometheus-Remote-Write-Version: 0.1.0"});
    if (!r.ok()) {
      std::fprintf(stderr, "bench_remote_write: feed: HTTP %ld %s\n", r.status, r.error.c_str());
      return 1;
    }
  }
  std::printf("samples=%zu seconds=%.3f\n", samples.size(), now_s() - t0);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const std::vector<std::string> a(argv + 1, argv + argc);
  try {
    if (a.size() == 5 && a[0] == "outpost")
      return run_outpost(a[1], a[2], Samples(std::stoul(a[3]), std::stoul(a[4])));
    if (a.size() == 4 && a[0] == "feed")
      return run_feed(a[1], Samples(std::stoul(a[2]), std::stoul(a[3])));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_remote_write: %s\n", e.what());
    return 1;
  }
  std::fprintf(stderr,
               "usage: bench_remote_write outpost PLUGIN.so URL SERIES STEPS\n"
               "       bench_remote_write feed URL SERIES STEPS\n");
  return 2;
}
