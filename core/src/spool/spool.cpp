#include "spool/spool.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <deque>
#include <filesystem>
#include <random>
#include <system_error>

#include "spool/record.hpp"
#include "util/log.hpp"

namespace outpost::core {
namespace fs = std::filesystem;
using spool::kRecordHeaderSize;
using spool::kSegmentHeaderSize;

namespace {

constexpr uint64_t kQuarantineMax = 64ull << 20;

int64_t wall_now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string errno_text(int e) { return std::error_code(e, std::generic_category()).message(); }

// A file descriptor shared by the thread that writes a segment and the one that syncs it.
struct FileRef {
  int fd = -1;
  explicit FileRef(int f) : fd(f) {}
  ~FileRef() {
    if (fd >= 0) ::close(fd);
  }
  FileRef(const FileRef&) = delete;
  FileRef& operator=(const FileRef&) = delete;
};

bool write_all(int fd, const char* p, std::size_t n, uint64_t off) {
  while (n > 0) {
    const ssize_t w = ::pwrite(fd, p, n, static_cast<off_t>(off));
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return false;
    p += w;
    n -= static_cast<std::size_t>(w);
    off += static_cast<uint64_t>(w);
  }
  return true;
}

bool read_file(const std::string& path, std::string& out) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  struct stat st {};
  bool ok = ::fstat(fd, &st) == 0;
  if (ok) {
    out.resize(static_cast<std::size_t>(st.st_size));
    std::size_t got = 0;
    while (got < out.size()) {
      const ssize_t r = ::pread(fd, out.data() + got, out.size() - got, static_cast<off_t>(got));
      if (r < 0 && errno == EINTR) continue;
      if (r <= 0) break;
      got += static_cast<std::size_t>(r);
    }
    out.resize(got);
  }
  ::close(fd);
  return ok;
}

void sync_dir(const std::string& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return;
  ::fsync(fd);
  ::close(fd);
}

// Writes a small file so that a crash leaves the old or the new one, never a mix.
bool write_atomically(const std::string& path, const std::string& bytes) {
  const std::string tmp = path + ".tmp";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return false;
  const bool ok = write_all(fd, bytes.data(), bytes.size(), 0) && ::fdatasync(fd) == 0;
  ::close(fd);
  if (!ok || ::rename(tmp.c_str(), path.c_str()) != 0) return false;
  sync_dir(fs::path(path).parent_path().string());
  return true;
}

// Stream directory names: a source's name with anything unusual as %XX.
std::string escape(const std::string& name) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  for (std::size_t i = 0; i < name.size(); ++i) {
    const auto c = static_cast<unsigned char>(name[i]);
    if (std::isalnum(c) || c == '_' || c == '-' || (c == '.' && i > 0)) {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out.empty() ? "%" : out;
}
std::string unescape(const std::string& s) {
  if (s == "%") return "";
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    char* end = nullptr;
    const std::string hex = i + 2 < s.size() ? s.substr(i + 1, 2) : std::string();
    const long v = hex.empty() ? -1 : std::strtol(hex.c_str(), &end, 16);
    if (s[i] == '%' && v >= 0 && end == hex.c_str() + 2) {
      out += static_cast<char>(v);
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

std::string segment_name(uint64_t first_seq) {
  char b[32];
  std::snprintf(b, sizeof b, "%020llu.seg", static_cast<unsigned long long>(first_seq));
  return b;
}

using spool::put;
using spool::take;
void put_str(std::string& out, const std::string& s) {
  put<uint16_t>(out, static_cast<uint16_t>(s.size()));
  out.append(s);
}
bool take_str(std::string_view& in, std::string& s) {
  uint16_t n = 0;
  if (!take(in, n) || in.size() < n) return false;
  s.assign(in.data(), n);
  in.remove_prefix(n);
  return true;
}

constexpr char kCursorMagic[8] = {'O', 'P', 'C', 'U', 'R', 'S', 'R', '1'};

}  // namespace

namespace spool {
struct Segment {
  uint64_t first_seq = 0;
  uint64_t last_seq = 0;  // 0: no record yet
  uint64_t bytes = 0;     // written completely
  std::string path;
};

// A record not yet acknowledged, and where it is.
struct RecInfo {
  uint64_t seq = 0;
  uint64_t offset = 0;
  uint32_t size = 0;  // header + payload
  uint32_t items = 0;
  int64_t time_ns = 0;
  uint64_t seg_first = 0;
};
}  // namespace spool
using spool::RecInfo;
using spool::Segment;

struct Spool::Stream {
  std::string name;
  std::string dir;
  std::deque<Segment> segs;
  std::shared_ptr<FileRef> active;  // segs.back() while open for appends
  std::vector<std::shared_ptr<FileRef>> sealing;
  bool dir_dirty = false;
  uint64_t next_seq = 1;
  uint64_t written_seq = 0;
  uint64_t synced_seq = 0;
  uint64_t acked_seq = 0;
  uint64_t read_seq = 1;  // the next record the sender takes
  uint64_t bytes = 0;
  uint64_t pending_items = 0;
  std::deque<RecInfo> unacked;
};

struct Spool::Inflight {
  struct Range {
    std::string stream;
    uint64_t first = 0, last = 0;
  };
  std::vector<Range> ranges;
  std::vector<RecInfo> records;
  std::vector<std::string> paths;  // records[i] is in paths[i]
  std::vector<Batch> batches;
  std::size_t items = 0;
  int64_t oldest_ns = 0;
  uint32_t attempt = 0;
};

Spool::Spool(SpoolOptions options) : opt_(std::move(options)) {}

Spool::~Spool() {
  stop();
  if (lock_fd_ >= 0) ::close(lock_fd_);
}

std::unique_ptr<Spool> Spool::open(const SpoolOptions& options, std::string& why) {
  std::unique_ptr<Spool> s(new Spool(options));
  if (!s->recover(why)) return nullptr;
  return s;
}

namespace {
uint64_t segment_limit(const SpoolOptions& o) {
  return std::max<uint64_t>(64 << 10, std::min(o.segment_bytes, o.max_source_bytes / 4));
}
}  // namespace

bool Spool::recover(std::string& why) {
  std::error_code ec;
  fs::create_directories(fs::path(opt_.dir) / "streams", ec);
  if (!ec) fs::create_directories(fs::path(opt_.dir) / "quarantine", ec);
  if (ec) {
    why = "spool directory " + opt_.dir + ": " + ec.message();
    return false;
  }
  // One engine a spool: a second one (another `outpost run` on the same data_dir) is refused.
  const std::string lock_path = (fs::path(opt_.dir) / "lock").string();
  lock_fd_ = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (lock_fd_ < 0 || ::flock(lock_fd_, LOCK_EX | LOCK_NB) != 0) {
    why = "spool " + opt_.dir + " is in use by another process (" + lock_path + ")";
    return false;
  }
  const std::string id_path = (fs::path(opt_.dir) / "spool.id").string();
  std::string idtext;
  if (read_file(id_path, idtext) && idtext.size() == 33 && idtext[32] == '\n') {
    id_ = idtext.substr(0, 32);
  } else {
    std::random_device rd;
    char b[40];
    std::snprintf(b, sizeof b, "%08x%08x%08x%08x", rd(), rd(), rd(), rd());
    id_ = b;
    if (!write_atomically(id_path, id_ + "\n")) {
      why = "cannot write " + id_path + ": " + errno_text(errno);
      return false;
    }
  }

  // The cursor: acknowledged sequence numbers and the batch in flight.
  std::map<std::string, uint64_t> acked;
  std::vector<Inflight::Range> inflight;
  const std::string cursor_path = (fs::path(opt_.dir) / "cursor").string();
  std::string cur;
  if (read_file(cursor_path, cur)) {
    bool ok = cur.size() >= 12 && std::memcmp(cur.data(), kCursorMagic, 8) == 0;
    uint32_t crc = 0;
    if (ok) {
      std::memcpy(&crc, cur.data() + cur.size() - 4, 4);
      ok = crc == spool::crc32c(cur.data(), cur.size() - 4);
    }
    std::string_view in(cur);
    if (ok) {
      in.remove_prefix(8);
      in.remove_suffix(4);
      uint32_t n = 0;
      ok = take(in, n);
      for (uint32_t i = 0; ok && i < n; ++i) {
        std::string name;
        uint64_t seq = 0;
        ok = take_str(in, name) && take(in, seq);
        if (ok) acked[name] = seq;
      }
      ok = ok && take(in, n);
      for (uint32_t i = 0; ok && i < n; ++i) {
        Inflight::Range r;
        ok = take_str(in, r.stream) && take(in, r.first) && take(in, r.last);
        if (ok) inflight.push_back(r);
      }
    }
    if (!ok) {
      logf(LogLevel::error,
           "spool {}: the cursor is corrupt; set aside, everything spooled is sent again",
           opt_.dir);
      fs::rename(cursor_path, (fs::path(opt_.dir) / "quarantine" / "cursor.bad").string(), ec);
      stats_.corrupt_records++;
      acked.clear();
      inflight.clear();
    }
  }

  uint64_t quarantined = 0;
  for (const auto& e : fs::directory_iterator(fs::path(opt_.dir) / "quarantine", ec))
    quarantined += e.is_regular_file(ec) ? e.file_size(ec) : 0;
  auto set_aside = [&](const std::string& sname, const std::string& path, std::string_view bytes,
                       uint64_t offset) {
    stats_.corrupt_records++;
    stats_.corrupt_bytes += bytes.size();
    logf(LogLevel::warn, "spool {}: stream '{}': {} bytes at offset {} of {} fail their checks",
         opt_.dir, sname, bytes.size(), offset, fs::path(path).filename().string());
    if (quarantined + bytes.size() > kQuarantineMax) return;
    const std::string q = (fs::path(opt_.dir) / "quarantine" /
                           (escape(sname) + "." + fs::path(path).stem().string() + "." +
                            std::to_string(offset) + ".bad"))
                              .string();
    const int fd = ::open(q.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) return;
    if (write_all(fd, bytes.data(), bytes.size(), 0)) quarantined += bytes.size();
    ::fsync(fd);
    ::close(fd);
  };

  for (const auto& de : fs::directory_iterator(fs::path(opt_.dir) / "streams", ec)) {
    if (!de.is_directory(ec)) continue;
    auto st = std::make_unique<Stream>();
    st->name = unescape(de.path().filename().string());
    st->dir = de.path().string();
    if (auto a = acked.find(st->name); a != acked.end()) st->acked_seq = a->second;
    std::vector<std::pair<uint64_t, std::string>> files;
    for (const auto& f : fs::directory_iterator(de.path(), ec)) {
      const std::string fname = f.path().filename().string();
      if (f.path().extension() != ".seg" || fname.size() != 24) continue;
      files.emplace_back(std::strtoull(fname.c_str(), nullptr, 10), f.path().string());
    }
    std::sort(files.begin(), files.end());
    uint64_t last_seen = 0;
    std::string bytes;
    for (const auto& [first_from_name, path] : files) {
      bytes.clear();
      read_file(path, bytes);
      uint64_t first = 0;
      bool header_ok = false;
      std::vector<RecInfo> recs;
      const std::size_t good = spool::scan_segment(
          bytes, first, header_ok, [&](const spool::RecordHeader& h, std::size_t off) {
            recs.push_back(RecInfo{h.seq, off, static_cast<uint32_t>(kRecordHeaderSize + h.size),
                                   h.items, h.time_ns, first});
          });
      if (!header_ok || first != first_from_name || first <= last_seen) {
        set_aside(st->name, path, bytes, 0);
        fs::remove(path, ec);
        continue;
      }
      if (good < bytes.size()) {
        // A torn last record (a crash mid-write) or a corrupt one: keep what is before it.
        set_aside(st->name, path, std::string_view(bytes).substr(good), good);
        const int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
        if (fd >= 0) {
          if (::ftruncate(fd, static_cast<off_t>(good)) == 0) ::fdatasync(fd);
          ::close(fd);
        }
        bytes.resize(good);
      }
      Segment seg;
      seg.first_seq = first;
      seg.path = path;
      if (recs.empty()) {
        fs::remove(path, ec);
        continue;
      }
      seg.last_seq = recs.back().seq;
      seg.bytes = bytes.size();
      last_seen = seg.last_seq;
      if (seg.last_seq <= st->acked_seq) {  // acknowledged: a cleanup the last run did not finish
        fs::remove(path, ec);
        continue;
      }
      // What a kill -9 left in the page cache is made durable before it is offered.
      if (const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC); fd >= 0) {
        ::fdatasync(fd);
        ::close(fd);
      }
      for (const RecInfo& r : recs) {
        if (r.seq <= st->acked_seq) continue;
        st->unacked.push_back(r);
        st->pending_items += r.items;
      }
      st->bytes += seg.bytes;
      st->segs.push_back(std::move(seg));
    }
    if (st->segs.empty()) {
      fs::remove(de.path(), ec);  // an empty stream (a source that is gone, or all sent)
      continue;
    }
    st->written_seq = st->synced_seq = std::max(last_seen, st->acked_seq);
    st->next_seq = st->written_seq + 1;
    st->read_seq = st->acked_seq + 1;
    streams_[st->name] = std::move(st);
  }
  // A stream whose every segment was acknowledged and removed still has its cursor: its
  // sequence numbers go on from there.
  for (const auto& [name, seq] : acked) {
    if (streams_.count(name) != 0) continue;
    auto st = std::make_unique<Stream>();
    st->name = name;
    st->dir = (fs::path(opt_.dir) / "streams" / escape(name)).string();
    st->acked_seq = st->written_seq = st->synced_seq = seq;
    st->next_seq = st->read_seq = seq + 1;
    streams_[name] = std::move(st);
  }
  if (!inflight.empty()) {
    auto f = std::make_unique<Inflight>();
    for (auto& r : inflight) {
      auto it = streams_.find(r.stream);
      if (it == streams_.end() || r.last <= it->second->acked_seq) continue;
      Stream& s = *it->second;
      for (const RecInfo& ri : s.unacked) {
        if (ri.seq < r.first || ri.seq > r.last) continue;
        f->records.push_back(ri);
        f->paths.push_back((fs::path(s.dir) / segment_name(ri.seg_first)).string());
        f->items += ri.items;
      }
      s.read_seq = std::max(s.read_seq, r.last + 1);
      f->ranges.push_back(r);
    }
    if (!f->ranges.empty()) recovered_inflight_ = std::move(f);
  }
  return true;
}

Spool::Stream& Spool::stream_for(const std::string& name) {
  auto it = streams_.find(name);
  if (it != streams_.end()) return *it->second;
  auto st = std::make_unique<Stream>();
  st->name = name;
  st->dir = (fs::path(opt_.dir) / "streams" / escape(name)).string();
  return *(streams_[name] = std::move(st));
}

bool Spool::open_segment(Stream& s, std::string& why) {
  std::error_code ec;
  if (!fs::exists(s.dir, ec)) {
    fs::create_directories(s.dir, ec);
    if (ec) {
      why = s.dir + ": " + ec.message();
      return false;
    }
    sync_dir((fs::path(opt_.dir) / "streams").string());
  }
  Segment seg;
  seg.first_seq = s.next_seq;
  seg.path = (fs::path(s.dir) / segment_name(seg.first_seq)).string();
  const int fd = ::open(seg.path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) {
    why = seg.path + ": " + errno_text(errno);
    return false;
  }
  auto ref = std::make_shared<FileRef>(fd);
  const std::string h = spool::segment_header(seg.first_seq);
  if (!write_all(fd, h.data(), h.size(), 0)) {
    why = seg.path + ": " + errno_text(errno);
    ::unlink(seg.path.c_str());
    return false;
  }
  if (s.active) s.sealing.push_back(std::move(s.active));
  s.active = std::move(ref);
  seg.bytes = h.size();
  s.bytes += seg.bytes;
  s.segs.push_back(std::move(seg));
  s.dir_dirty = true;
  return true;
}

outpost_status Spool::append(const std::vector<const Batch*>& batches) {
  // One record per source, in the order the sources first appear.
  std::vector<std::pair<std::string_view, std::vector<const Batch*>>> groups;
  for (const Batch* b : batches) {
    if (b->empty()) continue;
    const std::string_view origin = b->origin.empty() ? std::string_view("engine") : b->origin;
    auto g = std::find_if(groups.begin(), groups.end(),
                          [&](const auto& x) { return x.first == origin; });
    if (g == groups.end()) {
      groups.emplace_back(origin, std::vector<const Batch*>{});
      g = groups.end() - 1;
    }
    g->second.push_back(b);
  }
  outpost_status result = OUTPOST_OK;
  std::string payload;
  for (auto& [origin, group] : groups) {
    spool::encode_payload(group, payload);
    uint32_t items = 0;
    for (const Batch* b : group) items += static_cast<uint32_t>(b->items());
    if (payload.size() > spool::kMaxRecordPayload) {
      result = OUTPOST_E_INVALID_ARGUMENT;
      continue;
    }
    std::lock_guard g(mu_);
    Stream& s = stream_for(std::string(origin));
    const uint64_t size = kRecordHeaderSize + payload.size();
    std::string why;
    if ((!s.active || s.segs.back().bytes + size > segment_limit(opt_)) && !open_segment(s, why)) {
      logf(LogLevel::error, "spool {}: {}", opt_.dir, why);
      result = OUTPOST_E_INTERNAL;
      continue;
    }
    Segment& seg = s.segs.back();
    const uint64_t seq = s.next_seq;
    const int64_t now = wall_now_ns();
    scratch_.clear();
    spool::append_record(scratch_, seq, now, items, payload);
    if (!write_all(s.active->fd, scratch_.data(), scratch_.size(), seg.bytes)) {
      const int e = errno;
      if (::ftruncate(s.active->fd, static_cast<off_t>(seg.bytes)) != 0) {
        // The next append starts a new segment; recovery cuts this one at its last good record.
        s.sealing.push_back(std::move(s.active));
      }
      logf(LogLevel::error, "spool {}: stream '{}': write failed: {}", opt_.dir, s.name,
           errno_text(e));
      result = OUTPOST_E_INTERNAL;
      continue;
    }
    s.unacked.push_back(
        RecInfo{seq, seg.bytes, static_cast<uint32_t>(size), items, now, seg.first_seq});
    seg.bytes += size;
    seg.last_seq = seq;
    s.bytes += size;
    s.written_seq = seq;
    s.next_seq = seq + 1;
    s.pending_items += items;
    stats_.appended_items += items;
    stats_.appended_records++;
    stats_.appended_bytes += size;
    enforce_quota(s);
  }
  return result;
}

void Spool::enforce_quota(Stream& s) {
  while (s.bytes > opt_.max_source_bytes && s.segs.size() > 1) {
    Segment seg = std::move(s.segs.front());
    s.segs.pop_front();
    uint64_t lost = 0;
    while (!s.unacked.empty() && s.unacked.front().seg_first == seg.first_seq) {
      const RecInfo& r = s.unacked.front();
      // Records the sender already took are in its hands; the rest are lost here.
      if (r.seq >= s.read_seq) lost += r.items;
      s.pending_items -= r.items;
      s.unacked.pop_front();
    }
    s.read_seq = std::max(s.read_seq, seg.last_seq + 1);
    s.acked_seq = std::max(s.acked_seq, seg.last_seq);
    s.bytes -= seg.bytes;
    ::unlink(seg.path.c_str());
    stats_.evicted_items += lost;
    stats_.evicted_segments++;
    logf(LogLevel::warn,
         "spool {}: stream '{}' is over its quota of {} bytes: its oldest segment ({} unsent "
         "items) is evicted",
         opt_.dir, s.name, opt_.max_source_bytes, lost);
  }
}

void Spool::sync_streams() {
  struct Job {
    Stream* s;
    uint64_t target;
    std::shared_ptr<FileRef> active;
    std::vector<std::shared_ptr<FileRef>> sealing;
    bool dir;
  };
  std::vector<Job> jobs;
  {
    std::lock_guard g(mu_);
    for (auto& [n, s] : streams_) {
      if (s->written_seq == s->synced_seq && s->sealing.empty() && !s->dir_dirty) continue;
      jobs.push_back(Job{s.get(), s->written_seq, s->active, std::move(s->sealing), s->dir_dirty});
      s->sealing.clear();
      s->dir_dirty = false;
    }
  }
  if (jobs.empty()) return;
  for (auto& j : jobs) {
    for (auto& f : j.sealing) ::fdatasync(f->fd);
    if (j.active) ::fdatasync(j.active->fd);
    if (j.dir) sync_dir(j.s->dir);
  }
  {
    std::lock_guard g(mu_);
    for (auto& j : jobs) j.s->synced_seq = std::max(j.s->synced_seq, j.target);
    stats_.syncs++;
  }
  cv_.notify_all();
}

void Spool::sync() { sync_streams(); }

void Spool::sync_loop() {
  const auto period = std::chrono::duration<double>(std::max(0.001, opt_.sync_interval_s));
  std::unique_lock lk(mu_);
  while (!stopping_) {
    sync_cv_.wait_for(lk, period, [&] { return stopping_; });
    lk.unlock();
    sync_streams();
    lk.lock();
  }
}

uint64_t Spool::pending_synced_items() const {
  uint64_t n = 0;
  for (const auto& [name, s] : streams_)
    for (auto it = s->unacked.rbegin(); it != s->unacked.rend() && it->seq >= s->read_seq; ++it)
      if (it->seq <= s->synced_seq) n += it->items;
  return n;
}

bool Spool::take_batch(Inflight& out) {
  std::size_t items = 0, bytes = 0;
  const std::size_t n = streams_.size();
  if (n == 0) return false;
  auto it = streams_.begin();
  std::advance(it, static_cast<std::ptrdiff_t>(rotate_++ % n));
  for (std::size_t k = 0; k < n; ++k, ++it) {
    if (it == streams_.end()) it = streams_.begin();
    Stream& s = *it->second;
    Inflight::Range range{s.name, 0, 0};
    // unacked is ordered by seq: skip what the sender already holds.
    auto r = std::lower_bound(s.unacked.begin(), s.unacked.end(), s.read_seq,
                              [](const RecInfo& a, uint64_t seq) { return a.seq < seq; });
    for (; r != s.unacked.end() && r->seq <= s.synced_seq; ++r) {
      if (!out.records.empty() &&
          (items + r->items > opt_.batch_items || bytes + r->size > opt_.batch_bytes))
        break;
      if (range.first == 0) range.first = r->seq;
      range.last = r->seq;
      out.records.push_back(*r);
      out.paths.push_back((fs::path(s.dir) / segment_name(r->seg_first)).string());
      items += r->items;
      bytes += r->size;
    }
    if (range.first != 0) {
      s.read_seq = range.last + 1;
      out.ranges.push_back(std::move(range));
    }
    if (items >= opt_.batch_items || bytes >= opt_.batch_bytes) break;
  }
  out.items = items;
  return !out.ranges.empty();
}

bool Spool::write_cursor(const Inflight* inflight) {
  std::string c(kCursorMagic, sizeof kCursorMagic);
  put<uint32_t>(c, static_cast<uint32_t>(streams_.size()));
  for (const auto& [name, s] : streams_) {
    put_str(c, name);
    put<uint64_t>(c, s->acked_seq);
  }
  put<uint32_t>(c, inflight ? static_cast<uint32_t>(inflight->ranges.size()) : 0);
  if (inflight) {
    for (const auto& r : inflight->ranges) {
      put_str(c, r.stream);
      put<uint64_t>(c, r.first);
      put<uint64_t>(c, r.last);
    }
  }
  put<uint32_t>(c, spool::crc32c(c.data(), c.size()));
  if (write_atomically((fs::path(opt_.dir) / "cursor").string(), c)) return true;
  logf(LogLevel::error, "spool {}: cannot write the cursor: {}", opt_.dir, errno_text(errno));
  return false;
}

void Spool::acknowledge(const Inflight& batch) {
  for (const auto& r : batch.ranges) {
    auto it = streams_.find(r.stream);
    if (it == streams_.end()) continue;
    Stream& s = *it->second;
    s.acked_seq = std::max(s.acked_seq, r.last);
    while (!s.unacked.empty() && s.unacked.front().seq <= s.acked_seq) {
      s.pending_items -= s.unacked.front().items;
      s.unacked.pop_front();
    }
  }
}

void Spool::drop_acked_segments(Stream& s) {
  while (s.segs.size() > (s.active ? 1u : 0u) && s.segs.front().last_seq <= s.acked_seq) {
    ::unlink(s.segs.front().path.c_str());
    s.bytes -= s.segs.front().bytes;
    s.segs.pop_front();
  }
}

namespace {
// Reads the records of a batch from their segments and checks each again.
void read_batch(Spool::Inflight& f, uint64_t& lost_items);
}  // namespace

void Spool::send_loop() {
  std::mt19937_64 rng(std::random_device{}());
  double backoff = opt_.backoff_initial_s;
  std::unique_ptr<Inflight> cur;
  bool failing = false;
  std::unique_lock lk(mu_);
  while (!stopping_) {
    if (!cur) {
      if (recovered_inflight_) {
        cur = std::move(recovered_inflight_);
      } else {
        const uint64_t ready = pending_synced_items();
        int64_t oldest = 0;
        for (const auto& [n, s] : streams_) {
          auto r = std::lower_bound(s->unacked.begin(), s->unacked.end(), s->read_seq,
                                    [](const RecInfo& a, uint64_t seq) { return a.seq < seq; });
          if (r != s->unacked.end() && r->seq <= s->synced_seq &&
              (oldest == 0 || r->time_ns < oldest))
            oldest = r->time_ns;
        }
        const double age_s = oldest == 0 ? 0 : static_cast<double>(wall_now_ns() - oldest) / 1e9;
        if (ready == 0 || (ready < opt_.batch_items && age_s < opt_.max_delay_s)) {
          const double wait = ready == 0 ? opt_.max_delay_s : opt_.max_delay_s - age_s;
          cv_.wait_for(lk, std::chrono::duration<double>(std::clamp(wait, 0.01, 60.0)));
          continue;
        }
        cur = std::make_unique<Inflight>();
        if (!take_batch(*cur)) {
          cur.reset();
          continue;
        }
        write_cursor(cur.get());  // written down before it is first offered
      }
      lk.unlock();
      uint64_t lost = 0;
      read_batch(*cur, lost);
      lk.lock();
      if (lost > 0) {
        stats_.evicted_items += lost;
        logf(LogLevel::warn, "spool {}: {} items of a batch could not be read back", opt_.dir,
             lost);
      }
    }
    cur->attempt++;
    stats_.attempts++;
    if (cur->attempt > 1) stats_.retries++;
    WriteFn write = write_;
    lk.unlock();
    // The batch and its origin, as the ABI hands them over.
    std::vector<const Batch*> ptrs;
    for (const Batch& b : cur->batches) ptrs.push_back(&b);
    BatchView view;
    view.build(ptrs);
    const outpost_batch cb = view.c_batch();
    std::vector<outpost_spool_range> ranges;
    for (const auto& r : cur->ranges)
      ranges.push_back(
          outpost_spool_range{outpost_str{r.stream.data(), r.stream.size()}, r.first, r.last});
    outpost_write_info info{};
    info.struct_size = sizeof info;
    info.range_size = sizeof(outpost_spool_range);
    info.spool_id = outpost_str{id_.data(), id_.size()};
    info.ranges = ranges.data();
    info.range_count = ranges.size();
    info.attempt = cur->attempt;
    info.oldest_ns = cur->records.empty() ? 0 : cur->records.front().time_ns;
    for (const auto& r : cur->records) info.oldest_ns = std::min(info.oldest_ns, r.time_ns);
    int64_t retry_after_ns = 0;
    const outpost_status st = write ? write(cb, info, retry_after_ns) : OUTPOST_E_UNAVAILABLE;
    lk.lock();
    stats_.last_status = st;
    const int32_t cls = OUTPOST_STATUS_CLASS(st);
    if (st == OUTPOST_OK || (cls != OUTPOST_CLASS_RETRY && cls != OUTPOST_CLASS_OPERATOR)) {
      if (st == OUTPOST_OK) {
        stats_.sent_items += cur->items;
        stats_.sent_batches++;
        if (failing)
          logf(LogLevel::info, "spool {}: the destination takes data again (after {} attempts)",
               opt_.dir, cur->attempt);
      } else {
        stats_.rejected_items += cur->items;
        logf(LogLevel::error,
             "spool {}: the destination refused a batch of {} items for good (status {:#x}); "
             "dropped",
             opt_.dir, cur->items, st);
      }
      failing = false;
      backoff = opt_.backoff_initial_s;
      acknowledge(*cur);
      write_cursor(nullptr);  // synced before any segment it passed is deleted
      for (auto& [n, s] : streams_) drop_acked_segments(*s);
      cur.reset();
      idle_cv_.notify_all();
      continue;
    }
    if (!failing)
      logf(LogLevel::warn, "spool {}: sending failed with status {:#x}; kept, retrying", opt_.dir,
           st);
    failing = true;
    double delay = cls == OUTPOST_CLASS_OPERATOR ? opt_.operator_backoff_s : backoff;
    delay *= std::uniform_real_distribution<double>(0.8, 1.2)(rng);
    backoff = std::min(backoff * 2, opt_.backoff_max_s);
    delay = std::max(delay, static_cast<double>(retry_after_ns) / 1e9);
    cv_.wait_for(lk, std::chrono::duration<double>(delay), [&] { return stopping_; });
  }
}

namespace {
void read_batch(Spool::Inflight& f, uint64_t& lost_items) {
  f.batches.clear();
  std::string cached_path;
  int fd = -1;
  std::string buf;
  for (std::size_t i = 0; i < f.records.size(); ++i) {
    const RecInfo& r = f.records[i];
    if (f.paths[i] != cached_path) {
      if (fd >= 0) ::close(fd);
      cached_path = f.paths[i];
      fd = ::open(cached_path.c_str(), O_RDONLY | O_CLOEXEC);
    }
    buf.resize(r.size);
    bool ok = fd >= 0 && ::pread(fd, buf.data(), r.size, static_cast<off_t>(r.offset)) ==
                             static_cast<ssize_t>(r.size);
    ok = ok && spool::record_crc_ok(buf) && spool::parse_record_header(buf).seq == r.seq;
    Batch b;
    std::string why;
    ok = ok && spool::decode_payload(std::string_view(buf).substr(kRecordHeaderSize), b, why);
    if (!ok) {
      lost_items += r.items;
      continue;
    }
    f.batches.push_back(std::move(b));
  }
  if (fd >= 0) ::close(fd);
}
}  // namespace

void Spool::start(WriteFn write) {
  std::lock_guard g(mu_);
  if (running_) return;
  write_ = std::move(write);
  running_ = true;
  stopping_ = false;
  sync_thread_ = std::thread([this] { sync_loop(); });
  send_thread_ = std::thread([this] { send_loop(); });
}

void Spool::set_writer(WriteFn write) {
  std::lock_guard g(mu_);
  write_ = std::move(write);
}

void Spool::stop() {
  {
    std::lock_guard g(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  sync_cv_.notify_all();
  if (send_thread_.joinable()) send_thread_.join();
  if (sync_thread_.joinable()) sync_thread_.join();
  sync_streams();
  std::lock_guard g(mu_);
  for (auto& [n, s] : streams_) {
    if (s->active) ::fdatasync(s->active->fd);
    s->active.reset();
    s->sealing.clear();
  }
  running_ = false;
}

bool Spool::wait_idle(double timeout_s) {
  std::unique_lock lk(mu_);
  std::map<Stream*, uint64_t> target;
  for (auto& [n, s] : streams_) target[s.get()] = s->written_seq;
  return idle_cv_.wait_for(lk, std::chrono::duration<double>(timeout_s), [&] {
    for (auto& [s, seq] : target)
      if (s->acked_seq < seq) return false;
    return true;
  });
}

SpoolStats Spool::stats() const {
  std::lock_guard g(mu_);
  SpoolStats st = stats_;
  st.streams = streams_.size();
  for (const auto& [n, s] : streams_) {
    st.pending_items += s->pending_items;
    st.disk_bytes += s->bytes;
    if (!s->unacked.empty() &&
        (st.oldest_pending_ns == 0 || s->unacked.front().time_ns < st.oldest_pending_ns))
      st.oldest_pending_ns = s->unacked.front().time_ns;
  }
  return st;
}

}  // namespace outpost::core
