#include "http.hpp"

#include <strings.h>

#include <charconv>
#include <jsonl/jsonl.hpp>

namespace outpost::receiver {

namespace {

constexpr std::size_t kMaxHeaderBytes = 64 * 1024;

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r'))
    s.remove_suffix(1);
  return s;
}

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && ::strncasecmp(a.data(), b.data(), a.size()) == 0;
}

bool has_token(std::string_view list, std::string_view token) {
  while (!list.empty()) {
    const auto comma = list.find(',');
    if (iequals(trim(list.substr(0, comma)), token)) return true;
    if (comma == std::string_view::npos) break;
    list.remove_prefix(comma + 1);
  }
  return false;
}

Response refuse(int status, std::string message) {
  Response r;
  r.status = status;
  r.body = json_error(message);
  r.close = true;
  r.log = std::move(message);
  return r;
}

const char* reason(int status) {
  switch (status) {
    case 100:
      return "Continue";
    case 200:
      return "OK";
    case 400:
      return "Bad Request";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 409:
      return "Conflict";
    case 411:
      return "Length Required";
    case 413:
      return "Content Too Large";
    case 415:
      return "Unsupported Media Type";
    case 429:
      return "Too Many Requests";
    case 431:
      return "Request Header Fields Too Large";
    case 500:
      return "Internal Server Error";
    case 502:
      return "Bad Gateway";
    case 503:
      return "Service Unavailable";
    case 504:
      return "Gateway Timeout";
    default:
      return "Status";
  }
}

}  // namespace

std::string_view Request::header(std::string_view name) const {
  for (const auto& [k, v] : headers)
    if (iequals(k, name)) return v;
  return {};
}

bool RequestReader::fill() {
  char tmp[16384];
  const long n = conn_.read(tmp, sizeof tmp);
  if (n <= 0) return false;
  buf_.append(tmp, static_cast<std::size_t>(n));
  return true;
}

ReadStatus RequestReader::read(Request& req, Response& refusal) {
  req = Request{};
  std::size_t end;
  while ((end = buf_.find("\r\n\r\n")) == std::string::npos) {
    if (buf_.size() > kMaxHeaderBytes) {
      refusal = refuse(431, "request headers over 64 KiB");
      return ReadStatus::error;
    }
    if (!fill()) {
      refusal = Response{};
      refusal.status = 0;
      return buf_.empty() ? ReadStatus::closed : ReadStatus::error;
    }
  }
  const std::string head = buf_.substr(0, end);
  buf_.erase(0, end + 4);

  std::string_view rest = head;
  const auto eol = rest.find("\r\n");
  const std::string_view line = rest.substr(0, eol);
  rest = eol == std::string_view::npos ? std::string_view{} : rest.substr(eol + 2);
  const auto sp1 = line.find(' ');
  const auto sp2 = line.rfind(' ');
  if (sp1 == std::string_view::npos || sp2 == sp1) {
    refusal = refuse(400, "malformed request line");
    return ReadStatus::error;
  }
  req.method = line.substr(0, sp1);
  req.target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  req.version = line.substr(sp2 + 1);
  if (req.version != "HTTP/1.1" && req.version != "HTTP/1.0") {
    refusal = refuse(400, "unsupported protocol version " + req.version);
    return ReadStatus::error;
  }
  while (!rest.empty()) {
    const auto e = rest.find("\r\n");
    const std::string_view h = rest.substr(0, e);
    rest = e == std::string_view::npos ? std::string_view{} : rest.substr(e + 2);
    const auto colon = h.find(':');
    if (colon == std::string_view::npos || colon == 0) {
      refusal = refuse(400, "malformed header line");
      return ReadStatus::error;
    }
    req.headers.emplace_back(std::string(h.substr(0, colon)),
                             std::string(trim(h.substr(colon + 1))));
  }
  const std::string_view connection = req.header("Connection");
  req.keep_alive = req.version == "HTTP/1.1" ? !has_token(connection, "close")
                                             : has_token(connection, "keep-alive");

  if (!req.header("Transfer-Encoding").empty()) {
    refusal =
        refuse(411, "chunked (Transfer-Encoding) bodies are not accepted: send Content-Length");
    return ReadStatus::error;
  }
  const std::string_view cl = req.header("Content-Length");
  std::size_t length = 0;
  if (!cl.empty()) {
    const auto [p, ec] = std::from_chars(cl.data(), cl.data() + cl.size(), length);
    if (ec != std::errc() || p != cl.data() + cl.size()) {
      refusal = refuse(400, "bad Content-Length");
      return ReadStatus::error;
    }
  } else if (req.method == "POST" || req.method == "PUT") {
    refusal = refuse(411, "a body needs Content-Length");
    return ReadStatus::error;
  }
  if (length > max_body_) {
    refusal = refuse(413, "body of " + std::to_string(length) + " bytes over the limit of " +
                              std::to_string(max_body_));
    return ReadStatus::error;
  }
  if (length > 0 && iequals(req.header("Expect"), "100-continue") && buf_.empty()) {
    if (!conn_.write_all("HTTP/1.1 100 Continue\r\n\r\n")) {
      refusal.status = 0;
      return ReadStatus::error;
    }
  }
  while (buf_.size() < length) {
    if (!fill()) {
      refusal = Response{};
      refusal.status = 0;
      return ReadStatus::error;
    }
  }
  req.body = buf_.substr(0, length);
  buf_.erase(0, length);
  return ReadStatus::ok;
}

std::string serialize(const Response& r, bool keep_alive) {
  std::string out = "HTTP/1.1 " + std::to_string(r.status) + " " + reason(r.status) + "\r\n";
  for (const auto& [k, v] : r.headers) out += k + ": " + v + "\r\n";
  out +=
      "Content-Type: application/json\r\nContent-Length: " + std::to_string(r.body.size()) + "\r\n";
  if (!keep_alive || r.close) out += "Connection: close\r\n";
  out += "\r\n";
  out += r.body;
  return out;
}

std::string json_error(std::string_view message) {
  std::string out = "{\"error\":";
  jsonl::append_string(out, message);
  out += "}\n";
  return out;
}

}  // namespace outpost::receiver
