// A model: an architecture, the input shape it was built for, its loss (which says whether the
// output is logits or an image) and its parameters in canonical layout. Executors for any batch
// size are made from it; model files and checkpoints are read and written through it.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "io/model_file.h"
#include "nn/fill.h"
#include "nn/loss.h"
#include "nn/spec.h"
#include "ops/ops.h"

namespace cae::nn {

// Images per executor call where a model runs over many images (the embedding API and so the
// Python module, cae denoise --idx): bounds the activation memory of a large set. Sets of up to
// this many run as one batch; larger ones in chunks of it, the last padded with zeros. Both
// paths chunk alike, so they give the same bits for the same images.
inline constexpr int kInferenceChunk = 64;

class Model {
 public:
  // Requires a parsed architecture that builds for `input` (the image's channels, plus the
  // mask's when informed) and maps it to the image's shape. Ensures zero parameters (call
  // init_glorot or load ones).
  Model(Architecture arch, ops::Dims input, LossKind loss, bool informed = false);

  // tf.layers defaults: kernels Glorot-uniform, limit sqrt(6 / (fan_in + fan_out)) with
  // fan = k·k·channels; biases zero. Deterministic in seed.
  void init_glorot(std::uint64_t seed);

  // The net for a batch size; make_executor(backend, net(b)) runs it.
  ops::NetDesc net(int batch) const {
    return build_net(arch_, input_, batch, informed_ ? input_.c - 1 : 0);
  }

  // An executor with this model's parameters loaded, built with the given options (the caller's:
  // the library reads no environment variable; the cae program, the Python module and the bench
  // pass what executor_options_from_environment() read at their edge).
  std::unique_ptr<ops::Executor> make_executor(ops::Backend backend, int batch,
                                               const ops::ExecutorOptions& options) const;

  // An executor of the model for inference: that of folded(), so that a batchnorm runs as the
  // running statistics' scale and shift inside the conv before it; make_executor(backend,
  // batch, ...) itself for a model without one. Built with options marked forward_only (a
  // measured kernel choice times the forward pass alone).
  std::unique_ptr<ops::Executor> make_inference_executor(ops::Backend backend, int batch,
                                                         const ops::ExecutorOptions& options) const;

  // Whether some layer is a batchnorm.
  bool has_batch_norm() const;
  // Whether the model is informed of the damage: its input has one channel more than its
  // output, the damaged image's channels followed by the damage mask (data::with_mask_channel),
  // as an inpainter such as cv::inpaint is given the mask. A blind model sees the image alone.
  // Model files say so in meta "informed" = "1" (absent for blind models).
  bool informed() const { return informed_; }
  // Throws cae::Error naming `where` when the model is informed: for paths that have no damage
  // mask to give it (cae denoise, the embedding API), which cae eval and cae repair have.
  void require_blind(const std::string& where) const;
  // An informed model's fill (nn/fill.h): the classical inpainter whose repair its net corrects
  // (train/fill.h runs it), or none. Model files and checkpoints carry it in meta "fill".
  const std::optional<Fill>& fill_settings() const { return fill_; }
  // The fill as text, describe_fill's ("navier-stokes r=3"), empty for none.
  std::string fill() const { return fill_ ? describe_fill(*fill_) : std::string(); }
  // Requires nothing. Ensures the model corrects the fill `text` names (parse_fill); throws
  // cae::Error beginning "fill 'TEXT'", the model left as it was, when the text names none or
  // the model cannot take one (check_fill_model). from_file() sets a file's fill through it.
  void set_fill(const std::string& text);
  // Requires nothing. Ensures the same function for inference with every batchnorm folded into
  // the conv or tconv before it: weight[o] *= s[o], bias[o] = (bias[o] - running_mean[o]) s[o]
  // + shift[o] with s = scale / sqrt(running_var + kBatchNormEpsilon); the conv takes the
  // batchnorm's activation and name. A model without batchnorm is returned as it is.
  Model folded() const;

  const Architecture& arch() const { return arch_; }
  ops::Dims input() const { return input_; }
  ops::Dims output() const { return output_; }
  LossKind loss() const { return loss_; }
  const std::vector<ops::ParamInfo>& param_infos() const { return infos_; }
  std::vector<std::vector<float>>& params() { return params_; }
  const std::vector<std::vector<float>>& params() const { return params_; }
  // "op<index>.<weight|bias>", the tensor names in model files.
  std::string param_name(std::size_t i) const;

  // Free-form facts stored with the model (the corruption it was trained for, epochs, ...).
  std::vector<std::pair<std::string, std::string>>& meta() { return meta_; }
  const std::vector<std::pair<std::string, std::string>>& meta() const { return meta_; }

  // Model file of kind "model" (spec, input shape, loss, parameters, meta).
  io::ModelFile to_file() const;
  // Requires a file of kind "model" or "checkpoint"; throws cae::Error naming `what` and the
  // missing or mismatched piece, or a meta value it cannot take ("informed", "fill": see
  // set_fill).
  static Model from_file(const io::ModelFile& file, const std::string& what);

 private:
  Architecture arch_;
  ops::Dims input_, output_;
  LossKind loss_;
  bool informed_ = false;
  std::optional<Fill> fill_;
  std::vector<ops::ParamInfo> infos_;
  std::vector<std::vector<float>> params_;
  std::vector<std::pair<std::string, std::string>> meta_;
};

}  // namespace cae::nn
