// The two tables the sink writes (raw flow records, flow_aggregator's rollups): their columns in
// the order rows are encoded, the DDL that creates them, and what a server's version allows.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace outpost::clickhouse {

struct Column {
  std::string_view name;
  std::string_view type;  // as system.columns spells it
};

enum class TableKind { flows, rollups };

std::span<const Column> columns_of(TableKind kind);

// "(time, start_ns, ...)": the insert's explicit column list, so that columns a user added to
// the table take their defaults.
std::string column_list(TableKind kind);

// A database or table name the sink accepts: letters, digits and underscores, not starting with
// a digit, at most 64 characters (no quoting needed anywhere).
bool valid_identifier(std::string_view name);

struct ServerVersion {
  int major = 0, minor = 0, patch = 0;
  // Table-level TTL came with 19.6.
  bool has_table_ttl() const { return major > 19 || (major == 19 && minor >= 6); }
};
std::optional<ServerVersion> parse_version(std::string_view text);

// CREATE TABLE IF NOT EXISTS: MergeTree, partitioned by day, ordered by time and exporter, rows
// older than ttl_days removed when ttl_days > 0 (the caller checks the server allows it).
std::string create_table_sql(std::string_view database, std::string_view table, TableKind kind,
                             int64_t ttl_days);

// What a table's columns (name, type pairs from system.columns) lack for the sink's rows: one
// sentence per missing or differently typed column; empty when the table fits.
std::vector<std::string> schema_mismatches(
    TableKind kind, const std::vector<std::pair<std::string, std::string>>& table_columns);

}  // namespace outpost::clickhouse
