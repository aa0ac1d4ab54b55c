#include "driver.hpp"

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace outpost::winrm {

namespace {

using outpost::lib::PollJob;
namespace http1 = outpost::lib::http1;
namespace ntlm = outpost::lib::ntlm;

constexpr std::size_t kReadChunk = 64 * 1024;
constexpr std::size_t kMaxItemsPerTask = 200'000;
constexpr int64_t kRestartPollNs = 500'000'000;

std::string errno_text(int err) {
  char buf[128];
  return ::strerror_r(err, buf, sizeof buf);  // GNU variant
}

std::string tls_error_text() {
  const unsigned long e = ERR_get_error();
  ERR_clear_error();
  if (e == 0) return "TLS error";
  char buf[256];
  ERR_error_string_n(e, buf, sizeof buf);
  return buf;
}

std::string endpoint(const WinrmJob& j) {
  std::string host = j.s.address;
  if (host.find(':') != std::string::npos && host.front() != '[') host = "[" + host + "]";
  return std::string(j.s.https ? "https://" : "http://") + host + ":" + std::to_string(j.s.port) +
         j.s.path;
}

std::string host_header(const WinrmJob& j) {
  std::string host = j.s.address;
  if (host.find(':') != std::string::npos && host.front() != '[') host = "[" + host + "]";
  return host + ":" + std::to_string(j.s.port);
}

// RFC 5929 tls-server-end-point: the certificate's hash with its signature's digest, SHA-256
// for MD5 and SHA-1. NTLM binds it (MS-NLMP MsvAvChannelBindings) as the MD5 of a
// gss_channel_bindings_struct whose only content is "tls-server-end-point:" + hash.
std::vector<uint8_t> channel_bindings_md5(const std::string& end_point_hash) {
  if (end_point_hash.empty()) return {};
  const std::string app = "tls-server-end-point:" + end_point_hash;
  std::string st(16, '\0');  // initiator and acceptor address types and lengths: all zero
  const auto n = static_cast<uint32_t>(app.size());
  for (int i = 0; i < 4; ++i) st.push_back(static_cast<char>((n >> (8 * i)) & 0xFF));
  st += app;
  std::vector<uint8_t> md(16);
  unsigned int len = 0;
  EVP_Digest(st.data(), st.size(), md.data(), &len, EVP_md5(), nullptr);
  return md;
}

std::string end_point_hash(SSL* ssl) {
  X509* cert = SSL_get1_peer_certificate(ssl);
  if (cert == nullptr) return {};
  int md_nid = NID_undef;
  OBJ_find_sigid_algs(X509_get_signature_nid(cert), &md_nid, nullptr);
  const EVP_MD* md = (md_nid == NID_md5 || md_nid == NID_sha1 || md_nid == NID_undef)
                         ? EVP_sha256()
                         : EVP_get_digestbynid(md_nid);
  if (md == nullptr) md = EVP_sha256();
  unsigned char buf[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  std::string out;
  if (X509_digest(cert, md, buf, &len) == 1) out.assign(reinterpret_cast<char*>(buf), len);
  X509_free(cert);
  return out;
}

// "DOMAIN\user" -> (DOMAIN, user); "user@domain" and "user" stay the user, with the domain
// given separately (NTLM accepts a UPN as the user name with an empty domain).
std::pair<std::string, std::string> split_user(const std::string& user, const std::string& domain) {
  const std::size_t bs = user.find('\\');
  if (bs != std::string::npos) return {user.substr(0, bs), user.substr(bs + 1)};
  if (user.find('@') != std::string::npos) return {std::string(), user};  // a UPN
  return {domain, user};
}

std::string_view as_view(const std::vector<uint8_t>& v) {
  return {reinterpret_cast<const char*>(v.data()), v.size()};
}

WinrmJob::Step first_step(const Task& t) {
  using Step = WinrmJob::Step;
  return t.kind == Task::Kind::invoke    ? Step::invoke
         : t.kind == Task::Kind::command ? Step::shell_create
                                         : Step::enumerate;
}

}  // namespace

Driver::~Driver() {
  for (auto& [k, ctx] : tls_) SSL_CTX_free(ctx);
}

SSL_CTX* Driver::tls_context(const std::string& ca_file) {
  std::lock_guard g(tls_mu_);
  if (auto it = tls_.find(ca_file); it != tls_.end()) return it->second;
  SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
  if (ctx == nullptr) throw outpost::Error(OUTPOST_E_INTERNAL, "TLS: " + tls_error_text());
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  // A close without close_notify reads as an end of stream; the HTTP framing then tells a
  // complete answer from a truncated one.
  SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
  const int ok = ca_file.empty() ? SSL_CTX_set_default_verify_paths(ctx)
                                 : SSL_CTX_load_verify_locations(ctx, ca_file.c_str(), nullptr);
  if (ok != 1) {
    SSL_CTX_free(ctx);
    throw outpost::Error(OUTPOST_E_CONFIG, "tls_ca_file '" + ca_file + "': " + tls_error_text());
  }
  tls_[ca_file] = ctx;
  return ctx;
}

bool Driver::begin(PollJob& job) {
  auto& j = static_cast<WinrmJob&>(job);
  j.encrypt = j.s.auth != Auth::basic && !j.s.https;
  if (j.tasks.empty()) {
    rt_->finish(j, OUTPOST_OK, "nothing to do");
    return true;
  }
  j.step = first_step(j.tasks.front());
  // An answer larger than the envelope size asked for (plus the sealing) is not WinRM's.
  outpost::lib::http1::Limits lim;
  lim.max_body_bytes = std::size_t{j.s.max_envelope_size} * 2 + 64 * 1024;
  j.parser = outpost::lib::http1::ResponseParser(lim);
  return connect_next(j);
}

bool Driver::connect_next(WinrmJob& j) {
  while (j.addr_index < j.addrs.size()) {
    const outpost::lib::Address& a = j.addrs[j.addr_index];
    int err = 0;
    const int fd = outpost::lib::start_connect(a, j.s.port, &err);
    if (fd < 0) {
      if (err == EMFILE || err == ENFILE) return false;
      if (++j.addr_index < j.addrs.size()) continue;
      fail(j, OUTPOST_E_UNAVAILABLE,
           "connect to " + a.text() + " port " + std::to_string(j.s.port) + ": " + errno_text(err));
      return true;
    }
    j.fd = fd;
    j.phase = WinrmJob::Phase::connecting;
    rt_->watch(j, fd, EPOLLOUT);
    return true;
  }
  fail(j, OUTPOST_E_UNAVAILABLE, "no address to connect to");
  return true;
}

void Driver::watch_for(WinrmJob& j, bool want_write) {
  rt_->watch(j, j.fd, want_write ? EPOLLOUT : EPOLLIN);
}

void Driver::close_conn(WinrmJob& j) {
  if (j.ssl != nullptr) {
    SSL_free(j.ssl);
    j.ssl = nullptr;
  }
  if (j.fd >= 0) rt_->unwatch(j, j.fd);  // closes it
  j.fd = -1;
  j.auth_stage = WinrmJob::AuthStage::none;
  j.session.reset();
  j.ntlm.reset();
  j.krb.reset();
}

void Driver::on_io(PollJob& job, int fd, uint32_t events) {
  auto& j = static_cast<WinrmJob&>(job);
  if (fd != j.fd) return;
  switch (j.phase) {
    case WinrmJob::Phase::connecting: {
      const int err = outpost::lib::connect_result(fd, events);
      if (err != 0) {
        outpost::lib::Address a = j.addrs[j.addr_index];
        rt_->unwatch(j, fd);
        j.fd = -1;
        if (++j.addr_index < j.addrs.size()) {
          if (!connect_next(j)) fail(j, OUTPOST_E_UNAVAILABLE, "out of file descriptors");
          return;
        }
        return fail(j, OUTPOST_E_UNAVAILABLE,
                    "connect to " + a.text() + " port " + std::to_string(j.s.port) + ": " +
                        errno_text(err));
      }
      if (j.connected_ns == 0) j.connected_ns = rt_->now();
      if (j.s.https) return start_tls(j);
      return send_request(j);
    }
    case WinrmJob::Phase::tls:
      return drive_tls(j);
    case WinrmJob::Phase::writing:
      return write_some(j);
    case WinrmJob::Phase::reading:
      return read_some(j);
  }
}

void Driver::start_tls(WinrmJob& j) {
  SSL_CTX* ctx = nullptr;
  try {
    ctx = tls_context(j.s.tls_ca_file);
  } catch (const outpost::Error& e) {
    return fail(j, e.status(), e.what());
  }
  j.ssl = SSL_new(ctx);
  if (j.ssl == nullptr) return fail(j, OUTPOST_E_INTERNAL, "TLS: " + tls_error_text());
  SSL_set_fd(j.ssl, j.fd);
  const std::string name = j.s.tls_server_name.empty() ? j.s.address : j.s.tls_server_name;
  const bool is_ip = outpost::lib::Address::parse(name).has_value();
  if (!is_ip) SSL_set_tlsext_host_name(j.ssl, name.c_str());
  if (j.s.tls_verify) {
    SSL_set_verify(j.ssl, SSL_VERIFY_PEER, nullptr);
    X509_VERIFY_PARAM* vp = SSL_get0_param(j.ssl);
    if (is_ip)
      X509_VERIFY_PARAM_set1_ip_asc(vp, name.c_str());
    else
      X509_VERIFY_PARAM_set1_host(vp, name.c_str(), 0);
  } else {
    SSL_set_verify(j.ssl, SSL_VERIFY_NONE, nullptr);
  }
  SSL_set_connect_state(j.ssl);
  j.phase = WinrmJob::Phase::tls;
  drive_tls(j);
}

void Driver::drive_tls(WinrmJob& j) {
  ERR_clear_error();
  const int rc = SSL_do_handshake(j.ssl);
  if (rc == 1) {
    j.tls_end_point_hash = end_point_hash(j.ssl);
    return send_request(j);
  }
  const int e = SSL_get_error(j.ssl, rc);
  if (e == SSL_ERROR_WANT_READ) return watch_for(j, false);
  if (e == SSL_ERROR_WANT_WRITE) return watch_for(j, true);
  const long vr = SSL_get_verify_result(j.ssl);
  if (j.s.tls_verify && vr != X509_V_OK)
    return fail(j, OUTPOST_E_AUTH,
                std::string("TLS: the server's certificate is not trusted: ") +
                    X509_verify_cert_error_string(vr) +
                    " (give tls_ca_file, or tls_verify: false to accept any certificate)");
  fail(j, OUTPOST_E_UNAVAILABLE, "TLS handshake with " + host_header(j) + ": " + tls_error_text());
}

std::string Driver::build_envelope(WinrmJob& j) {
  const Task& t = j.tasks[j.task_at];
  wsman::Header h;
  h.to = endpoint(j);
  h.max_envelope_size = j.s.max_envelope_size;
  h.operation_timeout_s = j.s.operation_timeout_s;
  std::string body;
  using Step = WinrmJob::Step;
  switch (j.step) {
    case Step::enumerate:
      h.resource_uri = wsman::wmi_resource_uri(t.wmi_namespace, "*");
      h.action = std::string(wsman::action::enumerate);
      if (j.probing)
        body = wsman::enumerate_body(wql::eventlog_probe_wql(t.log, t.window_end.value_or(0)),
                                     j.s.max_elements);
      else if (t.kind == Task::Kind::invoke)
        body = wsman::enumerate_body(wql::service_state_wql(t), j.s.max_elements);
      else
        body = wsman::enumerate_body(t.wql, j.s.max_elements);
      break;
    case Step::pull:
      h.resource_uri = wsman::wmi_resource_uri(t.wmi_namespace, "*");
      h.action = std::string(wsman::action::pull);
      body = wsman::pull_body(j.context, j.s.max_elements);
      break;
    case Step::invoke: {
      h.resource_uri = wsman::wmi_resource_uri(t.wmi_namespace, t.class_name);
      const std::string method = wql::service_method(t, j.restart_phase == 1);
      h.action = h.resource_uri + "/" + method;
      h.selectors = t.selectors;
      body = wsman::invoke_body(h.resource_uri, method, {});
      break;
    }
    case Step::shell_create:
      h.resource_uri = std::string(wsman::kShellUri);
      h.action = std::string(wsman::action::create);
      h.options = {{"WINRS_NOPROFILE", "FALSE"}, {"WINRS_CODEPAGE", "65001"}};
      body = wsman::shell_create_body();
      break;
    case Step::shell_command:
      h.resource_uri = std::string(wsman::kShellUri);
      h.action = std::string(wsman::action::command);
      h.selectors = {{"ShellId", j.shell_id}};
      h.options = {{"WINRS_CONSOLEMODE_STDIN", "TRUE"}, {"WINRS_SKIP_CMD_SHELL", "FALSE"}};
      body = wsman::shell_command_body(t.command, {});
      break;
    case Step::shell_receive:
      h.resource_uri = std::string(wsman::kShellUri);
      h.action = std::string(wsman::action::receive);
      h.selectors = {{"ShellId", j.shell_id}};
      body = wsman::shell_receive_body(j.command_id);
      break;
    case Step::shell_signal:
      h.resource_uri = std::string(wsman::kShellUri);
      h.action = std::string(wsman::action::signal);
      h.selectors = {{"ShellId", j.shell_id}};
      body = wsman::shell_signal_body(j.command_id);
      break;
    case Step::shell_delete:
      h.resource_uri = std::string(wsman::kShellUri);
      h.action = std::string(wsman::action::remove);
      h.selectors = {{"ShellId", j.shell_id}};
      break;
  }
  return wsman::envelope(h, body);
}

void Driver::send_request(WinrmJob& j) {
  if (j.fd < 0) {  // the server closed after the last answer: a new connection, a new login
    j.parser.reset();
    if (!connect_next(j)) fail(j, OUTPOST_E_UNAVAILABLE, "out of file descriptors");
    return;
  }
  http1::Headers h;
  h.emplace_back("User-Agent", "Outpost WinRM");
  h.emplace_back("Connection", "Keep-Alive");
  std::string body;
  if (j.s.auth == Auth::basic) {
    h.emplace_back("Authorization", "Basic " + wsman::base64_encode(j.s.user + ":" + j.s.password));
  } else if (j.s.auth == Auth::kerberos && j.auth_stage == WinrmJob::AuthStage::none) {
    // The AP-REQ goes on an empty request; the AP-REP comes back on its 200, and only then
    // is there a context to seal bodies with.
    if (!j.krb) {  // a new connection: a new context (the service ticket is cached by now)
      try {
        j.krb = std::make_unique<outpost::lib::gss::Context>(j.krb_cred, j.krb_service);
        j.krb_token = j.krb->initial_token();
      } catch (const outpost::lib::gss::Error& e) {
        return fail(j, e.status(), e.what());
      }
    }
    h.emplace_back("Authorization", "Kerberos " + wsman::base64_encode(as_view(j.krb_token)));
    h.emplace_back("Content-Type", "application/soap+xml;charset=UTF-8");
    j.auth_stage = WinrmJob::AuthStage::negotiate_sent;
    j.out = http1::request("POST", j.s.path, host_header(j), h, {});
    j.out_at = 0;
    j.phase = WinrmJob::Phase::writing;
    return write_some(j);
  } else if (j.auth_stage == WinrmJob::AuthStage::none) {
    // NTLM's first leg goes without the body: only the third carries it, sealed.
    const auto [domain, user] = split_user(j.s.user, j.s.domain);
    ntlm::ClientOptions o;
    o.target_spn = "HTTP/" + (j.s.tls_server_name.empty() ? j.s.address : j.s.tls_server_name);
    if (j.s.https) o.channel_bindings_md5 = channel_bindings_md5(j.tls_end_point_hash);
    j.ntlm = std::make_unique<ntlm::Client>(ntlm::Credentials{user, domain, j.s.password}, o);
    const std::vector<uint8_t> tok = j.ntlm->negotiate();
    h.emplace_back("Authorization", "Negotiate " + wsman::base64_encode(as_view(tok)));
    h.emplace_back("Content-Type", "application/soap+xml;charset=UTF-8");
    j.auth_stage = WinrmJob::AuthStage::negotiate_sent;
    j.out = http1::request("POST", j.s.path, host_header(j), h, {});
    j.out_at = 0;
    j.phase = WinrmJob::Phase::writing;
    return write_some(j);
  }
  j.soap = build_envelope(j);
  if (j.encrypt && j.s.auth == Auth::kerberos) {
    std::pair<std::string, std::string> w;
    try {
      w = j.krb->wrap(j.soap);
    } catch (const outpost::lib::gss::Error& e) {
      return fail(j, e.status(), e.what());
    }
    body = wsman::encrypted_body(wsman::kKerberosEncrypted, j.soap.size(),
                                 wsman::ntlm_sealed(w.first, w.second));
    h.emplace_back("Content-Type", wsman::encrypted_content_type(wsman::kKerberosEncrypted));
  } else if (j.encrypt) {
    std::vector<uint8_t> buf(j.soap.begin(), j.soap.end());
    const auto sig = j.session->seal(
        buf,
        std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(j.soap.data()), j.soap.size()));
    const std::string sealed = wsman::ntlm_sealed(
        std::string_view(reinterpret_cast<const char*>(sig.data()), sig.size()), as_view(buf));
    body = wsman::encrypted_body(wsman::kSpnegoEncrypted, j.soap.size(), sealed);
    h.emplace_back("Content-Type", wsman::encrypted_content_type(wsman::kSpnegoEncrypted));
  } else {
    body = j.soap;
    h.emplace_back("Content-Type", "application/soap+xml;charset=UTF-8");
  }
  if (!j.pending_authorization.empty()) {
    h.emplace_back("Authorization", std::move(j.pending_authorization));
    j.pending_authorization.clear();
  }
  j.out = http1::request("POST", j.s.path, host_header(j), h, body);
  j.out_at = 0;
  j.phase = WinrmJob::Phase::writing;
  write_some(j);
}

void Driver::write_some(WinrmJob& j) {
  while (j.out_at < j.out.size()) {
    const char* p = j.out.data() + j.out_at;
    const std::size_t n = j.out.size() - j.out_at;
    if (j.ssl != nullptr) {
      ERR_clear_error();
      const int rc = SSL_write(j.ssl, p, static_cast<int>(std::min<std::size_t>(n, INT32_MAX)));
      if (rc <= 0) {
        const int e = SSL_get_error(j.ssl, rc);
        if (e == SSL_ERROR_WANT_WRITE) return watch_for(j, true);
        if (e == SSL_ERROR_WANT_READ) return watch_for(j, false);
        return fail(j, OUTPOST_E_UNAVAILABLE, "TLS write: " + tls_error_text());
      }
      j.out_at += static_cast<std::size_t>(rc);
    } else {
      const ssize_t rc = ::send(j.fd, p, n, MSG_NOSIGNAL);
      if (rc < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK) return watch_for(j, true);
        if (errno == EINTR) continue;
        return fail(j, OUTPOST_E_UNAVAILABLE,
                    "send to " + host_header(j) + ": " + errno_text(errno));
      }
      j.out_at += static_cast<std::size_t>(rc);
    }
  }
  j.out.clear();
  j.out_at = 0;
  j.parser.reset();
  j.phase = WinrmJob::Phase::reading;
  watch_for(j, false);
}

void Driver::read_some(WinrmJob& j) {
  char buf[kReadChunk];
  for (;;) {
    std::size_t got = 0;
    bool eof = false;
    if (j.ssl != nullptr) {
      ERR_clear_error();
      const int rc = SSL_read(j.ssl, buf, sizeof buf);
      if (rc <= 0) {
        const int e = SSL_get_error(j.ssl, rc);
        if (e == SSL_ERROR_WANT_READ) return watch_for(j, false);
        if (e == SSL_ERROR_WANT_WRITE) return watch_for(j, true);
        if (e == SSL_ERROR_ZERO_RETURN)
          eof = true;
        else
          return fail(j, OUTPOST_E_UNAVAILABLE,
                      e == SSL_ERROR_SYSCALL ? std::string("TLS read: the connection was reset")
                                             : "TLS read: " + tls_error_text());
      } else {
        got = static_cast<std::size_t>(rc);
      }
    } else {
      const ssize_t rc = ::recv(j.fd, buf, sizeof buf, 0);
      if (rc < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK) return;  // still watched for EPOLLIN
        if (errno == EINTR) continue;
        return fail(j, OUTPOST_E_UNAVAILABLE,
                    "receive from " + host_header(j) + ": " + errno_text(errno));
      }
      if (rc == 0) eof = true;
      got = static_cast<std::size_t>(rc);
    }
    if (eof) {
      if (j.parser.finish_eof() == http1::ResponseParser::State::complete) {
        j.parser.response().keep_alive = false;
        return on_response(j);
      }
      return fail(j, OUTPOST_E_UNAVAILABLE,
                  "the server closed the connection" +
                      std::string(j.auth_stage == WinrmJob::AuthStage::authenticate_sent
                                      ? " after the NTLM login (a server that requires message "
                                        "encryption or channel binding this client did not "
                                        "offer closes like this)"
                                      : ""));
    }
    j.parser.feed(std::string_view(buf, got));
    if (j.parser.state() == http1::ResponseParser::State::error)
      return fail(j, OUTPOST_E_UNAVAILABLE,
                  "not an HTTP answer from " + host_header(j) + ": " + j.parser.error());
    if (j.parser.state() == http1::ResponseParser::State::complete) return on_response(j);
  }
}

void Driver::on_response(WinrmJob& j) {
  http1::Response& resp = j.parser.response();
  ++j.requests;
  using Stage = WinrmJob::AuthStage;
  if (j.auth_stage == Stage::negotiate_sent && j.s.auth == Auth::kerberos) {
    std::string_view token;
    for (auto v : resp.all("WWW-Authenticate"))
      if (v.size() > 9 && http1::iequals(v.substr(0, 9), "Kerberos ")) token = v.substr(9);
    if (resp.status == 401)
      return fail(j, OUTPOST_E_AUTH,
                  "the server refused the Kerberos ticket of " + j.krb_cred->principal() + " for " +
                      j.krb_service +
                      " (HTTP 401): the service principal's key differs from the server's, the "
                      "clocks are more than 5 minutes apart, or the account has no WinRM rights");
    if (resp.status != 200 || token.empty())
      return fail(j, OUTPOST_E_AUTH,
                  "the server did not complete Kerberos mutual authentication (HTTP " +
                      std::to_string(resp.status) + ")");
    auto reply = wsman::base64_decode(token);
    if (!reply) return fail(j, OUTPOST_E_AUTH, "the Kerberos reply is not base64");
    try {
      if (!j.krb->step(std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(reply->data()),
                                                reply->size())))
        return fail(j, OUTPOST_E_AUTH, "Kerberos: the context needs more than one round trip");
    } catch (const outpost::lib::gss::Error& e) {
      return fail(j, e.status(), e.what());
    }
    if (!resp.keep_alive)
      return fail(j, OUTPOST_E_UNAVAILABLE,
                  "the server closed the connection after the Kerberos login");
    j.auth_stage = Stage::done;
    return send_request(j);
  }
  if (j.auth_stage == Stage::negotiate_sent) {
    std::string_view token;
    std::string scheme;
    for (auto v : resp.all("WWW-Authenticate")) {
      for (const char* s : {"Negotiate ", "NTLM "}) {
        const std::string_view sv(s);
        if (v.size() > sv.size() && http1::iequals(v.substr(0, sv.size()), sv)) {
          token = v.substr(sv.size());
          scheme = std::string(sv);
        }
      }
    }
    if (resp.status != 401 || token.empty()) {
      std::string offered;
      for (auto v : resp.all("WWW-Authenticate"))
        offered += (offered.empty() ? "" : ", ") + std::string(v.substr(0, v.find(' ')));
      return fail(j, resp.status == 401 ? OUTPOST_E_AUTH : OUTPOST_E_UNAVAILABLE,
                  "the server did not answer the NTLM negotiation (HTTP " +
                      std::to_string(resp.status) + (offered.empty() ? "" : ", offers " + offered) +
                      ")");
    }
    auto challenge = wsman::base64_decode(token);
    if (!challenge) return fail(j, OUTPOST_E_UNAVAILABLE, "NTLM challenge is not base64");
    try {
      const std::vector<uint8_t> auth = j.ntlm->authenticate(std::span<const uint8_t>(
          reinterpret_cast<const uint8_t*>(challenge->data()), challenge->size()));
      j.session.emplace(j.ntlm->session());
      j.pending_authorization = scheme + wsman::base64_encode(as_view(auth));
    } catch (const ntlm::Error& e) {
      return fail(j, OUTPOST_E_AUTH, std::string("NTLM: ") + e.what());
    }
    if (!resp.keep_alive)
      return fail(j, OUTPOST_E_UNAVAILABLE,
                  "the server closed the connection in the NTLM handshake");
    j.auth_stage = Stage::authenticate_sent;
    return send_request(j);
  }
  if (resp.status == 401) {
    const std::string who = j.s.user.empty() ? std::string("no user") : "user " + j.s.user;
    return fail(j, OUTPOST_E_AUTH,
                "the server refused the login of " + who + " (HTTP 401, " +
                    (j.s.auth == Auth::basic      ? "Basic"
                     : j.s.auth == Auth::kerberos ? "Kerberos"
                                                  : "NTLM") +
                    "): a wrong password, a locked account, or an account that is neither an "
                    "administrator nor in Remote Management Users");
  }
  if (j.auth_stage == Stage::authenticate_sent) j.auth_stage = Stage::done;
  std::string xml;
  const auto ct = resp.header("Content-Type").value_or("");
  if (ct.size() >= 19 && http1::iequals(ct.substr(0, 19), "multipart/encrypted") &&
      j.s.auth == Auth::kerberos) {
    if (!j.krb || !j.krb->established())
      return fail(j, OUTPOST_E_UNAVAILABLE, "an encrypted answer without a Kerberos context");
    try {
      const auto part = wsman::parse_encrypted_body(resp.body, wsman::kKerberosEncrypted);
      const auto [header, sealed] = wsman::split_sealed(part.sealed);
      xml = j.krb->unwrap(header, sealed);
      if (xml.size() != part.original_length)
        return fail(j, OUTPOST_E_UNAVAILABLE,
                    "the decrypted answer's length differs from its OriginalContent");
    } catch (const wsman::Error& e) {
      return fail(j, OUTPOST_E_UNAVAILABLE, std::string("encrypted answer: ") + e.what());
    } catch (const outpost::lib::gss::Error& e) {
      return fail(j, e.status(), e.what());
    }
  } else if (ct.size() >= 19 && http1::iequals(ct.substr(0, 19), "multipart/encrypted")) {
    if (!j.session) return fail(j, OUTPOST_E_UNAVAILABLE, "an encrypted answer without a session");
    try {
      const auto part = wsman::parse_encrypted_body(resp.body, wsman::kSpnegoEncrypted);
      const auto [sig, sealed] = wsman::split_ntlm_sealed(part.sealed);
      std::vector<uint8_t> buf(sealed.begin(), sealed.end());
      if (!j.session->unseal(
              buf, buf,
              std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(sig.data()), sig.size())))
        return fail(j, OUTPOST_E_AUTH,
                    "the answer's NTLM signature is wrong (tampered, or keys out of step)");
      if (buf.size() != part.original_length)
        return fail(j, OUTPOST_E_UNAVAILABLE,
                    "the decrypted answer's length differs from its OriginalContent");
      xml.assign(buf.begin(), buf.end());
    } catch (const wsman::Error& e) {
      return fail(j, OUTPOST_E_UNAVAILABLE, std::string("encrypted answer: ") + e.what());
    }
  } else {
    if (j.encrypt && (resp.status == 200 || (resp.status == 500 && !resp.body.empty())))
      return fail(j, resp.status == 200 ? OUTPOST_E_AUTH : OUTPOST_E_UNAVAILABLE,
                  "the server answered in plain text (HTTP " + std::to_string(resp.status) +
                      ") to an encrypted request: not trusted");
    xml = std::move(resp.body);
  }
  if (resp.status != 200 && resp.status != 500) {
    return fail(j,
                resp.status == 400 || resp.status == 413 || resp.status == 415
                    ? OUTPOST_E_CONFIG
                    : OUTPOST_E_UNAVAILABLE,
                "HTTP " + std::to_string(resp.status) + " " + resp.reason +
                    (resp.status == 400 && !j.encrypt && !j.s.https
                         ? " (a server that allows no unencrypted traffic refuses plain HTTP "
                           "bodies: use auth ntlm, which encrypts, or https)"
                         : ""));
  }
  wsman::Response r;
  try {
    wsman::ParseLimits lim;
    lim.max_items = std::size_t{j.s.max_elements} * 2 + 16;
    r = wsman::parse(xml, lim);
  } catch (const wsman::Error& e) {
    return fail(
        j, OUTPOST_E_UNAVAILABLE,
        "HTTP " + std::to_string(resp.status) + " without a WS-Management answer: " + e.what());
  }
  if (!resp.keep_alive) close_conn(j);
  handle_soap(j, r);
}

void Driver::handle_soap(WinrmJob& j, const wsman::Response& r) {
  Task& t = j.tasks[j.task_at];
  using Step = WinrmJob::Step;
  if (r.fault) {
    if (j.step == Step::shell_signal || j.step == Step::shell_delete) {
      // A shell that will not go away times out by itself on the server.
      if (j.step == Step::shell_signal) {
        j.step = Step::shell_delete;
        return send_request(j);
      }
      return task_done(j, j.shell_failure, j.shell_failure_why);
    }
    // A command that runs longer than OperationTimeout: its output is not there yet.
    if (j.step == Step::shell_receive && r.fault->subcode == "TimedOut") return send_request(j);
    if (j.step == Step::shell_command || j.step == Step::shell_receive)
      return abort_shell(j, r.fault->status(), r.fault->text());
    return task_done(j, r.fault->status(), r.fault->text());
  }
  switch (j.step) {
    case Step::enumerate:
    case Step::pull:
      if (j.items.size() + r.items.size() > kMaxItemsPerTask)
        return task_done(j, OUTPOST_E_CONFIG,
                         "more than " + std::to_string(kMaxItemsPerTask) + " instances");
      j.items.insert(j.items.end(), r.items.begin(), r.items.end());
      if (!r.end_of_sequence && !r.context.empty()) {
        j.context = r.context;
        j.step = Step::pull;
        return send_request(j);
      }
      if (t.kind == Task::Kind::invoke) {  // restart: waiting for the service to stop
        const std::string* found = j.items.empty() ? nullptr : j.items.front().value("State");
        const std::optional<std::string> state =
            found != nullptr ? std::optional<std::string>(*found) : std::nullopt;
        j.items.clear();
        if (state) j.service_state = *state;
        if (!state)
          return task_done(j, OUTPOST_E_NOT_FOUND, "no service " + t.selectors.at(0).second);
        if (*state != "Stopped") {
          // Look again in a moment, on a new connection: nothing is read from an idle one, so
          // a server that closes it meanwhile cannot be taken for an answer.
          close_conn(j);
          rt_->set_timer(j, rt_->now() + kRestartPollNs);
          return;
        }
        j.restart_phase = 1;
        j.step = Step::invoke;
        return send_request(j);
      }
      if (t.kind == Task::Kind::eventlog) {
        if (j.probing) {  // the window's last record exists: the window is complete
          if (!j.items.empty() && bookmarks_ != nullptr && t.window_end)
            bookmarks_->set(j.s.device, t.bookmark_key, *t.window_end);
          return task_done(j, OUTPOST_OK, {});
        }
        if (!finish_eventlog(j)) return;
        if (!t.window_end) return task_done(j, OUTPOST_OK, {});
        j.probing = true;
        j.items.clear();
        j.context.clear();
        j.step = Step::enumerate;
        return send_request(j);
      }
      finish_task_items(j);
      return task_done(j, OUTPOST_OK, {});
    case Step::invoke: {
      const std::string* rv = r.output ? r.output->value("ReturnValue") : nullptr;
      const std::string method = wql::service_method(t, j.restart_phase == 1);
      int64_t code = -1;
      if (rv != nullptr) code = std::strtoll(rv->c_str(), nullptr, 10);
      outpost::Event ev =
          wql::service_control_event(t, method, code, j.base, j.s.device, j.s.user, host_.now_ns());
      const std::string what = ev.message;
      rt_->emit(std::move(ev));
      const wql::ServiceStep next =
          wql::service_step(t, t.method == "restart" && j.restart_phase == 0, code);
      if (next.wait_stopped) {
        j.step = Step::enumerate;
        return send_request(j);
      }
      return task_done(j, next.status, next.status == OUTPOST_OK ? std::string() : what);
    }
    case Step::shell_create:
      if (r.shell_id.empty())
        return task_done(j, OUTPOST_E_UNAVAILABLE, "no ShellId in the answer");
      j.shell_id = r.shell_id;
      j.step = Step::shell_command;
      return send_request(j);
    case Step::shell_command:
      if (r.command_id.empty())
        return task_done(j, OUTPOST_E_UNAVAILABLE, "no CommandId in the answer");
      j.command_id = r.command_id;
      j.step = Step::shell_receive;
      return send_request(j);
    case Step::shell_receive: {
      j.shell.stdout_data += r.shell.stdout_data;
      j.shell.stderr_data += r.shell.stderr_data;
      if (j.shell.stdout_data.size() + j.shell.stderr_data.size() > 4 * 1024 * 1024)
        return abort_shell(j, OUTPOST_E_CONFIG, "command output larger than 4 MiB");
      if (!r.shell.done) return send_request(j);
      j.shell.exit_code = r.shell.exit_code;
      outpost::Event ev;
      ev.kind = "windows.command";
      ev.source = j.s.device;
      const int64_t code = j.shell.exit_code.value_or(-1);
      ev.severity = code == 0 ? OUTPOST_SEV_INFO : OUTPOST_SEV_WARNING;
      ev.message = j.shell.stdout_data;
      ev.attributes = j.base;
      ev.attributes.emplace_back("command", t.command);
      ev.attributes.emplace_back("exit_code", std::to_string(code));
      if (!j.shell.stderr_data.empty()) ev.attributes.emplace_back("stderr", j.shell.stderr_data);
      ev.time_ns = host_.now_ns();
      rt_->emit(std::move(ev));
      rt_->emit(outpost::Metric{"windows_command_exit_code", j.base, static_cast<double>(code),
                                host_.now_ns(), OUTPOST_METRIC_GAUGE});
      j.step = Step::shell_signal;
      return send_request(j);
    }
    case Step::shell_signal:
      j.step = Step::shell_delete;
      return send_request(j);
    case Step::shell_delete:
      return task_done(j, j.shell_failure, j.shell_failure_why);
  }
}

void Driver::abort_shell(WinrmJob& j, outpost_status status, const std::string& why) {
  // The failure is the task's; the shell (and its process) still goes, so failed commands do
  // not use up the account's MaxShellsPerUser.
  j.shell_failure = status;
  j.shell_failure_why = why;
  if (j.shell_id.empty()) return task_done(j, status, why);
  j.step = j.command_id.empty() ? WinrmJob::Step::shell_delete : WinrmJob::Step::shell_signal;
  send_request(j);
}

bool Driver::finish_eventlog(WinrmJob& j) {
  const Task& t = j.tasks[j.task_at];
  std::string why;
  if (!wql::take_eventlog(host_, bookmarks_, t, std::move(j.items), j.base, j.s.device,
                          j.s.max_events, why)) {
    j.items.clear();
    task_done(j, OUTPOST_E_BUSY, why);
    return false;
  }
  j.items.clear();
  return true;
}

void Driver::on_timer(PollJob& job) {
  auto& j = static_cast<WinrmJob&>(job);
  send_request(j);  // restart: look at the service's state again
}

void Driver::finish_task_items(WinrmJob& j) {
  const Task& t = j.tasks[j.task_at];
  const int64_t now = host_.now_ns();
  if (t.query != nullptr) {
    for (auto& m : wql::to_metrics(*t.query, j.items, j.base, now)) rt_->emit(std::move(m));
  }
  if (j.s.query_events)
    for (auto& ev : wql::instance_events(j.items, j.base, j.s.device, now))
      rt_->emit(std::move(ev));
  j.items.clear();
}

void Driver::task_done(WinrmJob& j, outpost_status status, const std::string& why) {
  j.outcome.done(j.tasks[j.task_at], status, why);
  j.items.clear();
  j.context.clear();
  j.shell = {};
  j.shell_id.clear();
  j.command_id.clear();
  j.restart_phase = 0;
  j.service_state.clear();
  j.probing = false;
  j.shell_failure = OUTPOST_OK;
  j.shell_failure_why.clear();
  if (++j.task_at >= j.tasks.size()) return all_done(j);
  j.step = first_step(j.tasks[j.task_at]);
  send_request(j);
}

void Driver::all_done(WinrmJob& j) {
  auto [status, detail] = j.outcome.result(j.tasks.size());
  rt_->finish(j, status, std::move(detail));
}

void Driver::fail(WinrmJob& j, outpost_status status, std::string why) {
  rt_->finish(j, status, std::move(why));
}

void Driver::on_deadline(PollJob& job) {
  auto& j = static_cast<WinrmJob&>(job);
  const char* where = j.phase == WinrmJob::Phase::connecting ? "connecting"
                      : j.phase == WinrmJob::Phase::tls      ? "in the TLS handshake"
                      : j.phase == WinrmJob::Phase::writing  ? "sending"
                                                             : "waiting for an answer";
  if (j.task_at < j.tasks.size() && !j.service_state.empty())
    return fail(j, OUTPOST_E_TIMEOUT,
                "timed out waiting for service " + j.tasks[j.task_at].selectors.at(0).second +
                    " to stop (its state: " + j.service_state + ")");
  fail(j, OUTPOST_E_TIMEOUT,
       std::string("timed out ") + where + " (" + host_header(j) + ", after " +
           std::to_string(j.requests) + " answers, " + std::to_string(j.task_at) + " of " +
           std::to_string(j.tasks.size()) + " tasks done)");
}

void Driver::on_end(PollJob& job, outpost_status, bool) {
  auto& j = static_cast<WinrmJob&>(job);
  if (j.ssl != nullptr) {
    SSL_free(j.ssl);
    j.ssl = nullptr;
  }
  const int64_t now = host_.now_ns();
  rt_->emit(outpost::Metric{"winrm_query_failures", j.base, static_cast<double>(j.outcome.failed()),
                            now, OUTPOST_METRIC_GAUGE});
}

}  // namespace outpost::winrm
