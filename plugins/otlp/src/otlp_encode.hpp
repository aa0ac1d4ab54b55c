#pragma once
// Outpost batches as OTLP export requests (the messages of plugins/otlp/proto/), free of the
// engine and of HTTP so the unit tests drive it alone.
#include <outpost/plugin.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace outpost::otlp {

using Attributes = std::vector<std::pair<std::string, std::string>>;

struct Resource {
  Attributes attributes;  // service.name, host.name, ... in the order they are sent
  std::string scope_name = "outpost";
  std::string scope_version;
};

struct Encoded {
  std::string body;  // an ExportMetricsServiceRequest or ExportLogsServiceRequest; empty: none
  std::size_t items = 0;
};

// OTLP SeverityNumber (1..24) and SeverityText of an OUTPOST_SEV_* (syslog) severity.
uint32_t severity_number(uint32_t outpost_severity);
const char* severity_text(uint32_t outpost_severity);

// The batch's metrics, one Metric per (name, type) in the order names first appear; a time of 0
// becomes now_ns, as the file sink writes it.
Encoded encode_metrics(const Resource& r, const outpost_batch& b, int64_t now_ns);
// The batch's events as log records; observed_time is now_ns.
Encoded encode_logs(const Resource& r, const outpost_batch& b, int64_t now_ns);

// The counts of an ExportMetricsServiceResponse / ExportLogsServiceResponse partial_success:
// rejected items and the error message; {0, ""} for an empty or unreadable body.
struct PartialSuccess {
  int64_t rejected = 0;
  std::string message;
};
PartialSuccess decode_partial_success(const std::string& body);

}  // namespace outpost::otlp
