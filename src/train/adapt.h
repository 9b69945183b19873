// Adapting a trained model to the one photo it repairs (test-time training, "internal
// learning"): before the repair, a copy of the model trains for a few hundred steps on crops of
// that photo's own undamaged part, each crop damaged anew as in training, so that the net learns
// this photo's textures and noise rather than the training photos'. It sees only what a
// classical inpainter is given, the damaged photo and its mask: no crop holds a damaged pixel
// (data::ClearCrops), so the pixels under the damage stay unknown to it.
#pragma once

#include <cstdint>
#include <string>

#include "data/corrupt.h"
#include "nn/model.h"
#include "ops/ops.h"

namespace cae::train {

struct AdaptOptions {
  int steps = 0;     // optimizer steps on the photo; 0: no adaptation
  int batch = 32;    // crops per step
  double lr = 1e-3;  // Adam's at the first step, decayed by a half cosine to 0 at the last
  int near = 0;      // > 0: crops only from windows within this many pixels of the damage
  std::uint64_t seed = 0;
  ops::Backend backend = ops::Backend::dnnl;
  ops::ExecutorOptions executor{};  // how backend builds the adaptation's executor
  data::Corruption training;  // the damage the model learnt to repair: each crop gets it anew
  bool on() const { return steps > 0; }
};

// The corruption a model file says it was trained for (meta "corruption"), else the default.
// Throws cae::Error when the meta cannot be read.
data::Corruption model_corruption(const nn::Model& model);

// "300 steps, lr 0.0001, batch 32": what a table's setting column says of the adaptation.
std::string describe_adapt(const AdaptOptions& options);

// Throws cae::Error, naming `what`, unless a model adapts to photos damaged by `damage`: the
// damage must have masks, lines, the crosshair or strokes (their mask says which pixels are
// known) and no noise (a noisy photo's undamaged pixels are no clean examples).
void check_adaptable(const data::Corruption& damage, const std::string& what);

// Requires damaged: the photo's d.c×d.h×d.w CHW floats in [0, 1] as damaged (the values under
// the mask are never read), mask its d.h×d.w plane (1 = damaged), options.training the damage
// the model learnt to repair (its meta "corruption"), options.steps >= 1 and options.batch >= 1.
// Ensures a copy of model trained options.steps Adam steps (fresh moments) on crops of the model's
// input size drawn from the windows of the photo that hold no damage, turned and flipped at random;
// crop p of step s from make_rng(seed, Stream::adapt, key, s·batch
// + p), its damage from Stream::adapt_noise the same way: the same arguments give the same
// weights. Meta "adapted" records describe_adapt(options). Throws cae::Error when no window of
// the photo is free of damage, or when the model or damage cannot adapt (check_adaptable).
nn::Model adapt_to_photo(const nn::Model& model, const float* damaged, const float* mask,
                         ops::Dims d, const AdaptOptions& options, std::uint64_t key);

}  // namespace cae::train
