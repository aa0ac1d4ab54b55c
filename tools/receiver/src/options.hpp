// outpost-receiver's command line, and the fault script tests give it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace outpost::receiver {

// What to do with one POST instead of (or before) answering it.
struct Fault {
  enum class Kind { status, delay, close };
  Kind kind = Kind::status;
  int code = 0;          // status: the HTTP status
  int retry_after = -1;  // status: seconds for Retry-After; -1 none
  int delay_ms = 0;      // delay: wait, then answer as usual
};

struct Options {
  std::string host = "127.0.0.1";
  uint16_t port = 0;
  std::string cert, key, client_ca;
  std::string out;
  std::string path = "/v1/batches";
  std::string state;
  std::vector<Fault> faults;  // one per POST, in order; then normal service
  std::size_t max_body = 64u << 20;
  std::size_t max_connections = 64;
  bool verbose = false;
  bool help = false;
};

std::string usage();
// False with a one-sentence reason in error.
bool parse_options(int argc, char** argv, Options& out, std::string& error);
// "500x3,429:2x1,503:1x2,delay:3000x1,close x1": each entry ACTION[xN] expanded N times.
bool parse_faults(std::string_view spec, std::vector<Fault>& out, std::string& error);

}  // namespace outpost::receiver
