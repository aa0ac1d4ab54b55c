// One HTTP(S) POST at a time over a kept-alive libcurl handle: TLS verified (an optional pinned
// CA, mutual TLS), direct unless a proxy is named, bounded by timeouts. Knows nothing of
// ClickHouse: it reports what happened and leaves the meaning to its caller. Kept apart so it can
// give way to a shared HTTP client library without touching the sink.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace outpost::clickhouse {

struct HttpOptions {
  std::string ca_file;      // PEM of the only CAs trusted; empty: the system's store
  std::string client_cert;  // PEM, mutual TLS
  std::string client_key;
  std::string proxy;  // explicit proxy URL; empty: direct, proxy environment variables ignored
  long timeout_ms = 30000;
  long connect_timeout_ms = 10000;
};

struct HttpResponse {
  enum class Transport { ok, refused, timeout, tls, other };
  Transport transport = Transport::ok;
  std::string transport_error;  // libcurl's words when transport is not ok
  long status = 0;              // the HTTP status when transport is ok
  std::string body;             // the answer's first 64 KiB
  std::string retry_after;      // the Retry-After header, as sent
  std::string exception_code;   // X-ClickHouse-Exception-Code, as sent (newer servers)
  uint64_t bytes_sent = 0;
};

class HttpPost {
 public:
  explicit HttpPost(HttpOptions options);
  ~HttpPost();
  HttpPost(const HttpPost&) = delete;
  HttpPost& operator=(const HttpPost&) = delete;

  // POSTs body to url with the extra headers ("Name: value"). Never throws for network trouble:
  // that is in the response.
  HttpResponse post(const std::string& url, std::string_view body,
                    const std::vector<std::string>& headers);

 private:
  HttpOptions options_;
  void* curl_ = nullptr;  // CURL*, kept for its connection cache
};

// A Retry-After value (delay-seconds or an HTTP-date) as seconds from now_s, 0..3600; 0 when
// absent or unreadable.
int64_t retry_after_seconds(const std::string& value, int64_t now_s);

// The query string's percent-encoding of text (RFC 3986 unreserved characters kept).
std::string url_encode(std::string_view text);

}  // namespace outpost::clickhouse
