// The management channel's state directory: the applied bundles as they were fetched, the
// plugin libraries unpacked from them (one directory per serial), and a small `state` file of
// ETags and last applied serials. Every file is written whole to a temporary name, synced and
// renamed, so a crash leaves the old file or the new one, never half of one.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>

namespace outpost::core::mgmt {

class StateDir {
 public:
  // Creates the directory (mode 0700) and reads its state file. False with a reason.
  bool open(const std::string& dir, std::string& why);
  const std::string& dir() const { return dir_; }
  std::string path(std::string_view relative) const;

  std::string get(const std::string& key) const;
  uint64_t get_u64(const std::string& key) const;
  void set(const std::string& key, const std::string& value) { values_[key] = value; }
  bool save(std::string& why);  // the state file

  bool write_file(std::string_view relative, std::string_view data, std::string& why) const;
  std::optional<std::string> read_file(std::string_view relative) const;

 private:
  std::string dir_;
  std::map<std::string, std::string> values_;
};

// Atomic replacement of `path` by `data` (temporary file, fsync, rename, fsync of the directory).
bool write_file_atomic(const std::string& path, std::string_view data, std::string& why);

}  // namespace outpost::core::mgmt
