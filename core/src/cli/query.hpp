// `outpost query`: reads what a sink stored through its read hook (ABI 1.3) and prints the rows,
// as a table or JSON lines. The store's schema is the sink plugin's business (the sqlite sink's
// by default); the core loads the sink as the engine would, for reading only
// (OUTPOST_PURPOSE_READ), and prints whatever columns the rows carry.
#pragma once

#include <outpost/plugin.h>

#include <cstdint>
#include <iosfwd>
#include <string>
#include <utility>
#include <vector>

namespace outpost::core::cli {

struct QueryOptions {
  std::string config_path;  // empty: the embedded default configuration (unless db_path)
  std::vector<std::string> plugin_dirs;
  // A store sink's directory or a sqlite sink's file; no sink of the configuration is used.
  std::string db_path;
  std::string sink;  // a sink instance of the configuration; empty: the first that can be read
  std::string what = "summary";  // summary | series | samples | events
  std::string name;              // exact metric name (series, samples)
  std::string match;             // text in names, labels or messages
  int64_t since_ns = 0;          // 0: no bound
  int64_t until_ns = 0;          // 0: no bound
  uint64_t limit = 50;
  bool json = false;
};

// One column of a row, copied out of the plugin's outpost_column.
struct QueryValue {
  uint32_t type = OUTPOST_VALUE_NULL;
  int64_t i = 0;
  double d = 0;
  std::string text;
  std::vector<std::pair<std::string, std::string>> labels;
};
struct QueryRow {
  uint32_t kind = 0;  // OUTPOST_READ_SERIES, _SAMPLES or _EVENTS
  std::vector<std::pair<std::string, QueryValue>> columns;
};

// Copies a row the plugin handed over (its pointers are valid only during the callback).
QueryRow copy_row(const outpost_read_row& row);

// A table per kind of row (aligned columns under a header, then a count); a summary's kinds each
// under a "== ... ==" title.
void print_table(const std::vector<QueryRow>& rows, uint32_t what, std::ostream& os);
// One JSON object a row: its columns in order; labels as objects, times as Unix ns.
void print_json(const std::vector<QueryRow>& rows, std::ostream& os);

// Runs the query and prints; returns the exit status: 0 ok, 1 nothing to read or no sink that
// can be read, 2 a bad query.
int run_query(const QueryOptions& options, std::ostream& out, std::ostream& err);

}  // namespace outpost::core::cli
