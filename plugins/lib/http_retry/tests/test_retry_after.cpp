#include <catch2/catch.hpp>
#include <outpost_lib/retry_after.hpp>

using outpost::lib::retry_after_seconds;

TEST_CASE("Retry-After in seconds is taken as it is, up to an hour", "[http_retry]") {
  CHECK(retry_after_seconds("2", 0) == 2);
  CHECK(retry_after_seconds("0", 0) == 0);
  CHECK(retry_after_seconds("7200", 0) == 3600);
  CHECK(retry_after_seconds("99999999999999999999", 0) == 3600);
}

TEST_CASE("Retry-After as an HTTP date counts from now", "[http_retry]") {
  // Sun, 06 Nov 1994 08:49:37 GMT is 784111777.
  CHECK(retry_after_seconds("Sun, 06 Nov 1994 08:49:37 GMT", 784111777 - 30) == 30);
  CHECK(retry_after_seconds("Sun, 06 Nov 1994 08:49:37 GMT", 784111777 + 30) == 0);
}

TEST_CASE("an empty or unreadable Retry-After asks for no wait", "[http_retry]") {
  CHECK(retry_after_seconds("", 0) == 0);
  CHECK(retry_after_seconds("soon", 0) == 0);
  CHECK(retry_after_seconds("-5", 0) == 0);
}
