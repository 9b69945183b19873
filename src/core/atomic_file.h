// Crash-safe file output: bytes go to a temporary file beside the target, are fsync'ed, then
// renamed over the target, so a reader sees either the old file or the whole new one.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <utility>
#include <vector>

namespace cae {

// Requires the target's directory to exist. Ensures path holds exactly bytes, or throws
// cae::Error (disk full, permission, ...) leaving any previous file at path untouched.
void write_file_atomic(const std::string& path, std::span<const std::uint8_t> bytes);

// Several files written all or none: add() writes each to a temporary beside its target and
// flushes it, commit() renames them all over their targets; a batch destroyed before commit()
// (an error in between) removes its temporaries, so no target changes. A failure during commit()
// leaves the files renamed before it in place (a disk cannot rename several files at once).
class FileBatch {
 public:
  FileBatch() = default;
  FileBatch(const FileBatch&) = delete;
  FileBatch& operator=(const FileBatch&) = delete;
  ~FileBatch();
  // Requires the target's directory to exist. Throws cae::Error (disk full, ...) having removed
  // that temporary, or when path was added already.
  void add(const std::string& path, std::span<const std::uint8_t> bytes);
  void commit();
  std::size_t size() const { return staged_.size(); }

 private:
  std::vector<std::pair<std::string, std::string>> staged_;  // target, temporary
};

// A writer killed between creating its temporary file (path.tmp.PID) and the rename leaves it
// behind. Removes those of path whose process is gone; best effort: a live process's file, a
// name that is not a PID, or an error while listing leaves things as they are. Every successful
// write_file_atomic(path) calls it.
void remove_stale_temporaries(const std::string& path);

// Ensures the whole file's bytes are returned; throws cae::Error naming the file otherwise.
std::vector<std::uint8_t> read_file(const std::string& path);

}  // namespace cae
