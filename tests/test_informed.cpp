// Informed models: the damage mask as an extra input channel. What 'channels' means for them,
// the shape rule, the model file's record of it, and forged files.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

#include "cae/error.h"
#include "io/model_file.h"
#include "nn/model.h"
#include "nn/spec.h"

using namespace cae;
using ::testing::HasSubstr;

namespace {

nn::Model informed_unet() {
  nn::Model model(nn::parse_spec(nn::preset_spec("unet")), {4, 16, 12}, nn::LossKind::bce,
                  /*informed=*/true);
  model.init_glorot(3);
  return model;
}

}  // namespace

TEST(Informed, ChannelsMeansTheImagesChannelsWithoutTheMask) {
  const nn::Model model = informed_unet();
  EXPECT_TRUE(model.informed());
  EXPECT_EQ(model.input().c, 4);
  EXPECT_EQ(model.output().c, 3);
  EXPECT_EQ(model.output().h, 16);
  EXPECT_EQ(model.output().w, 12);
  // The first conv reads four channels: its weight is 32 x 4 x 3 x 3.
  EXPECT_EQ(model.param_infos()[0].shape[1], 4);
  const nn::Model blind(nn::parse_spec(nn::preset_spec("unet")), {4, 16, 12},
                        nn::LossKind::bce);
  EXPECT_FALSE(blind.informed());
  EXPECT_EQ(blind.output().c, 4);
}

TEST(Informed, TheOutputMustBeTheImageWithoutTheMask) {
  try {
    nn::Model(nn::parse_spec("conv 8 relu\nconv 4"), {4, 8, 8}, nn::LossKind::bce, true);
    FAIL() << "an informed model whose output keeps the mask channel";
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), HasSubstr("its input's without the mask channel"));
  }
  EXPECT_THROW(nn::Model(nn::parse_spec("conv channels"), {1, 8, 8}, nn::LossKind::bce,
                         true),
               Error);
  // The residual preset subtracts its output from the input, which has the mask: a shape error.
  EXPECT_THROW(nn::Model(nn::parse_spec(nn::preset_spec("residual")), {2, 8, 8},
                         nn::LossKind::bce, true),
               Error);
}

TEST(Informed, TheModelFileRecordsItAndBlindFilesAreUnchanged) {
  const nn::Model model = informed_unet();
  const io::ModelFile file = model.to_file();
  ASSERT_NE(file.find_meta("informed"), nullptr);
  EXPECT_EQ(*file.find_meta("informed"), "1");
  const nn::Model back = nn::Model::from_file(io::decode_model_file(io::encode_model_file(file), "informed.cae"),
                                              "informed.cae");
  EXPECT_TRUE(back.informed());
  EXPECT_EQ(back.output().c, 3);
  EXPECT_EQ(back.params(), model.params());
  const nn::Model blind(nn::parse_spec("conv 8 relu\nconv channels"), {3, 8, 8},
                        nn::LossKind::bce);
  EXPECT_EQ(blind.to_file().find_meta("informed"), nullptr);
}

TEST(Informed, AForgedFlagIsRefusedByName) {
  io::ModelFile file = informed_unet().to_file();
  file.set_meta("informed", "yes");
  try {
    nn::Model::from_file(file, "forged.cae");
    FAIL() << "a forged informed flag";
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), HasSubstr("forged.cae: meta 'informed' must be 1 or absent"));
  }
  // A blind file marked informed: its first conv reads 4 channels but the rest expects 4 out.
  io::ModelFile blind = nn::Model(nn::parse_spec("conv 8 relu\nconv channels"), {1, 8, 8},
                                  nn::LossKind::bce)
                            .to_file();
  blind.set_meta("informed", "1");
  EXPECT_THROW(nn::Model::from_file(blind, "forged.cae"), Error);
}
