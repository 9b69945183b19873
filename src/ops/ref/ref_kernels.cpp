#include "ops/ref/ref_kernels.h"

#include <algorithm>
#include <cmath>
#include <vector>

namespace cae::ops::ref {
namespace {

// Offset of cell (c, h, w) inside one image of shape d.
std::size_t at(const Dims& d, int c, int h, int w) { return (std::size_t(c) * d.h + h) * d.w + w; }

// Offset of tap (ky, kx) of the K×K kernel joining channels (a, b), b being the inner one of
// b_count: OIHW for conv (a = o, b = c), IOHW for tconv (a = c, b = o).
std::size_t tap(int a, int b, int b_count, int k, int ky, int kx) {
  return ((std::size_t(a) * b_count + b) * k + ky) * std::size_t(k) + kx;
}

bool inside(int h, int w, const Dims& d) { return h >= 0 && h < d.h && w >= 0 && w < d.w; }

// Whether a loop of this many inner steps is worth waking the OpenMP team: the gradient checks run
// thousands of tiny nets, and on a busy machine each parallel region of those costs far more in
// thread hand-off than its work.
bool threaded(std::size_t steps) { return steps >= (std::size_t(1) << 16); }

// About the multiply-adds of a conv or tconv pass (exact for conv, within stride^2 for tconv).
std::size_t conv_steps(const OpDesc& op, int batch) {
  return std::size_t(batch) * op.out.size() * op.in.c * op.kernel * op.kernel;
}

void store(const std::vector<double>& acc, float* out) {
  for (std::size_t i = 0; i < acc.size(); ++i) out[i] = float(acc[i]);
}

}  // namespace

void conv_forward(const OpDesc& op, int batch, const float* x, const float* w, const float* b,
                  float* y) {
  const Dims in = op.in, out = op.out;
  const int k = op.kernel, s = op.stride;
#pragma omp parallel for if (threaded(conv_steps(op, batch)))
  for (int n = 0; n < batch; ++n) {
    const float* xn = x + n * in.size();
    float* yn = y + n * out.size();
    for (int o = 0; o < out.c; ++o)
      for (int p = 0; p < out.h; ++p)
        for (int q = 0; q < out.w; ++q) {
          double acc = b ? b[o] : 0.0;
          for (int c = 0; c < in.c; ++c)
            for (int ky = 0; ky < k; ++ky)
              for (int kx = 0; kx < k; ++kx) {
                const int h = p * s - op.pad_top + ky, v = q * s - op.pad_left + kx;
                if (inside(h, v, in))
                  acc += double(xn[at(in, c, h, v)]) * w[tap(o, c, in.c, k, ky, kx)];
              }
          yn[at(out, o, p, q)] = float(acc);
        }
  }
}

void conv_backward_data(const OpDesc& op, int batch, const float* dy, const float* w, float* dx) {
  const Dims in = op.in, out = op.out;
  const int k = op.kernel, s = op.stride;
  // The forward loop with the product scattered back: each output cell hands its gradient to the
  // input cells it read.
#pragma omp parallel for if (threaded(conv_steps(op, batch)))
  for (int n = 0; n < batch; ++n) {
    const float* dyn = dy + n * out.size();
    std::vector<double> acc(in.size(), 0.0);
    for (int o = 0; o < out.c; ++o)
      for (int p = 0; p < out.h; ++p)
        for (int q = 0; q < out.w; ++q) {
          const double g = dyn[at(out, o, p, q)];
          for (int c = 0; c < in.c; ++c)
            for (int ky = 0; ky < k; ++ky)
              for (int kx = 0; kx < k; ++kx) {
                const int h = p * s - op.pad_top + ky, v = q * s - op.pad_left + kx;
                if (inside(h, v, in)) acc[at(in, c, h, v)] += g * w[tap(o, c, in.c, k, ky, kx)];
              }
        }
    store(acc, dx + n * in.size());
  }
}

void conv_backward_weights(const OpDesc& op, int batch, const float* x, const float* dy, float* dw,
                           float* db) {
  const Dims in = op.in, out = op.out;
  const int k = op.kernel, s = op.stride;
#pragma omp parallel for if (threaded(conv_steps(op, batch)))
  for (int o = 0; o < out.c; ++o) {
    for (int c = 0; c < in.c; ++c)
      for (int ky = 0; ky < k; ++ky)
        for (int kx = 0; kx < k; ++kx) {
          double acc = 0.0;
          for (int n = 0; n < batch; ++n)
            for (int p = 0; p < out.h; ++p)
              for (int q = 0; q < out.w; ++q) {
                const int h = p * s - op.pad_top + ky, v = q * s - op.pad_left + kx;
                if (inside(h, v, in))
                  acc += double(x[n * in.size() + at(in, c, h, v)]) *
                         dy[n * out.size() + at(out, o, p, q)];
              }
          dw[tap(o, c, in.c, k, ky, kx)] = float(acc);
        }
    if (db) {
      double acc = 0.0;
      for (int n = 0; n < batch; ++n)
        for (int p = 0; p < out.h; ++p)
          for (int q = 0; q < out.w; ++q) acc += dy[n * out.size() + at(out, o, p, q)];
      db[o] = float(acc);
    }
  }
}

void tconv_forward(const OpDesc& op, int batch, const float* x, const float* w, const float* b,
                   float* y) {
  const Dims in = op.in, out = op.out;
  const int k = op.kernel, s = op.stride;
#pragma omp parallel for if (threaded(conv_steps(op, batch)))
  for (int n = 0; n < batch; ++n) {
    const float* xn = x + n * in.size();
    std::vector<double> acc(out.size(), 0.0);
    for (int c = 0; c < in.c; ++c)
      for (int h = 0; h < in.h; ++h)
        for (int v = 0; v < in.w; ++v) {
          const double value = xn[at(in, c, h, v)];
          for (int o = 0; o < out.c; ++o)
            for (int ky = 0; ky < k; ++ky)
              for (int kx = 0; kx < k; ++kx) {
                const int p = h * s - op.pad_top + ky, q = v * s - op.pad_left + kx;
                if (inside(p, q, out))
                  acc[at(out, o, p, q)] += value * w[tap(c, o, out.c, k, ky, kx)];
              }
        }
    if (b)
      for (int o = 0; o < out.c; ++o)
        for (int p = 0; p < out.h; ++p)
          for (int q = 0; q < out.w; ++q) acc[at(out, o, p, q)] += b[o];
    store(acc, y + n * out.size());
  }
}

void tconv_backward_data(const OpDesc& op, int batch, const float* dy, const float* w, float* dx) {
  const Dims in = op.in, out = op.out;
  const int k = op.kernel, s = op.stride;
  // Each input cell gathers the gradient of every output cell it was scattered into.
#pragma omp parallel for if (threaded(conv_steps(op, batch)))
  for (int n = 0; n < batch; ++n) {
    const float* dyn = dy + n * out.size();
    float* dxn = dx + n * in.size();
    for (int c = 0; c < in.c; ++c)
      for (int h = 0; h < in.h; ++h)
        for (int v = 0; v < in.w; ++v) {
          double acc = 0.0;
          for (int o = 0; o < out.c; ++o)
            for (int ky = 0; ky < k; ++ky)
              for (int kx = 0; kx < k; ++kx) {
                const int p = h * s - op.pad_top + ky, q = v * s - op.pad_left + kx;
                if (inside(p, q, out))
                  acc += double(dyn[at(out, o, p, q)]) * w[tap(c, o, out.c, k, ky, kx)];
              }
          dxn[at(in, c, h, v)] = float(acc);
        }
  }
}

void tconv_backward_weights(const OpDesc& op, int batch, const float* x, const float* dy, float* dw,
                            float* db) {
  const Dims in = op.in, out = op.out;
  const int k = op.kernel, s = op.stride;
#pragma omp parallel for if (threaded(conv_steps(op, batch)))
  for (int c = 0; c < in.c; ++c)
    for (int o = 0; o < out.c; ++o)
      for (int ky = 0; ky < k; ++ky)
        for (int kx = 0; kx < k; ++kx) {
          double acc = 0.0;
          for (int n = 0; n < batch; ++n)
            for (int h = 0; h < in.h; ++h)
              for (int v = 0; v < in.w; ++v) {
                const int p = h * s - op.pad_top + ky, q = v * s - op.pad_left + kx;
                if (inside(p, q, out))
                  acc += double(x[n * in.size() + at(in, c, h, v)]) *
                         dy[n * out.size() + at(out, o, p, q)];
              }
          dw[tap(c, o, out.c, k, ky, kx)] = float(acc);
        }
  if (db)
    for (int o = 0; o < out.c; ++o) {
      double acc = 0.0;
      for (int n = 0; n < batch; ++n)
        for (int p = 0; p < out.h; ++p)
          for (int q = 0; q < out.w; ++q) acc += dy[n * out.size() + at(out, o, p, q)];
      db[o] = float(acc);
    }
}

namespace {

// Offset in the image of the winning cell of window (c, p, q): the first maximum in row-major
// scan order over the in-range cells (check_net_desc guarantees there is at least one).
std::size_t pool_argmax(const OpDesc& op, const float* xn, int c, int p, int q) {
  std::size_t best = 0;
  bool found = false;
  for (int ky = 0; ky < op.kernel; ++ky)
    for (int kx = 0; kx < op.kernel; ++kx) {
      const int h = p * op.stride - op.pad_top + ky, v = q * op.stride - op.pad_left + kx;
      if (!inside(h, v, op.in)) continue;
      const std::size_t i = at(op.in, c, h, v);
      if (!found || xn[i] > xn[best]) best = i;  // strict: a later tie does not win
      found = true;
    }
  return best;
}

}  // namespace

void maxpool_forward(const OpDesc& op, int batch, const float* x, float* y) {
  const Dims in = op.in, out = op.out;
#pragma omp parallel for if (threaded(batch * out.size() * op.kernel * op.kernel))
  for (int n = 0; n < batch; ++n) {
    const float* xn = x + n * in.size();
    float* yn = y + n * out.size();
    for (int c = 0; c < out.c; ++c)
      for (int p = 0; p < out.h; ++p)
        for (int q = 0; q < out.w; ++q) yn[at(out, c, p, q)] = xn[pool_argmax(op, xn, c, p, q)];
  }
}

void maxpool_backward(const OpDesc& op, int batch, const float* x, const float* dy, float* dx) {
  const Dims in = op.in, out = op.out;
#pragma omp parallel for if (threaded(batch * out.size() * op.kernel * op.kernel))
  for (int n = 0; n < batch; ++n) {
    const float* xn = x + n * in.size();
    const float* dyn = dy + n * out.size();
    std::vector<double> acc(in.size(), 0.0);
    for (int c = 0; c < out.c; ++c)
      for (int p = 0; p < out.h; ++p)
        for (int q = 0; q < out.w; ++q) acc[pool_argmax(op, xn, c, p, q)] += dyn[at(out, c, p, q)];
    store(acc, dx + n * in.size());
  }
}

int resize_source(int dst, int in, int out) {
  // Integer arithmetic: the float form floor(dst * (in / out)) is off by one for some sizes.
  return int(std::min<long long>(static_cast<long long>(dst) * in / out, in - 1));
}

void resize_forward(const OpDesc& op, int batch, const float* x, float* y) {
  const Dims in = op.in, out = op.out;
#pragma omp parallel for if (threaded(batch * out.size()))
  for (int n = 0; n < batch; ++n) {
    const float* xn = x + n * in.size();
    float* yn = y + n * out.size();
    for (int c = 0; c < out.c; ++c)
      for (int p = 0; p < out.h; ++p)
        for (int q = 0; q < out.w; ++q)
          yn[at(out, c, p, q)] =
              xn[at(in, c, resize_source(p, in.h, out.h), resize_source(q, in.w, out.w))];
  }
}

void resize_backward(const OpDesc& op, int batch, const float* dy, float* dx) {
  const Dims in = op.in, out = op.out;
#pragma omp parallel for if (threaded(batch * out.size()))
  for (int n = 0; n < batch; ++n) {
    const float* dyn = dy + n * out.size();
    std::vector<double> acc(in.size(), 0.0);
    for (int c = 0; c < out.c; ++c)
      for (int p = 0; p < out.h; ++p)
        for (int q = 0; q < out.w; ++q)
          acc[at(in, c, resize_source(p, in.h, out.h), resize_source(q, in.w, out.w))] +=
              dyn[at(out, c, p, q)];
    store(acc, dx + n * in.size());
  }
}

void relu_forward(std::size_t n, const float* x, float* y) {
  for (std::size_t i = 0; i < n; ++i) y[i] = x[i] > 0.f ? x[i] : 0.f;
}

void relu_backward(std::size_t n, const float* y, const float* dy, float* dx) {
  for (std::size_t i = 0; i < n; ++i) dx[i] = y[i] > 0.f ? dy[i] : 0.f;
}

void sigmoid_forward(std::size_t n, const float* x, float* y) {
  for (std::size_t i = 0; i < n; ++i) y[i] = float(1.0 / (1.0 + std::exp(-double(x[i]))));
}

void sigmoid_backward(std::size_t n, const float* y, const float* dy, float* dx) {
  for (std::size_t i = 0; i < n; ++i) dx[i] = float(double(dy[i]) * y[i] * (1.0 - y[i]));
}

#ifdef CAE_TOY_OP
void tanh_forward(std::size_t n, const float* x, float* y) {
  for (std::size_t i = 0; i < n; ++i) y[i] = std::tanh(x[i]);
}

void tanh_backward(std::size_t n, const float* y, const float* dy, float* dx) {
  for (std::size_t i = 0; i < n; ++i) dx[i] = dy[i] * (1.f - y[i] * y[i]);
}
#endif

void batchnorm_forward(const OpDesc& op, int batch, const float* x, const float* scale,
                       const float* shift, float* y, float* mean, float* var) {
  const std::size_t plane = std::size_t(op.in.h) * op.in.w, image = plane * op.in.c;
  const double count = double(batch) * plane;
  for (int c = 0; c < op.in.c; ++c) {
    double sum = 0, squares = 0;
    for (int n = 0; n < batch; ++n)
      for (std::size_t i = 0; i < plane; ++i) sum += x[n * image + c * plane + i];
    const double mu = sum / count;
    for (int n = 0; n < batch; ++n)
      for (std::size_t i = 0; i < plane; ++i) {
        const double d = x[n * image + c * plane + i] - mu;
        squares += d * d;
      }
    const double sigma2 = squares / count, inv = 1.0 / std::sqrt(sigma2 + kBatchNormEpsilon);
    mean[c] = float(mu);
    var[c] = float(sigma2);
    for (int n = 0; n < batch; ++n)
      for (std::size_t i = 0; i < plane; ++i) {
        const std::size_t at = n * image + c * plane + i;
        y[at] = float(scale[c] * (x[at] - mu) * inv + shift[c]);
      }
  }
}

void batchnorm_backward(const OpDesc& op, int batch, const float* x, const float* dy,
                        const float* scale, const float* mean, const float* var, float* dx,
                        float* dscale, float* dshift) {
  // With xhat = (x - mean) inv: dshift = sum dy, dscale = sum dy xhat, and
  // dx = scale inv (dy - dshift / count - xhat dscale / count).
  const std::size_t plane = std::size_t(op.in.h) * op.in.w, image = plane * op.in.c;
  const double count = double(batch) * plane;
  for (int c = 0; c < op.in.c; ++c) {
    const double inv = 1.0 / std::sqrt(double(var[c]) + kBatchNormEpsilon);
    double sum_dy = 0, sum_dy_xhat = 0;
    for (int n = 0; n < batch; ++n)
      for (std::size_t i = 0; i < plane; ++i) {
        const std::size_t at = n * image + c * plane + i;
        sum_dy += dy[at];
        sum_dy_xhat += dy[at] * (x[at] - mean[c]) * inv;
      }
    dshift[c] = float(sum_dy);
    dscale[c] = float(sum_dy_xhat);
    for (int n = 0; n < batch; ++n)
      for (std::size_t i = 0; i < plane; ++i) {
        const std::size_t at = n * image + c * plane + i;
        const double xhat = (x[at] - mean[c]) * inv;
        dx[at] = float(scale[c] * inv * (dy[at] - sum_dy / count - xhat * sum_dy_xhat / count));
      }
  }
}

void concat_forward(const OpDesc& op, int batch, const float* x, const float* y, float* z) {
  const std::size_t xs = op.in.size(), ys = op.out.size() - op.in.size();
  for (int n = 0; n < batch; ++n) {
    std::copy_n(x + n * xs, xs, z + n * (xs + ys));
    std::copy_n(y + n * ys, ys, z + n * (xs + ys) + xs);
  }
}

void concat_backward(const OpDesc& op, int batch, const float* dz, float* dx, float* dy) {
  const std::size_t xs = op.in.size(), ys = op.out.size() - op.in.size();
  for (int n = 0; n < batch; ++n) {
    std::copy_n(dz + n * (xs + ys), xs, dx + n * xs);
    std::copy_n(dz + n * (xs + ys) + xs, ys, dy + n * ys);
  }
}

void add_forward(std::size_t n, const float* x, const float* y, float* z) {
  for (std::size_t i = 0; i < n; ++i) z[i] = x[i] + y[i];
}

void sub_forward(std::size_t n, const float* x, const float* y, float* z) {
  for (std::size_t i = 0; i < n; ++i) z[i] = y[i] - x[i];
}

void add_backward(std::size_t n, const float* dz, float* dx, float* dy) {
  for (std::size_t i = 0; i < n; ++i) dx[i] = dy[i] = dz[i];
}

void sub_backward(std::size_t n, const float* dz, float* dx, float* dy) {
  for (std::size_t i = 0; i < n; ++i) {
    dx[i] = -dz[i];
    dy[i] = dz[i];
  }
}

}  // namespace cae::ops::ref
