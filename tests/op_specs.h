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

// The input of lone_op_spec: 16 channels, so that the dnnl backend lays them out in blocks.
inline constexpr ops::Dims kLoneOpInput{16, 8, 8};

// Requires nothing. Ensures a spec for a kLoneOpInput input in which info's op is the only op
// whose values could differ between backends: alone where it can be; a join after a resize to
// the input's own size (an exact copy) reading the input; a batch norm after the conv it
// normalises. The tests generated from the op table run it (tests/test_op_rows.cpp).
inline std::string lone_op_spec(const ops::OpInfo& info) {
  const std::string word = info.spec_word;
  switch (info.spec_args) {
    case ops::SpecArgs::conv: return word + " 16 relu\n";
    case ops::SpecArgs::window: return word + "\n";
    case ops::SpecArgs::target: return word + " 11x5\n";
    case ops::SpecArgs::nothing: return word + "\n";
    case ops::SpecArgs::operand: return "resize 8x8\n" + word + " input\n";
    case ops::SpecArgs::norm: return "conv 16\n" + word + " relu\n";
  }
  return word + "\n";
}

}  // namespace cae::test
