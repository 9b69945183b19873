// The CUDA backend's small kernels: one thread per output element (gathers, never atomics, for
// everything that feeds a gradient), grid-stride loops, per-element arithmetic from
// device_math.h. They are memory-bound and tiny next to the convolutions, so they stay plain.
#include <cuda_runtime.h>

#include <algorithm>

#include "cae/error.h"
#include "ops/cuda/device_math.h"
#include "ops/cuda/kernels.h"

namespace cae::ops::cuda_kernels {
namespace {

namespace cm = cuda_math;

constexpr int threads = 256;

int blocks_for(std::size_t count) {
  return int(std::min<std::size_t>((count + threads - 1) / threads, 65535 * 4));
}

void check_launch(const char* kernel) {
  const cudaError_t e = cudaGetLastError();
  if (e != cudaSuccess)
    throw Error(std::string("cuda backend: launching ") + kernel + ": " + cudaGetErrorString(e));
}

#define GRID_STRIDE(i, count)                                                           \
  for (std::size_t i = std::size_t(blockIdx.x) * blockDim.x + threadIdx.x; i < (count); \
       i += std::size_t(gridDim.x) * blockDim.x)

__device__ float act_apply(float x, Act act) {
  if (act == Act::relu) return x > 0.f ? x : 0.f;
  if (act == Act::sigmoid) return 1.f / (1.f + expf(-x));
  return x;
}

// d act / d pre-activation, written in terms of the activation's output y.
__device__ float act_slope(float y, Act act) {
  if (act == Act::relu) return y > 0.f ? 1.f : 0.f;
  if (act == Act::sigmoid) return y * (1.f - y);
  return 1.f;
}

// Sum over the block, returned to thread 0; blockDim.x a multiple of 32, at most 1024.
template <class T>
__device__ T block_sum(T v) {
  __shared__ T warp_sums[32];
  for (int offset = 16; offset > 0; offset /= 2) v += __shfl_down_sync(0xffffffffu, v, offset);
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  if (lane == 0) warp_sums[warp] = v;
  __syncthreads();
  v = threadIdx.x < blockDim.x / 32 ? warp_sums[lane] : T(0);
  if (warp == 0)
    for (int offset = 16; offset > 0; offset /= 2) v += __shfl_down_sync(0xffffffffu, v, offset);
  return v;
}

__global__ void shift_copy_kernel(const float* in, int nc, int in_h, int in_w, float* out,
                                  int out_h, int out_w, int dy, int dx) {
  const std::size_t count = std::size_t(nc) * out_h * out_w;
  GRID_STRIDE(i, count) {
    const int x = int(i % out_w), y = int(i / out_w % out_h);
    const std::size_t plane = i / (std::size_t(out_w) * out_h);
    const int sy = y + dy, sx = x + dx;
    out[i] =
        sy >= 0 && sy < in_h && sx >= 0 && sx < in_w ? in[(plane * in_h + sy) * in_w + sx] : 0.f;
  }
}

__global__ void bias_act_kernel(float* y, const float* bias, int c, int hw, std::size_t count,
                                Act act) {
  GRID_STRIDE(i, count) {
    const float b = bias ? bias[i / hw % c] : 0.f;
    y[i] = act_apply(y[i] + b, act);
  }
}

// Block (s, ch) reduces images [s * per, (s + 1) * per) of channel ch into partial[ch * S + s].
__global__ void act_backward_partial_kernel(float* dy, const float* y, Act act, int n, int c,
                                            int hw, int per, float* partial) {
  const int s = blockIdx.x, ch = blockIdx.y;
  const int first = s * per, last = min(n, first + per);
  float sum = 0.f;
  for (int img = first; img < last; ++img) {
    const std::size_t base = (std::size_t(img) * c + ch) * hw;
    for (int i = threadIdx.x; i < hw; i += blockDim.x) {
      float g = dy[base + i];
      if (act != Act::none) {
        g *= act_slope(y[base + i], act);
        dy[base + i] = g;
      }
      sum += g;
    }
  }
  sum = block_sum(sum);
  if (threadIdx.x == 0) partial[std::size_t(ch) * gridDim.x + s] = sum;
}

__global__ void sum_partials_kernel(const float* partial, int splits, float* db) {
  const int ch = blockIdx.x;
  float sum = 0.f;
  for (int s = threadIdx.x; s < splits; s += blockDim.x)
    sum += partial[std::size_t(ch) * splits + s];
  sum = block_sum(sum);
  if (threadIdx.x == 0) db[ch] = sum;
}

__global__ void act_forward_kernel(const float* x, float* y, std::size_t count, Act act) {
  GRID_STRIDE(i, count) y[i] = act_apply(x[i], act);
}

__global__ void axpby_kernel(const float* x, float a, const float* y, float b, float* z,
                             std::size_t count) {
  GRID_STRIDE(i, count) z[i] = a * x[i] + b * y[i];
}

__global__ void scale_kernel(const float* x, float a, float* y, std::size_t count) {
  GRID_STRIDE(i, count) y[i] = a * x[i];
}

__global__ void act_backward_kernel(const float* y, const float* dy, float* dx, std::size_t count,
                                    Act act) {
  GRID_STRIDE(i, count) dx[i] = dy[i] * act_slope(y[i], act);
}

__global__ void maxpool_forward_kernel(const float* x, float* y, int* argmax, PoolGeometry g) {
  const std::size_t count = std::size_t(g.nc) * g.out_h * g.out_w;
  GRID_STRIDE(i, count) {
    const int q = int(i % g.out_w), p = int(i / g.out_w % g.out_h);
    const std::size_t plane = i / (std::size_t(g.out_w) * g.out_h);
    const float* xp = x + plane * g.in_h * g.in_w;
    int best = -1;
    float best_value = 0.f;
    for (int ky = 0; ky < g.kernel; ++ky) {
      const int h = p * g.stride - g.pad_top + ky;
      if (h < 0 || h >= g.in_h) continue;
      for (int kx = 0; kx < g.kernel; ++kx) {
        const int w = q * g.stride - g.pad_left + kx;
        if (w < 0 || w >= g.in_w) continue;
        const float v = xp[h * g.in_w + w];
        if (best < 0 || v > best_value) {  // strict: a later tie does not win
          best = h * g.in_w + w;
          best_value = v;
        }
      }
    }
    y[i] = best_value;
    argmax[i] = best;
  }
}

__global__ void maxpool_backward_kernel(const float* dy, const int* argmax, float* dx,
                                        PoolGeometry g) {
  const std::size_t count = std::size_t(g.nc) * g.in_h * g.in_w;
  GRID_STRIDE(i, count) {
    const int w = int(i % g.in_w), h = int(i / g.in_w % g.in_h);
    const std::size_t plane = i / (std::size_t(g.in_w) * g.in_h);
    const std::size_t out_base = plane * g.out_h * g.out_w;
    int p_lo, p_hi, q_lo, q_hi;
    cm::pool_windows(h, g.out_h, g.kernel, g.stride, g.pad_top, &p_lo, &p_hi);
    cm::pool_windows(w, g.out_w, g.kernel, g.stride, g.pad_left, &q_lo, &q_hi);
    const int self = h * g.in_w + w;
    float sum = 0.f;
    for (int p = p_lo; p <= p_hi; ++p)
      for (int q = q_lo; q <= q_hi; ++q) {
        const std::size_t o = out_base + std::size_t(p) * g.out_w + q;
        if (argmax[o] == self) sum += dy[o];
      }
    dx[i] = sum;
  }
}

__global__ void resize_forward_kernel(const float* x, float* y, int nc, int in_h, int in_w,
                                      int out_h, int out_w) {
  const std::size_t count = std::size_t(nc) * out_h * out_w;
  GRID_STRIDE(i, count) {
    const int q = int(i % out_w), p = int(i / out_w % out_h);
    const std::size_t plane = i / (std::size_t(out_w) * out_h);
    y[i] = x[(plane * in_h + cm::resize_source(p, in_h, out_h)) * in_w +
             cm::resize_source(q, in_w, out_w)];
  }
}

__global__ void resize_backward_kernel(const float* dy, float* dx, int nc, int in_h, int in_w,
                                       int out_h, int out_w) {
  const std::size_t count = std::size_t(nc) * in_h * in_w;
  GRID_STRIDE(i, count) {
    const int w = int(i % in_w), h = int(i / in_w % in_h);
    const std::size_t plane = i / (std::size_t(in_w) * in_h);
    int p_lo, p_hi, q_lo, q_hi;
    cm::resize_readers(h, in_h, out_h, &p_lo, &p_hi);
    cm::resize_readers(w, in_w, out_w, &q_lo, &q_hi);
    float sum = 0.f;
    for (int p = p_lo; p <= p_hi; ++p)
      for (int q = q_lo; q <= q_hi; ++q) sum += dy[(plane * out_h + p) * out_w + q];
    dx[i] = sum;
  }
}

__global__ void corrupt_kernel(const float* clean, float* noisy, int batch, std::size_t image_size,
                               float sigma, const BatchKey* key) {
  const std::size_t quads = (image_size + 3) / 4;
  const std::uint64_t stream_key = cm::noise_key(key->seed, key->stream, key->epoch);
  GRID_STRIDE(i, std::size_t(batch) * quads) {
    const std::size_t b = i / quads, quad = i % quads;
    float z[4];
    cm::normal4(stream_key, key->first_index + b, std::uint32_t(quad), z);
    for (int j = 0; j < 4; ++j) {
      const std::size_t pixel = quad * 4 + j;
      if (pixel < image_size) {
        const std::size_t at = b * image_size + pixel;
        noisy[at] = cm::corrupt_pixel(clean[at], sigma, z[j]);
      }
    }
  }
}

__global__ void step_begin_kernel(StepState* state, int slot, float lr, float beta1, float beta2) {
  state->t += 1;
  state->lr_t = cm::adam_rate(lr, beta1, beta2, state->t);
  state->loss_sum[slot] = 0.0;
}

__global__ void loss_kernel(const float* out, const float* target, float* grad, std::size_t n,
                            bool bce, StepState* state, int slot) {
  const float scale = float(1.0 / double(n));
  double sum = 0.0;
  GRID_STRIDE(i, n) {
    sum += bce ? cm::bce_element(out[i], target[i], scale, &grad[i])
               : cm::mse_element(out[i], target[i], scale, &grad[i]);
  }
  sum = block_sum(sum);
  if (threadIdx.x == 0) atomicAdd(&state->loss_sum[slot], sum);
}

__global__ void adam_kernel(float* p, const float* g, float* m, float* v, std::size_t n,
                            const StepState* state, float beta1, float beta2, float epsilon) {
  const float lr_t = state->lr_t;
  GRID_STRIDE(i, n) cm::adam_element(&p[i], g[i], &m[i], &v[i], lr_t, beta1, beta2, epsilon);
}

// Images per block of the bias reduction: enough cells that a block has work, few enough
// blocks per channel that the second pass is one small block.
int images_per_split(int hw) { return std::max(1, (4096 + hw - 1) / hw); }

}  // namespace

std::string probe() {
  cudaFuncAttributes attributes;
  const cudaError_t e = cudaFuncGetAttributes(&attributes, shift_copy_kernel);
  if (e == cudaSuccess) return "";
  cudaGetLastError();
  return std::string("the backend's kernels cannot run on this device (") + cudaGetErrorString(e) +
         "); rebuild with -DCMAKE_CUDA_ARCHITECTURES set to the device's compute capability";
}

void shift_copy(const float* in, int nc, int in_h, int in_w, float* out, int out_h, int out_w,
                int dy, int dx, cudaStream_t stream) {
  shift_copy_kernel<<<blocks_for(std::size_t(nc) * out_h * out_w), threads, 0, stream>>>(
      in, nc, in_h, in_w, out, out_h, out_w, dy, dx);
  check_launch("shift_copy");
}

void bias_act(float* y, const float* bias, int n, int c, int hw, Act act, cudaStream_t stream) {
  if (!bias && act == Act::none) return;
  const std::size_t count = std::size_t(n) * c * hw;
  bias_act_kernel<<<blocks_for(count), threads, 0, stream>>>(y, bias, c, hw, count, act);
  check_launch("bias_act");
}

std::size_t bias_grad_scratch(int n, int c, int hw) {
  const int per = images_per_split(hw);
  return std::size_t(c) * ((n + per - 1) / per);
}

void act_backward_bias(float* dy, const float* y, Act act, int n, int c, int hw, float* db,
                       float* partial, cudaStream_t stream) {
  if (!db) {
    if (act != Act::none) act_backward(y, dy, dy, std::size_t(n) * c * hw, act, stream);
    return;
  }
  const int per = images_per_split(hw), splits = (n + per - 1) / per;
  act_backward_partial_kernel<<<dim3(splits, c), threads, 0, stream>>>(dy, y, act, n, c, hw, per,
                                                                       partial);
  check_launch("act_backward_partial");
  sum_partials_kernel<<<c, threads, 0, stream>>>(partial, splits, db);
  check_launch("sum_partials");
}

void act_forward(const float* x, float* y, std::size_t count, Act act, cudaStream_t stream) {
  act_forward_kernel<<<blocks_for(count), threads, 0, stream>>>(x, y, count, act);
  check_launch("act_forward");
}

void act_backward(const float* y, const float* dy, float* dx, std::size_t count, Act act,
                  cudaStream_t stream) {
  act_backward_kernel<<<blocks_for(count), threads, 0, stream>>>(y, dy, dx, count, act);
  check_launch("act_backward");
}

void axpby(const float* x, float a, const float* y, float b, float* z, std::size_t count,
           cudaStream_t stream) {
  axpby_kernel<<<blocks_for(count), threads, 0, stream>>>(x, a, y, b, z, count);
  check_launch("axpby");
}

void scale(const float* x, float a, float* y, std::size_t count, cudaStream_t stream) {
  scale_kernel<<<blocks_for(count), threads, 0, stream>>>(x, a, y, count);
  check_launch("scale");
}

// Strided copies of one image's share per row: the copy engine's 2-D form.
void concat_forward(const float* x, std::size_t x_size, const float* y, std::size_t y_size,
                    float* z, int batch, cudaStream_t stream) {
  const std::size_t pitch = (x_size + y_size) * sizeof(float);
  if (cudaMemcpy2DAsync(z, pitch, x, x_size * sizeof(float), x_size * sizeof(float), batch,
                        cudaMemcpyDeviceToDevice, stream) != cudaSuccess ||
      cudaMemcpy2DAsync(z + x_size, pitch, y, y_size * sizeof(float), y_size * sizeof(float), batch,
                        cudaMemcpyDeviceToDevice, stream) != cudaSuccess)
    check_launch("concat_forward");
}

void concat_backward(const float* dz, float* dx, std::size_t x_size, float* dy, std::size_t y_size,
                     int batch, cudaStream_t stream) {
  const std::size_t pitch = (x_size + y_size) * sizeof(float);
  if (cudaMemcpy2DAsync(dx, x_size * sizeof(float), dz, pitch, x_size * sizeof(float), batch,
                        cudaMemcpyDeviceToDevice, stream) != cudaSuccess ||
      cudaMemcpy2DAsync(dy, y_size * sizeof(float), dz + x_size, pitch, y_size * sizeof(float),
                        batch, cudaMemcpyDeviceToDevice, stream) != cudaSuccess)
    check_launch("concat_backward");
}

void maxpool_forward(const float* x, float* y, int* argmax, const PoolGeometry& g,
                     cudaStream_t stream) {
  maxpool_forward_kernel<<<blocks_for(std::size_t(g.nc) * g.out_h * g.out_w), threads, 0, stream>>>(
      x, y, argmax, g);
  check_launch("maxpool_forward");
}

void maxpool_backward(const float* dy, const int* argmax, float* dx, const PoolGeometry& g,
                      cudaStream_t stream) {
  maxpool_backward_kernel<<<blocks_for(std::size_t(g.nc) * g.in_h * g.in_w), threads, 0, stream>>>(
      dy, argmax, dx, g);
  check_launch("maxpool_backward");
}

void resize_forward(const float* x, float* y, int nc, int in_h, int in_w, int out_h, int out_w,
                    cudaStream_t stream) {
  resize_forward_kernel<<<blocks_for(std::size_t(nc) * out_h * out_w), threads, 0, stream>>>(
      x, y, nc, in_h, in_w, out_h, out_w);
  check_launch("resize_forward");
}

void resize_backward(const float* dy, float* dx, int nc, int in_h, int in_w, int out_h, int out_w,
                     cudaStream_t stream) {
  resize_backward_kernel<<<blocks_for(std::size_t(nc) * in_h * in_w), threads, 0, stream>>>(
      dy, dx, nc, in_h, in_w, out_h, out_w);
  check_launch("resize_backward");
}

void corrupt(const float* clean, float* noisy, int batch, std::size_t image_size, float sigma,
             const BatchKey* key, cudaStream_t stream) {
  corrupt_kernel<<<blocks_for(std::size_t(batch) * ((image_size + 3) / 4)), threads, 0, stream>>>(
      clean, noisy, batch, image_size, sigma, key);
  check_launch("corrupt");
}

void step_begin(StepState* state, int slot, float lr, float beta1, float beta2,
                cudaStream_t stream) {
  step_begin_kernel<<<1, 1, 0, stream>>>(state, slot, lr, beta1, beta2);
  check_launch("step_begin");
}

void loss(const float* out, const float* target, float* grad, std::size_t n, bool bce,
          StepState* state, int slot, cudaStream_t stream) {
  loss_kernel<<<std::min(blocks_for(n), 1024), threads, 0, stream>>>(out, target, grad, n, bce,
                                                                     state, slot);
  check_launch("loss");
}

void adam(float* p, const float* g, float* m, float* v, std::size_t n, const StepState* state,
          float beta1, float beta2, float epsilon, cudaStream_t stream) {
  adam_kernel<<<blocks_for(n), threads, 0, stream>>>(p, g, m, v, n, state, beta1, beta2, epsilon);
  check_launch("adam");
}

}  // namespace cae::ops::cuda_kernels
