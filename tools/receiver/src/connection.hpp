// One accepted connection, plain TCP or TLS (OpenSSL), read and written the same way.
#pragma once

#include <openssl/ssl.h>

#include <cstddef>
#include <string>
#include <string_view>

#include "options.hpp"

namespace outpost::receiver {

// The server's TLS context from --cert/--key (and --client-ca: verify the peer); nullptr with a
// reason in error. Caller frees with SSL_CTX_free.
SSL_CTX* make_tls_context(const Options& o, std::string& error);

class Connection {
 public:
  // Takes fd. With a context, handshake() must succeed before anything else.
  Connection(int fd, SSL_CTX* tls);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  bool handshake(std::string& error);
  // Bytes read (> 0), 0 at end of stream, -1 on an error or the idle timeout.
  long read(char* buf, std::size_t n);
  bool write_all(std::string_view data);

 private:
  int fd_;
  SSL* ssl_ = nullptr;
};

}  // namespace outpost::receiver
