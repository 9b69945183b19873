// NetDesc builders for the backend parity tests: TF 'same' / 'valid' geometry (DESIGN.md §2)
// written out by hand, independent of the spec parser, plus the seed nets of DESIGN.md §1.
#pragma once

#include <algorithm>
#include <vector>

#include "ops/ops.h"

namespace cae::ops::test_nets {

struct Pads {
  int before = 0, after = 0;
};

inline Pads same_pads(int in, int kernel, int stride) {
  const int out = (in + stride - 1) / stride;
  const int total = std::max((out - 1) * stride + kernel - in, 0);
  return {total / 2, total - total / 2};
}

inline OpDesc conv(Dims in, int c_out, int kernel, int stride, bool same, Activation act,
            bool bias = true) {
  OpDesc op;
  op.kind = OpKind::conv;
  op.in = in;
  op.kernel = kernel;
  op.stride = stride;
  op.bias = bias;
  op.act = act;
  if (same) {
    const Pads ph = same_pads(in.h, kernel, stride), pw = same_pads(in.w, kernel, stride);
    op.pad_top = ph.before;
    op.pad_bottom = ph.after;
    op.pad_left = pw.before;
    op.pad_right = pw.after;
  }
  op.out = {c_out, (in.h + op.pad_top + op.pad_bottom - kernel) / stride + 1,
            (in.w + op.pad_left + op.pad_right - kernel) / stride + 1};
  return op;
}

// Transposed conv with explicit padding of the equivalent forward conv.
inline OpDesc tconv(Dims in, int c_out, int kernel, int stride, Pads ph, Pads pw, Activation act,
             bool bias = true) {
  OpDesc op;
  op.kind = OpKind::tconv;
  op.in = in;
  op.kernel = kernel;
  op.stride = stride;
  op.bias = bias;
  op.act = act;
  op.pad_top = ph.before;
  op.pad_bottom = ph.after;
  op.pad_left = pw.before;
  op.pad_right = pw.after;
  op.out = {c_out, (in.h - 1) * stride + kernel - ph.before - ph.after,
            (in.w - 1) * stride + kernel - pw.before - pw.after};
  return op;
}

// TF conv2d_transpose 'same': out = in * stride; the padding is that of the forward conv
// out -> in.
inline OpDesc tconv_same(Dims in, int c_out, int kernel, int stride, Activation act, bool bias = true) {
  return tconv(in, c_out, kernel, stride, same_pads(in.h * stride, kernel, stride),
               same_pads(in.w * stride, kernel, stride), act, bias);
}

inline OpDesc maxpool_same(Dims in) {
  OpDesc op;
  op.kind = OpKind::maxpool;
  op.in = in;
  op.kernel = 2;
  op.stride = 2;
  const Pads ph = same_pads(in.h, 2, 2), pw = same_pads(in.w, 2, 2);
  op.pad_top = ph.before;
  op.pad_bottom = ph.after;
  op.pad_left = pw.before;
  op.pad_right = pw.after;
  op.out = {in.c, (in.h + 1) / 2, (in.w + 1) / 2};
  return op;
}

inline OpDesc resize(Dims in, int h, int w) {
  OpDesc op;
  op.kind = OpKind::resize;
  op.in = in;
  op.out = {in.c, h, w};
  return op;
}

inline OpDesc eltwise(OpKind kind, Dims in) {
  OpDesc op;
  op.kind = kind;
  op.in = in;
  op.out = in;
  return op;
}

inline NetDesc chain(int batch, Dims input, std::vector<OpDesc> ops) {
  return {batch, input, std::move(ops)};
}

// DESIGN.md §1.
inline NetDesc seed_net(int batch) {
  const Activation relu = Activation::relu;
  std::vector<OpDesc> ops;
  auto add = [&](OpDesc op) { ops.push_back(op); };
  add(conv({1, 28, 28}, 32, 3, 1, true, relu));
  add(maxpool_same(ops.back().out));
  add(conv(ops.back().out, 32, 3, 1, true, relu));
  add(maxpool_same(ops.back().out));
  add(conv(ops.back().out, 16, 3, 1, true, relu));
  add(maxpool_same(ops.back().out));  // 4x4x16 latent
  add(resize(ops.back().out, 7, 7));
  add(conv(ops.back().out, 16, 3, 1, true, relu));
  add(resize(ops.back().out, 14, 14));
  add(conv(ops.back().out, 32, 3, 1, true, relu));
  add(resize(ops.back().out, 28, 28));
  add(conv(ops.back().out, 32, 3, 1, true, relu));
  add(conv(ops.back().out, 1, 3, 1, true, Activation::none));
  return chain(batch, {1, 28, 28}, ops);
}

// The seed with each decoder "resize + conv" replaced by a stride-2 transposed conv.
inline NetDesc seed_tconv_net(int batch) {
  NetDesc net = seed_net(batch);
  net.ops.resize(6);
  const Activation relu = Activation::relu;
  net.ops.push_back(tconv(net.ops.back().out, 16, 3, 2, {1, 1}, {1, 1}, relu));  // 4 -> 7
  net.ops.push_back(tconv_same(net.ops.back().out, 32, 3, 2, relu));             // 7 -> 14
  net.ops.push_back(tconv_same(net.ops.back().out, 32, 3, 2, relu));             // 14 -> 28
  net.ops.push_back(conv(net.ops.back().out, 1, 3, 1, true, Activation::none));
  return net;
}

// concat, add or sub of `in` (the previous op's output) with activation `other` of dims y.
inline OpDesc join(OpKind kind, Dims in, int other, Dims y) {
  OpDesc op;
  op.kind = kind;
  op.in = in;
  op.other = other;
  op.out = kind == OpKind::concat ? Dims{in.c + y.c, in.h, in.w} : in;
  return op;
}

// The seed with each encoder activation concatenated into the decoder after the resize that
// brings it back to its size (the unet preset, written out by hand).
inline NetDesc unet_net(int batch, int width = 1) {
  const Activation relu = Activation::relu;
  std::vector<OpDesc> ops;
  auto add = [&](OpDesc op) { ops.push_back(op); };
  auto skip = [&](int k) { add(join(OpKind::concat, ops.back().out, k, ops[k].out)); };
  add(conv({1, 28, 28}, 32 * width, 3, 1, true, relu));  // 0: e1
  add(maxpool_same(ops.back().out));
  add(conv(ops.back().out, 32 * width, 3, 1, true, relu));  // 2: e2
  add(maxpool_same(ops.back().out));
  add(conv(ops.back().out, 16 * width, 3, 1, true, relu));  // 4: e3
  add(maxpool_same(ops.back().out));
  add(resize(ops.back().out, 7, 7));
  skip(4);
  add(conv(ops.back().out, 16 * width, 3, 1, true, relu));
  add(resize(ops.back().out, 14, 14));
  skip(2);
  add(conv(ops.back().out, 32 * width, 3, 1, true, relu));
  add(resize(ops.back().out, 28, 28));
  skip(0);
  add(conv(ops.back().out, 32 * width, 3, 1, true, relu));
  add(conv(ops.back().out, 1, 3, 1, true, Activation::none));
  return chain(batch, {1, 28, 28}, ops);
}

// DnCNN-like: five ReLU convs at full size, a conv to the input's channels, the input minus it.
inline NetDesc residual_net(int batch, Dims input = {1, 28, 28}) {
  std::vector<OpDesc> ops;
  ops.push_back(conv(input, 32, 3, 1, true, Activation::relu));
  for (int k = 0; k < 4; ++k) ops.push_back(conv(ops.back().out, 32, 3, 1, true, Activation::relu));
  ops.push_back(conv(ops.back().out, input.c, 3, 1, true, Activation::none));
  ops.push_back(join(OpKind::sub, ops.back().out, OpDesc::kNetInput, input));
  return chain(batch, input, ops);
}

}  // namespace cae::ops::test_nets
