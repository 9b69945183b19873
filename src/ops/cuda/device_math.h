// The arithmetic the CUDA kernels run per element, written once for the device and the host: the
// kernels in kernels.cu call it, and tests/test_cuda_parity.cpp checks it on the CPU against the
// ref backend, the optimizer and published test vectors, so most of the GPU's logic is tested on
// machines without one. Plain C++ with no CUDA types; nvcc sees the functions as __host__
// __device__.
#pragma once

#include <math.h>

#include <cstdint>

#ifdef __CUDACC__
#define CAE_HD __host__ __device__ inline
#else
#define CAE_HD inline
#endif

namespace cae::ops::cuda_math {

// ---- counter-based random numbers: Philox4x32-10 (Salmon et al., SC'11, Random123) ----

struct Philox4 {
  std::uint32_t v[4];
};

// Requires nothing. Ensures the 10-round Philox4x32 bijection of counter under key.
CAE_HD Philox4 philox4x32_10(Philox4 ctr, std::uint32_t k0, std::uint32_t k1) {
  for (int round = 0; round < 10; ++round) {
    const std::uint64_t p0 = std::uint64_t(0xD2511F53u) * ctr.v[0];
    const std::uint64_t p1 = std::uint64_t(0xCD9E8D57u) * ctr.v[2];
    const std::uint32_t hi0 = std::uint32_t(p0 >> 32), lo0 = std::uint32_t(p0);
    const std::uint32_t hi1 = std::uint32_t(p1 >> 32), lo1 = std::uint32_t(p1);
    ctr = {{hi1 ^ ctr.v[1] ^ k0, lo1, hi0 ^ ctr.v[3] ^ k1, lo0}};
    k0 += 0x9E3779B9u;
    k1 += 0xBB67AE85u;
  }
  return ctr;
}

// splitmix64's finaliser: spreads the key words so nearby seeds give unrelated streams.
CAE_HD std::uint64_t mix64(std::uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

// The Philox key of a noise stream: a function of (seed, stream, epoch) only.
CAE_HD std::uint64_t noise_key(std::uint64_t seed, std::uint64_t stream, std::uint64_t epoch) {
  return mix64(mix64(mix64(seed) ^ stream) ^ epoch);
}

// Requires nothing. Ensures four independent standard normals for pixels 4 quad .. 4 quad + 3 of
// image `image` in the stream `key` (Box-Muller on 24-bit uniforms, u1 in (0, 1] so log is
// finite). The same (key, image, quad) gives the same numbers whatever the batch they fall in.
CAE_HD void normal4(std::uint64_t key, std::uint64_t image, std::uint32_t quad, float out[4]) {
  const Philox4 r = philox4x32_10({{quad, 0u, std::uint32_t(image), std::uint32_t(image >> 32)}},
                                  std::uint32_t(key), std::uint32_t(key >> 32));
  const float two_pi = 6.28318530717958647692f, inv24 = 1.0f / 16777216.0f;
  for (int pair = 0; pair < 2; ++pair) {
    const float u1 = float((r.v[2 * pair] >> 8) + 1u) * inv24;
    const float u2 = float(r.v[2 * pair + 1] >> 8) * inv24;
    const float radius = sqrtf(-2.0f * logf(u1));
    out[2 * pair] = radius * cosf(two_pi * u2);
    out[2 * pair + 1] = radius * sinf(two_pi * u2);
  }
}

// The corruption of DESIGN.md §1: clip(x + sigma z, 0, 1).
CAE_HD float corrupt_pixel(float clean, float sigma, float z) {
  const float v = clean + sigma * z;
  return v < 0.f ? 0.f : (v > 1.f ? 1.f : v);
}

// ---- index maps of pooling and resize, in the gather form the backward kernels use ----

// TF1 nearest resize (DESIGN.md §2): src = min(floor(dst * in / out), in - 1), in integers.
CAE_HD int resize_source(int dst, int in, int out) {
  const long long s = (long long)dst * in / out;
  return s < in - 1 ? int(s) : in - 1;
}

// The destinations p in [*lo, *hi] that read source cell `src` (empty when *lo > *hi): the map
// is monotone, so they are one run.
CAE_HD void resize_readers(int src, int in, int out, int* lo, int* hi) {
  *lo = int(((long long)src * out + in - 1) / in);
  *hi = src == in - 1 ? out - 1 : int(((long long)(src + 1) * out + in - 1) / in) - 1;
  if (*hi > out - 1) *hi = out - 1;
}

// The pooling windows p in [*lo, *hi] (of out windows of size k, stride s, pad_before) that
// cover input cell h.
CAE_HD void pool_windows(int h, int out, int k, int s, int pad_before, int* lo, int* hi) {
  const int first = h + pad_before - k + 1;
  *lo = first <= 0 ? 0 : (first + s - 1) / s;
  *hi = (h + pad_before) / s;
  if (*hi > out - 1) *hi = out - 1;
}

// ---- loss and optimizer, per element ----

// Sigmoid cross-entropy with logits (stable form, DESIGN.md §2) of logit x against target z;
// *grad = d loss / d x times scale (1 / element count). Same float arithmetic as nn::loss.
CAE_HD float bce_element(float x, float z, float scale, float* grad) {
  const float e = expf(-fabsf(x));
  const float sig = x >= 0.f ? 1.f / (1.f + e) : e / (1.f + e);
  *grad = (sig - z) * scale;
  return (x > 0.f ? x : 0.f) - x * z + log1pf(e);
}

// Mean squared error's term and scaled gradient.
CAE_HD float mse_element(float x, float z, float scale, float* grad) {
  const float d = x - z;
  *grad = 2.f * d * scale;
  return d * d;
}

// TF1 Adam's bias-corrected rate for step t (1-based), in double as nn::Optimizer computes it.
CAE_HD float adam_rate(float lr, float beta1, float beta2, long long t) {
  return float(double(lr) * sqrt(1.0 - pow(double(beta2), double(t))) /
               (1.0 - pow(double(beta1), double(t))));
}

// One TF1 Adam update of one parameter (nn::Optimizer::step, element-wise).
CAE_HD void adam_element(float* p, float g, float* m, float* v, float lr_t, float beta1,
                         float beta2, float epsilon) {
  *m = beta1 * *m + (1.f - beta1) * g;
  *v = beta2 * *v + (1.f - beta2) * g * g;
  *p -= lr_t * *m / (sqrtf(*v) + epsilon);
}

}  // namespace cae::ops::cuda_math
