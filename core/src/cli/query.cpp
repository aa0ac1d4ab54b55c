#include "cli/query.hpp"

#include <fmt/core.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <jsonl/jsonl.hpp>
#include <memory>
#include <ostream>
#include <outpost/sdk.hpp>
#include <string_view>

#include "config/config.hpp"
#include "engine/instance.hpp"
#include "loader/loader.hpp"
#include "util/status.hpp"

namespace outpost::core::cli {
namespace {

std::string sv(outpost_str s) { return s.ptr ? std::string(s.ptr, s.len) : std::string(); }

std::string fmt_time(int64_t ns) {
  const std::time_t t = static_cast<std::time_t>(ns / 1000000000);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  return fmt::format("{}.{:03d}Z", buf, static_cast<int>((ns / 1000000) % 1000));
}

std::string fmt_value(double v) {
  if (std::isnan(v)) return "NaN";
  if (v == std::floor(v) && std::fabs(v) < 1e15) return fmt::format("{:.0f}", v);
  return fmt::format("{:.6g}", v);
}

const char* severity_name(int64_t s) {
  static const char* names[] = {"emerg",   "alert",  "crit", "error",
                                "warning", "notice", "info", "debug"};
  return s >= 0 && s < 8 ? names[s] : nullptr;
}

std::string labels_text(const QueryValue& v) {
  std::string s;
  for (const auto& [k, val] : v.labels)
    s += fmt::format("{}{}=\"{}\"", s.empty() ? "" : ",", k, val);
  return "{" + s + "}";
}

std::string cell(const QueryValue& v) {
  switch (v.type) {
    case OUTPOST_VALUE_TEXT:
      return v.text;
    case OUTPOST_VALUE_INT:
      return std::to_string(v.i);
    case OUTPOST_VALUE_DOUBLE:
      return fmt_value(v.d);
    case OUTPOST_VALUE_TIME:
      return fmt_time(v.i);
    case OUTPOST_VALUE_SEVERITY: {
      const char* n = severity_name(v.i);
      return n ? n : std::to_string(v.i);
    }
    case OUTPOST_VALUE_LABELS:
      return labels_text(v);
    default:
      return "-";
  }
}

const char* kind_noun(uint32_t kind, std::size_t n) {
  switch (kind) {
    case OUTPOST_READ_SERIES:
      return "series";
    case OUTPOST_READ_SAMPLES:
      return n == 1 ? "sample" : "samples";
    case OUTPOST_READ_EVENTS:
      return n == 1 ? "event" : "events";
    default:
      return n == 1 ? "row" : "rows";
  }
}

const char* kind_title(uint32_t kind) {
  switch (kind) {
    case OUTPOST_READ_SERIES:
      return "== series ==";
    case OUTPOST_READ_SAMPLES:
      return "== samples ==";
    case OUTPOST_READ_EVENTS:
      return "== recent events ==";
    default:
      return "== rows ==";
  }
}

// Rows of one kind, aligned under a header named after the first row's columns. Labels that
// follow a column named "name" are written onto it: icmp_up{device="gw"}.
void print_section(const std::vector<const QueryRow*>& rows, uint32_t kind, std::ostream& os) {
  constexpr std::size_t kMaxWidth = 80;
  if (!rows.empty()) {
    std::vector<std::string> header;
    std::vector<std::vector<std::string>> cells;
    for (const QueryRow* r : rows) {
      std::vector<std::string> line, names;
      for (std::size_t c = 0; c < r->columns.size(); ++c) {
        const auto& [name, value] = r->columns[c];
        if (value.type == OUTPOST_VALUE_LABELS && c > 0 && r->columns[c - 1].first == "name" &&
            !line.empty()) {
          if (!value.labels.empty()) line.back() += labels_text(value);
          continue;
        }
        line.push_back(cell(value));
        // A time is printed as a date: its header loses the unit.
        const bool ns = value.type == OUTPOST_VALUE_TIME && name.size() > 3 &&
                        name.compare(name.size() - 3, 3, "_ns") == 0;
        names.push_back(ns ? name.substr(0, name.size() - 3) : name);
      }
      if (header.empty()) header = std::move(names);
      cells.push_back(std::move(line));
    }
    std::vector<std::size_t> width(header.size(), 0);
    for (std::size_t c = 0; c < header.size(); ++c) width[c] = header[c].size();
    for (const auto& line : cells)
      for (std::size_t c = 0; c < line.size() && c < width.size(); ++c)
        width[c] = std::max(width[c], std::min(line[c].size(), kMaxWidth));
    auto print_line = [&](const std::vector<std::string>& line) {
      std::string s;
      for (std::size_t c = 0; c < line.size(); ++c) {
        if (c != 0) s += "  ";
        const bool last = c + 1 == line.size();
        s += last || c >= width.size() ? line[c] : fmt::format("{:<{}}", line[c], width[c]);
      }
      os << s << "\n";
    };
    std::vector<std::string> upper = header;
    for (auto& h : upper)
      std::transform(h.begin(), h.end(), h.begin(),
                     [](unsigned char ch) { return static_cast<char>(std::toupper(ch)); });
    print_line(upper);
    for (const auto& line : cells) print_line(line);
  }
  os << fmt::format("({} {})\n", rows.size(), kind_noun(kind, rows.size()));
}

// The host side of an instance created only to be read.
class QueryHost final : public HostServices {
 public:
  explicit QueryHost(const Config& cfg) : cfg_(cfg) {}
  outpost_status emit(PluginInstance& from, const outpost_batch& batch) override {
    from.note_emit(false, batch.metric_count + batch.event_count + batch.flow_count);
    return OUTPOST_E_UNAVAILABLE;  // a reader emits nothing
  }
  void complete(PluginInstance&, uint64_t, uint64_t, outpost_status, std::string_view) override {}
  outpost_status secret(std::string_view ref, std::string& out) override {
    return resolve_secret(cfg_.credentials, ref, out);
  }
  outpost_status reply(uint64_t, const outpost_sockaddr&, const uint8_t*, std::size_t) override {
    return OUTPOST_E_UNSUPPORTED;
  }
  bool reported(PluginInstance&, outpost_status, std::string_view detail) override {
    details.emplace_back(detail);
    return true;
  }
  std::vector<std::string> details;

 private:
  const Config& cfg_;
};

struct Collector {
  std::vector<QueryRow> rows;
};

outpost_status collect_row(void* context, const outpost_read_row* row) {
  if (row == nullptr) return OUTPOST_E_INVALID_ARGUMENT;
  try {
    static_cast<Collector*>(context)->rows.push_back(copy_row(*row));
  } catch (...) {
    return OUTPOST_E_INTERNAL;  // nothing unwinds into the plugin
  }
  return OUTPOST_OK;
}

bool parse_what(const std::string& what, uint32_t& out) {
  static const std::pair<const char*, uint32_t> kWhat[] = {{"summary", OUTPOST_READ_SUMMARY},
                                                           {"series", OUTPOST_READ_SERIES},
                                                           {"samples", OUTPOST_READ_SAMPLES},
                                                           {"events", OUTPOST_READ_EVENTS}};
  for (const auto& [n, w] : kWhat)
    if (what == n) {
      out = w;
      return true;
    }
  return false;
}

std::string sink_list(const Config& cfg) {
  std::string s;
  for (const auto& i : cfg.sinks)
    s += fmt::format("{}{} ({})", s.empty() ? "" : ", ", i.name, i.plugin);
  return s.empty() ? std::string("none") : s;
}

}  // namespace

QueryRow copy_row(const outpost_read_row& row) {
  QueryRow r;
  r.kind = row.kind;
  const std::size_t size = row.column_size;
  for (std::size_t k = 0; row.columns != nullptr && k < row.column_count; ++k) {
    // A column from a newer producer: the members this host knows are at the same offsets.
    outpost_column c{};
    std::memcpy(&c, reinterpret_cast<const char*>(row.columns) + k * size,
                std::min(size, sizeof c));
    QueryValue v;
    v.type = c.type;
    v.i = c.i;
    v.d = c.d;
    v.text = sv(c.text);
    for (std::size_t l = 0; c.labels != nullptr && l < c.label_count; ++l)
      v.labels.emplace_back(sv(c.labels[l].key), sv(c.labels[l].value));
    r.columns.emplace_back(sv(c.name), std::move(v));
  }
  return r;
}

void print_table(const std::vector<QueryRow>& rows, uint32_t what, std::ostream& os) {
  // Rows grouped by kind, in the order the kinds first came.
  std::vector<uint32_t> kinds;
  for (const auto& r : rows)
    if (std::find(kinds.begin(), kinds.end(), r.kind) == kinds.end()) kinds.push_back(r.kind);
  if (what != OUTPOST_READ_SUMMARY) {
    kinds.erase(std::remove(kinds.begin(), kinds.end(), what), kinds.end());
    kinds.insert(kinds.begin(), what);  // the count of what was asked, even when 0
  } else if (kinds.empty()) {
    os << "(nothing stored)\n";
    return;
  }
  for (const uint32_t kind : kinds) {
    std::vector<const QueryRow*> of_kind;
    for (const auto& r : rows)
      if (r.kind == kind) of_kind.push_back(&r);
    if (what == OUTPOST_READ_SUMMARY || kinds.size() > 1) os << kind_title(kind) << "\n";
    print_section(of_kind, kind, os);
  }
}

void print_json(const std::vector<QueryRow>& rows, std::ostream& os) {
  std::string line;
  for (const auto& r : rows) {
    line = "{";
    for (std::size_t c = 0; c < r.columns.size(); ++c) {
      const auto& [name, v] = r.columns[c];
      if (c != 0) line += ',';
      jsonl::append_string(line, name);
      line += ':';
      switch (v.type) {
        case OUTPOST_VALUE_TEXT:
          jsonl::append_string(line, v.text);
          break;
        case OUTPOST_VALUE_INT:
        case OUTPOST_VALUE_TIME:
        case OUTPOST_VALUE_SEVERITY:
          jsonl::append_number(line, v.i);
          break;
        case OUTPOST_VALUE_DOUBLE:
          jsonl::append_number(line, v.d);
          break;
        case OUTPOST_VALUE_LABELS:
          jsonl::append_pairs(line, v.labels);
          break;
        default:
          line += "null";
      }
    }
    line += "}\n";
    os << line;
  }
}

int run_query(const QueryOptions& o, std::ostream& out, std::ostream& err) {
  uint32_t what = 0;
  if (!parse_what(o.what, what)) {
    err << "outpost query: unknown query '" << o.what << "' (summary, series, samples, events)\n";
    return 2;
  }
  Config cfg;
  cfg.source = "<query>";
  if (!o.config_path.empty() || o.db_path.empty()) {
    auto r = o.config_path.empty()
                 ? parse_config_text(embedded_default_config(), "<embedded default>")
                 : parse_config_file(o.config_path);
    if (!r.config) {
      for (const auto& e : r.errors) err << e.str() << "\n";
      return 1;
    }
    cfg = std::move(*r.config);
  }
  std::vector<std::string> dirs = o.plugin_dirs;
  dirs.insert(dirs.end(), cfg.engine.plugin_dirs.begin(), cfg.engine.plugin_dirs.end());
  for (auto& d : default_plugin_dirs()) dirs.push_back(d);
  PluginRegistry reg;
  reg.load_dirs(dirs);

  auto readable = [&](const InstanceSpec& s) {
    const LoadedPlugin* p = reg.find(s.plugin);
    return p != nullptr && OUTPOST_HAS(&p->desc, outpost_plugin_descriptor, read) &&
           p->desc.read != nullptr;
  };
  InstanceSpec spec;
  if (!o.db_path.empty()) {  // a store directory (the store sink's) or a sqlite sink's file
    std::error_code ec;
    spec.name = spec.plugin = std::filesystem::is_directory(o.db_path, ec) ? "store" : "sqlite";
    spec.path = "--db";
    spec.where = Location{"--db", 0, 0};
    spec.settings.push_back(Setting{"path", o.db_path, spec.where, spec.where});
  } else if (!o.sink.empty()) {
    auto it = std::find_if(cfg.sinks.begin(), cfg.sinks.end(),
                           [&](const InstanceSpec& s) { return s.name == o.sink; });
    if (it == cfg.sinks.end()) {
      err << fmt::format("outpost query: {} has no sink named '{}' (sinks: {})\n", cfg.source,
                         o.sink, sink_list(cfg));
      return 1;
    }
    spec = *it;
  } else {
    auto it = std::find_if(cfg.sinks.begin(), cfg.sinks.end(), readable);
    if (it == cfg.sinks.end()) {
      err << fmt::format(
          "outpost query: no sink of {} can be read (sinks: {}); use --db PATH for a local "
          "store's directory or a sqlite sink's file\n",
          cfg.source, sink_list(cfg));
      return 1;
    }
    spec = *it;
  }
  const LoadedPlugin* p = reg.find(spec.plugin);
  if (p == nullptr) {
    err << fmt::format("outpost query: no plugin named '{}' found\n", spec.plugin);
    return 1;
  }
  if (!readable(spec)) {
    err << fmt::format(
        "outpost query: sink '{}' (plugin {}, ABI {}) cannot be read: the plugin has no read "
        "hook{}\n",
        spec.name, spec.plugin, abi_string(p->plugin_abi),
        OUTPOST_ABI_MINOR_OF(p->plugin_abi) < 3 ? " (built before ABI 1.3)" : "");
    return 1;
  }
  std::vector<ConfigError> errors;
  validate_settings(spec.settings, p->desc.config_fields, p->desc.config_field_count, spec.path,
                    spec.where, errors);
  if (!errors.empty()) {
    for (const auto& e : errors) err << e.str() << "\n";
    return 1;
  }

  QueryHost host(cfg);
  auto instance = std::make_unique<PluginInstance>(host, *p, spec, OUTPOST_PURPOSE_READ);
  // The plugin's own words first; the host's when it gave none.
  auto fail = [&](const std::string& what_failed, int rc) {
    if (host.details.empty())
      err << fmt::format("outpost query: sink '{}' (plugin {}): {}\n", spec.name, spec.plugin,
                         what_failed);
    for (const auto& d : host.details) err << "outpost query: " << d << "\n";
    return rc;
  };
  std::string why;
  if (!instance->create(cfg.engine, why)) return fail(why, 1);

  outpost_read_request req{};
  req.struct_size = sizeof req;
  req.what = what;
  req.name = to_c(o.name);
  req.match = to_c(o.match);
  req.since_ns = o.since_ns;
  req.until_ns = o.until_ns;
  req.limit = o.limit;
  Collector rows;
  const outpost_status st = instance->call_read(req, &collect_row, &rows);
  instance->destroy();
  if (st != OUTPOST_OK)  // a request the sink cannot answer is a bad query
    return fail(fmt::format("read failed: {} ({:#x})", status_name(st), st),
                st == OUTPOST_E_UNSUPPORTED || st == OUTPOST_E_INVALID_ARGUMENT ? 2 : 1);
  for (const auto& d : host.details) err << "outpost query: " << d << "\n";
  if (o.json)
    print_json(rows.rows, out);
  else
    print_table(rows.rows, what, out);
  return 0;
}

}  // namespace outpost::core::cli
