// The client against a real Samba 4.17 (smbd + samba-dcerpcd on loopback), which
// dcerpc_samba.sh starts once and describes in the environment: DCERPC_USER, DCERPC_PASSWORD,
// DCERPC_SAMR_PORT and DCERPC_DOMAINS (what impacket got from the same server in this run).
// Blocking sockets: the driver of a test, not of the engine.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <outpost_lib/dcerpc.hpp>
#include <string>
#include <vector>

#include "wire.hpp"

namespace rpc = outpost::lib::dcerpc;

namespace {

std::string env(const char* name) {
  const char* v = std::getenv(name);
  if (!v) FAIL(std::string(name) + " is not set: run this program through dcerpc_samba.sh");
  return v;
}

const rpc::SyntaxId kSamr{rpc::Uuid::parse("12345778-1234-abcd-ef00-0123456789ac"), 1, 0};
const rpc::SyntaxId kLsarpc{rpc::Uuid::parse("12345778-1234-abcd-ef00-0123456789ab"), 0, 0};

class Connection {
 public:
  explicit Connection(uint16_t port) : fd_(::socket(AF_INET, SOCK_STREAM, 0)) {
    REQUIRE(fd_ >= 0);
    timeval tv{10, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
  }
  ~Connection() { ::close(fd_); }
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  void send(const std::vector<uint8_t>& bytes) {
    std::size_t at = 0;
    while (at < bytes.size()) {
      const ssize_t n = ::send(fd_, bytes.data() + at, bytes.size() - at, MSG_NOSIGNAL);
      if (n <= 0) return;  // a closed connection shows on the next receive
      at += static_cast<std::size_t>(n);
    }
  }
  // The next PDU, or nullopt when the server closed the connection.
  std::optional<std::vector<uint8_t>> receive() {
    for (;;) {
      if (auto pdu = reader_.next()) return pdu;
      uint8_t buf[4096];
      const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
      if (n == 0 || (n < 0 && errno == ECONNRESET)) return std::nullopt;
      REQUIRE(n > 0);  // a timeout is a failure
      reader_.feed({buf, static_cast<std::size_t>(n)});
    }
  }

 private:
  int fd_;
  rpc::Reader reader_;
};

std::size_t last_fragments = 0;  // of the last call() request

// bind (and AUTH3); throws what the association throws.
void bind(Connection& c, rpc::Association& a, const rpc::SyntaxId& iface) {
  c.send(a.bind(iface));
  auto ack = c.receive();
  if (!ack) throw a.closed();
  const auto auth3 = a.on_bind_ack(*ack);
  if (!auth3.empty()) c.send(auth3);
}

std::vector<uint8_t> call(Connection& c, rpc::Association& a, uint16_t opnum,
                          const std::vector<uint8_t>& stub,
                          std::optional<uint16_t> context = std::nullopt) {
  const auto fragments = a.request(opnum, stub, std::nullopt, context);
  last_fragments = fragments.size();
  for (const auto& f : fragments) c.send(f);
  for (;;) {
    auto pdu = c.receive();
    if (!pdu) throw a.closed();
    if (auto out = a.on_response(*pdu)) return *out;
  }
}

// ---- The little NDR the SAMR and LSA calls need.

void wide_string(rpc::wire::Writer& w, const std::u16string& s) {  // [unique, string] wchar_t*
  w.u32(0x00020000);
  const auto n = static_cast<uint32_t>(s.size() + 1);
  w.u32(n);
  w.u32(0);
  w.u32(n);
  for (char16_t ch : s) w.u16(static_cast<uint16_t>(ch));
  w.u16(0);
  w.align(4);
}

std::string read_unicode_string_body(rpc::wire::Cursor& c) {  // deferred conformant varying
  const uint32_t max = c.u32();
  const uint32_t offset = c.u32();
  const uint32_t actual = c.u32();
  REQUIRE(offset == 0);
  REQUIRE(actual <= max);
  std::string s;
  for (uint32_t i = 0; i < actual; ++i) s += static_cast<char>(c.u16());  // ASCII names here
  c.align(4);
  return s;
}

using Handle = std::array<uint8_t, 20>;

Handle handle_and_status(std::span<const uint8_t> out) {
  rpc::wire::Cursor c{out, 0, "handle"};
  Handle h{};
  const auto b = c.take(20);
  std::copy(b.begin(), b.end(), h.begin());
  const uint32_t status = c.u32();
  INFO("NTSTATUS " << status);
  REQUIRE(status == 0);
  REQUIRE(h != Handle{});
  return h;
}

// SamrConnect2 (opnum 57) with a server name, which Samba does not look at: a long one makes a
// request of several fragments.
Handle samr_connect(Connection& c, rpc::Association& a, std::size_t name_length = 8) {
  rpc::wire::Writer w;
  wide_string(w, u"\\\\" + std::u16string(name_length, u'x'));
  w.u32(0x02000000);  // MAXIMUM_ALLOWED
  return handle_and_status(call(c, a, 57, w.out));
}

// SamrEnumerateDomainsInSamServer (opnum 6): the names, comma separated.
std::string samr_domains(Connection& c, rpc::Association& a, const Handle& h,
                         std::optional<uint16_t> context = std::nullopt) {
  rpc::wire::Writer w;
  w.bytes(h);
  w.u32(0);       // EnumerationContext
  w.u32(0xffff);  // PreferedMaximumLength
  const auto out = call(c, a, 6, w.out, context);
  rpc::wire::Cursor r{out, 0, "SamrEnumerateDomainsInSamServer"};
  (void)r.u32();  // EnumerationContext
  REQUIRE(r.u32() != 0);
  const uint32_t entries = r.u32();
  REQUIRE(r.u32() != 0);  // the array's referent
  REQUIRE(r.u32() == entries);
  std::vector<bool> present;
  for (uint32_t i = 0; i < entries; ++i) {
    (void)r.u32();  // RelativeId
    (void)r.u16();  // Length
    (void)r.u16();  // MaximumLength
    present.push_back(r.u32() != 0);
  }
  std::string names;
  for (uint32_t i = 0; i < entries; ++i) {
    if (!present[i]) continue;
    if (!names.empty()) names += ',';
    names += read_unicode_string_body(r);
  }
  REQUIRE(r.u32() == entries);  // CountReturned
  REQUIRE(r.u32() == 0);        // NTSTATUS
  return names;
}

rpc::Association authenticated(rpc::AuthLevel level, const std::string& password,
                               rpc::AssociationOptions o = {}) {
  return rpc::Association(level, outpost::lib::ntlm::Credentials{env("DCERPC_USER"), "", password},
                          o);
}

uint16_t samr_port() { return static_cast<uint16_t>(std::stoi(env("DCERPC_SAMR_PORT"))); }

uint16_t ept_map(const rpc::SyntaxId& iface) {
  Connection c(135);
  rpc::Association a(rpc::AuthLevel::none, std::nullopt);
  bind(c, a, rpc::epmapper_syntax());
  const auto ports = rpc::ept_map_ports(call(c, a, rpc::kEptMapOpnum, rpc::ept_map_request(iface)));
  REQUIRE(ports.size() >= 1);
  return ports[0];
}

}  // namespace

TEST_CASE("ept_map on 135 finds SAMR where impacket found it") {
  CHECK(ept_map(kSamr) == samr_port());
}

TEST_CASE("ept_map of an interface nobody serves is ept_s_not_registered") {
  try {
    ept_map({rpc::Uuid::parse("01234567-89ab-cdef-0123-456789abcdef"), 1, 0});
    FAIL("no error");
  } catch (const rpc::Error& e) {
    CHECK(e.status == rpc::Status::unavailable);
    CHECK(e.code == rpc::kEptNotRegistered);
  }
}

TEST_CASE("SAMR at packet privacy lists the domains impacket lists") {
  Connection c(samr_port());
  auto a = authenticated(rpc::AuthLevel::privacy, env("DCERPC_PASSWORD"));
  bind(c, a, kSamr);
  const auto h = samr_connect(c, a);
  CHECK(samr_domains(c, a, h) == env("DCERPC_DOMAINS"));
}

TEST_CASE("SAMR at packet integrity lists the domains impacket lists") {
  Connection c(samr_port());
  auto a = authenticated(rpc::AuthLevel::integrity, env("DCERPC_PASSWORD"));
  bind(c, a, kSamr);
  const auto h = samr_connect(c, a);
  CHECK(samr_domains(c, a, h) == env("DCERPC_DOMAINS"));
}

TEST_CASE("a fragmented sealed call gets its answer") {
  Connection c(samr_port());
  rpc::AssociationOptions o;
  o.max_xmit_frag = 2048;  // Samba's floor
  auto a = authenticated(rpc::AuthLevel::privacy, env("DCERPC_PASSWORD"), o);
  bind(c, a, kSamr);
  REQUIRE(a.max_xmit_frag() == 2048);
  const auto h = samr_connect(c, a, 3000);
  CHECK(last_fragments == 4);  // a stub of 6028 bytes in sealed pieces of 2000
  CHECK(samr_domains(c, a, h) == env("DCERPC_DOMAINS"));
}

TEST_CASE("a wrong password is an auth error") {
  Connection c(samr_port());
  auto a = authenticated(rpc::AuthLevel::privacy, "not-the-password");
  try {
    bind(c, a, kSamr);
    samr_connect(c, a);
    FAIL("no error");
  } catch (const rpc::Error& e) {
    INFO(e.what());
    CHECK(e.status == rpc::Status::auth_refused);
  }
}

TEST_CASE("an interface the endpoint does not serve is refused at bind") {
  Connection c(samr_port());
  auto a = authenticated(rpc::AuthLevel::privacy, env("DCERPC_PASSWORD"));
  try {
    bind(c, a, {rpc::Uuid::parse("01234567-89ab-cdef-0123-456789abcdef"), 1, 0});
    FAIL("no error");
  } catch (const rpc::Error& e) {
    INFO(e.what());
    CHECK(e.status == rpc::Status::unavailable);
  }
}

TEST_CASE("alter_context adds DSSETUP to a sealed SAMR association") {
  // LSARPC is served there too, but Samba refuses LsarOpenPolicy2 over TCP to anyone
  // (rpc_s_access_denied, impacket alike); DSSETUP answers.
  const rpc::SyntaxId dssetup{rpc::Uuid::parse("3919286a-b10c-11d0-9ba8-00c04fd92ef5"), 0, 0};
  REQUIRE(ept_map(kLsarpc) == samr_port());  // rpcd_lsad serves lsarpc, samr and dssetup
  Connection c(samr_port());
  auto a = authenticated(rpc::AuthLevel::privacy, env("DCERPC_PASSWORD"));
  bind(c, a, kSamr);
  const auto samr = samr_connect(c, a);

  c.send(a.alter_context(dssetup));
  auto resp = c.receive();
  REQUIRE(resp);
  a.on_alter_context_resp(*resp);
  REQUIRE(a.context_id(dssetup) == uint16_t{1});
  REQUIRE(a.context_id(kSamr) == uint16_t{0});

  // DsRolerGetPrimaryDomainInformation (opnum 0), DsRolePrimaryDomainInfoBasic (1).
  rpc::wire::Writer w;
  w.u16(1);
  const auto out = call(c, a, 0, w.out);
  rpc::wire::Cursor r{out, 0, "DsRolerGetPrimaryDomainInformation"};
  REQUIRE(r.u32() != 0);  // referent
  REQUIRE(r.u16() == 1);  // union discriminant
  r.align(4);
  CHECK(r.u16() == 2);  // MachineRole: DsRole_RoleStandaloneServer
  r.align(4);
  (void)r.u32();  // Flags
  const bool flat = r.u32() != 0, dns = r.u32() != 0, forest = r.u32() != 0;
  r.skip(16);  // DomainGuid
  REQUIRE(flat);
  std::string domain = read_unicode_string_body(r);
  while (!domain.empty() && domain.back() == '\0') domain.pop_back();
  if (dns) (void)read_unicode_string_body(r);
  if (forest) (void)read_unicode_string_body(r);
  CHECK(r.u32() == 0);  // WERROR
  const std::string domains = env("DCERPC_DOMAINS");
  CHECK(domain == domains.substr(0, domains.find(',')));

  // And SAMR still answers on context 0 of the same association.
  CHECK(samr_domains(c, a, samr, a.context_id(kSamr)) == domains);
}
