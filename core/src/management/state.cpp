#include "management/state.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace outpost::core::mgmt {
namespace fs = std::filesystem;

bool write_file_atomic(const std::string& path, std::string_view data, std::string& why) {
  const fs::path target(path);
  std::error_code ec;
  fs::create_directories(target.parent_path(), ec);
  const std::string tmp = path + ".tmp";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) {
    why = tmp + ": " + std::strerror(errno);
    return false;
  }
  std::size_t done = 0;
  bool ok = true;
  while (ok && done < data.size()) {
    const ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n <= 0 && errno != EINTR) ok = false;
    if (n > 0) done += static_cast<std::size_t>(n);
  }
  ok = ok && ::fsync(fd) == 0;
  if (!ok) why = tmp + ": " + std::strerror(errno);
  ::close(fd);
  if (ok && ::rename(tmp.c_str(), path.c_str()) != 0) {
    why = path + ": " + std::strerror(errno);
    ok = false;
  }
  if (!ok) {
    ::unlink(tmp.c_str());
    return false;
  }
  const int dfd = ::open(target.parent_path().empty() ? "." : target.parent_path().c_str(),
                         O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
  return true;
}

bool StateDir::open(const std::string& dir, std::string& why) {
  dir_ = dir;
  std::error_code ec;
  fs::create_directories(dir_, ec);
  if (ec || !fs::is_directory(dir_, ec)) {
    why = dir_ + ": cannot create the state directory" + (ec ? ": " + ec.message() : "");
    return false;
  }
  fs::permissions(dir_, fs::perms::owner_all, fs::perm_options::replace, ec);
  values_.clear();
  if (auto text = read_file("state")) {
    std::istringstream in(*text);
    std::string line;
    while (std::getline(in, line)) {
      const auto eq = line.find('=');
      if (eq != std::string::npos && eq > 0) values_[line.substr(0, eq)] = line.substr(eq + 1);
    }
  }
  return true;
}

std::string StateDir::path(std::string_view relative) const {
  return (fs::path(dir_) / relative).string();
}

std::string StateDir::get(const std::string& key) const {
  auto it = values_.find(key);
  return it == values_.end() ? std::string() : it->second;
}

uint64_t StateDir::get_u64(const std::string& key) const {
  const std::string v = get(key);
  uint64_t out = 0;
  auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), out);
  return ec == std::errc{} && p == v.data() + v.size() ? out : 0;
}

bool StateDir::save(std::string& why) {
  std::string text;
  for (const auto& [k, v] : values_)
    if (v.find('\n') == std::string::npos) text += k + "=" + v + "\n";
  return write_file_atomic(path("state"), text, why);
}

bool StateDir::write_file(std::string_view relative, std::string_view data,
                          std::string& why) const {
  return write_file_atomic(path(relative), data, why);
}

std::optional<std::string> StateDir::read_file(std::string_view relative) const {
  std::ifstream in(path(relative), std::ios::binary);
  if (!in) return std::nullopt;
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace outpost::core::mgmt
