// Scalar reference elementwise kernels (the oracles the SIMD variants are tested against) and the
// per-ISA kernel tables. Each kernel follows the corresponding ggml CPU code so that results agree
// with llama.cpp; see contrail/kernels/elementwise.h for the exact formulas.
#include <cmath>
#include <limits>

#include "contrail/kernels/elementwise.h"
#include "kernels/isa_kernels.h"

namespace contrail::kernels {

void rmsnorm_row_scalar(const float* x, const float* w, int64_t n, float eps, float* y) {
  double sum = 0.0;  // ggml_float accumulator; each square is rounded to f32 first, as in ggml
  for (int64_t i = 0; i < n; ++i) sum += static_cast<double>(x[i] * x[i]);
  const float mean = static_cast<float>(sum / static_cast<double>(n));
  const float scale = 1.0f / std::sqrt(mean + eps);
  for (int64_t i = 0; i < n; ++i) y[i] = (x[i] * scale) * w[i];
}

void softmax_row_scalar(float* x, int64_t n) {
  float max = -std::numeric_limits<float>::infinity();
  for (int64_t i = 0; i < n; ++i) max = x[i] > max ? x[i] : max;
  if (max == -std::numeric_limits<float>::infinity()) {  // all -inf: no admissible entry
    for (int64_t i = 0; i < n; ++i) x[i] = 0.0f;
    return;
  }
  double sum = 0.0;
  for (int64_t i = 0; i < n; ++i) {
    const float e = std::exp(x[i] - max);
    x[i] = e;
    sum += static_cast<double>(e);
  }
  const float inv = static_cast<float>(1.0 / sum);
  for (int64_t i = 0; i < n; ++i) x[i] *= inv;
}

void exp_scalar(const float* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = std::exp(x[i]);
}

void swiglu_scalar(const float* gate, const float* up, float* out, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const float g = gate[i];
    out[i] = g / (1.0f + std::exp(-g)) * up[i];
  }
}

void add_inplace_scalar(float* y, const float* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] += x[i];
}

void layernorm_row_scalar(const float* x, const float* w, const float* b, int64_t n, float eps, float* y) {
  double sum = 0.0;  // ggml_vec_sum_f32: double accumulator, narrowed to f32
  for (int64_t i = 0; i < n; ++i) sum += static_cast<double>(x[i]);
  const float mean = static_cast<float>(sum) / static_cast<float>(n);
  double sum2 = 0.0;  // ggml_vec_cvar_f32: y = x - mean, squares rounded to f32, summed in double
  for (int64_t i = 0; i < n; ++i) {
    const float d = x[i] - mean;
    y[i] = d;
    sum2 += static_cast<double>(d * d);
  }
  const float variance = static_cast<float>(sum2 / static_cast<double>(n));
  const float scale = 1.0f / std::sqrt(variance + eps);
  for (int64_t i = 0; i < n; ++i) y[i] = ((y[i] * scale) * w[i]) + b[i];  // ggml_norm, ggml_mul, ggml_add
}

namespace {

constexpr float kSqrt2OverPi = 0.79788456080286535587989211986876f;
constexpr float kGeluCoefA = 0.044715f;

// ggml_gelu_f32 (without ggml's f16 lookup table).
float gelu_ref(float x) {
  return 0.5f * x * (1.0f + std::tanh(kSqrt2OverPi * x * (1.0f + kGeluCoefA * x * x)));
}

}  // namespace

void gelu_scalar(const float* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = gelu_ref(x[i]);
}

void geglu_scalar(const float* gate, const float* up, float* out, int64_t n) {
  for (int64_t i = 0; i < n; ++i) out[i] = gelu_ref(gate[i]) * up[i];
}

void softcap_scalar(const float* x, float* y, int64_t n, float cap) {
  const float inv_cap = 1.0f / cap;
  for (int64_t i = 0; i < n; ++i) y[i] = std::tanh(x[i] * inv_cap) * cap;
}

void scale_scalar(const float* x, float* y, int64_t n, float s) {
  for (int64_t i = 0; i < n; ++i) y[i] = x[i] * s;
}

void rope_cos_sin(float pos, int64_t n_rot, float freq_base, float freq_scale, float* cos_sin,
                  const float* freq_factors) {
  const int64_t half = n_rot / 2;
  const float theta_scale = std::pow(freq_base, -2.0f / static_cast<float>(n_rot));
  float theta = pos;
  for (int64_t i = 0; i < half; ++i) {
    // ggml's rope_yarn without extrapolation mixing: freq_scale * (theta_base / freq_factor)
    const float angle = freq_scale * (freq_factors ? theta / freq_factors[i] : theta);
    cos_sin[i] = std::cos(angle);
    cos_sin[half + i] = std::sin(angle);
    theta *= theta_scale;
  }
}

void rope_rows_scalar(float* x, int64_t n_heads, int64_t head_dim, int64_t n_rot, bool neox, const float* cos_sin) {
  const int64_t half = n_rot / 2;
  const float* cos = cos_sin;          // (half)
  const float* sin = cos_sin + half;   // (half)
  const int64_t stride = neox ? 1 : 2;  // distance between the first elements of two pairs
  const int64_t offset = neox ? half : 1;  // distance between the two elements of a pair
  for (int64_t h = 0; h < n_heads; ++h) {
    float* row = x + h * head_dim;  // (head_dim)
    for (int64_t i = 0; i < half; ++i) {
      float* a = row + i * stride;
      const float x0 = a[0], x1 = a[offset];
      a[0] = x0 * cos[i] - x1 * sin[i];
      a[offset] = x0 * sin[i] + x1 * cos[i];
    }
  }
}

// ---- dispatch ------------------------------------------------------------------------------------

namespace {

constexpr ElementwiseKernels kScalar{rmsnorm_row_scalar,   softmax_row_scalar, exp_scalar,   swiglu_scalar,
                                     add_inplace_scalar,   rope_rows_scalar,   layernorm_row_scalar,
                                     gelu_scalar,          geglu_scalar,       softcap_scalar, scale_scalar};

}  // namespace

const ElementwiseKernels& elementwise_kernels(Isa isa) {
  require_isa("elementwise kernels", isa);
  switch (isa) {
    case Isa::Avx512: return kElementwiseAvx512;
    case Isa::Avx2: return kElementwiseAvx2;
    case Isa::Scalar: break;
  }
  return kScalar;
}

}  // namespace contrail::kernels
