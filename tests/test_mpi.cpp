// Data-parallel training: the executors' gradients-ready hook that lets gradient sums overlap the
// backward pass, and the cae binary under mpirun — two ranks reach the weights one process
// reaches on the same global batches, a run resumes with another number of ranks, and a rank
// that dies stops the whole job with a clear message and a checkpoint that loads.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "core/rng.h"
#include "data/idx.h"
#include "data/png_io.h"
#include "io/model_file.h"
#include "nn/model.h"
#include "nn/spec.h"
#include "support.h"

extern char** environ;

using namespace cae;
using ::testing::HasSubstr;

namespace {

// --- the gradients-ready hook ---------------------------------------------------------------

class GradsReady : public ::testing::TestWithParam<ops::Backend> {};

// Every announced range must already hold its final values: grads() is filled with a sentinel
// first, so a range announced before its op's backward ran would be caught holding it.
// The unet's skips sum gradients into activations after later ops ran: each range announced
// must still be final.
TEST_P(GradsReady, RangesAreFinalDisjointAndCoverAllGradients) {
  for (const char* preset : {"seed", "unet"}) {
    SCOPED_TRACE(preset);
    nn::Model model(nn::parse_spec(nn::preset_spec(preset)), {1, 12, 12}, nn::LossKind::bce);
    model.init_glorot(3);
    const int batch = 3;
    auto exec = model.make_executor(GetParam(), batch, {});
    const std::size_t n_in = batch * model.input().size();
    const std::vector<float> x = test::random_floats(n_in, 1, 0.f, 1.f);
    const std::vector<float> dy = test::random_floats(n_in, 2, -1e-3f, 1e-3f);

    exec->forward(x.data());
    exec->backward(dy.data(), nullptr);
    const std::vector<float> plain(exec->grads().begin(), exec->grads().end());

    struct Seen {
      std::size_t offset;
      std::vector<float> values;
    };
    std::vector<Seen> seen;
    const float* base = exec->grads().data();
    exec->set_grads_ready([&](std::span<float> ready) {
      seen.push_back({std::size_t(ready.data() - base), {ready.begin(), ready.end()}});
    });
    std::fill(exec->grads().begin(), exec->grads().end(), 12345.f);
    exec->forward(x.data());
    exec->backward(dy.data(), nullptr);

    // Announced while backward() still had work: one range per parameter tensor or per op.
    EXPECT_GE(seen.size(), model.param_infos().size() / 2);
    std::vector<int> covered(plain.size(), 0);
    for (const Seen& s : seen) {
      ASSERT_LE(s.offset + s.values.size(), plain.size());
      for (std::size_t i = 0; i < s.values.size(); ++i) {
        ++covered[s.offset + i];
        ASSERT_EQ(s.values[i], plain[s.offset + i]) << "range at " << s.offset << ", element " << i;
      }
    }
    for (std::size_t i = 0; i < covered.size(); ++i) ASSERT_EQ(covered[i], 1) << "element " << i;
    // The hook changes nothing about the result.
    for (std::size_t i = 0; i < plain.size(); ++i) ASSERT_EQ(exec->grads()[i], plain[i]);
  }
}

INSTANTIATE_TEST_SUITE_P(Backends, GradsReady,
                         ::testing::Values(ops::Backend::ref, ops::Backend::dnnl),
                         [](const auto& info) { return ops::backend_name(info.param); });

// --- cae under mpirun -------------------------------------------------------------------------

#ifdef CAE_MPIRUN
constexpr const char* kMpirun = CAE_MPIRUN;
#else
constexpr const char* kMpirun = nullptr;
#endif


using Result = test::CommandResult;
const auto& shell = test::run_shell;
using test::binary_noise_images;

// The tests run as root in CI; Open MPI refuses that without these.
void allow_root() {
  ::setenv("OMPI_ALLOW_RUN_AS_ROOT", "1", 1);
  ::setenv("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1", 1);
}

std::string mpirun(int ranks) {
  return std::string(kMpirun) + " --allow-run-as-root --oversubscribe --bind-to none " +
         "--mca btl self,vader -np " + std::to_string(ranks) + " ";
}

// Batches of 20 unless `more` says otherwise.
std::string cae_train(const std::string& dataset, const std::string& out, const std::string& more) {
  return std::string(CAE_EXE) + " train --dataset " + dataset + " --threads 1 --out " + out + " " +
         (more.find("--batch") == std::string::npos ? "--batch 20 " : "") + more;
}


std::string make_dataset(const std::string& dir, int train_images) {
  std::filesystem::create_directories(dir + "/ds");
  data::write_idx_images(dir + "/ds/train-images-idx3-ubyte",
                         binary_noise_images(train_images, 12, 1));
  data::write_idx_images(dir + "/ds/t10k-images-idx3-ubyte", binary_noise_images(15, 12, 2));
  return dir + "/ds";
}

// The largest difference between the same tensors of two model files.
double max_difference(const std::string& a_path, const std::string& b_path) {
  const io::ModelFile a = io::read_model_file(a_path), b = io::read_model_file(b_path);
  EXPECT_EQ(a.tensors.size(), b.tensors.size());
  double worst = 0;
  for (std::size_t t = 0; t < std::min(a.tensors.size(), b.tensors.size()); ++t) {
    EXPECT_EQ(a.tensors[t].name, b.tensors[t].name);
    EXPECT_EQ(a.tensors[t].data.size(), b.tensors[t].data.size());
    for (std::size_t i = 0; i < std::min(a.tensors[t].data.size(), b.tensors[t].data.size()); ++i)
      worst = std::max(worst, std::abs(double(a.tensors[t].data[i]) - b.tensors[t].data[i]));
  }
  return worst;
}

int count_of(const std::string& text, const std::string& what) {
  int n = 0;
  for (std::size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

// Two ranks that split each batch as one process splits it into passes (micro-batches) compute
// the same passes and sum them in the same tree (src/train/gradient_sum.h): the same weights bit
// for bit. A different split rounds differently, and Adam, which divides each gradient by its own
// running size, turns the last bits of a gradient that nearly cancels into up to one learning
// rate of step (3e-4 in six steps was seen); plain SGD carries rounding 1:1, so different splits
// are compared under SGD, to a bar that a wrong weighting of a shard misses by far.
constexpr double kWeightTolerance = 2e-6;

TEST(Mpi, TwoRanksReachTheWeightsOfOneProcessOnTheSameBatches) {
  if (!kMpirun) GTEST_SKIP() << "built without MPI";
  allow_root();
  const std::string dir = test::scratch_dir();
  const std::string ds = make_dataset(dir, 60);  // 3 batches of 20 per epoch

  // One process in passes of 10 against two ranks each running its 10 in one pass.
  const Result one = shell(cae_train(ds, dir + "/one", "--epochs 2 --micro-batch 10"));
  ASSERT_EQ(one.status, 0) << one.output;
  const Result two = shell(mpirun(2) + cae_train(ds, dir + "/two", "--epochs 2"));
  ASSERT_EQ(two.status, 0) << two.output;
  const Result sync = shell(mpirun(2) + cae_train(ds, dir + "/sync", "--epochs 2 --sync-grads"));
  ASSERT_EQ(sync.status, 0) << sync.output;
  // Passes of 5: four in one process, two per rank. With the overlap, the last pass's ranges
  // are summed across ranks as backward() finishes them, the first pass's gradients folded in.
  const Result one5 = shell(cae_train(ds, dir + "/one5", "--epochs 2 --micro-batch 5"));
  ASSERT_EQ(one5.status, 0) << one5.output;
  const Result micro =
      shell(mpirun(2) + cae_train(ds, dir + "/micro", "--epochs 2 --micro-batch 5"));
  ASSERT_EQ(micro.status, 0) << micro.output;
  const Result micro_sync =
      shell(mpirun(2) + cae_train(ds, dir + "/micro-sync", "--epochs 2 --micro-batch 5 --sync-grads"));
  ASSERT_EQ(micro_sync.status, 0) << micro_sync.output;

  // Rank 0 alone speaks: one header, one metrics document, one final line per run.
  EXPECT_EQ(count_of(two.output, "training on"), 1) << two.output;
  EXPECT_EQ(count_of(two.output, "\"final_train_loss\""), 1) << two.output;
  EXPECT_THAT(two.output, HasSubstr("x 2 ranks"));
  EXPECT_THAT(two.output, HasSubstr("\"ranks\": 2"));

  EXPECT_EQ(max_difference(dir + "/one/model.cae", dir + "/two/model.cae"), 0.0);
  EXPECT_EQ(max_difference(dir + "/one/model.cae", dir + "/sync/model.cae"), 0.0);
  EXPECT_EQ(max_difference(dir + "/one/checkpoint.cae", dir + "/two/checkpoint.cae"), 0.0)
      << "Adam's moments too";
  EXPECT_EQ(max_difference(dir + "/one5/model.cae", dir + "/micro/model.cae"), 0.0);
  EXPECT_EQ(max_difference(dir + "/one5/model.cae", dir + "/micro-sync/model.cae"), 0.0);
  EXPECT_EQ(max_difference(dir + "/one5/checkpoint.cae", dir + "/micro/checkpoint.cae"), 0.0);

  // Other splits of the same batches, under SGD: one pass of 20, two ranks in passes of 10 and
  // of 5. The tolerance means something: each rank's gradients weighted by 4/3 too much move
  // these weights by 4e-2 (measured by planting it).
  const std::string sgd = "--epochs 2 --optimizer sgd --lr 0.05";
  const Result whole = shell(cae_train(ds, dir + "/sgd-one", sgd));
  ASSERT_EQ(whole.status, 0) << whole.output;
  for (const char* split : {"", " --micro-batch 5"}) {
    const std::string out = dir + "/sgd-two" + (*split ? "-micro" : "");
    const Result r = shell(mpirun(2) + cae_train(ds, out, sgd + split));
    ASSERT_EQ(r.status, 0) << r.output;
    EXPECT_LT(max_difference(dir + "/sgd-one/model.cae", out + "/model.cae"), kWeightTolerance)
        << split;
  }

  // The same losses, as the CSV prints them (8 significant digits): the second epoch's train
  // loss agrees to its first 5.
  auto epoch2_train_loss = [](const std::string& csv_path) {
    std::ifstream csv(csv_path);
    std::string line;
    std::getline(csv, line);
    std::getline(csv, line);
    std::getline(csv, line);
    return std::stod(line.substr(line.find(',') + 1));
  };
  EXPECT_NEAR(epoch2_train_loss(dir + "/one/losses.csv"),
              epoch2_train_loss(dir + "/two/losses.csv"), 1e-5);

  // Resume across rank counts: 1 epoch on two ranks, then the second on one process.
  const Result part = shell(mpirun(2) + cae_train(ds, dir + "/switch", "--epochs 1"));
  ASSERT_EQ(part.status, 0) << part.output;
  EXPECT_GT(max_difference(dir + "/one/model.cae", dir + "/switch/model.cae"), 1e-4)
      << "one epoch moves the weights by far more than nothing";
  const Result rest =
      shell(cae_train(ds, dir + "/switch", "--epochs 2 --resume --micro-batch 10"));
  ASSERT_EQ(rest.status, 0) << rest.output;
  EXPECT_THAT(rest.output, HasSubstr("resuming at epoch 2 of 2"));
  EXPECT_EQ(max_difference(dir + "/one/model.cae", dir + "/switch/model.cae"), 0.0);

  // A batch that does not split evenly is refused with a message, and the job ends.
  const Result odd = shell(mpirun(2) + cae_train(ds, dir + "/odd", "--epochs 1 --batch 15"));
  EXPECT_NE(odd.status, 0);
  EXPECT_THAT(odd.output, HasSubstr("does not split evenly across 2 ranks"));

  // An error on rank 1 alone (here: other data than rank 0's) ends rank 0 too, which waits for
  // it in a collective, and names the rank.
  const std::string mixed = mpirun(1) + cae_train(ds, dir + "/mixed", "--epochs 1 --limit 60") +
                            " : -np 1 " + cae_train(ds, dir + "/mixed", "--epochs 1 --limit 40");
  const Result lone = shell(mixed);
  EXPECT_NE(lone.status, 0);
  EXPECT_THAT(lone.output, HasSubstr("cae: error: rank 1 of 2: rank 1 has 40 training images"));
}

// The process whose parent is `parent` and that Open MPI started as `rank`, or 0.
pid_t find_rank(pid_t parent, int rank) {
  const std::string want = "OMPI_COMM_WORLD_RANK=" + std::to_string(rank);
  for (const auto& entry : std::filesystem::directory_iterator("/proc")) {
    const std::string name = entry.path().filename();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream stat(entry.path() / "stat");
    std::string line;
    if (!std::getline(stat, line)) continue;
    // pid (comm) state ppid ...: comm may hold spaces, so read after the last ')'.
    std::istringstream rest(line.substr(line.rfind(')') + 2));
    char state;
    pid_t ppid = 0;
    rest >> state >> ppid;
    if (ppid != parent) continue;
    std::ifstream env(entry.path() / "environ");
    for (std::string var; std::getline(env, var, '\0');)
      if (var == want) return pid_t(std::stoi(name));
  }
  return 0;
}

// A graph model (the unet's skips) splits across ranks as the seed does: bit for bit.
TEST(Mpi, TwoRanksTrainAGraphModelAsOneProcess) {
  if (!kMpirun) GTEST_SKIP() << "built without MPI";
  allow_root();
  const std::string dir = test::scratch_dir();
  const std::string ds = make_dataset(dir, 40);
  const Result one =
      shell(cae_train(ds, dir + "/one", "--preset unet --epochs 1 --micro-batch 10"));
  ASSERT_EQ(one.status, 0) << one.output;
  const Result two = shell(mpirun(2) + cae_train(ds, dir + "/two", "--preset unet --epochs 1"));
  ASSERT_EQ(two.status, 0) << two.output;
  EXPECT_EQ(max_difference(dir + "/one/model.cae", dir + "/two/model.cae"), 0.0);
}

// Patch training: every rank draws the epoch's patches from (seed, epoch) alone and scores its
// share of the whole validation and test images; two ranks reach one process's weights, and the
// same best.cae and validation scores.
TEST(Mpi, TwoRanksTrainOnPatchesAsOneProcess) {
  if (!kMpirun) GTEST_SKIP() << "built without MPI";
  allow_root();
  const std::string dir = test::scratch_dir();
  const std::pair<const char*, std::vector<std::pair<int, int>>> splits[] = {
      {"train", {{30, 40}, {24, 24}, {50, 26}}},
      {"val", {{20, 33}, {14, 14}}},
      {"test", {{28, 17}}}};
  std::uint64_t seed = 1;
  for (const auto& [split, sizes] : splits) {
    std::filesystem::create_directories(dir + "/photos/" + split);
    for (std::size_t i = 0; i < sizes.size(); ++i) {
      data::Image image;
      image.h = sizes[i].first, image.w = sizes[i].second;
      Rng rng({seed++});
      for (int p = 0; p < image.h * image.w; ++p)
        image.pixels.push_back(rng.below(4) == 0 ? 255 : 0);
      data::write_png(dir + "/photos/" + split + "/" + std::to_string(i) + ".png", image);
    }
  }
  const std::string args =
      "--patch 12 --augment hflip,vflip,rot90 --patches-per-epoch 60 "
      "--epochs 2 --lr-schedule 'plateau patience=1'";
  const Result one = shell(cae_train(dir + "/photos", dir + "/one", args + " --micro-batch 10"));
  ASSERT_EQ(one.status, 0) << one.output;
  const Result two = shell(mpirun(2) + cae_train(dir + "/photos", dir + "/two", args));
  ASSERT_EQ(two.status, 0) << two.output;
  EXPECT_EQ(max_difference(dir + "/one/model.cae", dir + "/two/model.cae"), 0.0);
  EXPECT_EQ(max_difference(dir + "/one/best.cae", dir + "/two/best.cae"), 0.0);
  EXPECT_EQ(max_difference(dir + "/one/checkpoint.cae", dir + "/two/checkpoint.cae"), 0.0);
}

// Batch normalisation: each micro-batch of 10 normalises by its own statistics on either side,
// and the running statistics move once a step toward the mean of the step's micro-batch
// statistics, summed across ranks like gradients: bit for bit, running statistics included.
TEST(Mpi, TwoRanksTrainABatchnormModelAsOneProcess) {
  if (!kMpirun) GTEST_SKIP() << "built without MPI";
  allow_root();
  const std::string dir = test::scratch_dir();
  const std::string ds = make_dataset(dir, 40);
  const std::string args = "--preset unet-bn --epochs 2 --micro-batch 10";
  const Result one = shell(cae_train(ds, dir + "/one", args));
  ASSERT_EQ(one.status, 0) << one.output;
  const Result two = shell(mpirun(2) + cae_train(ds, dir + "/two", args));
  ASSERT_EQ(two.status, 0) << two.output;
  EXPECT_EQ(max_difference(dir + "/one/model.cae", dir + "/two/model.cae"), 0.0);
}

TEST(Mpi, ARankThatDiesStopsTheJobAndTheCheckpointLoads) {
  if (!kMpirun) GTEST_SKIP() << "built without MPI";
  allow_root();
  const std::string dir = test::scratch_dir();
  const std::string ds = make_dataset(dir, 200);
  const std::string log = dir + "/job.log";
  // Far more epochs than the test waits for: the job only ends early because a rank dies.
  const std::string cmd =
      "exec " + mpirun(2) + cae_train(ds, dir + "/run", "--epochs 500") + " >" + log + " 2>&1";
  const char* argv[] = {"/bin/sh", "-c", cmd.c_str(), nullptr};
  pid_t job = 0;
  ASSERT_EQ(::posix_spawn(&job, "/bin/sh", nullptr, nullptr, const_cast<char**>(argv), environ), 0);

  using Clock = std::chrono::steady_clock;
  const auto deadline = Clock::now() + std::chrono::seconds(60);
  const std::string checkpoint = dir + "/run/checkpoint.cae";
  int raw = 0;
  while (!std::filesystem::exists(checkpoint) && Clock::now() < deadline) {
    if (::waitpid(job, &raw, WNOHANG) == job)
      FAIL() << "the job ended before its first checkpoint:\n" << shell("cat " + log).output;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  const pid_t victim = find_rank(job, 1);
  if (!std::filesystem::exists(checkpoint) || victim == 0) {
    ::kill(job, SIGTERM);
    ::waitpid(job, nullptr, 0);
    FAIL() << "no checkpoint or no rank 1 to kill; log:\n" << shell("cat " + log).output;
  }
  ASSERT_EQ(::kill(victim, SIGKILL), 0);

  pid_t done = 0;
  while ((done = ::waitpid(job, &raw, WNOHANG)) == 0 && Clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  if (done == 0) {
    ::kill(job, SIGKILL);
    ::waitpid(job, nullptr, 0);
    FAIL() << "the job went on after rank 1 died";
  }
  const std::string output = shell("cat " + log).output;
  EXPECT_FALSE(WIFEXITED(raw) && WEXITSTATUS(raw) == 0) << output;
  EXPECT_THAT(output, HasSubstr("cae: error: rank 0 was stopped by the MPI runtime"));
  EXPECT_THAT(output, HasSubstr("--resume"));
  EXPECT_EQ(count_of(output, "epoch 500/500"), 0);

  // The last checkpoint is whole, and training continues from it as one process.
  const io::ModelFile cp = io::read_model_file(checkpoint);
  EXPECT_EQ(cp.kind, "checkpoint");
  const int epoch = std::stoi(cp.meta_value("epoch"));
  EXPECT_GE(epoch, 1);
  const Result resumed =
      shell(cae_train(ds, dir + "/run", "--epochs " + std::to_string(epoch + 1) + " --resume"));
  ASSERT_EQ(resumed.status, 0) << resumed.output;
  EXPECT_THAT(resumed.output, HasSubstr("resuming at epoch " + std::to_string(epoch + 1)));
}

}  // namespace
