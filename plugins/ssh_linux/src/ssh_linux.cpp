// The ssh_linux poller: Linux servers without SNMP, polled over SSH. One exec per poll runs a
// POSIX sh script that prints /proc and /sys files and df (twice /proc/stat, for the CPU share);
// what it prints becomes the metrics SNMP's Host Resources, IF-MIB, UCD-SNMP and UCD-DISKIO
// profiles give for a net-snmp host, under the same names and labels.
#include <algorithm>
#include <cmath>
#include <outpost/sdk.hpp>
#include <outpost_lib/blocking_poller.hpp>
#include <outpost_lib/cli.hpp>

#include "linux_stats.hpp"

namespace {

namespace cli = outpost::lib::cli;
using outpost::Error;
using namespace std::chrono_literals;

outpost_status status_of(cli::Status s) {
  switch (s) {
    case cli::Status::auth:
    case cli::Status::host_key_unknown:
    case cli::Status::host_key_changed:
      return OUTPOST_E_AUTH;
    case cli::Status::weak_algorithm:
      return OUTPOST_E_CONFIG;
    case cli::Status::timeout:
      return OUTPOST_E_TIMEOUT;
    default:
      return OUTPOST_E_UNAVAILABLE;
  }
}

class SshLinuxPoller final : public outpost::Poller {
 public:
  SshLinuxPoller(outpost::Host host, const outpost::Config& cfg)
      : host_(host), pool_(host, "ssh_linux", threads(cfg)) {
    keys_.known_hosts = cfg.get("known_hosts");
    if (keys_.known_hosts.empty())
      throw Error(OUTPOST_E_CONFIG, "known_hosts is required: host keys are always verified");
    keys_.trust_on_first_use = cfg.get_bool("trust_on_first_use", false);
    if (keys_.trust_on_first_use)
      host_.log(OUTPOST_LOG_WARN,
                "ssh_linux: trust_on_first_use is on: unknown host keys are added to " +
                    keys_.known_hosts + " without verification");
    interval_s_ = cfg.get_seconds("cpu_interval", 1.0);
    if (interval_s_ < 0.1 || interval_s_ > 10)
      throw Error(OUTPOST_E_CONFIG, "cpu_interval must be 0.1-10 s");
  }
  ~SshLinuxPoller() override { pool_.stop(); }

  static std::vector<outpost_field> config_fields() {
    using outpost::field;
    std::vector<outpost_field> f = {
        field("known_hosts", OUTPOST_FIELD_STRING,
              "The known-hosts store (OpenSSH format) host keys are checked against, e.g. "
              "${data_dir}/ssh_known_hosts",
              "", OUTPOST_FIELD_REQUIRED),
        field("trust_on_first_use", OUTPOST_FIELD_BOOL,
              "Add the key of a host not yet in known_hosts instead of refusing it (a changed key "
              "is always refused)",
              "false"),
        field("cpu_interval", OUTPOST_FIELD_DURATION,
              "How far apart the two CPU counter readings of a poll are", "1s"),
        field("max_concurrent", OUTPOST_FIELD_INT, "Hosts polled at once (worker threads)", "16"),
    };
    return f;
  }
  static std::vector<outpost_field> target_fields() {
    using outpost::field;
    return {
        field("port", OUTPOST_FIELD_INT, "SSH port", "22"),
        field("user", OUTPOST_FIELD_STRING, "Account to log in with", "", OUTPOST_FIELD_REQUIRED),
        field("password", OUTPOST_FIELD_STRING, "Password, literally (prefer password_ref)"),
        field("password_ref", OUTPOST_FIELD_SECRET, "Password, a credential reference"),
        field("key_file", OUTPOST_FIELD_STRING, "Private key file (OpenSSH format)"),
        field("key_passphrase_ref", OUTPOST_FIELD_SECRET, "Passphrase of key_file, a reference"),
    };
  }

  void start() override { pool_.start(); }
  void stop() override { pool_.stop(); }

  void poll(const outpost::PollRequest& req) override {
    pool_.submit(req, [this](const outpost::Target& t) { return make_work(t); });
  }

 private:
  static std::size_t threads(const outpost::Config& cfg) {
    const int64_t n = cfg.get_int("max_concurrent", 16);
    if (n < 1 || n > 1024) throw Error(OUTPOST_E_CONFIG, "max_concurrent must be 1-1024");
    return static_cast<std::size_t>(n);
  }

  std::string secret(const outpost::Config& p, const std::string& name) const {
    if (auto ref = p.find(name + "_ref"); ref && !ref->empty()) {
      try {
        return host_.secret(*ref);
      } catch (const Error& e) {
        throw Error(OUTPOST_E_CONFIG,
                    name + "_ref: credential '" + std::string(*ref) + "' not found");
      }
    }
    return p.get(name);
  }

  outpost::lib::BlockingPoller::Work make_work(const outpost::Target& t) {
    const outpost::Config p = t.params();
    cli::Options o;
    std::string_view addr = t.address();
    if (addr.size() >= 2 && addr.front() == '[' && addr.back() == ']')
      addr = addr.substr(1, addr.size() - 2);  // an IPv6 literal
    o.host = std::string(addr);
    const int64_t port = p.get_int("port", 22);
    if (port < 1 || port > 65535) throw Error(OUTPOST_E_CONFIG, "port out of range 1-65535");
    o.port = static_cast<uint16_t>(port);
    o.user = p.get("user");
    if (o.user.empty()) throw Error(OUTPOST_E_CONFIG, "user is required");
    o.password = secret(p, "password");
    o.key_file = p.get("key_file");
    if (auto ref = p.find("key_passphrase_ref"); ref && !ref->empty())
      o.key_passphrase = host_.secret(*ref);
    if (o.password.empty() && o.key_file.empty())
      throw Error(OUTPOST_E_CONFIG, "password, password_ref or key_file is required");
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
        out.status = status_of(e.status);
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
