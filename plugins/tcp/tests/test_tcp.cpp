// The tcp plugin against real listeners on loopback: sockets the test binds itself, socat and
// python's http.server as independent peers, and a network namespace with an nft drop rule for
// the filtered case.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <outpost/testing.hpp>
#include <set>
#include <string>
#include <thread>
#include <vector>

extern char** environ;

namespace {

using outpost::testing::FakeHost;
using Params = std::vector<std::pair<std::string, std::string>>;
using Clock = std::chrono::steady_clock;

const outpost_plugin_descriptor* plugin() {
  static const outpost_plugin_descriptor* d =
      outpost::testing::open_plugin(OUTPOST_TEST_PLUGIN_DIR "/outpost_tcp.so");
  return d;
}

int64_t ms_since(Clock::time_point t0) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0).count();
}

bool make_addr(const std::string& ip, uint16_t port, sockaddr_storage& ss, socklen_t& len) {
  ss = {};
  auto* v4 = reinterpret_cast<sockaddr_in*>(&ss);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&ss);
  if (::inet_pton(AF_INET, ip.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(port);
    len = sizeof(sockaddr_in);
    return true;
  }
  if (::inet_pton(AF_INET6, ip.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(port);
    len = sizeof(sockaddr_in6);
    return true;
  }
  return false;
}

// A socket bound to ip:0. With listen it is an open port served by a thread that accepts and
// then writes a banner and closes, or holds the connection silently; without, a closed port
// that nobody else can take while the test runs.
class Server {
 public:
  enum Mode { kClose, kHold, kNoListen };
  explicit Server(std::string ip = "127.0.0.1", Mode mode = kClose, std::string banner = {})
      : ip_(std::move(ip)), mode_(mode), banner_(std::move(banner)) {
    sockaddr_storage ss{};
    socklen_t len = 0;
    if (!make_addr(ip_, 0, ss, len)) return;
    fd_ = ::socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd_ < 0) return;
    if (::bind(fd_, reinterpret_cast<sockaddr*>(&ss), len) != 0 ||
        ::getsockname(fd_, reinterpret_cast<sockaddr*>(&ss), &len) != 0) {
      close_all();
      return;
    }
    port_ = ntohs(ss.ss_family == AF_INET ? reinterpret_cast<sockaddr_in*>(&ss)->sin_port
                                          : reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port);
    if (mode_ == kNoListen) return;
    if (::listen(fd_, 4096) != 0 || ::pipe2(stop_, O_CLOEXEC) != 0) {
      close_all();
      port_ = 0;
      return;
    }
    thread_ = std::thread([this] { serve(); });
  }
  ~Server() {
    if (thread_.joinable()) {
      [[maybe_unused]] auto n = ::write(stop_[1], "x", 1);
      thread_.join();
    }
    close_all();
  }
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  bool ok() const { return port_ != 0; }
  uint16_t port() const { return port_; }
  std::string port_text() const { return std::to_string(port_); }
  std::size_t accepted() const { return accepted_.load(); }

 private:
  void serve() {
    std::vector<int> held;
    for (;;) {
      pollfd p[2] = {{fd_, POLLIN, 0}, {stop_[0], POLLIN, 0}};
      if (::poll(p, 2, -1) < 0) continue;
      if (p[1].revents != 0) break;
      const int c = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (c < 0) continue;
      ++accepted_;
      if (!banner_.empty()) [[maybe_unused]]
        auto n = ::write(c, banner_.data(), banner_.size());
      if (mode_ == kHold)
        held.push_back(c);
      else
        ::close(c);
    }
    for (int c : held) ::close(c);
  }
  void close_all() {
    for (int* f : {&fd_, &stop_[0], &stop_[1]})
      if (*f >= 0) ::close(std::exchange(*f, -1));
  }

  std::string ip_;
  Mode mode_;
  std::string banner_;
  int fd_ = -1;
  int stop_[2] = {-1, -1};
  uint16_t port_ = 0;
  std::atomic<std::size_t> accepted_{0};
  std::thread thread_;
};

// Starts argv[0] from PATH in its own process group, output to /dev/null (the peers' chatter
// would bury the test report). -1 when it cannot.
pid_t spawn(const std::vector<std::string>& argv) {
  std::vector<char*> args;
  args.reserve(argv.size() + 1);
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  posix_spawnattr_t attr;
  ::posix_spawnattr_init(&attr);
  ::posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP);
  ::posix_spawnattr_setpgroup(&attr, 0);
  posix_spawn_file_actions_t fa;
  ::posix_spawn_file_actions_init(&fa);
  ::posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
  ::posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
  pid_t pid = -1;
  if (::posix_spawnp(&pid, args[0], &fa, &attr, args.data(), environ) != 0) pid = -1;
  ::posix_spawn_file_actions_destroy(&fa);
  ::posix_spawnattr_destroy(&attr);
  return pid;
}

// Runs a command to its end; true when it exits 0.
bool run(const std::vector<std::string>& argv) {
  const pid_t pid = spawn(argv);
  int status = 0;
  return pid > 0 && ::waitpid(pid, &status, 0) == pid && WIFEXITED(status) &&
         WEXITSTATUS(status) == 0;
}

// A peer process; its own process group, so socat's forked children go with it.
class Child {
 public:
  explicit Child(const std::vector<std::string>& argv) : pid_(spawn(argv)) {}
  ~Child() {
    if (pid_ <= 0) return;
    ::kill(-pid_, SIGTERM);
    for (int i = 0; i < 50; ++i) {
      if (::waitpid(pid_, nullptr, WNOHANG) == pid_) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    ::kill(-pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
  }
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;
  bool ok() const { return pid_ > 0; }

 private:
  pid_t pid_ = -1;
};

// A port that was free a moment ago, for peers that bind their own.
uint16_t free_port() {
  Server s("127.0.0.1", Server::kNoListen);
  return s.port();
}

bool wait_listening(const std::string& ip, uint16_t port, int timeout_ms) {
  const auto t0 = Clock::now();
  while (ms_since(t0) < timeout_ms) {
    sockaddr_storage ss{};
    socklen_t len = 0;
    make_addr(ip, port, ss, len);
    const int fd = ::socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    const bool up = ::connect(fd, reinterpret_cast<sockaddr*>(&ss), len) == 0;
    ::close(fd);
    if (up) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return false;
}

bool have(const std::string& tool) { return run({"sh", "-c", "command -v " + tool}); }

FakeHost::TargetSpec target(std::string address, Params params, std::string device = "dev") {
  return {std::move(device), std::move(address), std::move(params)};
}

struct Started {
  FakeHost host{plugin()};
  explicit Started(const Params& cfg = {}) {
    REQUIRE(host.create(cfg) == OUTPOST_OK);
    REQUIRE(host.start() == OUTPOST_OK);
  }
  ~Started() { host.stop(); }
};

outpost::testing::RecordedCompletion only(const FakeHost& h) {
  auto c = h.completions();
  REQUIRE(c.size() == 1);
  return c.front();
}

}  // namespace

TEST_CASE("descriptor: a poller with its keys", "[tcp]") {
  const auto* d = plugin();
  REQUIRE(d != nullptr);
  CHECK(outpost::testing::str(d->name) == "tcp");
  CHECK((d->kinds & OUTPOST_KIND_POLLER) != 0);
  std::map<std::string, outpost_field> tf;
  for (std::size_t i = 0; i < d->target_field_count; ++i)
    tf[outpost::testing::str(d->target_fields[i].name)] = d->target_fields[i];
  REQUIRE(tf.count("port") == 1);
  CHECK(tf["port"].type == OUTPOST_FIELD_INT);
  CHECK((tf["port"].flags & OUTPOST_FIELD_REQUIRED) != 0);
  CHECK(tf["connect_timeout"].type == OUTPOST_FIELD_DURATION);
  CHECK(tf.count("send") == 1);
  CHECK(tf.count("expect") == 1);
  std::set<std::string> cf;
  for (std::size_t i = 0; i < d->config_field_count; ++i)
    cf.insert(outpost::testing::str(d->config_fields[i].name));
  CHECK(cf.count("max_concurrent") == 1);
  CHECK(cf.count("source_address") == 1);
}

TEST_CASE("config of the wrong type is rejected at create", "[tcp]") {
  for (const Params& bad :
       {Params{{"max_concurrent", "many"}}, Params{{"max_concurrent", "0"}},
        Params{{"connect_timeout", "soon"}}, Params{{"source_address", "nowhere"}},
        Params{{"dns_timeout", "soon"}}, Params{{"dns_servers.0", "a,b"}}}) {
    FakeHost h(plugin());
    CHECK(h.create(bad) == OUTPOST_E_CONFIG);
    CHECK(h.instance() == nullptr);
    CHECK_FALSE(h.errors().empty());
  }
  FakeHost h(plugin());
  CHECK(h.create({{"max_concurrent", "10"},
                  {"connect_timeout", "2s"},
                  {"source_address", "127.0.0.1"}}) == OUTPOST_OK);
}

TEST_CASE("lifecycle: destroy without start, stop twice, restart, poll when stopped", "[tcp]") {
  {
    FakeHost h(plugin());
    REQUIRE(h.create() == OUTPOST_OK);
    h.destroy();
  }
  Server open;
  REQUIRE(open.ok());
  FakeHost h(plugin());
  REQUIRE(h.create() == OUTPOST_OK);
  h.poll({target("127.0.0.1", {{"port", open.port_text()}})}, 1000);
  CHECK(only(h).status == OUTPOST_E_UNAVAILABLE);  // not started: still reported
  h.clear();
  for (int round = 0; round < 2; ++round) {
    REQUIRE(h.start() == OUTPOST_OK);
    REQUIRE(h.start() == OUTPOST_OK);
    h.poll({target("127.0.0.1", {{"port", open.port_text()}})}, 2000);
    CHECK(only(h).status == OUTPOST_OK);
    h.clear();
    CHECK(h.stop() == OUTPOST_OK);
    CHECK(h.stop() == OUTPOST_OK);
  }
}

TEST_CASE("open port: up with connect time and labels", "[tcp]") {
  Server open;
  REQUIRE(open.ok());
  Started s;
  s.host.poll({target("127.0.0.1", {{"port", open.port_text()}}, "web-1")}, 2000);
  const auto c = only(s.host);
  CHECK(c.status == OUTPOST_OK);
  CHECK(c.target_id == 1);
  const std::map<std::string, std::string> labels{
      {"device", "web-1"}, {"address", "127.0.0.1"}, {"port", open.port_text()}};
  const auto up = s.host.find("tcp_up", labels);
  REQUIRE(up.size() == 1);
  CHECK(up[0].value == 1.0);
  const auto ct = s.host.find("tcp_connect_seconds", labels);
  REQUIRE(ct.size() == 1);
  CHECK(ct[0].value >= 0.0);
  CHECK(ct[0].value < 1.0);
  CHECK(s.host.find("tcp_response_seconds").empty());
}

TEST_CASE("closed port: refused, unavailable, fast", "[tcp]") {
  Server closed("127.0.0.1", Server::kNoListen);
  REQUIRE(closed.ok());
  Started s;
  const auto t0 = Clock::now();
  s.host.poll({target("127.0.0.1", {{"port", closed.port_text()}, {"connect_timeout", "5s"}})},
              6000);
  CHECK(ms_since(t0) < 1000);
  const auto c = only(s.host);
  CHECK(c.status == OUTPOST_E_UNAVAILABLE);
  CHECK(c.detail == "connection refused");
  const auto up = s.host.find("tcp_up");
  REQUIRE(up.size() == 1);
  CHECK(up[0].value == 0.0);
  CHECK(s.host.find("tcp_connect_seconds").empty());
}

TEST_CASE("bad port values are configuration errors", "[tcp]") {
  Started s;
  s.host.poll({target("127.0.0.1", {{"port", "0"}}), target("127.0.0.1", {{"port", "70000"}}),
               target("127.0.0.1", {{"port", "ssh"}}), target("127.0.0.1", {}),
               target("127.0.0.1", {{"port", "22"}, {"connect_timeout", "never"}})},
              2000);
  const auto cs = s.host.completions();
  REQUIRE(cs.size() == 5);
  for (const auto& c : cs) {
    INFO(c.target_id << ": " << c.detail);
    CHECK(c.status == OUTPOST_E_CONFIG);
    CHECK_FALSE(c.detail.empty());
  }
  CHECK(s.host.metrics().empty());
}

TEST_CASE("host names: unknown is not found, localhost resolves", "[tcp]") {
  Server open;
  REQUIRE(open.ok());
  Started s;
  s.host.poll({target("no-such-host.invalid", {{"port", "80"}}),
               target("localhost", {{"port", open.port_text()}}), target("", {{"port", "80"}})},
              8000);
  std::map<uint64_t, outpost::testing::RecordedCompletion> by_id;
  for (const auto& c : s.host.completions()) by_id[c.target_id] = c;
  REQUIRE(by_id.size() == 3);
  CHECK(by_id[1].status == OUTPOST_E_NOT_FOUND);
  CHECK(by_id[1].detail.find("no-such-host.invalid") != std::string::npos);
  // A target the runtime ended itself still says it is down.
  const auto down = s.host.find("tcp_up", {{"address", "no-such-host.invalid"}});
  REQUIRE(down.size() == 1);
  CHECK(down[0].value == 0);
  CHECK(by_id[2].status == OUTPOST_OK);
  CHECK(by_id[3].status == OUTPOST_E_NOT_FOUND);
}

TEST_CASE("send/expect against socat serving an SSH-style banner", "[tcp][peer]") {
  if (!have("socat")) {
    WARN("socat not installed: skipped");
    return;
  }
  const uint16_t port = free_port();
  Child socat({"socat", "TCP-LISTEN:" + std::to_string(port) + ",bind=127.0.0.1,reuseaddr,fork",
               "EXEC:printf SSH-2.0-test\\r\\n"});
  REQUIRE(socat.ok());
  REQUIRE(wait_listening("127.0.0.1", port, 5000));
  Started s;
  const std::string p = std::to_string(port);
  s.host.poll({target("127.0.0.1", {{"port", p}, {"expect", "SSH-"}}),
               target("127.0.0.1", {{"port", p}, {"expect", "SSH-2.0-test\\r\\n"}}),
               target("127.0.0.1", {{"port", p}, {"expect", "HTTP/"}})},
              4000);
  std::map<uint64_t, outpost::testing::RecordedCompletion> by_id;
  for (const auto& c : s.host.completions()) by_id[c.target_id] = c;
  REQUIRE(by_id.size() == 3);
  CHECK(by_id[1].status == OUTPOST_OK);
  CHECK(by_id[2].status == OUTPOST_OK);
  CHECK(by_id[3].status == OUTPOST_E_UNAVAILABLE);
  CHECK(by_id[3].detail.rfind("expect 'HTTP/' not found", 0) == 0);
  CHECK(s.host.find("tcp_response_seconds").size() == 2);
  CHECK(s.host.find("tcp_connect_seconds").size() == 3);  // connected, even when expect failed
  const auto up = s.host.find("tcp_up");
  REQUIRE(up.size() == 3);
  double ups = 0;
  for (const auto& m : up) ups += m.value;
  CHECK(ups == 2.0);
}

TEST_CASE("send/expect against python's http.server", "[tcp][peer]") {
  const std::string py =
      std::filesystem::exists("/usr/bin/python3") ? "/usr/bin/python3" : "python3";
  if (py == "python3" && !have("python3")) {
    WARN("python3 not installed: skipped");
    return;
  }
  const auto dir =
      std::filesystem::temp_directory_path() / ("outpost_tcp_http_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  std::ofstream(dir / "index.html") << "<p>outpost</p>\n";
  const uint16_t port = free_port();
  {
    Child http({py, "-m", "http.server", std::to_string(port), "--bind", "127.0.0.1", "--directory",
                dir.string()});
    REQUIRE(http.ok());
    REQUIRE(wait_listening("127.0.0.1", port, 15000));
    Started s;
    const std::string p = std::to_string(port);
    s.host.poll(
        {target("127.0.0.1",
                {{"port", p}, {"send", "GET / HTTP/1.0\\r\\n\\r\\n"}, {"expect", "HTTP/1.0 200"}}),
         target("127.0.0.1", {{"port", p},
                              {"send", "GET /missing HTTP/1.0\\r\\n\\r\\n"},
                              {"expect", "HTTP/1.0 200"}}),
         target(
             "127.0.0.1",
             {{"port", p}, {"send", "GET / HTTP/1.0\\r\\n\\r\\n"}, {"expect", "<p>outpost</p>"}})},
        5000);
    std::map<uint64_t, outpost::testing::RecordedCompletion> by_id;
    for (const auto& c : s.host.completions()) by_id[c.target_id] = c;
    REQUIRE(by_id.size() == 3);
    CHECK(by_id[1].status == OUTPOST_OK);
    CHECK(by_id[2].status == OUTPOST_E_UNAVAILABLE);  // 404: the mismatch is the answer
    CHECK(by_id[2].detail.find("expect 'HTTP/1.0 200' not found") != std::string::npos);
    CHECK(by_id[3].status == OUTPOST_OK);  // body read past the headers
    CHECK(s.host.find("tcp_response_seconds").size() == 2);
  }
  std::filesystem::remove_all(dir);
}

TEST_CASE("a silent peer: expect times out, send alone succeeds", "[tcp]") {
  Server silent("127.0.0.1", Server::kHold);
  REQUIRE(silent.ok());
  Started s;
  const auto t0 = Clock::now();
  s.host.poll(
      {target("127.0.0.1",
              {{"port", silent.port_text()}, {"connect_timeout", "300ms"}, {"expect", "220 "}}),
       target("127.0.0.1", {{"port", silent.port_text()}, {"send", "PING\\r\\n"}})},
      3000);
  CHECK(ms_since(t0) < 2000);
  std::map<uint64_t, outpost::testing::RecordedCompletion> by_id;
  for (const auto& c : s.host.completions()) by_id[c.target_id] = c;
  REQUIRE(by_id.size() == 2);
  CHECK(by_id[1].status == OUTPOST_E_TIMEOUT);
  CHECK(by_id[1].detail == "timed out after 300ms waiting for '220 '");
  CHECK(by_id[2].status == OUTPOST_OK);
  CHECK(s.host.find("tcp_connect_seconds").size() == 2);
}

TEST_CASE("targets beyond max_concurrent wait; the deadline still bounds them", "[tcp]") {
  Server silent("127.0.0.1", Server::kHold);
  REQUIRE(silent.ok());
  Started s(Params{{"max_concurrent", "1"}});
  const Params p{{"port", silent.port_text()}, {"expect", "never"}, {"connect_timeout", "10s"}};
  const auto t0 = Clock::now();
  s.host.poll({target("127.0.0.1", p), target("127.0.0.1", p)}, 600);
  CHECK(ms_since(t0) < 600);
  std::map<uint64_t, outpost::testing::RecordedCompletion> by_id;
  for (const auto& c : s.host.completions()) by_id[c.target_id] = c;
  REQUIRE(by_id.size() == 2);
  CHECK(by_id[1].status == OUTPOST_E_TIMEOUT);
  CHECK(by_id[1].detail.find("waiting for 'never'") != std::string::npos);
  CHECK(by_id[2].status == OUTPOST_E_OVERLOADED);  // never attempted: not the device's failure
  CHECK(by_id[2].detail == "no slot free before the deadline (max_concurrent 1)");
  CHECK(silent.accepted() <= 1);
}

TEST_CASE("500 targets in one poll, open and closed on several 127.x addresses", "[tcp][scale]") {
  std::vector<std::unique_ptr<Server>> open, closed;
  for (const char* ip : {"127.0.0.1", "127.0.0.2", "127.0.0.3"}) {
    open.push_back(std::make_unique<Server>(ip));
    closed.push_back(std::make_unique<Server>(ip, Server::kNoListen));
    REQUIRE(open.back()->ok());
    REQUIRE(closed.back()->ok());
  }
  const std::vector<std::string> ips{"127.0.0.1", "127.0.0.2", "127.0.0.3"};
  std::vector<FakeHost::TargetSpec> targets;
  std::vector<bool> want_up;
  for (int i = 0; i < 500; ++i) {
    const auto k = static_cast<std::size_t>(i % 3);
    const bool up = i % 5 < 3;  // 60% open
    targets.push_back(target(ips[k], {{"port", (up ? open : closed)[k]->port_text()}},
                             "dev-" + std::to_string(i)));
    want_up.push_back(up);
  }
  // A few closed targets on addresses where nothing at all is bound.
  for (int i = 0; i < 10; ++i) {
    targets.push_back(target("127.0.1." + std::to_string(10 + i), {{"port", open[0]->port_text()}},
                             "dev-x" + std::to_string(i)));
    want_up.push_back(false);
  }
  Started s(Params{{"max_concurrent", "64"}});
  const auto t0 = Clock::now();
  s.host.poll(targets, 10000);
  const auto elapsed = ms_since(t0);
  INFO("elapsed " << elapsed << " ms");
  CHECK(elapsed < 10000);
  const auto cs = s.host.completions();
  REQUIRE(cs.size() == targets.size());
  std::set<uint64_t> ids;
  for (const auto& c : cs) {
    ids.insert(c.target_id);
    INFO("target " << c.target_id << ": " << c.detail);
    CHECK(c.status == (want_up[c.target_id - 1] ? OUTPOST_OK : OUTPOST_E_UNAVAILABLE));
  }
  CHECK(ids.size() == targets.size());
  const auto up = s.host.find("tcp_up");
  REQUIRE(up.size() == targets.size());
  for (const auto& m : up) {
    const std::string& dev = m.labels.at("device");
    const auto it = std::find_if(targets.begin(), targets.end(),
                                 [&](const auto& t) { return t.device == dev; });
    REQUIRE(it != targets.end());
    CHECK(m.value == (want_up[static_cast<std::size_t>(it - targets.begin())] ? 1.0 : 0.0));
    CHECK(m.labels.at("address") == it->address);
  }
  // The kernel completes handshakes before the servers' threads accept: give them a moment.
  std::size_t accepted = 0;
  for (const auto t1 = Clock::now(); accepted < 300 && ms_since(t1) < 3000;) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    accepted = 0;
    for (const auto& o : open) accepted += o->accepted();
  }
  CHECK(accepted == 300);
}

TEST_CASE("IPv6 loopback", "[tcp][ipv6]") {
  Server open("::1");
  Server closed("::1", Server::kNoListen);
  if (!open.ok() || !closed.ok()) {
    WARN("no IPv6 loopback here: skipped");
    return;
  }
  Started s;
  s.host.poll(
      {target("::1", {{"port", open.port_text()}}), target("[::1]", {{"port", open.port_text()}}),
       target("::1", {{"port", closed.port_text()}})},
      2000);
  std::map<uint64_t, outpost::testing::RecordedCompletion> by_id;
  for (const auto& c : s.host.completions()) by_id[c.target_id] = c;
  REQUIRE(by_id.size() == 3);
  CHECK(by_id[1].status == OUTPOST_OK);
  CHECK(by_id[2].status == OUTPOST_OK);
  CHECK(by_id[3].status == OUTPOST_E_UNAVAILABLE);
  CHECK(s.host.find("tcp_up", {{"address", "::1"}, {"port", open.port_text()}}).size() == 1);
}

TEST_CASE("device tags become labels; stop reports targets still in flight", "[tcp]") {
  Server silent("127.0.0.1", Server::kHold);
  Server open;
  REQUIRE(silent.ok());
  REQUIRE(open.ok());
  FakeHost h(plugin());
  REQUIRE(h.create() == OUTPOST_OK);
  REQUIRE(h.start() == OUTPOST_OK);
  const std::string po = open.port_text(), ps = silent.port_text();
  const std::string dev = "core-sw", addr = "127.0.0.1", kp = "port", kx = "expect", x = "never";
  const std::string ksite = "site", vsite = "lab", krole = "role", vrole = "switch",
                    kdev = "device";
  const outpost_kv params_open[] = {{{kp.data(), kp.size()}, {po.data(), po.size()}}};
  const outpost_kv params_silent[] = {{{kp.data(), kp.size()}, {ps.data(), ps.size()}},
                                      {{kx.data(), kx.size()}, {x.data(), x.size()}}};
  // A tag named like one of the plugin's own labels must not override it.
  const outpost_kv tags[] = {{{ksite.data(), ksite.size()}, {vsite.data(), vsite.size()}},
                             {{krole.data(), krole.size()}, {vrole.data(), vrole.size()}},
                             {{kdev.data(), kdev.size()}, {vrole.data(), vrole.size()}}};
  outpost_target ts[2]{};
  for (auto& t : ts) {
    t.device = {dev.data(), dev.size()};
    t.address = {addr.data(), addr.size()};
    t.tags = tags;
    t.tag_count = 3;
  }
  ts[0].id = 7;
  ts[0].params = params_open;
  ts[0].param_count = 1;
  ts[1].id = 8;
  ts[1].params = params_silent;
  ts[1].param_count = 2;
  outpost_poll_request r{};
  r.struct_size = sizeof r;
  r.target_size = sizeof(outpost_target);
  r.poll_id = 4242;
  r.deadline_ns = FakeHost::mono() + 60'000'000'000;
  r.targets = ts;
  r.target_count = 2;
  REQUIRE(h.descriptor()->poll(h.instance(), &r) == OUTPOST_OK);
  const auto t0 = Clock::now();
  while (h.completions().empty() && ms_since(t0) < 3000)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  auto cs = h.completions();
  REQUIRE(cs.size() == 1);  // the silent one waits for its expect
  CHECK(cs[0].target_id == 7);
  const auto up = h.find("tcp_up", {{"device", "core-sw"}, {"site", "lab"}, {"role", "switch"}});
  REQUIRE(up.size() == 1);
  CHECK(up[0].labels.at("port") == po);
  REQUIRE(h.stop() == OUTPOST_OK);
  cs = h.completions();
  REQUIRE(cs.size() == 2);
  CHECK(cs[1].target_id == 8);
  CHECK(cs[1].poll_id == 4242);
  CHECK(cs[1].status == OUTPOST_E_UNAVAILABLE);
  const auto after = h.metrics().size();
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  CHECK(h.metrics().size() == after);  // nothing emitted after stop returned
}

namespace {

// Runs a poll with the plugin's threads inside `ns`: a thread joins the namespace before it
// creates and starts the instance, and the threads the plugin starts inherit it.
struct NetnsOutcome {
  std::string error;
  std::vector<outpost::testing::RecordedCompletion> completions;
  std::vector<outpost::testing::RecordedMetric> metrics;
  int64_t elapsed_ms = 0;
};

NetnsOutcome poll_in_netns(const std::string& ns, const Params& cfg,
                           const std::vector<FakeHost::TargetSpec>& targets, int deadline_ms) {
  NetnsOutcome out;
  std::thread t([&] {
    try {
      const int fd = ::open(("/run/netns/" + ns).c_str(), O_RDONLY | O_CLOEXEC);
      if (fd < 0 || ::setns(fd, CLONE_NEWNET) != 0) {
        out.error = "setns failed";
        if (fd >= 0) ::close(fd);
        return;
      }
      ::close(fd);
      FakeHost h(plugin());
      if (h.create(cfg) != OUTPOST_OK || h.start() != OUTPOST_OK) {
        out.error = "create/start failed";
        return;
      }
      const auto t0 = Clock::now();
      h.poll(targets, deadline_ms);
      out.elapsed_ms = ms_since(t0);
      h.stop();
      out.completions = h.completions();
      out.metrics = h.metrics();
    } catch (const std::exception& e) {
      out.error = e.what();
    }
  });
  t.join();
  return out;
}

class Netns {
 public:
  Netns() : name_("outpost_tcp_" + std::to_string(::getpid())) {
    ok_ = ::run({"ip", "netns", "add", name_});
  }
  ~Netns() {
    if (ok_) ::run({"ip", "netns", "del", name_});
  }
  Netns(const Netns&) = delete;
  Netns& operator=(const Netns&) = delete;
  bool ok() const { return ok_; }
  const std::string& name() const { return name_; }
  bool run(const std::string& cmd) const {
    return ::run({"ip", "netns", "exec", name_, "sh", "-c", cmd});
  }

 private:
  std::string name_;
  bool ok_ = false;
};

}  // namespace

TEST_CASE("filtered port in a namespace: timeout reported before the deadline", "[tcp][netns]") {
  if (::geteuid() != 0) {
    WARN("not root: network namespace case skipped");
    return;
  }
  if (!have("nft") || !have("ip")) {
    WARN("nft or ip missing (packages nftables, iproute2): skipped");
    return;
  }
  Netns ns;
  if (!ns.ok()) {
    WARN("cannot create a network namespace here: skipped");
    return;
  }
  // Inside the namespace only: incoming SYNs to 7777 vanish, as behind a filtering firewall.
  REQUIRE(
      ns.run("ip link set lo up && nft add table inet outpost_t && "
             "nft add chain inet outpost_t in \"{ type filter hook input priority 0; }\" && "
             "nft add rule inet outpost_t in tcp dport 7777 drop"));
  const auto out = poll_in_netns(
      ns.name(), {{"connect_timeout", "30s"}},
      {target("127.0.0.1", {{"port", "7777"}, {"connect_timeout", "700ms"}}),  // its own timeout
       target("127.0.0.1", {{"port", "7777"}}),                                // the deadline's
       target("127.0.0.1", {{"port", "7778"}})},  // closed, not filtered
      2000);
  REQUIRE(out.error.empty());
  INFO("elapsed " << out.elapsed_ms << " ms");
  CHECK(out.elapsed_ms < 2000);   // all reported before the deadline
  CHECK(out.elapsed_ms >= 1500);  // ... but not long before: the poll's margin is small
  std::map<uint64_t, outpost::testing::RecordedCompletion> by_id;
  for (const auto& c : out.completions) by_id[c.target_id] = c;
  REQUIRE(by_id.size() == 3);
  CHECK(by_id[1].status == OUTPOST_E_TIMEOUT);
  CHECK(by_id[1].detail == "timed out after 700ms");
  CHECK(by_id[2].status == OUTPOST_E_TIMEOUT);
  CHECK(by_id[2].detail.rfind("timed out after ", 0) == 0);
  CHECK(by_id[3].status == OUTPOST_E_UNAVAILABLE);
  CHECK(by_id[3].detail == "connection refused");
  std::size_t up = 0;
  for (const auto& m : out.metrics) up += m.name == "tcp_up";
  CHECK(up == 3);
}
