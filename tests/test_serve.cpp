// cae serve over loopback: every route, answers equal to `cae repair` and `cae denoise` bit for
// bit, every bad input the issue names answered 4xx with a JSON error that names it (never 500,
// and the server still answers afterwards), the bounded queue's 503, the readers from bytes equal
// to the readers from files, and stopping with requests in flight, in-process and as `cae serve`
// under SIGTERM.
#include <arpa/inet.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <barrier>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <future>
#include <nlohmann/json.hpp>
#include <thread>

#include "core/atomic_file.h"
#include "data/corrupt.h"
#include "data/image_io.h"
#include "data/jpeg_io.h"
#include "data/mask.h"
#include "data/png_io.h"
#include "io/model_file.h"
#include "nn/model.h"
#include "nn/spec.h"
#include "serve/job_queue.h"
#include "serve/server.h"
#include "support.h"

using namespace cae;
using ::testing::HasSubstr;
using json = nlohmann::json;

namespace {

nn::Model informed_model(int channels, int side = 16) {
  nn::Model m(nn::parse_spec("conv 6 relu\nconv channels"), {channels + 1, side, side},
              nn::LossKind::bce, true);
  m.init_glorot(11);
  data::Corruption c;
  c.gaussian_sigma = 0;
  c.masks = 1;
  m.meta().emplace_back("corruption", c.describe());
  return m;
}

nn::Model blind_model(int channels, int side = 16) {
  nn::Model m(nn::parse_spec("conv 6 relu\nconv channels"), {channels, side, side},
              nn::LossKind::bce);
  m.init_glorot(5);
  m.meta().emplace_back("corruption", "gaussian sigma=0.3");
  return m;
}

// A mask of h×w: a disc and a diagonal stroke.
data::Image stroke_mask(int h, int w) {
  data::Image m;
  m.h = h, m.w = w, m.c = 1;
  m.pixels.assign(std::size_t(h) * w, 0);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) {
      const int dy = y - h / 3, dx = x - w / 3;
      if (dy * dy + dx * dx <= 16 || std::abs(y * w / h - x) <= 1)
        m.pixels[std::size_t(y) * w + x] = 255;
    }
  return m;
}

std::string as_string(const std::vector<std::uint8_t>& v) { return {v.begin(), v.end()}; }
std::string file_text(const std::string& path) { return as_string(read_file(path)); }
std::string png_text(const data::Image& img) { return as_string(data::png_bytes(img, "test")); }

// A PNG whose header claims w×h pixels and whose data is a few bytes: the decompression bomb.
std::string forged_png(std::uint32_t w, std::uint32_t h) {
  std::string out = "\x89PNG\r\n\x1a\n";
  const auto be32 = [](std::string& s, std::uint32_t v) {
    for (int k = 3; k >= 0; --k) s += char((v >> (8 * k)) & 0xff);
  };
  const auto chunk = [&](const std::string& type, const std::string& data) {
    be32(out, std::uint32_t(data.size()));
    const std::string body = type + data;
    out += body;
    be32(out,
         std::uint32_t(crc32(0, reinterpret_cast<const Bytef*>(body.data()), uInt(body.size()))));
  };
  std::string ihdr;
  be32(ihdr, w);
  be32(ihdr, h);
  ihdr += std::string("\x08\x02\x00\x00\x00", 5);  // 8-bit RGB
  chunk("IHDR", ihdr);
  chunk("IDAT", std::string("\x78\x9c\x03\x00\x00\x00\x00\x01", 8));
  chunk("IEND", "");
  return out;
}

struct Part {
  std::string name, content, filename, type;
};

std::string boundary() { return "----caeTestBoundary7MA4YWxkTrZu0gW"; }

std::string multipart_body(const std::vector<Part>& parts) {
  std::string body;
  for (const Part& p : parts) {
    body += "--" + boundary() + "\r\nContent-Disposition: form-data; name=\"" + p.name + "\"";
    if (!p.filename.empty()) body += "; filename=\"" + p.filename + "\"";
    body += "\r\n";
    if (!p.type.empty()) body += "Content-Type: " + p.type + "\r\n";
    body += "\r\n" + p.content + "\r\n";
  }
  return body + "--" + boundary() + "--\r\n";
}

// What came back from a request sent byte for byte over a socket.
struct RawAnswer {
  int status = 0;  // 0: the connection closed without an answer
  std::string head, body;
};

// Sends `request` as is and reads the answer until the server closes the connection. (The
// sending side stays open: httplib answers nobody who has hung up, even half-way.)
RawAnswer send_raw(int port, const std::string& request) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(std::uint16_t(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  RawAnswer a;
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    close(fd);
    return a;
  }
  std::size_t sent = 0;
  while (sent < request.size()) {
    const ssize_t n = send(fd, request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) break;
    sent += std::size_t(n);
  }
  timeval patience{15, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &patience, sizeof patience);
  std::string all;
  char buf[4096];
  for (ssize_t n; (n = recv(fd, buf, sizeof buf, 0)) > 0;) all.append(buf, std::size_t(n));
  close(fd);
  const auto end = all.find("\r\n\r\n");
  if (all.rfind("HTTP/1.1 ", 0) != 0 || end == std::string::npos) return a;
  a.status = std::stoi(all.substr(9, 3));
  a.head = all.substr(0, end);
  a.body = all.substr(end + 4);
  return a;
}

std::string post_head(const std::string& path, const std::string& type, std::size_t length) {
  return "POST " + path +
         " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Type: " + type +
         "\r\nContent-Length: " + std::to_string(length) + "\r\n\r\n";
}

// A server on a free loopback port, run on a thread of its own.
class Running {
 public:
  Running(std::vector<serve::ServedModel> models, serve::ServeOptions options)
      : server_(std::move(models), [&] {
          options.host = "127.0.0.1";
          options.port = 0;
          return options;
        }()) {
    port_ = server_.bind();
    thread_ = std::thread([this] { server_.run(); });
  }
  ~Running() { stop(); }
  void stop() {
    server_.stop();
    if (thread_.joinable()) thread_.join();
  }
  int port() const { return port_; }
  httplib::Client client() const {
    httplib::Client c("127.0.0.1", port_);
    c.set_read_timeout(60, 0);
    return c;
  }

 private:
  serve::Server server_;
  int port_ = 0;
  std::thread thread_;
};

serve::ServedModel load(const std::string& path) {
  return {std::filesystem::path(path).stem().string(),
          nn::Model::from_file(io::read_model_file(path), path)};
}

// Model files written once for the whole suite, and a server of them.
class Serve : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new std::string(test::scratch_dir());
    io::write_model_file(*dir_ + "/inpaint.cae", informed_model(3).to_file());
    io::write_model_file(*dir_ + "/gray.cae", informed_model(1).to_file());
    io::write_model_file(*dir_ + "/denoise.cae", blind_model(3).to_file());
    serve::ServeOptions options;
    options.threads = 2;
    options.max_upload_bytes = 1 << 20;  // 1 MiB: the over-the-limit test sends 2
    options.limits.max_pixels = 4'000'000;
    options.limits.max_adapt_steps = 50;
    server_ = new Running(
        {load(*dir_ + "/inpaint.cae"), load(*dir_ + "/gray.cae"), load(*dir_ + "/denoise.cae")},
        options);
  }
  static void TearDownTestSuite() {
    delete server_;
    delete dir_;
  }
  static std::string dir() { return *dir_; }
  static int port() { return server_->port(); }
  static httplib::Client client() { return server_->client(); }

  static httplib::Result post(const std::string& route,
                              const httplib::MultipartFormDataItems& items) {
    return client().Post(route.c_str(), items);
  }

  // Expects a 4xx JSON error naming `says`, then that the server still answers.
  static void expect_error(const httplib::Result& r, int status, const std::string& says) {
    ASSERT_TRUE(r) << "no answer: " << httplib::to_string(r.error());
    EXPECT_EQ(r->status, status) << r->body;
    EXPECT_THAT(r->get_header_value("Content-Type"), HasSubstr("application/json"));
    const json doc = json::parse(r->body, nullptr, false);
    ASSERT_TRUE(doc.is_object() && doc.contains("error")) << r->body;
    EXPECT_THAT(doc["error"].get<std::string>(), HasSubstr(says));
    expect_alive();
  }
  static void expect_alive() {
    const auto h = client().Get("/healthz");
    ASSERT_TRUE(h);
    EXPECT_EQ(h->status, 200);
  }

  static inline std::string* dir_ = nullptr;
  static inline Running* server_ = nullptr;
};

const int kH = 37, kW = 53;

}  // namespace

TEST(ServeReaders, FromBytesEqualFromFiles) {
  const std::string dir = test::scratch_dir();
  const data::Image rgb = test::textured_photo(kH, kW, 3, 2);
  data::write_png(dir + "/a.png", rgb);
  data::write_jpeg(dir + "/a.jpg", rgb, 90);
  data::Image16 wide;
  wide.h = kH, wide.w = kW, wide.c = 4;
  for (std::size_t i = 0; i < std::size_t(kH) * kW * 4; ++i)
    wide.pixels.push_back(std::uint16_t(i * 977));
  data::write_png16(dir + "/a16.png", wide);
  data::ReadOptions keep;
  keep.keep_alpha = true;
  for (const std::string name : {"a.png", "a.jpg", "a16.png"}) {
    const std::string path = dir + "/" + name;
    const std::vector<std::uint8_t> bytes = read_file(path);
    EXPECT_EQ(data::image_format(bytes, name), data::image_format(path)) << name;
    EXPECT_EQ(data::image_bits(bytes, name), data::image_bits(path)) << name;
    EXPECT_EQ(data::read_image_bytes(bytes, name, keep).pixels,
              data::read_image(path, keep).pixels);
    EXPECT_EQ(data::read_image16_bytes(bytes, name, keep).pixels,
              data::read_image16(path, keep).pixels);
    EXPECT_EQ(data::read_mask_bytes(bytes, name, {}).pixels, data::read_mask(path, {}).pixels);
  }
  const std::string bomb = forged_png(20000, 20000);
  data::ReadOptions limited;
  limited.max_pixels = 1'000'000;
  limited.limit_flag = "--max-megapixels";
  try {
    data::read_image_bytes({reinterpret_cast<const std::uint8_t*>(bomb.data()), bomb.size()},
                           "image", limited);
    ADD_FAILURE() << "the forged header was decoded";
  } catch (const data::PixelLimitError& e) {
    EXPECT_THAT(e.what(), HasSubstr("image: the image is 20000×20000 = 400000000 pixels"));
  }
  EXPECT_THAT(test::error_of([] { data::image_format(std::vector<std::uint8_t>{}, "image"); }),
              HasSubstr("image: not an image: the file is empty"));
}

TEST(ServeJobQueue, RunsWorkersQueuesTheNextAndRefusesTheRest) {
  int started = 0;
  serve::JobQueue queue(1, 1, [&started] { ++started; });
  std::promise<void> release;
  std::shared_future<void> gate = release.get_future().share();
  std::atomic<bool> second_ran{false};
  auto first = queue.submit([gate] { gate.wait(); });
  ASSERT_TRUE(first);
  while (queue.load().running == 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  auto second = queue.submit([&] { second_ran = true; });
  ASSERT_TRUE(second) << "one running: the next waits";
  EXPECT_EQ(queue.load().waiting, 1);
  EXPECT_FALSE(queue.submit([] {})) << "one running and one waiting: the third is refused";
  release.set_value();
  first->get();
  second->get();
  EXPECT_TRUE(second_ran);
  EXPECT_EQ(started, 1) << "the worker's start ran once, on its own thread";
  auto failing = queue.submit([] { throw Error("no"); });
  ASSERT_TRUE(failing);
  EXPECT_THROW(failing->get(), Error);
  EXPECT_EQ(queue.load().running, 0);
}

TEST_F(Serve, HealthModelsAndThePage) {
  auto c = client();
  const auto health = c.Get("/healthz");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);
  EXPECT_EQ(json::parse(health->body)["status"], "ok");

  const auto models = c.Get("/api/v1/models");
  ASSERT_TRUE(models);
  ASSERT_EQ(models->status, 200);
  const json doc = json::parse(models->body);
  ASSERT_EQ(doc["models"].size(), 3u);
  EXPECT_EQ(doc["models"][0]["name"], "inpaint");
  EXPECT_EQ(doc["models"][0]["kind"], "informed");
  EXPECT_EQ(doc["models"][0]["route"], "/api/v1/repair");
  EXPECT_EQ(doc["models"][0]["channels"], 3);
  EXPECT_EQ(doc["models"][1]["channels"], 1);
  EXPECT_EQ(doc["models"][2]["kind"], "blind");
  EXPECT_EQ(doc["models"][2]["route"], "/api/v1/denoise");
  EXPECT_FLOAT_EQ(doc["models"][2]["noise_sigma"].get<float>(), 0.3f);
  EXPECT_EQ(doc["models"][2]["meta"]["corruption"], "gaussian sigma=0.3");
  EXPECT_EQ(doc["limits"]["max_upload_bytes"], 1 << 20);
  EXPECT_EQ(doc["limits"]["max_pixels"], 4'000'000);

  const auto page = c.Get("/");
  ASSERT_TRUE(page);
  EXPECT_EQ(page->status, 200);
  EXPECT_THAT(page->get_header_value("Content-Type"), HasSubstr("text/html"));
  EXPECT_THAT(page->get_header_value("Content-Security-Policy"), HasSubstr("default-src 'self'"));
  EXPECT_THAT(page->body, HasSubstr("<canvas"));
  for (const char* file : {"/app.js", "/style.css"}) {
    const auto r = c.Get(file);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200) << file;
    EXPECT_FALSE(r->body.empty()) << file;
  }
  // Every file the page names is served: nothing comes from elsewhere.
  for (const std::string& ref : {std::string("app.js"), std::string("style.css")})
    EXPECT_THAT(page->body, HasSubstr(ref));
  EXPECT_THAT(page->body, ::testing::Not(HasSubstr("http://")));
  EXPECT_THAT(page->body, ::testing::Not(HasSubstr("https://")));
}

// The same files through the API and through `cae repair` give the same PNG bytes: 8-bit RGB,
// JPEG, 16-bit RGBA, gray with the colour model, and with --grow and --adapt.
TEST_F(Serve, RepairEqualsCaeRepairBitForBit) {
  const data::Image photo = test::textured_photo(kH, kW, 3, 1);
  const std::string mask_png = dir() + "/mask.png";
  data::write_png(mask_png, stroke_mask(kH, kW));
  data::write_png(dir() + "/photo.png", photo);
  data::write_jpeg(dir() + "/photo.jpg", photo, 85);
  data::Image16 wide;
  wide.h = kH, wide.w = kW, wide.c = 4;
  for (std::size_t p = 0; p < std::size_t(kH) * kW; ++p)
    for (int k = 0; k < 4; ++k)
      wide.pixels.push_back(std::uint16_t(k == 3 ? 40000 + p : photo.pixels[p * 3 + k] * 257 + k));
  data::write_png16(dir() + "/photo16.png", wide);
  data::write_png(dir() + "/gray.png", test::textured_photo(kH, kW, 1, 4));

  struct Case {
    std::string photo, model, flags;
    httplib::MultipartFormDataItems extra;
  };
  const std::vector<Case> cases = {
      {"photo.png", "inpaint", "", {}},
      {"photo.jpg", "inpaint", "", {}},
      {"photo16.png", "inpaint", "", {}},
      {"gray.png", "gray", "", {{"model", "gray", "", ""}}},
      {"photo.png",
       "inpaint",
       "--grow 2 --adapt 3 --seed 7",
       {{"grow", "2", "", ""}, {"adapt", "3", "", ""}, {"seed", "7", "", ""}}},
  };
  for (const Case& k : cases) {
    httplib::MultipartFormDataItems items = {
        {"image", file_text(dir() + "/" + k.photo), k.photo, "application/octet-stream"},
        {"mask", file_text(mask_png), "mask.png", "image/png"}};
    items.insert(items.end(), k.extra.begin(), k.extra.end());
    const auto r = post("/api/v1/repair", items);
    ASSERT_TRUE(r) << k.photo;
    ASSERT_EQ(r->status, 200) << k.photo << ": " << r->body;
    EXPECT_EQ(r->get_header_value("Content-Type"), "image/png");
    EXPECT_EQ(r->get_header_value("X-Cae-Model"), k.model);
    const std::string out = dir() + "/cli-" + k.model + "-" + k.photo + ".png";
    const auto cli =
        test::run_cae("repair " + dir() + "/" + k.photo + " --mask " + mask_png + " -m " + dir() +
                      "/" + k.model + ".cae --threads 2 " + k.flags + " -o " + out);
    ASSERT_EQ(cli.status, 0) << cli.output;
    EXPECT_TRUE(r->body == file_text(out))
        << k.photo << " " << k.flags << ": the server's PNG differs from cae repair's";
    EXPECT_THAT(cli.output, HasSubstr(r->get_header_value("X-Cae-Damaged-Pixels") + " damaged"));
  }
}

TEST_F(Serve, DenoiseEqualsCaeDenoiseBitForBit) {
  data::write_png(dir() + "/noisy.png", test::textured_photo(kH, kW, 3, 9));
  const auto r = post("/api/v1/denoise",
                      {{"image", file_text(dir() + "/noisy.png"), "noisy.png", "image/png"}});
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  EXPECT_EQ(r->get_header_value("X-Cae-Model"), "denoise");
  const auto cli = test::run_cae("denoise " + dir() + "/noisy.png -m " + dir() +
                                 "/denoise.cae --threads 2 -o " + dir() + "/denoised");
  ASSERT_EQ(cli.status, 0) << cli.output;
  EXPECT_TRUE(r->body == file_text(dir() + "/denoised/noisy.png"));
  // A gray photo through the colour denoiser: gray in every channel, gray back, as the CLI does.
  data::write_png(dir() + "/gray.png", test::textured_photo(kH, kW, 1, 9));
  const auto g = post("/api/v1/denoise",
                      {{"image", file_text(dir() + "/gray.png"), "gray.png", "image/png"}});
  ASSERT_TRUE(g);
  ASSERT_EQ(g->status, 200) << g->body;
  const auto gray_cli = test::run_cae("denoise " + dir() + "/gray.png -m " + dir() +
                                      "/denoise.cae --threads 2 -o " + dir() + "/gray-out.png");
  ASSERT_EQ(gray_cli.status, 0) << gray_cli.output;
  EXPECT_TRUE(g->body == file_text(dir() + "/gray-out.png"));
  EXPECT_EQ(data::read_png(dir() + "/gray-out.png").c, 1);
}

TEST_F(Serve, BadInputIsA4xxThatNamesTheProblem) {
  const std::string photo = png_text(test::textured_photo(kH, kW, 3, 1));
  const std::string mask = png_text(stroke_mask(kH, kW));
  const auto repair = [&](httplib::MultipartFormDataItems items) {
    return post("/api/v1/repair", items);
  };
  // Not an image, as the photo and as the mask.
  expect_error(
      repair({{"image", "hello, I am text", "x.png", "image/png"}, {"mask", mask, "m.png", ""}}),
      400, "image: not a PNG or JPEG file");
  expect_error(repair({{"image", photo, "p.png", ""}, {"mask", "GIF89a....", "m.gif", ""}}), 400,
               "mask: not a PNG or JPEG file");
  // A PNG cut short, and a PNG whose header claims 20000×20000 (the decompression bomb).
  expect_error(repair({{"image", photo.substr(0, photo.size() / 2), "p.png", ""},
                       {"mask", mask, "m.png", ""}}),
               400, "image: invalid PNG");
  expect_error(
      repair({{"image", forged_png(20000, 20000), "bomb.png", ""}, {"mask", mask, "m.png", ""}}),
      413, "20000×20000 = 400000000 pixels, above the limit of 4000000");
  // A mask of another size.
  expect_error(repair({{"image", photo, "p.png", ""},
                       {"mask", png_text(stroke_mask(kH + 1, kW)), "m.png", ""}}),
               400, "mask: the mask is 53×38, the image 53×37");
  // An unknown model, a blind model for a repair, an informed one for a denoise.
  expect_error(
      repair(
          {{"image", photo, "p.png", ""}, {"mask", mask, "m.png", ""}, {"model", "nope", "", ""}}),
      400, "unknown model 'nope': the models are inpaint, gray, denoise");
  expect_error(repair({{"image", photo, "p.png", ""},
                       {"mask", mask, "m.png", ""},
                       {"model", "denoise", "", ""}}),
               400, "'denoise' is blind");
  expect_error(
      post("/api/v1/denoise", {{"image", photo, "p.png", ""}, {"model", "inpaint", "", ""}}), 400,
      "'inpaint' is informed");
  // A colour photo for the gray model (a gray one goes through a colour model).
  expect_error(
      repair(
          {{"image", photo, "p.png", ""}, {"mask", mask, "m.png", ""}, {"model", "gray", "", ""}}),
      400, "");
  // Missing, unknown, repeated and malformed fields.
  expect_error(repair({{"image", photo, "p.png", ""}}), 400, "the field 'mask' is missing");
  expect_error(
      repair({{"image", photo, "p.png", ""}, {"mask", mask, "m.png", ""}, {"grwo", "2", "", ""}}),
      400, "unknown field 'grwo'");
  expect_error(repair({{"image", photo, "p.png", ""},
                       {"image", photo, "p.png", ""},
                       {"mask", mask, "m.png", ""}}),
               400, "the field 'image' is given twice");
  expect_error(
      repair({{"image", photo, "p.png", ""}, {"mask", mask, "m.png", ""}, {"grow", "two", "", ""}}),
      400, "grow: 'two' is not a whole number from 0 to 1000");
  expect_error(
      repair({{"image", photo, "p.png", ""}, {"mask", mask, "m.png", ""}, {"adapt", "51", "", ""}}),
      400, "adapt: '51' is not a whole number from 0 to 50");
  // A wrong content type.
  expect_error(client().Post("/api/v1/repair", "{\"image\": 1}", "application/json"), 415,
               "takes multipart/form-data");
  expect_error(client().Post("/api/v1/denoise", photo, "image/png"), 415, "not 'image/png'");
  // An upload over the limit (1 MiB here): refused from its Content-Length.
  expect_error(
      repair({{"image", std::string(2 << 20, 'x'), "big.png", ""}, {"mask", mask, "m.png", ""}}),
      413, "above the limit of 1048576 bytes");
  // A route that does not exist, and a GET where POST is needed.
  expect_error(client().Get("/api/v2/repair"), 404, "no route GET /api/v2/repair");
  expect_error(client().Get("/api/v1/repair"), 405, "takes POST");
}

TEST_F(Serve, TruncatedMultipartBodiesAreRefused) {
  const std::string photo = png_text(test::textured_photo(kH, kW, 3, 1));
  const std::string body = multipart_body({{"image", photo, "p.png", "image/png"},
                                           {"mask", png_text(stroke_mask(kH, kW)), "m.png", ""}});
  const std::string type = "multipart/form-data; boundary=" + boundary();
  // Cut before the closing boundary, Content-Length saying what was sent.
  const std::string cut = body.substr(0, body.size() / 2);
  RawAnswer a = send_raw(port(), post_head("/api/v1/repair", type, cut.size()) + cut);
  EXPECT_EQ(a.status, 400) << a.head << a.body;
  EXPECT_THAT(a.body, HasSubstr("\"error\""));
  // Content-Length promising more than comes: the server waits kReadTimeoutSeconds for the
  // rest, then refuses it.
  a = send_raw(port(), post_head("/api/v1/repair", type, body.size()) + cut);
  EXPECT_EQ(a.status, 400) << a.head << a.body;
  EXPECT_THAT(a.body, HasSubstr("\"error\""));
  // No boundary in the Content-Type at all.
  a = send_raw(port(), post_head("/api/v1/repair", "multipart/form-data", body.size()) + body);
  EXPECT_GE(a.status, 400) << a.head;
  EXPECT_LT(a.status, 500) << a.head;
  // The whole body, sent the same way, is repaired.
  a = send_raw(port(), post_head("/api/v1/repair", type, body.size()) + body);
  EXPECT_EQ(a.status, 200) << a.body;
  expect_alive();
}

TEST(ServeQueue, AFullQueueIsAnswered503WithRetryAfter) {
  const std::string dir = test::scratch_dir();
  serve::ServeOptions options;
  options.workers = 1;
  options.queue = 0;
  Running server({{"inpaint", informed_model(3)}}, options);
  const int h = 400, w = 400;
  const std::string photo = png_text(test::textured_photo(h, w, 3, 1));
  data::Image all = stroke_mask(h, w);
  std::fill(all.pixels.begin(), all.pixels.end(), 255);  // every tile runs: a slow repair
  const std::string mask = png_text(all);
  const int clients = 6;
  std::vector<int> status(clients);
  std::vector<std::string> retry(clients);
  std::barrier start(clients);
  std::vector<std::thread> threads;
  for (int i = 0; i < clients; ++i)
    threads.emplace_back([&, i] {
      auto c = server.client();
      start.arrive_and_wait();
      const auto r =
          c.Post("/api/v1/repair", httplib::MultipartFormDataItems{{"image", photo, "p.png", ""},
                                                                   {"mask", mask, "m.png", ""}});
      status[i] = r ? r->status : 0;
      if (r) retry[i] = r->get_header_value("Retry-After");
    });
  for (auto& t : threads) t.join();
  int ok = 0, busy = 0;
  for (int i = 0; i < clients; ++i) {
    if (status[i] == 200) ++ok;
    if (status[i] == 503) {
      ++busy;
      EXPECT_EQ(retry[i], std::to_string(serve::kRetryAfterSeconds));
    }
    EXPECT_TRUE(status[i] == 200 || status[i] == 503) << status[i];
  }
  EXPECT_GE(ok, 1);
  EXPECT_GE(busy, 1) << "six at once, one worker and no queue: some must be turned away";
}

TEST(ServeStop, FinishesTheRequestInFlight) {
  serve::ServeOptions options;
  Running server({{"inpaint", informed_model(3)}}, options);
  const int h = 400, w = 400;
  const std::string photo = png_text(test::textured_photo(h, w, 3, 1));
  data::Image all = stroke_mask(h, w);
  std::fill(all.pixels.begin(), all.pixels.end(), 255);
  int status = 0;
  std::size_t bytes = 0;
  std::thread request([&] {
    const auto r = server.client().Post(
        "/api/v1/repair", httplib::MultipartFormDataItems{{"image", photo, "p.png", ""},
                                                          {"mask", png_text(all), "m.png", ""}});
    status = r ? r->status : 0;
    bytes = r ? r->body.size() : 0;
  });
  // Stop once the repair runs.
  for (int i = 0; i < 5000; ++i) {
    const auto h = server.client().Get("/healthz");
    if (h && json::parse(h->body)["running"] == 1) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  server.stop();
  request.join();
  EXPECT_EQ(status, 200);
  EXPECT_GT(bytes, 1000u);
  EXPECT_FALSE(server.client().Get("/healthz")) << "stopped: nothing answers";
}

TEST(ServeCli, ServesUntilSigtermThenExitsZero) {
  const std::string dir = test::scratch_dir();
  io::write_model_file(dir + "/inpaint.cae", informed_model(3).to_file());
  const std::string log = dir + "/serve.log";
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    std::freopen(log.c_str(), "w", stderr);
    execl(CAE_EXE, CAE_EXE, "serve", "-m", (dir + "/inpaint.cae").c_str(), "--port", "0",
          "--threads", "2", static_cast<char*>(nullptr));
    _exit(127);
  }
  int port = 0;
  for (int i = 0; i < 3000 && port == 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    std::ifstream in(log);
    std::string text((std::istreambuf_iterator<char>(in)), {});
    const auto at = text.find("http://127.0.0.1:");
    if (at != std::string::npos) port = std::atoi(text.c_str() + at + 17);
  }
  ASSERT_GT(port, 0) << "cae serve printed no address";
  httplib::Client c("127.0.0.1", port);
  const auto h = c.Get("/healthz");
  ASSERT_TRUE(h);
  EXPECT_EQ(h->status, 200);
  kill(pid, SIGTERM);
  int wstatus = 0;
  waitpid(pid, &wstatus, 0);
  EXPECT_TRUE(WIFEXITED(wstatus)) << "ended by a signal";
  EXPECT_EQ(WEXITSTATUS(wstatus), 0);
  std::ifstream in(log);
  std::string text((std::istreambuf_iterator<char>(in)), {});
  EXPECT_THAT(text, HasSubstr("SIGTERM: finishing the requests in flight"));
  EXPECT_THAT(text, HasSubstr("cae serve: stopped"));
}

TEST(ServeCli, WarnsOffLoopbackAndRefusesNoModel) {
  // No -m and no shipped model ($CAE_MODELS, an empty folder, is the only one searched).
  const std::string dir = test::scratch_dir();
  const auto none = test::run_shell("CAE_MODELS=" + dir + " " + CAE_EXE + " serve --port 0");
  EXPECT_EQ(none.status, 1) << none.output;
  EXPECT_THAT(none.output, HasSubstr("cae: error: serve: no model: give one with -m FILE"));
  io::write_model_file(dir + "/a.cae", informed_model(3).to_file());
  std::filesystem::create_directories(dir + "/b");
  io::write_model_file(dir + "/b/a.cae", informed_model(3).to_file());
  const auto twice = test::run_cae("serve -m " + dir + "/a.cae -m " + dir + "/b/a.cae --port 0");
  EXPECT_EQ(twice.status, 1);
  EXPECT_THAT(twice.output, HasSubstr("two models are named 'a'"));
  // Off loopback: the warning comes before anything else; the port is taken, so it stops there.
  const int blocker = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  socklen_t length = sizeof addr;
  ASSERT_EQ(::bind(blocker, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(listen(blocker, 1), 0);
  getsockname(blocker, reinterpret_cast<sockaddr*>(&addr), &length);
  const int taken = ntohs(addr.sin_port);
  const auto wide =
      test::run_cae("serve -m " + dir + "/a.cae --host 0.0.0.0 --port " + std::to_string(taken));
  EXPECT_THAT(wide.output, HasSubstr("warning: --host 0.0.0.0 is not loopback"));
  EXPECT_EQ(wide.status, 1);
  EXPECT_THAT(wide.output, HasSubstr("cannot listen on 0.0.0.0:" + std::to_string(taken)));
  close(blocker);
}
