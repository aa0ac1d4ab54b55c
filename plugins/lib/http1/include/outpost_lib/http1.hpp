// HTTP/1.1 on a byte stream the caller drives (a non-blocking socket on the poller runtime, or
// TLS on it): a request serializer and an incremental response parser. No I/O, no allocation
// beyond the message itself, so pollers keep thousands of exchanges in flight on one thread and
// the parser is fuzzed on its own. For HTTP APIs where blocking is fine, plugins/lib/http_client
// (libcurl) is the simpler choice.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace outpost::lib::http1 {

using Headers = std::vector<std::pair<std::string, std::string>>;

// "POST /wsman HTTP/1.1" with Host, Content-Length (always, also 0) and the given headers.
std::string request(std::string_view method, std::string_view target, std::string_view host,
                    const Headers& headers, std::string_view body);

struct Response {
  int status = 0;
  std::string reason;
  Headers headers;
  std::string body;
  bool keep_alive = true;  // false: the server closes after this response (or HTTP/1.0)
  // The first value of a header (names compare case-insensitively); nullopt when absent.
  std::optional<std::string_view> header(std::string_view name) const;
  // Every value of a header, in order (WWW-Authenticate may come several times).
  std::vector<std::string_view> all(std::string_view name) const;
};

struct Limits {
  std::size_t max_header_bytes = 64 * 1024;
  std::size_t max_body_bytes = 64 * 1024 * 1024;
};

// Feed bytes as they arrive; complete() says when a whole response is in. A response without
// Content-Length or chunked coding ends when the peer closes: call finish_eof() then.
class ResponseParser {
 public:
  explicit ResponseParser(Limits limits = {}) : limits_(limits) {}
  enum class State { need_more, complete, error };
  // Consumes what belongs to this response and returns how much it took (the rest belongs to
  // a next response, which HTTP/1.1 clients without pipelining never get).
  std::size_t feed(std::string_view bytes);
  State finish_eof();  // the peer closed: completes a read-until-close body, else an error
  State state() const { return state_; }
  const std::string& error() const { return error_; }
  // For a HEAD request or a status without a body (1xx, 204, 304) the caller says so first.
  void expect_no_body() { no_body_ = true; }
  Response& response() { return resp_; }
  void reset();

 private:
  bool parse_head();
  std::size_t feed_body(std::string_view bytes);
  void fail(std::string why);

  Limits limits_;
  State state_ = State::need_more;
  std::string error_;
  std::string head_;  // bytes of the status line and headers so far
  bool in_body_ = false, no_body_ = false;
  enum class Framing { length, chunked, until_close } framing_ = Framing::length;
  std::size_t remaining_ = 0;  // length framing: body bytes still due
  // chunked: the chunk-size line or trailer being read, and how much of the chunk is left
  enum class Chunk { size_line, data, data_crlf, trailer } chunk_ = Chunk::size_line;
  std::string line_;
  Response resp_;
};

// Case-insensitive ASCII comparison, for header names and tokens.
bool iequals(std::string_view a, std::string_view b);

}  // namespace outpost::lib::http1
