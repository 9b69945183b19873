// Crash safety of `cae train`, run as a separate process on a small IDX dataset made here:
//  - SIGKILL at random moments (during a step, and exactly inside a checkpoint write, found with
//    inotify), many times, each run resuming the last: a valid checkpoint exists after every
//    kill once the first was written, and the finished run's weights equal an uninterrupted run's
//    bit for bit (same thread count);
//  - a full disk (RLIMIT_FSIZE in the child, SIGXFSZ ignored so the write fails with EFBIG) while
//    writing a checkpoint or the model: the previous file stays byte for byte, the run reports
//    it in one line and exits 1;
//  - divergence: a run whose loss turns non-finite stops naming the epoch and step, and the last
//    good checkpoint stays.
#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/inotify.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "data/idx.h"
#include "io/model_file.h"
#include "support.h"

using namespace cae;
using ::testing::HasSubstr;
namespace fs = std::filesystem;

namespace {

std::string make_dataset(const std::string& dir) {
  const std::string ds = dir + "/ds";
  fs::create_directories(ds);
  data::write_idx_images(ds + "/train-images-idx3-ubyte", test::binary_noise_images(40, 12, 1));
  data::write_idx_images(ds + "/t10k-images-idx3-ubyte", test::binary_noise_images(10, 12, 2));
  return ds;
}

constexpr int kEpochs = 6;

std::vector<std::string> train_args(const std::string& ds, const std::string& out, bool resume,
                                    int epochs = kEpochs,
                                    const std::vector<std::string>& extra = {}) {
  std::vector<std::string> args = {"train",   "--dataset", ds,  "--epochs", std::to_string(epochs),
                                   "--batch", "10",        "--threads", "1", "--seed", "3",
                                   "--out",   out};
  if (resume) args.push_back("--resume");
  args.insert(args.end(), extra.begin(), extra.end());
  return args;
}

// Starts cae with args, output to log; file_size_limit > 0 caps every file it writes.
pid_t spawn(const std::vector<std::string>& args, const std::string& log,
            rlim_t file_size_limit = 0) {
  const pid_t pid = ::fork();
  if (pid != 0) return pid;
  const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd >= 0) {
    ::dup2(fd, 1);
    ::dup2(fd, 2);
  }
  if (file_size_limit > 0) {
    ::signal(SIGXFSZ, SIG_IGN);  // kept across exec: the write fails with EFBIG instead
    const rlimit limit{file_size_limit, file_size_limit};
    ::setrlimit(RLIMIT_FSIZE, &limit);
  }
  ::setenv("OMP_NUM_THREADS", "1", 1);
  std::vector<char*> argv = {const_cast<char*>(CAE_EXE)};
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  ::execv(CAE_EXE, argv.data());
  ::_exit(127);
}

struct Exit {
  bool killed = false;  // by our SIGKILL
  int status = -1;      // exit status otherwise
};

Exit wait_for(pid_t pid) {
  int raw = 0;
  while (::waitpid(pid, &raw, 0) < 0 && errno == EINTR) {
  }
  Exit e;
  e.killed = WIFSIGNALED(raw) && WTERMSIG(raw) == SIGKILL;
  e.status = WIFEXITED(raw) ? WEXITSTATUS(raw) : -1;
  return e;
}

Exit run_to_end(const std::vector<std::string>& args, const std::string& log,
                rlim_t file_size_limit = 0) {
  return wait_for(spawn(args, log, file_size_limit));
}

// Where in the checkpoint write a kill lands: right after the temporary file is created, after
// its bytes were written, or after it was closed but before the rename.
enum class WritePhase { created, written, closed };

// Kills the child during its `nth` checkpoint write (1-based) at phase; returns false when the
// child ended first (it is left for wait_for to reap).
bool kill_in_checkpoint_write(pid_t pid, const std::string& dir, int nth, WritePhase phase) {
  const int fd = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  if (fd < 0) return false;
  ::inotify_add_watch(fd, dir.c_str(), IN_CREATE | IN_MODIFY | IN_CLOSE_WRITE);
  const std::uint32_t wanted = phase == WritePhase::created   ? IN_CREATE
                               : phase == WritePhase::written ? IN_MODIFY
                                                              : IN_CLOSE_WRITE;
  int writes = 0;  // checkpoint temporaries created so far
  alignas(inotify_event) char buf[8192];
  for (;;) {
    siginfo_t info{};
    if (::waitid(P_PID, id_t(pid), &info, WEXITED | WNOHANG | WNOWAIT) == 0 && info.si_pid == pid)
      break;  // ended by itself
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 5) <= 0) continue;
    const ssize_t n = ::read(fd, buf, sizeof buf);
    for (ssize_t at = 0; at < n;) {
      const auto* ev = reinterpret_cast<const inotify_event*>(buf + at);
      at += ssize_t(sizeof(inotify_event) + ev->len);
      if (ev->len == 0 || std::strncmp(ev->name, "checkpoint.cae.tmp.", 19) != 0) continue;
      if (ev->mask & IN_CREATE) ++writes;
      if (writes == nth && (ev->mask & wanted)) {
        ::kill(pid, SIGKILL);
        ::close(fd);
        return true;
      }
    }
  }
  ::close(fd);
  return false;
}

// The epoch a checkpoint holds; fails the test when the file is not a valid checkpoint.
int checkpoint_epoch(const std::string& path) {
  io::ModelFile file;
  try {
    file = io::read_model_file(path);
  } catch (const Error& e) {
    ADD_FAILURE() << "invalid checkpoint after a kill: " << e.what();
    return -1;
  }
  EXPECT_EQ(file.kind, "checkpoint");
  return std::stoi(file.meta_value("epoch"));
}

void expect_same_weights(const std::string& a, const std::string& b) {
  const io::ModelFile fa = io::read_model_file(a), fb = io::read_model_file(b);
  ASSERT_EQ(fa.tensors.size(), fb.tensors.size());
  for (std::size_t i = 0; i < fa.tensors.size(); ++i) {
    EXPECT_EQ(fa.tensors[i].name, fb.tensors[i].name);
    ASSERT_EQ(fa.tensors[i].data.size(), fb.tensors[i].data.size());
    EXPECT_TRUE(fa.tensors[i].data.empty() ||
                std::memcmp(fa.tensors[i].data.data(), fb.tensors[i].data.data(),
                            fa.tensors[i].data.size() * sizeof(float)) == 0)
        << fa.tensors[i].name << " differs from the uninterrupted run's";
  }
}

}  // namespace

TEST(Crash, KilledAnywhereResumesToTheUninterruptedWeights) {
  const std::string dir = test::scratch_dir();
  const std::string ds = make_dataset(dir);

  const auto t0 = std::chrono::steady_clock::now();
  ASSERT_EQ(run_to_end(train_args(ds, dir + "/reference", false), dir + "/reference.log").status,
            0)
      << test::read_file(dir + "/reference.log");
  const auto full_run = std::chrono::steady_clock::now() - t0;
  const auto full_ms = std::chrono::duration_cast<std::chrono::milliseconds>(full_run).count();

  // Campaigns: from an empty directory, start, kill, resume, kill, ... until a run gets to the
  // end by itself; then its weights must be the reference's. Repeat until enough kills.
  const std::string out = dir + "/killed";
  const std::string checkpoint = out + "/checkpoint.cae";
  std::mt19937 gen(7);
  constexpr int kKills = 36;
  int kills = 0, kills_in_write = 0, resumed_runs = 0, campaigns = 0, spawns = 0;
  // Random delays span one uninterrupted run: the reference's time, or a fresh run's when one
  // ends sooner (the reference may have started cold or on a busy machine).
  long span_ms = std::max<long>(full_ms, 50);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  while (kills < kKills && std::chrono::steady_clock::now() < deadline) {
    ++campaigns;
    fs::remove_all(out);
    fs::create_directories(out);
    int last_epoch = 0;
    for (;;) {
      const bool resume = fs::exists(checkpoint);
      resumed_runs += resume;
      const auto started = std::chrono::steady_clock::now();
      const pid_t pid = spawn(train_args(ds, out, resume), out + "/run.log");
      bool in_write = false;
      if (++spawns % 3 != 0) {
        // Anywhere in the run: start-up, a step, an evaluation, a write.
        std::uniform_int_distribution<long> delay(0, span_ms);
        std::this_thread::sleep_for(std::chrono::milliseconds(delay(gen)));
        ::kill(pid, SIGKILL);
      } else {
        const int nth = 1 + int(gen() % unsigned(std::max(kEpochs - last_epoch, 1)));
        in_write = kill_in_checkpoint_write(pid, out, nth, WritePhase(gen() % 3));
      }
      const Exit e = wait_for(pid);
      if (!e.killed) {
        // The run ended before the kill: it must have finished cleanly.
        ASSERT_EQ(e.status, 0) << test::read_file(out + "/run.log");
        if (!resume)
          span_ms = std::min<long>(span_ms, std::max<long>(
              50, std::chrono::duration_cast<std::chrono::milliseconds>(
                      std::chrono::steady_clock::now() - started).count()));
        break;
      }
      ++kills;
      kills_in_write += in_write;
      if (last_epoch > 0) {
        ASSERT_TRUE(fs::exists(checkpoint)) << "kill " << kills << " lost the checkpoint";
      }
      if (fs::exists(checkpoint)) {
        const int epoch = checkpoint_epoch(checkpoint);
        ASSERT_GE(epoch, last_epoch) << "kill " << kills << " lost a finished epoch";
        ASSERT_LE(epoch, kEpochs);
        last_epoch = epoch;
      }
    }
    expect_same_weights(out + "/model.cae", dir + "/reference/model.cae");
    expect_same_weights(checkpoint, dir + "/reference/checkpoint.cae");
    // The finished run's writes removed what killed writers left behind.
    for (const auto& entry : fs::directory_iterator(out))
      EXPECT_EQ(entry.path().filename().string().find(".tmp."), std::string::npos)
          << entry.path() << " left after campaign " << campaigns;
  }
  std::printf("[   info   ] %d kills (%d inside a checkpoint write) in %d runs, %d of them "
              "resumed; %d runs finished and matched the uninterrupted run; a fresh run %ld ms\n",
              kills, kills_in_write, spawns, resumed_runs, campaigns, span_ms);
  EXPECT_GE(kills, kKills);
  EXPECT_GE(kills_in_write, kKills / 6);
}

TEST(Crash, FullDiskDuringACheckpointKeepsThePreviousOne) {
  const std::string dir = test::scratch_dir();
  const std::string ds = make_dataset(dir);
  const std::string out = dir + "/run";
  ASSERT_EQ(run_to_end(train_args(ds, out, false, 2), dir + "/first.log").status, 0);
  const std::string before = test::read_file(out + "/checkpoint.cae");
  ASSERT_FALSE(before.empty());

  // Room for the small files (losses.csv, metrics.json), not for a checkpoint.
  const Exit e = run_to_end(train_args(ds, out, true, 4), dir + "/full.log", before.size() / 2);
  const std::string log = test::read_file(dir + "/full.log");
  EXPECT_EQ(e.status, 1) << log;
  EXPECT_THAT(log, HasSubstr("cae: error: cannot write '" + out + "/checkpoint.cae'"));
  EXPECT_THAT(log, HasSubstr("File too large"));
  EXPECT_EQ(test::read_file(out + "/checkpoint.cae"), before) << "the previous checkpoint changed";
  for (const auto& entry : fs::directory_iterator(out))
    EXPECT_EQ(entry.path().filename().string().find(".tmp."), std::string::npos)
        << "a temporary file was left behind: " << entry.path();

  // Space again: the run resumes from the kept checkpoint and finishes.
  const Exit again = run_to_end(train_args(ds, out, true, 4), dir + "/again.log");
  EXPECT_EQ(again.status, 0) << test::read_file(dir + "/again.log");
  EXPECT_THAT(test::read_file(dir + "/again.log"), HasSubstr("resuming at epoch 3 of 4"));
}

TEST(Crash, FullDiskDuringTheModelWriteKeepsThePreviousModel) {
  const std::string dir = test::scratch_dir();
  const std::string ds = make_dataset(dir);
  const std::string out = dir + "/run";
  ASSERT_EQ(run_to_end(train_args(ds, out, false, 2), dir + "/first.log").status, 0);
  const std::string model_before = test::read_file(out + "/model.cae");
  // Resuming a finished run writes no checkpoint, only model.cae: fill the disk there.
  const Exit e =
      run_to_end(train_args(ds, out, true, 2), dir + "/full.log", model_before.size() / 2);
  const std::string log = test::read_file(dir + "/full.log");
  EXPECT_EQ(e.status, 1) << log;
  EXPECT_THAT(log, HasSubstr("cae: error: cannot write '" + out + "/model.cae'"));
  EXPECT_EQ(test::read_file(out + "/model.cae"), model_before) << "the previous model changed";
}

TEST(Crash, DivergenceStopsNamingEpochAndStepAndKeepsTheLastGoodCheckpoint) {
  const std::string dir = test::scratch_dir();
  const std::string ds = make_dataset(dir);
  const std::string out = dir + "/run";
  ASSERT_EQ(run_to_end(train_args(ds, out, false, 2), dir + "/first.log").status, 0);
  // Weights that are finite but so large that the next forward pass overflows: what a run that
  // is about to diverge holds. Written as a valid checkpoint of epoch 2.
  io::ModelFile cp = io::read_model_file(out + "/checkpoint.cae");
  for (auto& t : cp.tensors)
    if (t.name.rfind("op", 0) == 0)
      for (float& x : t.data) x = x >= 0 ? 3e37f : -3e37f;
  io::write_model_file(out + "/checkpoint.cae", cp);
  const std::string good = test::read_file(out + "/checkpoint.cae");

  const Exit e = run_to_end(train_args(ds, out, true, 4), dir + "/diverge.log");
  const std::string log = test::read_file(dir + "/diverge.log");
  EXPECT_EQ(e.status, 1) << log;
  EXPECT_THAT(log, HasSubstr("cae: error: training diverged"));
  EXPECT_THAT(log, HasSubstr("at epoch 3, step 1"));
  EXPECT_THAT(log, HasSubstr("the last good checkpoint is " + out + "/checkpoint.cae"));
  EXPECT_EQ(test::read_file(out + "/checkpoint.cae"), good) << "the last good checkpoint was replaced";
}
