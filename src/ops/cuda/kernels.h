// The CUDA backend's own kernels (everything but the convolutions, which are cuDNN's), as host
// launchers. Activations are NCHW floats on the device; every launcher enqueues on `stream`,
// allocates nothing and takes only pointers fixed by the caller, so a sequence of launches can be
// captured in a CUDA graph and replayed. Each kernel overwrites its outputs unless it says "+=".
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>
#include <string>

namespace cae::ops::cuda_kernels {

enum class Act { none = 0, relu = 1, sigmoid = 2 };

// State of the fused training step that lives on the device, so that a captured graph reads
// the current step rather than the one it was captured at.
struct StepState {
  long long t;         // Adam steps taken
  float lr_t;          // this step's bias-corrected rate
  double loss_sum[2];  // sum of the loss terms of the batch in double buffer slot 0 / 1
};

// The noise key of one batch: image (first_index + b) of batch row b, stream (seed, stream,
// epoch) as in cuda_math::noise_key.
struct BatchKey {
  std::uint64_t seed, stream, epoch, first_index;
};

// Returns "" when this build's kernels can run on the current device, else why not (built for
// another compute capability).
std::string probe();

// out[nc][y][x] = in[nc][y + dy][x + dx] where that is inside in (in_h x in_w), else 0. Pads
// (dy, dx < 0) and crops (dy, dx > 0) for the convolutions cuDNN cannot pad asymmetrically.
void shift_copy(const float* in, int nc, int in_h, int in_w, float* out, int out_h, int out_w,
                int dy, int dx, cudaStream_t stream);

// y[n][c][i] = act(y[n][c][i] + bias[c]) in place; bias may be null.
void bias_act(float* y, const float* bias, int n, int c, int hw, Act act, cudaStream_t stream);

// dy = dy * act'(y) in place (y the activation's output) and, when db is not null,
// db[c] = sum over n, i of the result. `partial` is scratch of bias_grad_scratch(n, c, hw)
// floats. The sums are in a fixed order: the result does not vary from run to run.
void act_backward_bias(float* dy, const float* y, Act act, int n, int c, int hw, float* db,
                       float* partial, cudaStream_t stream);
std::size_t bias_grad_scratch(int n, int c, int hw);

// Element-wise ops as layers: y = act(x); dx = dy * act'(y).
void act_forward(const float* x, float* y, std::size_t count, Act act, cudaStream_t stream);
void act_backward(const float* y, const float* dy, float* dx, std::size_t count, Act act,
                  cudaStream_t stream);

// The joins of skip connections, on NCHW: z = a * x + b * y over count floats (add: 1, 1;
// sub: -1, 1; a skip gradient summed in place: x = skip, y = z = the chain's gradient).
void axpby(const float* x, float a, const float* y, float b, float* z, std::size_t count,
           cudaStream_t stream);
// y = a * x over count floats.
void scale(const float* x, float a, float* y, std::size_t count, cudaStream_t stream);
// Per image of batch: z = [x ; y], x_size and y_size floats of it from x and y; and back.
void concat_forward(const float* x, std::size_t x_size, const float* y, std::size_t y_size,
                    float* z, int batch, cudaStream_t stream);
void concat_backward(const float* dz, float* dx, std::size_t x_size, float* dy, std::size_t y_size,
                     int batch, cudaStream_t stream);

struct PoolGeometry {
  int nc, in_h, in_w, out_h, out_w, kernel, stride, pad_top, pad_left;
};
// y = max over the in-range cells of each window (first maximum wins, padding never does);
// argmax = the winner's offset h * in_w + w in its image plane.
void maxpool_forward(const float* x, float* y, int* argmax, const PoolGeometry& g,
                     cudaStream_t stream);
// dx[cell] = sum of dy over the windows whose winner is cell (a gather: no atomics).
void maxpool_backward(const float* dy, const int* argmax, float* dx, const PoolGeometry& g,
                      cudaStream_t stream);

// Nearest resize with the TF1 floor map (cuda_math::resize_source), and its gather backward.
void resize_forward(const float* x, float* y, int nc, int in_h, int in_w, int out_h, int out_w,
                    cudaStream_t stream);
void resize_backward(const float* dy, float* dx, int nc, int in_h, int in_w, int out_h, int out_w,
                     cudaStream_t stream);

// noisy = clip(clean + sigma z, 0, 1) for batch images of image_size pixels, z from
// cuda_math::normal4 keyed by *key (device memory, read when the kernel runs).
void corrupt(const float* clean, float* noisy, int batch, std::size_t image_size, float sigma,
             const BatchKey* key, cudaStream_t stream);

// Starts a fused step: ++state->t, state->lr_t = cuda_math::adam_rate(...),
// state->loss_sum[slot] = 0.
void step_begin(StepState* state, int slot, float lr, float beta1, float beta2,
                cudaStream_t stream);

// grad = d loss / d out (mean over n elements) and state->loss_sum[slot] += sum of the loss
// terms; bce: sigmoid cross-entropy on logits, else squared error.
void loss(const float* out, const float* target, float* grad, std::size_t n, bool bce,
          StepState* state, int slot, cudaStream_t stream);

// TF1 Adam over n parameters at rate state->lr_t.
void adam(float* p, const float* g, float* m, float* v, std::size_t n, const StepState* state,
          float beta1, float beta2, float epsilon, cudaStream_t stream);

}  // namespace cae::ops::cuda_kernels
