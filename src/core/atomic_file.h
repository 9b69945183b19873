// Crash-safe file output: bytes go to a temporary file beside the target, are fsync'ed, then
// renamed over the target, so a reader sees either the old file or the whole new one.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace cae {

// Requires the target's directory to exist. Ensures path holds exactly bytes, or throws
// cae::Error (disk full, permission, ...) leaving any previous file at path untouched.
void write_file_atomic(const std::string& path, std::span<const std::uint8_t> bytes);

// A writer killed between creating its temporary file (path.tmp.PID) and the rename leaves it
// behind. Removes those of path whose process is gone; best effort: a live process's file, a
// name that is not a PID, or an error while listing leaves things as they are. Every successful
// write_file_atomic(path) calls it.
void remove_stale_temporaries(const std::string& path);

// Ensures the whole file's bytes are returned; throws cae::Error naming the file otherwise.
std::vector<std::uint8_t> read_file(const std::string& path);

}  // namespace cae
