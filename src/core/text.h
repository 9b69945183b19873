// Numbers as text that reads back exactly: what the model file, the checkpoint and the option
// texts they record (schedules, augmentation) write, so that a resume compares them as equal.
#pragma once

#include <charconv>
#include <string>

namespace cae {

// The shortest text that std::from_chars reads back as exactly v (a float's own shortest form,
// not its double's: 0.7f is "0.7").
inline std::string exact_text(double v) {
  char buf[32];
  return std::string(buf, std::to_chars(buf, buf + sizeof buf, v).ptr);
}
inline std::string exact_text(float v) {
  char buf[32];
  return std::string(buf, std::to_chars(buf, buf + sizeof buf, v).ptr);
}

}  // namespace cae
