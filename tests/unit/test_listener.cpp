// Core-owned UDP sockets: datagrams from real senders (util-linux logger, a plain socket) reach
// the listener plugin in batches with their source, replies go back on the same socket, and
// nothing is lost at a modest rate.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include "engine/engine.hpp"
#include "test_plugins.hpp"

using namespace outpost::core;
namespace fs = std::filesystem;

namespace {
const PluginRegistry& registry() {
  static PluginRegistry r = [] {
    PluginRegistry x;
    x.load_dirs({OUTPOST_TEST_PLUGINS_DIR, OUTPOST_TEST_PLUGIN_DIR});
    return x;
  }();
  return r;
}

std::vector<std::string> lines(const fs::path& p) {
  std::vector<std::string> out;
  std::ifstream in(p);
  for (std::string l; std::getline(in, l);) out.push_back(l);
  return out;
}

std::size_t count_containing(const std::vector<std::string>& ls, const std::string& needle) {
  std::size_t n = 0;
  for (const auto& l : ls) n += l.find(needle) != std::string::npos;
  return n;
}
}  // namespace

TEST_CASE("datagrams on core-owned sockets reach the listener; replies go back") {
  const fs::path dir = fs::temp_directory_path() / ("outpost-listen-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  auto r = parse_config_text(R"(
engine: {data_dir: )" + dir.string() +
                                 R"(, summary_interval: 0}
sinks:
  out: {plugin: file, path: )" + (dir / "out.jsonl").string() +
                                 R"(}
listeners:
  - {plugin: echo_listener, udp: "127.0.0.1:0", batch: 16}
  - {plugin: echo_listener, udp: "[::1]:0"}
)",
                             "t.yaml");
  INFO((r.errors.empty() ? "" : r.errors[0].str()));
  REQUIRE(r.config);
  Engine engine(registry());
  REQUIRE(engine.start(*r.config));
  const auto ports = engine.listener_ports();
  REQUIRE(ports.size() == 2);
  const uint16_t port4 = ports[0].second, port6 = ports[1].second;
  REQUIRE(port4 != 0);

  // A real sender: util-linux logger over UDP.
  const std::string cmd = "logger -d -n 127.0.0.1 -P " + std::to_string(port4) +
                          " --rfc5424 -t outpost-test 'hello from logger'";
  REQUIRE(std::system(cmd.c_str()) == 0);

  // A plain socket: 500 datagrams, then one that asks for an answer.
  const int fd = ::socket(AF_INET, SOCK_DGRAM, 0);
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(port4);
  to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  for (int i = 0; i < 500; ++i) {
    const std::string m = "msg-" + std::to_string(i);
    ::sendto(fd, m.data(), m.size(), 0, reinterpret_cast<sockaddr*>(&to), sizeof to);
    if (i % 50 == 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  const std::string ask = "ack?42";
  ::sendto(fd, ask.data(), ask.size(), 0, reinterpret_cast<sockaddr*>(&to), sizeof to);
  pollfd pfd{fd, POLLIN, 0};
  REQUIRE(::poll(&pfd, 1, 3000) == 1);
  char buf[64] = {};
  const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
  CHECK(std::string(buf, static_cast<std::size_t>(n)) == "ack!42");
  ::close(fd);

  // IPv6 where the machine has ::1.
  const int fd6 = ::socket(AF_INET6, SOCK_DGRAM, 0);
  sockaddr_in6 to6{};
  to6.sin6_family = AF_INET6;
  to6.sin6_port = htons(port6);
  to6.sin6_addr = in6addr_loopback;
  const bool v6 =
      ::sendto(fd6, "over-v6", 7, 0, reinterpret_cast<sockaddr*>(&to6), sizeof to6) == 7;
  ::close(fd6);

  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  const auto ls = engine.listener_stats();
  CHECK(ls[0].second.datagrams == 502);
  CHECK(ls[0].second.kernel_drops == 0);
  engine.stop();

  const auto out = lines(dir / "out.jsonl");
  CHECK(count_containing(out, "\"kind\":\"datagram\"") == (v6 ? 503u : 502u));
  CHECK(count_containing(out, "hello from logger") == 1);
  CHECK(count_containing(out, "\"message\":\"msg-499\"") == 1);
  CHECK(count_containing(out, "\"source\":\"127.0.0.1\"") == 502);
  if (v6)
    CHECK(count_containing(out, "\"source\":\"::1\"") == 1);
  else
    WARN("no ::1 on this machine: IPv6 listener not checked");
  CHECK(count_containing(out, "outpost_listener_datagrams_total") >= 1);
  fs::remove_all(dir);
}

TEST_CASE("a listener config names a listener plugin and a valid address") {
  auto bad = parse_config_text("listeners:\n  - {plugin: x, udp: \"nohost\"}\n", "t.yaml");
  REQUIRE_FALSE(bad.config);
  CHECK(bad.errors[0].str() ==
        "t.yaml:2:22: listeners[0].udp: expected address:port, got 'nohost'");
  auto r = parse_config_text("listeners:\n  - {plugin: good, udp: \"127.0.0.1:0\"}\n", "t.yaml");
  REQUIRE(r.config);
  auto errors = validate_config(*r.config, registry());
  REQUIRE(errors.size() == 1);
  CHECK(errors[0].message == "plugin instance 'good' is a poller, not a listener");
}
