// The embedding API (include/cae/cae.h): shapes, layouts, batching, encode/decode at the latent,
// and errors, each checked against the engine run directly (the naive reference backend, so the
// API's oneDNN path is compared with an independent computation).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <thread>

#include "cae/cae.h"
#include "core/atomic_file.h"
#include "io/model_file.h"
#include "models.h"
#include "nn/model.h"
#include "support.h"

using namespace cae;
using ::testing::HasSubstr;

namespace {

// Writes model into a fresh scratch directory (one per call: the previous one is emptied).
std::string save(const nn::Model& model, const std::string& name) {
  const std::string path = test::scratch_dir() + "/" + name;
  io::write_model_file(path, model.to_file());
  return path;
}

const ops::Dims kMnist{1, 28, 28};

}  // namespace

TEST(Api, ShapesOfThePresets) {
  // DESIGN.md §1: 28x28x1 -> latent 4x4x16. 30x21 pools to 15x11, 8x6, 4x3.
  const Autoencoder seed = Autoencoder::load(
      save(test::random_model(nn::preset_spec("seed"), kMnist, nn::LossKind::bce, 1), "s.cae"));
  EXPECT_EQ(seed.image_shape(), (Shape{1, 28, 28}));
  EXPECT_EQ(seed.latent_shape(), (Shape{16, 4, 4}));
  EXPECT_EQ(seed.latent_shape().size(), 256u);
  const Autoencoder tconv = Autoencoder::load(save(
      test::random_model(nn::preset_spec("seed-tconv"), ops::Dims{3, 30, 21}, nn::LossKind::mse, 2),
      "t.cae"));
  EXPECT_EQ(tconv.image_shape(), (Shape{3, 30, 21}));
  EXPECT_EQ(tconv.latent_shape(), (Shape{16, 4, 3}));
  EXPECT_FALSE(version().empty());
}

TEST(Api, DenoiseFloatsMatchesTheEngineForAnyCount) {
  // 12x12 keeps the naive reference quick: 12 -> 6 -> 3 -> 2 -> 3 -> 6 -> 12.
  const ops::Dims d{1, 12, 12};
  const nn::Model model = test::random_model(nn::preset_spec("seed"), d, nn::LossKind::bce, 3);
  const Autoencoder ae = Autoencoder::load(save(model, "m.cae"));
  // 70 crosses the API's 64-image chunk: a full chunk, then 6 padded ones.
  for (int count : {1, 3, 70}) {
    const auto x = test::random_floats(std::size_t(count) * d.size(), 10 + count, 0.f, 1.f);
    const auto y = ae.denoise(std::span<const float>(x), count);
    EXPECT_LT(test::max_abs_diff(y, test::model_images(model, ops::Backend::ref, x, count)), 1e-5f)
        << count;
  }
}

TEST(Api, EncodeIsTheActivationBeforeTheFirstUpsamplingAndDecodeFinishesIt) {
  for (const char* preset : {"seed", "seed-tconv"}) {
    const nn::Model model =
        test::random_model(nn::preset_spec(preset), kMnist, nn::LossKind::bce, 4);
    const Autoencoder ae = Autoencoder::load(save(model, std::string(preset) + ".cae"));
    const int count = 2;
    const auto x = test::random_floats(count * kMnist.size(), 20, 0.f, 1.f);

    // The seed's op 5 is the third pool (ops: conv pool conv pool conv pool | upsampling ...).
    auto exec = model.make_executor(ops::Backend::ref, count, {});
    exec->forward(x.data());
    std::vector<float> pooled(std::size_t(count) * 16 * 4 * 4);
    exec->read_activation(5, pooled.data());
    EXPECT_LT(test::max_abs_diff(ae.encode(x, count), pooled), 1e-5f) << preset;

    const auto codes = ae.encode(x, count);
    EXPECT_LT(
        test::max_abs_diff(ae.decode(codes, count), ae.denoise(std::span<const float>(x), count)),
        1e-5f)
        << preset;
    // Decoding a different code gives a different image: decode really reads its input.
    auto other = codes;
    for (float& v : other) v = v * 0.5f + 0.3f;
    EXPECT_GT(test::max_abs_diff(ae.decode(other, count), ae.decode(codes, count)), 1e-3f);
  }
}

TEST(Api, BytesAreInterleavedAndRounded) {
  // RGB 6x5, mse: the API's bytes path must equal: bytes -> NCHW/255 by hand -> engine ->
  // round(255 * clamp) back to HWC by hand.
  const ops::Dims d{3, 6, 5};
  const nn::Model model = test::random_model("conv 4 relu\npool\nresize mirror\nconv channels\n", d,
                                             nn::LossKind::mse, 5);
  const Autoencoder ae = Autoencoder::load(save(model, "rgb.cae"));
  const int count = 2;
  std::vector<std::uint8_t> pixels(count * d.size());
  for (std::size_t i = 0; i < pixels.size(); ++i) pixels[i] = std::uint8_t((i * 37 + 11) % 256);

  std::vector<float> x(pixels.size());
  for (int n = 0; n < count; ++n)
    for (int y = 0; y < d.h; ++y)
      for (int xx = 0; xx < d.w; ++xx)
        for (int c = 0; c < d.c; ++c)
          x[((std::size_t(n) * d.c + c) * d.h + y) * d.w + xx] =
              pixels[((std::size_t(n) * d.h + y) * d.w + xx) * d.c + c] / 255.f;
  const auto img = test::model_images(model, ops::Backend::ref, x, count);
  const auto out = ae.denoise(std::span<const std::uint8_t>(pixels), count);
  ASSERT_EQ(out.size(), pixels.size());
  int mismatches = 0;
  for (int n = 0; n < count; ++n)
    for (int y = 0; y < d.h; ++y)
      for (int xx = 0; xx < d.w; ++xx)
        for (int c = 0; c < d.c; ++c) {
          const float v = img[((std::size_t(n) * d.c + c) * d.h + y) * d.w + xx];
          const int want = int(std::lround(std::clamp(v, 0.f, 1.f) * 255.f));
          const int got = out[((std::size_t(n) * d.h + y) * d.w + xx) * d.c + c];
          // A value within float noise of a rounding boundary may land on either side.
          if (std::abs(got - want) > 1 ||
              (got != want && std::abs(v * 255.f - std::floor(v * 255.f) - 0.5f) > 1e-3f))
            ++mismatches;
        }
  EXPECT_EQ(mismatches, 0);
}

TEST(Api, ConcurrentCallsGiveTheSameResults) {
  const Autoencoder ae = Autoencoder::load(
      save(test::random_model(nn::preset_spec("seed"), kMnist, nn::LossKind::bce, 6), "m.cae"));
  const auto x = test::random_floats(4 * kMnist.size(), 30, 0.f, 1.f);
  const auto expected = ae.denoise(std::span<const float>(x), 4);
  std::vector<std::vector<float>> got(3);
  std::vector<std::thread> threads;
  for (int t = 0; t < 3; ++t)
    threads.emplace_back([&, t] {
      got[t] = t == 1 ? ae.decode(ae.encode(x, 4), 4) : ae.denoise(std::span<const float>(x), 4);
    });
  for (auto& t : threads) t.join();
  for (const auto& g : got) EXPECT_LT(test::max_abs_diff(g, expected), 1e-5f);
}

TEST(Api, MetadataAndMoves) {
  nn::Model model = test::random_model(nn::preset_spec("seed"), kMnist, nn::LossKind::bce, 7);
  model.meta().emplace_back("corruption", "gaussian sigma=0.5");
  Autoencoder a = Autoencoder::load(save(model, "m.cae"));
  Autoencoder b = std::move(a);
  const auto meta = b.metadata();
  EXPECT_THAT(meta, ::testing::Contains(
                        std::pair<std::string, std::string>("corruption", "gaussian sigma=0.5")));
  EXPECT_THAT(meta, ::testing::Contains(std::pair<std::string, std::string>("loss", "bce")));
}

TEST(Api, Errors) {
  const nn::Model model = test::random_model(nn::preset_spec("seed"), kMnist, nn::LossKind::bce, 8);
  const std::string path = save(model, "m.cae");
  const Autoencoder ae = Autoencoder::load(path);
  std::vector<float> x(2 * kMnist.size() - 1);
  std::string msg = test::error_of([&] { ae.denoise(std::span<const float>(x), 2); });
  EXPECT_THAT(msg, HasSubstr("1x28x28"));
  EXPECT_THAT(msg, HasSubstr("1568"));
  EXPECT_THAT(msg, HasSubstr("1567"));
  EXPECT_THAT(test::error_of([&] { ae.encode(x, 0); }), HasSubstr("at least 1"));
  EXPECT_THAT(test::error_of([&] { ae.decode(x, 1); }), HasSubstr("16x4x4"));

  const std::string missing = path + ".missing";
  EXPECT_THAT(test::error_of([&] { Autoencoder::load(missing); }), HasSubstr("m.cae.missing"));

  std::vector<std::uint8_t> bytes = read_file(path);
  bytes[bytes.size() / 3] ^= 1;
  msg = test::error_of([&] { Autoencoder::load_bytes(bytes, "upload"); });
  EXPECT_THAT(msg, HasSubstr("upload"));
  EXPECT_THAT(msg, HasSubstr("checksum"));

  const Autoencoder flat = Autoencoder::load(
      save(test::random_model("conv 4 relu\nconv channels\n", kMnist, nn::LossKind::bce, 9),
           "flat.cae"));
  EXPECT_THAT(test::error_of([&] { flat.latent_shape(); }), HasSubstr("no latent"));
  EXPECT_EQ(flat.denoise(std::span<const float>(std::vector<float>(kMnist.size(), 0.5f)), 1).size(),
            kMnist.size());
}

// Graph models (skip connections, a global residual) run whole: denoise matches the engine.
// Where the decoder reads encoder activations there is no latent code to decode alone; a skip
// inside the decoder keeps it.
TEST(Api, GraphModelsDenoiseAndSayWhenThereIsNoLatentCode) {
  const ops::Dims d{1, 12, 12};
  for (const char* preset : {"unet", "residual"}) {
    const nn::Model model = test::random_model(nn::preset_spec(preset), d, nn::LossKind::bce, 4);
    const Autoencoder ae = Autoencoder::load(save(model, "g.cae"));
    const auto x = test::random_floats(3 * d.size(), 30, 0.f, 1.f);
    const auto y = ae.denoise(std::span<const float>(x), 3);
    EXPECT_LT(test::max_abs_diff(y, test::model_images(model, ops::Backend::ref, x, 3)), 1e-5f)
        << preset;
  }
  const Autoencoder unet = Autoencoder::load(
      save(test::random_model(nn::preset_spec("unet"), d, nn::LossKind::bce, 5), "u.cae"));
  try {
    (void)unet.latent_shape();
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), HasSubstr("skip connections"));
  }
  const std::vector<float> x(d.size(), 0.5f);
  EXPECT_THROW((void)unet.encode(std::span<const float>(x), 1), Error);

  const nn::Model inner = test::random_model(
      "conv 8 relu; pool; resize mirror; conv 8 relu as a; conv 8 relu; add a; conv channels", d,
      nn::LossKind::bce, 6);
  const Autoencoder ae = Autoencoder::load(save(inner, "i.cae"));
  EXPECT_EQ(ae.latent_shape(), (Shape{8, 6, 6}));
  const auto images = test::random_floats(2 * d.size(), 31, 0.f, 1.f);
  const auto codes = ae.encode(std::span<const float>(images), 2);
  EXPECT_LT(test::max_abs_diff(ae.decode(std::span<const float>(codes), 2),
                               ae.denoise(std::span<const float>(images), 2)),
            1e-5f);
}
