// The fixed rules of which conv kernel runs where (ExecutorOptions::Kernels::fixed, and the
// families a measured choice draws its candidates from: kernel_choice.cpp).
#include "ops/dnnl/executor_impl.h"

namespace cae::ops {

std::string dnnl_isa() {
  dnnl_backend::apply_isa_cap();
  return dnnl_backend::onednn_isa_name();
}

// oneDNN 2.6's Winograd (jit_wino_4x3) exists for AVX-512 only, for 16-channel blocks; on 7x7
// maps it is no faster than its direct kernels (the rule's bound; a measured choice times it).
bool onednn_winograd_fits(const OpDesc& op, bool any_size) {
  dnnl_backend::apply_isa_cap();
  return dnnl_backend::onednn_isa_name().starts_with("avx512") && op.kind == OpKind::conv &&
         op.kernel == 3 && op.stride == 1 && op.in.c % 16 == 0 && op.out.c % 16 == 0 &&
         (any_size || op.out.h * op.out.w >= 14 * 14);
}

bool winograd_chosen(const OpDesc& op, const ExecutorOptions& options) {
  return options.winograd == ExecutorOptions::Winograd::onednn && onednn_winograd_fits(op);
}

// F(4x4) is 1.5-2.3x faster than oneDNN's direct AVX2 kernels on every seed layer, 28x28 to 7x7
// (partial tiles included), F(2x2) only 1.2-1.6x (docs/performance.md); winograd_tile 2
// (CAE_WINOGRAD_TILE=2) keeps F(2x2), for comparison.
int own_winograd_tile(const OpDesc&, const ExecutorOptions& options) {
  return options.winograd_tile;
}

// Our Winograd kernel (winograd.h) on 3x3 'same' convs with whole channel blocks: on AVX2,
// where oneDNN 2.6 has none, from 4x4 up (1.5-2.4x its direct kernels, 7x7 maps included); on
// AVX-512 from 14x14 up, where it makes the training step 1.2x and inference 1.3x faster than
// oneDNN's jit_wino_4x3; on 7x7 maps oneDNN's direct AVX-512 kernels are faster there
// (docs/performance.md).
bool own_winograd_chosen(const OpDesc& op, const ExecutorOptions& options) {
  if (options.winograd != ExecutorOptions::Winograd::cae) return false;
  dnnl_backend::apply_isa_cap();
  const bool avx512 = dnnl_backend::onednn_isa_name().starts_with("avx512");
  return own_winograd_fits(op, own_winograd_tile(op, options)) &&
         (avx512 ? op.out.h * op.out.w >= 14 * 14 : op.out.h >= 4 && op.out.w >= 4);
}

bool thin_conv_fits(const OpDesc& op) {
  const bool widen = op.in.c == 1 && op.out.c % 16 == 0;
  const bool narrow = op.out.c == 1 && op.in.c % 16 == 0;
  return op.kind == OpKind::conv && (widen || narrow) && op.stride == 1 &&
         (op.act == Activation::none || op.act == Activation::relu);
}

bool own_winograd_fits(const OpDesc& op, int tile) {
  dnnl_backend::apply_isa_cap();
  const int lanes = dnnl_backend::onednn_isa_name().starts_with("avx512") ? 16 : 8;
  const dnnl_backend::WinogradGeom g{1, op.in.c, op.out.c, op.in.h, op.in.w, false, tile, lanes};
  return op.kind == OpKind::conv && op.kernel == 3 && op.stride == 1 && op.pad_top == 1 &&
         op.pad_left == 1 && op.pad_bottom == 1 && op.pad_right == 1 && op.in.h == op.out.h &&
         op.in.w == op.out.w && (op.act == Activation::none || op.act == Activation::relu) &&
         dnnl_backend::winograd_supported(g);
}

}  // namespace cae::ops
