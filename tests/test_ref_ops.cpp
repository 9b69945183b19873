// The ref backend is the oracle, so it is checked against hand-computed values and against
// central finite differences, never against another backend.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <string>
#include <vector>

#include "cae/error.h"
#include "ops/ops.h"
#include "ops/ref/ref_executor.h"
#include "ops/ref/ref_kernels.h"
#include "gradient_check.h"
#include "support.h"

namespace cae::ops {
namespace {

using test::random_floats;

// Builds a chain of ops with TF 'same' / 'valid' geometry worked out from DESIGN.md §2, written
// here independently of the backend (which only ever sees explicit padding).
class NetBuilder {
 public:
  NetBuilder(int batch, Dims input) {
    net_.batch = batch;
    net_.input = input;
  }

  NetBuilder& conv(int c_out, int k, int s, bool same, Activation act, bool bias = true) {
    OpDesc op = start(OpKind::conv, k, s);
    op.out.c = c_out;
    if (same) {
      op.out.h = (op.in.h + s - 1) / s;
      op.out.w = (op.in.w + s - 1) / s;
      same_padding(op);
    } else {
      op.out.h = (op.in.h - k) / s + 1;
      op.out.w = (op.in.w - k) / s + 1;
    }
    op.act = act;
    op.bias = bias;
    return push(op);
  }

  // TF conv2d_transpose 'same': out = in * s; the padding of the equivalent forward conv.
  NetBuilder& tconv_same(int c_out, int k, int s, Activation act, bool bias = true) {
    OpDesc op = start(OpKind::tconv, k, s);
    op.out = {c_out, op.in.h * s, op.in.w * s};
    const int pad_total = k - s;
    op.pad_top = op.pad_left = pad_total / 2;
    op.pad_bottom = op.pad_right = pad_total - pad_total / 2;
    op.act = act;
    op.bias = bias;
    return push(op);
  }

  NetBuilder& tconv_valid(int c_out, int k, int s, Activation act, bool bias = true) {
    OpDesc op = start(OpKind::tconv, k, s);
    op.out = {c_out, (op.in.h - 1) * s + k, (op.in.w - 1) * s + k};
    op.act = act;
    op.bias = bias;
    return push(op);
  }

  NetBuilder& maxpool_same(int k, int s) {
    OpDesc op = start(OpKind::maxpool, k, s);
    op.out = {op.in.c, (op.in.h + s - 1) / s, (op.in.w + s - 1) / s};
    same_padding(op);
    return push(op);
  }

  NetBuilder& resize(int h, int w) {
    OpDesc op = start(OpKind::resize, 1, 1);
    op.out = {op.in.c, h, w};
    return push(op);
  }

  NetBuilder& eltwise(OpKind kind) {
    OpDesc op = start(kind, 1, 1);
    op.out = op.in;
    return push(op);
  }

  NetBuilder& batchnorm(Activation act) {
    OpDesc op = start(OpKind::batchnorm, 1, 1);
    op.out = op.in;
    op.act = act;
    return push(op);
  }

  // concat, add or sub of the last output with activation `other` (-1: the input).
  NetBuilder& join(OpKind kind, int other) {
    OpDesc op = start(kind, 1, 1);
    op.other = other;
    const Dims y = net_.act_dims(other);
    op.out = kind == OpKind::concat ? Dims{op.in.c + y.c, op.in.h, op.in.w} : op.in;
    return push(op);
  }

  NetDesc net() const { return net_; }

 private:
  OpDesc start(OpKind kind, int k, int s) const {
    OpDesc op;
    op.kind = kind;
    op.in = net_.output();
    op.kernel = k;
    op.stride = s;
    op.bias = false;
    return op;
  }

  static void same_padding(OpDesc& op) {
    const int rows = std::max((op.out.h - 1) * op.stride + op.kernel - op.in.h, 0);
    const int cols = std::max((op.out.w - 1) * op.stride + op.kernel - op.in.w, 0);
    op.pad_top = rows / 2;
    op.pad_bottom = rows - rows / 2;
    op.pad_left = cols / 2;
    op.pad_right = cols - cols / 2;
  }

  NetBuilder& push(const OpDesc& op) {
    net_.ops.push_back(op);
    return *this;
  }

  NetDesc net_;
};

std::size_t batch_size(const NetDesc& net, const Dims& d) {
  return std::size_t(net.batch) * d.size();
}

std::vector<float> run_forward(Executor& ex, const std::vector<float>& x) {
  ex.forward(x.data());
  const std::size_t n = batch_size(ex.desc(), ex.desc().output());
  return std::vector<float>(ex.output(), ex.output() + n);
}

// Sets every parameter tensor of the executor, in canonical layout.
void set_params(Executor& ex, const std::vector<std::vector<float>>& tensors) {
  ex.from_canonical(tensors, ex.params());
}

void expect_values(const std::vector<float>& found, const std::vector<float>& expected) {
  ASSERT_EQ(found.size(), expected.size());
  for (std::size_t i = 0; i < found.size(); ++i)
    EXPECT_FLOAT_EQ(found[i], expected[i]) << "at flat index " << i;
}

// ---------------------------------------------------------------------------------------------
// Hand-computed values

TEST(RefMaxPool, Same7To4PaddedCellsNeverWin) {
  const NetDesc net = NetBuilder(1, {1, 7, 7}).maxpool_same(2, 2).net();
  ASSERT_EQ(net.ops[0].out, (Dims{1, 4, 4}));
  ASSERT_EQ(net.ops[0].pad_bottom, 1);
  ASSERT_EQ(net.ops[0].pad_top, 0);
  auto ex = make_ref_executor(net);

  // All negative, falling in scan order: each window's maximum is its top-left cell, and a
  // zero-valued padded cell would beat every one of them in the last row and column.
  std::vector<float> falling(49);
  for (int i = 0; i < 49; ++i) falling[i] = -float(1 + i);
  expect_values(run_forward(*ex, falling), {-1, -3, -5, -7,      //
                                            -15, -17, -19, -21,  //
                                            -29, -31, -33, -35,  //
                                            -43, -45, -47, -49});

  // All negative, rising: each maximum is the window's last in-range cell (row/col 6 at the edge).
  std::vector<float> rising(49);
  for (int i = 0; i < 49; ++i) rising[i] = float(i) - 49.f;
  expect_values(run_forward(*ex, rising), {-41, -39, -37, -36,  //
                                           -27, -25, -23, -22,  //
                                           -13, -11, -9, -8,    //
                                           -6, -4, -2, -1});

  // Backward of the rising input: the gradient of window (p, q) lands on its winning cell.
  std::vector<float> dy(16), dx(49, -7.f);
  for (int i = 0; i < 16; ++i) dy[i] = float(i + 1);
  ex->backward(dy.data(), dx.data());
  std::vector<float> expected(49, 0.f);
  const int last[4] = {1, 3, 5, 6};
  for (int p = 0; p < 4; ++p)
    for (int q = 0; q < 4; ++q) expected[last[p] * 7 + last[q]] = float(p * 4 + q + 1);
  expect_values(dx, expected);
}

TEST(RefMaxPool, TiesGoToTheFirstCellInScanOrder) {
  const NetDesc net = NetBuilder(1, {1, 7, 7}).maxpool_same(2, 2).net();
  auto ex = make_ref_executor(net);
  const std::vector<float> flat(49, -3.f);
  expect_values(run_forward(*ex, flat), std::vector<float>(16, -3.f));
  std::vector<float> dy(16, 1.f), dx(49);
  ex->backward(dy.data(), dx.data());
  std::vector<float> expected(49, 0.f);
  for (int p = 0; p < 4; ++p)
    for (int q = 0; q < 4; ++q) expected[(2 * p) * 7 + 2 * q] = 1.f;
  expect_values(dx, expected);
}

TEST(RefResize, SourceIndexMaps) {
  const auto map = [](int in, int out) {
    std::vector<int> m;
    for (int d = 0; d < out; ++d) m.push_back(ref::resize_source(d, in, out));
    return m;
  };
  EXPECT_EQ(map(4, 7), (std::vector<int>{0, 0, 1, 1, 2, 2, 3}));
  EXPECT_EQ(map(7, 4), (std::vector<int>{0, 1, 3, 5}));
  EXPECT_EQ(map(7, 14), (std::vector<int>{0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6}));
  EXPECT_EQ(map(14, 7), (std::vector<int>{0, 2, 4, 6, 8, 10, 12}));
  EXPECT_EQ(map(5, 3), (std::vector<int>{0, 1, 3}));
  EXPECT_EQ(map(3, 3), (std::vector<int>{0, 1, 2}));
}

TEST(RefResize, Forward4To7AndBackwardSums) {
  // Two channels, 4 rows x 5 columns -> 7 x 3: rows map {0,0,1,1,2,2,3}, columns {0,1,3}.
  const NetDesc net = NetBuilder(1, {2, 4, 5}).resize(7, 3).net();
  auto ex = make_ref_executor(net);
  std::vector<float> x(40);
  for (int c = 0; c < 2; ++c)
    for (int h = 0; h < 4; ++h)
      for (int w = 0; w < 5; ++w) x[(c * 4 + h) * 5 + w] = float(100 * c + 10 * h + w);
  const int rows[7] = {0, 0, 1, 1, 2, 2, 3}, cols[3] = {0, 1, 3};
  std::vector<float> expected;
  for (int c = 0; c < 2; ++c)
    for (int p = 0; p < 7; ++p)
      for (int q = 0; q < 3; ++q) expected.push_back(float(100 * c + 10 * rows[p] + cols[q]));
  expect_values(run_forward(*ex, x), expected);

  // A gradient of ones comes back as the number of output cells reading each input cell:
  // rows are read {2,2,2,1} times, columns {1,1,0,1,0}.
  std::vector<float> dy(42, 1.f), dx(40, -1.f);
  ex->backward(dy.data(), dx.data());
  const int row_count[4] = {2, 2, 2, 1}, col_count[5] = {1, 1, 0, 1, 0};
  std::vector<float> counts;
  for (int c = 0; c < 2; ++c)
    for (int h = 0; h < 4; ++h)
      for (int w = 0; w < 5; ++w) counts.push_back(float(row_count[h] * col_count[w]));
  expect_values(dx, counts);
}

TEST(RefResize, Forward7To4PicksCells) {
  const NetDesc net = NetBuilder(1, {1, 7, 7}).resize(4, 4).net();
  auto ex = make_ref_executor(net);
  std::vector<float> x(49);
  for (int i = 0; i < 49; ++i) x[i] = float(i);
  const int src[4] = {0, 1, 3, 5};
  std::vector<float> expected;
  for (int p = 0; p < 4; ++p)
    for (int q = 0; q < 4; ++q) expected.push_back(float(src[p] * 7 + src[q]));
  expect_values(run_forward(*ex, x), expected);
}

TEST(RefConv, TinyValidConvByHand) {
  // Two input channels 3x3, two output channels, 2x2 kernel, stride 1, 'valid' -> 2x2.
  const NetDesc net = NetBuilder(1, {2, 3, 3}).conv(2, 2, 1, false, Activation::none).net();
  auto ex = make_ref_executor(net);
  // Weights OIHW: out 0 = [[1,2],[3,4]] * ch0 + [[10,0],[0,100]] * ch1, bias 0.5;
  //               out 1 = [[0,0],[0,-1]] * ch0, bias 6.5.
  set_params(*ex, {{1, 2, 3, 4, 10, 0, 0, 100, 0, 0, 0, -1, 0, 0, 0, 0}, {0.5f, 6.5f}});
  const std::vector<float> x = {1, 2, 3, 4, 5, 6, 7, 8, 9,   // channel 0
                                1, 0, 0, 0, 1, 0, 0, 0, 1};  // channel 1: identity
  // out0(0,0) = 1+4+12+20 + 10+100 + .5 = 147.5; out0(0,1) = 2+6+15+24 + .5 = 47.5;
  // out0(1,0) = 4+10+21+32 + .5 = 67.5;         out0(1,1) = 5+12+24+36 + 10+100 + .5 = 187.5;
  // out1(p,q) = 6.5 - ch0(p+1,q+1) = 1.5, 0.5, -1.5, -2.5.
  expect_values(run_forward(*ex, x), {147.5f, 47.5f, 67.5f, 187.5f, 1.5f, 0.5f, -1.5f, -2.5f});

  NetDesc relu_net = net;
  relu_net.ops[0].act = Activation::relu;
  auto relu_ex = make_ref_executor(relu_net);
  set_params(*relu_ex, {{1, 2, 3, 4, 10, 0, 0, 100, 0, 0, 0, -1, 0, 0, 0, 0}, {0.5f, 6.5f}});
  expect_values(run_forward(*relu_ex, x), {147.5f, 47.5f, 67.5f, 187.5f, 1.5f, 0.5f, 0, 0});
}

TEST(RefConv, WeightsAreOihw) {
  // A 3x3 'valid' conv on a 3x3 input has one output cell per channel: out[o] = sum w[o] * x.
  const NetDesc net = NetBuilder(1, {2, 3, 3}).conv(3, 3, 1, false, Activation::none, false).net();
  auto ex = make_ref_executor(net);
  std::vector<float> w(3 * 2 * 9, 0.f);
  w[((2 * 2 + 1) * 3 + 0) * 3 + 2] = 1.f;  // o = 2, c = 1, ky = 0, kx = 2
  set_params(*ex, {w});
  std::vector<float> x(18, 0.f);
  x[(1 * 3 + 0) * 3 + 2] = 5.f;  // c = 1, h = 0, w = 2
  expect_values(run_forward(*ex, x), {0, 0, 5});
}

TEST(RefConv, SameStride2OnOddAndEvenSizes) {
  // 7 -> 4: pad_total = 3*2 + 3 - 7 = 2, one before and one after. With all-ones input and
  // kernel each output counts its window's in-range cells: rows -1..1, 1..3, 3..5, 5..7.
  {
    const NetDesc net = NetBuilder(1, {1, 7, 7}).conv(1, 3, 2, true, Activation::none, false).net();
    ASSERT_EQ(net.ops[0].out, (Dims{1, 4, 4}));
    ASSERT_EQ(net.ops[0].pad_top, 1);
    ASSERT_EQ(net.ops[0].pad_bottom, 1);
    auto ex = make_ref_executor(net);
    set_params(*ex, {std::vector<float>(9, 1.f)});
    const int r[4] = {2, 3, 3, 2};
    std::vector<float> expected;
    for (int p = 0; p < 4; ++p)
      for (int q = 0; q < 4; ++q) expected.push_back(float(r[p] * r[q]));
    expect_values(run_forward(*ex, std::vector<float>(49, 1.f)), expected);
  }
  // 8 -> 4: pad_total = 1, all of it after: windows 0..2, 2..4, 4..6, 6..8.
  {
    const NetDesc net = NetBuilder(1, {1, 8, 8}).conv(1, 3, 2, true, Activation::none, false).net();
    ASSERT_EQ(net.ops[0].pad_top, 0);
    ASSERT_EQ(net.ops[0].pad_bottom, 1);
    auto ex = make_ref_executor(net);
    set_params(*ex, {std::vector<float>(9, 1.f)});
    const int r[4] = {3, 3, 3, 2};
    std::vector<float> expected;
    for (int p = 0; p < 4; ++p)
      for (int q = 0; q < 4; ++q) expected.push_back(float(r[p] * r[q]));
    expect_values(run_forward(*ex, std::vector<float>(64, 1.f)), expected);
  }
}

TEST(RefConv, ValidStride2) {
  // 7 -> 3, windows start at 0, 2, 4. The input is the cell index, which is linear in (h, w), so
  // a window of ones sums to 9 times its centre (2p+1, 2q+1); bias 1 is added.
  const NetDesc net = NetBuilder(1, {1, 7, 7}).conv(1, 3, 2, false, Activation::none).net();
  ASSERT_EQ(net.ops[0].out, (Dims{1, 3, 3}));
  auto ex = make_ref_executor(net);
  set_params(*ex, {std::vector<float>(9, 1.f), {1.f}});
  std::vector<float> x(49);
  for (int i = 0; i < 49; ++i) x[i] = float(i);
  std::vector<float> expected;
  for (int p = 0; p < 3; ++p)
    for (int q = 0; q < 3; ++q) expected.push_back(9.f * float((2 * p + 1) * 7 + 2 * q + 1) + 1.f);
  expect_values(run_forward(*ex, x), expected);
}

TEST(RefTconv, Kernel2Stride2TilesBlocks) {
  // 2x2 -> 4x4: each input cell stamps the kernel scaled by itself onto its own 2x2 block.
  const NetDesc net = NetBuilder(1, {1, 2, 2}).tconv_valid(1, 2, 2, Activation::none).net();
  ASSERT_EQ(net.ops[0].out, (Dims{1, 4, 4}));
  auto ex = make_ref_executor(net);
  set_params(*ex, {{1, 10, 100, 1000}, {0.5f}});
  expect_values(run_forward(*ex, {1, 2, 3, 4}), {1.5f, 10.5f, 2.5f, 20.5f,          //
                                                 100.5f, 1000.5f, 200.5f, 2000.5f,  //
                                                 3.5f, 30.5f, 4.5f, 40.5f,          //
                                                 300.5f, 3000.5f, 400.5f, 4000.5f});
}

TEST(RefTconv, PaddingCropsTheLeadingRows) {
  // The Kernel2Stride2 case with pad_top 1: output row t = 2h - 1 + ky, so the first row of the
  // uncropped 4x4 result falls off and 3x4 remain.
  NetDesc net = NetBuilder(1, {1, 2, 2}).tconv_valid(1, 2, 2, Activation::none).net();
  net.ops[0].pad_top = 1;
  net.ops[0].out = {1, 3, 4};
  auto ex = make_ref_executor(net);
  set_params(*ex, {{1, 10, 100, 1000}, {0.5f}});
  expect_values(run_forward(*ex, {1, 2, 3, 4}), {100.5f, 1000.5f, 200.5f, 2000.5f,  //
                                                 3.5f, 30.5f, 4.5f, 40.5f,          //
                                                 300.5f, 3000.5f, 400.5f, 4000.5f});
}

TEST(RefTconv, SameKernel3Stride2) {
  // TF 'same', k 3, s 2: pad 0 before, 1 after, 2x2 -> 4x4. Input row h covers output rows
  // 2h..2h+2 (row 4 cropped), so output rows take input rows {0}, {0}, {0,1}, {1}; same for
  // columns. With a kernel of ones each output is the sum of the input cells covering it.
  const NetDesc net = NetBuilder(1, {1, 2, 2}).tconv_same(1, 3, 2, Activation::none).net();
  ASSERT_EQ(net.ops[0].out, (Dims{1, 4, 4}));
  ASSERT_EQ(net.ops[0].pad_top, 0);
  ASSERT_EQ(net.ops[0].pad_bottom, 1);
  auto ex = make_ref_executor(net);
  set_params(*ex, {std::vector<float>(9, 1.f), {0.f}});
  expect_values(run_forward(*ex, {1, 2, 3, 4}), {1, 1, 3, 2,   //
                                                 1, 1, 3, 2,   //
                                                 4, 4, 10, 6,  //
                                                 3, 3, 7, 4});
}

TEST(RefTconv, WeightsAreIohw) {
  // A 1x1 input through a 3x3 'valid' tconv paints the kernel: out[o][ky][kx] = w[c][o][ky][kx]*x.
  const NetDesc net = NetBuilder(1, {2, 1, 1}).tconv_valid(3, 3, 1, Activation::none, false).net();
  auto ex = make_ref_executor(net);
  std::vector<float> w(2 * 3 * 9, 0.f);
  w[((1 * 3 + 2) * 3 + 0) * 3 + 2] = 1.f;  // c = 1, o = 2, ky = 0, kx = 2
  set_params(*ex, {w});
  std::vector<float> expected(27, 0.f);
  expected[(2 * 3 + 0) * 3 + 2] = 5.f;
  expect_values(run_forward(*ex, {0.f, 5.f}), expected);
}

TEST(RefEltwise, ReluAndSigmoidValues) {
  const std::vector<float> x = {-2.f, -0.f, 0.5f, 3.f};
  auto relu = make_ref_executor(NetBuilder(1, {1, 2, 2}).eltwise(OpKind::relu).net());
  expect_values(run_forward(*relu, x), {0, 0, 0.5f, 3});
  auto sigmoid = make_ref_executor(NetBuilder(1, {1, 2, 2}).eltwise(OpKind::sigmoid).net());
  expect_values(run_forward(*sigmoid, x), {0.11920292f, 0.5f, 0.62245933f, 0.95257413f});
  // Backward uses the forward output: relu passes where y > 0, sigmoid scales by y (1 - y).
  std::vector<float> dy = {1, 1, 1, 1}, dx(4);
  relu->forward(x.data());
  relu->backward(dy.data(), dx.data());
  expect_values(dx, {0, 0, 1, 1});
  sigmoid->forward(x.data());
  sigmoid->backward(dy.data(), dx.data());
  expect_values(dx, {0.10499359f, 0.25f, 0.23500371f, 0.04517666f});
}

// ---------------------------------------------------------------------------------------------
// Finite-difference gradient checks

void expect_gradients_match(const NetDesc& net, std::uint64_t seed = 7) {
  auto ex = make_ref_executor(net);
  const test::GradCheckResult r = test::check_gradients(*ex, seed, {.tolerance = 2e-3});
  for (const std::string& f : r.failures) ADD_FAILURE() << f;
  const int total = r.checked + r.skipped;
  // A check that skipped most elements would prove nothing.
  EXPECT_GE(r.checked, total * 4 / 5) << r.skipped << " of " << total << " skipped at kinks";
  EXPECT_GT(r.checked, 0);
  ::testing::Test::RecordProperty("worst_relative_error", std::to_string(r.worst));
  ::testing::Test::RecordProperty("skipped_at_kinks",
                                  std::to_string(r.skipped) + " of " + std::to_string(total));
}

constexpr Activation none = Activation::none, relu = Activation::relu,
                     sigmoid = Activation::sigmoid;

TEST(RefGradient, ConvSameStride1Relu) {
  expect_gradients_match(NetBuilder(2, {3, 5, 5}).conv(5, 3, 1, true, relu).net());
}
TEST(RefGradient, ConvSameStride2SigmoidOddSize) {
  expect_gradients_match(NetBuilder(2, {3, 7, 7}).conv(5, 3, 2, true, sigmoid).net());
}
TEST(RefGradient, ConvSameStride2EvenSizeNoBias) {
  expect_gradients_match(NetBuilder(2, {3, 8, 6}).conv(5, 3, 2, true, none, false).net());
}
TEST(RefGradient, ConvValidStride1NoActivation) {
  expect_gradients_match(NetBuilder(2, {5, 6, 5}).conv(3, 3, 1, false, none).net());
}
TEST(RefGradient, ConvValidStride2ReluNoBias) {
  expect_gradients_match(NetBuilder(2, {3, 7, 7}).conv(5, 3, 2, false, relu, false).net());
}
TEST(RefGradient, ConvSameStride1SigmoidNoBias) {
  expect_gradients_match(NetBuilder(2, {1, 5, 4}).conv(3, 3, 1, true, sigmoid, false).net());
}
TEST(RefGradient, TconvSameStride2Relu) {
  expect_gradients_match(NetBuilder(2, {3, 3, 4}).tconv_same(5, 3, 2, relu).net());
}
TEST(RefGradient, TconvSameStride2SigmoidNoBias) {
  expect_gradients_match(NetBuilder(2, {5, 3, 3}).tconv_same(3, 3, 2, sigmoid, false).net());
}
TEST(RefGradient, TconvSameKernel4Stride2) {
  // pad 1 before and 1 after: exercises the leading crop that k 3, s 2 does not have.
  expect_gradients_match(NetBuilder(2, {3, 3, 2}).tconv_same(5, 4, 2, relu).net());
}
TEST(RefGradient, TconvSameStride1NoBias) {
  expect_gradients_match(NetBuilder(2, {5, 4, 3}).tconv_same(3, 3, 1, sigmoid, false).net());
}
TEST(RefGradient, TconvValidStride2NoActivation) {
  expect_gradients_match(NetBuilder(2, {3, 2, 3}).tconv_valid(5, 2, 2, none).net());
}
TEST(RefGradient, TconvValidStride1) {
  expect_gradients_match(NetBuilder(2, {3, 3, 3}).tconv_valid(5, 3, 1, none).net());
}
TEST(RefGradient, MaxPoolSame7To4) {
  expect_gradients_match(NetBuilder(2, {3, 7, 7}).maxpool_same(2, 2).net());
}
TEST(RefGradient, MaxPoolSame8To4) {
  expect_gradients_match(NetBuilder(2, {5, 8, 8}).maxpool_same(2, 2).net());
}
TEST(RefGradient, MaxPoolOverlappingWindows) {
  // k 3, s 1, 'same': windows overlap, so a cell can win several and collect their sum.
  expect_gradients_match(NetBuilder(2, {3, 5, 6}).maxpool_same(3, 1).net());
}
TEST(RefGradient, Resize4To7) {
  expect_gradients_match(NetBuilder(2, {3, 4, 4}).resize(7, 7).net());
}
TEST(RefGradient, Resize7To14) {
  expect_gradients_match(NetBuilder(2, {3, 7, 7}).resize(14, 14).net());
}
TEST(RefGradient, Resize14To7) {
  expect_gradients_match(NetBuilder(2, {3, 14, 14}).resize(7, 7).net());
}
TEST(RefGradient, ResizeMixedAxes) {
  expect_gradients_match(NetBuilder(2, {5, 4, 7}).resize(7, 4).net());
}
TEST(RefGradient, Relu) {
  expect_gradients_match(NetBuilder(2, {3, 5, 5}).eltwise(OpKind::relu).net());
}
TEST(RefGradient, Sigmoid) {
  expect_gradients_match(NetBuilder(2, {3, 5, 5}).eltwise(OpKind::sigmoid).net());
}
TEST(RefGradient, SmallAutoencoderChain) {
  // The seed model's shape in miniature: encoder with 'same' pools 7 -> 4, decoder with the
  // 4 -> 7 resize, a transposed conv and a sigmoid on the logits.
  const NetDesc net = NetBuilder(2, {1, 7, 7})
                          .conv(3, 3, 1, true, relu)
                          .maxpool_same(2, 2)
                          .conv(5, 3, 1, true, relu)
                          .resize(7, 7)
                          .tconv_same(3, 3, 2, relu)
                          .conv(1, 3, 1, true, none)
                          .eltwise(OpKind::sigmoid)
                          .net();
  expect_gradients_match(net);
}

// Joins: each operand's gradient, the skip's summed into the chain's at the activation it reads.
TEST(RefGradient, ConcatAfterConvs) {
  expect_gradients_match(NetBuilder(2, {2, 5, 4})
                             .conv(3, 3, 1, true, relu)
                             .conv(4, 3, 1, true, none)
                             .join(OpKind::concat, 0)
                             .conv(2, 3, 1, true, none)
                             .net());
}
TEST(RefGradient, ConcatWithTheInput) {
  expect_gradients_match(NetBuilder(2, {2, 4, 4})
                             .conv(3, 3, 1, true, sigmoid)
                             .conv(3, 1, 1, true, none)
                             .join(OpKind::concat, -1)
                             .conv(1, 3, 1, true, none)
                             .net());
}
TEST(RefGradient, AddSkip) {
  expect_gradients_match(NetBuilder(2, {3, 5, 5})
                             .conv(3, 3, 1, true, none)
                             .conv(3, 3, 1, true, relu)
                             .join(OpKind::add, 0)
                             .conv(3, 1, 1, true, none)
                             .net());
}
TEST(RefGradient, SubFromTheInputAsTheLastOp) {
  expect_gradients_match(NetBuilder(2, {1, 6, 5})
                             .conv(4, 3, 1, true, relu)
                             .conv(1, 3, 1, true, none)
                             .join(OpKind::sub, -1)
                             .net());
}
TEST(RefGradient, UnetInMiniatureTwoReadersOfOneActivation) {
  // e0 is read by the pool after it and by two joins (concat and add), with a 7 -> 4 -> 7 trip.
  const NetDesc net = NetBuilder(2, {1, 7, 7})
                          .conv(2, 3, 1, true, relu)  // 0: e0
                          .maxpool_same(2, 2)
                          .conv(2, 3, 1, true, relu)
                          .resize(7, 7)
                          .join(OpKind::concat, 0)  // 4
                          .conv(2, 3, 1, true, none)
                          .join(OpKind::add, 0)  // 6
                          .conv(1, 3, 1, true, none)
                          .net();
  expect_gradients_match(net);
}

// Batch normalisation: the statistics depend on every input of the channel, so each input's
// gradient has the terms through the mean and the variance; small batches make them count.
TEST(RefGradient, BatchnormAfterConvRelu) {
  expect_gradients_match(NetBuilder(2, {2, 5, 4})
                             .conv(3, 3, 1, false, none)
                             .batchnorm(relu)
                             .conv(2, 3, 1, true, none)
                             .net());
}
TEST(RefGradient, BatchnormLinearAfterTconvInAJoin) {
  expect_gradients_match(NetBuilder(3, {2, 3, 3})
                             .conv(3, 3, 1, true, relu)
                             .tconv_same(3, 3, 2, none, false)
                             .batchnorm(none)
                             .resize(3, 3)
                             .join(OpKind::add, 0)
                             .conv(1, 1, 1, true, none)
                             .net());
}

TEST(RefJoin, ForwardValues) {
  // Per image: x = {1, 2 | 3, 4} (2 channels of 1x2 after a k1 conv that copies), y = input.
  OpDesc copy;
  copy.kind = OpKind::conv;
  copy.in = copy.out = {1, 1, 2};
  copy.bias = false;
  NetDesc net{2, {1, 1, 2}, {copy}};
  OpDesc twice = copy;
  net.ops.push_back(twice);
  OpDesc cat;
  cat.kind = OpKind::concat;
  cat.in = {1, 1, 2};
  cat.out = {2, 1, 2};
  cat.other = -1;
  net.ops.push_back(cat);
  auto ex = make_ref_executor(net);
  ex->params()[0] = 2.f;  // op 0: x * 2
  ex->params()[1] = 3.f;  // op 1: x * 6
  const std::vector<float> x = {1, 2, 3, 4};
  expect_values(run_forward(*ex, x), {6, 12, 1, 2, 18, 24, 3, 4});
  net.ops[2].kind = OpKind::sub;
  net.ops[2].out = {1, 1, 2};
  auto sub = make_ref_executor(net);
  sub->params()[0] = 2.f;
  sub->params()[1] = 3.f;
  expect_values(run_forward(*sub, x), {-5, -10, -15, -20});
}

// ---------------------------------------------------------------------------------------------
// Executor contract

TEST(RefExecutor, BackwardOverwritesGradients) {
  const NetDesc net = NetBuilder(2, {3, 5, 5}).conv(5, 3, 1, true, relu).maxpool_same(2, 2).net();
  auto ex = make_ref_executor(net);
  const std::vector<float> p = random_floats(ex->params().size(), 3);
  std::copy(p.begin(), p.end(), ex->params().begin());
  const std::vector<float> x = random_floats(batch_size(net, net.input), 4);
  std::vector<float> g = random_floats(batch_size(net, net.output()), 5);
  ex->forward(x.data());
  ex->backward(g.data(), nullptr);
  const std::vector<float> first(ex->grads().begin(), ex->grads().end());
  // The backward pass is linear in d_output and doubling is exact in binary floating point, so
  // overwriting gives exactly twice the first gradients (accumulating would give three times).
  for (float& v : g) v *= 2.f;
  ex->backward(g.data(), nullptr);
  const std::vector<float> second(ex->grads().begin(), ex->grads().end());
  ASSERT_EQ(first.size(), second.size());
  for (std::size_t i = 0; i < first.size(); ++i) EXPECT_EQ(second[i], 2.f * first[i]) << i;
  EXPECT_NE(*std::max_element(first.begin(), first.end()), 0.f);
}

TEST(RefExecutor, BatchImagesAreIndependent) {
  // Large enough that every kernel takes its OpenMP path at batch 4; batch 1 runs serially.
  const auto build = [](int batch) {
    return NetBuilder(batch, {3, 32, 32})
        .conv(16, 3, 1, true, relu)
        .maxpool_same(2, 2)
        .resize(32, 32)
        .tconv_same(3, 3, 1, sigmoid)
        .net();
  };
  const int batch = 4;
  auto all = make_ref_executor(build(batch));
  auto one = make_ref_executor(build(1));
  const std::vector<float> p = random_floats(all->params().size(), 31, -0.3f, 0.3f);
  std::copy(p.begin(), p.end(), all->params().begin());
  std::copy(p.begin(), p.end(), one->params().begin());
  const std::size_t in_size = 3 * 32 * 32, out_size = 3 * 32 * 32;
  const std::vector<float> x = random_floats(batch * in_size, 32);
  const std::vector<float> g = random_floats(batch * out_size, 33);
  std::vector<float> dx(x.size()), dx_one(in_size);
  all->forward(x.data());
  all->backward(g.data(), dx.data());
  std::vector<double> grad_sum(p.size(), 0.0);
  for (int n = 0; n < batch; ++n) {
    one->forward(x.data() + n * in_size);
    one->backward(g.data() + n * out_size, dx_one.data());
    // Per image the same loops run in the same order, so the results are bit-identical.
    for (std::size_t i = 0; i < out_size; ++i)
      ASSERT_EQ(all->output()[n * out_size + i], one->output()[i]) << "image " << n << ", " << i;
    for (std::size_t i = 0; i < in_size; ++i)
      ASSERT_EQ(dx[n * in_size + i], dx_one[i]) << "image " << n << ", " << i;
    for (std::size_t i = 0; i < p.size(); ++i) grad_sum[i] += one->grads()[i];
  }
  for (std::size_t i = 0; i < p.size(); ++i)
    EXPECT_NEAR(all->grads()[i], grad_sum[i], 1e-5 * std::max(1.0, std::abs(grad_sum[i]))) << i;
}

TEST(RefExecutor, ReadActivationGivesEachOpsOutput) {
  const NetDesc net =
      NetBuilder(2, {3, 4, 4}).conv(5, 3, 1, true, none).eltwise(OpKind::relu).resize(7, 7).net();
  auto ex = make_ref_executor(net);
  const std::vector<float> p = random_floats(ex->params().size(), 11);
  std::copy(p.begin(), p.end(), ex->params().begin());
  const std::vector<float> x = random_floats(batch_size(net, net.input), 12);
  ex->forward(x.data());
  std::vector<float> conv_out(batch_size(net, net.ops[0].out)), relu_out(conv_out.size()),
      resize_out(batch_size(net, net.ops[2].out));
  ex->read_activation(0, conv_out.data());
  ex->read_activation(1, relu_out.data());
  ex->read_activation(2, resize_out.data());
  int positive = 0;
  for (std::size_t i = 0; i < conv_out.size(); ++i) {
    EXPECT_EQ(relu_out[i], std::max(conv_out[i], 0.f)) << i;
    positive += conv_out[i] > 0.f;
  }
  EXPECT_GT(positive, 0);
  EXPECT_LT(positive, int(conv_out.size()));
  expect_values(resize_out, std::vector<float>(ex->output(), ex->output() + resize_out.size()));
  EXPECT_THROW(ex->read_activation(3, resize_out.data()), Error);
  EXPECT_THROW(ex->read_activation(-1, resize_out.data()), Error);
}

TEST(RefExecutor, CanonicalRoundTrip) {
  const NetDesc net = NetBuilder(1, {3, 6, 6})
                          .conv(5, 3, 1, true, relu)
                          .maxpool_same(2, 2)
                          .conv(4, 3, 1, true, relu, false)
                          .tconv_same(2, 3, 2, none)
                          .net();
  auto ex = make_ref_executor(net);
  // conv 0 weight + bias, conv 2 weight only, tconv 3 weight (IOHW 4x2x3x3) + bias.
  const std::vector<std::size_t> sizes = {5 * 3 * 9, 5, 4 * 5 * 9, 4 * 2 * 9, 2};
  ASSERT_EQ(ex->params().size(), 135u + 5 + 180 + 72 + 2);
  ASSERT_EQ(ex->grads().size(), ex->params().size());

  std::vector<std::vector<float>> tensors;
  for (std::size_t t = 0; t < sizes.size(); ++t) tensors.push_back(random_floats(sizes[t], 20 + t));
  ex->from_canonical(tensors, ex->params());
  EXPECT_EQ(ex->to_canonical(ex->params()), tensors);
  // The ref layout is canonical: the flat buffer is the tensors back to back.
  std::vector<float> joined;
  for (const auto& t : tensors) joined.insert(joined.end(), t.begin(), t.end());
  EXPECT_TRUE(std::equal(joined.begin(), joined.end(), ex->params().begin()));

  std::vector<float> short_flat(ex->params().size() - 1);
  EXPECT_THROW(ex->to_canonical(short_flat), Error);
  EXPECT_THROW(ex->from_canonical(tensors, short_flat), Error);
  auto missing = tensors;
  missing.pop_back();
  EXPECT_THROW(ex->from_canonical(missing, ex->params()), Error);
  auto wrong = tensors;
  wrong[2].push_back(0.f);
  try {
    ex->from_canonical(wrong, ex->params());
    ADD_FAILURE() << "a tensor of the wrong size was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("op 2 weight size expected 180, found 181"),
              std::string::npos)
        << e.what();
  }
}

TEST(RefExecutor, SeedModelValidates) {
  // DESIGN.md §1: the 13 layers of the seed model, 28x28x1 -> 4x4x16 latent -> 28x28x1 logits.
  const NetDesc net = NetBuilder(2, {1, 28, 28})
                          .conv(32, 3, 1, true, relu)
                          .maxpool_same(2, 2)
                          .conv(32, 3, 1, true, relu)
                          .maxpool_same(2, 2)
                          .conv(16, 3, 1, true, relu)
                          .maxpool_same(2, 2)
                          .resize(7, 7)
                          .conv(16, 3, 1, true, relu)
                          .resize(14, 14)
                          .conv(32, 3, 1, true, relu)
                          .resize(28, 28)
                          .conv(32, 3, 1, true, relu)
                          .conv(1, 3, 1, true, none)
                          .net();
  ASSERT_EQ(net.ops[5].out, (Dims{16, 4, 4}));
  auto ex = make_ref_executor(net);
  // 320 + 9248 + 4624 + 2320 + 4640 + 9248 + 289 weights and biases.
  EXPECT_EQ(ex->params().size(), 30689u);
  const std::vector<float> x(batch_size(net, net.input), 0.5f);
  ex->forward(x.data());  // zero parameters: every logit is exactly zero
  for (std::size_t i = 0; i < batch_size(net, net.output()); ++i) ASSERT_EQ(ex->output()[i], 0.f);
}

// Expects make_ref_executor(net) to throw an Error whose message contains every fragment.
void expect_rejected(const NetDesc& net, const std::vector<std::string>& fragments) {
  try {
    make_ref_executor(net);
    ADD_FAILURE() << "accepted a bad net, expected: " << fragments.front();
  } catch (const Error& e) {
    for (const std::string& f : fragments)
      EXPECT_NE(std::string(e.what()).find(f), std::string::npos)
          << "message '" << e.what() << "' lacks '" << f << "'";
  }
}

TEST(RefExecutor, RejectsBadNets) {
  const NetDesc good = NetBuilder(2, {3, 7, 7})
                           .conv(5, 3, 1, true, relu)
                           .maxpool_same(2, 2)
                           .resize(7, 7)
                           .tconv_same(3, 3, 2, none)
                           .net();
  EXPECT_NO_THROW(make_ref_executor(good));

  NetDesc broken_chain = good;
  broken_chain.ops[2].in = {5, 3, 4};
  expect_rejected(broken_chain, {"op 2", "resize", "expected 5x4x4", "found 5x3x4"});

  NetDesc wrong_conv = good;
  wrong_conv.ops[0].pad_bottom = 0;  // 'same' needs 2 padding rows for 7 -> 7
  expect_rejected(wrong_conv, {"op 0", "conv", "expected 5x6x7", "found 5x7x7"});

  NetDesc pool_channels = good;
  pool_channels.ops[1].out.c = 4;
  expect_rejected(pool_channels, {"op 1", "maxpool", "expected 5x4x4", "found 4x4x4"});

  NetDesc pool_padding = NetBuilder(1, {1, 4, 4}).maxpool_same(2, 2).net();
  pool_padding.ops[0].pad_top = pool_padding.ops[0].pad_bottom = 2;
  pool_padding.ops[0].out = {1, 4, 4};
  expect_rejected(pool_padding, {"op 0", "padding must be smaller than the kernel 2"});

  NetDesc wrong_tconv = good;
  wrong_tconv.ops[3].pad_bottom = 0;
  expect_rejected(wrong_tconv, {"op 3", "tconv", "expected 3x15x14", "found 3x14x14"});

  NetDesc zero_stride = good;
  zero_stride.ops[0].stride = 0;
  expect_rejected(zero_stride, {"op 0", "stride 0"});

  NetDesc pool_activation = good;
  pool_activation.ops[1].act = relu;
  expect_rejected(pool_activation, {"op 1", "activation"});

  NetDesc relu_shape = NetBuilder(1, {3, 4, 4}).eltwise(OpKind::relu).net();
  relu_shape.ops[0].out.h = 5;
  expect_rejected(relu_shape, {"op 0", "relu", "expected 3x4x4", "found 3x5x4"});

  NetDesc no_batch = good;
  no_batch.batch = 0;
  expect_rejected(no_batch, {"batch", "found 0"});

  NetDesc empty;
  empty.input = {1, 2, 2};
  expect_rejected(empty, {"no ops"});

  NetDesc negative = NetBuilder(1, {3, 4, 4}).resize(0, 4).net();
  expect_rejected(negative, {"op 0", "positive", "3x0x4"});
}

TEST(RefExecutor, BackwardBeforeForwardThrows) {
  auto ex = make_ref_executor(NetBuilder(1, {1, 2, 2}).eltwise(OpKind::relu).net());
  std::vector<float> dy(4, 1.f);
  EXPECT_THROW(ex->backward(dy.data(), nullptr), Error);
}

}  // namespace
}  // namespace cae::ops
