// Helpers for the sink plugins' tests: batches built from C++ values, a temporary directory and
// a shell command's output. Test-only; no plugin includes this.
#pragma once

#include <outpost/plugin.h>
#include <stdlib.h>

#include <chrono>
#include <cstdio>
#include <deque>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace sink_testing {

using Pairs = std::vector<std::pair<std::string, std::string>>;

inline int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Owns everything a batch points at; the batch stays valid while the builder lives.
class BatchBuilder {
 public:
  BatchBuilder& metric(std::string name, const Pairs& labels, double value, int64_t time_ns = 0,
                       uint32_t type = OUTPOST_METRIC_GAUGE) {
    const auto& kv = pairs(labels);
    metrics_.push_back(
        outpost_metric{str(std::move(name)), kv.data(), kv.size(), value, time_ns, type, 0});
    return *this;
  }
  BatchBuilder& event(std::string source, std::string kind, std::string message, uint32_t severity,
                      const Pairs& attrs = {}, int64_t time_ns = 0) {
    const auto& kv = pairs(attrs);
    events_.push_back(outpost_event{time_ns, severity, 0, str(std::move(source)),
                                    str(std::move(kind)), str(std::move(message)), kv.data(),
                                    kv.size()});
    return *this;
  }
  BatchBuilder& flow(const outpost_flow& f) {
    flows_.push_back(f);
    return *this;
  }
  outpost_batch batch() const {
    outpost_batch b = outpost_batch_make();
    b.metrics = metrics_.data();
    b.metric_count = metrics_.size();
    b.events = events_.data();
    b.event_count = events_.size();
    b.flows = flows_.data();
    b.flow_count = flows_.size();
    return b;
  }

 private:
  outpost_str str(std::string s) {
    const std::string& kept = strings_.emplace_back(std::move(s));
    return outpost_str{kept.data(), kept.size()};
  }
  const std::vector<outpost_kv>& pairs(const Pairs& p) {
    std::vector<outpost_kv> kv;
    for (const auto& [k, v] : p) kv.push_back(outpost_kv{str(k), str(v)});
    return kvs_.emplace_back(std::move(kv));
  }
  std::deque<std::string> strings_;  // deque: elements never move, so views stay valid
  std::deque<std::vector<outpost_kv>> kvs_;
  std::vector<outpost_metric> metrics_;
  std::vector<outpost_event> events_;
  std::vector<outpost_flow> flows_;
};

// An IPv4 flow from a.b.c.d style octets.
inline outpost_flow flow_v4(std::vector<uint8_t> src, std::vector<uint8_t> dst, uint16_t sport,
                            uint16_t dport, int64_t end_ns) {
  outpost_flow f{};
  for (std::size_t i = 0; i < 4; ++i) {
    f.src_addr[i] = src.at(i);
    f.dst_addr[i] = dst.at(i);
  }
  f.exporter_addr[0] = 192;
  f.exporter_addr[1] = 0;
  f.exporter_addr[2] = 2;
  f.exporter_addr[3] = 1;
  f.family = 4;
  f.protocol = 6;
  f.src_port = sport;
  f.dst_port = dport;
  f.start_ns = end_ns - 1'000'000'000;
  f.end_ns = end_ns;
  f.bytes = 1500;
  f.packets = 3;
  f.input_if = 1;
  f.output_if = 2;
  f.sampling_rate = 1;
  return f;
}

class TempDir {
 public:
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "outpost-sink-XXXXXX").string();
    if (::mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  std::string operator/(const std::string& name) const { return (path_ / name).string(); }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

// Runs a shell command; returns its exit status and standard output.
inline std::pair<int, std::string> run(const std::string& cmd) {
  FILE* p = ::popen(cmd.c_str(), "r");
  if (p == nullptr) return {-1, {}};
  std::string out;
  char buf[4096];
  std::size_t n = 0;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  const int status = ::pclose(p);
  return {status, out};
}

inline bool have_python() { return run("python3 -c 'pass' 2>/dev/null").first == 0; }

// Single-quotes s for /bin/sh.
inline std::string quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

}  // namespace sink_testing
