// The HTTP/1.1 response parser: framings, every way a stream can be cut, and refusals.
#include <catch2/catch.hpp>
#include <outpost_lib/http1.hpp>
#include <string>

using namespace outpost::lib::http1;

namespace {

// Feeds `in` in pieces of `step` bytes; returns the parser.
ResponseParser fed(std::string_view in, std::size_t step, Limits lim = {}) {
  ResponseParser p(lim);
  for (std::size_t at = 0; at < in.size() && p.state() == ResponseParser::State::need_more;
       at += step)
    p.feed(in.substr(at, step));
  return p;
}

}  // namespace

TEST_CASE("http1: a request carries Host and Content-Length") {
  const std::string r = request("POST", "/wsman", "win1:5985", {{"Content-Type", "a/b"}}, "xyz");
  CHECK(r ==
        "POST /wsman HTTP/1.1\r\nHost: win1:5985\r\nContent-Type: a/b\r\nContent-Length: "
        "3\r\n\r\nxyz");
}

TEST_CASE("http1: Content-Length and chunked bodies, cut anywhere") {
  const std::string cl =
      "HTTP/1.1 401 \r\nWWW-Authenticate: Negotiate\r\nWWW-Authenticate: Basic "
      "realm=\"WSMAN\"\r\nContent-Length: 5\r\n\r\nhello";
  const std::string ch =
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
      "4;ext=1\r\nWiki\r\n6\r\npedia \r\nE\r\nin \r\n\r\nchunks.\r\n0\r\nX-Trailer: 1\r\n\r\n";
  for (std::size_t step = 1; step <= 9; ++step) {
    auto a = fed(cl, step);
    REQUIRE(a.state() == ResponseParser::State::complete);
    CHECK(a.response().status == 401);
    CHECK(a.response().body == "hello");
    CHECK(a.response().keep_alive);
    CHECK(a.response().all("www-authenticate").size() == 2);
    auto b = fed(ch, step);
    REQUIRE(b.state() == ResponseParser::State::complete);
    CHECK(b.response().body == "Wikipedia in \r\n\r\nchunks.");
    CHECK_FALSE(b.response().keep_alive);
    CHECK(b.response().reason == "OK");
  }
}

TEST_CASE("http1: interim 1xx answers are skipped") {
  const std::string in =
      "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: x\r\n\r\nHTTP/1.1 200 "
      "OK\r\nContent-Length: 2\r\n\r\nok";
  for (std::size_t step = 1; step <= 7; ++step) {
    auto p = fed(in, step);
    REQUIRE(p.state() == ResponseParser::State::complete);
    CHECK(p.response().status == 200);
    CHECK(p.response().body == "ok");
    CHECK_FALSE(p.response().header("Link"));
  }
}

TEST_CASE("http1: a body read until the peer closes") {
  ResponseParser p;
  p.feed("HTTP/1.0 200 OK\r\nServer: x\r\n\r\nab");
  p.feed("cd");
  CHECK(p.state() == ResponseParser::State::need_more);
  CHECK(p.finish_eof() == ResponseParser::State::complete);
  CHECK(p.response().body == "abcd");
  CHECK_FALSE(p.response().keep_alive);
}

TEST_CASE("http1: what the parser refuses") {
  auto refused = [](std::string_view in, Limits lim = {}) {
    auto p = fed(in, 3, lim);
    if (p.state() == ResponseParser::State::need_more) p.finish_eof();
    return p.state() == ResponseParser::State::error;
  };
  CHECK(refused("SSH-2.0-OpenSSH_9.2\r\n\r\n"));
  CHECK(refused("HTTP/1.1 2x0 OK\r\n\r\n"));
  CHECK(refused("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n"));
  CHECK(refused("HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n"));
  CHECK(refused("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n"));
  CHECK(refused("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"));
  CHECK(refused("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcX\r\n0\r\n\r\n"));
  CHECK(refused("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort"));  // closed early
  CHECK(refused("HTTP/1.1 200 OK\r\nno colon here\r\n\r\n"));
  Limits small;
  small.max_header_bytes = 64;
  small.max_body_bytes = 8;
  CHECK(refused("HTTP/1.1 200 OK\r\nX: " + std::string(100, 'a') + "\r\n\r\n", small));
  CHECK(refused("HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n123456789", small));
  CHECK(refused("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n9\r\n123456789\r\n0\r\n\r\n",
                small));
  CHECK(refused(""));
}

TEST_CASE("http1: 204 and 304 have no body; reset reads the next response") {
  ResponseParser p;
  p.feed("HTTP/1.1 204 No Content\r\n\r\n");
  REQUIRE(p.state() == ResponseParser::State::complete);
  p.reset();
  const std::string two = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 500 x\r\n";
  const std::size_t used = p.feed(two);
  CHECK(p.state() == ResponseParser::State::complete);
  CHECK(two.substr(used).rfind("HTTP/1.1 500", 0) == 0);
}
