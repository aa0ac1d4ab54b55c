// The snmp_trap plugin's own tests: the BER reader, USM key derivation against RFC 3414's
// vectors and Python's hashlib, the receiver fed with datagrams built by independent encoders
// (scapy for v1/v2c, net-snmp's snmptrap for v3 with every auth and privacy protocol), informs
// answered to net-snmp's snmpinform (which exits 0 only when acknowledged), and the plugin
// itself through the SDK's fake host (configuration, credentials, rules, MIB names, metrics,
// engine boots). The engine end to end is tests/snmp_trap_netsnmp.sh.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <outpost/testing.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "message.hpp"
#include "receiver.hpp"
#include "snmp/ber.hpp"
#include "usm.hpp"

namespace {

namespace fs = std::filesystem;
namespace ber = outpost::snmp::ber;
using namespace outpost::snmp_trap;
using outpost::testing::FakeHost;

int64_t mono_now() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}
int64_t wall_now() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::vector<uint8_t> unhex(const std::string& s) {
  std::vector<uint8_t> out;
  for (std::size_t i = 0; i + 1 < s.size(); i += 2)
    out.push_back(static_cast<uint8_t>(std::stoi(s.substr(i, 2), nullptr, 16)));
  return out;
}
std::string tohex(std::span<const uint8_t> v) {
  std::string s;
  char b[3];
  for (const uint8_t x : v) {
    std::snprintf(b, sizeof b, "%02x", x);
    s += b;
  }
  return s;
}

std::string run_capture(const std::string& cmd) {
  std::string out;
  FILE* p = ::popen(cmd.c_str(), "r");
  if (p == nullptr) return out;
  char buf[4096];
  while (std::fgets(buf, sizeof buf, p) != nullptr) out += buf;
  ::pclose(p);
  return out;
}

fs::path temp_dir(const std::string& name) {
  fs::path p = fs::temp_directory_path() /
               ("outpost-snmp-trap-test-" + std::to_string(::getpid()) + "-" + name);
  fs::remove_all(p);
  fs::create_directories(p);
  return p;
}

// net-snmp's tools read no MIBs, no configuration and keep their state in a directory of ours.
pid_t spawn(const std::vector<std::string>& argv, const fs::path& state) {
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::setenv("MIBS", "", 1);
    ::setenv("MIBDIRS", "/nonexistent", 1);
    ::setenv("SNMP_PERSISTENT_DIR", state.c_str(), 1);
    ::setenv("SNMPCONFPATH", state.c_str(), 1);
    const int devnull = ::open("/dev/null", O_WRONLY);
    ::dup2(devnull, 1);
    ::dup2(devnull, 2);
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    ::execvp(args[0], args.data());
    ::_exit(127);
  }
  return pid;
}

struct Udp {
  int fd = -1;
  uint16_t port = 0;
  Udp() {
    fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
    socklen_t l = sizeof a;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &l);
    port = ntohs(a.sin_port);
  }
  ~Udp() { ::close(fd); }
  Udp(const Udp&) = delete;
  Udp& operator=(const Udp&) = delete;
  // One datagram within timeout_ms, with its sender.
  std::optional<std::vector<uint8_t>> recv(int timeout_ms, sockaddr_in* from = nullptr) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, timeout_ms) <= 0) return std::nullopt;
    std::vector<uint8_t> buf(65536);
    sockaddr_in a{};
    socklen_t l = sizeof a;
    const ssize_t n =
        ::recvfrom(fd, buf.data(), buf.size(), 0, reinterpret_cast<sockaddr*>(&a), &l);
    if (n < 0) return std::nullopt;
    buf.resize(static_cast<std::size_t>(n));
    if (from) *from = a;
    return buf;
  }
  std::string target() const { return "udp:127.0.0.1:" + std::to_string(port); }
};

int wait_exit(pid_t pid) {
  int status = 0;
  ::waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

// Runs a net-snmp sender (the target appended where "TARGET" stands) and returns what it sent.
std::vector<uint8_t> capture(std::vector<std::string> argv, const fs::path& state) {
  Udp u;
  for (auto& a : argv)
    if (a == "TARGET") a = u.target();
  const pid_t pid = spawn(argv, state);
  auto d = u.recv(5000);
  const int rc = wait_exit(pid);
  INFO("sender exit " << rc);
  REQUIRE(d.has_value());
  return *d;
}

outpost_sockaddr from_addr(uint16_t port = 40000) {
  outpost_sockaddr s{};
  s.family = 4;
  s.addr[0] = 127;
  s.addr[3] = 1;
  s.port = port;
  return s;
}
outpost_sockaddr from_sockaddr(const sockaddr_in& a) {
  outpost_sockaddr s{};
  s.family = 4;
  std::memcpy(s.addr, &a.sin_addr, 4);
  s.port = ntohs(a.sin_port);
  return s;
}

std::optional<std::string> attr(const outpost::Event& e, const std::string& k) {
  for (const auto& [key, v] : e.attributes)
    if (key == k) return v;
  return std::nullopt;
}

User make_test_user(const std::string& name, const std::string& auth, const std::string& auth_pw,
                    const std::string& priv = "", const std::string& priv_pw = "") {
  User u;
  u.name = name;
  if (!auth.empty()) {
    u.auth = *parse_auth(auth);
    u.auth_ku = password_to_key(u.auth, auth_pw);
  }
  if (!priv.empty()) {
    u.priv = *parse_priv(priv);
    u.priv_ku = password_to_key(u.auth, priv_pw);
  }
  return u;
}

Settings base_settings() {
  Settings s;
  auto m = std::make_shared<MibMap>();
  add_builtin_names(*m);
  s.mibs = m;
  return s;
}

OwnEngine own_engine() {
  OwnEngine o;
  o.engine_id = unhex("8000000005aabbccddeeff0011223344");
  o.boots = 3;
  o.start_mono_ns = mono_now() - 1000LL * 1'000'000'000;
  return o;
}

// Serves a Receiver on a socket until the child exits; returns its exit code.
int serve(Receiver& r, Udp& u, pid_t child, std::vector<Outcome>* seen = nullptr) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (std::chrono::steady_clock::now() < deadline) {
    sockaddr_in from{};
    if (auto d = u.recv(50, &from)) {
      Outcome out;
      r.handle(*d, from_sockaddr(from), wall_now(), mono_now(), out);
      if (!out.reply.empty())
        ::sendto(u.fd, out.reply.data(), out.reply.size(), 0, reinterpret_cast<sockaddr*>(&from),
                 sizeof from);
      if (seen) seen->push_back(std::move(out));
    }
    int status = 0;
    if (::waitpid(child, &status, WNOHANG) == child)
      return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }
  ::kill(child, SIGKILL);
  wait_exit(child);
  return -2;
}

const outpost_plugin_descriptor* plugin() {
  static const outpost_plugin_descriptor* d =
      outpost::testing::open_plugin(OUTPOST_TEST_PLUGIN_DIR "/outpost_snmp_trap.so");
  return d;
}

void feed(FakeHost& h, std::span<const uint8_t> data, uint16_t port = 40000) {
  outpost_datagram d{};
  d.data = data.data();
  d.len = data.size();
  d.source = from_addr(port);
  d.socket_id = 1;
  d.recv_time_ns = wall_now();
  REQUIRE(plugin()->receive(h.instance(), &d, 1, sizeof d) == OUTPOST_OK);
}

std::string attr_of(const outpost::testing::RecordedEvent& e, const std::string& k) {
  auto it = e.attributes.find(k);
  return it == e.attributes.end() ? "<absent>" : it->second;
}

double metric(const FakeHost& h, const std::string& name,
              const std::map<std::string, std::string>& labels = {}) {
  auto m = h.find(name, labels);
  return m.empty() ? -1 : m.back().value;
}

}  // namespace

TEST_CASE("BER: integers, lengths and OIDs both ways, malformations by status") {
  const std::vector<int64_t> ints = {0,           1,          127,       128,      255,
                                     256,         -1,         -128,      -129,     2147483647,
                                     -2147483648, 4294967295, INT64_MAX, INT64_MIN};
  for (const int64_t v : ints) {
    std::vector<uint8_t> b;
    ber::put_int(b, v);
    ber::Reader r(b);
    int64_t got = 0;
    REQUIRE(r.read_int(got) == ber::Status::kOk);
    CHECK(got == v);
    CHECK(r.at_end());
  }
  std::vector<uint8_t> b;
  ber::put_int(b, 128);
  CHECK(tohex(b) == "02020080");  // the sign byte X.690 asks for
  b.clear();
  ber::put_int(b, -129);
  CHECK(tohex(b) == "0202ff7f");
  b.clear();
  ber::put_unsigned(b, 4294967295u, ber::tag::kCounter32);
  CHECK(tohex(b) == "410500ffffffff");

  for (const char* text :
       {"1.3.6.1.4.1.32473.7.0.1", "0.0", "2.999.1", "1.3.6.1.4294967295", "2.4294967215"}) {
    const auto oid = *outpost::snmp::parse_oid(text);
    std::vector<uint8_t> e;
    ber::put_oid(e, oid);
    ber::Reader r(e);
    outpost::snmp::Oid back;
    REQUIRE(r.read_oid(back) == ber::Status::kOk);
    CHECK(outpost::snmp::to_string(back) == text);
  }
  ber::Tlv t;
  CHECK(ber::Reader(unhex("0482010003")).next(t) == ber::Status::kTruncated);
  CHECK(ber::Reader(unhex("0480")).next(t) == ber::Status::kBadLength);
  CHECK(ber::Reader(unhex("1f0100")).next(t) == ber::Status::kBadTag);
  CHECK(ber::Reader(unhex("04")).next(t) == ber::Status::kTruncated);
  outpost::snmp::Oid o;
  CHECK(ber::decode_oid(unhex("2b0690ffffffff7f"), o) ==
        ber::Status::kBadOid);  // 6 bytes: over 32 bits
  CHECK(ber::decode_oid(unhex("2b06"), o) == ber::Status::kOk);
  std::vector<uint8_t> long_oid = {0x2b};
  long_oid.insert(long_oid.end(), 126, 0x01);
  CHECK(ber::decode_oid(long_oid, o) == ber::Status::kOk);  // 128 arcs
  long_oid.push_back(0x01);
  CHECK(ber::decode_oid(long_oid, o) == ber::Status::kBadOid);  // 129
  uint64_t u = 0;
  CHECK(ber::decode_unsigned(unhex("ffffffff"), 4, u) ==
        ber::Status::kOk);  // agents that forget the sign byte
  CHECK(u == 4294967295u);
  CHECK(ber::decode_unsigned(unhex("01ffffffff"), 4, u) == ber::Status::kBadInteger);
  CHECK(ber::decode_unsigned(unhex("00ffffffffffffffff"), 8, u) == ber::Status::kOk);
  CHECK(u == UINT64_MAX);
}

TEST_CASE("USM keys: RFC 3414 A.3 vectors, SHA-2 and the AES-192/256 extensions against Python") {
  const auto engine = unhex("000000000000000000000002");
  // RFC 3414 A.3.1 (MD5) and A.3.2 (SHA).
  const Key md5 = password_to_key(AuthProto::kMd5, "maplesyrup");
  CHECK(tohex(md5.bytes()) == "9faf3283884e92834ebc9847d8edd963");
  CHECK(tohex(localize(AuthProto::kMd5, md5, engine).bytes()) ==
        "526f5eed9fcce26f8964c2930787d82b");
  const Key sha = password_to_key(AuthProto::kSha1, "maplesyrup");
  CHECK(tohex(sha.bytes()) == "9fb5cc0381497b3793528939ff788d5d79145211");
  CHECK(tohex(localize(AuthProto::kSha1, sha, engine).bytes()) ==
        "6695febc9288e36282235fc7151f128497b38f3f");

  // SHA-2 (RFC 7860) and both key extensions, computed independently by hashlib.
  const std::string py = R"(/usr/bin/python3 -c '
import hashlib
e = bytes.fromhex("000000000000000000000002")
def ku(h, pw): return hashlib.new(h, (pw * (1048576 // len(pw) + 1))[:1048576]).digest()
def kul(h, k): return hashlib.new(h, k + e + k).digest()
for h in ("sha224", "sha256", "sha384", "sha512"):
    print(h, kul(h, ku(h, b"maplesyrup")).hex())
k = kul("sha1", ku("sha1", b"privpass123"))
b = k
while len(b) < 32: b += hashlib.sha1(b).digest()
print("blumenthal", b[:32].hex())
r = k
while len(r) < 32: r += kul("sha1", ku("sha1", r))
print("reeder", r[:32].hex())
')";
  std::map<std::string, std::string> want;
  std::istringstream in(run_capture(py));
  std::string k, v;
  while (in >> k >> v) want[k] = v;
  REQUIRE(want.size() == 6);
  const std::pair<AuthProto, const char*> sha2[] = {{AuthProto::kSha224, "sha224"},
                                                    {AuthProto::kSha256, "sha256"},
                                                    {AuthProto::kSha384, "sha384"},
                                                    {AuthProto::kSha512, "sha512"}};
  for (const auto& [p, name] : sha2)
    CHECK(tohex(localize(p, password_to_key(p, "maplesyrup"), engine).bytes()) == want[name]);
  const Key priv = password_to_key(AuthProto::kSha1, "privpass123");
  CHECK(tohex(privacy_key(AuthProto::kSha1, PrivProto::kAes256, priv, engine).bytes()) ==
        want["blumenthal"]);
  CHECK(tohex(privacy_key(AuthProto::kSha1, PrivProto::kAes256Reeder, priv, engine).bytes()) ==
        want["reeder"]);
  CHECK(privacy_key(AuthProto::kSha1, PrivProto::kAes128, priv, engine).size() == 16);
  CHECK(tohex(privacy_key(AuthProto::kSha1, PrivProto::kAes192, priv, engine).bytes()) ==
        want["blumenthal"].substr(0, 48));
}

TEST_CASE("v1 and v2c datagrams built by scapy, hostile variants included") {
  std::istringstream lines(run_capture("/usr/bin/python3 " SNMP_TRAP_TEST_DIR "/trap_vectors.py"));
  std::string line;
  int cases = 0;
  while (std::getline(lines, line)) {
    std::vector<std::string> f;
    std::size_t start = 0;
    for (std::size_t tab; (tab = line.find('\t', start)) != std::string::npos; start = tab + 1)
      f.push_back(line.substr(start, tab - start));
    f.push_back(line.substr(start));
    REQUIRE(f.size() >= 3);
    INFO("case " << f[0]);
    ++cases;
    Settings s = base_settings();
    s.communities = {"public", "private"};
    Receiver r(std::move(s), own_engine());
    Outcome out;
    r.handle(unhex(f[1]), from_addr(), 1'700'000'000'000'000'000, mono_now(), out);
    for (std::size_t i = 2; i < f.size(); ++i) {
      const std::string& e = f[i];
      INFO("expect " << e);
      const auto eq = e.find('=');
      const std::string key = e.substr(0, eq),
                        val = eq == std::string::npos ? "" : e.substr(eq + 1);
      if (key == "drop") {
        CHECK(drop_name(out.drop) == val);
        CHECK_FALSE(out.has_event);
        CHECK(out.reply.empty());
        CHECK(r.counters().dropped[static_cast<std::size_t>(out.drop)] == 1);
        continue;
      }
      REQUIRE(out.drop == Drop::kNone);
      REQUIRE(out.has_event);
      if (key == "kind")
        CHECK(out.event.kind == val);
      else if (key == "source")
        CHECK(out.event.source == val);
      else if (key == "message")
        CHECK(out.event.message == val);
      else if (key == "severity")
        CHECK(std::to_string(out.event.severity) == val);
      else if (key == "reply")
        CHECK(tohex(out.reply) == val);
      else if (key[0] == '@')
        CHECK(attr(out.event, key.substr(1)).value_or("<absent>") == val);
      else if (key[0] == '!')
        CHECK_FALSE(attr(out.event, key.substr(1)).has_value());
      else
        FAIL("unknown expectation " << e);
    }
    if (out.drop == Drop::kNone) CHECK(out.event.time_ns == 1'700'000'000'000'000'000);
  }
  CHECK(cases >= 30);
}

TEST_CASE("v3 traps from net-snmp's snmptrap: every auth and privacy protocol") {
  const fs::path state = temp_dir("v3-matrix");
  const char* auths[] = {"MD5", "SHA", "SHA-224", "SHA-256", "SHA-384", "SHA-512"};
  const char* privs[] = {"", "AES", "AES-192", "AES-256", "AES-192-C", "AES-256-C"};
  const std::string engine = "8000000001020304aabb";
  for (const char* a : auths) {
    for (const char* p : privs) {
      const std::string user = std::string("u-") + a + (p[0] ? std::string("-") + p : "");
      INFO("user " << user);
      std::vector<std::string> argv = {"snmptrap", "-v3", "-e", "0x" + engine, "-u",
                                       user,       "-a",  a,    "-A",          "auth-" + user};
      if (p[0]) {
        argv.insert(argv.end(), {"-l", "authPriv", "-x", p, "-X", "priv-" + user});
      } else {
        argv.insert(argv.end(), {"-l", "authNoPriv"});
      }
      argv.insert(argv.end(), {"TARGET", "", "1.3.6.1.6.3.1.1.5.4", "1.3.6.1.2.1.2.2.1.1.9", "i",
                               "9", "1.3.6.1.4.1.32473.7.1.4", "C", "18446744073709551615",
                               "1.3.6.1.4.1.32473.7.1.3", "s", "héllo wörld"});
      const auto dgram = capture(argv, state);
      Settings s = base_settings();
      s.users.push_back(make_test_user("someone-else", "SHA", "another-password"));
      s.users.push_back(make_test_user(user, a, "auth-" + user, p, "priv-" + user));
      Receiver r(std::move(s), own_engine());
      Outcome out;
      r.handle(dgram, from_addr(), wall_now(), mono_now(), out);
      REQUIRE(drop_name(out.drop) == std::string("none"));
      REQUIRE(out.has_event);
      CHECK(out.reply.empty());
      CHECK(out.event.kind == "trap");
      CHECK(attr(out.event, "version") == "3");
      CHECK(attr(out.event, "user") == user);
      CHECK(attr(out.event, "engine_id") == engine);
      CHECK(attr(out.event, "security_level") == (p[0] ? "authPriv" : "authNoPriv"));
      CHECK(attr(out.event, "trap_oid") == "1.3.6.1.6.3.1.1.5.4");
      CHECK(attr(out.event, "trap_name") == "IF-MIB::linkUp");
      CHECK(attr(out.event, "IF-MIB::ifIndex.9") == "integer: 9");
      CHECK(attr(out.event, "1.3.6.1.4.1.32473.7.1.4") == "counter64: 18446744073709551615");
      CHECK(attr(out.event, "1.3.6.1.4.1.32473.7.1.3") == "octets: héllo wörld");
      CHECK(attr(out.event, "sys_uptime").has_value());
      // snmptrap names its own engine as the context engine; the -e one is the USM authority.
      CHECK(attr(out.event, "context_engine_id").has_value());
      CHECK(r.engines() == 1);
      CHECK(r.counters().received[2][0] == 1);
    }
  }
  fs::remove_all(state);
}

TEST_CASE("v3 refusals: keys, users, levels, tampering, replays and pinned engines") {
  const fs::path state = temp_dir("v3-refusals");
  const std::string engine = "800000000102030405";
  auto trap = [&](const std::string& user, const std::string& level,
                  std::vector<std::string> extra = {}) {
    std::vector<std::string> argv = {"snmptrap", "-v3", "-e", "0x" + engine,
                                     "-u",       user,  "-l", level};
    if (level != "noAuthNoPriv") argv.insert(argv.end(), {"-a", "SHA-256", "-A", "authpass123"});
    if (level == "authPriv") argv.insert(argv.end(), {"-x", "AES", "-X", "privpass123"});
    argv.insert(argv.end(), extra.begin(), extra.end());
    argv.insert(argv.end(), {"TARGET", "", "1.3.6.1.4.1.32473.7.0.1"});
    return capture(argv, state);
  };
  const auto priv_trap = trap("alice", "authPriv");
  const auto auth_trap = trap("alice", "authNoPriv");
  const auto plain_trap = trap("nobody", "noAuthNoPriv");
  auto outcome = [](Settings s, const std::vector<uint8_t>& d) {
    Receiver r(std::move(s), own_engine());
    Outcome out;
    r.handle(d, from_addr(), wall_now(), mono_now(), out);
    return std::string(drop_name(out.drop));
  };
  auto with = [](std::vector<User> users) {
    Settings s = base_settings();
    s.users = std::move(users);
    return s;
  };
  const User good = make_test_user("alice", "SHA-256", "authpass123", "AES", "privpass123");
  CHECK(outcome(with({make_test_user("alice", "SHA-256", "authpass123", "AES", "privpass123")}),
                priv_trap) == "none");
  CHECK(outcome(with({make_test_user("alice", "SHA-256", "wrong-pass", "AES", "privpass123")}),
                priv_trap) == "wrong_digest");
  CHECK(outcome(with({make_test_user("alice", "SHA", "authpass123", "AES", "privpass123")}),
                priv_trap) == "wrong_digest");
  CHECK(outcome(with({make_test_user("alice", "SHA-256", "authpass123", "AES", "wrong-priv")}),
                priv_trap) == "decryption_error");
  CHECK(outcome(with({make_test_user("bob", "SHA-256", "authpass123", "AES", "privpass123")}),
                priv_trap) == "unknown_user");
  CHECK(outcome(with({make_test_user("alice", "SHA-256", "authpass123")}), priv_trap) ==
        "unsupported_sec_level");
  CHECK(outcome(with({make_test_user("alice", "SHA-256", "authpass123", "AES", "privpass123")}),
                auth_trap) == "unsupported_sec_level");  // a user set up for privacy must use it
  CHECK(outcome(with({make_test_user("alice", "SHA-256", "authpass123")}), auth_trap) == "none");
  CHECK(outcome(with({make_test_user("nobody", "", "")}), plain_trap) == "none");
  CHECK(outcome(with({make_test_user("nobody", "SHA", "authpass123")}), plain_trap) ==
        "unsupported_sec_level");
  // Two entries of one name (devices with different passwords): the one whose keys verify wins.
  CHECK(outcome(with({make_test_user("alice", "SHA-256", "wrong-pass", "AES", "privpass123"),
                      make_test_user("alice", "SHA-256", "authpass123", "AES", "privpass123")}),
                priv_trap) == "none");
  // A user pinned to another engine ID does not apply; pinned to this one it does.
  User pinned = good;
  pinned.engine_id = unhex("8000000001ffffffff");
  CHECK(outcome(with({pinned}), priv_trap) == "unknown_user");
  pinned.engine_id = unhex(engine);
  CHECK(outcome(with({pinned}), priv_trap) == "none");

  // Any changed byte breaks the MAC: in the ciphertext, in the header, in the MAC itself.
  for (const std::size_t at : {priv_trap.size() - 1, std::size_t{20}, std::size_t{60}}) {
    auto bad = priv_trap;
    bad[at] ^= 0x01;
    INFO("byte " << at);
    CHECK(outcome(with({good}), bad) != "none");
  }
  auto bad = priv_trap;
  bad[priv_trap.size() - 1] ^= 0x01;
  CHECK(outcome(with({good}), bad) == "wrong_digest");

  // Replays: the engine's clock is learned from the first trap; an older boot count, or the
  // same boots with a time more than 150 s behind, is refused; newer ones move the clock on.
  Receiver r(with({make_test_user("alice", "SHA-256", "authpass123")}), own_engine());
  auto handle = [&r](const std::vector<uint8_t>& d) {
    Outcome out;
    r.handle(d, from_addr(), wall_now(), mono_now(), out);
    return std::string(drop_name(out.drop));
  };
  CHECK(handle(trap("alice", "authNoPriv", {"-Z", "5,1000"})) == "none");
  CHECK(handle(trap("alice", "authNoPriv", {"-Z", "5,1000"})) ==
        "none");  // the same again: in window
  CHECK(handle(trap("alice", "authNoPriv", {"-Z", "5,900"})) == "none");  // 100 s behind: in window
  CHECK(handle(trap("alice", "authNoPriv", {"-Z", "5,800"})) == "not_in_time_window");
  CHECK(handle(trap("alice", "authNoPriv", {"-Z", "4,5000"})) == "not_in_time_window");
  CHECK(handle(trap("alice", "authNoPriv", {"-Z", "6,10"})) == "none");  // a reboot of the sender
  CHECK(handle(trap("alice", "authNoPriv", {"-Z", "5,2000"})) == "not_in_time_window");
  CHECK(r.engines() == 1);
  CHECK(r.counters().engines_learned == 1);
  // A forged message (wrong key) teaches nothing: the clock stays where it was.
  Receiver r2(with({make_test_user("alice", "SHA-256", "wrong-pass")}), own_engine());
  Outcome o2;
  r2.handle(trap("alice", "authNoPriv", {"-Z", "9,9"}), from_addr(), wall_now(), mono_now(), o2);
  CHECK(r2.engines() == 0);
  fs::remove_all(state);
}

TEST_CASE("informs: net-snmp's snmpinform gets its acknowledgement (v2c, v3 with discovery)") {
  const fs::path state = temp_dir("informs");
  Settings s = base_settings();
  s.communities = {"public"};
  s.users.push_back(make_test_user("informer", "SHA", "authpass123", "AES", "privpass123"));
  s.users.push_back(make_test_user("auth256", "SHA-256", "authpass123"));
  s.users.push_back(make_test_user("aes256", "SHA-512", "authpass123", "AES-256", "privpass123"));
  Receiver r(std::move(s), own_engine());
  Udp u;

  std::vector<Outcome> seen;
  int rc = serve(r, u,
                 spawn({"snmpinform", "-v2c", "-c", "public", "-r", "1", "-t", "2", u.target(), "",
                        "1.3.6.1.4.1.32473.7.0.2", "1.3.6.1.4.1.32473.7.1.1.0", "i", "5"},
                       state),
                 &seen);
  CHECK(rc == 0);
  REQUIRE(seen.size() >= 1);
  CHECK(seen[0].ack);
  CHECK(attr(seen[0].event, "pdu") == "inform");
  CHECK(attr(seen[0].event, "version") == "2c");
  CHECK(attr(seen[0].event, "1.3.6.1.4.1.32473.7.1.1.0") == "integer: 5");

  // A wrong community is not acknowledged: snmpinform times out and fails.
  seen.clear();
  rc = serve(r, u,
             spawn({"snmpinform", "-v2c", "-c", "nope", "-r", "0", "-t", "1", u.target(), "",
                    "1.3.6.1.4.1.32473.7.0.2"},
                   state),
             &seen);
  CHECK(rc != 0);
  REQUIRE(seen.size() == 1);
  CHECK(seen[0].drop == Drop::kBadCommunity);

  // v3: discovery (a report of our engine ID), then the authenticated, encrypted inform.
  for (const auto& [user, args] : std::vector<std::pair<std::string, std::vector<std::string>>>{
           {"informer",
            {"-l", "authPriv", "-a", "SHA", "-A", "authpass123", "-x", "AES", "-X", "privpass123"}},
           {"auth256", {"-l", "authNoPriv", "-a", "SHA-256", "-A", "authpass123"}},
           {"aes256",
            {"-l", "authPriv", "-a", "SHA-512", "-A", "authpass123", "-x", "AES-256", "-X",
             "privpass123"}}}) {
    INFO("user " << user);
    seen.clear();
    std::vector<std::string> argv = {"snmpinform", "-v3", "-u", user, "-r", "1", "-t", "2"};
    argv.insert(argv.end(), args.begin(), args.end());
    argv.insert(argv.end(), {u.target(), "", "1.3.6.1.4.1.32473.7.0.1", "1.3.6.1.4.1.32473.7.1.3.0",
                             "s", "v3 inform"});
    rc = serve(r, u, spawn(argv, fs::path(state) / user), &seen);
    CHECK(rc == 0);
    REQUIRE(seen.size() >= 2);
    CHECK(seen[0].drop == Drop::kUnknownEngineId);
    CHECK(seen[0].has_report);
    CHECK(seen[0].report == Report::kUnknownEngineId);
    CHECK(seen.back().ack);
    CHECK(seen.back().has_event);
    CHECK(attr(seen.back().event, "user") == user);
    CHECK(attr(seen.back().event, "engine_id") == "8000000005aabbccddeeff0011223344");
    CHECK(attr(seen.back().event, "1.3.6.1.4.1.32473.7.1.3.0") == "octets: v3 inform");
  }
  CHECK(r.counters().acknowledged[2] == 3);
  CHECK(r.counters().received[2][1] == 3);

  // A sender that knows our engine ID but has a stale clock (-Z) gets an authenticated
  // notInTimeWindow report, resynchronises and succeeds.
  seen.clear();
  rc = serve(r, u,
             spawn({"snmpinform",
                    "-v3",
                    "-e",
                    "0x8000000005aabbccddeeff0011223344",
                    "-Z",
                    "1,1",
                    "-u",
                    "informer",
                    "-l",
                    "authPriv",
                    "-a",
                    "SHA",
                    "-A",
                    "authpass123",
                    "-x",
                    "AES",
                    "-X",
                    "privpass123",
                    "-r",
                    "2",
                    "-t",
                    "2",
                    u.target(),
                    "",
                    "1.3.6.1.4.1.32473.7.0.2"},
                   fs::path(state) / "stale"),
             &seen);
  CHECK(rc == 0);
  REQUIRE(seen.size() >= 2);
  CHECK(seen[0].drop == Drop::kNotInTimeWindow);
  CHECK(seen[0].report == Report::kNotInTimeWindow);
  CHECK(seen.back().ack);
  CHECK(r.counters().reports[static_cast<std::size_t>(Report::kNotInTimeWindow)] == 1);

  // Wrong keys: snmpinform is told (wrongDigest report) and fails; nothing is emitted.
  seen.clear();
  rc = serve(
      r, u,
      spawn({"snmpinform", "-v3", "-u", "informer", "-l", "authNoPriv", "-a", "SHA", "-A",
             "not-the-password", "-r", "0", "-t", "2", u.target(), "", "1.3.6.1.4.1.32473.7.0.2"},
            fs::path(state) / "wrong"),
      &seen);
  CHECK(rc != 0);
  bool any_event = false;
  for (const auto& o : seen) any_event = any_event || o.has_event;
  CHECK_FALSE(any_event);
  fs::remove_all(state);
}

TEST_CASE("receiver: duplicate informs, report rate limit, engine cache bound") {
  const fs::path state = temp_dir("bounds");
  // A retransmitted inform (the same request-id from the same sender) is acknowledged again but
  // emitted once.
  std::istringstream lines(run_capture("/usr/bin/python3 " SNMP_TRAP_TEST_DIR "/trap_vectors.py"));
  std::string line, inform_hex;
  while (std::getline(lines, line))
    if (line.rfind("v2c_inform\t", 0) == 0) inform_hex = line.substr(11, line.find('\t', 11) - 11);
  REQUIRE_FALSE(inform_hex.empty());
  Receiver r(base_settings(), own_engine());
  Outcome a, b, c;
  r.handle(unhex(inform_hex), from_addr(), wall_now(), mono_now(), a);
  r.handle(unhex(inform_hex), from_addr(), wall_now(), mono_now(), b);
  r.handle(unhex(inform_hex), from_addr(40001), wall_now(), mono_now(), c);  // another sender port
  CHECK((a.has_event && a.ack && !a.duplicate));
  CHECK((!b.has_event && b.ack && b.duplicate && b.reply == a.reply));
  CHECK((c.has_event && !c.duplicate));
  CHECK(r.counters().duplicates == 1);

  // Discovery probes are answered at most max_reports_per_second (a reflector must stay small).
  const auto probe = [&] {
    Udp u;
    const pid_t pid = spawn({"snmpinform", "-v3", "-u", "x", "-l", "noAuthNoPriv", "-r", "0", "-t",
                             "1", u.target(), "", "1.3.6.1.4.1.32473.7.0.1"},
                            state);
    auto d = u.recv(5000);
    ::kill(pid, SIGTERM);
    wait_exit(pid);
    REQUIRE(d.has_value());
    return *d;
  }();
  Settings s = base_settings();
  s.max_reports_per_second = 5;
  Receiver limited(std::move(s), own_engine());
  const int64_t t0 = mono_now();
  int sent = 0;
  for (int i = 0; i < 20; ++i) {
    Outcome o;
    limited.handle(probe, from_addr(), wall_now(), t0, o);
    CHECK(o.drop == Drop::kUnknownEngineId);
    sent += o.reply.empty() ? 0 : 1;
  }
  CHECK(sent == 5);
  CHECK(limited.counters().reports_suppressed == 15);
  Outcome later;
  limited.handle(probe, from_addr(), wall_now(), t0 + 1'000'000'000, later);  // a second later
  CHECK_FALSE(later.reply.empty());

  // Learned engines are bounded: the least recently used one goes.
  Settings small = base_settings();
  small.max_engines = 2;
  small.users.push_back(make_test_user("alice", "MD5", "authpass123"));
  Receiver lru(std::move(small), own_engine());
  for (const char* e : {"0x8000000001aa", "0x8000000001bb", "0x8000000001cc"}) {
    Outcome o;
    lru.handle(capture({"snmptrap", "-v3", "-e", e, "-u", "alice", "-l", "authNoPriv", "-a", "MD5",
                        "-A", "authpass123", "TARGET", "", "1.3.6.1.4.1.32473.7.0.1"},
                       state),
               from_addr(), wall_now(), mono_now(), o);
    CHECK(o.drop == Drop::kNone);
  }
  CHECK(lru.engines() == 2);
  CHECK(lru.counters().engines_learned == 3);
  fs::remove_all(state);
}

TEST_CASE("plugin: users from strings and credentials, rules, MIB names, metrics, engine boots") {
  const fs::path state = temp_dir("plugin");
  FakeHost h(plugin());
  h.set_secret("alice_auth", "alice-auth-pass");
  h.set_secret("alice_priv", "alice-priv-pass");
  REQUIRE(
      h.create({
          {"communities.0", "public"},
          {"users.0",
           "alice auth=SHA-256 auth_password_ref=alice_auth priv=AES-256 "
           "priv_password_ref=alice_priv"},
          {"users.1", "name=bob auth=md5 auth_password='bob pass 123'"},
          {"rules.0",
           "name=port-down oid=OUTPOST-TEST-MIB::outpostTestPortDown varbind=outpostTestPortState "
           "equals=down severity=crit message='port {outpostTestPortIndex} of {source} is "
           "{outpostTestPortState}: {outpostTestMessage}'"},
          {"rules.1",
           "name=lab-ports oid=1.3.6.1.4.1.32473.7.0 source=10.9.0.0/16 severity=notice"},
          {"rules.2",
           "name=flapping varbind=OUTPOST-TEST-MIB::outpostTestMessage regex=^fl[a]p "
           "severity=warning"},
          {"mib_dirs.0", SNMP_TRAP_TEST_DIR "/mibs"},
          {"state_dir", state.string()},
          {"stats_interval", "0"},
      }) == OUTPOST_OK);
  for (const auto& e : h.errors()) FAIL_CHECK("error: " << e.second);
  REQUIRE(h.start() == OUTPOST_OK);

  const fs::path tools = state / "tools";
  auto v3 = [&](const std::string& user, std::vector<std::string> args,
                std::vector<std::string> vbs) {
    std::vector<std::string> argv = {"snmptrap", "-v3", "-e", "0x80000000010a0b0c", "-u", user};
    argv.insert(argv.end(), args.begin(), args.end());
    argv.push_back("TARGET");
    argv.push_back("");
    argv.insert(argv.end(), vbs.begin(), vbs.end());
    return capture(argv, tools);
  };
  const std::vector<std::string> alice = {"-l", "authPriv",        "-a", "SHA-256",
                                          "-A", "alice-auth-pass", "-x", "AES-256",
                                          "-X", "alice-priv-pass"};
  const std::vector<std::string> bob = {"-l", "authNoPriv", "-a", "MD5", "-A", "bob pass 123"};
  feed(h,
       v3("alice", alice,
          {"1.3.6.1.4.1.32473.7.0.1", "1.3.6.1.4.1.32473.7.1.1.0", "i", "12",
           "1.3.6.1.4.1.32473.7.1.2.0", "i", "2", "1.3.6.1.4.1.32473.7.1.3.0", "s", "cable cut"}));
  feed(h, v3("bob", bob,
             {"1.3.6.1.4.1.32473.7.0.2", "1.3.6.1.4.1.32473.7.1.2.0", "i", "1",
              "1.3.6.1.4.1.32473.7.1.4.0", "C", "12345678901234"}));
  feed(h, v3("bob", bob,
             {"1.3.6.1.4.1.32473.7.0.2", "1.3.6.1.4.1.32473.7.1.3.0", "s", "flapped twice"}));
  feed(h, v3("alice",
             {"-l", "authPriv", "-a", "SHA-256", "-A", "wrong-auth-pass", "-x", "AES-256", "-X",
              "alice-priv-pass"},
             {"1.3.6.1.4.1.32473.7.0.1"}));
  const auto ev = h.events();
  REQUIRE(ev.size() == 3);
  // Rule 0: named with the test MIB, enum label compared, template filled.
  CHECK(ev[0].kind == "alert");
  CHECK(ev[0].severity == OUTPOST_SEV_CRITICAL);
  CHECK(ev[0].message == "port 12 of 127.0.0.1 is down: cable cut");
  CHECK(attr_of(ev[0], "rule") == "port-down");
  CHECK(attr_of(ev[0], "trap_name") == "OUTPOST-TEST-MIB::outpostTestPortDown");
  CHECK(attr_of(ev[0], "trap_oid") == "1.3.6.1.4.1.32473.7.0.1");
  CHECK(attr_of(ev[0], "OUTPOST-TEST-MIB::outpostTestPortState.0") == "integer: down(2)");
  CHECK(attr_of(ev[0], "OUTPOST-TEST-MIB::outpostTestMessage.0") == "octets: cable cut");
  CHECK(attr_of(ev[0], "user") == "alice");
  CHECK(attr_of(ev[0], "security_level") == "authPriv");
  // No rule: a plain trap, summary with MIB labels.
  CHECK(ev[1].kind == "trap");
  CHECK(ev[1].severity == OUTPOST_SEV_INFO);
  CHECK(ev[1].message ==
        "OUTPOST-TEST-MIB::outpostTestPortUp outpostTestPortState.0=up "
        "outpostTestOctets.0=12345678901234");
  CHECK(attr_of(ev[1], "OUTPOST-TEST-MIB::outpostTestOctets.0") == "counter64: 12345678901234");
  CHECK(attr_of(ev[1], "rule") == "<absent>");
  // Rule 1 needs 10.9/16 as the sender; rule 2's regex matches.
  CHECK(ev[2].kind == "alert");
  CHECK(attr_of(ev[2], "rule") == "flapping");
  CHECK(ev[2].severity == OUTPOST_SEV_WARNING);
  CHECK(ev[2].message == "OUTPOST-TEST-MIB::outpostTestPortUp outpostTestMessage.0=flapped twice");

  // The source CIDR rule, from a 10.9.x.y sender.
  {
    const auto d = v3("bob", bob, {"1.3.6.1.4.1.32473.7.0.2"});
    outpost_datagram dg{};
    dg.data = d.data();
    dg.len = d.size();
    dg.source.family = 4;
    dg.source.addr[0] = 10, dg.source.addr[1] = 9, dg.source.addr[2] = 1, dg.source.addr[3] = 2;
    dg.source.port = 162;
    REQUIRE(plugin()->receive(h.instance(), &dg, 1, sizeof dg) == OUTPOST_OK);
    const auto all = h.events();
    REQUIRE(all.size() == 4);
    CHECK(all[3].kind == "alert");
    CHECK(attr_of(all[3], "rule") == "lab-ports");
    CHECK(all[3].source == "10.9.1.2");
    CHECK(attr_of(all[3], "sender") == "10.9.1.2:162");
  }
  CHECK(metric(h, "snmp_trap_datagrams_total") == 5);
  CHECK(metric(h, "snmp_trap_received_total", {{"version", "3"}, {"pdu", "trap"}}) == 4);
  CHECK(metric(h, "snmp_trap_dropped_total", {{"reason", "wrong_digest"}}) == 1);
  CHECK(metric(h, "snmp_trap_dropped_total", {{"reason", "truncated"}}) == 0);
  CHECK(metric(h, "snmp_trap_alerts_total", {{"rule", "port-down"}}) == 1);
  CHECK(metric(h, "snmp_trap_alerts_total", {{"rule", "lab-ports"}}) == 1);
  CHECK(metric(h, "snmp_trap_alerts_total", {{"rule", "flapping"}}) == 1);
  CHECK(metric(h, "snmp_trap_engines") == 1);
  CHECK(metric(h, "snmp_trap_engine_boots") == 1);
  REQUIRE(h.stop() == OUTPOST_OK);

  // engineBoots counts starts, in the state file, with the engine ID kept.
  std::ifstream in(state / "snmp_trap-engine.txt");
  std::stringstream text;
  text << in.rdbuf();
  CHECK(text.str().find("boots 1\n") != std::string::npos);
  const auto id_at = text.str().find("engine_id ");
  REQUIRE(id_at != std::string::npos);
  const std::string id = text.str().substr(id_at + 10, 34);
  CHECK(id.substr(0, 10) == "8000000005");
  REQUIRE(h.start() == OUTPOST_OK);
  REQUIRE(h.stop() == OUTPOST_OK);
  h.destroy();
  FakeHost h2(plugin());
  REQUIRE(h2.create({{"state_dir", state.string()}}) == OUTPOST_OK);
  REQUIRE(h2.start() == OUTPOST_OK);
  REQUIRE(h2.stop() == OUTPOST_OK);
  std::ifstream in2(state / "snmp_trap-engine.txt");
  std::stringstream text2;
  text2 << in2.rdbuf();
  CHECK(text2.str().find("boots 3\n") != std::string::npos);
  CHECK(text2.str().find("engine_id " + id) != std::string::npos);
  CHECK(metric(h2, "snmp_trap_engine_boots") == 3);
  fs::remove_all(state);
}

TEST_CASE("plugin: users and rules as maps, numeric names without builtins, configured engine ID") {
  FakeHost h(plugin());
  h.set_secret("pw", "map-form-password");
  REQUIRE(h.create({
              {"users.0.name", "carol"},
              {"users.0.auth", "SHA-384"},
              {"users.0.auth_password_ref", "pw"},
              {"rules.0.name", "any-link-down"},
              {"rules.0.oid", "1.3.6.1.6.3.1.1.5.3"},
              {"builtin_names", "false"},
              {"engine_id", "0x8000000005010203040506"},
              {"stats_interval", "0"},
          }) == OUTPOST_OK);
  REQUIRE(h.start() == OUTPOST_OK);
  const fs::path tools = temp_dir("map-form");
  feed(h, capture({"snmptrap", "-v3", "-e", "0x8000000001999999", "-u", "carol", "-l", "authNoPriv",
                   "-a", "SHA-384", "-A", "map-form-password", "TARGET", "", "1.3.6.1.6.3.1.1.5.3",
                   "1.3.6.1.2.1.2.2.1.1.4", "i", "4"},
                  tools));
  REQUIRE(h.events().size() == 1);
  const auto e = h.events()[0];
  CHECK(e.kind == "alert");
  CHECK(attr_of(e, "trap_name") == "1.3.6.1.6.3.1.1.5.3");
  CHECK(attr_of(e, "1.3.6.1.2.1.2.2.1.1.4") == "integer: 4");
  CHECK(e.message == "1.3.6.1.6.3.1.1.5.3 1.3.6.1.2.1.2.2.1.1.4=4");
  bool logged = false;
  for (const auto& l : h.logs())
    logged = logged || l.find("engine ID 8000000005010203040506, boots 1") != std::string::npos;
  CHECK(logged);
  REQUIRE(h.stop() == OUTPOST_OK);
  fs::remove_all(tools);
}

TEST_CASE("plugin: bad settings are refused with a reason") {
  const std::vector<std::pair<std::vector<std::pair<std::string, std::string>>, std::string>> bad =
      {
          {{{"users.0", "alice auth=SHA"}}, "auth_password"},
          {{{"users.0", "alice auth=SHA auth_password=short"}}, "at least 8"},
          {{{"users.0",
             "alice auth=SHA auth_password=longenough priv=DES priv_password=longenough"}},
           "DES"},
          {{{"users.0", "alice priv=AES priv_password=longenough"}}, "needs authentication"},
          {{{"users.0", "alice auth=SHA-999 auth_password=longenough"}}, "SHA-999"},
          {{{"users.0", "alice auth=SHA auth_password_ref=missing"}}, "missing"},
          {{{"users.0", "alice colour=blue"}}, "unknown key 'colour'"},
          {{{"users.0", "alice auth='SHA"}}, "unterminated quote"},
          {{{"rules.0", "oid=1.3.6"}}, "needs a name"},
          {{{"rules.0", "name=x oid=NO-SUCH-MIB::thing"}}, "NO-SUCH-MIB::thing"},
          {{{"rules.0", "name=x source=10.0.0.0/33"}}, "source"},
          {{{"rules.0", "name=x equals=3"}}, "must follow"},
          {{{"rules.0", "name=x varbind=1.3.6 regex=(unclosed"}}, "regex"},
          {{{"rules.0", "name=x severity=loud"}}, "severity"},
          {{{"engine_id", "abc"}}, "engine_id"},
          {{{"engine_id", "0x0102"}}, "engine_id"},
          {{{"severity", "purple"}}, "severity"},
          {{{"max_varbinds", "0"}}, "max_varbinds"},
      };
  for (const auto& [cfg, why] : bad) {
    INFO("expecting '" << why << "'");
    FakeHost h(plugin());
    const outpost_status s = h.create(cfg);
    CHECK(OUTPOST_STATUS_CLASS(s) == OUTPOST_CLASS_OPERATOR);
    const auto errs = h.errors();
    REQUIRE(errs.size() == 1);
    CHECK(errs[0].second.find(why) != std::string::npos);
    // Secrets never travel in errors.
    CHECK(errs[0].second.find("longenough") == std::string::npos);
  }
}

// Not part of the suite (hidden tag): decoding rate of the receiver on one core, for the README.
// ./test_snmp_trap "[.bench]"
TEST_CASE("throughput of the receive path", "[.bench]") {
  const fs::path state = temp_dir("bench");
  const std::vector<std::string> vbs = {"",
                                        "1.3.6.1.6.3.1.1.5.3",
                                        "1.3.6.1.2.1.2.2.1.1.2",
                                        "i",
                                        "2",
                                        "1.3.6.1.2.1.2.2.1.8.2",
                                        "i",
                                        "2",
                                        "1.3.6.1.2.1.2.2.1.2.2",
                                        "s",
                                        "GigabitEthernet0/2"};
  auto with = [&](std::vector<std::string> head) {
    head.push_back("TARGET");
    head.insert(head.end(), vbs.begin(), vbs.end());
    return capture(head, state);
  };
  const std::vector<std::pair<std::string, std::vector<uint8_t>>> cases = {
      {"v2c trap", with({"snmptrap", "-v2c", "-c", "public"})},
      {"v3 authNoPriv SHA-256 trap",
       with({"snmptrap", "-v3", "-e", "0x8000000001aa", "-u", "b", "-l", "authNoPriv", "-a",
             "SHA-256", "-A", "benchpass1"})},
      {"v3 authPriv SHA/AES trap",
       with({"snmptrap", "-v3", "-e", "0x8000000001aa", "-u", "a", "-l", "authPriv", "-a", "SHA",
             "-A", "benchpass1", "-x", "AES", "-X", "benchpass2"})},
  };
  Settings s = base_settings();
  s.users.push_back(make_test_user("a", "SHA", "benchpass1", "AES", "benchpass2"));
  s.users.push_back(make_test_user("b", "SHA-256", "benchpass1"));
  Receiver r(std::move(s), own_engine());
  for (const auto& [name, d] : cases) {
    const int n = 200000;
    Outcome out;
    const auto t0 = std::chrono::steady_clock::now();
    int ok = 0;
    for (int i = 0; i < n; ++i) {
      r.handle(d, from_addr(), wall_now(), mono_now(), out);
      ok += out.has_event ? 1 : 0;
    }
    const double secs =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    CHECK(ok == n);
    std::printf("%-28s %8.0f datagrams/s (%zu bytes each, %.2f us)\n", name.c_str(), n / secs,
                d.size(), secs / n * 1e6);
  }
  fs::remove_all(state);
}
