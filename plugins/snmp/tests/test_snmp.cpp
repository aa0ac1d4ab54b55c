// The snmp plugin against real net-snmp agents (snmpd from Debian's package) on loopback, with
// values cross-checked by net-snmp's own snmpget and snmpbulkwalk; plus the profile loader, the
// walk logic and the diagnostic get/walk on their own.
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <deque>
#include <filesystem>
#include <fstream>
#include <map>
#include <outpost/testing.hpp>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "collector.hpp"
#include "device.hpp"
#include "probe.hpp"
#include "snmp/profile.hpp"

namespace {

namespace fs = std::filesystem;
using outpost::testing::FakeHost;
using Params = std::vector<std::pair<std::string, std::string>>;
using Clock = std::chrono::steady_clock;

const outpost_plugin_descriptor* plugin() {
  static const outpost_plugin_descriptor* d =
      outpost::testing::open_plugin(OUTPOST_TEST_PLUGIN_DIR "/outpost_snmp.so");
  return d;
}

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

fs::path temp_dir(const std::string& name) {
  fs::path p =
      fs::temp_directory_path() / ("outpost-snmp-test-" + std::to_string(::getpid()) + "-" + name);
  fs::remove_all(p);
  fs::create_directories(p);
  return p;
}

void write_file(const fs::path& p, const std::string& text) { std::ofstream(p) << text; }

// Runs a command to its end and returns what it printed on stdout.
std::string capture(const std::vector<std::string>& argv, int* status = nullptr) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return {};
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(fds[1], 1);
    const int devnull = ::open("/dev/null", O_WRONLY);
    if (devnull >= 0) ::dup2(devnull, 2);
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    ::execvp(args[0], args.data());
    ::_exit(127);
  }
  ::close(fds[1]);
  std::string out;
  char buf[4096];
  ssize_t n;
  while ((n = ::read(fds[0], buf, sizeof buf)) > 0) out.append(buf, static_cast<std::size_t>(n));
  ::close(fds[0]);
  int st = 0;
  if (pid > 0) ::waitpid(pid, &st, 0);
  if (status != nullptr) *status = pid > 0 && WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return out;
}

uint16_t free_udp_port() {
  const int fd = ::socket(AF_INET, SOCK_DGRAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  uint16_t port = 0;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0)
    port = ntohs(a.sin_port);
  ::close(fd);
  return port;
}

// A relay in front of a real snmpd that holds every answer back `delay_ms`: an agent as slow as
// a busy device or a distant site. Requests pass at once; answers go to whoever asked last (one
// session at a time is all the tests need).
class SlowRelay {
 public:
  SlowRelay(uint16_t agent_port, int delay_ms) : delay_(std::chrono::milliseconds(delay_ms)) {
    front_ = ::socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
    back_ = ::socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    ::bind(front_, reinterpret_cast<sockaddr*>(&a), sizeof a);
    ::getsockname(front_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    a.sin_port = htons(agent_port);
    ::connect(back_, reinterpret_cast<sockaddr*>(&a), sizeof a);
    thread_ = std::thread([this] { run(); });
  }
  ~SlowRelay() {
    stop_ = true;
    thread_.join();
    ::close(front_);
    ::close(back_);
  }
  SlowRelay(const SlowRelay&) = delete;
  SlowRelay& operator=(const SlowRelay&) = delete;
  std::string port_text() const { return std::to_string(port_); }

 private:
  void run() {
    std::deque<std::pair<Clock::time_point, std::string>> held;
    sockaddr_in client{};
    char buf[65536];
    while (!stop_) {
      pollfd fds[2] = {{front_, POLLIN, 0}, {back_, POLLIN, 0}};
      ::poll(fds, 2, 5);
      sockaddr_in from{};
      socklen_t len = sizeof from;
      for (ssize_t n; (n = ::recvfrom(front_, buf, sizeof buf, 0,
                                      reinterpret_cast<sockaddr*>(&from), &len)) > 0;
           len = sizeof from) {
        client = from;
        [[maybe_unused]] ssize_t w = ::send(back_, buf, static_cast<std::size_t>(n), 0);
      }
      for (ssize_t n; (n = ::recv(back_, buf, sizeof buf, 0)) > 0;)
        held.emplace_back(Clock::now() + delay_, std::string(buf, static_cast<std::size_t>(n)));
      while (!held.empty() && held.front().first <= Clock::now()) {
        [[maybe_unused]] ssize_t w =
            ::sendto(front_, held.front().second.data(), held.front().second.size(), 0,
                     reinterpret_cast<const sockaddr*>(&client), sizeof client);
        held.pop_front();
      }
    }
  }

  Clock::duration delay_;
  int front_ = -1, back_ = -1;
  uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

std::string unquote(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  if (s.size() >= 2 && s.front() == '"' && s.back() == '"') s = s.substr(1, s.size() - 2);
  return s;
}

// A real snmpd on 127.0.0.1:<free port>, configured in a directory of its own, killed by PID
// when the object goes (and by the kernel if this test process dies first).
class Snmpd {
 public:
  Snmpd(const std::string& name, const std::string& conf) : dir_(temp_dir("snmpd-" + name)) {
    port_ = free_udp_port();
    write_file(dir_ / "snmpd.conf", conf + "\ndontLogTCPWrappersConnects yes\n");
    start();
  }
  ~Snmpd() {
    stop();
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  Snmpd(const Snmpd&) = delete;
  Snmpd& operator=(const Snmpd&) = delete;

  bool ok() const { return ready_; }
  uint16_t port() const { return port_; }
  std::string port_text() const { return std::to_string(port_); }
  std::string peer() const { return "127.0.0.1:" + port_text(); }

  void start() {
    pid_ = ::fork();
    if (pid_ == 0) {
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      ::setpgid(0, 0);
      const std::string log = (dir_ / "snmpd.log").string();
      const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
      if (fd >= 0) {
        ::dup2(fd, 1);
        ::dup2(fd, 2);
      }
      ::setenv("MIBS", "", 1);
      ::setenv("MIBDIRS", "/nonexistent", 1);
      ::setenv("SNMP_PERSISTENT_DIR", (dir_ / "persist").c_str(), 1);
      const std::string conf = (dir_ / "snmpd.conf").string();
      const std::string pidfile = (dir_ / "snmpd.pid").string();
      const std::string addr =
          "udp:127.0.0.1:" + std::to_string(port_) + ",udp6:[::1]:" + std::to_string(port_);
      ::execlp("snmpd", "snmpd", "-f", "-Lo", "-C", "-I", "-smux", "-c", conf.c_str(), "-p",
               pidfile.c_str(), addr.c_str(), static_cast<char*>(nullptr));
      ::_exit(127);
    }
    ready_ = false;
    const auto t0 = Clock::now();
    while (pid_ > 0 && seconds_since(t0) < 10) {
      int st = 0;
      capture(
          {"snmpget", "-v2c", "-c", "public", "-t", "0.2", "-r", "0", peer(), "1.3.6.1.2.1.1.3.0"},
          &st);
      if (st == 0) {
        ready_ = true;
        break;
      }
      if (::waitpid(pid_, nullptr, WNOHANG) == pid_) {
        pid_ = -1;
        break;
      }
    }
  }
  void stop() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGTERM);
    for (int i = 0; i < 100; ++i) {
      if (::waitpid(pid_, nullptr, WNOHANG) == pid_) {
        pid_ = -1;
        return;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }

  // net-snmp's own tools, for the values to compare with.
  std::string get(const std::string& oid) const {
    return unquote(capture({"snmpget", "-v2c", "-c", "public", "-Oqv", "-Ot", peer(), oid}));
  }
  std::map<std::string, std::string> walk(const std::string& column) const {
    std::map<std::string, std::string> out;  // index → value
    const std::string text =
        capture({"snmpbulkwalk", "-v2c", "-c", "public", "-On", "-Oq", "-Ot", peer(), column});
    std::size_t pos = 0;
    const std::string prefix = "." + column + ".";
    while (pos < text.size()) {
      std::size_t end = text.find('\n', pos);
      if (end == std::string::npos) end = text.size();
      const std::string line = text.substr(pos, end - pos);
      pos = end + 1;
      if (line.rfind(prefix, 0) != 0) continue;
      const std::size_t sp = line.find(' ');
      out[line.substr(prefix.size(), sp - prefix.size())] =
          sp == std::string::npos ? "" : unquote(line.substr(sp + 1));
    }
    return out;
  }

 private:
  fs::path dir_;
  uint16_t port_ = 0;
  pid_t pid_ = -1;
  bool ready_ = false;
};

const char* kAgentConf = R"(
rocommunity public 127.0.0.1
rocommunity6 public ::1
createUser privUser SHA "authpass123" AES "privpass123"
createUser authUser SHA-256 "authpass123"
createUser strongUser SHA-512 "authpass123" AES-256 "privpass123"
createUser plainUser
rouser privUser priv
rouser authUser auth
rouser strongUser priv
rouser plainUser noauth
sysName outpost-snmp-test
sysLocation loopback lab
sysContact ops@example.invalid
)";

// One agent for every test that does not stop it; started on first use.
Snmpd& agent() {
  static Snmpd a("main", kAgentConf);
  return a;
}

// An snmpd that claims to be a Palo Alto firewall: its sysObjectID and the PAN-COMMON-MIB
// objects the paloalto profile reads (but not panSessionActiveTcp, left missing on purpose).
Snmpd& paloalto() {
  static Snmpd a("pan", R"(
rocommunity public 127.0.0.1
sysObjectID 1.3.6.1.4.1.25461.2.3.36
sysName pa-lab-1
override 1.3.6.1.4.1.25461.2.1.2.1.1.0 octet_str "10.2.4-h3"
override 1.3.6.1.4.1.25461.2.1.2.1.3.0 octet_str "013201001234"
override 1.3.6.1.4.1.25461.2.1.2.1.11.0 octet_str "active"
override 1.3.6.1.4.1.25461.2.1.2.1.12.0 octet_str "passive"
override 1.3.6.1.4.1.25461.2.1.2.1.13.0 octet_str "active-passive"
override 1.3.6.1.4.1.25461.2.1.2.3.1.0 integer 37
override 1.3.6.1.4.1.25461.2.1.2.3.2.0 integer 262142
override 1.3.6.1.4.1.25461.2.1.2.3.3.0 integer 96993
)");
  return a;
}

Params v2c(const Snmpd& a, Params extra = {}) {
  Params p = {{"port", a.port_text()}, {"community", "public"}};
  p.insert(p.end(), extra.begin(), extra.end());
  return p;
}

std::string label(const outpost::testing::RecordedMetric& m, const std::string& k) {
  auto it = m.labels.find(k);
  return it == m.labels.end() ? std::string() : it->second;
}

const outpost::testing::RecordedCompletion* completion(
    const FakeHost& h, uint64_t id, std::vector<outpost::testing::RecordedCompletion>& keep) {
  keep = h.completions();
  for (const auto& c : keep)
    if (c.target_id == id && c.poll_id == h.last_poll_id()) return &c;
  return nullptr;
}

outpost_status status_of(const FakeHost& h, uint64_t id) {
  std::vector<outpost::testing::RecordedCompletion> keep;
  const auto* c = completion(h, id, keep);
  return c == nullptr ? -1 : c->status;
}

std::string detail_of(const FakeHost& h, uint64_t id) {
  std::vector<outpost::testing::RecordedCompletion> keep;
  const auto* c = completion(h, id, keep);
  return c == nullptr ? "(no completion)" : c->detail;
}

struct Started {
  FakeHost host{plugin()};
  explicit Started(const std::vector<std::pair<std::string, std::string>>& cfg = {}) {
    REQUIRE(host.create(cfg) == OUTPOST_OK);
    REQUIRE(host.start() == OUTPOST_OK);
  }
  ~Started() { host.stop(); }
};

}  // namespace

// ---- the profile loader and the walk logic, without any agent ----------------------------------

TEST_CASE("profiles: includes, overrides and errors with file:line:column") {
  using outpost::snmp::ProfileSet;
  ProfileSet set;
  std::vector<std::string> errors;
  set.add(R"(
name: base
scalars:
  - {name: sysName, oid: 1.3.6.1.2.1.1.5.0, type: label}
tables:
  - name: t
    index: idx
    labels: [{name: descr, oid: 1.3.6.1.9.1.2}]
    metrics:
      - {name: size, oid: 1.3.6.1.9.1.3, scale_by: units}
      - {name: units, oid: 1.3.6.1.9.1.4}
)",
          "base.yaml", errors);
  set.add(R"(
sysobjectid: [1.3.6.1.4.1.99, .1.3.6.1.4.1.99.7]
include: base
scalars:
  - {name: sysName, oid: 1.3.6.1.2.1.1.5.0, type: label, map: {a: b}}
  - {name: load, oid: 1.3.6.1.4.1.99.1.0, type: gauge, scale: 0.01}
tables:
  - name: t
    metrics: [{name: used, oid: 1.3.6.1.9.1.5, type: counter, scale_by: units}]
)",
          "/x/vendor.yaml", errors);
  set.add("name: broken\nscalars:\n  - {name: a, oid: 1.3.x}\n", "broken.yaml", errors);
  set.add("name: typo\nscalar: []\n", "typo.yaml", errors);
  set.add("name: loop\ninclude: [loop2]\n", "loop.yaml", errors);
  set.add("name: loop2\ninclude: [loop]\n", "loop2.yaml", errors);
  set.add("name: orphan\ninclude: [nothing]\n", "orphan.yaml", errors);
  set.add("name: bad-count\nscalars: [{name: n, oid: 1.3.6.1.1.0, type: count}]\n", "bc.yaml",
          errors);
  set.add("{unclosed: [\n", "syntax.yaml", errors);
  set.finish(errors);

  REQUIRE(set.find("base") != nullptr);
  REQUIRE(set.find("vendor") != nullptr);  // name from the file's stem
  for (const char* gone : {"broken", "typo", "loop", "loop2", "orphan", "bad-count"})
    CHECK(set.find(gone) == nullptr);
  auto has_error = [&](const std::string& s) {
    for (const auto& e : errors)
      if (e.find(s) != std::string::npos) return true;
    return false;
  };
  CHECK(has_error("broken.yaml:3:"));
  CHECK(has_error("not a numeric OID: '1.3.x'"));
  CHECK(has_error("typo.yaml:2:1: unknown key 'scalar'"));
  CHECK(has_error("include cycle"));
  CHECK(has_error("unknown profile 'nothing'"));
  CHECK(has_error("syntax.yaml:"));
  CHECK(has_error("bc.yaml:"));

  // Longest sysObjectID prefix wins; unrelated OIDs match nothing.
  CHECK(set.match(*outpost::snmp::parse_oid("1.3.6.1.4.1.99.7.3"))->name == "vendor");
  CHECK(set.match(*outpost::snmp::parse_oid("1.3.6.1.4.1.98")) == nullptr);

  auto plan = set.plan("vendor");
  REQUIRE(plan);
  REQUIRE(plan->scalars.size() == 2);
  CHECK(plan->scalars[0].map.size() == 1);  // the including profile's definition wins
  REQUIRE(plan->tables.size() == 1);
  CHECK(plan->tables[0].index == "idx");
  CHECK(plan->tables[0].metrics.size() == 3);  // merged columns of both
  CHECK(set.plan("base,vendor") != nullptr);
  CHECK(set.plan("base,nothing") == nullptr);
}

TEST_CASE("profiles: every shipped profile loads") {
  std::vector<std::string> errors;
  const auto set = outpost::snmp::ProfileSet::load(
      {fs::path(OUTPOST_TEST_SOURCE_DIR) / "plugins/snmp/profiles"}, errors);
  for (const auto& e : errors) FAIL_CHECK(e);
  for (const char* n :
       {"system", "if-mib", "host-resources", "paloalto", "net-snmp-linux", "generic"})
    CHECK(set.plan(n) != nullptr);
  CHECK(set.match(*outpost::snmp::parse_oid("1.3.6.1.4.1.8072.3.2.10"))->name == "net-snmp-linux");
  CHECK(set.match(*outpost::snmp::parse_oid("1.3.6.1.4.1.25461.2.3.36"))->name == "paloalto");
}

TEST_CASE("collector: bulk walks, truncated answers, fallbacks and agent errors") {
  using namespace outpost::snmp;
  auto set = std::make_shared<ProfileSet>();
  std::vector<std::string> errors;
  set->add(R"(
name: p
scalars: [{name: s1, oid: 1.9.1.0}, {name: s2, oid: 1.9.2.0}]
tables:
  - name: t
    labels: [{name: d, oid: 1.9.5.1.2}]
    metrics:
      - {name: hc, oid: 1.9.6.1.6, fallback: {name: lo, oid: 1.9.5.1.10}}
      - {name: n, oid: 1.9.5.1.1, type: count}
)",
           "p.yaml", errors);
  set->finish(errors);
  REQUIRE(errors.empty());
  auto oid = [](const char* s) { return *parse_oid(s); };
  auto num = [](Value::Type t, double v) {
    Value x;
    x.type = t;
    x.number = v;
    return x;
  };
  auto str = [](const char* s) {
    Value x;
    x.type = Value::Type::kOctets;
    x.text = s;
    return x;
  };
  Value end;
  end.type = Value::Type::kEndOfMibView;

  CollectorOptions o;
  o.version = 2;
  o.repetitions = 3;
  Collector c(o, set, "p", "generic", nullptr);
  auto r = c.next();  // sysUpTime, sysObjectID and the profile's scalars in one GET
  REQUIRE(r);
  CHECK(r->type == PduType::kGet);
  REQUIRE(r->oids.size() == 4);
  Value missing;
  missing.type = Value::Type::kNoSuchObject;
  c.on_response({0,
                 0,
                 {{kSysUpTime, num(Value::Type::kTimeTicks, 12345)},
                  {kSysObjectId, str("1.3.6.1.4.1.1")},
                  {oid("1.9.1.0"), num(Value::Type::kInteger, 7)},
                  {oid("1.9.2.0"), missing}}});
  r = c.next();  // walk: three columns of the table at once
  REQUIRE(r);
  CHECK(r->type == PduType::kGetBulk);
  CHECK(r->repetitions == 3);
  REQUIRE(r->oids.size() == 3);
  // tooBig: the same columns again with fewer repetitions
  c.on_response({1, 0, {}});
  r = c.next();
  REQUIRE(r);
  CHECK(r->repetitions == 1);
  // A truncated answer (the agent cut it short) and an hc column that has nothing.
  c.on_response({0,
                 0,
                 {{oid("1.9.5.1.2.1"), str("eth0")},
                  {oid("1.9.7"), str("beyond")},
                  {oid("1.9.5.1.1.1"), num(Value::Type::kInteger, 1)}}});
  r = c.next();  // hc is done; d and n go on from where they were
  REQUIRE(r);
  REQUIRE(r->oids.size() == 2);
  CHECK(r->oids[0] == oid("1.9.5.1.2.1"));
  CHECK(r->oids[1] == oid("1.9.5.1.1.1"));
  c.on_response(
      {0,
       0,
       {{oid("1.9.5.1.2.2"), str("eth1")}, {oid("1.9.5.1.1.2"), num(Value::Type::kInteger, 2)}}});
  r = c.next();
  REQUIRE(r);
  // An agent that answers with an OID that does not increase ends that column.
  c.on_response({0, 0, {{oid("1.9.5.1.2.1"), str("again")}, {oid("1.9.5.1.1.3"), end}}});
  r = c.next();  // rows lack hc: its 32-bit fallback is walked
  REQUIRE(r);
  REQUIRE(r->oids.size() == 1);
  CHECK(r->oids[0] == oid("1.9.5.1.10"));
  c.on_response({0,
                 0,
                 {{oid("1.9.5.1.10.1"), num(Value::Type::kCounter32, 100)},
                  {oid("1.9.5.1.10.2"), num(Value::Type::kCounter32, 200)},
                  {oid("1.9.5.1.11.1"), num(Value::Type::kCounter32, 1)}}});
  CHECK_FALSE(c.next());
  CHECK(c.done());
  CHECK(c.uptime_ticks() == 12345);

  std::vector<outpost::Metric> out;
  c.build({{"device", "d1"}}, out);
  std::map<std::string, std::vector<const outpost::Metric*>> by;
  for (const auto& m : out) by[m.name].push_back(&m);
  CHECK(by["snmp_uptime_seconds"].size() == 1);
  REQUIRE(by["snmp_s1"].size() == 1);
  CHECK(by["snmp_s1"][0]->value == 7);
  CHECK(by["snmp_s2"].empty());
  REQUIRE(by["snmp_lo"].size() == 2);
  CHECK(by["snmp_lo"][0]->type == OUTPOST_METRIC_COUNTER);  // Counter32 with type auto
  CHECK(by["snmp_hc"].empty());
  REQUIRE(by["snmp_n"].size() == 1);
  CHECK(by["snmp_n"][0]->value == 2);
  bool eth1 = false;
  for (const auto* m : by["snmp_lo"])
    for (const auto& [k, v] : m->labels) eth1 |= (k == "d" && v == "eth1");
  CHECK(eth1);
  std::set<std::string> errs;
  for (const auto& e : c.errors()) errs.insert(e.object + ":" + e.error);
  CHECK(errs.count("s2:noSuchObject") == 1);
  CHECK(errs.count("d:OID not increasing") == 1);
}

TEST_CASE("collector: SNMPv1 GETNEXT walks and noSuchName") {
  using namespace outpost::snmp;
  auto set = std::make_shared<ProfileSet>();
  std::vector<std::string> errors;
  set->add(
      "name: p\nscalars: [{name: a, oid: 1.9.1.0}, {name: b, oid: 1.9.2.0}]\n"
      "tables: [{name: t, metrics: [{name: m, oid: 1.9.5.1.1}, {name: k, oid: 1.9.5.1.2}]}]\n",
      "p.yaml", errors);
  set->finish(errors);
  CollectorOptions o;
  o.version = 1;
  Collector c(o, set, "p", "generic", nullptr);
  auto r = c.next();
  REQUIRE(r->oids.size() == 4);
  c.on_response({2, 4, {}});  // noSuchName for b: the rest is asked again without it
  r = c.next();
  REQUIRE(r->oids.size() == 3);
  Value v;
  v.type = Value::Type::kInteger;
  v.number = 5;
  c.on_response({0, 0, {{kSysUpTime, v}, {kSysObjectId, v}, {*parse_oid("1.9.1.0"), v}}});
  r = c.next();
  CHECK(r->type == PduType::kGetNext);
  REQUIRE(r->oids.size() == 2);
  c.on_response({0, 0, {{*parse_oid("1.9.5.1.1.1"), v}, {*parse_oid("1.9.5.1.2.1"), v}}});
  r = c.next();
  c.on_response({2, 2, {}});  // k reached the end of the MIB view: a v1 agent says noSuchName
  r = c.next();
  REQUIRE(r->oids.size() == 1);
  c.on_response({0, 0, {{*parse_oid("1.9.6"), v}}});
  CHECK_FALSE(c.next());
  std::set<std::string> errs;
  for (const auto& e : c.errors()) errs.insert(e.object + ":" + e.error);
  CHECK(errs == std::set<std::string>{"b:noSuchName"});
}

// ---- against snmpd ----------------------------------------------------------------------------

TEST_CASE("v2c: values match snmpget and snmpbulkwalk, profile chosen by sysObjectID") {
  Snmpd& a = agent();
  REQUIRE(a.ok());
  Started s;
  FakeHost& h = s.host;
  const double in_before = std::stod(a.get("1.3.6.1.2.1.31.1.1.1.6.1"));
  const double up_before = std::stod(a.get("1.3.6.1.2.1.1.3.0")) / 100;
  h.poll({{"linux-1", "127.0.0.1", v2c(a)}}, 5000);
  const double in_after = std::stod(a.get("1.3.6.1.2.1.31.1.1.1.6.1"));
  const double up_after = std::stod(a.get("1.3.6.1.2.1.1.3.0")) / 100;
  INFO(detail_of(h, 1));
  REQUIRE(status_of(h, 1) == OUTPOST_OK);
  CHECK(detail_of(h, 1).find("profile net-snmp-linux") == 0);

  auto info = h.find("snmp_info", {{"device", "linux-1"}});
  REQUIRE(info.size() == 1);
  CHECK(label(info[0], "sysName") == "outpost-snmp-test");
  CHECK(label(info[0], "sysLocation") == "loopback lab");
  CHECK(label(info[0], "sysObjectID") == "1.3.6.1.4.1.8072.3.2.10");
  CHECK(label(info[0], "profile") == "net-snmp-linux");
  CHECK(label(info[0], "address") == "127.0.0.1");
  CHECK(h.find("snmp_up", {{"device", "linux-1"}}).at(0).value == 1);

  auto up = h.find("snmp_uptime_seconds");
  REQUIRE(up.size() == 1);
  CHECK(up[0].value >= up_before - 0.01);
  CHECK(up[0].value <= up_after + 0.01);

  // Interfaces: the same ifIndex → ifDescr as snmpbulkwalk, 64-bit counters between two
  // snmpget readings taken before and after.
  std::map<std::string, std::string> descr;
  for (const auto& m : h.find("snmp_ifOperStatus"))
    descr[label(m, "ifIndex")] = label(m, "ifDescr");
  CHECK(descr == a.walk("1.3.6.1.2.1.2.2.1.2"));
  auto in = h.find("snmp_ifHCInOctets", {{"ifIndex", "1"}});
  REQUIRE(in.size() == 1);
  CHECK(in[0].type == OUTPOST_METRIC_COUNTER);
  CHECK(in[0].value >= in_before);
  CHECK(in[0].value <= in_after);
  CHECK(label(in[0], "ifName") == "lo");
  CHECK(h.find("snmp_ifInOctets").empty());  // the agent has ifXTable: no 32-bit fallback
  CHECK(h.find("snmp_ifOperStatus", {{"ifIndex", "1"}}).at(0).type == OUTPOST_METRIC_GAUGE);

  // HOST-RESOURCES-MIB: storage names, bytes = size x allocation units, processors, programs.
  std::set<std::string> storage, walked;
  for (const auto& m : h.find("snmp_hrStorageSizeBytes"))
    storage.insert(label(m, "hrStorageDescr"));
  for (const auto& [i, d] : a.walk("1.3.6.1.2.1.25.2.3.1.3")) walked.insert(d);
  CHECK(storage == walked);
  auto mem = h.find("snmp_hrStorageSizeBytes", {{"hrStorageDescr", "Physical memory"}});
  REQUIRE(mem.size() == 1);
  const std::string idx = label(mem[0], "hrStorageIndex");
  CHECK(mem[0].value == std::stod(a.get("1.3.6.1.2.1.25.2.3.1.5." + idx)) *
                            std::stod(a.get("1.3.6.1.2.1.25.2.3.1.4." + idx)));
  CHECK(label(mem[0], "hrStorageType") == "ram");
  CHECK(h.find("snmp_hrProcessorLoad").size() == a.walk("1.3.6.1.2.1.25.3.3.1.2").size());
  auto procs = h.find("snmp_hrSWRunCount");
  REQUIRE(procs.size() == 1);
  const double walked_procs = static_cast<double>(a.walk("1.3.6.1.2.1.25.4.2.1.1").size());
  CHECK(procs[0].value > 0);
  CHECK(std::abs(procs[0].value - walked_procs) <= 20);
  CHECK(h.find("snmp_hrSystemProcesses").size() == 1);
  CHECK(h.find("snmp_hrMemorySize").at(0).value > 0);
}

TEST_CASE("addresses: IPv6 literals, bracketed or not, and host names") {
  Snmpd& a = agent();
  REQUIRE(a.ok());
  Started s;
  FakeHost& h = s.host;
  h.poll(
      {{"v6", "::1", v2c(a)}, {"v6-brackets", "[::1]", v2c(a)}, {"by-name", "localhost", v2c(a)}},
      5000);
  for (uint64_t id = 1; id <= 3; ++id) {
    INFO("target " << id << ": " << detail_of(h, id));
    CHECK(status_of(h, id) == OUTPOST_OK);
  }
  CHECK(label(h.find("snmp_info", {{"device", "v6-brackets"}}).at(0), "address") == "[::1]");
}

TEST_CASE("v1: GETNEXT walks, 32-bit counters instead of the 64-bit ones v1 cannot carry") {
  Snmpd& a = agent();
  REQUIRE(a.ok());
  Started s;
  FakeHost& h = s.host;
  h.poll({{"v1-dev", "127.0.0.1", v2c(a, {{"version", "1"}})}}, 8000);
  INFO(detail_of(h, 1));
  REQUIRE(status_of(h, 1) == OUTPOST_OK);
  std::map<std::string, std::string> descr;
  for (const auto& m : h.find("snmp_ifOperStatus"))
    descr[label(m, "ifIndex")] = label(m, "ifDescr");
  CHECK(descr == a.walk("1.3.6.1.2.1.2.2.1.2"));
  CHECK(h.find("snmp_ifHCInOctets").empty());
  auto in = h.find("snmp_ifInOctets", {{"ifIndex", "1"}});
  REQUIRE(in.size() == 1);
  CHECK(in[0].type == OUTPOST_METRIC_COUNTER);
  CHECK(label(h.find("snmp_info").at(0), "sysName") == "outpost-snmp-test");
  CHECK(h.find("snmp_hrStorageSizeBytes").size() == a.walk("1.3.6.1.2.1.25.2.3.1.3").size());
}

TEST_CASE("v3 USM: authPriv SHA/AES, authNoPriv SHA-256, SHA-512/AES-256, noAuthNoPriv") {
  Snmpd& a = agent();
  REQUIRE(a.ok());
  Started s;
  FakeHost& h = s.host;
  h.set_secret("ops_auth", "authpass123");
  h.set_secret("ops_priv", "privpass123");
  const std::string port = a.port_text();
  h.poll({{"v3-priv",
           "127.0.0.1",
           {{"port", port},
            {"version", "3"},
            {"user", "privUser"},
            {"auth_password_ref", "ops_auth"},
            {"priv_password_ref", "ops_priv"}}},
          {"v3-auth",
           "127.0.0.1",
           {{"port", port},
            {"version", "3"},
            {"user", "authUser"},
            {"auth_protocol", "SHA-256"},
            {"auth_password", "authpass123"}}},
          {"v3-strong",
           "127.0.0.1",
           {{"port", port},
            {"version", "3"},
            {"user", "strongUser"},
            {"auth_protocol", "SHA-512"},
            {"auth_password", "authpass123"},
            {"priv_protocol", "AES-256"},
            {"priv_password", "privpass123"}}},
          {"v3-plain", "127.0.0.1", {{"port", port}, {"version", "3"}, {"user", "plainUser"}}}},
         8000);
  for (uint64_t id = 1; id <= 4; ++id) {
    INFO("target " << id << ": " << detail_of(h, id));
    CHECK(status_of(h, id) == OUTPOST_OK);
  }
  for (const char* d : {"v3-priv", "v3-auth", "v3-strong", "v3-plain"}) {
    auto info = h.find("snmp_info", {{"device", d}});
    REQUIRE(info.size() == 1);
    CHECK(label(info[0], "sysName") == "outpost-snmp-test");
    CHECK(h.find("snmp_ifHCInOctets", {{"device", d}, {"ifIndex", "1"}}).size() == 1);
  }
  // Second poll: engine ID and time are known, keys are cached; still right.
  h.clear();
  h.poll({{"v3-priv",
           "127.0.0.1",
           {{"port", port},
            {"version", "3"},
            {"user", "privUser"},
            {"auth_password_ref", "ops_auth"},
            {"priv_password_ref", "ops_priv"}}}},
         5000);
  INFO(detail_of(h, 1));
  CHECK(status_of(h, 1) == OUTPOST_OK);
}

TEST_CASE("failures: wrong community, wrong v3 user and passwords, dead port") {
  Snmpd& a = agent();
  REQUIRE(a.ok());
  Started s({{"request_timeout", "300ms"}, {"retries", "1"}});
  FakeHost& h = s.host;
  const std::string port = a.port_text();
  const uint16_t dead = free_udp_port();
  Params v3 = {{"port", port}, {"version", "3"}};
  auto with = [](Params p, Params more) {
    p.insert(p.end(), more.begin(), more.end());
    return p;
  };
  const auto t0 = Clock::now();
  h.poll(
      {{"bad-community", "127.0.0.1", {{"port", port}, {"community", "wrong"}}},
       {"unknown-user", "127.0.0.1",
        with(v3, {{"user", "nobody"}, {"auth_password", "authpass123"}})},
       {"wrong-auth", "127.0.0.1",
        with(v3, {{"user", "authUser"},
                  {"auth_protocol", "SHA-256"},
                  {"auth_password", "wrongpass123"}})},
       {"dead-port", "127.0.0.1", {{"port", std::to_string(dead)}, {"community", "public"}}},
       {"dead-v3", "127.0.0.1", {{"port", std::to_string(dead)}, {"version", "3"}, {"user", "u"}}}},
      4000);
  const double took = seconds_since(t0);
  CHECK(h.completions().size() == 5);
  CHECK(took < 4.0);
  CHECK(status_of(h, 1) == OUTPOST_E_TIMEOUT);
  CAPTURE(detail_of(h, 1));
  CHECK(detail_of(h, 1).find("wrong community") != std::string::npos);
  CHECK(status_of(h, 2) == OUTPOST_E_AUTH);
  CHECK(detail_of(h, 2).find("usmStatsUnknownUserNames") != std::string::npos);
  CHECK(status_of(h, 3) == OUTPOST_E_AUTH);
  CHECK(detail_of(h, 3).find("usmStatsWrongDigests") != std::string::npos);
  CHECK(status_of(h, 4) == OUTPOST_E_TIMEOUT);
  CHECK(status_of(h, 5) == OUTPOST_E_TIMEOUT);
  CHECK(detail_of(h, 5).find("engine discovery") != std::string::npos);
  for (const char* d : {"bad-community", "unknown-user", "wrong-auth", "dead-port"})
    CHECK(h.find("snmp_up", {{"device", d}}).at(0).value == 0);

  // A wrong privacy password: the agent drops what it cannot decrypt, so it looks like a dead
  // agent until the same user, asked without privacy, is answered.
  h.clear();
  h.poll({{"wrong-priv", "127.0.0.1",
           with(v3, {{"user", "privUser"},
                     {"auth_password", "authpass123"},
                     {"priv_password", "wrongpriv123"}})}},
         4000);
  INFO(detail_of(h, 1));
  CHECK(status_of(h, 1) == OUTPOST_E_AUTH);
  CHECK(detail_of(h, 1).find("privacy password") != std::string::npos);
  // ... and the right one right after works: the USM entry of that engine and user follows.
  h.clear();
  h.poll({{"right-priv", "127.0.0.1",
           with(v3, {{"user", "privUser"},
                     {"auth_password", "authpass123"},
                     {"priv_password", "privpass123"}})}},
         4000);
  CHECK(status_of(h, 1) == OUTPOST_OK);
}

TEST_CASE("bad monitor parameters are configuration errors, reported at once") {
  Snmpd& a = agent();
  Started s;
  FakeHost& h = s.host;
  const std::string port = a.port_text();
  h.poll({{"a", "127.0.0.1", {{"port", port}, {"version", "4"}, {"community", "public"}}},
          {"b", "127.0.0.1", {{"port", port}}},
          {"c", "127.0.0.1", v2c(a, {{"profile", "no-such-profile"}})},
          {"d",
           "127.0.0.1",
           {{"port", port}, {"version", "3"}, {"user", "u"}, {"auth_password", "short"}}},
          {"e",
           "127.0.0.1",
           {{"port", port},
            {"version", "3"},
            {"user", "u"},
            {"auth_protocol", "SHA-999"},
            {"auth_password", "authpass123"}}},
          {"f", "127.0.0.1", {{"port", port}, {"community_ref", "not-a-credential"}}},
          {"g", "no-such-host.invalid", v2c(a)}},
         3000);
  for (uint64_t id = 1; id <= 6; ++id) {
    INFO("target " << id << ": " << detail_of(h, id));
    CHECK(status_of(h, id) == OUTPOST_E_CONFIG);
  }
  CHECK((status_of(h, 7) == OUTPOST_E_NOT_FOUND || status_of(h, 7) == OUTPOST_E_TIMEOUT));
  CHECK(h.find("snmp_up", {{"device", "a"}}).empty());  // nothing measured for a bad monitor
}

TEST_CASE("210 targets in one poll: every one completed once, before the deadline") {
  Snmpd& a = agent();
  REQUIRE(a.ok());
  // 120 sessions in flight: many at once, yet not more than one snmpd's socket buffer holds
  // (it drops what overflows, as a real agent would; distinct agents have a buffer each).
  Started s({{"request_timeout", "500ms"}, {"retries", "1"}, {"max_concurrent", "120"}});
  FakeHost& h = s.host;
  std::vector<FakeHost::TargetSpec> targets;
  const std::string port = a.port_text();
  for (int i = 0; i < 180; ++i) {
    Params p = {{"port", port}};
    if (i % 6 == 5) {
      p.insert(p.end(), {{"version", "3"},
                         {"user", "privUser"},
                         {"auth_password", "authpass123"},
                         {"priv_password", "privpass123"}});
    } else {
      p.insert(p.end(), {{"community", "public"}, {"version", i % 6 == 4 ? "1" : "2c"}});
    }
    targets.push_back({"dev-" + std::to_string(i), "127.0.0.1", p});
  }
  for (int i = 0; i < 30; ++i)
    targets.push_back({"dead-" + std::to_string(i),
                       "127.0.0.1",
                       {{"port", std::to_string(free_udp_port())}, {"community", "public"}}});
  const auto t0 = Clock::now();
  h.poll(targets, 9000);
  const double took = seconds_since(t0);
  const auto done = h.completions();
  std::set<uint64_t> ids;
  for (const auto& c : done) CHECK(ids.insert(c.target_id).second);  // never twice
  CHECK(ids.size() == targets.size());
  CHECK(took < 9.0);
  std::size_t ok = 0, timeouts = 0;
  for (const auto& c : done) {
    if (c.target_id <= 180) {
      INFO("target " << c.target_id << ": " << c.detail);
      CHECK(c.status == OUTPOST_OK);
      ok += c.status == OUTPOST_OK;
    } else {
      CHECK(c.status == OUTPOST_E_TIMEOUT);
      timeouts += c.status == OUTPOST_E_TIMEOUT;
    }
  }
  CHECK(ok == 180);
  CHECK(timeouts == 30);
  CHECK(h.find("snmp_info").size() == 180);
  WARN("210 targets (180 answering, 30 dead) polled in " << took << " s");
}

TEST_CASE("rtt: RFC 6298's estimator, its backoff and its bounds") {
  using outpost::snmp::RttEstimator;
  constexpr int64_t ms = 1'000'000;
  RttEstimator r;
  CHECK(r.timeout(1000 * ms, 10000 * ms) == 1000 * ms);  // nothing measured: the floor
  r.backoff();
  r.backoff();
  CHECK(r.timeout(1000 * ms, 10000 * ms) == 4000 * ms);  // doubled per unanswered attempt
  r.backoff();
  r.backoff();
  CHECK(r.timeout(1000 * ms, 10000 * ms) == 10000 * ms);  // never past the ceiling
  r.sample(3000 * ms);  // first answer: SRTT = R, RTTVAR = R/2, backoff cleared
  CHECK(r.measured());
  CHECK(r.srtt_ns() == 3000 * ms);
  CHECK(r.timeout(1000 * ms, 20000 * ms) == 9000 * ms);  // 3 s + 4 x 1.5 s
  for (int i = 0; i < 60; ++i) r.sample(3000 * ms);      // steady: RTTVAR shrinks
  CHECK(r.timeout(1000 * ms, 20000 * ms) < 3100 * ms);
  CHECK(r.timeout(1000 * ms, 20000 * ms) >= 3010 * ms);  // at least 10 ms over SRTT
  RttEstimator fast;
  fast.sample(2 * ms);
  CHECK(fast.timeout(1000 * ms, 10000 * ms) == 1000 * ms);  // a quick agent keeps the floor
}

TEST_CASE("a slow agent: the wait for its answers adapts to it; a fixed wait never gets one") {
  Snmpd& a = agent();
  REQUIRE(a.ok());
  // Every answer 500 ms late; the plugin starts out waiting 150 ms, with 2 retries.
  SlowRelay slow(a.port(), 500);
  const std::vector<FakeHost::TargetSpec> target = {
      {"slow", "127.0.0.1", {{"port", slow.port_text()}, {"community", "public"}}}};
  SECTION("adaptive: the wait doubles while answers miss it, then follows the measured time") {
    Started s({{"request_timeout", "150ms"}, {"retries", "2"}, {"max_request_timeout", "4s"}});
    FakeHost& h = s.host;
    for (int i = 0; i < 3; ++i) {
      h.poll(target, 20000);
      INFO("poll " << i << ": " << detail_of(h, 1));
      CHECK(status_of(h, 1) == OUTPOST_OK);
    }
    const auto rtt = h.find("snmp_rtt_seconds", {{"device", "slow"}});
    REQUIRE(!rtt.empty());
    CHECK(rtt.back().value >= 0.45);  // the agent's delay, measured
  }
  SECTION("fixed: with the wait held at 150 ms no answer is ever in time") {
    Started s({{"request_timeout", "150ms"}, {"retries", "2"}, {"max_request_timeout", "150ms"}});
    FakeHost& h = s.host;
    h.poll(target, 20000);
    INFO(detail_of(h, 1));
    CHECK(status_of(h, 1) == OUTPOST_E_TIMEOUT);
    CHECK(detail_of(h, 1).find("after 3 attempts") != std::string::npos);
  }
}

TEST_CASE("profile chosen by sysObjectID: an snmpd that says it is a Palo Alto") {
  Snmpd& pan = paloalto();
  REQUIRE(pan.ok());
  Started s;
  FakeHost& h = s.host;
  h.poll({{"fw-1", "127.0.0.1", v2c(pan)}}, 5000);
  INFO(detail_of(h, 1));
  REQUIRE(status_of(h, 1) == OUTPOST_OK);
  // The one object the agent lacks is named in the detail and counted.
  CHECK(detail_of(h, 1).find("panSessionActiveTcp (noSuchObject)") != std::string::npos);
  auto info = h.find("snmp_info");
  REQUIRE(info.size() == 1);
  CHECK(label(info[0], "profile") == "paloalto");
  CHECK(label(info[0], "panSysSwVersion") == "10.2.4-h3");
  CHECK(label(info[0], "panSysSerialNumber") == "013201001234");
  CHECK(label(info[0], "panSysHAMode") == "active-passive");
  CHECK(label(info[0], "sysName") == "pa-lab-1");
  CHECK(h.find("snmp_panSessionActive").at(0).value == 96993);
  CHECK(h.find("snmp_panSessionMax").at(0).value == 262142);
  CHECK(h.find("snmp_panSessionUtilization").at(0).value == 37);
  CHECK(h.find("snmp_panSysHAState").at(0).value == 2);      // active
  CHECK(h.find("snmp_panSysHAPeerState").at(0).value == 3);  // passive
  CHECK(!h.find("snmp_ifOperStatus").empty());               // included if-mib
  CHECK(h.find("snmp_hrStorageSizeBytes").empty());          // not part of this profile
  auto err = h.find("snmp_object_errors_total",
                    {{"object", "panSessionActiveTcp"}, {"error", "noSuchObject"}});
  REQUIRE(err.size() == 1);
  CHECK(err[0].value == 1);
  CHECK(err[0].type == OUTPOST_METRIC_COUNTER);
  CHECK(label(err[0], "oid") == "1.3.6.1.4.1.25461.2.1.2.3.4.0");
  h.clear();
  h.poll({{"fw-1", "127.0.0.1", v2c(pan)}}, 5000);
  CHECK(h.find("snmp_object_errors_total", {{"object", "panSessionActiveTcp"}}).at(0).value == 2);
}

TEST_CASE("user profiles: a directory of YAML files, picked up while running") {
  Snmpd& a = agent();
  REQUIRE(a.ok());
  const fs::path dir = temp_dir("profiles");
  Started s({{"profile_dirs.0", dir.string()}});
  FakeHost& h = s.host;
  h.poll({{"custom", "127.0.0.1", v2c(a, {{"profile", "lab-box"}})}}, 3000);
  CHECK(status_of(h, 1) == OUTPOST_E_CONFIG);  // not there yet

  write_file(dir / "lab-box.yaml", R"(
description: a user's own profile
sysobjectid: [1.3.6.1.4.1.8072.3.2.10.99]
include: [system]
scalars:
  - {name: labProcesses, oid: 1.3.6.1.2.1.25.1.6.0}
tables:
  - name: ifs
    index: i
    labels: [{name: n, oid: 1.3.6.1.2.1.2.2.1.2}]
    metrics: [{name: labMtu, oid: 1.3.6.1.2.1.2.2.1.4}]
)");
  write_file(dir / "broken.yaml", "name: broken\ntables: [{name: x}]\n");
  std::this_thread::sleep_for(
      std::chrono::milliseconds(1100));  // profiles are looked at once a second
  h.clear();
  h.poll({{"custom", "127.0.0.1", v2c(a, {{"profile", "lab-box"}})}, {"auto", "127.0.0.1", v2c(a)}},
         5000);
  INFO(detail_of(h, 1));
  REQUIRE(status_of(h, 1) == OUTPOST_OK);
  CHECK(h.find("snmp_labProcesses", {{"device", "custom"}}).size() == 1);
  auto mtu = h.find("snmp_labMtu", {{"device", "custom"}, {"n", "lo"}});
  REQUIRE(mtu.size() == 1);
  CHECK(mtu[0].value == std::stod(a.get("1.3.6.1.2.1.2.2.1.4." + label(mtu[0], "i"))));
  CHECK(h.find("snmp_ifOperStatus", {{"device", "custom"}}).empty());
  CHECK(label(h.find("snmp_info", {{"device", "custom"}}).at(0), "sysName") == "outpost-snmp-test");
  // The shipped profiles still serve, and the broken file was reported with its place.
  CHECK(status_of(h, 2) == OUTPOST_OK);
  CHECK(label(h.find("snmp_info", {{"device", "auto"}}).at(0), "profile") == "net-snmp-linux");
  bool reported = false;
  for (const auto& [st, e] : h.errors()) reported |= e.find("broken.yaml:2:") != std::string::npos;
  CHECK(reported);
  fs::remove_all(dir);
}

TEST_CASE("an agent restart is flagged; v3 follows the agent's new boot count") {
  Snmpd r("restart", kAgentConf);
  REQUIRE(r.ok());
  Started s;
  FakeHost& h = s.host;
  const Params v3 = {{"port", r.port_text()},
                     {"version", "3"},
                     {"user", "privUser"},
                     {"auth_password", "authpass123"},
                     {"priv_password", "privpass123"}};
  h.poll({{"srv", "127.0.0.1", v2c(r)}, {"srv-v3", "127.0.0.1", v3}}, 5000);
  REQUIRE(status_of(h, 1) == OUTPOST_OK);
  REQUIRE(status_of(h, 2) == OUTPOST_OK);
  std::this_thread::sleep_for(std::chrono::milliseconds(1200));  // an uptime worth losing
  h.clear();
  h.poll({{"srv", "127.0.0.1", v2c(r)}, {"srv-v3", "127.0.0.1", v3}}, 5000);
  REQUIRE(status_of(h, 1) == OUTPOST_OK);
  CHECK(h.events().empty());
  r.stop();
  r.start();
  REQUIRE(r.ok());
  h.clear();
  h.poll({{"srv", "127.0.0.1", v2c(r)}, {"srv-v3", "127.0.0.1", v3}}, 5000);
  INFO(detail_of(h, 1) << " / " << detail_of(h, 2));
  CHECK(status_of(h, 1) == OUTPOST_OK);
  CHECK(status_of(h, 2) == OUTPOST_OK);
  std::size_t restarts = 0;
  for (const auto& e : h.events())
    if (e.kind == "snmp" && e.message.find("agent restarted") == 0) ++restarts;
  CHECK(restarts == 2);
  CHECK(h.find("snmp_restarts_total", {{"device", "srv"}}).at(0).value == 1);
}

// ---- diagnostics: get and walk of chosen OIDs instead of a profile ------------------------------

namespace {

outpost::snmp::Value int_value(double v) {
  outpost::snmp::Value x;
  x.type = outpost::snmp::Value::Type::kInteger;
  x.number = v;
  return x;
}

std::vector<std::string> lines_of(const std::vector<outpost::snmp::ProbeItem>& items) {
  std::vector<std::string> out;
  for (const auto& i : items) out.push_back(outpost::snmp::render(i).line);
  return out;
}

}  // namespace

TEST_CASE("probe: gets in the order asked; exceptions, v1 noSuchName and tooBig per OID") {
  using namespace outpost::snmp;
  auto oid = [](const char* s) { return *parse_oid(s); };
  CollectorOptions o;
  o.version = 1;
  o.max_oids = 4;
  Probe p(o, {oid("1.9.1.0"), oid("1.9.2.0"), oid("1.9.3.0"), oid("1.9.4.0"), oid("1.9.5.0")}, {});
  auto r = p.next();
  REQUIRE(r);
  CHECK(r->type == PduType::kGet);
  REQUIRE(r->oids.size() == 4);
  p.on_response({2, 2, {}});  // v1: 1.9.2.0 is noSuchName; the other three are asked again
  r = p.next();
  REQUIRE(r->oids.size() == 3);
  CHECK(r->oids[1] == oid("1.9.3.0"));
  p.on_response({1, 0, {}});  // tooBig: half as many at a time
  r = p.next();
  REQUIRE(r->oids.size() == 1);
  p.on_response({0, 0, {{oid("1.9.1.0"), int_value(1)}}});
  r = p.next();
  REQUIRE(r->oids.size() == 1);
  CHECK(r->oids[0] == oid("1.9.3.0"));
  Value none;
  none.type = Value::Type::kNoSuchInstance;
  p.on_response({0, 0, {{oid("1.9.3.0"), none}}});
  r = p.next();
  REQUIRE(r->oids.size() == 1);
  p.on_response({0, 0, {{oid("1.9.4.0"), int_value(4)}}});
  r = p.next();
  REQUIRE(r->oids.size() == 1);
  CHECK(r->oids[0] == oid("1.9.5.0"));
  p.on_response({5, 1, {}});  // genErr for the last one
  CHECK_FALSE(p.next());
  CHECK(p.got_data());
  CHECK(lines_of(p.items()) == std::vector<std::string>{
                                   ".1.9.1.0 = INTEGER: 1",
                                   ".1.9.2.0 = error: noSuchName",
                                   ".1.9.3.0 = noSuchInstance",
                                   ".1.9.4.0 = INTEGER: 4",
                                   ".1.9.5.0 = error: genErr",
                               });
}

TEST_CASE("probe: walks stay in their subtree; an empty one asks for the root itself") {
  using namespace outpost::snmp;
  auto oid = [](const char* s) { return *parse_oid(s); };
  Value end;
  end.type = Value::Type::kEndOfMibView;
  Value missing;
  missing.type = Value::Type::kNoSuchObject;
  CollectorOptions o;
  o.version = 2;
  o.repetitions = 3;
  Probe p(o, {}, {oid("1.9.5"), oid("1.9.6.0"), oid("1.9.7"), oid("1.9.8")});
  auto r = p.next();
  REQUIRE(r);
  CHECK(r->type == PduType::kGetBulk);
  CHECK(r->repetitions == 3);
  CHECK(r->oids == std::vector<Oid>{oid("1.9.5")});
  // A truncated answer: the walk goes on from the last OID.
  p.on_response({0, 0, {{oid("1.9.5.1"), int_value(1)}, {oid("1.9.5.2"), int_value(2)}}});
  r = p.next();
  CHECK(r->oids == std::vector<Oid>{oid("1.9.5.2")});
  p.on_response({0, 0, {{oid("1.9.5.3"), int_value(3)}, {oid("1.9.6.0"), int_value(6)}}});
  // 1.9.6.0 has nothing under it: the root itself is read with a GET (a scalar's instance).
  r = p.next();
  CHECK(r->type == PduType::kGetBulk);
  CHECK(r->oids == std::vector<Oid>{oid("1.9.6.0")});
  p.on_response({0, 0, {{oid("1.9.7.1"), int_value(7)}}});
  r = p.next();
  CHECK(r->type == PduType::kGet);
  p.on_response({0, 0, {{oid("1.9.6.0"), int_value(6)}}});
  // 1.9.7: an agent whose OIDs go back is stopped and named.
  r = p.next();
  CHECK(r->oids == std::vector<Oid>{oid("1.9.7")});
  p.on_response({0, 0, {{oid("1.9.7.2"), int_value(1)}, {oid("1.9.7.1"), int_value(2)}}});
  // 1.9.8: the end of the MIB view at once, and nothing at the root either.
  r = p.next();
  CHECK(r->oids == std::vector<Oid>{oid("1.9.8")});
  p.on_response({0, 0, {{oid("1.9.8"), end}}});
  r = p.next();
  REQUIRE(r);
  CHECK(r->type == PduType::kGet);
  p.on_response({0, 0, {{oid("1.9.8"), missing}}});
  CHECK_FALSE(p.next());
  const auto items = p.items();
  CHECK(lines_of(items) == std::vector<std::string>{
                               ".1.9.5.1 = INTEGER: 1",
                               ".1.9.5.2 = INTEGER: 2",
                               ".1.9.5.3 = INTEGER: 3",
                               ".1.9.6.0 = INTEGER: 6",
                               ".1.9.7.2 = INTEGER: 1",
                               ".1.9.7 = error: OID not increasing: 1.9.7.1 after 1.9.7.2",
                               ".1.9.8 = noSuchObject",
                           });
  REQUIRE(items.size() == 7);
  CHECK(items[0].walk == "1.9.5");
  CHECK(items[3].walk == "1.9.6.0");

  // SNMPv1 walks with GETNEXT and ends at noSuchName; a timeout after answers is shown per walk.
  o.version = 1;
  Probe v1(o, {}, {oid("1.9.5"), oid("1.9.9")});
  r = v1.next();
  CHECK(r->type == PduType::kGetNext);
  v1.on_response({0, 0, {{oid("1.9.5.1"), int_value(1)}}});
  r = v1.next();
  v1.on_response({2, 1, {}});
  r = v1.next();
  CHECK(r->oids == std::vector<Oid>{oid("1.9.9")});
  CHECK(v1.activity() == "walking 1.9.9");
  v1.on_timeout();
  CHECK(lines_of(v1.items()) ==
        std::vector<std::string>{".1.9.5.1 = INTEGER: 1",
                                 ".1.9.9 = error: timeout after 0 varbinds"});
}

TEST_CASE("render: values as net-snmp's tools print them") {
  using namespace outpost::snmp;
  auto line = [](Value::Type t, double n, std::string text = {}) {
    Value v;
    v.type = t;
    v.number = n;
    v.text = std::move(text);
    return render(ProbeItem{{1, 3, 6, 1}, v, {}, {}});
  };
  CHECK(line(Value::Type::kOctets, 0, "plain text").line == ".1.3.6.1 = STRING: \"plain text\"");
  CHECK(line(Value::Type::kOctets, 0, R"(a "b" \c)").line == R"(.1.3.6.1 = STRING: "a \"b\" \\c")");
  CHECK(line(Value::Type::kOctets, 0, R"(a "b" \c)").value == R"(a "b" \c)");
  CHECK(line(Value::Type::kOctets, 0, std::string("\x02\xfc\x00\x01", 4)).line ==
        ".1.3.6.1 = Hex-STRING: 02 FC 00 01");
  CHECK(line(Value::Type::kOctets, 0, "").line == ".1.3.6.1 = \"\"");
  CHECK(line(Value::Type::kTimeTicks, 150, "").line == ".1.3.6.1 = Timeticks: (150) 0:00:01.50");
  CHECK(line(Value::Type::kTimeTicks, 8640000 + 3723 * 100 + 4, "").line ==
        ".1.3.6.1 = Timeticks: (9012304) 1 day, 1:02:03.04");
  CHECK(line(Value::Type::kTimeTicks, 3 * 8640000, "").line ==
        ".1.3.6.1 = Timeticks: (25920000) 3 days, 0:00:00.00");
  CHECK(line(Value::Type::kOid, 0, "1.3.6.1.4.1.8072.3.2.10").line ==
        ".1.3.6.1 = OID: .1.3.6.1.4.1.8072.3.2.10");
  CHECK(line(Value::Type::kOid, 0, "1.3.6.1.4.1.8072.3.2.10").value == "1.3.6.1.4.1.8072.3.2.10");
  // Counter64 beyond a double's 53 bits: exact, from the decoded text.
  CHECK(line(Value::Type::kCounter64, 18446744073709551615.0, "18446744073709551615").line ==
        ".1.3.6.1 = Counter64: 18446744073709551615");
  CHECK(line(Value::Type::kCounter32, 4294967295.0).line == ".1.3.6.1 = Counter32: 4294967295");
  CHECK(line(Value::Type::kUnsigned, 7).line == ".1.3.6.1 = Gauge32: 7");
  CHECK(line(Value::Type::kInteger, -3).line == ".1.3.6.1 = INTEGER: -3");
  CHECK(line(Value::Type::kIpAddress, 0, "127.0.0.1").line == ".1.3.6.1 = IpAddress: 127.0.0.1");
  CHECK(line(Value::Type::kNull, 0).line == ".1.3.6.1 = NULL");
  CHECK(line(Value::Type::kEndOfMibView, 0).type == "endOfMibView");
  CHECK(render(ProbeItem{{1, 3}, {}, "tooBig", {}}).line == ".1.3 = error: tooBig");
}

TEST_CASE(
    "get and walk against snmpd: every varbind an event, as snmpget and snmpbulkwalk print it") {
  Snmpd& a = agent();
  REQUIRE(a.ok());
  ::setenv("MIBS", "", 1);  // net-snmp's tools print numeric OIDs and quoted strings then
  ::setenv("MIBDIRS", "/nonexistent", 1);
  Started s;
  FakeHost& h = s.host;
  const std::vector<std::string> gets = {"1.3.6.1.2.1.1.1.0", "1.3.6.1.2.1.1.2.0",
                                         "1.3.6.1.2.1.1.5.0", "1.3.6.1.2.1.1.99.0"};
  const std::string walk = "1.3.6.1.2.1.2.2.1.2";
  Params p = v2c(a);
  for (std::size_t i = 0; i < gets.size(); ++i) p.emplace_back("get." + std::to_string(i), gets[i]);
  p.emplace_back("walk.0", walk);
  p.emplace_back("walk.1", "1.3.6.1.2.1.25.2.3.1.3");
  h.poll({{"diag", "127.0.0.1", p}}, 5000);
  INFO(detail_of(h, 1));
  REQUIRE(status_of(h, 1) == OUTPOST_OK);
  CHECK(detail_of(h, 1).find("1 without a value: 1.3.6.1.2.1.1.99.0 = noSuchObject") !=
        std::string::npos);
  std::string got;
  for (const auto& e : h.events()) {
    CHECK(e.kind == "snmp.varbind");
    CHECK(e.source == "diag");
    CHECK(e.attributes.at("address") == "127.0.0.1");
    got += e.message + "\n";
  }
  std::vector<std::string> get_args = {"snmpget", "-v2c", "-c", "public", "-On", a.peer()};
  get_args.insert(get_args.end(), gets.begin(), gets.end() - 1);
  const std::string expected =
      capture(get_args) + ".1.3.6.1.2.1.1.99.0 = noSuchObject\n" +
      capture({"snmpbulkwalk", "-v2c", "-c", "public", "-On", a.peer(), walk}) +
      capture({"snmpbulkwalk", "-v2c", "-c", "public", "-On", a.peer(), "1.3.6.1.2.1.25.2.3.1.3"});
  CHECK(got == expected);
  auto events = h.events();
  REQUIRE(events.size() >= 4);
  CHECK(events[2].attributes.at("oid") == "1.3.6.1.2.1.1.5.0");
  CHECK(events[2].attributes.at("type") == "STRING");
  CHECK(events[2].attributes.at("value") == "outpost-snmp-test");
  CHECK(events[3].attributes.at("type") == "noSuchObject");
  CHECK(events[3].severity == OUTPOST_SEV_WARNING);
  CHECK(events[4].attributes.at("walk") == walk);
  CHECK(h.find("snmp_up", {{"device", "diag"}}).at(0).value == 1);
  CHECK(h.find("snmp_info").empty());  // no profile was read
  CHECK(h.find("snmp_restarts_total").empty());

  // SNMPv1 and v3 authPriv read the same through the same sessions; v1 names noSuchName.
  h.clear();
  h.poll({{"v1",
           "127.0.0.1",
           {{"port", a.port_text()},
            {"version", "1"},
            {"community", "public"},
            {"get.0", "1.3.6.1.2.1.1.99.0"},
            {"get.1", "1.3.6.1.2.1.1.5.0"}}},
          {"v3",
           "127.0.0.1",
           {{"port", a.port_text()},
            {"version", "3"},
            {"user", "privUser"},
            {"auth_password", "authpass123"},
            {"priv_password", "privpass123"},
            {"walk.0", walk}}}},
         5000);
  INFO(detail_of(h, 1) << " / " << detail_of(h, 2));
  CHECK(status_of(h, 1) == OUTPOST_OK);
  CHECK(status_of(h, 2) == OUTPOST_OK);
  std::string v1, v3;
  for (const auto& e : h.events()) (e.source == "v1" ? v1 : v3) += e.message + "\n";
  CHECK(v1 ==
        ".1.3.6.1.2.1.1.99.0 = error: noSuchName\n.1.3.6.1.2.1.1.5.0 = STRING: "
        "\"outpost-snmp-test\"\n");
  CHECK(v3 == capture({"snmpbulkwalk", "-v2c", "-c", "public", "-On", a.peer(), walk}));

  // Only values the agent does not have: NOT_FOUND. Bad OIDs, or a profile beside them: CONFIG.
  h.clear();
  h.poll({{"none", "127.0.0.1", v2c(a, {{"get.0", "1.3.6.1.2.1.1.99.0"}})},
          {"bad-oid", "127.0.0.1", v2c(a, {{"walk.0", "ifTable"}})},
          {"both", "127.0.0.1", v2c(a, {{"get.0", "1.3.6.1.2.1.1.5.0"}, {"profile", "system"}})}},
         3000);
  CHECK(status_of(h, 1) == OUTPOST_E_NOT_FOUND);
  CHECK(status_of(h, 2) == OUTPOST_E_CONFIG);
  CHECK(detail_of(h, 2) == "walk: not a numeric OID: 'ifTable'");
  CHECK(status_of(h, 3) == OUTPOST_E_CONFIG);
}
