// Rows in ClickHouse's RowBinary format, in the column order of schema.hpp: little-endian
// fixed-width numbers, DateTime as UInt32 seconds, FixedString(16) as its 16 bytes, String and
// Array as a LEB128 length followed by the content. Free of the engine and the network, so the
// plugin, the tests and the benchmark encode alike.
#pragma once

#include <outpost/plugin.h>

#include <cstdint>
#include <string>
#include <string_view>

namespace outpost::clickhouse {

struct EncodedRows {
  std::string body;
  std::size_t rows = 0;
  uint32_t min_time = UINT32_MAX;  // the rows' time column, for finding them again
  uint32_t max_time = 0;
  void clear() {
    body.clear();
    rows = 0;
    min_time = UINT32_MAX;
    max_time = 0;
  }
};

// Seconds for a DateTime column: ns clamped to what UInt32 seconds hold.
uint32_t datetime_of(int64_t ns);

// One flow row. An IPv4 address becomes ::ffff:a.b.c.d. now_s stands in for a flow without times.
void append_flow(EncodedRows& out, const outpost_flow& f, uint64_t batch, uint32_t now_s);

// One rollup row from a flow_aggregator metric.
void append_rollup(EncodedRows& out, const outpost_metric& m, uint64_t batch, uint32_t now_s);

// A stable 64-bit key of a batch's identity (FNV-1a of the text), stored in every row.
uint64_t batch_key(std::string_view identity);

}  // namespace outpost::clickhouse
