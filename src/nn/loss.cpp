#include "nn/loss.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#include "cae/error.h"
#include "core/isa.h"

namespace cae::nn {

namespace {

// exp and log1p as polynomials the compiler vectorizes (std::exp and std::log1p are library calls
// it cannot, and they made the loss as slow as a convolution). Both are within 2 ulp of float.
#define CAE_INLINE [[gnu::always_inline]] inline

CAE_INLINE float bits_to_float(std::uint32_t u) {
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}

// e^t for t <= 0 (Cephes expf: t = n ln2 + r, |r| <= ln2/2, degree-6 polynomial); 0 below -87.
CAE_INLINE float exp_nonpositive(float t) {
  t = std::max(t, -87.f);
  const float n = std::nearbyint(t * 1.44269504088896341f);
  const float r = (t - n * 0.693359375f) + n * 2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.f;
  return p * bits_to_float(std::uint32_t(int(n) + 127) << 23);
}

// log1p(e) for e in [0, 1] (Cephes logf on u = 1 + e, with Goldberg's correction
// log1p(e) = log(u) * e / (u - 1) for the bits of e that 1 + e loses).
CAE_INLINE float log1p_unit(float e) {
  const float u = 1.f + e;
  // u in [1, 2]: above sqrt(2), log(u) = log(u / 2) + ln 2, so the polynomial sees [-0.29, 0.41].
  const bool high = u > 1.41421356f;
  const float f = (high ? u * 0.5f : u) - 1.f;
  const float z = f * f;
  float p = 7.0376836292e-2f;
  p = p * f - 1.1514610310e-1f;
  p = p * f + 1.1676998740e-1f;
  p = p * f - 1.2420140846e-1f;
  p = p * f + 1.4249322787e-1f;
  p = p * f - 1.6668057665e-1f;
  p = p * f + 2.0000714765e-1f;
  p = p * f - 2.4999993993e-1f;
  p = p * f + 3.3333331174e-1f;
  float log_u = f + (f * z * p - 0.5f * z);
  if (high) log_u += 0.693147180559945f;
  const float du = u - 1.f;
  return du == 0.f ? e : log_u * (e / du);
}

// Elements [begin, end): returns the sum of the losses; writes grad when not null.
CAE_INLINE double bce_chunk(const float* out, const float* target, float* grad, float scale,
                            std::size_t begin, std::size_t end) {
  // Float partial sums per block of 1024 keep the vector loop in float; blocks add in double.
  double sum = 0.0;
  for (std::size_t b = begin; b < end; b += 1024) {
    const std::size_t stop = std::min(end, b + 1024);
    float part = 0.f;
#pragma omp simd reduction(+ : part)
    for (std::size_t i = b; i < stop; ++i) {
      const float x = out[i], z = target[i];
      const float e = exp_nonpositive(-std::fabs(x));
      // TF's stable form max(x,0) - x z + log1p(exp(-|x|)), with its first two terms as
      // x (1 - z) or -x z: for x >= 0 and z near 1, x - x z cancels, and without a fused
      // multiply-add (the baseline tier) the rounding of x z alone was 1e-4 of the loss. Both
      // forms are >= 0 for z in [0, 1], so the sum below cancels nothing either.
      const float linear = x >= 0.f ? x * (1.f - z) : -x * z;
      part += linear + log1p_unit(e);
      if (grad) {
        const float sig = (x >= 0 ? 1.f : e) / (1.f + e);
        grad[i] = (sig - z) * scale;
      }
    }
    sum += part;
  }
  return sum;
}

CAE_INLINE void sigmoid_chunk(const float* out, float* image, std::size_t begin, std::size_t end) {
#pragma omp simd
  for (std::size_t i = begin; i < end; ++i) {
    const float x = out[i];
    const float e = exp_nonpositive(-std::fabs(x));
    image[i] = (x >= 0 ? 1.f : e) / (1.f + e);
  }
}

// Each chunk once per tier (core/isa.h); the bodies above are always_inline, so each wrapper
// compiles them for its own target.
#define CAE_AVX512 __attribute__((target("avx512f,avx512vl,avx512dq,avx512bw,fma")))
#define CAE_AVX2 __attribute__((target("avx2,fma")))
#define CAE_TIERS(ret, name, params, args)                      \
  CAE_AVX512 ret name##_avx512 params { return name args; }   \
  CAE_AVX2 ret name##_avx2 params { return name args; }       \
  ret name##_base params { return name args; }                \
  auto name##_of(Isa isa) {                                   \
    return isa == Isa::avx512 ? name##_avx512                 \
           : isa == Isa::avx2 ? name##_avx2                   \
                              : name##_base;                  \
  }

CAE_TIERS(double, bce_chunk,
          (const float* o, const float* t, float* g, float s, std::size_t b, std::size_t e),
          (o, t, g, s, b, e))
CAE_TIERS(void, sigmoid_chunk, (const float* o, float* im, std::size_t b, std::size_t e),
          (o, im, b, e))

void check_tier(Isa isa) {
  if (isa > cpu_isa())
    throw Error(std::string("loss: the ") + isa_name(isa) + " code cannot run here (" +
                isa_description() + ")");
}

// Thread t's share of n elements, in multiples of 1024 so partial sums do not depend on where a
// share starts inside a block.
std::pair<std::size_t, std::size_t> share(std::size_t n, int t, int nthr) {
  const std::size_t blocks = (n + 1023) / 1024;
  const std::size_t lo = blocks * t / nthr, hi = blocks * (t + 1) / nthr;
  return {std::min(n, lo * 1024), std::min(n, hi * 1024)};
}

}  // namespace

LossKind parse_loss(const std::string& name) {
  if (name == "bce") return LossKind::bce;
  if (name == "mse") return LossKind::mse;
  throw Error("unknown loss '" + name + "' (expected 'bce' or 'mse')");
}

const char* loss_name(LossKind kind) { return kind == LossKind::bce ? "bce" : "mse"; }

double loss_and_grad(LossKind kind, const float* out, const float* target, std::size_t n,
                     float* grad) {
  return loss_and_grad(kind, out, target, n, grad, cpu_isa());
}

double loss_and_grad(LossKind kind, const float* out, const float* target, std::size_t n,
                     float* grad, Isa isa) {
  check_tier(isa);
  const double inv_n = 1.0 / double(n);
  const float scale = float(inv_n);
  double sum = 0.0;
  if (kind == LossKind::bce) {
    const auto chunk = bce_chunk_of(isa);
    // Per-thread partials added in thread order: the same sum for the same thread count.
    constexpr int kMaxThreads = 256;
    double partial[kMaxThreads] = {};
    int used = 1;
    const int nthr = std::min(kMaxThreads, std::max(1, omp_get_max_threads()));
#pragma omp parallel num_threads(nthr)
    {
      const int t = omp_get_thread_num(), nt = omp_get_num_threads();
      if (t == 0) used = nt;
      const auto [b, e] = share(n, t, nt);
      partial[t] = chunk(out, target, grad, scale, b, e);
    }
    for (int t = 0; t < used; ++t) sum += partial[t];
  } else {
#pragma omp parallel for reduction(+ : sum) schedule(static)
    for (std::size_t i = 0; i < n; ++i) {
      const float d = out[i] - target[i];
      sum += double(d) * d;
      if (grad) grad[i] = 2.f * d * scale;
    }
  }
  return sum * inv_n;
}

double masked_loss_and_grad(LossKind kind, const float* out, const float* target,
                            const float* mask, int count, ops::Dims dims, float* grad) {
  const std::size_t plane = std::size_t(dims.h) * dims.w;
  std::size_t damaged = 0;
  for (std::size_t p = 0; p < std::size_t(count) * plane; ++p) damaged += mask[p] != 0.f;
  const std::size_t elements = damaged * dims.c;
  const float scale = elements ? float(1.0 / double(elements)) : 0.f;
  double sum = 0;
  for (int b = 0; b < count; ++b)
    for (int ch = 0; ch < dims.c; ++ch)
      for (std::size_t p = 0; p < plane; ++p) {
        const std::size_t i = (std::size_t(b) * dims.c + ch) * plane + p;
        const bool inside = mask[std::size_t(b) * plane + p] != 0.f;
        const float x = out[i], t = target[i];
        if (kind == LossKind::bce) {
          // max(x, 0) - x t + log(1 + e^-|x|): the logits' cross-entropy without overflow.
          if (inside) sum += std::max(x, 0.f) - x * t + std::log1p(std::exp(-std::fabs(x)));
          if (grad) grad[i] = inside ? (1.f / (1.f + std::exp(-x)) - t) * scale : 0.f;
        } else {
          const float d = x - t;
          if (inside) sum += double(d) * d;
          if (grad) grad[i] = inside ? 2.f * d * scale : 0.f;
        }
      }
  return elements ? sum / double(elements) : 0.0;
}

void output_to_image(LossKind kind, const float* out, float* image, std::size_t n) {
  output_to_image(kind, out, image, n, cpu_isa());
}

void output_to_image(LossKind kind, const float* out, float* image, std::size_t n, Isa isa) {
  check_tier(isa);
  if (kind == LossKind::bce) {
    const auto chunk = sigmoid_chunk_of(isa);
#pragma omp parallel
    {
      const auto [b, e] = share(n, omp_get_thread_num(), omp_get_num_threads());
      chunk(out, image, b, e);
    }
  } else {
#pragma omp parallel for schedule(static)
    for (std::size_t i = 0; i < n; ++i) image[i] = std::clamp(out[i], 0.f, 1.f);
  }
}

}  // namespace cae::nn
