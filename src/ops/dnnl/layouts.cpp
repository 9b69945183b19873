// Activation layouts of the oneDNN executor: the blocked view our kernels take, and the tags.
#include "ops/dnnl/executor_impl.h"

namespace cae::ops::dnnl_exec {

Md plain_md(int batch, Dims d) { return Md({batch, d.c, d.h, d.w}, f32, Tag::nchw); }
Md any_md(const memory::dims& dims, memory::data_type dt) { return Md(dims, dt, Tag::any); }

Md with_type(Md md, memory::data_type dt) {
  // A blocked layout's strides count elements, so they hold for any element type.
  md.data.data_type = static_cast<dnnl_data_type_t>(dt);
  return md;
}

// oneDNN's reference kernels are correct but one or two orders of magnitude slower; the builder
// treats them as "this layout is not supported" and tries another.
bool is_ref(const dnnl::primitive_desc_base& pd) {
  return std::string_view(pd.impl_info_str()).starts_with("ref");
}

// The [n][cb][h][w][ci] view of an activation layout, or nothing when it is outside that family.
std::optional<BlockedView> blocked_view(const Md& md) {
  const dnnl_memory_desc_t& d = md.data;
  if (d.ndims != 4 || d.format_kind != dnnl_blocked) return std::nullopt;
  const auto& b = d.format_desc.blocking;
  BlockedView v;
  v.n = int(d.dims[0]);
  v.h = int(d.dims[2]);
  v.w = int(d.dims[3]);
  v.stride_n = b.strides[0];
  v.stride_h = b.strides[2];
  v.stride_w = b.strides[3];
  if (b.inner_nblks == 0) {
    const bool channels_last = b.strides[1] == 1;
    v.cb = channels_last ? 1 : int(d.dims[1]);
    v.ci = channels_last ? int(d.dims[1]) : 1;
    v.stride_cb = channels_last ? 0 : b.strides[1];
    return v;
  }
  if (b.inner_nblks == 1 && b.inner_idxs[0] == 1) {
    v.ci = int(b.inner_blks[0]);
    v.cb = int(d.padded_dims[1] / b.inner_blks[0]);
    v.stride_cb = b.strides[1];
    return v;
  }
  return std::nullopt;
}

// nChw<block>c, for the block widths oneDNN uses.
std::optional<Tag> blocked_tag(int block) {
  switch (block) {
    case 16: return Tag::nChw16c;
    case 8: return Tag::nChw8c;
    case 4: return Tag::nChw4c;
  }
  return std::nullopt;
}

// The layout `md` has, for other dims: the output of a resize keeps its input's layout.
Md same_layout(const Md& md, const memory::dims& dims) {
  const auto& b = md.data.format_desc.blocking;
  if (b.inner_nblks == 1 && b.inner_idxs[0] == 1) {
    if (const auto tag = blocked_tag(int(b.inner_blks[0]))) return Md(dims, f32, *tag);
  } else if (b.inner_nblks == 0) {
    return Md(dims, f32, b.strides[1] == 1 && md.data.dims[1] > 1 ? Tag::nhwc : Tag::nchw);
  }
  throw Error("activation layout outside the resize kernel's family");
}

}  // namespace cae::ops::dnnl_exec
