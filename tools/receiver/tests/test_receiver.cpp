// outpost-receiver end to end: bodies made by the Encoder, POSTed by curl over mutual TLS (a CA
// and certificates made by openssl for this run), the --out lines, duplicates, a restart with
// and without --state, refusals and the fault script.
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <bit>
#include <catch2/catch.hpp>
#include <chrono>
#include <cmath>
#include <fstream>
#include <outpost_lib/uplink_wire.hpp>
#include <sstream>

#include "../../../sdk/jsonl/testing/sink_testing.hpp"

using namespace outpost::lib::wire;
using sink_testing::quote;
using sink_testing::run;
using sink_testing::TempDir;

namespace {

// The receiver as a child process; its port from the first line it prints.
class Receiver {
 public:
  explicit Receiver(std::vector<std::string> args, const std::string& err_file) {
    int out[2];
    REQUIRE(::pipe(out) == 0);
    pid_ = ::fork();
    REQUIRE(pid_ >= 0);
    if (pid_ == 0) {
      ::dup2(out[1], 1);
      std::FILE* err = std::fopen(err_file.c_str(), "a");
      if (err != nullptr) ::dup2(fileno(err), 2);
      std::vector<char*> argv{const_cast<char*>(OUTPOST_RECEIVER_BINARY)};
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      ::execv(argv[0], argv.data());
      ::_exit(127);
    }
    ::close(out[1]);
    std::string line;
    pollfd p{out[0], POLLIN, 0};
    while (line.find('\n') == std::string::npos && ::poll(&p, 1, 5000) > 0) {
      char c[256];
      const ssize_t n = ::read(out[0], c, sizeof c);
      if (n <= 0) break;
      line.append(c, static_cast<std::size_t>(n));
    }
    ::close(out[0]);
    INFO("first line: " << line);
    REQUIRE(line.rfind("listening 127.0.0.1:", 0) == 0);
    port_ = std::stoi(line.substr(20));
  }
  ~Receiver() {
    ::kill(pid_, SIGTERM);
    int st = 0;
    ::waitpid(pid_, &st, 0);
  }
  int port() const { return port_; }

 private:
  pid_t pid_ = -1;
  int port_ = 0;
};

struct Answer {
  int curl_status = 0;
  int code = 0;
  std::string headers, body;
};

class Fixture {
 public:
  Fixture() {
    const std::string d = quote(dir.path().string());
    // A CA, a server certificate for 127.0.0.1 and a client certificate, all signed by the CA.
    const std::string script =
        "cd " + d +
        " && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
        "-keyout ca.key -out ca.pem -days 2 -subj /CN=outpost-test-ca"
        " && printf 'subjectAltName=IP:127.0.0.1\\n' > san.ext"
        " && for n in server client; do"
        " openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout $n.key"
        " -out $n.csr -subj /CN=$n"
        " && openssl x509 -req -in $n.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2"
        " -extfile san.ext -out $n.pem || exit 1; done";
    const auto [st, out] = run("(" + script + ") >/dev/null 2>&1");
    REQUIRE(st == 0);
  }
  std::string path(const std::string& name) const { return dir / name; }
  std::vector<std::string> tls_args() const {
    return {"--cert",      path("server.pem"), "--key", path("server.key"),
            "--client-ca", path("ca.pem"),     "--out", path("out.jsonl")};
  }
  // POSTs body (or GETs when method is GET) with curl; extra: more curl arguments.
  Answer send(int port, const std::string& body, bool tls = true, const std::string& extra = "",
              const std::string& target = "/v1/batches") {
    { std::ofstream(path("body.bin"), std::ios::binary) << body; }
    std::string cmd = "curl -sS --max-time 20 -o " + quote(path("resp")) + " -D " +
                      quote(path("hdrs")) + " -w '%{http_code}' ";
    if (tls) {
      cmd += "--cacert " + quote(path("ca.pem")) + " --cert " + quote(path("client.pem")) +
             " --key " + quote(path("client.key")) + " https";
    } else {
      cmd += "http";
    }
    cmd += "://127.0.0.1:" + std::to_string(port) + target + " " + extra;
    if (extra.find("-X GET") == std::string::npos)
      cmd += " -H 'Content-Type: application/vnd.outpost.batch' --data-binary @" +
             quote(path("body.bin"));
    std::remove(path("resp").c_str());
    std::remove(path("hdrs").c_str());
    const auto [st, out] = run(cmd + " 2>/dev/null");
    Answer a;
    a.curl_status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    a.code = out.empty() ? 0 : std::atoi(out.c_str());
    std::ifstream h(path("hdrs")), b(path("resp"));
    std::stringstream hs, bs;
    hs << h.rdbuf();
    bs << b.rdbuf();
    a.headers = hs.str();
    a.body = bs.str();
    return a;
  }
  std::vector<std::string> out_lines() const {
    std::ifstream in(path("out.jsonl"));
    std::vector<std::string> lines;
    for (std::string l; std::getline(in, l);) lines.push_back(l);
    return lines;
  }
  TempDir dir;
};

outpost::SpoolInfo spool(std::vector<outpost::SpoolRange> ranges) {
  outpost::SpoolInfo info;
  info.spool_id = "spool-1";
  info.ranges = std::move(ranges);
  return info;
}

// Three metrics (one a NaN with a payload, one -0.0), an event and an IPv6 flow.
sink_testing::BatchBuilder sample_batch(double counter) {
  sink_testing::BatchBuilder b;
  b.metric("ifHCInOctets", {{"device", "gw"}, {"ifName", "eth0"}}, counter,
           1'700'000'000'000'000'000, OUTPOST_METRIC_COUNTER);
  b.metric("odd", {{"device", "gw"}}, std::bit_cast<double>(0x7FF8000000000123ull),
           1'700'000'000'000'000'001);
  b.metric("zero", {}, -0.0, 1'700'000'000'000'000'002);
  b.event("gw", "availability", "down \"quoted\"", 4, {{"reason", "timeout"}}, 5);
  outpost_flow f{};
  f.family = 6;
  f.src_addr[0] = 0x20;
  f.src_addr[1] = 0x01;
  f.src_addr[15] = 1;
  f.src_port = 443;
  f.bytes = 18446744073709551615ull;
  f.packets = 3;
  b.flow(f);
  return b;
}

bool contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

}  // namespace

TEST_CASE("receiver over mutual TLS: accept, write exactly, de-duplicate, restart") {
  Fixture fx;
  Encoder enc("branch-1");
  const auto b1 = sample_batch(1e12);
  const std::string body1 = enc.encode(b1.batch(), spool({{"snmp", 1, 5}}));
  {
    Receiver rcv(fx.tls_args(), fx.path("rcv.err"));
    const Answer a = fx.send(rcv.port(), body1);
    INFO(a.headers << a.body);
    REQUIRE(a.code == 200);
    REQUIRE(contains(a.body, "\"metrics\":3,\"events\":1,\"flows\":1,\"new_series\":3"));
    enc.commit();

    const auto lines = fx.out_lines();
    REQUIRE(lines.size() == 5);
    CHECK(lines[0] ==
          "{\"type\":\"metric\",\"engine\":\"branch-1\",\"name\":\"ifHCInOctets\",\"labels\":{"
          "\"device\":\"gw\",\"ifName\":\"eth0\"},\"value\":1e+12,\"value_bits\":"
          "\"426d1a94a2000000\",\"time_ns\":1700000000000000000,\"kind\":\"counter\"}");
    CHECK(contains(lines[1], "\"value\":\"NaN\",\"value_bits\":\"7ff8000000000123\""));
    CHECK(contains(lines[2], "\"value\":-0,\"value_bits\":\"8000000000000000\""));
    CHECK(contains(lines[3],
                   "\"message\":\"down \\\"quoted\\\"\",\"attributes\":{\"reason\":"
                   "\"timeout\"}"));
    CHECK(contains(lines[4],
                   "\"family\":6,\"exporter_family\":0,\"exporter\":\"::\",\"src\":"
                   "\"2001::1\",\"dst\":\"::\",\"src_port\":443"));
    CHECK(contains(lines[4], "\"bytes\":18446744073709551615,\"packets\":3"));

    SECTION("the same body again is a duplicate: 200, X-Outpost-Duplicate, nothing written") {
      const Answer d = fx.send(rcv.port(), body1);
      REQUIRE(d.code == 200);
      REQUIRE(contains(d.headers, "X-Outpost-Duplicate: 1"));
      REQUIRE(fx.out_lines().size() == 5);
      const Answer s = fx.send(rcv.port(), "", true, "-X GET", "/v1/stats");
      REQUIRE(s.code == 200);
      REQUIRE(contains(s.body, "\"batches\":1,\"duplicates\":1"));
      REQUIRE(contains(s.body, "\"items\":{\"metric\":3,\"event\":1,\"flow\":1}"));
    }
    SECTION("no client certificate: no TLS session, nothing accepted") {
      const auto [st, out] = run(
          "curl -sS --max-time 10 --cacert " + quote(fx.path("ca.pem")) +
          " -H 'Content-Type: application/vnd.outpost.batch' --data-binary x https://127.0.0.1:" +
          std::to_string(rcv.port()) + "/v1/batches 2>&1");
      REQUIRE(st != 0);
    }
    SECTION("refusals: other path, malformed, chunked, wrong type") {
      REQUIRE(fx.send(rcv.port(), body1, true, "", "/other").code == 404);
      const Answer bad = fx.send(rcv.port(), body1.substr(0, body1.size() - 2) + "zz");
      REQUIRE(bad.code == 200);  // the header says duplicate: the frame is never read
      Encoder other("x");
      const std::string fresh = other.encode(b1.batch(), spool({{"tcp", 1, 1}}));
      const Answer cut = fx.send(rcv.port(), fresh.substr(0, fresh.size() - 5));
      REQUIRE(cut.code == 400);
      REQUIRE(contains(cut.body, "\"error\":\"frame:"));
      REQUIRE(fx.send(rcv.port(), fresh, true, "-H 'Transfer-Encoding: chunked'").code == 411);
      REQUIRE(fx.send(rcv.port(), fresh, true, "-H 'Content-Type: text/plain'").code == 415);
      REQUIRE(fx.out_lines().size() == 5);
    }
  }

  SECTION("a restart without --state: the next body is 409, a reset and resend is accepted") {
    Receiver rcv(fx.tls_args(), fx.path("rcv.err"));
    const auto b2 = sample_batch(1e12 + 5000);
    const std::string body2 = enc.encode(b2.batch(), spool({{"snmp", 6, 8}}));
    const Answer a = fx.send(rcv.port(), body2);
    REQUIRE(a.code == 409);
    REQUIRE(contains(a.body, "not known"));
    enc.reset();
    REQUIRE(fx.send(rcv.port(), enc.encode(b2.batch(), spool({{"snmp", 6, 8}}))).code == 200);
    enc.commit();
    REQUIRE(contains(fx.out_lines()[5], "\"value\":1000000005000"));
  }
}

TEST_CASE("receiver --state keeps de-duplicating across a restart; plain HTTP; --max-body") {
  Fixture fx;
  Encoder enc("e");
  const auto b = sample_batch(7);
  const std::string body = enc.encode(b.batch(), spool({{"snmp", 1, 3}}));
  const std::vector<std::string> args{
      "--state", fx.path("state"), "--out", fx.path("out.jsonl"), "--max-body", "4000"};
  {
    Receiver rcv(args, fx.path("rcv.err"));
    REQUIRE(fx.send(rcv.port(), body, false).code == 200);
    REQUIRE(fx.send(rcv.port(), std::string(5000, 'x'), false).code == 413);
  }
  Receiver again(args, fx.path("rcv.err"));
  const Answer d = fx.send(again.port(), body, false);
  REQUIRE(d.code == 200);
  REQUIRE(contains(d.headers, "X-Outpost-Duplicate: 1"));
  REQUIRE(fx.out_lines().size() == 5);
}

TEST_CASE("receiver --fault answers successive POSTs from the script, then serves") {
  Fixture fx;
  Receiver rcv({"--fault", "500x2,429:2x1,503:1x1,close x1,delay:1000x1", "--verbose"},
               fx.path("rcv.err"));
  Encoder enc("e");
  const auto b = sample_batch(7);
  const std::string body = enc.encode(b.batch(), spool({{"snmp", 1, 3}}));
  REQUIRE(fx.send(rcv.port(), body, false).code == 500);
  REQUIRE(fx.send(rcv.port(), body, false).code == 500);
  const Answer r429 = fx.send(rcv.port(), body, false);
  REQUIRE(r429.code == 429);
  REQUIRE(contains(r429.headers, "Retry-After: 2"));
  const Answer r503 = fx.send(rcv.port(), body, false);
  REQUIRE(r503.code == 503);
  REQUIRE(contains(r503.headers, "Retry-After: 1"));
  const Answer dropped = fx.send(rcv.port(), body, false);
  REQUIRE(dropped.code == 0);
  REQUIRE(dropped.curl_status == 52);  // curl: empty reply from server
  const auto t0 = std::chrono::steady_clock::now();
  REQUIRE(fx.send(rcv.port(), body, false).code == 200);
  REQUIRE(std::chrono::steady_clock::now() - t0 >= std::chrono::milliseconds(950));
  const Answer s = fx.send(rcv.port(), "", false, "-X GET", "/v1/stats");
  REQUIRE(contains(s.body, "\"batches\":1"));
  REQUIRE(contains(s.body, "\"fault\":5"));
}
