// Classical repairs cae is measured against (OpenCV): median filter, Gaussian blur and non-local
// means for noise, and cv::inpaint (Telea; Navier–Stokes) for masks, lines and the crosshair,
// which is told where the damage is. Each has one parameter; `cae eval` picks it from a small
// grid by PSNR (inside the damage for the inpainters) on tuning images, so every baseline gets
// its best setting for the damage at hand.
#pragma once

#include <string>
#include <vector>

#include "ops/ops.h"

namespace cae::train {

enum class Baseline {
  median,    // median of the k×k neighbourhood (k odd), on 8-bit samples
  gaussian,  // Gaussian blur of σ pixels (kernel 2·ceil(3σ)+1), on floats
  nlm,       // OpenCV fastNlMeansDenoising[Colored], filter strength h in 8-bit units,
             // template 7×7, search 21×21, on 8-bit samples
  telea,     // cv::inpaint INPAINT_TELEA (fast marching), neighbourhood radius r pixels, on
             // 8-bit samples, given the damage mask; pixels outside the mask are kept as given.
             // Damage that reaches the image's edge, which cv::inpaint lets bleed inwards, is
             // handled with a ring of known pixels around the image (see baselines.cpp)
  navier_stokes,  // cv::inpaint INPAINT_NS, radius r, otherwise as telea
};

// True for the inpainters, which need the damage mask and are only run on spatial damage.
bool baseline_inpaints(Baseline kind);

// "median", "gaussian", "nlm", "telea", "navier-stokes"
const char* baseline_name(Baseline kind);
// The parameter as text: "k=3", "sigma=1", "h=30", "r=5".
std::string baseline_setting(Baseline kind, float param);
// The grid the parameter is chosen from.
std::vector<float> baseline_grid(Baseline kind);

// Requires noisy and out of count·dims.size() NCHW floats in [0, 1], dims.c in {1, 3}, a
// parameter from the kind's grid (or like it), and for an inpainter a mask of count·h·w floats
// (1 = damaged, as data::corrupt writes it). Ensures out holds the filtered images in [0, 1];
// an inpainter's out equals noisy bit for bit outside the mask. Throws cae::Error otherwise.
void apply_baseline(Baseline kind, float param, const float* noisy, float* out, int count,
                    ops::Dims dims, const float* mask = nullptr);

// Requires an inpainter (telea or navier_stokes) and apply_baseline's arguments for one image.
// Ensures what apply_baseline writes, always computed on the whole image: apply_baseline repairs
// a large image's separate pieces of damage on crops of their own, and a test shows the two
// agree bit for bit. Throws cae::Error otherwise.
void inpaint_whole(Baseline kind, float radius, const float* damaged, float* out, ops::Dims d,
                   const float* mask);

}  // namespace cae::train
