// libcurl behind outpost_lib/http_client.hpp: one easy handle per Client (its connection is kept
// alive between requests), every option set again for each request.
#include <curl/curl.h>

#include <algorithm>
#include <cctype>
#include <outpost_lib/http_client.hpp>
#include <outpost_lib/retry_after.hpp>

namespace outpost::lib::http {

namespace {

std::string trim(std::string_view s) {
  const auto b = s.find_first_not_of(" \t\r\n");
  if (b == std::string_view::npos) return {};
  const auto e = s.find_last_not_of(" \t\r\n");
  return std::string(s.substr(b, e - b + 1));
}

bool starts_with_nocase(std::string_view s, std::string_view prefix) {
  return s.size() >= prefix.size() &&
         std::equal(prefix.begin(), prefix.end(), s.begin(), [](char a, char b) {
           return std::tolower(static_cast<unsigned char>(a)) ==
                  std::tolower(static_cast<unsigned char>(b));
         });
}

// "Name: value" with ${secret:NAME} and ${env:VAR} in the value resolved now, so a missing
// credential is a configuration error at create and not a failure of every request.
std::string resolve_header(std::string_view h, const outpost::Host& host) {
  const auto colon = h.find(':');
  if (colon == std::string_view::npos || trim(h.substr(0, colon)).empty())
    throw Error(OUTPOST_E_CONFIG, "headers: 'Name: value' expected (got '" + std::string(h) + "')");
  const std::string value = trim(h.substr(colon + 1));
  std::string out;
  for (std::size_t i = 0; i < value.size();) {
    const auto open = value.find("${", i);
    if (open == std::string::npos) {
      out += value.substr(i);
      break;
    }
    const auto close = value.find('}', open);
    if (close == std::string::npos)
      throw Error(OUTPOST_E_CONFIG, "headers: unterminated ${ in '" + std::string(h) + "'");
    out += value.substr(i, open - i);
    const std::string ref = value.substr(open + 2, close - open - 2);
    if (ref.rfind("secret:", 0) == 0)
      out += host.secret(ref.substr(7));
    else if (ref.rfind("env:", 0) == 0)
      out += host.secret("${" + ref + "}");
    else
      throw Error(OUTPOST_E_CONFIG, "headers: ${" + ref + "}: ${secret:NAME} or ${env:VAR}");
    i = close + 1;
  }
  return trim(h.substr(0, colon)) + ": " + out;
}

std::chrono::milliseconds positive_ms(const outpost::Config& cfg, const char* key,
                                      const char* dflt) {
  const auto d = outpost::parse_duration_seconds(dflt);
  const double s = cfg.get_seconds(key, d ? *d : 0);
  if (!(s > 0)) throw Error(OUTPOST_E_CONFIG, std::string(key) + ": must be positive");
  return std::chrono::milliseconds(static_cast<int64_t>(s * 1000));
}

bool tls_failure(CURLcode c) {
  switch (c) {
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_CRL_BADFILE:
      return true;
    default:
      return false;
  }
}

struct CurlGlobal {
  CurlGlobal() { curl_global_init(CURL_GLOBAL_DEFAULT); }
};

}  // namespace

std::vector<outpost_field> config_fields(const Fields& f) {
  using outpost::field;
  std::vector<outpost_field> fields = {
      field("ca_file", OUTPOST_FIELD_STRING,
            "PEM file of the only CA(s) trusted for an https receiver (pinned); default: the "
            "system's trust store"),
      field("pinned_public_key", OUTPOST_FIELD_STRING,
            "sha256//BASE64 of the receiver's public key, checked on top of the chain"),
      field("client_cert", OUTPOST_FIELD_STRING, "PEM client certificate (mutual TLS)"),
      field("client_key", OUTPOST_FIELD_STRING, "PEM private key of client_cert"),
      field("client_key_password", OUTPOST_FIELD_SECRET,
            "credential reference of client_key's passphrase"),
      field(f.bearer_token, OUTPOST_FIELD_SECRET,
            "credential reference of a bearer token sent as Authorization"),
      field("basic_auth_user", OUTPOST_FIELD_STRING, "user name for HTTP basic authentication"),
      field("basic_auth_password", OUTPOST_FIELD_SECRET,
            "credential reference of the basic authentication password"),
      field("headers", OUTPOST_FIELD_LIST,
            "extra request headers, 'Name: value'; ${secret:NAME} in a value is replaced by the "
            "credential NAME, ${env:VAR} by the environment variable"),
      field("proxy", OUTPOST_FIELD_STRING,
            "an explicit proxy URL; without it the connection is direct and proxy environment "
            "variables are ignored"),
      field("timeout", OUTPOST_FIELD_DURATION, "time a request may take in all", f.timeout),
      field("connect_timeout", OUTPOST_FIELD_DURATION, "time to connect (TCP and TLS)",
            f.connect_timeout),
  };
  if (f.stats_interval != nullptr)
    fields.push_back(field("stats_interval", OUTPOST_FIELD_DURATION,
                           "time between the sink's own metrics; 0: none", f.stats_interval));
  return fields;
}

std::vector<outpost_field> with_config_fields(std::vector<outpost_field> own, const Fields& f) {
  for (const auto& field : config_fields(f)) own.push_back(field);
  return own;
}

std::string batch_id(const outpost::SpoolInfo& info) {
  std::string id(info.spool_id);
  for (const auto& r : info.ranges)
    id += "/" + std::string(r.stream) + ":" + std::to_string(r.first_seq) + "-" +
          std::to_string(r.last_seq);
  return id;
}

double stats_interval_seconds(const outpost::Config& cfg, const Fields& f) {
  if (f.stats_interval == nullptr) return 0;
  const auto d = outpost::parse_duration_seconds(f.stats_interval);
  return cfg.get_seconds("stats_interval", d ? *d : 0);
}

void start_stats_timer(const outpost::Host& host, double interval_s) {
  if (interval_s > 0)
    host.set_timer(1, std::chrono::nanoseconds(static_cast<int64_t>(interval_s * 1e9)));
}

Options read_options(const outpost::Config& cfg, const outpost::Host& host, const Fields& f) {
  Options o;
  o.ca_file = cfg.get("ca_file");
  o.pinned_public_key = cfg.get("pinned_public_key");
  o.client_cert = cfg.get("client_cert");
  o.client_key = cfg.get("client_key");
  if (o.client_cert.empty() != o.client_key.empty())
    throw Error(OUTPOST_E_CONFIG, "client_cert and client_key go together");
  if (!cfg.get("client_key_password").empty())
    o.client_key_password = host.secret(cfg.get("client_key_password"));
  if (!cfg.get(f.bearer_token).empty()) o.bearer_token = host.secret(cfg.get(f.bearer_token));
  o.basic_user = cfg.get("basic_auth_user");
  if (!cfg.get("basic_auth_password").empty())
    o.basic_password = host.secret(cfg.get("basic_auth_password"));
  if (o.basic_user.empty() != o.basic_password.empty())
    throw Error(OUTPOST_E_CONFIG, "basic_auth_user and basic_auth_password go together");
  if (!o.bearer_token.empty() && !o.basic_user.empty())
    throw Error(OUTPOST_E_CONFIG,
                std::string(f.bearer_token) + " and basic_auth_user exclude each other");
  for (const auto& h : cfg.get_list("headers")) o.headers.push_back(resolve_header(h, host));
  o.proxy = cfg.get("proxy");
  o.timeout = positive_ms(cfg, "timeout", f.timeout);
  o.connect_timeout = positive_ms(cfg, "connect_timeout", f.connect_timeout);
  return o;
}

void check_url(std::string_view key, std::string_view url, bool allow_http) {
  if (url.rfind("https://", 0) == 0 || (allow_http && url.rfind("http://", 0) == 0)) return;
  throw Error(OUTPOST_E_CONFIG, std::string(key) + ": must be " +
                                    (allow_http ? "http(s)://..." : "https://...") + " (got '" +
                                    std::string(url) + "')");
}

struct Client::Impl {
  Options options;
  CURL* curl = nullptr;
  std::string auth_header;
  Response* current = nullptr;  // the response being read, for the callbacks

  static size_t on_body(char* p, size_t size, size_t n, void* ud) {
    auto* self = static_cast<Impl*>(ud);
    std::string& b = self->current->body;
    const std::size_t room =
        self->options.max_answer_bytes - std::min(b.size(), self->options.max_answer_bytes);
    b.append(p, std::min(size * n, room));
    self->current->bytes_received += size * n;
    return size * n;
  }
  static size_t on_header(char* p, size_t size, size_t n, void* ud) {
    auto* self = static_cast<Impl*>(ud);
    const std::string_view line(p, size * n);
    constexpr std::string_view kRetryAfter = "retry-after:";
    if (starts_with_nocase(line, kRetryAfter))
      self->current->retry_after = trim(line.substr(kRetryAfter.size()));
    self->current->bytes_received += size * n;
    return size * n;
  }

  void set_options(const std::string& url, std::string_view body, char* errbuf) {
    CURL* c = curl;
    curl_easy_reset(c);
    curl_easy_setopt(c, CURLOPT_URL, url.c_str());
    curl_easy_setopt(c, CURLOPT_POST, 1L);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body.data());
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, static_cast<long>(options.timeout.count()));
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS,
                     static_cast<long>(options.connect_timeout.count()));
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, &Impl::on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, this);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, &Impl::on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, this);
    curl_easy_setopt(c, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(c, CURLOPT_USERAGENT, options.user_agent.c_str());
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
    curl_easy_setopt(c, CURLOPT_SSLVERSION, static_cast<long>(CURL_SSLVERSION_TLSv1_2));
    // Direct unless a proxy is configured: "" makes libcurl ignore http(s)_proxy and friends.
    curl_easy_setopt(c, CURLOPT_PROXY, options.proxy.c_str());
    if (!options.ca_file.empty()) {
      curl_easy_setopt(c, CURLOPT_CAINFO, options.ca_file.c_str());
      curl_easy_setopt(c, CURLOPT_CAPATH, nullptr);
    }
    if (!options.pinned_public_key.empty())
      curl_easy_setopt(c, CURLOPT_PINNEDPUBLICKEY, options.pinned_public_key.c_str());
    if (!options.client_cert.empty()) {
      curl_easy_setopt(c, CURLOPT_SSLCERT, options.client_cert.c_str());
      curl_easy_setopt(c, CURLOPT_SSLKEY, options.client_key.c_str());
      if (!options.client_key_password.empty())
        curl_easy_setopt(c, CURLOPT_KEYPASSWD, options.client_key_password.c_str());
    }
    if (!options.basic_user.empty()) {
      curl_easy_setopt(c, CURLOPT_HTTPAUTH, static_cast<long>(CURLAUTH_BASIC));
      curl_easy_setopt(c, CURLOPT_USERNAME, options.basic_user.c_str());
      curl_easy_setopt(c, CURLOPT_PASSWORD, options.basic_password.c_str());
    }
  }
};

Client::Client(Options options) : impl_(std::make_unique<Impl>()) {
  static CurlGlobal global;
  impl_->options = std::move(options);
  if (!impl_->options.bearer_token.empty())
    impl_->auth_header = "Authorization: Bearer " + impl_->options.bearer_token;
  impl_->curl = curl_easy_init();
  if (impl_->curl == nullptr) throw Error(OUTPOST_E_INTERNAL, "curl_easy_init failed");
}

Client::~Client() {
  if (impl_ && impl_->curl != nullptr) curl_easy_cleanup(impl_->curl);
}

const Options& Client::options() const noexcept { return impl_->options; }

Response Client::post(const std::string& url, std::string_view body,
                      const std::vector<std::string>& headers) {
  Response r;
  char errbuf[CURL_ERROR_SIZE] = {};
  impl_->current = &r;
  impl_->set_options(url, body, errbuf);
  curl_slist* list = nullptr;
  for (const auto& h : impl_->options.headers) list = curl_slist_append(list, h.c_str());
  for (const auto& h : headers) list = curl_slist_append(list, h.c_str());
  if (!impl_->auth_header.empty()) list = curl_slist_append(list, impl_->auth_header.c_str());
  list = curl_slist_append(list, "Expect:");  // no 100-continue round trip before the body
  curl_easy_setopt(impl_->curl, CURLOPT_HTTPHEADER, list);
  const auto t0 = std::chrono::steady_clock::now();
  const CURLcode rc = curl_easy_perform(impl_->curl);
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  curl_slist_free_all(list);
  impl_->current = nullptr;
  curl_off_t up = 0;
  long request_size = 0;
  curl_easy_getinfo(impl_->curl, CURLINFO_SIZE_UPLOAD_T, &up);
  curl_easy_getinfo(impl_->curl, CURLINFO_REQUEST_SIZE, &request_size);
  r.bytes_sent = static_cast<uint64_t>(up) + static_cast<uint64_t>(request_size);
  if (rc == CURLE_OK) {
    curl_easy_getinfo(impl_->curl, CURLINFO_RESPONSE_CODE, &r.status);
    return r;
  }
  r.transport = tls_failure(rc)                  ? Transport::tls
                : rc == CURLE_OPERATION_TIMEDOUT ? Transport::timeout
                                                 : Transport::failed;
  r.error = errbuf[0] != 0 ? errbuf : curl_easy_strerror(rc);
  return r;
}

Verdict classify(const Response& r, int64_t now_s, const Policy& policy) {
  Verdict v;
  if (r.ok()) return v;
  auto listed = [](const std::vector<long>& codes, long code) {
    return std::find(codes.begin(), codes.end(), code) != codes.end();
  };
  const std::string http = "HTTP " + std::to_string(r.status);
  switch (r.transport) {
    case Transport::tls:
      v = {Outcome::operator_action, OUTPOST_E_AUTH, "TLS: " + r.error, 0};
      return v;
    case Transport::timeout:
      v = {Outcome::retry, OUTPOST_E_TIMEOUT, r.error, 0};
      return v;
    case Transport::failed:
      v = {Outcome::retry, OUTPOST_E_UNAVAILABLE, r.error, 0};
      return v;
    case Transport::ok:
      break;
  }
  if (r.status == 401 || r.status == 403) {
    v = {Outcome::operator_action, OUTPOST_E_AUTH, http + " (credentials refused)", 0};
  } else if (listed(policy.busy, r.status)) {
    v = {Outcome::retry, OUTPOST_E_BUSY, http, retry_after_seconds(r.retry_after, now_s)};
    if (v.retry_after_s > 0) v.what += ", Retry-After " + std::to_string(v.retry_after_s) + " s";
  } else if (listed(policy.rejected, r.status) || policy.reject_unlisted) {
    v = {Outcome::rejected, OUTPOST_E_INVALID_ARGUMENT, http + ", the request is dropped", 0};
    // The receiver's words when they are text (OTLP answers a binary Status).
    const std::string said = trim(r.body.substr(0, 200));
    const bool text = std::all_of(said.begin(), said.end(), [](char c) {
      return std::isprint(static_cast<unsigned char>(c)) != 0 || c == '\n' || c == '\t';
    });
    if (!said.empty() && text) v.what += ": " + said;
  } else {
    v = {Outcome::retry, OUTPOST_E_UNAVAILABLE, http, 0};
  }
  return v;
}

void Reporter::fail(const outpost::Host& host, const Verdict& v) {
  if (!failing_ || v.status != last_) {
    host.report_error(v.status, where_ + ": " + v.what);
    failing_ = true;
    last_ = v.status;
  }
  if (v.retry_after_s > 0) host.retry_after(std::chrono::seconds(v.retry_after_s));
  throw Error(v.status, v.what);
}

void Reporter::delivered(const outpost::Host& host) {
  if (!failing_) return;
  host.log(OUTPOST_LOG_INFO, where_ + " takes requests again");
  failing_ = false;
  last_ = OUTPOST_OK;
}

}  // namespace outpost::lib::http
