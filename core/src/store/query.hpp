// `outpost query`: reads the local store the sqlite sink writes (schema in
// plugins/sqlite/README.md) and prints series, samples and events.
#pragma once

#include <cstdint>
#include <ostream>
#include <string>

namespace outpost::core {

struct QueryOptions {
  std::string db_path;
  std::string what = "summary";  // summary | series | samples | events
  std::string match;             // substring of name or labels (series, samples)
  std::string name;              // exact metric name (samples)
  int64_t since_ns = 0;          // only rows newer than this (0 = all)
  int limit = 50;
  bool json = false;
};

// Prints the result; returns a process exit code (0 ok, 1 no store, 2 bad query).
int run_query(const QueryOptions& options, std::ostream& out, std::ostream& err);

}  // namespace outpost::core
