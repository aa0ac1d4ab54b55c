// app_check: a custom application monitor written with the C++ SDK. It runs a check command per
// target, the way Nagios-style check plugins are run: exit code 0/1/2/3 = OK/WARNING/CRITICAL/
// UNKNOWN, first line of output "TEXT | label=value[UOM];warn;crit;min;max ...". So the large
// body of existing check plugins (monitoring-plugins' check_*) works unchanged.
//
// Commands of one poll run in parallel (bounded), each killed at the poll's deadline.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <outpost/sdk.hpp>
#include <sstream>
#include <string>
#include <vector>

extern char** environ;

namespace {

std::vector<std::string> split_command(const std::string& cmd) {
  // Whitespace-separated words; single or double quotes group words.
  std::vector<std::string> out;
  std::string cur;
  char quote = 0;
  bool in_word = false;
  for (char c : cmd) {
    if (quote) {
      if (c == quote)
        quote = 0;
      else
        cur += c;
    } else if (c == '\'' || c == '"') {
      quote = c;
      in_word = true;
    } else if (c == ' ' || c == '\t') {
      if (in_word) out.push_back(cur), cur.clear(), in_word = false;
    } else {
      cur += c;
      in_word = true;
    }
  }
  if (in_word) out.push_back(cur);
  return out;
}

std::string replace_all(std::string s, const std::string& from, const std::string& to) {
  for (std::size_t p = s.find(from); p != std::string::npos; p = s.find(from, p + to.size()))
    s.replace(p, from.size(), to);
  return s;
}

struct Perf {
  std::string label;
  double value;
  std::string uom;
};

// "load1=0.5;1;2;0; 'disk /'=30%;80;90" -> label/value/unit triples.
std::vector<Perf> parse_perfdata(const std::string& text) {
  std::vector<Perf> out;
  std::size_t i = 0;
  while (i < text.size()) {
    while (i < text.size() && text[i] == ' ') ++i;
    if (i >= text.size()) break;
    std::string label;
    if (text[i] == '\'') {
      const auto end = text.find('\'', i + 1);
      if (end == std::string::npos) break;
      label = text.substr(i + 1, end - i - 1);
      i = end + 1;
    } else {
      const auto eq = text.find('=', i);
      if (eq == std::string::npos) break;
      label = text.substr(i, eq - i);
      i = eq;
    }
    if (i >= text.size() || text[i] != '=') break;
    ++i;
    const auto end = text.find(' ', i);
    const std::string val = text.substr(i, end == std::string::npos ? std::string::npos : end - i);
    i = end == std::string::npos ? text.size() : end;
    const std::string first = val.substr(0, val.find(';'));
    char* stop = nullptr;
    const double v = std::strtod(first.c_str(), &stop);
    if (stop == first.c_str()) continue;  // "U" (unknown) or garbage
    out.push_back({label, v, std::string(stop)});
  }
  return out;
}

class AppCheck : public outpost::Poller {
 public:
  AppCheck(outpost::Host host, const outpost::Config& cfg)
      : host_(host), max_parallel_(cfg.get_int("max_parallel", 16)) {
    if (max_parallel_ < 1)
      throw outpost::Error(OUTPOST_E_CONFIG, "max_parallel must be at least 1");
  }

  static std::vector<outpost_field> config_fields() {
    return {outpost::field("max_parallel", OUTPOST_FIELD_INT, "commands run at once", "16")};
  }
  static std::vector<outpost_field> target_fields() {
    return {outpost::field("command", OUTPOST_FIELD_STRING,
                           "check command; $HOSTADDRESS$ and $HOSTNAME$ are replaced", "",
                           OUTPOST_FIELD_REQUIRED)};
  }

  void poll(const outpost::PollRequest& req) override {
    std::vector<Job> jobs;
    for (std::size_t i = 0; i < req.size(); ++i) {
      const outpost::Target t = req[i];
      Job j;
      j.target_id = t.id();
      j.device = std::string(t.device());
      std::string cmd = t.params().get("command");
      cmd = replace_all(replace_all(cmd, "$HOSTADDRESS$", std::string(t.address())), "$HOSTNAME$",
                        j.device);
      j.argv = split_command(cmd);
      j.labels = t.labels();  // device, address, tags
      jobs.push_back(std::move(j));
    }
    std::size_t next = 0, running = 0;
    while (next < jobs.size() || running > 0) {
      while (next < jobs.size() && running < static_cast<std::size_t>(max_parallel_)) {
        if (spawn(jobs[next]))
          ++running;
        else
          finish(req.id(), jobs[next]);
        ++next;
      }
      running -= wait_some(req, jobs);
    }
  }

 private:
  struct Job {
    uint64_t target_id = 0;
    std::string device;
    std::vector<std::string> argv;
    outpost::Labels labels;
    pid_t pid = -1;
    int fd = -1;
    std::string output;
    int exit_code = 3;
    bool timed_out = false;
    bool done = false;
    std::string error;
  };

  bool spawn(Job& j) {
    if (j.argv.empty()) {
      j.error = "empty command";
      return false;
    }
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) {
      j.error = std::string("pipe: ") + std::strerror(errno);
      return false;
    }
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
    posix_spawn_file_actions_adddup2(&fa, fds[1], 2);
    std::vector<char*> argv;
    for (auto& a : j.argv) argv.push_back(a.data());
    argv.push_back(nullptr);
    const int rc = ::posix_spawnp(&j.pid, argv[0], &fa, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&fa);
    ::close(fds[1]);
    if (rc != 0) {
      ::close(fds[0]);
      j.error = "cannot run " + j.argv[0] + ": " + std::strerror(rc);
      return false;
    }
    j.fd = fds[0];
    return true;
  }

  // Reads output until some commands end; kills what passes the deadline. Returns how many ended.
  std::size_t wait_some(const outpost::PollRequest& req, std::vector<Job>& jobs) {
    std::vector<pollfd> pfds;
    std::vector<Job*> owners;
    for (auto& j : jobs)
      if (j.fd >= 0) pfds.push_back({j.fd, POLLIN, 0}), owners.push_back(&j);
    const int64_t left_ms = (req.deadline_ns() - host_.monotonic_ns()) / 1000000;
    const int n =
        ::poll(pfds.data(), pfds.size(), static_cast<int>(std::clamp<int64_t>(left_ms, 0, 1000)));
    std::size_t ended = 0;
    for (std::size_t i = 0; i < pfds.size() && n > 0; ++i) {
      if (!(pfds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      char buf[4096];
      const ssize_t r = ::read(pfds[i].fd, buf, sizeof buf);
      if (r > 0) {
        if (owners[i]->output.size() < 65536)
          owners[i]->output.append(buf, static_cast<std::size_t>(r));
        continue;
      }
      reap(*owners[i], false);
      finish(req.id(), *owners[i]);
      ++ended;
    }
    if (host_.monotonic_ns() >= req.deadline_ns()) {
      for (auto* j : owners)
        if (j->fd >= 0) {
          reap(*j, true);
          finish(req.id(), *j);
          ++ended;
        }
    }
    return ended;
  }

  static void reap(Job& j, bool kill_it) {
    if (kill_it) ::kill(j.pid, SIGKILL);
    int st = 0;
    ::waitpid(j.pid, &st, 0);
    ::close(j.fd);
    j.fd = -1;
    j.timed_out = kill_it;
    j.exit_code = WIFEXITED(st) ? WEXITSTATUS(st) : 3;
  }

  void finish(uint64_t poll_id, Job& j) {
    if (j.done) return;
    j.done = true;
    if (!j.error.empty() || j.timed_out) {
      const std::string why = j.timed_out ? "check did not finish before the deadline" : j.error;
      host_.complete(poll_id, j.target_id, j.timed_out ? OUTPOST_E_TIMEOUT : OUTPOST_E_CONFIG, why);
      return;
    }
    std::string first = j.output.substr(0, j.output.find('\n'));
    std::string text = first, perf;
    if (const auto bar = first.find('|'); bar != std::string::npos) {
      text = first.substr(0, bar);
      perf = first.substr(bar + 1);
    }
    while (!text.empty() && text.back() == ' ') text.pop_back();
    outpost::Labels labels = j.labels;
    labels.emplace_back("check", j.argv[0].substr(j.argv[0].rfind('/') + 1));
    std::vector<outpost::Metric> ms;
    ms.push_back(
        {"app_check_state", labels, static_cast<double>(j.exit_code), 0, OUTPOST_METRIC_GAUGE});
    for (const auto& p : parse_perfdata(perf)) {
      outpost::Labels l = labels;
      l.emplace_back("label", p.label);
      if (!p.uom.empty()) l.emplace_back("unit", p.uom);
      ms.push_back({"app_check_perf", l, p.value, 0, OUTPOST_METRIC_GAUGE});
    }
    host_.emit(ms);
    static const char* kState[] = {"OK", "WARNING", "CRITICAL", "UNKNOWN"};
    const std::string detail = std::string(kState[std::clamp(j.exit_code, 0, 3)]) + ": " + text;
    host_.complete(poll_id, j.target_id, j.exit_code == 0 ? OUTPOST_OK : OUTPOST_E_UNAVAILABLE,
                   detail);
  }

  outpost::Host host_;
  int64_t max_parallel_;
};

}  // namespace

OUTPOST_PLUGIN(AppCheck, "app_check", "1.0.0",
               "runs Nagios-style check commands as custom application monitors (example plugin)")
