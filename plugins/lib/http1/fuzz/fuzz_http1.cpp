// libFuzzer target: a response fed whole, then the same bytes in pieces whose sizes come from
// the first byte; both ways must agree (the parser keeps no state that depends on how the
// stream was cut) and keep within the limits.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <outpost_lib/http1.hpp>
#include <string_view>

using outpost::lib::http1::Limits;
using outpost::lib::http1::ResponseParser;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  const std::size_t step = data[0] % 17 + 1;
  const std::string_view in(reinterpret_cast<const char*>(data + 1), size - 1);
  Limits lim;
  lim.max_header_bytes = 2048;
  lim.max_body_bytes = 4096;
  ResponseParser whole(lim), parts(lim);
  whole.feed(in);
  for (std::size_t at = 0; at < in.size() && parts.state() == ResponseParser::State::need_more;) {
    const std::string_view piece = in.substr(at, step);
    const std::size_t used = parts.feed(piece);
    if (used > piece.size()) std::abort();
    if (parts.state() == ResponseParser::State::need_more && used != piece.size()) std::abort();
    at += piece.size();
  }
  whole.finish_eof();
  parts.finish_eof();
  if (whole.state() != parts.state()) std::abort();
  if (whole.state() == ResponseParser::State::complete) {
    if (whole.response().body != parts.response().body) std::abort();
    if (whole.response().status != parts.response().status) std::abort();
    if (whole.response().body.size() > lim.max_body_bytes) std::abort();
  }
  return 0;
}
