// oneDNN's instruction-set tier, kept in step with cae's own kernels (core/isa.h), and the
// activation layout it uses on this CPU: the layout plan asks it instead of assuming one.
#pragma once

#include <dnnl.hpp>
#include <string>

namespace cae::ops::dnnl_backend {

// Requires nothing. Ensures, before oneDNN's first primitive in this process, that oneDNN
// dispatches to no tier above the process's cap (core/isa.h) when the cap says so (IsaCap::onednn:
// CAE_MAX_ISA does; ONEDNN_MAX_CPU_ISA alone is oneDNN's own business and it reads it itself).
// Fixes the cap. Throws cae::Error with the cap's error (a bad CAE_MAX_ISA), or when oneDNN
// refuses the cap or runs above it anyway.
void apply_isa_cap();

// oneDNN's effective tier in its own words: "avx512_core", "avx2", "sse41", ...
std::string onednn_isa_name();

// The channel block of the activations oneDNN chooses (format_tag::any) for a 3x3 'same' conv
// c -> c on n x c x h x w: 16 on AVX-512, 8 on AVX2 and SSE4.1; 0 for a plain layout.
int conv_block_width(const dnnl::engine& engine, int n, int c, int h, int w);

}  // namespace cae::ops::dnnl_backend
