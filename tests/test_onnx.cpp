// ONNX export, checked by an independent runtime: every exported model is loaded by OpenCV's DNN
// module and must compute what cae computes on the same inputs (max abs difference < 1e-4),
// including odd sizes (7 -> 4 pooling, 4 -> 7 resizes, asymmetric transposed-conv padding) and
// several batch sizes through the one dynamic-batch graph. An informed model's graph is a repair
// (image and mask in, the repaired image out) and must compute what `cae repair` does on one
// tile. Also the graph's contract (names, opset, metadata) and failures that must write nothing.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <onnx/onnx_pb.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <tuple>
#include <utility>
#include <opencv2/dnn.hpp>

#include "core/atomic_file.h"
#include "io/model_file.h"
#include "export/onnx_export.h"
#include "models.h"
#include "op_specs.h"
#include "nn/model.h"
#include "support.h"
#include "train/tiling.h"

using namespace cae;
using ::testing::HasSubstr;

namespace {

std::vector<float> opencv_images(cv::dnn::Net& net, const std::vector<float>& x, int batch,
                                 ops::Dims d) {
  const int shape[4] = {batch, d.c, d.h, d.w};
  cv::Mat blob(4, shape, CV_32F, const_cast<float*>(x.data()));
  net.setInput(blob, io::kOnnxInputName);
  cv::Mat out = net.forward();
  EXPECT_EQ(out.dims, 4);
  EXPECT_EQ(out.total(), x.size());
  if (out.total() != x.size()) return {};
  const float* p = out.ptr<float>();
  return std::vector<float>(p, p + out.total());
}

cv::dnn::Net opencv_net(const std::vector<std::uint8_t>& onnx) {
  return cv::dnn::readNetFromONNX(reinterpret_cast<const char*>(onnx.data()), onnx.size());
}

// Exports model, loads it in OpenCV, compares with cae for batch sizes 1 and 3.
void expect_parity(const nn::Model& model) {
  const std::vector<std::uint8_t> onnx = io::encode_onnx(model);
  cv::dnn::Net net = opencv_net(onnx);
  net.setPreferableBackend(cv::dnn::DNN_BACKEND_OPENCV);
  for (int batch : {1, 3}) {
    const std::vector<float> x =
        test::random_floats(std::size_t(batch) * model.input().size(), 7 + batch, 0.f, 1.f);
    const std::vector<float> ours = test::model_images(model, ops::Backend::dnnl, x, batch);
    const std::vector<float> theirs = opencv_images(net, x, batch, model.input());
    EXPECT_LT(test::max_abs_diff(ours, theirs), 1e-4f) << "batch " << batch;
    // The output is an image that is not constant: a wrong graph rarely lands within 1e-4.
    float lo = 1, hi = 0;
    for (float v : theirs) lo = std::min(lo, v), hi = std::max(hi, v);
    EXPECT_GE(lo, 0.f);
    EXPECT_LE(hi, 1.f);
    EXPECT_GT(hi - lo, 1e-3f);
  }
}

onnx::ModelProto parse(const std::vector<std::uint8_t>& bytes) {
  onnx::ModelProto proto;
  EXPECT_TRUE(proto.ParseFromArray(bytes.data(), int(bytes.size())));
  return proto;
}

std::string meta_of(const onnx::ModelProto& proto, const std::string& key) {
  for (const auto& e : proto.metadata_props())
    if (e.key() == key) return e.value();
  return "<absent>";
}

const ops::Dims kMnist{1, 28, 28};

// An informed model's graph in OpenCV: batch images (NCHW, image dims d) and their masks
// (batch x 1 x h x w) in, the repairs out.
std::vector<float> opencv_repairs(cv::dnn::Net& net, const std::vector<float>& x,
                                  const std::vector<float>& mask, int batch, ops::Dims d) {
  const int image_shape[4] = {batch, d.c, d.h, d.w}, mask_shape[4] = {batch, 1, d.h, d.w};
  net.setInput(cv::Mat(4, image_shape, CV_32F, const_cast<float*>(x.data())), io::kOnnxImageName);
  net.setInput(cv::Mat(4, mask_shape, CV_32F, const_cast<float*>(mask.data())), io::kOnnxMaskName);
  cv::Mat out = net.forward(io::kOnnxRepairName);
  EXPECT_EQ(out.dims, 4);
  EXPECT_EQ(out.total(), x.size());
  if (out.total() != x.size()) return {};
  const float* p = out.ptr<float>();
  return std::vector<float>(p, p + out.total());
}

// An informed model on images of its input size: input has the mask's channel, d is the image's.
struct Informed {
  std::string name;  // for messages
  nn::Model model;
  ops::Dims d;
};

Informed informed_model(const std::string& name, const std::string& spec, ops::Dims image,
                        nn::LossKind loss, std::uint64_t seed) {
  return {name, test::random_model(spec, {image.c + 1, image.h, image.w}, loss, seed, true), image};
}

// Three informed models: a bce unet on RGB, an mse seed-tconv on gray at odd sizes, and a join
// with the net's input (image and mask) through a bce net on two channels.
std::vector<Informed> informed_models() {
  return {informed_model("unet bce 3x16x12", nn::preset_spec("unet"), {3, 16, 12},
                         nn::LossKind::bce, 60),
          informed_model("seed-tconv mse 1x13x11", nn::preset_spec("seed-tconv"), {1, 13, 11},
                         nn::LossKind::mse, 61),
          informed_model("concat input bce 2x9x7",
                         "conv 6 relu; concat input; conv 6 relu; conv channels", {2, 9, 7},
                         nn::LossKind::bce, 62)};
}

// batch damage masks of h x w, 0/1: image b has a rectangle and a few scattered pixels, except
// the last of a batch > 1, which has none (its repair is the image itself).
std::vector<float> damage_masks(int batch, int h, int w, std::uint64_t seed) {
  std::vector<float> mask(std::size_t(batch) * h * w, 0.f);
  const std::vector<float> r = test::random_floats(std::size_t(batch) * h * w, seed, 0.f, 1.f);
  for (int b = 0; b < batch - (batch > 1); ++b)
    for (int y = 0; y < h; ++y)
      for (int x = 0; x < w; ++x) {
        const std::size_t p = (std::size_t(b) * h + y) * w + x;
        const bool box = y >= h / 4 + b && y < h / 2 + b && x >= w / 3 && x < w / 3 + 4;
        if (box || r[p] < 0.08f) mask[p] = 1.f;
      }
  return mask;
}

// What `cae repair` computes for each of batch images of the model's input size with its mask:
// train::denoise_tiled, one tile each.
std::vector<float> tiled_repairs(const Informed& m, const std::vector<float>& x,
                                 const std::vector<float>& mask, int batch) {
  const std::size_t image = m.d.size(), plane = std::size_t(m.d.h) * m.d.w;
  std::vector<float> out;
  for (int b = 0; b < batch; ++b) {
    const std::vector<float> one = train::denoise_tiled(
        m.model, x.data() + b * image, m.d, train::TileOptions{}, mask.data() + b * plane);
    out.insert(out.end(), one.begin(), one.end());
  }
  return out;
}

// Checks a graph's repairs: within 1e-4 of cae's, and bit for bit the input wherever the mask
// is not damage (> 0); the damage is not left as it came (the net's image is there).
void expect_repairs(const std::vector<float>& theirs, const std::vector<float>& ours,
                    const std::vector<float>& x, const std::vector<float>& mask, ops::Dims d,
                    const std::string& what) {
  ASSERT_EQ(theirs.size(), x.size()) << what;
  EXPECT_LT(test::max_abs_diff(ours, theirs), 1e-4f) << what;
  const std::size_t plane = std::size_t(d.h) * d.w;
  std::size_t kept = 0, changed = 0;
  for (std::size_t i = 0; i < x.size(); ++i) {
    const float m = mask[i / d.size() * plane + i % plane];
    if (m > 0) {
      changed += theirs[i] != x[i];
    } else {
      kept += 1;
      EXPECT_EQ(theirs[i], x[i]) << what << ": undamaged element " << i;
      if (theirs[i] != x[i]) return;
    }
  }
  EXPECT_GT(kept, 0u) << what;
  EXPECT_GT(changed, 0u) << what;
}

// Masks with values other than 0 and 1, and the same made 0/1 as the graph reads them: damaged
// where > 0 (negative values and 0 keep the pixel; 1e-6, 0.3, 2 and 255 mark damage).
std::pair<std::vector<float>, std::vector<float>> odd_masks(int batch, int h, int w,
                                                            std::uint64_t seed) {
  const float values[] = {-1.f, -0.25f, 0.f, 0.f, 0.f, 1e-6f, 0.3f, 0.5f, 1.f, 2.f, 255.f};
  const std::vector<float> r = test::random_floats(std::size_t(batch) * h * w, seed, 0.f, 11.f);
  std::vector<float> mask(r.size()), binary(r.size());
  for (std::size_t i = 0; i < r.size(); ++i) {
    mask[i] = values[std::min(int(r[i]), 10)];
    binary[i] = mask[i] > 0 ? 1.f : 0.f;
  }
  return {mask, binary};
}

// ONNX Runtime's directory (scripts/setup-ort.sh puts npm's onnxruntime-node in build/ort;
// CAE_ORT_DIR elsewhere), or "" with *why set when it or node is missing.
std::string ort_dir(std::string* why) {
  const char* env = std::getenv("CAE_ORT_DIR");
  const std::string dir = env ? env : std::string(CAE_BINARY_DIR) + "/ort";
  if (!std::filesystem::exists(dir + "/node_modules/onnxruntime-node/package.json")) {
    *why = "ONNX Runtime (npm onnxruntime-node) is not in " + dir +
           ": scripts/setup-ort.sh installs it";
    return "";
  }
  if (std::system("node --version >/dev/null 2>&1") != 0) {
    *why = "node is missing";
    return "";
  }
  return dir;
}

// One run of an exported graph in ONNX Runtime: a blind model's input, or an informed model's
// image and mask (mask non-empty).
struct OrtJob {
  std::vector<std::uint8_t> onnx;
  int batch;
  ops::Dims d;  // of x
  std::vector<float> x, mask;
};

// Runs the jobs in ONNX Runtime through tests/ort_run.js; ensures each job's output (x's size),
// or fails the test and returns nothing.
std::vector<std::vector<float>> run_ort(const std::string& ort, const std::vector<OrtJob>& jobs) {
  const std::string dir = test::scratch_dir();
  auto write = [](const std::string& path, const void* data, std::size_t bytes) {
    std::ofstream(path, std::ios::binary)
        .write(static_cast<const char*>(data), std::streamsize(bytes));
  };
  std::ofstream list(dir + "/jobs.txt");
  for (std::size_t j = 0; j < jobs.size(); ++j) {
    const std::string base = dir + "/job" + std::to_string(j);
    const OrtJob& job = jobs[j];
    write(base + ".onnx", job.onnx.data(), job.onnx.size());
    write(base + ".in", job.x.data(), job.x.size() * sizeof(float));
    list << base << ".onnx " << base << ".in " << job.batch << " " << job.d.c << " " << job.d.h
         << " " << job.d.w << " " << base << ".out";
    if (!job.mask.empty()) {
      write(base + ".mask", job.mask.data(), job.mask.size() * sizeof(float));
      list << " " << base << ".mask";
    }
    list << "\n";
  }
  list.close();
  const std::string command =
      "node " + std::string(CAE_SOURCE_DIR) + "/tests/ort_run.js " + ort + " " + dir + "/jobs.txt";
  if (std::system(command.c_str()) != 0) {
    ADD_FAILURE() << command;
    return {};
  }
  std::vector<std::vector<float>> outputs;
  for (std::size_t j = 0; j < jobs.size(); ++j) {
    std::ifstream in(dir + "/job" + std::to_string(j) + ".out", std::ios::binary);
    std::vector<float> y(jobs[j].x.size());
    in.read(reinterpret_cast<char*>(y.data()), std::streamsize(y.size() * sizeof(float)));
    if (in.gcount() != std::streamsize(y.size() * sizeof(float))) {
      ADD_FAILURE() << "job " << j << ": ONNX Runtime's output is short";
      return {};
    }
    outputs.push_back(std::move(y));
  }
  return outputs;
}

}  // namespace

TEST(OnnxExport, SeedPresetMatchesOpenCv) {
  // 28 -> 14 -> 7 -> 4 (7 -> 4 pads the bottom/right) and back 4 -> 7 -> 14 -> 28.
  expect_parity(test::random_model(nn::preset_spec("seed"), kMnist, nn::LossKind::bce, 1));
}

TEST(OnnxExport, SeedTconvPresetMatchesOpenCv) {
  // Transposed convs 4 -> 7 (one cell each side) and 7 -> 14 (one after): asymmetric pads.
  expect_parity(test::random_model(nn::preset_spec("seed-tconv"), kMnist, nn::LossKind::bce, 2));
}

TEST(OnnxExport, RgbOddSizesMatchOpenCv) {
  // 3 channels at 30x21: 15x11, 8x6, 4x3 and back through non-integer resizes (4 -> 8 -> 15 is
  // integer then not, 3 -> 6 -> 11 -> 21 likewise), for both presets; mse ends in a clamp.
  const ops::Dims rgb{3, 30, 21};
  expect_parity(test::random_model(nn::preset_spec("seed"), rgb, nn::LossKind::mse, 3));
  expect_parity(test::random_model(nn::preset_spec("seed-tconv"), rgb, nn::LossKind::bce, 4));
}

TEST(OnnxExport, EveryLayerOptionMatchesOpenCv) {
  // Strided k5 conv without bias, valid padding, fused sigmoid, bare relu and sigmoid layers,
  // a fixed-size resize, a fixed-size transposed conv with symmetric pads, a k1 conv.
  const std::string spec =
      "conv 6 k5 s2 relu nobias\nconv 6 valid sigmoid\nrelu\nresize 7x7\n"
      "tconv 4 k3 s2 13x13\nsigmoid\nconv channels k1\n";
  expect_parity(test::random_model(spec, ops::Dims{2, 13, 13}, nn::LossKind::mse, 5));
  expect_parity(test::random_model("pool valid\nresize 9x9\nconv channels\n", ops::Dims{1, 9, 9},
                                   nn::LossKind::bce, 6));
}

// The op table's ONNX column: every op exports to the operator its row names, and the graph
// of each one-op net matches cae in OpenCV.
TEST(OnnxExport, EveryOpOfTheTableExportsToItsOperator) {
  for (const ops::OpInfo& info : ops::op_table()) {
    SCOPED_TRACE(info.name);
    const nn::Model model =
        test::random_model(test::one_op_spec(info), ops::Dims{1, 8, 8}, nn::LossKind::bce, 23);
    const onnx::ModelProto proto = parse(io::encode_onnx(model));
    bool found = false;
    for (const auto& node : proto.graph().node()) found = found || node.op_type() == info.onnx;
    EXPECT_TRUE(found) << "no " << info.onnx << " node";
    expect_parity(model);
  }
}

TEST(OnnxExport, GraphPresetsMatchOpenCv) {
  // Skip connections as Concat along channels (unet, unet-wide), the input minus the predicted
  // noise as Sub (residual); and at odd RGB sizes, where each skip meets a non-integer resize.
  for (const char* preset : {"unet", "unet-wide", "residual"})
    expect_parity(test::random_model(nn::preset_spec(preset), kMnist, nn::LossKind::bce, 20));
  expect_parity(
      test::random_model(nn::preset_spec("unet"), ops::Dims{3, 30, 21}, nn::LossKind::mse, 21));
}

TEST(OnnxExport, EveryJoinMatchesOpenCv) {
  // Add of two activations, the input added to the logits, Concat with the input itself.
  const std::string spec =
      "conv 4 relu as a; conv 4; add a; concat input; conv 4 relu; conv channels; add input";
  expect_parity(test::random_model(spec, ops::Dims{2, 9, 7}, nn::LossKind::bce, 22));
  const onnx::ModelProto proto =
      parse(io::encode_onnx(test::random_model(spec, ops::Dims{2, 9, 7}, nn::LossKind::bce, 22)));
  std::map<std::string, int> types;
  for (const auto& node : proto.graph().node()) ++types[node.op_type()];
  EXPECT_EQ(types["Add"], 2);
  EXPECT_EQ(types["Concat"], 1);
}

// ONNX Runtime, the runtime a user would deploy, on every preset's export and on every join:
// through tests/ort_run.js and npm's onnxruntime-node (scripts/setup-ort.sh puts it in
// build/ort; CAE_ORT_DIR elsewhere). Batch 1 and 3, within 1e-4 of cae.
TEST(OnnxRuntime, EveryPresetAndJoinMatchesCae) {
  std::string why;
  const std::string ort = ort_dir(&why);
  if (ort.empty()) GTEST_SKIP() << why;
  std::vector<nn::Model> models;
  std::vector<OrtJob> jobs;
  int seed = 40;
  auto add = [&](const std::string& spec, ops::Dims d, nn::LossKind loss) {
    nn::Model model = test::random_model(spec, d, loss, seed++);
    const std::vector<std::uint8_t> onnx = io::encode_onnx(model);
    for (int batch : {1, 3}) {
      models.push_back(model);
      std::vector<float> x = test::random_floats(std::size_t(batch) * d.size(), seed++, 0.f, 1.f);
      jobs.push_back({onnx, batch, d, std::move(x), {}});
    }
  };
  for (const std::string& preset : nn::preset_names())
    add(nn::preset_spec(preset), kMnist, nn::LossKind::bce);
  add("conv 4 relu as a; conv 4; add a; concat input; conv 4 relu; conv channels; sub input",
      ops::Dims{2, 9, 7}, nn::LossKind::mse);
  add(nn::preset_spec("unet"), ops::Dims{3, 30, 21}, nn::LossKind::bce);
  const std::vector<std::vector<float>> outputs = run_ort(ort, jobs);
  ASSERT_EQ(outputs.size(), jobs.size());
  for (std::size_t j = 0; j < jobs.size(); ++j) {
    const std::vector<float> ours =
        test::model_images(models[j], ops::Backend::dnnl, jobs[j].x, jobs[j].batch);
    EXPECT_LT(test::max_abs_diff(ours, outputs[j]), 1e-4f)
        << "job " << j << " (" << models[j].arch().text << "), batch " << jobs[j].batch;
  }
}

// An informed model's repair in OpenCV equals cae's (train::denoise_tiled, what `cae repair`
// runs on one tile) for a bce and an mse model, batches 1 and 3 through the one graph; the
// undamaged pixels are the input's bits, and an image with no damage comes back as it is.
TEST(OnnxExport, InformedRepairMatchesTilingInOpenCv) {
  int seed = 70;
  for (const Informed& m : informed_models()) {
    cv::dnn::Net net = opencv_net(io::encode_onnx(m.model));
    net.setPreferableBackend(cv::dnn::DNN_BACKEND_OPENCV);
    for (int batch : {1, 3}) {
      const std::string what = m.name + ", batch " + std::to_string(batch);
      const std::vector<float> x =
          test::random_floats(std::size_t(batch) * m.d.size(), seed++, 0.f, 1.f);
      const std::vector<float> mask = damage_masks(batch, m.d.h, m.d.w, seed++);
      expect_repairs(opencv_repairs(net, x, mask, batch, m.d), tiled_repairs(m, x, mask, batch), x,
                     mask, m.d, what);
    }
  }
}

// A mask of other values than 0 and 1 is read as damaged where > 0, in the net's input as in
// the select: the graph's repair equals cae's with that 0/1 mask.
TEST(OnnxExport, InformedMaskIsDamagedWhereAboveZero) {
  const Informed m = informed_models()[0];
  cv::dnn::Net net = opencv_net(io::encode_onnx(m.model));
  net.setPreferableBackend(cv::dnn::DNN_BACKEND_OPENCV);
  const int batch = 2;
  const std::vector<float> x = test::random_floats(std::size_t(batch) * m.d.size(), 80, 0.f, 1.f);
  const auto [mask, binary] = odd_masks(batch, m.d.h, m.d.w, 81);
  expect_repairs(opencv_repairs(net, x, mask, batch, m.d), tiled_repairs(m, x, binary, batch), x,
                 binary, m.d, "odd mask values");
}

// The same repairs in ONNX Runtime: each informed model at batch 1 and 3 with 0/1 masks, and
// with masks of other values (damaged where > 0).
TEST(OnnxRuntime, InformedRepairMatchesTiling) {
  std::string why;
  const std::string ort = ort_dir(&why);
  if (ort.empty()) GTEST_SKIP() << why;
  const std::vector<Informed> models = informed_models();
  std::vector<OrtJob> jobs;
  std::vector<std::size_t> model_of;
  std::vector<std::vector<float>> binary;  // the masks as cae reads them
  int seed = 90;
  for (std::size_t k = 0; k < models.size(); ++k) {
    const Informed& m = models[k];
    const std::vector<std::uint8_t> onnx = io::encode_onnx(m.model);
    for (int batch : {1, 3, 2}) {
      std::vector<float> x = test::random_floats(std::size_t(batch) * m.d.size(), seed++, 0.f, 1.f);
      std::vector<float> mask = damage_masks(batch, m.d.h, m.d.w, seed++), zero_one = mask;
      if (batch == 2) std::tie(mask, zero_one) = odd_masks(batch, m.d.h, m.d.w, seed++);
      jobs.push_back({onnx, batch, m.d, std::move(x), std::move(mask)});
      model_of.push_back(k);
      binary.push_back(std::move(zero_one));
    }
  }
  const std::vector<std::vector<float>> outputs = run_ort(ort, jobs);
  ASSERT_EQ(outputs.size(), jobs.size());
  for (std::size_t j = 0; j < jobs.size(); ++j) {
    const Informed& m = models[model_of[j]];
    expect_repairs(
        outputs[j], tiled_repairs(m, jobs[j].x, binary[j], jobs[j].batch), jobs[j].x, binary[j],
        m.d,
        "job " + std::to_string(j) + " (" + m.name + "), batch " + std::to_string(jobs[j].batch));
  }
}

TEST(OnnxExport, GraphContract) {
  nn::Model model = test::random_model(nn::preset_spec("seed"), kMnist, nn::LossKind::bce, 7);
  model.meta().emplace_back("corruption", "gaussian sigma=0.5");
  model.meta().emplace_back("epochs", "5");
  const onnx::ModelProto proto = parse(io::encode_onnx(model));
  ASSERT_EQ(proto.opset_import_size(), 1);
  EXPECT_EQ(proto.opset_import(0).domain(), "");
  EXPECT_GE(proto.opset_import(0).version(), 13);
  EXPECT_EQ(proto.producer_name(), "cae");

  const onnx::GraphProto& g = proto.graph();
  ASSERT_EQ(g.input_size(), 1);
  ASSERT_EQ(g.output_size(), 1);
  EXPECT_EQ(g.input(0).name(), "noisy");
  EXPECT_EQ(g.output(0).name(), "denoised");
  const auto& in_shape = g.input(0).type().tensor_type().shape();
  ASSERT_EQ(in_shape.dim_size(), 4);
  EXPECT_FALSE(in_shape.dim(0).has_dim_value());  // dynamic batch
  EXPECT_EQ(in_shape.dim(0).dim_param(), "batch");
  EXPECT_EQ(in_shape.dim(1).dim_value(), 1);
  EXPECT_EQ(in_shape.dim(2).dim_value(), 28);
  EXPECT_EQ(in_shape.dim(3).dim_value(), 28);

  EXPECT_EQ(meta_of(proto, "corruption"), "gaussian sigma=0.5");
  EXPECT_EQ(meta_of(proto, "epochs"), "5");
  EXPECT_EQ(meta_of(proto, "loss"), "bce");
  EXPECT_EQ(meta_of(proto, "cae_version"), proto.producer_version());
  EXPECT_FALSE(proto.producer_version().empty());
  EXPECT_EQ(meta_of(proto, "informed"), "<absent>");

  // The seed's ops in order, each conv followed by its Relu, the image made by a last Sigmoid.
  std::vector<std::string> types;
  for (const auto& n : g.node())
    if (n.op_type() != "Shape" && n.op_type() != "Slice" && n.op_type() != "Concat")
      types.push_back(n.op_type());
  const std::vector<std::string> want = {
      "Conv", "Relu", "MaxPool", "Conv", "Relu", "MaxPool", "Conv", "Relu", "MaxPool", "Resize",
      "Conv", "Relu", "Resize",  "Conv", "Relu", "Resize",  "Conv", "Relu", "Conv",    "Sigmoid"};
  EXPECT_EQ(types, want);
  EXPECT_EQ(g.node(g.node_size() - 1).output(0), "denoised");
  for (const auto& n : g.node()) {
    if (n.op_type() != "Resize") continue;
    std::map<std::string, std::string> attrs;
    for (const auto& a : n.attribute()) attrs[a.name()] = a.s();
    EXPECT_EQ(attrs["mode"], "nearest");
    EXPECT_EQ(attrs["coordinate_transformation_mode"], "asymmetric");
    EXPECT_EQ(attrs["nearest_mode"], "floor");
  }
}

// An informed model's graph: inputs image [batch, C, H, W] and mask [batch, 1, H, W], one output
// "repaired" of the image's shape, and meta informed = 1.
TEST(OnnxExport, InformedGraphContract) {
  const Informed m = informed_models()[0];
  const onnx::ModelProto proto = parse(io::encode_onnx(m.model));
  const onnx::GraphProto& g = proto.graph();
  ASSERT_EQ(g.input_size(), 2);
  ASSERT_EQ(g.output_size(), 1);
  auto dims_of = [](const onnx::ValueInfoProto& v) {
    std::string text;
    for (const auto& dim : v.type().tensor_type().shape().dim())
      text += (text.empty() ? "" : "x") +
              (dim.has_dim_value() ? std::to_string(dim.dim_value()) : dim.dim_param());
    return text;
  };
  EXPECT_EQ(g.input(0).name(), "image");
  EXPECT_EQ(dims_of(g.input(0)), "batchx3x16x12");
  EXPECT_EQ(g.input(1).name(), "mask");
  EXPECT_EQ(dims_of(g.input(1)), "batchx1x16x12");
  EXPECT_EQ(g.output(0).name(), "repaired");
  EXPECT_EQ(dims_of(g.output(0)), "batchx3x16x12");
  EXPECT_EQ(g.node(g.node_size() - 1).output(0), "repaired");
  EXPECT_EQ(meta_of(proto, "informed"), "1");
  EXPECT_EQ(meta_of(proto, "loss"), "bce");
  EXPECT_EQ(meta_of(proto, "fill"), "<absent>");
}

// `cae export` of an informed model says it wrote two inputs, and OpenCV runs the file it wrote.
TEST(OnnxExport, CommandExportsAnInformedModelAsARepair) {
  const std::string dir = test::scratch_dir();
  const Informed m = informed_models()[1];
  io::write_model_file(dir + "/m.cae", m.model.to_file());
  const auto r = test::run_cae("export " + dir + "/m.cae -o " + dir + "/m.onnx");
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("inputs 'image' batchx1x13x11 and 'mask' batchx1x13x11"));
  EXPECT_THAT(r.output, HasSubstr("output 'repaired'"));
  cv::dnn::Net net = cv::dnn::readNetFromONNX(dir + "/m.onnx");
  const std::vector<float> x = test::random_floats(m.d.size(), 14, 0.f, 1.f);
  const std::vector<float> mask = damage_masks(1, m.d.h, m.d.w, 15);
  expect_repairs(opencv_repairs(net, x, mask, 1, m.d), tiled_repairs(m, x, mask, 1), x, mask, m.d,
                 "cae export's file");
}

// A model that corrects a cv::inpaint fill has no ONNX form (the graph would return the
// correction, not the repair): `cae export` says why and writes nothing.
TEST(OnnxExport, ModelWithAFillIsRefusedWithItsReason) {
  const std::string dir = test::scratch_dir();
  nn::Model model =
      informed_model("unet", nn::preset_spec("unet"), {3, 16, 12}, nn::LossKind::mse, 16).model;
  model.set_fill("navier-stokes r=3");
  io::write_model_file(dir + "/fill.cae", model.to_file());
  const auto r = test::run_cae("export " + dir + "/fill.cae -o " + dir + "/fill.onnx");
  EXPECT_EQ(r.status, 1);
  EXPECT_THAT(r.output, HasSubstr("corrects a cv::inpaint fill ('navier-stokes r=3')"));
  EXPECT_THAT(r.output, HasSubstr("no ONNX operator"));
  EXPECT_FALSE(std::filesystem::exists(dir + "/fill.onnx"));
}

TEST(OnnxExport, MseModelEndsInClampAndUnknownCorruptionIsSaid) {
  const nn::Model model = test::random_model(nn::preset_spec("seed"), kMnist, nn::LossKind::mse, 8);
  const onnx::ModelProto proto = parse(io::encode_onnx(model));
  EXPECT_EQ(proto.graph().node(proto.graph().node_size() - 1).op_type(), "HardSigmoid");
  EXPECT_EQ(meta_of(proto, "corruption"), "unknown");
  EXPECT_EQ(meta_of(proto, "loss"), "mse");
}

TEST(OnnxExport, NonFiniteWeightsAreRefused) {
  nn::Model model = test::random_model(nn::preset_spec("seed"), kMnist, nn::LossKind::bce, 9);
  model.params()[2][5] = std::nanf("");
  const std::string dir = test::scratch_dir();
  const std::string msg = test::error_of([&] { io::export_onnx(model, dir + "/m.onnx"); });
  EXPECT_THAT(msg, HasSubstr("op2.weight"));
  EXPECT_THAT(msg, HasSubstr("NaN"));
  EXPECT_FALSE(std::filesystem::exists(dir + "/m.onnx"));
}

TEST(OnnxExport, CommandWritesAModelOpenCvRuns) {
  const std::string dir = test::scratch_dir();
  const nn::Model model =
      test::random_model(nn::preset_spec("seed"), kMnist, nn::LossKind::bce, 10);
  io::write_model_file(dir + "/m.cae", model.to_file());
  const auto r = test::run_cae("export " + dir + "/m.cae -o " + dir + "/m.onnx");
  ASSERT_EQ(r.status, 0) << r.output;
  cv::dnn::Net net = cv::dnn::readNetFromONNX(dir + "/m.onnx");
  const std::vector<float> x = test::random_floats(kMnist.size(), 11, 0.f, 1.f);
  EXPECT_LT(test::max_abs_diff(test::model_images(model, ops::Backend::dnnl, x, 1),
                               opencv_images(net, x, 1, kMnist)),
            1e-4f);
}

TEST(OnnxExport, CorruptModelFailsAndWritesNothing) {
  const std::string dir = test::scratch_dir();
  const nn::Model model =
      test::random_model(nn::preset_spec("seed"), kMnist, nn::LossKind::bce, 12);
  std::vector<std::uint8_t> bytes = io::encode_model_file(model.to_file());
  bytes[bytes.size() / 2] ^= 0x40;
  write_file_atomic(dir + "/bad.cae", bytes);
  const auto r = test::run_cae("export " + dir + "/bad.cae -o " + dir + "/out.onnx");
  EXPECT_EQ(r.status, 1);
  EXPECT_THAT(r.output, HasSubstr("bad.cae"));
  EXPECT_THAT(r.output, HasSubstr("checksum"));
  EXPECT_FALSE(std::filesystem::exists(dir + "/out.onnx"));

  // An existing target stays as it was.
  const std::string old = "previous export";
  write_file_atomic(dir + "/out.onnx",
                    {reinterpret_cast<const std::uint8_t*>(old.data()), old.size()});
  EXPECT_EQ(test::run_cae("export " + dir + "/bad.cae -o " + dir + "/out.onnx").status, 1);
  const std::vector<std::uint8_t> after = read_file(dir + "/out.onnx");
  EXPECT_EQ(std::string(after.begin(), after.end()), old);
  for (const auto& entry : std::filesystem::directory_iterator(dir))
    EXPECT_THAT(entry.path().filename().string(), ::testing::Not(HasSubstr(".tmp")));
}

TEST(OnnxExport, UnsupportedModelFailsAndWritesNothing) {
  // A well-formed file (checksum right) whose spec holds a layer this cae does not know, as a
  // newer cae might write.
  const std::string dir = test::scratch_dir();
  io::ModelFile file =
      test::random_model(nn::preset_spec("seed"), kMnist, nn::LossKind::bce, 13).to_file();
  file.spec = "conv 32 relu\nswirl 3\n";
  io::write_model_file(dir + "/new.cae", file);
  const auto r = test::run_cae("export " + dir + "/new.cae -o " + dir + "/out.onnx");
  EXPECT_EQ(r.status, 1);
  EXPECT_THAT(r.output, HasSubstr("new.cae"));
  EXPECT_THAT(r.output, HasSubstr("swirl"));
  EXPECT_FALSE(std::filesystem::exists(dir + "/out.onnx"));

  // A file that is not a cae model at all is refused by name.
  const std::string junk = "not a model";
  write_file_atomic(dir + "/junk.cae",
                    {reinterpret_cast<const std::uint8_t*>(junk.data()), junk.size()});
  const auto j = test::run_cae("export " + dir + "/junk.cae -o " + dir + "/out.onnx");
  EXPECT_EQ(j.status, 1);
  EXPECT_THAT(j.output, HasSubstr("not a cae model file"));
  EXPECT_FALSE(std::filesystem::exists(dir + "/out.onnx"));
}
