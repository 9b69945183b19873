// Batch normalisation: what a training pass computes and leaves in the statistics slots, how the
// running statistics move once a step, folding for inference and export, the spec's rules and
// the model file. Gradients by finite differences are in test_ref_ops.cpp (RefGradient.Batchnorm*)
// and dnnl against ref in test_dnnl_parity.cpp (the unet-bn preset) and test_op_table.cpp.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "cae/error.h"
#include "io/model_file.h"
#include "models.h"
#include "nn/model.h"
#include "nn/optimizer.h"
#include "nn/spec.h"
#include "ops/ops.h"
#include "support.h"
#include "train/batch_statistics.h"

using namespace cae;
using ::testing::HasSubstr;

namespace {

const ops::Dims kInput{2, 6, 5};
const std::string kSpec = "conv 3 nobias\nbn relu as a\nconv 4\nbn\nconcat a\nconv channels\n";

// The statistics of channel c of an NCHW activation: mean and biased variance, in double.
void channel_statistics(const std::vector<float>& act, int batch, ops::Dims d, int c,
                        double& mean, double& var) {
  const std::size_t plane = std::size_t(d.h) * d.w;
  double sum = 0, squares = 0;
  for (int n = 0; n < batch; ++n)
    for (std::size_t i = 0; i < plane; ++i) sum += act[(std::size_t(n) * d.c + c) * plane + i];
  mean = sum / (double(batch) * plane);
  for (int n = 0; n < batch; ++n)
    for (std::size_t i = 0; i < plane; ++i) {
      const double e = act[(std::size_t(n) * d.c + c) * plane + i] - mean;
      squares += e * e;
    }
  var = squares / (double(batch) * plane);
}

class BatchnormBackends : public ::testing::TestWithParam<ops::Backend> {};

// A training pass normalises each channel by the batch's own statistics (a linear batchnorm's
// output has the shift as mean and |scale| as deviation), and backward leaves the batch mean
// and the unbiased variance of its input in the running statistics' gradient slots.
TEST_P(BatchnormBackends, ForwardNormalisesAndBackwardLeavesTheBatchStatistics) {
  const int batch = 3;
  const nn::Model model = test::random_model(kSpec, kInput, nn::LossKind::bce, 5);
  auto exec = model.make_executor(GetParam(), batch, {});
  const ops::NetDesc& net = exec->desc();
  const std::vector<float> x = test::random_floats(batch * kInput.size(), 6, 0.f, 1.f);
  exec->forward(x.data());
  std::vector<float> conv(batch * net.ops[2].out.size()), norm(conv.size());
  exec->read_activation(2, conv.data());
  exec->read_activation(3, norm.data());
  std::vector<float> d_out(batch * model.output().size(), 0.f);
  d_out[0] = 1.f;
  exec->backward(d_out.data(), nullptr);

  const auto ranges = exec->statistics_ranges();
  ASSERT_EQ(ranges.size(), 2u);
  const std::vector<std::vector<float>> grads = exec->to_canonical(exec->grads());
  // param_infos: op0 weight (0); op1 scale, shift, mean, var (1-4); op2 weight, bias (5, 6);
  // op3 scale, shift, mean, var (7-10); op5 weight, bias.
  ASSERT_EQ(model.param_infos()[9].name, "running_mean");
  const std::vector<float>& scale = model.params()[7];
  const std::vector<float>& shift = model.params()[8];
  const ops::Dims d = net.ops[2].out;
  const double count = double(batch) * d.h * d.w;
  for (int c = 0; c < d.c; ++c) {
    double mean = 0, var = 0;
    channel_statistics(conv, batch, d, c, mean, var);
    EXPECT_NEAR(grads[9][c], mean, 1e-5) << "channel " << c;
    EXPECT_NEAR(grads[10][c], var * count / (count - 1), 1e-4 * var) << "channel " << c;
    double out_mean = 0, out_var = 0;
    channel_statistics(norm, batch, d, c, out_mean, out_var);
    EXPECT_NEAR(out_mean, shift[c], 1e-5) << "channel " << c;
    EXPECT_NEAR(std::sqrt(out_var), std::abs(scale[c]) * std::sqrt(var / (var + 1e-5)), 1e-4)
        << "channel " << c;
  }
  // The running statistics in params() are not what a training forward reads: unchanged.
  const std::vector<std::vector<float>> params = exec->to_canonical(exec->params());
  for (std::size_t i : {3, 4, 9, 10}) EXPECT_EQ(params[i], model.params()[i]) << i;
}

// Folding is exact where the running statistics are the batch's (biased) ones: the folded net
// at inference gives what the training pass gave on that batch.
TEST_P(BatchnormBackends, TheFoldedNetIsTheTrainingPassWhenTheRunningStatisticsAreTheBatchs) {
  const int batch = 4;
  nn::Model model = test::random_model(kSpec, kInput, nn::LossKind::bce, 8);
  auto exec = model.make_executor(GetParam(), batch, {});
  const std::vector<float> x = test::random_floats(batch * kInput.size(), 9, 0.f, 1.f);
  exec->forward(x.data());
  const std::vector<float> trained(exec->output(),
                                   exec->output() + batch * model.output().size());
  std::vector<float> d_out(trained.size(), 0.f);
  exec->backward(d_out.data(), nullptr);
  const std::vector<std::vector<float>> stats = exec->to_canonical(exec->grads());
  for (int op : {1, 3}) {
    const ops::Dims d = exec->desc().ops[op].out;
    const double count = double(batch) * d.h * d.w;
    const std::size_t mean = op == 1 ? 3 : 9;
    model.params()[mean] = stats[mean];
    model.params()[mean + 1] = stats[mean + 1];
    for (float& v : model.params()[mean + 1]) v = float(v * (count - 1) / count);
  }
  const nn::Model folded = model.folded();
  EXPECT_FALSE(folded.has_batch_norm());
  EXPECT_EQ(folded.arch().layers.size(), 4u);
  auto infer = folded.make_executor(GetParam(), batch, {});
  infer->forward(x.data());
  for (std::size_t i = 0; i < trained.size(); ++i)
    ASSERT_NEAR(infer->output()[i], trained[i], 1e-4f) << i;
  // make_inference_executor is that folded net.
  auto same = model.make_inference_executor(GetParam(), batch, {});
  same->forward(x.data());
  for (std::size_t i = 0; i < trained.size(); ++i)
    ASSERT_EQ(same->output()[i], infer->output()[i]) << i;
}

INSTANTIATE_TEST_SUITE_P(RefAndDnnl, BatchnormBackends,
                         ::testing::Values(ops::Backend::ref, ops::Backend::dnnl),
                         [](const auto& info) { return ops::backend_name(info.param); });

TEST(Batchnorm, FoldedSpecMovesTheActivationAndTheNameToTheConv) {
  const nn::Model model = test::random_model(kSpec, kInput, nn::LossKind::bce, 3);
  const nn::Model folded = model.folded();
  EXPECT_EQ(nn::format_spec(folded.arch()),
            "conv 3 k3 s1 same relu as a\nconv 4 k3 s1 same\nconcat a\nconv channels k3 s1 same\n");
  EXPECT_EQ(folded.arch().text, nn::format_spec(folded.arch()));
  // The concat reads the first conv now (layer 0), not the batchnorm that was layer 1.
  EXPECT_EQ(folded.arch().layers[2].joins_layer, 0);
  ASSERT_EQ(folded.param_infos().size(), 6u);  // three convs, each weight and bias
  // A model without batchnorm folds to itself.
  const nn::Model plain = test::random_model(nn::preset_spec("unet"), {1, 28, 28},
                                             nn::LossKind::bce, 4);
  EXPECT_EQ(plain.folded().params(), plain.params());
  EXPECT_EQ(plain.folded().arch().text, plain.arch().text);
}

TEST(Batchnorm, GlorotInitStartsWithUnitScaleZeroShiftAndUnitVariance) {
  nn::Model model(nn::parse_spec(kSpec), kInput, nn::LossKind::bce);
  model.init_glorot(1);
  const auto& infos = model.param_infos();
  for (std::size_t i = 0; i < infos.size(); ++i) {
    if (model.arch().layers[infos[i].op].kind != ops::OpKind::batchnorm) continue;
    const float want = infos[i].name == "weight" || infos[i].name == "running_var" ? 1.f : 0.f;
    for (float v : model.params()[i]) EXPECT_EQ(v, want) << model.param_name(i);
  }
}

// The statistics of `passes` passes, summed, move the running statistics once, by the momentum,
// toward their mean; the slots are zeroed so that Adam leaves those parameters exactly alone.
TEST(Batchnorm, FoldBatchStatisticsThenAdamMovesRunningStatisticsByTheMomentumOnly) {
  std::vector<float> params = {0.5f, 1.f, 2.f, 7.f, -1.f, 3.f};
  std::vector<float> grads = {0.25f, 4.f, 8.f, 0.f, 0.1f, 0.2f};
  const std::vector<ops::Executor::FlatRange> ranges = {{1, 2}, {3, 1}};
  train::fold_batch_statistics(ranges, params, grads, 4);
  EXPECT_EQ(params[0], 0.5f);                            // not a statistic
  EXPECT_FLOAT_EQ(params[1], 0.9f * 1.f + 0.1f * 1.f);   // toward 4 / 4
  EXPECT_FLOAT_EQ(params[2], 0.9f * 2.f + 0.1f * 2.f);   // toward 8 / 4
  EXPECT_FLOAT_EQ(params[3], 0.9f * 7.f);                // toward 0
  EXPECT_EQ(grads, (std::vector<float>{0.25f, 0.f, 0.f, 0.f, 0.1f, 0.2f}));
  const std::vector<float> folded = params;
  nn::Optimizer adam(nn::OptimizerConfig{}, params.size());
  for (int step = 0; step < 3; ++step) adam.step(params, grads);
  for (std::size_t i : {1, 2, 3}) EXPECT_EQ(params[i], folded[i]) << i;
  EXPECT_NE(params[0], folded[0]);
}

TEST(Batchnorm, SpecRulesNameTheLineAndTheToken) {
  auto error_of = [](const std::string& spec) {
    try {
      nn::parse_spec(spec);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_THAT(error_of("bn relu\nconv 1"), HasSubstr("line 1, token 'bn': follows a conv"));
  EXPECT_THAT(error_of("conv 4\npool\nbn"), HasSubstr("line 3, token 'bn': follows a conv"));
  EXPECT_THAT(error_of("conv 4 relu\nbn\nconv 1"),
              HasSubstr("line 2, token 'bn': follows a conv with an activation"));
  EXPECT_THAT(error_of("conv 4 as e\nbn relu\nconv 1"),
              HasSubstr("line 2, token 'bn': follows a conv named 'e'"));
  EXPECT_THAT(error_of("conv 4\nbn sigmoid"),
              HasSubstr("line 2, token 'sigmoid': not an option of 'bn' (relu or linear)"));
  EXPECT_EQ(error_of("tconv 4 s2 linear\nbn linear\nconv 1"), "no error");
  const nn::Architecture arch = nn::parse_spec("conv 4 nobias; bn relu as b; conv 1; add b");
  EXPECT_EQ(nn::format_spec(nn::parse_spec(nn::format_spec(arch))), nn::format_spec(arch));
}

TEST(Batchnorm, RunningStatisticsTravelInTheModelFile) {
  const nn::Model model = test::random_model(kSpec, kInput, nn::LossKind::bce, 12);
  const nn::Model back = nn::Model::from_file(
      io::decode_model_file(io::encode_model_file(model.to_file()), "bytes"), "bytes");
  EXPECT_EQ(back.params(), model.params());
  EXPECT_EQ(back.param_name(3), "op1.running_mean");
  EXPECT_EQ(back.param_name(4), "op1.running_var");
}

TEST(Batchnorm, TheCudaBackendRefusesItByName) {
  const ops::NetDesc net = nn::build_net(nn::parse_spec(kSpec), kInput, 2);
  EXPECT_FALSE(ops::op_info(ops::OpKind::batchnorm).cuda);
  try {
    ops::make_executor(ops::Backend::cuda, net);
    ADD_FAILURE() << "cuda built a net with batchnorm";
  } catch (const Error& e) {
    EXPECT_THAT(std::string(e.what()), HasSubstr("batchnorm"));
  }
}

}  // namespace
