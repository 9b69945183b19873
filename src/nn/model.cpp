#include "nn/model.h"

#include <cmath>

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

Model::Model(Architecture arch, ops::Dims input, LossKind loss)
    : arch_(std::move(arch)), input_(input), loss_(loss) {
  ops::NetDesc probe = build_net(arch_, input_, 1);
  output_ = probe.output();
  if (output_.h != input_.h || output_.w != input_.w || output_.c != input_.c)
    throw Error("the architecture maps " + std::to_string(input.h) + "x" + std::to_string(input.w) +
                "x" + std::to_string(input.c) + " images to " + std::to_string(output_.h) + "x" +
                std::to_string(output_.w) + "x" + std::to_string(output_.c) +
                ": an autoencoder's output must have the input's shape");
  infos_ = ops::param_infos(probe);
  for (const auto& info : infos_) params_.emplace_back(info.size(), 0.f);
}

void Model::init_glorot(std::uint64_t seed) {
  for (std::size_t i = 0; i < infos_.size(); ++i) {
    const auto& info = infos_[i];
    auto& p = params_[i];
    if (info.name == "bias") {
      std::fill(p.begin(), p.end(), 0.f);
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
  const std::vector<ops::ParamInfo> infos = ops::param_infos(build_net(arch, input, 1));
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
  Model model(std::move(arch), input, parse_loss(file.meta_value("loss")));
  for (std::size_t i = 0; i < model.infos_.size(); ++i) {
    const io::NamedTensor* t = tensors[i];
    const std::string name = model.param_name(i);
    for (float x : t->data)
      if (!std::isfinite(x)) throw Error(what + ": tensor '" + name + "' holds NaN or Inf");
    model.params_[i] = t->data;
  }
  static const char* const own_keys[] = {"input_height", "input_width", "input_channels", "loss"};
  for (const auto& [key, value] : file.meta) {
    bool own = false;
    for (const char* k : own_keys) own = own || key == k;
    if (!own && file.kind == "model") model.meta_.emplace_back(key, value);
  }
  return model;
}

}  // namespace cae::nn
