// The HTTP side of cae serve: routes, limits, the queue, the page. Every route is thin: it
// checks its request, runs one job (serve/jobs.h, the same library calls as the CLI), and turns
// errors into a 4xx with a JSON body.
#include "serve/server.h"

#include <httplib.h>
#include <omp.h>
#include <sys/socket.h>

#include <atomic>
#include <charconv>
#include <chrono>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "core/atomic_file.h"
#include "data/png_io.h"
#include "serve/job_queue.h"
#include "serve/web_assets.h"

namespace cae::serve {

namespace {

using httplib::Request;
using httplib::Response;

void send_error(Response& res, int status, const std::string& message) {
  res.status = status;
  res.set_content(nlohmann::json{{"error", message}}.dump() + "\n", "application/json");
}

// The JSON a status gets when nothing more precise was said: httplib answers these itself (a
// body it cannot read, one above the size limit, a path no route takes) before any route runs.
std::string default_message(const Request& req, int status, std::size_t max_upload_bytes) {
  switch (status) {
    case 400:
      return "bad request: the body could not be read (truncated before its Content-Length, or "
             "a multipart/form-data body that is malformed or lacks its closing boundary)";
    case 404:
      return "no route " + req.method + " " + req.path +
             ": the API is GET /healthz, GET /api/v1/models, POST /api/v1/repair, POST "
             "/api/v1/denoise (docs/serve.md)";
    case 413:
      return "the request body is " +
             (req.has_header("Content-Length") ? req.get_header_value("Content-Length")
                                               : std::string("more than")) +
             " bytes, above the limit of " + std::to_string(max_upload_bytes) +
             " bytes (the server's --max-upload-mb)";
    case 414:
      return "the request's URI is too long";
    default:
      return "HTTP status " + std::to_string(status);
  }
}

// A form field's text as a whole number in [lo, hi].
template <class T>
T parse_number(const std::string& field, const std::string& text, T lo, T hi) {
  T value{};
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size() || value < lo || value > hi)
    throw RequestError(400, field + ": '" + text.substr(0, 40) + "' is not a whole number from " +
                                std::to_string(lo) + " to " + std::to_string(hi));
  return value;
}

std::span<const std::uint8_t> bytes_of(const std::string& s) {
  return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}

enum class JobKind { repair, denoise };

}  // namespace

bool is_loopback(const std::string& host) {
  return host == "localhost" || host == "::1" || host == "[::1]" || host.rfind("127.", 0) == 0;
}

struct Server::Impl {
  Impl(std::vector<ServedModel> m, ServeOptions o)
      : models(std::move(m)),
        options(std::move(o)),
        // OpenMP's thread count is per thread: each worker runs with its share of the cores.
        jobs(options.workers, options.queue, [n = options.threads] { omp_set_num_threads(n); }) {}

  std::vector<ServedModel> models;
  ServeOptions options;
  JobQueue jobs;
  httplib::Server http;
  std::atomic<bool> stopping{false}, running{false}, finished{false};

  void routes();
  void job(const Request& req, Response& res, JobKind kind);
  void web(const Request& req, Response& res, const std::string& name);
  std::map<std::string, const httplib::MultipartFormData*> form(
      const Request& req, const std::set<std::string>& allowed, const std::string& route) const;
  const ServedModel& model(const std::string& name, JobKind kind) const;
};

// The form's fields by name. Refuses a body that is not multipart/form-data, a field the route
// does not take (a typo would otherwise be ignored in silence) and a field given twice.
std::map<std::string, const httplib::MultipartFormData*> Server::Impl::form(
    const Request& req, const std::set<std::string>& allowed, const std::string& route) const {
  std::string names;
  for (const std::string& a : allowed) names += (names.empty() ? "" : ", ") + a;
  if (!req.is_multipart_form_data())
    throw RequestError(415, route + " takes multipart/form-data (fields " + names + "), not '" +
                                (req.has_header("Content-Type")
                                     ? req.get_header_value("Content-Type").substr(0, 80)
                                     : std::string("no Content-Type")) +
                                "' (curl -F image=@photo.png ...)");
  std::map<std::string, const httplib::MultipartFormData*> fields;
  for (const auto& [name, part] : req.files) {
    if (!allowed.count(name))
      throw RequestError(
          400, "unknown field '" + name.substr(0, 40) + "': " + route + " takes " + names);
    if (!fields.emplace(name, &part).second)
      throw RequestError(400, "the field '" + name + "' is given twice");
  }
  return fields;
}

// The model a request names, or without a name the first of the kind the route needs.
const ServedModel& Server::Impl::model(const std::string& name, JobKind kind) const {
  std::string names;
  for (const ServedModel& m : models) {
    if (name.empty() ? m.model.informed() == (kind == JobKind::repair) : m.name == name) return m;
    names += (names.empty() ? "" : ", ") + m.name;
  }
  if (name.empty())
    throw RequestError(
        400, std::string("no ") +
                 (kind == JobKind::repair ? "informed model (repair)" : "blind model (denoise)") +
                 " is served; the models are " + names);
  throw RequestError(400, "unknown model '" + name.substr(0, 80) + "': the models are " + names +
                              " (GET /api/v1/models)");
}

void Server::Impl::job(const Request& req, Response& res, JobKind kind) {
  const bool repair = kind == JobKind::repair;
  const std::string route = repair ? "/api/v1/repair" : "/api/v1/denoise";
  const auto start = std::chrono::steady_clock::now();
  try {
    const auto fields =
        form(req,
             repair ? std::set<std::string>{"image", "mask", "model", "grow", "adapt", "seed"}
                    : std::set<std::string>{"image", "model"},
             route);
    const auto text = [&fields](const std::string& name) {
      const auto it = fields.find(name);
      return it == fields.end() ? std::string() : it->second->content;
    };
    const auto file = [&fields, &route](const std::string& name) -> const std::string& {
      const auto it = fields.find(name);
      if (it == fields.end())
        throw RequestError(400, "the field '" + name + "' is missing: " + route + " takes the " +
                                    (name == "mask" ? "mask, an image of the photo's size, "
                                                      "non-zero where to repair"
                                                    : "photo, a PNG or JPEG file"));
      return it->second->content;
    };
    const ServedModel& served = model(text("model"), kind);
    RepairRequest request;
    request.image = bytes_of(file("image"));
    if (repair) {
      request.mask = bytes_of(file("mask"));
      if (fields.count("grow"))
        request.grow = parse_number(std::string("grow"), text("grow"), 0, 1000);
      if (fields.count("adapt"))
        request.adapt =
            parse_number(std::string("adapt"), text("adapt"), 0, options.limits.max_adapt_steps);
      if (fields.count("seed"))
        request.seed = parse_number<std::uint64_t>("seed", text("seed"), 0,
                                                   std::numeric_limits<std::uint64_t>::max());
    }

    JobReport report;
    std::vector<std::uint8_t> png;
    // The request's bytes live in req until the answer is sent, so the job may point into them.
    std::optional<std::future<void>> done = jobs.submit([&] {
      png = repair ? repair_png(served, request, options.limits, options.backend, options.executor,
                                &report)
                   : denoise_png(served, request.image, options.limits, options.backend,
                                 options.executor, &report);
    });
    if (!done) {
      const JobQueue::Load load = jobs.load();
      res.set_header("Retry-After", std::to_string(kRetryAfterSeconds));
      send_error(res, 503,
                 "busy: " + std::to_string(load.running) + " job(s) running and " +
                     std::to_string(load.waiting) +
                     " waiting, the most the server takes (--workers " +
                     std::to_string(load.workers) + ", --queue " + std::to_string(load.queue) +
                     "); try again in " + std::to_string(kRetryAfterSeconds) + " s");
      return;
    }
    done->get();  // the job's exception, if any, is thrown here
    res.set_content(reinterpret_cast<const char*>(png.data()), png.size(), "image/png");
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    res.set_header("Cache-Control", "no-store");
    res.set_header("X-Cae-Model", served.name);
    res.set_header("X-Cae-Size", std::to_string(report.w) + "x" + std::to_string(report.h) + "x" +
                                     std::to_string(report.c) + "@" + std::to_string(report.bits));
    res.set_header("X-Cae-Tiles", std::to_string(report.tiles.tiles_run) + "/" +
                                      std::to_string(report.tiles.tiles));
    if (repair) {
      res.set_header("X-Cae-Damaged-Pixels", std::to_string(report.damaged));
      res.set_header("X-Cae-Adapted", report.adapted ? "1" : "0");
    }
    char elapsed[32];
    std::snprintf(elapsed, sizeof elapsed, "%.3f", seconds);
    res.set_header("X-Cae-Seconds", elapsed);
  } catch (const RequestError& e) {
    send_error(res, e.status(), e.what());
  } catch (const data::PixelLimitError& e) {
    send_error(res, 413, e.what());
  } catch (const Error& e) {
    // The library's errors on a request are its input's: a broken file, a size or channel
    // mismatch, a model that cannot take it.
    send_error(res, 400, e.what());
  }
}

void Server::Impl::web(const Request&, Response& res, const std::string& name) {
  if (!options.web_dir.empty()) {
    const std::filesystem::path path = std::filesystem::path(options.web_dir) / name;
    if (!std::filesystem::is_regular_file(path))
      return send_error(res, 404, "no page file " + name);
    const std::vector<std::uint8_t> bytes = read_file(path.string());
    res.set_content(reinterpret_cast<const char*>(bytes.data()), bytes.size(),
                    std::string(web_content_type(name)).c_str());
  } else {
    const auto files = web_files();
    const auto it = std::find_if(files.begin(), files.end(),
                                 [&name](const WebFile& f) { return f.name == name; });
    if (it == files.end()) return send_error(res, 404, "no page file " + name);
    res.set_content(it->body.data(), it->body.size(), std::string(it->content_type).c_str());
  }
  // Everything the page loads comes from this server: no CDN, no network.
  res.set_header("Content-Security-Policy",
                 "default-src 'self'; img-src 'self' blob: data:; connect-src 'self'; "
                 "object-src 'none'; base-uri 'none'; frame-ancestors 'none'");
  res.set_header("Cache-Control", "no-cache");
}

void Server::Impl::routes() {
  http.set_default_headers(
      {{"X-Content-Type-Options", "nosniff"}, {"Referrer-Policy", "no-referrer"}});
  http.Get("/healthz", [this](const Request&, Response& res) {
    const JobQueue::Load load = jobs.load();
    const nlohmann::json doc = {{"status", "ok"},          {"models", models.size()},
                                {"running", load.running}, {"waiting", load.waiting},
                                {"workers", load.workers}, {"queue", load.queue}};
    res.set_header("Cache-Control", "no-store");
    res.set_content(doc.dump() + "\n", "application/json");
  });
  http.Get("/api/v1/models", [this](const Request&, Response& res) {
    res.set_content(models_json(models, options.limits, options.max_upload_bytes) + "\n",
                    "application/json");
  });
  http.Post("/api/v1/repair",
            [this](const Request& req, Response& res) { job(req, res, JobKind::repair); });
  http.Post("/api/v1/denoise",
            [this](const Request& req, Response& res) { job(req, res, JobKind::denoise); });
  for (const char* route : {"/api/v1/repair", "/api/v1/denoise"})
    http.Get(route, [route](const Request&, Response& res) {
      res.set_header("Allow", "POST");
      send_error(res, 405, std::string(route) + " takes POST with multipart/form-data");
    });
  http.Get("/", [this](const Request& req, Response& res) { web(req, res, "index.html"); });
  http.Get(R"(/([A-Za-z0-9_-]+\.[A-Za-z0-9]+))",
           [this](const Request& req, Response& res) { web(req, res, req.matches[1]); });

  const std::size_t max_upload = options.max_upload_bytes;
  http.set_error_handler([max_upload](const Request& req, Response& res) {
    if (res.body.empty()) send_error(res, res.status, default_message(req, res.status, max_upload));
  });
  // What escapes a route is the server's fault, not the request's (out of memory, a bug).
  http.set_exception_handler([](const Request&, Response& res, std::exception_ptr e) {
    std::string what = "unknown exception";
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& x) {
      what = x.what();
    } catch (...) {
    }
    send_error(res, 500, "internal error: " + what);
  });
}

Server::Server(std::vector<ServedModel> models, ServeOptions options) {
  if (models.empty()) throw Error("serve: no model to serve: give one or more with -m MODEL");
  std::set<std::string> names;
  for (const ServedModel& m : models)
    if (!names.insert(m.name).second)
      throw Error("serve: two models are named '" + m.name +
                  "' (a model is named by its file's stem): rename one of the files");
  if (options.threads < 1) throw Error("serve: threads per worker must be at least 1");
  if (!options.web_dir.empty() &&
      !std::filesystem::is_regular_file(std::filesystem::path(options.web_dir) / "index.html"))
    throw Error("--web " + options.web_dir + ": no index.html in it");
  impl_ = std::make_unique<Impl>(std::move(models), std::move(options));
  Impl& s = *impl_;
  // One connection takes one thread while it lives: enough for every worker and queued job, and
  // for the cheap requests beside them.
  const std::size_t connections =
      std::size_t(s.options.workers + s.options.queue + kSpareConnections);
  s.http.new_task_queue = [connections] { return new httplib::ThreadPool(connections); };
  s.http.set_payload_max_length(s.options.max_upload_bytes);
  s.http.set_read_timeout(kReadTimeoutSeconds, 0);
  s.http.set_keep_alive_max_count(100);
  // httplib's default sets SO_REUSEPORT, with which a second server on the same port binds too
  // and the kernel splits the connections between them: SO_REUSEADDR alone (a restart can bind
  // at once), so that a port in use is an error.
  s.http.set_socket_options([](int sock) {
    int yes = 1;
    setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
  });
  s.routes();
}

Server::~Server() = default;

int Server::bind() {
  Impl& s = *impl_;
  const int port = s.options.port == 0 ? s.http.bind_to_any_port(s.options.host)
                   : s.http.bind_to_port(s.options.host, s.options.port) ? s.options.port
                                                                         : -1;
  if (port < 0)
    throw Error("serve: cannot listen on " + s.options.host + ":" + std::to_string(s.options.port) +
                " (" + std::strerror(errno) + "): is another server on that port? (--port)");
  return port;
}

void Server::run() {
  Impl& s = *impl_;
  // A client that hangs up before its answer is written must not end the server.
  std::signal(SIGPIPE, SIG_IGN);
  s.running = true;
  if (!s.stopping) s.http.listen_after_bind();
  s.finished = true;
}

void Server::stop() {
  Impl& s = *impl_;
  s.stopping = true;
  if (!s.running) return;  // run() sees stopping and does not start
  // run() may be between its check and httplib's loop: wait for the loop, then end it.
  while (!s.http.is_running() && !s.finished)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  s.http.stop();
}

}  // namespace cae::serve
