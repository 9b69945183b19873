// cae serve: a local web server for repairing and denoising photos. It serves the page (web/,
// built into the binary) and the HTTP API (docs/serve.md):
//   GET  /                 the page, its script and style sheet
//   GET  /healthz          {"status": "ok", ...}: up, and how busy
//   GET  /api/v1/models    the models, what each does, and the limits
//   POST /api/v1/repair    multipart image + mask (+ model, grow, adapt, seed): the repaired PNG
//   POST /api/v1/denoise   multipart image (+ model): the denoised PNG
// Bad input is answered 4xx with {"error": "..."} naming the problem; a full queue 503 with
// Retry-After. The HTTP library's types stay inside src/serve/.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "ops/ops.h"
#include "serve/jobs.h"
#include "serve/limits.h"

namespace cae::serve {

struct ServeOptions {
  std::string host = "127.0.0.1";  // loopback: nobody else can reach it (docs/serve.md says why)
  int port = 8080;                 // 0: a free port, chosen by the system
  int workers = kDefaultWorkers;   // jobs run at once
  int queue = kDefaultQueue;       // jobs that may wait; more are answered 503
  int threads = 1;                 // OpenMP threads of each worker's job
  ops::Backend backend = ops::Backend::dnnl;
  ops::ExecutorOptions executor{};  // how backend builds each job's executors (cae serve: from the
                                    // environment, read once at start)
  std::size_t max_upload_bytes = kDefaultMaxUploadMiB << 20;
  JobLimits limits;
  std::string web_dir;  // "": the page built into the binary; else its files from this folder
};

class Server {
 public:
  // Requires at least one model, their names distinct. Throws cae::Error otherwise, and for
  // options out of range.
  Server(std::vector<ServedModel> models, ServeOptions options);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Ensures the server listens on options.host: returns the port (a free one when options.port
  // is 0). Throws cae::Error naming the address when it cannot bind.
  int bind();
  // Requires bind(). Serves until stop(); returns once every request in flight is answered.
  void run();
  // Safe from any thread, before, during or after run(): no new connection is accepted, and
  // run() returns when those in flight are done.
  void stop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// True for the names of this machine's loopback interface: localhost, 127.0.0.0/8, ::1.
bool is_loopback(const std::string& host);

}  // namespace cae::serve
