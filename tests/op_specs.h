// A small spec for each row of the op table, built from the row alone (its keyword and what
// follows it), so that a test over op_table() covers an op as soon as its row exists.
#pragma once

#include <string>

#include "ops/ops.h"

namespace cae::test {

// Requires nothing. Ensures a spec for a 1-channel 8x8 input that holds info's op once, after
// two convs (so a join has an earlier activation, 'a', to read), then a resize back to 8x8 and
// a 1-channel conv, so that the model maps its input's shape to itself.
inline std::string one_op_spec(const ops::OpInfo& info) {
  std::string line = info.spec_word;
  switch (info.spec_args) {
    case ops::SpecArgs::conv: line += " 16 relu"; break;
    case ops::SpecArgs::window: break;
    case ops::SpecArgs::target: line += " 11x5"; break;
    case ops::SpecArgs::nothing: break;
    case ops::SpecArgs::operand: line += " a"; break;
    case ops::SpecArgs::norm: line += " relu"; break;
  }
  return "conv 16 relu as a\nconv 16\n" + line + "\nresize 8x8\nconv 1\n";
}

}  // namespace cae::test
