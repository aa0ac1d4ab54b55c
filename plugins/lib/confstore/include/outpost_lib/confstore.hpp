// The versioned store of device configurations the config_backup plugin keeps: one git
// repository per engine (libgit2), one file per device, one commit per changed device on
// refs/heads/main, written without a work tree (blobs, trees and commits straight into the object
// database). Plain git reads it: `git log`, `git show main:<device>.cfg`, `git diff A B`.
//
// A Store is safe to share between worker threads (one mutex around every libgit2 call); calls
// block on disk I/O and, with fsync on, on the disk's flush, so plugins make them from their
// worker threads, never from the poller runtime's I/O thread.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace outpost::lib::confstore {

// How a failure should be read; what() says it in words, with libgit2's own message.
enum class Status : uint8_t {
  not_found,  // no such version (commit, prefix) or no repository
  invalid,    // a device name or a version the store refuses (hostile, ambiguous, malformed)
  io,         // the repository cannot be created, read or written; another writer moved main
};
std::string_view status_name(Status s);

struct Error : std::runtime_error {
  Error(Status s, const std::string& what) : std::runtime_error(what), status(s) {}
  Status status;
};

// Whether `device` may name a file in the store: 1 to 128 bytes of printable ASCII other than
// space, '/' and '\\', not starting with '.', without "..". The file is "<device>.cfg". Names are
// refused (Error invalid), never rewritten, so two devices can never share a file.
bool valid_device_name(std::string_view device);

// What put() committed.
struct Change {
  std::string commit;       // the new commit (40 hex digits)
  std::string previous;     // the commit holding the device's previous version; empty: first one
  std::string diff;         // git's unified patch of <device>.cfg alone, previous -> new
  std::size_t added = 0;    // lines added
  std::size_t removed = 0;  // lines removed
};

// One version of a device's configuration, as history() lists them.
struct Version {
  std::string commit;                          // 40 hex digits
  std::chrono::system_clock::time_point time;  // the author time put() was given
  std::string message;  // "<device>: <trigger>", without the trailing newline
  std::string author;   // "Name <email>"
};

class Store {
 public:
  // Opens the repository at `path`, creating it (and missing parent directories) when absent: a
  // non-bare repository whose HEAD is refs/heads/main. Commits are authored and committed by
  // `engine_name <engine_email>`. Throws Error (io when the path cannot be created or read).
  static Store open(const std::string& path, std::string engine_name, std::string engine_email);

  Store(Store&&) noexcept;
  Store& operator=(Store&&) noexcept;
  ~Store();

  // Stores `text` as the device's configuration. nullopt when it is byte for byte the version
  // main already holds (nothing is written); otherwise one commit on main with the message
  // "<device>: <trigger>" (line breaks in the trigger become spaces) at `time`, and what
  // changed. When it returns the objects and the ref are on disk (fsync). Throws Error.
  std::optional<Change> put(std::string_view device, std::string_view text,
                            std::string_view trigger, std::chrono::system_clock::time_point time);

  // The commits on main (first parents) that changed the device, newest first, at most `max`
  // (0: all).
  std::vector<Version> history(std::string_view device, std::size_t max = 0);

  // The device's configuration at `version`: a commit id, a prefix of one (4 digits or more) or
  // any revision git understands ("main", "main~2"). nullopt when the device has no file there;
  // Error not_found when no such version, invalid when a prefix is ambiguous.
  std::optional<std::string> show(std::string_view device, std::string_view version);

  // git's unified patch of <device>.cfg between two versions (as for show()); an empty `from`
  // stands for no file at all. Empty when both hold the same text.
  std::string diff(std::string_view device, std::string_view from, std::string_view to);

  // The devices main holds a file for, sorted.
  std::vector<std::string> devices();

  const std::string& path() const;

  struct Impl;  // the libgit2 repository, the mutex (opaque)

 private:
  explicit Store(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace outpost::lib::confstore
