#include "outpost_lib/http1.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>

namespace outpost::lib::http1 {

namespace {

char lower(char c) { return static_cast<char>(std::tolower(static_cast<unsigned char>(c))); }

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r'))
    s.remove_suffix(1);
  return s;
}

// Whether a comma-separated header value lists `token` (Connection: keep-alive, close).
bool has_token(std::string_view value, std::string_view token) {
  while (!value.empty()) {
    const std::size_t comma = value.find(',');
    if (iequals(trim(value.substr(0, comma)), token)) return true;
    if (comma == std::string_view::npos) break;
    value.remove_prefix(comma + 1);
  }
  return false;
}

}  // namespace

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(),
                                            [](char x, char y) { return lower(x) == lower(y); });
}

std::string request(std::string_view method, std::string_view target, std::string_view host,
                    const Headers& headers, std::string_view body) {
  std::string out;
  out.reserve(256 + body.size());
  out.append(method).append(" ").append(target).append(" HTTP/1.1\r\nHost: ").append(host);
  out.append("\r\n");
  for (const auto& [k, v] : headers) out.append(k).append(": ").append(v).append("\r\n");
  out.append("Content-Length: ").append(std::to_string(body.size())).append("\r\n\r\n");
  out.append(body);
  return out;
}

std::optional<std::string_view> Response::header(std::string_view name) const {
  for (const auto& [k, v] : headers)
    if (iequals(k, name)) return std::string_view(v);
  return std::nullopt;
}

std::vector<std::string_view> Response::all(std::string_view name) const {
  std::vector<std::string_view> out;
  for (const auto& [k, v] : headers)
    if (iequals(k, name)) out.emplace_back(v);
  return out;
}

void ResponseParser::reset() {
  const Limits l = limits_;
  *this = ResponseParser(l);
}

void ResponseParser::fail(std::string why) {
  state_ = State::error;
  error_ = std::move(why);
}

bool ResponseParser::parse_head() {
  // head_ ends with the blank line; lines end in CRLF (a bare LF is accepted, as curl does).
  std::string_view h(head_);
  std::vector<std::string_view> lines;
  while (!h.empty()) {
    const std::size_t nl = h.find('\n');
    std::string_view line = h.substr(0, nl);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    lines.push_back(line);
    if (nl == std::string_view::npos) break;
    h.remove_prefix(nl + 1);
  }
  while (!lines.empty() && lines.back().empty()) lines.pop_back();
  if (lines.empty()) return fail("empty response head"), false;
  const std::string_view status = lines[0];
  if (status.size() < 12 || status.substr(0, 5) != "HTTP/" || status[8] != ' ')
    return fail("not an HTTP response"), false;
  const bool http10 = status.substr(0, 8) == "HTTP/1.0";
  int code = 0;
  auto [p, ec] = std::from_chars(status.data() + 9, status.data() + 12, code);
  if (ec != std::errc{} || p != status.data() + 12 || code < 100 || code > 999)
    return fail("bad status code"), false;
  resp_.status = code;
  resp_.reason = std::string(trim(status.size() > 13 ? status.substr(13) : std::string_view{}));
  for (std::size_t i = 1; i < lines.size(); ++i) {
    const std::string_view line = lines[i];
    if (line.front() == ' ' || line.front() == '\t') {  // obsolete folding: part of the last one
      if (resp_.headers.empty()) return fail("folded line before any header"), false;
      resp_.headers.back().second.append(" ").append(trim(line));
      continue;
    }
    const std::size_t colon = line.find(':');
    if (colon == std::string_view::npos || colon == 0) return fail("malformed header line"), false;
    resp_.headers.emplace_back(std::string(trim(line.substr(0, colon))),
                               std::string(trim(line.substr(colon + 1))));
  }
  const auto conn = resp_.header("Connection");
  resp_.keep_alive =
      http10 ? (conn && has_token(*conn, "keep-alive")) : !(conn && has_token(*conn, "close"));
  if (no_body_ || code < 200 || code == 204 || code == 304) {
    framing_ = Framing::length;
    remaining_ = 0;
    return true;
  }
  const auto te = resp_.header("Transfer-Encoding");
  if (te && !iequals(trim(*te), "identity")) {
    // Only chunked is meaningful from a server to a client that sent no TE.
    if (!iequals(trim(*te), "chunked")) return fail("unsupported transfer coding"), false;
    framing_ = Framing::chunked;
    return true;
  }
  if (const auto cl = resp_.header("Content-Length")) {
    const std::string_view v = trim(*cl);
    uint64_t n = 0;
    auto [q, e2] = std::from_chars(v.data(), v.data() + v.size(), n);
    if (e2 != std::errc{} || q != v.data() + v.size() || v.empty())
      return fail("bad Content-Length"), false;
    if (n > limits_.max_body_bytes) return fail("body larger than the limit"), false;
    for (const auto& other : resp_.all("Content-Length"))
      if (trim(other) != v) return fail("conflicting Content-Length"), false;
    framing_ = Framing::length;
    remaining_ = static_cast<std::size_t>(n);
    resp_.body.reserve(remaining_);
    return true;
  }
  framing_ = Framing::until_close;
  resp_.keep_alive = false;
  return true;
}

std::size_t ResponseParser::feed(std::string_view bytes) {
  std::size_t skipped = 0;  // bytes of interim answers already passed over in this call
  if (state_ != State::need_more) return 0;
  while (!in_body_) {
    // Look for the blank line, also across feeds: keep at most the 3 bytes before it.
    const std::size_t before = head_.size();
    head_.append(bytes);
    std::size_t end = std::string::npos, from = before > 3 ? before - 3 : 0;
    for (std::size_t i = from; i < head_.size(); ++i) {
      if (head_[i] != '\n') continue;
      if (i >= 1 && head_[i - 1] == '\n') {
        end = i + 1;
        break;
      }
      if (i >= 2 && head_[i - 1] == '\r' && head_[i - 2] == '\n') {
        end = i + 1;
        break;
      }
    }
    if (end == std::string::npos) {
      if (head_.size() > limits_.max_header_bytes) fail("response head larger than the limit");
      return skipped + bytes.size();
    }
    if (end > limits_.max_header_bytes) return fail("response head larger than the limit"), skipped;
    const std::size_t used = end - before;
    head_.resize(end);
    if (!parse_head()) return skipped + used;
    bytes.remove_prefix(used);
    skipped += used;
    if (resp_.status >= 100 && resp_.status < 200 && resp_.status != 101) {
      // An interim answer (100 Continue, 102, 103): the real one follows on the same stream.
      head_.clear();
      resp_ = Response{};
      continue;
    }
    in_body_ = true;
    if (framing_ == Framing::length && remaining_ == 0) {
      state_ = State::complete;
      return skipped;
    }
  }
  return skipped + feed_body(bytes);
}

std::size_t ResponseParser::feed_body(std::string_view bytes) {
  std::size_t used = 0;
  auto take = [&](std::size_t n) {
    resp_.body.append(bytes.substr(used, n));
    used += n;
  };
  switch (framing_) {
    case Framing::length: {
      const std::size_t n = std::min(remaining_, bytes.size());
      take(n);
      remaining_ -= n;
      if (remaining_ == 0) state_ = State::complete;
      return used;
    }
    case Framing::until_close:
      if (resp_.body.size() + bytes.size() > limits_.max_body_bytes)
        return fail("body larger than the limit"), 0;
      take(bytes.size());
      return used;
    case Framing::chunked:
      break;
  }
  while (used < bytes.size() && state_ == State::need_more) {
    switch (chunk_) {
      case Chunk::size_line:
      case Chunk::trailer: {
        const std::size_t nl = bytes.find('\n', used);
        const std::size_t end = nl == std::string_view::npos ? bytes.size() : nl + 1;
        line_.append(bytes.substr(used, end - used));
        used = end;
        if (line_.size() > 4096) return fail("chunk line too long"), used;
        if (nl == std::string_view::npos) return used;
        std::string_view l = trim(std::string_view(line_).substr(0, line_.size() - 1));
        if (chunk_ == Chunk::trailer) {
          if (l.empty()) state_ = State::complete;  // trailer fields are ignored
          line_.clear();
          break;
        }
        const std::size_t semi = l.find(';');  // chunk extensions are ignored
        l = trim(l.substr(0, semi));
        uint64_t n = 0;
        auto [p, ec] = std::from_chars(l.data(), l.data() + l.size(), n, 16);
        if (l.empty() || ec != std::errc{} || p != l.data() + l.size())
          return fail("bad chunk size"), used;
        if (n > limits_.max_body_bytes || resp_.body.size() + n > limits_.max_body_bytes)
          return fail("body larger than the limit"), used;
        line_.clear();
        remaining_ = static_cast<std::size_t>(n);
        chunk_ = n == 0 ? Chunk::trailer : Chunk::data;
        break;
      }
      case Chunk::data: {
        const std::size_t n = std::min(remaining_, bytes.size() - used);
        take(n);
        remaining_ -= n;
        if (remaining_ == 0) chunk_ = Chunk::data_crlf;
        break;
      }
      case Chunk::data_crlf: {
        const std::size_t nl = bytes.find('\n', used);
        const std::size_t end = nl == std::string_view::npos ? bytes.size() : nl + 1;
        line_.append(bytes.substr(used, end - used));
        used = end;
        if (nl == std::string_view::npos) {
          if (line_.size() > 1) return fail("chunk not followed by CRLF"), used;
          return used;
        }
        if (trim(std::string_view(line_).substr(0, line_.size() - 1)).size() != 0)
          return fail("chunk not followed by CRLF"), used;
        line_.clear();
        chunk_ = Chunk::size_line;
        break;
      }
    }
  }
  return used;
}

ResponseParser::State ResponseParser::finish_eof() {
  if (state_ != State::need_more) return state_;
  if (in_body_ && framing_ == Framing::until_close) {
    state_ = State::complete;
  } else {
    fail(in_body_ ? "connection closed in the middle of the body"
                  : "connection closed before a response");
  }
  return state_;
}

}  // namespace outpost::lib::http1
