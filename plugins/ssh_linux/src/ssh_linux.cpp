// The ssh_linux poller: Linux servers without SNMP, polled over SSH. One exec per poll runs a
// POSIX sh script that prints /proc and /sys files and df (twice /proc/stat, for the CPU share);
// what it prints becomes the metrics SNMP's Host Resources, IF-MIB, UCD-SNMP and UCD-DISKIO
// profiles give for a net-snmp host, under the same names and labels.
#include <algorithm>
#include <cmath>
#include <outpost/sdk.hpp>
#include <outpost_lib/blocking_poller.hpp>
#include <outpost_lib/cli.hpp>
#include <outpost_lib/cli_target.hpp>

#include "linux_stats.hpp"

namespace {

namespace cli = outpost::lib::cli;
using outpost::Error;
using namespace std::chrono_literals;

class SshLinuxPoller final : public outpost::Poller {
 public:
  SshLinuxPoller(outpost::Host host, const outpost::Config& cfg)
      : host_(host), pool_(host, "ssh_linux", outpost::lib::blocking_poller_threads(cfg, 16)) {
    keys_ = cli::host_key_policy(cfg, host_, "ssh_linux");
    interval_s_ = cfg.get_seconds("cpu_interval", 1.0);
    if (interval_s_ < 0.1 || interval_s_ > 10)
      throw Error(OUTPOST_E_CONFIG, "cpu_interval must be 0.1-10 s");
  }
  ~SshLinuxPoller() override { pool_.stop(); }

  static std::vector<outpost_field> config_fields() {
    using outpost::field;
    std::vector<outpost_field> f = cli::host_key_fields();
    for (auto& x : std::vector<outpost_field>{
             field("cpu_interval", OUTPOST_FIELD_DURATION,
                   "How far apart the two CPU counter readings of a poll are", "1s"),
             field("max_concurrent", OUTPOST_FIELD_INT, "Hosts polled at once (worker threads)",
                   "16"),
         })
      f.push_back(x);
    return f;
  }
  static std::vector<outpost_field> target_fields() { return cli::target_fields(false); }

  void start() override { pool_.start(); }
  void stop() override { pool_.stop(); }

  void poll(const outpost::PollRequest& req) override {
    pool_.submit(req, [this](const outpost::Target& t) { return make_work(t); });
  }

 private:
  outpost::lib::BlockingPoller::Work make_work(const outpost::Target& t) {
    cli::Options o = cli::target_options(t, host_, false);
    o.max_output = 4u << 20;
    outpost::Labels base = t.labels();
    return [this, o, base](int64_t deadline_ns) mutable {
      // Every step within what is left of the poll.
      const int64_t left_ms = (deadline_ns - host_.monotonic_ns()) / 1'000'000;
      const auto budget = std::chrono::milliseconds(std::max<int64_t>(left_ms, 1));
      o.connect_timeout = std::min<std::chrono::milliseconds>(budget, 10s);
      o.command_timeout = budget;
      outpost::lib::BlockingOutcome out;
      try {
        const auto r = cli::exec(o, keys_, outpost::ssh_linux::collect_script(interval_s_));
        auto parsed = outpost::ssh_linux::parse(r.out, base, host_.now_ns());
        if (parsed.metrics.empty()) {
          out.status = OUTPOST_E_UNAVAILABLE;
          out.detail = "the host printed nothing we read (exit " + std::to_string(r.exit_status) +
                       "): not Linux?";
          return out;
        }
        out.metrics = std::move(parsed.metrics);
        out.detail = std::to_string(parsed.cpus) + " CPUs, " + std::to_string(parsed.interfaces) +
                     " interfaces, " + std::to_string(parsed.filesystems) + " file systems, " +
                     std::to_string(parsed.disks) + " disks";
        if (r.host_key == cli::HostKey::added) out.detail += "; host key added (first use)";
      } catch (const cli::Error& e) {
        out.status = cli::engine_status(e.status);
        out.detail = e.what();
      } catch (const std::runtime_error& e) {
        out.status = OUTPOST_E_UNAVAILABLE;
        out.detail = e.what();
      }
      return out;
    };
  }

  outpost::Host host_;
  cli::HostKeyPolicy keys_;
  double interval_s_ = 1.0;
  outpost::lib::BlockingPoller pool_;
};

}  // namespace

OUTPOST_PLUGIN(SshLinuxPoller, "ssh_linux", "1.0.0",
               "Linux servers over SSH: load, CPU, memory, file systems, disks, interfaces and "
               "uptime from /proc, under the Host Resources names SNMP uses")
