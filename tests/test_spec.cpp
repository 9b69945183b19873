// The architecture spec parser and the shape logic of build_net (DESIGN.md §1 and §2).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "cae/error.h"
#include "nn/spec.h"

using namespace cae;
using ::testing::AllOf;
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

// ---- graph specs: named activations and joins ----

std::size_t param_count(const ops::NetDesc& net) {
  std::size_t n = 0;
  for (const ops::ParamInfo& info : ops::param_infos(net)) n += info.size();
  return n;
}

TEST(Spec, UnetPresetConcatenatesEachEncoderOutputAtItsSize) {
  const ops::NetDesc net = nn::build_net(nn::parse_spec(nn::preset_spec("unet")), {1, 28, 28}, 1);
  ASSERT_EQ(net.ops.size(), 16u);
  // concat e3 after the 4 -> 7 resize: 16 + 16 channels at 7x7, reading conv 3 (op 4).
  EXPECT_EQ(net.ops[7].kind, ops::OpKind::concat);
  EXPECT_EQ(net.ops[7].other, 4);
  EXPECT_EQ(net.ops[7].out, (ops::Dims{32, 7, 7}));
  EXPECT_EQ(net.ops[10].other, 2);
  EXPECT_EQ(net.ops[10].out, (ops::Dims{48, 14, 14}));
  EXPECT_EQ(net.ops[13].other, 0);
  EXPECT_EQ(net.ops[13].out, (ops::Dims{64, 28, 28}));
  EXPECT_EQ(net.ops.back().out, (ops::Dims{1, 28, 28}));
  // The seed's 30,689 parameters plus the skips' input channels: 3x3 convs 32 -> 16 (+2,304),
  // 48 -> 32 (+9,216), 64 -> 32 (+9,216).
  EXPECT_EQ(param_count(nn::build_net(nn::parse_spec(nn::preset_spec("seed")), {1, 28, 28}, 1)),
            30689u);
  EXPECT_EQ(param_count(net), 30689u + 2304 + 9216 + 9216);
  // Any input size, as the seed: 30x21x3 -> 4x3 -> 30x21x3, the skips at every size.
  const ops::NetDesc odd = nn::build_net(nn::parse_spec(nn::preset_spec("unet")), {3, 30, 21}, 2);
  EXPECT_EQ(odd.ops[13].out, (ops::Dims{64, 30, 21}));
  EXPECT_EQ(odd.ops.back().out, (ops::Dims{3, 30, 21}));
}

TEST(Spec, ResidualPresetSubtractsItsOutputFromTheInput) {
  const ops::NetDesc net =
      nn::build_net(nn::parse_spec(nn::preset_spec("residual")), {1, 28, 28}, 1);
  EXPECT_EQ(net.ops.back().kind, ops::OpKind::sub);
  EXPECT_EQ(net.ops.back().other, ops::OpDesc::kNetInput);
  for (const ops::OpDesc& op : net.ops) EXPECT_EQ(op.out.h, 28);  // full resolution throughout
  const ops::NetDesc wide =
      nn::build_net(nn::parse_spec(nn::preset_spec("unet-wide")), {1, 28, 28}, 1);
  EXPECT_EQ(wide.ops[13].out, (ops::Dims{128, 28, 28}));
}

TEST(Spec, NamesAndJoinsOnOneLineAndBackThroughFormatSpec) {
  const std::string text =
      "conv 8 relu as a; pool; conv 8 relu; resize mirror; concat a; conv 4 as b; add input;"
      " sub b; conv channels";
  const nn::Architecture arch = nn::parse_spec(text);
  const ops::NetDesc net = nn::build_net(arch, {4, 6, 5}, 2);
  EXPECT_EQ(net.ops[4].other, 0);
  EXPECT_EQ(net.ops[4].out, (ops::Dims{16, 6, 5}));
  EXPECT_EQ(net.ops[6].kind, ops::OpKind::add);
  EXPECT_EQ(net.ops[6].other, ops::OpDesc::kNetInput);
  EXPECT_EQ(net.ops[7].kind, ops::OpKind::sub);
  EXPECT_EQ(net.ops[7].other, 5);
  const nn::Architecture again = nn::parse_spec(nn::format_spec(arch));
  EXPECT_EQ(nn::format_spec(again), nn::format_spec(arch));
  const ops::NetDesc net2 = nn::build_net(again, {4, 6, 5}, 2);
  for (std::size_t i = 0; i < net.ops.size(); ++i) {
    EXPECT_EQ(net2.ops[i].other, net.ops[i].other);
    EXPECT_EQ(net2.ops[i].out, net.ops[i].out);
  }
  EXPECT_THAT(nn::format_spec(arch), HasSubstr("conv 8 k3 s1 same relu as a\n"));
  EXPECT_THAT(nn::format_spec(arch), HasSubstr("\nconcat a\n"));
}

TEST(Spec, BadJoinsNameTheLineAndTheToken) {
  EXPECT_THAT(error_of("conv 8\nconv 8\nconcat e9"),
              AllOf(HasSubstr("line 3, token 'e9'"), HasSubstr("unknown name"),
                    HasSubstr("named so far: input")));
  EXPECT_THAT(
      error_of("conv 8\nconv 8\nadd e1\nconv 8 as e1"),
      AllOf(HasSubstr("line 3, token 'e1'"), HasSubstr("named on line 4"), HasSubstr("cycle")));
  EXPECT_THAT(error_of("conv 8\nconv 8\nadd e1 as e1"),
              AllOf(HasSubstr("token 'e1'"), HasSubstr("by this join itself"), HasSubstr("cycle")));
  EXPECT_THAT(error_of("conv 8 as a\nconcat a"),
              AllOf(HasSubstr("line 2, token 'a'"), HasSubstr("the layer just before")));
  EXPECT_THAT(error_of("conv 8 as a; conv 8 as a"),
              AllOf(HasSubstr("token 'a'"), HasSubstr("named twice")));
  EXPECT_THAT(error_of("conv 8 as input"), HasSubstr("token 'input'"));
  EXPECT_THAT(error_of("conv 8 as 1x"), HasSubstr("token '1x'"));
  EXPECT_THAT(error_of("conv 8 as"), HasSubstr("token 'as'"));
  EXPECT_THAT(error_of("conv 8 as a b"), HasSubstr("token 'as'"));
  EXPECT_THAT(error_of("concat"), HasSubstr("needs exactly one operand"));
  EXPECT_THAT(error_of("conv 8\nconcatt a"), HasSubstr("line 2, token 'concatt'"));
}

TEST(Spec, JoinsOfMismatchedShapesAreRefusedNamingTheToken) {
  EXPECT_THAT(
      build_error_of("conv 8 as a; pool; conv 8; concat a", {1, 8, 8}),
      AllOf(HasSubstr("line 1"), HasSubstr("token 'a'"), HasSubstr("8x8x8"), HasSubstr("4x4x8")));
  EXPECT_THAT(build_error_of("conv 8 as a\nconv 4\nadd a", {1, 8, 8}),
              AllOf(HasSubstr("line 3"), HasSubstr("token 'a'"), HasSubstr("differs")));
  EXPECT_THAT(build_error_of("conv 8; conv 4; add input", {1, 8, 8}), HasSubstr("token 'input'"));
  // The same spec builds where the shapes agree: shapes are resolved from the data.
  EXPECT_EQ(build_error_of("conv 8 as a; pool; resize mirror; concat a", {1, 8, 8}), "(no error)");
}
