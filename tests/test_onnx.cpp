// ONNX export, checked by an independent runtime: every exported model is loaded by OpenCV's DNN
// module and must compute what cae computes on the same inputs (max abs difference < 1e-4),
// including odd sizes (7 -> 4 pooling, 4 -> 7 resizes, asymmetric transposed-conv padding) and
// several batch sizes through the one dynamic-batch graph. Also the graph's contract (names,
// opset, metadata) and failures that must write nothing.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <onnx/onnx_pb.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <opencv2/dnn.hpp>

#include "core/atomic_file.h"
#include "io/model_file.h"
#include "io/onnx_export.h"
#include "models.h"
#include "op_specs.h"
#include "nn/model.h"
#include "support.h"

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
  const char* env = std::getenv("CAE_ORT_DIR");
  const std::string ort_dir = env ? env : std::string(CAE_BINARY_DIR) + "/ort";
  if (!std::filesystem::exists(ort_dir + "/node_modules/onnxruntime-node/package.json"))
    GTEST_SKIP() << "ONNX Runtime (npm onnxruntime-node) is not in " << ort_dir
                 << ": scripts/setup-ort.sh installs it";
  if (std::system("node --version >/dev/null 2>&1") != 0) GTEST_SKIP() << "node is missing";
  const std::string dir = test::scratch_dir();
  struct Job {
    nn::Model model;
    int batch;
    std::vector<float> x;
  };
  std::vector<Job> jobs;
  int seed = 40;
  auto add = [&](const std::string& spec, ops::Dims d, nn::LossKind loss) {
    nn::Model model = test::random_model(spec, d, loss, seed++);
    for (int batch : {1, 3})
      jobs.push_back(
          {model, batch, test::random_floats(std::size_t(batch) * d.size(), seed++, 0.f, 1.f)});
  };
  for (const std::string& preset : nn::preset_names())
    add(nn::preset_spec(preset), kMnist, nn::LossKind::bce);
  add("conv 4 relu as a; conv 4; add a; concat input; conv 4 relu; conv channels; sub input",
      ops::Dims{2, 9, 7}, nn::LossKind::mse);
  add(nn::preset_spec("unet"), ops::Dims{3, 30, 21}, nn::LossKind::bce);
  std::ofstream list(dir + "/jobs.txt");
  for (std::size_t j = 0; j < jobs.size(); ++j) {
    const std::string base = dir + "/job" + std::to_string(j);
    const std::vector<std::uint8_t> onnx = io::encode_onnx(jobs[j].model);
    std::ofstream(base + ".onnx", std::ios::binary)
        .write(reinterpret_cast<const char*>(onnx.data()), std::streamsize(onnx.size()));
    std::ofstream(base + ".in", std::ios::binary)
        .write(reinterpret_cast<const char*>(jobs[j].x.data()),
               std::streamsize(jobs[j].x.size() * sizeof(float)));
    const ops::Dims d = jobs[j].model.input();
    list << base << ".onnx " << base << ".in " << jobs[j].batch << " " << d.c << " " << d.h << " "
         << d.w << " " << base << ".out\n";
  }
  list.close();
  const std::string command = "node " + std::string(CAE_SOURCE_DIR) + "/tests/ort_run.js " +
                              ort_dir + " " + dir + "/jobs.txt";
  ASSERT_EQ(std::system(command.c_str()), 0) << command;
  for (std::size_t j = 0; j < jobs.size(); ++j) {
    std::ifstream in(dir + "/job" + std::to_string(j) + ".out", std::ios::binary);
    std::vector<float> theirs(jobs[j].x.size());
    in.read(reinterpret_cast<char*>(theirs.data()), std::streamsize(theirs.size() * sizeof(float)));
    ASSERT_EQ(in.gcount(), std::streamsize(theirs.size() * sizeof(float))) << "job " << j;
    const std::vector<float> ours =
        test::model_images(jobs[j].model, ops::Backend::dnnl, jobs[j].x, jobs[j].batch);
    EXPECT_LT(test::max_abs_diff(ours, theirs), 1e-4f)
        << "job " << j << " (" << jobs[j].model.arch().text << "), batch " << jobs[j].batch;
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
