// Per-ISA elementwise kernels on contiguous f32 arrays: RMS norm, LayerNorm, softmax, exp, SwiGLU,
// GELU / GeGLU, soft-capping, scaling, add, RoPE.
//
// Every kernel exists as a scalar reference (plain C++ following ggml's CPU code) and as AVX2 /
// AVX-512 variants that are tested against it. Callers pick one set with elementwise_kernels(isa)
// and must only use an ISA for which isa_supported() is true. The kernels do no validation: pointers are to at least n valid floats,
// n >= 0, and the ops layer (contrail/ops/*) checks shapes before calling them.
//
// Numerics (shared by all variants; SIMD variants may differ from the reference by a few ulp where
// noted):
// - rmsnorm_row: sum of f32 squares accumulated in double, mean narrowed to f32,
//   s = 1/sqrtf(mean + eps), y = (x * s) * w -- ggml's rms_norm followed by mul. SIMD: only the
//   double summation order differs.
// - layernorm_row: ggml_norm followed by mul and add. sum of x accumulated in double and narrowed
//   to f32, mean = sum / n (f32); d = x - mean (f32); var = f32(sum of f32 d*d in double / n);
//   s = 1/sqrtf(var + eps); y = ((d * s) * w) + b, every step rounded to f32 (no FMA). SIMD: only
//   the double summation orders differ.
// - exp: SIMD variants use a Cody-Waite range reduction and the degree-6 Cephes expf polynomial:
//   within 1 ulp of expf over the normal range (measured on 23M points; tests allow 2 ulp);
//   exp(x) = +inf above 88.72, 0 below -103.9 (subnormal results in between), NaN stays NaN.
// - softmax_row: m = max, e = exp(x - m), sum of e in double, x = e * float(1 / sum). A row whose
//   max is -inf (all -inf) becomes all 0.
// - swiglu: out = silu(gate) * up with silu(g) = g / (1 + exp(-g)).
// - gelu, geglu (tanh approximation, ggml_gelu_f32 evaluated exactly in f32 rather than through
//   ggml's GGML_GELU_FP16 lookup table, which rounds input and output to f16; the golden logit
//   tolerances account for that, see shared/golden/MANIFEST-small-vocab.md section 5): gelu(x) = 0.5f * x * (1 + tanhf(sqrt(2/pi) * x * (1 + 0.044715 * x*x))),
//   geglu: out = gelu(gate) * up. SIMD variants use the identity 0.5 (1 + tanh(u)) = 1 / (1 + exp(-2u))
//   with the vector exp above, which avoids the cancellation of 1 + tanh(u) for u << 0 that the
//   reference has. Both are within 1 ulp of max(|y|, |x| / 2) of the exact formula, and differ by
//   at most 1.3 such ulp from each other (measured on 2M points in [-12, 12]; tests allow 3).
// - softcap: y = tanhf(x * (1/cap)) * cap (ggml_scale, ggml_tanh, ggml_scale, as llama.cpp builds
//   Gemma 2 soft-capping). SIMD tanh: for |t| < 0.625 the Cephes tanhf odd polynomial, above
//   1 - 2 / (exp(2|t|) + 1) with the sign of t: within 2 ulp of tanhf (measured on 22M points of
//   [-20, 20], subnormals included; tests allow 3 for tanh, 4 after the multiplication by cap);
//   +-inf -> +-cap, NaN stays NaN.
// - scale: y = x * s, bit-exact across ISAs.
// - add_inplace: y += x, bit-exact across ISAs.
// - rope_rows: rotation with a precomputed (cos, sin) table: x0' = x0 cos - x1 sin,
//   x1' = x0 sin + x1 cos. SIMD variants fuse one product of each into an FMA (as ggml's
//   -march=native build does), so they differ from the reference by about 1 ulp of the products.
// Edge cases of the activations (x = +-inf) follow the formulas: gelu(-inf) is NaN in every variant.
#pragma once
#include <cstdint>

#include "contrail/core/cpu_features.h"

namespace contrail::kernels {

// ---- kernel set of one ISA -----------------------------------------------------------------------

struct ElementwiseKernels {
  // One row of RMS norm. x, y: (n); w: (n). y may alias x. n >= 1.
  void (*rmsnorm_row)(const float* x, const float* w, int64_t n, float eps, float* y);
  // In-place softmax of one row. x: (n), n >= 1.
  void (*softmax_row)(float* x, int64_t n);
  // y[i] = exp(x[i]). x, y: (n); y may alias x.
  void (*exp)(const float* x, float* y, int64_t n);
  // out[i] = silu(gate[i]) * up[i]. gate, up, out: (n); out may alias gate or up.
  void (*swiglu)(const float* gate, const float* up, float* out, int64_t n);
  // y[i] += x[i]. x, y: (n); exact aliasing allowed.
  void (*add_inplace)(float* y, const float* x, int64_t n);
  // RoPE of n_heads consecutive head rows of one token, in place.
  //   x: (n_heads, head_dim); cos_sin: (2, n_rot / 2), the cosines then the sines of each pair's
  //   angle, as made by rope_cos_sin(). Pair i rotates (x[2i], x[2i+1]) when !neox and
  //   (x[i], x[i + n_rot/2]) when neox; dims >= n_rot are untouched. n_rot even, <= head_dim.
  void (*rope_rows)(float* x, int64_t n_heads, int64_t head_dim, int64_t n_rot, bool neox, const float* cos_sin);
  // One row of LayerNorm with affine weight and bias. x, y: (n); w, b: (n). y may alias x. n >= 1.
  void (*layernorm_row)(const float* x, const float* w, const float* b, int64_t n, float eps, float* y);
  // y[i] = gelu(x[i]) (tanh approximation). x, y: (n); y may alias x.
  void (*gelu)(const float* x, float* y, int64_t n);
  // out[i] = gelu(gate[i]) * up[i]. gate, up, out: (n); out may alias gate or up.
  void (*geglu)(const float* gate, const float* up, float* out, int64_t n);
  // y[i] = cap * tanh(x[i] / cap). x, y: (n); y may alias x. cap > 0 and finite.
  void (*softcap)(const float* x, float* y, int64_t n, float cap);
  // y[i] = x[i] * s. x, y: (n); y may alias x.
  void (*scale)(const float* x, float* y, int64_t n, float s);
};

// The kernel set for `isa`. Throws InvalidArgument if !isa_supported(isa).
const ElementwiseKernels& elementwise_kernels(Isa isa);

// (cos, sin) of every rotated pair for one position, like ggml's rope cache:
//   theta_scale = powf(freq_base, -2.0f / n_rot); theta_0 = pos; theta_{i+1} = theta_i * theta_scale
//   (f32); angle_i = freq_scale * (theta_i / ff_i) with ff_i = freq_factors[i], or
//   angle_i = freq_scale * theta_i when freq_factors is null; cos_sin[i] = cosf(angle_i),
//   cos_sin[n_rot/2 + i] = sinf(angle_i).
// cos_sin: (2, n_rot / 2); freq_factors: (n_rot / 2) or null, each finite and > 0 (the ops layer
// checks). Scalar only: the table is shared by all heads of a token.
void rope_cos_sin(float pos, int64_t n_rot, float freq_base, float freq_scale, float* cos_sin,
                  const float* freq_factors = nullptr);

}  // namespace contrail::kernels
