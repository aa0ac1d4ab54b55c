// The block store: samples of the local store kept as compressed per-series chunks in block
// files, one directory, four kinds of file (see README.md, "The local store"):
//   h-<window>-<seq>.blk  head: what arrived in one flush interval, for one window
//   r-<window>-<seq>.blk  raw: every sample of a closed window, merged from its heads
//   u-<window>-<seq>.blk  rollup: per series and rollup step of a closed window, the step's
//                         start and (min, max, last, sum, count)
// A window is closed once the clock is a grace period past its end; a compaction thread merges
// its heads (and any raw block before them) into the next raw and rollup block, whose seq is the
// highest merged, then deletes what it merged. A reader takes per window the raw block of the
// highest seq and the heads above it, so it sees every sample once whenever it lists.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <outpost/sdk.hpp>
#include <string>
#include <thread>
#include <vector>

#include "block.hpp"

namespace outpost::store {

struct StoreOptions {
  std::string dir;
  int64_t window_ns = 7200'000'000'000;
  int64_t flush_ns = 10'000'000'000;
  int64_t rollup_ns = 300'000'000'000;
  int64_t raw_retention_ns = 86400'000'000'000;
  int64_t retention_ns = 7 * 86400'000'000'000;
  uint64_t max_bytes = 0;  // 0: no budget
  bool read_only = false;
};

struct FileInfo {
  std::string path;
  uint64_t seq = 0;
  uint64_t bytes = 0;
};
struct WindowFiles {
  FileInfo raw, rollup;         // seq 0: none
  std::vector<FileInfo> heads;  // above raw.seq, ascending seq
  std::vector<FileInfo> stale;  // superseded raw and rollup blocks, heads at or below raw.seq
};
using Listing = std::map<int64_t, WindowFiles>;  // by window start

struct StoreStats {
  uint64_t samples = 0;         // taken in
  uint64_t dropped_old = 0;     // older than the raw retention
  uint64_t dropped_future = 0;  // more than a window ahead of the clock
  uint64_t compactions = 0;
  uint64_t corrupt = 0;        // files or chunks found damaged and set aside
  uint64_t evicted_files = 0;  // deleted for the disk budget
};

class Store {
 public:
  Store(outpost::Host host, StoreOptions options);  // throws outpost::Error
  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  // Writer. add() buffers; flush() writes the buffer as head blocks.
  // The store's one thread: a compaction pass every 30 s; between passes it calls background
  // (the sink's own slow work), again after 20 ms while that answers true (more to do).
  void start(std::function<bool()> background = {});
  void stop();  // flush, then stop the thread
  void add(uint32_t series, int64_t t, double v, int64_t now_ns);
  std::size_t mark() const noexcept { return buffer_.size(); }
  void rollback_to(std::size_t mark) { buffer_.resize(mark); }
  void maybe_flush();  // when the flush interval has passed since the last
  void flush();
  // One pass of the compaction thread's work, now (tests, shutdown).
  void compact_now();
  StoreStats stats() const;

  // Reader (any process). Points of the given series (ascending ids; empty with all = every
  // series) in [since, until), window by window from the newest, until a window ends with at
  // least `want` points given. A window whose raw samples are gone gives its rollups.
  using RawFn = std::function<void(uint32_t series, int64_t t, double v)>;
  // A rollup point: the bucket's start, then min, max, last, sum, count.
  using RollupFn = std::function<void(uint32_t series, int64_t bucket, const double* v)>;
  void scan(const std::vector<uint32_t>& series, bool all, int64_t since, int64_t until,
            uint64_t want, const RawFn& raw, const RollupFn& rollup) const;
  // The files a reader uses for the windows overlapping [since, until), newest window first,
  // all opened (so that none can vanish while its points are handed over).
  struct OpenWindow {
    int64_t window;
    std::vector<std::unique_ptr<Block>> blocks;
  };
  std::vector<OpenWindow> open_windows(int64_t since, int64_t until) const;
  // The newest sample of a series (from its rollup's last when its raw samples are gone); the
  // second form on windows opened once for many series.
  bool latest(uint32_t series, int64_t& t, double& v) const;
  static bool latest(const std::vector<OpenWindow>& windows, uint32_t series, int64_t& t,
                     double& v);
  Listing list() const;

 private:
  struct Sample {
    uint32_t series;
    int64_t t;
    double v;
  };
  void run();
  void compact_pass();
  void compact(int64_t window, const WindowFiles& files);
  void retention(int64_t now);
  void quarantine(const std::string& path, const std::string& why);
  std::string file_name(char kind, int64_t window, uint64_t seq) const;

  outpost::Host host_;
  StoreOptions o_;
  struct DirState {
    static std::shared_ptr<DirState> acquire(const std::string& dir);
    int fd = -1;
    std::atomic<uint64_t> next_seq{1};
    std::mutex compact_mu;
    std::mutex flush_mu;
  };
  std::shared_ptr<DirState> dir_;  // null when read-only
  std::vector<Sample> buffer_;
  int64_t last_flush_mono_ = 0;
  bool flushed_once_ = false;
  mutable std::mutex mu_;  // stats_, compaction vs compact_now
  StoreStats stats_;
  std::condition_variable cv_;
  std::mutex cv_mu_;
  bool stopping_ = false;
  std::atomic<bool> abort_{false};
  std::thread thread_;
  std::function<bool()> background_;
};

}  // namespace outpost::store
