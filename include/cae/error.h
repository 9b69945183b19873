// Errors thrown by libcae. The library never prints or exits; the CLI turns an Error into one
// message and a non-zero exit status.
#pragma once

#include <stdexcept>
#include <string>

namespace cae {

// Any failure of the library: bad input, bad file, bad spec, I/O error. what() is the whole
// message with its context (the file, the record, the expected and the found value).
class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
};

}  // namespace cae
