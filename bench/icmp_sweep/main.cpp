// Drives the icmp plugin the way the engine does (dlopen + the C ABI) over a list of addresses in
// one poll, and reports how many answered and how long the sweep took. The host here is minimal
// on purpose (counters, no copies), so the numbers are the plugin's, not a test harness's.
//
//   bench_icmp_sweep --file targets.txt [--plugin build/plugins/outpost_icmp.so] [--count 1]
//                    [--max-pps 20000] [--timeout 1s] [--deadline-ms 60000] [--verbose]
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <mutex>
#include <outpost/testing.hpp>
#include <string>
#include <vector>

namespace {

struct BenchHost {
  std::atomic<std::size_t> done{0}, up{0}, metrics{0};
  std::size_t expected = 0;
  bool verbose = false;
  std::vector<std::string>* addresses = nullptr;
  std::mutex mu;
  std::condition_variable cv;
};

BenchHost& self(outpost_host* h) { return *reinterpret_cast<BenchHost*>(h); }
int64_t mono_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}
std::string str(outpost_str s) { return s.ptr ? std::string(s.ptr, s.len) : std::string(); }

outpost_host_api make_api() {
  outpost_host_api api{};
  api.struct_size = sizeof api;
  api.abi_version = OUTPOST_ABI_VERSION;
  api.emit = [](outpost_host* h, const outpost_batch* b) -> outpost_status {
    self(h).metrics += b->metric_count;
    return OUTPOST_OK;
  };
  api.log_enabled = [](outpost_host*, uint32_t) -> int { return 1; };
  api.log = [](outpost_host*, uint32_t, outpost_str m) {
    std::fprintf(stderr, "log: %s\n", str(m).c_str());
  };
  api.report_error = [](outpost_host*, outpost_status s, outpost_str d) {
    std::fprintf(stderr, "plugin error %d: %s\n", s, str(d).c_str());
  };
  api.get_secret = [](outpost_host*, outpost_str, char*, size_t, size_t*) -> outpost_status {
    return OUTPOST_E_NOT_FOUND;
  };
  api.now_ns = [](outpost_host*) -> int64_t {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  };
  api.monotonic_ns = [](outpost_host*) -> int64_t { return mono_ns(); };
  api.complete = [](outpost_host* h, uint64_t, uint64_t target, outpost_status s, outpost_str d) {
    BenchHost& b = self(h);
    if (b.verbose)
      std::printf("%s: %d %s\n", (*b.addresses)[target - 1].c_str(), s, str(d).c_str());
    b.up += s == OUTPOST_OK;
    if (++b.done == b.expected) {
      std::lock_guard g(b.mu);
      b.cv.notify_all();
    }
  };
  api.reply = [](outpost_host*, uint64_t, const outpost_sockaddr*, const uint8_t*,
                 size_t) -> outpost_status { return OUTPOST_E_UNSUPPORTED; };
  return api;
}

}  // namespace

int main(int argc, char** argv) {
  std::map<std::string, std::string> opt{{"--plugin", "build/plugins/outpost_icmp.so"},
                                         {"--count", "1"},
                                         {"--max-pps", "20000"},
                                         {"--timeout", "1s"},
                                         {"--deadline-ms", "60000"},
                                         {"--file", ""}};
  BenchHost host;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--verbose") {
      host.verbose = true;
    } else if (opt.count(a) != 0 && i + 1 < argc) {
      opt[a] = argv[++i];
    } else {
      std::fprintf(stderr,
                   "usage: %s --file FILE [--plugin SO] [--count N] [--max-pps N] "
                   "[--timeout D] [--deadline-ms N] [--verbose]\n",
                   argv[0]);
      return 2;
    }
  }
  std::vector<std::string> addresses;
  std::ifstream in(opt["--file"]);
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) addresses.push_back(line);
  if (addresses.empty()) {
    std::fprintf(stderr, "no targets in '%s'\n", opt["--file"].c_str());
    return 2;
  }
  host.addresses = &addresses;
  host.expected = addresses.size();

  const outpost_plugin_descriptor* d = nullptr;
  try {
    d = outpost::testing::open_plugin(opt["--plugin"]);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 1;
  }
  if (d == nullptr) return 1;
  const outpost_host_api api = make_api();
  auto* h = reinterpret_cast<outpost_host*>(&host);
  const std::string k_pps = "max_pps";
  const outpost_kv cfg{{k_pps.data(), k_pps.size()},
                       {opt["--max-pps"].data(), opt["--max-pps"].size()}};
  outpost_instance* inst = nullptr;
  if (d->create(&api, h, &cfg, 1, &inst) != OUTPOST_OK || d->start(inst) != OUTPOST_OK) {
    if (inst != nullptr) d->destroy(inst);
    return 1;
  }

  // The request, as the engine would hand it over.
  const std::string k_count = "count", k_timeout = "reply_timeout";
  const outpost_kv params[] = {
      {{k_count.data(), k_count.size()}, {opt["--count"].data(), opt["--count"].size()}},
      {{k_timeout.data(), k_timeout.size()}, {opt["--timeout"].data(), opt["--timeout"].size()}}};
  std::vector<outpost_target> targets(addresses.size());
  for (std::size_t i = 0; i < addresses.size(); ++i) {
    targets[i].id = i + 1;
    targets[i].device = {addresses[i].data(), addresses[i].size()};
    targets[i].address = {addresses[i].data(), addresses[i].size()};
    targets[i].params = params;
    targets[i].param_count = 2;
  }
  const int64_t deadline_ms = std::atoll(opt["--deadline-ms"].c_str());
  outpost_poll_request r{};
  r.struct_size = sizeof r;
  r.target_size = sizeof(outpost_target);
  r.poll_id = 1;
  r.targets = targets.data();
  r.target_count = targets.size();

  const auto t0 = std::chrono::steady_clock::now();
  r.deadline_ns = mono_ns() + deadline_ms * 1'000'000;
  const outpost_status ps = d->poll(inst, &r);
  const double call_ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  {
    std::unique_lock lk(host.mu);
    host.cv.wait_until(lk, t0 + std::chrono::milliseconds(deadline_ms + 2000),
                       [&] { return host.done.load() >= host.expected; });
  }
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  d->stop(inst);
  d->destroy(inst);
  std::printf(
      "outpost: %zu/%zu up, sweep %.3f s (poll() returned %d in %.1f ms), %zu completions, %zu "
      "metrics\n",
      host.up.load(), addresses.size(), secs, ps, call_ms, host.done.load(), host.metrics.load());
  return host.up.load() == addresses.size() ? 0 : 3;
}
