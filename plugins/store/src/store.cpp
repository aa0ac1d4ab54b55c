#include "store.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cinttypes>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <queue>
#include <stdexcept>
#include <unordered_map>

#include "block.hpp"
#include "chunk.hpp"

namespace outpost::store {
namespace fs = std::filesystem;
using outpost::Error;

namespace {

constexpr int kRollupColumns = 5;  // min, max, last, sum, count
constexpr auto kCompactEvery = std::chrono::seconds(30);

int64_t floor_to(int64_t t, int64_t step) {
  int64_t q = t / step;
  if (t % step != 0 && t < 0) --q;
  return q * step;
}

// The grace after a window's end before it is closed: slow polls and a flush interval late.
int64_t grace_of(const StoreOptions& o) {
  return std::max<int64_t>(60'000'000'000, 3 * o.flush_ns);
}

bool parse_name(const std::string& name, char& kind, int64_t& window, uint64_t& seq) {
  // <k>-<window ns>-<seq, 16 hex>.blk
  if (name.size() < 8 || name[1] != '-' || name.compare(name.size() - 4, 4, ".blk") != 0)
    return false;
  kind = name[0];
  const std::string mid = name.substr(2, name.size() - 6);
  const auto dash = mid.rfind('-');
  if (dash == std::string::npos) return false;
  char* end = nullptr;
  errno = 0;
  window = std::strtoll(mid.c_str(), &end, 10);
  if (errno != 0 || end != mid.c_str() + dash) return false;
  seq = std::strtoull(mid.c_str() + dash + 1, &end, 16);
  return errno == 0 && end == mid.c_str() + mid.size();
}

// A block's chunks decoded, each shared time list once.
class ChunkReader {
 public:
  explicit ChunkReader(const Block& b) : b_(b) {}
  bool read(const Entry& e, std::vector<int64_t>& times, std::vector<double>& values) {
    std::string_view bytes;
    ChunkHead head;
    if (!b_.chunk(e, bytes) || !peek_chunk(bytes, head)) return false;
    const std::vector<int64_t>* shared = nullptr;
    if (head.shared_ref != kNotShared) {
      auto it = lists_.find(head.shared_ref);
      if (it == lists_.end()) {
        if (head.shared_ref >= UINT32_MAX - kTimesBase) return false;
        const std::size_t i = b_.find(kTimesBase + head.shared_ref);
        std::string_view list;
        std::vector<int64_t> t;
        std::vector<double> none;
        if (i >= b_.size() || !b_.chunk(b_.entry(i), list) ||
            !decode_chunk(list, 0, b_.meta().window_start, t, none))
          return false;
        it = lists_.emplace(head.shared_ref, std::move(t)).first;
      }
      shared = &it->second;
    }
    return decode_chunk(bytes, static_cast<int>(b_.meta().columns), b_.meta().window_start, times,
                        values, shared) &&
           times.size() == e.count;
  }

 private:
  const Block& b_;
  std::unordered_map<uint32_t, std::vector<int64_t>> lists_;
};

// Time lists a raw block's series share: each distinct list of at least two times once.
class TimeLists {
 public:
  // The list's ref, or kNotShared (too short, or the table is full).
  uint32_t ref(const std::vector<std::pair<int64_t, double>>& points) {
    if (points.size() < 2) return kNotShared;
    uint64_t h = 1469598103934665603ull;
    for (const auto& p : points) h = (h ^ static_cast<uint64_t>(p.first)) * 1099511628211ull;
    auto& refs = by_hash_[h];
    for (const uint32_t r : refs) {
      const auto& l = lists_[r];
      if (l.size() == points.size() &&
          std::equal(l.begin(), l.end(), points.begin(),
                     [](int64_t t, const auto& p) { return t == p.first; }))
        return r;
    }
    if (held_ + points.size() > kMaxHeld) return kNotShared;
    std::vector<int64_t> l;
    l.reserve(points.size());
    for (const auto& p : points) l.push_back(p.first);
    held_ += l.size();
    lists_.push_back(std::move(l));
    refs.push_back(static_cast<uint32_t>(lists_.size() - 1));
    return refs.back();
  }
  const std::vector<std::vector<int64_t>>& lists() const { return lists_; }

 private:
  static constexpr std::size_t kMaxHeld = 8'000'000;  // times held in memory: 64 MB
  std::unordered_map<uint64_t, std::vector<uint32_t>> by_hash_;
  std::vector<std::vector<int64_t>> lists_;
  std::size_t held_ = 0;
};

// A set of series ids walked against a block: binary search for a few, a merge for many. Time
// lists are not series.
template <typename Fn>
void for_each_entry(const Block& b, const std::vector<uint32_t>& series, bool all, Fn&& fn) {
  const std::size_t n = b.size();
  if (all) {
    for (std::size_t i = 0; i < n; ++i) {
      const Entry e = b.entry(i);
      if (e.series >= kTimesBase) break;
      fn(e);
    }
  } else if (series.size() * 32 < n) {
    for (const uint32_t s : series)
      if (const std::size_t i = b.find(s); i < n) fn(b.entry(i));
  } else {
    std::size_t k = 0;
    for (std::size_t i = 0; i < n && k < series.size(); ++i) {
      const Entry e = b.entry(i);
      while (k < series.size() && series[k] < e.series) ++k;
      if (k < series.size() && series[k] == e.series) fn(e);
    }
  }
}

}  // namespace

Store::Store(outpost::Host host, StoreOptions options) : host_(host), o_(std::move(options)) {
  if (o_.window_ns <= 0 || o_.rollup_ns <= 0 || o_.window_ns % o_.rollup_ns != 0)
    throw Error(OUTPOST_E_CONFIG, "window must be a whole number of rollup steps");
  std::error_code ec;
  if (o_.read_only) {
    if (!fs::is_directory(o_.dir, ec))
      throw Error(OUTPOST_E_NOT_FOUND, "no block store at " + o_.dir);
    return;
  }
  fs::create_directories(o_.dir, ec);
  if (ec) throw Error(OUTPOST_E_CONFIG, "cannot create " + o_.dir + ": " + ec.message());
  dir_ = DirState::acquire(o_.dir);
}

// One engine per directory, across processes (flock); inside one process the instances of a
// reload (the new one is created before the old one stops) share the lock, the sequence numbers
// and the compaction.
std::shared_ptr<Store::DirState> Store::DirState::acquire(const std::string& dir) {
  static std::mutex mu;
  static std::map<std::string, std::weak_ptr<DirState>> open;
  std::error_code ec;
  const std::string key = fs::canonical(dir, ec).string();
  std::lock_guard lk(mu);
  if (auto it = open.find(key); it != open.end())
    if (auto st = it->second.lock()) return st;
  const std::string lock = dir + "/lock";
  const int fd = ::open(lock.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) throw Error(OUTPOST_E_CONFIG, "cannot open " + lock + ": " + std::strerror(errno));
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    ::close(fd);
    throw Error(OUTPOST_E_CONFIG, dir + " is in use by another engine");
  }
  auto st = std::shared_ptr<DirState>(new DirState(), [](DirState* d) {
    ::close(d->fd);
    delete d;
  });
  st->fd = fd;
  uint64_t max_seq = 0;
  for (const auto& de : fs::directory_iterator(dir, ec)) {
    const std::string name = de.path().filename().string();
    if (name.size() > 4 && name.compare(name.size() - 4, 4, ".tmp") == 0) {
      fs::remove(de.path(), ec);  // a write cut short
      continue;
    }
    char kind = 0;
    int64_t w = 0;
    uint64_t seq = 0;
    if (parse_name(name, kind, w, seq)) max_seq = std::max(max_seq, seq);
  }
  st->next_seq = max_seq + 1;
  open[key] = st;
  return st;
}

Store::~Store() { stop(); }

std::string Store::file_name(char kind, int64_t window, uint64_t seq) const {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%c-%" PRId64 "-%016" PRIx64 ".blk", kind, window, seq);
  return o_.dir + "/" + buf;
}

void Store::start(std::function<bool()> background) {
  if (o_.read_only || thread_.joinable()) return;
  background_ = std::move(background);
  last_flush_mono_ = host_.monotonic_ns();
  flushed_once_ = true;
  stopping_ = false;
  thread_ = std::thread([this] { run(); });
}

void Store::stop() {
  if (o_.read_only) return;
  try {
    flush();
  } catch (const std::exception& e) {
    host_.log(OUTPOST_LOG_ERROR, std::string("store: final flush: ") + e.what());
  }
  if (thread_.joinable()) {
    {
      std::lock_guard lk(cv_mu_);
      stopping_ = true;
    }
    abort_ = true;
    cv_.notify_all();
    thread_.join();
    abort_ = false;
  }
}

void Store::add(uint32_t series, int64_t t, double v, int64_t now) {
  if (t < now - o_.raw_retention_ns) {
    std::lock_guard lk(mu_);
    ++stats_.dropped_old;
    return;
  }
  if (t > now + o_.window_ns) {
    std::lock_guard lk(mu_);
    ++stats_.dropped_future;
    return;
  }
  buffer_.push_back(Sample{series, t, v});
}

void Store::maybe_flush() {
  const int64_t mono = host_.monotonic_ns();
  if (!flushed_once_) {  // the interval counts from the first write, not from boot
    flushed_once_ = true;
    last_flush_mono_ = mono;
  }
  if (mono - last_flush_mono_ >= o_.flush_ns) flush();
}

void Store::flush() {
  last_flush_mono_ = host_.monotonic_ns();
  flushed_once_ = true;
  if (buffer_.empty() || o_.read_only) return;
  std::stable_sort(buffer_.begin(), buffer_.end(), [&](const Sample& a, const Sample& b) {
    const int64_t wa = floor_to(a.t, o_.window_ns), wb = floor_to(b.t, o_.window_ns);
    if (wa != wb) return wa < wb;
    if (a.series != b.series) return a.series < b.series;
    return a.t < b.t;
  });
  // Held from taking a sequence number to the commit, so that a compaction's listing (which
  // takes it too) never misses a head of a lower seq that is still being written (a reload's two
  // instances flush at once).
  std::lock_guard flushing(dir_->flush_mu);
  std::size_t done = 0;  // samples in committed heads: gone from the buffer whatever comes next
  try {
    std::size_t i = 0;
    while (i < buffer_.size()) {
      const int64_t w = floor_to(buffer_[i].t, o_.window_ns);
      const uint64_t seq = dir_->next_seq++;
      BlockMeta meta{Kind::head, w, o_.window_ns, seq, 1};
      BlockWriter out(file_name('h', w, seq), meta);
      ChunkWriter cw(1, w);
      while (i < buffer_.size() && floor_to(buffer_[i].t, o_.window_ns) == w) {
        const uint32_t s = buffer_[i].series;
        while (i < buffer_.size() && buffer_[i].series == s &&
               floor_to(buffer_[i].t, o_.window_ns) == w) {
          cw.add(buffer_[i].t, &buffer_[i].v);
          ++i;
        }
        const uint32_t n = cw.count();
        out.add(s, n, cw.finish());
      }
      out.commit();
      done = i;
    }
  } catch (...) {
    buffer_.erase(buffer_.begin(), buffer_.begin() + static_cast<std::ptrdiff_t>(done));
    std::lock_guard lk(mu_);
    stats_.samples += done;
    throw;  // the rest stays buffered for the next try
  }
  std::lock_guard lk(mu_);
  stats_.samples += buffer_.size();
  buffer_.clear();
}

StoreStats Store::stats() const {
  std::lock_guard lk(mu_);
  return stats_;
}

Listing Store::list() const {
  Listing out;
  std::error_code ec;
  struct Found {
    char kind;
    int64_t w;
    FileInfo f;
  };
  std::vector<Found> found;
  for (const auto& de : fs::directory_iterator(o_.dir, ec)) {
    char kind = 0;
    int64_t w = 0;
    uint64_t seq = 0;
    if (!parse_name(de.path().filename().string(), kind, w, seq)) continue;
    std::error_code e2;
    const uint64_t bytes = de.file_size(e2);
    found.push_back(Found{kind, w, FileInfo{de.path().string(), seq, e2 ? 0 : bytes}});
  }
  std::sort(found.begin(), found.end(),
            [](const Found& a, const Found& b) { return a.f.seq < b.f.seq; });
  for (const auto& x : found) {
    WindowFiles& wf = out[x.w];
    FileInfo* slot = x.kind == 'r' ? &wf.raw : x.kind == 'u' ? &wf.rollup : nullptr;
    if (slot != nullptr) {
      if (slot->seq != 0) wf.stale.push_back(*slot);
      *slot = x.f;  // ascending seq: the last is the newest
    } else if (x.kind == 'h') {
      wf.heads.push_back(x.f);
    }
  }
  for (auto& [w, wf] : out) {
    std::vector<FileInfo> keep;
    for (auto& h : wf.heads) (h.seq > wf.raw.seq ? keep : wf.stale).push_back(h);
    wf.heads = std::move(keep);
  }
  return out;
}

void Store::quarantine(const std::string& path, const std::string& why) {
  std::error_code ec;
  fs::create_directories(o_.dir + "/quarantine", ec);
  fs::rename(path, o_.dir + "/quarantine/" + fs::path(path).filename().string(), ec);
  if (ec) fs::remove(path, ec);
  host_.log(OUTPOST_LOG_ERROR, "store: set aside " + path + ": " + why);
  std::lock_guard lk(mu_);
  ++stats_.corrupt;
}

void Store::run() {
  auto last_pass = std::chrono::steady_clock::now();
  bool more = true;  // the background work may have more to do at once (at start: look)
  for (;;) {
    {
      std::unique_lock lk(cv_mu_);
      const auto wait = more ? std::chrono::milliseconds(20)
                             : std::chrono::duration_cast<std::chrono::milliseconds>(
                                   kCompactEvery - (std::chrono::steady_clock::now() - last_pass));
      cv_.wait_for(lk, std::max(wait, std::chrono::milliseconds(0)), [&] { return stopping_; });
      if (stopping_) return;
    }
    if (std::chrono::steady_clock::now() - last_pass >= kCompactEvery) {
      last_pass = std::chrono::steady_clock::now();
      try {
        compact_pass();
      } catch (const std::exception& e) {
        host_.log(OUTPOST_LOG_ERROR, std::string("store: compaction: ") + e.what());
      }
    }
    more = background_ && background_();
  }
}

void Store::compact_now() {
  if (o_.read_only) return;
  compact_pass();
}

void Store::compact_pass() {
  std::lock_guard guard(dir_->compact_mu);
  const int64_t now = host_.now_ns();
  Listing files;
  {
    std::lock_guard flushing(dir_->flush_mu);
    files = list();
  }
  std::error_code ec;
  for (const auto& [w, wf] : files) {
    for (const auto& s : wf.stale) fs::remove(s.path, ec);  // superseded; readers keep theirs
    if (abort_) return;
    if (wf.heads.empty() || w + o_.window_ns + grace_of(o_) > now) continue;
    if (w + o_.window_ns <= now - o_.raw_retention_ns || (wf.raw.seq == 0 && wf.rollup.seq != 0)) {
      // Too late to keep: past the raw retention, or the window's raw samples were deleted for
      // the disk budget (a rollup of these alone would replace the window's).
      uint64_t late = 0;
      for (const auto& h : wf.heads) {
        std::string err;
        if (auto b = Block::open(h.path, err))
          for (std::size_t i = 0; i < b->size(); ++i) late += b->entry(i).count;
        fs::remove(h.path, ec);
      }
      std::lock_guard lk(mu_);
      stats_.dropped_old += late;
      continue;
    }
    compact(w, wf);
  }
  retention(now);
}

void Store::compact(int64_t w, const WindowFiles& wf) {
  const auto t0 = std::chrono::steady_clock::now();
  std::vector<std::unique_ptr<Block>> src;
  std::vector<const FileInfo*> inputs;
  if (wf.raw.seq != 0) inputs.push_back(&wf.raw);
  for (const auto& h : wf.heads) inputs.push_back(&h);
  uint64_t out_seq = 0;
  for (const FileInfo* f : inputs) {
    std::string err;
    auto b = Block::open(f->path, err);
    if (b == nullptr || !b->verify_index() || b->meta().columns != 1 ||
        b->meta().window_start != w) {
      quarantine(f->path, b == nullptr ? err : "index damaged or not of this window");
      continue;
    }
    out_seq = std::max(out_seq, f->seq);
    src.push_back(std::move(b));
  }
  // Nothing new survived (the heads were damaged and set aside): the raw block stays as it is.
  if (src.empty() || out_seq == wf.raw.seq) return;
  BlockWriter raw(file_name('r', w, out_seq), BlockMeta{Kind::raw, w, o_.window_ns, out_seq, 1});
  BlockWriter rollup(file_name('u', w, out_seq),
                     BlockMeta{Kind::rollup, w, o_.window_ns, out_seq, kRollupColumns});
  // A k-way merge by series id over the sources' sorted indexes.
  using Cursor = std::pair<uint32_t, std::size_t>;  // (series, source)
  std::priority_queue<Cursor, std::vector<Cursor>, std::greater<>> heap;
  std::vector<std::size_t> pos(src.size(), 0);
  std::vector<ChunkReader> readers;
  for (std::size_t k = 0; k < src.size(); ++k) {
    readers.emplace_back(*src[k]);
    if (src[k]->size() > 0 && src[k]->entry(0).series < kTimesBase)
      heap.emplace(src[k]->entry(0).series, k);
  }
  TimeLists lists;
  std::vector<std::pair<int64_t, double>> points;
  std::vector<int64_t> times;
  std::vector<double> values;
  ChunkWriter rw(1, w), uw(kRollupColumns, w);
  uint64_t total = 0, bad_chunks = 0;
  while (!heap.empty()) {
    if (abort_) return;  // the writers' destructors remove their temporary files
    const uint32_t s = heap.top().first;
    points.clear();
    while (!heap.empty() && heap.top().first == s) {
      const std::size_t k = heap.top().second;
      heap.pop();
      const Entry e = src[k]->entry(pos[k]);
      if (readers[k].read(e, times, values)) {
        for (std::size_t i = 0; i < times.size(); ++i) points.emplace_back(times[i], values[i]);
      } else {
        ++bad_chunks;
      }
      if (++pos[k] < src[k]->size() && src[k]->entry(pos[k]).series < kTimesBase)
        heap.emplace(src[k]->entry(pos[k]).series, k);
    }
    if (points.empty()) continue;
    std::stable_sort(points.begin(), points.end(),
                     [](const auto& a, const auto& b) { return a.first < b.first; });
    rw.share(lists.ref(points));
    for (const auto& [t, v] : points) rw.add(t, &v);
    const uint32_t raw_count = rw.count();  // before finish(), which empties the writer
    raw.add(s, raw_count, rw.finish());
    // Rollups: one point per step that has samples.
    std::size_t i = 0;
    while (i < points.size()) {
      const int64_t bucket = floor_to(points[i].first, o_.rollup_ns);
      // min, max, last, sum, count: a counter's last is its max, coded in one bit.
      double r[kRollupColumns] = {points[i].second, points[i].second, 0, 0, 0};
      while (i < points.size() && floor_to(points[i].first, o_.rollup_ns) == bucket) {
        const double v = points[i].second;
        r[0] = std::fmin(r[0], v);
        r[1] = std::fmax(r[1], v);
        r[2] = v;
        r[3] += v;
        r[4] += 1;
        ++i;
      }
      uw.add(bucket, r);
    }
    const uint32_t rollup_count = uw.count();
    rollup.add(s, rollup_count, uw.finish());
    total += points.size();
  }
  for (std::size_t r = 0; r < lists.lists().size(); ++r) {
    ChunkWriter tw(0, w);
    for (const int64_t t : lists.lists()[r]) tw.add(t, nullptr);
    const uint32_t n = tw.count();
    raw.add(kTimesBase + static_cast<uint32_t>(r), n, tw.finish());
  }
  // The rollup first: a raw block above the heads makes them stale, and they must not go before
  // the rollup made of them is there. The inputs are not deleted here but by the next pass, as
  // stale files: a reader listing the directory now could otherwise find neither them nor the new
  // block (a listing need not show files created or removed while it runs).
  uint64_t bytes = rollup.commit();
  bytes += raw.commit();
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  char msg[256];
  std::snprintf(msg, sizeof msg,
                "store: window %" PRId64 " compacted: %zu files, %zu series, %" PRIu64
                " samples, %" PRIu64 " bytes, %.2f s",
                w / 1'000'000'000, inputs.size(), raw.series(), total, bytes, secs);
  host_.log(OUTPOST_LOG_INFO, msg);
  std::lock_guard lk(mu_);
  ++stats_.compactions;
  stats_.corrupt += bad_chunks;
}

void Store::retention(int64_t now) {
  const Listing files = list();
  std::error_code ec;
  uint64_t total = 0;
  for (const auto& [w, wf] : files) {
    const bool raw_gone = w + o_.window_ns <= now - o_.raw_retention_ns;
    const bool all_gone = w + o_.window_ns <= now - o_.retention_ns;
    if (raw_gone && wf.raw.seq != 0) fs::remove(wf.raw.path, ec);
    if (all_gone && wf.rollup.seq != 0) fs::remove(wf.rollup.path, ec);
    if (!raw_gone) total += wf.raw.bytes;
    if (!all_gone) total += wf.rollup.bytes;
    for (const auto& h : wf.heads) total += h.bytes;
  }
  if (o_.max_bytes == 0 || total <= o_.max_bytes) return;
  // Over the budget: the oldest raw blocks go first (their rollups stay), then the oldest rollups.
  uint64_t evicted = 0;
  for (const char kind : {'r', 'u'}) {
    for (const auto& [w, wf] : files) {
      if (total <= o_.max_bytes) break;
      const FileInfo& f = kind == 'r' ? wf.raw : wf.rollup;
      if (f.seq == 0 || (kind == 'r' && wf.rollup.seq == 0)) continue;
      if (w + o_.window_ns <= now - (kind == 'r' ? o_.raw_retention_ns : o_.retention_ns))
        continue;  // already deleted above
      fs::remove(f.path, ec);
      total -= std::min(total, f.bytes);
      ++evicted;
    }
  }
  if (evicted > 0) {
    host_.log(OUTPOST_LOG_WARN,
              "store: over max_bytes; deleted the " + std::to_string(evicted) + " oldest block(s)");
    std::lock_guard lk(mu_);
    stats_.evicted_files += evicted;
  }
}

std::vector<Store::OpenWindow> Store::open_windows(int64_t since, int64_t until) const {
  // A file deleted between the listing and its opening was merged or expired: list again.
  for (int attempt = 0;; ++attempt) {
    const Listing files = list();
    std::vector<OpenWindow> out;
    bool vanished = false;
    for (auto it = files.rbegin(); it != files.rend() && !vanished; ++it) {
      const int64_t w = it->first;
      if (w + o_.window_ns <= since || w >= until) continue;
      const WindowFiles& wf = it->second;
      std::vector<const FileInfo*> use;
      if (wf.raw.seq != 0 || (!wf.heads.empty() && wf.rollup.seq == 0)) {
        if (wf.raw.seq != 0) use.push_back(&wf.raw);
        for (const auto& h : wf.heads) use.push_back(&h);
      } else if (wf.rollup.seq != 0) {
        use.push_back(&wf.rollup);  // the raw samples are gone (late heads there are dropped)
      }
      OpenWindow ow{w, {}};
      for (const FileInfo* f : use) {
        std::string err;
        int e = 0;
        auto b = Block::open(f->path, err, &e);
        if (b != nullptr && b->meta().columns != (f == &wf.rollup ? 5u : 1u))
          continue;  // not what its name says: damaged or foreign, never read past its values
        if (b != nullptr)
          ow.blocks.push_back(std::move(b));
        else if (e == ENOENT && attempt < 3)
          vanished = true;  // otherwise damaged: the writer's compaction sets it aside
      }
      out.push_back(std::move(ow));
    }
    if (!vanished) return out;
  }
}

void Store::scan(const std::vector<uint32_t>& series, bool all, int64_t since, int64_t until,
                 uint64_t want, const RawFn& raw, const RollupFn& rollup) const {
  const auto windows = open_windows(since, until);
  uint64_t given = 0;
  std::vector<int64_t> times;
  std::vector<double> values;
  for (const auto& ow : windows) {
    for (const auto& b : ow.blocks) {
      const int cols = static_cast<int>(b->meta().columns);
      ChunkReader reader(*b);
      for_each_entry(*b, series, all, [&](const Entry& e) {
        if (!reader.read(e, times, values)) return;
        for (std::size_t i = 0; i < times.size(); ++i) {
          if (times[i] < since || times[i] >= until) continue;
          if (cols == 1)
            raw(e.series, times[i], values[i]);
          else
            rollup(e.series, times[i], &values[i * static_cast<std::size_t>(cols)]);
          ++given;
        }
      });
    }
    if (given >= want) return;
  }
}

bool Store::latest(uint32_t series, int64_t& t, double& v) const {
  return latest(open_windows(INT64_MIN, INT64_MAX), series, t, v);
}

bool Store::latest(const std::vector<OpenWindow>& windows, uint32_t series, int64_t& t, double& v) {
  bool found = false;
  std::vector<int64_t> times;
  std::vector<double> values;
  for (const auto& ow : windows) {
    for (const auto& b : ow.blocks) {
      const std::size_t i = b->find(series);
      if (i >= b->size()) continue;
      const int cols = static_cast<int>(b->meta().columns);
      if (!ChunkReader(*b).read(b->entry(i), times, values)) continue;
      for (std::size_t k = 0; k < times.size(); ++k) {
        // A rollup point is dated by its bucket; its third column is the bucket's last sample.
        const double value = cols == 1 ? values[k] : values[k * static_cast<std::size_t>(cols) + 2];
        if (!found || times[k] >= t) {
          t = times[k];
          v = value;
          found = true;
        }
      }
    }
    if (found) return true;  // the newest window that has the series
  }
  return false;
}

}  // namespace outpost::store
