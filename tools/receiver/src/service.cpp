#include "service.hpp"

#include <unistd.h>

#include <chrono>
#include <fstream>
#include <sstream>
#include <thread>

#include "items_json.hpp"

namespace outpost::receiver {

namespace wire = lib::wire;

namespace {

std::string hex(std::string_view s) {
  static const char d[] = "0123456789abcdef";
  std::string out;
  for (unsigned char c : s) {
    out += d[c >> 4];
    out += d[c & 15];
  }
  return out.empty() ? "-" : out;
}

bool unhex(std::string_view h, std::string& out) {
  out.clear();
  if (h == "-") return true;
  if (h.size() % 2 != 0) return false;
  auto nib = [](char c) {
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
  };
  for (std::size_t i = 0; i < h.size(); i += 2) {
    const int a = nib(h[i]), b = nib(h[i + 1]);
    if (a < 0 || b < 0) return false;
    out += static_cast<char>(a * 16 + b);
  }
  return true;
}

// "ranges=stream:first-last,..." of a body, for --verbose (a test reads it for gaps).
std::string ranges_of(const wire::Header& h) {
  std::string out = "ranges=";
  for (std::size_t i = 0; i < h.ranges.size(); ++i) {
    if (i != 0) out += ',';
    out += h.ranges[i].stream + ":" + std::to_string(h.ranges[i].first_seq) + "-" +
           std::to_string(h.ranges[i].last_seq);
  }
  return out;
}

Response answer(int status, std::string body, std::string log) {
  Response r;
  r.status = status;
  r.body = std::move(body);
  r.log = std::move(log);
  return r;
}

constexpr const char* kStateMagic = "outpost-receiver-state 1";

}  // namespace

Service::Service(Options o) : o_(std::move(o)) {}

Service::~Service() {
  if (out_ != nullptr) std::fclose(out_);
}

bool Service::open(std::string& error) {
  if (!o_.out.empty()) {
    out_ = std::fopen(o_.out.c_str(), "ab");
    if (out_ == nullptr) {
      error = "--out " + o_.out + ": cannot open for appending";
      return false;
    }
  }
  if (!o_.state.empty()) {
    std::ifstream in(o_.state);
    if (!in) return true;  // no state yet
    std::string line;
    std::getline(in, line);
    if (line != kStateMagic) {
      error = "--state " + o_.state + ": not a receiver state file";
      return false;
    }
    std::vector<wire::HighWater> marks;
    while (std::getline(in, line)) {
      std::istringstream ls(line);
      std::string spool, stream;
      wire::HighWater m;
      if (!(ls >> spool >> stream >> m.last_seq) || !unhex(spool, m.spool_id) ||
          !unhex(stream, m.stream)) {
        error = "--state " + o_.state + ": bad line '" + line + "'";
        return false;
      }
      marks.push_back(std::move(m));
    }
    decoder_.restore_high_water(marks);
  }
  return true;
}

void Service::save_state() {
  if (o_.state.empty()) return;
  const std::string tmp = o_.state + ".tmp";
  std::FILE* f = std::fopen(tmp.c_str(), "wb");
  if (f == nullptr) return;
  std::string text = std::string(kStateMagic) + "\n";
  for (const auto& m : decoder_.high_water())
    text += hex(m.spool_id) + " " + hex(m.stream) + " " + std::to_string(m.last_seq) + "\n";
  const bool ok = std::fwrite(text.data(), 1, text.size(), f) == text.size() &&
                  std::fflush(f) == 0 && ::fsync(fileno(f)) == 0;
  std::fclose(f);
  if (ok) std::rename(tmp.c_str(), o_.state.c_str());
}

void Service::count_error(const char* kind) { ++errors_[kind]; }

void Service::count_refusal(const Response& r) {
  std::lock_guard lock(mu_);
  ++requests_;
  count_error(r.status == 413 ? "too_large" : r.status == 411 ? "length_required" : "bad_request");
}

Response Service::handle(const Request& req) {
  const std::string_view path = std::string_view(req.target).substr(0, req.target.find('?'));
  if (path == o_.path) {
    if (req.method != "POST") {
      std::lock_guard lock(mu_);
      ++requests_;
      count_error("method");
      Response r = answer(405, json_error("POST a batch here"), "not POST");
      r.headers.emplace_back("Allow", "POST");
      return r;
    }
    return post(req);
  }
  std::lock_guard lock(mu_);
  ++requests_;
  if (path == "/v1/stats" && req.method == "GET") return stats();
  count_error("not_found");
  return answer(404, json_error("no such endpoint: " + std::string(path)), "not found");
}

Response Service::post(const Request& req) {
  std::unique_lock lock(mu_);
  ++requests_;
  bytes_ += req.body.size();
  if (next_fault_ < o_.faults.size()) {
    const Fault f = o_.faults[next_fault_++];
    if (f.kind == Fault::Kind::close) {
      count_error("fault");
      Response r;
      r.drop = true;
      r.log = "fault: connection dropped";
      return r;
    }
    if (f.kind == Fault::Kind::status) {
      count_error("fault");
      Response r = answer(f.code, json_error("fault script"), "fault");
      if (f.retry_after >= 0) r.headers.emplace_back("Retry-After", std::to_string(f.retry_after));
      return r;
    }
    lock.unlock();
    std::this_thread::sleep_for(std::chrono::milliseconds(f.delay_ms));
    lock.lock();
  }
  const std::string_view type = req.header("Content-Type");
  if (type.substr(0, type.find(';')) != wire::kContentType) {
    count_error("unsupported_type");
    return answer(415,
                  json_error("Content-Type must be " + std::string(wire::kContentType) + ", not '" +
                             std::string(type) + "'"),
                  "content type");
  }
  const wire::Result r = decoder_.decode(wire::bytes_of(req.body));
  switch (r.status) {
    case wire::Status::duplicate: {
      ++duplicates_;
      Response resp = answer(200, "{\"accepted\":true,\"duplicate\":true}\n",
                             "duplicate " + ranges_of(r.header));
      resp.headers.emplace_back("X-Outpost-Duplicate", "1");
      return resp;
    }
    case wire::Status::unknown_epoch:
      count_error("unknown_epoch");
      return answer(409, json_error(r.error), r.error);
    case wire::Status::malformed:
      count_error("malformed");
      return answer(400, json_error(r.error), r.error);
    case wire::Status::ok:
      break;
  }
  ++batches_;
  metrics_ += r.metrics.size();
  events_ += r.events.size();
  flows_ += r.flows.size();
  if (out_ != nullptr) {
    std::string lines;
    append_items(lines, r);
    std::fwrite(lines.data(), 1, lines.size(), out_);
    std::fflush(out_);
  }
  save_state();
  const std::string counts = "\"metrics\":" + std::to_string(r.metrics.size()) +
                             ",\"events\":" + std::to_string(r.events.size()) +
                             ",\"flows\":" + std::to_string(r.flows.size()) +
                             ",\"new_series\":" + std::to_string(r.header.new_series);
  return answer(200, "{\"accepted\":true," + counts + "}\n", counts + " " + ranges_of(r.header));
}

Response Service::stats() const {
  const auto d = decoder_.stats();
  std::string s =
      "{\"requests\":" + std::to_string(requests_) + ",\"batches\":" + std::to_string(batches_) +
      ",\"duplicates\":" + std::to_string(duplicates_) + ",\"bytes\":" + std::to_string(bytes_) +
      ",\"items\":{\"metric\":" + std::to_string(metrics_) +
      ",\"event\":" + std::to_string(events_) + ",\"flow\":" + std::to_string(flows_) +
      "},\"series\":" + std::to_string(d.series) + ",\"epochs\":" + std::to_string(d.epochs) +
      ",\"errors\":{";
  bool first = true;
  for (const auto& [k, v] : errors_) {
    s += (first ? "\"" : ",\"") + k + "\":" + std::to_string(v);
    first = false;
  }
  s += "}}\n";
  return answer(200, s, "stats");
}

}  // namespace outpost::receiver
