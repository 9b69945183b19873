#include "core/atomic_file.h"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "cae/error.h"

namespace cae {

namespace {
std::string errno_text() { return std::strerror(errno); }
}  // namespace

void remove_stale_temporaries(const std::string& path) {
  namespace fs = std::filesystem;
  const fs::path target(path);
  const fs::path dir = target.parent_path().empty() ? fs::path(".") : target.parent_path();
  const std::string prefix = target.filename().string() + ".tmp.";
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (name.size() <= prefix.size() || name.compare(0, prefix.size(), prefix) != 0) continue;
    const std::string digits = name.substr(prefix.size());
    if (digits.size() > 9 || digits.find_first_not_of("0123456789") != std::string::npos)
      continue;
    const pid_t pid = pid_t(std::stol(digits));
    if (pid <= 0 || pid == ::getpid()) continue;
    if (::kill(pid, 0) == 0 || errno != ESRCH) continue;
    std::error_code ignored;
    fs::remove(it->path(), ignored);
  }
}

namespace {

// Writes bytes to path's temporary file and flushes them to disk; ensures its name, or throws
// having removed it.
std::string stage(const std::string& path, std::span<const std::uint8_t> bytes) {
  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) throw Error("cannot create '" + tmp + "': " + errno_text());
  std::size_t done = 0;
  while (done < bytes.size()) {
    ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      std::string why = n < 0 ? errno_text() : "short write";
      ::close(fd);
      ::unlink(tmp.c_str());
      throw Error("cannot write '" + path + "' (" + std::to_string(done) + " of " +
                  std::to_string(bytes.size()) + " bytes written): " + why);
    }
    done += std::size_t(n);
  }
  if (::fsync(fd) != 0) {
    std::string why = errno_text();
    ::close(fd);
    ::unlink(tmp.c_str());
    throw Error("cannot flush '" + path + "': " + why);
  }
  if (::close(fd) != 0) {
    std::string why = errno_text();
    ::unlink(tmp.c_str());
    throw Error("cannot close '" + path + "': " + why);
  }
  return tmp;
}

// Renames a staged temporary over path and makes the rename durable; throws having removed tmp.
void commit(const std::string& tmp, const std::string& path) {
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    std::string why = errno_text();
    ::unlink(tmp.c_str());
    throw Error("cannot rename '" + tmp + "' to '" + path + "': " + why);
  }
  // Make the rename itself durable.
  const std::filesystem::path parent = std::filesystem::path(path).parent_path();
  const std::string dir = parent.empty() ? std::string(".") : parent.string();
  int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
  remove_stale_temporaries(path);
}

}  // namespace

void write_file_atomic(const std::string& path, std::span<const std::uint8_t> bytes) {
  commit(stage(path, bytes), path);
}

void FileBatch::add(const std::string& path, std::span<const std::uint8_t> bytes) {
  for (const auto& [target, tmp] : staged_)
    if (target == path) throw Error("'" + path + "' would be written twice");
  staged_.emplace_back(path, stage(path, bytes));
}

void FileBatch::commit() {
  for (std::size_t i = 0; i < staged_.size(); ++i) {
    try {
      cae::commit(staged_[i].second, staged_[i].first);
    } catch (...) {
      staged_.erase(staged_.begin(), staged_.begin() + std::ptrdiff_t(i) + 1);
      throw;
    }
  }
  staged_.clear();
}

FileBatch::~FileBatch() {
  for (const auto& [target, tmp] : staged_) ::unlink(tmp.c_str());
}

std::vector<std::uint8_t> read_file(const std::string& path) {
  // A directory opens as a stream whose end is at the largest offset there is.
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec))
    throw Error("cannot read '" + path + "': it is a directory");
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error("cannot open '" + path + "': " + errno_text());
  in.seekg(0, std::ios::end);
  std::streamoff size = in.tellg();
  if (size < 0) throw Error("cannot read '" + path + "': not a regular file");
  in.seekg(0, std::ios::beg);
  std::vector<std::uint8_t> bytes(static_cast<std::size_t>(size));
  if (size > 0 && !in.read(reinterpret_cast<char*>(bytes.data()), size))
    throw Error("cannot read '" + path + "': " + errno_text());
  return bytes;
}

}  // namespace cae
