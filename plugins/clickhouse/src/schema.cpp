#include "schema.hpp"

#include <array>
#include <charconv>

namespace outpost::clickhouse {
namespace {

// Addresses are IPv6 (IPv4 as ::ffff:a.b.c.d), 16 bytes each: what IPv6NumToString and
// toIPv6 work with on every server version; the IPv6 type itself only came with 19.x.
constexpr std::array<Column, 18> kFlowColumns{{
    {"time", "DateTime"},  // the flow's end (its start when it has no end), to the second
    {"start_ns", "Int64"},
    {"end_ns", "Int64"},
    {"exporter", "FixedString(16)"},
    {"src", "FixedString(16)"},
    {"dst", "FixedString(16)"},
    {"family", "UInt8"},
    {"protocol", "UInt8"},
    {"src_port", "UInt16"},
    {"dst_port", "UInt16"},
    {"tcp_flags", "UInt8"},
    {"tos", "UInt8"},
    {"input_if", "UInt32"},
    {"output_if", "UInt32"},
    {"sampling_rate", "UInt32"},
    {"bytes", "UInt64"},
    {"packets", "UInt64"},
    {"batch", "UInt64"},  // which spooled batch the row came in (a repeat is found by it)
}};

// flow_aggregator's summaries: one row per metric, its well-known labels as columns (empty when
// the metric has no such label; "other" for a top list's rest), any other label in the arrays.
constexpr std::array<Column, 13> kRollupColumns{{
    {"time", "DateTime"},
    {"name", "String"},
    {"exporter", "String"},
    {"ifindex", "String"},
    {"direction", "String"},
    {"src", "String"},
    {"dst", "String"},
    {"protocol", "String"},
    {"port", "String"},
    {"value", "Float64"},
    {"label_keys", "Array(String)"},
    {"label_values", "Array(String)"},
    {"batch", "UInt64"},
}};

}  // namespace

std::span<const Column> columns_of(TableKind kind) {
  if (kind == TableKind::flows) return kFlowColumns;
  return kRollupColumns;
}

std::string column_list(TableKind kind) {
  std::string out = "(";
  for (const auto& c : columns_of(kind)) {
    if (out.size() > 1) out += ", ";
    out += c.name;
  }
  return out + ")";
}

bool valid_identifier(std::string_view name) {
  if (name.empty() || name.size() > 64 || (name[0] >= '0' && name[0] <= '9')) return false;
  for (const char c : name)
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_'))
      return false;
  return true;
}

std::optional<ServerVersion> parse_version(std::string_view text) {
  ServerVersion v;
  int* parts[] = {&v.major, &v.minor, &v.patch};
  const char* p = text.data();
  const char* end = text.data() + text.size();
  for (int i = 0; i < 3; ++i) {
    auto [next, ec] = std::from_chars(p, end, *parts[i]);
    if (ec != std::errc{}) return i >= 2 ? std::optional(v) : std::nullopt;
    p = next;
    if (p == end || *p != '.') return i >= 1 ? std::optional(v) : std::nullopt;
    ++p;
  }
  return v;
}

std::string create_table_sql(std::string_view database, std::string_view table, TableKind kind,
                             int64_t ttl_days) {
  std::string sql = "CREATE TABLE IF NOT EXISTS ";
  sql.append(database).append(".").append(table).append(" (");
  bool first = true;
  for (const auto& c : columns_of(kind)) {
    if (!first) sql += ", ";
    first = false;
    sql.append(c.name).append(" ").append(c.type);
  }
  sql += ") ENGINE = MergeTree PARTITION BY toDate(time) ORDER BY ";
  sql += kind == TableKind::flows ? "(time, exporter)" : "(time, exporter, name)";
  if (ttl_days > 0) sql += " TTL time + INTERVAL " + std::to_string(ttl_days) + " DAY";
  return sql;
}

std::vector<std::string> schema_mismatches(
    TableKind kind, const std::vector<std::pair<std::string, std::string>>& table_columns) {
  std::vector<std::string> out;
  for (const auto& c : columns_of(kind)) {
    const std::pair<std::string, std::string>* found = nullptr;
    for (const auto& tc : table_columns)
      if (tc.first == c.name) found = &tc;
    if (found == nullptr)
      out.push_back("no column " + std::string(c.name) + " (" + std::string(c.type) + ")");
    else if (found->second != c.type)
      out.push_back("column " + std::string(c.name) + " is " + found->second + ", not " +
                    std::string(c.type));
  }
  return out;
}

}  // namespace outpost::clickhouse
