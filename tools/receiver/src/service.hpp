// What the receiver does with a request: the fault script, the decoder (one, under a lock), the
// --out file, the --state file and the counters GET /v1/stats shows.
#pragma once

#include <cstdint>
#include <cstdio>
#include <map>
#include <mutex>
#include <outpost_lib/uplink_wire.hpp>
#include <string>

#include "http.hpp"
#include "options.hpp"

namespace outpost::receiver {

class Service {
 public:
  explicit Service(Options o);
  ~Service();
  Service(const Service&) = delete;
  Service& operator=(const Service&) = delete;

  // Opens --out and reads --state; false with a reason.
  bool open(std::string& error);
  Response handle(const Request& req);
  // A request refused before it could be handled (oversize, chunked, bad syntax).
  void count_refusal(const Response& r);

 private:
  Response post(const Request& req);
  Response stats() const;
  void save_state();
  void count_error(const char* kind);

  Options o_;
  mutable std::mutex mu_;
  lib::wire::Decoder decoder_;
  std::FILE* out_ = nullptr;
  std::size_t next_fault_ = 0;
  uint64_t requests_ = 0, batches_ = 0, duplicates_ = 0, bytes_ = 0;
  uint64_t metrics_ = 0, events_ = 0, flows_ = 0;
  std::map<std::string, uint64_t> errors_;
};

}  // namespace outpost::receiver
