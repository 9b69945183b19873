// What every fuzz target shares: the readers take a path, so each input is written to one
// in-memory file (memfd) that the target reads through /proc/self/fd/N. No disk I/O, and no
// stale file between inputs: the file is truncated and rewritten for each one.
#pragma once

#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <cstdio>
#include <string>

namespace cae::fuzz {

class MemFile {
 public:
  // Ensures an empty in-memory regular file; aborts when the kernel refuses one (the target
  // could not run at all).
  MemFile() : fd_(::memfd_create("cae-fuzz", MFD_CLOEXEC)) {
    if (fd_ < 0) {
      std::perror("memfd_create");
      std::abort();
    }
    path_ = "/proc/self/fd/" + std::to_string(fd_);
  }
  MemFile(const MemFile&) = delete;
  MemFile& operator=(const MemFile&) = delete;
  ~MemFile() { ::close(fd_); }

  // Ensures the file holds exactly bytes[0, size); returns its path.
  const std::string& hold(const std::uint8_t* bytes, std::size_t size) {
    if (::ftruncate(fd_, 0) != 0) std::abort();
    std::size_t done = 0;
    while (done < size) {
      const ssize_t n = ::pwrite(fd_, bytes + done, size - done, off_t(done));
      if (n <= 0) std::abort();
      done += std::size_t(n);
    }
    return path_;
  }

 private:
  int fd_;
  std::string path_;
};

}  // namespace cae::fuzz
