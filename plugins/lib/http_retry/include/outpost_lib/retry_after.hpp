#pragma once
// A receiver's Retry-After header (RFC 9110 10.2.3) as a number of seconds to wait.
#include <curl/curl.h>

#include <algorithm>
#include <cstdint>
#include <string>
#include <string_view>

namespace outpost::lib {

// The longest wait a receiver can ask for; a larger value is taken as this.
inline constexpr int64_t kMaxRetryAfterSeconds = 3600;

// delay-seconds or an HTTP-date (relative to now_s, Unix seconds), at most an hour; 0 when the
// value is empty, unreadable or in the past.
inline int64_t retry_after_seconds(std::string_view value, int64_t now_s) {
  if (value.empty()) return 0;
  if (value.find_first_not_of("0123456789") == std::string_view::npos) {
    if (value.size() > 9) return kMaxRetryAfterSeconds;
    return std::min<int64_t>(std::stoll(std::string(value)), kMaxRetryAfterSeconds);
  }
  const time_t at = curl_getdate(std::string(value).c_str(), nullptr);
  if (at < 0) return 0;
  return std::clamp<int64_t>(static_cast<int64_t>(at) - now_s, 0, kMaxRetryAfterSeconds);
}

}  // namespace outpost::lib
