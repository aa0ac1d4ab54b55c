#include "management/https.hpp"

#include <curl/curl.h>

#include <algorithm>
#include <cctype>
#include <mutex>

namespace outpost::core::mgmt {
namespace {

struct Transfer {
  std::string* body;
  std::string* etag;
  std::size_t max_bytes;
  bool too_large = false;
  const std::atomic<bool>* cancel;
};

std::size_t on_body(char* data, std::size_t size, std::size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  const std::size_t len = size * n;
  if (t->body->size() + len > t->max_bytes) {
    t->too_large = true;
    return 0;  // aborts the transfer
  }
  t->body->append(data, len);
  return len;
}

std::size_t on_header(char* data, std::size_t size, std::size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  const std::size_t len = size * n;
  std::string line(data, len);
  if (line.size() > 5) {
    std::string name = line.substr(0, 5);
    std::transform(name.begin(), name.end(), name.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    if (name == "etag:") {
      std::string v = line.substr(5);
      while (!v.empty() && std::isspace(static_cast<unsigned char>(v.back()))) v.pop_back();
      const std::size_t start = v.find_first_not_of(" \t");
      *t->etag = start == std::string::npos ? std::string() : v.substr(start);
      if (t->etag->size() > 256) t->etag->clear();  // not worth remembering
    }
  }
  return len;
}

int on_progress(void* user, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  auto* t = static_cast<Transfer*>(user);
  return t->cancel != nullptr && t->cancel->load() ? 1 : 0;
}

void global_init() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

}  // namespace

HttpsClient::HttpsClient(HttpsOptions options, const std::atomic<bool>* cancel)
    : options_(std::move(options)), cancel_(cancel) {
  global_init();
  curl_ = curl_easy_init();
}

HttpsClient::~HttpsClient() {
  if (curl_ != nullptr) curl_easy_cleanup(static_cast<CURL*>(curl_));
}

FetchResult HttpsClient::get(const std::string& url, const std::string& etag,
                             std::size_t max_bytes) {
  FetchResult r;
  CURL* c = static_cast<CURL*>(curl_);
  if (c == nullptr) {
    r.error = "libcurl could not be initialised";
    return r;
  }
  curl_easy_reset(c);  // keeps the connection and TLS session caches
  Transfer t{&r.body, &r.etag, max_bytes, false, cancel_};
  char errbuf[CURL_ERROR_SIZE] = {0};
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
#if LIBCURL_VERSION_NUM >= 0x075500
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "https");
  curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "https");
#else
  curl_easy_setopt(c, CURLOPT_PROTOCOLS, static_cast<long>(CURLPROTO_HTTPS));
  curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS, static_cast<long>(CURLPROTO_HTTPS));
#endif
  curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
  curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
  if (!options_.ca_file.empty()) {
    // Pinned: only this file, not the system's directory of CAs as well.
    curl_easy_setopt(c, CURLOPT_CAINFO, options_.ca_file.c_str());
    curl_easy_setopt(c, CURLOPT_CAPATH, nullptr);
  }
  if (!options_.client_cert.empty()) {
    curl_easy_setopt(c, CURLOPT_SSLCERT, options_.client_cert.c_str());
    curl_easy_setopt(c, CURLOPT_SSLKEY, options_.client_key.c_str());
  }
  // "" disables the proxy libcurl would otherwise take from https_proxy and friends.
  curl_easy_setopt(c, CURLOPT_PROXY, options_.proxy.c_str());
  curl_easy_setopt(c, CURLOPT_NOPROXY, "");
  if (!options_.user_agent.empty())
    curl_easy_setopt(c, CURLOPT_USERAGENT, options_.user_agent.c_str());
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS,
                   static_cast<long>(options_.connect_timeout_s * 1000));
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, static_cast<long>(options_.timeout_s * 1000));
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &t);
  curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(c, CURLOPT_HEADERDATA, &t);
  curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
  curl_easy_setopt(c, CURLOPT_XFERINFODATA, &t);
  curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
  curl_slist* headers = nullptr;
  if (!etag.empty()) headers = curl_slist_append(headers, ("If-None-Match: " + etag).c_str());
  if (headers != nullptr) curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);

  const CURLcode rc = curl_easy_perform(c);
  curl_slist_free_all(headers);
  curl_off_t body_in = 0;
  long header_in = 0, request_out = 0;
  curl_easy_getinfo(c, CURLINFO_SIZE_DOWNLOAD_T, &body_in);
  curl_easy_getinfo(c, CURLINFO_HEADER_SIZE, &header_in);
  curl_easy_getinfo(c, CURLINFO_REQUEST_SIZE, &request_out);
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r.http_code);
  r.bytes_in = static_cast<uint64_t>(std::max<curl_off_t>(body_in, 0)) +
               static_cast<uint64_t>(std::max(header_in, 0L));
  r.bytes_out = static_cast<uint64_t>(std::max(request_out, 0L));
  if (rc != CURLE_OK) {
    if (t.too_large)
      r.error = "the response is larger than " + std::to_string(max_bytes) + " bytes";
    else if (cancel_ != nullptr && cancel_->load())
      r.error = "cancelled";
    else
      r.error = std::string(curl_easy_strerror(rc)) + (errbuf[0] ? std::string(": ") + errbuf : "");
    r.body.clear();
    return r;
  }
  switch (r.http_code) {
    case 200:
      r.status = FetchResult::Status::ok;
      break;
    case 304:
      r.status = FetchResult::Status::not_modified;
      r.body.clear();
      break;
    case 404:
      r.status = FetchResult::Status::not_found;
      r.body.clear();
      break;
    default:
      r.error = "HTTP status " + std::to_string(r.http_code);
      r.body.clear();
  }
  return r;
}

}  // namespace outpost::core::mgmt
