// cae serve: the local web server (src/serve/, docs/serve.md). Loads the models, binds, serves
// until SIGINT or SIGTERM, then finishes the requests in flight and returns (exit status 0).
#include <pthread.h>

#include <algorithm>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <thread>

#include "cae/error.h"
#include "commands.h"
#include "io/model_store.h"
#include "serve/server.h"

namespace cae::cli {

namespace {

struct ServeCommand {
  CommonOptions common;
  serve::ServeOptions serve;
  std::vector<std::string> model_paths;
  double max_upload_mb = double(serve::kDefaultMaxUploadMiB);
  double max_megapixels = serve::kDefaultMaxMegapixels;
};

// Signals are taken by one thread that waits for them (sigwait), not by a handler: the first
// SIGINT or SIGTERM stops the server, which finishes what is in flight; a second one ends the
// process at once (128 + its number, as an uncaught signal would). SIGUSR1 only wakes the thread
// when the server ended without a signal.
class SignalWaiter {
 public:
  // Blocks the signals in the calling thread: call it before anything makes threads (the
  // server's workers and connections), so that every thread inherits the mask and only sigwait
  // below receives them.
  static sigset_t block() {
    sigset_t set;
    sigemptyset(&set);
    for (int sig : {SIGINT, SIGTERM, SIGUSR1}) sigaddset(&set, sig);
    pthread_sigmask(SIG_BLOCK, &set, nullptr);
    return set;
  }
  SignalWaiter(serve::Server& server, sigset_t set) : set_(set) {
    thread_ = std::thread([this, &server] {
      int sig = 0;
      sigwait(&set_, &sig);
      if (sig == SIGUSR1) return;
      std::fprintf(stderr,
                   "cae serve: %s: finishing the requests in flight, then stopping "
                   "(again to stop at once)\n",
                   sig == SIGINT ? "SIGINT" : "SIGTERM");
      server.stop();
      sigwait(&set_, &sig);
      if (sig != SIGUSR1) std::_Exit(128 + sig);
    });
  }
  ~SignalWaiter() {
    pthread_kill(thread_.native_handle(), SIGUSR1);
    thread_.join();
  }

 private:
  sigset_t set_;
  std::thread thread_;
};

void run(ServeCommand& o) {
  const sigset_t stop_signals = SignalWaiter::block();
  const ops::Backend backend = o.common.apply();
  serve::ServeOptions& s = o.serve;
  s.backend = backend;
  s.executor = o.common.executor_options();  // once, for every job
  const int cores = o.common.threads > 0 ? o.common.threads
                                         : int(std::max(1u, std::thread::hardware_concurrency()));
  s.threads = std::max(1, cores / s.workers);
  s.max_upload_bytes = std::size_t(o.max_upload_mb * 1024 * 1024);
  s.limits.max_pixels = std::uint64_t(std::llround(o.max_megapixels * 1e6));
  if (!serve::is_loopback(s.host))
    std::fprintf(stderr,
                 "cae: warning: --host %s is not loopback: anyone who can reach this machine on "
                 "port %d can use the server, which has no login and no TLS (docs/serve.md)\n",
                 s.host.c_str(), s.port);

  std::vector<serve::ServedModel> models;
  std::string listed;
  std::vector<std::string> given = o.model_paths;
  if (given.empty())  // every shipped model (its file's stem is its name)
    for (const io::ShippedModel& m : io::shipped_models(models_folder_from_environment()))
      given.push_back(m.path);
  if (given.empty())
    throw Error("serve: no model: give one with -m FILE (no shipped model was found; cae models "
                "says where it looked)");
  for (const std::string& path : given) {
    models.push_back({std::filesystem::path(path).stem().string(), load_model(path)});
    listed += (listed.empty() ? "" : ", ") + models.back().name +
              (models.back().model.informed() ? " (repair)" : " (denoise)");
  }
  serve::Server server(std::move(models), s);
  const int port = server.bind();
  SignalWaiter signals(server, stop_signals);
  const std::string host =
      s.host.find(':') != std::string::npos && s.host.front() != '[' ? "[" + s.host + "]" : s.host;
  std::fprintf(stderr,
               "cae serve: http://%s:%d/ serving %s; %d worker(s) of %d thread(s), "
               "queue %d; Ctrl-C stops\n",
               host.c_str(), port, listed.c_str(), s.workers, s.threads, s.queue);
  server.run();
  std::fprintf(stderr, "cae serve: stopped\n");
}

}  // namespace

void add_serve_command(CLI::App& app) {
  auto o = std::make_shared<ServeCommand>();
  CLI::App* cmd = app.add_subcommand(
      "serve",
      "a local web server: paint the damage in a browser and see it repaired, and an "
      "HTTP API for scripts (docs/serve.md)");
  o->common.add(cmd);
  cmd->add_option("-m,--model", o->model_paths,
                  "a model to serve: a file, named by its stem, or a shipped model's name "
                  "(repeat for more; default: every shipped model): informed models repair, "
                  "blind ones denoise");
  cmd->add_option("--host", o->serve.host,
                  "the address to listen on (default 127.0.0.1: this machine only; any other "
                  "prints a warning)");
  cmd->add_option("--port", o->serve.port, "the port (default 8080; 0: a free one, printed)")
      ->check(in_range(0, 65535));
  cmd->add_option("--workers", o->serve.workers,
                  "repairs run at once, sharing --threads (default 1)")
      ->check(in_range(1, 256));
  cmd->add_option("--queue", o->serve.queue,
                  "requests that may wait for a worker; one more is answered 503 with "
                  "Retry-After (default 16)")
      ->check(in_range(0, 100000));
  cmd->add_option("--max-upload-mb", o->max_upload_mb,
                  "refuse a request body above this many MiB, before reading it (default 32)")
      ->check(in_range(1e-3, 65536.0));
  cmd->add_option("--max-megapixels", o->max_megapixels,
                  "refuse an image or mask above this many megapixels, from its header, before "
                  "decoding it (default 24)")
      ->check(in_range(1e-6, 1e5));
  cmd->add_option("--max-adapt-steps", o->serve.limits.max_adapt_steps,
                  "the most adaptation steps a repair may ask for (default 1000)")
      ->check(in_range(0, 1000000));
  cmd->add_option("--web", o->serve.web_dir,
                  "serve the page from this folder (web/ of the sources, to edit it) instead of "
                  "the copy built into cae");
  cmd->footer(
      "The page is at http://HOST:PORT/. SIGINT or SIGTERM finishes the requests in "
      "flight and exits 0. docs/serve.md has the API, with curl examples, and the limits.");
  cmd->final_callback([o] { run(*o); });
}

}  // namespace cae::cli
