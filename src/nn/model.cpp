#include "nn/model.h"

#include <algorithm>
#include <cmath>
#include <map>

#include "cae/error.h"
#include "core/rng.h"

namespace cae::nn {

namespace {
int parse_dim(const io::ModelFile& file, const std::string& key, const std::string& what) {
  const std::string& text = file.meta_value(key);
  try {
    std::size_t used = 0;
    int v = std::stoi(text, &used);
    if (used == text.size() && v >= 1 && v <= 65536) return v;
  } catch (const std::exception&) {
  }
  throw Error(what + ": meta '" + key + "' must be a size from 1 to 65536, found '" + text + "'");
}
}  // namespace

Model::Model(Architecture arch, ops::Dims input, LossKind loss, bool informed)
    : arch_(std::move(arch)), input_(input), loss_(loss), informed_(informed) {
  if (informed && input.c < 2)
    throw Error("an informed model's input has the image's channels and the mask's: " +
                std::to_string(input.c) + " channel is too few");
  ops::NetDesc probe = net(1);
  output_ = probe.output();
  const int image_channels = informed ? input_.c - 1 : input_.c;
  if (output_.h != input_.h || output_.w != input_.w || output_.c != image_channels)
    throw Error("the architecture maps " + std::to_string(input.h) + "x" + std::to_string(input.w) +
                "x" + std::to_string(input.c) + " inputs to " + std::to_string(output_.h) + "x" +
                std::to_string(output_.w) + "x" + std::to_string(output_.c) +
                (informed ? ": an informed autoencoder's output must have the image's shape, "
                            "its input's without the mask channel"
                          : ": an autoencoder's output must have the input's shape"));
  infos_ = ops::param_infos(probe);
  for (const auto& info : infos_) params_.emplace_back(info.size(), 0.f);
}

void Model::init_glorot(std::uint64_t seed) {
  for (std::size_t i = 0; i < infos_.size(); ++i) {
    const auto& info = infos_[i];
    auto& p = params_[i];
    if (info.name == "bias" || info.name == "running_mean") {
      std::fill(p.begin(), p.end(), 0.f);
      continue;
    }
    if (info.name == "running_var" || info.shape.size() == 1) {  // a batchnorm's var or scale
      std::fill(p.begin(), p.end(), 1.f);
      continue;
    }
    // OIHW and IOHW alike: the two channel dims times the window.
    const double window = double(info.shape[2]) * info.shape[3];
    const double limit = std::sqrt(6.0 / (window * info.shape[0] + window * info.shape[1]));
    Rng rng = make_rng(seed, Stream::init, i);
    for (float& x : p) x = rng.uniform(float(-limit), float(limit));
  }
}

std::unique_ptr<ops::Executor> Model::make_executor(ops::Backend backend, int batch,
                                                    const ops::ExecutorOptions& options) const {
  auto exec = ops::make_executor(backend, net(batch), options);
  exec->from_canonical(params_, exec->params());
  return exec;
}

std::unique_ptr<ops::Executor> Model::make_inference_executor(
    ops::Backend backend, int batch, const ops::ExecutorOptions& options) const {
  ops::ExecutorOptions forward = options;
  forward.forward_only = true;  // a measured kernel choice times the forward pass alone
  return has_batch_norm() ? folded().make_executor(backend, batch, forward)
                          : make_executor(backend, batch, forward);
}

bool Model::has_batch_norm() const {
  return std::ranges::any_of(arch_.layers, [](const LayerSpec& l) {
    return ops::op_info(l.kind).weights == ops::Weights::norm;
  });
}

void Model::set_fill(const std::string& text) {
  const Fill fill = parse_fill(text);
  check_fill_model(*this, "fill '" + text + "'");
  fill_ = fill;
}

void Model::require_blind(const std::string& where) const {
  if (informed_)
    throw Error(where + ": the model is informed (it takes the damage mask as an extra input "
                "channel), and there is no mask here; cae eval gives it one");
}

Model Model::folded() const {
  if (!has_batch_norm()) return *this;
  auto is_norm = [&](int k) {
    return k < int(arch_.layers.size()) &&
           ops::op_info(arch_.layers[k].kind).weights == ops::Weights::norm;
  };
  // The layers without the batchnorms; source[j]: the layer folded layer j comes from.
  Architecture arch;
  std::vector<int> new_index(arch_.layers.size()), source;
  for (int k = 0; k < int(arch_.layers.size()); ++k) {
    const LayerSpec& l = arch_.layers[k];
    if (is_norm(k)) {  // parse_spec put a conv with no activation and no name before it
      new_index[k] = new_index[k - 1];
      LayerSpec& conv = arch.layers.back();
      conv.act = l.act;
      conv.name = l.name;
      conv.bias = true;
      continue;
    }
    new_index[k] = int(arch.layers.size());
    source.push_back(k);
    arch.layers.push_back(l);
    if (l.joins_layer >= 0) arch.layers.back().joins_layer = new_index[l.joins_layer];
  }
  arch.text = format_spec(arch);
  std::map<std::pair<int, std::string>, const std::vector<float>*> tensor;  // by op and name
  for (std::size_t i = 0; i < infos_.size(); ++i)
    tensor[{infos_[i].op, infos_[i].name}] = &params_[i];

  Model out(std::move(arch), input_, loss_, informed_);
  out.meta_ = meta_;
  out.fill_ = fill_;
  for (std::size_t i = 0; i < out.infos_.size(); ++i) {
    const ops::ParamInfo& info = out.infos_[i];
    const int k = source[info.op];
    auto found = tensor.find({k, info.name});
    if (!is_norm(k + 1)) {
      out.params_[i] = *found->second;
      continue;
    }
    const std::vector<float>& scale = *tensor.at({k + 1, "weight"});
    const std::vector<float>& shift = *tensor.at({k + 1, "bias"});
    const std::vector<float>& mean = *tensor.at({k + 1, "running_mean"});
    const std::vector<float>& var = *tensor.at({k + 1, "running_var"});
    std::vector<double> s(scale.size());
    for (std::size_t o = 0; o < s.size(); ++o)
      s[o] = scale[o] / std::sqrt(double(var[o]) + ops::kBatchNormEpsilon);
    std::vector<float>& p = out.params_[i];
    if (info.name == "bias") {  // the conv's own bias, or none: zero
      for (std::size_t o = 0; o < s.size(); ++o) {
        const double b = found == tensor.end() ? 0.0 : (*found->second)[o];
        p[o] = float((b - mean[o]) * s[o] + shift[o]);
      }
      continue;
    }
    // The weight: output channel o is OIHW's first index, IOHW's (tconv) second.
    p = *found->second;
    const bool transposed = ops::op_info(out.arch_.layers[info.op].kind).weights ==
                            ops::Weights::iohw;
    const std::size_t d0 = info.shape[0], d1 = info.shape[1],
                      window = std::size_t(info.shape[2]) * info.shape[3];
    for (std::size_t a = 0; a < d0; ++a)
      for (std::size_t b = 0; b < d1; ++b) {
        const double so = s[transposed ? b : a];
        float* w = p.data() + (a * d1 + b) * window;
        for (std::size_t j = 0; j < window; ++j) w[j] = float(w[j] * so);
      }
  }
  return out;
}

std::string Model::param_name(std::size_t i) const {
  return "op" + std::to_string(infos_[i].op) + "." + infos_[i].name;
}

io::ModelFile Model::to_file() const {
  io::ModelFile file;
  file.kind = "model";
  file.spec = arch_.text;
  file.set_meta("input_height", std::to_string(input_.h));
  file.set_meta("input_width", std::to_string(input_.w));
  file.set_meta("input_channels", std::to_string(input_.c));
  file.set_meta("loss", loss_name(loss_));
  if (informed_) file.set_meta("informed", "1");
  if (fill_) file.set_meta("fill", describe_fill(*fill_));
  for (const auto& [key, value] : meta_) file.set_meta(key, value);
  for (std::size_t i = 0; i < infos_.size(); ++i) {
    io::NamedTensor t;
    t.name = param_name(i);
    t.shape.assign(infos_[i].shape.begin(), infos_[i].shape.end());
    t.data = params_[i];
    file.tensors.push_back(std::move(t));
  }
  return file;
}

Model Model::from_file(const io::ModelFile& file, const std::string& what) {
  if (file.kind != "model" && file.kind != "checkpoint")
    throw Error(what + ": expected a model or checkpoint file, found kind '" + file.kind + "'");
  Architecture arch;
  try {
    arch = parse_spec(file.spec);
  } catch (const Error& e) {
    throw Error(what + ": " + e.what());
  }
  ops::Dims input{parse_dim(file, "input_channels", what), parse_dim(file, "input_height", what),
                  parse_dim(file, "input_width", what)};
  // Every parameter the spec asks for must be in the file, with its shape, before the model
  // allocates them: a forged spec ("conv 65536 k1" twice) must not make a small file allocate
  // gigabytes.
  const std::string* found_informed = file.find_meta("informed");
  const std::string informed_text = found_informed ? *found_informed : "";
  if (found_informed && informed_text != "1")
    throw Error(what + ": meta 'informed' must be 1 or absent, found '" + informed_text + "'");
  const bool informed = informed_text == "1";
  if (informed && input.c < 2)
    throw Error(what + ": an informed model needs at least 2 input channels, the file says " +
                std::to_string(input.c));
  const std::vector<ops::ParamInfo> infos =
      ops::param_infos(build_net(arch, input, 1, informed ? input.c - 1 : 0));
  std::vector<const io::NamedTensor*> tensors;
  for (const ops::ParamInfo& info : infos) {
    const std::string name = "op" + std::to_string(info.op) + "." + info.name;
    const io::NamedTensor* t = file.find_tensor(name);
    if (!t) throw Error(what + ": tensor '" + name + "' is missing");
    if (t->shape != std::vector<std::int64_t>(info.shape.begin(), info.shape.end())) {
      auto join = [](const auto& dims) {
        std::string s;
        for (auto d : dims) {
          if (!s.empty()) s += "x";
          s += std::to_string(d);
        }
        return s;
      };
      const std::string expected = join(info.shape), found = join(t->shape);
      throw Error(what + ": tensor '" + name + "' has shape " + found + ", the architecture needs " +
                  expected);
    }
    tensors.push_back(t);
  }
  Model model(std::move(arch), input, parse_loss(file.meta_value("loss")), informed);
  if (const std::string* fill = file.find_meta("fill")) {
    try {
      model.set_fill(*fill);
    } catch (const Error& e) {
      throw Error(what + ": meta " + e.what());
    }
  }
  for (std::size_t i = 0; i < model.infos_.size(); ++i) {
    const io::NamedTensor* t = tensors[i];
    const std::string name = model.param_name(i);
    for (float x : t->data)
      if (!std::isfinite(x)) throw Error(what + ": tensor '" + name + "' holds NaN or Inf");
    model.params_[i] = t->data;
  }
  static const char* const own_keys[] = {"input_height", "input_width", "input_channels",
                                         "loss",         "informed",    "fill"};
  for (const auto& [key, value] : file.meta) {
    bool own = false;
    for (const char* k : own_keys) own = own || key == k;
    if (!own && file.kind == "model") model.meta_.emplace_back(key, value);
  }
  return model;
}

}  // namespace cae::nn
