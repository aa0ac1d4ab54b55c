#include "http_post.hpp"

#include <curl/curl.h>

#include <algorithm>
#include <cctype>
#include <stdexcept>

namespace outpost::clickhouse {
namespace {

constexpr std::size_t kMaxBody = 64 * 1024;

struct CurlGlobal {
  CurlGlobal() { curl_global_init(CURL_GLOBAL_DEFAULT); }
};

size_t on_body(char* p, size_t sz, size_t n, void* ud) {
  auto* r = static_cast<HttpResponse*>(ud);
  if (r->body.size() < kMaxBody) r->body.append(p, std::min(sz * n, kMaxBody - r->body.size()));
  return sz * n;
}

// The value of header line h when its name is key (lower case, with the colon); else empty.
std::string header_value(std::string_view h, std::string_view key) {
  if (h.size() <= key.size()) return {};
  for (std::size_t i = 0; i < key.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(h[i])) != key[i]) return {};
  std::string v(h.substr(key.size()));
  v.erase(0, v.find_first_not_of(" \t"));
  const auto end = v.find_last_not_of(" \t\r\n");
  v.erase(end == std::string::npos ? 0 : end + 1);
  return v;
}

size_t on_header(char* p, size_t sz, size_t n, void* ud) {
  auto* r = static_cast<HttpResponse*>(ud);
  const std::string_view h(p, sz * n);
  if (auto v = header_value(h, "retry-after:"); !v.empty()) r->retry_after = v;
  if (auto v = header_value(h, "x-clickhouse-exception-code:"); !v.empty()) r->exception_code = v;
  return sz * n;
}

HttpResponse::Transport transport_of(CURLcode c) {
  switch (c) {
    case CURLE_OK:
      return HttpResponse::Transport::ok;
    case CURLE_COULDNT_CONNECT:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
      return HttpResponse::Transport::refused;
    case CURLE_OPERATION_TIMEDOUT:
      return HttpResponse::Transport::timeout;
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_CRL_BADFILE:
      return HttpResponse::Transport::tls;
    default:
      return HttpResponse::Transport::other;
  }
}

}  // namespace

HttpPost::HttpPost(HttpOptions options) : options_(std::move(options)) {
  static CurlGlobal global;
  curl_ = curl_easy_init();
  if (curl_ == nullptr) throw std::runtime_error("curl_easy_init failed");
}

HttpPost::~HttpPost() {
  if (curl_ != nullptr) curl_easy_cleanup(static_cast<CURL*>(curl_));
}

HttpResponse HttpPost::post(const std::string& url, std::string_view body,
                            const std::vector<std::string>& headers) {
  HttpResponse r;
  CURL* c = static_cast<CURL*>(curl_);
  char errbuf[CURL_ERROR_SIZE] = {};
  curl_easy_reset(c);  // the connection cache survives a reset
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_POST, 1L);
  curl_easy_setopt(c, CURLOPT_POSTFIELDS, body.data());
  curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, options_.timeout_ms);
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, options_.connect_timeout_ms);
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, &on_body);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &r);
  curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, &on_header);
  curl_easy_setopt(c, CURLOPT_HEADERDATA, &r);
  curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
  curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
  curl_easy_setopt(c, CURLOPT_SSLVERSION, CURL_SSLVERSION_TLSv1_2);
  curl_easy_setopt(c, CURLOPT_TCP_KEEPALIVE, 1L);
  // "" makes libcurl ignore http_proxy, https_proxy, ALL_PROXY: direct unless configured.
  curl_easy_setopt(c, CURLOPT_PROXY, options_.proxy.c_str());
  if (!options_.ca_file.empty()) {
    curl_easy_setopt(c, CURLOPT_CAINFO, options_.ca_file.c_str());
    curl_easy_setopt(c, CURLOPT_CAPATH, nullptr);
  }
  if (!options_.client_cert.empty()) {
    curl_easy_setopt(c, CURLOPT_SSLCERT, options_.client_cert.c_str());
    curl_easy_setopt(c, CURLOPT_SSLKEY, options_.client_key.c_str());
  }
  struct curl_slist* list = curl_slist_append(nullptr, "Expect:");
  for (const auto& h : headers) list = curl_slist_append(list, h.c_str());
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, list);
  const CURLcode rc = curl_easy_perform(c);
  curl_slist_free_all(list);
  curl_off_t up = 0;
  curl_easy_getinfo(c, CURLINFO_SIZE_UPLOAD_T, &up);
  r.bytes_sent = static_cast<uint64_t>(up);
  r.transport = transport_of(rc);
  if (rc == CURLE_OK) {
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r.status);
  } else {
    r.transport_error = errbuf[0] != 0 ? errbuf : curl_easy_strerror(rc);
  }
  return r;
}

int64_t retry_after_seconds(const std::string& value, int64_t now_s) {
  if (value.empty()) return 0;
  if (std::all_of(value.begin(), value.end(), [](char ch) { return ch >= '0' && ch <= '9'; }))
    return std::min<int64_t>(std::stoll(value.substr(0, 9)), 3600);
  const time_t t = curl_getdate(value.c_str(), nullptr);
  if (t < 0) return 0;
  return std::clamp<int64_t>(static_cast<int64_t>(t) - now_s, 0, 3600);
}

std::string url_encode(std::string_view text) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(text.size() * 3);
  for (const char ch : text) {
    const auto u = static_cast<unsigned char>(ch);
    if (std::isalnum(u) || ch == '-' || ch == '.' || ch == '_' || ch == '~') {
      out += ch;
    } else {
      out += '%';
      out += kHex[u >> 4];
      out += kHex[u & 15];
    }
  }
  return out;
}

}  // namespace outpost::clickhouse
