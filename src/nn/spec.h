// Architecture specs: a short text, one layer per line or ';'-separated on one line, '#' starts a
// comment. Grammar (docs/spec.md documents it for users):
//
//   conv C [kK] [sS] [same|valid] [relu|sigmoid|linear] [nobias]    C: a number or 'channels'
//   tconv C [kK] [sS] [same|mirror|HxW] [relu|sigmoid|linear] [nobias]
//   pool [kK] [sS] [same|valid]                                      max pooling (k2 s2 same)
//   resize mirror|HxW|N                                              nearest neighbour
//   relu | sigmoid
//   bn [relu|linear]          batch normalisation of the conv or tconv line just before it,
//                             which has no activation and no name (it is folded into it)
//   concat NAME | add NAME | sub NAME          joins: [x ; NAME], x + NAME, NAME - x
//   any layer line may end in 'as NAME', naming its output; 'input' names the net's input.
//
// docs/spec.md has the full grammar. A join reads an activation named on an earlier line, never
// the line just before it (that is x itself) and never a later one (that would be a cycle).
//
// 'channels' is the channel count of the data; 'mirror' is the spatial size that the matching
// downsampling layer (a pool or a strided conv, matched last-in first-out) received, so that a
// decoder undoes its encoder whatever the input size. Shapes are resolved against the data's
// shape by build_net(), not fixed in the spec.
#pragma once

#include <string>
#include <vector>

#include "ops/ops.h"

namespace cae::nn {

// A layer is one op of the op table (ops::op_table(): its spec keyword, what follows it, its
// shape rule); the spec only adds how sizes are given.
enum class SizeRule { same, valid, mirror, fixed };

struct LayerSpec {
  ops::OpKind kind = ops::OpKind::conv;
  int channels = 0;          // conv/tconv; 0 means "the data's channel count"
  int kernel = 3, stride = 1;
  SizeRule size = SizeRule::same;
  int out_h = 0, out_w = 0;  // SizeRule::fixed
  ops::Activation act = ops::Activation::none;
  bool bias = true;
  std::string name;   // 'as NAME': this layer's output may be joined later; "" unnamed
  std::string joins;  // concat/add/sub: the name of the second operand
  int joins_layer = ops::OpDesc::kNoOperand;  // its layer index, ops::OpDesc::kNetInput: input
  int line = 0;              // where it came from, for messages
};

struct Architecture {
  std::string text;  // the spec as given (stored in model files)
  std::vector<LayerSpec> layers;
};

// Ensures a validated architecture; throws cae::Error naming the line and the bad token.
Architecture parse_spec(const std::string& text);

// The text of a built-in preset ("seed", "seed-tconv"); throws listing the known names.
const std::string& preset_spec(const std::string& name);
std::vector<std::string> preset_names();

// Resolves shapes for an input of `input` dims and a fixed batch, 'channels' meaning
// image_channels when it is > 0 (an informed model's input has the mask's channel besides the
// image's), else input.c. Throws cae::Error naming the layer when a shape cannot work (a size
// that reaches zero, a mirror without a matching downsampling, a tconv size its stride cannot
// reach).
ops::NetDesc build_net(const Architecture& arch, ops::Dims input, int batch,
                       int image_channels = 0);

// Canonical text of an architecture (one layer per line), parse_spec(format_spec(a)) == a.
std::string format_spec(const Architecture& arch);

}  // namespace cae::nn
