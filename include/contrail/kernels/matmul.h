// Per-ISA kernels behind ops::matmul: y = x W^T for weights W in f32, f16, bf16 or q8_0.
//
// Every kernel exists as a scalar reference (the test oracle) and as AVX2 and AVX-512 variants
// (q8_0 also as AVX-512 VNNI). Callers pick a set with matmul_kernels(isa), for an ISA the CPU
// supports (isa_supported()). The kernels do no validation: ops::matmul checks shapes,
// dtypes and aliasing, splits the output rows across threads and gives each thread its own scratch.
//
// Numerics:
// - f32 / f16 / bf16: f32 products summed in f32. Weights convert exactly to f32, so variants
//   differ only in summation order (SIMD variants keep per-lane partial sums).
// - q8_0: the activations are quantized to q8_0 first, per row and block of 32 (ggml-cpu's x86
//   quantize_row_q8_0): amax = max |x|, d = amax / 127 rounded to f16, q = round-half-even(x *
//   (127 / amax)) (q = 0 when amax == 0). All variants of quantize_act_q8_0 are bit-identical.
//   Then y = sum over blocks b of (f32(dw_b) * dx_b) * (sum_j qw_j * qx_j), the integer block sum
//   exact in every variant, the f32 sum over blocks in a variant-specific order -- ggml's
//   vec_dot_q8_0_q8_0, so results match llama.cpp's Q8_0 outputs to f32 rounding.
// - Results do not depend on how rows are split across threads (each output element is computed
//   by the same instruction sequence whichever thread or tile position computes it), given the
//   same scratch_floats. They may differ in the last bits with n_tokens: few tokens stream weight
//   rows, many tokens go through packed panels, and the two sum in different orders.
// - Non-finite inputs give non-finite (or meaningless) outputs; nothing traps.
#pragma once
#include <cstdint>

#include "contrail/core/cpu_features.h"

namespace contrail::kernels {

// One thread's share of y = x W^T: columns [row_begin, row_end) of y (rows of W), all tokens.
struct MatmulArgs {
  const void* w = nullptr;    // (n_out, n_in) weights in the kernel's dtype; q8_0 rows are n_in/32 BlockQ8_0
  const float* x = nullptr;   // (n_tokens, n_in) f32 activations (f32 / f16 / bf16 kernels)
  const int8_t* xq = nullptr; // (n_tokens, n_in) quantized activations (q8_0 kernels)
  const float* xd = nullptr;  // (n_tokens, n_in / 32) their block scales (q8_0 kernels)
  float* y = nullptr;         // (n_tokens, n_out) f32; only columns [row_begin, row_end) are written
  int64_t n_in = 0, n_out = 0, n_tokens = 0;  // n_in >= 1 (q8_0: n_in % 32 == 0), n_tokens >= 1
  int64_t row_begin = 0, row_end = 0;         // 0 <= row_begin <= row_end <= n_out
  // Per-thread scratch for n_tokens > 1: kernels convert or repack a panel of weights into it once
  // and reuse it for every token. Required when n_tokens > 1, with scratch_floats >=
  // max(n_in, kMatmulMinScratchFloats); matmul_scratch_floats(n_in) is the size to give (smaller
  // sizes only cost speed). Unused (may be null) when n_tokens == 1.
  float* scratch = nullptr;
  int64_t scratch_floats = 0;
};

using MatmulFn = void (*)(const MatmulArgs&);
// x: (n) f32 -> qs: (n) int8, d: (n / 32) block scales (f16 values held as f32). n % 32 == 0.
using QuantizeActFn = void (*)(const float* x, int64_t n, int8_t* qs, float* d);

struct MatmulKernels {
  MatmulFn f32, f16, bf16, q8_0;
  QuantizeActFn quantize_act_q8_0;  // the activation format q8_0 expects
};

// The kernel set for `isa` (for Avx512, q8_0 is the VNNI kernel when the CPU has AVX512-VNNI).
// Throws InvalidArgument if !isa_supported(isa).
const MatmulKernels& matmul_kernels(Isa isa);

// Weight rows per panel for rows of row_bytes bytes: keeps a panel within a slice of a core's L2
// so it stays cached while every token block streams past it. Always >= 1.
int64_t matmul_panel_rows(int64_t row_bytes);
// Smallest MatmulArgs::scratch_floats allowed (besides >= n_in).
inline constexpr int64_t kMatmulMinScratchFloats = 1024;
// The per-thread scratch (in floats) to give the kernels for rows of n_in: matmul_panel_rows(4 *
// n_in) f32 rows, at least max(n_in, kMatmulMinScratchFloats).
int64_t matmul_scratch_floats(int64_t n_in);

}  // namespace contrail::kernels
