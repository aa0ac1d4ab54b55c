// Conditional HTTPS GETs for the management channel (libcurl). HTTPS only, no redirects, no
// proxy unless one is configured (the proxy environment variables are ignored), the server
// verified against a pinned CA file or the system store, an optional client certificate. One
// handle for the channel's life, so connections and TLS sessions are reused between polls.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string>

namespace outpost::core::mgmt {

struct HttpsOptions {
  std::string ca_file;  // empty: the system store
  std::string client_cert, client_key;
  std::string proxy;  // empty: direct, whatever the environment says
  std::string user_agent;
  double connect_timeout_s = 15;
  double timeout_s = 300;
};

struct FetchResult {
  enum class Status { ok, not_modified, not_found, error } status = Status::error;
  long http_code = 0;
  std::string body;
  std::string etag;        // of a 200 response
  std::string error;       // one sentence for Status::error
  uint64_t bytes_in = 0;   // response headers and body
  uint64_t bytes_out = 0;  // request headers
};

class HttpsClient {
 public:
  // `cancel`, when it becomes true, aborts a transfer in progress.
  HttpsClient(HttpsOptions options, const std::atomic<bool>* cancel);
  ~HttpsClient();
  HttpsClient(const HttpsClient&) = delete;
  HttpsClient& operator=(const HttpsClient&) = delete;

  // GET url with If-None-Match: etag (when not empty); a body larger than max_bytes is an error.
  FetchResult get(const std::string& url, const std::string& etag, std::size_t max_bytes);

 private:
  HttpsOptions options_;
  const std::atomic<bool>* cancel_;
  void* curl_ = nullptr;  // CURL*, kept out of this header
};

}  // namespace outpost::core::mgmt
