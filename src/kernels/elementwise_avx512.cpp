// AVX-512 (F/BW/VL/DQ) elementwise kernels (called only when active_isa() == Avx512). Formulas and
// tolerances: contrail/kernels/elementwise.h. Row tails use masked loads/stores.
// ODR: everything but the entry points lives in the anonymous namespace; no std templates.
#include "kernels/immintrin_avx512.h"

#include "contrail/kernels/elementwise.h"

namespace contrail::kernels {
namespace {

constexpr int64_t kW = 16;  // floats per vector

// Mask of the first `rem` (0..16) lanes.
__mmask16 tail_mask(int64_t rem) { return static_cast<__mmask16>((1u << rem) - 1u); }

// exp(x): n = round(x / ln2), r = x - n ln2 (Cody-Waite), exp(r) by the Cephes expf polynomial,
// then scalef(p, n) = p * 2^n, which rounds overflow to inf and subnormal results correctly.
// |error| <= 1 ulp in the normal range; same polynomial as the AVX2 kernel.
__m512 exp_ps(__m512 x) {
  // Clamp so that r stays finite for +-inf; max(lo, x) / min(hi, .) return x when x is NaN.
  x = _mm512_min_ps(_mm512_set1_ps(88.8f), _mm512_max_ps(_mm512_set1_ps(-104.0f), x));
  const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
  __m512 p = _mm512_set1_ps(1.9875691500e-4f);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
  p = _mm512_add_ps(_mm512_fmadd_ps(p, _mm512_mul_ps(r, r), r), _mm512_set1_ps(1.0f));
  return _mm512_scalef_ps(p, n);
}

// silu(g) * u = g / (1 + exp(-g)) * u
__m512 swiglu_ps(__m512 g, __m512 u) {
  const __m512 e = exp_ps(_mm512_sub_ps(_mm512_setzero_ps(), g));
  return _mm512_mul_ps(_mm512_div_ps(g, _mm512_add_ps(_mm512_set1_ps(1.0f), e)), u);
}

// gelu(x) = 0.5 x (1 + tanh(u)) = x / (1 + exp(-2u)), u = sqrt(2/pi) x (1 + 0.044715 x^2). The
// sigmoid form has no cancellation for u << 0; exp's clamping gives gelu(+big) = x, gelu(-big) = -0.
__m512 gelu_ps(__m512 x) {
  const __m512 inner = _mm512_mul_ps(x, _mm512_fmadd_ps(_mm512_mul_ps(_mm512_set1_ps(0.044715f), x), x,
                                                        _mm512_set1_ps(1.0f)));
  const __m512 e = exp_ps(_mm512_mul_ps(inner, _mm512_set1_ps(-2.0f * 0.79788456080286535587989211986876f)));
  return _mm512_div_ps(x, _mm512_add_ps(_mm512_set1_ps(1.0f), e));
}

// tanh(t): with a = |t|, the Cephes tanhf odd polynomial a + a^3 P(a^2) for a < 0.625, else
// 1 - 2 / (exp(2a) + 1); then the sign of t. Within 2 ulp of tanhf; tanh(+-inf) = +-1, NaN stays NaN.
__m512 tanh_ps(__m512 t) {
  const __m512 a = _mm512_abs_ps(t);
  const __m512 z = _mm512_mul_ps(a, a);
  __m512 p = _mm512_set1_ps(-5.70498872745e-3f);
  p = _mm512_fmadd_ps(p, z, _mm512_set1_ps(2.06390887954e-2f));
  p = _mm512_fmadd_ps(p, z, _mm512_set1_ps(-5.37397155531e-2f));
  p = _mm512_fmadd_ps(p, z, _mm512_set1_ps(1.33314422036e-1f));
  p = _mm512_fmadd_ps(p, z, _mm512_set1_ps(-3.33332819422e-1f));
  const __m512 small = _mm512_fmadd_ps(_mm512_mul_ps(p, z), a, a);
  const __m512 e = exp_ps(_mm512_add_ps(a, a));
  const __m512 large = _mm512_sub_ps(_mm512_set1_ps(1.0f),
                                     _mm512_div_ps(_mm512_set1_ps(2.0f), _mm512_add_ps(e, _mm512_set1_ps(1.0f))));
  const __m512 r = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(a, _mm512_set1_ps(0.625f), _CMP_LT_OQ), large, small);
  return _mm512_or_ps(r, _mm512_and_ps(_mm512_set1_ps(-0.0f), t));
}

// acc += double(v), both halves.
__m512d add_widened(__m512d acc, __m512 v) {
  acc = _mm512_add_pd(acc, _mm512_cvtps_pd(_mm512_castps512_ps256(v)));
  return _mm512_add_pd(acc, _mm512_cvtps_pd(_mm512_extractf32x8_ps(v, 1)));
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

void rmsnorm_row_avx512(const float* x, const float* w, int64_t n, float eps, float* y) {
  __m512d acc0 = _mm512_setzero_pd(), acc1 = _mm512_setzero_pd();
  int64_t i = 0;
  for (; i + 2 * kW <= n; i += 2 * kW) {
    const __m512 a = _mm512_loadu_ps(x + i), b = _mm512_loadu_ps(x + i + kW);
    acc0 = add_widened(acc0, _mm512_mul_ps(a, a));
    acc1 = add_widened(acc1, _mm512_mul_ps(b, b));
  }
  for (; i < n; i += kW) {
    const __m512 a = _mm512_maskz_loadu_ps(tail_mask(n - i < kW ? n - i : kW), x + i);
    acc0 = add_widened(acc0, _mm512_mul_ps(a, a));
  }
  const double sum = _mm512_reduce_add_pd(_mm512_add_pd(acc0, acc1));
  const float mean = static_cast<float>(sum / static_cast<double>(n));
  const float scale = 1.0f / _mm_cvtss_f32(_mm_sqrt_ss(_mm_set_ss(mean + eps)));
  const __m512 vs = _mm512_set1_ps(scale);
  for (i = 0; i + kW <= n; i += kW)
    _mm512_storeu_ps(y + i, _mm512_mul_ps(_mm512_mul_ps(_mm512_loadu_ps(x + i), vs), _mm512_loadu_ps(w + i)));
  if (i < n) {
    const __mmask16 m = tail_mask(n - i);
    _mm512_mask_storeu_ps(y + i, m, _mm512_mul_ps(_mm512_mul_ps(_mm512_maskz_loadu_ps(m, x + i), vs),
                                                  _mm512_maskz_loadu_ps(m, w + i)));
  }
}

void layernorm_row_avx512(const float* x, const float* w, const float* b, int64_t n, float eps, float* y) {
  __m512d acc0 = _mm512_setzero_pd(), acc1 = _mm512_setzero_pd();
  int64_t i = 0;
  for (; i + 2 * kW <= n; i += 2 * kW) {
    acc0 = add_widened(acc0, _mm512_loadu_ps(x + i));
    acc1 = add_widened(acc1, _mm512_loadu_ps(x + i + kW));
  }
  for (; i < n; i += kW) acc0 = add_widened(acc0, _mm512_maskz_loadu_ps(tail_mask(n - i < kW ? n - i : kW), x + i));
  const float mean = static_cast<float>(_mm512_reduce_add_pd(_mm512_add_pd(acc0, acc1))) / static_cast<float>(n);

  // y = x - mean; sum of the f32 squares in double.
  const __m512 vmean = _mm512_set1_ps(mean);
  acc0 = _mm512_setzero_pd();
  acc1 = _mm512_setzero_pd();
  for (i = 0; i + kW <= n; i += kW) {
    const __m512 d = _mm512_sub_ps(_mm512_loadu_ps(x + i), vmean);
    _mm512_storeu_ps(y + i, d);
    const __m512 d2 = _mm512_mul_ps(d, d);
    acc0 = _mm512_add_pd(acc0, _mm512_cvtps_pd(_mm512_castps512_ps256(d2)));
    acc1 = _mm512_add_pd(acc1, _mm512_cvtps_pd(_mm512_extractf32x8_ps(d2, 1)));
  }
  if (i < n) {
    const __mmask16 m = tail_mask(n - i);
    const __m512 d = _mm512_maskz_sub_ps(m, _mm512_maskz_loadu_ps(m, x + i), vmean);  // 0 past n
    _mm512_mask_storeu_ps(y + i, m, d);
    acc0 = add_widened(acc0, _mm512_mul_ps(d, d));
  }
  const float variance = static_cast<float>(_mm512_reduce_add_pd(_mm512_add_pd(acc0, acc1)) / static_cast<double>(n));
  const float scale = 1.0f / _mm_cvtss_f32(_mm_sqrt_ss(_mm_set_ss(variance + eps)));

  // y = ((y * scale) * w) + b, unfused like ggml_norm, ggml_mul, ggml_add.
  const __m512 vs = _mm512_set1_ps(scale);
  for (i = 0; i + kW <= n; i += kW)
    _mm512_storeu_ps(y + i, _mm512_add_ps(_mm512_mul_ps(_mm512_mul_ps(_mm512_loadu_ps(y + i), vs), _mm512_loadu_ps(w + i)),
                                          _mm512_loadu_ps(b + i)));
  if (i < n) {
    const __mmask16 m = tail_mask(n - i);
    const __m512 yv = _mm512_mul_ps(_mm512_mul_ps(_mm512_maskz_loadu_ps(m, y + i), vs), _mm512_maskz_loadu_ps(m, w + i));
    _mm512_mask_storeu_ps(y + i, m, _mm512_add_ps(yv, _mm512_maskz_loadu_ps(m, b + i)));
  }
}

void softmax_row_avx512(float* x, int64_t n) {
  const __m512 ninf = _mm512_set1_ps(-__builtin_inff());
  __m512 vmax = ninf;
  int64_t i = 0;
  for (; i + kW <= n; i += kW) vmax = _mm512_max_ps(vmax, _mm512_loadu_ps(x + i));
  if (i < n) vmax = _mm512_max_ps(vmax, _mm512_mask_loadu_ps(ninf, tail_mask(n - i), x + i));
  const float max = _mm512_reduce_max_ps(vmax);
  if (max == -__builtin_inff()) {  // all -inf: no admissible entry
    for (i = 0; i < n; ++i) x[i] = 0.0f;
    return;
  }
  const __m512 vm = _mm512_set1_ps(max);
  __m512d acc0 = _mm512_setzero_pd(), acc1 = _mm512_setzero_pd();
  for (i = 0; i + kW <= n; i += kW) {
    const __m512 e = exp_ps(_mm512_sub_ps(_mm512_loadu_ps(x + i), vm));
    _mm512_storeu_ps(x + i, e);
    acc0 = _mm512_add_pd(acc0, _mm512_cvtps_pd(_mm512_castps512_ps256(e)));
    acc1 = _mm512_add_pd(acc1, _mm512_cvtps_pd(_mm512_extractf32x8_ps(e, 1)));
  }
  if (i < n) {
    const __mmask16 m = tail_mask(n - i);
    const __m512 e = _mm512_maskz_mov_ps(m, exp_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, x + i), vm)));
    _mm512_mask_storeu_ps(x + i, m, e);
    acc0 = add_widened(acc0, e);
  }
  const __m512 inv = _mm512_set1_ps(static_cast<float>(1.0 / _mm512_reduce_add_pd(_mm512_add_pd(acc0, acc1))));
  for (i = 0; i + kW <= n; i += kW) _mm512_storeu_ps(x + i, _mm512_mul_ps(_mm512_loadu_ps(x + i), inv));
  if (i < n) {
    const __mmask16 m = tail_mask(n - i);
    _mm512_mask_storeu_ps(x + i, m, _mm512_mul_ps(_mm512_maskz_loadu_ps(m, x + i), inv));
  }
}

void exp_avx512(const float* x, float* y, int64_t n) {
  int64_t i = 0;
  for (; i + kW <= n; i += kW) _mm512_storeu_ps(y + i, exp_ps(_mm512_loadu_ps(x + i)));
  if (i < n) {
    const __mmask16 m = tail_mask(n - i);
    _mm512_mask_storeu_ps(y + i, m, exp_ps(_mm512_maskz_loadu_ps(m, x + i)));
  }
}

void swiglu_avx512(const float* gate, const float* up, float* out, int64_t n) {
  int64_t i = 0;
  for (; i + kW <= n; i += kW)
    _mm512_storeu_ps(out + i, swiglu_ps(_mm512_loadu_ps(gate + i), _mm512_loadu_ps(up + i)));
  if (i < n) {
    const __mmask16 m = tail_mask(n - i);
    _mm512_mask_storeu_ps(out + i, m, swiglu_ps(_mm512_maskz_loadu_ps(m, gate + i), _mm512_maskz_loadu_ps(m, up + i)));
  }
}

void gelu_avx512(const float* x, float* y, int64_t n) {
  int64_t i = 0;
  for (; i + kW <= n; i += kW) _mm512_storeu_ps(y + i, gelu_ps(_mm512_loadu_ps(x + i)));
  if (i < n) {
    const __mmask16 m = tail_mask(n - i);
    _mm512_mask_storeu_ps(y + i, m, gelu_ps(_mm512_maskz_loadu_ps(m, x + i)));
  }
}

void geglu_avx512(const float* gate, const float* up, float* out, int64_t n) {
  int64_t i = 0;
  for (; i + kW <= n; i += kW)
    _mm512_storeu_ps(out + i, _mm512_mul_ps(gelu_ps(_mm512_loadu_ps(gate + i)), _mm512_loadu_ps(up + i)));
  if (i < n) {
    const __mmask16 m = tail_mask(n - i);
    _mm512_mask_storeu_ps(out + i, m,
                          _mm512_mul_ps(gelu_ps(_mm512_maskz_loadu_ps(m, gate + i)), _mm512_maskz_loadu_ps(m, up + i)));
  }
}

void softcap_avx512(const float* x, float* y, int64_t n, float cap) {
  const __m512 vcap = _mm512_set1_ps(cap), inv = _mm512_set1_ps(1.0f / cap);
  int64_t i = 0;
  for (; i + kW <= n; i += kW)
    _mm512_storeu_ps(y + i, _mm512_mul_ps(tanh_ps(_mm512_mul_ps(_mm512_loadu_ps(x + i), inv)), vcap));
  if (i < n) {
    const __mmask16 m = tail_mask(n - i);
    _mm512_mask_storeu_ps(y + i, m, _mm512_mul_ps(tanh_ps(_mm512_mul_ps(_mm512_maskz_loadu_ps(m, x + i), inv)), vcap));
  }
}

void scale_avx512(const float* x, float* y, int64_t n, float s) {
  const __m512 vs = _mm512_set1_ps(s);
  int64_t i = 0;
  for (; i + 4 * kW <= n; i += 4 * kW)
    for (int64_t j = i; j < i + 4 * kW; j += kW) _mm512_storeu_ps(y + j, _mm512_mul_ps(_mm512_loadu_ps(x + j), vs));
  for (; i + kW <= n; i += kW) _mm512_storeu_ps(y + i, _mm512_mul_ps(_mm512_loadu_ps(x + i), vs));
  if (i < n) {
    const __mmask16 m = tail_mask(n - i);
    _mm512_mask_storeu_ps(y + i, m, _mm512_mul_ps(_mm512_maskz_loadu_ps(m, x + i), vs));
  }
}

void add_inplace_avx512(float* y, const float* x, int64_t n) {
  int64_t i = 0;
  for (; i + 4 * kW <= n; i += 4 * kW)
    for (int64_t j = i; j < i + 4 * kW; j += kW)
      _mm512_storeu_ps(y + j, _mm512_add_ps(_mm512_loadu_ps(y + j), _mm512_loadu_ps(x + j)));
  for (; i + kW <= n; i += kW) _mm512_storeu_ps(y + i, _mm512_add_ps(_mm512_loadu_ps(y + i), _mm512_loadu_ps(x + i)));
  if (i < n) {
    const __mmask16 m = tail_mask(n - i);
    _mm512_mask_storeu_ps(y + i, m, _mm512_add_ps(_mm512_maskz_loadu_ps(m, y + i), _mm512_maskz_loadu_ps(m, x + i)));
  }
}

void rope_rows_avx512(float* x, int64_t n_heads, int64_t head_dim, int64_t n_rot, bool neox, const float* cos_sin) {
  const int64_t half = n_rot / 2;
  const float* cos = cos_sin;         // (half)
  const float* sin = cos_sin + half;  // (half)
  for (int64_t h = 0; h < n_heads; ++h) {
    float* row = x + h * head_dim;  // (head_dim)
    int64_t i = 0;
    if (neox) {
      // Pair i is (row[i], row[i + half]): 16 pairs per step, straight loads.
      for (; i + kW <= half; i += kW) {
        const __m512 c = _mm512_loadu_ps(cos + i), s = _mm512_loadu_ps(sin + i);
        const __m512 x0 = _mm512_loadu_ps(row + i), x1 = _mm512_loadu_ps(row + half + i);
        _mm512_storeu_ps(row + i, _mm512_fmsub_ps(x0, c, _mm512_mul_ps(x1, s)));
        _mm512_storeu_ps(row + half + i, _mm512_fmadd_ps(x0, s, _mm512_mul_ps(x1, c)));
      }
      rope_pairs_tail(row, i, half, 1, half, cos, sin);
    } else {
      // Pair i is (row[2i], row[2i+1]): 8 pairs per vector v = [a0 b0 a1 b1 ...]. With cc = [c0 c0 c1
      // c1 ...], ss = [s0 s0 ...] and the pair-swapped w = [b0 a0 ...], fmaddsub(v, cc, w * ss) gives
      // [a0 c0 - b0 s0, b0 c0 + a0 s0, ...].
      const __m512i dup = _mm512_setr_epi32(0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7);
      for (; i + kW / 2 <= half; i += kW / 2) {
        const __m512 cc = _mm512_permutexvar_ps(dup, _mm512_castps256_ps512(_mm256_loadu_ps(cos + i)));
        const __m512 ss = _mm512_permutexvar_ps(dup, _mm512_castps256_ps512(_mm256_loadu_ps(sin + i)));
        const __m512 v = _mm512_loadu_ps(row + 2 * i);
        _mm512_storeu_ps(row + 2 * i, _mm512_fmaddsub_ps(v, cc, _mm512_mul_ps(_mm512_permute_ps(v, 0xB1), ss)));
      }
      rope_pairs_tail(row, i, half, 2, 1, cos, sin);
    }
  }
}

}  // namespace contrail::kernels
