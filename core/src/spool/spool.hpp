// Store and forward for one sink: what the pipeline hands the sink is appended to disk first, and
// a sender thread offers it to the sink from there, oldest first, until the destination has it.
//
// On disk (one directory per sink):
//   spool.id             the spool's random id, made once (outpost_write_info.spool_id)
//   cursor               per stream the last acknowledged sequence number, and the batch in
//                        flight (its ranges), written to a temporary file, synced, renamed
//   streams/<source>/    one stream per source (a plugin instance, or "engine"): segment files
//                        <first seq, 20 digits>.seg (record.hpp)
//   quarantine/          what failed its checks at start, set aside for a human, never replayed
//   lock                 flock'ed by the process that has the spool open
//
// What is promised:
//   - a record is offered to the sink only once it is synced to disk, and the cursor moves only
//     after the sink accepted the batch; a segment is deleted only after the cursor that passed
//     it is synced. So a kill -9 loses nothing that was synced, and a power cut at most what was
//     appended in the last sync interval (plus what still waited in the pipeline's queue);
//   - the batch in flight is written down before it is first offered, and after a restart it is
//     offered again with the same ranges and items: a destination that keeps the highest
//     sequence number per stream drops that one repeat;
//   - a torn last record (a crash mid-write) is cut off at start and everything before it kept;
//     a record that fails its checksum ends what is read of its segment, the rest is set aside in
//     quarantine/; both are counted, and start never fails because of them;
//   - each stream has a quota: past it the oldest segment goes, even unsent, counted as evicted.
#pragma once

#include <outpost/plugin.h>

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "pipeline/batch.hpp"

namespace outpost::core {

struct SpoolOptions {
  std::string dir;                         // this sink's spool directory
  uint64_t max_source_bytes = 1ull << 30;  // quota of each stream (source)
  uint64_t segment_bytes = 16ull << 20;    // a segment is sealed past this size
  double sync_interval_s = 1.0;            // appended data is synced at least this often
  std::size_t batch_items = 20000;         // items per write at most
  std::size_t batch_bytes = 16u << 20;     // spooled bytes per write at most
  double max_delay_s = 5.0;                // a partial batch waits at most this long
  double backoff_initial_s = 1.0;          // after a failed write, doubled up to the max
  double backoff_max_s = 60.0;
  double operator_backoff_s = 60.0;  // after an operator-class failure (certificate...)
};

struct SpoolStats {
  uint64_t appended_items = 0, appended_records = 0, appended_bytes = 0;
  uint64_t sent_items = 0, sent_batches = 0, attempts = 0, retries = 0;
  uint64_t rejected_items = 0;                       // the destination refused them for good
  uint64_t evicted_items = 0, evicted_segments = 0;  // past a quota, unsent
  uint64_t corrupt_records = 0, corrupt_bytes = 0;   // set aside at start (torn or bad)
  uint64_t syncs = 0;
  uint64_t pending_items = 0;  // appended, not yet acknowledged
  uint64_t disk_bytes = 0;
  int64_t oldest_pending_ns = 0;  // wall time the oldest unacknowledged record was spooled
  outpost_status last_status = OUTPOST_OK;
  std::size_t streams = 0;
};

class Spool {
 public:
  // Writes one batch to the destination; retry_after_ns is set when the destination asked for a
  // pause.
  using WriteFn = std::function<outpost_status(const outpost_batch&, const outpost_write_info&,
                                               int64_t& retry_after_ns)>;

  // Opens (or creates) the spool in options.dir: reads the cursor, checks every segment, sets
  // aside what is torn or corrupt. nullptr (and why) only when the directory cannot be used.
  static std::unique_ptr<Spool> open(const SpoolOptions& options, std::string& why);
  ~Spool();
  Spool(const Spool&) = delete;
  Spool& operator=(const Spool&) = delete;

  // Starts the sync and sender threads; write is called on the sender thread only.
  void start(WriteFn write);
  // The sink behind the spool changed (a reload): the next attempt uses this.
  void set_writer(WriteFn write);
  // Stops the threads after the attempt under way, syncs everything, writes the cursor.
  void stop();

  // Appends the batches, one record per source (Batch::origin; "engine" when empty). On the
  // pipeline's thread. OUTPOST_E_INTERNAL when the disk refused (counted by the caller).
  outpost_status append(const std::vector<const Batch*>& batches);
  // Syncs what was appended (also done every sync_interval_s by the sync thread).
  void sync();
  // Waits until everything appended so far has been acknowledged, up to timeout_s.
  bool wait_idle(double timeout_s);

  SpoolStats stats() const;
  const std::string& id() const { return id_; }
  const SpoolOptions& options() const { return opt_; }

  struct Stream;
  struct Inflight;

 private:
  explicit Spool(SpoolOptions options);
  bool recover(std::string& why);
  Stream& stream_for(const std::string& name);
  bool open_segment(Stream& s, std::string& why);
  void sync_loop();
  void send_loop();
  bool take_batch(Inflight& out);               // under mu_
  bool write_cursor(const Inflight* inflight);  // under mu_
  void acknowledge(const Inflight& batch);      // under mu_
  void drop_acked_segments(Stream& s);          // under mu_
  void enforce_quota(Stream& s);                // under mu_
  uint64_t pending_synced_items() const;        // under mu_
  void sync_streams();

  const SpoolOptions opt_;
  std::string id_;
  int lock_fd_ = -1;  // flock'ed while open
  mutable std::mutex mu_;
  std::condition_variable cv_;       // sender: data synced, stop
  std::condition_variable idle_cv_;  // wait_idle: acknowledged
  std::condition_variable sync_cv_;  // sync thread: stop
  std::map<std::string, std::unique_ptr<Stream>> streams_;
  std::unique_ptr<Inflight> recovered_inflight_;
  WriteFn write_;
  bool running_ = false;
  bool stopping_ = false;
  std::size_t rotate_ = 0;
  SpoolStats stats_;
  std::string scratch_;  // pipeline thread: encoding
  std::thread sync_thread_;
  std::thread send_thread_;
};

}  // namespace outpost::core
