#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <cstdlib>
#include <deque>
#include <mutex>
#include <outpost/testing.hpp>
#include <outpost_lib/http_client.hpp>
#include <string>
#include <thread>
#include <vector>

namespace http = outpost::lib::http;

namespace {

// One request as the server read it.
struct Seen {
  std::string head;  // request line and headers
  std::string body;
};

// A loopback HTTP/1.1 server on a port of its own that answers each request with the next
// scripted answer (a whole response without Content-Length: that is added), keep-alive.
class Server {
 public:
  Server() {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    socklen_t len = sizeof a;
    REQUIRE(::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len) == 0);
    port_ = ntohs(a.sin_port);
    REQUIRE(::listen(fd_, 8) == 0);
    thread_ = std::thread([this] { serve(); });
  }
  ~Server() {
    stop_ = true;
    ::shutdown(fd_, SHUT_RDWR);
    ::close(fd_);
    thread_.join();
  }
  std::string url(const std::string& path = "/write") const {
    return "http://127.0.0.1:" + std::to_string(port_) + path;
  }
  void answer(std::string status_line, std::string headers = {}, std::string body = {}) {
    std::lock_guard g(mu_);
    script_.push_back(std::move(status_line) + "\r\n" + headers +
                      "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body);
  }
  std::vector<Seen> seen() const {
    std::lock_guard g(mu_);
    return seen_;
  }
  int connections() const { return connections_.load(); }

 private:
  void serve() {
    while (!stop_) {
      const int c = ::accept(fd_, nullptr, nullptr);
      if (c < 0) return;
      ++connections_;
      std::string in;
      char buf[4096];
      for (;;) {
        const auto end = in.find("\r\n\r\n");
        if (end != std::string::npos) {
          Seen s;
          s.head = in.substr(0, end + 2);
          std::size_t length = 0;
          const auto cl = lower(s.head).find("content-length:");
          if (cl != std::string::npos) length = std::stoul(s.head.substr(cl + 15));
          if (in.size() >= end + 4 + length) {
            s.body = in.substr(end + 4, length);
            in.erase(0, end + 4 + length);
            std::string out;
            {
              std::lock_guard g(mu_);
              seen_.push_back(s);
              out = script_.empty() ? std::string("HTTP/1.1 204 No Content\r\n\r\n")
                                    : script_.front();
              if (!script_.empty()) script_.pop_front();
            }
            if (::send(c, out.data(), out.size(), MSG_NOSIGNAL) < 0) break;
            continue;
          }
        }
        const ssize_t n = ::recv(c, buf, sizeof buf, 0);
        if (n <= 0) break;
        in.append(buf, static_cast<std::size_t>(n));
      }
      ::close(c);
    }
  }
  static std::string lower(std::string s) {
    for (auto& ch : s) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    return s;
  }

  int fd_ = -1;
  uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<int> connections_{0};
  mutable std::mutex mu_;
  std::deque<std::string> script_;
  std::vector<Seen> seen_;
  std::thread thread_;
};

// A port where nothing listens: bound, never listened on, closed again.
uint16_t closed_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

bool has_line(const std::string& head, const std::string& line) {
  return head.find("\r\n" + line + "\r\n") != std::string::npos;
}

using Pairs = std::vector<std::pair<std::string, std::string>>;

struct Settings {
  outpost::testing::FakeHost fake{nullptr};
  outpost::Host host{fake.api(), reinterpret_cast<outpost_host*>(&fake)};
  std::vector<outpost_kv> kv;
  Pairs pairs;
  Settings(std::initializer_list<std::pair<std::string, std::string>> p) : pairs(p) {
    for (const auto& [k, v] : pairs) kv.push_back({{k.data(), k.size()}, {v.data(), v.size()}});
  }
  outpost::Config config() const { return outpost::Config(kv.data(), kv.size()); }
  http::Options read(const http::Fields& f = {}) { return http::read_options(config(), host, f); }
};

std::string config_error(Settings& s, const http::Fields& f = {}) {
  try {
    s.read(f);
  } catch (const outpost::Error& e) {
    CHECK(e.status() == OUTPOST_E_CONFIG);
    return e.what();
  }
  return "(accepted)";
}

}  // namespace

TEST_CASE("the settings are read under the shared names, secrets resolved", "[http_client]") {
  Settings s({{"ca_file", "ca.pem"},
              {"client_cert", "c.pem"},
              {"client_key", "k.pem"},
              {"client_key_password", "kp"},
              {"bearer_token", "tok"},
              {"proxy", "http://proxy:3128"},
              {"timeout", "1500ms"},
              {"headers.0", "X-Scope-OrgID: tenant-1"},
              {"headers.1", "X-Key: a-${secret:key}-b"}});
  s.fake.set_secret("kp", "passphrase");
  s.fake.set_secret("tok", "T0K");
  s.fake.set_secret("key", "K3Y");
  const http::Options o = s.read();
  CHECK(o.ca_file == "ca.pem");
  CHECK(o.client_key_password == "passphrase");
  CHECK(o.bearer_token == "T0K");
  CHECK(o.proxy == "http://proxy:3128");
  CHECK(o.timeout == std::chrono::milliseconds(1500));
  CHECK(o.connect_timeout == std::chrono::milliseconds(10000));
  CHECK(o.headers == std::vector<std::string>{"X-Scope-OrgID: tenant-1", "X-Key: a-K3Y-b"});
  // The uplink names its bearer token "token".
  Settings u({{"token", "tok"}});
  u.fake.set_secret("tok", "T0K");
  CHECK(u.read(http::Fields{"token", "30s", "10s"}).bearer_token == "T0K");
}

TEST_CASE("settings that cannot work are configuration errors that name the key", "[http_client]") {
  Settings half_tls({{"client_cert", "c.pem"}});
  CHECK(config_error(half_tls) == "client_cert and client_key go together");
  Settings both({{"bearer_token", "t"}, {"basic_auth_user", "u"}, {"basic_auth_password", "p"}});
  both.fake.set_secret("t", "x");
  both.fake.set_secret("p", "y");
  CHECK(config_error(both) == "bearer_token and basic_auth_user exclude each other");
  Settings user_only({{"basic_auth_user", "u"}});
  CHECK(config_error(user_only) == "basic_auth_user and basic_auth_password go together");
  Settings zero({{"timeout", "0s"}});
  CHECK(config_error(zero) == "timeout: must be positive");
  Settings bad_header({{"headers.0", "no colon"}});
  CHECK(config_error(bad_header) == "headers: 'Name: value' expected (got 'no colon')");
  Settings bad_ref({{"headers.0", "X: ${vault:x}"}});
  CHECK(config_error(bad_ref) == "headers: ${vault:x}: ${secret:NAME} or ${env:VAR}");
  CHECK_THROWS_AS(http::check_url("url", "http://x/", false), outpost::Error);
  CHECK_NOTHROW(http::check_url("url", "http://x/", true));
  CHECK_NOTHROW(http::check_url("url", "https://x/", false));
  CHECK_THROWS_AS(http::check_url("url", "ftp://x/", true), outpost::Error);
}

TEST_CASE("a POST carries the body, the headers and the credentials, on one connection",
          "[http_client]") {
  Server server;
  http::Options o;
  o.bearer_token = "T0K";
  o.headers = {"X-Scope-OrgID: tenant-1"};
  o.user_agent = "outpost-test";
  http::Client client(o);
  const std::string body("\x00\x01binary\xff", 9);
  server.answer("HTTP/1.1 200 OK", "", "fine");
  const http::Response r = client.post(server.url(), body, {"Content-Type: application/x-test"});
  REQUIRE(r.ok());
  CHECK(r.status == 200);
  CHECK(r.body == "fine");
  CHECK(r.bytes_sent > body.size());
  CHECK(http::classify(r, 0).outcome == http::Outcome::ok);
  CHECK(client.post(server.url(), "second").status == 204);
  const auto seen = server.seen();
  REQUIRE(seen.size() == 2);
  CHECK(seen[0].body == body);
  CHECK(seen[0].head.rfind("POST /write HTTP/1.1\r\n", 0) == 0);
  CHECK(has_line(seen[0].head, "Authorization: Bearer T0K"));
  CHECK(has_line(seen[0].head, "X-Scope-OrgID: tenant-1"));
  CHECK(has_line(seen[0].head, "Content-Type: application/x-test"));
  CHECK(has_line(seen[0].head, "User-Agent: outpost-test"));
  CHECK(seen[0].head.find("Expect:") == std::string::npos);
  CHECK(seen[1].body == "second");
  CHECK(seen[1].head.find("Content-Type: application/x-test") == std::string::npos);
  CHECK(server.connections() == 1);
}

TEST_CASE("basic authentication", "[http_client]") {
  Server server;
  http::Options o;
  o.basic_user = "writer";
  o.basic_password = "s3cret";
  http::Client client(o);
  REQUIRE(client.post(server.url(), "x").ok());
  // base64("writer:s3cret")
  CHECK(has_line(server.seen().at(0).head, "Authorization: Basic d3JpdGVyOnMzY3JldA=="));
}

TEST_CASE("proxy variables in the environment are ignored unless a proxy is configured",
          "[http_client]") {
  Server server;
  const std::string dead = "http://127.0.0.1:" + std::to_string(closed_port());
  ::setenv("http_proxy", dead.c_str(), 1);
  ::setenv("HTTP_PROXY", dead.c_str(), 1);
  ::setenv("ALL_PROXY", dead.c_str(), 1);
  http::Client direct(http::Options{});
  CHECK(direct.post(server.url(), "x").ok());
  http::Options via;
  via.proxy = dead;
  http::Client proxied(via);
  const http::Response r = proxied.post(server.url(), "x");
  CHECK(r.transport == http::Transport::failed);
  ::unsetenv("http_proxy");
  ::unsetenv("HTTP_PROXY");
  ::unsetenv("ALL_PROXY");
  CHECK(server.seen().size() == 1);
}

TEST_CASE("each answer has its class", "[http_client]") {
  Server server;
  http::Client client(http::Options{});
  auto verdict = [&](const std::string& status, const std::string& headers = {},
                     const std::string& body = {}, const http::Policy& p = {}) {
    server.answer(status, headers, body);
    return http::classify(client.post(server.url(), "x"), 1000, p);
  };
  auto v = verdict("HTTP/1.1 503 Service Unavailable", "Retry-After: 7\r\n");
  CHECK(v.outcome == http::Outcome::retry);
  CHECK(v.status == OUTPOST_E_BUSY);
  CHECK(v.retry_after_s == 7);
  CHECK(v.what == "HTTP 503, Retry-After 7 s");
  v = verdict("HTTP/1.1 429 Too Many Requests");
  CHECK(v.status == OUTPOST_E_BUSY);
  CHECK(v.retry_after_s == 0);
  v = verdict("HTTP/1.1 500 Internal Server Error");
  CHECK(v.outcome == http::Outcome::retry);
  CHECK(v.status == OUTPOST_E_UNAVAILABLE);
  v = verdict("HTTP/1.1 401 Unauthorized");
  CHECK(v.outcome == http::Outcome::operator_action);
  CHECK(v.status == OUTPOST_E_AUTH);
  CHECK(verdict("HTTP/1.1 403 Forbidden").outcome == http::Outcome::operator_action);
  v = verdict("HTTP/1.1 400 Bad Request", "", "out of order sample\n");
  CHECK(v.outcome == http::Outcome::rejected);
  CHECK(v.status == OUTPOST_E_INVALID_ARGUMENT);
  CHECK(v.what == "HTTP 400, the request is dropped: out of order sample");
  CHECK(verdict("HTTP/1.1 413 Payload Too Large").outcome == http::Outcome::rejected);
  // OTLP's rules: 502/504 are busy too, any other status drops the request.
  const http::Policy otlp{{}, {429, 502, 503, 504}, true};
  CHECK(verdict("HTTP/1.1 504 Gateway Timeout", "", "", otlp).status == OUTPOST_E_BUSY);
  CHECK(verdict("HTTP/1.1 500 Internal Server Error", "", "", otlp).outcome ==
        http::Outcome::rejected);
  CHECK(verdict("HTTP/1.1 404 Not Found", "", "", otlp).outcome == http::Outcome::rejected);
  CHECK(verdict("HTTP/1.1 404 Not Found").outcome == http::Outcome::retry);
}

TEST_CASE("no answer is a retry; a receiver that does not speak TLS is not an answer",
          "[http_client]") {
  http::Options o;
  o.connect_timeout = std::chrono::milliseconds(2000);
  http::Client client(o);
  const std::string nobody = "http://127.0.0.1:" + std::to_string(closed_port()) + "/";
  const http::Response r = client.post(nobody, "x");
  CHECK(r.transport == http::Transport::failed);
  CHECK(!r.error.empty());
  const http::Verdict v = http::classify(r, 0);
  CHECK(v.outcome == http::Outcome::retry);
  CHECK(v.status == OUTPOST_E_UNAVAILABLE);
  CHECK(v.what == r.error);
}

TEST_CASE("a wrong CA file is for the operator", "[http_client]") {
  // libcurl checks the CA file before it connects; no server is needed for this.
  http::Options o;
  o.ca_file = "/nonexistent/ca.pem";
  http::Client client(o);
  const http::Response r =
      client.post("https://127.0.0.1:" + std::to_string(closed_port()) + "/", "x");
  INFO(r.error);
  // Depending on libcurl, a missing CA file is found before or after the connect fails.
  CHECK((r.transport == http::Transport::tls || r.transport == http::Transport::failed));
}

TEST_CASE("the reporter says a failure once per state and the recovery once", "[http_client]") {
  outpost::testing::FakeHost fake(nullptr);
  const outpost::Host host(fake.api(), reinterpret_cast<outpost_host*>(&fake));
  http::Reporter rep("remote_write http://x/api/v1/write");
  const http::Verdict down{http::Outcome::retry, OUTPOST_E_UNAVAILABLE, "connection refused", 0};
  const http::Verdict busy{http::Outcome::retry, OUTPOST_E_BUSY, "HTTP 503, Retry-After 3 s", 3};
  for (int i = 0; i < 3; ++i) {
    try {
      rep.fail(host, down);
    } catch (const outpost::Error& e) {
      CHECK(e.status() == OUTPOST_E_UNAVAILABLE);
      CHECK(std::string(e.what()) == "connection refused");
    }
  }
  CHECK_THROWS_AS(rep.fail(host, busy), outpost::Error);
  CHECK(rep.failing());
  rep.delivered(host);
  rep.delivered(host);
  CHECK(!rep.failing());
  const auto errors = fake.errors();
  REQUIRE(errors.size() == 2);
  CHECK(errors[0].second == "remote_write http://x/api/v1/write: connection refused");
  CHECK(errors[1].first == OUTPOST_E_BUSY);
  const auto logs = fake.logs();
  CHECK(std::count(logs.begin(), logs.end(),
                   std::string("remote_write http://x/api/v1/write takes requests again")) == 1);
}

TEST_CASE("a spooled batch's id names its spool and ranges", "[http_client]") {
  outpost::SpoolInfo info;
  info.spool_id = "4f2a";
  info.ranges = {{"icmp", 10, 19}, {"tcp", 3, 3}};
  CHECK(http::batch_id(info) == "4f2a/icmp:10-19/tcp:3-3");
  info.attempt = 5;  // the same id on every attempt
  CHECK(http::batch_id(info) == "4f2a/icmp:10-19/tcp:3-3");
}

TEST_CASE("stats_interval is declared and read only when the sink asks for it", "[http_client]") {
  auto names = [](const std::vector<outpost_field>& fs) {
    std::vector<std::string> out;
    for (const auto& f : fs) out.emplace_back(f.name.ptr, f.name.len);
    return out;
  };
  const auto plain = names(http::config_fields());
  CHECK(std::count(plain.begin(), plain.end(), "stats_interval") == 0);
  const http::Fields with{"bearer_token", "30s", "10s", "60s"};
  const auto counted = names(http::with_config_fields({}, with));
  CHECK(std::count(counted.begin(), counted.end(), "stats_interval") == 1);
  Settings none({});
  CHECK(http::stats_interval_seconds(none.config(), with) == 60);
  CHECK(http::stats_interval_seconds(none.config(), http::Fields{}) == 0);
  Settings fast({{"stats_interval", "500ms"}});
  CHECK(http::stats_interval_seconds(fast.config(), with) == 0.5);
}
