// The architecture spec parser and the shape logic of build_net (DESIGN.md §1 and §2).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "cae/error.h"
#include "nn/spec.h"

using namespace cae;
using ::testing::HasSubstr;

namespace {

std::string error_of(const std::string& text) {
  try {
    nn::parse_spec(text);
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

std::string build_error_of(const std::string& text, ops::Dims input) {
  try {
    nn::build_net(nn::parse_spec(text), input, 1);
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

}  // namespace

TEST(Spec, SeedPresetHasTheTutorialsShapes) {
  ops::NetDesc net = nn::build_net(nn::parse_spec(nn::preset_spec("seed")), {1, 28, 28}, 200);
  // DESIGN.md §1, the table's output column.
  const ops::Dims expected[] = {{32, 28, 28}, {32, 14, 14}, {32, 14, 14}, {32, 7, 7},
                                {16, 7, 7},   {16, 4, 4},   {16, 7, 7},   {16, 7, 7},
                                {16, 14, 14}, {32, 14, 14}, {32, 28, 28}, {32, 28, 28},
                                {1, 28, 28}};
  ASSERT_EQ(net.ops.size(), 13u);
  EXPECT_EQ(net.batch, 200);
  for (int i = 0; i < 13; ++i) EXPECT_EQ(net.ops[i].out, expected[i]) << "layer " << i + 1;
  // conv 3×3 'same' stride 1: one cell each side.
  EXPECT_EQ(net.ops[0].kind, ops::OpKind::conv);
  EXPECT_EQ(net.ops[0].pad_top, 1);
  EXPECT_EQ(net.ops[0].pad_bottom, 1);
  EXPECT_EQ(net.ops[0].act, ops::Activation::relu);
  // max-pool 2×2 s2 'same' 7 → 4: pad_total 1, all of it after.
  EXPECT_EQ(net.ops[5].kind, ops::OpKind::maxpool);
  EXPECT_EQ(net.ops[5].pad_top, 0);
  EXPECT_EQ(net.ops[5].pad_bottom, 1);
  EXPECT_EQ(net.ops[5].pad_right, 1);
  // 28 → 14 needs no padding.
  EXPECT_EQ(net.ops[1].pad_bottom, 0);
  // The logits layer has no activation and one output channel.
  EXPECT_EQ(net.ops[12].act, ops::Activation::none);
  EXPECT_EQ(net.ops[6].kind, ops::OpKind::resize);
}

TEST(Spec, SeedTconvPaddingFollowsTfConv2dTranspose) {
  ops::NetDesc net =
      nn::build_net(nn::parse_spec(nn::preset_spec("seed-tconv")), {1, 28, 28}, 1);
  ASSERT_EQ(net.ops.size(), 10u);
  // 4 → 7: the forward conv 7 → 4 ('same', k3 s2) pads 1 and 1.
  EXPECT_EQ(net.ops[6].kind, ops::OpKind::tconv);
  EXPECT_EQ(net.ops[6].out, (ops::Dims{16, 7, 7}));
  EXPECT_EQ(net.ops[6].pad_top, 1);
  EXPECT_EQ(net.ops[6].pad_bottom, 1);
  // 7 → 14 and 14 → 28: TF 'same', 0 before, 1 after.
  EXPECT_EQ(net.ops[7].out, (ops::Dims{32, 14, 14}));
  EXPECT_EQ(net.ops[7].pad_top, 0);
  EXPECT_EQ(net.ops[7].pad_bottom, 1);
  EXPECT_EQ(net.ops[8].out, (ops::Dims{32, 28, 28}));
  EXPECT_EQ(net.ops[9].out, (ops::Dims{1, 28, 28}));
}

TEST(Spec, PresetsAdaptToTheInputShape) {
  ops::NetDesc net = nn::build_net(nn::parse_spec(nn::preset_spec("seed")), {3, 30, 21}, 2);
  EXPECT_EQ(net.ops[5].out, (ops::Dims{16, 4, 3}));  // 30→15→8→4, 21→11→6→3
  EXPECT_EQ(net.ops[6].out, (ops::Dims{16, 8, 6}));
  EXPECT_EQ(net.ops.back().out, (ops::Dims{3, 30, 21}));
  ops::NetDesc t = nn::build_net(nn::parse_spec(nn::preset_spec("seed-tconv")), {3, 30, 21}, 2);
  EXPECT_EQ(t.ops.back().out, (ops::Dims{3, 30, 21}));
}

TEST(Spec, CompactFormEqualsOneLayerPerLine) {
  const std::string compact =
      "conv 32 relu; pool; conv 32 relu; pool; conv 16 relu; pool; resize mirror; conv 16 relu;"
      " resize mirror; conv 32 relu; resize mirror; conv 32 relu; conv channels";
  ops::NetDesc a = nn::build_net(nn::parse_spec(compact), {1, 28, 28}, 1);
  ops::NetDesc b = nn::build_net(nn::parse_spec(nn::preset_spec("seed")), {1, 28, 28}, 1);
  ASSERT_EQ(a.ops.size(), b.ops.size());
  for (std::size_t i = 0; i < a.ops.size(); ++i) {
    EXPECT_EQ(a.ops[i].out, b.ops[i].out);
    EXPECT_EQ(a.ops[i].kind, b.ops[i].kind);
    EXPECT_EQ(a.ops[i].act, b.ops[i].act);
  }
}

TEST(Spec, OptionsAndComments) {
  auto arch = nn::parse_spec(
      "# a comment line\nconv 8 k5 s2 valid sigmoid nobias  # trailing\nresize 9x7\n"
      "tconv 4 k3 s2 linear\nsigmoid\nrelu");
  ASSERT_EQ(arch.layers.size(), 5u);
  EXPECT_EQ(arch.layers[0].kernel, 5);
  EXPECT_EQ(arch.layers[0].stride, 2);
  EXPECT_EQ(arch.layers[0].size, nn::SizeRule::valid);
  EXPECT_EQ(arch.layers[0].act, ops::Activation::sigmoid);
  EXPECT_FALSE(arch.layers[0].bias);
  EXPECT_EQ(arch.layers[0].line, 2);
  EXPECT_EQ(arch.layers[1].out_h, 9);
  EXPECT_EQ(arch.layers[1].out_w, 7);
  ops::NetDesc net = nn::build_net(arch, {1, 21, 21}, 1);
  EXPECT_EQ(net.ops[0].out, (ops::Dims{8, 9, 9}));  // (21 - 5) / 2 + 1
  EXPECT_EQ(net.ops[2].out, (ops::Dims{4, 18, 14}));
  // format_spec is re-parsable to the same layers.
  auto again = nn::parse_spec(nn::format_spec(arch));
  ops::NetDesc net2 = nn::build_net(again, {1, 21, 21}, 1);
  ASSERT_EQ(net2.ops.size(), net.ops.size());
  for (std::size_t i = 0; i < net.ops.size(); ++i) EXPECT_EQ(net2.ops[i].out, net.ops[i].out);
}

TEST(Spec, BadSpecsNameTheToken) {
  EXPECT_THAT(error_of("conv 32 relu\nconvv 16"), HasSubstr("line 2, token 'convv'"));
  EXPECT_THAT(error_of("conv"), HasSubstr("needs an output channel count"));
  EXPECT_THAT(error_of("conv 32 k0"), HasSubstr("token 'k0'"));
  EXPECT_THAT(error_of("conv -3"), HasSubstr("token '-3'"));
  EXPECT_THAT(error_of("conv 32 bogus"), HasSubstr("token 'bogus'"));
  EXPECT_THAT(error_of("pool relu"), HasSubstr("token 'relu'"));
  EXPECT_THAT(error_of("resize"), HasSubstr("needs exactly one target"));
  EXPECT_THAT(error_of("resize 7y3"), HasSubstr("token '7y3'"));
  EXPECT_THAT(error_of("relu 3"), HasSubstr("takes no options"));
  EXPECT_THAT(error_of("conv 32; tconv 3 valid"), HasSubstr("token 'valid'"));
  EXPECT_THAT(error_of("# nothing\n\n"), HasSubstr("empty"));
}

TEST(Spec, ShapesThatCannotWorkAreRefused) {
  EXPECT_THAT(build_error_of("conv 8; resize mirror", {1, 8, 8}),
              HasSubstr("no matching downsampling"));
  EXPECT_THAT(build_error_of("conv 8 k5 valid", {1, 3, 3}), HasSubstr("does not fit"));
  EXPECT_THAT(build_error_of("pool; tconv 4 k3 s2 9x9", {1, 8, 8}),
              HasSubstr("cannot produce 9x9"));
  EXPECT_THROW(nn::preset_spec("nope"), Error);
  EXPECT_THROW(nn::build_net(nn::parse_spec("conv 3"), {1, 8, 8}, 0), Error);
}
