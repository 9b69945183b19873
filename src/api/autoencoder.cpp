// The embedding API (include/cae/cae.h) over nn::Model and the executors. Encoding and decoding
// run the model's op list split at the latent: the encoder is ops [0, split), the decoder ops
// [split, end), each compiled as a net of its own with its share of the parameters, so no
// internal type appears in the public header.
#include <algorithm>
#include <map>
#include <mutex>

#include "cae/cae.h"
#include "core/atomic_file.h"
#include "core/isa.h"
#include "io/model_file.h"
#include "io/model_store.h"
#include "nn/model.h"
#include "train/figures.h"
#include "train/repair.h"

#ifndef CAE_VERSION
#error "CAE_VERSION must be defined (cmake/onnx.cmake)"
#endif

namespace cae {

namespace {

enum class Part { whole, encoder, decoder };

Shape shape_of(ops::Dims d) { return Shape{d.c, d.h, d.w}; }

std::string shape_text(Shape s) {
  return std::to_string(s.channels) + "x" + std::to_string(s.height) + "x" +
         std::to_string(s.width);
}

bool is_upsampling(ops::OpKind kind) { return ops::op_info(kind).upsamples; }

// The engine's struct for the public one (the fields the API's dnnl executors read).
ops::ExecutorOptions executor_options(const EngineOptions& o) {
  using K = ops::ExecutorOptions::Kernels;
  using W = ops::ExecutorOptions::Winograd;
  ops::ExecutorOptions e;
  e.kernels = o.kernels == EngineOptions::Kernels::fixed ? K::fixed : K::measured;
  e.kernel_cache = o.kernel_cache;
  e.winograd = o.winograd == EngineOptions::Winograd::cae      ? W::cae
               : o.winograd == EngineOptions::Winograd::onednn ? W::onednn
                                                               : W::off;
  e.winograd_tile = o.winograd_tile;
  e.thin_convs = o.thin_convs;
  e.own_maxpool = o.own_maxpool;
  using P = ops::ExecutorOptions::Precision;
  e.precision = o.precision == EngineOptions::Precision::bf16 ? P::bf16 : P::f32;
  return e;
}

// options.max_isa, when given, as the process's cap (core/isa.h): oneDNN's too, as CAE_MAX_ISA.
void apply_max_isa(const EngineOptions& o) {
  if (o.max_isa.empty()) return;
  set_isa_cap({parse_isa(o.max_isa, "EngineOptions::max_isa"), "max_isa=" + o.max_isa, true, ""});
}

}  // namespace

struct Autoencoder::Impl {
  nn::Model source;  // as the file holds it: what repair() runs (and adapts), as cae repair does
  nn::Model model;   // folded: inference only, so batchnorm lives in the convs' weights
  std::vector<ops::OpDesc> ops;  // the model's ops, shapes resolved (batch-independent)
  int split = -1;                // index of the first upsampling op, -1 when there is none
  int crossing_join = -1;        // a decoder op joining an encoder activation (a skip), or -1
  std::size_t encoder_params = 0;
  // The load's options: repair's adaptation trains with them, its tiles run inference. The
  // parts' executors run forward passes only, so a measured choice times those alone.
  ops::ExecutorOptions engine, forward;
  std::mutex mutex;
  std::map<std::pair<Part, int>, std::unique_ptr<ops::Executor>> executors;

  Impl(const nn::Model& m, const ops::ExecutorOptions& o)
      : source(m), model(m.folded()), engine(o), forward(o) {
    forward.forward_only = true;
    ops = model.net(1).ops;
    for (std::size_t i = 0; i < ops.size() && split < 0; ++i)
      if (is_upsampling(ops[i].kind)) split = int(i);
    for (int i = std::max(split, 0); split >= 0 && i < int(ops.size()); ++i)
      if (ops::is_join(ops[i].kind) && ops[i].other < split && crossing_join < 0) crossing_join = i;
    if (split >= 0) {
      ops::NetDesc encoder = part_net(Part::encoder, 1);
      encoder_params = encoder.ops.empty() ? 0 : ops::param_infos(encoder).size();
    }
  }

  ops::Dims latent() const { return split > 0 ? ops[split - 1].out : model.input(); }

  ops::NetDesc part_net(Part part, int batch) const {
    ops::NetDesc net;
    net.batch = batch;
    const std::size_t begin = part == Part::decoder ? split : 0;
    const std::size_t end = part == Part::encoder ? split : ops.size();
    net.input = part == Part::decoder ? latent() : model.input();
    net.ops.assign(ops.begin() + begin, ops.begin() + end);
    // The decoder alone: its joins read its own activations (no crossing_join), renumbered.
    for (ops::OpDesc& op : net.ops)
      if (ops::is_join(op.kind)) op.other -= int(begin);
    return net;
  }

  // Requires the lock held. The executor of a part for a batch size, made once.
  ops::Executor& executor(Part part, int batch) {
    auto& slot = executors[{part, batch}];
    if (!slot) {
      if (executors.size() > 8) {  // many distinct small batch sizes: start over
        executors.clear();
        return executor(part, batch);
      }
      slot = ops::make_executor(ops::Backend::dnnl, part_net(part, batch), forward);
      const auto& all = model.params();
      const std::size_t first = part == Part::decoder ? encoder_params : 0;
      const std::size_t last = part == Part::encoder ? encoder_params : all.size();
      std::vector<std::vector<float>> mine(all.begin() + first, all.begin() + last);
      slot->from_canonical(mine, slot->params());
    }
    return *slot;
  }

  // Runs a part over count inputs of in_size floats each, chunk by chunk; out receives
  // out_size floats per input, as images when `image` (the model's output as an image).
  std::vector<float> run(Part part, std::span<const float> in, int count, std::size_t in_size,
                         std::size_t out_size, bool image) {
    std::lock_guard lock(mutex);
    std::vector<float> out(std::size_t(count) * out_size);
    const int batch = std::min(count, nn::kInferenceChunk);
    std::vector<float> padded;
    for (int first = 0; first < count; first += batch) {
      const int n = std::min(batch, count - first);
      const float* x = in.data() + std::size_t(first) * in_size;
      if (n < batch) {
        padded.assign(std::size_t(batch) * in_size, 0.f);
        std::copy(x, x + std::size_t(n) * in_size, padded.begin());
        x = padded.data();
      }
      ops::Executor& exec = executor(part, batch);
      exec.forward(x);
      float* y = out.data() + std::size_t(first) * out_size;
      if (image)
        nn::output_to_image(model.loss(), exec.output(), y, std::size_t(n) * out_size);
      else
        std::copy(exec.output(), exec.output() + std::size_t(n) * out_size, y);
    }
    return out;
  }

  // The repair of the embedding API's arguments, as cae repair makes it.
  template <class T>
  std::vector<T> repair(std::span<const T> image, int height, int width, int channels,
                        std::span<const std::uint8_t> mask, const RepairOptions& options,
                        RepairReport* report) {
    train::RepairOptions o;
    o.tiles.executor = engine;
    o.tiles.overlap = options.overlap;
    o.tiles.ensemble = train::ensemble_size(options.ensemble);
    if (options.adapt < 0 || options.adapt_near < 0 || !(options.adapt_lr > 0))
      throw Error("repair: adapt and adapt_near must be at least 0 and adapt_lr above 0");
    if (options.adapt_near > 0 && options.adapt == 0)
      throw Error("repair: adapt_near needs adapt steps");
    o.adapt.steps = options.adapt;
    o.adapt.lr = options.adapt_lr;
    o.adapt.near = options.adapt_near;
    o.adapt.seed = options.seed;
    o.adapt.executor = engine;
    o.adapt.training = train::model_corruption(source);
    train::RepairReport r;
    std::lock_guard lock(mutex);
    std::vector<T> out =
        train::repair_samples(source, {image, height, width, channels}, mask, o, &r);
    if (report) *report = {r.damaged, r.tiles.tiles, r.tiles.tiles_run, r.adapted};
    return out;
  }
};

namespace {

// Throws unless the model is blind: denoise, encode and decode have no mask to give it.
void require_blind(const nn::Model& model, const char* what) {
  if (model.informed())
    throw Error(std::string(what) +
                ": the model is informed: it repairs the damage a mask marks (repair()), it "
                "does not denoise whole images");
}

void check_input(const char* what, std::size_t found, int count, Shape shape) {
  if (count < 1)
    throw Error(std::string(what) + ": count must be at least 1, found " + std::to_string(count));
  const std::size_t expected = std::size_t(count) * shape.size();
  if (found != expected)
    throw Error(std::string(what) + ": " + std::to_string(count) + " of " + shape_text(shape) +
                " need " + std::to_string(expected) + " values, found " + std::to_string(found));
}

}  // namespace

std::string version() { return CAE_VERSION; }

Autoencoder::Autoencoder(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Autoencoder::Autoencoder(Autoencoder&&) noexcept = default;
Autoencoder& Autoencoder::operator=(Autoencoder&&) noexcept = default;
Autoencoder::~Autoencoder() = default;

Autoencoder Autoencoder::load(const std::string& path, const EngineOptions& options) {
  return load_bytes(read_file(path), path, options);
}

std::vector<ShippedModel> Autoencoder::shipped_models(const EngineOptions& options) {
  std::vector<ShippedModel> all;
  for (const io::ShippedModel& m : io::shipped_models(options.models))
    all.push_back({m.name, m.path});
  return all;
}

Autoencoder Autoencoder::load_shipped(const std::string& name, const EngineOptions& options) {
  if (!io::is_model_name(name))
    throw Error("load_shipped: '" + name + "' is not a model name (letters, digits, - and _)");
  return load(io::shipped_path(name, options.models), options);
}

Autoencoder Autoencoder::load_bytes(std::span<const std::uint8_t> file, const std::string& what,
                                    const EngineOptions& options) {
  apply_max_isa(options);
  return Autoencoder(std::make_unique<Impl>(
      nn::Model::from_file(io::decode_model_file(file, what), what), executor_options(options)));
}

Shape Autoencoder::image_shape() const { return shape_of(impl_->model.output()); }

bool Autoencoder::informed() const { return impl_->model.informed(); }

std::vector<std::uint8_t> Autoencoder::repair(std::span<const std::uint8_t> image, int height,
                                              int width, int channels,
                                              std::span<const std::uint8_t> mask,
                                              const RepairOptions& options,
                                              RepairReport* report) const {
  return impl_->repair(image, height, width, channels, mask, options, report);
}

std::vector<std::uint16_t> Autoencoder::repair(std::span<const std::uint16_t> image, int height,
                                               int width, int channels,
                                               std::span<const std::uint8_t> mask,
                                               const RepairOptions& options,
                                               RepairReport* report) const {
  return impl_->repair(image, height, width, channels, mask, options, report);
}

std::vector<float> Autoencoder::repair(std::span<const float> image, int height, int width,
                                       int channels, std::span<const std::uint8_t> mask,
                                       const RepairOptions& options, RepairReport* report) const {
  return impl_->repair(image, height, width, channels, mask, options, report);
}

Shape Autoencoder::latent_shape() const {
  require_blind(impl_->model, "latent_shape");
  if (impl_->split < 0)
    throw Error("this model has no upsampling layer (resize or tconv), so no latent code");
  if (impl_->crossing_join >= 0)
    throw Error("this model's decoder reads encoder activations through skip connections (op " +
                std::to_string(impl_->crossing_join) + ", " +
                ops::op_kind_name(impl_->ops[impl_->crossing_join].kind) +
                "), so its latent code alone cannot be decoded: no latent code");
  return shape_of(impl_->latent());
}

std::vector<std::pair<std::string, std::string>> Autoencoder::metadata() const {
  std::vector<std::pair<std::string, std::string>> meta = {
      {"loss", nn::loss_name(impl_->model.loss())}};
  for (const auto& entry : impl_->model.meta()) meta.push_back(entry);
  return meta;
}

std::vector<float> Autoencoder::denoise(std::span<const float> images, int count) const {
  require_blind(impl_->model, "denoise");
  const Shape s = image_shape();
  check_input("denoise", images.size(), count, s);
  return impl_->run(Part::whole, images, count, s.size(), s.size(), true);
}

std::vector<std::uint8_t> Autoencoder::denoise(std::span<const std::uint8_t> pixels,
                                               int count) const {
  require_blind(impl_->model, "denoise");
  const Shape s = image_shape();
  check_input("denoise", pixels.size(), count, s);
  const ops::Dims dims = impl_->model.input();
  std::vector<float> x(pixels.size());
  data::Image img;
  img.h = dims.h;
  img.w = dims.w;
  img.c = dims.c;
  for (int i = 0; i < count; ++i) {
    const auto* p = pixels.data() + std::size_t(i) * s.size();
    img.pixels.assign(p, p + s.size());
    train::from_image(img, x.data() + std::size_t(i) * s.size());
  }
  const std::vector<float> y = impl_->run(Part::whole, x, count, s.size(), s.size(), true);
  std::vector<std::uint8_t> out(pixels.size());
  for (int i = 0; i < count; ++i) {
    const data::Image o = train::to_image(y.data() + std::size_t(i) * s.size(), dims);
    std::copy(o.pixels.begin(), o.pixels.end(), out.begin() + std::size_t(i) * s.size());
  }
  return out;
}

std::vector<float> Autoencoder::encode(std::span<const float> images, int count) const {
  const Shape s = image_shape(), z = latent_shape();
  check_input("encode", images.size(), count, s);
  if (impl_->split == 0) return std::vector<float>(images.begin(), images.end());
  return impl_->run(Part::encoder, images, count, s.size(), z.size(), false);
}

std::vector<float> Autoencoder::decode(std::span<const float> codes, int count) const {
  const Shape s = image_shape(), z = latent_shape();
  check_input("decode", codes.size(), count, z);
  return impl_->run(Part::decoder, codes, count, z.size(), s.size(), true);
}

}  // namespace cae
