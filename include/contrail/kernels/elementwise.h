// Per-ISA elementwise kernels on contiguous f32 arrays: RMS norm, softmax, exp, SwiGLU, add, RoPE.
//
// Every kernel exists as a scalar reference (*_scalar, plain C++ following ggml's CPU code) and as
// AVX2 / AVX-512 variants that are tested against it. Callers pick one set with
// elementwise_kernels(isa) (or call a per-ISA entry directly) and must only use an ISA for which
// isa_supported() is true. The kernels do no validation: pointers are to at least n valid floats,
// n >= 0, and the ops layer (contrail/ops/*) checks shapes before calling them.
//
// Numerics (shared by all variants; SIMD variants may differ from the reference by a few ulp where
// noted):
// - rmsnorm_row: sum of f32 squares accumulated in double, mean narrowed to f32,
//   s = 1/sqrtf(mean + eps), y = (x * s) * w -- ggml's rms_norm followed by mul. SIMD: only the
//   double summation order differs.
// - exp: SIMD variants use a Cody-Waite range reduction and the degree-6 Cephes expf polynomial:
//   within 1 ulp of expf over the normal range (measured on 23M points; tests allow 2 ulp);
//   exp(x) = +inf above 88.72, 0 below -103.9 (subnormal results in between), NaN stays NaN.
// - softmax_row: m = max, e = exp(x - m), sum of e in double, x = e * float(1 / sum). A row whose
//   max is -inf (all -inf) becomes all 0.
// - swiglu: out = silu(gate) * up with silu(g) = g / (1 + exp(-g)).
// - add_inplace: y += x, bit-exact across ISAs.
// - rope_rows: rotation with a precomputed (cos, sin) table: x0' = x0 cos - x1 sin,
//   x1' = x0 sin + x1 cos. SIMD variants fuse one product of each into an FMA (as ggml's
//   -march=native build does), so they differ from the reference by about 1 ulp of the products.
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
};

// The kernel set for `isa`. Throws InvalidArgument if !isa_supported(isa).
const ElementwiseKernels& elementwise_kernels(Isa isa);

// (cos, sin) of every rotated pair for one position, like ggml's rope cache:
//   theta_scale = powf(freq_base, -2.0f / n_rot); theta_0 = pos; theta_{i+1} = theta_i * theta_scale
//   (f32); angle_i = freq_scale * theta_i; cos_sin[i] = cosf(angle_i), cos_sin[n_rot/2 + i] = sinf(angle_i).
// cos_sin: (2, n_rot / 2). Scalar only: the table is shared by all heads of a token.
void rope_cos_sin(float pos, int64_t n_rot, float freq_base, float freq_scale, float* cos_sin);

// ---- per-ISA entries (what the tables hold) -------------------------------------------------------

void rmsnorm_row_scalar(const float* x, const float* w, int64_t n, float eps, float* y);
void rmsnorm_row_avx2(const float* x, const float* w, int64_t n, float eps, float* y);
void rmsnorm_row_avx512(const float* x, const float* w, int64_t n, float eps, float* y);

void softmax_row_scalar(float* x, int64_t n);
void softmax_row_avx2(float* x, int64_t n);
void softmax_row_avx512(float* x, int64_t n);

void exp_scalar(const float* x, float* y, int64_t n);
void exp_avx2(const float* x, float* y, int64_t n);
void exp_avx512(const float* x, float* y, int64_t n);

void swiglu_scalar(const float* gate, const float* up, float* out, int64_t n);
void swiglu_avx2(const float* gate, const float* up, float* out, int64_t n);
void swiglu_avx512(const float* gate, const float* up, float* out, int64_t n);

void add_inplace_scalar(float* y, const float* x, int64_t n);
void add_inplace_avx2(float* y, const float* x, int64_t n);
void add_inplace_avx512(float* y, const float* x, int64_t n);

void rope_rows_scalar(float* x, int64_t n_heads, int64_t head_dim, int64_t n_rot, bool neox, const float* cos_sin);
void rope_rows_avx2(float* x, int64_t n_heads, int64_t head_dim, int64_t n_rot, bool neox, const float* cos_sin);
void rope_rows_avx512(float* x, int64_t n_heads, int64_t head_dim, int64_t n_rot, bool neox, const float* cos_sin);

}  // namespace contrail::kernels
