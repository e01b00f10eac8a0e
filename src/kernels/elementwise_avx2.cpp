// AVX2 + FMA elementwise kernels (compiled with -mavx2 -mfma -mf16c; called only when
// active_isa() >= Avx2). Formulas and tolerances: contrail/kernels/elementwise.h.
// ODR: everything but the entry points lives in the anonymous namespace; no std templates.
#include <immintrin.h>

#include "contrail/kernels/elementwise.h"

namespace contrail::kernels {
namespace {

constexpr int64_t kW = 8;  // floats per vector

// Lane mask selecting the first `rem` (0..8) lanes, for maskload/maskstore of a row's tail.
__m256i tail_mask(int64_t rem) {
  const __m256i lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(rem)), lanes);
}

double hsum(__m256d v) {
  __m128d s = _mm_add_pd(_mm256_castpd256_pd128(v), _mm256_extractf128_pd(v, 1));
  s = _mm_add_sd(s, _mm_unpackhi_pd(s, s));
  return _mm_cvtsd_f64(s);
}

float hmax(__m256 v) {
  __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_max_ps(s, _mm_movehl_ps(s, s));
  s = _mm_max_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// acc += double(v), both halves.
__m256d add_widened(__m256d acc, __m256 v) {
  acc = _mm256_add_pd(acc, _mm256_cvtps_pd(_mm256_castps256_ps128(v)));
  return _mm256_add_pd(acc, _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1)));
}

// exp(x): n = round(x / ln2), r = x - n ln2 (Cody-Waite, two constants), exp(r) by the Cephes
// expf polynomial, times 2^n applied as two factors 2^(n/2) * 2^(n - n/2) so that
// overflow to inf and subnormal results come out right. |error| <= 1 ulp in the normal range.
__m256 exp_ps(__m256 x) {
  // Beyond these bounds exp is +inf / rounds to 0 anyway; clamping keeps n in [-150, 128].
  // max(lo, x) / min(hi, .) return x when x is NaN, so NaN propagates.
  x = _mm256_min_ps(_mm256_set1_ps(88.8f), _mm256_max_ps(_mm256_set1_ps(-104.0f), x));
  const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                                   _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
  __m256 p = _mm256_set1_ps(1.9875691500e-4f);
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
  p = _mm256_add_ps(_mm256_fmadd_ps(p, _mm256_mul_ps(r, r), r), _mm256_set1_ps(1.0f));
  const __m256i ni = _mm256_cvtps_epi32(n);
  const __m256i n1 = _mm256_srai_epi32(ni, 1);
  const __m256i n2 = _mm256_sub_epi32(ni, n1);
  const __m256i bias = _mm256_set1_epi32(127);
  const __m256 s1 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n1, bias), 23));
  const __m256 s2 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n2, bias), 23));
  return _mm256_mul_ps(_mm256_mul_ps(p, s1), s2);
}

// silu(g) * u = g / (1 + exp(-g)) * u
__m256 swiglu_ps(__m256 g, __m256 u) {
  const __m256 e = exp_ps(_mm256_sub_ps(_mm256_setzero_ps(), g));
  return _mm256_mul_ps(_mm256_div_ps(g, _mm256_add_ps(_mm256_set1_ps(1.0f), e)), u);
}

// gelu(x) = 0.5 x (1 + tanh(u)) = x / (1 + exp(-2u)), u = sqrt(2/pi) x (1 + 0.044715 x^2). The
// sigmoid form has no cancellation for u << 0; exp's clamping gives gelu(+big) = x, gelu(-big) = -0.
__m256 gelu_ps(__m256 x) {
  const __m256 inner = _mm256_mul_ps(x, _mm256_fmadd_ps(_mm256_mul_ps(_mm256_set1_ps(0.044715f), x), x,
                                                        _mm256_set1_ps(1.0f)));
  const __m256 e = exp_ps(_mm256_mul_ps(inner, _mm256_set1_ps(-2.0f * 0.79788456080286535587989211986876f)));
  return _mm256_div_ps(x, _mm256_add_ps(_mm256_set1_ps(1.0f), e));
}

// tanh(t): with a = |t|, the Cephes tanhf odd polynomial a + a^3 P(a^2) for a < 0.625, else
// 1 - 2 / (exp(2a) + 1); then the sign of t. Within 2 ulp of tanhf; tanh(+-inf) = +-1, NaN stays NaN.
__m256 tanh_ps(__m256 t) {
  const __m256 sign = _mm256_set1_ps(-0.0f);
  const __m256 a = _mm256_andnot_ps(sign, t);
  const __m256 z = _mm256_mul_ps(a, a);
  __m256 p = _mm256_set1_ps(-5.70498872745e-3f);
  p = _mm256_fmadd_ps(p, z, _mm256_set1_ps(2.06390887954e-2f));
  p = _mm256_fmadd_ps(p, z, _mm256_set1_ps(-5.37397155531e-2f));
  p = _mm256_fmadd_ps(p, z, _mm256_set1_ps(1.33314422036e-1f));
  p = _mm256_fmadd_ps(p, z, _mm256_set1_ps(-3.33332819422e-1f));
  const __m256 small = _mm256_fmadd_ps(_mm256_mul_ps(p, z), a, a);
  const __m256 e = exp_ps(_mm256_add_ps(a, a));
  const __m256 large = _mm256_sub_ps(_mm256_set1_ps(1.0f),
                                     _mm256_div_ps(_mm256_set1_ps(2.0f), _mm256_add_ps(e, _mm256_set1_ps(1.0f))));
  const __m256 r = _mm256_blendv_ps(large, small, _mm256_cmp_ps(a, _mm256_set1_ps(0.625f), _CMP_LT_OQ));
  return _mm256_or_ps(r, _mm256_and_ps(sign, t));
}

// Rotates pairs [i, half) of one row, fused like the vector path:
// x0' = fma(x0, cos, -x1 sin), x1' = fma(x0, sin, x1 cos).
void rope_pairs_tail(float* row, int64_t i, int64_t half, int64_t stride, int64_t offset, const float* cos,
                     const float* sin) {
  for (; i < half; ++i) {
    float* a = row + i * stride;
    const float x0 = a[0], x1 = a[offset];
    a[0] = __builtin_fmaf(x0, cos[i], -(x1 * sin[i]));
    a[offset] = __builtin_fmaf(x0, sin[i], x1 * cos[i]);
  }
}

}  // namespace

void rmsnorm_row_avx2(const float* x, const float* w, int64_t n, float eps, float* y) {
  __m256d acc0 = _mm256_setzero_pd(), acc1 = _mm256_setzero_pd();
  int64_t i = 0;
  for (; i + 2 * kW <= n; i += 2 * kW) {
    const __m256 a = _mm256_loadu_ps(x + i), b = _mm256_loadu_ps(x + i + kW);
    acc0 = add_widened(acc0, _mm256_mul_ps(a, a));
    acc1 = add_widened(acc1, _mm256_mul_ps(b, b));
  }
  for (; i < n; i += kW) {
    const __m256 a = _mm256_maskload_ps(x + i, tail_mask(n - i));  // lanes past n read as 0
    acc0 = add_widened(acc0, _mm256_mul_ps(a, a));
  }
  const double sum = hsum(_mm256_add_pd(acc0, acc1));
  const float mean = static_cast<float>(sum / static_cast<double>(n));
  const float scale = 1.0f / _mm_cvtss_f32(_mm_sqrt_ss(_mm_set_ss(mean + eps)));
  const __m256 vs = _mm256_set1_ps(scale);
  for (i = 0; i + kW <= n; i += kW)
    _mm256_storeu_ps(y + i, _mm256_mul_ps(_mm256_mul_ps(_mm256_loadu_ps(x + i), vs), _mm256_loadu_ps(w + i)));
  if (i < n) {
    const __m256i m = tail_mask(n - i);
    _mm256_maskstore_ps(y + i, m, _mm256_mul_ps(_mm256_mul_ps(_mm256_maskload_ps(x + i, m), vs),
                                                _mm256_maskload_ps(w + i, m)));
  }
}

void layernorm_row_avx2(const float* x, const float* w, const float* b, int64_t n, float eps, float* y) {
  __m256d acc0 = _mm256_setzero_pd(), acc1 = _mm256_setzero_pd();
  int64_t i = 0;
  for (; i + 2 * kW <= n; i += 2 * kW) {
    acc0 = add_widened(acc0, _mm256_loadu_ps(x + i));
    acc1 = add_widened(acc1, _mm256_loadu_ps(x + i + kW));
  }
  for (; i < n; i += kW) acc0 = add_widened(acc0, _mm256_maskload_ps(x + i, tail_mask(n - i)));  // 0 past n
  const float mean = static_cast<float>(hsum(_mm256_add_pd(acc0, acc1))) / static_cast<float>(n);

  // y = x - mean; sum of the f32 squares in double.
  const __m256 vmean = _mm256_set1_ps(mean);
  acc0 = _mm256_setzero_pd();
  acc1 = _mm256_setzero_pd();
  for (i = 0; i + kW <= n; i += kW) {
    const __m256 d = _mm256_sub_ps(_mm256_loadu_ps(x + i), vmean);
    _mm256_storeu_ps(y + i, d);
    const __m256 d2 = _mm256_mul_ps(d, d);
    acc0 = _mm256_add_pd(acc0, _mm256_cvtps_pd(_mm256_castps256_ps128(d2)));
    acc1 = _mm256_add_pd(acc1, _mm256_cvtps_pd(_mm256_extractf128_ps(d2, 1)));
  }
  if (i < n) {
    const __m256i m = tail_mask(n - i);
    const __m256 d = _mm256_and_ps(_mm256_sub_ps(_mm256_maskload_ps(x + i, m), vmean), _mm256_castsi256_ps(m));
    _mm256_maskstore_ps(y + i, m, d);
    acc0 = add_widened(acc0, _mm256_mul_ps(d, d));
  }
  const float variance = static_cast<float>(hsum(_mm256_add_pd(acc0, acc1)) / static_cast<double>(n));
  const float scale = 1.0f / _mm_cvtss_f32(_mm_sqrt_ss(_mm_set_ss(variance + eps)));

  // y = ((y * scale) * w) + b, unfused like ggml_norm, ggml_mul, ggml_add.
  const __m256 vs = _mm256_set1_ps(scale);
  for (i = 0; i + kW <= n; i += kW)
    _mm256_storeu_ps(y + i, _mm256_add_ps(_mm256_mul_ps(_mm256_mul_ps(_mm256_loadu_ps(y + i), vs), _mm256_loadu_ps(w + i)),
                                          _mm256_loadu_ps(b + i)));
  if (i < n) {
    const __m256i m = tail_mask(n - i);
    const __m256 yv = _mm256_mul_ps(_mm256_mul_ps(_mm256_maskload_ps(y + i, m), vs), _mm256_maskload_ps(w + i, m));
    _mm256_maskstore_ps(y + i, m, _mm256_add_ps(yv, _mm256_maskload_ps(b + i, m)));
  }
}

void softmax_row_avx2(float* x, int64_t n) {
  const __m256 ninf = _mm256_set1_ps(-__builtin_inff());
  __m256 vmax = ninf;
  int64_t i = 0;
  for (; i + kW <= n; i += kW) vmax = _mm256_max_ps(vmax, _mm256_loadu_ps(x + i));
  if (i < n) {
    const __m256i m = tail_mask(n - i);
    vmax = _mm256_max_ps(vmax, _mm256_blendv_ps(ninf, _mm256_maskload_ps(x + i, m), _mm256_castsi256_ps(m)));
  }
  const float max = hmax(vmax);
  if (max == -__builtin_inff()) {  // all -inf: no admissible entry
    for (i = 0; i < n; ++i) x[i] = 0.0f;
    return;
  }
  const __m256 vm = _mm256_set1_ps(max);
  __m256d acc0 = _mm256_setzero_pd(), acc1 = _mm256_setzero_pd();
  for (i = 0; i + kW <= n; i += kW) {
    const __m256 e = exp_ps(_mm256_sub_ps(_mm256_loadu_ps(x + i), vm));
    _mm256_storeu_ps(x + i, e);
    acc0 = _mm256_add_pd(acc0, _mm256_cvtps_pd(_mm256_castps256_ps128(e)));
    acc1 = _mm256_add_pd(acc1, _mm256_cvtps_pd(_mm256_extractf128_ps(e, 1)));
  }
  if (i < n) {
    const __m256i m = tail_mask(n - i);
    const __m256 e = _mm256_and_ps(exp_ps(_mm256_sub_ps(_mm256_maskload_ps(x + i, m), vm)), _mm256_castsi256_ps(m));
    _mm256_maskstore_ps(x + i, m, e);
    acc0 = add_widened(acc0, e);
  }
  const __m256 inv = _mm256_set1_ps(static_cast<float>(1.0 / hsum(_mm256_add_pd(acc0, acc1))));
  for (i = 0; i + kW <= n; i += kW) _mm256_storeu_ps(x + i, _mm256_mul_ps(_mm256_loadu_ps(x + i), inv));
  if (i < n) {
    const __m256i m = tail_mask(n - i);
    _mm256_maskstore_ps(x + i, m, _mm256_mul_ps(_mm256_maskload_ps(x + i, m), inv));
  }
}

void exp_avx2(const float* x, float* y, int64_t n) {
  int64_t i = 0;
  for (; i + kW <= n; i += kW) _mm256_storeu_ps(y + i, exp_ps(_mm256_loadu_ps(x + i)));
  if (i < n) {
    const __m256i m = tail_mask(n - i);
    _mm256_maskstore_ps(y + i, m, exp_ps(_mm256_maskload_ps(x + i, m)));
  }
}

void swiglu_avx2(const float* gate, const float* up, float* out, int64_t n) {
  int64_t i = 0;
  for (; i + kW <= n; i += kW)
    _mm256_storeu_ps(out + i, swiglu_ps(_mm256_loadu_ps(gate + i), _mm256_loadu_ps(up + i)));
  if (i < n) {
    const __m256i m = tail_mask(n - i);
    _mm256_maskstore_ps(out + i, m, swiglu_ps(_mm256_maskload_ps(gate + i, m), _mm256_maskload_ps(up + i, m)));
  }
}

void gelu_avx2(const float* x, float* y, int64_t n) {
  int64_t i = 0;
  for (; i + kW <= n; i += kW) _mm256_storeu_ps(y + i, gelu_ps(_mm256_loadu_ps(x + i)));
  if (i < n) {
    const __m256i m = tail_mask(n - i);
    _mm256_maskstore_ps(y + i, m, gelu_ps(_mm256_maskload_ps(x + i, m)));
  }
}

void geglu_avx2(const float* gate, const float* up, float* out, int64_t n) {
  int64_t i = 0;
  for (; i + kW <= n; i += kW)
    _mm256_storeu_ps(out + i, _mm256_mul_ps(gelu_ps(_mm256_loadu_ps(gate + i)), _mm256_loadu_ps(up + i)));
  if (i < n) {
    const __m256i m = tail_mask(n - i);
    _mm256_maskstore_ps(out + i, m,
                        _mm256_mul_ps(gelu_ps(_mm256_maskload_ps(gate + i, m)), _mm256_maskload_ps(up + i, m)));
  }
}

void softcap_avx2(const float* x, float* y, int64_t n, float cap) {
  const __m256 vcap = _mm256_set1_ps(cap), inv = _mm256_set1_ps(1.0f / cap);
  int64_t i = 0;
  for (; i + kW <= n; i += kW)
    _mm256_storeu_ps(y + i, _mm256_mul_ps(tanh_ps(_mm256_mul_ps(_mm256_loadu_ps(x + i), inv)), vcap));
  if (i < n) {
    const __m256i m = tail_mask(n - i);
    _mm256_maskstore_ps(y + i, m, _mm256_mul_ps(tanh_ps(_mm256_mul_ps(_mm256_maskload_ps(x + i, m), inv)), vcap));
  }
}

void scale_avx2(const float* x, float* y, int64_t n, float s) {
  const __m256 vs = _mm256_set1_ps(s);
  int64_t i = 0;
  for (; i + 4 * kW <= n; i += 4 * kW)
    for (int64_t j = i; j < i + 4 * kW; j += kW) _mm256_storeu_ps(y + j, _mm256_mul_ps(_mm256_loadu_ps(x + j), vs));
  for (; i + kW <= n; i += kW) _mm256_storeu_ps(y + i, _mm256_mul_ps(_mm256_loadu_ps(x + i), vs));
  if (i < n) {
    const __m256i m = tail_mask(n - i);
    _mm256_maskstore_ps(y + i, m, _mm256_mul_ps(_mm256_maskload_ps(x + i, m), vs));
  }
}

void add_inplace_avx2(float* y, const float* x, int64_t n) {
  int64_t i = 0;
  for (; i + 4 * kW <= n; i += 4 * kW)
    for (int64_t j = i; j < i + 4 * kW; j += kW)
      _mm256_storeu_ps(y + j, _mm256_add_ps(_mm256_loadu_ps(y + j), _mm256_loadu_ps(x + j)));
  for (; i + kW <= n; i += kW) _mm256_storeu_ps(y + i, _mm256_add_ps(_mm256_loadu_ps(y + i), _mm256_loadu_ps(x + i)));
  if (i < n) {
    const __m256i m = tail_mask(n - i);
    _mm256_maskstore_ps(y + i, m, _mm256_add_ps(_mm256_maskload_ps(y + i, m), _mm256_maskload_ps(x + i, m)));
  }
}

void rope_rows_avx2(float* x, int64_t n_heads, int64_t head_dim, int64_t n_rot, bool neox, const float* cos_sin) {
  const int64_t half = n_rot / 2;
  const float* cos = cos_sin;         // (half)
  const float* sin = cos_sin + half;  // (half)
  for (int64_t h = 0; h < n_heads; ++h) {
    float* row = x + h * head_dim;  // (head_dim)
    int64_t i = 0;
    if (neox) {
      // Pair i is (row[i], row[i + half]): 8 pairs per step, straight loads.
      for (; i + kW <= half; i += kW) {
        const __m256 c = _mm256_loadu_ps(cos + i), s = _mm256_loadu_ps(sin + i);
        const __m256 x0 = _mm256_loadu_ps(row + i), x1 = _mm256_loadu_ps(row + half + i);
        _mm256_storeu_ps(row + i, _mm256_fmsub_ps(x0, c, _mm256_mul_ps(x1, s)));
        _mm256_storeu_ps(row + half + i, _mm256_fmadd_ps(x0, s, _mm256_mul_ps(x1, c)));
      }
      rope_pairs_tail(row, i, half, 1, half, cos, sin);
    } else {
      // Pair i is (row[2i], row[2i+1]): 4 pairs per vector v = [a0 b0 a1 b1 ...]. With cc = [c0 c0 c1
      // c1 ...], ss = [s0 s0 ...] and the pair-swapped w = [b0 a0 ...], fmaddsub(v, cc, w * ss) gives
      // [a0 c0 - b0 s0, b0 c0 + a0 s0, ...].
      const __m256i dup = _mm256_setr_epi32(0, 0, 1, 1, 2, 2, 3, 3);
      for (; i + kW / 2 <= half; i += kW / 2) {
        const __m256 cc = _mm256_permutevar8x32_ps(_mm256_castps128_ps256(_mm_loadu_ps(cos + i)), dup);
        const __m256 ss = _mm256_permutevar8x32_ps(_mm256_castps128_ps256(_mm_loadu_ps(sin + i)), dup);
        const __m256 v = _mm256_loadu_ps(row + 2 * i);
        const __m256 swapped = _mm256_permute_ps(v, 0xB1);
        _mm256_storeu_ps(row + 2 * i, _mm256_fmaddsub_ps(v, cc, _mm256_mul_ps(swapped, ss)));
      }
      rope_pairs_tail(row, i, half, 2, 1, cos, sin);
    }
  }
}

}  // namespace contrail::kernels
