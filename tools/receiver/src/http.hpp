// HTTP/1.1 as the receiver speaks it: requests with Content-Length bodies (no chunked bodies),
// keep-alive, Expect: 100-continue; responses with a body and their headers.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "connection.hpp"

namespace outpost::receiver {

using Headers = std::vector<std::pair<std::string, std::string>>;

struct Request {
  std::string method, target, version;
  Headers headers;
  std::string body;
  bool keep_alive = true;
  // The first header of that name (case-insensitive), or empty.
  std::string_view header(std::string_view name) const;
};

struct Response {
  int status = 200;
  Headers headers;
  std::string body;    // JSON
  bool close = false;  // close the connection after this answer
  bool drop = false;   // close it without any answer (fault script)
  std::string log;     // the detail of the --verbose line
};

enum class ReadStatus { ok, closed, error };

class RequestReader {
 public:
  RequestReader(Connection& c, std::size_t max_body) : conn_(c), max_body_(max_body) {}
  // ok with a request; closed at a clean end of the connection; error with `refusal` set to the
  // answer to give (400, 411, 413, 431) before closing, or status 0 when the peer went away.
  ReadStatus read(Request& req, Response& refusal);

 private:
  bool fill();
  Connection& conn_;
  std::size_t max_body_;
  std::string buf_;
};

std::string serialize(const Response& r, bool keep_alive);
std::string json_error(std::string_view message);

}  // namespace outpost::receiver
