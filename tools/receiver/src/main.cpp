// outpost-receiver: listens, hands each connection to a thread of its own (at most
// --max-connections at once), serves requests on it until either side closes.
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <thread>

#include "connection.hpp"
#include "http.hpp"
#include "options.hpp"
#include "service.hpp"

namespace {

using namespace outpost::receiver;

std::atomic<bool> g_stop{false};
std::atomic<std::size_t> g_connections{0};

void on_signal(int) { g_stop = true; }

int listen_on(const Options& o, std::string& bound, std::string& error) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* res = nullptr;
  const std::string port = std::to_string(o.port);
  if (const int rc = ::getaddrinfo(o.host.c_str(), port.c_str(), &hints, &res); rc != 0) {
    error = "--listen " + o.host + ": " + gai_strerror(rc);
    return -1;
  }
  int fd = -1;
  for (addrinfo* a = res; a != nullptr && fd < 0; a = a->ai_next) {
    fd = ::socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, 0);
    if (fd < 0) continue;
    const int one = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (::bind(fd, a->ai_addr, a->ai_addrlen) != 0 || ::listen(fd, 128) != 0) {
      error = "--listen " + o.host + ":" + port + ": " + std::strerror(errno);
      ::close(fd);
      fd = -1;
    }
  }
  ::freeaddrinfo(res);
  if (fd < 0) return -1;
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len);
  char host[INET6_ADDRSTRLEN] = "";
  uint16_t p = 0;
  if (ss.ss_family == AF_INET6) {
    const auto* s6 = reinterpret_cast<const sockaddr_in6*>(&ss);
    ::inet_ntop(AF_INET6, &s6->sin6_addr, host, sizeof host);
    p = ntohs(s6->sin6_port);
    bound = "[" + std::string(host) + "]:" + std::to_string(p);
  } else {
    const auto* s4 = reinterpret_cast<const sockaddr_in*>(&ss);
    ::inet_ntop(AF_INET, &s4->sin_addr, host, sizeof host);
    p = ntohs(s4->sin_port);
    bound = std::string(host) + ":" + std::to_string(p);
  }
  return fd;
}

// One line per request: Unix time in seconds (ms), peer, method, path, status (0: dropped),
// body bytes, what was made of it.
void log_line(const Options& o, const std::string& peer, const Request& req, const Response& r) {
  if (!o.verbose) return;
  const double now =
      std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  std::fprintf(stderr, "%.3f %s %s %s %d %zu %s\n", now, peer.c_str(), req.method.c_str(),
               req.target.c_str(), r.drop ? 0 : r.status, req.body.size(), r.log.c_str());
}

void serve(int fd, std::string peer, SSL_CTX* tls, Service& service, const Options& o) {
  {
    Connection conn(fd, tls);
    std::string error;
    if (!conn.handshake(error)) {
      if (o.verbose) std::fprintf(stderr, "%s %s\n", peer.c_str(), error.c_str());
    } else {
      RequestReader reader(conn, o.max_body);
      Request req;
      Response refusal;
      for (;;) {
        const ReadStatus st = reader.read(req, refusal);
        if (st == ReadStatus::closed) break;
        if (st == ReadStatus::error) {
          if (refusal.status != 0) {
            service.count_refusal(refusal);
            log_line(o, peer, req, refusal);
            conn.write_all(serialize(refusal, false));
          }
          break;
        }
        const Response r = service.handle(req);
        log_line(o, peer, req, r);
        if (r.drop) break;
        if (!conn.write_all(serialize(r, req.keep_alive)) || !req.keep_alive || r.close) break;
      }
    }
  }
  --g_connections;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  std::string error;
  if (!parse_options(argc, argv, o, error)) {
    std::fprintf(stderr, "outpost-receiver: %s\n", error.c_str());
    return 2;
  }
  if (o.help) {
    std::fputs(usage().c_str(), stdout);
    return 0;
  }
  SSL_CTX* tls = nullptr;
  if (!o.cert.empty() && (tls = make_tls_context(o, error)) == nullptr) {
    std::fprintf(stderr, "outpost-receiver: %s\n", error.c_str());
    return 2;
  }
  Service service(o);
  if (!service.open(error)) {
    std::fprintf(stderr, "outpost-receiver: %s\n", error.c_str());
    return 2;
  }
  std::string bound;
  const int lfd = listen_on(o, bound, error);
  if (lfd < 0) {
    std::fprintf(stderr, "outpost-receiver: %s\n", error.c_str());
    return 1;
  }
  struct sigaction sa {};
  sa.sa_handler = on_signal;
  ::sigaction(SIGINT, &sa, nullptr);
  ::sigaction(SIGTERM, &sa, nullptr);
  ::signal(SIGPIPE, SIG_IGN);
  std::printf("listening %s\n", bound.c_str());
  std::fflush(stdout);

  while (!g_stop) {
    pollfd p{lfd, POLLIN, 0};
    if (::poll(&p, 1, 200) <= 0) continue;
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    const int fd = ::accept4(lfd, reinterpret_cast<sockaddr*>(&ss), &len, SOCK_CLOEXEC);
    if (fd < 0) continue;
    if (g_connections >= o.max_connections) {
      ::close(fd);  // over the bound: the client sees the connection closed and retries
      continue;
    }
    timeval tv{60, 0};  // an idle keep-alive connection is closed after a minute
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    char host[INET6_ADDRSTRLEN] = "?";
    if (ss.ss_family == AF_INET)
      ::inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(&ss)->sin_addr, host, sizeof host);
    else if (ss.ss_family == AF_INET6)
      ::inet_ntop(AF_INET6, &reinterpret_cast<sockaddr_in6*>(&ss)->sin6_addr, host, sizeof host);
    ++g_connections;
    std::thread(serve, fd, std::string(host), tls, std::ref(service), std::cref(o)).detach();
  }
  ::close(lfd);
  // Threads still serving are cut off by the process's exit; every accepted batch was already
  // written and flushed before its answer left.
  std::_Exit(0);
}
