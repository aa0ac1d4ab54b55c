#include "connection.hpp"

#include <openssl/err.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

namespace outpost::receiver {

namespace {
std::string ssl_error() {
  const unsigned long e = ERR_get_error();
  if (e == 0) return "unknown TLS error";
  char buf[256];
  ERR_error_string_n(e, buf, sizeof buf);
  return buf;
}
}  // namespace

SSL_CTX* make_tls_context(const Options& o, std::string& error) {
  SSL_CTX* ctx = SSL_CTX_new(TLS_server_method());
  if (ctx == nullptr) {
    error = "TLS: " + ssl_error();
    return nullptr;
  }
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  if (SSL_CTX_use_certificate_chain_file(ctx, o.cert.c_str()) != 1) {
    error = "--cert " + o.cert + ": " + ssl_error();
  } else if (SSL_CTX_use_PrivateKey_file(ctx, o.key.c_str(), SSL_FILETYPE_PEM) != 1) {
    error = "--key " + o.key + ": " + ssl_error();
  } else if (SSL_CTX_check_private_key(ctx) != 1) {
    error = "--key " + o.key + " does not match --cert " + o.cert;
  } else if (!o.client_ca.empty() &&
             SSL_CTX_load_verify_locations(ctx, o.client_ca.c_str(), nullptr) != 1) {
    error = "--client-ca " + o.client_ca + ": " + ssl_error();
  }
  if (!error.empty()) {
    SSL_CTX_free(ctx);
    return nullptr;
  }
  if (!o.client_ca.empty()) {
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
    SSL_CTX_set_client_CA_list(ctx, SSL_load_client_CA_file(o.client_ca.c_str()));
  }
  return ctx;
}

Connection::Connection(int fd, SSL_CTX* tls) : fd_(fd) {
  if (tls != nullptr) {
    ssl_ = SSL_new(tls);
    if (ssl_ != nullptr) SSL_set_fd(ssl_, fd_);
  }
}

Connection::~Connection() {
  if (ssl_ != nullptr) {
    SSL_shutdown(ssl_);
    SSL_free(ssl_);
  }
  ::close(fd_);
}

bool Connection::handshake(std::string& error) {
  if (ssl_ == nullptr) return true;
  ERR_clear_error();
  if (SSL_accept(ssl_) != 1) {
    error = "TLS handshake: " + ssl_error();
    return false;
  }
  return true;
}

long Connection::read(char* buf, std::size_t n) {
  if (ssl_ != nullptr) {
    const int len = static_cast<int>(n > 1u << 30 ? 1u << 30 : n);
    const int r = SSL_read(ssl_, buf, len);
    if (r > 0) return r;
    return SSL_get_error(ssl_, r) == SSL_ERROR_ZERO_RETURN ? 0 : -1;
  }
  for (;;) {
    const ssize_t r = ::recv(fd_, buf, n, 0);
    if (r < 0 && errno == EINTR) continue;
    return r;
  }
}

bool Connection::write_all(std::string_view data) {
  while (!data.empty()) {
    long r;
    if (ssl_ != nullptr) {
      const int len = static_cast<int>(data.size() > 1u << 30 ? 1u << 30 : data.size());
      r = SSL_write(ssl_, data.data(), len);
      if (r <= 0) return false;
    } else {
      r = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
      if (r < 0 && errno == EINTR) continue;
      if (r <= 0) return false;
    }
    data.remove_prefix(static_cast<std::size_t>(r));
  }
  return true;
}

}  // namespace outpost::receiver
