// file: JSON lines appended to a file, rotated by size.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <jsonl/jsonl.hpp>
#include <outpost/sdk.hpp>
#include <string>
#include <vector>

namespace {

using outpost::Error;

// Errors of the operator's making at create; anything else (disk full, I/O) may pass.
outpost_status status_of(int err, bool at_create) {
  if (!at_create) return OUTPOST_E_UNAVAILABLE;
  switch (err) {
    case EACCES:
    case EPERM:
    case EROFS:
    case ENOENT:
    case ENOTDIR:
    case EISDIR:
    case ENAMETOOLONG:
    case ELOOP:
      return OUTPOST_E_CONFIG;
    default:
      return OUTPOST_E_UNAVAILABLE;
  }
}

class FileSink final : public outpost::Sink {
 public:
  FileSink(outpost::Host host, const outpost::Config& cfg) : host_(host) {
    path_ = cfg.get("path");
    const int64_t max_size = cfg.get_int("max_size", int64_t{64} << 20);
    const int64_t max_files = cfg.get_int("max_files", 5);
    if (path_.empty()) throw Error(OUTPOST_E_CONFIG, "path: required");
    if (max_size < 0) throw Error(OUTPOST_E_CONFIG, "max_size: must be 0 (no rotation) or more");
    if (max_files < 0 || max_files > 1000)
      throw Error(OUTPOST_E_CONFIG, "max_files: must be 0..1000");
    max_size_ = static_cast<uint64_t>(max_size);
    max_files_ = static_cast<int>(max_files);
    const std::filesystem::path p(path_);
    if (p.has_parent_path()) {
      std::error_code ec;
      std::filesystem::create_directories(p.parent_path(), ec);
      if (ec)
        throw Error(OUTPOST_E_CONFIG, "cannot create directory for " + path_ + ": " + ec.message());
    }
    open(true);
  }
  ~FileSink() override {
    if (fd_ >= 0) ::close(fd_);
  }

  static std::vector<outpost_field> config_fields() {
    using outpost::field;
    return {
        field("path", OUTPOST_FIELD_STRING, "file to append JSON lines to", "",
              OUTPOST_FIELD_REQUIRED),
        field("max_size", OUTPOST_FIELD_INT,
              "bytes after which the file rotates to path.1, path.2, ...; 0 never rotates",
              "67108864"),
        field("max_files", OUTPOST_FIELD_INT, "rotated files kept besides path", "5"),
    };
  }

  void write(const outpost_batch& b) override {
    if (b.metric_count + b.event_count + b.flow_count == 0) return;
    reopen_if_moved();
    const int64_t now = host_.now_ns();
    pending_.clear();
    for (std::size_t i = 0; i < b.metric_count; ++i)
      add([&](std::string& s) {
        outpost::jsonl::append_metric(s, outpost::element(b.metrics, b.metric_size, i), now);
      });
    for (std::size_t i = 0; i < b.event_count; ++i)
      add([&](std::string& s) {
        outpost::jsonl::append_event(s, outpost::element(b.events, b.event_size, i), now);
      });
    for (std::size_t i = 0; i < b.flow_count; ++i)
      add([&](std::string& s) {
        outpost::jsonl::append_flow(s, outpost::element(b.flows, b.flow_size, i));
      });
    commit();
  }

  void flush() override {
    if (!dirty_ || fd_ < 0) return;
    if (::fdatasync(fd_) != 0 && errno != EINVAL)  // EINVAL: a device or pipe, nothing to sync
      throw Error(OUTPOST_E_UNAVAILABLE, "fdatasync " + path_ + ": " + std::strerror(errno));
    dirty_ = false;
  }

 private:
  // Encodes one line, rotating first when it would push the file past max_size, so files
  // split only between lines.
  template <typename Encode>
  void add(Encode&& encode) {
    line_.clear();
    encode(line_);
    const uint64_t used = size_ + pending_.size();
    // Only regular files rotate: renaming /dev/stdout or a FIFO would be a disaster.
    if (regular_ && max_size_ > 0 && used > 0 && used + line_.size() > max_size_) {
      commit();
      rotate();
    }
    pending_ += line_;
  }

  void open(bool at_create) {
    fd_ = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd_ < 0)
      throw Error(status_of(errno, at_create), "open " + path_ + ": " + std::strerror(errno));
    struct stat st {};
    if (::fstat(fd_, &st) != 0)
      throw Error(OUTPOST_E_UNAVAILABLE, "fstat " + path_ + ": " + std::strerror(errno));
    regular_ = S_ISREG(st.st_mode);
    size_ = regular_ ? static_cast<uint64_t>(st.st_size) : 0;
    dev_ = st.st_dev;
    ino_ = st.st_ino;
  }

  void reopen() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
    open(false);
  }

  // Someone else (logrotate, an operator) moved or deleted the file: start a new one rather
  // than write into the unlinked inode.
  void reopen_if_moved() {
    struct stat st {};
    if (fd_ < 0 || ::stat(path_.c_str(), &st) != 0 || st.st_dev != dev_ || st.st_ino != ino_)
      reopen();
  }

  // Writes the pending lines. On failure the file is cut back to its last whole line, so a
  // retried batch never follows a torn one.
  void commit() {
    std::size_t off = 0;
    while (off < pending_.size()) {
      const ssize_t n = ::write(fd_, pending_.data() + off, pending_.size() - off);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        const int err = n < 0 ? errno : EIO;
        if (off > 0 && (!regular_ || ::ftruncate(fd_, static_cast<off_t>(size_)) != 0))
          size_ += off;  // could not cut it back; the count must still match the file
        pending_.clear();
        throw Error(OUTPOST_E_UNAVAILABLE, "write " + path_ + ": " + std::strerror(err));
      }
      off += static_cast<std::size_t>(n);
    }
    size_ += pending_.size();
    dirty_ = dirty_ || !pending_.empty();
    pending_.clear();
  }

  void rotate() {
    const auto name = [this](int i) { return path_ + "." + std::to_string(i); };
    // Best effort: the rotated file's lines should be as durable as flush() makes the others.
    if (dirty_) (void)::fdatasync(fd_);
    std::error_code ec;
    if (max_files_ == 0) {
      std::filesystem::remove(path_, ec);
    } else {
      std::filesystem::remove(name(max_files_), ec);
      for (int i = max_files_ - 1; i >= 1; --i) {
        std::filesystem::rename(name(i), name(i + 1), ec);  // a missing one is fine
      }
      std::filesystem::rename(path_, name(1), ec);
      if (ec && ec != std::errc::no_such_file_or_directory)
        throw Error(OUTPOST_E_UNAVAILABLE, "rotate " + path_ + ": " + ec.message());
    }
    dirty_ = false;
    reopen();
  }

  outpost::Host host_;
  std::string path_;
  uint64_t max_size_ = 0;
  int max_files_ = 0;
  int fd_ = -1;
  uint64_t size_ = 0;
  dev_t dev_ = 0;
  ino_t ino_ = 0;
  bool regular_ = false;
  bool dirty_ = false;
  std::string pending_, line_;
};

}  // namespace

OUTPOST_PLUGIN(FileSink, "file", "1.0.0",
               "Appends metrics, events and flows as JSON lines to a file")
